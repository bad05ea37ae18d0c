//! Entropy no single party controls. A draw's prepared record names its parties
//! (the programme's policy says who: by default the office and the supervisor); each commits to
//! a secret of at least 256 bits before any is revealed, an optional public value (dice thrown
//! in public, a beacon round) is fixed after every commitment is in and before any reveal, and
//! the entropy is a hash of every reveal and the public value (`docs/draw.md` §2a). A party that
//! has not done its part by the deadline fails the draw on the record, named.
//!
//! The steps, in the only order they can happen:
//!
//! | step            | who                                   | allowed when                        |
//! |-----------------|---------------------------------------|-------------------------------------|
//! | commit          | each party, by role, one person each  | before the deadline, its slot empty  |
//! | fix public value| the office                            | every commitment in, none revealed   |
//! | reveal          | the person who committed the slot     | commitments in, public value fixed   |
//! | execute         | nobody chooses: the last reveal does  | every reveal in                      |

use qaward_kit::Error;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::draw::Prepared;

/// Prefix of a commitment's hash; versioned so a later scheme cannot collide with this one.
pub const COMMIT_DOMAIN: &str = "qaward-entropy-commit-v1";
/// Prefix of the combined entropy's hash.
pub const ENTROPY_DOMAIN: &str = "qaward-entropy-v1";
/// A secret is lower-case hex of 32 to 64 bytes: at least 256 bits.
pub const SECRET_HEX: std::ops::RangeInclusive<usize> = 64..=128;
/// The roles a draw policy may name as parties.
pub const ROLES: [&str; 2] = ["office", "supervisor"];
/// The policy's default parties.
pub const DEFAULT_PARTIES: [&str; 2] = ["office", "supervisor"];
/// Hours from preparing a draw to its deadline, by default, and the longest allowed.
pub const DEFAULT_REVEAL_HOURS: u32 = 72;
pub const MAX_REVEAL_HOURS: u32 = 720;
/// At most this many parties: more only adds people who can fail the draw.
pub const MAX_PARTIES: usize = 6;

/// the step asked for is not the draw's next one, or the caller may not take it.
pub const ENTROPY_OUT_OF_TURN: &str = "ENTROPY_OUT_OF_TURN";
/// the revealed secret is not the one committed to.
pub const SECRET_DOES_NOT_MATCH_COMMITMENT: &str = "SECRET_DOES_NOT_MATCH_COMMITMENT";
/// the deadline passed with a part missing; the draw failed on the record.
pub const ENTROPY_DEADLINE_PASSED: &str = "ENTROPY_DEADLINE_PASSED";

/// One party of a draw, as its prepared record names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    /// `office`, `supervisor`; a role named twice gives `office-2`.
    pub party: String,
    /// The role a person needs to take this part: `office` or `supervisor`.
    pub role: String,
}

/// What one party has done so far; stored beside the draw, exported in its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    pub party: String,
    /// The token subject of the person who committed; only they may reveal.
    pub subject: String,
    pub commitment: String,
    pub committed_micros: i64,
    pub secret: Option<String>,
    pub revealed_micros: Option<i64>,
}

/// Where a draw's entropy stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Waiting for these parties' commitments.
    Commit(Vec<String>),
    /// Every commitment is in; the office fixes the public value.
    PublicValue,
    /// Waiting for these parties' reveals.
    Reveal(Vec<String>),
    /// Every part is in: the draw executes with this entropy.
    Execute,
}

/// The parties for a policy's roles, in order: the first of a role is its lower-case name, the
/// n-th `name-n`.
pub fn parties(roles: &[String]) -> Vec<Party> {
    let mut out: Vec<Party> = Vec::new();
    for role in roles {
        let seen = out.iter().filter(|p| &p.role == role).count();
        let base = role.clone();
        out.push(Party {
            party: if seen == 0 {
                base
            } else {
                format!("{base}-{}", seen + 1)
            },
            role: role.clone(),
        });
    }
    out
}

/// What is wrong with a policy's parties: at least two, each an allowed role, and not all
/// of them the office — the office alone is one party however many of its members take part.
pub fn parties_problem(roles: &[String]) -> Option<String> {
    if let Some(r) = roles.iter().find(|r| !ROLES.contains(&r.as_str())) {
        return Some(format!(
            "{r} may not be a party; one of {}",
            ROLES.join(", ")
        ));
    }
    if roles.len() < 2 || roles.len() > MAX_PARTIES {
        return Some(format!(
            "a draw has 2-{MAX_PARTIES} parties (R-53), not {}",
            roles.len()
        ));
    }
    if roles.iter().all(|r| r == "office") {
        return Some("at least one party other than the office (R-53)".into());
    }
    None
}

