//! Typed configuration in three layers: built-in defaults that run as they are, then an
//! optional TOML file, then `QAWARD_*` environment variables (`QAWARD_DATA_DIR`,
//! `QAWARD_DATABASE_URL`, `QAWARD_LISTEN__REVIEWERS`, `QAWARD_AUTH__AUDIENCE`, ...: a double
//! underscore steps into a section). Secrets are wrapped in [`Secret`] and masked wherever the
//! configuration is printed or logged.

mod at_rest;
mod common;
mod network;
mod services;

use std::{fmt, net::SocketAddr, path::PathBuf};

use serde::{Deserialize, Serialize};

pub use at_rest::*;
pub use common::*;
pub use network::*;
pub use services::*;

/// The prefix of every environment variable that configures qaward.
pub const ENV_PREFIX: &str = "QAWARD_";

/// Environment variables with the prefix that are not configuration keys: the file to read
/// (`--config`), and settings of the test and benchmark harnesses.
const ENV_NOT_CONFIG: &[&str] = &[
    "QAWARD_CONFIG",
    "QAWARD_CHECK_TOKEN",
    "QAWARD_TARGETS",
    "QAWARD_TEST_DATABASE_URL",
    "QAWARD_WRITE_VECTORS",
    "QAWARD_BENCH_DIAG",
    "QAWARD_TEST_S3_SERVER",
    "QAWARD_TEST_PYTHON",
    "QAWARD_FUZZ_CASES",
    // The compose file's own variables (deploy/compose.yaml), which an operator's shell holds
    // while it also runs `qaward token`.
    "QAWARD_IMAGE",
    "QAWARD_POSTGRES_IMAGE",
    "QAWARD_PUBLISH_ADDRESS",
    "QAWARD_HTTP_PORT",
    "QAWARD_GRPC_PORT",
    "QAWARD_OTLP_ENDPOINT",
    "QAWARD_CI_TOOLS",
];

/// The secret settings, as environment names without the prefix. Each can also be given as a
/// file: `QAWARD_DATABASE_URL_FILE=/run/secrets/database_url` reads the value from the file
/// (container secrets), its trailing newline dropped.
pub const SECRET_SETTINGS: &[&str] = &[
    "DATABASE_URL",
    "DATABASE_OWNER_URL",
    "BLOBS__S3__SECRET_ACCESS_KEY",
    "NOTIFICATIONS__SMTP__PASSWORD",
    "NOTIFICATIONS__WEBHOOK__SECRET",
    "NOTIFICATIONS__SMS__SECRET",
];

/// A value that must never be printed or logged: `Debug` and `Serialize` show it masked.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }
    /// The secret itself; every call site is a place where it may leak, so keep them few.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"********\"")
    }
}

impl Serialize for Secret<String> {
    /// Masked; an empty secret prints empty, so "not set" stays visible.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { "********" })
    }
}

/// The whole configuration of a qaward process.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where SQLite files, the local signing key and blobs live.
    pub data_dir: PathBuf,
    /// Empty: one SQLite file per service under `data_dir`. `postgres://…`: one PostgreSQL
    /// database, one schema per service. May carry a password, so it is a secret.
    pub database_url: Secret<String>,
    /// PostgreSQL only, optional: the schemas' owner, which runs the migrations (at start, or
    /// `qaward migrate`) and grants `database_url`'s role what a service needs — and on the
    /// audit log only to append (issue 22, item 3). The service itself then connects as that
    /// role, which cannot alter, empty or rewrite the log. Empty: the service's own role owns
    /// its schema (one machine).
    pub database_owner_url: Secret<String>,
    /// Holiday years beyond those built in (2024-2026), in the form of
    /// `crates/kit/data/cn-calendar.toml`; loaded at start, no release needed.
    pub calendar_file: Option<PathBuf>,
    pub listen: Listen,
    pub upstreams: Upstreams,
    pub server: ServerLimits,
    pub auth: Auth,
    pub telemetry: Telemetry,
    pub notifications: Notifications,
    pub blobs: Blobs,
    pub gateway: Gateway,
    pub tls: Tls,
    pub clock: ClockSettings,
    pub privacy: Privacy,
    pub audit: AuditLog,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("qaward-data"),
            database_url: Secret::default(),
            database_owner_url: Secret::default(),
            calendar_file: None,
            listen: Listen::default(),
            upstreams: Upstreams::default(),
            server: ServerLimits::default(),
            auth: Auth::default(),
            telemetry: Telemetry::default(),
            notifications: Notifications::default(),
            blobs: Blobs::default(),
            gateway: Gateway::default(),
            tls: Tls::default(),
            clock: ClockSettings::default(),
            privacy: Privacy::default(),
            audit: AuditLog::default(),
        }
    }
}

