//! What the eligibility rules read of the registry, for a draw's candidates or one reviewer,
//! and the per-process cache of the registry's part that changes only with an import.

use qaward_kit::{Result, db::Conn};
use sqlx::Row;

use crate::domain::{
    draw::PoolEntry,
    eligibility::{AssignmentFact, FlagFact, RelationFact, ReviewFact, ReviewerFacts},
};

use super::{changed_between, flag_row, get_reviewer, registry_version, relation_row};

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
/// to `enterprises` and their open flags: what only registry changes can change. With `only`,
/// those of these reviewers alone (the ones a registry change touched).
pub(super) async fn registry_facts(
    conn: &mut Conn,
    needs: &[String],
    enterprises: &[String],
    only: Option<&[String]>,
) -> Result<Candidates> {
    let mut filter = String::new();
    for i in 0..needs.len() {
        filter.push_str(if i == 0 { " AND (" } else { " OR " });
        filter.push_str(&format!("specialities LIKE ${}", i + 1));
    }
    if !needs.is_empty() {
        filter.push(')');
    }
    if let Some(ids) = only {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let first = needs.len() + 1;
        let marks: Vec<String> = (0..ids.len()).map(|i| format!("${}", first + i)).collect();
        filter.push_str(&format!(" AND id IN ({})", marks.join(", ")));
    }
    // Only what the rules and the draw need: no personal data is read for a draw.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id, specialities, leader_qualified, status, cert_valid_from, cert_valid_until, employer_code
         FROM reviewers WHERE status <> 'RETIRED'{filter}"
    )));
    for n in needs {
        q = q.bind(format!("% {n}%"));
    }
    for id in only.unwrap_or_default() {
        q = q.bind(id.clone());
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
    // Open flags are few: read them all, keep those of the reviewers read.
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
    let registry = match cache.latest(needs, enterprises) {
        Some((v, c)) if v == version => c,
        cached => {
            // Brought up to date from the cached version by re-reading the reviewers changed
            // since, when they are few; read whole otherwise.
            let patched = match cached {
                Some((v, c)) if v < version => {
                    match changed_between(conn, v, version, PATCH_LIMIT).await? {
                        Some(ids) => {
                            let fresh =
                                registry_facts(conn, needs, enterprises, Some(&ids)).await?;
                            Some(patch(&c, &ids, fresh))
                        }
                        None => None,
                    }
                }
                _ => None,
            };
            let c = std::sync::Arc::new(match patched {
                Some(p) => p,
                None => registry_facts(conn, needs, enterprises, None).await?,
            });
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

/// Reviewers changed since the cached version beyond which the whole registry is read again.
const PATCH_LIMIT: i64 = 2_000;

/// `base` with the reviewers `changed` replaced by what `fresh` holds of them (a reviewer no
/// longer matching, or retired, is gone).
fn patch(base: &Candidates, changed: &[String], fresh: Candidates) -> Candidates {
    let gone: std::collections::HashSet<&str> = changed.iter().map(String::as_str).collect();
    let mut out: Candidates = base
        .iter()
        .filter(|(e, _)| !gone.contains(e.id.as_str()))
        .cloned()
        .collect();
    out.extend(fresh);
    out
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

    /// The latest facts cached for these specialities and applicants, with their version.
    fn latest(
        &self,
        needs: &[String],
        enterprises: &[String],
    ) -> Option<(i64, std::sync::Arc<Candidates>)> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .iter()
            .find(|(_, n, e, _)| n == needs && e == enterprises)
            .map(|(v, _, _, c)| (*v, c.clone()))
    }

    /// Keeps `c` as the facts of this key at `version` (one entry per key, the latest first;
    /// the least recently stored key goes when full).
    fn put(
        &self,
        version: i64,
        needs: &[String],
        enterprises: &[String],
        c: std::sync::Arc<Candidates>,
    ) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries
            .iter()
            .any(|(v, n, e, _)| n == needs && e == enterprises && *v > version)
        {
            return;
        }
        entries.retain(|(_, n, e, _)| !(n == needs && e == enterprises));
        if entries.len() >= Self::CAPACITY {
            entries.remove(0);
        }
        entries.push((version, needs.to_vec(), enterprises.to_vec(), c));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> (PoolEntry, ReviewerFacts) {
        (
            PoolEntry {
                id: id.into(),
                specialities: vec!["C13".into()],
                leader: false,
            },
            ReviewerFacts {
                id: id.into(),
                ..ReviewerFacts::default()
            },
        )
    }

    #[test]
    fn a_patch_replaces_the_changed_reviewers_and_drops_those_no_longer_read() {
        let base = vec![entry("A"), entry("B"), entry("C")];
        let mut b = entry("B");
        b.1.status = "SUSPENDED".into();
        // B changed, C changed and is no longer read (retired), D is new.
        let got = patch(
            &base,
            &["B".into(), "C".into(), "D".into()],
            vec![b.clone(), entry("D")],
        );
        let ids: Vec<&str> = got.iter().map(|(e, _)| e.id.as_str()).collect();
        assert_eq!(ids, ["A", "B", "D"]);
        assert_eq!(got[1].1.status, "SUSPENDED");
    }

    #[test]
    fn the_cache_keeps_the_latest_version_of_each_key() {
        let cache = RegistryCache::default();
        let key = (vec!["C13".to_string()], vec!["e".to_string()]);
        cache.put(3, &key.0, &key.1, std::sync::Arc::new(vec![entry("A")]));
        cache.put(2, &key.0, &key.1, std::sync::Arc::new(Vec::new()));
        assert_eq!(
            cache.latest(&key.0, &key.1).map(|(v, c)| (v, c.len())),
            Some((3, 1))
        );
        cache.put(5, &key.0, &key.1, std::sync::Arc::new(Vec::new()));
        assert_eq!(cache.latest(&key.0, &key.1).map(|(v, _)| v), Some(5));
        assert!(cache.latest(&key.0, &[]).is_none());
    }
}
