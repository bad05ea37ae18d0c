//! Scoring's tables, on SQLite and PostgreSQL alike. Stores move data; the rules are in
//! `domain/`.

use qaward_kit::{
    Error, Result,
    clock::unix_micros,
    db::{Conn, Database},
    paging::Page,
};
use sqlx::Row;

use crate::domain::{
    lifecycle::{Sheet, SheetKind, SheetState},
    rubric::Rubric,
};

pub async fn insert_rubric(
    conn: &mut Conn,
    id: &str,
    rubric: &Rubric,
    at: time::OffsetDateTime,
) -> Result<i64> {
    let next: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) + 1 FROM rubrics WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    sqlx::query(
        "INSERT INTO rubrics (id, version, rubric, created_micros) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(next)
    .bind(serde_json::to_string(rubric).map_err(Error::internal)?)
    .bind(unix_micros(at))
    .execute(&mut *conn)
    .await?;
    Ok(next)
}

/// Puts version 1 of a rubric in place unless the id exists already (several replicas starting
/// at once race harmlessly: the primary key keeps one).
pub async fn seed_rubric(
    conn: &mut Conn,
    id: &str,
    rubric: &Rubric,
    at: time::OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO rubrics (id, version, rubric, created_micros) VALUES ($1, 1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(serde_json::to_string(rubric).map_err(Error::internal)?)
    .bind(unix_micros(at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A rubric version; the latest when `version` is `None`.
pub async fn get_rubric(conn: &mut Conn, id: &str, version: Option<i64>) -> Result<(i64, Rubric)> {
    let row = sqlx::query(
        "SELECT version, rubric FROM rubrics WHERE id = $1 AND ($2 < 0 OR version = $2) ORDER BY version DESC LIMIT 1",
    )
    .bind(id)
    .bind(version.unwrap_or(-1))
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| Error::not_found(format!("rubrics/{id}")))?;
    let text: String = row.try_get(1)?;
    Ok((
        row.try_get(0)?,
        serde_json::from_str(&text).map_err(Error::internal)?,
    ))
}

pub async fn list_rubrics(db: &Database, page: &Page) -> Result<Vec<(String, i64, Rubric)>> {
    let rows = sqlx::query(
        "SELECT r.id, r.version, r.rubric FROM rubrics r
         WHERE r.id > $1 AND r.version = (SELECT MAX(version) FROM rubrics x WHERE x.id = r.id)
         ORDER BY r.id LIMIT $2",
    )
    .bind(&page.after)
    .bind(page.fetch())
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            let text: String = r.try_get(2)?;
            Ok((
                r.try_get(0)?,
                r.try_get(1)?,
                serde_json::from_str(&text).map_err(Error::internal)?,
            ))
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentRow {
    pub id: String,
    pub cycle: String,
    pub application: String,
    pub stage: String,
    pub rubric_id: String,
    pub rubric_version: i64,
    pub enterprise_code: String,
    pub recommending_unit: String,
    /// (reviewer, MEMBER | LEADER | ADVISOR)
    pub people: Vec<(String, String)>,
    /// Why its sheets are frozen (a stopped site visit); empty when they are not.
    pub hold_reason: String,
    /// The group's days as ISO dates (China time), empty when the creator gave none.
    pub window_start: String,
    pub window_end: String,
}

impl AssignmentRow {
    /// The group's days, when the assignment has them.
    pub fn window(&self) -> Option<(time::Date, time::Date)> {
        Some((
            qaward_kit::convert::parse_iso_date(&self.window_start)?,
            qaward_kit::convert::parse_iso_date(&self.window_end)?,
        ))
    }

    pub fn role_of(&self, reviewer: &str) -> Option<&str> {
        self.people
            .iter()
            .find(|(r, _)| r.eq_ignore_ascii_case(reviewer))
            .map(|(_, role)| role.as_str())
    }

    /// Those who score: members and the leader, never advisors.
    pub fn scorers(&self) -> impl Iterator<Item = &String> {
        self.people
            .iter()
            .filter(|(_, role)| role != "ADVISOR")
            .map(|(r, _)| r)
    }
}

pub async fn insert_assignment(
    conn: &mut Conn,
    a: &AssignmentRow,
    at: time::OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO assignments (id, cycle, application, stage, rubric_id, rubric_version, enterprise_code, recommending_unit, created_micros, window_start, window_end)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&a.id)
    .bind(&a.cycle)
    .bind(&a.application)
    .bind(&a.stage)
    .bind(&a.rubric_id)
    .bind(a.rubric_version)
    .bind(&a.enterprise_code)
    .bind(&a.recommending_unit)
    .bind(unix_micros(at))
    .bind(&a.window_start)
    .bind(&a.window_end)
    .execute(&mut *conn)
    .await
    .map_err(|e| match Error::from(e) {
        e if e.code == qaward_kit::ErrorCode::AlreadyExists => Error::already_exists(format!(
            "an assignment for {} at stage {}",
            a.application, a.stage
        )),
        e => e,
    })?;
    for (reviewer, role) in &a.people {
        sqlx::query(
            "INSERT INTO assignment_people (assignment_id, reviewer, role) VALUES ($1, $2, $3)",
        )
        .bind(&a.id)
        .bind(reviewer)
        .bind(role)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

const ASSIGNMENT_COLUMNS: &str = "id, cycle, application, stage, rubric_id, rubric_version, enterprise_code, recommending_unit, hold_reason, window_start, window_end";

async fn with_people(conn: &mut Conn, rows: Vec<sqlx::any::AnyRow>) -> Result<Vec<AssignmentRow>> {
    let mut out = Vec::new();
    for r in rows {
        let mut a = AssignmentRow {
            id: r.try_get(0)?,
            cycle: r.try_get(1)?,
            application: r.try_get(2)?,
            stage: r.try_get(3)?,
            rubric_id: r.try_get(4)?,
            rubric_version: r.try_get(5)?,
            enterprise_code: r.try_get(6)?,
            recommending_unit: r.try_get(7)?,
            hold_reason: r.try_get(8)?,
            window_start: r.try_get(9)?,
            window_end: r.try_get(10)?,
            people: Vec::new(),
        };
        for p in sqlx::query("SELECT reviewer, role FROM assignment_people WHERE assignment_id = $1 ORDER BY reviewer")
            .bind(&a.id)
            .fetch_all(&mut *conn)
            .await?
        {
            a.people.push((p.try_get(0)?, p.try_get(1)?));
        }
        out.push(a);
    }
    Ok(out)
}

pub async fn get_assignment(conn: &mut Conn, id: &str) -> Result<AssignmentRow> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ASSIGNMENT_COLUMNS} FROM assignments WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| Error::not_found(format!("assignment {id}")))?;
    Ok(with_people(conn, vec![row]).await?.remove(0))
}

pub async fn list_assignments(
    conn: &mut Conn,
    cycle: &str,
    application: &str,
    page: &Page,
) -> Result<Vec<AssignmentRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ASSIGNMENT_COLUMNS} FROM assignments
         WHERE id > $1 AND ($2 = '' OR cycle = $2) AND ($3 = '' OR application = $3) ORDER BY id LIMIT $4"
    )))
    .bind(&page.after)
    .bind(cycle)
    .bind(application)
    .bind(page.fetch())
    .fetch_all(&mut *conn)
    .await?;
    with_people(conn, rows).await
}

