//! A programme's settings: every number of the award as versioned data, validated
//! when saved. A cycle pins the version it opened with; changing the programme later does not
//! change a running cycle. The defaults are Yunyang County's.

use qaward_reviewers::domain::{Purpose, policy};

use super::{committee, duties::DueDay};
use rust_decimal::Decimal;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    /// materials score needed for defence and site visit, inclusive.
    pub materials_threshold: Decimal,
    /// review score = materials × `materials_weight` + site × `site_weight`.
    pub materials_weight: Decimal,
    pub site_weight: Decimal,
    /// review score needed for the final selection, inclusive.
    pub final_selection_threshold: Decimal,
    /// composite score needed to be a candidate, inclusive.
    pub candidate_threshold: Decimal,
    /// at most this many candidates.
    pub max_candidates: u32,
    /// days the public notice stays open.
    pub public_notice_days: u32,
    /// R-22, Art. 5: the selection committee's member units, by name (the `org` of their
    /// committee-member tokens); a quorum is more than two thirds of them present. Versions
    /// saved before the list kept only a count: they read as Yunyang's eight.
    #[serde(default = "defaults::committee_units")]
    pub committee_units: Vec<String>,
    /// how the units' votes decide on a candidate (a default: the seed does not say).
    #[serde(default)]
    pub committee_rule: committee::Rule,
    /// days after the materials decision in which a failed applicant may ask for a
    /// re-check of its feedback report (a default: the seed sets none).
    #[serde(default = "defaults::recheck_window_days")]
    pub recheck_window_days: u32,
    /// the defence score is the panel's mean, or with this its trimmed mean (the highest
    /// and the lowest score dropped), passed to the scoring service.
    #[serde(default)]
    pub trimmed_defence_mean: bool,
    /// Art. 16(4): the non-scoring advisors a defence panel invites ("邀请1-2名…专家").
    #[serde(default = "defaults::min_advisors")]
    pub min_advisors: u32,
    #[serde(default = "defaults::max_advisors")]
    pub max_advisors: u32,
    /// R-30, Art. 18: the day of the year (`MM-DD`) the annual report on the year before is due.
    #[serde(default = "defaults::annual_report_due")]
    pub annual_report_due: String,
    /// R-31, Art. 19: working days in which an incident is reported.
    #[serde(default = "defaults::incident_report_working_days")]
    pub incident_report_working_days: u32,
    /// R-04, Art. 12(3): years an award bars its holder's next application (and the annual
    /// reports it is reminded of, R-30).
    pub ban_years: u32,
    /// Art. 12(4), Art. 21, R-33: years a revocation bars a new application.
    #[serde(default = "defaults::three_years")]
    pub revocation_ban_years: u32,
    /// Art. 12(2): years a finding of fraud in this award bars a new application.
    #[serde(default = "defaults::three_years")]
    pub fraud_ban_years: u32,
    /// years of continuous operation before the deadline.
    pub min_operating_years: u32,
    /// characters (Unicode, white space not counted).
    pub profile_max_chars: u32,
    pub self_assessment_max_chars: u32,
    /// administrative division codes of the county (Yunyang: 500235).
    pub division_codes: Vec<String>,
    /// departments consulted on each candidate.
    pub consulted_departments: Vec<String>,
    /// the rubric, `rubrics/{id}`; empty for `rubrics/gbt-19580-2012`, which scoring seeds.
    pub rubric: String,
    /// reviewers drawn per materials group, defence panel and site group.
    #[serde(default = "defaults::materials_group_size")]
    pub materials_group_size: u32,
    #[serde(default = "defaults::defence_panel_size")]
    pub defence_panel_size: u32,
    #[serde(default = "defaults::site_group_size")]
    pub site_group_size: u32,
    /// Ordered backups drawn with each group (R-41: a late conflict takes the next one); none
    /// is a choice.
    #[serde(default = "defaults::draw_backups")]
    pub draw_backups: u32,
    /// the fewest defence scores a defence result is computed from (the seed's panel
    /// minimum, 5, unless the programme asks for more), passed to the scoring service.
    #[serde(default = "defaults::defence_min_scorers")]
    pub defence_min_scorers: u32,
    /// Art. 13(1): departments whose opinion every application needs besides its
    /// recommending unit's (the town, street or park): Yunyang's are the ecology-environment
    /// and the emergency-management (safety) departments (县环保局、县安监局); the `org` of their
    /// department tokens. Versions saved before kept none.
    #[serde(default)]
    pub required_departments: Vec<String>,
    /// Art. 16(5)1: the most days a site visit lasts (现场评审一般安排1-2天).
    #[serde(default = "defaults::site_visit_max_days")]
    pub site_visit_max_days: u32,
    /// working days in which the office answers a complaint (a default: the seed sets
    /// none).
    #[serde(default = "defaults::complaint_answer_working_days")]
    pub complaint_answer_working_days: u32,
}

