//! The sections every service reads: server limits, identity, telemetry, the clock.

use serde::{Deserialize, Serialize};
use std::{path::PathBuf, time::Duration};

/// The clock the services run on: the wall clock, or — for training and demonstrations only —
/// a simulated one that starts at `start` and runs `speed` times faster.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClockSettings {
    /// RFC 3339 (`2027-03-01T09:00:00+08:00`); unset: now.
    pub start: Option<String>,
    /// 1: real time; 86400: a day per second.
    pub speed: u32,
    /// RFC 3339: the real instant at which the simulated clock reads `start`; unset: when the
    /// process starts. Give every process of a multi-process deployment the same value, so
    /// their clocks agree and a restarted process goes on from where the others are.
    pub anchor: Option<String>,
}

impl Default for ClockSettings {
    fn default() -> Self {
        ClockSettings {
            start: None,
            speed: 1,
            anchor: None,
        }
    }
}

/// Limits every server applies.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerLimits {
    /// A request that runs longer is cancelled (milliseconds).
    pub request_timeout_ms: u64,
    /// Requests in flight per service; beyond it, RESOURCE_EXHAUSTED at once, never a queue.
    pub max_concurrent_requests: usize,
    /// Largest request or response message, in bytes. Evidence uploads stream in chunks and
    /// are limited by `blobs` settings, not by this.
    pub max_message_bytes: usize,
    /// How long in-flight calls may take to finish after a shutdown signal (milliseconds).
    pub shutdown_grace_ms: u64,
    /// Connections per backend database pool.
    pub database_max_connections: u32,
    /// Migrate each service's database when it starts (one machine). With several replicas set
    /// it to false and run `qaward migrate` once per release (a Kubernetes Job, a compose
    /// one-shot); a service then refuses to start on a database that is not migrated.
    pub migrate_on_start: bool,
    /// Serve plain text on an address beyond loopback. Refused by default: without
    /// `tls.cert_file` a listener binds to loopback only. Set it only where the network is
    /// protected otherwise (a pod's own network namespace behind a TLS ingress, a test).
    pub allow_plaintext: bool,
}

/// Who may call: bearer JWTs signed with an asymmetric key. Each issuer has its own keys and
/// may assert only what it is granted: a key of one issuer never verifies a token that names
/// another.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Auth {
    /// The county's own issuer (its e-government platform, or the local key): it may assert
    /// every role but `service`, for any programme.
    pub issuer: String,
    /// The own issuer's callers may write the shared reviewer registry (import, relations,
    /// flags): the municipal registry's keeper. Set false where another issuer keeps it.
    pub registry_keeper: bool,
    /// Other issuers accepted too (other award programmes' identity providers), each with its
    /// own keys and the roles and programmes it may speak for.
    pub other_issuers: Vec<OtherIssuer>,
    pub audience: String,
    /// A JWKS file with the own issuer's verification keys. Empty: the local key made in
    /// `data_dir`.
    pub jwks_file: Option<PathBuf>,
    /// A JWKS URL, fetched at start and refreshed every `jwks_refresh_secs`: https://, or
    /// http:// to a loopback address only (a sidecar). The document may be 1 MiB at most.
    pub jwks_url: Option<String>,
    /// PEM certificates of the CA that signed the JWKS server's certificate, for an identity
    /// provider with a private CA. Unset: the web's roots (webpki-roots).
    pub jwks_ca_file: Option<PathBuf>,
    pub jwks_refresh_secs: u64,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
    /// Lifetime of tokens printed by `qaward token`, in seconds.
    pub token_ttl_secs: u64,
    /// The longest lifetime (`exp` − `iat`) of a token accepted, in seconds: a token meant to
    /// last longer is refused whoever signed it.
    pub max_token_lifetime_secs: u64,
    /// The issuer of the tokens qaward services present on their own account (role
    /// `service`, outbox relays): the only issuer that may assert `service`, and it may
    /// assert nothing else.
    pub service_issuer: String,
    /// The services' public keys (a JWKS). Unset: the local service key made in
    /// `data_dir/keys` on first start.
    pub service_jwks_file: Option<PathBuf>,
    /// The private key (Ed25519 PKCS#8) a service signs its own calls with; mount it only
    /// where an outbox relays to another service (the applications service). Unset: the local
    /// service key in `data_dir/keys`.
    pub service_key_file: Option<PathBuf>,
    /// Lifetime of a service's own tokens, in seconds (each call gets a fresh one).
    pub service_token_ttl_secs: u64,
}

/// Another issuer whose tokens are accepted: another award programme's identity provider.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OtherIssuer {
    /// Its `iss`.
    pub issuer: String,
    /// Its keys, as a JWKS file ...
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// ... or a JWKS URL (https://, or http:// to loopback), refreshed like `auth.jwks_url`.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// The roles its tokens may assert (never `service`).
    pub roles: Vec<crate::auth::Role>,
    /// The programmes its tokens may act for: every token it signs names one of them.
    pub programmes: Vec<String>,
    /// Its callers may write the shared reviewer registry.
    #[serde(default)]
    pub registry_keeper: bool,
}

/// Logs and OpenTelemetry export.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Telemetry {
    /// `text` for people, `json` for log collectors.
    pub log_format: LogFormat,
    /// An `EnvFilter` directive; `RUST_LOG` overrides it.
    pub log_filter: String,
    /// OTLP/gRPC endpoint for traces and metrics. Empty: no export, unless
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
    pub otlp_endpoint: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            request_timeout_ms: 30_000,
            max_concurrent_requests: 512,
            max_message_bytes: 4 * 1024 * 1024,
            shutdown_grace_ms: 10_000,
            database_max_connections: 8,
            migrate_on_start: true,
            allow_plaintext: false,
        }
    }
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            issuer: "qaward-local".to_string(),
            registry_keeper: true,
            other_issuers: Vec::new(),
            audience: "qaward".to_string(),
            jwks_file: None,
            jwks_url: None,
            jwks_ca_file: None,
            jwks_refresh_secs: 300,
            leeway_secs: 30,
            token_ttl_secs: 8 * 3600,
            max_token_lifetime_secs: 12 * 3600,
            service_issuer: "qaward-services".to_string(),
            service_jwks_file: None,
            service_key_file: None,
            service_token_ttl_secs: 300,
        }
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            log_format: LogFormat::Text,
            log_filter: "info".to_string(),
            otlp_endpoint: None,
        }
    }
}

impl ClockSettings {
    /// Whether the services run on a simulated clock.
    pub fn simulated(&self) -> bool {
        self.start.is_some() || self.speed > 1
    }
}

impl ServerLimits {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}
