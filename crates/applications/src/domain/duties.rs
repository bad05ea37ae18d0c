//! What an award holder owes afterwards and what revocation does:
//! the annual report's due date and who is overdue, the incident report's deadline in working
//! days of the shared calendar, and the end of the ban a revocation causes.

use qaward_kit::calendar::{Calendar, CalendarError};
use time::{Date, Month};

use super::Explanation;

/// the day of the year the annual report is due (Art. 18: "每年6月底前", so 30 June by
/// default), a programme setting written `MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueDay {
    pub month: Month,
    pub day: u8,
}

impl DueDay {
    pub const END_OF_JUNE: DueDay = DueDay {
        month: Month::June,
        day: 30,
    };

    /// `MM-DD`, a day every year has (so not 29 February).
    pub fn parse(s: &str) -> Option<DueDay> {
        let (m, d) = s.split_once('-')?;
        if m.len() != 2 || d.len() != 2 {
            return None;
        }
        let month = Month::try_from(m.parse::<u8>().ok()?).ok()?;
        let day = d.parse::<u8>().ok()?;
        // 2027 is no leap year: a day it has, every year has.
        Date::from_calendar_date(2027, month, day).ok()?;
        Some(DueDay { month, day })
    }
}

/// the annual self-assessment report on `report_year` is due by `due` of the next year.
pub fn annual_due(report_year: i32, due: DueDay) -> Date {
    Date::from_calendar_date(report_year + 1, due.month, due.day).expect("a day every year has")
}

/// the reports an award made on `award_date` is reminded of when it is granted: one a
/// year, on the award's year and the `years - 1` after it, each due `due` of the next year.
/// `years` is the programme's ban years (the years the award holds before its holder may
/// apply again); the overdue list ([`overdue_annual`]) keeps counting after them.
pub fn report_reminders(award_date: Date, years: u32, due: DueDay) -> Vec<(i32, Date)> {
    (0..years as i32)
        .map(|i| award_date.year() + i)
        .map(|y| (y, annual_due(y, due)))
        .collect()
}

/// the report years an award holder owes by `today` and has not filed, with their due
/// dates: one a year from the year of the award, each overdue once its due day has passed.
pub fn overdue_annual(
    award_date: Date,
    filed: &[i32],
    today: Date,
    due: DueDay,
) -> Vec<(i32, Date)> {
    (award_date.year()..today.year())
        .map(|y| (y, annual_due(y, due)))
        .filter(|(y, due)| *due < today && !filed.contains(y))
        .collect()
}

/// an incident report is due within `days` working days of the event (Art. 19: 15 by
/// default), counted on the national holiday calendar with its make-up working days.
pub fn incident_due(calendar: &Calendar, event: Date, days: u32) -> Result<Date, CalendarError> {
    calendar.add_working_days(event, days)
}

/// an incident report is an award holder's duty, so the incident happened on or after the
/// award; one before it is no report of a holder (issue 25, item 7). Why not, if it is not.
pub fn incident_date_problem(event: Date, award_date: Date) -> Option<String> {
    (event < award_date).then(|| {
        format!(
            "the incident on {event} is before the award on {award_date}: R-31 covers award holders"
        )
    })
}

/// Why a report filed on `filed` is late, if it is.
pub fn lateness(rule: &'static str, filed: Date, due: Date) -> Option<Explanation> {
    (filed > due).then(|| {
        Explanation::new(
            rule,
            "FILED_LATE",
            format!("应于{due}前报送，实际于{filed}报送"),
        )
        .with("due_date", due)
        .with("filed_date", filed)
    })
}

