//! The reviewer pool's tables, on SQLite and PostgreSQL alike. Stores move data; the rules
//! are in `domain/`. Every function that changes something takes the caller's transaction,
//! so the change, its audit record and its outbox event commit together.

use qaward_kit::{
    Error, Result,
    clock::unix_micros,
    db::{Conn, Database},
    paging::Page,
};
use sqlx::Row;

use crate::domain::{
    draw::{Outcome, PoolEntry, Prepared},
    eligibility::{AssignmentFact, FlagFact, RelationFact, ReviewFact, ReviewerFacts},
    lifecycle::DrawState,
    panel::{Panel, Seat, SeatKind, SeatState},
    policy::DrawPolicy,
    registry::ReviewerRecord,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgrammeRow {
    pub id: String,
    pub display_name: String,
    pub policy_version: i64,
    pub policy: DrawPolicy,
    pub created_micros: i64,
}

fn policy_json(p: &DrawPolicy) -> String {
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

fn programme_row(r: &sqlx::any::AnyRow) -> Result<ProgrammeRow> {
    let policy: String = r.try_get("policy")?;
    Ok(ProgrammeRow {
        id: r.try_get("id")?,
        display_name: r.try_get("display_name")?,
        policy_version: r.try_get("policy_version")?,
        policy: serde_json::from_str(&policy).map_err(Error::internal)?,
        created_micros: r.try_get("created_micros")?,
    })
}

const PROGRAMME_SELECT: &str = "SELECT p.id, p.display_name, p.policy_version, p.created_micros, d.policy
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

fn specialities_text(specs: &[String]) -> String {
    format!(" {} ", specs.join(" "))
}

/// A registry row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewerRow {
    pub record: ReviewerRecord,
    pub updated_micros: i64,
}

fn reviewer_row(r: &sqlx::any::AnyRow) -> Result<ReviewerRow> {
    let specs: String = r.try_get("specialities")?;
    Ok(ReviewerRow {
        record: ReviewerRecord {
            certificate_number: r.try_get("id")?,
            name: r.try_get("display_name")?,
            mobile: r.try_get("mobile")?,
            resident_id: r.try_get("resident_id")?,
            cert_valid_from: r.try_get("cert_valid_from")?,
            cert_valid_until: r.try_get("cert_valid_until")?,
            specialities: specs.split_whitespace().map(str::to_string).collect(),
            employer_code: r.try_get("employer_code")?,
            leader_qualified: r.try_get::<i64, _>("leader_qualified")? != 0,
            status: r.try_get("status")?,
        },
        updated_micros: r.try_get("updated_micros")?,
    })
}

const REVIEWER_COLUMNS: &str = "id, display_name, mobile, resident_id, cert_valid_from, cert_valid_until, specialities, employer_code, leader_qualified, status, updated_micros";

/// What an import changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Upserted {
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
}

/// Inserts new certificate numbers and updates changed rows; identical rows are untouched.
pub async fn upsert_reviewers(
    conn: &mut Conn,
    records: &[ReviewerRecord],
    at: time::OffsetDateTime,
) -> Result<Upserted> {
    let now = unix_micros(at);
    let mut n = Upserted::default();
    bump_registry(conn).await?;
    for r in records {
        let existing = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REVIEWER_COLUMNS} FROM reviewers WHERE id = $1"
        )))
        .bind(&r.certificate_number)
        .fetch_optional(&mut *conn)
        .await?;
        let bind = |q: sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>| {
            q.bind(r.certificate_number.clone())
                .bind(r.name.clone())
                .bind(r.mobile.clone())
                .bind(r.resident_id.clone())
                .bind(r.cert_valid_from.clone())
                .bind(r.cert_valid_until.clone())
                .bind(specialities_text(&r.specialities))
                .bind(r.employer_code.clone())
                .bind(i64::from(r.leader_qualified))
                .bind(r.status.clone())
                .bind(now)
        };
        match existing {
            None => {
                bind(sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO reviewers ({REVIEWER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                ))))
                .execute(&mut *conn)
                .await?;
                n.created += 1;
            }
            Some(row) if reviewer_row(&row)?.record == *r => n.unchanged += 1,
            Some(_) => {
                bind(sqlx::query(
                    "UPDATE reviewers SET display_name = $2, mobile = $3, resident_id = $4, cert_valid_from = $5,
                     cert_valid_until = $6, specialities = $7, employer_code = $8, leader_qualified = $9,
                     status = $10, updated_micros = $11 WHERE id = $1",
                ))
                .execute(&mut *conn)
                .await?;
                n.updated += 1;
            }
        }
    }
    Ok(n)
}

