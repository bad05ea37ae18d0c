//! The gateway's HTTP port: `GET /healthz`, the health of every service behind the gateway as
//! JSON (200 when all serve, 503 otherwise), and every annotated method as HTTP/JSON
//! (`transcode.rs`), authenticated here before anything else.

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::get,
};
use qaward_kit::auth::Verifier;
use tokio::net::TcpListener;
use tonic::{Status, transport::Channel};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::transcode::{self, Routes};

type Upstreams = Arc<HashMap<&'static str, Channel>>;

/// What the HTTP handlers share.
#[derive(Clone)]
struct Edge {
    upstreams: Upstreams,
    routes: Arc<Routes>,
    verifier: Arc<Verifier>,
    openapi: Arc<serde_json::Value>,
}

/// The largest JSON body the gateway reads; evidence files go over gRPC streaming.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Serves the HTTP port until `shutdown` resolves.
pub async fn serve_http(
    listener: TcpListener,
    channels: HashMap<&'static str, Channel>,
    verifier: Arc<Verifier>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let app = router(channels, verifier)?;
    tracing::info!(service = "gateway-http", %addr, "serving");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| format!("gateway HTTP on {addr}: {e}"))
}

/// The HTTP port's routes, over `channels` to the services.
pub fn router(
    channels: HashMap<&'static str, Channel>,
    verifier: Arc<Verifier>,
) -> Result<Router, String> {
    let routes = Routes::from_descriptors(qaward_proto::FILE_DESCRIPTOR_SET)?;
    let openapi = crate::openapi::document(qaward_proto::FILE_DESCRIPTOR_SET, &routes)?;
    let edge = Edge {
        upstreams: Arc::new(channels),
        routes: Arc::new(routes),
        verifier,
        openapi: Arc::new(openapi),
    };
    Ok(Router::new()
        .route("/healthz", get(healthz))
        .route(
            "/openapi.json",
            get(|State(edge): State<Edge>| async move { Json(edge.openapi.as_ref().clone()) }),
        )
        .fallback(transcoded)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(edge))
}

async fn healthz(State(edge): State<Edge>) -> (StatusCode, Json<serde_json::Value>) {
    let upstreams = edge.upstreams;
    let mut services = serde_json::Map::new();
    let mut all_serving = true;
    let mut names: Vec<&&str> = upstreams.keys().collect();
    names.sort();
    for name in names {
        let mut client = HealthClient::new(upstreams[*name].clone());
        let check = client.check(HealthCheckRequest {
            service: name.to_string(),
        });
        let status = match tokio::time::timeout(Duration::from_secs(2), check).await {
            Ok(Ok(r)) if r.get_ref().status == 1 => "SERVING",
            Ok(Ok(_)) => "NOT_SERVING",
            Ok(Err(_)) | Err(_) => "UNREACHABLE",
        };
        all_serving &= status == "SERVING";
        services.insert(name.to_string(), status.into());
    }
    let code = if all_serving {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if all_serving { "SERVING" } else { "DEGRADED" },
        "services": services,
    });
    (code, Json(body))
}

fn error(status: &Status) -> Response {
    let (code, body) = transcode::error_response(status);
    (code, Json(body)).into_response()
}

/// Every annotated method over HTTP/JSON: authenticate, match the route, build the request
/// message, call the service, answer in proto3 JSON.
async fn transcoded(
    State(edge): State<Edge>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let caller = match edge.verifier.verify_header(header) {
        Ok(c) => c,
        Err(e) => return error(&e.to_status()),
    };
    let (route, vars) = match edge.routes.find(&method, uri.path()) {
        Ok(found) => found,
        Err(true) => {
            let mut r = error(&Status::unimplemented(format!(
                "{} {} is not a method of this route",
                method,
                uri.path()
            )));
            *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            return r;
        }
        Err(false) => {
            return error(&Status::not_found(format!(
                "no route for {method} {}",
                uri.path()
            )));
        }
    };
    if let Err(e) = qaward_kit::policy::check(&route.grpc_path, &caller) {
        return error(&e.to_status());
    }
    if route.client_streaming {
        return error(&Status::unimplemented(
            "this method streams its request (evidence upload): call it over gRPC",
        ));
    }
    let message = match transcode::request_message(route, &vars, uri.query(), &body) {
        Ok(m) => m,
        Err(s) => return error(&s),
    };
    let Some(channel) = edge.upstreams.get(route.service.as_str()).cloned() else {
        return error(&Status::unavailable(format!(
            "{} is not behind this gateway",
            route.service
        )));
    };
    match transcode::call(channel, route, message, &headers).await {
        Ok(json) => (StatusCode::OK, Json(json)).into_response(),
        Err(s) => error(&s),
    }
}
