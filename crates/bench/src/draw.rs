//! Scenario `draw`: a reviewer draw of 5 members and 3 backups with full recusal, against
//! the naive `ORDER BY random() LIMIT 8` over the same filtered table, on PostgreSQL with a
//! registry of `--reviewers` rows and `--relations` relations; also the time to import the
//! registry (parse, validate, upsert).

use std::time::Instant;

use qaward_kit::{cn, db::Database};
use qaward_reviewers::{
    domain::{
        draw::{self, Prepared, SpecialityNeed},
        eligibility::Load,
        pool,
        registry::{self, Encoding, Format},
    },
    store,
};

use crate::Figure;

#[derive(Debug, Clone, clap::Args)]
pub struct DrawOptions {
    /// postgres://… (a fresh schema is made in it).
    #[arg(long, env = "QAWARD_TEST_DATABASE_URL")]
    pub database_url: String,
    #[arg(long, default_value_t = 100_000)]
    pub reviewers: usize,
    #[arg(long, default_value_t = 20_000)]
    pub relations: usize,
    /// Timed repetitions of each draw method.
    #[arg(long, default_value_t = 20)]
    pub repeat: usize,
}

const SPECS: [&str; 20] = [
    "C13", "C14", "C15", "C17", "C18", "C19", "C20", "C21", "C22", "C23", "C24", "C25", "C26",
    "C27", "C28", "C29", "C30", "C31", "C32", "C33",
];

fn enterprise(i: usize) -> String {
    cn::with_check(&format!("91500235MA{:07}", i % 10_000_000)).expect("valid code")
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[v.len() / 2]
}

/// A CSV export of a registry of `n` reviewers, as the municipal registry gives it.
pub(crate) fn registry_csv(n: usize) -> String {
    registry_csv_rows(0..n)
}

/// The rows `range` of such an export (an export past the import's size limit goes in parts).
pub(crate) fn registry_csv_rows(range: std::ops::Range<usize>) -> String {
    let mut csv = String::from(
        "name,mobile,resident_id,certificate_number,certificate_valid_from,certificate_valid_until,specialities,employer_code,leader_qualified,status\n",
    );
    for i in range {
        let until = if i % 50 == 0 {
            "2025-12-31"
        } else {
            "2029-12-31"
        };
        csv.push_str(&format!(
            "R{i},139{:08},11010519491231002X,B-{i:06},2023-01-01,{until},{},{},{},ACTIVE\n",
            i % 100_000_000,
            SPECS[i % SPECS.len()],
            enterprise(i * 7 + 1),
            i % 3 == 0
        ));
    }
    csv
}

/// Parses, validates and upserts a registry export sealed with `fields`, in one transaction;
/// the seconds it took.
pub(crate) async fn import(
    db: &Database,
    csv: &str,
    fields: &qaward_kit::fields::FieldKeys,
) -> Result<f64, String> {
    let now = time::OffsetDateTime::now_utc();
    let t = Instant::now();
    let registry::Import { good, rejected, .. } =
        registry::parse(csv.as_bytes(), Format::Csv, Encoding::Utf8).map_err(|e| e.0)?;
    let mut tx = db.begin().await.map_err(|e| e.message.clone())?;
    let n = store::upsert_reviewers(&mut tx, &good, now, fields)
        .await
        .map_err(|e| e.message.clone())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    if std::env::var("QAWARD_BENCH_DIAG").is_ok() {
        eprintln!("import: {n:?}");
    }
    if !rejected.is_empty() {
        return Err(format!("{} rows rejected", rejected.len()));
    }
    Ok(t.elapsed().as_secs_f64())
}

/// The applicant the bench draws for, and a draw's window and needs.
pub(crate) const WINDOW: (&str, &str) = ("2026-03-02", "2026-03-06");

pub(crate) fn applicant() -> String {
    enterprise(424_242)
}

