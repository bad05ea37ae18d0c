//! A reviewer's record (Art. 6(3), Rev. Art. 5-6): what the office trains and assesses, what a
//! panel's leader sees at a review, what a reviewer did wrong and what was done about it. These
//! are the rules of what may be recorded, and by whom.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Training {
        course: String,
        hours: i32,
    },
    /// the certificate shown at a review (a panel).
    CertificateShown {
        panel: String,
        certificate_number: String,
    },
    Assessment {
        panel: String,
        /// LEADER or OFFICE.
        assessor: String,
        /// 1 excellent … 4 poor.
        rating: i32,
        reasons: String,
    },
    Violation {
        /// Rev. Art. 6 (1)-(10).
        duty: i32,
        description: String,
        serious: bool,
        handling: String,
    },
}

impl Event {
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Training { .. } => "TRAINING",
            Event::CertificateShown { .. } => "CERTIFICATE_SHOWN",
            Event::Assessment { .. } => "ASSESSMENT",
            Event::Violation { .. } => "VIOLATION",
        }
    }

    /// The review (panel) the event belongs to, if any.
    pub fn panel(&self) -> Option<&str> {
        match self {
            Event::CertificateShown { panel, .. } | Event::Assessment { panel, .. } => Some(panel),
            _ => None,
        }
    }
}

/// (field, description)
pub type Problem = (String, String);

fn text(out: &mut Vec<Problem>, field: &str, value: &str, max: usize) {
    let n = value.trim().chars().count();
    if n == 0 || n > max {
        out.push((format!("event.{field}"), format!("1-{max} characters")));
    }
}

/// What is malformed in an event, every field at once.
pub fn problems(e: &Event) -> Vec<Problem> {
    let mut out = Vec::new();
    match e {
        Event::Training { course, hours } => {
            text(&mut out, "training.course", course, 200);
            if !(1..=200).contains(hours) {
                out.push(("event.training.hours".into(), "1-200 hours".into()));
            }
        }
        Event::CertificateShown {
            panel,
            certificate_number,
        } => {
            if panel.is_empty() {
                out.push(("event.certificate_shown.panel".into(), "is required".into()));
            }
            text(
                &mut out,
                "certificate_shown.certificate_number",
                certificate_number,
                64,
            );
        }
        Event::Assessment {
            panel,
            rating,
            reasons,
            ..
        } => {
            if panel.is_empty() {
                out.push(("event.assessment.panel".into(), "is required".into()));
            }
            if !(1..=4).contains(rating) {
                out.push(("event.assessment.rating".into(), "must be set".into()));
            }
            text(&mut out, "assessment.reasons", reasons, 2000);
        }
        Event::Violation {
            duty,
            description,
            handling,
            ..
        } => {
            if !(1..=10).contains(duty) {
                out.push((
                    "event.violation.duty".into(),
                    "one of the ten duties of Rev. Art. 6".into(),
                ));
            }
            text(&mut out, "violation.description", description, 2000);
            text(&mut out, "violation.handling", handling, 2000);
        }
    }
    out
}

/// Who may record `e`: the office anything; a panel's leader only the certificate shown by,
/// and the assessment of, another member of the panel it leads (Art. 6(3)).
pub fn may_record(
    e: &Event,
    office: bool,
    leads_the_panel: bool,
    about_self: bool,
) -> Result<(), &'static str> {
    if office {
        return Ok(());
    }
    match e {
        Event::CertificateShown { .. } | Event::Assessment { .. }
            if leads_the_panel && !about_self =>
        {
            Ok(())
        }
        Event::CertificateShown { .. } | Event::Assessment { .. } => Err(
            "only the office, or the leader of the panel about one of its other members, records this",
        ),
        _ => Err("training and conduct are recorded by the office"),
    }
}

/// the certificate shown is not the one the registry holds.
pub const CERTIFICATE_MISMATCH: &str = "CERTIFICATE_MISMATCH";
/// the certificate shown is no longer valid on the day.
pub const CERTIFICATE_LAPSED: &str = "CERTIFICATE_LAPSED";
/// the certificate shown is not valid yet on the day.
pub const CERTIFICATE_NOT_YET_VALID: &str = "CERTIFICATE_NOT_YET_VALID";

/// the certificate shown must be the one the registry holds, valid on the day (dates
/// `YYYY-MM-DD`).
pub fn certificate_check(
    shown: &str,
    registered: &str,
    valid_from: &str,
    valid_until: &str,
    day: &str,
) -> Result<(), qaward_kit::Error> {
    if !shown.trim().eq_ignore_ascii_case(registered) {
        return Err(qaward_kit::Error::rule(
            "R-42",
            CERTIFICATE_MISMATCH,
            format!("the certificate shown ({shown}) is not the registered one ({registered})"),
        ));
    }
    if day < valid_from {
        return Err(qaward_kit::Error::rule(
            "R-42",
            CERTIFICATE_NOT_YET_VALID,
            format!("the certificate is valid from {valid_from}, not yet on {day}"),
        ));
    }
    if day > valid_until {
        return Err(qaward_kit::Error::rule(
            "R-42",
            CERTIFICATE_LAPSED,
            format!("the certificate is valid {valid_from} to {valid_until}, not on {day}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_checked_field_by_field() {
        let bad = Event::Violation {
            duty: 11,
            description: " ".into(),
            serious: true,
            handling: "暂停抽取".into(),
        };
        let fields: Vec<String> = problems(&bad).into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            ["event.violation.duty", "event.violation.description"]
        );
        assert!(
            problems(&Event::Training {
                course: "卓越绩效评价准则".into(),
                hours: 8
            })
            .is_empty()
        );
        assert_eq!(
            problems(&Event::Training {
                course: "x".into(),
                hours: 0
            })
            .len(),
            1
        );
    }

    #[test]
    fn a_leader_records_the_certificate_and_assessment_of_its_other_members_only() {
        let assessment = Event::Assessment {
            panel: "programmes/p/panels/1".into(),
            assessor: "LEADER".into(),
            rating: 2,
            reasons: "评审认真".into(),
        };
        assert!(may_record(&assessment, false, true, false).is_ok());
        assert!(
            may_record(&assessment, false, true, true).is_err(),
            "not about itself"
        );
        assert!(may_record(&assessment, false, false, false).is_err());
        let training = Event::Training {
            course: "x".into(),
            hours: 4,
        };
        assert!(may_record(&training, false, true, false).is_err());
        assert!(may_record(&training, true, false, false).is_ok());
    }

    #[test]
    fn r42_the_certificate_shown_is_the_registered_one_and_valid_that_day() {
        assert!(
            certificate_check(
                "cq-0001",
                "CQ-0001",
                "2024-01-01",
                "2028-12-31",
                "2026-07-15"
            )
            .is_ok()
        );
        assert_eq!(
            certificate_check(
                "CQ-0009",
                "CQ-0001",
                "2024-01-01",
                "2028-12-31",
                "2026-07-15"
            )
            .unwrap_err()
            .reason,
            CERTIFICATE_MISMATCH
        );
        assert_eq!(
            certificate_check(
                "CQ-0001",
                "CQ-0001",
                "2024-01-01",
                "2025-12-31",
                "2026-07-15"
            )
            .unwrap_err()
            .reason,
            CERTIFICATE_LAPSED
        );
        assert_eq!(
            certificate_check(
                "CQ-0001",
                "CQ-0001",
                "2027-01-01",
                "2030-12-31",
                "2026-07-15"
            )
            .unwrap_err()
            .reason,
            CERTIFICATE_NOT_YET_VALID
        );
    }
}
