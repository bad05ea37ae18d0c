//! The verifiable random draw. `docs/draw.md` specifies this module precisely
//! enough to re-implement it elsewhere; `docs/draw-vectors.json` holds test vectors that the
//! tests below check. Everything here is pure: the same prepared record and entropy always
//! give the same members, leader and backups, on any machine.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The version of the algorithm; part of every seed, so a future change cannot replay an
/// old record differently.
pub const ALGORITHM: &str = "qaward-draw-v1";

/// One eligible reviewer as the draw sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolEntry {
    pub id: String,
    /// GB/T 4754 codes, lettered (`C1311`).
    pub specialities: Vec<String>,
    pub leader: bool,
}

/// "At least `min` members with speciality `code`" (a code matches itself and every code
/// below it: `C13` is met by `C1311`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecialityNeed {
    pub code: String,
    pub min: u32,
}

/// A reviewer who matched the specialities but may not be drawn, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Exclusion {
    pub reviewer: String,
    pub code: String,
    pub rule: String,
}

/// Everything a draw is fixed to before its entropy is known. Serialised once, as
/// [`Prepared::to_json`], and stored as that exact text; its SHA-256 is the inputs hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prepared {
    pub algorithm: String,
    pub draw: String,
    pub programme: String,
    pub purpose: String,
    pub enterprise_codes: Vec<String>,
    pub size: u32,
    pub backups: u32,
    pub specialities: Vec<SpecialityNeed>,
    pub leader_required: bool,
    pub window_start: String,
    pub window_end: String,
    pub policy_version: u32,
    pub entropy_source: String,
    pub entropy_commitment: String,
    pub replaces_draw: String,
    /// Sorted by id (byte order).
    pub pool: Vec<PoolEntry>,
    pub pool_hash: String,
    pub exclusions: Vec<Exclusion>,
    /// who contributes the entropy, in the order their secrets are hashed. Absent from
    /// records prepared before multi-party entropy (they carry one `entropy_commitment`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entropy_parties: Vec<super::entropy::Party>,
    /// a public value (dice thrown in public, a beacon round) is fixed after every
    /// commitment and before any reveal.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fixes_public_value: bool,
    /// Commitments, the public value and reveals are due by this time (Unix microseconds).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reveal_deadline_micros: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// The result of a draw: members in draw order, the leader, and the backups in the order
/// they will be called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub members: Vec<String>,
    pub leader: String,
    pub backups: Vec<String>,
}

/// What is short when a draw cannot be made; never a smaller group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shortage {
    Speciality {
        code: String,
        have: usize,
        need: u32,
    },
    Members {
        have: usize,
        need: u32,
    },
    Leader,
    Backups {
        have: usize,
        need: u32,
    },
    /// Each need can be met alone, but not all of them in one group of this size.
    Combination,
}

impl Shortage {
    /// In the office's words.
    pub fn message(&self) -> String {
        match self {
            Shortage::Speciality { code, have, need } => format!(
                "{have} eligible reviewers with speciality {code} after recusal, {need} needed"
            ),
            Shortage::Members { have, need } => {
                format!("{have} eligible reviewers after recusal, {need} needed")
            }
            Shortage::Leader => "no eligible reviewer is qualified to lead the group".to_string(),
            Shortage::Backups { have, need } => format!(
                "{have} eligible reviewers left for the backup list, {need} backups requested"
            ),
            Shortage::Combination => {
                "the speciality and leader needs cannot all be met in a group of this size"
                    .to_string()
            }
        }
    }
}

/// SHA-256, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// SHA-256 of the sorted pool ids joined by `\n`.
pub fn pool_hash(pool: &[PoolEntry]) -> String {
    let ids: Vec<&str> = pool.iter().map(|p| p.id.as_str()).collect();
    sha256_hex(ids.join("\n").as_bytes())
}

