//! Panels and their seats, the days their members are booked, and the assignments that
//! remember whom a reviewer reviewed.

use qaward_kit::{
    Error, Result,
    db::{Conn, Database},
    paging::Page,
};
use sqlx::Row;

use crate::domain::panel::{Panel, Seat, SeatKind, SeatState};

pub async fn insert_panel(conn: &mut Conn, p: &Panel) -> Result<()> {
    sqlx::query(
        "INSERT INTO panels (id, programme_id, draw_id, purpose, enterprise_codes, window_start, window_end, released, respond_by_micros)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8)",
    )
    .bind(&p.id)
    .bind(&p.programme_id)
    .bind(&p.draw_id)
    .bind(&p.purpose)
    .bind(p.enterprise_codes.join(" "))
    .bind(&p.window_start)
    .bind(&p.window_end)
    .bind(p.respond_by_micros)
    .execute(&mut *conn)
    .await?;
    for s in &p.seats {
        insert_seat(conn, &p.id, s).await?;
    }
    Ok(())
}

pub(super) async fn insert_seat(conn: &mut Conn, panel: &str, s: &Seat) -> Result<()> {
    sqlx::query(
        "INSERT INTO panel_seats (panel_id, position, reviewer_id, seat, state, leader, reason, replaced_by, respond_by_micros)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(panel)
    .bind(s.position)
    .bind(&s.reviewer_id)
    .bind(s.kind.as_str())
    .bind(s.state.as_str())
    .bind(i64::from(s.leader))
    .bind(&s.reason)
    .bind(&s.replaced_by)
    .bind(s.respond_by_micros)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn update_seat(conn: &mut Conn, panel: &str, s: &Seat) -> Result<()> {
    sqlx::query(
        "UPDATE panel_seats SET seat = $1, state = $2, leader = $3, reason = $4, replaced_by = $5, position = $6,
         respond_by_micros = $9 WHERE panel_id = $7 AND reviewer_id = $8",
    )
    .bind(s.kind.as_str())
    .bind(s.state.as_str())
    .bind(i64::from(s.leader))
    .bind(&s.reason)
    .bind(&s.replaced_by)
    .bind(s.position)
    .bind(panel)
    .bind(&s.reviewer_id)
    .bind(s.respond_by_micros)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn set_released(conn: &mut Conn, panel: &str) -> Result<()> {
    sqlx::query("UPDATE panels SET released = 1 WHERE id = $1")
        .bind(panel)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(super) fn panel_row(r: &sqlx::any::AnyRow) -> Result<Panel> {
    let codes: String = r.try_get("enterprise_codes")?;
    Ok(Panel {
        id: r.try_get("id")?,
        programme_id: r.try_get("programme_id")?,
        draw_id: r.try_get("draw_id")?,
        purpose: r.try_get("purpose")?,
        enterprise_codes: codes.split_whitespace().map(str::to_string).collect(),
        window_start: r.try_get("window_start")?,
        window_end: r.try_get("window_end")?,
        released: r.try_get::<i64, _>("released")? != 0,
        respond_by_micros: r.try_get("respond_by_micros")?,
        seats: Vec::new(),
    })
}

pub(super) async fn with_seats(conn: &mut Conn, mut p: Panel) -> Result<Panel> {
    for r in sqlx::query(
        "SELECT position, reviewer_id, seat, state, leader, reason, replaced_by, respond_by_micros FROM panel_seats
         WHERE panel_id = $1 ORDER BY position",
    )
    .bind(&p.id)
    .fetch_all(&mut *conn)
    .await?
    {
        let kind: String = r.try_get("seat")?;
        let state: String = r.try_get("state")?;
        p.seats.push(Seat {
            position: r.try_get("position")?,
            reviewer_id: r.try_get("reviewer_id")?,
            kind: SeatKind::parse(&kind)
                .ok_or_else(|| Error::internal(format!("unknown seat kind {kind:?}")))?,
            state: SeatState::parse(&state)
                .ok_or_else(|| Error::internal(format!("unknown seat state {state:?}")))?,
            leader: r.try_get::<i64, _>("leader")? != 0,
            reason: r.try_get("reason")?,
            replaced_by: r.try_get("replaced_by")?,
            respond_by_micros: r.try_get("respond_by_micros")?,
        });
    }
    Ok(p)
}

pub(super) const PANEL_COLUMNS: &str = "id, programme_id, draw_id, purpose, enterprise_codes, window_start, window_end, released, respond_by_micros";

pub async fn get_panel(conn: &mut Conn, programme: &str, id: &str) -> Result<Panel> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PANEL_COLUMNS} FROM panels WHERE programme_id = $1 AND id = $2"
    )))
    .bind(programme)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| Error::not_found(format!("programmes/{programme}/panels/{id}")))?;
    with_seats(conn, panel_row(&row)?).await
}

