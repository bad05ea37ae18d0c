//! gRPC pass-through: the first path segment (`/qaward.reviewers.v1.ReviewerService/...`)
//! names the service; the request goes to that service's channel untouched — once it has been
//! admitted at the edge (bearer token verified, role allowed by the policy table), so a call
//! the gateway can reject never reaches a service (the service admits the relayed token again
//! and applies its record-level rules).

use std::{collections::HashMap, convert::Infallible, pin::Pin, sync::Arc, task::Poll};

use qaward_kit::upstream::Upstream;
use tonic::{Status, body::Body};

use crate::edge::{Edge, deadline_exceeded, grpc_timeout_value};
use tower::ServiceExt;

#[derive(Clone)]
pub struct Proxy {
    upstreams: Arc<HashMap<&'static str, Upstream>>,
    edge: Arc<Edge>,
    /// The largest unary request read whole (`server.max_message_bytes` plus framing).
    max_message: usize,
}

impl Proxy {
    pub fn new(upstreams: HashMap<&'static str, Upstream>, edge: Arc<Edge>) -> Self {
        Proxy {
            upstreams: Arc::new(upstreams),
            max_message: edge.max_message_bytes + 5,
            edge,
        }
    }
}

/// Every method of the contracts by gRPC path: whether it streams its requests, and the
/// message it takes.
fn method(path: &str) -> Option<&'static (bool, prost_reflect::MessageDescriptor)> {
    static METHODS: std::sync::OnceLock<HashMap<String, (bool, prost_reflect::MessageDescriptor)>> =
        std::sync::OnceLock::new();
    METHODS
        .get_or_init(|| {
            let pool = prost_reflect::DescriptorPool::decode(qaward_proto::FILE_DESCRIPTOR_SET)
                .expect("the contracts' descriptor set");
            pool.services()
                .flat_map(|s| s.methods().collect::<Vec<_>>())
                .map(|m| {
                    (
                        format!("/{}/{}", m.parent_service().full_name(), m.name()),
                        (m.is_client_streaming(), m.input()),
                    )
                })
                .collect()
        })
        .get(path)
}

/// Refuses a unary request whose message is not a valid encoding of the method's input:
/// INVALID_ARGUMENT at the edge, rather than a decode failure inside the service. A compressed
/// message is passed on as it is (the service decompresses it).
fn check_message(path: &str, body: &[u8]) -> Result<(), Status> {
    let Some((_, input)) = method(path) else {
        return Ok(());
    };
    let refuse = |why: String| {
        qaward_kit::Error::invalid(
            "request",
            format!("is not a valid {} message: {why}", input.name()),
        )
        .to_status()
    };
    if body.len() < 5 {
        return Err(refuse("no gRPC frame".into()));
    }
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    if body.len() != 5 + len {
        return Err(refuse("the frame's length does not match".into()));
    }
    if body[0] != 0 {
        return Ok(());
    }
    prost_reflect::DynamicMessage::decode(input.clone(), &body[5..])
        .map(|_| ())
        .map_err(|e| refuse(e.to_string()))
}

/// The body of a unary answer read whole, to be returned as the service gave it. An answer with
/// neither a message nor trailers was the service's trailers-only response (an error: its
/// `grpc-status` is in the headers): it must leave as one HEADERS frame with END_STREAM. A
/// `Collected` body does not say it is finished before it is polled, so relayed as it is, hyper
/// would send the headers without END_STREAM and then an empty DATA frame that ends the stream
/// — which grpc-core clients (Python's grpcio, C++, Ruby…) report as UNKNOWN "Stream removed",
/// the status and its details lost.
/// Reads a unary request whole, at most `max` bytes, counting each chunk against the gateway's
/// buffer budget as it arrives: past `max` the call is RESOURCE_EXHAUSTED naming the limit;
/// when the budget is spent (a burst of large requests) it is refused at once with the
/// come-back-later answer instead of being read.
async fn read_held(
    mut body: axum::body::Body,
    max: usize,
    budget: &Arc<tokio::sync::Semaphore>,
) -> Result<(bytes::Bytes, Option<tokio::sync::OwnedSemaphorePermit>), Status> {
    use http_body_util::BodyExt;
    let mut held: Option<tokio::sync::OwnedSemaphorePermit> = None;
    let mut whole = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Status::cancelled(format!("request: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if whole.len() + data.len() > max {
            return Err(Status::resource_exhausted(format!(
                "the request message is larger than {max} bytes (server.max_message_bytes)"
            )));
        }
        let more = u32::try_from(data.len())
            .ok()
            .and_then(|n| budget.clone().try_acquire_many_owned(n).ok())
            .ok_or_else(|| {
                qaward_kit::server::come_back_later(
                    "OVERLOADED",
                    "the gateway holds as many request bytes as it may",
                    std::time::Duration::from_secs(1),
                )
            })?;
        match &mut held {
            Some(h) => h.merge(more),
            None => held = Some(more),
        }
        whole.extend_from_slice(&data);
    }
    Ok((whole.freeze(), held))
}