/// One draw as the service makes it: load the candidates' facts (through `cache`), decide
/// every exclusion, record and hash, draw. The milliseconds of each phase (load, rules,
/// record, draw) and the pool's size.
pub(crate) async fn draw_once(
    db: &Database,
    cache: &store::RegistryCache,
    k: usize,
) -> Result<([f64; 4], usize), String> {
    let (from, to) = WINDOW;
    let enterprises = vec![applicant()];
    let needs = vec!["C13".to_string()];
    let load = Load {
        yearly_cap: 6,
        cooldown_days: 0,
    };
    let t = Instant::now();
    let mut conn = db.pool().acquire().await.map_err(|e| e.to_string())?;
    let candidates =
        store::candidate_facts(&mut conn, cache, "bench", &needs, &enterprises, from, to)
            .await
            .map_err(|e| e.message.clone())?;
    let t_loaded = t.elapsed().as_secs_f64() * 1000.0;
    // The service's own pool rule (no appointment in the bench programme).
    let group = pool::Group {
        enterprises: &enterprises,
        from,
        to,
    };
    let (pool, exclusions) = pool::split(candidates, group, load, None);
    let t_ruled = t.elapsed().as_secs_f64() * 1000.0;
    let prepared = Prepared {
        algorithm: draw::ALGORITHM.into(),
        draw: format!("programmes/bench/draws/{k}"),
        programme: "programmes/bench".into(),
        purpose: "MATERIALS_GROUP".into(),
        enterprise_codes: enterprises.clone(),
        size: 5,
        backups: 3,
        specialities: vec![SpecialityNeed {
            code: "C13".into(),
            min: 1,
        }],
        leader_required: true,
        window_start: from.into(),
        window_end: to.into(),
        policy_version: 1,
        entropy_source: "bench".into(),
        entropy_commitment: String::new(),
        replaces_draw: String::new(),
        pool,
        pool_hash: String::new(),
        exclusions,
        entropy_parties: vec![],
        fixes_public_value: false,
        reveal_deadline_micros: 0,
    }
    .normalise();
    // As PrepareDraw and ExecuteDraw do: the record is serialised and hashed once.
    let inputs_hash = draw::sha256_hex(prepared.to_json().as_bytes());
    let t_recorded = t.elapsed().as_secs_f64() * 1000.0;
    let outcome = draw::execute_hashed(&prepared, &inputs_hash, &format!("entropy-{k}"))
        .map_err(|s| s.message())?;
    assert_eq!(outcome.members.len() + outcome.backups.len(), 8);
    let total = t.elapsed().as_secs_f64() * 1000.0;
    Ok((
        [
            t_loaded,
            t_ruled - t_loaded,
            t_recorded - t_ruled,
            total - t_recorded,
        ],
        prepared.pool.len(),
    ))
}

