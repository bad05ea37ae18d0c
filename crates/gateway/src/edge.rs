//! Edge protection shared by the gateway's two ports: admission (token, then the caller's rate,
//! then the policy table), and deadlines. A call refused here never reaches a service.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use qaward_kit::{
    auth::{Caller, Role, Verifier},
    config::Config,
    policy::Policy,
    security,
    server::come_back_later,
};
use tonic::Status;

/// What both ports check before passing a call on.
pub struct Edge {
    pub verifier: Arc<Verifier>,
    /// The whole policy table: every service's rows, the gateway's own included.
    pub policy: &'static Policy,
    limiter: Option<RateLimiter>,
    /// Failed authentications per client address (`gateway.failed_auth_per_second`).
    failures: Option<RateLimiter>,
    /// The longest a call may run (`server.request_timeout_ms`).
    pub max_timeout: Duration,
    /// Browser origins the HTTP port answers CORS for.
    pub cors_origins: Vec<String>,
    /// The largest message passed on (`server.max_message_bytes`).
    pub max_message_bytes: usize,
    /// Proxies whose `X-Forwarded-For` is believed (`gateway.trusted_proxies`).
    trusted_proxies: Vec<IpAddr>,
    /// Request bytes held at once for unary calls passed on (`gateway.max_buffered_bytes`).
    pub buffered: Arc<tokio::sync::Semaphore>,
    /// The HTTP port's own limits: request head size, body wait, requests in flight.
    pub http_max_header_bytes: usize,
    pub http_body_timeout: Duration,
    pub http_in_flight: Arc<tokio::sync::Semaphore>,
}

/// Where a call comes from, as the edge sees it: the connection's address (for the security
/// log) and whom its failed authentications count against.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub peer: Option<SocketAddr>,
    failures_key: Option<String>,
}

impl Edge {
    pub fn new(config: &Config, verifier: Arc<Verifier>, policy: &'static Policy) -> Edge {
        let g = &config.gateway;
        Edge {
            verifier,
            policy,
            limiter: RateLimiter::new(g.rate_per_second, g.rate_burst),
            failures: RateLimiter::new(g.failed_auth_per_second, g.failed_auth_burst),
            max_timeout: config.server.request_timeout(),
            cors_origins: g.cors_origins.clone(),
            max_message_bytes: config.server.max_message_bytes,
            trusted_proxies: g.trusted_proxies.clone(),
            buffered: Arc::new(tokio::sync::Semaphore::new(g.max_buffered_bytes)),
            http_max_header_bytes: g.http_max_header_bytes,
            http_body_timeout: Duration::from_millis(g.http_body_timeout_ms.max(1)),
            http_in_flight: Arc::new(tokio::sync::Semaphore::new(
                config.server.max_concurrent_requests,
            )),
        }
    }

