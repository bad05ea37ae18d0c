//! The applications service's tables, on SQLite and PostgreSQL alike. Handlers move data
//! through here; the rules live in `domain`.

use crate::domain::{Explanation, stage::Stage};
use qaward_kit::{
    Error, Result,
    db::{Conn, Database},
    paging::Page,
};
use sqlx::{Row, any::AnyRow};

use crate::domain::settings::Settings;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgrammeRow {
    pub id: String,
    pub display_name: String,
    pub settings_version: i64,
    pub settings: Settings,
    pub created_micros: i64,
}

fn settings_of(json: &str) -> Result<Settings> {
    serde_json::from_str(json).map_err(|e| Error::internal(format_args!("stored settings: {e}")))
}

fn settings_json(s: &Settings) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

const PROGRAMME_SELECT: &str = "SELECT p.id, p.display_name, p.settings_version, p.created_micros, s.settings
     FROM programmes p JOIN programme_settings s ON s.programme_id = p.id AND s.version = p.settings_version";

fn programme_row(r: &AnyRow) -> Result<ProgrammeRow> {
    Ok(ProgrammeRow {
        id: r.try_get("id")?,
        display_name: r.try_get("display_name")?,
        settings_version: r.try_get("settings_version")?,
        settings: settings_of(&r.try_get::<String, _>("settings")?)?,
        created_micros: r.try_get("created_micros")?,
    })
}

pub async fn insert_programme(
    conn: &mut Conn,
    id: &str,
    display_name: &str,
    settings: &Settings,
    now_micros: i64,
) -> Result<()> {
    let exists = sqlx::query("SELECT 1 AS one FROM programmes WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    if exists.is_some() {
        return Err(Error::already_exists(format!("programmes/{id}")));
    }
    sqlx::query(
        "INSERT INTO programmes (id, display_name, settings_version, created_micros) VALUES ($1, $2, 1, $3)",
    )
    .bind(id)
    .bind(display_name)
    .bind(now_micros)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO programme_settings (programme_id, version, settings, created_micros) VALUES ($1, 1, $2, $3)",
    )
    .bind(id)
    .bind(settings_json(settings))
    .bind(now_micros)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get_programme(conn: &mut Conn, id: &str) -> Result<ProgrammeRow> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{PROGRAMME_SELECT} WHERE p.id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| Error::not_found(format!("programmes/{id}")))?;
    programme_row(&row)
}

pub async fn list_programmes(db: &Database, only: &str, page: &Page) -> Result<Vec<ProgrammeRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{PROGRAMME_SELECT} WHERE p.id > $1 AND p.id = $2 ORDER BY p.id LIMIT $3"
    )))
    .bind(&page.after)
    .bind(only)
    .bind(page.fetch())
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(programme_row).collect()
}

