//! Applications: the award cycle and every application's life, from the notice to
//! revocation, orchestrating reviewers, scoring and notifications.
//!
//! A request's path: `grpc/mod.rs` (routes the method) → `grpc/<resource>.rs` (validates at
//! the edge, checks whose record it is; the table in `grpc/mod.rs` says which file holds which
//! method) → `domain/` (pure rules, no I/O: settings, eligibility, character counting, the stage
//! table, intake, the cycle board, the reviews, the selection, the duties, consistency) →
//! `store/` (sqlx, both backends, one transaction with the audit record and the outbox notices).
//! What the other services' changes set off here is `follow.rs`.

pub mod blobs;
pub mod domain;
pub mod follow;
mod grpc;
pub mod store;

use qaward_kit::{
    config::ServiceKind,
    db::{Database, DbError, Migrations},
    server::{ServiceContext, ServiceHost},
};
use qaward_proto::qaward::applications::v1::application_service_server::ApplicationServiceServer;

pub use grpc::ApplicationsApi;

pub const KIND: ServiceKind = ServiceKind::Applications;

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
/// This service's own migrations, after the kit's.
pub static MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};

/// The columns this service seals: only the request log's stored answers; it keeps no
/// other personal data.
pub const SEALED: &[qaward_kit::reseal::SealedColumn] = &[qaward_kit::reseal::REQUEST_LOG];

/// Opens and migrates this service's database, starts its outbox relay (to the notifications
/// and scoring services) and its follower of the reviewers' events ([`follow`]), and returns
/// its server, ready to serve.
pub async fn start(ctx: &ServiceContext) -> Result<ServiceHost, DbError> {
    ctx.config
        .calendar()
        .map_err(|e| DbError::Setup(format!("calendar_file: {e}")))?;
    let db = Database::open(&ctx.config, KIND.as_str(), &MIGRATIONS).await?;
    // the request log and drafts never submitted kept no longer than their days.
    qaward_kit::retention::spawn(
        db.clone(),
        ctx,
        KIND.as_str(),
        store::retention(&ctx.config),
    );
    // its stored answers brought under the current field key (plaintext, or a rotation).
    qaward_kit::reseal::spawn(db.clone(), ctx, KIND.as_str(), SEALED);
    // Issue 22, item 3: the audit log signed at checkpoints with a key outside the database.
    qaward_kit::audit::log::start(&db, ctx, KIND.as_str());
    follow::start(&db, ctx).map_err(DbError::Setup)?;
    let host = ServiceHost::for_kind(KIND, ctx).map_err(DbError::Setup)?;
    let limit = host.max_message_bytes();
    let blobs = blobs::BlobStore::from_config(&ctx.config).map_err(DbError::Setup)?;
    blobs.clone().sweep_in_background(db.clone());
    let service = ApplicationServiceServer::new(ApplicationsApi::new(db, ctx.clone(), blobs))
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    Ok(host.add_service(service))
}
