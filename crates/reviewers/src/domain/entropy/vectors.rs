//! `docs/entropy-vectors.json`: the published cases of multi-party entropy, checked here
//! and by `docs/draw_replay.py`.

use super::{tests::prepared, *};
use crate::domain::draw;

/// `docs/entropy-vectors.json`: parts, public value and the entropy they give, or that
/// they give none; checked here and by `docs/draw_replay.py`. `QAWARD_WRITE_VECTORS=1`
/// rewrites the file.
#[test]
fn r53_the_published_entropy_vectors_are_reproduced() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/entropy-vectors.json");
    let inputs = "5a1c".repeat(16);
    let secret = |s: &str| draw::sha256_hex(s.as_bytes());
    type Vector = (
        &'static str,
        Vec<&'static str>,
        bool,
        Vec<(String, String, String)>,
        Option<&'static str>,
    );
    let honest = |party: &str, draw: &str| {
        let s = secret(party);
        (party.to_string(), commitment(draw, party, &s), s)
    };
    let d = "programmes/yunyang/draws/v7";
    let cases: Vec<Vector> = vec![
        (
            "office and supervisor",
            vec!["office", "supervisor"],
            false,
            vec![honest("office", d), honest("supervisor", d)],
            None,
        ),
        (
            "office, supervisor and a second office member, with dice",
            vec!["office", "supervisor", "office"],
            true,
            vec![
                honest("office", d),
                honest("supervisor", d),
                honest("office-2", d),
            ],
            Some("3-5-1-6"),
        ),
        (
            "upper-case secret hex is the same secret",
            vec!["office", "supervisor"],
            false,
            vec![honest("office", d), {
                let (p, c, s) = honest("supervisor", d);
                (p, c, s.to_uppercase())
            }],
            None,
        ),
        (
            "a secret that is not the one committed",
            vec!["office", "supervisor"],
            false,
            vec![honest("office", d), {
                let (p, c, _) = honest("supervisor", d);
                (p, c, secret("another"))
            }],
            None,
        ),
        (
            "a commitment made for another party",
            vec!["office", "supervisor"],
            false,
            vec![honest("office", d), {
                let s = secret("office");
                ("supervisor".into(), commitment(d, "office", &s), s)
            }],
            None,
        ),
        (
            "a commitment made for another draw",
            vec!["office", "supervisor"],
            false,
            vec![
                honest("office", d),
                honest("supervisor", "programmes/yunyang/draws/v6"),
            ],
            None,
        ),
        (
            "no public value where the draw fixes one",
            vec!["office", "supervisor"],
            true,
            vec![honest("office", d), honest("supervisor", d)],
            None,
        ),
        (
            "a party that never revealed",
            vec!["office", "supervisor"],
            false,
            vec![honest("office", d)],
            None,
        ),
    ];
    let run =
        |roles: &[&str], fixes: bool, parts: &[(String, String, String)], pv: Option<&str>| {
            let mut p = prepared(fixes);
            p.draw = d.into();
            p.entropy_parties = parties(&roles.iter().map(|r| r.to_string()).collect::<Vec<_>>());
            let parts: Vec<Part> = parts
                .iter()
                .map(|(party, c, s)| Part {
                    party: party.clone(),
                    subject: format!("{party}-person"),
                    commitment: c.clone(),
                    committed_micros: 1,
                    secret: Some(s.clone()),
                    revealed_micros: Some(2),
                })
                .collect();
            entropy_of(&p, &inputs, &parts, pv).ok()
        };
    if std::env::var("QAWARD_WRITE_VECTORS").is_ok() {
        let all: Vec<serde_json::Value> = cases
            .iter()
            .map(|(name, roles, fixes, parts, pv)| {
                serde_json::json!({
                    "name": name,
                    "draw": d,
                    "inputs_hash": inputs,
                    "parties": parties(&roles.iter().map(|r| r.to_string()).collect::<Vec<_>>()),
                    "fixes_public_value": fixes,
                    "parts": parts.iter().map(|(p, c, s)| serde_json::json!({"party": p, "commitment": c, "secret": s})).collect::<Vec<_>>(),
                    "public_value": pv,
                    "entropy": run(roles, *fixes, parts, *pv),
                })
            })
            .collect();
        std::fs::write(&path, serde_json::to_string_pretty(&all).unwrap() + "\n").unwrap();
    }
    let text = std::fs::read_to_string(&path).expect("docs/entropy-vectors.json");
    let vectors: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(vectors.len(), cases.len());
    let (mut valid, mut invalid) = (0, 0);
    for (v, (name, roles, fixes, parts, pv)) in vectors.iter().zip(&cases) {
        assert_eq!(v["name"], *name);
        let got = run(roles, *fixes, parts, *pv);
        assert_eq!(serde_json::json!(got), v["entropy"], "{name}");
        if got.is_some() {
            valid += 1
        } else {
            invalid += 1
        }
    }
    assert!(valid >= 3 && invalid >= 4, "vectors cover both");
}