fn relayed_body(whole: http_body_util::Collected<bytes::Bytes>) -> Body {
    if whole.trailers().is_none() {
        let data = whole.to_bytes();
        if data.is_empty() {
            return Body::empty();
        }
        return Body::new(http_body_util::Full::new(data));
    }
    Body::new(whole)
}

impl tower::Service<http::Request<axum::body::Body>> for Proxy {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<axum::body::Body>) -> Self::Future {
        let service = request
            .uri()
            .path()
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let header = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let client = self.edge.client(request.headers(), request.extensions());
        let admitted = self
            .edge
            .admit(request.uri().path(), header, &client)
            .and_then(|_| self.edge.timeout(request.headers()));
        let timeout = match admitted {
            Ok(t) => t,
            Err(status) => return Box::pin(async move { Ok(status.into_http()) }),
        };
        let max_message = self.max_message;
        let budget = self.edge.buffered.clone();
        let Some(channel) = self.upstreams.get(service.as_str()).cloned() else {
            return Box::pin(async move {
                Ok(Status::unimplemented(format!("unknown service {service:?}")).into_http())
            });
        };
        Box::pin(async move {
            // This future runs inside the gateway's server span: the service's span becomes
            // its child.
            let mut request = request;
            qaward_kit::telemetry::inject_headers(request.headers_mut());
            // The service gets what is left of the call's deadline, never more.
            if let Ok(v) = http::HeaderValue::from_str(&grpc_timeout_value(timeout)) {
                request.headers_mut().insert("grpc-timeout", v);
            }
            let started = std::time::Instant::now();
            // A unary request is read whole before it is passed on, and its answer before it
            // is returned: one message each way, handed over in one piece rather than frame by
            // frame across two HTTP/2 connections (the tail latency of a pass-through under
            // load, docs/benchmarks.md). A streaming request (evidence upload) streams.
            let path = request.uri().path().to_string();
            let streaming = method(&path).is_some_and(|(streams, _)| *streams);
            let call = async {
                // The request's bytes stay counted against the gateway's buffer budget until
                // the answer is back (`_held` lives to the end of the call).
                let (request, _held) = if streaming {
                    (request.map(Body::new), None)
                } else {
                    let (parts, body) = request.into_parts();
                    let (bytes, held) = read_held(body, max_message, &budget).await?;
                    check_message(&path, &bytes)?;
                    let whole = Body::new(http_body_util::Full::new(bytes));
                    (http::Request::from_parts(parts, whole), held)
                };
                let response = channel
                    .oneshot(request)
                    .await
                    .map_err(|e| Status::unavailable(e.to_string()))?;
                if streaming {
                    return Ok(response);
                }
                let (parts, body) = response.into_parts();
                let whole = http_body_util::BodyExt::collect(body)
                    .await
                    .map_err(|e| Status::unavailable(e.to_string()))?;
                Ok::<_, Status>(http::Response::from_parts(parts, relayed_body(whole)))
            };
            match tokio::time::timeout(timeout, call).await {
                Ok(Ok(response)) => Ok(response),
                // The gateway's own refusals: too large, not a valid message.
                Ok(Err(s))
                    if matches!(
                        s.code(),
                        tonic::Code::ResourceExhausted | tonic::Code::InvalidArgument
                    ) =>
                {
                    Ok(s.into_http())
                }
                Ok(Err(_)) | Err(_) if started.elapsed() >= timeout => {
                    Ok(deadline_exceeded(&service, timeout).into_http())
                }
                Err(_) => Ok(deadline_exceeded(&service, timeout).into_http()),
                Ok(Err(e)) => {
                    tracing::warn!(%service, error = %e, "upstream unreachable");
                    Ok(Status::unavailable(format!("{service} is unreachable")).into_http())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The upstream is a port nobody listens on: an answer other than UNAVAILABLE came from the
    /// gateway itself.
    fn proxy(keys: &qaward_kit::testing::TestKeys) -> Proxy {
        let nowhere = qaward_kit::upstream::network(
            tonic::transport::Endpoint::from_static("http://127.0.0.1:1").connect_lazy(),
        );
        let mut upstreams = HashMap::new();
        upstreams.insert("qaward.reviewers.v1.ReviewerService", nowhere);
        let read = qaward_kit::policy::ServicePolicy {
            service: "qaward.reviewers.v1.ReviewerService".into(),
            rules: vec![qaward_kit::policy::Rule {
                method: "GetProgramme".into(),
                roles: vec![
                    qaward_kit::auth::Role::Office,
                    qaward_kit::auth::Role::Supervisor,
                ],
                records: String::new(),
            }],
        };
        let policy = Box::leak(Box::new(qaward_kit::policy::Policy::new(vec![read])));
        let edge = Edge::new(
            &qaward_kit::config::Config::default(),
            keys.verifier.clone(),
            policy,
        );
        Proxy::new(upstreams, Arc::new(edge))
    }

    fn call(token: Option<&str>) -> http::Request<axum::body::Body> {
        let mut b = http::Request::post("/qaward.reviewers.v1.ReviewerService/GetProgramme")
            .header("content-type", "application/grpc");
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        b.body(axum::body::Body::from(vec![0u8, 0, 0, 0, 0]))
            .unwrap()
    }

    fn grpc_status(r: &http::Response<Body>) -> Option<i32> {
        r.headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    }

    #[tokio::test]
    async fn a_trailers_only_answer_is_relayed_as_one_frame_that_ends_the_stream() {
        use http_body::Body as _;
        use http_body_util::BodyExt as _;
        // The service's error: headers only, nothing in the body.
        let whole = http_body_util::Empty::<bytes::Bytes>::new()
            .collect()
            .await
            .unwrap();
        assert!(relayed_body(whole).is_end_stream());

        // A message and its trailers travel on, in that order.
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        let answer = http_body_util::StreamBody::new(futures_util::stream::iter([
            Ok::<_, Infallible>(http_body::Frame::data(bytes::Bytes::from_static(b"abc"))),
            Ok(http_body::Frame::trailers(trailers)),
        ]));
        let mut relayed = relayed_body(answer.collect().await.unwrap());
        assert!(!relayed.is_end_stream());
        let again = (&mut relayed).collect().await.unwrap();
        assert_eq!(again.trailers().unwrap()["grpc-status"], "0");
        assert_eq!(again.to_bytes(), &b"abc"[..]);
    }

    #[tokio::test]
    async fn a_call_without_a_valid_token_is_refused_at_the_edge() {
        let keys = qaward_kit::testing::TestKeys::new();
        let unauthenticated = tonic::Code::Unauthenticated as i32;
        let r = proxy(&keys).oneshot(call(None)).await.unwrap();
        assert_eq!(grpc_status(&r), Some(unauthenticated));
        let r = proxy(&keys)
            .oneshot(call(Some("not.a.token")))
            .await
            .unwrap();
        assert_eq!(grpc_status(&r), Some(unauthenticated));
        // With a good token the call goes on, and finds the upstream down.
        let token = keys.token("office-1", qaward_kit::auth::Role::Office);
        let r = proxy(&keys).oneshot(call(Some(&token))).await.unwrap();
        assert_eq!(grpc_status(&r), Some(tonic::Code::Unavailable as i32));
    }

    #[tokio::test]
    async fn a_message_that_is_not_the_methods_is_refused_at_the_edge() {
        let keys = qaward_kit::testing::TestKeys::new();
        let token = keys.token("office-1", qaward_kit::auth::Role::Office);
        let send = |body: Vec<u8>| {
            http::Request::post("/qaward.reviewers.v1.ReviewerService/GetProgramme")
                .header("content-type", "application/grpc")
                .header("authorization", format!("Bearer {token}"))
                .body(axum::body::Body::from(body))
                .unwrap()
        };
        // A field 1 (name, a string) declared 200 bytes long with 1 byte behind it; a frame
        // longer than its bytes; no frame at all: INVALID_ARGUMENT, the service never called.
        for bad in [
            vec![0u8, 0, 0, 0, 3, 0x0a, 200, 0x41],
            vec![0u8, 0, 0, 0, 9, 0x0a],
            vec![],
        ] {
            let r = proxy(&keys).oneshot(send(bad.clone())).await.unwrap();
            assert_eq!(
                grpc_status(&r),
                Some(tonic::Code::InvalidArgument as i32),
                "{bad:?}"
            );
        }
        // A valid message goes on (and finds the upstream down).
        let r = proxy(&keys)
            .oneshot(send(vec![0u8, 0, 0, 0, 4, 0x0a, 2, b'p', b'1']))
            .await
            .unwrap();
        assert_eq!(grpc_status(&r), Some(tonic::Code::Unavailable as i32));
    }
}