/// Saves a new settings version and makes it current; returns it. Cycles keep theirs.
pub async fn update_settings(
    conn: &mut Conn,
    id: &str,
    settings: &Settings,
    now_micros: i64,
) -> Result<i64> {
    let current = get_programme(conn, id).await?;
    let version = current.settings_version + 1;
    sqlx::query(
        "INSERT INTO programme_settings (programme_id, version, settings, created_micros) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(version)
    .bind(settings_json(settings))
    .bind(now_micros)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE programmes SET settings_version = $1 WHERE id = $2")
        .bind(version)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(version)
}

/// The settings a cycle pinned.
pub async fn settings_version(conn: &mut Conn, programme: &str, version: i64) -> Result<Settings> {
    let row = sqlx::query(
        "SELECT settings FROM programme_settings WHERE programme_id = $1 AND version = $2",
    )
    .bind(programme)
    .bind(version)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| Error::not_found(format!("programmes/{programme} settings v{version}")))?;
    settings_of(&row.try_get::<String, _>("settings")?)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleRow {
    pub programme_id: String,
    pub year: i64,
    pub notice_title: String,
    pub conditions: String,
    pub required_materials: Vec<String>,
    pub deadline_micros: i64,
    pub settings_version: i64,
    pub state: String,
    pub created_micros: i64,
    /// The government's approval, once recorded.
    pub approval_document: String,
    pub approval_date: String,
}

const CYCLE_SELECT: &str = "SELECT programme_id, year, notice_title, conditions, required_materials, deadline_micros, settings_version, state, created_micros, approval_document, approval_date FROM cycles";

fn cycle_row(r: &AnyRow) -> Result<CycleRow> {
    Ok(CycleRow {
        programme_id: r.try_get("programme_id")?,
        year: r.try_get("year")?,
        notice_title: r.try_get("notice_title")?,
        conditions: r.try_get("conditions")?,
        required_materials: serde_json::from_str(&r.try_get::<String, _>("required_materials")?)
            .unwrap_or_default(),
        deadline_micros: r.try_get("deadline_micros")?,
        settings_version: r.try_get("settings_version")?,
        state: r.try_get("state")?,
        created_micros: r.try_get("created_micros")?,
        approval_document: r.try_get("approval_document")?,
        approval_date: r.try_get("approval_date")?,
    })
}

/// Moves a cycle to `state`, with the approval when it is recorded.
pub async fn set_cycle_state(conn: &mut Conn, c: &CycleRow) -> Result<()> {
    sqlx::query(
        "UPDATE cycles SET state = $1, approval_document = $2, approval_date = $3
         WHERE programme_id = $4 AND year = $5",
    )
    .bind(&c.state)
    .bind(&c.approval_document)
    .bind(&c.approval_date)
    .bind(&c.programme_id)
    .bind(c.year)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn insert_cycle(conn: &mut Conn, c: &CycleRow) -> Result<()> {
    let exists = sqlx::query("SELECT 1 AS one FROM cycles WHERE programme_id = $1 AND year = $2")
        .bind(&c.programme_id)
        .bind(c.year)
        .fetch_optional(&mut *conn)
        .await?;
    if exists.is_some() {
        return Err(Error::already_exists(format!(
            "programmes/{}/cycles/{}",
            c.programme_id, c.year
        )));
    }
    sqlx::query(
        "INSERT INTO cycles (programme_id, year, notice_title, conditions, required_materials, deadline_micros, settings_version, state, created_micros)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&c.programme_id)
    .bind(c.year)
    .bind(&c.notice_title)
    .bind(&c.conditions)
    .bind(serde_json::to_string(&c.required_materials).unwrap_or_default())
    .bind(c.deadline_micros)
    .bind(c.settings_version)
    .bind(&c.state)
    .bind(c.created_micros)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get_cycle(conn: &mut Conn, programme: &str, year: i64) -> Result<CycleRow> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{CYCLE_SELECT} WHERE programme_id = $1 AND year = $2"
    )))
    .bind(programme)
    .bind(year)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| Error::not_found(format!("programmes/{programme}/cycles/{year}")))?;
    cycle_row(&row)
}

/// A programme's cycles, newest year first.
pub async fn list_cycles(db: &Database, programme: &str, page: &Page) -> Result<Vec<CycleRow>> {
    let before: i64 = page.after.parse().unwrap_or(i64::MAX);
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{CYCLE_SELECT} WHERE programme_id = $1 AND year < $2 ORDER BY year DESC LIMIT $3"
    )))
    .bind(programme)
    .bind(before)
    .bind(page.fetch())
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(cycle_row).collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnterpriseRow {
    pub credit_code: String,
    pub display_name: String,
    pub established_date: String,
    pub industry_code: String,
    pub recommending_unit: String,
    pub created_micros: i64,
}

const ENTERPRISE_SELECT: &str = "SELECT credit_code, display_name, established_date, industry_code, recommending_unit, created_micros FROM enterprises";