/// Values of settings added after the first version, for versions saved before them.
pub mod defaults {
    pub fn materials_group_size() -> u32 {
        3
    }
    pub fn defence_panel_size() -> u32 {
        5
    }
    pub fn site_group_size() -> u32 {
        3
    }
    pub fn draw_backups() -> u32 {
        2
    }
    pub fn defence_min_scorers() -> u32 {
        5
    }
    pub fn site_visit_max_days() -> u32 {
        2
    }
    pub fn complaint_answer_working_days() -> u32 {
        15
    }
    pub fn recheck_window_days() -> u32 {
        15
    }
    pub fn three_years() -> u32 {
        3
    }
    pub fn min_advisors() -> u32 {
        1
    }
    pub fn max_advisors() -> u32 {
        2
    }
    pub fn annual_report_due() -> String {
        "06-30".to_string()
    }
    pub fn incident_report_working_days() -> u32 {
        15
    }
    pub fn required_departments() -> Vec<String> {
        vec!["生态环境局".to_string(), "应急管理局".to_string()]
    }
    pub fn committee_units() -> Vec<String> {
        super::committee::YUNYANG_UNITS.map(str::to_string).to_vec()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            materials_threshold: Decimal::from(500),
            materials_weight: Decimal::new(2, 1),
            site_weight: Decimal::new(8, 1),
            final_selection_threshold: Decimal::from(350),
            candidate_threshold: Decimal::from(400),
            max_candidates: 2,
            public_notice_days: 7,
            committee_units: defaults::committee_units(),
            committee_rule: committee::Rule::default(),
            recheck_window_days: defaults::recheck_window_days(),
            revocation_ban_years: defaults::three_years(),
            fraud_ban_years: defaults::three_years(),
            trimmed_defence_mean: false,
            min_advisors: defaults::min_advisors(),
            max_advisors: defaults::max_advisors(),
            annual_report_due: defaults::annual_report_due(),
            incident_report_working_days: defaults::incident_report_working_days(),
            ban_years: 3,
            min_operating_years: 3,
            profile_max_chars: 3_000,
            self_assessment_max_chars: 60_000,
            division_codes: vec!["500235".to_string()],
            consulted_departments: [
                "生态环境局",
                "人力资源和社会保障局",
                "税务局",
                "市场监督管理局",
                "应急管理局",
            ]
            .map(str::to_string)
            .to_vec(),
            rubric: String::new(),
            materials_group_size: defaults::materials_group_size(),
            defence_panel_size: defaults::defence_panel_size(),
            site_group_size: defaults::site_group_size(),
            draw_backups: defaults::draw_backups(),
            defence_min_scorers: defaults::defence_min_scorers(),
            required_departments: defaults::required_departments(),
            site_visit_max_days: defaults::site_visit_max_days(),
            complaint_answer_working_days: defaults::complaint_answer_working_days(),
        }
    }
}

/// Scores run to 1,000 (materials, site and review) and 1,100 (composite: review + defence).
const MAX_SCORE: i64 = 1_000;
const MAX_COMPOSITE: i64 = 1_100;

