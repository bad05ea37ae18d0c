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

use crate::domain::registry::ReviewerRecord;

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
        match existing {
            None => {
                bind(sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO reviewers ({REVIEWER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                ))))
                .execute(&mut *conn)
                .await?;
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
                n.updated += 1;
            }
        }
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

pub(super) async fn bump_registry(conn: &mut Conn) -> Result<()> {
    sqlx::query("UPDATE registry_version SET version = version + 1 WHERE id = 1")
        .execute(&mut *conn)
        .await?;
    Ok(())
}
