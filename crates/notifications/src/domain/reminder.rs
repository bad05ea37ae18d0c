//! Reminders before a deadline (R-30: the annual report by 30 June; R-31: the incident report
//! within 15 working days): which days, counted on the calendar or on the working-day
//! calendar, and at what time. Each reminder tells its recipient the deadline and how many
//! days are left.

use qaward_kit::calendar::{Calendar, CalendarError};
use time::{Date, Duration, OffsetDateTime, Time};

/// Deadlines and reminder days are China Standard Time dates.
pub use qaward_kit::clock::CHINA;
/// Reminders go out at 09:00 China time on their day.
pub const SEND_AT: Time = time::macros::time!(09:00);
/// The most reminders one deadline may have, and the furthest ahead one may be.
pub const MAX_REMINDERS: usize = 10;
pub const MAX_DAYS_BEFORE: u32 = 366;

/// The variables a reminder fills in itself; its event must carry them.
pub const DEADLINE_VAR: &str = "deadline";
pub const DAYS_LEFT_VAR: &str = "days_left";

/// One reminder to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    pub send_at: OffsetDateTime,
    pub days_left: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleError {
    /// `days_before` is empty, too long, repeats a day or goes too far.
    Days(String),
    /// Every reminder day has already passed.
    AllPassed,
    Calendar(CalendarError),
}

pub use qaward_kit::convert::chinese_date;

/// The date of a deadline in China.
pub fn deadline_date(deadline: OffsetDateTime) -> Date {
    deadline.to_offset(CHINA).date()
}

/// The reminders for `deadline`, `days_before` it (calendar days, or working days on
/// `calendar`), at 09:00 China time, leaving out those whose time has passed at `now` and any
/// that would fall after the deadline itself. Sorted by time.
pub fn schedule(
    deadline: OffsetDateTime,
    days_before: &[u32],
    working_days: bool,
    calendar: &Calendar,
    now: OffsetDateTime,
) -> Result<Vec<Occurrence>, ScheduleError> {
    if days_before.is_empty() || days_before.len() > MAX_REMINDERS {
        return Err(ScheduleError::Days(format!(
            "must name 1-{MAX_REMINDERS} days"
        )));
    }
    let mut seen = Vec::new();
    for d in days_before {
        if *d > MAX_DAYS_BEFORE {
            return Err(ScheduleError::Days(format!(
                "{d} is more than {MAX_DAYS_BEFORE} days"
            )));
        }
        if seen.contains(d) {
            return Err(ScheduleError::Days(format!("names {d} twice")));
        }
        seen.push(*d);
    }
    let due = deadline_date(deadline);
    let mut out = Vec::new();
    for &n in days_before {
        let day = if working_days {
            calendar
                .working_days_before(due, n)
                .map_err(ScheduleError::Calendar)?
        } else {
            due - Duration::days(i64::from(n))
        };
        let send_at = day.with_time(SEND_AT).assume_offset(CHINA);
        if send_at > now && send_at <= deadline {
            out.push(Occurrence {
                send_at,
                days_left: n,
            });
        }
    }
    if out.is_empty() {
        return Err(ScheduleError::AllPassed);
    }
    out.sort_by_key(|o| o.send_at);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;

    #[test]
    fn r30_annual_report_reminders_30_7_and_1_days_before_30_june() {
        let deadline = datetime!(2026-06-30 23:59:59 +8);
        let now = datetime!(2026-05-01 10:00 +8);
        let s = schedule(deadline, &[30, 7, 1], false, &Calendar::built_in(), now).unwrap();
        let days: Vec<_> = s.iter().map(|o| (o.send_at, o.days_left)).collect();
        assert_eq!(
            days,
            [
                (datetime!(2026-05-31 09:00 +8), 30),
                (datetime!(2026-06-23 09:00 +8), 7),
                (datetime!(2026-06-29 09:00 +8), 1),
            ]
        );
        assert_eq!(chinese_date(deadline_date(deadline)), "2026年6月30日");
    }

    #[test]
    fn r31_working_day_reminders_skip_holidays_and_count_tiaoxiu_days() {
        // An accident on Fri 2026-09-25 (itself a Mid-Autumn holiday): the report is due 15
        // working days later, across the National Day holiday (1-7 Oct) and counting the 调休
        // Saturday 10 Oct.
        let c = Calendar::built_in();
        let due = c.add_working_days(date!(2026 - 09 - 25), 15).unwrap();
        assert_eq!(due, date!(2026 - 10 - 22));
        let deadline = due
            .with_time(time::macros::time!(17:30))
            .assume_offset(CHINA);
        let now = datetime!(2026-09-25 12:00 +8);
        let s = schedule(deadline, &[9, 3, 1], true, &c, now).unwrap();
        let days: Vec<_> = s.iter().map(|o| o.send_at.date()).collect();
        // 9 working days before Thu 22 Oct: 21, 20, 19, 16, 15, 14, 13, 12, 10 (Sat, 调休).
        assert_eq!(
            days,
            [
                date!(2026 - 10 - 10),
                date!(2026 - 10 - 19),
                date!(2026 - 10 - 21)
            ]
        );
    }

    #[test]
    fn passed_days_are_left_out_and_bad_days_are_refused() {
        let c = Calendar::built_in();
        let deadline = datetime!(2026-06-30 18:00 +8);
        let now = datetime!(2026-06-25 12:00 +8);
        let s = schedule(deadline, &[30, 7, 1, 0], false, &c, now).unwrap();
        assert_eq!(s.iter().map(|o| o.days_left).collect::<Vec<_>>(), [1, 0]);
        assert_eq!(
            schedule(deadline, &[30], false, &c, now),
            Err(ScheduleError::AllPassed)
        );
        assert!(matches!(
            schedule(deadline, &[], false, &c, now),
            Err(ScheduleError::Days(_))
        ));
        assert!(matches!(
            schedule(deadline, &[1, 1], false, &c, now),
            Err(ScheduleError::Days(_))
        ));
        assert!(matches!(
            schedule(deadline, &[400], false, &c, now),
            Err(ScheduleError::Days(_))
        ));
        // A deadline in a year the calendar does not know is an error, not a guess.
        let far = datetime!(2027-03-01 18:00 +8);
        assert_eq!(
            schedule(far, &[3], true, &c, now),
            Err(ScheduleError::Calendar(CalendarError::UnknownYear(2027)))
        );
    }
}