/// Why a configuration could not be loaded; one line, for the user.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration file {path} is not valid TOML: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// `QAWARD_<secret>_FILE=<path>` as `QAWARD_<secret>=<the file's content>`; anything else as
/// it is.
fn secret_from_file(name: String, value: String) -> Result<(String, String), ConfigError> {
    let Some(secret) = name
        .strip_prefix(ENV_PREFIX)
        .and_then(|n| n.strip_suffix("_FILE"))
        .filter(|n| SECRET_SETTINGS.contains(n))
    else {
        return Ok((name, value));
    };
    let text = std::fs::read_to_string(&value).map_err(|e| ConfigError::Env {
        name: name.clone(),
        message: format!("cannot read {value}: {e}"),
    })?;
    Ok((
        format!("{ENV_PREFIX}{secret}"),
        text.trim_end_matches(['\n', '\r']).to_string(),
    ))
}

/// An environment value as TOML if it parses as a scalar or array (`8080`, `true`,
/// `["a", "b"]`), else as a plain string (`postgres://…`, `qaward-data`).
fn env_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => match t.remove("v") {
            Some(
                v @ (toml::Value::Integer(_) | toml::Value::Boolean(_) | toml::Value::Array(_)),
            ) => v,
            _ => toml::Value::String(raw.to_string()),
        },
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    match path {
        [] => Err("empty name".to_string()),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => set_path(t, rest, value),
                _ => Err(format!("{first} is not a section")),
            }
        }
    }
}

impl Config {
    /// Where `kind` listens for gRPC.
    pub fn listen_addr(&self, kind: ServiceKind) -> SocketAddr {
        match kind {
            ServiceKind::Gateway => self.listen.gateway_grpc,
            ServiceKind::Applications => self.listen.applications,
            ServiceKind::Reviewers => self.listen.reviewers,
            ServiceKind::Scoring => self.listen.scoring,
            ServiceKind::Notifications => self.listen.notifications,
        }
    }

