//! A re-check of the feedback report: an applicant that failed the materials review may
//! ask for one, once, within the programme's window after the decision; the office answers
//! with its reasons. The seed sets no window: the default (15 days) is ours.

use time::{Date, Duration};

use super::{Explanation, stage::Stage};

/// The last day a re-check may be asked for, `window_days` after the decision's day.
pub fn window_end(decided: Date, window_days: u32) -> Date {
    decided + Duration::days(i64::from(window_days))
}

/// who may ask, and when: an application with a feedback report (MATERIALS_FAILED), on or
/// before the window's last day, once.
pub fn may_request(
    stage: Stage,
    today: Date,
    window_end: Date,
    already: bool,
) -> Result<(), Explanation> {
    if stage != Stage::MaterialsFailed {
        return Err(Explanation::new(
            "R-13",
            "NO_FEEDBACK_REPORT",
            "只有资料评审未通过、收到评审反馈报告的申报可以申请复核",
        )
        .with("stage", stage.as_str()));
    }
    if already {
        return Err(Explanation::new(
            "R-13",
            "ALREADY_REQUESTED",
            "该申报已经申请过复核",
        ));
    }
    if today > window_end {
        return Err(Explanation::new(
            "R-13",
            "RECHECK_WINDOW_CLOSED",
            format!("复核申请期限已过（截至{window_end}）"),
        )
        .with("window_end", window_end)
        .with("today", today));
    }
    Ok(())
}

/// The office answers a pending re-check once.
pub fn may_decide(pending: bool) -> Result<(), Explanation> {
    if pending {
        return Ok(());
    }
    Err(Explanation::new(
        "R-13",
        "ALREADY_DECIDED",
        "该复核申请已有结论",
    ))
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    #[test]
    fn r13_a_failed_applicant_asks_once_within_the_window() {
        let end = window_end(date!(2026 - 07 - 10), 15);
        assert_eq!(end, date!(2026 - 07 - 25));
        assert!(may_request(Stage::MaterialsFailed, end, end, false).is_ok());
        let late = may_request(Stage::MaterialsFailed, date!(2026 - 07 - 26), end, false);
        assert_eq!(late.unwrap_err().reason, "RECHECK_WINDOW_CLOSED");
        let twice = may_request(Stage::MaterialsFailed, end, end, true);
        assert_eq!(twice.unwrap_err().reason, "ALREADY_REQUESTED");
        let passed = may_request(Stage::MaterialsPassed, end, end, false);
        assert_eq!(passed.unwrap_err().reason, "NO_FEEDBACK_REPORT");
        assert_eq!(may_decide(false).unwrap_err().reason, "ALREADY_DECIDED");
    }
}
