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
    Ok(())
}
