//! The working-day calendar (R-31 and every deadline counted in working days): China's public
//! holidays and the weekend days made working days (调休). The years the State Council has
//! published ship in `data/cn-calendar.toml`; later years load from a file of the same form
//! without a release. A date in a year the calendar does not know is an error, never a guess.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use time::{Date, Duration, Weekday, macros::format_description};

const BUILT_IN: &str = include_str!("../data/cn-calendar.toml");

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error(
        "the working-day calendar has no data for {0}; add the year's holiday notice to the calendar file"
    )]
    UnknownYear(i32),
    #[error("invalid calendar data: {0}")]
    Invalid(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    years: BTreeMap<String, YearFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YearFile {
    holidays: Vec<String>,
    workdays: Vec<String>,
}

/// Which days are working days.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendar {
    years: BTreeSet<i32>,
    holidays: BTreeSet<Date>,
    workdays: BTreeSet<Date>,
}

fn parse_date(s: &str) -> Result<Date, CalendarError> {
    Date::parse(s.trim(), format_description!("[year]-[month]-[day]"))
        .map_err(|_| CalendarError::Invalid(format!("{s} is not a YYYY-MM-DD date")))
}

impl Calendar {
    /// The years that ship with qaward (2024-2026).
    pub fn built_in() -> Calendar {
        let mut c = Calendar::default();
        c.add(BUILT_IN).expect("the built-in calendar is valid");
        c
    }

