//! A draw's life: prepared once with its pool fixed, then executed once — with the
//! entropy of its parties' reveals (R-53, [`crate::domain::entropy`]) — or failed, recorded
//! either way; never silently redrawn. The algorithm itself is [`crate::domain::draw`].

use qaward_kit::Error;

use crate::domain::{
    draw::{self, Prepared, Shortage},
    entropy,
};

/// a draw is executed once.
pub const DRAW_ALREADY_EXECUTED: &str = "DRAW_ALREADY_EXECUTED";
/// the draw was prepared with one party's entropy, before multi-party entropy.
pub const SINGLE_PARTY_DRAW: &str = "SINGLE_PARTY_DRAW";
/// the pool cannot give the group it asks for.
pub const DRAW_CONSTRAINTS_UNMET: &str = "DRAW_CONSTRAINTS_UNMET";
/// a redraw of this draw was executed; it can never be executed itself.
pub const DRAW_SUPERSEDED: &str = "DRAW_SUPERSEDED";

/// Where a draw is in its life, stored as its upper-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrawState {
    Prepared,
    Executed,
    Failed,
    /// A redraw in its chain was executed: this draw's panel no longer stands.
    Superseded,
}

impl DrawState {
    pub const ALL: [DrawState; 4] = [
        DrawState::Prepared,
        DrawState::Executed,
        DrawState::Failed,
        DrawState::Superseded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DrawState::Prepared => "PREPARED",
            DrawState::Executed => "EXECUTED",
            DrawState::Failed => "FAILED",
            DrawState::Superseded => "SUPERSEDED",
        }
    }

    pub fn parse(s: &str) -> Option<DrawState> {
        DrawState::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

/// refuses at once a prepared draw that can never be drawn, naming what is short.
pub fn check_feasible(prepared: &Prepared) -> Result<(), Error> {
    draw::check_feasible(prepared).map_err(|s| infeasible(&s))
}

/// the refusal of a draw its pool cannot fill.
pub fn infeasible(shortage: &Shortage) -> Error {
    Error::rule("R-40", DRAW_CONSTRAINTS_UNMET, shortage.message())
}

/// What executing a draw comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Execution {
    /// It was executed already (by its last reveal): answer with what it gave.
    Done,
    /// Run it with this entropy, computed from its parts.
    Run(String),
}

/// whether a draw in `state` may be executed: only a prepared draw whose every
/// part is in, with the entropy of its parts — nobody supplies one. A draw prepared before
/// multi-party entropy (one commitment, the office's) is never executed now.
pub fn may_execute(
    state: DrawState,
    prepared: &Prepared,
    inputs_hash: &str,
    parts: &[entropy::Part],
    public_value: Option<&str>,
) -> Result<Execution, Error> {
    if state == DrawState::Superseded {
        return Err(superseded());
    }
    if prepared.entropy_parties.is_empty() {
        return Err(Error::rule(
            "R-53",
            SINGLE_PARTY_DRAW,
            "this draw was prepared with one party's entropy; prepare a new draw that names it",
        ));
    }
    match state {
        DrawState::Executed => return Ok(Execution::Done),
        DrawState::Prepared => {}
        _ => {
            return Err(Error::rule(
                "R-45",
                DRAW_ALREADY_EXECUTED,
                "the draw failed on the record; prepare a new draw that names this one to redraw",
            ));
        }
    }
    match entropy::step(prepared, parts, public_value) {
        entropy::Step::Execute => entropy::entropy_of(prepared, inputs_hash, parts, public_value)
            .map(Execution::Run)
            .map_err(Error::internal),
        _ => Err(Error::rule(
            "R-53",
            entropy::ENTROPY_OUT_OF_TURN,
            format!(
                "the draw waits for {}; it executes on the last reveal",
                awaiting(prepared, parts, public_value)
            ),
        )),
    }
}

/// parts (commitments, the public value, reveals) are taken while a draw is
/// prepared, never after it executed, failed or was superseded.
pub fn accepts_parts(state: DrawState) -> Result<(), Error> {
    match state {
        DrawState::Prepared => Ok(()),
        DrawState::Superseded => Err(superseded()),
        _ => Err(Error::rule(
            "R-45",
            DRAW_ALREADY_EXECUTED,
            format!(
                "the draw is {}: its entropy is settled",
                state.as_str().to_lowercase()
            ),
        )),
    }
}

