//! A programme's draw policy (Art. 8, 16(3-5)): versioned data, validated when saved.

use serde::{Deserialize, Serialize};

use super::{Purpose, draw::SpecialityNeed, entropy};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawPolicy {
    pub materials_group_min: u32,
    pub materials_group_max: u32,
    pub site_group_min: u32,
    pub site_group_max: u32,
    pub defence_panel_min: u32,
    pub backups_per_draw: u32,
    /// Draws a reviewer may join in one calendar year of this programme.
    pub yearly_cap: u32,
    /// Days after the end of one assignment before the next may start.
    pub cooldown_days: u32,
    pub leader_must_be_qualified: bool,
    /// Minimum members per speciality code in every group.
    pub speciality_quotas: Vec<(String, u32)>,
    /// the roles whose members commit to the entropy of each draw, in order; a role may be
    /// named twice for two of its members.
    #[serde(default = "default_parties")]
    pub entropy_parties: Vec<String>,
    /// hours from preparing a draw until every commitment and reveal is due.
    #[serde(default = "default_reveal_hours")]
    pub reveal_hours: u32,
}

fn default_parties() -> Vec<String> {
    entropy::DEFAULT_PARTIES
        .iter()
        .map(|r| r.to_string())
        .collect()
}

fn default_reveal_hours() -> u32 {
    entropy::DEFAULT_REVEAL_HOURS
}

impl Default for DrawPolicy {
    /// The seed's numbers: groups of 3-5 (Art. 8), a defence panel of at least 5 (Art. 16(4)).
    fn default() -> Self {
        DrawPolicy {
            materials_group_min: 3,
            materials_group_max: 5,
            site_group_min: 3,
            site_group_max: 5,
            defence_panel_min: 5,
            backups_per_draw: 3,
            yearly_cap: 6,
            cooldown_days: 0,
            leader_must_be_qualified: true,
            speciality_quotas: Vec::new(),
            entropy_parties: default_parties(),
            reveal_hours: default_reveal_hours(),
        }
    }
}

