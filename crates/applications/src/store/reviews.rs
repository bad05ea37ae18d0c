//! Review groups, the applications in each, and a stopped site visit.

use qaward_kit::{Error, Result, db::Conn, paging::Page};
use sqlx::{Row, any::AnyRow};

use crate::domain::review::GroupState;

/// A review group as stored: the stage it reviews, its draw in the reviewers service and, once
/// started, its panel, members and scoring assignments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewGroupRow {
    pub id: String,
    pub programme_id: String,
    pub year: i64,
    /// MATERIALS, DEFENCE or SITE (scoring's stage names).
    pub stage: String,
    /// PREPARED or STARTED.
    pub state: GroupState,
    pub window_start: String,
    pub window_end: String,
    pub entropy_commitment: String,
    pub entropy_source: String,
    /// the draw fixes a public value between commitments and reveals.
    pub fixes_public_value: bool,
    pub specialities: Vec<String>,
    /// a defence panel's non-scoring advisors (reviewer ids).
    pub advisors: Vec<String>,
    pub size: i64,
    pub draw: String,
    pub panel: String,
    pub created_micros: i64,
    /// Application ids with their assignment (empty until started), in order.
    pub applications: Vec<(String, String)>,
    /// (reviewer id, leader), the leader first.
    pub members: Vec<(String, bool)>,
}

pub(super) const GROUP_COLUMNS: &str = "id, programme_id, year, stage, state, window_start, window_end, entropy_commitment, entropy_source, specialities, size, draw, panel, created_micros, advisors, fixes_public_value";

pub(super) async fn group_from(conn: &mut Conn, r: &AnyRow) -> Result<ReviewGroupRow> {
    let id: String = r.try_get("id")?;
    let specialities: String = r.try_get("specialities")?;
    let apps = sqlx::query(
        "SELECT application_id, assignment FROM review_group_applications WHERE group_id = $1 ORDER BY position",
    )
    .bind(&id)
    .fetch_all(&mut *conn)
    .await?;
    let members = sqlx::query(
        "SELECT reviewer, leader FROM review_members WHERE group_id = $1 ORDER BY position",
    )
    .bind(&id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(ReviewGroupRow {
        programme_id: r.try_get("programme_id")?,
        year: r.try_get("year")?,
        stage: r.try_get("stage")?,
        state: {
            let text: String = r.try_get("state")?;
            GroupState::parse(&text)
                .ok_or_else(|| Error::internal(format!("unknown group state {text:?}")))?
        },
        window_start: r.try_get("window_start")?,
        window_end: r.try_get("window_end")?,
        entropy_commitment: r.try_get("entropy_commitment")?,
        entropy_source: r.try_get("entropy_source")?,
        fixes_public_value: r.try_get::<i64, _>("fixes_public_value")? != 0,
        specialities: serde_json::from_str(&specialities).map_err(Error::internal)?,
        advisors: serde_json::from_str(&r.try_get::<String, _>("advisors")?)
            .map_err(Error::internal)?,
        size: r.try_get("size")?,
        draw: r.try_get("draw")?,
        panel: r.try_get("panel")?,
        created_micros: r.try_get("created_micros")?,
        applications: apps
            .iter()
            .map(|a| Ok((a.try_get("application_id")?, a.try_get("assignment")?)))
            .collect::<Result<_>>()?,
        members: members
            .iter()
            .map(|m| Ok((m.try_get("reviewer")?, m.try_get::<i64, _>("leader")? != 0)))
            .collect::<Result<_>>()?,
        id,
    })
}

/// Records a prepared group and its applications. An application already in a group of the
/// same stage is refused by the primary key, so two concurrent preparations cannot both take it.
pub async fn insert_review_group(conn: &mut Conn, g: &ReviewGroupRow) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO review_groups ({GROUP_COLUMNS}, updated_micros)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $14)"
    )))
    .bind(&g.id)
    .bind(&g.programme_id)
    .bind(g.year)
    .bind(&g.stage)
    .bind(g.state.as_str())
    .bind(&g.window_start)
    .bind(&g.window_end)
    .bind(&g.entropy_commitment)
    .bind(&g.entropy_source)
    .bind(serde_json::to_string(&g.specialities).map_err(Error::internal)?)
    .bind(g.size)
    .bind(&g.draw)
    .bind(&g.panel)
    .bind(g.created_micros)
    .bind(serde_json::to_string(&g.advisors).map_err(Error::internal)?)
    .bind(i64::from(g.fixes_public_value))
    .execute(&mut *conn)
    .await?;
    for (i, (application, assignment)) in g.applications.iter().enumerate() {
        let taken = sqlx::query(
            "SELECT group_id FROM review_group_applications WHERE application_id = $1 AND stage = $2",
        )
        .bind(application)
        .bind(&g.stage)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(t) = taken {
            let other: String = t.try_get(0)?;
            let stage = crate::domain::review::ReviewStage::parse(&g.stage)
                .ok_or_else(|| Error::internal(format_args!("group stage {}", g.stage)))?;
            crate::domain::review::one_group_per_stage(stage, application, Some(&other))
                .map_err(crate::domain::refused)?;
        }
        sqlx::query(
            "INSERT INTO review_group_applications (application_id, stage, group_id, position, assignment)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(application)
        .bind(&g.stage)
        .bind(&g.id)
        .bind(i as i64)
        .bind(assignment)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Marks a group started with its panel, members and assignments.
pub async fn start_review_group(
    conn: &mut Conn,
    g: &ReviewGroupRow,
    now_micros: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE review_groups SET state = $1, panel = $2, updated_micros = $3 WHERE id = $4",
    )
    .bind(g.state.as_str())
    .bind(&g.panel)
    .bind(now_micros)
    .bind(&g.id)
    .execute(&mut *conn)
    .await?;
    for (application, assignment) in &g.applications {
        sqlx::query(
            "UPDATE review_group_applications SET assignment = $1 WHERE group_id = $2 AND application_id = $3",
        )
        .bind(assignment)
        .bind(&g.id)
        .bind(application)
        .execute(&mut *conn)
        .await?;
    }
    insert_members(conn, g).await
}

pub async fn get_review_group(
    conn: &mut Conn,
    programme: &str,
    year: i64,
    id: &str,
) -> Result<ReviewGroupRow> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {GROUP_COLUMNS} FROM review_groups WHERE id = $1 AND programme_id = $2 AND year = $3"
    )))
    .bind(id)
    .bind(programme)
    .bind(year)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| Error::not_found(format!("programmes/{programme}/cycles/{year}/reviewGroups/{id}")))?;
    group_from(conn, &row).await
}

