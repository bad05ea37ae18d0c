//! Issue 22, item 3: the trail as a Merkle tree log with signed checkpoints. Every record
//! proves its inclusion, checkpoints prove their consistency, and an auditor holding one
//! checkpoint catches an edit, a deletion, a reordering, a consistent rewrite, a truncation and
//! a rollback — and tells a documented restore from an undocumented one.

use qaward_kit::{
    audit::{self, AuditKey, Finding, log},
    db::{Backend, Database},
    merkle,
};

use crate::audit::{record, trail_of};

fn key() -> AuditKey {
    AuditKey::from_seed([42; 32])
}

const ORIGIN: &str = "qaward/test";

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

async fn append(db: &Database, from: usize, to: usize) {
    for i in from..=to {
        let mut tx = db.begin().await.unwrap();
        audit::append(&mut tx, now(), &record(i)).await.unwrap();
        tx.commit().await.unwrap();
    }
    audit::sequence_all(db).await.unwrap();
}

/// Someone with the database owner's power: every guard trigger of the log switched off.
async fn as_owner(db: &Database, statements: &[&str]) {
    let mut conn = db.pool().acquire().await.unwrap();
    match db.backend() {
        Backend::Sqlite => {
            let names: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name LIKE 'audit_%'",
            )
            .fetch_all(&mut *conn)
            .await
            .unwrap();
            for t in names {
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP TRIGGER {t}")))
                    .execute(&mut *conn)
                    .await
                    .unwrap();
            }
        }
        Backend::Postgres => {
            for t in ["audit_log", "audit_head", "audit_tree", "audit_checkpoints"] {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "ALTER TABLE {t} DISABLE TRIGGER USER"
                )))
                .execute(&mut *conn)
                .await
                .unwrap();
            }
        }
    }
    for s in statements {
        sqlx::query(sqlx::AssertSqlSafe(s.to_string()))
            .execute(&mut *conn)
            .await
            .unwrap();
    }
}

async fn check(db: &Database, kept: Option<&audit::Checkpoint>) -> audit::Report {
    audit::check_log(db, &key().public(), kept).await.unwrap()
}

#[tokio::test]
async fn every_record_proves_its_inclusion_and_every_checkpoint_its_consistency() {
    for db in trail_of(5).await {
        let mut kept = vec![
            log::take_checkpoint(&db, &key(), ORIGIN, "schedule", now())
                .await
                .unwrap(),
        ];
        // Grown in batches of other sizes, so the stored tree is extended across batches.
        for (from, to) in [(6, 6), (7, 19), (20, 37)] {
            append(&db, from, to).await;
            kept.push(
                log::take_checkpoint(&db, &key(), ORIGIN, "schedule", now())
                    .await
                    .unwrap(),
            );
        }
        let sizes: Vec<u64> = kept.iter().map(|c| c.size).collect();
        assert_eq!(sizes, [5, 6, 19, 37], "{}", db.label);
        let hashes: Vec<String> = sqlx::query_scalar("SELECT hash FROM audit_log ORDER BY seq")
            .fetch_all(db.pool())
            .await
            .unwrap();
        let leaves: Vec<merkle::Hash> = hashes
            .iter()
            .enumerate()
            .map(|(i, h)| log::leaf(i as i64 + 1, h))
            .collect();
        let mut conn = db.pool().acquire().await.unwrap();
        for c in &kept {
            c.check(&key().public()).unwrap();
            assert_eq!(
                c.root,
                merkle::root(&leaves[..c.size as usize]),
                "{}",
                db.label
            );
            for i in 0..c.size {
                let proof = log::inclusion(&mut conn, i, c.size).await.unwrap().unwrap();
                assert!(
                    merkle::verify_inclusion(&leaves[i as usize], i, c.size, &proof, &c.root),
                    "{}: record {} in checkpoint {}",
                    db.label,
                    i + 1,
                    c.size
                );
                assert!(
                    !merkle::verify_inclusion(
                        &leaves[(i as usize + 1) % 37],
                        i,
                        c.size,
                        &proof,
                        &c.root
                    ),
                    "{}: another record under the same proof",
                    db.label
                );
            }
        }
        for a in &kept {
            for b in &kept {
                if a.size > b.size {
                    continue;
                }
                let proof = log::consistency(&mut conn, a.size, b.size)
                    .await
                    .unwrap()
                    .unwrap();
                assert!(
                    merkle::verify_consistency(a.size, b.size, &a.root, &b.root, &proof),
                    "{}: {} → {}",
                    db.label,
                    a.size,
                    b.size
                );
            }
        }
        let report = check(&db, kept.first()).await;
        assert_eq!(report.findings, [], "{}", db.label);
        assert_eq!((report.rows, report.checkpoints), (37, 4), "{}", db.label);
    }
}

