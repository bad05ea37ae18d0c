//! Edge protection on the gateway's ports: per-caller rate limits with the time to wait,
//! deadlines carried to the service and enforced, request ids, CORS. The service behind the
//! gateway is a recording stand-in that answers every call NOT_FOUND, or one that never answers.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use qaward::policy;

use qaward_gateway::{Edge, Proxy, http_router};
use qaward_kit::{auth::Role, testing::TestKeys};
use tonic::transport::{Channel, Endpoint};
use tower::ServiceExt;

const SERVICE: &str = "qaward.reviewers.v1.ReviewerService";

type Seen = Arc<Mutex<Vec<http::HeaderMap>>>;

/// A gRPC server that records each call's headers and answers NOT_FOUND.
async fn recording_service() -> (Channel, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let router = axum::Router::new().fallback(move |headers: http::HeaderMap| {
        let record = record.clone();
        async move {
            record.lock().unwrap().push(headers);
            tonic::Status::not_found("nothing here").into_http::<axum::body::Body>()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_routes(tonic::service::Routes::from(router))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    (channel, seen)
}

/// A port that accepts connections and never answers.
async fn silent_service() -> Channel {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy()
}

fn edge(keys: &TestKeys, rate: u32, burst: u32, origins: &[&str]) -> Arc<Edge> {
    let mut config = qaward_kit::config::Config::default();
    config.gateway.rate_per_second = rate;
    config.gateway.rate_burst = burst;
    config.gateway.cors_origins = origins.iter().map(|o| o.to_string()).collect();
    config.server.request_timeout_ms = 5_000;
    Arc::new(Edge::new(&config, keys.verifier.clone(), policy()))
}

fn upstreams(channel: Channel) -> HashMap<&'static str, qaward_kit::upstream::Upstream> {
    HashMap::from([(SERVICE, qaward_kit::upstream::network(channel))])
}

fn grpc_call(token: &str, extra: &[(&str, &str)]) -> http::Request<axum::body::Body> {
    let mut b = http::Request::post(format!("/{SERVICE}/GetProgramme"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", format!("Bearer {token}"));
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    // One empty gRPC message: no compression, length 0.
    b.body(axum::body::Body::from(vec![0u8, 0, 0, 0, 0]))
        .unwrap()
}

fn http_call(token: &str, extra: &[(&str, &str)]) -> http::Request<axum::body::Body> {
    let mut b = http::Request::get("/v1/registry/programmes/yunyang")
        .header("authorization", format!("Bearer {token}"));
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    b.body(axum::body::Body::empty()).unwrap()
}

async fn json(r: axum::response::Response) -> serde_json::Value {
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    serde_json::from_slice(&bytes).unwrap_or_default()
}

fn grpc_code<B>(r: &http::Response<B>) -> Option<i32> {
    r.headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn a_caller_over_its_rate_is_told_to_wait_on_both_ports_and_others_are_not() {
    let keys = TestKeys::new();
    let (channel, seen) = recording_service().await;
    let edge = edge(&keys, 1, 2, &[]);
    let proxy = Proxy::new(upstreams(channel.clone()), edge.clone());
    let router = http_router(upstreams(channel), edge).unwrap();
    let office = keys.token_for("office-1", Role::Office, "yunyang");

    // The burst of two: one over gRPC, one over HTTP (one bucket for both ports).
    let r = proxy
        .clone()
        .oneshot(grpc_call(&office, &[]))
        .await
        .unwrap();
    assert_eq!(grpc_code(&r), Some(tonic::Code::NotFound as i32));
    let r = router
        .clone()
        .oneshot(http_call(&office, &[]))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // The third, at once: refused at the edge with the time to wait.
    let r = router
        .clone()
        .oneshot(http_call(&office, &[]))
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    let body = json(r).await;
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(body["error"]["details"][0]["reason"], "RATE_LIMITED");
    assert_eq!(
        body["error"]["details"][1]["@type"],
        "type.googleapis.com/google.rpc.RetryInfo"
    );
    let r = proxy
        .clone()
        .oneshot(grpc_call(&office, &[]))
        .await
        .unwrap();
    assert_eq!(grpc_code(&r), Some(tonic::Code::ResourceExhausted as i32));
    assert_eq!(
        seen.lock().unwrap().len(),
        2,
        "refused calls reached the service"
    );

    // Another caller is not held back by the first.
    let supervisor = keys.token_for("supervisor-1", Role::Supervisor, "yunyang");
    let r = proxy.oneshot(grpc_call(&supervisor, &[])).await.unwrap();
    assert_eq!(grpc_code(&r), Some(tonic::Code::NotFound as i32));
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn the_service_gets_the_callers_deadline_at_most_the_servers_and_the_request_id() {
    let keys = TestKeys::new();
    let (channel, seen) = recording_service().await;
    let edge = edge(&keys, 0, 0, &[]);
    let proxy = Proxy::new(upstreams(channel.clone()), edge.clone());
    let router = http_router(upstreams(channel), edge).unwrap();
    let office = keys.token_for("office-1", Role::Office, "yunyang");
    let timeout_ms = |h: &http::HeaderMap| -> u64 {
        let v = h["grpc-timeout"].to_str().unwrap();
        let d = qaward_gateway::edge::parse_grpc_timeout(v).unwrap();
        d.as_millis() as u64
    };

    proxy
        .clone()
        .oneshot(grpc_call(&office, &[("grpc-timeout", "2S")]))
        .await
        .unwrap();
    proxy
        .clone()
        .oneshot(grpc_call(&office, &[("grpc-timeout", "1H")]))
        .await
        .unwrap();
    proxy.oneshot(grpc_call(&office, &[])).await.unwrap();
    let r = router
        .clone()
        .oneshot(http_call(
            &office,
            &[("grpc-timeout", "1500m"), ("x-request-id", "platform-42")],
        ))
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "platform-42");
    // Without an id of its own the caller gets a new one.
    let r = router.oneshot(http_call(&office, &[])).await.unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 36, "{id}");

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 5);
    let t: Vec<u64> = seen.iter().map(timeout_ms).collect();
    assert!((1_900..=2_000).contains(&t[0]), "{t:?}");
    assert!(
        t[1] <= 5_000 && t[1] > 4_000,
        "capped at the server's limit: {t:?}"
    );
    assert!(t[2] <= 5_000 && t[2] > 4_000, "{t:?}");
    assert!(t[3] <= 1_500 && t[3] > 1_000, "{t:?}");
    assert_eq!(seen[3]["x-request-id"], "platform-42");
    assert_eq!(seen[4]["x-request-id"], id.as_str());
}

#[tokio::test]
async fn a_service_that_does_not_answer_in_time_is_a_deadline_exceeded_not_a_hang() {
    let keys = TestKeys::new();
    let channel = silent_service().await;
    let edge = edge(&keys, 0, 0, &[]);
    let proxy = Proxy::new(upstreams(channel.clone()), edge.clone());
    let router = http_router(upstreams(channel), edge).unwrap();
    let office = keys.token_for("office-1", Role::Office, "yunyang");

    let started = Instant::now();
    let r = proxy
        .oneshot(grpc_call(&office, &[("grpc-timeout", "300m")]))
        .await
        .unwrap();
    assert_eq!(
        grpc_code(&r),
        Some(tonic::Code::DeadlineExceeded as i32),
        "{:?}",
        r.headers().get("grpc-message")
    );
    let r = router
        .oneshot(http_call(&office, &[("grpc-timeout", "300m")]))
        .await
        .unwrap();
    let status = r.status();
    assert_eq!(status, 504, "{}", json(r).await);
    assert!(started.elapsed() < Duration::from_secs(4));

    // A malformed deadline is the caller's error, named.
    let keys = TestKeys::new();
    let router = http_router(upstreams(silent_service().await), edge_of(&keys)).unwrap();
    let token = keys.token_for("office-1", Role::Office, "yunyang");
    let r = router
        .oneshot(http_call(&token, &[("grpc-timeout", "soon")]))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        json(r).await["error"]["message"]
            .as_str()
            .unwrap()
            .contains("grpc-timeout")
    );
}

fn edge_of(keys: &TestKeys) -> Arc<Edge> {
    edge(keys, 0, 0, &[])
}

#[tokio::test]
async fn browsers_from_configured_origins_may_call_and_others_get_no_cors_headers() {
    let keys = TestKeys::new();
    let (channel, seen) = recording_service().await;
    let router = http_router(
        upstreams(channel),
        edge(&keys, 0, 0, &["https://zwfw.yunyang.gov.cn"]),
    )
    .unwrap();
    let preflight = |origin: &str| {
        http::Request::builder()
            .method("OPTIONS")
            .uri("/v1/registry/programmes/yunyang")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let r = router
        .clone()
        .oneshot(preflight("https://zwfw.yunyang.gov.cn"))
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://zwfw.yunyang.gov.cn"
    );
    assert!(
        r.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    let r = router
        .clone()
        .oneshot(preflight("https://evil.example"))
        .await
        .unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));

    let office = keys.token_for("office-1", Role::Office, "yunyang");
    let r = router
        .oneshot(http_call(
            &office,
            &[("origin", "https://zwfw.yunyang.gov.cn")],
        ))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://zwfw.yunyang.gov.cn"
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "a preflight reached the service"
    );
}

