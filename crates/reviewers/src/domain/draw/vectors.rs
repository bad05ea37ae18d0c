//! `docs/draw-vectors.json`: inputs and the exact ordered results. Checked here and by
//! `docs/draw_replay.py`. `QAWARD_WRITE_VECTORS=1` rewrites the file from the cases below
//! (only when the algorithm version changes).

use super::*;

/// Each case: its name, prepared record, entropy, and the members (by index into the drawn
/// members) that then leave, with why (§5).
type Case = (String, Prepared, String, Vec<(usize, &'static str)>);

fn cases() -> Vec<Case> {
    let entry = |i: usize, specs: &[&str], leader: bool| PoolEntry {
        id: format!("CQ-{i:04}"),
        specialities: specs.iter().map(|s| s.to_string()).collect(),
        leader,
    };
    let base = |draw: &str, pool: Vec<PoolEntry>, size, backups, needs: Vec<SpecialityNeed>| {
        Prepared {
            algorithm: ALGORITHM.into(),
            draw: format!("programmes/yunyang/draws/{draw}"),
            programme: "programmes/yunyang".into(),
            purpose: "MATERIALS_GROUP".into(),
            enterprise_codes: vec!["91500235MA5U7XXX0C".into()],
            size,
            backups,
            specialities: needs,
            leader_required: true,
            window_start: "2026-03-02".into(),
            window_end: "2026-03-06".into(),
            policy_version: 1,
            entropy_source: "test vector".into(),
            entropy_commitment: String::new(),
            replaces_draw: String::new(),
            pool,
            pool_hash: String::new(),
            exclusions: vec![Exclusion {
                reviewer: "reviewers/CQ-9999".into(),
                code: "SHAREHOLDING".into(),
                rule: "R-41".into(),
            }],
            entropy_parties: vec![],
            fixes_public_value: false,
            reveal_deadline_micros: 0,
        }
        .normalise()
    };
    let mixed: Vec<PoolEntry> = (0..25)
        .map(|i| entry(i, &[["C13", "C1311", "C26", "M74"][i % 4]], i % 5 == 2))
        .collect();
    vec![
        (
            "plain group of 3 with 2 backups".into(),
            base(
                "v1",
                (0..10).map(|i| entry(i, &["C13"], i == 7)).collect(),
                3,
                2,
                vec![],
            ),
            "beacon round 4501234".into(),
            // The only member who may lead declines: no backup may, so none qualifies.
            vec![(2, "DECLINED")],
        ),
        (
            "speciality needs and a leader".into(),
            base(
                "v2",
                mixed.clone(),
                5,
                3,
                vec![
                    SpecialityNeed {
                        code: "C13".into(),
                        min: 2,
                    },
                    SpecialityNeed {
                        code: "M74".into(),
                        min: 1,
                    },
                ],
            ),
            "3 6 1 4 5 2".into(),
            vec![(0, "DECLINED"), (1, "LATE_CONFLICT")],
        ),
        (
            "defence panel of 7, unicode entropy".into(),
            base(
                "v3",
                mixed,
                7,
                4,
                vec![SpecialityNeed {
                    code: "C26".into(),
                    min: 3,
                }],
            ),
            "监督员当场掷骰: 5-2-6".into(),
            vec![(1, "MISSED_DEADLINE")],
        ),
        (
            "shortage of a speciality".into(),
            base(
                "v4",
                (0..6)
                    .map(|i| entry(i, &[if i < 2 { "C13" } else { "C26" }], true))
                    .collect(),
                3,
                0,
                vec![SpecialityNeed {
                    code: "C13".into(),
                    min: 3,
                }],
            ),
            "any".into(),
            vec![],
        ),
        (
            "the leader declines and the rule picks again".into(),
            base(
                "v5",
                (0..12).map(|i| entry(i, &["C13"], i % 3 == 0)).collect(),
                4,
                3,
                vec![],
            ),
            "leader leaves".into(),
            vec![(usize::MAX, "DECLINED"), (0, "LATE_CONFLICT")],
        ),
        (
            // A redraw is a new prepared draw naming the one it follows (§1): the name
            // enters the record, so the inputs hash and the walk differ from v5's.
            "a redraw naming the draw it follows".into(),
            Prepared {
                replaces_draw: "programmes/yunyang/draws/v5".into(),
                ..base(
                    "v6",
                    (0..12).map(|i| entry(i, &["C13"], i % 3 == 0)).collect(),
                    4,
                    3,
                    vec![],
                )
            }
            .normalise(),
            "leader leaves".into(),
            vec![],
        ),
    ]
}

fn expected(p: &Prepared, entropy: &str) -> serde_json::Value {
    match execute(p, entropy) {
        Ok(o) => {
            serde_json::json!({ "members": o.members, "leader": o.leader, "backups": o.backups })
        }
        Err(e) => serde_json::json!({ "error": e.message() }),
    }
}

/// The case's leavings on its drawn group: `usize::MAX` names the leader.
fn leavings(o: &Outcome, picks: &[(usize, &str)]) -> Vec<(String, String)> {
    picks
        .iter()
        .map(|(i, why)| {
            let who = if *i == usize::MAX {
                o.leader.clone()
            } else {
                o.members[*i].clone()
            };
            (who, why.to_string())
        })
        .collect()
}

fn replaced(p: &Prepared, o: &Outcome, leavings: &[(String, String)]) -> serde_json::Value {
    match replace_in_order(p, o, leavings) {
        Ok(r) => serde_json::to_value(r).unwrap(),
        Err(e) => serde_json::json!({ "error": e }),
    }
}

#[test]
fn r45_the_published_vectors_are_reproduced() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/draw-vectors.json");
    if std::env::var("QAWARD_WRITE_VECTORS").is_ok() {
        let all: Vec<serde_json::Value> = cases()
            .into_iter()
            .map(|(name, p, entropy, picks)| {
                let text = p.to_json();
                let mut v = serde_json::json!({
                    "name": name,
                    "prepared": text,
                    "inputs_hash": sha256_hex(text.as_bytes()),
                    "entropy": entropy,
                    "expected": expected(&p, &entropy),
                });
                if let (Ok(o), false) = (execute(&p, &entropy), picks.is_empty()) {
                    let l = leavings(&o, &picks);
                    v["leavings"] =
                        serde_json::json!(l
                        .iter()
                        .map(|(who, why)| serde_json::json!({ "leaving": who, "reason": why }))
                        .collect::<Vec<_>>());
                    v["replacements"] = replaced(&p, &o, &l);
                }
                v
            })
            .collect();
        std::fs::write(&path, serde_json::to_string_pretty(&all).unwrap() + "\n").unwrap();
    }
    let text = std::fs::read_to_string(&path).expect("docs/draw-vectors.json");
    let vectors: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert!(vectors.len() >= 4);
    let mut replacements = 0;
    for v in vectors {
        let prepared_text = v["prepared"].as_str().unwrap();
        assert_eq!(
            sha256_hex(prepared_text.as_bytes()),
            v["inputs_hash"],
            "{}",
            v["name"]
        );
        let p: Prepared = serde_json::from_str(prepared_text).unwrap();
        assert_eq!(p.to_json(), prepared_text, "canonical text round-trips");
        assert_eq!(pool_hash(&p.pool), p.pool_hash);
        assert_eq!(
            expected(&p, v["entropy"].as_str().unwrap()),
            v["expected"],
            "{}",
            v["name"]
        );
        // §5: the replacements the vector lists, replayed from its outcome.
        if let Some(leaving) = v["leavings"].as_array() {
            let o = execute(&p, v["entropy"].as_str().unwrap()).unwrap();
            let l: Vec<(String, String)> = leaving
                .iter()
                .map(|x| {
                    let f = |k: &str| x[k].as_str().unwrap().to_string();
                    (f("leaving"), f("reason"))
                })
                .collect();
            assert_eq!(replaced(&p, &o, &l), v["replacements"], "{}", v["name"]);
            replacements += 1;
        }
    }
    assert!(replacements >= 2, "vectors cover replacements");
}

#[test]
fn r45_a_recorded_replacement_that_is_not_section_5s_is_caught() {
    let (_, p, entropy, picks) = cases().swap_remove(4);
    let o = execute(&p, &entropy).unwrap();
    let mut r = replace_in_order(&p, &o, &leavings(&o, &picks)).unwrap();
    assert!(check_replacements(&p, &o, &r).is_ok());
    // Another backup than §5's, or the wrong leader, is caught.
    let spare = o
        .backups
        .iter()
        .find(|b| **b != r[0].joining)
        .unwrap()
        .clone();
    let honest = r[0].clone();
    r[0].joining = spare;
    assert!(
        check_replacements(&p, &o, &r)
            .unwrap_err()
            .contains("replacement 1")
    );
    r[0] = honest;
    r[1].leader = "CQ-9999".into();
    assert!(check_replacements(&p, &o, &r).is_err());
    // Someone leaving who holds no seat is caught.
    let stranger = vec![Replaced {
        leaving: "CQ-9999".into(),
        reason: "DECLINED".into(),
        joining: o.backups[0].clone(),
        leader: o.leader.clone(),
    }];
    assert!(check_replacements(&p, &o, &stranger).is_err());
}