const SHEET_COLUMNS: &str = "id, version, assignment_id, reviewer, kind, state, items, defence_score, total, seal_hash, correction_reason, submitted_micros";

fn sheet_kind(text: String) -> Result<SheetKind> {
    SheetKind::parse(&text).ok_or_else(|| Error::internal(format!("unknown sheet kind {text:?}")))
}

fn sheet_state(text: String) -> Result<SheetState> {
    SheetState::parse(&text).ok_or_else(|| Error::internal(format!("unknown sheet state {text:?}")))
}

fn sheet_row(r: &sqlx::any::AnyRow) -> Result<Sheet> {
    let items: String = r.try_get(6)?;
    Ok(Sheet {
        id: r.try_get(0)?,
        version: r.try_get(1)?,
        assignment_id: r.try_get(2)?,
        reviewer: r.try_get(3)?,
        kind: sheet_kind(r.try_get(4)?)?,
        state: sheet_state(r.try_get(5)?)?,
        items: serde_json::from_str(&items).map_err(Error::internal)?,
        defence_score: r.try_get(7)?,
        total: r.try_get(8)?,
        seal_hash: r.try_get(9)?,
        correction_reason: r.try_get(10)?,
        submitted_micros: r.try_get(11)?,
    })
}

/// The current version of a sheet (the newest).
pub async fn get_sheet(conn: &mut Conn, id: &str) -> Result<Option<Sheet>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SHEET_COLUMNS} FROM sheets WHERE id = $1 ORDER BY version DESC LIMIT 1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(sheet_row).transpose()
}

/// The current version of every sheet of an assignment.
pub async fn assignment_sheets(conn: &mut Conn, assignment: &str) -> Result<Vec<Sheet>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SHEET_COLUMNS} FROM sheets s WHERE assignment_id = $1
         AND version = (SELECT MAX(version) FROM sheets x WHERE x.id = s.id) ORDER BY id"
    )))
    .bind(assignment)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(sheet_row).collect()
}

