//! Revocation as Art. 20 writes it: "经评选委员会办公室核实，评选委员会审议，报请县政府审批后，撤销其
//! 县长质量奖荣誉称号……并在媒体上予以公布". Three steps, each by its own role: the office verifies
//! (VERIFIED), the committee reviews (ENDORSED, or REJECTED: the award stands), the county
//! government approves (APPROVED: the award is withdrawn and the revocation published, R-32,
//! R-33) or refuses (REFUSED: the award stands). One table, one `apply`, as `stage.rs`.

use super::Explanation;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Verified,
    Endorsed,
    Rejected,
    Approved,
    Refused,
}

impl State {
    pub const ALL: [State; 5] = [
        State::Verified,
        State::Endorsed,
        State::Rejected,
        State::Approved,
        State::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Verified => "VERIFIED",
            State::Endorsed => "ENDORSED",
            State::Rejected => "REJECTED",
            State::Approved => "APPROVED",
            State::Refused => "REFUSED",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether the case is still open: an award with an open case gets no second one.
    pub fn open(self) -> bool {
        matches!(self, State::Verified | State::Endorsed)
    }
}

/// A step of the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The committee reviews the office's verified case.
    Review { endorsed: bool },
    /// The county government decides on the case the committee endorsed.
    Decide { approved: bool },
}

/// The allowed steps: (step, from, to when yes, to when no).
pub const TABLE: [(&str, State, State, State); 2] = [
    ("review", State::Verified, State::Endorsed, State::Rejected),
    ("decide", State::Endorsed, State::Approved, State::Refused),
];

/// The next state after `step`, or the refusal naming what the case waits for.
pub fn apply(from: State, step: Step) -> Result<State, Explanation> {
    let (name, yes) = match step {
        Step::Review { endorsed } => ("review", endorsed),
        Step::Decide { approved } => ("decide", approved),
    };
    let (_, at, to_yes, to_no) = TABLE
        .iter()
        .find(|(n, ..)| *n == name)
        .copied()
        .expect("every step is in the table");
    if from != at {
        let waits = match (name, from) {
            (_, s) if !s.open() => "撤销程序已经结束",
            ("review", _) => "评选委员会已审议，待县政府审批",
            _ => "尚待评选委员会审议，县政府不能先行审批",
        };
        return Err(Explanation::new(
            "R-32",
            "REVOCATION_OUT_OF_ORDER",
            format!("Art. 20 规定先由办公室核实、评选委员会审议、再报县政府审批：{waits}"),
        )
        .with("state", from.as_str())
        .with("step", name));
    }
    Ok(if yes { to_yes } else { to_no })
}

/// one open case per award at a time.
pub fn may_open(open_case: bool) -> Result<(), Explanation> {
    if open_case {
        return Err(Explanation::new(
            "R-32",
            "REVOCATION_PENDING",
            "该奖项已有未结束的撤销程序",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r32_art_20_office_then_committee_then_government() {
        let endorsed = apply(State::Verified, Step::Review { endorsed: true }).unwrap();
        assert_eq!(endorsed, State::Endorsed);
        assert_eq!(
            apply(endorsed, Step::Decide { approved: true }),
            Ok(State::Approved)
        );
        assert_eq!(
            apply(endorsed, Step::Decide { approved: false }),
            Ok(State::Refused)
        );
        assert_eq!(
            apply(State::Verified, Step::Review { endorsed: false }),
            Ok(State::Rejected)
        );
    }

    #[test]
    fn r32_the_government_cannot_go_before_the_committee_nor_anyone_after_the_end() {
        let e = apply(State::Verified, Step::Decide { approved: true }).unwrap_err();
        assert_eq!((e.rule, e.reason), ("R-32", "REVOCATION_OUT_OF_ORDER"));
        for done in [State::Rejected, State::Approved, State::Refused] {
            assert!(apply(done, Step::Review { endorsed: true }).is_err());
            assert!(apply(done, Step::Decide { approved: true }).is_err());
            assert!(!done.open());
        }
        assert!(apply(State::Endorsed, Step::Review { endorsed: true }).is_err());
        assert_eq!(may_open(true).unwrap_err().reason, "REVOCATION_PENDING");
    }
}
