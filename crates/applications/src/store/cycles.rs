//! Cycles: a programme's year, its notice and its state.

use qaward_kit::{
    Error, Result,
    db::{Conn, Database},
    paging::Page,
};
use sqlx::{Row, any::AnyRow};

use crate::domain::cycle::CycleState;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleRow {
    pub programme_id: String,
    pub year: i64,
    pub notice_title: String,
    pub conditions: String,
    pub required_materials: Vec<String>,
    pub deadline_micros: i64,
    pub settings_version: i64,
    pub state: CycleState,
    pub created_micros: i64,
    /// The government's approval, once recorded.
    pub approval_document: String,
    pub approval_date: String,
}

pub(super) const CYCLE_SELECT: &str = "SELECT programme_id, year, notice_title, conditions, required_materials, deadline_micros, settings_version, state, created_micros, approval_document, approval_date FROM cycles";

pub(super) fn cycle_row(r: &AnyRow) -> Result<CycleRow> {
    Ok(CycleRow {
        programme_id: r.try_get("programme_id")?,
        year: r.try_get("year")?,
        notice_title: r.try_get("notice_title")?,
        conditions: r.try_get("conditions")?,
        required_materials: serde_json::from_str(&r.try_get::<String, _>("required_materials")?)
            .unwrap_or_default(),
        deadline_micros: r.try_get("deadline_micros")?,
        settings_version: r.try_get("settings_version")?,
        state: {
            let text: String = r.try_get("state")?;
            CycleState::parse(&text)
                .ok_or_else(|| Error::internal(format!("unknown cycle state {text:?}")))?
        },
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
    .bind(c.state.as_str())
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
    .bind(c.state.as_str())
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
