//! Helpers for service tests: a fresh database per test on SQLite and, when
//! `QAWARD_TEST_DATABASE_URL` is set, on PostgreSQL; fixed test keys and tokens per role.

use std::sync::Arc;

use crate::{
    auth::{LocalKey, Role, Verifier},
    config,
    db::{Database, Migrations},
};

/// The variable naming the PostgreSQL server tests may use.
pub const TEST_DATABASE_URL: &str = "QAWARD_TEST_DATABASE_URL";

/// A test database; the SQLite directory lives as long as this value.
pub struct TestDb {
    pub db: Database,
    pub label: &'static str,
    _dir: Option<tempfile::TempDir>,
}

impl std::ops::Deref for TestDb {
    type Target = Database;
    fn deref(&self) -> &Database {
        &self.db
    }
}

/// A fresh, migrated SQLite database in a temporary directory.
pub async fn sqlite(service: &str, migrations: &Migrations) -> TestDb {
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = Database::connect_sqlite(&dir.path().join(format!("{service}.db")), service, 4)
        .await
        .expect("open SQLite");
    db.migrate(service, migrations)
        .await
        .expect("migrate SQLite");
    TestDb {
        db,
        label: "sqlite",
        _dir: Some(dir),
    }
}

/// A fresh, migrated PostgreSQL schema of its own, or `None` (with a line saying the test
/// was skipped) when `QAWARD_TEST_DATABASE_URL` is not set. A set but unreachable server
/// fails the test: CI must never mistake a dead database for a skip.
pub async fn postgres(service: &str, migrations: &Migrations) -> Option<TestDb> {
    let Ok(url) = std::env::var(TEST_DATABASE_URL) else {
        eprintln!("SKIPPED on PostgreSQL: {TEST_DATABASE_URL} is not set");
        return None;
    };
    let schema = format!("t_{}_{}", uuid::Uuid::new_v4().simple(), service);
    let db = Database::connect_postgres(&url, &schema, 4)
        .await
        .unwrap_or_else(|e| panic!("{TEST_DATABASE_URL} is set but unusable: {e}"));
    db.migrate(service, migrations)
        .await
        .expect("migrate PostgreSQL");
    Some(TestDb {
        db,
        label: "postgres",
        _dir: None,
    })
}

/// The URL of a new, empty PostgreSQL database on the test server (for whole-system tests
/// that run every service against one database), or `None` with a skip line when
/// `QAWARD_TEST_DATABASE_URL` is not set.
pub async fn fresh_postgres_database() -> Option<String> {
    use sqlx::Executor;
    let Ok(url) = std::env::var(TEST_DATABASE_URL) else {
        eprintln!("SKIPPED on PostgreSQL: {TEST_DATABASE_URL} is not set");
        return None;
    };
    sqlx::any::install_default_drivers();
    let name = format!("qaward_t_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::AnyPool::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("{TEST_DATABASE_URL} is set but unusable: {e}"));
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .expect("create test database");
    admin.close().await;
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url.as_str(), String::new()),
    };
    let server = base.rsplit_once('/').map(|(s, _)| s).unwrap_or(base);
    Some(format!("{server}/{name}{query}"))
}

/// SQLite always, and PostgreSQL when configured: run a service test on each.
pub async fn backends(service: &str, migrations: &Migrations) -> Vec<TestDb> {
    let mut all = vec![sqlite(service, migrations).await];
    all.extend(postgres(service, migrations).await);
    all
}

/// A service with no tables of its own: for testing the kit's tables alone.
pub fn no_migrations() -> Migrations {
    Migrations::NONE
}

/// A fixed signing key, a fixed services' key, and a verifier that trusts them.
pub struct TestKeys {
    pub key: LocalKey,
    /// The services' own key: [`TestKeys::token`] signs `service` tokens with it.
    pub service_key: LocalKey,
    /// Another award programme's identity provider ([`TestKeys::OTHER_ISSUER`]), granted
    /// office, supervisor and reviewer for programme `other` and not the registry keeper.
    pub other_key: LocalKey,
    pub auth: config::Auth,
    pub verifier: Arc<Verifier>,
}