/// A flood of bad tokens from one address (issue 21: 3,000 in 3 s slowed every other caller
/// 11×) is refused before verification once the address has failed `failed_auth_burst` times,
/// on both ports, with the time to wait; another address, and valid callers elsewhere, are not
/// touched.
#[tokio::test]
async fn an_address_that_keeps_failing_to_authenticate_is_refused_before_verification() {
    let keys = TestKeys::new();
    let mut config = qaward_kit::config::Config::default();
    config.gateway.rate_per_second = 0;
    config.gateway.failed_auth_per_second = 1;
    config.gateway.failed_auth_burst = 3;
    let edge = Arc::new(Edge::new(&config, keys.verifier.clone(), policy()));
    let (channel, _) = recording_service().await;
    let router = http_router(upstreams(channel.clone()), edge.clone()).unwrap();
    let proxy = Proxy::new(upstreams(channel), edge);
    let flooder: std::net::SocketAddr = "10.9.9.9:40000".parse().unwrap();
    let bystander: std::net::SocketAddr = "10.1.1.1:40000".parse().unwrap();
    let from = |peer: std::net::SocketAddr, token: &str| {
        let mut r = http::Request::get("/v1/registry/programmes/yunyang")
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .unwrap();
        r.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        r
    };
    for _ in 0..3 {
        let r = router
            .clone()
            .oneshot(from(flooder, "not.a.token"))
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = router
        .clone()
        .oneshot(from(flooder, "not.a.token"))
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key(http::header::RETRY_AFTER));
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        json["error"]["details"][0]["reason"], "TOO_MANY_FAILED_AUTHENTICATIONS",
        "{json}"
    );
    // The gRPC port shares the count: the address is refused there too.
    let mut call = grpc_call("not.a.token", &[]);
    call.extensions_mut()
        .insert(axum::extract::ConnectInfo(flooder));
    let r = proxy.clone().oneshot(call).await.unwrap();
    assert_eq!(
        r.headers().get("grpc-status").and_then(|v| v.to_str().ok()),
        Some("8")
    );
    // Another address is untouched: a valid token is served, a bad one is just 401.
    let office = keys.token_for("office-1", Role::Office, "yunyang");
    let r = router
        .clone()
        .oneshot(from(bystander, &office))
        .await
        .unwrap();
    assert_ne!(r.status(), 429);
    assert_ne!(r.status(), 401);
    let r = router
        .clone()
        .oneshot(from(bystander, "not.a.token"))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}
