//! Starting `qaward serve` as a child process and talking to it.

use std::{
    collections::HashMap,
    net::SocketAddr,
    process::{Command, Stdio},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command as AsyncCommand},
};
use tonic::transport::Channel;
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

pub const BIN: &str = env!("CARGO_BIN_EXE_qaward");

/// Every listen address set to port 0, so parallel tests never collide.
pub fn free_port_env() -> Vec<(String, String)> {
    [
        "GATEWAY_GRPC",
        "GATEWAY_HTTP",
        "APPLICATIONS",
        "REVIEWERS",
        "SCORING",
        "NOTIFICATIONS",
    ]
    .iter()
    .map(|k| (format!("QAWARD_LISTEN__{k}"), "127.0.0.1:0".to_string()))
    .collect()
}

/// A command for the binary with no QAWARD_* variables inherited from the test's
/// environment.
pub fn qaward(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("QAWARD_") {
            c.env_remove(k);
        }
    }
    c
}

pub struct Qaward {
    pub child: Child,
    /// `reviewers` → its gRPC address; `gateway-http` → the HTTP address.
    pub addrs: HashMap<String, SocketAddr>,
    pub data_dir: tempfile::TempDir,
}

impl Qaward {
    /// Starts `qaward serve` with `args` and `env`, and waits until it says it is serving.
    pub async fn start(args: &[&str], env: &[(&str, &str)]) -> Qaward {
        Qaward::start_in(tempfile::tempdir().unwrap(), args, env).await
    }

    /// As [`Qaward::start`], on an existing data directory (a restart).
    pub async fn start_in(
        data_dir: tempfile::TempDir,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Qaward {
        let mut cmd: AsyncCommand = qaward(&[]).into();
        cmd.arg("serve")
            .args(args)
            .arg("--data-dir")
            .arg(data_dir.path())
            .envs(free_port_env())
            .env("QAWARD_TELEMETRY__LOG_FILTER", "warn")
            .envs(env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let (child, addrs) = spawn_serving(cmd).await;
        Qaward {
            child,
            addrs,
            data_dir,
        }
    }

    pub fn addr(&self, name: &str) -> SocketAddr {
        self.addrs[name]
    }

    pub async fn channel(&self, name: &str) -> Channel {
        tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr(name)))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// A token from `qaward token`, signed with this instance's local key.
    pub fn token(&self, role: &str, subject: &str) -> String {
        self.token_for(role, subject, &[])
    }

    /// A token with extra `qaward token` arguments (`--programme yunyang`).
    pub fn token_for(&self, role: &str, subject: &str, extra: &[&str]) -> String {
        let out = qaward(&["token", "--role", role, "--subject", subject, "--data-dir"])
            .arg(self.data_dir.path())
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Kills the process with SIGKILL, as a crash would, and returns its data directory.
    pub async fn kill(mut self) -> tempfile::TempDir {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
        self.data_dir
    }

    /// Sends SIGTERM and returns the exit code.
    pub async fn terminate(mut self) -> Option<i32> {
        let pid = self.child.id().unwrap().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("qaward exits after SIGTERM")
            .unwrap();
        status.code()
    }
}

/// Spawns a prepared `qaward serve` command (stdout piped) and waits until it says it is
/// serving; gives the child and the addresses it listens on.
async fn spawn_serving(mut cmd: AsyncCommand) -> (Child, HashMap<String, SocketAddr>) {
    let mut child = cmd.spawn().expect("start qaward");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addrs = HashMap::new();
    let ready = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["listening", name, "grpc", addr] => {
                    addrs.insert(name.to_string(), addr.parse().unwrap());
                }
                ["listening", "gateway", "http", addr] => {
                    addrs.insert("gateway-http".to_string(), addr.parse().unwrap());
                }
                ["qaward", "is", "serving", ..] => return true,
                _ => {}
            }
        }
        false
    })
    .await;
    assert_eq!(ready, Ok(true), "qaward did not report serving");
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addrs)
}

/// The platform as a province runs it: every service its own `qaward serve --target NAME`
/// process on PostgreSQL, sharing one signing key and one simulated clock (a day per second,
/// anchored so every process — and a restarted one — reads the same time), the gateway the
/// only door a client uses.
pub struct Cluster {
    pub data_dir: tempfile::TempDir,
    database_url: String,
    env: Vec<(String, String)>,
    children: HashMap<&'static str, Child>,
    /// `reviewers` → its gRPC address; `gateway` and `gateway-http` → the gateway's ports.
    pub addrs: HashMap<String, SocketAddr>,
}

/// In the order they start: each after the ones it calls.
pub const CLUSTER: [&str; 5] = [
    "reviewers",
    "scoring",
    "notifications",
    "applications",
    "gateway",
];

