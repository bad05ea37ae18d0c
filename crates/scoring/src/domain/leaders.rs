//! The group leaders' meeting after the site visits (Art. 16(5)4: "现场评审结束后，评审委员会组织
//! 召开评审组长会议，由各评审组长分别汇报现场评审情况，统一评审结果"): every site group's leader
//! attends and reports, the meeting may change a group's agreed score (each change a new version
//! of its consensus, R-51), it is held once, and the site results are released only after it.

use std::collections::BTreeSet;

use qaward_kit::{Error, Result};

use super::{
    lifecycle::{ItemEntry, NO_SIGNED_CONSENSUS, Sheet},
    rubric::Rubric,
};

/// R-15, Art. 16(5)4: the attendees are exactly the leaders of the cycle's site groups: each
/// leader reports, and nobody else sits as one. Ids compare without case.
pub fn attendance(leaders: &BTreeSet<String>, attendees: &[String]) -> Result<()> {
    let up: BTreeSet<String> = attendees.iter().map(|a| a.to_uppercase()).collect();
    let absent: Vec<&str> = leaders
        .iter()
        .filter(|l| !up.contains(&l.to_uppercase()))
        .map(String::as_str)
        .collect();
    if !absent.is_empty() {
        return Err(Error::rule(
            "R-15",
            "LEADER_ABSENT",
            format!(
                "每个现场评审组组长都须到会汇报（Art. 16(5)4）；未到会：{}",
                absent.join("、")
            ),
        ));
    }
    let strangers: Vec<&str> = attendees
        .iter()
        .filter(|a| !leaders.iter().any(|l| l.eq_ignore_ascii_case(a)))
        .map(String::as_str)
        .collect();
    if !strangers.is_empty() {
        return Err(Error::rule(
            "R-15",
            "NOT_A_LEADER",
            format!(
                "组长会议由各现场评审组组长参加；不是组长：{}",
                strangers.join("、")
            ),
        ));
    }
    Ok(())
}

/// Held once per cycle, while the site stage is not released, and only with site groups.
pub fn may_hold(site_groups: usize, held: bool, released: bool) -> Result<()> {
    if site_groups == 0 {
        return Err(Error::rule(
            "R-15",
            "NO_SITE_GROUPS",
            "本周期没有现场评审组，无需召开组长会议",
        ));
    }
    if released {
        return Err(Error::rule(
            "R-51",
            "STAGE_RELEASED",
            "现场评审结果已发布，组长会议须在发布之前召开",
        ));
    }
    if held {
        return Err(Error::rule(
            "R-15",
            "ALREADY_HELD",
            "本周期的组长会议已经召开",
        ));
    }
    Ok(())
}

/// Art. 16(5)4: a change the meeting makes to a group's agreed score needs the group's signed
/// consensus (`signed`, if there is one), and is its next version with the meeting's reason
/// the consensus and that version. `what` names the change in a refusal.
pub fn unify(
    signed: Option<Sheet>,
    rubric: &Rubric,
    changed: Vec<ItemEntry>,
    reason: &str,
    at: i64,
    what: &str,
) -> Result<(Sheet, Sheet)> {
    let Some(old) = signed else {
        return Err(Error::rule(
            "R-15",
            NO_SIGNED_CONSENSUS,
            format!("{what}: the group has not signed its consensus"),
        ));
    };
    let why = format!("Art. 16(5)4 组长会议统一评审结果：{reason}");
    let new = old.unified(rubric, changed, &why, at)?;
    Ok((old, new))
}

/// Art. 16(5)4: the site results are released after the leaders' meeting unified them.
pub fn site_release_ready(site_groups: usize, held: bool) -> Result<()> {
    if site_groups > 0 && !held {
        return Err(Error::rule(
            "R-15",
            "LEADERS_MEETING_MISSING",
            "现场评审结束后须先召开评审组长会议统一评审结果，再发布现场评审结果（Art. 16(5)4）",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(e: Error) -> String {
        e.reason.clone()
    }

    #[test]
    fn r15_every_site_leader_attends_and_only_leaders() {
        let leaders: BTreeSet<String> = ["CQZJ-0005".into(), "CQZJ-0009".into()].into();
        assert!(attendance(&leaders, &["cqzj-0005".into(), "CQZJ-0009".into()]).is_ok());
        let e = attendance(&leaders, &["CQZJ-0005".into()]).unwrap_err();
        assert_eq!(reason(e), "LEADER_ABSENT");
        let e = attendance(
            &leaders,
            &["CQZJ-0005".into(), "CQZJ-0009".into(), "CQZJ-0001".into()],
        )
        .unwrap_err();
        assert_eq!(reason(e), "NOT_A_LEADER");
    }

    #[test]
    fn r15_a_change_needs_the_groups_signed_consensus() {
        let rubric = Rubric::gbt_19580_2012();
        let e = unify(
            None,
            &rubric,
            Vec::new(),
            "统一尺度",
            1,
            "meeting.changes[0]",
        )
        .unwrap_err();
        assert_eq!(reason(e), NO_SIGNED_CONSENSUS);
    }

    #[test]
    fn r15_held_once_before_the_release_which_waits_for_it() {
        assert_eq!(
            reason(may_hold(1, true, false).unwrap_err()),
            "ALREADY_HELD"
        );
        assert_eq!(
            reason(may_hold(1, false, true).unwrap_err()),
            "STAGE_RELEASED"
        );
        assert_eq!(
            reason(may_hold(0, false, false).unwrap_err()),
            "NO_SITE_GROUPS"
        );
        assert!(may_hold(2, false, false).is_ok());
        assert_eq!(
            reason(site_release_ready(2, false).unwrap_err()),
            "LEADERS_MEETING_MISSING"
        );
        assert!(site_release_ready(2, true).is_ok());
        assert!(site_release_ready(0, false).is_ok());
    }
}