impl Default for TestKeys {
    fn default() -> Self {
        TestKeys::new()
    }
}

impl TestKeys {
    pub fn new() -> Self {
        let key = LocalKey::from_seed([7u8; 32]);
        let service_key = LocalKey::from_seed([8u8; 32]);
        let other_key = LocalKey::from_seed([21u8; 32]);
        let auth = config::Auth {
            other_issuers: vec![config::OtherIssuer {
                issuer: Self::OTHER_ISSUER.to_string(),
                jwks_file: Some("other-idp-jwks.json".into()),
                jwks_url: None,
                roles: vec![Role::Office, Role::Supervisor, Role::Reviewer],
                programmes: vec!["other".to_string()],
                registry_keeper: false,
            }],
            ..config::Auth::default()
        };
        let verifier = Verifier::from_jwks(&key.jwks_json(), &auth).expect("test JWKS");
        verifier
            .replace_keys_of(&auth.service_issuer, &service_key.jwks_json())
            .expect("test services' JWKS");
        verifier
            .replace_keys_of(Self::OTHER_ISSUER, &other_key.jwks_json())
            .expect("test other issuer's JWKS");
        TestKeys {
            key,
            service_key,
            other_key,
            auth,
            verifier: Arc::new(verifier),
        }
    }

    pub const OTHER_ISSUER: &'static str = "https://idp.other.example";

    /// A token of the other programme's identity provider for `subject` in `role`, acting for
    /// `programme` (which it may, for `other`, or may not).
    pub fn other_token(&self, subject: &str, role: Role, programme: &str) -> String {
        let iat = time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
        self.other_key
            .sign(&crate::auth::Claims {
                iss: Self::OTHER_ISSUER.to_string(),
                aud: self.auth.audience.clone().into(),
                sub: subject.to_string(),
                iat,
                nbf: None,
                exp: iat + 600,
                role,
                org: None,
                programme: Some(programme.to_string()),
            })
            .expect("sign test token")
    }

    /// A valid token for `subject` in `role`, acting for `programme`.
    pub fn token_for(&self, subject: &str, role: Role, programme: &str) -> String {
        self.key
            .issue(
                &self.auth,
                time::OffsetDateTime::now_utc(),
                subject,
                role,
                None,
                Some(programme.to_string()),
            )
            .expect("sign test token")
    }

    /// A valid token for `subject` in `role`, of organisation `org` (an enterprise's credit
    /// code, a unit's id).
    /// A token naming both an organisation and the programme it acts for: a committee
    /// member's, whose `org` is its member unit (Art. 5).
    pub fn token_in(&self, subject: &str, role: Role, org: &str, programme: &str) -> String {
        self.key
            .issue(
                &self.auth,
                time::OffsetDateTime::now_utc(),
                subject,
                role,
                Some(org.to_string()),
                Some(programme.to_string()),
            )
            .expect("sign test token")
    }

    pub fn token_for_org(&self, subject: &str, role: Role, org: &str) -> String {
        self.key
            .issue(
                &self.auth,
                time::OffsetDateTime::now_utc(),
                subject,
                role,
                Some(org.to_string()),
                None,
            )
            .expect("sign test token")
    }

    /// A valid token for `subject` in `role` (a `service` token is signed with the services'
    /// key, as a service's own would be).
    pub fn token(&self, subject: &str, role: Role) -> String {
        if role == Role::Service {
            return self
                .service_key
                .issue_service(&self.auth, time::OffsetDateTime::now_utc(), subject)
                .expect("sign test service token");
        }
        self.key
            .issue(
                &self.auth,
                time::OffsetDateTime::now_utc(),
                subject,
                role,
                None,
                None,
            )
            .expect("sign test token")
    }
}