fn enterprise_row(r: &AnyRow) -> Result<EnterpriseRow> {
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

impl ApplicationRow {
    pub fn key(programme: &str, year: i64, code: &str) -> String {
        format!("{programme}/{year}/{code}")
    }
}

const APPLICATION_COLUMNS: &str = "id, programme_id, year, credit_code, stage, application_form, organisation_profile, self_assessment, submitted_micros, last_rule, last_reason, last_message, last_inputs, created_micros, updated_micros";

fn application_row(r: &AnyRow) -> Result<ApplicationRow> {
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
}

pub async fn insert_evidence(conn: &mut Conn, e: &EvidenceRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO evidence (id, application_id, file_name, content_type, size_bytes, sha256, created_micros)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&e.id)
    .bind(&e.application_id)
    .bind(&e.file_name)
    .bind(&e.content_type)
    .bind(e.size_bytes)
    .bind(&e.sha256)
    .bind(e.created_micros)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn evidence_of(conn: &mut Conn, application: &str) -> Result<Vec<EvidenceRow>> {
    let rows = sqlx::query(
        "SELECT id, application_id, file_name, content_type, size_bytes, sha256, created_micros
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

/// A review group as stored: the stage it reviews, its draw in the reviewers service and, once
/// started, its panel, members and scoring assignments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewGroupRow {
    pub id: String,
    pub programme_id: String,
    pub year: i64,
    /// MATERIALS, DEFENCE or SITE (scoring's stage names).
    pub stage: String,
    /// PREPARED or STARTED.
    pub state: String,
    pub window_start: String,
    pub window_end: String,
    pub entropy_commitment: String,
    pub entropy_source: String,
    pub specialities: Vec<String>,
    /// a defence panel's non-scoring advisors (reviewer ids).
    pub advisors: Vec<String>,
    pub size: i64,
    pub draw: String,
    pub panel: String,
    pub created_micros: i64,
    /// Application ids with their assignment (empty until started), in order.
    pub applications: Vec<(String, String)>,
    /// (reviewer id, leader), the leader first.
    pub members: Vec<(String, bool)>,
}

const GROUP_COLUMNS: &str = "id, programme_id, year, stage, state, window_start, window_end, entropy_commitment, entropy_source, specialities, size, draw, panel, created_micros, advisors";

async fn group_from(conn: &mut Conn, r: &AnyRow) -> Result<ReviewGroupRow> {
    let id: String = r.try_get("id")?;
    let specialities: String = r.try_get("specialities")?;
    let apps = sqlx::query(
        "SELECT application_id, assignment FROM review_group_applications WHERE group_id = $1 ORDER BY position",
    )
    .bind(&id)
    .fetch_all(&mut *conn)
    .await?;
    let members = sqlx::query(
        "SELECT reviewer, leader FROM review_members WHERE group_id = $1 ORDER BY position",
    )
    .bind(&id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(ReviewGroupRow {
        programme_id: r.try_get("programme_id")?,
        year: r.try_get("year")?,
        stage: r.try_get("stage")?,
        state: r.try_get("state")?,
        window_start: r.try_get("window_start")?,
        window_end: r.try_get("window_end")?,
        entropy_commitment: r.try_get("entropy_commitment")?,
        entropy_source: r.try_get("entropy_source")?,
        specialities: serde_json::from_str(&specialities).map_err(Error::internal)?,
        advisors: serde_json::from_str(&r.try_get::<String, _>("advisors")?)
            .map_err(Error::internal)?,
        size: r.try_get("size")?,
        draw: r.try_get("draw")?,
        panel: r.try_get("panel")?,
        created_micros: r.try_get("created_micros")?,
        applications: apps
            .iter()
            .map(|a| Ok((a.try_get("application_id")?, a.try_get("assignment")?)))
            .collect::<Result<_>>()?,
        members: members
            .iter()
            .map(|m| Ok((m.try_get("reviewer")?, m.try_get::<i64, _>("leader")? != 0)))
            .collect::<Result<_>>()?,
        id,
    })
}

/// Records a prepared group and its applications. An application already in a group of the
/// same stage is refused by the primary key, so two concurrent preparations cannot both take it.
pub async fn insert_review_group(conn: &mut Conn, g: &ReviewGroupRow) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO review_groups ({GROUP_COLUMNS}, updated_micros)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $14)"
    )))
    .bind(&g.id)
    .bind(&g.programme_id)
    .bind(g.year)
    .bind(&g.stage)
    .bind(&g.state)
    .bind(&g.window_start)
    .bind(&g.window_end)
    .bind(&g.entropy_commitment)
    .bind(&g.entropy_source)
    .bind(serde_json::to_string(&g.specialities).map_err(Error::internal)?)
    .bind(g.size)
    .bind(&g.draw)
    .bind(&g.panel)
    .bind(g.created_micros)
    .bind(serde_json::to_string(&g.advisors).map_err(Error::internal)?)
    .execute(&mut *conn)
    .await?;
    for (i, (application, assignment)) in g.applications.iter().enumerate() {
        let taken = sqlx::query(
            "SELECT group_id FROM review_group_applications WHERE application_id = $1 AND stage = $2",
        )
        .bind(application)
        .bind(&g.stage)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(t) = taken {
            let other: String = t.try_get(0)?;
            let stage = crate::domain::review::ReviewStage::parse(&g.stage)
                .ok_or_else(|| Error::internal(format_args!("group stage {}", g.stage)))?;
            crate::domain::review::one_group_per_stage(stage, application, Some(&other))
                .map_err(crate::domain::refused)?;
        }
        sqlx::query(
            "INSERT INTO review_group_applications (application_id, stage, group_id, position, assignment)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(application)
        .bind(&g.stage)
        .bind(&g.id)
        .bind(i as i64)
        .bind(assignment)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Marks a group started with its panel, members and assignments.
pub async fn start_review_group(
    conn: &mut Conn,
    g: &ReviewGroupRow,
    now_micros: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE review_groups SET state = $1, panel = $2, updated_micros = $3 WHERE id = $4",
    )
    .bind(&g.state)
    .bind(&g.panel)
    .bind(now_micros)
    .bind(&g.id)
    .execute(&mut *conn)
    .await?;
    for (application, assignment) in &g.applications {
        sqlx::query(
            "UPDATE review_group_applications SET assignment = $1 WHERE group_id = $2 AND application_id = $3",
        )
        .bind(assignment)
        .bind(&g.id)
        .bind(application)
        .execute(&mut *conn)
        .await?;
    }
    for (i, (reviewer, leader)) in g.members.iter().enumerate() {
        sqlx::query(
            "INSERT INTO review_members (group_id, reviewer, leader, position) VALUES ($1, $2, $3, $4)",
        )
        .bind(&g.id)
        .bind(reviewer)
        .bind(i64::from(*leader))
        .bind(i as i64)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn get_review_group(
    conn: &mut Conn,
    programme: &str,
    year: i64,
    id: &str,
) -> Result<ReviewGroupRow> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {GROUP_COLUMNS} FROM review_groups WHERE id = $1 AND programme_id = $2 AND year = $3"
    )))
    .bind(id)
    .bind(programme)
    .bind(year)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| Error::not_found(format!("programmes/{programme}/cycles/{year}/reviewGroups/{id}")))?;
    group_from(conn, &row).await
}

