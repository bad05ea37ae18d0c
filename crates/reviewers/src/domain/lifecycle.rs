//! A draw's life: prepared once with its pool fixed, then executed once — with the
//! entropy that matches its published commitment — or failed, recorded either way; never
//! silently redrawn. The algorithm itself is [`crate::domain::draw`].

use qaward_kit::Error;

use crate::domain::draw::{self, Prepared, Shortage};

/// a draw is executed once.
pub const DRAW_ALREADY_EXECUTED: &str = "DRAW_ALREADY_EXECUTED";
/// the revealed entropy is not the one committed to.
pub const ENTROPY_DOES_NOT_MATCH_COMMITMENT: &str = "ENTROPY_DOES_NOT_MATCH_COMMITMENT";
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

/// whether a draw in `state` may be executed with `entropy`: only a prepared draw, and
/// only with the entropy whose SHA-256 is its commitment (when it published one).
pub fn may_execute(state: DrawState, prepared: &Prepared, entropy: &str) -> Result<(), Error> {
    if state == DrawState::Superseded {
        return Err(superseded());
    }
    if state != DrawState::Prepared {
        return Err(Error::rule(
            "R-45",
            DRAW_ALREADY_EXECUTED,
            "a draw is executed once; prepare a new draw that names this one to redraw",
        ));
    }
    if !prepared.entropy_commitment.is_empty()
        && draw::sha256_hex(entropy.as_bytes()) != prepared.entropy_commitment
    {
        return Err(Error::rule(
            "R-45",
            ENTROPY_DOES_NOT_MATCH_COMMITMENT,
            "SHA-256 of the entropy does not match the published commitment",
        ));
    }
    Ok(())
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
    fn r45_a_draw_is_executed_once_with_the_committed_entropy() {
        let open = prepared("");
        assert!(may_execute(DrawState::Prepared, &open, "anything").is_ok());
        for done in [DrawState::Executed, DrawState::Failed] {
            let e = may_execute(done, &open, "anything").unwrap_err();
            assert_eq!(e.reason, DRAW_ALREADY_EXECUTED);
            assert_eq!(e.rule.as_deref(), Some("R-45"));
        }
        let sealed = prepared(&draw::sha256_hex(b"7f3a"));
        assert!(may_execute(DrawState::Prepared, &sealed, "7f3a").is_ok());
        let e = may_execute(DrawState::Prepared, &sealed, "7f3b").unwrap_err();
        assert_eq!(e.reason, ENTROPY_DOES_NOT_MATCH_COMMITMENT);
    }

    #[test]
    fn r40_an_empty_pool_is_refused_with_what_is_short() {
        let e = check_feasible(&prepared("")).unwrap_err();
        assert_eq!(e.reason, DRAW_CONSTRAINTS_UNMET);
        assert_eq!(e.rule.as_deref(), Some("R-40"));
    }
}
