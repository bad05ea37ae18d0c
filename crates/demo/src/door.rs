//! How the walk reaches the platform: the gateway only, over gRPC or over HTTP/JSON, with
//! bearer tokens signed by the local key, as the county e-government platform would call it.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use qaward_kit::{
    auth::{LocalKey, Role},
    config::Auth,
};
use qaward_proto::qaward::{
    applications::v1::application_service_client::ApplicationServiceClient,
    gateway::v1::gateway_service_client::GatewayServiceClient,
    notifications::v1::notification_service_client::NotificationServiceClient,
    reviewers::v1::{self as rpb, reviewer_service_client::ReviewerServiceClient},
    scoring::v1::scoring_service_client::ScoringServiceClient,
};
use tonic::{Code, Status};

pub use qaward_gateway::http_client::Transport;
use qaward_gateway::http_client::boxed;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The gateway's gRPC port: every service's contract, passed through.
    Grpc,
    /// The gateway's HTTP port: the same methods as HTTP/JSON (`docs/http.md`).
    HttpJson,
}

/// The generated clients of the services the walk calls, all through one gateway.
#[derive(Clone)]
pub struct Door {
    pub apps: ApplicationServiceClient<Transport>,
    pub reviewers: ReviewerServiceClient<Transport>,
    pub scoring: ScoringServiceClient<Transport>,
    pub notifications: NotificationServiceClient<Transport>,
    /// The gateway's own composed views (dossier, cycle overview).
    pub views: GatewayServiceClient<Transport>,
    pub protocol: Protocol,
    /// Where the gateway is, for the account.
    pub address: String,
}

/// A request id (1-64 of letters, digits, `-`, `_`) naming the step, so a repeated walk step
/// is recognised by the service as the same request (R-50 idempotency).
pub(crate) fn rid(step: &str) -> String {
    use sha2::Digest;
    format!(
        "demo-{}",
        &hex::encode(sha2::Sha256::digest(step.as_bytes()))[..40]
    )
}

impl Door {
    /// each party (name, token) commits to a fresh 256-bit secret from `randomness` (the
    /// operating system's generator in `qaward demo`; a seeded one where a test needs the same
    /// draw every run); the public value, when given, is fixed by the first party (the
    /// office) once every commitment is in; then each reveals, the last reveal executing the
    /// draw. Returns each party's commitment and the draw as the last reveal left it. `step`
    /// names the request ids, so a retried call is done once.
    pub async fn draw_by_parties(
        &self,
        draw: &str,
        parties: &[(&str, String)],
        public_value: Option<&str>,
        step: &str,
        randomness: &dyn qaward_kit::clock::Randomness,
    ) -> Result<(Vec<(String, String)>, Option<rpb::Draw>), Status> {
        let rid = |what: &str| rid(&format!("{draw}-{step}-{what}"));
        let mut secrets = Vec::new();
        let mut commitments = Vec::new();
        for (party, token) in parties {
            let mut bytes = [0u8; 32];
            randomness.fill(&mut bytes);
            let secret = hex::encode(bytes);
            let commitment = qaward_reviewers::domain::entropy::commitment(draw, party, &secret);
            crate::call!(
                self.reviewers,
                commit_draw_entropy,
                token,
                rpb::CommitDrawEntropyRequest {
                    name: draw.to_string(),
                    party: party.to_string(),
                    commitment: commitment.clone(),
                    request_id: rid(&commitment),
                }
            )?;
            secrets.push(secret);
            commitments.push((party.to_string(), commitment));
        }
        if let (Some(value), Some((_, token))) = (public_value, parties.first()) {
            crate::call!(
                self.reviewers,
                fix_draw_public_value,
                token,
                rpb::FixDrawPublicValueRequest {
                    name: draw.to_string(),
                    public_value: value.to_string(),
                    request_id: rid(&format!("public-{}", commitments[0].1)),
                }
            )?;
        }
        let mut last = None;
        for ((party, token), secret) in parties.iter().zip(&secrets) {
            last = crate::call!(
                self.reviewers,
                reveal_draw_entropy,
                token,
                rpb::RevealDrawEntropyRequest {
                    name: draw.to_string(),
                    party: party.to_string(),
                    secret: secret.clone(),
                    request_id: rid(secret),
                }
            )?
            .draw;
        }
        Ok((commitments, last))
    }