pub async fn list_review_groups(
    conn: &mut Conn,
    programme: &str,
    year: i64,
    page: &Page,
) -> Result<Vec<ReviewGroupRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {GROUP_COLUMNS} FROM review_groups
         WHERE programme_id = $1 AND year = $2 AND id > $3 ORDER BY id LIMIT $4"
    )))
    .bind(programme)
    .bind(year)
    .bind(&page.after)
    .bind(page.fetch())
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        out.push(group_from(conn, r).await?);
    }
    Ok(out)
}

/// The started group of `stage` that reviews an application, if any.
pub async fn group_of(
    conn: &mut Conn,
    application: &str,
    stage: &str,
) -> Result<Option<ReviewGroupRow>> {
    let row = sqlx::query(
        "SELECT g.programme_id, g.year, g.id FROM review_group_applications a
         JOIN review_groups g ON g.id = a.group_id
         WHERE a.application_id = $1 AND a.stage = $2",
    )
    .bind(application)
    .bind(stage)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        None => Ok(None),
        Some(r) => {
            let (p, y, id): (String, i64, String) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
            Ok(Some(get_review_group(conn, &p, y, &id).await?))
        }
    }
}

/// Records that the site group stopped the visit; one stop per application.
pub async fn insert_site_stop(
    conn: &mut Conn,
    application: &str,
    finding: &str,
    by: &str,
    now_micros: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO site_stops (application_id, finding, reported_by, reported_micros)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(application)
    .bind(finding)
    .bind(by)
    .bind(now_micros)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The finding of a stopped site visit, if the visit was stopped.
pub async fn site_stop(conn: &mut Conn, application: &str) -> Result<Option<String>> {
    let row = sqlx::query("SELECT finding FROM site_stops WHERE application_id = $1")
        .bind(application)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| r.try_get(0).map_err(Error::from)).transpose()
}

