//! The selection committee as a body (Art. 5, 16(9); R-22): its member units are programme
//! data, each unit present casts one ballot with its representative, voting on every candidate
//! on the notice, and the committee's decision on each candidate follows from the votes under
//! the programme's rule. Nobody chooses the outcome: the handler only counts.

use super::{Explanation, settings::Settings};

/// Art. 5: the eight member units Yunyang's rules name (so a quorum is 6 of 8).
pub const YUNYANG_UNITS: [&str; 8] = [
    "县发展改革委",
    "县经济信息委",
    "县财政局",
    "县生态环境局",
    "县统计局",
    "县市场监管局",
    "县应急局",
    "县税务局",
];

/// One unit's vote on one candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vote {
    Adopt,
    NotAdopt,
    Abstain,
    /// The unit takes no part in the decision on this candidate (a conflict, stated with a
    /// reason); it is neither for nor against and is left out of the count it is measured by.
    Recused,
}

impl Vote {
    pub fn as_str(self) -> &'static str {
        match self {
            Vote::Adopt => "ADOPT",
            Vote::NotAdopt => "NOT_ADOPT",
            Vote::Abstain => "ABSTAIN",
            Vote::Recused => "RECUSED",
        }
    }

    pub fn parse(s: &str) -> Option<Vote> {
        [Vote::Adopt, Vote::NotAdopt, Vote::Abstain, Vote::Recused]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// How the votes decide (a programme setting). The seed says only that the committee "审议并确定"
/// the list (16(9)2); the default is ours and documented as such.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Rule {
    /// Adopted when more than half of the units present and not recused vote to adopt; an
    /// abstention counts as not adopting. The default.
    #[default]
    MoreThanHalfPresent,
    /// Adopted when at least two thirds of the units present and not recused vote to adopt.
    TwoThirdsPresent,
    /// Adopted when more than half of all member units not recused vote to adopt, present or
    /// not.
    MoreThanHalfMembers,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::MoreThanHalfPresent => "MORE_THAN_HALF_PRESENT",
            Rule::TwoThirdsPresent => "TWO_THIRDS_PRESENT",
            Rule::MoreThanHalfMembers => "MORE_THAN_HALF_MEMBERS",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Rule::MoreThanHalfPresent => "到会非回避单位过半数同意（弃权视为不同意）",
            Rule::TwoThirdsPresent => "到会非回避单位三分之二以上同意（弃权视为不同意）",
            Rule::MoreThanHalfMembers => "全体非回避成员单位过半数同意",
        }
    }
}

/// Art. 5, R-22: a ballot is cast by a member unit, named exactly as on the programme's list.
pub fn is_member(unit: &str, s: &Settings) -> Result<(), Explanation> {
    if s.committee_units.iter().any(|u| u == unit) {
        return Ok(());
    }
    Err(Explanation::new(
        "R-22",
        "NOT_A_MEMBER_UNIT",
        format!(
            "{unit}不是评选委员会成员单位（成员单位：{}）",
            s.committee_units.join("、")
        ),
    )
    .with("unit", unit))
}

/// a meeting decides only with more than two thirds of the member units present,
/// compared exactly (3 × present > 2 × members): of the eight units Art. 5 names, 6 is a quorum
/// and 5 is not; with 9 units, 6 would not be.
pub fn quorum(present: usize, s: &Settings) -> Result<(), Explanation> {
    let members = s.committee_units.len();
    if 3 * present > 2 * members {
        return Ok(());
    }
    Err(Explanation::new(
        "R-22",
        "NO_QUORUM",
        format!("出席成员单位{present}个，未超过全体成员单位{members}个的三分之二，不能作出决定"),
    )
    .with("present", present)
    .with("member_units", members))
}

/// The votes on one candidate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub adopt: usize,
    pub not_adopt: usize,
    pub abstain: usize,
    pub recused: usize,
}

impl Tally {
    pub fn of(votes: impl IntoIterator<Item = Vote>) -> Tally {
        let mut t = Tally::default();
        for v in votes {
            match v {
                Vote::Adopt => t.adopt += 1,
                Vote::NotAdopt => t.not_adopt += 1,
                Vote::Abstain => t.abstain += 1,
                Vote::Recused => t.recused += 1,
            }
        }
        t
    }

    pub fn present(&self) -> usize {
        self.adopt + self.not_adopt + self.abstain + self.recused
    }
}

/// whether the committee adopts a candidate, from its tally, under the programme's
/// rule; the explanation names the rule and every number it used.
pub fn decide(t: &Tally, s: &Settings) -> (bool, Explanation) {
    let members = s.committee_units.len();
    let rule = s.committee_rule;
    let base = match rule {
        Rule::MoreThanHalfPresent | Rule::TwoThirdsPresent => t.present() - t.recused,
        Rule::MoreThanHalfMembers => members.saturating_sub(t.recused),
    };
    let adopted = base > 0
        && match rule {
            Rule::MoreThanHalfPresent | Rule::MoreThanHalfMembers => 2 * t.adopt > base,
            Rule::TwoThirdsPresent => 3 * t.adopt >= 2 * base,
        };
    let verdict = if adopted { "通过" } else { "未通过" };
    let why = Explanation::new(
        "R-22",
        if adopted { "ADOPTED" } else { "NOT_ADOPTED" },
        format!(
            "评选委员会表决：到会成员单位{}个（回避{}个），同意{}个、不同意{}个、弃权{}个；表决规则：{}，计票基数{}个，{verdict}",
            t.present(),
            t.recused,
            t.adopt,
            t.not_adopt,
            t.abstain,
            rule.describe(),
            base,
        ),
    )
    .with("rule", rule.as_str())
    .with("present", t.present())
    .with("member_units", members)
    .with("adopt", t.adopt)
    .with("not_adopt", t.not_adopt)
    .with("abstain", t.abstain)
    .with("recused", t.recused)
    .with("base", base);
    (adopted, why)
}

