//! The policy table at the edge: every method, with every role, on both of the gateway's ports.
//! Every service behind the gateway is a port nobody listens on, so an answer other than
//! UNAVAILABLE came from the gateway itself: a pair the table refuses must be refused here,
//! without a call to a service; a pair it allows must be passed on.

use std::collections::HashMap;

use qaward::policy;

use std::sync::Arc;

use qaward_gateway::{Edge, Proxy, http_router, transcode::Routes};
use qaward_kit::{auth::Role, testing::TestKeys};
use tonic::transport::Endpoint;
use tonic_types::StatusExt;
use tower::ServiceExt;

fn nowhere() -> HashMap<&'static str, qaward_kit::upstream::Upstream> {
    policy()
        .services()
        .map(|s| {
            (
                s.service.as_str(),
                qaward_kit::upstream::network(
                    Endpoint::from_static("http://127.0.0.1:1").connect_lazy(),
                ),
            )
        })
        .collect()
}

/// The edge with the rate limit off: these tests make a thousand calls as few callers.
fn edge(keys: &TestKeys) -> Arc<Edge> {
    let mut config = qaward_kit::config::Config::default();
    config.gateway.rate_per_second = 0;
    Arc::new(Edge::new(&config, keys.verifier.clone(), policy()))
}

fn header(r: &http::Response<tonic::body::Body>, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[tokio::test]
async fn every_method_with_every_role_over_grpc_is_admitted_as_the_table_says() {
    let keys = TestKeys::new();
    let proxy = Proxy::new(nowhere(), edge(&keys));
    let logged = qaward_kit::security::refusals(qaward_kit::security::Kind::Policy);
    let mut denied = 0;
    let mut checked = 0;
    for service in policy().services() {
        for rule in &service.rules {
            let path = format!("/{}/{}", service.service, rule.method);
            for role in Role::ALL {
                let token = keys.token("caller-1", role);
                let request = http::Request::post(&path)
                    .header("content-type", "application/grpc")
                    .header("authorization", format!("Bearer {token}"))
                    .body(axum::body::Body::from(vec![0u8, 0, 0, 0, 0]))
                    .unwrap();
                let response = proxy.clone().oneshot(request).await.unwrap();
                let status: i32 = header(&response, "grpc-status")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(-1);
                // The edge refuses the service role whatever the row says: services call
                // each other directly.
                let allowed = rule.roles.contains(&role) && role != Role::Service;
                if !allowed {
                    denied += 1;
                }
                let expected = if allowed {
                    tonic::Code::Unavailable
                } else {
                    tonic::Code::PermissionDenied
                };
                assert_eq!(
                    status,
                    expected as i32,
                    "{path} as {}: {:?}",
                    role.as_str(),
                    header(&response, "grpc-message")
                );
                checked += 1;
            }
        }
    }
    let methods: usize = policy().services().map(|s| s.rules.len()).sum();
    assert_eq!(checked, methods * Role::ALL.len());
    // Every refusal by the table is a security event.
    assert!(
        qaward_kit::security::refusals(qaward_kit::security::Kind::Policy) >= logged + denied,
        "{denied} refusals"
    );
}

#[tokio::test]
async fn every_method_with_every_role_over_http_json_is_admitted_as_the_table_says() {
    let keys = TestKeys::new();
    let router = http_router(nowhere(), edge(&keys)).unwrap();
    let routes = Routes::from_descriptors(qaward_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut checked = 0;
    for route in routes.all() {
        let rule = policy()
            .rule_of(&route.grpc_path)
            .expect("a row for every route");
        let path = route.template.example();
        for role in Role::ALL {
            let token = keys.token("caller-1", role);
            let body = if route.http_method == http::Method::GET {
                ""
            } else {
                "{}"
            };
            let request = http::Request::builder()
                .method(route.http_method.clone())
                .uri(&path)
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {token}"))
                .body(axum::body::Body::from(body))
                .unwrap();
            let response = router.clone().oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let what = format!("{} {path} as {}: {json}", route.http_method, role.as_str());
            if rule.roles.contains(&role) && role != Role::Service {
                // Passed on: the unreachable service answers; or the gateway's own view finds
                // `x` is no name.
                let expected = if route.service == qaward_proto::GATEWAY_SERVICE_NAME {
                    400
                } else {
                    503
                };
                assert_eq!(status, expected, "{what}");
            } else {
                assert_eq!(status, 403, "{what}");
                assert_eq!(json["error"]["status"], "PERMISSION_DENIED", "{what}");
                assert_eq!(
                    json["error"]["details"][0]["reason"], "ROLE_NOT_ALLOWED",
                    "{what}"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, routes.len() * Role::ALL.len());
}

#[tokio::test]
async fn a_refusal_over_grpc_carries_the_reason_and_names_the_roles() {
    let keys = TestKeys::new();
    let proxy = Proxy::new(nowhere(), edge(&keys));
    let token = keys.token("supervisor-1", Role::Supervisor);
    let request = http::Request::post("/qaward.applications.v1.ApplicationService/RecordApproval")
        .header("content-type", "application/grpc")
        .header("authorization", format!("Bearer {token}"))
        .body(axum::body::Body::from(vec![0u8, 0, 0, 0, 0]))
        .unwrap();
    let response = proxy.oneshot(request).await.unwrap();
    let status = tonic::Status::from_header_map(response.headers()).expect("a status");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert_eq!(
        status.get_error_details().error_info().unwrap().reason,
        "ROLE_NOT_ALLOWED"
    );
    assert!(
        status
            .message()
            .contains("role supervisor may not call RecordApproval")
    );
}

/// A 405 and a 413 say the same status in their body as on the response, and a 405 says which
/// methods the path answers (RFC 9110 §15.5.6 asks for `Allow`).
#[tokio::test]
async fn a_wrong_method_and_an_oversized_body_answer_consistently() {
    let keys = TestKeys::new();
    let router = http_router(nowhere(), edge(&keys)).unwrap();
    let token = keys.token_for("office-1", Role::Office, "yunyang");
    let send = |method: &str, body: Vec<u8>| {
        http::Request::builder()
            .method(method)
            .uri("/v1/programmes")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::from(body))
            .unwrap()
    };
    let read = |r: http::Response<axum::body::Body>| async move {
        let status = r.status().as_u16();
        let allow = r
            .headers()
            .get(http::header::ALLOW)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        (status, allow, json)
    };
    let (status, allow, json) =
        read(router.clone().oneshot(send("PUT", vec![])).await.unwrap()).await;
    assert_eq!(status, 405, "{json}");
    assert_eq!(json["error"]["code"], 405, "{json}");
    assert_eq!(allow, "POST, GET", "{json}");
    let big = format!("{{\"displayName\": \"{}\"}}", "x".repeat(5 << 20)).into_bytes();
    let (status, _, json) = read(router.clone().oneshot(send("POST", big)).await.unwrap()).await;
    assert_eq!(status, 413, "{json}");
    assert_eq!(json["error"]["code"], 413, "{json}");
    assert_eq!(
        json["error"]["details"][1]["fieldViolations"][0]["field"], "body",
        "{json}"
    );
}