/// One request an [`HttpSink`] received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
    /// The status the sink answered with.
    pub status: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Default)]
struct SinkState {
    received: Vec<Received>,
    /// Statuses to answer with next, in order; then `status`.
    script: std::collections::VecDeque<u16>,
    status: u16,
    /// How long to take over each answer (a slow receiver).
    delay: std::time::Duration,
}

/// A real HTTP server on loopback that records every POST and answers with scripted statuses:
/// the receiving end of webhook and SMS-gateway tests.
#[derive(Clone)]
pub struct HttpSink {
    pub url: String,
    state: Arc<std::sync::Mutex<SinkState>>,
    arrived: Arc<tokio::sync::Notify>,
}

impl HttpSink {
    /// Starts a sink answering 200 to everything.
    pub async fn start() -> HttpSink {
        let state = Arc::new(std::sync::Mutex::new(SinkState {
            status: 200,
            ..Default::default()
        }));
        let arrived = Arc::new(tokio::sync::Notify::new());
        let (s, a) = (state.clone(), arrived.clone());
        let app = axum::Router::new().fallback(axum::routing::post(
            move |headers: http::HeaderMap, body: axum::body::Bytes| {
                let (s, a) = (s.clone(), a.clone());
                async move {
                    let (status, delay) = {
                        let mut st = s.lock().unwrap_or_else(|p| p.into_inner());
                        let status = st.script.pop_front().unwrap_or(st.status);
                        st.received.push(Received {
                            headers,
                            body: body.to_vec(),
                            status,
                        });
                        (status, st.delay)
                    };
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    a.notify_waiters();
                    (
                        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK),
                        "ok",
                    )
                }
            },
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind sink");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        HttpSink {
            url,
            state,
            arrived,
        }
    }

    /// Answers the next requests with `statuses`, then with the standing status.
    pub fn script(&self, statuses: &[u16]) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.script.extend(statuses.iter().copied());
    }

    /// Takes `delay` over each answer from now on.
    pub fn set_delay(&self, delay: std::time::Duration) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).delay = delay;
    }

    /// The status answered once the script is used up.
    pub fn set_status(&self, status: u16) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).status = status;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .received
            .clone()
    }

    /// Waits until `pred` holds of what arrived, or `timeout` passes; returns what arrived.
    pub async fn wait_until(
        &self,
        timeout: std::time::Duration,
        pred: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.arrived.notified();
            let got = self.received();
            if pred(&got) || tokio::time::Instant::now() >= deadline {
                return got;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }
}

/// Serves `host` on a free loopback port, as the real process would, and returns a connected
/// channel to it: the start of every service test.
pub async fn serve_on_loopback(host: crate::server::ServiceHost) -> tonic::transport::Channel {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(host.serve(listener, std::future::pending()));
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect to the test server")
}

/// Holds the generated part of a document to what the code generates: the text after the line
/// starting with `mark` (and the blank line after it) must be `generated`. With
/// `QAWARD_UPDATE_DOCS` set, it rewrites that part instead. For docs generated from the
/// contracts (`docs/policy.md`, the route table of `docs/http.md`).
pub fn check_generated(path: &str, mark: &str, generated: &str) {
    let doc = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let start = doc
        .find(mark)
        .unwrap_or_else(|| panic!("{path} has no generated part ({mark})"));
    let body = start
        + doc[start..]
            .find("\n\n")
            .unwrap_or_else(|| panic!("{path}: a blank line after the mark"))
        + 2;
    if std::env::var_os("QAWARD_UPDATE_DOCS").is_some() {
        std::fs::write(path, format!("{}{generated}", &doc[..body]))
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        return;
    }
    assert!(
        doc[body..] == *generated,
        "{path} is out of date: run this test with QAWARD_UPDATE_DOCS=1"
    );
}

/// The `ErrorInfo.reason` of a status (empty without one).
pub fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}
