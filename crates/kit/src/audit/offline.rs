//! The auditor's check of a log (issue 22, item 3): everything read from the database as it is,
//! nothing written, nothing trusted that the database alone could have made. The chain is
//! re-hashed row by row, the leaves and the tree are recomputed from the rows, every stored
//! checkpoint is checked against its signature and the recomputed tree, and a checkpoint the
//! auditor kept is checked against the log: a record edited, deleted or moved, a log cut short
//! or rolled back to a backup shows as a finding; a restore documented by a signed restore
//! record shows as that, apart from an undocumented rollback.

use futures_util::TryStreamExt;
use sqlx::Row;

use super::{
    Checkpoint, GENESIS, Problem, RestoreStatement,
    checkpoint::AuditPublicKey,
    log::{self, leaf},
};
use crate::{Result, db::Database, merkle};

/// One thing the check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// A row whose content, link or place is not what the chain says (as [`super::verify`]).
    Chain { seq: i64, problem: Problem },
    /// A stored tree node differs from the one recomputed from the rows, or is missing.
    TreeMismatch { level: u32, index: u64 },
    /// A stored checkpoint whose signature does not verify, or whose root is not the
    /// recomputed root of its size (a fork), or whose size the log no longer reaches.
    BadCheckpoint { size: u64, why: String },
    /// The kept checkpoint's signature does not verify under the given key.
    KeptNotSigned,
    /// The log's first `size` records are not those the kept checkpoint covered: a record was
    /// edited, deleted, reordered or the chain rewritten after it was taken.
    Rewritten { size: u64 },
    /// The log is shorter than the kept checkpoint and no restore record explains it.
    RolledBack { kept: u64, now: u64 },
    /// A signed restore record at `seq` says the log was restored to `to` records: the kept
    /// checkpoint's records after that were lost by a documented restore.
    Restored { seq: i64, to: u64, kept: u64 },
    /// A restore record whose signature or named checkpoint does not hold.
    BadRestoreRecord { seq: i64, why: String },
}

/// What the check saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub rows: u64,
    pub root: merkle::Hash,
    pub checkpoints: usize,
    pub findings: Vec<Finding>,
}

impl Report {
    /// No finding, or only documented restores.
    pub fn sound(&self) -> bool {
        self.findings
            .iter()
            .all(|f| matches!(f, Finding::Restored { .. }))
    }
}

