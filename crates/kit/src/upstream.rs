//! How one qaward process reaches a service: over the network, a tonic channel to where the
//! configuration says the service listens; or, when the service runs in this very process (one
//! `qaward serve`), its own tower stack called in process — no loopback socket, no HTTP/2
//! framing, and nothing else different.
//!
//! The in-process stack is the one the service's listener serves
//! ([`ServiceHost::in_process`](crate::server::ServiceHost::in_process)): the same routes with
//! the same admission (token, policy table, record rules), the same trace layer (the caller's
//! W3C trace context and request id are read from the headers, as on the wire), the same load
//! shedding (one semaphore for both doors), and the same deadline (`grpc-timeout` against
//! `server.request_timeout_ms`, an expiry answered as tonic's server answers it). A request
//! crosses without the caller's extensions, as bytes on a wire would, so the service learns
//! who calls only from the token. Answers and errors are therefore those of the network path;
//! `crates/qaward/tests/in_process.rs` holds the two paths to that, call for call.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use tonic::body::Body;
use tower::util::BoxCloneSyncService;

use crate::{config::ServiceKind, server::ServiceContext};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A service to call with a generated client (`ReviewerServiceClient::new(upstream)`) or to
/// pass a request through to.
pub type Upstream = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, CallError>;

/// Why a call found no answer (the channel's error, an expired deadline). A named type rather
/// than a bare `BoxError`, which generated clients cannot use inside `async fn`s of traits (a
/// higher-ranked `From` the compiler cannot prove). It is its cause to tonic, which finds a
/// status, an expired deadline or a refused connection through `source()`.
#[derive(Debug)]
pub struct CallError(pub BoxError);

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for CallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

fn call_error<E: Into<BoxError>>(e: E) -> CallError {
    CallError(e.into())
}

/// Any service of HTTP requests and responses as an [`Upstream`] (a service's own stack, an
/// HTTP/JSON client transport).
pub fn boxed<S, E>(s: S) -> Upstream
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = E>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    E: Into<BoxError> + 'static,
{
    BoxCloneSyncService::new(tower::ServiceExt::map_err(s, call_error::<E>))
}

/// The services this process serves itself, offered to its other parts as they start.
#[derive(Clone, Default)]
pub struct InProcess(Arc<Mutex<Vec<(ServiceKind, Upstream)>>>);

impl InProcess {
    /// `kind` is served in this process by `stack`; callers connecting from now on call it.
    pub fn offer(&self, kind: ServiceKind, stack: Upstream) {
        let mut served = self.0.lock().unwrap_or_else(|p| p.into_inner());
        served.retain(|(k, _)| *k != kind);
        served.push((kind, stack));
    }

    fn get(&self, kind: ServiceKind) -> Option<Upstream> {
        let served = self.0.lock().unwrap_or_else(|p| p.into_inner());
        served
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, s)| s.clone())
    }
}

/// `kind` as this process should call it: in process when it serves `kind` itself (offered in
/// `ctx.in_process`), else a lazily connected channel to the configured upstream. `timeout`
/// is the caller's own limit on each call (the smaller of it and the request's `grpc-timeout`
/// applies), the same on both paths.
pub fn connect(
    ctx: &ServiceContext,
    kind: ServiceKind,
    timeout: Option<Duration>,
) -> Result<Upstream, String> {
    if let Some(local) = ctx.in_process.get(kind) {
        return Ok(match timeout {
            None => local,
            Some(_) => boxed(Deadline::new(local, timeout)),
        });
    }
    let mut endpoint = crate::tls::upstream_endpoint(&ctx.config, kind)?;
    if let Some(t) = timeout {
        endpoint = endpoint.timeout(t);
    }
    Ok(network(endpoint.connect_lazy()))
}

/// A channel as an [`Upstream`] (a test's loopback service, a configured address).
pub fn network(channel: tonic::transport::Channel) -> Upstream {
    boxed(channel)
}

/// `grpc-timeout` as the gRPC HTTP/2 protocol writes it: `TimeoutValue TimeoutUnit`, at most
/// eight digits.
pub fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The deadline of a call as tonic applies it on both ends of a connection: the smaller of the
/// request's `grpc-timeout` (ignored when malformed) and `limit`; past it the call fails with
/// [`tonic::TimeoutExpired`], which a server answers and a client reports as CANCELLED
/// "Timeout expired".
#[derive(Clone)]
pub struct Deadline<S> {
    inner: S,
    limit: Option<Duration>,
}

impl<S> Deadline<S> {
    pub fn new(inner: S, limit: Option<Duration>) -> Self {
        Deadline { inner, limit }
    }
}

impl<S, B> tower::Service<http::Request<B>> for Deadline<S>
where
    S: tower::Service<http::Request<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let asked = request
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout);
        let limit = match (asked, self.limit) {
            (Some(a), Some(l)) => Some(a.min(l)),
            (a, l) => a.or(l),
        };
        let answer = self.inner.call(request);
        Box::pin(async move {
            match limit {
                None => answer.await.map_err(Into::into),
                Some(t) => match tokio::time::timeout(t, answer).await {
                    Ok(r) => r.map_err(Into::into),
                    Err(_) => Err(Box::new(tonic::TimeoutExpired(())) as BoxError),
                },
            }
        })
    }
}

/// A request as it arrives from a wire: none of the caller's extensions (its peer address, a
/// caller it verified), only what its headers and body say.
#[derive(Clone)]
pub struct AsFromWire<S>(pub S);

impl<S, B> tower::Service<http::Request<B>> for AsFromWire<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        *request.extensions_mut() = http::Extensions::new();
        self.0.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_is_read_as_the_protocol_writes_it() {
        assert_eq!(
            parse_grpc_timeout("1500m"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("7n"), Some(Duration::from_nanos(7)));
        for bad in ["", "m", "123456789m", "12x", "-1S", "1.5S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn the_smaller_of_the_callers_and_the_services_deadline_applies() {
        use tower::ServiceExt;
        let slow = tower::service_fn(|_: http::Request<()>| async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok::<_, std::convert::Infallible>(())
        });
        let asking = |t: &str| {
            http::Request::builder()
                .header("grpc-timeout", t)
                .body(())
                .unwrap()
        };
        // The request asks for less than the limit: its deadline applies.
        let e = Deadline::new(slow, Some(Duration::from_secs(5)))
            .oneshot(asking("10m"))
            .await
            .unwrap_err();
        assert!(e.is::<tonic::TimeoutExpired>());
        assert_eq!(tonic::Status::from_error(e).code(), tonic::Code::Cancelled);
        // The limit is less than the request asks: the limit applies.
        let e = Deadline::new(slow, Some(Duration::from_millis(10)))
            .oneshot(asking("5S"))
            .await
            .unwrap_err();
        assert!(e.is::<tonic::TimeoutExpired>());
        // Enough time on both: the answer.
        Deadline::new(slow, Some(Duration::from_secs(5)))
            .oneshot(asking("not a timeout"))
            .await
            .unwrap();
    }
}