impl Settings {
    /// Every problem, as (field, description); empty when the settings can be saved.
    pub fn validate(&self) -> Vec<(&'static str, String)> {
        let mut bad = Vec::new();
        let within = |v: Decimal, max: i64| v >= Decimal::ZERO && v <= Decimal::from(max);
        for (field, v, max) in [
            ("materials_threshold", self.materials_threshold, MAX_SCORE),
            (
                "final_selection_threshold",
                self.final_selection_threshold,
                MAX_SCORE,
            ),
            (
                "candidate_threshold",
                self.candidate_threshold,
                MAX_COMPOSITE,
            ),
        ] {
            if !within(v, max) {
                bad.push((field, format!("must be 0-{max}")));
            }
        }
        for (field, v) in [
            ("materials_weight", self.materials_weight),
            ("site_weight", self.site_weight),
        ] {
            if !(v >= Decimal::ZERO && v <= Decimal::ONE) {
                bad.push((field, "must be 0-1".to_string()));
            }
        }
        if self.materials_weight + self.site_weight != Decimal::ONE {
            bad.push((
                "site_weight",
                format!(
                    "materials_weight + site_weight must be exactly 1 (R-16), not {}",
                    self.materials_weight + self.site_weight
                ),
            ));
        }
        for (field, v, lo, hi) in [
            ("max_candidates", self.max_candidates, 1, 100),
            ("public_notice_days", self.public_notice_days, 1, 60),
            ("ban_years", self.ban_years, 0, 20),
            ("min_operating_years", self.min_operating_years, 0, 100),
            ("site_visit_max_days", self.site_visit_max_days, 1, 5),
            ("recheck_window_days", self.recheck_window_days, 1, 90),
            ("revocation_ban_years", self.revocation_ban_years, 0, 20),
            ("fraud_ban_years", self.fraud_ban_years, 0, 20),
            ("max_advisors", self.max_advisors, 0, 5),
            (
                "incident_report_working_days",
                self.incident_report_working_days,
                1,
                60,
            ),
            (
                "complaint_answer_working_days",
                self.complaint_answer_working_days,
                1,
                60,
            ),
            ("profile_max_chars", self.profile_max_chars, 1, 100_000),
            (
                "self_assessment_max_chars",
                self.self_assessment_max_chars,
                1,
                1_000_000,
            ),
        ] {
            if !(lo..=hi).contains(&v) {
                bad.push((field, format!("must be {lo}-{hi}")));
            }
        }
        // The sizes the draws ask for, checked by the reviewers service's one rule of group
        // sizes (Art. 8: groups of 3-5; Art. 16(4): a defence panel of 5 or more), so the
        // programme cannot ask for a draw the registry's rules refuse.
        for (field, purpose, size) in [
            (
                "materials_group_size",
                Purpose::MaterialsGroup,
                self.materials_group_size,
            ),
            (
                "defence_panel_size",
                Purpose::DefencePanel,
                self.defence_panel_size,
            ),
            ("site_group_size", Purpose::SiteGroup, self.site_group_size),
        ] {
            if let Some(p) = policy::size_problem(purpose, size) {
                bad.push((field, p));
            }
        }
        if let Some(p) = policy::backups_problem(self.draw_backups) {
            bad.push(("draw_backups", p));
        }
        let panel_min = *policy::DEFENCE_PANEL_SIZE.start();
        if self.defence_min_scorers < panel_min
            || self.defence_min_scorers > self.defence_panel_size
        {
            bad.push((
                "defence_min_scorers",
                format!(
                    "must be {panel_min} (R-14) up to the defence panel's size {}",
                    self.defence_panel_size
                ),
            ));
        }
        if self.division_codes.is_empty() {
            bad.push((
                "division_codes",
                "must name at least one division (R-02)".into(),
            ));
        }
        for (i, code) in self.division_codes.iter().enumerate() {
            if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
                bad.push((
                    "division_codes",
                    format!("[{i}] {code:?} is not a 6-digit division code"),
                ));
            } else if self.division_codes[..i].contains(code) {
                bad.push(("division_codes", format!("[{i}] {code} is listed twice")));
            }
        }
        for (i, d) in self.consulted_departments.iter().enumerate() {
            let n = d.trim().chars().count();
            if n == 0 || n > 100 {
                bad.push((
                    "consulted_departments",
                    format!("[{i}] must be 1-100 characters"),
                ));
            } else if self.consulted_departments[..i].contains(d) {
                bad.push((
                    "consulted_departments",
                    format!("[{i}] {d} is listed twice"),
                ));
            }
        }
        if self.min_advisors > self.max_advisors {
            bad.push((
                "min_advisors",
                format!("must be at most max_advisors ({})", self.max_advisors),
            ));
        }
        if DueDay::parse(&self.annual_report_due).is_none() {
            bad.push((
                "annual_report_due",
                "must be MM-DD, a day every year has (not 02-29)".into(),
            ));
        }
        if self.trimmed_defence_mean && self.defence_min_scorers < 3 {
            bad.push((
                "trimmed_defence_mean",
                "a trimmed mean needs at least 3 defence scores".into(),
            ));
        }
        if !(3..=50).contains(&self.committee_units.len()) {
            bad.push((
                "committee_units",
                "must name 3-50 member units (Art. 5)".into(),
            ));
        }
        for (i, d) in self.committee_units.iter().enumerate() {
            let n = d.trim().chars().count();
            if n == 0 || n > 100 {
                bad.push(("committee_units", format!("[{i}] must be 1-100 characters")));
            } else if self.committee_units[..i].contains(d) {
                bad.push(("committee_units", format!("[{i}] {d} is listed twice")));
            }
        }
        for (i, d) in self.required_departments.iter().enumerate() {
            let n = d.trim().chars().count();
            if n == 0 || n > 100 {
                bad.push((
                    "required_departments",
                    format!("[{i}] must be 1-100 characters"),
                ));
            } else if self.required_departments[..i].contains(d) {
                bad.push(("required_departments", format!("[{i}] {d} is listed twice")));
            }
        }
        if !self.rubric.is_empty()
            && !self
                .rubric
                .strip_prefix("rubrics/")
                .is_some_and(|r| !r.is_empty() && !r.contains('/'))
        {
            bad.push(("rubric", "must be rubrics/{rubric} or empty".into()));
        }
        bad
    }
}

