//! Applications, their evidence and their recommendations; a decision recorded on the row.

use qaward_kit::{Error, Result, db::Conn, paging::Page};
use sqlx::{Row, any::AnyRow};

use crate::domain::{Explanation, stage::Stage};

/// An application as stored. `id` is `{programme}/{year}/{credit code}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationRow {
    pub id: String,
    pub programme_id: String,
    pub year: i64,
    pub credit_code: String,
    pub stage: String,
    pub application_form: String,
    pub organisation_profile: String,
    pub self_assessment: String,
    pub submitted_micros: Option<i64>,
    pub last_rule: String,
    pub last_reason: String,
    pub last_message: String,
    /// JSON object.
    pub last_inputs: String,
    pub created_micros: i64,
    pub updated_micros: i64,
}

pub(super) const APPLICATION_COLUMNS: &str = "id, programme_id, year, credit_code, stage, application_form, organisation_profile, self_assessment, submitted_micros, last_rule, last_reason, last_message, last_inputs, created_micros, updated_micros";

pub(super) fn application_row(r: &AnyRow) -> Result<ApplicationRow> {
    Ok(ApplicationRow {
        id: r.try_get("id")?,
        programme_id: r.try_get("programme_id")?,
        year: r.try_get("year")?,
        credit_code: r.try_get("credit_code")?,
        stage: r.try_get("stage")?,
        application_form: r.try_get("application_form")?,
        organisation_profile: r.try_get("organisation_profile")?,
        self_assessment: r.try_get("self_assessment")?,
        submitted_micros: r.try_get("submitted_micros")?,
        last_rule: r.try_get("last_rule")?,
        last_reason: r.try_get("last_reason")?,
        last_message: r.try_get("last_message")?,
        last_inputs: r.try_get("last_inputs")?,
        created_micros: r.try_get("created_micros")?,
        updated_micros: r.try_get("updated_micros")?,
    })
}

pub async fn insert_application(conn: &mut Conn, a: &ApplicationRow) -> Result<()> {
    let exists = sqlx::query("SELECT 1 AS one FROM applications WHERE id = $1")
        .bind(&a.id)
        .fetch_optional(&mut *conn)
        .await?;
    if exists.is_some() {
        return Err(Error::already_exists(format!(
            "programmes/{}/cycles/{}/applications/{}",
            a.programme_id, a.year, a.credit_code
        )));
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO applications ({APPLICATION_COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
    )))
    .bind(&a.id)
    .bind(&a.programme_id)
    .bind(a.year)
    .bind(&a.credit_code)
    .bind(&a.stage)
    .bind(&a.application_form)
    .bind(&a.organisation_profile)
    .bind(&a.self_assessment)
    .bind(a.submitted_micros)
    .bind(&a.last_rule)
    .bind(&a.last_reason)
    .bind(&a.last_message)
    .bind(&a.last_inputs)
    .bind(a.created_micros)
    .bind(a.updated_micros)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get_application(conn: &mut Conn, id: &str) -> Result<ApplicationRow> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {APPLICATION_COLUMNS} FROM applications WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| {
        let mut p = id.splitn(3, '/');
        let (a, b, c) = (
            p.next().unwrap_or(""),
            p.next().unwrap_or(""),
            p.next().unwrap_or(""),
        );
        Error::not_found(format!("programmes/{a}/cycles/{b}/applications/{c}"))
    })?;
    application_row(&row)
}

/// Which of a cycle's applications to list; an empty field does not filter.
#[derive(Debug, Clone, Default)]
pub struct ApplicationFilter<'a> {
    pub stage: &'a str,
    /// One enterprise's own.
    pub credit_code: &'a str,
    /// Those of the enterprises a recommending unit recommends.
    pub recommending_unit: &'a str,
}

/// A cycle's applications in credit-code order, filtered.
pub async fn list_applications(
    conn: &mut Conn,
    programme: &str,
    year: i64,
    filter: &ApplicationFilter<'_>,
    page: &Page,
) -> Result<Vec<ApplicationRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {APPLICATION_COLUMNS} FROM applications
         WHERE programme_id = $1 AND year = $2 AND credit_code > $3 AND ($4 = '' OR stage = $4)
           AND ($5 = '' OR credit_code = $5)
           AND ($6 = '' OR credit_code IN (SELECT credit_code FROM enterprises WHERE recommending_unit = $6))
         ORDER BY credit_code LIMIT $7"
    )))
    .bind(programme)
    .bind(year)
    .bind(&page.after)
    .bind(filter.stage)
    .bind(filter.credit_code)
    .bind(filter.recommending_unit)
    .bind(page.fetch())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(application_row).collect()
}

/// Every application of a cycle in `stage` (every stage when empty), in credit-code order.
pub async fn applications_in(
    conn: &mut Conn,
    programme: &str,
    year: i64,
    stage: &str,
) -> Result<Vec<ApplicationRow>> {
    let mut out = Vec::new();
    let mut page = Page::parse(qaward_kit::paging::MAX_PAGE_SIZE as i32, "")?;
    let filter = ApplicationFilter {
        stage,
        ..Default::default()
    };
    loop {
        let mut rows = list_applications(conn, programme, year, &filter, &page).await?;
        let next = page.finish(&mut rows, |a| a.credit_code.clone());
        out.extend(rows);
        if next.is_empty() {
            return Ok(out);
        }
        page = Page::parse(qaward_kit::paging::MAX_PAGE_SIZE as i32, &next)?;
    }
}

