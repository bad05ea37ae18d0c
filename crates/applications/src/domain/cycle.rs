//! A cycle's life: open for applications from its notice, then its
//! candidates on public notice, then decided by the committee — or vacant, when no one is
//! awarded — then approved by the county government. Stored as its upper-case name.

/// Where a cycle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CycleState {
    Open,
    PublicNotice,
    Decided,
    Vacant,
    Approved,
}

impl CycleState {
    pub const ALL: [CycleState; 5] = [
        CycleState::Open,
        CycleState::PublicNotice,
        CycleState::Decided,
        CycleState::Vacant,
        CycleState::Approved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CycleState::Open => "OPEN",
            CycleState::PublicNotice => "PUBLIC_NOTICE",
            CycleState::Decided => "DECIDED",
            CycleState::Vacant => "VACANT",
            CycleState::Approved => "APPROVED",
        }
    }

    pub fn parse(s: &str) -> Option<CycleState> {
        CycleState::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// a cycle's application deadline falls in the cycle's own year (China time): the
/// notice of the 2026 award closes in 2026. `None` when it does; else why not.
pub fn deadline_problem(year: i32, deadline: time::Date) -> Option<String> {
    (deadline.year() != year).then(|| {
        format!(
            "the deadline {deadline} is not in the cycle's year {year} (R-01: each year's notice closes in that year)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_stored_by_name_and_read_back() {
        for s in CycleState::ALL {
            assert_eq!(CycleState::parse(s.as_str()), Some(s));
        }
        assert_eq!(CycleState::parse("open"), None);
    }

    #[test]
    fn r01_a_cycles_deadline_falls_in_its_year() {
        let d = |y, m, day| {
            time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), day).unwrap()
        };
        assert_eq!(deadline_problem(2026, d(2026, 6, 30)), None);
        assert_eq!(deadline_problem(2026, d(2026, 12, 31)), None);
        assert!(
            deadline_problem(2026, d(2027, 1, 1))
                .unwrap()
                .contains("2027-01-01")
        );
        assert!(deadline_problem(2026, d(2025, 12, 31)).is_some());
    }
}