pub async fn get_reviewer(conn: &mut Conn, id: &str) -> Result<ReviewerRow> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {REVIEWER_COLUMNS} FROM reviewers WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| Error::not_found(format!("reviewers/{id}")))?;
    reviewer_row(&row)
}

/// Reviewers by certificate number, optionally with a speciality (a code and those below it)
/// or a name containing `query`.
pub async fn list_reviewers(
    db: &Database,
    page: &Page,
    speciality: &str,
    query: &str,
) -> Result<Vec<ReviewerRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {REVIEWER_COLUMNS} FROM reviewers
         WHERE id > $1 AND ($2 = '' OR specialities LIKE $3) AND ($4 = '' OR display_name LIKE $5)
         ORDER BY id LIMIT $6"
    )))
    .bind(&page.after)
    .bind(speciality)
    .bind(format!("% {speciality}%"))
    .bind(query)
    .bind(format!("%{query}%"))
    .bind(page.fetch())
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(reviewer_row).collect()
}

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
    bump_registry(conn).await?;
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

fn relation_row(r: &sqlx::any::AnyRow) -> Result<RelationRow> {
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
    bump_registry(conn).await?;
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

fn flag_row(r: &sqlx::any::AnyRow) -> Result<FlagRow> {
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
    bump_registry(conn).await?;
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

/// The registry's version: every change to reviewers, relations or flags bumps it in the
/// same transaction, so facts read at one version are exactly the facts of that version.
pub async fn registry_version(conn: &mut Conn) -> Result<i64> {
    let row = sqlx::query("SELECT version FROM registry_version WHERE id = 1")
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get(0)?)
}

async fn bump_registry(conn: &mut Conn) -> Result<()> {
    sqlx::query("UPDATE registry_version SET version = version + 1 WHERE id = 1")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

type Candidates = Vec<(PoolEntry, ReviewerFacts)>;

/// The registry part of a draw's facts, kept per process and keyed by the registry version,
/// the specialities and the applicants: a draw reads 5,000 candidates and their relations
/// only when the registry has changed since the last draw with the same key.
#[derive(Default)]
pub struct RegistryCache {
    entries: std::sync::Mutex<Vec<CacheEntry>>,
}

/// (registry version, specialities, applicants, facts).
type CacheEntry = (i64, Vec<String>, Vec<String>, std::sync::Arc<Candidates>);

impl RegistryCache {
    const CAPACITY: usize = 8;

    fn get(
        &self,
        version: i64,
        needs: &[String],
        enterprises: &[String],
    ) -> Option<std::sync::Arc<Candidates>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .iter()
            .find(|(v, n, e, _)| *v == version && n == needs && e == enterprises)
            .map(|(_, _, _, c)| c.clone())
    }

    fn put(
        &self,
        version: i64,
        needs: &[String],
        enterprises: &[String],
        c: std::sync::Arc<Candidates>,
    ) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|(v, _, _, _)| *v == version);
        if entries.len() >= Self::CAPACITY {
            entries.remove(0);
        }
        entries.push((version, needs.to_vec(), enterprises.to_vec(), c));
    }
}

