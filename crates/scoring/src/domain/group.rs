//! Who sits in a group or panel (Art. 8, 16(3-5)): a materials or site group has at least 3
//! scoring reviewers, one of them its leader, and no advisors; a defence panel has
//! scoring reviewers and may seat non-scoring advisors.

/// What is wrong with a group of `roles` (MEMBER, LEADER, ADVISOR) for `stage` (MATERIALS,
/// SITE, DEFENCE); empty when nothing is.
pub fn composition_problems(stage: &str, roles: &[&str]) -> Vec<String> {
    let scorers = roles.iter().filter(|r| **r != "ADVISOR").count();
    let leaders = roles.iter().filter(|r| **r == "LEADER").count();
    let advisors = roles.len() - scorers;
    let mut problems = Vec::new();
    match stage {
        "MATERIALS" | "SITE" => {
            if scorers < 3 || leaders != 1 {
                problems.push(
                    "a group has at least 3 scoring reviewers, one of them the leader (R-12)"
                        .to_string(),
                );
            }
            if advisors > 0 {
                problems.push("advisors sit only on the defence panel (R-14)".to_string());
            }
        }
        "DEFENCE" if scorers == 0 => {
            problems.push("a defence panel has scoring reviewers".to_string())
        }
        _ => {}
    }
    problems
}

/// Why a reserved opinion cannot be attached now: (rule, reason, message).
pub type Refusal = (&'static str, &'static str, &'static str);

/// Rev. Art. 6(4): a scoring member of the group who disagrees with its consensus may attach a
/// reserved opinion to it — once the leader has signed it (there is something to disagree
/// with) and before the stage is released (R-51: released results are read-only). The leader,
/// who signed, and advisors, who do not score, do not dissent. The opinion changes no
/// score. `role` is the caller's role in the group, if any.
pub fn may_reserve_opinion(
    role: Option<&str>,
    consensus_signed: bool,
    released: bool,
) -> Result<(), Refusal> {
    match role {
        Some("MEMBER") => {}
        Some("LEADER") => {
            return Err((
                "R-12",
                "LEADER_SIGNED",
                "the group leader signed the consensus; a reserved opinion is a member's",
            ));
        }
        _ => {
            return Err((
                "R-43",
                "NOT_IN_GROUP",
                "only a scoring member of the group may reserve an opinion on its consensus",
            ));
        }
    }
    if !consensus_signed {
        return Err((
            "R-12",
            "CONSENSUS_NOT_SIGNED",
            "the consensus is not signed yet: there is nothing to disagree with",
        ));
    }
    if released {
        return Err(("R-51", "STAGE_RELEASED", "released results are read-only"));
    }
    Ok(())
}

/// A refusal of [`may_reserve_opinion`] as the caller's error: PERMISSION_DENIED for someone
/// outside the group, else the rule that forbids it.
pub fn refused((rule, reason, message): Refusal) -> qaward_kit::Error {
    if reason == "NOT_IN_GROUP" {
        qaward_kit::Error::permission_denied(message)
    } else {
        qaward_kit::Error::rule(rule, reason, message)
    }
}

/// A change of an assignment's seats: who leaves (with the role they had) and who
/// joins or changes role, from the people seated before and after; both (reviewer, role).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reseat {
    pub leaving: Vec<(String, String)>,
    pub seated: Vec<(String, String)>,
}

impl Reseat {
    /// Nothing changes: the same people in the same roles (a repeated reseat).
    pub fn is_empty(&self) -> bool {
        self.leaving.is_empty() && self.seated.is_empty()
    }
}

/// What moving from `before` to `after` does; reviewers compare without case, as ids do.
pub fn reseat(before: &[(String, String)], after: &[(String, String)]) -> Reseat {
    let find = |list: &[(String, String)], r: &str| {
        list.iter()
            .find(|(x, _)| x.eq_ignore_ascii_case(r))
            .map(|(_, role)| role.clone())
    };
    Reseat {
        leaving: before
            .iter()
            .filter(|(r, _)| find(after, r).is_none())
            .cloned()
            .collect(),
        seated: after
            .iter()
            .filter(|(r, role)| find(before, r).as_deref() != Some(role.as_str()))
            .cloned()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r12_r51_a_member_reserves_an_opinion_on_a_signed_consensus_before_release() {
        assert!(may_reserve_opinion(Some("MEMBER"), true, false).is_ok());
        assert_eq!(
            may_reserve_opinion(Some("MEMBER"), false, false)
                .unwrap_err()
                .1,
            "CONSENSUS_NOT_SIGNED"
        );
        assert_eq!(
            may_reserve_opinion(Some("MEMBER"), true, true)
                .unwrap_err()
                .0,
            "R-51"
        );
        assert_eq!(
            may_reserve_opinion(Some("LEADER"), true, false)
                .unwrap_err()
                .1,
            "LEADER_SIGNED"
        );
        assert_eq!(
            may_reserve_opinion(Some("ADVISOR"), true, false)
                .unwrap_err()
                .1,
            "NOT_IN_GROUP"
        );
        assert_eq!(
            may_reserve_opinion(None, true, false).unwrap_err().1,
            "NOT_IN_GROUP"
        );
    }

    #[test]
    fn r12_a_group_has_three_scorers_and_one_leader() {
        assert!(composition_problems("MATERIALS", &["LEADER", "MEMBER", "MEMBER"]).is_empty());
        assert_eq!(composition_problems("SITE", &["LEADER", "MEMBER"]).len(), 1);
        assert_eq!(
            composition_problems("MATERIALS", &["MEMBER", "MEMBER", "MEMBER"]).len(),
            1
        );
    }

    #[test]
    fn r14_advisors_sit_only_on_the_defence_panel() {
        assert!(composition_problems("DEFENCE", &["MEMBER", "MEMBER", "ADVISOR"]).is_empty());
        assert_eq!(
            composition_problems("MATERIALS", &["LEADER", "MEMBER", "MEMBER", "ADVISOR"]).len(),
            1
        );
        assert_eq!(composition_problems("DEFENCE", &["ADVISOR"]).len(), 1);
    }

    #[test]
    fn r41_a_reseat_names_who_leaves_and_who_joins_and_a_repeat_changes_nothing() {
        let p = |r: &str, role: &str| (r.to_string(), role.to_string());
        let before = [p("A", "LEADER"), p("B", "MEMBER"), p("C", "MEMBER")];
        let after = [p("A", "LEADER"), p("D", "MEMBER"), p("C", "MEMBER")];
        let change = reseat(&before, &after);
        assert_eq!(change.leaving, vec![p("B", "MEMBER")]);
        assert_eq!(change.seated, vec![p("D", "MEMBER")]);
        assert!(reseat(&after, &after).is_empty());
        // The leader left: a member is made leader; nobody else leaves.
        let led = [p("C", "LEADER"), p("D", "MEMBER")];
        let change = reseat(&after, &led);
        assert_eq!(change.leaving, vec![p("A", "LEADER")]);
        assert_eq!(change.seated, vec![p("C", "LEADER")]);
        assert!(reseat(&[p("a", "MEMBER")], &[p("A", "MEMBER")]).is_empty());
    }
}