    /// Adds (or replaces) the years of a calendar file's text.
    pub fn add(&mut self, text: &str) -> Result<(), CalendarError> {
        let file: File =
            toml::from_str(text).map_err(|e| CalendarError::Invalid(e.message().to_string()))?;
        for (year, data) in file.years {
            let y: i32 = year
                .parse()
                .map_err(|_| CalendarError::Invalid(format!("{year} is not a year")))?;
            self.holidays.retain(|d| d.year() != y);
            self.workdays.retain(|d| d.year() != y);
            for h in &data.holidays {
                let (from, to) = match h.split_once("..") {
                    Some((a, b)) => (parse_date(a)?, parse_date(b)?),
                    None => (parse_date(h)?, parse_date(h)?),
                };
                if from.year() != y || to.year() != y || to < from {
                    return Err(CalendarError::Invalid(format!(
                        "{h} is not a range within {y}"
                    )));
                }
                let mut d = from;
                while d <= to {
                    self.holidays.insert(d);
                    d += Duration::days(1);
                }
            }
            for w in &data.workdays {
                let d = parse_date(w)?;
                if d.year() != y || !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday) {
                    return Err(CalendarError::Invalid(format!(
                        "{w}: a working weekend day within {y}"
                    )));
                }
                self.workdays.insert(d);
            }
            self.years.insert(y);
        }
        Ok(())
    }

    /// The built-in years plus those of the file at `path`.
    pub fn with_file(path: &std::path::Path) -> Result<Calendar, CalendarError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CalendarError::Invalid(format!("cannot read {}: {e}", path.display())))?;
        let mut c = Calendar::built_in();
        c.add(&text)?;
        Ok(c)
    }

    pub fn is_working_day(&self, d: Date) -> Result<bool, CalendarError> {
        if !self.years.contains(&d.year()) {
            return Err(CalendarError::UnknownYear(d.year()));
        }
        if self.workdays.contains(&d) {
            return Ok(true);
        }
        Ok(!self.holidays.contains(&d)
            && !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday))
    }

    /// The date `n` working days after `from` (not counting `from` itself): "within 15
    /// working days of the accident" ends on `add_working_days(accident, 15)` (R-31).
    pub fn add_working_days(&self, from: Date, n: u32) -> Result<Date, CalendarError> {
        let mut d = from;
        let mut left = n;
        while left > 0 {
            d += Duration::days(1);
            if self.is_working_day(d)? {
                left -= 1;
            }
        }
        Ok(d)
    }

    /// The `n`-th working day before `to` (not counting `to` itself): a reminder "3 working
    /// days before the deadline" goes out on `working_days_before(deadline, 3)`.
    pub fn working_days_before(&self, to: Date, n: u32) -> Result<Date, CalendarError> {
        let mut d = to;
        let mut left = n;
        while left > 0 {
            d -= Duration::days(1);
            if self.is_working_day(d)? {
                left -= 1;
            }
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    #[test]
    fn r31_tiaoxiu_weekend_days_are_working_days_and_holidays_are_not() {
        let c = Calendar::built_in();
        // Sundays and Saturdays made working days.
        assert!(c.is_working_day(date!(2024 - 02 - 04)).unwrap());
        assert!(c.is_working_day(date!(2025 - 01 - 26)).unwrap());
        assert!(c.is_working_day(date!(2026 - 02 - 28)).unwrap());
        // Weekday holidays.
        assert!(!c.is_working_day(date!(2025 - 05 - 05)).unwrap());
        assert!(!c.is_working_day(date!(2026 - 10 - 07)).unwrap());
        // An ordinary weekend and an ordinary weekday.
        assert!(!c.is_working_day(date!(2026 - 03 - 07)).unwrap());
        assert!(c.is_working_day(date!(2026 - 03 - 09)).unwrap());
    }

    #[test]
    fn working_days_before_a_deadline_skip_the_holiday_and_count_tiaoxiu_days() {
        // Deadline Tue 2026-03-03: back over Mon 2 Mar, Sat 28 Feb (调休), Fri 27 Feb ... the
        // Spring Festival holiday (15-23 Feb) is skipped, Sat 14 Feb (调休) counts.
        let c = Calendar::built_in();
        let d = date!(2026 - 03 - 03);
        assert_eq!(c.working_days_before(d, 1).unwrap(), date!(2026 - 03 - 02));
        assert_eq!(c.working_days_before(d, 2).unwrap(), date!(2026 - 02 - 28));
        assert_eq!(c.working_days_before(d, 7).unwrap(), date!(2026 - 02 - 14));
        assert_eq!(c.working_days_before(d, 8).unwrap(), date!(2026 - 02 - 13));
        assert_eq!(c.working_days_before(d, 0).unwrap(), d);
        assert_eq!(
            c.working_days_before(date!(2024 - 01 - 02), 2),
            Err(CalendarError::UnknownYear(2023))
        );
    }

    #[test]
    fn r31_fifteen_working_days_across_the_spring_festival() {
        // 2026-02-10 (Tue): 11, 12, 13, 14 (Sat, 调休), holiday 15-23, 24, 25, 26, 27, 28 (Sat,
        // 调休), 2 Mar, 3, 4, 5, 6, 9 Mar.
        let c = Calendar::built_in();
        assert_eq!(
            c.add_working_days(date!(2026 - 02 - 10), 15).unwrap(),
            date!(2026 - 03 - 09)
        );
        assert_eq!(
            c.add_working_days(date!(2026 - 03 - 06), 1).unwrap(),
            date!(2026 - 03 - 09)
        );
    }

    #[test]
    fn a_year_not_in_the_calendar_is_an_error_until_its_file_is_added() {
        let mut c = Calendar::built_in();
        assert_eq!(
            c.is_working_day(date!(2027 - 03 - 01)),
            Err(CalendarError::UnknownYear(2027))
        );
        // A deadline that runs into an unknown year is an error too, not a guess.
        assert_eq!(
            c.add_working_days(date!(2026 - 12 - 28), 10),
            Err(CalendarError::UnknownYear(2027))
        );
        c.add("[years.2027]\nholidays = [\"2027-01-01\"]\nworkdays = []\n")
            .unwrap();
        assert!(!c.is_working_day(date!(2027 - 01 - 01)).unwrap());
        assert!(c.is_working_day(date!(2027 - 03 - 01)).unwrap());
        // Bad data is refused whole.
        assert!(
            c.add("[years.2028]\nholidays = [\"2028-02-30\"]\nworkdays = []\n")
                .is_err()
        );
        assert!(
            c.add("[years.2028]\nholidays = []\nworkdays = [\"2028-03-01\"]\n")
                .is_err()
        );
    }
}
