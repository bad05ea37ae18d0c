//! Re-checks of feedback reports: the applicant's request and the office's answer.

use qaward_kit::{Error, Result, db::Conn};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RecheckRow {
    pub application_id: String,
    pub reason: String,
    pub requested_by: String,
    pub requested_micros: i64,
    pub window_end: String,
    /// PENDING, CONFIRMED or UPHELD.
    pub outcome: String,
    pub decision_reasons: String,
    pub decided_micros: Option<i64>,
}

pub async fn get_recheck(conn: &mut Conn, application: &str) -> Result<Option<RecheckRow>> {
    Ok(sqlx::query_as(
        "SELECT application_id, reason, requested_by, requested_micros, window_end, outcome,
         decision_reasons, decided_micros FROM rechecks WHERE application_id = $1",
    )
    .bind(application)
    .fetch_optional(&mut *conn)
    .await?)
}

pub async fn insert_recheck(conn: &mut Conn, r: &RecheckRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO rechecks (application_id, reason, requested_by, requested_micros, window_end, outcome)
         VALUES ($1, $2, $3, $4, $5, 'PENDING')",
    )
    .bind(&r.application_id)
    .bind(&r.reason)
    .bind(&r.requested_by)
    .bind(r.requested_micros)
    .bind(&r.window_end)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records the office's answer to a pending re-check; false when it was answered meanwhile.
pub async fn decide_recheck(conn: &mut Conn, r: &RecheckRow) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE rechecks SET outcome = $1, decision_reasons = $2, decided_micros = $3
         WHERE application_id = $4 AND outcome = 'PENDING'",
    )
    .bind(&r.outcome)
    .bind(&r.decision_reasons)
    .bind(r.decided_micros)
    .bind(&r.application_id)
    .execute(&mut *conn)
    .await
    .map_err(Error::from)?;
    Ok(done.rows_affected() == 1)
}
