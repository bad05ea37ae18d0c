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

#[cfg(test)]
mod tests {
    use super::*;

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
}
