//! Scenario `results`: computing a cycle's results for 10,000 applications,
//! each with its materials and site consensus sheets and 5 defence sheets, against simply
//! reading the same rows from the database in the same run.

use std::time::Instant;

use qaward_kit::db::Database;
use qaward_scoring::{
    domain::{
        lifecycle::{Sheet, SheetKind, SheetState},
        results::Settings,
        rubric::Rubric,
    },
    store::{self, AssignmentRow},
};

use crate::Figure;

#[derive(Debug, Clone, clap::Args)]
pub struct ResultsOptions {
    /// postgres://… (a fresh schema is made in it).
    #[arg(long, env = "QAWARD_TEST_DATABASE_URL")]
    pub database_url: String,
    #[arg(long, default_value_t = 10_000)]
    pub applications: usize,
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[v.len() / 2]
}

fn sheet(id: String, assignment: &str, reviewer: &str, kind: SheetKind, total: String) -> Sheet {
    Sheet {
        id,
        version: 1,
        assignment_id: assignment.to_string(),
        reviewer: reviewer.to_string(),
        kind,
        state: SheetState::Submitted,
        items: Vec::new(),
        defence_score: if kind == SheetKind::Defence {
            total.clone()
        } else {
            String::new()
        },
        total,
        seal_hash: "0".repeat(64),
        correction_reason: String::new(),
        submitted_micros: Some(0),
    }
}

pub async fn run(o: ResultsOptions) -> Result<(), String> {
    let schema = format!("bench_results_{}", std::process::id());
    let db = Database::connect_postgres(&o.database_url, &schema, 4)
        .await
        .map_err(|e| e.to_string())?;
    db.migrate(&schema, &qaward_scoring::MIGRATIONS)
        .await
        .map_err(|e| e.to_string())?;
    let now = time::OffsetDateTime::now_utc();
    let cycle = "programmes/bench/cycles/2026";
    let mut tx = db.begin().await.map_err(|e| e.message.clone())?;
    store::insert_rubric(&mut tx, "gbt", &Rubric::gbt_19580_2012(), now)
        .await
        .map_err(|e| e.message.clone())?;
    for a in 0..o.applications {
        let app = format!("{cycle}/applications/{a:05}");
        for (stage, people) in [("MATERIALS", 3), ("SITE", 3), ("DEFENCE", 5)] {
            let id = format!("{a:05}-{}", stage.to_lowercase());
            let row = AssignmentRow {
                id: id.clone(),
                cycle: cycle.into(),
                application: app.clone(),
                stage: stage.into(),
                rubric_id: "gbt".into(),
                rubric_version: 1,
                enterprise_code: String::new(),
                recommending_unit: String::new(),
                hold_reason: String::new(),
                window_start: String::new(),
                window_end: String::new(),
                people: (0..people)
                    .map(|p| {
                        (
                            format!("R{p}"),
                            if p == 0 && stage != "DEFENCE" {
                                "LEADER"
                            } else {
                                "MEMBER"
                            }
                            .to_string(),
                        )
                    })
                    .collect(),
            };
            store::insert_assignment(&mut tx, &row, now)
                .await
                .map_err(|e| e.message.clone())?;
            // Scores spread so that every outcome occurs.
            match stage {
                "DEFENCE" => {
                    for p in 0..5 {
                        let score = format!("{}.{}", 60 + (a * 7 + p * 3) % 40, p);
                        store::insert_sheet(
                            &mut tx,
                            &sheet(
                                format!("{id}-{p}"),
                                &id,
                                &format!("R{p}"),
                                SheetKind::Defence,
                                score,
                            ),
                        )
                        .await
                        .map_err(|e| e.message.clone())?;
                    }
                }
                _ => {
                    let total = format!("{}.5", 380 + (a * 37) % 300);
                    store::insert_sheet(
                        &mut tx,
                        &sheet(
                            format!("{id}-consensus"),
                            &id,
                            "R0",
                            SheetKind::Consensus,
                            total,
                        ),
                    )
                    .await
                    .map_err(|e| e.message.clone())?;
                }
            }
        }
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    sqlx::query("ANALYZE")
        .execute(db.pool())
        .await
        .map_err(|e| e.to_string())?;

    let settings = Settings::default();
    let (mut ours, mut read) = (Vec::new(), Vec::new());
    let mut summary = String::new();
    for _ in 0..o.repeat {
        let t = Instant::now();
        let mut conn = db.pool().acquire().await.map_err(|e| e.to_string())?;
        let rows = store::cycle_sheets(&mut conn, cycle)
            .await
            .map_err(|e| e.message.clone())?;
        drop(conn);
        std::hint::black_box(rows.len());
        read.push(t.elapsed().as_secs_f64() * 1000.0);

        let t = Instant::now();
        let r = qaward_scoring::compute_cycle(&db, cycle, &settings)
            .await
            .map_err(|e| e.message.clone())?;
        ours.push(t.elapsed().as_secs_f64() * 1000.0);
        let count = |o| r.results.iter().filter(|x| x.outcome == o).count();
        use qaward_scoring::domain::results::Outcome::*;
        summary = format!(
            "{} applications: {} failed materials, {} not in final selection, {} not candidates, {} candidates, {} tied at the cut",
            r.results.len(),
            count(FailedMaterials),
            count(NotInFinalSelection),
            count(NotCandidate),
            count(Candidate),
            count(TiedAtCut)
        );
    }
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(db.pool())
        .await
        .map_err(|e| e.to_string())?;
    eprintln!("{summary}");
    Figure {
        scenario: "results",
        metric: "compute_cycle_median",
        unit: "ms",
        value: median(ours),
        baseline: "read_same_rows",
        baseline_value: median(read),
    }
    .print();
    Ok(())
}
