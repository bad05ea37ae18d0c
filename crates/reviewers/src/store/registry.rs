//! The registry's reviewers, imported and read; its version, which the candidate cache keys on.

use qaward_kit::fields::FieldKeys;
use qaward_kit::reseal::{Form, REQUEST_LOG, SealedColumn};
use qaward_kit::{
    Error, Result,
    clock::unix_micros,
    db::{Conn, Database},
    paging::Page,
};
use sqlx::Row;

use crate::domain::registry::{Booked, ReviewerRecord};

pub(super) fn specialities_text(specs: &[String]) -> String {
    format!(" {} ", specs.join(" "))
}

/// A registry row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewerRow {
    pub record: ReviewerRecord,
    pub updated_micros: i64,
}

pub(super) fn reviewer_row(r: &sqlx::any::AnyRow) -> Result<ReviewerRow> {
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

pub(super) const REVIEWER_COLUMNS: &str = "id, display_name, mobile, resident_id, cert_valid_from, cert_valid_until, specialities, employer_code, leader_qualified, status, updated_micros";

/// What an import changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Upserted {
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
}

/// Inserts new certificate numbers and updates changed rows; identical rows are untouched.
/// Personal data is stored as little as its purpose needs: the mobile number sealed
/// with `keys` (the office contacts a drawn reviewer), the resident ID only minimised — a blind
/// index and its last four characters (no rule of the award uses it); the rest in clear.
pub async fn upsert_reviewers(
    conn: &mut Conn,
    records: &[ReviewerRecord],
    at: time::OffsetDateTime,
    keys: &FieldKeys,
) -> Result<Upserted> {
    let now = unix_micros(at);
    let mut n = Upserted::default();
    let version = bump_registry(conn).await?;
    let mut touched = Vec::new();
    for r in records {
        let existing = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REVIEWER_COLUMNS}, erased_micros FROM reviewers WHERE id = $1"
        )))
        .bind(&r.certificate_number)
        .fetch_optional(&mut *conn)
        .await?;
        let bind = |q: sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>| {
            q.bind(r.certificate_number.clone())
                .bind(r.name.clone())
                .bind(keys.seal(&r.mobile))
                .bind(keys.minimise(&r.resident_id))
                .bind(r.cert_valid_from.clone())
                .bind(r.cert_valid_until.clone())
                .bind(specialities_text(&r.specialities))
                .bind(r.employer_code.clone())
                .bind(i64::from(r.leader_qualified))
                .bind(r.status.clone())
                .bind(now)
        };
        // A reviewer whose data was erased at their request (PIPL Art. 47) stays erased and
        // retired: the registry's export does not bring it back.
        let erased = match &existing {
            Some(row) => row.try_get::<Option<i64>, _>("erased_micros")?.is_some(),
            None => false,
        };
        let kept;
        let r = if erased {
            kept = ReviewerRecord {
                mobile: String::new(),
                resident_id: String::new(),
                status: "RETIRED".into(),
                ..r.clone()
            };
            &kept
        } else {
            r
        };
        match existing {
            None => {
                bind(sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO reviewers ({REVIEWER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                ))))
                .execute(&mut *conn)
                .await?;
                touched.push(r.certificate_number.clone());
                n.created += 1;
            }
            Some(row) if opened(reviewer_row(&row)?.record, keys)? == as_kept(r, keys) => {
                n.unchanged += 1
            }
            Some(_) => {
                bind(sqlx::query(
                    "UPDATE reviewers SET display_name = $2, mobile = $3, resident_id = $4, cert_valid_from = $5,
                     cert_valid_until = $6, specialities = $7, employer_code = $8, leader_qualified = $9,
                     status = $10, updated_micros = $11 WHERE id = $1",
                ))
                .execute(&mut *conn)
                .await?;
                touched.push(r.certificate_number.clone());
                n.updated += 1;
            }
        }
    }
    for part in touched.chunks(500) {
        changed_all(conn, version, part).await?;
    }
    Ok(n)
}

/// A stored record with its mobile opened (legacy plaintext reads as is); the resident ID
/// stays as kept.
pub fn opened(mut rec: ReviewerRecord, keys: &FieldKeys) -> Result<ReviewerRecord> {
    rec.mobile = keys.open(&rec.mobile).map_err(Error::internal)?;
    Ok(rec)
}

/// An imported record as the store keeps it, to compare with an opened stored one.
fn as_kept(r: &ReviewerRecord, keys: &FieldKeys) -> ReviewerRecord {
    ReviewerRecord {
        resident_id: keys.minimise(&r.resident_id),
        ..r.clone()
    }
}

/// A reviewer corrects their own mobile number (PIPL Art. 46): stored sealed.
pub async fn correct_mobile(
    conn: &mut Conn,
    id: &str,
    sealed: &str,
    at: i64,
) -> Result<ReviewerRow> {
    let done = sqlx::query(
        "UPDATE reviewers SET mobile = $1, updated_micros = $2 WHERE id = $3 AND erased_micros IS NULL",
    )
    .bind(sealed)
    .bind(at)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    let row = get_reviewer(conn, id).await?;
    if done.rows_affected() == 0 {
        return Err(Error::rule(
            "R-54",
            "ERASED",
            format!("reviewers/{id}: their data was erased at their request (PIPL Art. 47)"),
        ));
    }
    Ok(row)
}

/// The days `id` is booked from `today` on, with their panels, in order.
pub async fn booked_from(conn: &mut Conn, id: &str, today: &str) -> Result<Vec<Booked>> {
    let rows = sqlx::query(
        "SELECT day, panel_id FROM bookings WHERE reviewer_id = $1 AND day >= $2 ORDER BY day",
    )
    .bind(id)
    .bind(today)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Booked {
                day: r.try_get("day")?,
                panel: r.try_get("panel_id")?,
            })
        })
        .collect()
}