pub async fn list_review_groups(
    conn: &mut Conn,
    programme: &str,
    year: i64,
    page: &Page,
) -> Result<Vec<ReviewGroupRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {GROUP_COLUMNS} FROM review_groups
         WHERE programme_id = $1 AND year = $2 AND id > $3 ORDER BY id LIMIT $4"
    )))
    .bind(programme)
    .bind(year)
    .bind(&page.after)
    .bind(page.fetch())
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        out.push(group_from(conn, r).await?);
    }
    Ok(out)
}

/// The started group of `stage` that reviews an application, if any.
pub async fn group_of(
    conn: &mut Conn,
    application: &str,
    stage: &str,
) -> Result<Option<ReviewGroupRow>> {
    let row = sqlx::query(
        "SELECT g.programme_id, g.year, g.id FROM review_group_applications a
         JOIN review_groups g ON g.id = a.group_id
         WHERE a.application_id = $1 AND a.stage = $2",
    )
    .bind(application)
    .bind(stage)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        None => Ok(None),
        Some(r) => {
            let (p, y, id): (String, i64, String) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
            Ok(Some(get_review_group(conn, &p, y, &id).await?))
        }
    }
}

/// Records that the site group stopped the visit; one stop per application.
pub async fn insert_site_stop(
    conn: &mut Conn,
    application: &str,
    finding: &str,
    by: &str,
    now_micros: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO site_stops (application_id, finding, reported_by, reported_micros)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (application_id) DO UPDATE SET finding = excluded.finding,
             reported_by = excluded.reported_by, reported_micros = excluded.reported_micros,
             resolved_micros = NULL, resolution = ''",
    )
    .bind(application)
    .bind(finding)
    .bind(by)
    .bind(now_micros)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The office found the stop unfounded: the visit resumes (Art. 16(5)3). False when no
/// unresolved stop was there.
pub async fn resolve_site_stop(
    conn: &mut Conn,
    application: &str,
    resolution: &str,
    now_micros: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE site_stops SET resolved_micros = $1, resolution = $2
         WHERE application_id = $3 AND resolved_micros IS NULL",
    )
    .bind(now_micros)
    .bind(resolution)
    .bind(application)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The finding of a stopped site visit, if the visit is stopped (and not found unfounded).
pub async fn site_stop(conn: &mut Conn, application: &str) -> Result<Option<String>> {
    let row = sqlx::query(
        "SELECT finding FROM site_stops WHERE application_id = $1 AND resolved_micros IS NULL",
    )
    .bind(application)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| r.try_get(0).map_err(Error::from)).transpose()
}

/// The group's members, in order, the leader marked.
async fn insert_members(conn: &mut Conn, g: &ReviewGroupRow) -> Result<()> {
    for (i, (reviewer, leader)) in g.members.iter().enumerate() {
        sqlx::query(
            "INSERT INTO review_members (group_id, reviewer, leader, position) VALUES ($1, $2, $3, $4)",
        )
        .bind(&g.id)
        .bind(reviewer)
        .bind(i64::from(*leader))
        .bind(i as i64)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The started groups seated from `panel` (programmes/{p}/panels/{id}) or from one of `draws`.
pub async fn groups_seated_by(
    conn: &mut Conn,
    panel: &str,
    draws: &[String],
) -> Result<Vec<ReviewGroupRow>> {
    let mut out: Vec<ReviewGroupRow> = Vec::new();
    for (column, value) in
        std::iter::once(("panel", panel)).chain(draws.iter().map(|d| ("draw", d.as_str())))
    {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {GROUP_COLUMNS} FROM review_groups WHERE state = 'STARTED' AND {column} = $1 ORDER BY id"
        )))
        .bind(value)
        .fetch_all(&mut *conn)
        .await?;
        for r in &rows {
            let g = group_from(conn, r).await?;
            if !out.iter().any(|x| x.id == g.id) {
                out.push(g);
            }
        }
    }
    Ok(out)
}

/// Seats `g.members` and `g.draw`/`g.panel` as they now stand: the members
/// replace the group's, and with them who may read its applications.
pub async fn reseat_group(conn: &mut Conn, g: &ReviewGroupRow, now_micros: i64) -> Result<()> {
    sqlx::query(
        "UPDATE review_groups SET draw = $1, panel = $2, updated_micros = $3 WHERE id = $4",
    )
    .bind(&g.draw)
    .bind(&g.panel)
    .bind(now_micros)
    .bind(&g.id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM review_members WHERE group_id = $1")
        .bind(&g.id)
        .execute(&mut *conn)
        .await?;
    insert_members(conn, g).await
}