/// `relations` ties of reviewers to enterprises, a tenth of them to the applicant the bench
/// draws for; then ANALYZE.
pub(crate) async fn relate(
    db: &Database,
    reviewers: usize,
    relations: usize,
) -> Result<(), String> {
    let now = time::OffsetDateTime::now_utc();
    let applicant = applicant();
    let mut tx = db.begin().await.map_err(|e| e.message.clone())?;
    for i in 0..relations {
        let row = store::RelationRow {
            id: format!("rel{i:06}"),
            reviewer_id: format!("B-{:06}", (i * 7919) % reviewers),
            enterprise_code: if i % 10 == 0 {
                applicant.clone()
            } else {
                enterprise(i)
            },
            kind: "SHAREHOLDING".into(),
            start_date: "2022-01-01".into(),
            end_date: None,
            note: String::new(),
        };
        store::insert_relation(&mut tx, &row, now)
            .await
            .map_err(|e| e.message.clone())?;
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    sqlx::query(sqlx::AssertSqlSafe("ANALYZE".to_string()))
        .execute(db.pool())
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

pub async fn run(o: DrawOptions) -> Result<(), String> {
    let schema = format!("bench_draw_{}", std::process::id());
    let db = Database::connect_postgres(&o.database_url, &schema, 4)
        .await
        .map_err(|e| e.to_string())?;
    db.migrate(&schema, &qaward_reviewers::MIGRATIONS)
        .await
        .map_err(|e| e.to_string())?;

    // Import: a CSV export of the whole registry, parsed, validated and upserted.
    let csv = registry_csv(o.reviewers);
    // Sealed as the service seals them, so the import's cost is the real one.
    let fields = qaward_kit::fields::FieldKeys::ephemeral(qaward_kit::fields::Algorithm::Sm4Gcm);
    let import_s = import(&db, &csv, &fields).await?;

    relate(&db, o.reviewers, o.relations).await?;
    let applicant = applicant();

    let (from, to) = WINDOW;

    // qaward's draw: load the candidates' facts, decide every exclusion, draw.
    // As in the service: one registry cache per process. The first draw reads the registry
    // (cold); later draws at the same registry version reuse it (warm).
    let cache = store::RegistryCache::default();
    let mut ours = Vec::new();
    let mut pool_size = 0;
    let mut phases = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for k in 0..o.repeat {
        let (times, size) = draw_once(&db, &cache, k).await?;
        pool_size = size;
        for (i, v) in times.into_iter().enumerate() {
            phases[i].push(v);
        }
        ours.push(times.iter().sum());
    }

    // The first draw after a registry change (issue 26, item 4): one reviewer of the pool gets
    // a DISCIPLINARY flag (and so leaves it), then the same draw again: the cached registry is
    // brought up to date by re-reading that reviewer alone.
    let mut after_change = Vec::new();
    for k in 0..o.repeat.min(10) {
        let mut tx = db.begin().await.map_err(|e| e.message.clone())?;
        store::insert_flag(
            &mut tx,
            &store::FlagRow {
                id: format!("bench-flag-{k}"),
                reviewer_id: format!("B-{:06}", 20 * (k + 1)),
                kind: "DISCIPLINARY".into(),
                start_date: "2026-01-01".into(),
                end_date: None,
                note: String::new(),
                resolved: false,
            },
            time::OffsetDateTime::now_utc(),
        )
        .await
        .map_err(|e| e.message.clone())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        let (times, _) = draw_once(&db, &cache, 1_000 + k).await?;
        after_change.push(times.iter().sum());
    }

    // Naive: the same filters in SQL, then ORDER BY random() LIMIT 8.
    let naive_sql = "SELECT id FROM reviewers r
        WHERE r.status = 'ACTIVE' AND r.specialities LIKE '% C13%'
          AND r.cert_valid_from <= $1 AND r.cert_valid_until >= $2 AND r.employer_code <> $3
          AND NOT EXISTS (SELECT 1 FROM relations x WHERE x.reviewer_id = r.id AND x.enterprise_code = $3
                          AND x.start_date <= $2 AND (x.end_date IS NULL OR x.end_date >= $1))
          AND NOT EXISTS (SELECT 1 FROM flags f WHERE f.reviewer_id = r.id AND f.resolved_micros IS NULL)
          AND NOT EXISTS (SELECT 1 FROM bookings b WHERE b.reviewer_id = r.id AND b.day >= $1 AND b.day <= $2)
        ORDER BY random() LIMIT 8";
    if std::env::var("QAWARD_BENCH_DIAG").is_ok() {
        let plan = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN ANALYZE {naive_sql}")))
            .bind(from)
            .bind(to)
            .bind(&applicant)
            .fetch_all(db.pool())
            .await
            .map_err(|e| e.to_string())?;
        for row in plan {
            eprintln!(
                "{}",
                sqlx::Row::try_get::<String, _>(&row, 0).unwrap_or_default()
            );
        }
    }
    // The baseline at its best: a custom plan every time. With a cached generic plan
    // PostgreSQL switches to after five executions, this query takes ~195 ms here.
    let mut naive = Vec::new();
    let mut conn = db.pool().acquire().await.map_err(|e| e.to_string())?;
    sqlx::query("SET plan_cache_mode = force_custom_plan")
        .execute(&mut *conn)
        .await
        .map_err(|e| e.to_string())?;
    for _ in 0..o.repeat {
        let t = Instant::now();
        let rows = sqlx::query(naive_sql)
            .bind(from)
            .bind(to)
            .bind(&applicant)
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| e.to_string())?;
        assert_eq!(rows.len(), 8);
        naive.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    sqlx::query("RESET plan_cache_mode")
        .execute(&mut *conn)
        .await
        .map_err(|e| e.to_string())?;
    drop(conn);
    if std::env::var("QAWARD_BENCH_DIAG").is_ok() {
        for sql in [
            "SELECT id FROM reviewers WHERE specialities LIKE '% C13%'",
            "SELECT id, specialities, leader_qualified FROM reviewers WHERE specialities LIKE '% C13%'",
            "SELECT id, specialities, leader_qualified, status, cert_valid_from, cert_valid_until, employer_code FROM reviewers WHERE specialities LIKE '% C13%'",
            "SELECT count(*) FROM reviewers WHERE specialities LIKE '% C13%'",
            "SELECT id, reviewer_id, enterprise_code, kind, start_date, end_date, note FROM relations WHERE enterprise_code = '__APPLICANT__'",
            "SELECT reviewer_id, window_start FROM assignments WHERE enterprise_code = '__APPLICANT__'",
            "SELECT id, reviewer_id, kind, start_date, end_date, note, resolved_micros FROM flags WHERE resolved_micros IS NULL",
            "SELECT reviewer_id, day FROM bookings WHERE day >= '2026-03-02' AND day <= '2026-03-06'",
        ] {
            let sql = sql.replace("__APPLICANT__", &applicant);
            let sql = sql.as_str();
            let mut times = Vec::new();
            for _ in 0..10 {
                let t = Instant::now();
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                    .fetch_all(db.pool())
                    .await
                    .map_err(|e| e.to_string())?;
                std::hint::black_box(rows.len());
                times.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            eprintln!("{:.2} ms  {sql}", median(times));
        }
    }
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(db.pool())
        .await
        .map_err(|e| e.to_string())?;

    eprintln!(
        "registry {} reviewers, {} relations; C13 pool after recusal: {pool_size}",
        o.reviewers, o.relations
    );
    let [load, rules, record, walk] = phases.map(median);
    eprintln!(
        "median phases (ms): load facts {load:.2}, rules {rules:.2}, record+hash {record:.2}, draw {walk:.2}"
    );
    Figure {
        scenario: "draw",
        metric: "draw_5_plus_3_after_a_registry_change",
        unit: "ms",
        value: median(after_change),
        baseline: "naive_order_by_random_limit_8",
        baseline_value: median(naive.clone()),
    }
    .print();
    let cold = ours[0];
    Figure {
        scenario: "draw",
        metric: "draw_5_plus_3_first_cold_cache",
        unit: "ms",
        value: cold,
        baseline: "naive_order_by_random_limit_8",
        baseline_value: median(naive.clone()),
    }
    .print();
    Figure {
        scenario: "draw",
        metric: "draw_5_plus_3_median",
        unit: "ms",
        value: median(ours),
        baseline: "naive_order_by_random_limit_8",
        baseline_value: median(naive),
    }
    .print();
    Figure {
        scenario: "draw",
        metric: "import_rows_per_second",
        unit: "rows/s",
        value: o.reviewers as f64 / import_s,
        baseline: "none",
        baseline_value: 0.0,
    }
    .print();
    Figure {
        scenario: "draw",
        metric: "import_seconds",
        unit: "s",
        value: import_s,
        baseline: "none",
        baseline_value: 0.0,
    }
    .print();
    Ok(())
}
