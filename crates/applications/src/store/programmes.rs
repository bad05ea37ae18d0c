//! Programmes and their versioned settings.

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

pub(super) fn settings_of(json: &str) -> Result<Settings> {
    serde_json::from_str(json).map_err(|e| Error::internal(format_args!("stored settings: {e}")))
}

pub(super) fn settings_json(s: &Settings) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

pub(super) const PROGRAMME_SELECT: &str = "SELECT p.id, p.display_name, p.settings_version, p.created_micros, s.settings
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
