//! The cycle board: what an application in each stage waits for, by
//! which date, and whether it is late.

use super::{Explanation, cycle::CycleState, stage::Stage};
use Stage::*;

/// What an application in `stage` is waiting for, for the cycle board; `deadline` is the
/// cycle's submission deadline as people read it, `review_ends` the last day of the window of
/// the group reviewing it now, and `visit_stopped` whether its site group stopped the visit.
pub fn open_deadlines(
    stage: Stage,
    deadline: &str,
    review_ends: Option<&str>,
    visit_stopped: bool,
) -> Vec<String> {
    let by = |what: &str, rule: &str| match review_ends {
        Some(end) => format!("{what}：{end}前（{rule}）"),
        None => format!("{what}（{rule}）"),
    };
    match stage {
        Draft => vec![format!("提交申报材料：{deadline}前（R-01）")],
        Submitted => vec!["推荐单位出具推荐意见（R-05）".to_string()],
        Recommended => vec!["评选委员会办公室受理审查（R-05）".to_string()],
        Accepted => vec!["抽取资料评审组（R-12）".to_string()],
        MaterialsReview => vec![by("资料评审组独立评分并形成共识", "R-12")],
        MaterialsPassed => vec!["抽取陈述答辩评审组（R-14）".to_string()],
        Defence => vec![
            by("陈述答辩评分", "R-14"),
            "抽取现场评审组（R-15）".to_string(),
        ],
        SiteVisit if visit_stopped => {
            vec!["评选委员会办公室确认现场评审发现的问题（R-15）".to_string()]
        }
        SiteVisit => vec![by("现场评审并形成共识评分", "R-15")],
        Scored => vec!["发布评审结果（R-16）".to_string()],
        FinalSelection => vec!["确定候选企业（R-17）".to_string()],
        Candidate => vec!["征求有关部门意见（R-20）".to_string()],
        PublicNotice => vec![
            by("公示并处理异议", "R-21"),
            "评选委员会审议（R-22）".to_string(),
        ],
        _ => Vec::new(),
    }
}

/// Whether an application in `stage` is late on `today`, and by which rule: still a draft after
/// the cycle's submission deadline, or still in a review stage after the last day of
/// its group's window (R-12 materials, R-14 defence, R-15 site visit). A stopped site visit
/// waits for the office, not the group. A never-submitted draft is late only while its cycle
/// is still before its decision: once the cycle is decided, vacant or approved, it is no
/// application and owes nothing (issue 25, item 7). Dates are China Standard Time calendar
/// days; the last day itself is not late.
pub fn overdue(
    stage: Stage,
    cycle: crate::domain::cycle::CycleState,
    deadline: time::Date,
    review_ends: Option<time::Date>,
    visit_stopped: bool,
    today: time::Date,
) -> Option<Explanation> {
    let (due, rule, what) = match stage {
        Draft if matches!(cycle, CycleState::Open | CycleState::PublicNotice) => {
            (deadline, "R-01", "申报材料提交期限")
        }
        MaterialsReview => (review_ends?, "R-12", "资料评审组评审期"),
        Defence => (review_ends?, "R-14", "陈述答辩评审期"),
        SiteVisit if !visit_stopped => (review_ends?, "R-15", "现场评审期"),
        _ => return None,
    };
    let date = qaward_kit::convert::chinese_date(due);
    (today > due).then(|| {
        Explanation::new(
            rule,
            "OVERDUE",
            format!("逾期：{what}已于{date}结束（{rule}）"),
        )
        .with("due_date", due)
        .with("today", today)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_board_says_what_each_stage_waits_for() {
        assert_eq!(
            open_deadlines(Draft, "2026年6月30日", None, false),
            ["提交申报材料：2026年6月30日前（R-01）"]
        );
        assert_eq!(open_deadlines(Submitted, "x", None, false).len(), 1);
        assert!(open_deadlines(Withdrawn, "x", None, false).is_empty());
        assert_eq!(
            open_deadlines(MaterialsReview, "x", Some("2026年7月10日"), false),
            ["资料评审组独立评分并形成共识：2026年7月10日前（R-12）"]
        );
        assert!(open_deadlines(SiteVisit, "x", Some("y"), true)[0].contains("确认"));
    }

    #[test]
    fn r01_r12_r14_r15_a_stage_is_overdue_the_day_after_its_last_day() {
        use time::macros::date;
        let (deadline, ends) = (date!(2026 - 06 - 30), date!(2026 - 07 - 10));
        // The last day itself is not late; the next is.
        assert!(
            overdue(
                Draft,
                CycleState::Open,
                deadline,
                None,
                false,
                date!(2026 - 06 - 30)
            )
            .is_none()
        );
        let late = overdue(
            Draft,
            CycleState::Open,
            deadline,
            None,
            false,
            date!(2026 - 07 - 01),
        )
        .unwrap();
        // Once the cycle is decided, a never-submitted draft owes nothing.
        for closed in [
            CycleState::Decided,
            CycleState::Vacant,
            CycleState::Approved,
        ] {
            assert!(overdue(Draft, closed, deadline, None, false, date!(2026 - 12 - 01)).is_none());
        }
        assert_eq!(late.rule, "R-01");
        assert_eq!(late.inputs["due_date"], "2026-06-30");
        assert!(late.message.contains("2026年6月30日"), "{}", late.message);
        for (stage, rule) in [
            (MaterialsReview, "R-12"),
            (Defence, "R-14"),
            (SiteVisit, "R-15"),
        ] {
            assert!(overdue(stage, CycleState::Open, deadline, Some(ends), false, ends).is_none());
            let late = overdue(
                stage,
                CycleState::Open,
                deadline,
                Some(ends),
                false,
                date!(2026 - 07 - 11),
            );
            assert_eq!(late.map(|e| e.rule), Some(rule));
            // No group yet: nothing to be late against.
            assert!(
                overdue(
                    stage,
                    CycleState::Open,
                    deadline,
                    None,
                    false,
                    date!(2027 - 01 - 01)
                )
                .is_none()
            );
        }
        // A stopped visit waits for the office's confirmation, not for the group.
        assert!(
            overdue(
                SiteVisit,
                CycleState::Open,
                deadline,
                Some(ends),
                true,
                date!(2026 - 08 - 01)
            )
            .is_none()
        );
        // Other stages wait for people without a date the system knows.
        assert!(
            overdue(
                Accepted,
                CycleState::Open,
                deadline,
                Some(ends),
                false,
                date!(2027 - 01 - 01)
            )
            .is_none()
        );
    }
}
