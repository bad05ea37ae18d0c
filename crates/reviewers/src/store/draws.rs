//! Draws: prepared, then failed or completed once.

use qaward_kit::{
    Error, Result,
    clock::unix_micros,
    db::{Conn, Database},
    paging::Page,
};
use sqlx::Row;

use crate::domain::{
    draw::{Outcome, Prepared, Replaced},
    entropy::Part,
    lifecycle::DrawState,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrawRow {
    pub id: String,
    pub programme_id: String,
    pub state: DrawState,
    pub prepared_text: String,
    pub prepared: Prepared,
    pub inputs_hash: String,
    pub entropy: Option<String>,
    pub outcome: Option<Outcome>,
    pub failure: Option<String>,
    pub panel_id: Option<String>,
    pub created_micros: i64,
    /// The first draw of its chain (itself, unless it redraws another).
    pub chain: String,
    /// The replacements made on its panel, in order (§5 of docs/draw.md).
    pub replacements: Vec<Replaced>,
    /// each party's commitment and reveal, in the order they came.
    pub parts: Vec<Part>,
    /// the public value, once fixed.
    pub public_value: Option<String>,
}

/// A prepared draw to store.
pub struct NewDraw<'a> {
    pub id: &'a str,
    pub programme: &'a str,
    /// Its own id, or the chain of the draw it redraws.
    pub chain: &'a str,
    /// The prepared record's exact text, and its SHA-256.
    pub prepared_text: &'a str,
    pub inputs_hash: &'a str,
    pub at: time::OffsetDateTime,
    /// when a part still missing fails the draw.
    pub reveal_deadline_micros: i64,
}

/// Stores a prepared draw.
pub async fn insert_draw(conn: &mut Conn, d: &NewDraw<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO draws (id, programme_id, state, prepared, inputs_hash, created_micros, chain, reveal_deadline_micros)
         VALUES ($1, $2, 'PREPARED', $3, $4, $5, $6, $7)",
    )
    .bind(d.id)
    .bind(d.programme)
    .bind(d.prepared_text)
    .bind(d.inputs_hash)
    .bind(unix_micros(d.at))
    .bind(d.chain)
    .bind(d.reveal_deadline_micros)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) fn draw_row(r: &sqlx::any::AnyRow) -> Result<DrawRow> {
    let prepared_text: String = r.try_get("prepared")?;
    let state: String = r.try_get("state")?;
    let outcome: Option<String> = r.try_get("outcome")?;
    Ok(DrawRow {
        id: r.try_get("id")?,
        programme_id: r.try_get("programme_id")?,
        state: DrawState::parse(&state)
            .ok_or_else(|| Error::internal(format!("unknown draw state {state:?}")))?,
        prepared: serde_json::from_str(&prepared_text).map_err(Error::internal)?,
        prepared_text,
        inputs_hash: r.try_get("inputs_hash")?,
        entropy: r.try_get("entropy")?,
        outcome: outcome
            .map(|o| serde_json::from_str(&o))
            .transpose()
            .map_err(Error::internal)?,
        failure: r.try_get("failure")?,
        panel_id: r.try_get("panel_id")?,
        created_micros: r.try_get("created_micros")?,
        chain: r.try_get("chain")?,
        replacements: serde_json::from_str(&r.try_get::<String, _>("replacements")?)
            .map_err(Error::internal)?,
        parts: serde_json::from_str(&r.try_get::<String, _>("entropy_parts")?)
            .map_err(Error::internal)?,
        public_value: r.try_get("public_value")?,
    })
}

pub(super) const DRAW_COLUMNS: &str = "id, programme_id, state, prepared, inputs_hash, entropy, outcome, failure, panel_id, created_micros, chain, replacements, entropy_parts, public_value";

/// Reads a draw for a change to its entropy parts, holding its row until the transaction ends,
/// so two parties committing at once are taken one after the other.
pub async fn lock_draw(conn: &mut Conn, programme: &str, id: &str) -> Result<DrawRow> {
    sqlx::query(
        "UPDATE draws SET entropy_parts = entropy_parts WHERE programme_id = $1 AND id = $2",
    )
    .bind(programme)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    get_draw(conn, programme, id).await
}

