//! the audit trail is append-only and its verifier finds the first row that was
//! modified, removed or moved.

use qaward_kit::{
    audit::{self, AuditRecord, Problem, Verdict},
    db::{Backend, Database},
    testing::{self, TestDb},
};

pub(crate) fn record(i: usize) -> AuditRecord {
    AuditRecord {
        actor: format!("office-{i}"),
        role: "office".into(),
        action: "application.transition".into(),
        resource: format!("programmes/p/cycles/2026/applications/{i}"),
        reason: "R-13".into(),
        detail: serde_json::json!({ "to": "MATERIALS_PASSED", "score": "512.5" }),
    }
}

pub(crate) async fn trail_of(n: usize) -> Vec<TestDb> {
    let mut all = testing::backends("audit", &testing::no_migrations()).await;
    for db in &mut all {
        let at = time::OffsetDateTime::now_utc();
        for i in 1..=n {
            let mut tx = db.begin().await.unwrap();
            audit::append(&mut tx, at, &record(i)).await.unwrap();
            tx.commit().await.unwrap();
        }
        // Chained now, as the service's sequencer does right after each commit.
        audit::sequence_all(db).await.unwrap();
        let last: i64 = sqlx::query_scalar("SELECT MAX(seq) FROM audit_log")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(last, n as i64);
    }
    all
}

