//! Scoring: the GB/T 19580 rubric, sealed independent and consensus sheets,
//! exact aggregation, thresholds, ranking and feedback reports.
//!
//! A request's path: `grpc.rs` (validate at the edge, proto to domain) → `domain/` (pure
//! rules, no I/O) → `store.rs` (sqlx, both backends). The domain, the store and this
//! service's `migrations/{sqlite,postgres}` arrive with issue #4; until then every
//! method answers UNIMPLEMENTED, while the service runs with its own database (the kit's
//! audit, outbox and idempotency tables), health, reflection and authentication.

pub mod domain;
mod grpc;

use qaward_kit::{
    config::ServiceKind,
    db::{Database, DbError, Migrations},
    server::{ServiceContext, ServiceHost},
};
use qaward_proto::qaward::scoring::v1::scoring_service_server::ScoringServiceServer;

pub use grpc::ScoringApi;

pub const KIND: ServiceKind = ServiceKind::Scoring;

/// This service's own migrations, after the kit's.
pub static MIGRATIONS: Migrations = Migrations::NONE;

/// Opens and migrates this service's database and returns its server, ready to serve.
pub async fn start(ctx: &ServiceContext) -> Result<ServiceHost, DbError> {
    let db = Database::open(&ctx.config, KIND.as_str(), &MIGRATIONS).await?;
    let host = ServiceHost::new(KIND.as_str(), &ctx.config.server, ctx.verifier.clone());
    let limit = host.max_message_bytes();
    let service = ScoringServiceServer::new(ScoringApi::new(db, ctx.clone()))
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    Ok(host.add_service(service))
}
