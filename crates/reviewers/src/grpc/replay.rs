//! Replaying a recorded draw, with no database: for VerifyDraw, for `qaward draw verify
//! FILE` and for the demo. The algorithm is [`crate::domain::draw`]; this compares its replay
//! with the record and says how they differ.

use qaward_proto::qaward::reviewers::v1 as pb;

use crate::domain::{
    draw::{self, Prepared},
    entropy::{self, Part},
};

/// A draw as recorded: what a replay checks.
pub struct Recorded<'a> {
    pub prepared_text: &'a str,
    pub inputs_hash: &'a str,
    pub entropy: Option<&'a str>,
    pub outcome: Option<&'a draw::Outcome>,
    /// each party's commitment and reveal.
    pub parts: &'a [Part],
    pub public_value: Option<&'a str>,
}

/// Replays an exported draw record (`record_json` of GetDraw) offline, with no database
/// what `qaward draw verify FILE` and the demo run. `Err` when it is not a record.
pub fn verify_record(record_json: &str) -> Result<pb::VerifyDrawResponse, String> {
    let record: serde_json::Value =
        serde_json::from_str(record_json).map_err(|e| format!("not JSON: {e}"))?;
    let field = |k: &str| record.get(k).and_then(|v| v.as_str());
    let prepared = field("prepared").ok_or("the record has no prepared text")?;
    let inputs_hash = field("inputs_hash").ok_or("the record has no inputs_hash")?;
    let outcome = match record.get("outcome") {
        Some(v) if !v.is_null() => Some(
            serde_json::from_value::<draw::Outcome>(v.clone())
                .map_err(|e| format!("the outcome does not parse: {e}"))?,
        ),
        _ => None,
    };
    let replacements: Vec<draw::Replaced> = match record.get("replacements") {
        Some(v) if !v.is_null() => serde_json::from_value(v.clone())
            .map_err(|e| format!("the replacements do not parse: {e}"))?,
        _ => Vec::new(),
    };
    let parts: Vec<Part> = match record.get("entropy_parts") {
        Some(v) if !v.is_null() => serde_json::from_value(v.clone())
            .map_err(|e| format!("the entropy parts do not parse: {e}"))?,
        _ => Vec::new(),
    };
    let mut answer = verify(&Recorded {
        prepared_text: prepared,
        inputs_hash,
        entropy: field("entropy"),
        outcome: outcome.as_ref(),
        parts: &parts,
        public_value: field("public_value"),
    });
    // §6: each recorded replacement must be where §5 sends the seat.
    if answer.matches && !replacements.is_empty() {
        let checked = match (serde_json::from_str::<Prepared>(prepared), outcome.as_ref()) {
            (Ok(p), Some(o)) => draw::check_replacements(&p, o, &replacements),
            _ => Err("replacements without an outcome".to_string()),
        };
        match checked {
            Ok(()) => {
                answer.message = format!(
                    "{}, and its {} replacement(s) as §5 gives them",
                    answer.message,
                    replacements.len()
                )
            }
            Err(e) => {
                answer.matches = false;
                answer.message = e;
            }
        }
    }
    Ok(answer)
}

/// Replays a recorded draw, checking every party's reveal against its commitment and
/// the entropy against the reveals.
pub fn verify(r: &Recorded) -> pb::VerifyDrawResponse {
    let Recorded {
        prepared_text,
        inputs_hash,
        entropy,
        outcome,
        parts,
        public_value,
    } = *r;
    let fail = |message: String| pb::VerifyDrawResponse {
        matches: false,
        replayed_members: vec![],
        replayed_backups: vec![],
        message,
    };
    if draw::sha256_hex(prepared_text.as_bytes()) != inputs_hash {
        return fail("the prepared record does not match its inputs hash".into());
    }
    let Ok(prepared) = serde_json::from_str::<Prepared>(prepared_text) else {
        return fail("the prepared record does not parse".into());
    };
    if draw::pool_hash(&prepared.pool) != prepared.pool_hash {
        return fail("the pool does not match its pool hash".into());
    }
    let Some(entropy) = entropy else {
        return fail("the draw has not been executed".into());
    };
    if !prepared.entropy_commitment.is_empty()
        && draw::sha256_hex(entropy.as_bytes()) != prepared.entropy_commitment
    {
        return fail("the entropy does not match the published commitment".into());
    }
    if !prepared.entropy_parties.is_empty() {
        match entropy::entropy_of(&prepared, inputs_hash, parts, public_value) {
            Ok(e) if e == entropy => {}
            Ok(_) => return fail("the entropy is not the hash of the parties' reveals".into()),
            Err(e) => return fail(e),
        }
    }
    match (
        draw::execute_hashed(&prepared, inputs_hash, entropy),
        outcome,
    ) {
        (Ok(replayed), Some(recorded)) => pb::VerifyDrawResponse {
            matches: &replayed == recorded,
            message: if &replayed == recorded {
                "the replay gives the recorded members, leader and backups".into()
            } else {
                "the replay differs from the record".into()
            },
            replayed_members: super::convert::reviewer_names(&replayed.members),
            replayed_backups: super::convert::reviewer_names(&replayed.backups),
        },
        (Err(s), None) => pb::VerifyDrawResponse {
            matches: true,
            replayed_members: vec![],
            replayed_backups: vec![],
            message: format!("the draw failed as recorded: {}", s.message()),
        },
        (Ok(_), None) => fail("the record has no outcome but the replay succeeds".into()),
        (Err(s), Some(_)) => fail(format!("the replay fails: {}", s.message())),
    }
}
