//! The sections only one service reads — the applications service's evidence store, the
//! gateway's edge, the notifications service's channels — kept here until each service crate
//! owns its own section.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use super::Secret;

/// Where the applications service keeps evidence files: under `data_dir/blobs` by
/// default, or in an S3-compatible object store (MinIO, Ceph, a cloud's object storage) when
/// `s3.bucket` is set. Either way a file is stored once, under its SHA-256.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Blobs {
    pub s3: S3,
}

/// An S3-compatible bucket, addressed path-style (`{endpoint}/{bucket}/{key}`) and signed with
/// AWS Signature Version 4.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct S3 {
    /// `https://s3.cn-north-1.amazonaws.com.cn`, `http://minio.qaward.svc:9000`.
    pub endpoint: String,
    /// Empty: evidence stays on the local filesystem.
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: Secret<String>,
    /// Prepended to every key: `qaward/evidence/`.
    pub prefix: String,
    pub timeout_ms: u64,
}

impl Default for S3 {
    fn default() -> Self {
        S3 {
            endpoint: String::new(),
            bucket: String::new(),
            region: "us-east-1".to_string(),
            access_key_id: String::new(),
            secret_access_key: Secret::default(),
            prefix: String::new(),
            timeout_ms: 60_000,
        }
    }
}

/// What the gateway applies at the edge, on both its ports.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Gateway {
    /// Calls per second each caller (token subject and role) may make, sustained; beyond it
    /// RESOURCE_EXHAUSTED / HTTP 429 with the time to wait. 0: no limit.
    pub rate_per_second: u32,
    /// Calls a caller may make at once after being idle (the bucket's size).
    pub rate_burst: u32,
    /// Failed authentications per second one client address may make, sustained: past it the
    /// address's calls are refused (RESOURCE_EXHAUSTED / HTTP 429) before any token is
    /// verified, so a flood of bad tokens cannot take the verifier from valid callers. A valid
    /// token costs nothing here. 0: no limit.
    pub failed_auth_per_second: u32,
    /// Failed authentications an address may make at once after being quiet.
    pub failed_auth_burst: u32,
    /// Browser origins allowed to call the HTTP port (CORS), exactly as the browser sends them
    /// (`https://zwfw.yunyang.gov.cn`). Empty: no cross-origin calls.
    pub cors_origins: Vec<String>,
    /// Addresses of proxies in front of the gateway (the e-government platform's egress, a
    /// load balancer) whose `X-Forwarded-For` is believed. Failed authentications from such
    /// an address count against the client it forwards for (the rightmost address not itself
    /// a trusted proxy), or, when it names none, against the issuer and subject the token
    /// claims; so one bad client behind the platform cannot lock out everyone behind it.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Request bytes the gateway holds in memory at once for unary gRPC calls it passes on;
    /// past it a call is refused RESOURCE_EXHAUSTED (OVERLOADED, retry in a second) rather
    /// than read. Streams (evidence uploads) are not held.
    pub max_buffered_bytes: usize,
    /// The largest request head (all header names and values) the HTTP port reads; larger is
    /// 431.
    pub http_max_header_bytes: usize,
    /// How long the HTTP port waits for a request body to arrive (milliseconds); slower is
    /// 408.
    pub http_body_timeout_ms: u64,
}

impl Default for Gateway {
    fn default() -> Self {
        Gateway {
            rate_per_second: 50,
            rate_burst: 100,
            failed_auth_per_second: 5,
            failed_auth_burst: 50,
            cors_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            max_buffered_bytes: 64 * 1024 * 1024,
            http_max_header_bytes: 16 * 1024,
            http_body_timeout_ms: 10_000,
        }
    }
}

/// The notifications service: its delivery workers and channels.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Notifications {
    /// Delivery workers taking due deliveries from the durable queue.
    pub workers: usize,
    /// Attempts before a delivery becomes a dead letter.
    pub max_attempts: u32,
    /// First retry delay (milliseconds); doubles per attempt, with jitter, up to the maximum.
    pub base_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// How often idle workers look for due deliveries (scheduled sends, retries).
    pub poll_ms: u64,
    /// How long a worker holds a claimed delivery before another may take it over.
    pub lease_ms: u64,
    /// Sends per second and channel, across the workers of this process; 0: unlimited.
    pub rate_per_second: ChannelRates,
    pub smtp: Smtp,
    /// The county platform's webhook for notifications.
    pub webhook: SignedHttp,
    /// The HTTP SMS gateway, called on the same signed mechanism as the webhook.
    pub sms: SignedHttp,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelRates {
    pub inbox: u32,
    pub email: u32,
    pub webhook: u32,
    pub sms: u32,
}

/// An SMTP relay. Empty `host`: email is not configured, and email deliveries go to the dead
/// letters with that reason (requeue them once it is).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// Extra root certificate (PEM) to trust, for a relay with a private CA.
    pub ca_file: Option<PathBuf>,
    /// Authenticate when non-empty (over TLS only, unless `tls = "none"`).
    pub username: String,
    pub password: Secret<String>,
    /// The From header: `云阳县县长质量奖办公室 <award@county.gov.cn>`.
    pub from: String,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP: a relay on the same host or a test server only.
    None,
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// An HTTP(S) endpoint that receives signed JSON: `X-Qaward-Timestamp`, `X-Qaward-Signature`
/// (`sha256=` HMAC-SHA256 of `timestamp.body` with `secret`) and `Idempotency-Key` headers.
/// Empty `url`: the channel is not configured.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SignedHttp {
    pub url: String,
    pub secret: Secret<String>,
    pub timeout_ms: u64,
}

impl Default for Notifications {
    fn default() -> Self {
        Notifications {
            workers: 4,
            max_attempts: 8,
            base_backoff_ms: 2_000,
            max_backoff_ms: 3_600_000,
            poll_ms: 500,
            lease_ms: 60_000,
            rate_per_second: ChannelRates::default(),
            smtp: Smtp::default(),
            webhook: SignedHttp::default(),
            sms: SignedHttp::default(),
        }
    }
}

impl Default for SignedHttp {
    fn default() -> Self {
        SignedHttp {
            url: String::new(),
            secret: Secret::default(),
            timeout_ms: 10_000,
        }
    }
}

impl Default for ChannelRates {
    fn default() -> Self {
        ChannelRates {
            inbox: 0,
            email: 20,
            webhook: 200,
            sms: 20,
        }
    }
}

impl Default for Smtp {
    fn default() -> Self {
        Smtp {
            host: String::new(),
            port: 587,
            tls: SmtpTls::Starttls,
            ca_file: None,
            username: String::new(),
            password: Secret::default(),
            from: String::new(),
            timeout_ms: 30_000,
        }
    }
}
