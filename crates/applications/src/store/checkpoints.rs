//! The checkpoints a published decision names (issue 22, item 3): this service's, which
//! includes the decision, and the other services' latest at that moment, as signed texts.

use qaward_kit::{Result, db::Conn};
use sqlx::Row;

/// The checkpoint texts stored for `decision`: this service's first, then the others'.
pub async fn decision_checkpoints(conn: &mut Conn, decision: &str) -> Result<Option<Vec<String>>> {
    let row = sqlx::query("SELECT own, others FROM decision_checkpoints WHERE decision = $1")
        .bind(decision)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|row| {
        let own: String = row.try_get("own")?;
        let others: String = row.try_get("others")?;
        let mut all = vec![own];
        all.extend(serde_json::from_str::<Vec<String>>(&others).unwrap_or_default());
        Ok(all)
    })
    .transpose()
}

/// Keeps the checkpoints of `decision`, once: a second call (a retry) keeps the first.
pub async fn keep_decision_checkpoints(
    conn: &mut Conn,
    decision: &str,
    own: &str,
    others: &[String],
    at_micros: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO decision_checkpoints (decision, own, others, at_micros) VALUES ($1, $2, $3, $4)
         ON CONFLICT (decision) DO NOTHING",
    )
    .bind(decision)
    .bind(own)
    .bind(serde_json::to_string(others).unwrap_or_else(|_| "[]".into()))
    .bind(at_micros)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