impl Prepared {
    /// Sorts what must be sorted and fills in the pool hash.
    pub fn normalise(mut self) -> Prepared {
        self.pool.sort_by(|a, b| a.id.cmp(&b.id));
        for p in &mut self.pool {
            p.specialities.sort();
        }
        self.enterprise_codes.sort();
        self.exclusions.sort();
        self.pool_hash = pool_hash(&self.pool);
        self
    }

    /// The canonical text: compact JSON in field order.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a prepared draw always serialises")
    }
}

/// Does `have` (a reviewer's code) meet `need` (a requested code)?
pub fn meets(have: &str, need: &str) -> bool {
    have.starts_with(need)
}

/// The random stream: u64 number `k` is the first 8 bytes (big-endian) of
/// SHA-256(seed ‖ k as 8 bytes big-endian).
pub struct Stream {
    seed: [u8; 32],
    counter: u64,
}

impl Stream {
    /// seed = SHA-256(ALGORITHM ‖ 0x00 ‖ draw name ‖ 0x00 ‖ inputs hash ‖ 0x00 ‖ entropy).
    pub fn new(draw: &str, inputs_hash: &str, entropy: &str) -> Stream {
        let mut h = Sha256::new();
        for (i, part) in [ALGORITHM, draw, inputs_hash, entropy].iter().enumerate() {
            if i > 0 {
                h.update([0u8]);
            }
            h.update(part.as_bytes());
        }
        Stream {
            seed: h.finalize().into(),
            counter: 0,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut h = Sha256::new();
        h.update(self.seed);
        h.update(self.counter.to_be_bytes());
        self.counter += 1;
        let d = h.finalize();
        u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
    }

    /// Uniform in `0..n` by rejection: values at or above the largest multiple of `n` that
    /// fits in 2^64 are drawn again.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0);
        let rem = ((u64::MAX % n) + 1) % n; // 2^64 mod n
        loop {
            let x = self.next_u64();
            if rem == 0 || x <= u64::MAX - rem {
                return x % n;
            }
        }
    }
}

fn deficit(prepared: &Prepared, chosen: &[&PoolEntry]) -> u32 {
    let mut d = 0;
    for need in &prepared.specialities {
        let have = chosen
            .iter()
            .filter(|p| p.specialities.iter().any(|s| meets(s, &need.code)))
            .count() as u32;
        d += need.min.saturating_sub(have);
    }
    if prepared.leader_required && !chosen.iter().any(|p| p.leader) {
        d += 1;
    }
    d
}

/// Checks each need alone against the pool, so the office hears exactly what is short.
pub fn check_feasible(prepared: &Prepared) -> Result<(), Shortage> {
    for need in &prepared.specialities {
        let have = prepared
            .pool
            .iter()
            .filter(|p| p.specialities.iter().any(|s| meets(s, &need.code)))
            .count();
        if (have as u32) < need.min {
            return Err(Shortage::Speciality {
                code: need.code.clone(),
                have,
                need: need.min,
            });
        }
    }
    if (prepared.pool.len() as u32) < prepared.size {
        return Err(Shortage::Members {
            have: prepared.pool.len(),
            need: prepared.size,
        });
    }
    if prepared.leader_required && !prepared.pool.iter().any(|p| p.leader) {
        return Err(Shortage::Leader);
    }
    let left = prepared.pool.len() - prepared.size as usize;
    if (left as u32) < prepared.backups {
        return Err(Shortage::Backups {
            have: left,
            need: prepared.backups,
        });
    }
    Ok(())
}

/// Runs the draw: a lazy Fisher-Yates shuffle of the pool gives the draw order; each
/// reviewer in that order joins the group if the group can still meet every need with the
/// seats left; the first `backups` reviewers in draw order who did not join are the backups;
/// the leader is the first member in draw order who is qualified to lead.
pub fn execute(prepared: &Prepared, entropy: &str) -> Result<Outcome, Shortage> {
    execute_hashed(
        prepared,
        &sha256_hex(prepared.to_json().as_bytes()),
        entropy,
    )
}