/// A policy field that breaks a rule: (field, what is wrong).
pub type Violation = (&'static str, String);

/// Art. 8: a review group (materials or site) has 3 to 5 reviewers.
pub const GROUP_SIZE: std::ops::RangeInclusive<u32> = 3..=5;
/// Art. 16(4): a defence panel has at least 5 reviewers. The seed sets no ceiling; this one
/// keeps a mistyped number from booking the whole registry.
pub const DEFENCE_PANEL_SIZE: std::ops::RangeInclusive<u32> = 5..=25;
/// Ordered backups drawn with a group: none at all may be asked for.
pub const BACKUPS: std::ops::RangeInclusive<u32> = 0..=20;

/// The one check of how many reviewers a group or panel for `purpose` may have — for a
/// programme's draw policy here and for the award programme's settings in the applications
/// service, which sets the sizes its draws ask for. None when `size` is allowed.
pub fn size_problem(purpose: Purpose, size: u32) -> Option<String> {
    let (range, rule) = match purpose {
        Purpose::MaterialsGroup | Purpose::SiteGroup => (GROUP_SIZE, "Art. 8"),
        Purpose::DefencePanel => (DEFENCE_PANEL_SIZE, "Art. 16(4)"),
        Purpose::AnnualAppointment => return None,
    };
    (!range.contains(&size)).then(|| {
        format!(
            "a {} has {}-{} reviewers ({rule}), not {size}",
            match purpose {
                Purpose::DefencePanel => "defence panel",
                _ => "review group",
            },
            range.start(),
            range.end()
        )
    })
}

/// The one check of how many ordered backups a draw may take.
pub fn backups_problem(backups: u32) -> Option<String> {
    (!BACKUPS.contains(&backups)).then(|| {
        format!(
            "{}-{} backups, not {backups}",
            BACKUPS.start(),
            BACKUPS.end()
        )
    })
}

impl DrawPolicy {
    /// Every problem at once, so the office fixes them in one round.
    pub fn validate(&self) -> Vec<Violation> {
        let mut v = Vec::new();
        let mut range = |purpose: Purpose,
                         (field_min, min): (&'static str, u32),
                         (field_max, max): (&'static str, u32)| {
            if let Some(p) = size_problem(purpose, min) {
                v.push((field_min, p));
            }
            if let Some(p) = size_problem(purpose, max) {
                v.push((field_max, p));
            }
            if min > max {
                v.push((field_max, "must not be below the minimum".to_string()));
            }
        };
        range(
            Purpose::MaterialsGroup,
            ("materials_group_min", self.materials_group_min),
            ("materials_group_max", self.materials_group_max),
        );
        range(
            Purpose::SiteGroup,
            ("site_group_min", self.site_group_min),
            ("site_group_max", self.site_group_max),
        );
        if let Some(p) = size_problem(Purpose::DefencePanel, self.defence_panel_min) {
            v.push(("defence_panel_min", p));
        }
        if let Some(p) = backups_problem(self.backups_per_draw) {
            v.push(("backups_per_draw", p));
        }
        if self.yearly_cap == 0 {
            v.push(("yearly_cap", "must be at least 1".to_string()));
        }
        if self.cooldown_days > 366 {
            v.push(("cooldown_days", "at most 366".to_string()));
        }
        if let Some(p) = entropy::parties_problem(&self.entropy_parties) {
            v.push(("entropy_parties", p));
        }
        if !(1..=entropy::MAX_REVEAL_HOURS).contains(&self.reveal_hours) {
            v.push((
                "reveal_hours",
                format!("1-{} hours", entropy::MAX_REVEAL_HOURS),
            ));
        }
        for (code, min) in &self.speciality_quotas {
            if qaward_kit::cn::industry(code).is_err() {
                v.push((
                    "speciality_quotas",
                    format!("{code} is not a GB/T 4754 code"),
                ));
            }
            if *min == 0 {
                v.push((
                    "speciality_quotas",
                    format!("{code}: a quota must be at least 1"),
                ));
            }
        }
        v
    }

    /// The speciality needs of a draw: those requested, plus the programme's quota for every
    /// speciality the request does not name.
    pub fn needs(&self, mut requested: Vec<SpecialityNeed>) -> Vec<SpecialityNeed> {
        for (code, min) in &self.speciality_quotas {
            if !requested.iter().any(|n| &n.code == code) {
                requested.push(SpecialityNeed {
                    code: code.clone(),
                    min: *min,
                });
            }
        }
        requested
    }

    /// Is `size` allowed for `purpose`? Returns the allowed range when not.
    pub fn size_allowed(&self, purpose: Purpose, size: u32) -> Result<(), (u32, Option<u32>)> {
        let (min, max) = match purpose {
            Purpose::MaterialsGroup => (self.materials_group_min, Some(self.materials_group_max)),
            Purpose::SiteGroup => (self.site_group_min, Some(self.site_group_max)),
            Purpose::DefencePanel => (self.defence_panel_min, None),
            Purpose::AnnualAppointment => (1, None),
        };
        if size >= min && max.is_none_or(|m| size <= m) {
            Ok(())
        } else {
            Err((min, max))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_policy_is_valid_and_groups_outside_3_to_5_are_not() {
        assert!(DrawPolicy::default().validate().is_empty());
        let bad = DrawPolicy {
            materials_group_min: 2,
            site_group_max: 6,
            defence_panel_min: 4,
            ..DrawPolicy::default()
        };
        let fields: Vec<&str> = bad.validate().iter().map(|(f, _)| *f).collect();
        assert_eq!(
            fields,
            ["materials_group_min", "site_group_max", "defence_panel_min"]
        );
    }

    #[test]
    fn art_8_and_16_4_decide_every_size_and_backups_may_be_none() {
        for ok in [3, 4, 5] {
            assert_eq!(size_problem(Purpose::MaterialsGroup, ok), None);
            assert_eq!(size_problem(Purpose::SiteGroup, ok), None);
        }
        for bad in [0, 2, 6, 15] {
            let p = size_problem(Purpose::MaterialsGroup, bad).expect("refused");
            assert!(p.contains("Art. 8") && p.contains(&bad.to_string()), "{p}");
        }
        assert_eq!(size_problem(Purpose::DefencePanel, 5), None);
        assert_eq!(size_problem(Purpose::DefencePanel, 9), None);
        assert!(size_problem(Purpose::DefencePanel, 4).is_some_and(|p| p.contains("Art. 16(4)")));
        assert_eq!(backups_problem(0), None, "no backups is a choice");
        assert!(backups_problem(21).is_some());
    }

    #[test]
    fn quotas_add_to_the_needs_a_request_does_not_name() {
        let p = DrawPolicy {
            speciality_quotas: vec![("C13".into(), 1), ("M74".into(), 2)],
            ..DrawPolicy::default()
        };
        let needs = p.needs(vec![SpecialityNeed {
            code: "C13".into(),
            min: 3,
        }]);
        let got: Vec<(&str, u32)> = needs.iter().map(|n| (n.code.as_str(), n.min)).collect();
        assert_eq!(got, [("C13", 3), ("M74", 2)]);
    }

    #[test]
    fn group_sizes_follow_the_purpose() {
        let p = DrawPolicy::default();
        assert!(p.size_allowed(Purpose::MaterialsGroup, 3).is_ok());
        assert_eq!(
            p.size_allowed(Purpose::MaterialsGroup, 6),
            Err((3, Some(5)))
        );
        assert!(p.size_allowed(Purpose::DefencePanel, 7).is_ok());
        assert_eq!(p.size_allowed(Purpose::DefencePanel, 4), Err((5, None)));
    }
}
