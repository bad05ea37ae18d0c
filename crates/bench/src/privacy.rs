//! Scenario `privacy` (issue 23, item 6): what sealing personal data at rest costs. The
//! registry import (parse, validate, minimise the ID, seal the mobile, upsert) — first into an
//! empty registry, then the same export again (each stored row opened to compare) — and a cold
//! draw (the registry read afresh, as after any change to it), each with SM4-GCM sealing and
//! with AES-256-GCM, against the same with sealing off, on PostgreSQL, in one run, the modes
//! taking turns. Target: ≥ 0.8× the throughput with sealing off.

use std::time::Instant;

use qaward_kit::{
    db::Database,
    fields::{Algorithm, FieldKeys},
};
use qaward_reviewers::store;

use crate::{
    Figure,
    draw::{self, median},
};

#[derive(Debug, Clone, clap::Args)]
pub struct PrivacyOptions {
    /// postgres://… (fresh schemas are made in it, one per mode).
    #[arg(long, env = "QAWARD_TEST_DATABASE_URL")]
    pub database_url: String,
    #[arg(long, default_value_t = 50_000)]
    pub reviewers: usize,
    #[arg(long, default_value_t = 10_000)]
    pub relations: usize,
    /// Rounds; each mode imports and draws once a round.
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
}

struct Mode {
    name: &'static str,
    keys: FieldKeys,
    db: Database,
    first: Vec<f64>,
    again: Vec<f64>,
    cold: Vec<f64>,
}

pub async fn run(o: PrivacyOptions) -> Result<(), String> {
    let mut modes = Vec::new();
    for (name, keys) in [
        ("sealing_off", FieldKeys::off_for_benchmark()),
        ("sm4_gcm", FieldKeys::ephemeral(Algorithm::Sm4Gcm)),
        ("aes_256_gcm", FieldKeys::ephemeral(Algorithm::Aes256Gcm)),
    ] {
        let schema = format!("bench_privacy_{}_{name}", std::process::id());
        let db = Database::connect_postgres(&o.database_url, &schema, 4)
            .await
            .map_err(|e| e.to_string())?;
        db.migrate(&schema, &qaward_reviewers::MIGRATIONS)
            .await
            .map_err(|e| e.to_string())?;
        modes.push(Mode {
            name,
            keys,
            db,
            first: Vec::new(),
            again: Vec::new(),
            cold: Vec::new(),
        });
    }
    let csv = draw::registry_csv(o.reviewers);
    // Each round starts with another mode, so no mode always runs first (after a DELETE of the
    // previous one's rows, or with a colder cache).
    let n = modes.len();
    for round in 0..o.repeat {
        for i in 0..n {
            let m = &mut modes[(round + i) % n];
            sqlx::query("DELETE FROM reviewers")
                .execute(m.db.pool())
                .await
                .map_err(|e| e.to_string())?;
            m.first.push(draw::import(&m.db, &csv, &m.keys).await?);
            m.again.push(draw::import(&m.db, &csv, &m.keys).await?);
        }
        eprintln!("privacy: import round {round} done");
    }
    for m in &modes {
        draw::relate(&m.db, o.reviewers, o.relations).await?;
    }
    for k in 0..o.repeat {
        for i in 0..n {
            let m = &mut modes[(k + i) % n];
            // A fresh cache: the draw reads the whole registry, as after any change to it.
            let cache = store::RegistryCache::default();
            let t = Instant::now();
            draw::draw_once(&m.db, &cache, k).await?;
            m.cold.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let stored: i64 = sqlx::Row::get(
        &sqlx::query("SELECT COUNT(*) AS n FROM reviewers WHERE mobile LIKE 'enc1:sm4-gcm:%'")
            .fetch_one(modes[1].db.pool())
            .await
            .map_err(|e| e.to_string())?,
        "n",
    );
    if stored as usize != o.reviewers {
        return Err(format!("{stored} of {} mobiles sealed", o.reviewers));
    }
    let rows = o.reviewers as f64;
    let base = |f: fn(&Mode) -> &Vec<f64>| median(f(&modes[0]).clone());
    for m in &modes[1..] {
        let metric = |what: &'static str| -> &'static str {
            match (m.name, what) {
                ("sm4_gcm", "first") => "import_rows_per_second_sm4_gcm",
                ("sm4_gcm", "again") => "reimport_rows_per_second_sm4_gcm",
                ("sm4_gcm", _) => "cold_draws_per_second_sm4_gcm",
                (_, "first") => "import_rows_per_second_aes_256_gcm",
                (_, "again") => "reimport_rows_per_second_aes_256_gcm",
                _ => "cold_draws_per_second_aes_256_gcm",
            }
        };
        for (what, value, baseline, unit, per) in [
            (
                "first",
                median(m.first.clone()),
                base(|m| &m.first),
                "rows/s",
                rows,
            ),
            (
                "again",
                median(m.again.clone()),
                base(|m| &m.again),
                "rows/s",
                rows,
            ),
            (
                "cold",
                median(m.cold.clone()),
                base(|m| &m.cold),
                "draws/s",
                1000.0,
            ),
        ] {
            Figure {
                scenario: "privacy",
                metric: metric(what),
                unit,
                value: per / value,
                baseline: "sealing_off",
                baseline_value: per / baseline,
            }
            .print();
        }
    }
    for m in &modes {
        let schema = format!("bench_privacy_{}_{}", std::process::id(), m.name);
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(m.db.pool())
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
