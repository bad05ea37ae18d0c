//! Integration tests of the kit, grouped by feature; one binary so it links once.

mod audit;
mod audit_log;
mod auth;
mod events;
mod idempotency;
mod migrations;
mod outbox;
mod probe;
mod reseal;
mod retention;
mod server;