/// Writes the application's content, stage, submission time and last decision.
pub async fn save_application(conn: &mut Conn, a: &ApplicationRow) -> Result<()> {
    sqlx::query(
        "UPDATE applications SET stage = $1, application_form = $2, organisation_profile = $3,
                self_assessment = $4, submitted_micros = $5, last_rule = $6, last_reason = $7,
                last_message = $8, last_inputs = $9, updated_micros = $10
         WHERE id = $11",
    )
    .bind(&a.stage)
    .bind(&a.application_form)
    .bind(&a.organisation_profile)
    .bind(&a.self_assessment)
    .bind(a.submitted_micros)
    .bind(&a.last_rule)
    .bind(&a.last_reason)
    .bind(&a.last_message)
    .bind(&a.last_inputs)
    .bind(a.updated_micros)
    .bind(&a.id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceRow {
    pub id: String,
    pub application_id: String,
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub created_micros: i64,
    /// SUPPORTING or CERTIFICATE (Art. 13(4), 14).
    pub kind: String,
    /// A certificate's issuing county-level department (Art. 14).
    pub issued_by: String,
}

pub async fn insert_evidence(conn: &mut Conn, e: &EvidenceRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO evidence (id, application_id, file_name, content_type, size_bytes, sha256, created_micros, kind, issued_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&e.id)
    .bind(&e.application_id)
    .bind(&e.file_name)
    .bind(&e.content_type)
    .bind(e.size_bytes)
    .bind(&e.sha256)
    .bind(e.created_micros)
    .bind(&e.kind)
    .bind(&e.issued_by)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn evidence_of(conn: &mut Conn, application: &str) -> Result<Vec<EvidenceRow>> {
    let rows = sqlx::query(
        "SELECT id, application_id, file_name, content_type, size_bytes, sha256, created_micros, kind, issued_by
         FROM evidence WHERE application_id = $1 ORDER BY id",
    )
    .bind(application)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(EvidenceRow {
                id: r.try_get("id")?,
                application_id: r.try_get("application_id")?,
                file_name: r.try_get("file_name")?,
                content_type: r.try_get("content_type")?,
                size_bytes: r.try_get("size_bytes")?,
                sha256: r.try_get("sha256")?,
                created_micros: r.try_get("created_micros")?,
                kind: r.try_get("kind")?,
                issued_by: r.try_get("issued_by")?,
            })
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecommendationRow {
    pub unit: String,
    pub opinion: String,
    pub reasons: String,
    pub signed_micros: i64,
    /// Condition names the unit attests.
    pub attested: Vec<String>,
}

/// Records (or replaces, before the application moves on) a unit's opinion.
pub async fn put_recommendation(
    conn: &mut Conn,
    application: &str,
    r: &RecommendationRow,
    by: &str,
) -> Result<()> {
    sqlx::query("DELETE FROM recommendations WHERE application_id = $1 AND unit = $2")
        .bind(application)
        .bind(&r.unit)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO recommendations (application_id, unit, opinion, reasons, signed_by, signed_micros, attested)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(application)
    .bind(&r.unit)
    .bind(&r.opinion)
    .bind(&r.reasons)
    .bind(by)
    .bind(r.signed_micros)
    .bind(serde_json::to_string(&r.attested).map_err(Error::internal)?)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn recommendations_of(
    conn: &mut Conn,
    application: &str,
) -> Result<Vec<RecommendationRow>> {
    let rows = sqlx::query(
        "SELECT unit, opinion, reasons, signed_micros, attested FROM recommendations WHERE application_id = $1 ORDER BY unit",
    )
    .bind(application)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(RecommendationRow {
                unit: r.try_get("unit")?,
                opinion: r.try_get("opinion")?,
                reasons: r.try_get("reasons")?,
                signed_micros: r.try_get("signed_micros")?,
                attested: serde_json::from_str(&r.try_get::<String, _>("attested")?)
                    .map_err(Error::internal)?,
            })
        })
        .collect()
}

pub fn stage_of(row: &ApplicationRow) -> Result<Stage> {
    Stage::parse(&row.stage)
        .ok_or_else(|| Error::internal(format_args!("unknown stage {}", row.stage)))
}

/// Records a decision on the row: its stage and why.
pub fn decide(row: &mut ApplicationRow, to: Stage, why: &Explanation, now: i64) {
    row.stage = to.as_str().to_string();
    row.last_rule = why.rule.to_string();
    row.last_reason = why.reason.to_string();
    row.last_message = why.message.clone();
    row.last_inputs = serde_json::to_string(&why.inputs).unwrap_or_default();
    row.updated_micros = now;
}

impl ApplicationRow {
    pub fn key(programme: &str, year: i64, code: &str) -> String {
        format!("{programme}/{year}/{code}")
    }
}
