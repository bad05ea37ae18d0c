//! Revocation cases (Art. 20; R-32): the office's verification, the committee's review, the
//! government's decision, each written as it happens.

use qaward_kit::{Error, Result, db::Conn};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RevocationRow {
    pub id: String,
    pub credit_code: String,
    pub programme_id: String,
    pub application_id: String,
    pub ground: String,
    pub reason: String,
    pub state: String,
    pub verified_micros: i64,
    pub committee_unit: String,
    pub committee_note: String,
    pub reviewed_micros: Option<i64>,
    pub approval_document: String,
    pub approval_date: String,
    pub publication: String,
    pub government_note: String,
    pub ban_until: String,
    pub decided_micros: Option<i64>,
}

const SELECT: &str = "SELECT id, credit_code, programme_id, application_id, ground, reason, state,
    verified_micros, committee_unit, committee_note, reviewed_micros, approval_document,
    approval_date, publication, government_note, ban_until, decided_micros FROM revocations";

pub async fn insert_revocation(conn: &mut Conn, r: &RevocationRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO revocations (id, credit_code, programme_id, application_id, ground, reason,
         state, verified_micros) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&r.id)
    .bind(&r.credit_code)
    .bind(&r.programme_id)
    .bind(&r.application_id)
    .bind(&r.ground)
    .bind(&r.reason)
    .bind(&r.state)
    .bind(r.verified_micros)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The case `id` of the enterprise `code`.
pub async fn get_revocation(conn: &mut Conn, code: &str, id: &str) -> Result<RevocationRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE id = $1 AND credit_code = $2"
    )))
    .bind(id)
    .bind(code)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| Error::not_found(format!("enterprises/{code}/revocations/{id}")))
}

/// Whether an award has a case still open (VERIFIED or ENDORSED).
pub async fn open_revocation(conn: &mut Conn, application: &str) -> Result<bool> {
    let n: Option<RevocationRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE application_id = $1 AND state IN ('VERIFIED', 'ENDORSED')"
    )))
    .bind(application)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(n.is_some())
}

/// Writes the case's later steps; only from the state it was read in (`from`), so two racing
/// steps cannot both land: false when it had moved on.
pub async fn update_revocation(conn: &mut Conn, r: &RevocationRow, from: &str) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE revocations SET state = $1, committee_unit = $2, committee_note = $3,
         reviewed_micros = $4, approval_document = $5, approval_date = $6, publication = $7,
         government_note = $8, ban_until = $9, decided_micros = $10
         WHERE id = $11 AND state = $12",
    )
    .bind(&r.state)
    .bind(&r.committee_unit)
    .bind(&r.committee_note)
    .bind(r.reviewed_micros)
    .bind(&r.approval_document)
    .bind(&r.approval_date)
    .bind(&r.publication)
    .bind(&r.government_note)
    .bind(&r.ban_until)
    .bind(r.decided_micros)
    .bind(&r.id)
    .bind(from)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