/// the day a revocation's ban ends (`ban_years` after it, the same calendar day; 29
/// February falls back to 28 February).
pub fn ban_ends(revoked: Date, ban_years: u32) -> Date {
    let y = revoked.year() + ban_years as i32;
    Date::from_calendar_date(y, revoked.month(), revoked.day())
        .or_else(|_| Date::from_calendar_date(y, revoked.month(), 28))
        .expect("a 28th exists in every month")
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    const J: DueDay = DueDay::END_OF_JUNE;

    #[test]
    fn r30_one_report_a_year_due_by_30_june_after_it() {
        assert_eq!(annual_due(2026, J), date!(2027 - 06 - 30));
        let award = date!(2026 - 07 - 20);
        assert_eq!(overdue_annual(award, &[], date!(2027 - 06 - 30), J), []);
        assert_eq!(
            overdue_annual(award, &[], date!(2027 - 07 - 01), J),
            [(2026, date!(2027 - 06 - 30))]
        );
        assert_eq!(
            overdue_annual(award, &[2026], date!(2028 - 07 - 01), J),
            [(2027, date!(2028 - 06 - 30))]
        );
    }

    #[test]
    fn r31_fifteen_working_days_cross_the_national_day_holiday_and_its_make_up_saturday() {
        let c = Calendar::built_in();
        // 28 Sep 2026: 29-30 Sep, (1-7 Oct off), 8-9 Oct, Sat 10 Oct worked, 12-16, 19-23 Oct.
        assert_eq!(
            incident_due(&c, date!(2026 - 09 - 28), 15).unwrap(),
            date!(2026 - 10 - 23)
        );
        let late = lateness("R-31", date!(2026 - 10 - 26), date!(2026 - 10 - 23)).unwrap();
        assert_eq!((late.rule, late.reason), ("R-31", "FILED_LATE"));
        assert!(lateness("R-31", date!(2026 - 10 - 23), date!(2026 - 10 - 23)).is_none());
    }

    #[test]
    fn r33_the_ban_ends_three_years_on() {
        assert_eq!(ban_ends(date!(2026 - 08 - 01), 3), date!(2029 - 08 - 01));
        assert_eq!(ban_ends(date!(2028 - 02 - 29), 3), date!(2031 - 02 - 28));
    }

    #[test]
    fn r30_an_award_is_reminded_of_a_report_a_year_each_due_by_the_end_of_june() {
        let awarded = Date::from_calendar_date(2026, Month::May, 20).unwrap();
        let due = report_reminders(awarded, 3, J);
        assert_eq!(
            due,
            vec![
                (
                    2026,
                    Date::from_calendar_date(2027, Month::June, 30).unwrap()
                ),
                (
                    2027,
                    Date::from_calendar_date(2028, Month::June, 30).unwrap()
                ),
                (
                    2028,
                    Date::from_calendar_date(2029, Month::June, 30).unwrap()
                ),
            ]
        );
        assert!(report_reminders(awarded, 0, J).is_empty());
    }

    #[test]
    fn r31_an_incident_before_the_award_is_no_holders_report() {
        let d = |m, day| Date::from_calendar_date(2026, m, day).unwrap();
        assert!(incident_date_problem(d(Month::July, 1), d(Month::July, 20)).is_some());
        assert_eq!(
            incident_date_problem(d(Month::July, 20), d(Month::July, 20)),
            None
        );
        assert_eq!(
            incident_date_problem(d(Month::September, 28), d(Month::July, 20)),
            None
        );
    }

    #[test]
    fn r30_r31_a_county_with_other_dates_gets_other_deadlines() {
        let march = DueDay::parse("03-31").unwrap();
        assert_eq!(annual_due(2026, march), date!(2027 - 03 - 31));
        let award = date!(2026 - 07 - 20);
        assert_eq!(
            overdue_annual(award, &[], date!(2027 - 04 - 01), march),
            [(2026, date!(2027 - 03 - 31))]
        );
        assert!(overdue_annual(award, &[], date!(2027 - 04 - 01), J).is_empty());
        for bad in ["02-29", "13-01", "6-30", "06-31", "0630", ""] {
            assert!(DueDay::parse(bad).is_none(), "{bad}");
        }
        let c = Calendar::built_in();
        // Ten working days from Monday 7 Sep 2026: 8-11, 14-18 Sep, and Sunday 20 Sep, a
        // make-up working day of the calendar.
        assert_eq!(
            incident_due(&c, date!(2026 - 09 - 07), 10).unwrap(),
            date!(2026 - 09 - 20)
        );
    }
}
