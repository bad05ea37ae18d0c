//! Awards, their revocation, and the winners' yearly reports.

use qaward_kit::{Result, db::Conn, paging::Page};
use sqlx::{Row, any::AnyRow};

pub async fn insert_award(
    conn: &mut Conn,
    application: &str,
    certificate: &str,
    award_date: &str,
    document: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO awards (application_id, certificate_number, award_date, document) VALUES ($1, $2, $3, $4)",
    )
    .bind(application)
    .bind(certificate)
    .bind(award_date)
    .bind(document)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// (certificate number, award date) of an awarded application.
pub async fn award_of(conn: &mut Conn, application: &str) -> Result<Option<(String, String)>> {
    let row =
        sqlx::query("SELECT certificate_number, award_date FROM awards WHERE application_id = $1")
            .bind(application)
            .fetch_optional(&mut *conn)
            .await?;
    row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
}

/// An award as held: its programme, holder, certificate, date, and whether it was revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwardRow {
    pub application_id: String,
    pub programme_id: String,
    pub credit_code: String,
    pub certificate_number: String,
    pub award_date: String,
    pub revoked: bool,
}

pub(super) const AWARD_SELECT: &str = "SELECT w.application_id, a.programme_id, a.credit_code, w.certificate_number, w.award_date, w.revoked_micros
     FROM awards w JOIN applications a ON a.id = w.application_id";

fn award_row(r: &AnyRow) -> Result<AwardRow> {
    Ok(AwardRow {
        application_id: r.try_get(0)?,
        programme_id: r.try_get(1)?,
        credit_code: r.try_get(2)?,
        certificate_number: r.try_get(3)?,
        award_date: r.try_get(4)?,
        revoked: r.try_get::<Option<i64>, _>(5)?.is_some(),
    })
}

/// An enterprise's awards, newest first.
pub async fn awards_of(conn: &mut Conn, code: &str) -> Result<Vec<AwardRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{AWARD_SELECT} WHERE a.credit_code = $1 ORDER BY w.award_date DESC"
    )))
    .bind(code)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(award_row).collect()
}

/// A programme's awards that stand (not revoked), in certificate order.
pub async fn standing_awards(conn: &mut Conn, programme: &str) -> Result<Vec<AwardRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{AWARD_SELECT} WHERE a.programme_id = $1 AND w.revoked_micros IS NULL ORDER BY w.certificate_number"
    )))
    .bind(programme)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(award_row).collect()
}

/// The settings an award's duties follow: those its cycle pinned.
pub async fn award_settings(
    conn: &mut Conn,
    award: &AwardRow,
) -> Result<crate::domain::settings::Settings> {
    let app = super::get_application(conn, &award.application_id).await?;
    let cycle = super::get_cycle(conn, &app.programme_id, app.year).await?;
    super::settings_version(conn, &app.programme_id, cycle.settings_version).await
}

/// Withdraws an award; false when it was revoked already.
pub async fn revoke_award(
    conn: &mut Conn,
    application: &str,
    revocation_json: &str,
    now_micros: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE awards SET revoked_micros = $1, revocation = $2
         WHERE application_id = $3 AND revoked_micros IS NULL",
    )
    .bind(now_micros)
    .bind(revocation_json)
    .bind(application)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A report an award holder filed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow {
    pub id: String,
    pub credit_code: String,
    /// ANNUAL or INCIDENT.
    pub kind: String,
    pub year: i64,
    pub text: String,
    pub event_date: String,
    pub due_date: String,
    pub filed_micros: i64,
    pub late: bool,
}

pub(super) const REPORT_COLUMNS: &str =
    "id, credit_code, kind, year, text, event_date, due_date, filed_micros, late";

fn report_row(r: &AnyRow) -> Result<ReportRow> {
    Ok(ReportRow {
        id: r.try_get("id")?,
        credit_code: r.try_get("credit_code")?,
        kind: r.try_get("kind")?,
        year: r.try_get("year")?,
        text: r.try_get("text")?,
        event_date: r.try_get("event_date")?,
        due_date: r.try_get("due_date")?,
        filed_micros: r.try_get("filed_micros")?,
        late: r.try_get::<i64, _>("late")? != 0,
    })
}

pub async fn insert_report(conn: &mut Conn, r: &ReportRow) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO reports ({REPORT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    )))
    .bind(&r.id)
    .bind(&r.credit_code)
    .bind(&r.kind)
    .bind(r.year)
    .bind(&r.text)
    .bind(&r.event_date)
    .bind(&r.due_date)
    .bind(r.filed_micros)
    .bind(i64::from(r.late))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn reports_of(conn: &mut Conn, code: &str, page: &Page) -> Result<Vec<ReportRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {REPORT_COLUMNS} FROM reports WHERE credit_code = $1 AND id > $2 ORDER BY id LIMIT $3"
    )))
    .bind(code)
    .bind(&page.after)
    .bind(page.fetch())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(report_row).collect()
}

/// The report years of the annual reports an enterprise filed.
pub async fn annual_years_filed(conn: &mut Conn, code: &str) -> Result<Vec<i32>> {
    let rows = sqlx::query("SELECT year FROM reports WHERE credit_code = $1 AND kind = 'ANNUAL'")
        .bind(code)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<i64, _>(0)? as i32))
        .collect()
}
