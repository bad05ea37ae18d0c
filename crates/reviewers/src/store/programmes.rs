//! Programmes and their versioned draw policy.

use qaward_kit::{
    Error, Result,
    clock::unix_micros,
    db::{Conn, Database},
    paging::Page,
};
use sqlx::Row;

use crate::domain::policy::DrawPolicy;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgrammeRow {
    pub id: String,
    pub display_name: String,
    pub policy_version: i64,
    pub policy: DrawPolicy,
    pub created_micros: i64,
}

pub(super) fn policy_json(p: &DrawPolicy) -> String {
    serde_json::to_string(p).expect("a policy always serialises")
}

pub async fn insert_programme(
    conn: &mut Conn,
    id: &str,
    display_name: &str,
    policy: &DrawPolicy,
    at: time::OffsetDateTime,
) -> Result<()> {
    let now = unix_micros(at);
    sqlx::query("INSERT INTO programmes (id, display_name, policy_version, created_micros) VALUES ($1, $2, 1, $3)")
        .bind(id)
        .bind(display_name)
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(|e| match Error::from(e) {
            e if e.code == qaward_kit::ErrorCode::AlreadyExists => {
                Error::already_exists(format!("programmes/{id}"))
            }
            e => e,
        })?;
    sqlx::query("INSERT INTO draw_policies (programme_id, version, policy, created_micros) VALUES ($1, 1, $2, $3)")
        .bind(id)
        .bind(policy_json(policy))
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Publishes a new policy version; earlier versions stay for the draws that used them.
pub async fn update_policy(
    conn: &mut Conn,
    id: &str,
    policy: &DrawPolicy,
    at: time::OffsetDateTime,
) -> Result<i64> {
    let row = sqlx::query(
        "UPDATE programmes SET policy_version = policy_version + 1 WHERE id = $1 RETURNING policy_version",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| Error::not_found(format!("programmes/{id}")))?;
    let version: i64 = row.try_get("policy_version")?;
    sqlx::query("INSERT INTO draw_policies (programme_id, version, policy, created_micros) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(version)
        .bind(policy_json(policy))
        .bind(unix_micros(at))
        .execute(&mut *conn)
        .await?;
    Ok(version)
}

pub(super) fn programme_row(r: &sqlx::any::AnyRow) -> Result<ProgrammeRow> {
    let policy: String = r.try_get("policy")?;
    Ok(ProgrammeRow {
        id: r.try_get("id")?,
        display_name: r.try_get("display_name")?,
        policy_version: r.try_get("policy_version")?,
        policy: serde_json::from_str(&policy).map_err(Error::internal)?,
        created_micros: r.try_get("created_micros")?,
    })
}

pub(super) const PROGRAMME_SELECT: &str = "SELECT p.id, p.display_name, p.policy_version, p.created_micros, d.policy
     FROM programmes p JOIN draw_policies d ON d.programme_id = p.id AND d.version = p.policy_version";

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

pub async fn list_programmes(
    db: &Database,
    only: Option<&str>,
    page: &Page,
) -> Result<Vec<ProgrammeRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{PROGRAMME_SELECT} WHERE p.id > $1 AND ($2 = '' OR p.id = $2) ORDER BY p.id LIMIT $3"
    )))
    .bind(&page.after)
    .bind(only.unwrap_or(""))
    .bind(page.fetch())
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(programme_row).collect()
}