pub async fn list_panels(db: &Database, programme: &str, page: &Page) -> Result<Vec<Panel>> {
    let mut conn = db.pool().acquire().await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PANEL_COLUMNS} FROM panels WHERE programme_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    )))
    .bind(programme)
    .bind(&page.after)
    .bind(page.fetch())
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        out.push(with_seats(&mut conn, panel_row(r)?).await?);
    }
    Ok(out)
}

/// the accepted members of the programme's latest annual appointment whose window covers
/// `start..=end`, or `None` when no appointment covers it (dates `YYYY-MM-DD`).
pub async fn appointees(
    conn: &mut Conn,
    programme: &str,
    start: &str,
    end: &str,
) -> Result<Option<Vec<String>>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PANEL_COLUMNS} FROM panels WHERE programme_id = $1 AND purpose = 'ANNUAL_APPOINTMENT' \
         AND window_start <= $2 AND window_end >= $3 ORDER BY id DESC LIMIT 1"
    )))
    .bind(programme)
    .bind(start)
    .bind(end)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let panel = with_seats(conn, panel_row(&row)?).await?;
    Ok(Some(
        panel
            .seats
            .into_iter()
            .filter(|s| s.is_member() && s.state == SeatState::Accepted)
            .map(|s| s.reviewer_id)
            .collect(),
    ))
}

/// whether `reviewer` holds, or held, a seat (member or backup) on a panel of
/// `programme`: drawn or appointed for it.
pub async fn seated_in(conn: &mut Conn, reviewer: &str, programme: &str) -> Result<bool> {
    Ok(sqlx::query(
        "SELECT 1 FROM panel_seats s JOIN panels p ON p.id = s.panel_id
         WHERE s.reviewer_id = $1 AND p.programme_id = $2 LIMIT 1",
    )
    .bind(reviewer)
    .bind(programme)
    .fetch_optional(&mut *conn)
    .await?
    .is_some())
}

/// Books `reviewer` for every day of the window. The primary key refuses a day already
/// booked, whoever booked it: that refusal is how concurrent draws are kept apart.
pub async fn book(conn: &mut Conn, reviewer: &str, days: &[String], panel: &str) -> Result<()> {
    for day in days {
        sqlx::query("INSERT INTO bookings (reviewer_id, day, panel_id) VALUES ($1, $2, $3)")
            .bind(reviewer)
            .bind(day)
            .bind(panel)
            .execute(&mut *conn)
            .await
            .map_err(|e| match Error::from(e) {
                e if e.code == qaward_kit::ErrorCode::AlreadyExists => Error::new(
                    qaward_kit::ErrorCode::Aborted,
                    "REVIEWER_BOOKED",
                    format!("reviewers/{reviewer} was booked for {day} by another panel meanwhile"),
                ),
                e => e,
            })?;
    }
    Ok(())
}

pub async fn unbook(conn: &mut Conn, reviewer: &str, panel: &str) -> Result<()> {
    sqlx::query("DELETE FROM bookings WHERE reviewer_id = $1 AND panel_id = $2")
        .bind(reviewer)
        .bind(panel)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM assignments WHERE reviewer_id = $1 AND panel_id = $2")
        .bind(reviewer)
        .bind(panel)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Starts the reviewer's assignment: counted against cap and cooldown, and the start of the
/// 3-year cooling-off period against each reviewed enterprise.
pub async fn assign(conn: &mut Conn, reviewer: &str, p: &Panel) -> Result<()> {
    for e in &p.enterprise_codes {
        sqlx::query(
            "INSERT INTO assignments (reviewer_id, programme_id, panel_id, enterprise_code, window_start, window_end)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(reviewer)
        .bind(&p.programme_id)
        .bind(&p.id)
        .bind(e)
        .bind(&p.window_start)
        .bind(&p.window_end)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
