//! Enterprises and the records (credit, incidents, earlier awards) eligibility reads.

use qaward_kit::{
    Error, Result,
    db::{Conn, Database},
    paging::Page,
};
use sqlx::{Row, any::AnyRow};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnterpriseRow {
    pub credit_code: String,
    pub display_name: String,
    pub established_date: String,
    pub industry_code: String,
    pub recommending_unit: String,
    pub created_micros: i64,
}

pub(super) const ENTERPRISE_SELECT: &str = "SELECT credit_code, display_name, established_date, industry_code, recommending_unit, created_micros FROM enterprises";

pub(super) fn enterprise_row(r: &AnyRow) -> Result<EnterpriseRow> {
    Ok(EnterpriseRow {
        credit_code: r.try_get("credit_code")?,
        display_name: r.try_get("display_name")?,
        established_date: r.try_get("established_date")?,
        industry_code: r.try_get("industry_code")?,
        recommending_unit: r.try_get("recommending_unit")?,
        created_micros: r.try_get("created_micros")?,
    })
}

pub async fn insert_enterprise(conn: &mut Conn, e: &EnterpriseRow) -> Result<()> {
    let exists = sqlx::query("SELECT 1 AS one FROM enterprises WHERE credit_code = $1")
        .bind(&e.credit_code)
        .fetch_optional(&mut *conn)
        .await?;
    if exists.is_some() {
        return Err(Error::already_exists(format!(
            "enterprises/{}",
            e.credit_code
        )));
    }
    sqlx::query(
        "INSERT INTO enterprises (credit_code, display_name, established_date, industry_code, recommending_unit, created_micros)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&e.credit_code)
    .bind(&e.display_name)
    .bind(&e.established_date)
    .bind(&e.industry_code)
    .bind(&e.recommending_unit)
    .bind(e.created_micros)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get_enterprise(conn: &mut Conn, code: &str) -> Result<EnterpriseRow> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{ENTERPRISE_SELECT} WHERE credit_code = $1"
    )))
    .bind(code)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| Error::not_found(format!("enterprises/{code}")))?;
    enterprise_row(&row)
}

pub async fn list_enterprises(db: &Database, page: &Page) -> Result<Vec<EnterpriseRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{ENTERPRISE_SELECT} WHERE credit_code > $1 ORDER BY credit_code LIMIT $2"
    )))
    .bind(&page.after)
    .bind(page.fetch())
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(enterprise_row).collect()
}

/// An enterprise's record in a programme, by kind (`award`, `revocation`, `fraud`): dates.
pub async fn record_dates(
    conn: &mut Conn,
    code: &str,
    programme: &str,
    kind: &str,
) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT record_date FROM enterprise_records WHERE credit_code = $1 AND programme_id = $2 AND kind = $3",
    )
    .bind(code)
    .bind(programme)
    .bind(kind)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|r| Ok(r.try_get("record_date")?)).collect()
}

/// Adds a record (an award, a revocation, a fraud finding) that eligibility will count.
pub async fn add_record(
    conn: &mut Conn,
    code: &str,
    programme: &str,
    kind: &str,
    date: &str,
    note: &str,
    now_micros: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO enterprise_records (credit_code, programme_id, kind, record_date, note, created_micros)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(code)
    .bind(programme)
    .bind(kind)
    .bind(date)
    .bind(note)
    .bind(now_micros)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