/// Writes a new draft, or replaces a draft in place (drafts are not yet records).
pub async fn save_draft(conn: &mut Conn, s: &Sheet) -> Result<()> {
    sqlx::query("DELETE FROM sheets WHERE id = $1 AND version = $2 AND state = 'DRAFT'")
        .bind(&s.id)
        .bind(s.version)
        .execute(&mut *conn)
        .await?;
    insert_sheet(conn, s).await
}

pub async fn insert_sheet(conn: &mut Conn, s: &Sheet) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO sheets ({SHEET_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    )))
    .bind(&s.id)
    .bind(s.version)
    .bind(&s.assignment_id)
    .bind(&s.reviewer)
    .bind(s.kind.as_str())
    .bind(s.state.as_str())
    .bind(serde_json::to_string(&s.items).map_err(Error::internal)?)
    .bind(&s.defence_score)
    .bind(&s.total)
    .bind(&s.seal_hash)
    .bind(&s.correction_reason)
    .bind(s.submitted_micros)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Seals a draft; false if it was not a draft any more (a concurrent submit won).
pub async fn seal(conn: &mut Conn, s: &Sheet) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE sheets SET state = 'SUBMITTED', total = $1, seal_hash = $2, submitted_micros = $3
         WHERE id = $4 AND version = $5 AND state = 'DRAFT'",
    )
    .bind(&s.total)
    .bind(&s.seal_hash)
    .bind(s.submitted_micros)
    .bind(&s.id)
    .bind(s.version)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn supersede(conn: &mut Conn, id: &str, version: i64) -> Result<bool> {
    let r = sqlx::query("UPDATE sheets SET state = 'SUPERSEDED' WHERE id = $1 AND version = $2 AND state = 'SUBMITTED'")
        .bind(id)
        .bind(version)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn release(
    conn: &mut Conn,
    cycle: &str,
    stage: &str,
    at: time::OffsetDateTime,
) -> Result<()> {
    sqlx::query("INSERT INTO releases (cycle, stage, released_micros) VALUES ($1, $2, $3) ON CONFLICT (cycle, stage) DO NOTHING")
        .bind(cycle)
        .bind(stage)
        .bind(unix_micros(at))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn released(conn: &mut Conn, cycle: &str, stage: &str) -> Result<bool> {
    Ok(
        sqlx::query("SELECT 1 FROM releases WHERE cycle = $1 AND stage = $2")
            .bind(cycle)
            .bind(stage)
            .fetch_optional(&mut *conn)
            .await?
            .is_some(),
    )
}

/// Every submitted sheet of a cycle with its assignment's application and stage, in one
/// read: what results are computed from. A defence sheet counts while its scorer sits on the
/// panel: one who left it is kept on the record, not counted.
pub async fn cycle_sheets(conn: &mut Conn, cycle: &str) -> Result<Vec<(String, String, Sheet)>> {
    let rows = sqlx::query(
        "SELECT a.application, a.stage, s.id, s.version, s.assignment_id, s.reviewer, s.kind, s.state, s.items,
                s.defence_score, s.total, s.seal_hash, s.correction_reason, s.submitted_micros
         FROM sheets s JOIN assignments a ON a.id = s.assignment_id
         WHERE a.cycle = $1 AND s.state = 'SUBMITTED' AND s.kind <> 'INDEPENDENT'
           AND (s.kind <> 'DEFENCE' OR EXISTS (
               SELECT 1 FROM assignment_people p WHERE p.assignment_id = s.assignment_id AND p.reviewer = s.reviewer))",
    )
    .bind(cycle)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push((
            r.try_get(0)?,
            r.try_get(1)?,
            Sheet {
                id: r.try_get(2)?,
                version: r.try_get(3)?,
                assignment_id: r.try_get(4)?,
                reviewer: r.try_get(5)?,
                kind: sheet_kind(r.try_get(6)?)?,
                state: sheet_state(r.try_get(7)?)?,
                items: Vec::new(),
                defence_score: r.try_get(9)?,
                total: r.try_get(10)?,
                seal_hash: r.try_get(11)?,
                correction_reason: r.try_get(12)?,
                submitted_micros: r.try_get(13)?,
            },
        ));
    }
    Ok(out)
}

/// The applications of a cycle (those with any assignment).
pub async fn cycle_applications(conn: &mut Conn, cycle: &str) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT DISTINCT application FROM assignments WHERE cycle = $1 ORDER BY application",
    )
    .bind(cycle)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
}