/// What a prepared draw waits for, in words: "commitments from supervisor".
pub fn awaiting(
    prepared: &Prepared,
    parts: &[entropy::Part],
    public_value: Option<&str>,
) -> String {
    if prepared.entropy_parties.is_empty() {
        return String::new();
    }
    match entropy::step(prepared, parts, public_value) {
        entropy::Step::Commit(who) => format!("commitments from {}", who.join(", ")),
        entropy::Step::PublicValue => "the public value".into(),
        entropy::Step::Reveal(who) => format!("reveals from {}", who.join(", ")),
        entropy::Step::Execute => "execution".into(),
    }
}

/// a draw whose chain has a later executed redraw; or a draw whose chain another call
/// executed meanwhile (one live draw per chain).
pub fn superseded() -> Error {
    Error::rule(
        "R-45",
        DRAW_SUPERSEDED,
        "a redraw of this draw's chain was executed; a draw and its redraws have one live result",
    )
}

/// the draw was executed by another call between our read and our write.
pub fn executed_meanwhile() -> Error {
    Error::rule(
        "R-45",
        DRAW_ALREADY_EXECUTED,
        "the draw was executed meanwhile",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared(commitment: &str) -> Prepared {
        Prepared {
            algorithm: draw::ALGORITHM.into(),
            draw: "programmes/p/draws/d".into(),
            programme: "programmes/p".into(),
            purpose: "MATERIALS_GROUP".into(),
            enterprise_codes: vec![],
            size: 1,
            backups: 0,
            specialities: vec![],
            leader_required: false,
            window_start: "2026-03-02".into(),
            window_end: "2026-03-02".into(),
            policy_version: 1,
            entropy_source: "dice".into(),
            entropy_commitment: commitment.into(),
            replaces_draw: String::new(),
            pool: vec![],
            pool_hash: String::new(),
            exclusions: vec![],
            entropy_parties: vec![],
            fixes_public_value: false,
            reveal_deadline_micros: 0,
        }
    }

    #[test]
    fn states_are_stored_by_name_and_read_back() {
        for s in DrawState::ALL {
            assert_eq!(DrawState::parse(s.as_str()), Some(s));
        }
        assert_eq!(DrawState::parse("prepared"), None);
    }

    #[test]
    fn r45_r53_a_draw_executes_once_on_its_parties_entropy_and_never_on_one_partys() {
        let old = prepared("");
        let e = may_execute(DrawState::Prepared, &old, "h", &[], None).unwrap_err();
        assert_eq!(e.reason, SINGLE_PARTY_DRAW);
        let mut p = prepared("");
        p.entropy_parties = entropy::parties(&["office".into(), "supervisor".into()]);
        let e = may_execute(DrawState::Prepared, &p, "h", &[], None).unwrap_err();
        assert_eq!(e.reason, entropy::ENTROPY_OUT_OF_TURN);
        assert!(
            e.message.contains("commitments from office, supervisor"),
            "{}",
            e.message
        );
        let secret = "ab".repeat(32);
        let parts: Vec<entropy::Part> = ["office", "supervisor"]
            .iter()
            .map(|party| entropy::Part {
                party: party.to_string(),
                subject: party.to_string(),
                commitment: entropy::commitment(&p.draw, party, &secret),
                committed_micros: 1,
                secret: Some(secret.clone()),
                revealed_micros: Some(2),
            })
            .collect();
        let run = may_execute(DrawState::Prepared, &p, "h", &parts, None).unwrap();
        assert!(
            matches!(run, Execution::Run(ref e) if e.len() == 64),
            "{run:?}"
        );
        assert_eq!(
            may_execute(DrawState::Executed, &p, "h", &parts, None).unwrap(),
            Execution::Done
        );
        let e = may_execute(DrawState::Failed, &p, "h", &parts, None).unwrap_err();
        assert_eq!(e.reason, DRAW_ALREADY_EXECUTED);
        let e = may_execute(DrawState::Superseded, &p, "h", &parts, None).unwrap_err();
        assert_eq!(e.reason, DRAW_SUPERSEDED);
    }

    #[test]
    fn r40_an_empty_pool_is_refused_with_what_is_short() {
        let e = check_feasible(&prepared("")).unwrap_err();
        assert_eq!(e.reason, DRAW_CONSTRAINTS_UNMET);
        assert_eq!(e.rule.as_deref(), Some("R-40"));
    }
}
