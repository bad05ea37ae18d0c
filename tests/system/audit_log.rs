//! Issue 22, item 3, from outside: an auditor keeps a checkpoint printed by `qaward audit
//! checkpoint`, checks its signature with an independent verifier (docs/audit_check.py), and
//! later `qaward audit verify --checkpoint` proves the log still holds it; a rollback done with
//! the database owner's power is caught, and a restore recorded with `qaward audit restored` is
//! reported as such.

use crate::{
    http_json::http,
    support::{Qaward, qaward},
};

fn run(args: &[&str], q: &Qaward) -> (bool, String) {
    let out = qaward(args)
        .arg("--data-dir")
        .arg(q.data_dir.path())
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Cuts the reviewers' log back to its first `keep` records with every guard switched off:
/// rows, tree, checkpoints and head, consistently — what restoring an older dump does.
async fn roll_back(q: &Qaward, keep: i64) {
    let url = format!(
        "sqlite://{}",
        q.data_dir.path().join("reviewers.db").display()
    );
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let triggers: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name LIKE 'audit_%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let hash: String = sqlx::query_scalar("SELECT hash FROM audit_log WHERE seq = ?")
        .bind(keep)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let mut statements: Vec<String> = triggers
        .iter()
        .map(|t| format!("DROP TRIGGER {t}"))
        .collect();
    statements.extend([
        format!("DELETE FROM audit_log WHERE seq > {keep}"),
        "DELETE FROM audit_tree".to_string(),
        "DELETE FROM audit_checkpoints".to_string(),
        format!("UPDATE audit_head SET seq = {keep}, hash = '{hash}'"),
    ]);
    for s in statements {
        sqlx::query(sqlx::AssertSqlSafe(s))
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

pub async fn kept_checkpoint_catches_a_rollback_and_tells_a_documented_restore(q: &Qaward) {
    let (ok, printed) = run(&["audit", "checkpoint", "--target", "reviewers"], q);
    assert!(
        ok && printed.starts_with("qaward audit checkpoint v1\norigin qaward/reviewers\nsize 10\n"),
        "{printed}"
    );
    let kept = q.data_dir.path().join("kept-checkpoint.txt");
    std::fs::write(&kept, &printed).unwrap();
    let public = q.data_dir.path().join("keys/audit-key.pub");

    // The independent verifier checks the signature from the public key alone.
    let check = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/audit_check.py");
    match std::process::Command::new("python3")
        .arg(&check)
        .arg("checkpoint")
        .arg(&kept)
        .arg(&public)
        .output()
    {
        Ok(out) if String::from_utf8_lossy(&out.stderr).contains("No module named") => {
            eprintln!("SKIPPED docs/audit_check.py: python3 has no `cryptography`")
        }
        Ok(out) => assert!(
            out.status.success()
                && String::from_utf8_lossy(&out.stdout)
                    .starts_with("SIGNED: qaward/reviewers of 10 records"),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => eprintln!("SKIPPED docs/audit_check.py: python3 is not installed"),
    }

    // Over HTTP/JSON through the gateway, as the county platform calls it: anyone reads the
    // checkpoint; the office fetches its programme's records with their proofs, and the
    // independent verifier checks each against the signed checkpoint.
    let public_token = q.token("public", "citizen-1");
    let (status, body) = http(
        q,
        "GET",
        "/v1/audit/reviewers/checkpoint",
        Some(&public_token),
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .starts_with("qaward audit checkpoint v1\norigin qaward/reviewers\n"),
        "{body}"
    );
    let office = q.token_for("office", "office-1", &["--programme", "yunyang"]);
    let (status, body) = http(
        q,
        "GET",
        "/v1/audit/reviewers/records?resource=programmes/yunyang",
        Some(&office),
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["records"].as_array().is_some_and(|r| r.len() >= 5),
        "{body}"
    );
    let answer = q.data_dir.path().join("proofs.json");
    std::fs::write(&answer, body.to_string()).unwrap();
    let python = |file: &std::path::Path| {
        std::process::Command::new("python3")
            .arg(&check)
            .arg("records")
            .arg(file)
            .arg(&public)
            .output()
    };
    if let Ok(out) = python(&answer)
        && !String::from_utf8_lossy(&out.stderr).contains("No module named")
    {
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).starts_with("PROVED"),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // A record whose reason was changed on its way is caught.
        let mut forged = body.clone();
        forged["records"][1]["reason"] = serde_json::json!("R-99");
        std::fs::write(&answer, forged.to_string()).unwrap();
        let out = python(&answer).unwrap();
        assert!(
            !out.status.success() && String::from_utf8_lossy(&out.stdout).starts_with("MISMATCH")
        );
    }
    // Another programme's office gets nothing; the public cannot ask for records.
    let stranger = q.token_for("office", "office-9", &["--programme", "wanzhou"]);
    let (status, body) = http(
        q,
        "GET",
        "/v1/audit/reviewers/records?resource=programmes/yunyang",
        Some(&stranger),
        "",
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = http(
        q,
        "GET",
        "/v1/audit/reviewers/records?seq=1",
        Some(&public_token),
        "",
    )
    .await;
    assert_eq!(status, 403);

    let kept_arg = kept.to_str().unwrap();
    let (ok, said) = run(
        &[
            "audit",
            "verify",
            "--target",
            "reviewers",
            "--checkpoint",
            kept_arg,
        ],
        q,
    );
    assert!(
        ok && said.contains("the kept checkpoint of 10 records is a prefix of this log"),
        "{said}"
    );

    // The database owner rolls the log back to 7 records: the chain alone still looks intact,
    // the kept checkpoint does not let it pass.
    roll_back(q, 7).await;
    let (ok, said) = run(
        &[
            "audit",
            "verify",
            "--target",
            "reviewers",
            "--checkpoint",
            kept_arg,
        ],
        q,
    );
    assert!(
        !ok && said.contains("audit trail intact, 7 rows")
            && said.contains("rolled back: the kept checkpoint covers 10 records, the log has 7"),
        "{said}"
    );

    // Recorded as a restore, it is reported as one, and the log verifies.
    let (ok, said) = run(&["audit", "restored", "--target", "reviewers"], q);
    assert!(
        ok && said.contains("restore recorded, back to 7 records"),
        "{said}"
    );
    let (ok, said) = run(
        &[
            "audit",
            "verify",
            "--target",
            "reviewers",
            "--checkpoint",
            kept_arg,
        ],
        q,
    );
    assert!(
        ok && said.contains("documented restore at row 8: restored to 7 records"),
        "{said}"
    );

    // A checkpoint signed by another key is not the deployment's.
    let forged = printed.replacen("size 10", "size 11", 1);
    std::fs::write(&kept, forged).unwrap();
    let (ok, said) = run(
        &[
            "audit",
            "verify",
            "--target",
            "reviewers",
            "--checkpoint",
            kept_arg,
        ],
        q,
    );
    assert!(
        !ok && said.contains("the kept checkpoint is not signed by this key"),
        "{said}"
    );
}
