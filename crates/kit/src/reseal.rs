//! Every sealed column brought under the current field key: values an earlier version
//! kept in clear are sealed, values sealed under an older key are opened and sealed again under
//! the current one. This is how plaintext migrates in place and how a key rotation
//! (`qaward keys rotate`) takes effect: each service runs it at start, in batches, each batch a
//! transaction with its audit record (`fields.reseal`), so a crash loses nothing and the next
//! start goes on from where the work stands (a row is under the current key or it is not).
//!
//! A service names its sealed columns once ([`SealedColumn`]); [`pending`] counts what is left,
//! for `qaward keys status`.

use sqlx::Row;

use crate::{
    Result,
    audit::{self, AuditRecord},
    db::Database,
    fields::FieldKeys,
};

/// How a column holds its sealed values.
#[derive(Debug, Clone, Copy)]
pub enum Form {
    /// Text sealed with [`FieldKeys::seal`].
    Text,
    /// Bytes sealed with [`FieldKeys::seal_bytes`] (the request log's stored answers).
    Bytes,
    /// Text sealed whole whose plaintext an earlier version kept with values sealed one by one
    /// inside it: the function turns an opened value into its current plaintext form.
    TextWith(fn(&FieldKeys, String) -> std::result::Result<String, crate::fields::FieldError>),
}

/// One column of personal data a service seals.
#[derive(Debug, Clone, Copy)]
pub struct SealedColumn {
    pub table: &'static str,
    /// The columns of the table's primary key (text).
    pub key: &'static [&'static str],
    pub column: &'static str,
    pub form: Form,
}

/// The request log's stored answers, which every service keeps (sealed since R-54).
pub const REQUEST_LOG: SealedColumn = SealedColumn {
    table: "request_log",
    key: &["method", "subject", "request_id"],
    column: "response",
    form: Form::Bytes,
};

/// What a run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Resealed {
    /// Values now sealed under the current key.
    pub resealed: u64,
    /// Values that did not open (a key the key file no longer holds, or damage): left as
    /// they are and counted, never guessed at.
    pub unreadable: u64,
}

fn current_prefix(keys: &FieldKeys, form: Form) -> Vec<u8> {
    keys.current_header(matches!(form, Form::Bytes))
}

/// The condition on a row whose value is not under the current key (`$1` the prefix; its
/// length is written in, an integer both databases take as one).
fn stale(c: &SealedColumn, prefix: &[u8]) -> String {
    format!(
        "length({col}) > 0 AND substr({col}, 1, {n}) <> $1",
        col = c.column,
        n = prefix.len()
    )
}

fn bind_prefix<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    c: &SealedColumn,
    prefix: &[u8],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    match c.form {
        Form::Bytes => q.bind(prefix.to_vec()),
        Form::Text | Form::TextWith(_) => q.bind(String::from_utf8_lossy(prefix).into_owned()),
    }
}

/// How many values of each column are not yet under the current key.
pub async fn pending(
    db: &Database,
    keys: &FieldKeys,
    columns: &[SealedColumn],
) -> Result<Vec<(String, i64)>> {
    let mut out = Vec::new();
    for c in columns {
        let prefix = current_prefix(keys, c.form);
        let sql = format!(
            "SELECT COUNT(*) AS n FROM {} WHERE {}",
            c.table,
            stale(c, &prefix)
        );
        let q = bind_prefix(sqlx::query(sqlx::AssertSqlSafe(sql)), c, &prefix);
        let n: i64 = q.fetch_one(db.pool()).await?.try_get("n")?;
        out.push((format!("{}.{}", c.table, c.column), n));
    }
    Ok(out)
}