    /// How another process reaches `kind`.
    pub fn upstream_url(&self, kind: ServiceKind) -> String {
        let configured = match kind {
            ServiceKind::Gateway => None,
            ServiceKind::Applications => self.upstreams.applications.clone(),
            ServiceKind::Reviewers => self.upstreams.reviewers.clone(),
            ServiceKind::Scoring => self.upstreams.scoring.clone(),
            ServiceKind::Notifications => self.upstreams.notifications.clone(),
        };
        configured
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| local_url(self.listen_addr(kind)))
    }

    /// Defaults, then `file` if given, then the process environment.
    pub fn load(file: Option<&std::path::Path>) -> Result<Config, ConfigError> {
        Config::load_from(file, std::env::vars())
    }

    /// As [`Config::load`], with the environment given explicitly (for tests).
    pub fn load_from(
        file: Option<&std::path::Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table = toml::Table::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            table = text
                .parse::<toml::Table>()
                .map_err(|e| ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: e.message().to_string(),
                })?;
        }
        let mut env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX) && !ENV_NOT_CONFIG.contains(&k.as_str()))
            .map(|(k, v)| secret_from_file(k, v))
            .collect::<Result<_, _>>()?;
        env.sort();
        for (name, value) in env {
            let path: Vec<String> = name[ENV_PREFIX.len()..]
                .split("__")
                .map(str::to_ascii_lowercase)
                .collect();
            set_path(&mut table, &path, env_value(&value)).map_err(|message| ConfigError::Env {
                name: name.clone(),
                message,
            })?;
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what the types alone cannot; run again after any layer changes the values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = self.database_url.expose();
        if !(url.is_empty() || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ConfigError::Invalid(
                "database_url must be a postgres:// URL; leave it empty for SQLite files under data_dir"
                    .to_string(),
            ));
        }
        let owner = self.database_owner_url.expose();
        if !(owner.is_empty()
            || owner.starts_with("postgres://")
            || owner.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid(
                "database_owner_url must be a postgres:// URL (it applies beside a postgres:// database_url)"
                    .to_string(),
            ));
        }
        if self.server.max_concurrent_requests == 0 {
            return Err(ConfigError::Invalid(
                "server.max_concurrent_requests must be at least 1".to_string(),
            ));
        }
        let clock = &self.clock;
        if clock.speed == 0 || clock.speed > 1_000_000 {
            return Err(ConfigError::Invalid(
                "clock.speed must be 1 (real time) to 1000000".to_string(),
            ));
        }
        for (key, value) in [("start", &clock.start), ("anchor", &clock.anchor)] {
            if let Some(value) = value
                && time::OffsetDateTime::parse(
                    value,
                    &time::format_description::well_known::Rfc3339,
                )
                .is_err()
            {
                return Err(ConfigError::Invalid(format!(
                    "clock.{key} {value:?} is not an RFC 3339 time (2027-03-01T09:00:00+08:00)"
                )));
            }
        }
        self.validate_issuers()?;
        if self.audit.checkpoint_minutes == 0 {
            return Err(ConfigError::Invalid(
                "audit.checkpoint_minutes must be at least 1".to_string(),
            ));
        }
        let p = &self.privacy;
        for (key, days) in [
            ("request_log_days", p.request_log_days),
            ("message_days", p.message_days),
            ("delivery_days", p.delivery_days),
            ("draft_days", p.draft_days),
        ] {
            if days == 0 {
                return Err(ConfigError::Invalid(format!(
                    "privacy.{key} must be at least 1 (a retry needs its stored answer; a message its text until it is delivered)"
                )));
            }
        }
        if p.message_days > p.delivery_days {
            return Err(ConfigError::Invalid(format!(
                "privacy.message_days ({}) must not exceed privacy.delivery_days ({}): a message's text goes before its delivery record",
                p.message_days, p.delivery_days
            )));
        }
        let t = &self.tls;
        if t.cert_file.is_some() != t.key_file.is_some() {
            return Err(ConfigError::Invalid(
                "tls.cert_file and tls.key_file go together".to_string(),
            ));
        }
        if t.client_ca_file.is_some() && !t.serves() {
            return Err(ConfigError::Invalid(
                "tls.client_ca_file needs tls.cert_file and tls.key_file: mutual TLS is TLS first"
                    .to_string(),
            ));
        }
        for path in [
            &t.cert_file,
            &t.key_file,
            &t.client_ca_file,
            &t.upstream_ca_file,
        ]
        .into_iter()
        .flatten()
        {
            if let Err(e) = std::fs::metadata(path) {
                return Err(ConfigError::Invalid(format!(
                    "tls: cannot read {}: {e}",
                    path.display()
                )));
            }
        }
        let g = &self.gateway;
        if g.rate_per_second > 0 && g.rate_burst == 0 {
            return Err(ConfigError::Invalid(
                "gateway.rate_burst must be at least 1 when gateway.rate_per_second is set"
                    .to_string(),
            ));
        }
        if let Some(bad) = g
            .cors_origins
            .iter()
            .find(|o| !(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/'))
        {
            return Err(ConfigError::Invalid(format!(
                "gateway.cors_origins: {bad:?} is not an origin (scheme://host[:port], no path)"
            )));
        }
        let s3 = &self.blobs.s3;
        if !s3.bucket.is_empty()
            && (!(s3.endpoint.starts_with("http://") || s3.endpoint.starts_with("https://"))
                || s3.region.is_empty()
                || s3.access_key_id.is_empty()
                || s3.secret_access_key.expose().is_empty())
        {
            return Err(ConfigError::Invalid(
                "blobs.s3: with a bucket, endpoint (http:// or https://), region, access_key_id and secret_access_key are required"
                    .to_string(),
            ));
        }
        let n = &self.notifications;
        if n.workers == 0 || n.max_attempts == 0 || n.base_backoff_ms == 0 {
            return Err(ConfigError::Invalid(
                "notifications.workers, max_attempts and base_backoff_ms must be at least 1"
                    .to_string(),
            ));
        }
        if !n.smtp.host.is_empty() && n.smtp.from.is_empty() {
            return Err(ConfigError::Invalid(
                "notifications.smtp.from is required when notifications.smtp.host is set"
                    .to_string(),
            ));
        }
        for (name, ch) in [("webhook", &n.webhook), ("sms", &n.sms)] {
            if !ch.url.is_empty() {
                if !(ch.url.starts_with("https://") || ch.url.starts_with("http://")) {
                    return Err(ConfigError::Invalid(format!(
                        "notifications.{name}.url must be an http:// or https:// URL"
                    )));
                }
                if ch.secret.expose().len() < 16 {
                    return Err(ConfigError::Invalid(format!(
                        "notifications.{name}.secret must be at least 16 characters when its url is set"
                    )));
                }
            }
        }
        if self.auth.audience.is_empty() || self.auth.issuer.is_empty() {
            return Err(ConfigError::Invalid(
                "auth.issuer and auth.audience must not be empty".to_string(),
            ));
        }
        Ok(())
    }

    /// The effective configuration as TOML, with every secret masked.
    /// Refuses to serve `kinds` in plain text on an address beyond loopback (unless
    /// `server.allow_plaintext`): a token or a personal record sent in clear over a network
    /// can be read on the way. The gateway's HTTP port counts with the gateway.
    pub fn refuse_plaintext_beyond_loopback(&self, kinds: &[ServiceKind]) -> Result<(), String> {
        if self.tls.serves() || self.server.allow_plaintext {
            return Ok(());
        }
        let mut exposed = Vec::new();
        for kind in kinds {
            let mut addrs = vec![(format!("listen.{}", kind.as_str()), self.listen_addr(*kind))];
            if *kind == ServiceKind::Gateway {
                addrs[0].0 = "listen.gateway_grpc".to_string();
                addrs.push(("listen.gateway_http".to_string(), self.listen.gateway_http));
            }
            exposed.extend(
                addrs
                    .into_iter()
                    .filter(|(_, a)| !a.ip().is_loopback())
                    .map(|(k, a)| format!("{k} = {a}")),
            );
        }
        if exposed.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{} would serve plain text beyond loopback: set tls.cert_file and tls.key_file, bind to 127.0.0.1, or set server.allow_plaintext = true where the network is protected otherwise",
            exposed.join(", ")
        ))
    }

    /// Every issuer is named once, has its own keys, and asserts only what an issuer may.
    fn validate_issuers(&self) -> Result<(), ConfigError> {
        let a = &self.auth;
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        let mut seen = vec![a.issuer.as_str(), a.service_issuer.as_str()];
        if a.issuer.is_empty() || a.service_issuer.is_empty() || a.issuer == a.service_issuer {
            return invalid(
                "auth.issuer and auth.service_issuer must be set and differ: only services' own keys may speak for a service".to_string(),
            );
        }
        for (i, o) in a.other_issuers.iter().enumerate() {
            let at = format!("auth.other_issuers[{i}]");
            if o.issuer.is_empty() || seen.contains(&o.issuer.as_str()) {
                return invalid(format!(
                    "{at}.issuer {:?} is empty or names an issuer already configured",
                    o.issuer
                ));
            }
            seen.push(&o.issuer);
            if o.jwks_file.is_some() == o.jwks_url.is_some() {
                return invalid(format!(
                    "{at} needs its own keys: exactly one of jwks_file and jwks_url"
                ));
            }
            if o.roles.is_empty() || o.roles.contains(&crate::auth::Role::Service) {
                return invalid(format!(
                    "{at}.roles must name the roles it may assert, never service"
                ));
            }
            if o.programmes.is_empty() || o.programmes.iter().any(|p| p.is_empty()) {
                return invalid(format!(
                    "{at}.programmes must name the programmes it may speak for"
                ));
            }
        }
        Ok(())
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }

    /// The working-day calendar: the built-in years plus `calendar_file`'s.
    pub fn calendar(&self) -> Result<crate::calendar::Calendar, crate::calendar::CalendarError> {
        match &self.calendar_file {
            Some(path) => crate::calendar::Calendar::with_file(path),
            None => Ok(crate::calendar::Calendar::built_in()),
        }
    }

    /// True when the services keep their data in PostgreSQL.
    pub fn uses_postgres(&self) -> bool {
        !self.database_url.expose().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn r54_retention_days_are_at_least_one_and_texts_go_before_their_records() {
        let c = Config::load_from(None, env(&[])).unwrap();
        let p = &c.privacy;
        assert_eq!(
            (
                p.request_log_days,
                p.message_days,
                p.delivery_days,
                p.draft_days
            ),
            (90, 365, 1095, 90)
        );
        let e = Config::load_from(None, env(&[("QAWARD_PRIVACY__DRAFT_DAYS", "0")])).unwrap_err();
        assert!(e.to_string().contains("privacy.draft_days"), "{e}");
        let e = Config::load_from(
            None,
            env(&[
                ("QAWARD_PRIVACY__MESSAGE_DAYS", "400"),
                ("QAWARD_PRIVACY__DELIVERY_DAYS", "365"),
            ]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("must not exceed"), "{e}");
    }

    #[test]
    fn defaults_run_on_loopback_with_sqlite() {
        let c = Config::load_from(None, env(&[])).unwrap();
        assert_eq!(c.listen.gateway_grpc.to_string(), "127.0.0.1:50051");
        assert_eq!(c.listen.gateway_http.to_string(), "127.0.0.1:8080");
        assert_eq!(c.listen.reviewers.to_string(), "127.0.0.1:50053");
        assert!(!c.uses_postgres());
    }

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("qaward.toml");
        std::fs::write(
            &file,
            "data_dir = \"/srv/qaward\"\n[listen]\nreviewers = \"0.0.0.0:7000\"\n[server]\nmax_concurrent_requests = 64\n",
        )
        .unwrap();
        let c = Config::load_from(
            Some(&file),
            env(&[
                ("QAWARD_LISTEN__REVIEWERS", "127.0.0.1:7001"),
                ("QAWARD_DATABASE_URL", "postgres://app:hunter2@db/qaward"),
                ("QAWARD_TEST_DATABASE_URL", "postgres://ignored"),
                ("QAWARD_CONFIG", "/etc/qaward/qaward.toml"),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/srv/qaward"));
        assert_eq!(c.listen.reviewers.to_string(), "127.0.0.1:7001");
        assert_eq!(c.server.max_concurrent_requests, 64);
        assert!(c.uses_postgres());
        // Secrets never show when the configuration is printed.
        let printed = c.to_toml();
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_with_their_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("qaward.toml");
        std::fs::write(&file, "[listen]\nreviewer = \"127.0.0.1:1\"\n").unwrap();
        let err = Config::load_from(Some(&file), env(&[])).unwrap_err();
        assert!(err.to_string().contains("reviewer"), "{err}");

        let err = Config::load_from(None, env(&[("QAWARD_LISTEN__SCORING", "not-an-address")]))
            .unwrap_err();
        assert!(err.to_string().contains("invalid"), "{err}");

        let err =
            Config::load_from(None, env(&[("QAWARD_DATABASE_URL", "mysql://x")])).unwrap_err();
        assert!(err.to_string().contains("postgres://"), "{err}");
    }

    #[test]
    fn upstreams_default_to_the_listen_address_on_loopback() {
        let c = Config::load_from(
            None,
            env(&[
                ("QAWARD_LISTEN__SCORING", "0.0.0.0:6000"),
                (
                    "QAWARD_UPSTREAMS__REVIEWERS",
                    "http://reviewers.qaward.svc:50053",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.upstream_url(ServiceKind::Scoring),
            "http://127.0.0.1:6000"
        );
        assert_eq!(
            c.upstream_url(ServiceKind::Reviewers),
            "http://reviewers.qaward.svc:50053"
        );
        assert_eq!(
            c.upstream_url(ServiceKind::Notifications),
            "http://127.0.0.1:50055"
        );
        for k in ServiceKind::ALL {
            assert_eq!(ServiceKind::parse(k.as_str()), Some(k));
        }
    }

    #[test]
    fn a_secret_can_come_from_a_file_and_other_settings_named_file_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("database_url");
        std::fs::write(&secret, "postgres://qaward:hunter2@db/qaward\n").unwrap();
        let c = Config::load_from(
            None,
            env(&[
                ("QAWARD_DATABASE_URL_FILE", secret.to_str().unwrap()),
                ("QAWARD_AUTH__JWKS_FILE", "/etc/qaward/jwks.json"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.database_url.expose(),
            "postgres://qaward:hunter2@db/qaward"
        );
        assert_eq!(
            c.auth.jwks_file.as_deref(),
            Some(std::path::Path::new("/etc/qaward/jwks.json"))
        );
        assert!(!c.to_toml().contains("hunter2"));
        let e = Config::load_from(
            None,
            env(&[(
                "QAWARD_NOTIFICATIONS__WEBHOOK__SECRET_FILE",
                "/nonexistent/token",
            )]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("QAWARD_NOTIFICATIONS__WEBHOOK__SECRET_FILE")
                && e.contains("/nonexistent/token"),
            "{e}"
        );
    }

    #[test]
    fn a_listener_beyond_loopback_serves_tls_or_is_refused_unless_plain_text_is_allowed() {
        let mut c = Config::load_from(None, env(&[])).unwrap();
        assert!(
            c.refuse_plaintext_beyond_loopback(&ServiceKind::ALL)
                .is_ok()
        );
        c.listen.gateway_http = "0.0.0.0:8080".parse().unwrap();
        c.listen.scoring = "10.0.0.7:50054".parse().unwrap();
        let e = c
            .refuse_plaintext_beyond_loopback(&ServiceKind::ALL)
            .unwrap_err();
        assert!(e.contains("listen.gateway_http = 0.0.0.0:8080"), "{e}");
        assert!(e.contains("listen.scoring = 10.0.0.7:50054"), "{e}");
        // Only the listeners this process serves count.
        assert!(
            c.refuse_plaintext_beyond_loopback(&[ServiceKind::Reviewers])
                .is_ok()
        );
        c.tls.cert_file = Some("/etc/qaward/tls/tls.crt".into());
        c.tls.key_file = Some("/etc/qaward/tls/tls.key".into());
        assert!(
            c.refuse_plaintext_beyond_loopback(&ServiceKind::ALL)
                .is_ok()
        );
        c.tls = Default::default();
        c.server.allow_plaintext = true;
        assert!(
            c.refuse_plaintext_beyond_loopback(&ServiceKind::ALL)
                .is_ok()
        );
    }

    #[test]
    fn tls_settings_that_cannot_work_are_refused_at_start() {
        let err =
            |pairs: &[(&str, &str)]| Config::load_from(None, env(pairs)).unwrap_err().to_string();
        assert!(err(&[("QAWARD_TLS__CERT_FILE", "/etc/hosts")]).contains("go together"));
        assert!(err(&[("QAWARD_TLS__CLIENT_CA_FILE", "/etc/hosts")]).contains("mutual TLS"));
        assert!(
            err(&[
                ("QAWARD_TLS__CERT_FILE", "/nonexistent/tls.crt"),
                ("QAWARD_TLS__KEY_FILE", "/etc/hosts"),
            ])
            .contains("/nonexistent/tls.crt")
        );
        assert!(
            err(&[("QAWARD_GATEWAY__CORS_ORIGINS", r#"["https://a.example/"]"#)])
                .contains("cors_origins")
        );
    }

    #[test]
    fn the_shipped_example_documents_the_defaults() {
        let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/qaward.example.toml");
        let c = Config::load_from(Some(&example), env(&[])).unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn an_unreadable_file_is_one_line() {
        let err = Config::load_from(Some(std::path::Path::new("/nonexistent/q.toml")), env(&[]))
            .unwrap_err();
        assert!(!err.to_string().contains('\n'));
        assert!(err.to_string().contains("/nonexistent/q.toml"));
    }
}
