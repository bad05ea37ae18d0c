//! What the eligibility rules read of the registry, for a draw's candidates or one reviewer,
//! and the per-process cache of the registry's part that changes only with an import.

use qaward_kit::{Result, db::Conn};
use sqlx::Row;

use crate::domain::{
    draw::PoolEntry,
    eligibility::{AssignmentFact, FlagFact, RelationFact, ReviewFact, ReviewerFacts},
};

use super::{flag_row, get_reviewer, registry_version, relation_row};

pub(super) type Candidates = Vec<(PoolEntry, ReviewerFacts)>;

/// The registry part of a draw's facts, kept per process and keyed by the registry version,
/// the specialities and the applicants: a draw reads 5,000 candidates and their relations
/// only when the registry has changed since the last draw with the same key.
#[derive(Default)]
pub struct RegistryCache {
    entries: std::sync::Mutex<Vec<CacheEntry>>,
}

/// (registry version, specialities, applicants, facts).
pub(super) type CacheEntry = (i64, Vec<String>, Vec<String>, std::sync::Arc<Candidates>);

/// Reviewers with a speciality meeting one of `needs` (all when empty), with their relations
/// to `enterprises` and their open flags: what only registry changes can change.
pub(super) async fn registry_facts(
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
