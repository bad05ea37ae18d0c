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

/// A fixed signing key and a verifier that trusts it.
pub struct TestKeys {
    pub key: LocalKey,
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
        let auth = config::Auth::default();
        let verifier = Arc::new(Verifier::from_jwks(&key.jwks_json(), &auth).expect("test JWKS"));
        TestKeys {
            key,
            auth,
            verifier,
        }
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

    /// A valid token for `subject` in `role`.
    pub fn token(&self, subject: &str, role: Role) -> String {
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