/// Checks the log of `db` (read-only) against the signatures of `key` and, if given, the
/// checkpoint an auditor kept.
pub async fn check_log(
    db: &Database,
    key: &AuditPublicKey,
    kept: Option<&Checkpoint>,
) -> Result<Report> {
    let mut conn = db.pool().acquire().await?;
    let mut findings = Vec::new();
    let mut leaves = Vec::new();
    let mut restores = Vec::new();
    {
        let mut rows = sqlx::query(
            "SELECT seq, at_micros, actor, role, action, resource, reason, detail, prev_hash, hash
             FROM audit_log ORDER BY seq",
        )
        .fetch(&mut *conn);
        let mut prev = GENESIS.to_string();
        let mut broken = false;
        while let Some(row) = rows.try_next().await? {
            let entry = super::entry_of(&row)?;
            let detail: String = row.try_get("detail")?;
            let expected = leaves.len() as i64 + 1;
            if let Some((seq, problem)) = super::link_problem(expected, &prev, &entry, &detail)
                && !broken
            {
                findings.push(Finding::Chain { seq, problem });
                broken = true;
            }
            if entry.record.action == RESTORE_ACTION {
                restores.push((entry.seq, entry.record.detail.clone()));
            }
            leaves.push(leaf(entry.seq, &entry.hash));
            prev = entry.hash;
        }
    }
    let n = leaves.len() as u64;
    let root = merkle::root(&leaves);
    if let Some(f) = tree_mismatch(&mut conn, &leaves).await? {
        findings.push(f);
    }

    let mut documented = Vec::new();
    for (seq, detail) in &restores {
        let why = match RestoreStatement::from_json(detail) {
            Err(e) => Some(e.to_string()),
            Ok(r) => match r.check(key) {
                Err(e) => Some(e.to_string()),
                Ok(()) if r.restored_to.size as i64 != seq - 1 => Some(format!(
                    "it follows row {} but names a checkpoint of {} records",
                    seq - 1,
                    r.restored_to.size
                )),
                Ok(())
                    if merkle::root(&leaves[..r.restored_to.size as usize])
                        != r.restored_to.root =>
                {
                    Some(
                        "the records before it are not those of the checkpoint it names"
                            .to_string(),
                    )
                }
                Ok(()) => None,
            },
        };
        match why {
            Some(why) => findings.push(Finding::BadRestoreRecord { seq: *seq, why }),
            None => documented.push(*seq),
        }
    }

    let stored = log::checkpoints(&mut conn).await?;
    for (c, _) in &stored {
        let why = if c.check(key).is_err() {
            Some("its signature does not verify".to_string())
        } else if c.size > n {
            Some(format!("the log has {n} records, fewer than it covers"))
        } else if merkle::root(&leaves[..c.size as usize]) != c.root {
            Some("its root is not the log's at its size (a fork)".to_string())
        } else {
            None
        };
        if let Some(why) = why {
            findings.push(Finding::BadCheckpoint { size: c.size, why });
        }
    }

    if let Some(kept) = kept {
        if kept.check(key).is_err() {
            findings.push(Finding::KeptNotSigned);
        } else {
            // A documented restore to fewer records than the kept checkpoint explains why its
            // later records differ or are gone; the records up to the restore point must still
            // be those it covered — which only a consistency proof from the old log could show,
            // so the verifier says what the restore record says and no more.
            let restore = documented
                .iter()
                .copied()
                .find(|seq| (*seq as u64) <= kept.size);
            let intact = kept.size <= n && merkle::root(&leaves[..kept.size as usize]) == kept.root;
            if !intact {
                match restore {
                    Some(seq) => findings.push(Finding::Restored {
                        seq,
                        to: seq as u64 - 1,
                        kept: kept.size,
                    }),
                    None if kept.size > n => findings.push(Finding::RolledBack {
                        kept: kept.size,
                        now: n,
                    }),
                    None => findings.push(Finding::Rewritten { size: kept.size }),
                }
            }
        }
    }
    Ok(Report {
        rows: n,
        root,
        checkpoints: stored.len(),
        findings,
    })
}

/// Compares every stored tree node with the one recomputed from the leaves: the first that
/// differs or is missing.
async fn tree_mismatch(
    conn: &mut crate::db::Conn,
    leaves: &[merkle::Hash],
) -> Result<Option<Finding>> {
    let mut levels = vec![leaves.to_vec()];
    while levels.last().is_some_and(|l| l.len() >= 2) {
        let below = levels.last().expect("a level");
        let up = below
            .chunks_exact(2)
            .map(|p| merkle::node_hash(&p[0], &p[1]))
            .collect();
        levels.push(up);
    }
    // A tree that lags the rows (records chained by a process before the log existed, not yet
    // caught up) is a prefix: the nodes of a tree of its own size are expected, no more.
    let size = log::size(&mut *conn).await?.min(leaves.len() as u64);
    let mut expected =
        (0..levels.len() as u32).flat_map(move |l| (0..size >> l).map(move |i| (l, i)));
    let mut rows = sqlx::query("SELECT level, idx, hash FROM audit_tree ORDER BY level, idx")
        .fetch(&mut *conn);
    while let Some(row) = rows.try_next().await? {
        let level: i32 = row.try_get("level")?;
        let index: i64 = row.try_get("idx")?;
        let hash: String = row.try_get("hash")?;
        let (level, index) = (level as u32, index as u64);
        let want = expected.next();
        if want.is_none() {
            return Ok(Some(Finding::TreeMismatch { level, index }));
        }
        let ok = want == Some((level, index))
            && levels[level as usize].get(index as usize).map(hex::encode) == Some(hash);
        if !ok {
            let (level, index) = want.unwrap_or((level, index));
            return Ok(Some(Finding::TreeMismatch { level, index }));
        }
    }
    Ok(expected
        .next()
        .map(|(level, index)| Finding::TreeMismatch { level, index }))
}

/// The action of the record a documented restore writes first.
pub const RESTORE_ACTION: &str = "audit.restore";
