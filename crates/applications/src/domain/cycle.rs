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
}