/// A finalist's candidacy: whether it became a candidate, with its composite and rank.
pub async fn put_candidacy(
    conn: &mut Conn,
    application: &str,
    candidate: bool,
    composite: &str,
    scores: &serde_json::Value,
    rank: i64,
    now_micros: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO candidacies (application_id, candidate, composite, scores, rank, created_micros)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(application)
    .bind(i64::from(candidate))
    .bind(composite)
    .bind(scores.to_string())
    .bind(rank)
    .bind(now_micros)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A candidacy's composite, rank and released scores (materials, site, review, defence).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Candidacy {
    pub composite: String,
    pub rank: i64,
    pub scores: serde_json::Value,
}

pub async fn candidacy(conn: &mut Conn, application: &str) -> Result<Option<Candidacy>> {
    let row =
        sqlx::query("SELECT composite, rank, scores FROM candidacies WHERE application_id = $1")
            .bind(application)
            .fetch_optional(&mut *conn)
            .await?;
    row.map(|r| {
        Ok(Candidacy {
            composite: r.try_get(0)?,
            rank: r.try_get(1)?,
            scores: serde_json::from_str(&r.try_get::<String, _>(2)?).map_err(Error::internal)?,
        })
    })
    .transpose()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsultationRow {
    pub application_id: String,
    pub department: String,
    pub deadline: String,
    pub opinion: String,
    pub text: String,
    pub decision: String,
    pub decision_reason: String,
    /// Answered after the deadline.
    pub late: bool,
}

/// Asks a department for its opinion on an application, unless it was asked already.
pub async fn request_consultation(
    conn: &mut Conn,
    application: &str,
    department: &str,
    deadline: &str,
) -> Result<()> {
    let exists = sqlx::query(
        "SELECT 1 AS one FROM consultations WHERE application_id = $1 AND department = $2",
    )
    .bind(application)
    .bind(department)
    .fetch_optional(&mut *conn)
    .await?;
    if exists.is_none() {
        sqlx::query(
            "INSERT INTO consultations (application_id, department, deadline, opinion, text, decision, decision_reason)
             VALUES ($1, $2, $3, '', '', '', '')",
        )
        .bind(application)
        .bind(department)
        .bind(deadline)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn consultations_of(conn: &mut Conn, application: &str) -> Result<Vec<ConsultationRow>> {
    let rows = sqlx::query(
        "SELECT application_id, department, deadline, opinion, text, decision, decision_reason, late
         FROM consultations WHERE application_id = $1 ORDER BY department",
    )
    .bind(application)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ConsultationRow {
                application_id: r.try_get(0)?,
                department: r.try_get(1)?,
                deadline: r.try_get(2)?,
                opinion: r.try_get(3)?,
                text: r.try_get(4)?,
                decision: r.try_get(5)?,
                decision_reason: r.try_get(6)?,
                late: r.try_get::<i64, _>(7)? != 0,
            })
        })
        .collect()
}

