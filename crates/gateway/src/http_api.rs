//! The gateway's HTTP port. For now: `GET /healthz`, the health of every service behind
//! the gateway as JSON (200 when all serve, 503 otherwise) for load balancers and people.

use std::{collections::HashMap, future::Future, time::Duration};

use axum::{Json, Router, extract::State, http::StatusCode, routing::get};
use tokio::net::TcpListener;
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

type Upstreams = std::sync::Arc<HashMap<&'static str, Channel>>;

/// Serves the HTTP port until `shutdown` resolves.
pub async fn serve_http(
    listener: TcpListener,
    channels: HashMap<&'static str, Channel>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let app = Router::new()
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .with_state(std::sync::Arc::new(channels));
    tracing::info!(service = "gateway-http", %addr, "serving");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| format!("gateway HTTP on {addr}: {e}"))
}

async fn healthz(State(upstreams): State<Upstreams>) -> (StatusCode, Json<serde_json::Value>) {
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

async fn not_found() -> (StatusCode, Json<serde_json::Value>) {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({
            "error": {
                "code": 404,
                "status": "NOT_FOUND",
                "message": "no such HTTP route; the API is served over gRPC on the gateway's gRPC port",
            }
        })),
    )
}
