//! Stored data follows the contracts when they change: the migration that renames cycles from
//! `cycles/{programme}-{year}` to `programmes/{programme}/cycles/{year}` (CHANGELOG.md), run on
//! rows written in the old form, on both backends.

use qaward_kit::{db::Backend, testing};
use sqlx::Row;

const SQLITE: &str = include_str!("../../migrations/sqlite/0103_cycle_names.sql");
const POSTGRES: &str = include_str!("../../migrations/postgres/0103_cycle_names.sql");

#[tokio::test]
async fn cycles_stored_under_their_old_names_take_the_applications_services_names() {
    for t in testing::backends("scoring", &qaward_scoring::MIGRATIONS).await {
        let pool = t.db.pool();
        for (id, cycle, application) in [
            (
                "a1",
                "cycles/san-xia-2026",
                "programmes/san-xia/cycles/2026/applications/91500235MA5U0XXXXX",
            ),
            (
                "a2",
                "programmes/yunyang/cycles/2027",
                "programmes/yunyang/cycles/2027/applications/91500235MA5U0YYYYY",
            ),
        ] {
            sqlx::query(
                "INSERT INTO assignments (id, cycle, application, stage, rubric_id, rubric_version, \
                 enterprise_code, recommending_unit, created_micros) \
                 VALUES ($1, $2, $3, 'MATERIALS', 'gbt', 1, 'x', 'u', 0)",
            )
            .bind(id)
            .bind(cycle)
            .bind(application)
            .execute(pool)
            .await
            .unwrap();
        }
        for cycle in ["cycles/san-xia-2026", "cycles/nobody-2020"] {
            sqlx::query(
                "INSERT INTO releases (cycle, stage, released_micros) VALUES ($1, 'MATERIALS', 0)",
            )
            .bind(cycle)
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
        let cycles: Vec<String> = sqlx::query("SELECT cycle FROM assignments ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(
            cycles,
            [
                "programmes/san-xia/cycles/2026",
                "programmes/yunyang/cycles/2027"
            ],
            "{}",
            t.label
        );
        let released: Vec<String> = sqlx::query("SELECT cycle FROM releases ORDER BY cycle")
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        // A release with no assignment names no application to take the name from: kept.
        assert_eq!(
            released,
            ["cycles/nobody-2020", "programmes/san-xia/cycles/2026"],
            "{}",
            t.label
        );
    }
}
