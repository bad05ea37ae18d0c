//! What two services must agree on about one cycle (issue 24), as pure comparisons: a started
//! group's members here, its panel's sitting members in the reviewers service, and the scorers
//! of each of its assignments in the scoring service; a disqualified application and scoring's
//! exclusions. `qaward check consistency` and `CheckConsistency` report every disagreement.

/// One thing held differently, as `ConsistencyReport` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement {
    pub kind: &'static str,
    pub subject: String,
    pub here: String,
    pub there: String,
}

/// The reviewers of a group here and of its panel there differ (as sets: order is the draw's).
pub const PANEL_MEMBERS: &str = "PANEL_MEMBERS";
/// An assignment's scorers (with roles) differ from what the group here seats.
pub const SCORERS: &str = "SCORERS";
/// An application disqualified here is still ranked by scoring, or the other way round.
pub const EXCLUSION: &str = "EXCLUSION";

fn canonical(list: &[String]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|x| x.to_ascii_uppercase()).collect();
    v.sort();
    v
}

/// `Some` when `here` and `there` hold different people (compared without case or order).
pub fn compare(
    kind: &'static str,
    subject: &str,
    here: &[String],
    there: &[String],
) -> Option<Disagreement> {
    let (a, b) = (canonical(here), canonical(there));
    (a != b).then(|| Disagreement {
        kind,
        subject: subject.to_string(),
        here: a.join(" "),
        there: b.join(" "),
    })
}

/// An application disqualified here must be excluded there, and only such.
pub fn exclusion(subject: &str, disqualified: bool, excluded: bool) -> Option<Disagreement> {
    let say = |x: bool, yes: &str, no: &str| if x { yes } else { no }.to_string();
    (disqualified != excluded).then(|| Disagreement {
        kind: EXCLUSION,
        subject: subject.to_string(),
        here: say(disqualified, "DISQUALIFIED", "in the running"),
        there: say(excluded, "excluded", "ranked"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_people_in_another_order_or_case_agree_and_a_replaced_one_does_not() {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            compare(SCORERS, "g", &v(&["A", "b"]), &v(&["B", "a"])),
            None
        );
        let d = compare(PANEL_MEMBERS, "g", &v(&["A", "B"]), &v(&["A", "C"])).unwrap();
        assert_eq!((d.here.as_str(), d.there.as_str()), ("A B", "A C"));
        assert!(exclusion("x", true, true).is_none() && exclusion("x", false, false).is_none());
        assert_eq!(exclusion("x", true, false).unwrap().there, "ranked");
    }
}