/// What is wrong with a secret: lower-case or upper-case hex of 32-64 bytes.
pub fn secret_problem(secret: &str) -> Option<String> {
    if !SECRET_HEX.contains(&secret.len()) || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(format!(
            "hex of {}-{} characters (at least 256 bits)",
            SECRET_HEX.start(),
            SECRET_HEX.end()
        ));
    }
    None
}

/// What is wrong with a commitment: a SHA-256 in hex.
pub fn commitment_problem(commitment: &str) -> Option<String> {
    (commitment.len() != 64 || !commitment.bytes().all(|b| b.is_ascii_hexdigit())).then(|| {
        "a SHA-256 in hex (64 characters): `qaward draw commit NAME PARTY` prints it".to_string()
    })
}

/// When the parts of a draw prepared at `prepared_micros` are due, by the policy's hours.
pub fn reveal_deadline(prepared_micros: i64, reveal_hours: u32) -> i64 {
    prepared_micros + i64::from(reveal_hours) * 3_600 * 1_000_000
}

fn hash_parts<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut h = Sha256::new();
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            h.update([0u8]);
        }
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// A party's commitment: SHA-256(COMMIT_DOMAIN ‖ 0x00 ‖ draw ‖ 0x00 ‖ party ‖ 0x00 ‖ secret),
/// lower-case hex, the secret as lower-case hex text. Binding the draw and the party keeps a
/// commitment from being copied into another draw or another party's slot.
pub fn commitment(draw: &str, party: &str, secret: &str) -> String {
    hash_parts([COMMIT_DOMAIN, draw, party, &secret.to_ascii_lowercase()])
}

/// The entropy: SHA-256(ENTROPY_DOMAIN ‖ 0x00 ‖ draw ‖ 0x00 ‖ inputs hash ‖ (0x00 ‖ party ‖
/// 0x00 ‖ secret) for each party in the prepared order ‖ 0x00 ‖ public value), lower-case hex.
/// The public value is empty when the draw fixes none.
pub fn combine(
    draw: &str,
    inputs_hash: &str,
    reveals: &[(&str, &str)],
    public_value: &str,
) -> String {
    let secrets: Vec<String> = reveals
        .iter()
        .map(|(_, s)| s.to_ascii_lowercase())
        .collect();
    let mut fields = vec![ENTROPY_DOMAIN, draw, inputs_hash];
    for ((party, _), secret) in reveals.iter().zip(&secrets) {
        fields.push(party);
        fields.push(secret);
    }
    fields.push(public_value);
    hash_parts(fields)
}

fn part<'a>(parts: &'a [Part], party: &str) -> Option<&'a Part> {
    parts.iter().find(|p| p.party == party)
}

/// Where the draw's entropy stands (see the table above).
pub fn step(prepared: &Prepared, parts: &[Part], public_value: Option<&str>) -> Step {
    let uncommitted: Vec<String> = prepared
        .entropy_parties
        .iter()
        .filter(|p| part(parts, &p.party).is_none())
        .map(|p| p.party.clone())
        .collect();
    if !uncommitted.is_empty() {
        return Step::Commit(uncommitted);
    }
    if prepared.fixes_public_value && public_value.is_none() {
        return Step::PublicValue;
    }
    let unrevealed: Vec<String> = prepared
        .entropy_parties
        .iter()
        .filter(|p| part(parts, &p.party).is_none_or(|x| x.secret.is_none()))
        .map(|p| p.party.clone())
        .collect();
    if unrevealed.is_empty() {
        Step::Execute
    } else {
        Step::Reveal(unrevealed)
    }
}

fn out_of_turn(message: impl Into<String>) -> Error {
    Error::rule("R-53", ENTROPY_OUT_OF_TURN, message)
}

fn deadline_passed(prepared: &Prepared, now_micros: i64) -> Result<(), Error> {
    if prepared.reveal_deadline_micros > 0 && now_micros > prepared.reveal_deadline_micros {
        return Err(Error::rule(
            "R-53",
            ENTROPY_DEADLINE_PASSED,
            "the draw's deadline for commitments and reveals has passed",
        ));
    }
    Ok(())
}

