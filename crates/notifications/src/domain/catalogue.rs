//! The event types qaward announces and the templates that ship with them, read from
//! `templates/zh-CN.toml`: one place that says which events exist, which rule each serves, and
//! which variables each carries.

use std::{collections::BTreeMap, sync::OnceLock};

use serde::Deserialize;

use super::Channel;

const SHIPPED: &str = include_str!("../../templates/zh-CN.toml");

/// Variables every template may use besides its event's own.
pub const BUILT_IN_VARIABLES: [&str; 1] = ["recipient_name"];

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventType {
    #[serde(rename = "type")]
    pub name: String,
    pub rule: String,
    pub description: String,
    pub variables: Vec<String>,
    subject: String,
    body: String,
    sms: String,
}

impl EventType {
    /// Whether a template of this event may use `variable`.
    pub fn carries(&self, variable: &str) -> bool {
        self.variables.iter().any(|v| v == variable) || BUILT_IN_VARIABLES.contains(&variable)
    }

    /// The shipped template (subject, body) of this event for `channel`.
    pub fn shipped(&self, channel: Channel) -> (&str, &str) {
        match channel {
            Channel::Sms => ("", self.sms.trim()),
            _ => (self.subject.trim(), self.body.trim()),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    event: Vec<EventType>,
}

/// Every event type, by name.
pub fn events() -> &'static BTreeMap<String, EventType> {
    static EVENTS: OnceLock<BTreeMap<String, EventType>> = OnceLock::new();
    EVENTS.get_or_init(|| {
        let file: File = toml::from_str(SHIPPED).expect("templates/zh-CN.toml is valid");
        file.event
            .into_iter()
            .map(|e| (e.name.clone(), e))
            .collect()
    })
}

pub fn event(name: &str) -> Option<&'static EventType> {
    events().get(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::template;

    #[test]
    fn every_shipped_template_compiles_and_uses_only_its_events_variables() {
        assert!(events().len() >= 20);
        for e in events().values() {
            for ch in Channel::ALL {
                let (subject, body) = e.shipped(ch);
                template::check(e, subject, body)
                    .unwrap_or_else(|err| panic!("{} {}: {err:?}", e.name, ch.as_str()));
            }
        }
    }

    #[test]
    fn the_events_the_issue_names_are_there_with_their_rules() {
        for (name, rule) in [
            ("materials_review.passed", "R-13"),
            ("materials_review.failed", "R-13"),
            ("reviewer.drawn", "R-40"),
            ("consultation.requested", "R-20"),
            ("public_notice.opened", "R-21"),
            ("annual_report.due", "R-30"),
            ("incident_report.due", "R-31"),
        ] {
            assert_eq!(event(name).map(|e| e.rule.as_str()), Some(rule), "{name}");
        }
    }

    #[test]
    fn every_variable_an_event_declares_is_used_by_its_body() {
        // A declared variable no shipped body shows is a variable the sender fills in for
        // nothing: keep the catalogue honest.
        for e in events().values() {
            let (subject, body) = e.shipped(Channel::Email);
            for v in &e.variables {
                assert!(
                    subject.contains(v.as_str()) || body.contains(v.as_str()),
                    "{}: {v} is never shown",
                    e.name
                );
            }
        }
    }
}