impl Cluster {
    pub async fn start(database_url: &str, env: &[(&str, &str)]) -> Cluster {
        let anchor = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let mut all: Vec<(String, String)> = vec![
            (
                "QAWARD_CLOCK__START".into(),
                "2026-03-02T09:00:00+08:00".into(),
            ),
            ("QAWARD_CLOCK__SPEED".into(), "86400".into()),
            ("QAWARD_CLOCK__ANCHOR".into(), anchor),
            ("QAWARD_TELEMETRY__LOG_FILTER".into(), "warn".into()),
        ];
        all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut c = Cluster {
            data_dir: tempfile::tempdir().unwrap(),
            database_url: database_url.to_string(),
            env: all,
            children: HashMap::new(),
            addrs: HashMap::new(),
        };
        for name in CLUSTER {
            c.spawn(name).await;
        }
        c
    }

    async fn spawn(&mut self, name: &'static str) {
        let mut cmd: AsyncCommand = qaward(&[]).into();
        cmd.args([
            "serve",
            "--target",
            name,
            "--database-url",
            &self.database_url,
        ])
        .arg("--data-dir")
        .arg(self.data_dir.path())
        .envs(free_port_env())
        .envs(self.env.iter().cloned())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
        // A restarted process takes its old ports back; the others find theirs by name.
        let ports: Vec<(&str, String)> = if name == "gateway" {
            vec![
                ("gateway", "GATEWAY_GRPC".into()),
                ("gateway-http", "GATEWAY_HTTP".into()),
            ]
        } else {
            vec![(name, name.to_uppercase())]
        };
        for (key, var) in ports {
            if let Some(addr) = self.addrs.get(key) {
                cmd.env(format!("QAWARD_LISTEN__{var}"), addr.to_string());
            }
        }
        for upstream in ["applications", "reviewers", "scoring", "notifications"] {
            if let Some(addr) = self.addrs.get(upstream) {
                cmd.env(
                    format!("QAWARD_UPSTREAMS__{}", upstream.to_uppercase()),
                    format!("http://{addr}"),
                );
            }
        }
        let (child, addrs) = spawn_serving(cmd).await;
        self.addrs.extend(addrs);
        self.children.insert(name, child);
    }

    /// SIGKILL, as a crash or an OOM kill would.
    pub async fn kill(&mut self, name: &'static str) {
        let mut child = self.children.remove(name).expect("running");
        child.start_kill().unwrap();
        child.wait().await.unwrap();
    }

    /// Starts a killed process again, on the same ports and data.
    pub async fn restart(&mut self, name: &'static str) {
        self.spawn(name).await;
    }

    pub fn gateway_grpc(&self) -> String {
        format!("http://{}", self.addrs["gateway"])
    }

    pub fn gateway_http(&self) -> SocketAddr {
        self.addrs["gateway-http"]
    }

    /// Tokens signed with the cluster's key, for the demo's walk.
    pub fn tokens(&self) -> qaward_demo::Tokens {
        let key = qaward_kit::auth::LocalKey::load_or_create(self.data_dir.path()).unwrap();
        qaward_demo::Tokens::new(key, qaward_kit::config::Config::default().auth)
    }

    /// `qaward audit verify` of every service's trail, as the ops guide says to run it.
    pub fn audit_intact(&self) -> Vec<String> {
        ["applications", "reviewers", "scoring", "notifications"]
            .iter()
            .map(|target| {
                let out = qaward(&["audit", "verify", "--target", target])
                    .args(["--database-url", &self.database_url, "--data-dir"])
                    .arg(self.data_dir.path())
                    // The cluster's settings, the owner's URL among them.
                    .envs(self.env.iter().cloned())
                    .output()
                    .unwrap();
                let said = String::from_utf8_lossy(&out.stdout).to_string();
                assert!(
                    out.status.success() && said.contains("audit trail intact"),
                    "{target}: {said}{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                said.trim().to_string()
            })
            .collect()
    }
}

/// The health status of `service` at `channel` (1 = SERVING).
pub async fn health(channel: Channel, service: &str) -> i32 {
    tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: service.to_string(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}

/// The services reflection lists at `channel`.
pub async fn reflected_services(channel: Channel) -> Vec<String> {
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let response = stream.message().await.unwrap().unwrap();
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
            names.sort();
            names
        }
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

/// Adds a bearer token to a request.
pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

/// `CheckConsistency` on the walk's cycle until the services agree and no event waits (issue
/// 24), as every scenario ends; how long it took. Fails after 60 s with the last report.
pub async fn services_agree(w: &qaward_demo::Walk) -> std::time::Duration {
    let app = w.app(0);
    let cycle = app.split("/applications/").next().unwrap().to_string();
    services_agree_on(w.door(), w.office_token(), &cycle).await
}

/// As [`services_agree`], for a named cycle.
pub async fn services_agree_on(
    door: &qaward_demo::Door,
    office: &str,
    cycle: &str,
) -> std::time::Duration {
    use qaward_proto::qaward::applications::v1 as pb;
    let started = std::time::Instant::now();
    loop {
        let report = qaward_demo::call!(
            door.apps,
            check_consistency,
            office,
            pb::CheckConsistencyRequest {
                cycle: cycle.to_string()
            }
        );
        if let Ok(r) = &report
            && r.disagreements.is_empty()
            && r.events_behind == 0
            && r.follower_error.is_empty()
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "{cycle}: the services still disagree after 60 s: {report:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
