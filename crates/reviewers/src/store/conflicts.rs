//! Relations and flags on a reviewer's record.

use qaward_kit::{
    Error, Result,
    clock::unix_micros,
    db::{Conn, Database},
    paging::Page,
};
use sqlx::Row;

use super::{bump_registry, changed};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationRow {
    pub id: String,
    pub reviewer_id: String,
    pub enterprise_code: String,
    pub kind: String,
    pub start_date: String,
    pub end_date: Option<String>,
    pub note: String,
}

pub async fn insert_relation(
    conn: &mut Conn,
    r: &RelationRow,
    at: time::OffsetDateTime,
) -> Result<()> {
    let version = bump_registry(conn).await?;
    changed(conn, version, &r.reviewer_id).await?;
    sqlx::query(
        "INSERT INTO relations (id, reviewer_id, enterprise_code, kind, start_date, end_date, note, created_micros)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&r.id)
    .bind(&r.reviewer_id)
    .bind(&r.enterprise_code)
    .bind(&r.kind)
    .bind(&r.start_date)
    .bind(&r.end_date)
    .bind(&r.note)
    .bind(unix_micros(at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) fn relation_row(r: &sqlx::any::AnyRow) -> Result<RelationRow> {
    Ok(RelationRow {
        id: r.try_get("id")?,
        reviewer_id: r.try_get("reviewer_id")?,
        enterprise_code: r.try_get("enterprise_code")?,
        kind: r.try_get("kind")?,
        start_date: r.try_get("start_date")?,
        end_date: r.try_get("end_date")?,
        note: r.try_get("note")?,
    })
}

pub async fn list_relations(
    db: &Database,
    reviewer: &str,
    page: &Page,
) -> Result<Vec<RelationRow>> {
    let rows = sqlx::query(
        "SELECT id, reviewer_id, enterprise_code, kind, start_date, end_date, note FROM relations
         WHERE reviewer_id = $1 AND id > $2 ORDER BY id LIMIT $3",
    )
    .bind(reviewer)
    .bind(&page.after)
    .bind(page.fetch())
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(relation_row).collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagRow {
    pub id: String,
    pub reviewer_id: String,
    pub kind: String,
    pub start_date: String,
    pub end_date: Option<String>,
    pub note: String,
    pub resolved: bool,
}

pub async fn insert_flag(conn: &mut Conn, f: &FlagRow, at: time::OffsetDateTime) -> Result<()> {
    let version = bump_registry(conn).await?;
    changed(conn, version, &f.reviewer_id).await?;
    sqlx::query(
        "INSERT INTO flags (id, reviewer_id, kind, start_date, end_date, note, resolved_micros, created_micros)
         VALUES ($1, $2, $3, $4, $5, $6, NULL, $7)",
    )
    .bind(&f.id)
    .bind(&f.reviewer_id)
    .bind(&f.kind)
    .bind(&f.start_date)
    .bind(&f.end_date)
    .bind(&f.note)
    .bind(unix_micros(at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) fn flag_row(r: &sqlx::any::AnyRow) -> Result<FlagRow> {
    Ok(FlagRow {
        id: r.try_get("id")?,
        reviewer_id: r.try_get("reviewer_id")?,
        kind: r.try_get("kind")?,
        start_date: r.try_get("start_date")?,
        end_date: r.try_get("end_date")?,
        note: r.try_get("note")?,
        resolved: r.try_get::<Option<i64>, _>("resolved_micros")?.is_some(),
    })
}

pub async fn list_flags(db: &Database, reviewer: &str, page: &Page) -> Result<Vec<FlagRow>> {
    let rows = sqlx::query(
        "SELECT id, reviewer_id, kind, start_date, end_date, note, resolved_micros FROM flags
         WHERE reviewer_id = $1 AND id > $2 ORDER BY id LIMIT $3",
    )
    .bind(reviewer)
    .bind(&page.after)
    .bind(page.fetch())
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(flag_row).collect()
}

pub async fn resolve_flag(
    conn: &mut Conn,
    reviewer: &str,
    id: &str,
    at: time::OffsetDateTime,
) -> Result<FlagRow> {
    let version = bump_registry(conn).await?;
    changed(conn, version, reviewer).await?;
    let row = sqlx::query(
        "UPDATE flags SET resolved_micros = $1 WHERE id = $2 AND reviewer_id = $3 AND resolved_micros IS NULL
         RETURNING id, reviewer_id, kind, start_date, end_date, note, resolved_micros",
    )
    .bind(unix_micros(at))
    .bind(id)
    .bind(reviewer)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(r) => flag_row(&r),
        None => {
            let exists = sqlx::query("SELECT id FROM flags WHERE id = $1 AND reviewer_id = $2")
                .bind(id)
                .bind(reviewer)
                .fetch_optional(&mut *conn)
                .await?;
            Err(match exists {
                Some(_) => Error::rule(
                    "R-41",
                    "FLAG_ALREADY_RESOLVED",
                    "the flag is already resolved",
                ),
                None => Error::not_found(format!("reviewers/{reviewer}/flags/{id}")),
            })
        }
    }
}

/// The programmes whose panels had `reviewer` review `enterprise`, in name order.
pub async fn programmes_reviewing(
    conn: &mut Conn,
    reviewer: &str,
    enterprise: &str,
) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT DISTINCT programme_id FROM assignments WHERE reviewer_id = $1 AND enterprise_code = $2
         ORDER BY programme_id",
    )
    .bind(reviewer)
    .bind(enterprise)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok(r.try_get("programme_id")?))
        .collect()
}
