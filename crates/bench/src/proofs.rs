//! Scenario `proofs` (issue 22, item 3): the sizes and timings of the audit log's Merkle proofs
//! (`kit::merkle`, RFC 9162) for a log of a million records, generated synthetically — each leaf
//! the hash of a trail row's 64-character hash, as the log is to hold. Baseline: hashing the
//! same leaves once (SHA-256 of each), the least any root costs. Run by hand; not in `all`.

use std::time::Instant;

use qaward_kit::merkle::{self, Hash};

use crate::Figure;

#[derive(Debug, Clone, clap::Args)]
pub struct ProofsOptions {
    /// Records in the log.
    #[arg(long, default_value_t = 1_000_000)]
    pub size: usize,
    /// Proofs made and checked, for the median.
    #[arg(long, default_value_t = 9)]
    pub repeat: usize,
    /// Also store the log's tree in this PostgreSQL database (a fresh schema) as the services
    /// do, and make the proofs from it.
    #[arg(long)]
    pub database_url: Option<String>,
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

pub async fn run(o: ProofsOptions) -> Result<(), String> {
    let n = o.size.max(2);
    let rows: Vec<String> = (0..n)
        .map(|i| hex::encode(merkle::leaf_hash(&(i as u64).to_be_bytes())))
        .collect();
    let t = Instant::now();
    let leaves: Vec<Hash> = rows
        .iter()
        .map(|r| merkle::leaf_hash(r.as_bytes()))
        .collect();
    let hashing = ms(t);
    let t = Instant::now();
    let root = merkle::root(&leaves);
    let root_ms = ms(t);

    let mut made = Vec::new();
    let mut checked = Vec::new();
    let mut size = 0;
    for k in 0..o.repeat {
        let index = (k * 7919 * 131) % n;
        let t = Instant::now();
        let proof = merkle::inclusion_proof(&leaves, index).ok_or("index out of range")?;
        made.push(ms(t));
        size = proof.len() * 32;
        let t = Instant::now();
        if !merkle::verify_inclusion(&leaves[index], index as u64, n as u64, &proof, &root) {
            return Err(format!("the inclusion proof of {index} does not verify"));
        }
        checked.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let mut c_made = Vec::new();
    let mut c_checked = Vec::new();
    let mut c_size = 0;
    for k in 0..o.repeat {
        // A checkpoint an auditor kept, somewhere in the first half, against today's.
        let m = 1 + (k * 104_729 + n / 3) % (n / 2);
        let first = merkle::root(&leaves[..m]);
        let t = Instant::now();
        let proof = merkle::consistency_proof(&leaves, m).ok_or("size out of range")?;
        c_made.push(ms(t));
        c_size = proof.len() * 32;
        let t = Instant::now();
        if !merkle::verify_consistency(m as u64, n as u64, &first, &root, &proof) {
            return Err(format!("the consistency proof {m} -> {n} does not verify"));
        }
        c_checked.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let median = crate::draw::median;
    let stored = match &o.database_url {
        Some(url) => Some(from_database(url, &leaves, &root, o.repeat).await?),
        None => None,
    };
    eprintln!(
        "proofs: {n} leaves; inclusion proof {size} bytes, consistency proof {c_size} bytes; root {root_ms:.1} ms, leaf hashing {hashing:.1} ms"
    );
    for f in [
        Figure {
            scenario: "proofs",
            metric: "root_ms",
            unit: "ms",
            value: root_ms,
            baseline: "hashing every leaf once",
            baseline_value: hashing,
        },
        Figure {
            scenario: "proofs",
            metric: "inclusion_proof_made_ms",
            unit: "ms",
            value: median(made),
            baseline: "the root",
            baseline_value: root_ms,
        },
        Figure {
            scenario: "proofs",
            metric: "inclusion_proof_checked_us",
            unit: "us",
            value: median(checked),
            baseline: "none",
            baseline_value: 0.0,
        },
        Figure {
            scenario: "proofs",
            metric: "inclusion_proof_bytes",
            unit: "bytes",
            value: size as f64,
            baseline: "none",
            baseline_value: 0.0,
        },
        Figure {
            scenario: "proofs",
            metric: "consistency_proof_made_ms",
            unit: "ms",
            value: median(c_made),
            baseline: "the root",
            baseline_value: root_ms,
        },
        Figure {
            scenario: "proofs",
            metric: "consistency_proof_checked_us",
            unit: "us",
            value: median(c_checked),
            baseline: "none",
            baseline_value: 0.0,
        },
        Figure {
            scenario: "proofs",
            metric: "consistency_proof_bytes",
            unit: "bytes",
            value: c_size as f64,
            baseline: "none",
            baseline_value: 0.0,
        },
    ] {
        f.print();
    }
    if let Some((write_s, made, c_made)) = stored {
        for f in [
            Figure {
                scenario: "proofs",
                metric: "stored_tree_written_s",
                unit: "s",
                value: write_s,
                baseline: "none",
                baseline_value: 0.0,
            },
            Figure {
                scenario: "proofs",
                metric: "stored_inclusion_proof_made_ms",
                unit: "ms",
                value: made,
                baseline: "from the leaves in memory",
                baseline_value: root_ms,
            },
            Figure {
                scenario: "proofs",
                metric: "stored_consistency_proof_made_ms",
                unit: "ms",
                value: c_made,
                baseline: "from the leaves in memory",
                baseline_value: root_ms,
            },
        ] {
            f.print();
        }
    }
    Ok(())
}

/// Writes the leaves' tree into a fresh schema as the sequencer does (every perfect subtree,
/// in batches), then makes proofs the way the services answer ProveAuditRecords and
/// ProveAuditConsistency: (seconds to write, median ms per inclusion proof, per consistency
/// proof), each checked against the in-memory root.
async fn from_database(
    url: &str,
    leaves: &[Hash],
    root: &Hash,
    repeat: usize,
) -> Result<(f64, f64, f64), String> {
    use qaward_kit::{audit::log, db::Database};
    let schema = format!("bench_proofs_{}", std::process::id());
    let db = Database::connect_postgres(url, &schema, 2)
        .await
        .map_err(|e| e.to_string())?;
    db.migrate(&schema, &qaward_kit::db::Migrations::NONE)
        .await
        .map_err(|e| e.to_string())?;
    let n = leaves.len() as u64;
    let t = Instant::now();
    for (i, part) in leaves.chunks(20_000).enumerate() {
        let mut tx = db.begin().await.map_err(|e| e.to_string())?;
        log::extend(&mut tx, (i * 20_000) as u64, part)
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
    }
    let write_s = t.elapsed().as_secs_f64();
    let mut conn = db.pool().acquire().await.map_err(|e| e.to_string())?;
    let stored_root = log::root(&mut conn, n).await.map_err(|e| e.to_string())?;
    if stored_root != *root {
        return Err("the stored tree's root is not the leaves'".to_string());
    }
    let (mut made, mut c_made) = (Vec::new(), Vec::new());
    for k in 0..repeat {
        let index = ((k * 7919 * 131) as u64) % n;
        let t = Instant::now();
        let proof = log::inclusion(&mut conn, index, n)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("out of range")?;
        made.push(ms(t));
        if !merkle::verify_inclusion(&leaves[index as usize], index, n, &proof, root) {
            return Err(format!(
                "the stored inclusion proof of {index} does not verify"
            ));
        }
        let m = 1 + ((k * 104_729) as u64 + n / 3) % (n / 2);
        let t = Instant::now();
        let proof = log::consistency(&mut conn, m, n)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("out of range")?;
        c_made.push(ms(t));
        let first = merkle::root(&leaves[..m as usize]);
        if !merkle::verify_consistency(m, n, &first, root, &proof) {
            return Err(format!(
                "the stored consistency proof {m} -> {n} does not verify"
            ));
        }
    }
    drop(conn);
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA \"{schema}\" CASCADE"
    )))
    .execute(db.pool())
    .await;
    let median = crate::draw::median;
    Ok((write_s, median(made), median(c_made)))
}