/// [`execute`] with the inputs hash already known (the stored record's), so a large pool is
/// not serialised again.
pub fn execute_hashed(
    prepared: &Prepared,
    inputs_hash: &str,
    entropy: &str,
) -> Result<Outcome, Shortage> {
    check_feasible(prepared)?;
    let mut stream = Stream::new(&prepared.draw, inputs_hash, entropy);
    let n = prepared.pool.len();
    let size = prepared.size as usize;
    let mut order: Vec<usize> = (0..n).collect();
    let mut members: Vec<&PoolEntry> = Vec::with_capacity(size);
    let mut others: Vec<&PoolEntry> = Vec::new();
    for i in 0..n {
        if members.len() == size && others.len() >= prepared.backups as usize {
            break;
        }
        let j = i + stream.below((n - i) as u64) as usize;
        order.swap(i, j);
        let candidate = &prepared.pool[order[i]];
        if members.len() < size {
            let mut with = members.clone();
            with.push(candidate);
            let seats_left = (size - with.len()) as u32;
            if deficit(prepared, &with) <= seats_left {
                members.push(candidate);
                continue;
            }
        }
        others.push(candidate);
    }
    if members.len() < size {
        return Err(Shortage::Combination);
    }
    let member_ids: Vec<String> = members.iter().map(|p| p.id.clone()).collect();
    let leader = leader(prepared, &member_ids).cloned().unwrap_or_default();
    Ok(Outcome {
        members: member_ids,
        leader,
        backups: others
            .iter()
            .take(prepared.backups as usize)
            .map(|p| p.id.clone())
            .collect(),
    })
}

/// The group's leader: the first of `members` (given in draw order) qualified to lead, else
/// the first member. The same rule names the leader at the draw and after a replacement.
pub fn leader<'a>(prepared: &Prepared, members: &'a [String]) -> Option<&'a String> {
    let may_lead = |id: &String| prepared.pool.iter().any(|p| &p.id == id && p.leader);
    members.iter().find(|m| may_lead(m)).or(members.first())
}

/// The first backup, in the order fixed at draw time, who can take `leaving`'s seat with
/// every need still met; `None` when no remaining backup can.
pub fn replacement<'a>(
    prepared: &Prepared,
    members: &[String],
    leaving: &str,
    backups: &'a [String],
) -> Option<&'a String> {
    let entry = |id: &str| prepared.pool.iter().find(|p| p.id == id);
    let staying: Vec<&PoolEntry> = members
        .iter()
        .filter(|m| m.as_str() != leaving)
        .filter_map(|m| entry(m))
        .collect();
    backups.iter().find(|b| {
        let Some(e) = entry(b) else { return false };
        let mut with = staying.clone();
        with.push(e);
        deficit(prepared, &with) == 0
    })
}

/// One replacement as the replayable record keeps it (§5): who left, why (`DECLINED`,
/// `MISSED_DEADLINE`, `LATE_CONFLICT`), who took the seat, and who leads the group after it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Replaced {
    pub leaving: String,
    pub reason: String,
    pub joining: String,
    pub leader: String,
}

/// §5, replayed: the seat of each of `leavings` (in the order they left, with why) goes to the
/// first remaining backup that keeps every need ([`replacement`]); when the leader leaves, the
/// §4 leader rule picks again among those still seated, in draw order (members, then backups).
/// `Err` names the first leaving that holds no seat or finds no backup.
pub fn replace_in_order(
    prepared: &Prepared,
    outcome: &Outcome,
    leavings: &[(String, String)],
) -> Result<Vec<Replaced>, String> {
    let mut sitting = outcome.members.clone();
    let mut waiting = outcome.backups.clone();
    let mut leader = outcome.leader.clone();
    let mut out = Vec::with_capacity(leavings.len());
    for (leaving, reason) in leavings {
        if !sitting.contains(leaving) {
            return Err(format!("{leaving} holds no seat when it is said to leave"));
        }
        let joining = replacement(prepared, &sitting, leaving, &waiting)
            .cloned()
            .ok_or_else(|| format!("no remaining backup keeps the needs when {leaving} leaves"))?;
        sitting.retain(|m| m != leaving);
        sitting.push(joining.clone());
        waiting.retain(|b| *b != joining);
        if *leaving == leader {
            let active: Vec<String> = outcome
                .members
                .iter()
                .chain(&outcome.backups)
                .filter(|id| sitting.contains(id))
                .cloned()
                .collect();
            leader = self::leader(prepared, &active).cloned().unwrap_or_default();
        }
        out.push(Replaced {
            leaving: leaving.clone(),
            reason: reason.clone(),
            joining,
            leader: leader.clone(),
        });
    }
    Ok(out)
}