/// Who may commit for `party`: a person with the party's role who holds no other part of
/// this draw, while the slot is empty and before the deadline.
pub fn may_commit(
    prepared: &Prepared,
    parts: &[Part],
    now_micros: i64,
    (role, subject): (&str, &str),
    party: &str,
) -> Result<(), Error> {
    deadline_passed(prepared, now_micros)?;
    let Some(slot) = prepared.entropy_parties.iter().find(|p| p.party == party) else {
        return Err(Error::invalid(
            "party",
            format!(
                "the draw's parties are {}",
                prepared
                    .entropy_parties
                    .iter()
                    .map(|p| p.party.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    };
    if slot.role != role {
        return Err(Error::permission_denied(format!(
            "the {party} part is taken by a person with role {}",
            slot.role
        )));
    }
    if let Some(mine) = parts.iter().find(|p| p.subject == subject) {
        return Err(out_of_turn(format!(
            "you hold the {} part of this draw: one person, one part",
            mine.party
        )));
    }
    if part(parts, party).is_some() {
        return Err(out_of_turn(format!(
            "the {party} part is committed already"
        )));
    }
    Ok(())
}

/// Whether the office may fix the public value now: every commitment in, nothing revealed, the
/// draw expecting one and none fixed yet.
pub fn may_fix_public_value(
    prepared: &Prepared,
    parts: &[Part],
    public_value: Option<&str>,
    now_micros: i64,
) -> Result<(), Error> {
    deadline_passed(prepared, now_micros)?;
    if !prepared.fixes_public_value {
        return Err(out_of_turn("this draw fixes no public value"));
    }
    match step(prepared, parts, public_value) {
        Step::Commit(missing) => Err(out_of_turn(format!(
            "the public value is fixed after every commitment; waiting for {}",
            missing.join(", ")
        ))),
        Step::PublicValue => Ok(()),
        _ => Err(out_of_turn("the public value is fixed already")),
    }
}

/// Whether `subject` may reveal `secret` for `party`: its turn has come, it committed that part,
/// and the secret is the one committed to.
pub fn may_reveal(
    prepared: &Prepared,
    parts: &[Part],
    public_value: Option<&str>,
    now_micros: i64,
    subject: &str,
    (party, secret): (&str, &str),
) -> Result<(), Error> {
    deadline_passed(prepared, now_micros)?;
    match step(prepared, parts, public_value) {
        Step::Commit(missing) => {
            return Err(out_of_turn(format!(
                "nothing is revealed before every commitment is in; waiting for {}",
                missing.join(", ")
            )));
        }
        Step::PublicValue => {
            return Err(out_of_turn(
                "nothing is revealed before the public value is fixed",
            ));
        }
        _ => {}
    }
    let Some(p) = part(parts, party) else {
        return Err(Error::invalid(
            "party",
            format!("{party} is not a party of this draw"),
        ));
    };
    if p.subject != subject {
        return Err(Error::permission_denied(format!(
            "only the person who committed the {party} part reveals it"
        )));
    }
    if p.secret.is_some() {
        return Err(out_of_turn(format!("the {party} part is revealed already")));
    }
    if commitment(&prepared.draw, party, secret) != p.commitment {
        return Err(Error::rule(
            "R-53",
            SECRET_DOES_NOT_MATCH_COMMITMENT,
            format!("the secret does not match the {party} commitment"),
        ));
    }
    Ok(())
}

/// The draw's entropy from its parts, checking every reveal against its commitment: what the
/// last reveal executes with, and what a replay recomputes.
pub fn entropy_of(
    prepared: &Prepared,
    inputs_hash: &str,
    parts: &[Part],
    public_value: Option<&str>,
) -> Result<String, String> {
    if prepared.fixes_public_value != public_value.is_some() {
        return Err(if prepared.fixes_public_value {
            "the record has no public value".into()
        } else {
            "the record has a public value its draw did not expect".into()
        });
    }
    let mut reveals = Vec::new();
    for party in &prepared.entropy_parties {
        let p = part(parts, &party.party).ok_or(format!("{} never committed", party.party))?;
        let secret = p
            .secret
            .as_deref()
            .ok_or(format!("{} never revealed", party.party))?;
        if commitment(&prepared.draw, &party.party, secret) != p.commitment {
            return Err(format!(
                "the {} secret does not match its commitment",
                party.party
            ));
        }
        reveals.push((party.party.as_str(), secret));
    }
    if parts.len() != prepared.entropy_parties.len() {
        return Err("the record has parts its draw does not name".into());
    }
    Ok(combine(
        &prepared.draw,
        inputs_hash,
        &reveals,
        public_value.unwrap_or(""),
    ))
}

/// At the deadline, what is missing and whose it is: the failure recorded on the draw.
pub fn missing(prepared: &Prepared, parts: &[Part], public_value: Option<&str>) -> String {
    match step(prepared, parts, public_value) {
        Step::Commit(missing) => format!(
            "R-53: no commitment by the deadline from {}",
            missing.join(", ")
        ),
        Step::PublicValue => "R-53: the office did not fix the public value by the deadline".into(),
        Step::Reveal(missing) => {
            let who: Vec<String> = missing
                .iter()
                .map(|party| {
                    let subject = part(parts, party).map(|p| p.subject.as_str()).unwrap_or("");
                    format!("{party} ({subject})")
                })
                .collect();
            format!("R-53: no reveal by the deadline from {}", who.join(", "))
        }
        Step::Execute => "R-53: every part was in; the draw was not executed".into(),
    }
}

#[cfg(test)]
mod vectors;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::draw::{self, PoolEntry};

    const OFFICE_SECRET: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const SUPERVISOR_SECRET: &str =
        "2222222222222222222222222222222222222222222222222222222222222222";

    pub(super) fn prepared(public_value: bool) -> Prepared {
        Prepared {
            algorithm: draw::ALGORITHM.into(),
            draw: "programmes/p/draws/d".into(),
            programme: "programmes/p".into(),
            purpose: "MATERIALS_GROUP".into(),
            enterprise_codes: vec![],
            size: 3,
            backups: 1,
            specialities: vec![],
            leader_required: false,
            window_start: "2026-03-02".into(),
            window_end: "2026-03-02".into(),
            policy_version: 1,
            entropy_source: "dice thrown in public".into(),
            entropy_commitment: String::new(),
            replaces_draw: String::new(),
            pool: (0..12)
                .map(|i| PoolEntry {
                    id: format!("r{i:02}"),
                    specialities: vec![],
                    leader: true,
                })
                .collect(),
            pool_hash: String::new(),
            exclusions: vec![],
            entropy_parties: parties(&["office".into(), "supervisor".into()]),
            fixes_public_value: public_value,
            reveal_deadline_micros: 1_000,
        }
        .normalise()
    }

    fn committed(p: &Prepared, party: &str, subject: &str, secret: &str) -> Part {
        Part {
            party: party.into(),
            subject: subject.into(),
            commitment: commitment(&p.draw, party, secret),
            committed_micros: 1,
            secret: None,
            revealed_micros: None,
        }
    }

    fn revealed(mut part: Part, secret: &str) -> Part {
        part.secret = Some(secret.into());
        part.revealed_micros = Some(2);
        part
    }

    #[test]
    fn r53_parties_are_named_by_role_and_the_office_alone_is_never_enough() {
        let named = parties(&["office".into(), "supervisor".into(), "office".into()]);
        let labels: Vec<&str> = named.iter().map(|p| p.party.as_str()).collect();
        assert_eq!(labels, ["office", "supervisor", "office-2"]);
        assert_eq!(
            parties_problem(&["office".into(), "supervisor".into()]),
            None
        );
        for bad in [
            vec!["office".to_string()],
            vec!["office".into(), "office".into()],
            vec!["office".into(), "enterprise".into()],
        ] {
            assert!(parties_problem(&bad).is_some(), "{bad:?}");
        }
        assert!(secret_problem(OFFICE_SECRET).is_none());
        assert!(
            secret_problem(&OFFICE_SECRET[..62]).is_some(),
            "under 256 bits"
        );
        assert!(secret_problem(&format!("{}zz", &OFFICE_SECRET[..62])).is_some());
    }

    #[test]
    fn r53_every_step_in_its_turn_and_nothing_revealed_before_every_commitment() {
        let p = prepared(true);
        let office = committed(&p, "office", "u-office", OFFICE_SECRET);
        // The office commits; its own reveal is refused until the supervisor has committed.
        assert!(may_commit(&p, &[], 0, ("office", "u-office"), "office").is_ok());
        let early = may_reveal(
            &p,
            std::slice::from_ref(&office),
            None,
            0,
            "u-office",
            ("office", OFFICE_SECRET),
        );
        assert_eq!(early.unwrap_err().reason, ENTROPY_OUT_OF_TURN);
        // The office cannot take the supervisor's slot, nor a second slot with another role.
        let e = may_commit(
            &p,
            std::slice::from_ref(&office),
            0,
            ("office", "u-office"),
            "supervisor",
        );
        assert_eq!(e.unwrap_err().code, qaward_kit::ErrorCode::PermissionDenied);
        let sup = committed(&p, "supervisor", "u-sup", SUPERVISOR_SECRET);
        let both = [office.clone(), sup.clone()];
        // Reveals wait for the public value, fixed once.
        assert_eq!(step(&p, &both, None), Step::PublicValue);
        assert!(
            may_reveal(
                &p,
                &both,
                None,
                0,
                "u-sup",
                ("supervisor", SUPERVISOR_SECRET)
            )
            .is_err()
        );
        assert!(may_fix_public_value(&p, &both, None, 0).is_ok());
        assert!(may_fix_public_value(&p, &both, Some("3-5"), 0).is_err());
        // Only the committer reveals, and only the committed secret.
        let e = may_reveal(
            &p,
            &both,
            Some("3-5"),
            0,
            "u-office",
            ("supervisor", SUPERVISOR_SECRET),
        );
        assert_eq!(e.unwrap_err().code, qaward_kit::ErrorCode::PermissionDenied);
        let e = may_reveal(
            &p,
            &both,
            Some("3-5"),
            0,
            "u-sup",
            ("supervisor", OFFICE_SECRET),
        );
        assert_eq!(e.unwrap_err().reason, SECRET_DOES_NOT_MATCH_COMMITMENT);
        assert!(
            may_reveal(
                &p,
                &both,
                Some("3-5"),
                0,
                "u-sup",
                ("supervisor", SUPERVISOR_SECRET)
            )
            .is_ok()
        );
        // After the deadline nothing moves.
        let late = may_reveal(
            &p,
            &both,
            Some("3-5"),
            1_001,
            "u-sup",
            ("supervisor", SUPERVISOR_SECRET),
        );
        assert_eq!(late.unwrap_err().reason, ENTROPY_DEADLINE_PASSED);
        let all = [
            revealed(office, OFFICE_SECRET),
            revealed(sup, SUPERVISOR_SECRET),
        ];
        assert_eq!(step(&p, &all, Some("3-5")), Step::Execute);
        assert!(entropy_of(&p, "h", &all, Some("3-5")).is_ok());
    }

    #[test]
    fn r53_the_office_knowing_the_prepared_record_cannot_choose_the_outcome() {
        // Whatever the office commits to, the seats follow the supervisor's secret, which the
        // office cannot know when it commits: with the office's secret fixed, two supervisor
        // secrets seat different groups; and every public value is fixed before any reveal.
        let p = prepared(false);
        let inputs = draw::sha256_hex(p.to_json().as_bytes());
        let outcome = |office: &str, sup: &str| {
            let e = combine(
                &p.draw,
                &inputs,
                &[("office", office), ("supervisor", sup)],
                "",
            );
            draw::execute_hashed(&p, &inputs, &e)
                .expect("drawn")
                .members
        };
        let mut seen = std::collections::BTreeSet::new();
        for s in 0..8u8 {
            seen.insert(outcome(OFFICE_SECRET, &hex::encode([s; 32])));
        }
        assert!(
            seen.len() >= 6,
            "the supervisor's secret moves the seats: {seen:?}"
        );
        // A reveal that was never committed cannot be swapped in after the fact.
        let parts = [
            revealed(
                committed(&p, "office", "a", OFFICE_SECRET),
                &hex::encode([9u8; 32]),
            ),
            revealed(
                committed(&p, "supervisor", "b", SUPERVISOR_SECRET),
                SUPERVISOR_SECRET,
            ),
        ];
        let e = entropy_of(&p, &inputs, &parts, None).unwrap_err();
        assert!(e.contains("office secret does not match"), "{e}");
    }

    #[test]
    fn r53_a_commitment_binds_its_draw_and_its_party() {
        let here = commitment("programmes/p/draws/d", "office", OFFICE_SECRET);
        assert_ne!(
            here,
            commitment("programmes/p/draws/e", "office", OFFICE_SECRET)
        );
        assert_ne!(
            here,
            commitment("programmes/p/draws/d", "supervisor", OFFICE_SECRET)
        );
        assert_eq!(
            here,
            commitment(
                "programmes/p/draws/d",
                "office",
                &OFFICE_SECRET.to_uppercase()
            )
        );
    }

    #[test]
    fn r53_a_missing_part_at_the_deadline_is_named_with_its_person() {
        let p = prepared(false);
        let office = revealed(
            committed(&p, "office", "u-office", OFFICE_SECRET),
            OFFICE_SECRET,
        );
        assert_eq!(
            missing(&p, std::slice::from_ref(&office), None),
            "R-53: no commitment by the deadline from supervisor"
        );
        let sup = committed(&p, "supervisor", "u-sup", SUPERVISOR_SECRET);
        assert_eq!(
            missing(&p, &[office, sup], None),
            "R-53: no reveal by the deadline from supervisor (u-sup)"
        );
    }
}