/// Records a department's answer or the office's decision on it.
pub async fn save_consultation(
    conn: &mut Conn,
    c: &ConsultationRow,
    answered_micros: Option<i64>,
) -> Result<()> {
    sqlx::query(
        "UPDATE consultations SET opinion = $1, text = $2, decision = $3, decision_reason = $4,
                answered_micros = COALESCE($5, answered_micros), late = $8
         WHERE application_id = $6 AND department = $7",
    )
    .bind(&c.opinion)
    .bind(&c.text)
    .bind(&c.decision)
    .bind(&c.decision_reason)
    .bind(answered_micros)
    .bind(&c.application_id)
    .bind(&c.department)
    .bind(i64::from(c.late))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The public notice's (start, end) in micros, once opened.
pub async fn public_notice(
    conn: &mut Conn,
    programme: &str,
    year: i64,
) -> Result<Option<(i64, i64)>> {
    let row = sqlx::query(
        "SELECT start_micros, end_micros FROM public_notices WHERE programme_id = $1 AND year = $2",
    )
    .bind(programme)
    .bind(year)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
}

pub async fn insert_public_notice(
    conn: &mut Conn,
    programme: &str,
    year: i64,
    start: i64,
    end: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO public_notices (programme_id, year, start_micros, end_micros) VALUES ($1, $2, $3, $4)",
    )
    .bind(programme)
    .bind(year)
    .bind(start)
    .bind(end)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplaintRow {
    pub id: String,
    pub application_id: String,
    pub complainant: String,
    pub text: String,
    pub evidence: Vec<String>,
    pub outcome: String,
    pub investigation: String,
    pub created_micros: i64,
}

const COMPLAINT_COLUMNS: &str =
    "id, application_id, complainant, text, evidence, outcome, investigation, created_micros";

fn complaint_row(r: &AnyRow) -> Result<ComplaintRow> {
    Ok(ComplaintRow {
        id: r.try_get("id")?,
        application_id: r.try_get("application_id")?,
        complainant: r.try_get("complainant")?,
        text: r.try_get("text")?,
        evidence: serde_json::from_str(&r.try_get::<String, _>("evidence")?)
            .map_err(Error::internal)?,
        outcome: r.try_get("outcome")?,
        investigation: r.try_get("investigation")?,
        created_micros: r.try_get("created_micros")?,
    })
}

pub async fn insert_complaint(conn: &mut Conn, c: &ComplaintRow) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO complaints ({COMPLAINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    )))
    .bind(&c.id)
    .bind(&c.application_id)
    .bind(&c.complainant)
    .bind(&c.text)
    .bind(serde_json::to_string(&c.evidence).map_err(Error::internal)?)
    .bind(&c.outcome)
    .bind(&c.investigation)
    .bind(c.created_micros)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get_complaint(
    conn: &mut Conn,
    application: &str,
    id: &str,
) -> Result<Option<ComplaintRow>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COMPLAINT_COLUMNS} FROM complaints WHERE id = $1 AND application_id = $2"
    )))
    .bind(id)
    .bind(application)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(complaint_row).transpose()
}

pub async fn complaints_of(
    conn: &mut Conn,
    application: &str,
    page: &Page,
) -> Result<Vec<ComplaintRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COMPLAINT_COLUMNS} FROM complaints WHERE application_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    )))
    .bind(application)
    .bind(&page.after)
    .bind(page.fetch())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(complaint_row).collect()
}

/// Records the outcome of an investigation; false when the complaint was resolved already.
pub async fn resolve_complaint(
    conn: &mut Conn,
    id: &str,
    outcome: &str,
    investigation: &str,
    now_micros: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE complaints SET outcome = $1, investigation = $2, resolved_micros = $3
         WHERE id = $4 AND outcome = 'PENDING'",
    )
    .bind(outcome)
    .bind(investigation)
    .bind(now_micros)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// How many complaints of a cycle's applications await their outcome.
pub async fn pending_complaints(conn: &mut Conn, programme: &str, year: i64) -> Result<i64> {
    let row = sqlx::query(
        "SELECT COUNT(*) FROM complaints c JOIN applications a ON a.id = c.application_id
         WHERE a.programme_id = $1 AND a.year = $2 AND c.outcome = 'PENDING'",
    )
    .bind(programme)
    .bind(year)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get(0)?)
}

pub async fn insert_meeting(
    conn: &mut Conn,
    id: &str,
    programme: &str,
    year: i64,
    units_present: &[String],
    recusals: &serde_json::Value,
    now_micros: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO committee_meetings (id, programme_id, year, units_present, recusals, created_micros)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(programme)
    .bind(year)
    .bind(serde_json::to_string(units_present).map_err(Error::internal)?)
    .bind(recusals.to_string())
    .bind(now_micros)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn insert_committee_decision(
    conn: &mut Conn,
    application: &str,
    meeting: &str,
    adopted: bool,
    note: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO committee_decisions (application_id, meeting_id, adopted, note) VALUES ($1, $2, $3, $4)",
    )
    .bind(application)
    .bind(meeting)
    .bind(i64::from(adopted))
    .bind(note)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Whether the committee adopted an application; `None` when it has not decided on it.
pub async fn adopted(conn: &mut Conn, application: &str) -> Result<Option<bool>> {
    let row = sqlx::query("SELECT adopted FROM committee_decisions WHERE application_id = $1")
        .bind(application)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| Ok(r.try_get::<i64, _>(0)? != 0)).transpose()
}

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

const AWARD_SELECT: &str = "SELECT w.application_id, a.programme_id, a.credit_code, w.certificate_number, w.award_date, w.revoked_micros
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

const REPORT_COLUMNS: &str =
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
