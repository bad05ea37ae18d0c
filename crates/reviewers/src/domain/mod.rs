//! The reviewer pool's rules, pure: no I/O, no clock, no randomness of their own.
//!
//! | module        | rules                                                            |
//! |---------------|------------------------------------------------------------------|
//! | `policy`      | a programme's draw policy and group sizes (Art. 8, 16(3-5))      |
//! | `registry`    | reading and validating the municipal registry       |
//! | `eligibility` | conflicts and exclusions with reasons         |
//! | `pool`        | who is in a draw's pool and who is excluded, and why (R-40-R-44) |
//! | `draw`        | the verifiable draw, its replay and replacements    |
//! | `entropy`     | parties commit, a public value, reveals: entropy no one controls (R-53) |
//! | `lifecycle`   | a draw prepared, executed once with its committed entropy (R-45) |
//! | `panel`       | a drawn group's seats: answers, replacements, leader (R-41, R-45) |
//! | `record`      | a reviewer's record: training, certificate, assessments, conduct (Art. 6(3), R-42) |

pub mod draw;
pub mod eligibility;
pub mod entropy;
pub mod lifecycle;
pub mod panel;
pub mod policy;
pub mod pool;
pub mod record;
pub mod registry;

/// What a group is drawn for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    MaterialsGroup,
    DefencePanel,
    SiteGroup,
    /// The year's appointees of a programme (R-40, Rev. Art. 2-3).
    AnnualAppointment,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::MaterialsGroup => "MATERIALS_GROUP",
            Purpose::DefencePanel => "DEFENCE_PANEL",
            Purpose::SiteGroup => "SITE_GROUP",
            Purpose::AnnualAppointment => "ANNUAL_APPOINTMENT",
        }
    }

    /// Whether a draw for this purpose is a review: it books its members' days and records
    /// whom they reviewed. An appointment is neither.
    pub fn is_review(self) -> bool {
        self != Purpose::AnnualAppointment
    }

    pub fn parse(s: &str) -> Option<Purpose> {
        [
            Purpose::MaterialsGroup,
            Purpose::DefencePanel,
            Purpose::SiteGroup,
            Purpose::AnnualAppointment,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}