/// Reviewers with a speciality meeting one of `needs` (all when empty), with their relations
/// to `enterprises` and their open flags: what only registry changes can change.
async fn registry_facts(
    conn: &mut Conn,
    needs: &[String],
    enterprises: &[String],
) -> Result<Candidates> {
    let mut filter = String::new();
    for i in 0..needs.len() {
        filter.push_str(if i == 0 { " AND (" } else { " OR " });
        filter.push_str(&format!("specialities LIKE ${}", i + 1));
    }
    if !needs.is_empty() {
        filter.push(')');
    }
    // Only what the rules and the draw need: no personal data is read for a draw.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id, specialities, leader_qualified, status, cert_valid_from, cert_valid_until, employer_code
         FROM reviewers WHERE status <> 'RETIRED'{filter}"
    )));
    for n in needs {
        q = q.bind(format!("% {n}%"));
    }
    let rows = q.fetch_all(&mut *conn).await?;
    let mut out: Vec<(PoolEntry, ReviewerFacts)> = Vec::with_capacity(rows.len());
    let mut index = std::collections::HashMap::new();
    // Columns by position (the SELECT above): thousands of rows, no name lookups.
    for r in &rows {
        let id: String = r.try_get(0)?;
        let specs: String = r.try_get(1)?;
        index.insert(id.clone(), out.len());
        let facts = ReviewerFacts {
            id: id.clone(),
            status: r.try_get(3)?,
            cert_valid_from: r.try_get(4)?,
            cert_valid_until: r.try_get(5)?,
            employer_code: r.try_get(6)?,
            ..ReviewerFacts::default()
        };
        let entry = PoolEntry {
            id,
            specialities: specs.split_whitespace().map(str::to_string).collect(),
            leader: r.try_get::<i64, _>(2)? != 0,
        };
        out.push((entry, facts));
    }
    for e in enterprises {
        for r in sqlx::query(
            "SELECT id, reviewer_id, kind, start_date, end_date FROM relations WHERE enterprise_code = $1",
        )
        .bind(e)
        .fetch_all(&mut *conn)
        .await?
        {
            let reviewer: String = r.try_get(1)?;
            if let Some(&i) = index.get(&reviewer) {
                let id: String = r.try_get(0)?;
                out[i].1.relations.push(RelationFact {
                    name: format!("reviewers/{reviewer}/relations/{id}"),
                    enterprise_code: e.clone(),
                    kind: r.try_get(2)?,
                    start_date: r.try_get(3)?,
                    end_date: r.try_get(4)?,
                });
            }
        }
    }
    for r in sqlx::query("SELECT id, reviewer_id, kind, start_date, end_date, note, resolved_micros FROM flags WHERE resolved_micros IS NULL")
        .fetch_all(&mut *conn)
        .await?
    {
        let f = flag_row(&r)?;
        if let Some(&i) = index.get(&f.reviewer_id) {
            out[i].1.flags.push(FlagFact {
                name: format!("reviewers/{}/flags/{}", f.reviewer_id, f.id),
                kind: f.kind,
                start_date: f.start_date,
                end_date: f.end_date,
                resolved: false,
            });
        }
    }
    Ok(out)
}

/// Everything the eligibility rules need about the reviewers who could be drawn: the
/// registry facts (from the cache when the registry has not changed), their reviews of the
/// applicants, their bookings in the window and this programme's assignments in its year.
pub async fn candidate_facts(
    conn: &mut Conn,
    cache: &RegistryCache,
    programme: &str,
    needs: &[String],
    enterprises: &[String],
    from: &str,
    to: &str,
) -> Result<Candidates> {
    let version = registry_version(conn).await?;
    let registry = match cache.get(version, needs, enterprises) {
        Some(c) => c,
        None => {
            let c = std::sync::Arc::new(registry_facts(conn, needs, enterprises).await?);
            // Cache only what was read entirely at one version.
            if registry_version(conn).await? == version {
                cache.put(version, needs, enterprises, c.clone());
            }
            c
        }
    };
    let mut out: Candidates = registry.as_ref().clone();
    let index: std::collections::HashMap<String, usize> = out
        .iter()
        .enumerate()
        .map(|(i, (e, _))| (e.id.clone(), i))
        .collect();
    for e in enterprises {
        for r in sqlx::query(
            "SELECT reviewer_id, window_start FROM assignments WHERE enterprise_code = $1",
        )
        .bind(e)
        .fetch_all(&mut *conn)
        .await?
        {
            let id: String = r.try_get("reviewer_id")?;
            if let Some(&i) = index.get(&id) {
                out[i].1.reviews.push(ReviewFact {
                    enterprise_code: e.clone(),
                    review_date: r.try_get("window_start")?,
                });
            }
        }
    }
    for r in sqlx::query("SELECT reviewer_id, day FROM bookings WHERE day >= $1 AND day <= $2")
        .bind(from)
        .bind(to)
        .fetch_all(&mut *conn)
        .await?
    {
        let id: String = r.try_get("reviewer_id")?;
        if let Some(&i) = index.get(&id) {
            out[i].1.booked_days.push(r.try_get("day")?);
        }
    }
    let year = &from[..4];
    for r in sqlx::query(
        "SELECT DISTINCT reviewer_id, panel_id, window_start, window_end FROM assignments
         WHERE programme_id = $1 AND window_start LIKE $2",
    )
    .bind(programme)
    .bind(format!("{year}%"))
    .fetch_all(&mut *conn)
    .await?
    {
        let id: String = r.try_get("reviewer_id")?;
        if let Some(&i) = index.get(&id) {
            out[i].1.assignments.push(AssignmentFact {
                window_start: r.try_get("window_start")?,
                window_end: r.try_get("window_end")?,
            });
        }
    }
    Ok(out)
}

