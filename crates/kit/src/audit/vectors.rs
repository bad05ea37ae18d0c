//! `docs/audit-vectors.json`: a small log, its signed checkpoints and proofs, and the cases an
//! outside verifier must refuse (a tampered log, a forked checkpoint, a checkpoint under another
//! key, bad proofs), checked here and by `docs/audit_check.py`. `QAWARD_WRITE_VECTORS=1`
//! rewrites the file from the cases below.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{AuditKey, Checkpoint, log};
use crate::merkle::{self, Hash};

const ORIGIN: &str = "qaward/vectors";
const AT: i64 = 1_796_083_200_000_000;

fn row_hash(i: u64) -> String {
    hex::encode(Sha256::digest(format!("row {i}")))
}

fn hexes(v: &[Hash]) -> Vec<String> {
    v.iter().map(hex::encode).collect()
}

fn vectors() -> Value {
    let key = AuditKey::from_seed([0x11; 32]);
    let other = AuditKey::from_seed([0x22; 32]);
    let rows: Vec<(i64, String)> = (1..=7).map(|i| (i as i64, row_hash(i))).collect();
    let leaves: Vec<Hash> = rows.iter().map(|(s, h)| log::leaf(*s, h)).collect();
    let cp = |n: usize| Checkpoint::sign(&key, ORIGIN, n as u64, merkle::root(&leaves[..n]), AT);
    let (c3, c7) = (cp(3), cp(7));
    let inclusion = |i: usize, n: usize| merkle::inclusion_proof(&leaves[..n], i).unwrap();
    let consistency = |m: usize, n: usize| merkle::consistency_proof(&leaves[..n], m).unwrap();

    let mut tampered_rows = rows.clone();
    tampered_rows[4].1 = row_hash(99);
    let fork = Checkpoint::sign(&key, ORIGIN, 7, merkle::root(&leaves[..6]), AT);
    let foreign = Checkpoint::sign(&other, ORIGIN, 7, c7.root, AT);
    let mut bad_proof = inclusion(2, 7);
    bad_proof[0][0] ^= 1;
    json!({
        "public_key": key.public().to_text().trim_end(),
        "log": rows.iter().zip(&leaves).map(|((seq, h), l)| json!({
            "seq": seq,
            "row_hash": h,
            "leaf_data": hex::encode(log::leaf_data(*seq, h)),
            "leaf_hash": hex::encode(l),
        })).collect::<Vec<_>>(),
        "checkpoints": [c3.to_text(), c7.to_text()],
        "valid": [
            {"kind": "inclusion", "seq": 3, "checkpoint": 1, "proof": hexes(&inclusion(2, 7))},
            {"kind": "inclusion", "seq": 7, "checkpoint": 1, "proof": hexes(&inclusion(6, 7))},
            {"kind": "inclusion", "seq": 1, "checkpoint": 0, "proof": hexes(&inclusion(0, 3))},
            {"kind": "consistency", "from": 0, "to": 1, "proof": hexes(&consistency(3, 7))},
            {"kind": "log", "rows": "log", "checkpoint": 1},
        ],
        "invalid": [
            {"name": "a tampered log: row 5's hash changed after checkpoint 7", "kind": "log",
             "rows": tampered_rows.iter().map(|(s, h)| json!({"seq": s, "row_hash": h})).collect::<Vec<_>>(),
             "checkpoint": 1},
            {"name": "a log cut back to 6 records against checkpoint 7", "kind": "log",
             "rows": rows[..6].iter().map(|(s, h)| json!({"seq": s, "row_hash": h})).collect::<Vec<_>>(),
             "checkpoint": 1},
            {"name": "a forked checkpoint: validly signed, size 7, another root", "kind": "checkpoint",
             "text": fork.to_text(), "against": 1},
            {"name": "a checkpoint signed by another key", "kind": "checkpoint",
             "text": foreign.to_text(), "against": 1},
            {"name": "an inclusion proof with one bit flipped", "kind": "inclusion",
             "seq": 3, "checkpoint": 1, "proof": hexes(&bad_proof)},
            {"name": "record 4's proof offered for record 3", "kind": "inclusion",
             "seq": 3, "checkpoint": 1, "proof": hexes(&inclusion(3, 7))},
            {"name": "a consistency proof from 3 to 7 offered from 4 to 7", "kind": "consistency",
             "from_size": 4, "from_root": hex::encode(merkle::root(&leaves[..4])), "to": 1,
             "proof": hexes(&consistency(3, 7))},
        ],
    })
}

