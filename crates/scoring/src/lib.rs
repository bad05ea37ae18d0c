//! Scoring: the GB/T 19580 rubric, sealed independent and consensus sheets,
//! exact aggregation, thresholds, ranking and feedback reports.
//!
//! A request's path: `grpc.rs` (validate at the edge, check the caller, proto to domain) →
//! `domain/` (pure rules: rubric, sheet, results) → `store.rs` (sqlx, both backends, one
//! transaction with the audit record).

pub mod domain;
mod grpc;
pub mod store;

use qaward_kit::{
    config::ServiceKind,
    db::{Database, DbError, Migrations},
    server::{ServiceContext, ServiceHost},
};
use qaward_proto::qaward::scoring::v1::scoring_service_server::ScoringServiceServer;

pub use grpc::{ScoringApi, compute_cycle};

pub const KIND: ServiceKind = ServiceKind::Scoring;

/// This service's own migrations, after the kit's.
static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
pub static MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};

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
