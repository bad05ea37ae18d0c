//! Who may be drawn: every candidate the registry offers for a group is
//! either in the pool or excluded with the code and rule that excluded it, and both lists are
//! recorded in the prepared draw. PrepareDraw and the draw benchmark build the pool here.

use crate::domain::{
    draw::{Exclusion, PoolEntry},
    eligibility::{self, Load, ReviewerFacts},
};

/// excluded because the programme's annual appointment covering the window does not
/// include the candidate.
pub const NOT_APPOINTED: &str = "NOT_APPOINTED";

/// What a group is drawn for and when: the applicants it reviews and its window
/// (`YYYY-MM-DD`, inclusive).
#[derive(Debug, Clone, Copy)]
pub struct Group<'a> {
    pub enterprises: &'a [String],
    pub from: &'a str,
    pub to: &'a str,
}

/// who may be drawn for a review when the programme has appointed its reviewers for the
/// year — `appointees` (those who accepted), or everyone while there is no appointment covering
/// the review's window (`None`). The rest are excluded with the reason [`NOT_APPOINTED`].
pub fn appointed(candidate: &str, appointees: Option<&[String]>) -> bool {
    appointees.is_none_or(|a| a.iter().any(|x| x.eq_ignore_ascii_case(candidate)))
}

/// Splits `candidates` into the pool and the exclusions, in the candidates' order: first the
/// appointment, then every conflict and load rule of [`eligibility::exclusions`]. An
/// excluded reviewer is named `reviewers/{id}`.
pub fn split(
    candidates: impl IntoIterator<Item = (PoolEntry, ReviewerFacts)>,
    group: Group<'_>,
    load: Load,
    appointees: Option<&[String]>,
) -> (Vec<PoolEntry>, Vec<Exclusion>) {
    let mut pool = Vec::new();
    let mut exclusions = Vec::new();
    for (entry, facts) in candidates {
        if !appointed(&entry.id, appointees) {
            exclusions.push(Exclusion {
                reviewer: format!("reviewers/{}", entry.id),
                code: NOT_APPOINTED.into(),
                rule: "R-40".into(),
            });
            continue;
        }
        let reasons =
            eligibility::exclusions(&facts, group.enterprises, group.from, group.to, load);
        if reasons.is_empty() {
            pool.push(entry);
        } else {
            exclusions.extend(reasons.into_iter().map(|x| Exclusion {
                reviewer: format!("reviewers/{}", entry.id),
                code: x.code,
                rule: x.rule.to_string(),
            }));
        }
    }
    (pool, exclusions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(id: &str) -> (PoolEntry, ReviewerFacts) {
        (
            PoolEntry {
                id: id.into(),
                specialities: vec!["C13".into()],
                leader: false,
            },
            ReviewerFacts {
                id: id.into(),
                status: "ACTIVE".into(),
                cert_valid_from: "2020-01-01".into(),
                cert_valid_until: "2030-12-31".into(),
                ..Default::default()
            },
        )
    }

    #[test]
    fn r40_an_appointment_limits_the_pool_to_its_appointees_and_says_so() {
        let group = Group {
            enterprises: &[],
            from: "2026-03-02",
            to: "2026-03-06",
        };
        let load = Load {
            yearly_cap: 6,
            cooldown_days: 0,
        };
        let appointees = vec!["CQ-0002".to_string()];
        let (pool, excluded) = split(
            [candidate("CQ-0001"), candidate("CQ-0002")],
            group,
            load,
            Some(&appointees),
        );
        assert_eq!(
            pool.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
            ["CQ-0002"]
        );
        assert_eq!(excluded.len(), 1);
        assert_eq!(excluded[0].reviewer, "reviewers/CQ-0001");
        assert_eq!(excluded[0].code, NOT_APPOINTED);
        assert_eq!(excluded[0].rule, "R-40");

        // No appointment covering the window: everyone eligible is in the pool.
        let (pool, excluded) = split([candidate("CQ-0001")], group, load, None);
        assert_eq!(pool.len(), 1);
        assert!(excluded.is_empty());
    }

    #[test]
    fn r42_a_lapsed_certificate_is_excluded_with_its_rule() {
        let (entry, mut facts) = candidate("CQ-0003");
        facts.cert_valid_until = "2025-12-31".into();
        let (pool, excluded) = split(
            [(entry, facts)],
            Group {
                enterprises: &[],
                from: "2026-03-02",
                to: "2026-03-06",
            },
            Load {
                yearly_cap: 6,
                cooldown_days: 0,
            },
            None,
        );
        assert!(pool.is_empty());
        assert_eq!(excluded[0].rule, "R-42");
    }
}
