//! The award cycle's rules, with no I/O: a programme's settings (`settings`), what counts as a
//! character (`chars`), who may apply (`eligibility`), and how an application moves from stage
//! to stage (`stage`), who signs before the office reviews and why a submission is refused
//! (`intake`), what the cycle board shows as waiting or late (`board`), and how the reviews are
//! organised (`review`), and how the committee's votes decide (`committee`). Handlers and the store move data; every decision is taken here and can
//! say which rule and which numbers led to it.

pub mod board;
pub mod chars;
pub mod committee;
pub mod consistency;
pub mod cycle;
pub mod drafts;
pub mod duties;
pub mod eligibility;
pub mod evidence;
pub mod intake;
pub mod recheck;
pub mod review;
pub mod revocation;
pub mod selection;
pub mod settings;
pub mod stage;

use std::collections::BTreeMap;

/// Why the system decided something: the rule, a message for people (Chinese), and the
/// inputs it used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub rule: &'static str,
    /// Stable, UPPER_SNAKE_CASE: what a client branches on.
    pub reason: &'static str,
    pub message: String,
    pub inputs: BTreeMap<String, String>,
}

impl Explanation {
    pub fn new(rule: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Explanation {
            rule,
            reason,
            message: message.into(),
            inputs: BTreeMap::new(),
        }
    }

    pub fn with(mut self, name: &str, value: impl ToString) -> Self {
        self.inputs.insert(name.to_string(), value.to_string());
        self
    }
}

/// A refusal by a rule: FAILED_PRECONDITION with the rule id.
pub fn refused(e: Explanation) -> qaward_kit::Error {
    let mut err = qaward_kit::Error::rule(e.rule, e.reason, e.message.clone());
    for (k, v) in &e.inputs {
        err = err.with_metadata(k.clone(), v.clone());
    }
    err
}