/// Stores the draw's entropy parts.
pub async fn set_parts(conn: &mut Conn, id: &str, parts: &[Part]) -> Result<()> {
    sqlx::query("UPDATE draws SET entropy_parts = $1 WHERE id = $2")
        .bind(serde_json::to_string(parts).map_err(Error::internal)?)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Fixes the draw's public value, once.
pub async fn set_public_value(conn: &mut Conn, id: &str, value: &str) -> Result<()> {
    sqlx::query("UPDATE draws SET public_value = $1 WHERE id = $2 AND public_value IS NULL")
        .bind(value)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Prepared draws whose entropy deadline passed before `now_micros`: (programme, draw).
pub async fn overdue_draws(
    db: &Database,
    now_micros: i64,
    limit: i64,
) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT programme_id, id FROM draws
         WHERE state = 'PREPARED' AND reveal_deadline_micros > 0 AND reveal_deadline_micros < $1
         ORDER BY reveal_deadline_micros LIMIT $2",
    )
    .bind(now_micros)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("programme_id")?, r.try_get("id")?)))
        .collect()
}

/// Appends a replacement to the draw's record, from the list `d` was read with, so two racing
/// replacements cannot both land on the same list: false when it had changed meanwhile.
pub async fn append_replacement(conn: &mut Conn, d: &DrawRow, r: &Replaced) -> Result<bool> {
    let before = serde_json::to_string(&d.replacements).map_err(Error::internal)?;
    let mut all = d.replacements.clone();
    all.push(r.clone());
    let after = serde_json::to_string(&all).map_err(Error::internal)?;
    let done = sqlx::query(
        "UPDATE draws SET replacements = $1 WHERE programme_id = $2 AND id = $3 AND replacements = $4",
    )
    .bind(after)
    .bind(&d.programme_id)
    .bind(&d.id)
    .bind(before)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn get_draw(conn: &mut Conn, programme: &str, id: &str) -> Result<DrawRow> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {DRAW_COLUMNS} FROM draws WHERE programme_id = $1 AND id = $2"
    )))
    .bind(programme)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| Error::not_found(format!("programmes/{programme}/draws/{id}")))?;
    draw_row(&row)
}

pub async fn list_draws(db: &Database, programme: &str, page: &Page) -> Result<Vec<DrawRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {DRAW_COLUMNS} FROM draws WHERE programme_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    )))
    .bind(programme)
    .bind(&page.after)
    .bind(page.fetch())
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(draw_row).collect()
}

/// Moves a prepared draw to FAILED with the reason; only a PREPARED draw moves.
pub async fn fail_draw(
    conn: &mut Conn,
    id: &str,
    entropy: Option<&str>,
    failure: &str,
    at: time::OffsetDateTime,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE draws SET state = 'FAILED', entropy = $1, failure = $2, executed_micros = $3
         WHERE id = $4 AND state = 'PREPARED'",
    )
    .bind(entropy)
    .bind(failure)
    .bind(unix_micros(at))
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Supersedes every other draw of `chain` that is prepared or executed (R-45: a redraw was
/// executed), and releases the executed ones' bookings and assignments. Returns the draws
/// superseded with their panels.
pub async fn supersede_chain(
    conn: &mut Conn,
    chain: &str,
    except: &str,
    reason: &str,
) -> Result<Vec<(String, Option<String>)>> {
    let rows = sqlx::query(
        "SELECT id, panel_id FROM draws
         WHERE chain = $1 AND id <> $2 AND state IN ('PREPARED', 'EXECUTED')
         ORDER BY id",
    )
    .bind(chain)
    .bind(except)
    .fetch_all(&mut *conn)
    .await?;
    let mut superseded = Vec::new();
    for r in &rows {
        let id: String = r.try_get("id")?;
        // The row as it is once ours (another redraw may have executed it meanwhile): its
        // panel is read back from the update itself.
        let Some(updated) = sqlx::query(
            "UPDATE draws SET state = 'SUPERSEDED', failure = $1
             WHERE id = $2 AND state IN ('PREPARED', 'EXECUTED')
             RETURNING panel_id",
        )
        .bind(reason)
        .bind(&id)
        .fetch_optional(&mut *conn)
        .await?
        else {
            continue;
        };
        let panel: Option<String> = updated.try_get("panel_id")?;
        if let Some(panel) = &panel {
            for table in ["bookings", "assignments"] {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} WHERE panel_id = $1"
                )))
                .bind(panel)
                .execute(&mut *conn)
                .await?;
            }
        }
        superseded.push((id, panel));
    }
    Ok(superseded)
}

/// Records the outcome and the panel; false when the draw was no longer PREPARED.
pub async fn complete_draw(
    conn: &mut Conn,
    id: &str,
    entropy: &str,
    outcome: &Outcome,
    panel_id: &str,
    at: time::OffsetDateTime,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE draws SET state = 'EXECUTED', entropy = $1, outcome = $2, panel_id = $3, executed_micros = $4
         WHERE id = $5 AND state = 'PREPARED'",
    )
    .bind(entropy)
    .bind(serde_json::to_string(outcome).map_err(Error::internal)?)
    .bind(panel_id)
    .bind(unix_micros(at))
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}
