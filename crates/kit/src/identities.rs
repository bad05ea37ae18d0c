//! Identities name their issuer: idempotency keys, rate keys and audit actors are
//! `{issuer}#{subject}` ([`crate::auth::Caller::identity`]), since two identity providers may
//! both have a subject `office-1`. Before, they held the subject alone.
//!
//! [`qualify_stored`] brings a database written before up to date, once, when it is migrated:
//! stored idempotency keys are the own issuer's (the only issuer whose keys could sign for the
//! county then), so a client retrying a request it sent before the upgrade still gets its first
//! answer instead of a second change. The audit trail is append-only and hash-chained: its old
//! rows are not rewritten; one row appended at the upgrade (`audit.actors_qualified`) says from
//! which sequence number actors name their issuer and which issuer the earlier ones meant.

use sqlx::Row;

use crate::{
    Result,
    audit::{self, AuditRecord},
    db::Database,
};

/// The `service_meta` key that records the upgrade was made (its value: the issuer adopted).
const DONE: &str = "identities_qualified";

/// The audit action of the row that marks the upgrade.
pub const AUDIT_ACTION: &str = "audit.actors_qualified";

/// Qualifies what `db` stored with bare subjects as `issuer`'s, once; a second call, or a
/// database with nothing stored, changes nothing but the marker.
pub async fn qualify_stored(db: &Database, service: &str, issuer: &str) -> Result<bool> {
    let mut tx = db.begin().await?;
    let done = sqlx::query("SELECT value FROM service_meta WHERE key = $1")
        .bind(DONE)
        .fetch_optional(&mut *tx)
        .await?;
    if done.is_some() {
        return Ok(false);
    }
    let prefix = format!("{issuer}#");
    sqlx::query("UPDATE request_log SET subject = $1 || subject")
        .bind(&prefix)
        .execute(&mut *tx)
        .await?;
    // Committed records not yet chained are earlier rows too: they are chained before this one.
    let rows: i64 = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM audit_log) + (SELECT COUNT(*) FROM audit_pending) AS n",
    )
    .fetch_one(&mut *tx)
    .await?
    .try_get("n")?;
    if rows > 0 {
        let record = AuditRecord::by_service(issuer, service, AUDIT_ACTION, "")
            .because("identities name their issuer (issuer#subject) from the next row on")
            .with_detail(serde_json::json!({
                "earlier_actors_are_subjects_of": issuer,
                "earlier_rows": rows,
            }));
        audit::append(&mut tx, time::OffsetDateTime::now_utc(), &record).await?;
    }
    sqlx::query("INSERT INTO service_meta (key, value) VALUES ($1, $2)")
        .bind(DONE)
        .bind(issuer)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}