/// A reserved opinion on a consensus (Rev. Art. 6(4)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpinionRow {
    pub assignment_id: String,
    pub reviewer: String,
    pub text: String,
    pub item_codes: Vec<String>,
    pub consensus_total: String,
    pub created_micros: i64,
}

/// Records a reserved opinion; a second one by the same reviewer on the same assignment is
/// ALREADY_EXISTS.
pub async fn insert_opinion(conn: &mut Conn, o: &OpinionRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO reserved_opinions (assignment_id, reviewer, text, item_codes, consensus_total, created_micros) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&o.assignment_id)
    .bind(&o.reviewer)
    .bind(&o.text)
    .bind(serde_json::to_string(&o.item_codes).unwrap_or_default())
    .bind(&o.consensus_total)
    .bind(o.created_micros)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The reserved opinions on an assignment after `page.after` (a reviewer id), by reviewer.
pub async fn opinions(conn: &mut Conn, assignment: &str, page: &Page) -> Result<Vec<OpinionRow>> {
    let rows = sqlx::query(
        "SELECT assignment_id, reviewer, text, item_codes, consensus_total, created_micros \
         FROM reserved_opinions WHERE assignment_id = $1 AND reviewer > $2 ORDER BY reviewer LIMIT $3",
    )
    .bind(assignment)
    .bind(&page.after)
    .bind(page.fetch())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let codes: String = r.try_get("item_codes")?;
            Ok(OpinionRow {
                assignment_id: r.try_get("assignment_id")?,
                reviewer: r.try_get("reviewer")?,
                text: r.try_get("text")?,
                item_codes: serde_json::from_str(&codes).unwrap_or_default(),
                consensus_total: r.try_get("consensus_total")?,
                created_micros: r.try_get("created_micros")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(Into::into)
}

/// A saved version of an assignment's hearing or site-visit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    pub assignment_id: String,
    pub version: i64,
    pub log: crate::domain::review_log::Log,
    pub recorded_by: String,
    pub saved_micros: i64,
}

/// The latest version of an assignment's log, if any.
pub async fn latest_log(conn: &mut Conn, assignment: &str) -> Result<Option<LogRow>> {
    let row = sqlx::query(
        "SELECT assignment_id, version, body, recorded_by, saved_micros FROM review_logs \
         WHERE assignment_id = $1 ORDER BY version DESC LIMIT 1",
    )
    .bind(assignment)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| -> Result<LogRow> {
        let body: String = r.try_get("body")?;
        Ok(LogRow {
            assignment_id: r.try_get("assignment_id")?,
            version: r.try_get("version")?,
            log: serde_json::from_str(&body)
                .map_err(|e| Error::internal(format_args!("review log body: {e}")))?,
            recorded_by: r.try_get("recorded_by")?,
            saved_micros: r.try_get("saved_micros")?,
        })
    })
    .transpose()
}

/// Adds a version; two saves racing for the same version number: the second is ALREADY_EXISTS.
pub async fn insert_log(conn: &mut Conn, l: &LogRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO review_logs (assignment_id, version, body, recorded_by, saved_micros) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&l.assignment_id)
    .bind(l.version)
    .bind(serde_json::to_string(&l.log).unwrap_or_default())
    .bind(&l.recorded_by)
    .bind(l.saved_micros)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Moves an assignment's seats as `change` says: leavers are recorded with
/// `reason` and their unsubmitted sheets made VOID (kept), joiners seated.
pub async fn reseat(
    conn: &mut Conn,
    assignment: &str,
    change: &crate::domain::group::Reseat,
    reason: &str,
    at: time::OffsetDateTime,
) -> Result<()> {
    for (reviewer, role) in &change.leaving {
        sqlx::query(
            "INSERT INTO assignment_leavers (assignment_id, reviewer, role, reason, left_micros) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(assignment)
        .bind(reviewer)
        .bind(role)
        .bind(reason)
        .bind(unix_micros(at))
        .execute(&mut *conn)
        .await?;
        sqlx::query("DELETE FROM assignment_people WHERE assignment_id = $1 AND reviewer = $2")
            .bind(assignment)
            .bind(reviewer)
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "UPDATE sheets SET state = 'VOID' WHERE assignment_id = $1 AND reviewer = $2 AND state = 'DRAFT'",
        )
        .bind(assignment)
        .bind(reviewer)
        .execute(&mut *conn)
        .await?;
    }
    for (reviewer, role) in &change.seated {
        sqlx::query("DELETE FROM assignment_people WHERE assignment_id = $1 AND reviewer = $2")
            .bind(assignment)
            .bind(reviewer)
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "INSERT INTO assignment_people (assignment_id, reviewer, role) VALUES ($1, $2, $3)",
        )
        .bind(assignment)
        .bind(reviewer)
        .bind(role)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A disqualified application out of its cycle's results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExclusionRow {
    pub cycle: String,
    pub application: String,
    pub rule: String,
    pub reason: String,
    pub created_micros: i64,
}