/// Plays the part of someone with direct database access: the triggers that make the table
/// append-only are switched off first.
async fn tamper(db: &Database, statements: &[&str]) {
    let mut conn = db.pool().acquire().await.unwrap();
    match db.backend() {
        Backend::Sqlite => {
            for t in ["audit_log_no_update", "audit_log_no_delete"] {
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP TRIGGER IF EXISTS {t}")))
                    .execute(&mut *conn)
                    .await
                    .unwrap();
            }
        }
        Backend::Postgres => {
            sqlx::query("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change")
                .execute(&mut *conn)
                .await
                .unwrap();
        }
    }
    for s in statements {
        sqlx::query(sqlx::AssertSqlSafe(s.to_string()))
            .execute(&mut *conn)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn an_untouched_trail_verifies() {
    for db in trail_of(5).await {
        match audit::verify(&db).await.unwrap() {
            Verdict::Intact { rows, .. } => assert_eq!(rows, 5, "{}", db.label),
            other => panic!("{}: {other:?}", db.label),
        }
    }
}

#[tokio::test]
async fn the_database_refuses_updates_and_deletes() {
    for db in trail_of(2).await {
        let update = sqlx::query("UPDATE audit_log SET reason = 'nothing' WHERE seq = 1")
            .execute(db.pool())
            .await;
        assert!(update.is_err(), "{}: update went through", db.label);
        let delete = sqlx::query("DELETE FROM audit_log WHERE seq = 2")
            .execute(db.pool())
            .await;
        assert!(delete.is_err(), "{}: delete went through", db.label);
        assert!(matches!(
            audit::verify(&db).await.unwrap(),
            Verdict::Intact { .. }
        ));
    }
}

#[tokio::test]
async fn a_modified_row_is_found() {
    for db in trail_of(5).await {
        tamper(
            &db,
            &["UPDATE audit_log SET detail = '{\"to\":\"MATERIALS_FAILED\"}' WHERE seq = 3"],
        )
        .await;
        assert_eq!(
            audit::verify(&db).await.unwrap(),
            Verdict::Broken {
                seq: 3,
                problem: Problem::Modified
            },
            "{}",
            db.label
        );
    }
}

#[tokio::test]
async fn a_deleted_row_is_found() {
    for db in trail_of(5).await {
        tamper(&db, &["DELETE FROM audit_log WHERE seq = 2"]).await;
        assert_eq!(
            audit::verify(&db).await.unwrap(),
            Verdict::Broken {
                seq: 2,
                problem: Problem::Missing
            },
            "{}",
            db.label
        );
    }
}

#[tokio::test]
async fn a_deleted_last_row_is_found() {
    for db in trail_of(5).await {
        tamper(&db, &["DELETE FROM audit_log WHERE seq = 5"]).await;
        assert_eq!(
            audit::verify(&db).await.unwrap(),
            Verdict::Broken {
                seq: 4,
                problem: Problem::Truncated
            },
            "{}",
            db.label
        );
    }
}

#[tokio::test]
async fn reordered_rows_are_found() {
    for db in trail_of(5).await {
        // Swap rows 2 and 4, each keeping its own content and hashes.
        tamper(
            &db,
            &[
                "UPDATE audit_log SET seq = -2 WHERE seq = 2",
                "UPDATE audit_log SET seq = 2 WHERE seq = 4",
                "UPDATE audit_log SET seq = 4 WHERE seq = -2",
            ],
        )
        .await;
        assert_eq!(
            audit::verify(&db).await.unwrap(),
            Verdict::Broken {
                seq: 2,
                problem: Problem::OutOfOrder
            },
            "{}",
            db.label
        );
    }
}

#[tokio::test]
async fn concurrent_appenders_never_fork_the_chain() {
    for db in testing::backends("audit", &testing::no_migrations()).await {
        let mut tasks = Vec::new();
        for i in 0..16 {
            let db = db.db.clone();
            tasks.push(tokio::spawn(async move {
                let mut tx = db.begin().await.unwrap();
                audit::append(&mut tx, time::OffsetDateTime::now_utc(), &record(i))
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert!(
            matches!(
                audit::verify(&db).await.unwrap(),
                Verdict::Intact { rows: 16, .. }
            ),
            "{}",
            db.label
        );
    }
}

/// Issue 22, item 4: a record commits with its change as a pending row and is chained after
/// the commit. Until then it cannot be changed or removed — only the transaction that chains
/// it deletes it — and a process that dies between the commit and the chaining loses nothing:
/// whoever sequences next (the service restarted, or the verifier) chains it.
#[tokio::test]
async fn a_committed_record_reaches_the_trail_even_if_its_process_dies_before_chaining_it() {
    for db in trail_of(2).await {
        // What a process left behind when it died after its commit, before its sequencer ran.
        for i in 3..=4 {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO audit_pending (at_micros, actor, role, action, resource, reason, detail)
                 VALUES (1, 'office-{i}', 'office', 'application.transition', 'r/{i}', 'R-13', '{{}}')"
            )))
            .execute(db.pool())
            .await
            .unwrap();
        }
        let mut refused = vec![
            "UPDATE audit_pending SET reason = 'nothing'",
            "DELETE FROM audit_pending",
        ];
        if db.backend() == Backend::Postgres {
            refused.push("TRUNCATE audit_pending");
        }
        for sql in refused {
            let r = sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(db.pool())
                .await;
            assert!(r.is_err(), "{}: {sql} was allowed", db.label);
        }
        assert_eq!(
            audit::verify(&db).await.unwrap(),
            Verdict::Intact {
                rows: 4,
                head: sqlx::query_scalar::<_, String>("SELECT hash FROM audit_log WHERE seq = 4")
                    .fetch_one(db.pool())
                    .await
                    .unwrap(),
            },
            "{}",
            db.label
        );
        let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_pending")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(
            pending, 0,
            "{}: chained and removed in one transaction",
            db.label
        );
        let actor: String = sqlx::query_scalar("SELECT actor FROM audit_log WHERE seq = 3")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(
            actor, "office-3",
            "{}: in the order they committed",
            db.label
        );
    }
}

#[tokio::test]
async fn a_rolled_back_change_leaves_no_audit_record() {
    for db in testing::backends("audit", &testing::no_migrations()).await {
        let mut tx = db.begin().await.unwrap();
        audit::append(&mut tx, time::OffsetDateTime::now_utc(), &record(1))
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(
            audit::verify(&db).await.unwrap(),
            Verdict::Intact {
                rows: 0,
                head: audit::GENESIS.to_string()
            },
            "{}",
            db.label
        );
    }
}

/// `qaward audit verify` may run while the service still writes: it reads the head and the
/// rows in one snapshot, so a row committed meanwhile is never taken for a truncated trail
/// (seen in CI: "audit trail broken at row 66: Truncated" on a live notifications service).
#[tokio::test]
async fn a_trail_verified_while_it_grows_is_intact_every_time() {
    for t in testing::backends("audit", &testing::no_migrations()).await {
        let writer = {
            let db = t.db.clone();
            tokio::spawn(async move {
                for i in 1..=300 {
                    let mut tx = db.begin().await.unwrap();
                    audit::append(&mut tx, time::OffsetDateTime::now_utc(), &record(i))
                        .await
                        .unwrap();
                    tx.commit().await.unwrap();
                }
            })
        };
        let mut checks = 0;
        while !writer.is_finished() {
            let verdict = audit::verify(&t.db).await.unwrap();
            assert!(
                matches!(verdict, Verdict::Intact { .. }),
                "{}: {verdict:?}",
                t.label
            );
            checks += 1;
        }
        writer.await.unwrap();
        assert!(checks > 0, "{}", t.label);
    }
}

/// Issue 22: on PostgreSQL `TRUNCATE audit_log` passed the row-level guard, and after resetting
/// `audit_head` the verifier reported an intact, empty trail. Both are refused now, on each
/// backend as it allows (SQLite has no TRUNCATE).
#[tokio::test]
async fn the_trail_cannot_be_emptied_nor_its_head_moved_back() {
    for db in trail_of(3).await {
        let mut refused = vec![
            "UPDATE audit_head SET seq = 0, hash = '0000000000000000000000000000000000000000000000000000000000000000'",
            "DELETE FROM audit_head",
        ];
        if db.backend() == Backend::Postgres {
            refused.extend([
                "TRUNCATE audit_log",
                "TRUNCATE audit_head",
                "TRUNCATE audit_log, audit_head",
            ]);
        }
        for sql in refused {
            let r = sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(db.pool())
                .await;
            assert!(r.is_err(), "{}: {sql} was allowed", db.label);
        }
        assert!(
            matches!(
                audit::verify(&db).await.unwrap(),
                Verdict::Intact { rows: 3, .. }
            ),
            "{}",
            db.label
        );
    }
}
