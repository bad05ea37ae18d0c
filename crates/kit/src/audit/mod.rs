//! The audit trail: every state change, who made it, when, what and why, appended in
//! the same transaction as the change itself.
//!
//! A record commits with its change into `audit_pending`; a sequencer appends committed records
//! to the chain in batches right after (issue 22, item 4), so writers never wait for each
//! other on the chain. Each row carries the SHA-256 of its own content and of the row before
//! it, so the rows form a chain; the single-row `audit_head` holds the last sequence number and
//! hash. The database
//! refuses UPDATE, DELETE and TRUNCATE on `audit_log`, and lets `audit_head` only move forward
//! (no reset, no delete, no TRUNCATE); someone who gets around that (dropping the triggers,
//! editing the file) is caught by [`verify`], which names the first row that was modified,
//! removed or moved. What the database owner can still do is issue 22's (a signed, externally
//! held checkpoint).

pub mod api;
pub mod checkpoint;
pub mod log;
mod offline;
#[cfg(test)]
mod vectors;

pub use checkpoint::{AuditKey, AuditPublicKey, Checkpoint, CheckpointError, RestoreStatement};
pub use offline::{Finding, Report, check_log};

use futures_util::TryStreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::{
    Result,
    auth::Caller,
    clock::unix_micros,
    db::{Conn, Database},
};

/// The hash before the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, as the service describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// The caller's identity, `{issuer}#{subject}` (`…#system:<service>` for a service's own
    /// work). Rows before an `audit.actors_qualified` row name the subject alone.
    pub actor: String,
    pub role: String,
    /// A verb in dotted form: `draw.execute`, `sheet.submit`.
    pub action: String,
    /// The resource name the change touched.
    pub resource: String,
    /// Why, in the caller's words or the rule's id.
    pub reason: String,
    /// The change itself, as JSON.
    pub detail: serde_json::Value,
}

impl AuditRecord {
    /// A record of a change made by `caller`.
    pub fn by(caller: &Caller, action: &str, resource: impl Into<String>) -> Self {
        AuditRecord {
            actor: caller.identity(),
            role: caller.role.as_str().to_string(),
            action: action.to_string(),
            resource: resource.into(),
            reason: String::new(),
            detail: serde_json::Value::Null,
        }
    }

    /// A record of work `service` does on its own account (a purge, a re-seal, a deadline),
    /// not a person's: actor `{issuer}#system:{service}`, role `service`.
    pub fn by_service(
        issuer: &str,
        service: &str,
        action: &str,
        resource: impl Into<String>,
    ) -> Self {
        AuditRecord {
            actor: crate::auth::identity(issuer, &format!("system:{service}")),
            role: crate::auth::Role::Service.as_str().to_string(),
            action: action.to_string(),
            resource: resource.into(),
            reason: String::new(),
            detail: serde_json::Value::Null,
        }
    }

