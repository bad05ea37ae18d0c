//! A reviewer's record of events.

use qaward_kit::{Error, Result, db::Conn};
use sqlx::Row;

/// An event of a reviewer's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub id: String,
    pub reviewer_id: String,
    pub year: i32,
    pub date: String,
    pub event: crate::domain::record::Event,
    pub recorded_by: String,
    pub suspension: String,
    pub created_micros: i64,
}

pub async fn insert_event(conn: &mut Conn, e: &EventRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO reviewer_events (id, reviewer_id, year, event_date, kind, body, recorded_by, suspension, created_micros) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&e.id)
    .bind(&e.reviewer_id)
    .bind(e.year)
    .bind(&e.date)
    .bind(e.event.kind())
    .bind(serde_json::to_string(&e.event).unwrap_or_default())
    .bind(&e.recorded_by)
    .bind(&e.suspension)
    .bind(e.created_micros)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A reviewer's events of one year, in the order they happened.
pub async fn events_of_year(conn: &mut Conn, reviewer: &str, year: i32) -> Result<Vec<EventRow>> {
    let rows = sqlx::query(
        "SELECT id, reviewer_id, year, event_date, body, recorded_by, suspension, created_micros \
         FROM reviewer_events WHERE reviewer_id = $1 AND year = $2 ORDER BY event_date, id",
    )
    .bind(reviewer)
    .bind(year)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| -> Result<EventRow> {
            let body: String = r.try_get("body")?;
            Ok(EventRow {
                id: r.try_get("id")?,
                reviewer_id: r.try_get("reviewer_id")?,
                year: r.try_get::<i64, _>("year")? as i32,
                date: r.try_get("event_date")?,
                event: serde_json::from_str(&body)
                    .map_err(|e| Error::internal(format_args!("reviewer event body: {e}")))?,
                recorded_by: r.try_get("recorded_by")?,
                suspension: r.try_get("suspension")?,
                created_micros: r.try_get("created_micros")?,
            })
        })
        .collect()
}
