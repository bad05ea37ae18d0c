//! the request log is purged past its days, on the record, in batches.

use qaward_kit::{
    retention::{REQUEST_LOG, purge},
    testing,
};
use sqlx::Row;

#[tokio::test]
async fn r54_the_request_log_is_purged_past_its_days_on_the_record_in_batches() {
    for db in testing::backends("retention", &testing::no_migrations()).await {
        let label = db.label;
        let db = db.db;
        for (i, at) in [10i64, 20, 30, 1_000].iter().enumerate() {
            sqlx::query(
                "INSERT INTO request_log (method, subject, request_id, request_hash, response, created_micros)
                 VALUES ('M', 's', $1, 'h', $2, $3)",
            )
            .bind(format!("r{i}"))
            .bind(vec![1u8])
            .bind(at)
            .execute(db.pool())
            .await
            .unwrap();
        }
        let now = time::OffsetDateTime::now_utc();
        let n = purge(&db, "kit", "qaward-local", now, &REQUEST_LOG, 100, 2)
            .await
            .unwrap();
        assert_eq!(n, 3, "{label}: the three older rows, in two batches");
        let left: i64 = sqlx::query("SELECT COUNT(*) AS n FROM request_log")
            .fetch_one(db.pool())
            .await
            .unwrap()
            .try_get("n")
            .unwrap();
        assert_eq!(left, 1, "{label}: the newer row stays");
        qaward_kit::audit::sequence_all(&db).await.unwrap();
        let purges: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'retention.purge'")
                .fetch_one(db.pool())
                .await
                .unwrap()
                .try_get("n")
                .unwrap();
        assert_eq!(purges, 2, "{label}: one record a batch");
        assert_eq!(
            purge(&db, "kit", "qaward-local", now, &REQUEST_LOG, 100, 2)
                .await
                .unwrap(),
            0,
            "{label}: a rerun finds nothing"
        );
    }
}