/// Brings every value of `columns` under the current key, `batch` rows a transaction, each
/// with its audit record. A value changed by a concurrent call is left to it (the update is
/// guarded by the value read).
pub async fn reseal(
    db: &Database,
    keys: &FieldKeys,
    service: &str,
    issuer: &str,
    now: time::OffsetDateTime,
    columns: &[SealedColumn],
    batch: i64,
) -> Result<Resealed> {
    let mut total = Resealed::default();
    for c in columns {
        let prefix = current_prefix(keys, c.form);
        let keycols = c.key.join(", ");
        let mut after: Option<Vec<String>> = None;
        loop {
            // Keyset pagination: each row is visited once a run, so a value that does not
            // open is counted once and not read again and again.
            let (cursor, first_arg) = match &after {
                None => (String::new(), 2),
                Some(_) => {
                    let params: Vec<String> =
                        (0..c.key.len()).map(|i| format!("${}", i + 2)).collect();
                    (
                        format!(" AND ({keycols}) > ({})", params.join(", ")),
                        2 + c.key.len(),
                    )
                }
            };
            let sql = format!(
                "SELECT {keycols}, {col} FROM {table} WHERE {stale}{cursor}
                 ORDER BY {keycols} LIMIT ${first_arg}",
                col = c.column,
                table = c.table,
                stale = stale(c, &prefix),
            );
            let mut q = bind_prefix(sqlx::query(sqlx::AssertSqlSafe(sql)), c, &prefix);
            for v in after.iter().flatten() {
                q = q.bind(v.clone());
            }
            let mut tx = db.begin().await?;
            let rows = q.bind(batch).fetch_all(&mut *tx).await?;
            let Some(last) = rows.last() else { break };
            after = Some(
                c.key
                    .iter()
                    .map(|k| last.try_get::<String, _>(*k))
                    .collect::<std::result::Result<_, _>>()?,
            );
            let mut done = Resealed::default();
            for row in &rows {
                let ids: Vec<String> = c
                    .key
                    .iter()
                    .map(|k| row.try_get::<String, _>(*k))
                    .collect::<std::result::Result<_, _>>()?;
                let guard: String = c
                    .key
                    .iter()
                    .enumerate()
                    .map(|(i, k)| format!(" AND {k} = ${}", i + 3))
                    .collect();
                let update = format!(
                    "UPDATE {table} SET {col} = $1 WHERE {col} = $2{guard}",
                    table = c.table,
                    col = c.column
                );
                let q = match c.form {
                    Form::Bytes => {
                        let old: Vec<u8> = row.try_get(c.column)?;
                        match keys.open_bytes(&old) {
                            Ok(plain) => sqlx::query(sqlx::AssertSqlSafe(update))
                                .bind(keys.seal_bytes(&plain))
                                .bind(old),
                            Err(_) => {
                                done.unreadable += 1;
                                continue;
                            }
                        }
                    }
                    Form::Text | Form::TextWith(_) => {
                        let old: String = row.try_get(c.column)?;
                        let plain = keys.open(&old).and_then(|p| match c.form {
                            Form::TextWith(current) => current(keys, p),
                            _ => Ok(p),
                        });
                        match plain {
                            Ok(plain) => sqlx::query(sqlx::AssertSqlSafe(update))
                                .bind(keys.seal(&plain))
                                .bind(old),
                            Err(_) => {
                                done.unreadable += 1;
                                continue;
                            }
                        }
                    }
                };
                let mut q = q;
                for id in ids {
                    q = q.bind(id);
                }
                done.resealed += q.execute(&mut *tx).await?.rows_affected();
            }
            if done.resealed + done.unreadable > 0 {
                let resource = format!("{}.{}", c.table, c.column);
                let record = AuditRecord::by_service(issuer, service, "fields.reseal", resource)
                    .because(format!(
                        "R-54: sealed under the current field key {}",
                        keys.current_key_id()
                    ))
                    .with_detail(serde_json::json!({
                        "rows": done.resealed, "unreadable": done.unreadable,
                        "key": keys.current_key_id(),
                    }));
                audit::append(&mut tx, now, &record).await?;
            }
            tx.commit().await?;
            total.resealed += done.resealed;
            total.unreadable += done.unreadable;
        }
    }
    Ok(total)
}

/// Passes in a row that find nothing to re-seal before the next pass waits an hour.
const QUIET_PASSES: u32 = 5;

/// Re-seals the service's columns in the background from its start: passes every 2 s until
/// five in a row find nothing (a value copied from one sealed under the older key can arrive
/// after the first), then hourly; a failed pass is tried again an hour later.
pub fn spawn(
    db: Database,
    ctx: &crate::server::ServiceContext,
    service: &'static str,
    columns: &'static [SealedColumn],
) {
    let (keys, clock, issuer) = (
        ctx.fields.clone(),
        ctx.clock.clone(),
        ctx.config.auth.issuer.clone(),
    );
    tokio::spawn(async move {
        // A value sealed under an older key can still arrive after a pass: a delivery made
        // from a message sealed before the rotation copies its text into the inbox. So passes
        // repeat every few seconds until several in a row find nothing, then every hour.
        let mut quiet = 0;
        loop {
            let wait = match reseal(&db, &keys, service, &issuer, clock.now(), columns, 500).await {
                Ok(r) => {
                    if r.resealed > 0 {
                        tracing::info!(
                            rows = r.resealed,
                            service,
                            key = keys.current_key_id(),
                            "personal data sealed under the current key (R-54)"
                        );
                    }
                    if r.unreadable > 0 {
                        tracing::warn!(
                            rows = r.unreadable,
                            service,
                            "sealed values that do not open with the key file; left as they are"
                        );
                    }
                    quiet = if r.resealed > 0 { 0 } else { quiet + 1 };
                    if quiet >= QUIET_PASSES {
                        std::time::Duration::from_secs(3_600)
                    } else {
                        std::time::Duration::from_secs(2)
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, service, "re-sealing failed; tried again in an hour");
                    std::time::Duration::from_secs(3_600)
                }
            };
            tokio::time::sleep(wait).await;
        }
    });
}