impl Settings {
    /// the annual report's due day, as validated when the settings were saved.
    pub fn annual_due_day(&self) -> DueDay {
        DueDay::parse(&self.annual_report_due).unwrap_or(DueDay::END_OF_JUNE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yunyangs_settings_are_valid() {
        assert_eq!(Settings::default().validate(), vec![]);
    }

    #[test]
    fn r16_weights_must_add_up_to_exactly_one() {
        let s = Settings {
            materials_weight: Decimal::new(3, 1),
            ..Settings::default()
        };
        let bad = s.validate();
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].0, "site_weight");
        assert!(bad[0].1.contains("1.1"), "{}", bad[0].1);
    }

    #[test]
    fn out_of_range_numbers_and_bad_codes_name_their_field() {
        let s = Settings {
            materials_threshold: Decimal::from(1001),
            max_candidates: 0,
            public_notice_days: 0,
            division_codes: vec!["500235".into(), "50023".into(), "500235".into()],
            consulted_departments: vec!["税务局".into(), " ".into()],
            rubric: "gbt".into(),
            ..Settings::default()
        };
        let fields: Vec<&str> = s.validate().iter().map(|(f, _)| *f).collect();
        assert_eq!(
            fields,
            [
                "materials_threshold",
                "max_candidates",
                "public_notice_days",
                "division_codes",
                "division_codes",
                "consulted_departments",
                "rubric"
            ]
        );
    }

    #[test]
    fn r12_r14_groups_and_panels_have_their_minimum_size() {
        let s = Settings {
            materials_group_size: 2,
            defence_panel_size: 4,
            ..Settings::default()
        };
        let fields: Vec<&str> = s.validate().iter().map(|(f, _)| *f).collect();
        assert_eq!(
            fields,
            [
                "materials_group_size",
                "defence_panel_size",
                "defence_min_scorers"
            ]
        );
        // Art. 8: a group has at most 5; the reviewers' rule, so no draw is refused later.
        let big = Settings {
            materials_group_size: 6,
            ..Settings::default()
        };
        let problems = big.validate();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].1.contains("Art. 8"), "{problems:?}");
        // No backups is a choice; a defence minimum above the panel is not.
        let s = Settings {
            draw_backups: 0,
            defence_panel_size: 7,
            defence_min_scorers: 7,
            ..Settings::default()
        };
        assert!(s.validate().is_empty(), "{:?}", s.validate());
        let s = Settings {
            defence_min_scorers: 6,
            ..Settings::default()
        };
        assert_eq!(s.validate()[0].0, "defence_min_scorers");
        // A version saved before the sizes existed reads with the defaults.
        let mut old = serde_json::to_value(Settings::default()).unwrap();
        for k in [
            "materials_group_size",
            "defence_panel_size",
            "required_departments",
        ] {
            old.as_object_mut().unwrap().remove(k);
        }
        let read: Settings = serde_json::from_value(old).unwrap();
        assert_eq!((read.materials_group_size, read.defence_panel_size), (3, 5));
    }

    #[test]
    fn r22_a_version_saved_with_a_count_of_units_reads_as_the_eight_of_art_5() {
        let mut old = serde_json::to_value(Settings::default()).unwrap();
        let o = old.as_object_mut().unwrap();
        o.remove("committee_units");
        o.remove("committee_rule");
        o.insert("committee_member_units".into(), 8.into());
        let read: Settings = serde_json::from_value(old).unwrap();
        assert_eq!(read.committee_units.len(), 8);
        assert_eq!(read.committee_rule, committee::Rule::MoreThanHalfPresent);
        assert!(read.validate().is_empty());
        let two = Settings {
            committee_units: vec!["甲".into(), "甲".into()],
            ..Settings::default()
        };
        let fields: Vec<&str> = two.validate().iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["committee_units", "committee_units"]);
    }

    #[test]
    fn docs_name_every_setting() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/settings.md"
        ))
        .expect("docs/settings.md");
        let all = serde_json::to_value(Settings::default()).unwrap();
        let missing: Vec<&String> = all
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| !doc.contains(&format!("`{k}`")))
            .collect();
        assert!(
            missing.is_empty(),
            "docs/settings.md does not name {missing:?}"
        );
    }
}