/// Erases a reviewer's personal data (PIPL Art. 47): the mobile number and the kept part of
/// the ID go, the reviewer is retired from the pool; name and certificate stay.
pub async fn erase_personal(conn: &mut Conn, id: &str, at: i64) -> Result<ReviewerRow> {
    let version = bump_registry(conn).await?;
    changed(conn, version, id).await?;
    sqlx::query(
        "UPDATE reviewers SET mobile = '', resident_id = '', status = 'RETIRED',
         erased_micros = $1, updated_micros = $1 WHERE id = $2",
    )
    .bind(at)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    get_reviewer(conn, id).await
}

/// The reviewers that share a resident ID with one of `ids` (by its keyed index, R-54), each
/// group in order with the ID's last four characters.
pub async fn same_person(conn: &mut Conn, ids: &[String]) -> Result<Vec<(Vec<String>, String)>> {
    let rows = sqlx::query(
        "SELECT id, resident_id FROM reviewers WHERE resident_id LIKE 'idx1:%' AND resident_id IN
           (SELECT resident_id FROM reviewers WHERE resident_id LIKE 'idx1:%'
            GROUP BY resident_id HAVING COUNT(*) > 1)
         ORDER BY resident_id, id",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for r in &rows {
        let (id, index): (String, String) = (r.try_get("id")?, r.try_get("resident_id")?);
        match groups.last_mut() {
            Some((i, members)) if *i == index => members.push(id),
            _ => groups.push((index, vec![id])),
        }
    }
    let ids: std::collections::HashSet<&String> = ids.iter().collect();
    Ok(groups
        .into_iter()
        .filter(|(_, members)| members.iter().any(|m| ids.contains(m)))
        .map(|(index, members)| {
            let last4 = index.rsplit(':').next().unwrap_or_default().to_string();
            (members, last4)
        })
        .collect())
}

/// The registry's sealed columns, brought under the current field key at start
/// ([`qaward_kit::reseal`]): plaintext an older version kept is sealed, a rotation re-seals.
pub const SEALED: &[SealedColumn] = &[
    SealedColumn {
        table: "reviewers",
        key: &["id"],
        column: "mobile",
        form: Form::Text,
    },
    REQUEST_LOG,
];

/// minimises the resident IDs older versions stored in clear (or sealed), a batch of
/// `batch` rows at a time; how many rows it changed. Resumable: a row is done or not, and a
/// rerun does what is left.
pub async fn minimise_resident_ids(db: &Database, keys: &FieldKeys, batch: i64) -> Result<u64> {
    let mut changed = 0;
    loop {
        let mut tx = db.pool().begin().await?;
        let rows = sqlx::query(
            "SELECT id, resident_id FROM reviewers
             WHERE resident_id <> '' AND resident_id NOT LIKE 'idx1:%'
             ORDER BY id LIMIT $1",
        )
        .bind(batch)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(changed);
        }
        for r in &rows {
            let id: String = r.try_get("id")?;
            let resident: String = r.try_get("resident_id")?;
            let resident = keys.minimise(&keys.open(&resident).map_err(Error::internal)?);
            sqlx::query("UPDATE reviewers SET resident_id = $1 WHERE id = $2")
                .bind(resident)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            changed += 1;
        }
        tx.commit().await?;
    }
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

/// The registry's version: every change to reviewers, relations or flags bumps it in the
/// same transaction, so facts read at one version are exactly the facts of that version.
pub async fn registry_version(conn: &mut Conn) -> Result<i64> {
    let row = sqlx::query("SELECT version FROM registry_version WHERE id = 1")
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get(0)?)
}

/// Moves the registry to its next version; returns it.
pub(super) async fn bump_registry(conn: &mut Conn) -> Result<i64> {
    let row = sqlx::query(
        "UPDATE registry_version SET version = version + 1 WHERE id = 1 RETURNING version",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get(0)?)
}

/// Records that `version` changed what a draw knows of `reviewer` (its record, a relation or a
/// flag): a cached registry re-reads that reviewer alone.
pub(super) async fn changed(conn: &mut Conn, version: i64, reviewer: &str) -> Result<()> {
    changed_all(conn, version, &[reviewer.to_string()]).await
}

/// [`changed`] for many reviewers in one statement.
async fn changed_all(conn: &mut Conn, version: i64, reviewers: &[String]) -> Result<()> {
    let marks: Vec<String> = (0..reviewers.len())
        .map(|i| format!("($1, ${})", i + 2))
        .collect();
    let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO registry_changes (version, reviewer_id) VALUES {}",
        marks.join(", ")
    )))
    .bind(version);
    for r in reviewers {
        q = q.bind(r.clone());
    }
    q.execute(&mut *conn).await?;
    Ok(())
}

/// The reviewers changed after `since` up to and including `until`; None when more than
/// `limit` (a reload is cheaper then).
pub async fn changed_between(
    conn: &mut Conn,
    since: i64,
    until: i64,
    limit: i64,
) -> Result<Option<Vec<String>>> {
    let rows = sqlx::query(
        "SELECT DISTINCT reviewer_id FROM registry_changes WHERE version > $1 AND version <= $2 LIMIT $3",
    )
    .bind(since)
    .bind(until)
    .bind(limit + 1)
    .fetch_all(&mut *conn)
    .await?;
    if rows.len() as i64 > limit {
        return Ok(None);
    }
    rows.iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect::<Result<Vec<String>>>()
        .map(Some)
}
