//! Kept no longer than needed (R-54, PIPL Art. 19): each kind of data a service keeps for a
//! while — the request log, message texts and addresses, delivery records, drafts never
//! submitted — has its days in the configuration (`privacy.*_days`) and is purged past them,
//! in batches, each batch on the record (`retention.purge`, naming the kind, how many rows and
//! the cut-off) in the transaction that purges it; a crash between batches loses nothing and
//! the next run goes on. A service names its kinds once ([`Kind`]); the audit trail itself is
//! never purged (R-50: it is the record, and 等保 2.0 asks for at least six months of it).

use std::time::Duration;

use sqlx::Row;

use crate::{
    Result,
    audit::{self, AuditRecord},
    db::Database,
};

/// One kind of data with a retention period: which rows have expired, and what purging one
/// does (delete it, or blank what it held while its record stays).
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    /// Its name in the audit record (`resource`).
    pub name: &'static str,
    /// The setting that gives its days, for the record's reason.
    pub setting: &'static str,
    /// The keys (text columns) of up to `$2` expired rows, written before `$1` (Unix
    /// microseconds), in a stable order.
    pub expired: &'static str,
    /// Run for each expired row, in order, with its keys as `$1…`.
    pub purge: &'static [&'static str],
}

/// The request log: each mutating call's stored answer, kept so a retry gets its first answer
/// (AIP-155); every service keeps one.
pub const REQUEST_LOG: Kind = Kind {
    name: "request_log",
    setting: "privacy.request_log_days",
    expired: "SELECT method, subject, request_id FROM request_log
              WHERE created_micros < $1 ORDER BY created_micros, method, subject, request_id LIMIT $2",
    purge: &["DELETE FROM request_log WHERE method = $1 AND subject = $2 AND request_id = $3"],
};

/// The request log with its days: the one kind every service keeps.
pub fn request_log(config: &crate::config::Config) -> (Kind, u32) {
    (REQUEST_LOG, config.privacy.request_log_days)
}

/// Purges the rows of `kind` written before `before` (Unix microseconds), `batch` at a time,
/// each batch with its audit record naming how many and up to when; how many in all.
pub async fn purge(
    db: &Database,
    service: &str,
    issuer: &str,
    now: time::OffsetDateTime,
    kind: &Kind,
    before: i64,
    batch: i64,
) -> Result<u64> {
    let mut purged = 0u64;
    loop {
        let mut tx = db.begin().await?;
        let rows = sqlx::query(kind.expired)
            .bind(before)
            .bind(batch)
            .fetch_all(&mut *tx)
            .await?;
        if rows.is_empty() {
            return Ok(purged);
        }
        for row in &rows {
            let keys: Vec<String> = (0..row.len())
                .map(|i| row.try_get::<String, _>(i))
                .collect::<std::result::Result<_, _>>()?;
            for statement in kind.purge {
                let mut q = sqlx::query(*statement);
                for k in &keys {
                    q = q.bind(k.clone());
                }
                q.execute(&mut *tx).await?;
            }
        }
        let done = rows.len() as u64;
        let record = AuditRecord::by_service(issuer, service, "retention.purge", kind.name)
            .because(format!("R-54: kept no longer than {}", kind.setting))
            .with_detail(serde_json::json!({ "rows": done, "written_before_micros": before }));
        audit::append(&mut tx, now, &record).await?;
        tx.commit().await?;
        purged += done;
    }
}

/// Purges each of the service's kinds past its days, at start and then every hour.
pub fn spawn(
    db: Database,
    ctx: &crate::server::ServiceContext,
    service: &'static str,
    kinds: Vec<(Kind, u32)>,
) {
    let clock = ctx.clock.clone();
    let issuer = ctx.config.auth.issuer.clone();
    tokio::spawn(async move {
        loop {
            let now = clock.now();
            for (kind, days) in &kinds {
                let before = crate::clock::unix_micros(now) - i64::from(*days) * 86_400 * 1_000_000;
                match purge(&db, service, &issuer, now, kind, before, 1_000).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(
                        rows = n,
                        service,
                        kind = kind.name,
                        "purged past its days (R-54)"
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, service, kind = kind.name, "purge failed; retried in an hour")
                    }
                }
            }
            tokio::time::sleep(Duration::from_secs(3_600)).await;
        }
    });
}
