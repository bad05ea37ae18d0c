//! Scenario `submit`: the write path of an application submission on PostgreSQL against
//! pgbench-style single-row inserts at the same concurrency.
//!
//! Target: `ApplicationService/SubmitApplication` over gRPC to the applications service started
//! in-process as `qaward serve` starts it, on PostgreSQL with the default pool (8). Each call
//! checks the token and the request id, loads the application, its cycle, enterprise, settings
//! and evidence, decides (R-01, R-02-R-05 eligibility, materials limits), and in one
//! transaction writes the application, its audit record (hash-chained, R-50), an outbox event
//! for the notification and the request-log entry.
//! Baseline: pgbench's insert of its `pgbench_history` row (`INSERT … VALUES (…)`, autocommit)
//! from a pool of the same size, with as many concurrent callers, in the same database.
//! Second baseline (issue 22, item 4): the same submissions to a second instance of the service
//! whose commits leave the audit record out (`Database::without_audit_for_benchmark`): what the
//! trail costs. And at one caller, both again: whether the trail keeps submissions from
//! scaling (their ratio to INSERT at 16 callers against the same ratio at one).
//! Set-up (enterprises, drafts, evidence) is not measured.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use qaward_kit::{
    auth::Role,
    config::Config,
    db::Database,
    server::{ServiceContext, ServiceHost, bind},
    testing::TestKeys,
};
use qaward_proto::qaward::applications::v1::{
    self as pb, application_service_client::ApplicationServiceClient,
    application_service_server::ApplicationServiceServer,
};
use tonic::transport::Channel;

use crate::{Figure, load::LoadResult};

#[derive(Debug, Clone, clap::Args)]
pub struct SubmitOptions {
    /// postgres://… (a fresh schema is made in it and dropped after).
    #[arg(long, env = "QAWARD_TEST_DATABASE_URL")]
    pub database_url: String,
    /// Applications submitted (and rows inserted by the baseline, per round).
    #[arg(long, default_value_t = 2_000)]
    pub applications: usize,
    /// Concurrent callers on both sides.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
}

fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    if let Ok(v) = format!("Bearer {token}").parse() {
        r.metadata_mut().insert("authorization", v);
    }
    r
}

/// `n` calls made by `concurrency` callers, each call given its index.
async fn drive<F, Fut>(n: usize, concurrency: usize, call: F) -> Result<LoadResult, String>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut callers = Vec::new();
    for _ in 0..concurrency {
        let (next, call) = (next.clone(), call.clone());
        callers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, String>(latencies);
                }
                let t = Instant::now();
                call(i).await?;
                latencies.push(t.elapsed().as_micros() as u64);
            }
        }));
    }
    let mut latencies_us = Vec::new();
    for c in callers {
        latencies_us.extend(c.await.map_err(|e| e.to_string())??);
    }
    let elapsed = started.elapsed();
    Ok(LoadResult::merge(vec![LoadResult {
        send_lag_us: Vec::new(),
        calls: n,
        errors: 0,
        elapsed,
        latencies_us,
    }]))
}