    fn over(t: Transport, protocol: Protocol, address: String) -> Door {
        Door {
            apps: ApplicationServiceClient::new(t.clone()),
            reviewers: ReviewerServiceClient::new(t.clone()),
            scoring: ScoringServiceClient::new(t.clone()),
            notifications: NotificationServiceClient::new(t.clone()),
            views: GatewayServiceClient::new(t),
            protocol,
            address,
        }
    }

    /// The gateway's gRPC port at `url` (`http://127.0.0.1:50051`).
    pub async fn grpc(url: &str) -> Result<Door, String> {
        let channel = tonic::transport::Endpoint::from_shared(url.to_string())
            .map_err(|e| format!("{url} is not a URL: {e}"))?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .map_err(|e| {
                format!("cannot reach the gateway at {url}: {e}; is `qaward serve` running?")
            })?;
        Ok(Door::over(boxed(channel), Protocol::Grpc, url.to_string()))
    }

    /// The gateway's HTTP port at `addr`.
    pub fn http(addr: SocketAddr) -> Result<Door, String> {
        let t = qaward_gateway::http_client::HttpJson::new(addr)?;
        Ok(Door::over(
            boxed(t),
            Protocol::HttpJson,
            format!("http://{addr}"),
        ))
    }
}

/// Bearer tokens for every role the walk plays, signed with the platform's local key (the
/// one `qaward token` uses), so the gateway admits them.
#[derive(Clone)]
pub struct Tokens {
    key: Arc<LocalKey>,
    auth: Auth,
}

impl Tokens {
    pub fn new(key: LocalKey, auth: Auth) -> Tokens {
        Tokens {
            key: Arc::new(key),
            auth,
        }
    }

    pub fn issue(
        &self,
        role: Role,
        subject: &str,
        org: Option<&str>,
        programme: Option<&str>,
    ) -> String {
        self.key
            .issue(
                &self.auth,
                time::OffsetDateTime::now_utc(),
                subject,
                role,
                org.map(str::to_string),
                programme.map(str::to_string),
            )
            // Signing with a loaded Ed25519 key does not fail for claims this small.
            .unwrap_or_default()
    }
}

/// A request with the caller's bearer token.
pub fn bearer<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    if let Ok(v) = format!("Bearer {token}").parse() {
        r.metadata_mut().insert("authorization", v);
    }
    r
}

/// How long to wait before trying a call again, or `None` when it should not be: the gateway
/// said the caller is over its rate (`google.rpc.RetryInfo` says how long), or a service was
/// unavailable for a moment (a restart). Every write carries a request id, so a retried write
/// is done once.
pub fn retry_delay(s: &Status) -> Option<Duration> {
    match s.code() {
        Code::ResourceExhausted => {
            let asked = tonic_types::StatusExt::get_error_details(s)
                .retry_info()
                .and_then(|r| r.retry_delay);
            Some(
                asked
                    .unwrap_or(Duration::from_secs(1))
                    .min(Duration::from_secs(5)),
            )
        }
        Code::Unavailable => Some(Duration::from_millis(500)),
        _ => None,
    }
}

/// `call!(client, method, token, request)`: one unary call through the gateway, retried (with
/// the same request id) when the gateway says the caller is over its rate or a service is
/// briefly unavailable, as a well-behaved platform client does (up to 20 tries). Gives the
/// response message or the status.
#[macro_export]
macro_rules! call {
    ($client:expr, $method:ident, $token:expr, $request:expr) => {{
        let request = $request;
        let mut attempts = 0;
        loop {
            let mut client = $client.clone();
            match client
                .$method($crate::door::bearer($token, request.clone()))
                .await
            {
                Err(s) if attempts < 20 && $crate::door::retry_delay(&s).is_some() => {
                    attempts += 1;
                    tokio::time::sleep($crate::door::retry_delay(&s).unwrap_or_default()).await;
                }
                other => break other.map(|r| r.into_inner()),
            }
        }
    }};
}
