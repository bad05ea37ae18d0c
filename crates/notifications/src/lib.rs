//! Notifications: durable multi-channel delivery (inbox, email, webhook, SMS) with retries, dead
//! letters and reminders on the working-day calendar.
//!
//! A request's path: `grpc.rs` (validate at the edge, check the caller, render with the
//! current template) → `domain/` (pure rules: the event catalogue, templates, recipients,
//! retry and rate, reminders, signatures) → `store.rs` (sqlx, both backends; the notification
//! and its deliveries commit with the audit record). `worker.rs` then takes due deliveries from
//! the queue and hands them to `channels/`. Receivers' side of the signed webhook:
//! `docs/notifications.md`.

pub mod channels;
pub mod domain;
mod grpc;
pub mod store;
pub mod worker;

use std::sync::Arc;

use qaward_kit::{
    clock::unix_micros,
    config::ServiceKind,
    db::{Database, DbError, Migrations},
    server::{ServiceContext, ServiceHost},
};
use qaward_proto::qaward::notifications::v1::notification_service_server::NotificationServiceServer;
use tokio::sync::Notify;

pub use grpc::NotificationsApi;

pub const KIND: ServiceKind = ServiceKind::Notifications;

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
/// This service's own migrations, after the kit's.
pub static MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};

/// Builds the API and its delivery workers on `db`: seeds the shipped templates, starts
/// `config.notifications.workers` workers, and returns the API to serve.
pub async fn service(db: Database, ctx: &ServiceContext) -> Result<NotificationsApi, DbError> {
    let settings = &ctx.config.notifications;
    let fail = |m: String| DbError::Setup(m);
    let calendar = ctx.config.calendar().map_err(|e| fail(e.to_string()))?;
    let channels = channels::Channels::from_config(settings).map_err(fail)?;
    store::seed_shipped_templates(&db, unix_micros(ctx.clock.now()))
        .await
        .map_err(|e| fail(format!("cannot seed the shipped templates: {e}")))?;
    if db.backend() == qaward_kit::db::Backend::Sqlite {
        let released = store::release_stale_leases(&db, unix_micros(ctx.clock.now()))
            .await
            .map_err(|e| fail(format!("cannot release stale delivery leases: {e}")))?;
        if released > 0 {
            tracing::info!(
                released,
                "deliveries claimed by a previous process are due again"
            );
        }
    }
    let wake = Arc::new(Notify::new());
    worker::Pool::new(
        db.clone(),
        channels,
        ctx.clock.clone(),
        ctx.randomness.clone(),
        settings,
        wake.clone(),
        ctx.fields.clone(),
    )
    .spawn(settings.workers);
    Ok(NotificationsApi::new(db, ctx.clone(), calendar, wake))
}

/// Opens and migrates this service's database and returns its server, ready to serve, with
/// its delivery workers running.
pub async fn start(ctx: &ServiceContext) -> Result<ServiceHost, DbError> {
    let db = Database::open(&ctx.config, KIND.as_str(), &MIGRATIONS).await?;
    // the request log, message texts and delivery records kept no longer than their days.
    qaward_kit::retention::spawn(
        db.clone(),
        ctx,
        KIND.as_str(),
        store::retention(&ctx.config),
    );
    // every sealed column brought under the current field key (plaintext, or a rotation).
    qaward_kit::reseal::spawn(db.clone(), ctx, KIND.as_str(), store::SEALED);
    // Issue 22, item 3: the audit log signed at checkpoints with a key outside the database.
    qaward_kit::audit::log::start(&db, ctx, KIND.as_str());
    let api = service(db, ctx).await?;
    let host = ServiceHost::for_kind(KIND, ctx).map_err(DbError::Setup)?;
    let limit = host.max_message_bytes();
    let service = NotificationServiceServer::new(api)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    Ok(host.add_service(service))
}
