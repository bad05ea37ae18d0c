//! Applications: the award cycle and every application's life, from the notice to
//! revocation, orchestrating reviewers, scoring and notifications.
//!
//! A request's path: `grpc.rs` (validate at the edge, proto to domain) → `domain/` (pure
//! rules, no I/O: settings, eligibility, character counting, the stage table) → `store.rs`
//! (sqlx, both backends). The domain is here; the API, the store and this service's
//! `migrations/{sqlite,postgres}` arrive with the rest of issues #6 and #7. Until then every
//! method answers UNIMPLEMENTED, while the service runs with its own database (the kit's
//! audit, outbox and idempotency tables), health, reflection and authentication.

pub mod domain;
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

/// Opens and migrates this service's database and returns its server, ready to serve.
pub async fn start(ctx: &ServiceContext) -> Result<ServiceHost, DbError> {
    let db = Database::open(&ctx.config, KIND.as_str(), &MIGRATIONS).await?;
    let host = ServiceHost::new(KIND.as_str(), &ctx.config.server, ctx.verifier.clone());
    let limit = host.max_message_bytes();
    let service = ApplicationServiceServer::new(ApplicationsApi::new(db, ctx.clone()))
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    Ok(host.add_service(service))
}