/// a unit votes once, on every candidate on the notice and no one else: `missing` are
/// the candidates its ballot leaves out, `strangers` those it names who are not on the list.
pub fn ballot_complete(missing: &[String], strangers: &[String]) -> Result<(), Explanation> {
    if missing.is_empty() && strangers.is_empty() {
        return Ok(());
    }
    Err(Explanation::new(
        "R-22",
        "BALLOT_INCOMPLETE",
        format!(
            "成员单位须对每一个公示期满的候选企业表决；未表决：{}；不在名单：{}",
            missing.join("、"),
            strangers.join("、")
        ),
    ))
}

/// each unit casts one ballot; the meeting's decision is final once recorded.
pub fn may_cast(already_cast: bool, decided: bool) -> Result<(), Explanation> {
    if decided {
        return Err(Explanation::new(
            "R-22",
            "ALREADY_DECIDED",
            "评选委员会已作出决定，不再接受表决",
        ));
    }
    if already_cast {
        return Err(Explanation::new(
            "R-22",
            "ALREADY_VOTED",
            "本成员单位已经表决，表决不可更改",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_rule(rule: Rule) -> Settings {
        Settings {
            committee_rule: rule,
            ..Settings::default()
        }
    }

    #[test]
    fn r22_yunyang_has_the_eight_units_of_art_5_so_six_is_a_quorum_and_five_is_not() {
        let s = Settings::default();
        assert_eq!(
            s.committee_units,
            YUNYANG_UNITS.map(str::to_string).to_vec()
        );
        assert_eq!(quorum(5, &s).unwrap_err().reason, "NO_QUORUM");
        assert!(quorum(6, &s).is_ok());
        let nine = Settings {
            committee_units: (1..=9).map(|i| format!("单位{i}")).collect(),
            ..Settings::default()
        };
        assert!(quorum(6, &nine).is_err(), "6 of 9 is exactly two thirds");
        assert!(quorum(7, &nine).is_ok());
    }

    #[test]
    fn r22_only_a_unit_on_the_member_list_votes() {
        let s = Settings::default();
        assert!(is_member("县财政局", &s).is_ok());
        let e = is_member("县教育局", &s).unwrap_err();
        assert_eq!((e.rule, e.reason), ("R-22", "NOT_A_MEMBER_UNIT"));
    }

    #[test]
    fn r22_by_default_more_than_half_of_those_present_adopt_and_an_abstention_does_not() {
        let s = Settings::default();
        use Vote::*;
        // 6 present: 3 adopt, 2 abstain, 1 against: 3 is not more than half of 6.
        let t = Tally::of([Adopt, Adopt, Adopt, Abstain, Abstain, NotAdopt]);
        let (adopted, why) = decide(&t, &s);
        assert!(!adopted);
        assert_eq!(why.reason, "NOT_ADOPTED");
        assert_eq!(why.inputs["base"], "6");
        // 4 of 6 adopt.
        let (adopted, why) = decide(
            &Tally::of([Adopt, Adopt, Adopt, Adopt, Abstain, NotAdopt]),
            &s,
        );
        assert!(adopted);
        assert!(why.message.contains("同意4个"), "{}", why.message);
        // A recused unit is left out of the base: 3 of the 5 who take part adopt.
        let (adopted, why) = decide(
            &Tally::of([Adopt, Adopt, Adopt, Recused, Abstain, NotAdopt]),
            &s,
        );
        assert!(adopted, "{}", why.message);
        assert_eq!(
            (why.inputs["base"].as_str(), why.inputs["recused"].as_str()),
            ("5", "1")
        );
    }

    #[test]
    fn r22_a_county_with_another_rule_gets_another_decision() {
        use Vote::*;
        // 4 of 6 present adopt: a majority of those present, two thirds of them, but not a
        // majority of all eight members.
        let t = Tally::of([Adopt, Adopt, Adopt, Adopt, NotAdopt, Abstain]);
        assert!(decide(&t, &with_rule(Rule::MoreThanHalfPresent)).0);
        assert!(decide(&t, &with_rule(Rule::TwoThirdsPresent)).0);
        assert!(!decide(&t, &with_rule(Rule::MoreThanHalfMembers)).0);
        // 4 of 7: a majority of those present, short of two thirds.
        let t = Tally::of([Adopt, Adopt, Adopt, Adopt, NotAdopt, Abstain, NotAdopt]);
        assert!(decide(&t, &with_rule(Rule::MoreThanHalfPresent)).0);
        assert!(!decide(&t, &with_rule(Rule::TwoThirdsPresent)).0);
        // 5 of 8 members: a majority of all.
        let t = Tally::of([Adopt, Adopt, Adopt, Adopt, Adopt, NotAdopt]);
        assert!(decide(&t, &with_rule(Rule::MoreThanHalfMembers)).0);
    }

    #[test]
    fn r22_a_unit_votes_once_and_not_after_the_decision() {
        assert_eq!(may_cast(true, false).unwrap_err().reason, "ALREADY_VOTED");
        assert_eq!(may_cast(false, true).unwrap_err().reason, "ALREADY_DECIDED");
        assert!(may_cast(false, false).is_ok());
        assert!(ballot_complete(&[], &[]).is_ok());
        assert_eq!(
            ballot_complete(&["a".into()], &[]).unwrap_err().reason,
            "BALLOT_INCOMPLETE"
        );
    }
}