#[tokio::test]
async fn the_tree_and_the_checkpoints_only_grow() {
    for db in trail_of(3).await {
        log::take_checkpoint(&db, &key(), ORIGIN, "schedule", now())
            .await
            .unwrap();
        let mut refused = vec![
            "UPDATE audit_tree SET hash = 'x'",
            "DELETE FROM audit_tree",
            "UPDATE audit_checkpoints SET size = 1",
            "DELETE FROM audit_checkpoints",
        ];
        if db.backend() == Backend::Postgres {
            refused.extend(["TRUNCATE audit_tree", "TRUNCATE audit_checkpoints"]);
        }
        for sql in refused {
            let r = sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(db.pool())
                .await;
            assert!(r.is_err(), "{}: {sql} was allowed", db.label);
        }
    }
}

#[tokio::test]
async fn a_trail_chained_before_the_log_becomes_its_first_leaves_and_keeps_verifying() {
    for db in trail_of(12).await {
        let before = log::take_checkpoint(&db, &key(), ORIGIN, "schedule", now())
            .await
            .unwrap();
        // A trail from before the log: rows and head, no tree.
        as_owner(&db, &["DELETE FROM audit_tree"]).await;
        append(&db, 13, 14).await;
        let mut conn = db.pool().acquire().await.unwrap();
        assert_eq!(log::size(&mut conn).await.unwrap(), 14, "{}", db.label);
        assert_eq!(
            log::root(&mut conn, 12).await.unwrap(),
            before.root,
            "{}",
            db.label
        );
        assert!(matches!(
            audit::verify(&db).await.unwrap(),
            audit::Verdict::Intact { rows: 14, .. }
        ));
    }
}

#[tokio::test]
async fn a_broken_chain_is_not_taken_into_the_log() {
    for db in trail_of(6).await {
        as_owner(
            &db,
            &[
                "DELETE FROM audit_tree",
                "UPDATE audit_log SET reason = 'R-99' WHERE seq = 4",
            ],
        )
        .await;
        let mut tx = db.begin().await.unwrap();
        audit::append(&mut tx, now(), &record(7)).await.unwrap();
        tx.commit().await.unwrap();
        let err = audit::sequence_all(&db).await.unwrap_err();
        assert!(
            err.to_string().contains("broken at row 4"),
            "{}: {err}",
            db.label
        );
        let mut conn = db.pool().acquire().await.unwrap();
        assert_eq!(
            log::size(&mut conn).await.unwrap(),
            0,
            "{}: no proof for a broken chain",
            db.label
        );
    }
}

