//! The audit trail as a Merkle tree log in the manner of RFC 9162 (issue 22, item 3).
//!
//! Leaf `i` is the trail row with `seq = i + 1`; its leaf hash is `merkle::leaf_hash` of
//! [`leaf_data`]: the label, the seq and the row's chain hash, and nothing else, so no personal
//! data is in a leaf and a purge of a row's content never changes a proof. `audit_tree` holds
//! every perfect subtree, (level, index) → hash, written in the transaction that chains the
//! rows, so the tree and the chain never disagree and a root or a proof reads O(log n) rows.
//! `docs/audit.md` specifies all of it.

use std::collections::HashMap;

use sqlx::Row;

use super::GENESIS;
use crate::{
    Error, Result,
    db::Conn,
    merkle::{self, Hash},
};

/// The first bytes of every leaf's data.
pub const LEAF_LABEL: &[u8] = b"qaward-audit-leaf-v1";

/// The data of the leaf of row `seq` whose chain hash is `row_hash` (64 hex digits):
/// `LEAF_LABEL ‖ 0x00 ‖ seq as 8 bytes big-endian ‖ the 32 bytes of the row hash`.
pub fn leaf_data(seq: i64, row_hash: &str) -> Vec<u8> {
    let mut data = Vec::with_capacity(LEAF_LABEL.len() + 41);
    data.extend_from_slice(LEAF_LABEL);
    data.push(0);
    data.extend_from_slice(&(seq as u64).to_be_bytes());
    data.extend_from_slice(&hex::decode(row_hash).unwrap_or_default());
    data
}

/// The leaf hash of row `seq`.
pub fn leaf(seq: i64, row_hash: &str) -> Hash {
    merkle::leaf_hash(&leaf_data(seq, row_hash))
}

/// How many leaves the stored tree has.
pub async fn size(conn: &mut Conn) -> Result<u64> {
    let n: Option<i64> = sqlx::query_scalar("SELECT MAX(idx) FROM audit_tree WHERE level = 0")
        .fetch_one(&mut *conn)
        .await?;
    Ok(n.map_or(0, |i| i as u64 + 1))
}

fn unhex(h: &str) -> Result<Hash> {
    hex::decode(h)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| Error::internal("an audit tree node is not 32 bytes of hex"))
}

/// Reads the stored nodes a computation over a tree asks for: `f` runs once with stand-in
/// hashes to learn which (the algorithms' path never depends on hash values), then with the
/// stored ones.
async fn with_nodes<T>(conn: &mut Conn, f: impl Fn(&mut dyn merkle::Nodes) -> T) -> Result<T> {
    let mut wanted = Vec::new();
    f(&mut |level: u32, index: u64| {
        wanted.push((level, index));
        [0u8; 32]
    });
    let stored = fetch(conn, &wanted).await?;
    let mut missing = None;
    let out = f(
        &mut |level: u32, index: u64| match stored.get(&(level, index)) {
            Some(h) => *h,
            None => {
                missing = Some((level, index));
                [0u8; 32]
            }
        },
    );
    if let Some((level, index)) = missing {
        return Err(Error::internal(format!(
            "the audit tree lacks its node ({level}, {index})"
        )));
    }
    Ok(out)
}