/// Checks one case as an outside verifier would: only the vectors file and the algorithms of
/// `docs/audit.md`.
fn holds(v: &Value, case: &Value) -> bool {
    let public = super::AuditPublicKey::parse(v["public_key"].as_str().unwrap()).unwrap();
    let cps: Vec<Checkpoint> = v["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| Checkpoint::parse(t.as_str().unwrap()).unwrap())
        .collect();
    let cp = |k: &str| &cps[case[k].as_u64().unwrap() as usize];
    let proof = || -> Vec<Hash> {
        case["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                hex::decode(h.as_str().unwrap())
                    .unwrap()
                    .try_into()
                    .unwrap()
            })
            .collect()
    };
    let leaf_of = |seq: i64| {
        let row = v["log"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["seq"] == seq)
            .unwrap();
        log::leaf(seq, row["row_hash"].as_str().unwrap())
    };
    match case["kind"].as_str().unwrap() {
        "inclusion" => {
            let c = cp("checkpoint");
            let seq = case["seq"].as_i64().unwrap();
            c.check(&public).is_ok()
                && merkle::verify_inclusion(
                    &leaf_of(seq),
                    seq as u64 - 1,
                    c.size,
                    &proof(),
                    &c.root,
                )
        }
        "consistency" => {
            let to = cp("to");
            let (size, root) = match case.get("from") {
                Some(_) => (cp("from").size, cp("from").root),
                None => (
                    case["from_size"].as_u64().unwrap(),
                    hex::decode(case["from_root"].as_str().unwrap())
                        .unwrap()
                        .try_into()
                        .unwrap(),
                ),
            };
            to.check(&public).is_ok()
                && merkle::verify_consistency(size, to.size, &root, &to.root, &proof())
        }
        "log" => {
            let rows = if case["rows"] == "log" {
                &v["log"]
            } else {
                &case["rows"]
            };
            let leaves: Vec<Hash> = rows
                .as_array()
                .unwrap()
                .iter()
                .map(|r| log::leaf(r["seq"].as_i64().unwrap(), r["row_hash"].as_str().unwrap()))
                .collect();
            let c = cp("checkpoint");
            c.check(&public).is_ok()
                && c.size as usize <= leaves.len()
                && merkle::root(&leaves[..c.size as usize]) == c.root
        }
        "checkpoint" => {
            let c = Checkpoint::parse(case["text"].as_str().unwrap()).unwrap();
            let against = cp("against");
            // Two signed checkpoints of one log agree where they overlap: equal sizes, equal
            // roots (unequal sizes need a consistency proof, as above).
            c.check(&public).is_ok() && (c.size != against.size || c.root == against.root)
        }
        other => panic!("unknown kind {other}"),
    }
}

#[test]
fn the_published_audit_vectors_are_reproduced_and_every_invalid_case_is_refused() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/audit-vectors.json");
    let made = vectors();
    if std::env::var("QAWARD_WRITE_VECTORS").is_ok() {
        std::fs::write(&path, serde_json::to_string_pretty(&made).unwrap() + "\n").unwrap();
    }
    let text = std::fs::read_to_string(&path).expect("docs/audit-vectors.json");
    let file: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        file, made,
        "the file is what the cases make (QAWARD_WRITE_VECTORS=1 rewrites it)"
    );
    for case in file["valid"].as_array().unwrap() {
        assert!(holds(&file, case), "valid: {case}");
    }
    for case in file["invalid"].as_array().unwrap() {
        assert!(!holds(&file, case), "invalid: {}", case["name"]);
    }
    assert_eq!(file["invalid"].as_array().unwrap().len(), 7);
}
