//! The edge under abuse (issue 21): a request head too large (431), a body that never comes
//! (408), more requests in flight than allowed (429 OVERLOADED), a burst of large gRPC
//! messages past the gateway's buffer budget (RESOURCE_EXHAUSTED OVERLOADED), an oversized
//! token (401 TOKEN_TOO_LARGE, never a 500), and failed authentications behind a trusted proxy
//! counted against the client it forwards for, not against everyone behind it.

use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};

use qaward::policy;
use qaward_gateway::{Edge, Proxy, http_router};
use qaward_kit::{auth::Role, config::Config, testing::TestKeys};
use tonic::transport::{Channel, Endpoint};
use tower::ServiceExt;

const SERVICE: &str = "qaward.reviewers.v1.ReviewerService";

/// A gRPC stand-in that answers every call NOT_FOUND.
async fn service() -> Channel {
    let router = axum::Router::new().fallback(|| async {
        tonic::Status::not_found("nothing here").into_http::<axum::body::Body>()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_routes(tonic::service::Routes::from(router))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy()
}

fn config() -> Config {
    let mut config = Config::default();
    config.gateway.rate_per_second = 0;
    config.server.request_timeout_ms = 5_000;
    config
}

async fn ports(config: &Config, keys: &TestKeys) -> (axum::Router, Proxy) {
    let edge = Arc::new(Edge::new(config, keys.verifier.clone(), policy()));
    let channel = service().await;
    let upstreams = || HashMap::from([(SERVICE, qaward_kit::upstream::network(channel.clone()))]);
    (
        http_router(upstreams(), edge.clone()).unwrap(),
        Proxy::new(upstreams(), edge),
    )
}

async fn json(r: axum::response::Response) -> serde_json::Value {
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    serde_json::from_slice(&bytes).unwrap_or_default()
}

fn get(token: &str) -> http::Request<axum::body::Body> {
    http::Request::get("/v1/registry/programmes/yunyang")
        .header("authorization", format!("Bearer {token}"))
        .body(axum::body::Body::empty())
        .unwrap()
}

/// A body that sends nothing and never ends.
fn stalled_body() -> axum::body::Body {
    let stream = futures_util::stream::pending::<Result<bytes::Bytes, std::io::Error>>();
    axum::body::Body::from_stream(stream)
}

fn post_with(token: &str, body: axum::body::Body) -> http::Request<axum::body::Body> {
    http::Request::post("/v1/reviewers:import")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(body)
        .unwrap()
}

#[tokio::test]
async fn a_request_head_over_the_limit_is_431_with_the_same_code_in_its_body() {
    let keys = TestKeys::new();
    let (router, _) = ports(&config(), &keys).await;
    let office = keys.token_for("office-1", Role::Office, "yunyang");
    let mut r = get(&office);
    r.headers_mut()
        .insert("x-padding", "p".repeat(20 * 1024).parse().unwrap());
    let r = router.oneshot(r).await.unwrap();
    assert_eq!(r.status(), 431);
    let body = json(r).await;
    assert_eq!(body["error"]["code"], 431, "{body}");
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT", "{body}");
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_408() {
    let keys = TestKeys::new();
    let mut config = config();
    config.gateway.http_body_timeout_ms = 200;
    let (router, _) = ports(&config, &keys).await;
    let office = keys.token_for("office-1", Role::Office, "yunyang");
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        router.oneshot(post_with(&office, stalled_body())),
    )
    .await
    .expect("answered, not held open")
    .unwrap();
    assert_eq!(r.status(), 408);
    let body = json(r).await;
    assert_eq!(body["error"]["code"], 408, "{body}");
}

#[tokio::test]
async fn past_the_requests_in_flight_the_http_port_says_come_back_later() {
    let keys = TestKeys::new();
    let mut config = config();
    config.server.max_concurrent_requests = 1;
    config.gateway.http_body_timeout_ms = 2_000;
    let (router, _) = ports(&config, &keys).await;
    let office = keys.token_for("office-1", Role::Office, "yunyang");
    // One request holds the only place while its body does not come.
    let held = tokio::spawn(router.clone().oneshot(post_with(&office, stalled_body())));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = router.clone().oneshot(get(&office)).await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key(http::header::RETRY_AFTER));
    let body = json(r).await;
    assert_eq!(
        body["error"]["details"][0]["reason"], "OVERLOADED",
        "{body}"
    );
    // When it is gone, the next is served.
    let _ = held.await;
    let r = router.oneshot(get(&office)).await.unwrap();
    assert_eq!(r.status(), 404);
}

fn grpc(token: &str, message: usize) -> http::Request<axum::body::Body> {
    // GetProgrammeRequest { name: "x" * n } as one uncompressed gRPC message.
    let mut inner = vec![0x0a];
    let mut n = message;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            inner.push(byte);
            break;
        }
        inner.push(byte | 0x80);
    }
    inner.extend(std::iter::repeat_n(b'x', message));
    let mut framed = vec![0u8];
    framed.extend((inner.len() as u32).to_be_bytes());
    framed.extend(inner);
    http::Request::post(format!("/{SERVICE}/GetProgramme"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", format!("Bearer {token}"))
        .body(axum::body::Body::from(framed))
        .unwrap()
}

fn grpc_status<B>(r: &http::Response<B>) -> (Option<String>, String) {
    let h = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    (h("grpc-status"), h("grpc-message").unwrap_or_default())
}

#[tokio::test]
async fn grpc_requests_past_the_buffer_budget_are_refused_not_read() {
    let keys = TestKeys::new();
    let mut config = config();
    config.gateway.max_buffered_bytes = 1024;
    let (_, proxy) = ports(&config, &keys).await;
    let office = keys.token_for("office-1", Role::Office, "yunyang");
    // Within the budget: passed on (the stand-in answers NOT_FOUND).
    let r = proxy.clone().oneshot(grpc(&office, 100)).await.unwrap();
    assert_eq!(grpc_status(&r).0.as_deref(), Some("5"));
    // Larger than what the gateway may hold at once: RESOURCE_EXHAUSTED, come back later.
    let r = proxy.clone().oneshot(grpc(&office, 4000)).await.unwrap();
    let (code, message) = grpc_status(&r);
    assert_eq!(code.as_deref(), Some("8"), "{message}");
    assert!(message.contains("request%20bytes"), "{message}");
    // The budget was given back: the small one passes again.
    let r = proxy.oneshot(grpc(&office, 100)).await.unwrap();
    assert_eq!(grpc_status(&r).0.as_deref(), Some("5"));
}

#[tokio::test]
async fn an_oversized_token_is_401_on_both_ports_never_a_500() {
    let keys = TestKeys::new();
    let (router, proxy) = ports(&config(), &keys).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let big = keys
        .key
        .sign(&qaward_kit::auth::Claims {
            iss: keys.auth.issuer.clone(),
            aud: keys.auth.audience.clone().into(),
            sub: "office-1".into(),
            exp: now + 600,
            iat: now,
            nbf: None,
            role: Role::Office,
            org: Some("o".repeat(24 * 1024)),
            programme: Some("yunyang".into()),
        })
        .unwrap();
    let mut config = config();
    config.gateway.http_max_header_bytes = 64 * 1024;
    let (router_wide, _) = ports(&config, &keys).await;
    drop(router);
    let r = router_wide.oneshot(get(&big)).await.unwrap();
    assert_eq!(r.status(), 401);
    let body = json(r).await;
    assert_eq!(
        body["error"]["details"][0]["reason"], "TOKEN_TOO_LARGE",
        "{body}"
    );
    let r = proxy.oneshot(grpc(&big, 1)).await.unwrap();
    assert_eq!(grpc_status(&r).0.as_deref(), Some("16"));
}

#[tokio::test]
async fn behind_a_trusted_proxy_failures_count_against_the_forwarded_client() {
    let keys = TestKeys::new();
    let mut config = config();
    config.gateway.failed_auth_per_second = 1;
    config.gateway.failed_auth_burst = 3;
    config.gateway.trusted_proxies = vec!["10.0.0.5".parse().unwrap()];
    let (router, _) = ports(&config, &keys).await;
    let platform: SocketAddr = "10.0.0.5:40000".parse().unwrap();
    let from = |forwarded: Option<&str>, token: &str| {
        let mut r = get(token);
        if let Some(f) = forwarded {
            r.headers_mut()
                .insert("x-forwarded-for", f.parse().unwrap());
        }
        r.extensions_mut()
            .insert(axum::extract::ConnectInfo(platform));
        r
    };
    // One client behind the platform floods bad tokens until it is refused...
    for _ in 0..3 {
        let r = router
            .clone()
            .oneshot(from(Some("203.0.113.7"), "not.a.token"))
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = router
        .clone()
        .oneshot(from(Some("203.0.113.7"), "not.a.token"))
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    // ...while another client behind the same platform is not locked out with it. A client
    // cannot escape by writing its own X-Forwarded-For: the rightmost address not a trusted
    // proxy is the one the platform saw.
    let office = keys.token_for("office-1", Role::Office, "yunyang");
    let r = router
        .clone()
        .oneshot(from(Some("198.51.100.1"), &office))
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        404,
        "a valid caller behind the platform is served"
    );
    let r = router
        .clone()
        .oneshot(from(Some("198.51.100.1, 203.0.113.7"), "not.a.token"))
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "the flooder, whatever it prepends");
}
