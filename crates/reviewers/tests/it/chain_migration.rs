//! Draws stored before chains existed (CHANGELOG.md, `DRAW_STATE_SUPERSEDED`): the migration
//! groups a draw and its redraws into one chain, and where two of a chain were executed — the
//! flaw it closes — keeps the later one, on both backends.

use qaward_kit::{db::Backend, testing};
use sqlx::Row;

const SQLITE: &str = include_str!("../../migrations/sqlite/0104_draw_chains.sql");
const POSTGRES: &str = include_str!("../../migrations/postgres/0104_draw_chains.sql");

#[tokio::test]
async fn draws_written_before_chains_are_chained_and_keep_one_executed_draw() {
    for t in testing::backends("reviewers", &qaward_reviewers::MIGRATIONS).await {
        let pool = t.db.pool();
        // Back to the form before the migration.
        for sql in [
            "DROP INDEX draws_one_live_per_chain",
            "ALTER TABLE draws DROP COLUMN chain",
            "INSERT INTO programmes (id, display_name, policy_version, created_micros) VALUES ('p', 'P', 1, 0)",
        ] {
            sqlx::query(sql).execute(pool).await.unwrap();
        }
        // a ← b ← c (c redraws b, which redraws a), a and b both executed; d alone.
        for (id, replaces, state, executed) in [
            ("a", "", "EXECUTED", Some(10)),
            ("b", "programmes/p/draws/a", "EXECUTED", Some(20)),
            ("c", "programmes/p/draws/b", "FAILED", Some(30)),
            ("d", "", "EXECUTED", Some(40)),
        ] {
            sqlx::query(
                "INSERT INTO draws (id, programme_id, state, prepared, inputs_hash, created_micros, executed_micros)
                 VALUES ($1, 'p', $2, $3, 'h', 0, $4)",
            )
            .bind(id)
            .bind(state)
            .bind(serde_json::json!({ "replaces_draw": replaces }).to_string())
            .bind(executed.map(|e: i64| e))
            .execute(pool)
            .await
            .unwrap();
        }
        let sql = match t.db.backend() {
            Backend::Sqlite => SQLITE,
            Backend::Postgres => POSTGRES,
        };
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(pool)
            .await
            .unwrap();
        let rows: Vec<(String, String, String)> =
            sqlx::query("SELECT id, chain, state FROM draws ORDER BY id")
                .fetch_all(pool)
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect();
        let expect = |id: &str, chain: &str, state: &str| {
            (id.to_string(), chain.to_string(), state.to_string())
        };
        assert_eq!(
            rows,
            [
                expect("a", "a", "SUPERSEDED"),
                expect("b", "a", "EXECUTED"),
                expect("c", "a", "FAILED"),
                expect("d", "d", "EXECUTED"),
            ],
            "{}",
            t.label
        );
        // And the database now refuses a second executed draw in a chain.
        let second = sqlx::query("UPDATE draws SET state = 'EXECUTED' WHERE id = 'a'")
            .execute(pool)
            .await;
        assert!(second.is_err(), "{}", t.label);
    }
}
