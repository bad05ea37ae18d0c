//! The gateway: the one address the county platform calls.
//!
//! - gRPC (`listen.gateway_grpc`): every call to a `qaward.*` service is admitted here first
//!   (`edge.rs`: token, the caller's rate, the policy table, the deadline), then passed through
//!   unchanged, headers included (the token, the request id and the W3C trace context), to the
//!   process that serves it — exactly as when the services run apart. The gateway answers
//!   health and reflection for the whole API itself, and serves its composed views
//!   (`views.rs`).
//! - HTTP (`listen.gateway_http`): `GET /healthz` reports every service's health, and every
//!   method is reachable as its `google.api.http` annotation says, in proto3 JSON
//!   (`transcode.rs`), admitted at the edge exactly as gRPC calls are.

pub mod edge;
mod http_api;
pub mod http_client;
mod http_limits;
pub mod openapi;
mod proxy;
pub mod transcode;
pub mod views;

use std::{collections::HashMap, sync::Arc};

use qaward_kit::{
    config::ServiceKind,
    server::{ServiceContext, ServiceHost},
    upstream::Upstream,
};
use qaward_proto::qaward::gateway::v1::gateway_service_server::GatewayServiceServer;

pub use edge::Edge;
pub use http_api::{router as http_router, serve_http};
pub use proxy::Proxy;

pub const KIND: ServiceKind = ServiceKind::Gateway;

/// Every service behind the gateway, by gRPC service name: in process when this process
/// serves it, else a lazily connected channel (`qaward_kit::upstream::connect`).
pub fn upstreams(ctx: &ServiceContext) -> Result<HashMap<&'static str, Upstream>, String> {
    let mut upstreams = HashMap::new();
    for kind in ServiceKind::ALL {
        let Some(name) = kind.grpc_service() else {
            continue;
        };
        upstreams.insert(name, qaward_kit::upstream::connect(ctx, kind, None)?);
    }
    Ok(upstreams)
}

/// The gateway's gRPC server: pass-through to every service, plus its own health and
/// reflection.
/// `edge` is shared with the HTTP port, so a caller's rate is counted across both.
pub fn start(
    ctx: &ServiceContext,
    channels: HashMap<&'static str, Upstream>,
    edge: Arc<Edge>,
) -> Result<ServiceHost, String> {
    let mut names: Vec<&'static str> = channels.keys().copied().collect();
    names.sort();
    let views = views::Views::new(channels.clone(), edge.max_timeout, Some(edge.clone()));
    let proxy = Proxy::new(channels, edge);
    Ok(ServiceHost::for_kind(KIND, ctx)?
        .add_service(GatewayServiceServer::new(views))
        .with_fallback(&names, move |router| router.fallback_service(proxy)))
}
