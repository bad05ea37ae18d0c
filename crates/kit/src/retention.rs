//! Kept no longer than needed (R-54, PIPL Art. 19): the request log — every mutating call's
//! stored answer, kept so a retry gets its first answer (AIP-155) — is purged once older than
//! `privacy.request_log_days`, in batches, each batch on the record (`retention.purge`) in the
//! transaction that deletes it; a crash between batches loses nothing and the next run goes on.

use std::time::Duration;

use sqlx::Row;

use crate::{
    Result,
    audit::{self, AuditRecord},
    db::Database,
};

/// Deletes the request-log rows written before `before` (Unix microseconds), `batch` at a
/// time, each batch with its audit record naming how many and up to when; how many in all.
pub async fn purge_request_log(
    db: &Database,
    service: &str,
    issuer: &str,
    now: time::OffsetDateTime,
    before: i64,
    batch: i64,
) -> Result<u64> {
    let mut purged = 0u64;
    loop {
        let mut tx = db.pool().begin().await?;
        let done = sqlx::query(
            "DELETE FROM request_log WHERE (method, subject, request_id) IN (
                SELECT method, subject, request_id FROM request_log
                WHERE created_micros < $1 ORDER BY created_micros LIMIT $2)",
        )
        .bind(before)
        .bind(batch)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done == 0 {
            return Ok(purged);
        }
        let left: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM request_log WHERE created_micros < $1")
                .bind(before)
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
        let record = AuditRecord {
            actor: crate::auth::identity(issuer, &format!("system:{service}")),
            role: crate::auth::Role::Service.as_str().to_string(),
            action: "retention.purge".to_string(),
            resource: "request_log".to_string(),
            reason: "R-54: kept no longer than privacy.request_log_days".to_string(),
            detail: serde_json::json!({
                "rows": done, "written_before_micros": before, "left": left,
            }),
        };
        audit::append(&mut tx, now, &record).await?;
        tx.commit().await?;
        purged += done;
    }
}

/// Purges the service's request log at start and then every hour.
pub fn spawn(db: Database, ctx: &crate::server::ServiceContext, service: &'static str) {
    let days = i64::from(ctx.config.privacy.request_log_days);
    let clock = ctx.clock.clone();
    let issuer = ctx.config.auth.issuer.clone();
    tokio::spawn(async move {
        loop {
            let now = clock.now();
            let before = crate::clock::unix_micros(now) - days * 86_400 * 1_000_000;
            match purge_request_log(&db, service, &issuer, now, before, 1_000).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, service, "request log purged (R-54)"),
                Err(e) => {
                    tracing::warn!(error = %e, service, "request log purge failed; retried in an hour")
                }
            }
            tokio::time::sleep(Duration::from_secs(3_600)).await;
        }
    });
}
