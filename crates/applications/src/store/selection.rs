//! Candidates, consultations, the public notice and its complaints, (the committee's meeting is `committee`).

use qaward_kit::{Error, Result, db::Conn, paging::Page};
use sqlx::{Row, any::AnyRow};

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
    /// OBJECTION (on a candidate during the public notice, R-21) or TIP_OFF (any other time,
    /// Art. 6(5), R-52).
    pub kind: String,
    /// `{programme}-{year}-{n}`, n counting the cycle's complaints from 1.
    pub case_number: String,
    /// The working day it is answered by, at its end, China time.
    pub answer_by_micros: Option<i64>,
    /// Who in the office handles the case; empty until the office assigns it.
    pub owner: String,
    /// The reviewer the complaint is about (a reviewer id), or empty when it is about the
    /// applicant.
    pub reviewer: String,
    /// The filer as `{issuer}#{subject}`: who may follow the case.
    pub filed_by: String,
}

pub(super) const COMPLAINT_COLUMNS: &str = "id, application_id, complainant, text, evidence, outcome, investigation, created_micros, kind, case_number, answer_by_micros, owner, reviewer, filed_by";

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
        kind: r.try_get("kind")?,
        case_number: r.try_get("case_number")?,
        answer_by_micros: r.try_get("answer_by_micros")?,
        owner: r.try_get("owner")?,
        reviewer: r.try_get("reviewer")?,
        filed_by: r.try_get("filed_by")?,
    })
}

pub async fn insert_complaint(conn: &mut Conn, c: &ComplaintRow) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO complaints ({COMPLAINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    )))
    .bind(&c.id)
    .bind(&c.application_id)
    .bind(&c.complainant)
    .bind(&c.text)
    .bind(serde_json::to_string(&c.evidence).map_err(Error::internal)?)
    .bind(&c.outcome)
    .bind(&c.investigation)
    .bind(c.created_micros)
    .bind(&c.kind)
    .bind(&c.case_number)
    .bind(c.answer_by_micros)
    .bind(&c.owner)
    .bind(&c.reviewer)
    .bind(&c.filed_by)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// the office member who owns a case.
pub async fn set_complaint_owner(conn: &mut Conn, id: &str, owner: &str) -> Result<()> {
    sqlx::query("UPDATE complaints SET owner = $1 WHERE id = $2")
        .bind(owner)
        .bind(id)
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

/// How many complaints about a cycle's candidates on the notice await their outcome
/// (objections and tip-offs alike; a tip-off about an application out of the running does not
/// hold up the committee).
pub async fn pending_complaints(conn: &mut Conn, programme: &str, year: i64) -> Result<i64> {
    let row = sqlx::query(
        "SELECT COUNT(*) FROM complaints c JOIN applications a ON a.id = c.application_id
         WHERE a.programme_id = $1 AND a.year = $2 AND c.outcome = 'PENDING'
           AND a.stage = 'PUBLIC_NOTICE'",
    )
    .bind(programme)
    .bind(year)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get(0)?)
}

/// The next case number of a cycle's complaints: `{programme}-{year}-{n}`.
pub async fn next_case_number(conn: &mut Conn, programme: &str, year: i64) -> Result<String> {
    let n: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM complaints c JOIN applications a ON a.id = c.application_id
         WHERE a.programme_id = $1 AND a.year = $2",
    )
    .bind(programme)
    .bind(year)
    .fetch_one(&mut *conn)
    .await?
    .try_get("n")?;
    Ok(format!("{programme}-{year}-{:04}", n + 1))
}
