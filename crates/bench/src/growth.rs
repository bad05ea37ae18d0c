//! Scenario `growth` (issue 26, item 6): how cost grows with size — the cold draw (10k → 100k
//! → 1M reviewers), a cycle's results (1k → 10k → 100k applications) and the audit verifier
//! (10k → 100k → 1M records) — each size in its own process, so its peak memory is its own.
//! For each step up, the fitted exponent k of time ∝ n^k: about 1 is linear, 1.1 or so is
//! n log n at these sizes, 2 is quadratic. Run by hand; not part of `all`.

use std::time::Instant;

use qaward_kit::{
    audit::{self, AuditRecord},
    db::Database,
    fields::{Algorithm, FieldKeys},
};
use qaward_reviewers::store;

use crate::draw;

#[derive(Debug, Clone, clap::Args)]
pub struct GrowthOptions {
    #[arg(long, env = "QAWARD_TEST_DATABASE_URL")]
    pub database_url: String,
    /// The largest size measured (1,000,000 takes some minutes per kind).
    #[arg(long, default_value_t = 1_000_000)]
    pub max: usize,
}

#[derive(Debug, Clone, clap::Args)]
pub struct OneOptions {
    #[arg(long, env = "QAWARD_TEST_DATABASE_URL")]
    pub database_url: String,
    /// draw, results or audit.
    #[arg(long)]
    pub what: String,
    #[arg(long)]
    pub size: usize,
}

async fn fresh(url: &str, what: &str) -> Result<(Database, String), String> {
    let schema = format!("bench_growth_{what}_{}", std::process::id());
    let db = Database::connect_postgres(url, &schema, 4)
        .await
        .map_err(|e| e.to_string())?;
    Ok((db, schema))
}

async fn drop_schema(db: &Database, schema: &str) -> Result<(), String> {
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(db.pool())
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// One size of one kind: its measured seconds, in this process.
pub async fn one(o: OneOptions) -> Result<(), String> {
    let seconds = match o.what.as_str() {
        "draw" => {
            let (db, schema) = fresh(&o.database_url, "draw").await?;
            db.migrate(&schema, &qaward_reviewers::MIGRATIONS)
                .await
                .map_err(|e| e.to_string())?;
            let keys = FieldKeys::ephemeral(Algorithm::Sm4Gcm);
            // In parts of 200,000 rows: a whole export of a million is past the import's
            // 32 MiB limit, as it would be for the registry keeper.
            for from in (0..o.size).step_by(200_000) {
                let part = draw::registry_csv_rows(from..(from + 200_000).min(o.size));
                draw::import(&db, &part, &keys).await?;
            }
            draw::relate(&db, o.size, o.size / 5).await?;
            // The cold draw: the registry read afresh, every exclusion decided, 5 + 3 drawn.
            let cache = store::RegistryCache::default();
            let t = Instant::now();
            draw::draw_once(&db, &cache, 0).await?;
            let s = t.elapsed().as_secs_f64();
            drop_schema(&db, &schema).await?;
            s
        }
        "audit" => {
            let (db, schema) = fresh(&o.database_url, "audit").await?;
            db.migrate(&schema, &qaward_kit::db::Migrations::NONE)
                .await
                .map_err(|e| e.to_string())?;
            let at = time::OffsetDateTime::now_utc();
            let mut done = 0;
            while done < o.size {
                let mut tx = db.begin().await.map_err(|e| e.message.clone())?;
                for i in done..(done + 10_000).min(o.size) {
                    let record = AuditRecord {
                        actor: "qaward-local|office-1".into(),
                        role: "office".into(),
                        action: "application.submit".into(),
                        resource: format!("programmes/p/cycles/2027/applications/{i:08}"),
                        reason: "R-05".into(),
                        detail: serde_json::json!({ "n": i }),
                    };
                    audit::append(&mut tx, at, &record)
                        .await
                        .map_err(|e| e.message.clone())?;
                }
                tx.commit().await.map_err(|e| e.to_string())?;
                done = (done + 10_000).min(o.size);
            }
            // Chained, as the service's sequencer does after each commit; not timed.
            audit::sequence_all(&db)
                .await
                .map_err(|e| e.message.clone())?;
            let t = Instant::now();
            let verdict = audit::verify(&db).await.map_err(|e| e.message.clone())?;
            let s = t.elapsed().as_secs_f64();
            if !matches!(verdict, audit::Verdict::Intact { .. }) {
                return Err(format!("the trail does not verify: {verdict:?}"));
            }
            drop_schema(&db, &schema).await?;
            s
        }
        other => return Err(format!("unknown kind {other}")),
    };
    println!(
        "{}",
        serde_json::json!({ "what": o.what, "size": o.size, "seconds": seconds, "peak_kib": crate::process::peak_kib("self") })
    );
    Ok(())
}

/// Runs this binary with `args` on `database_url`; what it printed, or why it failed.
async fn child(
    me: &std::path::Path,
    args: &[&str],
    database_url: &str,
    what: &str,
    size: usize,
) -> Result<String, String> {
    let out = tokio::process::Command::new(me)
        .args(args)
        .args(["--database-url", database_url])
        .output()
        .await
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "{what} at {size}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Every kind at every size up to `max`, each in a child process; then the fitted exponents.
pub async fn run(o: GrowthOptions) -> Result<(), String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let plan: [(&str, [usize; 3]); 3] = [
        ("draw", [10_000, 100_000, 1_000_000]),
        ("results", [1_000, 10_000, 100_000]),
        ("audit", [10_000, 100_000, 1_000_000]),
    ];
    for (what, sizes) in plan {
        let mut points: Vec<(usize, f64, u64)> = Vec::new();
        for size in sizes.into_iter().filter(|s| *s <= o.max) {
            eprintln!("growth: {what} at {size}");
            let (seconds, peak) = if what == "results" {
                // The results scenario itself, one repetition: its median is the time.
                let size_arg = size.to_string();
                let args = ["results", "--repeat", "1", "--applications", &size_arg];
                let text = child(&me, &args, &o.database_url, what, size).await?;
                let ms = text
                    .lines()
                    .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                    .find(|v| v["metric"] == "compute_cycle_median")
                    .and_then(|v| v["value"].as_f64())
                    .ok_or("results printed no compute_cycle_median")?;
                (ms / 1000.0, 0)
            } else {
                let size_arg = size.to_string();
                let args = ["growth-one", "--what", what, "--size", &size_arg];
                let text = child(&me, &args, &o.database_url, what, size).await?;
                let v: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| format!("{what} at {size}: {e}"))?;
                (
                    v["seconds"].as_f64().unwrap_or(f64::NAN),
                    v["peak_kib"].as_u64().unwrap_or(0),
                )
            };
            let exponent = points
                .last()
                .map(|(n0, t0, _)| (seconds / t0).ln() / (size as f64 / *n0 as f64).ln());
            println!(
                "{}",
                serde_json::json!({
                    "scenario": "growth", "what": what, "size": size,
                    "seconds": (seconds * 1e4).round() / 1e4, "peak_kib": peak,
                    "exponent_from_previous": exponent.map(|k| (k * 100.0).round() / 100.0),
                })
            );
            points.push((size, seconds, peak));
        }
    }
    Ok(())
}