    pub fn because(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

/// One stored row of the trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub seq: i64,
    pub at_micros: i64,
    pub record: AuditRecord,
    pub prev_hash: String,
    pub hash: String,
}

/// The hash of one row: SHA-256 over the previous row's hash and this row's length-prefixed
/// fields, so that no two different rows encode alike. The sequence number is not hashed:
/// order is carried by the chain itself, so a moved row shows as out of order, not modified.
pub fn row_hash(prev_hash: &str, at_micros: i64, r: &AuditRecord, detail: &str) -> String {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    field(prev_hash.as_bytes());
    field(&at_micros.to_be_bytes());
    field(r.actor.as_bytes());
    field(r.role.as_bytes());
    field(r.action.as_bytes());
    field(r.resource.as_bytes());
    field(r.reason.as_bytes());
    field(detail.as_bytes());
    hex::encode(h.finalize())
}

/// Records `record` inside the caller's transaction: it commits with the change, as a pending
/// row that takes no lock another writer needs. The [`Sequencer`] then appends it to the
/// hash chain, in batches, after the commit (issue 22, item 4); a crash in between loses
/// nothing, since the pending row is only deleted by the transaction that chains it.
pub async fn append(conn: &mut Conn, at: time::OffsetDateTime, record: &AuditRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_pending (at_micros, actor, role, action, resource, reason, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(unix_micros(at))
    .bind(&record.actor)
    .bind(&record.role)
    .bind(&record.action)
    .bind(&record.resource)
    .bind(&record.reason)
    .bind(record.detail.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Rows a sequencing transaction takes at most.
pub const SEQUENCE_BATCH: i64 = 1_000;
/// How long a woken sequencer waits for more commits before chaining: the most a record waits
/// for the trail under load.
const GATHER: std::time::Duration = std::time::Duration::from_millis(100);
/// How often an idle sequencer looks for records committed without a wake-up (another
/// process's, or a direct append).
const IDLE_POLL: std::time::Duration = std::time::Duration::from_millis(500);
/// Rows one INSERT statement carries (11 parameters each, well under every backend's limit).
const INSERT_ROWS: usize = 200;

/// Appends up to `batch` committed pending records to the chain in one transaction, in the
/// order of their pending ids, and returns how many. Sequencers (one per process, any number of
/// processes) are serialised on the `audit_head` row, so the chain never forks.
pub async fn sequence(db: &Database, batch: i64) -> Result<usize> {
    let mut tx = db.begin().await?;
    // The UPDATE comes first: it takes the write lock before anything is read.
    let Some(head) =
        sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash")
            .fetch_optional(&mut *tx)
            .await?
    else {
        return Err(crate::Error::internal("the audit trail has no head"));
    };
    let start: i64 = head.try_get("seq")?;
    let mut prev: String = head.try_get("hash")?;
    // Rows chained before the log existed become its first leaves, once checked.
    let tree = log::size(&mut tx).await?;
    let caught_up = (tree as i64) < start;
    if caught_up {
        log::catch_up(&mut tx, tree, start).await?;
    }
    let rows = sqlx::query(
        "SELECT id, at_micros, actor, role, action, resource, reason, detail
         FROM audit_pending ORDER BY id LIMIT $1",
    )
    .bind(batch)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        if caught_up {
            tx.commit().await?;
        }
        return Ok(0);
    }
    let mut chained = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let record = AuditRecord {
            actor: row.try_get("actor")?,
            role: row.try_get("role")?,
            action: row.try_get("action")?,
            resource: row.try_get("resource")?,
            reason: row.try_get("reason")?,
            detail: serde_json::Value::Null,
        };
        let detail: String = row.try_get("detail")?;
        let at_micros: i64 = row.try_get("at_micros")?;
        let hash = row_hash(&prev, at_micros, &record, &detail);
        let id: i64 = row.try_get("id")?;
        chained.push((
            start + 1 + i as i64,
            at_micros,
            record,
            detail,
            prev,
            hash.clone(),
            id,
        ));
        prev = hash;
    }
    for part in chained.chunks(INSERT_ROWS) {
        let mut sql = String::from(
            "INSERT INTO audit_log (seq, at_micros, actor, role, action, resource, reason, detail, prev_hash, hash, pending_id) VALUES ",
        );
        for i in 0..part.len() {
            let b = i * 11;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            sql.push_str(
                &(1..=11)
                    .map(|k| format!("${}", b + k))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            sql.push(')');
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (seq, at_micros, r, detail, prev_hash, hash, id) in part {
            q = q
                .bind(*seq)
                .bind(*at_micros)
                .bind(r.actor.clone())
                .bind(r.role.clone())
                .bind(r.action.clone())
                .bind(r.resource.clone())
                .bind(r.reason.clone())
                .bind(detail.clone())
                .bind(prev_hash.clone())
                .bind(hash.clone())
                .bind(*id);
        }
        q.execute(&mut *tx).await?;
    }
    let leaves: Vec<_> = chained
        .iter()
        .map(|(seq, _, _, _, _, hash, _)| log::leaf(*seq, hash))
        .collect();
    log::extend(&mut tx, start as u64, &leaves).await?;
    sqlx::query(
        "DELETE FROM audit_pending WHERE id IN (SELECT pending_id FROM audit_log WHERE seq > $1)",
    )
    .bind(start)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(start + chained.len() as i64)
        .bind(&prev)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(chained.len())
}

/// Sequences everything committed so far; returns how many records.
pub async fn sequence_all(db: &Database) -> Result<usize> {
    let mut total = 0;
    loop {
        let n = sequence(db, SEQUENCE_BATCH).await?;
        total += n;
        if n < SEQUENCE_BATCH as usize {
            return Ok(total);
        }
    }
}

/// A database's audit sequencer: a task started on the database's first transaction, woken by
/// each commit with an audit record (then gathering the commits of the next 100 ms into one
/// batch), looking every half second for records committed without a wake-up, and ending when
/// the last other handle on its database is dropped.
#[derive(Debug)]
pub struct Sequencer {
    off: bool,
    wake: tokio::sync::Notify,
    started: std::sync::atomic::AtomicBool,
}

impl Default for Sequencer {
    fn default() -> Self {
        Sequencer {
            off: false,
            wake: tokio::sync::Notify::new(),
            started: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl Sequencer {
    /// The benchmark's baseline: no audit records at all.
    pub(crate) fn off() -> Sequencer {
        Sequencer {
            off: true,
            ..Default::default()
        }
    }

    pub(crate) fn on(&self) -> bool {
        !self.off
    }

    pub(crate) async fn wait(&self) {
        self.wake.notified().await
    }

    pub(crate) fn wake(&self, db: &Database) {
        if self.off {
            return;
        }
        self.start(db);
        self.wake.notify_one();
    }

    /// Starts the task once, where there is a runtime to run it.
    pub(crate) fn start(&self, db: &Database) {
        use std::sync::atomic::Ordering;
        if self.off || self.started.load(Ordering::Relaxed) {
            return;
        }
        if !self.started.swap(true, Ordering::SeqCst) {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(run_sequencer(db.clone()));
                }
                Err(_) => self.started.store(false, Ordering::SeqCst),
            }
        }
    }
}

async fn run_sequencer(db: Database) {
    loop {
        if let Err(e) = sequence_all(&db).await {
            tracing::warn!(error = %e, "audit records not sequenced yet; retried shortly");
        }
        // Only this task still holds the database: its service is gone.
        if db.sequencer_handles() <= 1 {
            return;
        }
        tokio::select! {
            _ = db.sequencer_woken() => {
                // Woken by a commit: let the commits of the next moments join it, so a batch
                // costs one transaction for many records rather than one each.
                tokio::time::sleep(GATHER).await;
            }
            _ = tokio::time::sleep(IDLE_POLL) => {}
        }
    }
}

/// Writes the signed record of a restore from a backup (issue 22, item 3) as the first record
/// after the restored log: it names a checkpoint of the log as restored, so a verifier holding
/// a later checkpoint tells this documented restore from an undocumented rollback. Run with the
/// services stopped, right after the restore; `actor` is who restored.
pub async fn record_restore(
    db: &Database,
    key: &AuditKey,
    origin: &str,
    actor: &str,
    at: time::OffsetDateTime,
) -> Result<RestoreStatement> {
    sequence_all(db).await?;
    let mut conn = db.pool().acquire().await?;
    let size = log::size(&mut conn).await?;
    let root = log::root(&mut conn, size).await?;
    drop(conn);
    let micros = unix_micros(at);
    let statement = RestoreStatement::sign(
        key,
        Checkpoint::sign(key, origin, size, root, micros),
        micros,
    );
    let record = AuditRecord {
        actor: actor.to_string(),
        role: crate::auth::Role::Service.as_str().to_string(),
        action: offline::RESTORE_ACTION.to_string(),
        resource: origin.to_string(),
        reason: "restored from a backup".to_string(),
        detail: statement.to_json(),
    };
    let mut tx = db.begin().await?;
    append(&mut tx, at, &record).await?;
    tx.commit().await?;
    sequence_all(db).await?;
    let seq: Option<i64> =
        sqlx::query_scalar("SELECT seq FROM audit_log WHERE action = $1 ORDER BY seq DESC LIMIT 1")
            .bind(offline::RESTORE_ACTION)
            .fetch_optional(db.pool())
            .await?;
    if seq != Some(size as i64 + 1) {
        return Err(crate::Error::internal(
            "other records came between the restored log and its restore record: stop the services, restore again and record the restore before starting them",
        ));
    }
    Ok(statement)
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every row is intact and in order; the chain ends at the recorded head.
    Intact { rows: i64, head: String },
    /// The first row where the chain breaks, and how.
    Broken { seq: i64, problem: Problem },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The row's content no longer matches its hash.
    Modified,
    /// The row with this sequence number is gone.
    Missing,
    /// The row does not follow the row before it (moved, or copied from elsewhere).
    OutOfOrder,
    /// Rows after this one were removed: the head says the chain is longer.
    Truncated,
}

/// The rows whose resource is `resource` or lies below it (`resource/…`), in order: a cycle's
/// trail for the supervisor's export.
pub async fn entries_under(conn: &mut Conn, resource: &str) -> Result<Vec<AuditEntry>> {
    let below = format!("{resource}/");
    let rows = sqlx::query(
        "SELECT seq, at_micros, actor, role, action, resource, reason, detail, prev_hash, hash
         FROM audit_log
         WHERE resource = $1 OR substr(resource, 1, length($2)) = $2
         ORDER BY seq",
    )
    .bind(resource)
    .bind(&below)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(entry_of).collect()
}

/// A trail row as read by `SELECT seq, at_micros, actor, role, action, resource, reason,
/// detail, prev_hash, hash`.
pub(crate) fn entry_of(row: &sqlx::any::AnyRow) -> Result<AuditEntry> {
    let detail: String = row.try_get("detail")?;
    Ok(AuditEntry {
        seq: row.try_get("seq")?,
        at_micros: row.try_get("at_micros")?,
        record: AuditRecord {
            actor: row.try_get("actor")?,
            role: row.try_get("role")?,
            action: row.try_get("action")?,
            resource: row.try_get("resource")?,
            reason: row.try_get("reason")?,
            detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
        },
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// How the row `entry` (its `detail` as stored) breaks the chain, when `expected` is the seq it
/// should have and `prev` the hash of the row before it: the seq to name and the problem.
pub(crate) fn link_problem(
    expected: i64,
    prev: &str,
    entry: &AuditEntry,
    detail: &str,
) -> Option<(i64, Problem)> {
    if entry.seq != expected {
        Some((expected, Problem::Missing))
    } else if row_hash(&entry.prev_hash, entry.at_micros, &entry.record, detail) != entry.hash {
        Some((entry.seq, Problem::Modified))
    } else if entry.prev_hash != prev {
        Some((entry.seq, Problem::OutOfOrder))
    } else {
        None
    }
}

/// Reads the whole trail and checks every link, after bringing the records committed so far
/// into it (what the service's sequencer would do within a moment).
pub async fn verify(db: &Database) -> Result<Verdict> {
    if let Err(e) = sequence_all(db).await {
        tracing::warn!(error = %e, "pending audit records could not be sequenced before verifying");
    }
    // The head and the rows are read in one snapshot: a service still writing while it is
    // verified commits between two separate reads, and its new row would look like a head
    // that lags (or rows that were cut off). A read-only transaction: REPEATABLE READ on
    // PostgreSQL; on SQLite a deferred transaction's reads share one snapshot.
    let mut tx = db.pool().begin().await?;
    if db.backend() == crate::db::Backend::Postgres {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
    }
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(&mut *tx)
        .await?;
    let head_seq: i64 = head.try_get("seq")?;
    let head_hash: String = head.try_get("hash")?;

    let mut rows = sqlx::query(
        "SELECT seq, at_micros, actor, role, action, resource, reason, detail, prev_hash, hash
         FROM audit_log ORDER BY seq",
    )
    .fetch(&mut *tx);
    let mut expected_seq = 1i64;
    let mut prev = GENESIS.to_string();
    while let Some(row) = rows.try_next().await? {
        let entry = entry_of(&row)?;
        let detail: String = row.try_get("detail")?;
        if let Some((seq, problem)) = link_problem(expected_seq, &prev, &entry, &detail) {
            return Ok(Verdict::Broken { seq, problem });
        }
        prev = entry.hash;
        expected_seq += 1;
    }
    let last = expected_seq - 1;
    if last != head_seq || prev != head_hash {
        return Ok(Verdict::Broken {
            seq: last,
            problem: Problem::Truncated,
        });
    }
    Ok(Verdict::Intact {
        rows: last,
        head: prev,
    })
}
