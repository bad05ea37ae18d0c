//! Who may be drawn, and who may review whom: every reason, with its rule
//! and the record behind it.

use serde::{Deserialize, Serialize};

/// What the registry knows about one reviewer, as the rules need it. Dates are ISO
/// `YYYY-MM-DD` strings, which order as dates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReviewerFacts {
    pub id: String,
    pub status: String,
    pub cert_valid_from: String,
    pub cert_valid_until: String,
    pub employer_code: String,
    pub relations: Vec<RelationFact>,
    pub flags: Vec<FlagFact>,
    /// Days already booked by other panels (`YYYY-MM-DD`).
    pub booked_days: Vec<String>,
    /// This programme's earlier assignments.
    pub assignments: Vec<AssignmentFact>,
    /// Reviews of enterprises, any programme: the start of each cooling-off period.
    pub reviews: Vec<ReviewFact>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationFact {
    pub name: String,
    pub enterprise_code: String,
    /// POST, PART_TIME_POST, CONSULTANCY, SHAREHOLDING, KINSHIP, OTHER.
    pub kind: String,
    pub start_date: String,
    pub end_date: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagFact {
    pub name: String,
    /// COMPLAINT, DISCIPLINARY, SUSPENSION, UNAVAILABLE.
    pub kind: String,
    pub start_date: String,
    pub end_date: Option<String>,
    pub resolved: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentFact {
    pub window_start: String,
    pub window_end: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewFact {
    pub enterprise_code: String,
    pub review_date: String,
}

/// One reason a reviewer may not review or be drawn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub code: String,
    pub rule: &'static str,
    pub enterprise_code: String,
    /// The resource name of the record behind the reason.
    pub record: String,
    pub message: String,
}

/// The years after a review in which a new tie to the reviewed enterprise is a violation.
pub const COOLING_OFF_YEARS: i32 = 3;

fn overlaps(start: &str, end: Option<&str>, from: &str, to: &str) -> bool {
    start <= to && end.is_none_or(|e| e >= from)
}

/// Whether a flag (its kind, whether resolved, its dates) suspends the reviewer on some day of
/// `from..=to`: an unresolved SUSPENSION whose period overlaps it.
pub fn suspends(
    kind: &str,
    resolved: bool,
    start: &str,
    end: Option<&str>,
    from: &str,
    to: &str,
) -> bool {
    kind == "SUSPENSION" && !resolved && overlaps(start, end, from, to)
}

fn add_years(date: &str, years: i32) -> String {
    match date.split_once('-') {
        Some((y, rest)) => match y.parse::<i32>() {
            Ok(y) => format!("{:04}-{rest}", y + years),
            Err(_) => date.to_string(),
        },
        None => date.to_string(),
    }
}

/// Why `r` may not review `enterprises` during `from..=to`. Empty: may review.
pub fn conflicts(r: &ReviewerFacts, enterprises: &[String], from: &str, to: &str) -> Vec<Reason> {
    let mut out = Vec::new();
    let reviewer = || format!("reviewers/{}", r.id);
    for e in enterprises {
        if !r.employer_code.is_empty() && &r.employer_code == e {
            out.push(Reason {
                code: "EMPLOYER".into(),
                rule: "R-41",
                enterprise_code: e.clone(),
                record: reviewer(),
                message: "the reviewer works for this enterprise".into(),
            });
        }
        for rel in r.relations.iter().filter(|rel| &rel.enterprise_code == e) {
            if overlaps(&rel.start_date, rel.end_date.as_deref(), from, to) {
                out.push(Reason {
                    code: rel.kind.clone(),
                    rule: "R-41",
                    enterprise_code: e.clone(),
                    record: rel.name.clone(),
                    message: format!("{} relation with this enterprise", rel.kind.to_lowercase()),
                });
            }
            for review in r.reviews.iter().filter(|v| &v.enterprise_code == e) {
                let until = add_years(&review.review_date, COOLING_OFF_YEARS);
                if rel.start_date.as_str() >= review.review_date.as_str() && rel.start_date <= until
                {
                    out.push(Reason {
                        code: "COOLING_OFF_VIOLATION".into(),
                        rule: "R-44",
                        enterprise_code: e.clone(),
                        record: rel.name.clone(),
                        message: format!(
                            "relation began {} within 3 years of reviewing this enterprise on {}",
                            rel.start_date, review.review_date
                        ),
                    });
                }
            }
        }
    }
    for f in &r.flags {
        if f.resolved {
            continue;
        }
        let pending_matter = matches!(f.kind.as_str(), "COMPLAINT" | "DISCIPLINARY");
        if pending_matter
            || suspends(
                &f.kind,
                f.resolved,
                &f.start_date,
                f.end_date.as_deref(),
                from,
                to,
            )
        {
            out.push(Reason {
                code: format!("PENDING_{}", f.kind),
                rule: "R-41",
                enterprise_code: String::new(),
                record: f.name.clone(),
                message: format!("{} pending", f.kind.to_lowercase()),
            });
        }
    }
    if r.status == "SUSPENDED" {
        out.push(Reason {
            code: "SUSPENDED".into(),
            rule: "R-41",
            enterprise_code: String::new(),
            record: reviewer(),
            message: "the reviewer is suspended".into(),
        });
    }
    out
}

/// the cooling-off violations of a tie to `enterprise` beginning on `start` (a date):
/// a tie that begins within [`COOLING_OFF_YEARS`] of a review of that enterprise.
pub fn cooling_off_violations(r: &ReviewerFacts, enterprise: &str, start: &str) -> Vec<Reason> {
    conflicts(r, &[enterprise.to_string()], start, start)
        .into_iter()
        .filter(|x| x.rule == "R-44")
        .collect()
}

/// Every day of the window `from..=to` (`YYYY-MM-DD`), as a panel books them; empty when
/// either date does not parse.
pub fn days(from: &str, to: &str) -> Vec<String> {
    let (Some(mut d), Some(end)) = (parse_date(from), parse_date(to)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while d <= end {
        out.push(format!(
            "{:04}-{:02}-{:02}",
            d.year(),
            d.month() as u8,
            d.day()
        ));
        match d.next_day() {
            Some(n) => d = n,
            None => break,
        }
    }
    out
}

/// The programme's limits on how often a reviewer serves.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub yearly_cap: u32,
    pub cooldown_days: u32,
}

/// Why `r` cannot be drawn for `enterprises` during `from..=to`: every reason, or empty.
/// Besides [`conflicts`]: a lapsed certificate, retirement, unavailability, another
/// booking in the window, the yearly cap and the cooldown.
pub fn exclusions(
    r: &ReviewerFacts,
    enterprises: &[String],
    from: &str,
    to: &str,
    load: Load,
) -> Vec<Reason> {
    let mut out = Vec::new();
    let reason = |code: &str, rule: &'static str, message: String| Reason {
        code: code.into(),
        rule,
        enterprise_code: String::new(),
        record: format!("reviewers/{}", r.id),
        message,
    };
    // valid throughout the window; a certificate that starts too late is not a lapsed one.
    if r.cert_valid_from.as_str() > from {
        out.push(reason(
            "CERTIFICATE_NOT_YET_VALID",
            "R-42",
            format!(
                "certificate valid from {}, after the window opens on {from}",
                r.cert_valid_from
            ),
        ));
    } else if r.cert_valid_until.as_str() < to {
        out.push(reason(
            "CERTIFICATE_LAPSED",
            "R-42",
            format!(
                "certificate valid {} to {}, not throughout {from} to {to}",
                r.cert_valid_from, r.cert_valid_until
            ),
        ));
    }
    if r.status == "RETIRED" {
        out.push(reason(
            "RETIRED",
            "R-40",
            "the reviewer has left the registry".into(),
        ));
    }
    out.extend(conflicts(r, enterprises, from, to));
    for f in r
        .flags
        .iter()
        .filter(|f| !f.resolved && f.kind == "UNAVAILABLE")
    {
        if overlaps(&f.start_date, f.end_date.as_deref(), from, to) {
            out.push(Reason {
                code: "UNAVAILABLE".into(),
                rule: "R-40",
                enterprise_code: String::new(),
                record: f.name.clone(),
                message: format!("unavailable from {}", f.start_date),
            });
        }
    }
    if r.booked_days
        .iter()
        .any(|d| d.as_str() >= from && d.as_str() <= to)
    {
        out.push(reason(
            "BOOKED",
            "R-40",
            "already booked by another panel in the window".into(),
        ));
    }
    let year = &from[..4.min(from.len())];
    let this_year = r
        .assignments
        .iter()
        .filter(|a| a.window_start.starts_with(year))
        .count() as u32;
    if this_year >= load.yearly_cap {
        out.push(reason(
            "YEARLY_CAP",
            "R-40",
            format!(
                "{this_year} assignments in {year}, the cap is {}",
                load.yearly_cap
            ),
        ));
    }
    if load.cooldown_days > 0 {
        let from_date = parse_date(from);
        let too_recent =
            r.assignments
                .iter()
                .any(|a| match (parse_date(&a.window_end), from_date) {
                    (Some(end), Some(start)) => {
                        end <= start && (start - end).whole_days() < i64::from(load.cooldown_days)
                    }
                    _ => false,
                });
        if too_recent {
            out.push(reason(
                "COOLDOWN",
                "R-40",
                format!(
                    "less than {} days since the last assignment",
                    load.cooldown_days
                ),
            ));
        }
    }
    out
}

/// A `YYYY-MM-DD` date.
pub fn parse_date(s: &str) -> Option<time::Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &format).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> ReviewerFacts {
        ReviewerFacts {
            id: "CQ-2024-0001".into(),
            status: "ACTIVE".into(),
            cert_valid_from: "2024-01-01".into(),
            cert_valid_until: "2027-12-31".into(),
            employer_code: "91500235MA00000001".into(),
            ..ReviewerFacts::default()
        }
    }

    const LOAD: Load = Load {
        yearly_cap: 2,
        cooldown_days: 30,
    };
    const ENT: &str = "91500235MA5U7XXX0A";

    fn codes(reasons: &[Reason]) -> Vec<String> {
        reasons
            .iter()
            .map(|r| format!("{}:{}", r.rule, r.code))
            .collect()
    }

    #[test]
    fn r41_a_shareholding_or_post_in_the_applicant_is_a_conflict() {
        let mut r = facts();
        r.relations.push(RelationFact {
            name: "reviewers/CQ-2024-0001/relations/1".into(),
            enterprise_code: ENT.into(),
            kind: "SHAREHOLDING".into(),
            start_date: "2020-05-01".into(),
            end_date: None,
        });
        let reasons = conflicts(&r, &[ENT.to_string()], "2026-03-02", "2026-03-06");
        assert_eq!(codes(&reasons), ["R-41:SHAREHOLDING"]);
        assert_eq!(reasons[0].record, "reviewers/CQ-2024-0001/relations/1");
        // A relation that ended before the window is no conflict.
        r.relations[0].end_date = Some("2025-12-31".into());
        assert!(conflicts(&r, &[ENT.to_string()], "2026-03-02", "2026-03-06").is_empty());
        // Working for the applicant is.
        assert_eq!(
            codes(&conflicts(
                &r,
                &["91500235MA00000001".into()],
                "2026-03-02",
                "2026-03-06"
            )),
            ["R-41:EMPLOYER"]
        );
    }

    #[test]
    fn r41_a_pending_complaint_excludes_until_resolved() {
        let mut r = facts();
        r.flags.push(FlagFact {
            name: "reviewers/CQ-2024-0001/flags/1".into(),
            kind: "COMPLAINT".into(),
            start_date: "2025-01-01".into(),
            end_date: None,
            resolved: false,
        });
        assert_eq!(
            codes(&conflicts(&r, &[], "2026-03-02", "2026-03-06")),
            ["R-41:PENDING_COMPLAINT"]
        );
        r.flags[0].resolved = true;
        assert!(conflicts(&r, &[], "2026-03-02", "2026-03-06").is_empty());
    }

    #[test]
    fn r44_a_tie_within_three_years_of_a_review_is_a_violation() {
        let mut r = facts();
        r.reviews.push(ReviewFact {
            enterprise_code: ENT.into(),
            review_date: "2024-06-10".into(),
        });
        r.relations.push(RelationFact {
            name: "reviewers/CQ-2024-0001/relations/2".into(),
            enterprise_code: ENT.into(),
            kind: "CONSULTANCY".into(),
            start_date: "2026-01-15".into(),
            end_date: None,
        });
        assert_eq!(
            codes(&conflicts(
                &r,
                &[ENT.to_string()],
                "2026-03-02",
                "2026-03-06"
            )),
            ["R-41:CONSULTANCY", "R-44:COOLING_OFF_VIOLATION"]
        );
    }

    #[test]
    fn r42_a_certificate_must_cover_the_whole_window() {
        let mut r = facts();
        r.cert_valid_until = "2026-03-04".into();
        assert_eq!(
            codes(&exclusions(&r, &[], "2026-03-02", "2026-03-06", LOAD)),
            ["R-42:CERTIFICATE_LAPSED"]
        );
        // Not yet valid is its own reason, not a lapse (issue 25, item 7).
        let mut r = facts();
        r.cert_valid_from = "2026-03-03".into();
        assert_eq!(
            codes(&exclusions(&r, &[], "2026-03-02", "2026-03-06", LOAD)),
            ["R-42:CERTIFICATE_NOT_YET_VALID"]
        );
    }

    #[test]
    fn bookings_cap_cooldown_and_unavailability_exclude() {
        let mut r = facts();
        r.booked_days.push("2026-03-04".into());
        r.assignments.push(AssignmentFact {
            window_start: "2026-02-01".into(),
            window_end: "2026-02-20".into(),
        });
        r.assignments.push(AssignmentFact {
            window_start: "2026-01-05".into(),
            window_end: "2026-01-06".into(),
        });
        r.flags.push(FlagFact {
            name: "reviewers/CQ-2024-0001/flags/2".into(),
            kind: "UNAVAILABLE".into(),
            start_date: "2026-03-05".into(),
            end_date: Some("2026-03-09".into()),
            resolved: false,
        });
        assert_eq!(
            codes(&exclusions(&r, &[], "2026-03-02", "2026-03-06", LOAD)),
            [
                "R-40:UNAVAILABLE",
                "R-40:BOOKED",
                "R-40:YEARLY_CAP",
                "R-40:COOLDOWN"
            ]
        );
        assert!(exclusions(&facts(), &[], "2026-03-02", "2026-03-06", LOAD).is_empty());
    }
}