/// Records the exclusion unless one is recorded for the application; returns the one that
/// stands.
pub async fn exclude(conn: &mut Conn, e: &ExclusionRow) -> Result<ExclusionRow> {
    sqlx::query(
        "INSERT INTO exclusions (cycle, application, rule, reason, created_micros) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (cycle, application) DO NOTHING",
    )
    .bind(&e.cycle)
    .bind(&e.application)
    .bind(&e.rule)
    .bind(&e.reason)
    .bind(e.created_micros)
    .execute(&mut *conn)
    .await?;
    let r = sqlx::query(
        "SELECT cycle, application, rule, reason, created_micros FROM exclusions WHERE cycle = $1 AND application = $2",
    )
    .bind(&e.cycle)
    .bind(&e.application)
    .fetch_one(&mut *conn)
    .await?;
    exclusion_row(&r)
}

fn exclusion_row(r: &sqlx::any::AnyRow) -> Result<ExclusionRow> {
    Ok(ExclusionRow {
        cycle: r.try_get(0)?,
        application: r.try_get(1)?,
        rule: r.try_get(2)?,
        reason: r.try_get(3)?,
        created_micros: r.try_get(4)?,
    })
}

/// A cycle's exclusions, by application.
pub async fn exclusions(conn: &mut Conn, cycle: &str) -> Result<Vec<ExclusionRow>> {
    let rows = sqlx::query(
        "SELECT cycle, application, rule, reason, created_micros FROM exclusions WHERE cycle = $1 ORDER BY application",
    )
    .bind(cycle)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(exclusion_row).collect()
}

/// A released version of a cycle's ranking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRow {
    pub version: i64,
    pub reason: String,
    /// The encoded `CycleResults` as released.
    pub results: Vec<u8>,
    pub created_micros: i64,
}

/// The cycle's released versions after `after`, oldest first (at most `limit`).
pub async fn result_versions(
    conn: &mut Conn,
    cycle: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<VersionRow>> {
    let rows = sqlx::query(
        "SELECT version, reason, results, created_micros FROM result_versions
         WHERE cycle = $1 AND version > $2 ORDER BY version LIMIT $3",
    )
    .bind(cycle)
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(VersionRow {
                version: r.try_get(0)?,
                reason: r.try_get(1)?,
                results: r.try_get(2)?,
                created_micros: r.try_get(3)?,
            })
        })
        .collect()
}

/// Adds the next version; returns its number.
pub async fn add_result_version(
    conn: &mut Conn,
    cycle: &str,
    reason: &str,
    results: &[u8],
    at: time::OffsetDateTime,
) -> Result<i64> {
    let next: i64 =
        sqlx::query("SELECT COALESCE(MAX(version), 0) + 1 FROM result_versions WHERE cycle = $1")
            .bind(cycle)
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?;
    sqlx::query(
        "INSERT INTO result_versions (cycle, version, reason, results, created_micros) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(cycle)
    .bind(next)
    .bind(reason)
    .bind(results)
    .bind(unix_micros(at))
    .execute(&mut *conn)
    .await?;
    Ok(next)
}

/// Freezes (`reason` non-empty) or frees an assignment's sheets.
pub async fn set_hold(conn: &mut Conn, assignment: &str, reason: &str) -> Result<()> {
    sqlx::query("UPDATE assignments SET hold_reason = $1 WHERE id = $2")
        .bind(reason)
        .bind(assignment)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Whether the cycle's group leaders' meeting was held (Art. 16(5)4).
pub async fn leaders_meeting_held(conn: &mut Conn, cycle: &str) -> Result<bool> {
    Ok(
        sqlx::query("SELECT 1 FROM leaders_meetings WHERE cycle = $1")
            .bind(cycle)
            .fetch_optional(&mut *conn)
            .await?
            .is_some(),
    )
}

/// Records the meeting; its `cycle` is unique, so a second one cannot land beside it.
pub async fn insert_leaders_meeting(
    conn: &mut Conn,
    id: &str,
    cycle: &str,
    attendees: &serde_json::Value,
    minutes: &str,
    changes: &serde_json::Value,
    at_micros: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO leaders_meetings (id, cycle, attendees, minutes, changes, created_micros)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(cycle)
    .bind(attendees.to_string())
    .bind(minutes)
    .bind(changes.to_string())
    .bind(at_micros)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