async fn fetch(conn: &mut Conn, wanted: &[(u32, u64)]) -> Result<HashMap<(u32, u64), Hash>> {
    let mut out = HashMap::new();
    for part in wanted.chunks(200) {
        let mut sql = String::from("SELECT level, idx, hash FROM audit_tree WHERE ");
        for i in 0..part.len() {
            if i > 0 {
                sql.push_str(" OR ");
            }
            sql.push_str(&format!(
                "(level = ${} AND idx = ${})",
                2 * i + 1,
                2 * i + 2
            ));
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (level, index) in part {
            q = q.bind(*level as i32).bind(*index as i64);
        }
        for row in q.fetch_all(&mut *conn).await? {
            let level: i32 = row.try_get("level")?;
            let index: i64 = row.try_get("idx")?;
            let hash: String = row.try_get("hash")?;
            out.insert((level as u32, index as u64), unhex(&hash)?);
        }
    }
    Ok(out)
}

/// The root of the first `size` leaves.
pub async fn root(conn: &mut Conn, size: u64) -> Result<Hash> {
    with_nodes(conn, |nodes| merkle::root_of(size, nodes)).await
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves; None out of range.
pub async fn inclusion(conn: &mut Conn, index: u64, size: u64) -> Result<Option<Vec<Hash>>> {
    with_nodes(conn, |nodes| merkle::inclusion_proof_of(index, size, nodes)).await
}

/// The consistency proof from `first` leaves to `second`; None unless 0 < first ≤ second.
pub async fn consistency(conn: &mut Conn, first: u64, second: u64) -> Result<Option<Vec<Hash>>> {
    with_nodes(conn, |nodes| {
        merkle::consistency_proof_of(first, second, nodes)
    })
    .await
}

/// Appends `leaves` to the stored tree of `size` leaves, writing every node they complete: the
/// sequencer's step (with the rows it chains), and the benchmark's synthetic logs.
pub async fn extend(conn: &mut Conn, size: u64, leaves: &[Hash]) -> Result<()> {
    let edge = merkle::frontier(size);
    let stored = fetch(conn, &edge).await?;
    let mut frontier = edge
        .iter()
        .map(|k| {
            stored
                .get(k)
                .copied()
                .ok_or_else(|| Error::internal("the audit tree lacks a frontier node"))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut made = Vec::with_capacity(leaves.len() * 2);
    for (i, leaf) in leaves.iter().enumerate() {
        made.extend(merkle::append(size + i as u64, &mut frontier, *leaf));
    }
    for part in made.chunks(300) {
        let mut sql = String::from("INSERT INTO audit_tree (level, idx, hash) VALUES ");
        for i in 0..part.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3));
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (level, index, hash) in part {
            q = q
                .bind(*level as i32)
                .bind(*index as i64)
                .bind(hex::encode(hash));
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Rows a catch-up reads at a time.
const CATCH_UP_BATCH: i64 = 5_000;

/// Brings trail rows chained before the log existed (or by a process without it) into the
/// tree, up to `head` — each only after checking its content against its hash and its link to
/// the row before: a broken chain is never given a proof.
pub(crate) async fn catch_up(conn: &mut Conn, mut size: u64, head: i64) -> Result<()> {
    let mut prev = if size == 0 {
        GENESIS.to_string()
    } else {
        sqlx::query_scalar("SELECT hash FROM audit_log WHERE seq = $1")
            .bind(size as i64)
            .fetch_one(&mut *conn)
            .await?
    };
    while (size as i64) < head {
        let rows = sqlx::query(
            "SELECT seq, at_micros, actor, role, action, resource, reason, detail, prev_hash, hash
             FROM audit_log WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3",
        )
        .bind(size as i64)
        .bind(head)
        .bind(CATCH_UP_BATCH)
        .fetch_all(&mut *conn)
        .await?;
        let mut leaves = Vec::with_capacity(rows.len());
        for row in &rows {
            let entry = super::entry_of(row)?;
            let detail: String = row.try_get("detail")?;
            let expected = size as i64 + leaves.len() as i64 + 1;
            if let Some((seq, problem)) = super::link_problem(expected, &prev, &entry, &detail) {
                return Err(Error::new(
                    crate::error::ErrorCode::FailedPrecondition,
                    "AUDIT_TRAIL_BROKEN",
                    format!(
                        "the audit trail is broken at row {seq} ({problem:?}): it is not taken into the log"
                    ),
                ));
            }
            let seq = entry.seq;
            leaves.push(leaf(seq, &entry.hash));
            prev = entry.hash;
        }
        if leaves.is_empty() {
            return Err(Error::internal(format!(
                "the audit trail ends at row {size}, its head says {head}"
            )));
        }
        extend(conn, size, &leaves).await?;
        size += leaves.len() as u64;
    }
    Ok(())
}

/// What a checkpoint was taken for: `schedule`, or the published decision it backs
/// (`results:…`, `notice:…`, `award:…`), or `restore`.
pub type Reason = str;

/// Signs and stores a checkpoint of everything committed so far: the records still pending are
/// sequenced first, so a decision committed before this call is inside it.
pub async fn take_checkpoint(
    db: &crate::db::Database,
    key: &super::AuditKey,
    origin: &str,
    reason: &Reason,
    at: time::OffsetDateTime,
) -> Result<super::Checkpoint> {
    super::sequence_all(db).await?;
    let mut tx = db.begin().await?;
    // Under the head's lock: no sequencer extends the tree between its size and its root.
    sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1")
        .execute(&mut *tx)
        .await?;
    let size = size(&mut tx).await?;
    let root = root(&mut tx, size).await?;
    let checkpoint =
        super::Checkpoint::sign(key, origin, size, root, crate::clock::unix_micros(at));
    sqlx::query(
        "INSERT INTO audit_checkpoints (size, root, at_micros, reason, note) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(size as i64)
    .bind(hex::encode(root))
    .bind(checkpoint.at_micros)
    .bind(reason)
    .bind(checkpoint.to_text())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(checkpoint)
}

/// The latest stored checkpoint, with its reason.
pub async fn latest_checkpoint(conn: &mut Conn) -> Result<Option<(super::Checkpoint, String)>> {
    let row = sqlx::query("SELECT note, reason FROM audit_checkpoints ORDER BY id DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|row| {
        let note: String = row.try_get("note")?;
        let reason: String = row.try_get("reason")?;
        let c = super::Checkpoint::parse(&note).map_err(|e| Error::internal(e.to_string()))?;
        Ok((c, reason))
    })
    .transpose()
}

/// Every stored checkpoint, oldest first.
pub async fn checkpoints(conn: &mut Conn) -> Result<Vec<(super::Checkpoint, String)>> {
    let rows = sqlx::query("SELECT note, reason FROM audit_checkpoints ORDER BY id")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| {
            let note: String = row.try_get("note")?;
            let c = super::Checkpoint::parse(&note).map_err(|e| Error::internal(e.to_string()))?;
            Ok((c, row.try_get("reason")?))
        })
        .collect()
}

/// Takes a scheduled checkpoint every `minutes` when the log grew since the last one, for as
/// long as the process runs.
pub fn spawn_checkpoints(
    db: crate::db::Database,
    key: std::sync::Arc<super::AuditKey>,
    origin: String,
    clock: crate::clock::SharedClock,
    minutes: u32,
) {
    tokio::spawn(async move {
        let every = std::time::Duration::from_secs(u64::from(minutes.max(1)) * 60);
        loop {
            tokio::time::sleep(every).await;
            let grew = async {
                let mut conn = db.pool().acquire().await?;
                let last = latest_checkpoint(&mut conn)
                    .await?
                    .map_or(0, |(c, _)| c.size);
                let head: i64 = sqlx::query_scalar("SELECT seq FROM audit_head WHERE id = 1")
                    .fetch_one(&mut *conn)
                    .await?;
                Ok::<_, Error>(head as u64 > last)
            };
            match grew.await {
                Ok(true) => {
                    if let Err(e) =
                        take_checkpoint(&db, &key, &origin, "schedule", clock.now()).await
                    {
                        tracing::warn!(error = %e, "scheduled audit checkpoint not taken");
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "audit log not read for its checkpoint"),
            }
        }
    });
}

/// The origin a service's checkpoints name: `qaward/<service>`.
pub fn origin(service: &str) -> String {
    format!("qaward/{service}")
}

/// Starts the service's scheduled checkpoints with the context's key: the first at once when
/// the log has none or grew since its last (a restarted service's log is checkpointed as it
/// starts), then every `audit.checkpoint_minutes`.
pub fn start(db: &crate::db::Database, ctx: &crate::server::ServiceContext, service: &str) {
    spawn_checkpoints(
        db.clone(),
        ctx.audit.clone(),
        origin(service),
        ctx.clock.clone(),
        ctx.config.audit.checkpoint_minutes,
    );
}
