//! Notifications: durable multi-channel delivery (inbox, email, webhook, SMS) with retries, dead
//! letters and reminders on the working-day calendar.
//!
//! A request's path: `grpc.rs` (validate at the edge, proto to domain) → `domain/` (pure
//! rules, no I/O) → `store.rs` (sqlx, both backends). The domain, the store and this
//! service's `migrations/{sqlite,postgres}` arrive with issue #5; until then every
//! method answers UNIMPLEMENTED, while the service runs with its own database (the kit's
//! audit, outbox and idempotency tables), health, reflection and authentication.

mod grpc;

use qaward_kit::{
    config::ServiceKind,
    db::{Database, DbError, Migrations},
    server::{ServiceContext, ServiceHost},
};
use qaward_proto::qaward::notifications::v1::notification_service_server::NotificationServiceServer;

pub use grpc::NotificationsApi;

pub const KIND: ServiceKind = ServiceKind::Notifications;

/// This service's own migrations, after the kit's.
pub static MIGRATIONS: Migrations = Migrations::NONE;

/// Opens and migrates this service's database and returns its server, ready to serve.
pub async fn start(ctx: &ServiceContext) -> Result<ServiceHost, DbError> {
    let db = Database::open(&ctx.config, KIND.as_str(), &MIGRATIONS).await?;
    let host = ServiceHost::new(KIND.as_str(), &ctx.config.server, ctx.verifier.clone());
    let limit = host.max_message_bytes();
    let service = NotificationServiceServer::new(NotificationsApi::new(db, ctx.clone()))
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    Ok(host.add_service(service))
}