/// The facts about one reviewer, for a conflict check.
pub async fn reviewer_facts(
    conn: &mut Conn,
    id: &str,
    enterprises: &[String],
) -> Result<ReviewerFacts> {
    let rec = get_reviewer(conn, id).await?.record;
    let mut facts = ReviewerFacts {
        id: rec.certificate_number.clone(),
        status: rec.status,
        cert_valid_from: rec.cert_valid_from,
        cert_valid_until: rec.cert_valid_until,
        employer_code: rec.employer_code,
        ..ReviewerFacts::default()
    };
    for r in sqlx::query(
        "SELECT id, reviewer_id, enterprise_code, kind, start_date, end_date, note FROM relations WHERE reviewer_id = $1",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    {
        let rel = relation_row(&r)?;
        if enterprises.contains(&rel.enterprise_code) {
            facts.relations.push(RelationFact {
                name: format!("reviewers/{id}/relations/{}", rel.id),
                enterprise_code: rel.enterprise_code,
                kind: rel.kind,
                start_date: rel.start_date,
                end_date: rel.end_date,
            });
        }
    }
    for r in sqlx::query(
        "SELECT id, reviewer_id, kind, start_date, end_date, note, resolved_micros FROM flags
         WHERE reviewer_id = $1 AND resolved_micros IS NULL",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    {
        let f = flag_row(&r)?;
        facts.flags.push(FlagFact {
            name: format!("reviewers/{id}/flags/{}", f.id),
            kind: f.kind,
            start_date: f.start_date,
            end_date: f.end_date,
            resolved: false,
        });
    }
    for r in
        sqlx::query("SELECT enterprise_code, window_start FROM assignments WHERE reviewer_id = $1")
            .bind(id)
            .fetch_all(&mut *conn)
            .await?
    {
        facts.reviews.push(ReviewFact {
            enterprise_code: r.try_get("enterprise_code")?,
            review_date: r.try_get("window_start")?,
        });
    }
    Ok(facts)
}

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
}

pub async fn insert_draw(
    conn: &mut Conn,
    id: &str,
    programme: &str,
    prepared_text: &str,
    inputs_hash: &str,
    at: time::OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO draws (id, programme_id, state, prepared, inputs_hash, created_micros)
         VALUES ($1, $2, 'PREPARED', $3, $4, $5)",
    )
    .bind(id)
    .bind(programme)
    .bind(prepared_text)
    .bind(inputs_hash)
    .bind(unix_micros(at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn draw_row(r: &sqlx::any::AnyRow) -> Result<DrawRow> {
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
    })
}

const DRAW_COLUMNS: &str = "id, programme_id, state, prepared, inputs_hash, entropy, outcome, failure, panel_id, created_micros";

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
    entropy: &str,
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

async fn insert_seat(conn: &mut Conn, panel: &str, s: &Seat) -> Result<()> {
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

fn panel_row(r: &sqlx::any::AnyRow) -> Result<Panel> {
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

async fn with_seats(conn: &mut Conn, mut p: Panel) -> Result<Panel> {
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

const PANEL_COLUMNS: &str = "id, programme_id, draw_id, purpose, enterprise_codes, window_start, window_end, released, respond_by_micros";

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
