//! What every qaward service needs, and nothing domain-specific.
//!
//! | module      | what it gives a service                                                  |
//! |-------------|---------------------------------------------------------------------------|
//! | [`config`]  | typed configuration: defaults, then a TOML file, then `QAWARD_*` variables |
//! | [`telemetry`] | `tracing` logs, OpenTelemetry export, W3C trace context on every hop    |
//! | [`db`]      | one pool for SQLite or PostgreSQL, per-service migrations                 |
//! | [`server`]  | health, reflection, tower layers, graceful shutdown                       |
//! | [`auth`]    | verified bearer tokens and the [`auth::Caller`] they name                  |
//! | [`error`]   | one error type, mapped once to gRPC codes and HTTP statuses               |
//! | [`audit`]   | the append-only, hash-chained audit trail                          |
//! | [`outbox`]  | the transactional outbox and its at-least-once relay                       |
//! | [`events`]  | events between services: a numbered feed, followed and applied once        |
//! | [`idempotency`] | `request_id`: a retried mutation answers once and changes nothing twice |
//! | [`security`] | every refused call as one structured log line and a count (等保 audit) |
//! | [`clock`]   | injected time and injected, seedable randomness                           |

pub mod audit;
pub mod auth;
pub mod calendar;
pub mod change;
pub mod clock;
pub mod cn;
pub mod config;
pub mod convert;
pub mod db;
pub mod error;
pub mod events;
pub mod fields;
pub mod files;
#[cfg(any(test, feature = "testing"))]
pub mod fuzz;
pub mod hops;
pub mod idempotency;
pub mod identities;
pub mod merkle;
pub mod names;
pub mod notify;
pub mod outbox;
pub mod paging;
pub mod policy;
pub mod reseal;
pub mod retention;
pub mod security;
pub mod server;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;
pub mod upstream;

pub use error::{Error, ErrorCode, Result};