pub async fn run(o: SubmitOptions) -> Result<(), String> {
    let schema = format!("bench_submit_{}", std::process::id());
    let config = Config::default();
    let db = Database::connect_postgres(
        &o.database_url,
        &schema,
        config.server.database_max_connections,
    )
    .await
    .map_err(|e| e.to_string())?;
    db.migrate(&schema, &qaward_applications::MIGRATIONS)
        .await
        .map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let keys = Arc::new(TestKeys::new());
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        ..config
    };
    let blobs =
        qaward_applications::blobs::BlobStore::from_config(&config).map_err(|e| e.to_string())?;
    let ctx = ServiceContext {
        config: Arc::new(config),
        verifier: keys.verifier.clone(),
        clock: Arc::new(qaward_kit::clock::SystemClock),
        randomness: Arc::new(qaward_kit::clock::SeededRandomness::new(1)),
        audit: std::sync::Arc::new(qaward_kit::audit::AuditKey::ephemeral()),
        in_process: Default::default(),
        fields: std::sync::Arc::new(qaward_kit::fields::FieldKeys::ephemeral(
            qaward_kit::fields::Algorithm::Sm4Gcm,
        )),
    };
    // Two instances on the one database: as `qaward serve` runs it, and with commits that write
    // no audit record (the second baseline).
    let mut clients = Vec::new();
    for audited in [true, false] {
        let db = if audited {
            db.clone()
        } else {
            db.clone().without_audit_for_benchmark()
        };
        let host = ServiceHost::new("applications", &ctx.config.server, ctx.verifier.clone())
            .add_service(ApplicationServiceServer::new(
                qaward_applications::ApplicationsApi::new(db, ctx.clone(), blobs.clone()),
            ));
        let listener = bind("127.0.0.1:0".parse().unwrap()).await?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        tokio::spawn(host.serve(listener, std::future::pending()));
        let channel: Channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| e.to_string())?
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        clients.push(ApplicationServiceClient::new(channel));
    }
    let (client, unaudited) = (clients[0].clone(), clients[1].clone());

    // Set-up: the programme, the cycle, and one complete draft with evidence per enterprise.
    let office = keys.token_for("office-1", Role::Office, "yunyang");
    let mut c = client.clone();
    c.create_programme(with_token(
        pb::CreateProgrammeRequest {
            programme: Some(pb::Programme {
                display_name: "云阳县县长质量奖".into(),
                ..Default::default()
            }),
            programme_id: "yunyang".into(),
            request_id: String::new(),
        },
        &office,
    ))
    .await
    .map_err(|e| format!("programme: {e}"))?;
    let deadline = time::OffsetDateTime::now_utc() + time::Duration::days(30);
    let cycle = c
        .create_cycle(with_token(
            pb::CreateCycleRequest {
                parent: "programmes/yunyang".into(),
                cycle: Some(pb::Cycle {
                    year: deadline.year(),
                    notice_title: "通知".into(),
                    conditions: "条件".into(),
                    required_materials: vec!["申报表".into()],
                    deadline: Some(prost_types::Timestamp {
                        seconds: deadline.unix_timestamp(),
                        nanos: 0,
                    }),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &office,
        ))
        .await
        .map_err(|e| format!("cycle: {e}"))?
        .into_inner()
        .name;
    // Drafts for the three submission runs: audited at full concurrency, unaudited at full
    // concurrency, audited at one caller.
    let codes: Vec<String> = (0..3 * o.applications)
        .map(|i| {
            qaward_kit::cn::with_check(&format!("91500235MA{:07}", 1_000_000 + i))
                .unwrap_or_default()
        })
        .collect();
    eprintln!("setting up {} drafts…", codes.len());
    let set_up = {
        let (client, codes, keys, office, cycle) = (
            client.clone(),
            Arc::new(codes.clone()),
            keys.clone(),
            Arc::new(office),
            Arc::new(cycle.clone()),
        );
        move |i: usize| {
            let (mut client, codes, keys, office, cycle) = (
                client.clone(),
                codes.clone(),
                keys.clone(),
                office.clone(),
                cycle.clone(),
            );
            async move {
                let code = &codes[i];
                client
                    .create_enterprise(with_token(
                        pb::CreateEnterpriseRequest {
                            enterprise: Some(pb::Enterprise {
                                display_name: format!("重庆云阳测试{i}有限公司"),
                                credit_code: code.clone(),
                                established_date: Some(qaward_proto::qaward::common::v1::Date {
                                    year: 2012,
                                    month: 4,
                                    day: 18,
                                }),
                                industry_code: "C34".into(),
                                recommending_unit: "qinglong-street".into(),
                                ..Default::default()
                            }),
                            request_id: String::new(),
                        },
                        &office,
                    ))
                    .await
                    .map_err(|e| format!("enterprise: {e}"))?;
                let me = keys.token_for_org("e", Role::Enterprise, code);
                let app = client
                    .create_application(with_token(
                        pb::CreateApplicationRequest {
                            parent: (*cycle).clone(),
                            application: Some(pb::Application {
                                enterprise: format!("enterprises/{code}"),
                                application_form: "申报表".into(),
                                organisation_profile: "企业概况".repeat(50),
                                self_assessment: "卓越绩效自评报告".repeat(500),
                                ..Default::default()
                            }),
                            request_id: String::new(),
                        },
                        &me,
                    ))
                    .await
                    .map_err(|e| format!("draft: {e}"))?
                    .into_inner();
                let pdf = b"%PDF-1.7\n% evidence\n".to_vec();
                let parts = vec![
                    pb::UploadEvidenceRequest {
                        part: Some(pb::upload_evidence_request::Part::Header(
                            pb::EvidenceHeader {
                                parent: app.name.clone(),
                                file_name: "质量手册.pdf".into(),
                                content_type: "application/pdf".into(),
                                size_bytes: pdf.len() as i64,
                                ..Default::default()
                            },
                        )),
                        request_id: String::new(),
                    },
                    pb::UploadEvidenceRequest {
                        part: Some(pb::upload_evidence_request::Part::Chunk(pdf)),
                        request_id: String::new(),
                    },
                ];
                client
                    .upload_evidence(with_token(tokio_stream::iter(parts), &me))
                    .await
                    .map_err(|e| format!("evidence: {e}"))?;
                Ok(())
            }
        }
    };
    drive(3 * o.applications, 8, set_up).await?;

    // The baseline table, as pgbench creates it.
    let pg = sqlx::postgres::PgPoolOptions::new()
        .max_connections(ctx.config.server.database_max_connections)
        .connect(&o.database_url)
        .await
        .map_err(|e| e.to_string())?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE {schema}.pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22))"
    )))
    .execute(&pg)
    .await
    .map_err(|e| e.to_string())?;
    let insert = {
        let (pg, sql) = (
            pg.clone(),
            Arc::new(format!(
                "INSERT INTO {schema}.pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)"
            )),
        );
        move |i: usize| {
            let (pg, sql) = (pg.clone(), sql.clone());
            async move {
                sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                    .bind((i % 10) as i32)
                    .bind(1i32)
                    .bind(i as i32)
                    .bind((i % 5000) as i32 - 2500)
                    .execute(&pg)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }
    };
    // Tokens are minted before the clock starts: the platform's identity provider signs them.
    let tokens: Arc<Vec<String>> = Arc::new(
        codes
            .iter()
            .map(|code| keys.token_for_org("e", Role::Enterprise, code))
            .collect(),
    );
    let submit = |client: ApplicationServiceClient<Channel>, offset: usize| {
        let (codes, cycle, tokens) = (
            Arc::new(codes.clone()),
            Arc::new(cycle.clone()),
            tokens.clone(),
        );
        move |i: usize| {
            let i = i + offset;
            let (mut client, codes, cycle, tokens) =
                (client.clone(), codes.clone(), cycle.clone(), tokens.clone());
            async move {
                let code = &codes[i];
                let a = client
                    .submit_application(with_token(
                        pb::SubmitApplicationRequest {
                            name: format!("{cycle}/applications/{code}"),
                            request_id: format!("submit-{i}"),
                        },
                        &tokens[i],
                    ))
                    .await
                    .map_err(|e| format!("submit: {e}"))?
                    .into_inner();
                if a.stage != pb::ApplicationStage::Submitted as i32 {
                    return Err(format!("{} ended in stage {}", a.name, a.stage));
                }
                Ok(())
            }
        }
    };

    // Baselines around targets: drift on the shared machine hits both sides.
    let n = o.applications;
    let c = o.concurrency;
    let before = drive(n, c, insert.clone()).await?;
    let target = drive(n, c, submit(client.clone(), 0)).await?;
    let without_audit = drive(n, c, submit(unaudited, n)).await?;
    let after = drive(n, c, insert.clone()).await?;
    let baseline = LoadResult::merge(vec![before, after]);
    let single_insert = drive(n / 4, 1, insert.clone()).await?;
    let single = drive(n / 4, 1, submit(client.clone(), 2 * n)).await?;
    let single_after = drive(n / 4, 1, insert).await?;
    let single_insert = LoadResult::merge(vec![single_insert, single_after]);
    let ms = |r: &LoadResult, p: f64| r.percentile(p) / 1000.0;
    let name = "pgbench-style single-row INSERT";
    for f in [
        Figure {
            scenario: "submit",
            metric: "throughput",
            unit: "req/s",
            value: target.throughput(),
            baseline: name,
            baseline_value: baseline.throughput(),
        },
        Figure {
            scenario: "submit",
            metric: "p50_latency",
            unit: "ms",
            value: ms(&target, 50.0),
            baseline: name,
            baseline_value: ms(&baseline, 50.0),
        },
        Figure {
            scenario: "submit",
            metric: "p99_latency",
            unit: "ms",
            value: ms(&target, 99.0),
            baseline: name,
            baseline_value: ms(&baseline, 99.0),
        },
        Figure {
            scenario: "submit",
            metric: "throughput_vs_no_audit",
            unit: "req/s",
            value: target.throughput(),
            baseline: "the same submissions without their audit record",
            baseline_value: without_audit.throughput(),
        },
        Figure {
            scenario: "submit",
            metric: "p99_latency_vs_no_audit",
            unit: "ms",
            value: ms(&target, 99.0),
            baseline: "the same submissions without their audit record",
            baseline_value: ms(&without_audit, 99.0),
        },
        Figure {
            scenario: "submit",
            metric: "throughput_1_caller",
            unit: "req/s",
            value: single.throughput(),
            baseline: "pgbench-style single-row INSERT, 1 caller",
            baseline_value: single_insert.throughput(),
        },
    ] {
        f.print();
    }
    let scaled = target.throughput() / baseline.throughput();
    let alone = single.throughput() / single_insert.throughput();
    eprintln!(
        "submit: ratio to INSERT at {c} callers {scaled:.3}, at 1 caller {alone:.3} (target: the first at least the second); with the trail {:.3}x of without it (target >= 0.8)",
        target.throughput() / without_audit.throughput()
    );
    // What one submission wrote, for the account.
    let count = |table: &'static str| {
        let (pg, schema) = (pg.clone(), schema.clone());
        async move {
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM {schema}.{table}"
            )))
            .fetch_one(&pg)
            .await
            .unwrap_or(-1)
        }
    };
    eprintln!(
        "submit: {n} submissions at concurrency {}; rows now: audit_log {}, audit_pending {}, outbox {}, request_log {}",
        o.concurrency,
        count("audit_log").await,
        count("audit_pending").await,
        count("outbox").await,
        count("request_log").await
    );
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&pg)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}
