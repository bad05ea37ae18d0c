//! The reviewer pool: the registry, recusal, verifiable random draws and panels,
//! for this county's award and any other award programme that calls it directly.
//!
//! A request's path: `grpc/mod.rs` (routes the method) → `grpc/<resource>.rs` (parses the
//! request, checks whose record it is) → `domain/` (pure rules, no I/O: policy, registry,
//! pool, eligibility, draw, lifecycle, panel, record) → `store.rs` (sqlx, both backends), the
//! change committed with its audit record by `kit::change::run`. The draw is specified for
//! auditors in `docs/draw.md`.

pub mod domain;
mod grpc;
pub mod store;

use qaward_kit::{
    config::ServiceKind,
    db::{Database, DbError, Migrations},
    server::{ServiceContext, ServiceHost},
};
use qaward_proto::qaward::reviewers::v1::reviewer_service_server::ReviewerServiceServer;

pub use grpc::{Recorded, ReviewersApi, draw_name, fail_overdue_draws, verify, verify_record};

pub const KIND: ServiceKind = ServiceKind::Reviewers;

/// This service's own migrations, after the kit's.
static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
pub static MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};

/// Moves the outbox's events to this service's own feed, which others read (`ListEvents`),
/// for as long as the process runs: this service calls no other.
pub fn relay_events(db: &Database, ctx: &ServiceContext) {
    qaward_kit::outbox::Relay::new(
        db.clone(),
        qaward_kit::events::FeedSink::new(db.clone(), ctx.clock.clone()),
        ctx.clock.clone(),
        qaward_kit::outbox::RelayOptions {
            poll: std::time::Duration::from_millis(200),
            ..Default::default()
        },
    )
    .spawn();
}

/// Every minute, fails on the record the draws still missing an entropy part at their deadline
///
fn spawn_deadlines(db: &Database, ctx: &ServiceContext) {
    let (db, clock) = (db.clone(), ctx.clock.clone());
    let issuer = ctx.config.auth.issuer.clone();
    tokio::spawn(async move {
        loop {
            match fail_overdue_draws(&db, clock.now(), &issuer).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(draws = n, "draws failed at their entropy deadline (R-53)"),
                Err(e) => {
                    tracing::warn!(error = %e, "entropy deadlines not checked; retried in a minute")
                }
            }
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        }
    });
}

/// Opens and migrates this service's database, starts the relay from its outbox to its event
/// feed, and returns its server, ready to serve.
pub async fn start(ctx: &ServiceContext) -> Result<ServiceHost, DbError> {
    let db = Database::open(&ctx.config, KIND.as_str(), &MIGRATIONS).await?;
    // the request log is kept no longer than privacy.request_log_days.
    qaward_kit::retention::spawn(
        db.clone(),
        ctx,
        KIND.as_str(),
        vec![qaward_kit::retention::request_log(&ctx.config)],
    );
    // resident IDs an older version kept are minimised before serving; sealed columns
    // are brought under the current field key in the background (plaintext, or a rotation).
    let minimised = store::minimise_resident_ids(&db, &ctx.fields, 500)
        .await
        .map_err(|e| DbError::Setup(format!("minimising resident IDs: {e}")))?;
    if minimised > 0 {
        tracing::info!(rows = minimised, "resident IDs minimised (R-54)");
    }
    qaward_kit::reseal::spawn(db.clone(), ctx, KIND.as_str(), store::SEALED);
    // Issue 22, item 3: the audit log signed at checkpoints with a key outside the database.
    qaward_kit::audit::log::start(&db, ctx, KIND.as_str());
    relay_events(&db, ctx);
    spawn_deadlines(&db, ctx);
    let host = ServiceHost::for_kind(KIND, ctx).map_err(DbError::Setup)?;
    let limit = host.max_message_bytes();
    // A registry export may be larger than other messages: accept up to the import limit, so
    // an oversize import is refused by the import itself, naming its limit.
    let decode_limit = limit.max(domain::registry::MAX_IMPORT_BYTES + 1024 * 1024);
    let service = ReviewerServiceServer::new(ReviewersApi::new(db, ctx.clone()))
        .max_decoding_message_size(decode_limit)
        .max_encoding_message_size(limit);
    Ok(host.add_service(service))
}