/// §6: recorded replacements are checked by replaying them from the outcome: each seat must go
/// where §5 sends it, and the leader be the one §4 names.
pub fn check_replacements(
    prepared: &Prepared,
    outcome: &Outcome,
    recorded: &[Replaced],
) -> Result<(), String> {
    let leavings: Vec<(String, String)> = recorded
        .iter()
        .map(|r| (r.leaving.clone(), r.reason.clone()))
        .collect();
    let replayed = replace_in_order(prepared, outcome, &leavings)?;
    match replayed.iter().zip(recorded).position(|(a, b)| a != b) {
        None => Ok(()),
        Some(i) => Err(format!(
            "replacement {} differs: the record says {} took {}'s seat (leader {}), §5 gives {} (leader {})",
            i + 1,
            recorded[i].joining,
            recorded[i].leaving,
            recorded[i].leader,
            replayed[i].joining,
            replayed[i].leader
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, specs: &[&str], leader: bool) -> PoolEntry {
        PoolEntry {
            id: id.to_string(),
            specialities: specs.iter().map(|s| s.to_string()).collect(),
            leader,
        }
    }

    fn prepared(pool: Vec<PoolEntry>, size: u32, backups: u32, needs: &[(&str, u32)]) -> Prepared {
        Prepared {
            algorithm: ALGORITHM.to_string(),
            draw: "programmes/yunyang/draws/d1".into(),
            programme: "programmes/yunyang".into(),
            purpose: "MATERIALS_GROUP".into(),
            enterprise_codes: vec![],
            size,
            backups,
            specialities: needs
                .iter()
                .map(|(c, m)| SpecialityNeed {
                    code: c.to_string(),
                    min: *m,
                })
                .collect(),
            leader_required: true,
            window_start: "2026-03-02".into(),
            window_end: "2026-03-06".into(),
            policy_version: 1,
            entropy_source: "test".into(),
            entropy_commitment: String::new(),
            replaces_draw: String::new(),
            pool,
            pool_hash: String::new(),
            exclusions: vec![],
            entropy_parties: vec![],
            fixes_public_value: false,
            reveal_deadline_micros: 0,
        }
        .normalise()
    }

    fn pool(n: usize) -> Vec<PoolEntry> {
        (0..n)
            .map(|i| {
                entry(
                    &format!("R{i:04}"),
                    &[if i % 3 == 0 { "C13" } else { "C26" }],
                    i % 4 == 0,
                )
            })
            .collect()
    }

    #[test]
    fn r45_the_same_inputs_give_the_same_draw_and_other_entropy_another() {
        let p = prepared(pool(40), 5, 3, &[("C13", 2)]);
        let a = execute(&p, "beacon-12345").unwrap();
        assert_eq!(a, execute(&p, "beacon-12345").unwrap());
        assert_ne!(a, execute(&p, "beacon-12346").unwrap());
        assert_eq!(a.members.len(), 5);
        assert_eq!(a.backups.len(), 3);
        let mut all: Vec<&String> = a.members.iter().chain(&a.backups).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 8, "nobody is drawn twice");
    }

    #[test]
    fn r40_speciality_needs_and_a_qualified_leader_are_always_met() {
        for seed in 0..300 {
            let p = prepared(pool(30), 5, 2, &[("C13", 3)]);
            let o = execute(&p, &format!("e{seed}")).unwrap();
            let c13 = o
                .members
                .iter()
                .filter(|m| {
                    p.pool
                        .iter()
                        .any(|e| &e.id == *m && e.specialities[0] == "C13")
                })
                .count();
            assert!(c13 >= 3, "{o:?}");
            let leader = p.pool.iter().find(|e| e.id == o.leader).unwrap();
            assert!(leader.leader && o.members.contains(&o.leader));
        }
    }

    #[test]
    fn shortages_are_named_never_a_smaller_group() {
        let p = prepared(pool(6), 5, 3, &[]);
        assert_eq!(
            execute(&p, "x"),
            Err(Shortage::Backups { have: 1, need: 3 })
        );
        let p = prepared(pool(6), 5, 0, &[("C13", 3)]);
        assert_eq!(
            execute(&p, "x").unwrap_err().message(),
            "2 eligible reviewers with speciality C13 after recusal, 3 needed"
        );
        let p = prepared(pool(2), 3, 0, &[]);
        assert_eq!(
            execute(&p, "x"),
            Err(Shortage::Members { have: 2, need: 3 })
        );
        let no_leaders = (0..5)
            .map(|i| entry(&format!("R{i}"), &["C13"], false))
            .collect();
        assert_eq!(
            execute(&prepared(no_leaders, 3, 0, &[]), "x"),
            Err(Shortage::Leader)
        );
    }

    #[test]
    fn a_replacement_is_the_first_backup_that_keeps_the_needs() {
        let p = prepared(pool(30), 5, 4, &[("C13", 2)]);
        let o = execute(&p, "e").unwrap();
        let leaving = &o.members[1];
        let r = replacement(&p, &o.members, leaving, &o.backups).unwrap();
        assert!(o.backups.contains(r));
        // It is the first backup that works, in draw order.
        let first_ok = o.backups.iter().position(|b| b == r).unwrap();
        for earlier in &o.backups[..first_ok] {
            assert!(replacement(&p, &o.members, leaving, std::slice::from_ref(earlier)).is_none());
        }
    }

    #[test]
    fn the_leader_is_the_first_qualified_member_in_draw_order_else_the_first() {
        let p = prepared(
            vec![
                entry("A", &["C13"], false),
                entry("B", &["C13"], true),
                entry("C", &["C13"], true),
            ],
            3,
            0,
            &[],
        );
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            leader(&p, &ids(&["A", "C", "B"])).map(String::as_str),
            Some("C")
        );
        assert_eq!(leader(&p, &ids(&["A"])).map(String::as_str), Some("A"));
        assert_eq!(leader(&p, &[]), None);
    }

    #[test]
    fn the_stream_rejects_to_stay_uniform() {
        let mut s = Stream::new("d", "h", "e");
        for n in [1u64, 2, 3, 7, 1000, u64::MAX] {
            assert!(s.below(n) < n);
        }
    }

    #[test]
    fn r45_fair_each_reviewer_is_drawn_with_the_expected_frequency() {
        // 20 reviewers, groups of 5 with no speciality need and any member able to lead:
        // each should be drawn in 5/20 of draws. Over 10,000 draws, a chi-square test with
        // 19 degrees of freedom at p = 0.001 (critical value 43.82).
        let pool: Vec<PoolEntry> = (0..20)
            .map(|i| entry(&format!("R{i:02}"), &["C13"], true))
            .collect();
        let p = prepared(pool, 5, 0, &[]);
        let draws = 10_000;
        let mut counts = std::collections::BTreeMap::new();
        for k in 0..draws {
            for m in execute(&p, &format!("entropy-{k}")).unwrap().members {
                *counts.entry(m).or_insert(0u32) += 1;
            }
        }
        let expected = draws as f64 * 5.0 / 20.0;
        let chi2: f64 = counts
            .values()
            .map(|&c| (c as f64 - expected).powi(2) / expected)
            .sum();
        assert_eq!(counts.len(), 20);
        assert!(
            chi2 < 43.82,
            "chi-square {chi2:.2} over 19 d.f.: {counts:?}"
        );
    }
}

#[cfg(test)]
mod vectors;