    /// The client of a call with `headers` on a connection whose extensions are `extensions`
    /// (either port). Failed authentications count against the connection's address; from a
    /// trusted proxy, against the client it forwards for (the rightmost `X-Forwarded-For`
    /// address that is not itself a trusted proxy), or, when it names none, against the
    /// identity the token claims.
    pub fn client(&self, headers: &http::HeaderMap, extensions: &http::Extensions) -> Client {
        let peer = peer(extensions);
        let failures_key = peer.map(|p| p.ip()).map(|ip| {
            if !self.trusted_proxies.contains(&ip) {
                return format!("addr:{ip}");
            }
            let forwarded = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|a| a.trim().parse::<IpAddr>().ok())
                .collect::<Vec<_>>();
            if let Some(client) = forwarded
                .into_iter()
                .rev()
                .find(|a| !self.trusted_proxies.contains(a))
            {
                return format!("addr:{client}");
            }
            let authorization = headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            match qaward_kit::auth::claimed_identity(authorization) {
                Some(claimed) => format!("claimed:{claimed}"),
                None => format!("addr:{ip}"),
            }
        });
        Client { peer, failures_key }
    }

    /// The caller a call's token names, or UNAUTHENTICATED. A client address (`peer`) that
    /// has failed too often is refused RESOURCE_EXHAUSTED before its token is even read, so a
    /// flood of bad tokens costs little and cannot starve valid callers; each failure counts
    /// against the address, a valid token does not.
    pub fn authenticate(
        &self,
        path: &str,
        authorization: Option<&str>,
        client: &Client,
    ) -> Result<Caller, Status> {
        let (peer, address) = (client.peer, &client.failures_key);
        if let (Some(failures), Some(address)) = (&self.failures, address)
            && let Some(wait) = failures.exhausted(address, Instant::now())
        {
            security::refused(
                security::Kind::Rate,
                TOO_MANY_FAILED_AUTHENTICATIONS,
                path,
                None,
                peer,
            );
            return Err(failed_too_often(wait));
        }
        self.verifier.verify_header(authorization).map_err(|e| {
            if let (Some(failures), Some(address)) = (&self.failures, address) {
                let _ = failures.take(address, Instant::now());
            }
            security::refused(security::Kind::Authentication, &e.reason, path, None, peer);
            e.to_status()
        })
    }

    /// Admits a call to `path` from `peer`: UNAUTHENTICATED without a valid token (and
    /// RESOURCE_EXHAUSTED for an address that failed too often), RESOURCE_EXHAUSTED when the
    /// caller is over its rate, PERMISSION_DENIED when the table refuses its role. A refused
    /// call still counts against the caller's rate, so hammering with a forbidden method is
    /// limited too.
    pub fn admit(
        &self,
        path: &str,
        authorization: Option<&str>,
        client: &Client,
    ) -> Result<Caller, Status> {
        let peer = client.peer;
        let caller = self.authenticate(path, authorization, client)?;
        self.count(&caller).inspect_err(|_| {
            security::refused(
                security::Kind::Rate,
                RATE_LIMITED,
                path,
                Some(&caller),
                peer,
            );
        })?;
        self.policy
            .check(path, &caller)
            .and_then(|()| not_a_service(&caller))
            .map_err(|e| {
                security::refused(security::Kind::Policy, &e.reason, path, Some(&caller), peer);
                e.to_status()
            })?;
        Ok(caller)
    }

    /// Counts one call against the caller's rate: RESOURCE_EXHAUSTED with the time to wait
    /// when it is over.
    pub fn count(&self, caller: &Caller) -> Result<(), Status> {
        if let Some(limiter) = &self.limiter {
            let key = format!("{}:{}", caller.role.as_str(), caller.identity());
            limiter.take(&key, Instant::now()).map_err(rate_limited)?;
        }
        Ok(())
    }

    /// How long the call may run: its `grpc-timeout` header, at most `max_timeout`.
    pub fn timeout(&self, headers: &http::HeaderMap) -> Result<Duration, Status> {
        match headers.get("grpc-timeout") {
            None => Ok(self.max_timeout),
            Some(v) => v
                .to_str()
                .ok()
                .and_then(parse_grpc_timeout)
                .map(|t| t.min(self.max_timeout))
                .ok_or_else(|| {
                    Status::invalid_argument(
                        "grpc-timeout must be 1-8 digits and a unit (H, M, S, m, u, n)",
                    )
                }),
        }
    }
}

/// The answer when the service did not answer within `timeout`. The client channel enforces
/// the same `grpc-timeout` and may give up first (as CANCELLED "Timeout expired", or a
/// transport error); whichever fires, past the deadline the caller is told
/// DEADLINE_EXCEEDED.
pub fn deadline_exceeded(service: &str, timeout: Duration) -> Status {
    Status::deadline_exceeded(format!(
        "{service} did not answer within {} ms",
        timeout.as_millis()
    ))
}

pub use qaward_kit::upstream::parse_grpc_timeout;

/// `grpc-timeout` for what is left of a deadline, in milliseconds (rounded up, at least 1).
pub fn grpc_timeout_value(left: Duration) -> String {
    format!("{}m", left.as_millis().clamp(1, 99_999_999))
}

/// The reason of a refusal for a caller over its rate.
pub const RATE_LIMITED: &str = "RATE_LIMITED";

/// The answer to a caller over its rate: RESOURCE_EXHAUSTED with reason `RATE_LIMITED` and the
/// time to wait (`google.rpc.RetryInfo`; the HTTP port also sends `Retry-After`).
pub fn rate_limited(wait: Duration) -> Status {
    come_back_later(RATE_LIMITED, "too many calls from this caller", wait)
}

