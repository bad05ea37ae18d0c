//! Migrations apply on both backends, twice without harm, and refuse a service migration
//! numbered in the kit's range.

use qaward_kit::{db::Database, testing};
use sqlx::Row;

async fn tables(db: &Database) -> Vec<String> {
    let sql = match db.backend() {
        qaward_kit::db::Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        }
        qaward_kit::db::Backend::Postgres => {
            "SELECT CAST(table_name AS TEXT) AS name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1"
        }
    };
    sqlx::query(sql)
        .fetch_all(db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>("name"))
        .collect()
}

#[tokio::test]
async fn kit_tables_exist_on_every_backend_and_migrating_again_is_a_no_op() {
    let migrations = testing::no_migrations();
    for db in testing::backends("kit", &migrations).await {
        let t = tables(&db).await;
        for expected in ["_sqlx_migrations", "audit_head", "audit_log", "outbox"] {
            assert!(t.contains(&expected.to_string()), "{}: {t:?}", db.label);
        }
        db.migrate("kit", &migrations).await.expect("second run");
        assert_eq!(tables(&db).await, t, "{}", db.label);
    }
}

#[tokio::test]
async fn two_services_on_one_postgres_database_share_no_table() {
    let Some(a) = testing::postgres("alpha", &testing::no_migrations()).await else {
        return;
    };
    let Some(b) = testing::postgres("beta", &testing::no_migrations()).await else {
        return;
    };
    let at = time::OffsetDateTime::now_utc();
    let mut tx = a.begin().await.unwrap();
    qaward_kit::audit::append(
        &mut tx,
        at,
        &qaward_kit::audit::AuditRecord {
            actor: "x".into(),
            role: "office".into(),
            action: "test".into(),
            resource: "r".into(),
            reason: String::new(),
            detail: serde_json::Value::Null,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    qaward_kit::audit::sequence_all(&a).await.unwrap();
    let count = |db: &Database| {
        let pool = db.pool().clone();
        async move {
            sqlx::query("SELECT COUNT(*) AS n FROM audit_log")
                .fetch_one(&pool)
                .await
                .unwrap()
                .get::<i64, _>("n")
        }
    };
    assert_eq!(count(&a).await, 1);
    assert_eq!(count(&b).await, 0);
}

#[tokio::test]
async fn a_bad_postgres_url_is_a_one_line_error() {
    let err = Database::connect_postgres("postgres://nobody@127.0.0.1:1/none", "svc", 1)
        .await
        .unwrap_err()
        .to_string();
    assert!(!err.contains('\n'), "{err}");
    assert!(err.contains("cannot connect"), "{err}");
}

static WIDGETS_SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./tests/widgets/sqlite");
static WIDGETS_POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./tests/widgets/postgres");
static WIDGETS: qaward_kit::db::Migrations = qaward_kit::db::Migrations {
    sqlite: &WIDGETS_SQLITE,
    postgres: &WIDGETS_POSTGRES,
};

#[tokio::test]
async fn a_service_migrations_run_after_the_kit_and_its_database_is_its_own() {
    for db in testing::backends("widgets", &WIDGETS).await {
        let t = tables(&db).await;
        assert!(t.contains(&"widgets".to_string()), "{}: {t:?}", db.label);
        assert!(t.contains(&"audit_log".to_string()), "{}: {t:?}", db.label);
        // Another service pointed at this database is refused, naming the owner.
        let err = db
            .migrate("scoring", &testing::no_migrations())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("widgets") && err.contains("scoring"), "{err}");
    }
}
