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

/// The rubric every installation has from its first start: GB/T 19580-2012 with the points of
/// R-10, as `rubrics/gbt-19580-2012`. A programme that names no rubric is scored on it.
pub const DEFAULT_RUBRIC: &str = qaward_proto::names::DEFAULT_RUBRIC_ID;

/// Seeds [`DEFAULT_RUBRIC`] unless it exists.
pub async fn seed_default_rubric(db: &Database, at: time::OffsetDateTime) -> Result<(), DbError> {
    let mut conn = db
        .pool()
        .acquire()
        .await
        .map_err(|e| DbError::Setup(format!("seed the default rubric: {e}")))?;
    store::seed_rubric(
        &mut conn,
        DEFAULT_RUBRIC,
        &domain::rubric::Rubric::gbt_19580_2012(),
        at,
    )
    .await
    .map_err(|e| DbError::Setup(format!("seed the default rubric: {}", e.message)))
}

/// The columns this service seals: only the request log's stored answers; it keeps no
/// other personal data.
pub const SEALED: &[qaward_kit::reseal::SealedColumn] = &[qaward_kit::reseal::REQUEST_LOG];

/// Opens and migrates this service's database, seeds the default rubric, and returns its
/// server, ready to serve.
pub async fn start(ctx: &ServiceContext) -> Result<ServiceHost, DbError> {
    let db = Database::open(&ctx.config, KIND.as_str(), &MIGRATIONS).await?;
    // the request log is kept no longer than privacy.request_log_days.
    qaward_kit::retention::spawn(
        db.clone(),
        ctx,
        KIND.as_str(),
        vec![qaward_kit::retention::request_log(&ctx.config)],
    );
    // its stored answers brought under the current field key (plaintext, or a rotation).
    qaward_kit::reseal::spawn(db.clone(), ctx, KIND.as_str(), SEALED);
    // Issue 22, item 3: the audit log signed at checkpoints with a key outside the database.
    qaward_kit::audit::log::start(&db, ctx, KIND.as_str());
    seed_default_rubric(&db, ctx.clock.now()).await?;
    let host = ServiceHost::for_kind(KIND, ctx).map_err(DbError::Setup)?;
    let limit = host.max_message_bytes();
    let service = ScoringServiceServer::new(ScoringApi::new(db, ctx.clone()))
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    Ok(host.add_service(service))
}