/// The `service` role is a qaward service acting on its own account (an outbox relay). Such
/// calls go from service to service directly, never through the public edge: a service
/// credential that leaked is refused here whatever the method's row says.
fn not_a_service(caller: &Caller) -> Result<(), qaward_kit::Error> {
    if caller.role == Role::Service {
        return Err(qaward_kit::Error::new(
            qaward_kit::ErrorCode::PermissionDenied,
            qaward_kit::auth::ROLE_NOT_ALLOWED,
            "the service role is not accepted at the gateway: qaward services call each other directly",
        ));
    }
    Ok(())
}

/// The client address of a call on either port: tonic's listener records it (the gRPC port),
/// axum's `ConnectInfo` carries it (the HTTP port, plain or TLS).
fn peer(extensions: &http::Extensions) -> Option<SocketAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .or_else(|| qaward_kit::server::peer_of(extensions))
}

/// The reason of a refusal for an address whose authentications failed too often.
pub const TOO_MANY_FAILED_AUTHENTICATIONS: &str = "TOO_MANY_FAILED_AUTHENTICATIONS";

/// RESOURCE_EXHAUSTED for an address that failed to authenticate too often, with the time to
/// wait.
pub fn failed_too_often(wait: Duration) -> Status {
    come_back_later(
        TOO_MANY_FAILED_AUTHENTICATIONS,
        "too many failed authentications from this address",
        wait,
    )
}

/// A token bucket per caller: `burst` calls at once, refilled at `per_second`.
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Beyond this many callers remembered, the idle ones (full buckets) are forgotten.
const MAX_REMEMBERED: usize = 10_000;

impl RateLimiter {
    /// No limiter when `per_second` is 0.
    pub fn new(per_second: u32, burst: u32) -> Option<RateLimiter> {
        (per_second > 0).then(|| RateLimiter {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// How long until `key`'s bucket holds a call again, if it is empty now; takes nothing.
    pub fn exhausted(&self, key: &str, now: Instant) -> Option<Duration> {
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let tokens = self.refilled(buckets.get(key)?, now);
        (tokens < 1.0).then(|| self.wait_for_one(tokens))
    }

    /// What `b` holds at `now`: its tokens plus the refill since it was last touched, at most
    /// the burst.
    fn refilled(&self, b: &Bucket, now: Instant) -> f64 {
        (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * self.per_second)
            .min(self.burst)
    }

    /// How long until a bucket holding `tokens` (fewer than one) holds one.
    fn wait_for_one(&self, tokens: f64) -> Duration {
        Duration::from_secs_f64((1.0 - tokens) / self.per_second)
    }

    /// Takes one call from `key`'s bucket, or says how long until one is there.
    pub fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_REMEMBERED && !buckets.contains_key(key) {
            buckets.retain(|_, b| self.refilled(b, now) < self.burst);
        }
        let b = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        b.tokens = self.refilled(b, now);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(self.wait_for_one(b.tokens))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_gets_its_burst_then_its_rate_and_others_are_not_affected() {
        let l = RateLimiter::new(10, 3).unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.take("office:a", t0).is_ok());
        }
        let wait = l.take("office:a", t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        // Another caller has its own bucket.
        assert!(l.take("enterprise:b", t0).is_ok());
        // After the wait, one more call; not two.
        let t1 = t0 + Duration::from_millis(100);
        assert!(l.take("office:a", t1).is_ok());
        assert!(l.take("office:a", t1).is_err());
        // Idle for long: the bucket refills to the burst, no further.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(l.take("office:a", t2).is_ok());
        }
        assert!(l.take("office:a", t2).is_err());
        assert!(RateLimiter::new(0, 10).is_none());
    }

    #[test]
    fn grpc_timeouts_are_read_as_the_protocol_writes_them() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("5n"), Some(Duration::from_nanos(5)));
        for bad in ["", "m", "123456789m", "10x", "-1S", "1.5S", "1 S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
        assert_eq!(grpc_timeout_value(Duration::from_micros(10)), "1m");
        assert_eq!(grpc_timeout_value(Duration::from_millis(1500)), "1500m");
    }

    #[test]
    fn a_rate_refusal_says_how_long_to_wait() {
        let s = rate_limited(Duration::from_millis(250));
        assert_eq!(s.code(), tonic::Code::ResourceExhausted);
        let d = tonic_types::StatusExt::get_error_details(&s);
        assert_eq!(d.error_info().unwrap().reason, "RATE_LIMITED");
        assert_eq!(
            d.retry_info().unwrap().retry_delay,
            Some(Duration::from_millis(250))
        );
    }
}