/// Each way to change history after an auditor kept a checkpoint of 10 records, and what the
/// check must say.
#[tokio::test]
async fn a_kept_checkpoint_catches_every_change_to_what_it_covers() {
    type Case = (&'static str, &'static [&'static str], fn(&Finding) -> bool);
    let cases: [Case; 4] = [
        (
            "edit",
            &["UPDATE audit_log SET reason = 'R-99' WHERE seq = 4"],
            |f| {
                matches!(
                    f,
                    Finding::Chain {
                        seq: 4,
                        problem: audit::Problem::Modified
                    }
                )
            },
        ),
        ("delete", &["DELETE FROM audit_log WHERE seq = 5"], |f| {
            matches!(
                f,
                Finding::Chain {
                    seq: 5,
                    problem: audit::Problem::Missing
                }
            )
        }),
        (
            "reorder",
            &[
                "UPDATE audit_log SET seq = 100 WHERE seq = 3",
                "UPDATE audit_log SET seq = 3 WHERE seq = 6",
                "UPDATE audit_log SET seq = 6 WHERE seq = 100",
            ],
            |f| {
                matches!(
                    f,
                    Finding::Chain {
                        seq: 3,
                        problem: audit::Problem::OutOfOrder
                    }
                )
            },
        ),
        (
            "truncate",
            &[
                "DELETE FROM audit_log WHERE seq > 7",
                "DELETE FROM audit_tree WHERE idx >= 0",
            ],
            |f| matches!(f, Finding::RolledBack { kept: 10, now: 7 }),
        ),
    ];
    for (what, statements, expected) in cases {
        for db in trail_of(10).await {
            let kept = log::take_checkpoint(&db, &key(), ORIGIN, "schedule", now())
                .await
                .unwrap();
            assert!(
                check(&db, Some(&kept)).await.sound(),
                "{}: before {what}",
                db.label
            );
            as_owner(&db, statements).await;
            let report = check(&db, Some(&kept)).await;
            assert!(
                report.findings.iter().any(expected),
                "{} {what}: {:?}",
                db.label,
                report.findings
            );
            assert!(!report.sound(), "{} {what}", db.label);
        }
    }
}

/// Cuts the log back to its first `keep` records, as a restore from an older backup (or an
/// owner rewriting history) leaves it: rows, tree, checkpoints and head all consistent.
async fn roll_back_to(db: &Database, keep: i64) {
    let hash: String = sqlx::query_scalar("SELECT hash FROM audit_log WHERE seq = $1")
        .bind(keep)
        .fetch_one(db.pool())
        .await
        .unwrap();
    let statements = [
        format!("DELETE FROM audit_log WHERE seq > {keep}"),
        "DELETE FROM audit_tree".to_string(),
        "DELETE FROM audit_checkpoints".to_string(),
        format!("UPDATE audit_head SET seq = {keep}, hash = '{hash}'"),
    ];
    let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
    as_owner(db, &statements).await;
}

#[tokio::test]
async fn a_consistent_rewrite_that_the_chain_cannot_see_is_caught_by_a_kept_checkpoint() {
    for db in trail_of(10).await {
        let kept = log::take_checkpoint(&db, &key(), ORIGIN, "schedule", now())
            .await
            .unwrap();
        roll_back_to(&db, 4).await;
        append(&db, 105, 110).await;
        // The chain alone says all is well: this is what a hash chain could not catch.
        assert!(matches!(
            audit::verify(&db).await.unwrap(),
            audit::Verdict::Intact { rows: 10, .. }
        ));
        let report = check(&db, Some(&kept)).await;
        assert_eq!(
            report.findings,
            [Finding::Rewritten { size: 10 }],
            "{}",
            db.label
        );
    }
}

#[tokio::test]
async fn a_documented_restore_is_told_apart_from_an_undocumented_rollback() {
    for db in trail_of(10).await {
        let kept = log::take_checkpoint(&db, &key(), ORIGIN, "schedule", now())
            .await
            .unwrap();
        roll_back_to(&db, 6).await;
        let undocumented = check(&db, Some(&kept)).await;
        assert_eq!(
            undocumented.findings,
            [Finding::RolledBack { kept: 10, now: 6 }],
            "{}",
            db.label
        );

        audit::record_restore(&db, &key(), ORIGIN, "local#system:test", now())
            .await
            .unwrap();
        append(&db, 20, 25).await;
        let documented = check(&db, Some(&kept)).await;
        assert_eq!(
            documented.findings,
            [Finding::Restored {
                seq: 7,
                to: 6,
                kept: 10
            }],
            "{}",
            db.label
        );
        assert!(documented.sound(), "{}", db.label);

        // A restore record signed by another key is no documentation.
        let other = AuditKey::from_seed([1; 32]);
        audit::record_restore(&db, &other, ORIGIN, "local#system:test", now())
            .await
            .unwrap();
        let report = check(&db, None).await;
        assert!(
            report
                .findings
                .iter()
                .any(|f| matches!(f, Finding::BadRestoreRecord { .. })),
            "{}: {:?}",
            db.label,
            report.findings
        );
    }
}

#[tokio::test]
async fn a_forged_or_forked_checkpoint_and_a_rewritten_tree_are_found() {
    for db in trail_of(8).await {
        let good = log::take_checkpoint(&db, &key(), ORIGIN, "schedule", now())
            .await
            .unwrap();
        // Signed with the right key but over another root: a fork.
        let fork = audit::Checkpoint::sign(&key(), ORIGIN, 8, [7; 32], good.at_micros);
        // The right root, the wrong key.
        let forged = audit::Checkpoint::sign(
            &AuditKey::from_seed([3; 32]),
            ORIGIN,
            8,
            good.root,
            good.at_micros,
        );
        for c in [&fork, &forged] {
            sqlx::query("INSERT INTO audit_checkpoints (size, root, at_micros, reason, note) VALUES (8, $1, 0, 'schedule', $2)")
                .bind(hex::encode(c.root))
                .bind(c.to_text())
                .execute(db.pool())
                .await
                .unwrap();
        }
        let report = check(&db, Some(&forged)).await;
        let bad: Vec<_> = report
            .findings
            .iter()
            .filter(|f| matches!(f, Finding::BadCheckpoint { size: 8, .. }))
            .collect();
        assert_eq!(bad.len(), 2, "{}: {:?}", db.label, report.findings);
        assert!(
            report.findings.contains(&Finding::KeptNotSigned),
            "{}",
            db.label
        );

        as_owner(&db, &["UPDATE audit_tree SET hash = '0000000000000000000000000000000000000000000000000000000000000000' WHERE level = 0 AND idx = 2"]).await;
        let report = check(&db, Some(&good)).await;
        assert!(
            report
                .findings
                .contains(&Finding::TreeMismatch { level: 0, index: 2 }),
            "{}: {:?}",
            db.label,
            report.findings
        );
    }
}

/// What the owner of a schema can do to its log, and a service running as its own role
/// (`database_owner_url` set: the owner migrates and grants) cannot (PostgreSQL only).
#[tokio::test]
async fn a_service_running_as_its_own_role_may_append_to_its_log_and_nothing_more() {
    use qaward_kit::config::{Config, Secret};
    use sqlx::Executor;
    let Some(owner_url) = qaward_kit::testing::fresh_postgres_database().await else {
        return;
    };
    let role = format!("qaward_rt_{}", &hex::encode(rand_bytes())[..12]);
    let admin = sqlx::AnyPool::connect(&owner_url).await.unwrap();
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE ROLE {role} LOGIN")))
        .await
        .unwrap();
    let (scheme, rest) = owner_url.split_once("://").unwrap();
    let service_url = format!("{scheme}://{role}@{}", rest.split_once('@').unwrap().1);
    let config = Config {
        database_url: Secret::new(service_url),
        database_owner_url: Secret::new(owner_url.clone()),
        ..Config::default()
    };
    let db = Database::open(&config, "audited", &qaward_kit::testing::no_migrations())
        .await
        .unwrap();
    // The service's own work goes on: changes append, the sequencer chains and extends the
    // tree, checkpoints are signed and stored, the trail verifies.
    append(&db, 1, 6).await;
    let c = log::take_checkpoint(&db, &key(), ORIGIN, "schedule", now())
        .await
        .unwrap();
    assert_eq!(c.size, 6);
    assert!(matches!(
        audit::verify(&db).await.unwrap(),
        audit::Verdict::Intact { rows: 6, .. }
    ));
    assert!(check(&db, Some(&c)).await.sound());
    // Everything that would rewrite, empty or unguard the log is refused to its role.
    for sql in [
        "UPDATE audit_log SET reason = 'R-99' WHERE seq = 2",
        "DELETE FROM audit_log WHERE seq = 6",
        "TRUNCATE audit_log",
        "ALTER TABLE audit_log DISABLE TRIGGER USER",
        "DROP TRIGGER audit_log_no_change ON audit_log",
        "UPDATE audit_tree SET hash = 'x'",
        "DELETE FROM audit_checkpoints",
        "TRUNCATE audit_checkpoints",
        "DELETE FROM audit_head",
        "UPDATE audit_pending SET reason = 'x'",
        "DELETE FROM _sqlx_migrations",
    ] {
        let r = sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(db.pool())
            .await;
        assert!(r.is_err(), "the service's role may: {sql}");
    }
    // The owner could (which is why the service must not be it).
    let owner = Database::connect_postgres(&owner_url, "audited", 1)
        .await
        .unwrap();
    sqlx::query("ALTER TABLE audit_log DISABLE TRIGGER USER")
        .execute(owner.pool())
        .await
        .unwrap();
    sqlx::query("ALTER TABLE audit_log ENABLE TRIGGER USER")
        .execute(owner.pool())
        .await
        .unwrap();
    drop(db);
    owner.pool().close().await;
    let _ = admin
        .execute(sqlx::AssertSqlSafe(format!("DROP OWNED BY {role}")))
        .await;
    admin.close().await;
}

fn rand_bytes() -> [u8; 8] {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    b
}
