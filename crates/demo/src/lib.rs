//! A sample award cycle walked through the gateway's public API only — what `qaward demo`
//! prints, and what the whole-system tests drive across separate processes.
//!
//! - [`door`]: the gateway over gRPC or HTTP/JSON, tokens for every role, retry on the rate
//!   limit.
//! - [`sample`]: the sample county (enterprises, reviewers, relations, the scores panels give).
//! - [`walk`]: the cycle step by step, reporting every decision with its rule and numbers.

pub mod door;
mod narrate;
pub mod sample;
pub mod walk;

pub use door::{Door, Protocol, Tokens};
pub use narrate::Narrator;
pub use sample::Plan;
pub use walk::{Failure, Outcome, Walk};
