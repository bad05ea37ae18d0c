//! Scenario `rush` (issue 26, item 5): a deadline day for a whole province, as its users make
//! it. By hand; not in `all`, not in CI.
//!
//! The services run as a province runs them: each in its own `qaward serve --target` process
//! on PostgreSQL (a fresh database), the gateway in front. 40 county programmes, each with its
//! own division code and an open cycle; 100 enterprises in each. Every enterprise, in
//! an order that mixes the counties, is registered by its county's office, drafts its
//! application, uploads 3 evidence files of 100 KB to 2 MB (generated) and submits — all
//! through the gateway's HTTP/JSON port, `concurrency` enterprises at a time — while each
//! county's office reads its cycle board now and then. Reported: the time from the first call
//! to the last submission, the errors (there must be none), p50/p99 of each step, the peak
//! memory of each process (`VmHWM`) and the size of the database and of the evidence files
//! afterwards. JSON lines on stdout; the figures have no baseline (`baseline` is `none`).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use qaward_gateway::http_client::HttpJson;
use qaward_kit::upstream::{Upstream, boxed};
use qaward_kit::{auth::Role, cn, config::Config};
use qaward_proto::qaward::{
    applications::v1::{self as pb, application_service_client::ApplicationServiceClient},
    common::v1::Date,
};
use tokio::io::{AsyncBufReadExt, BufReader};

#[derive(clap::Args, Clone)]
pub struct RushOptions {
    #[arg(long, env = "QAWARD_TEST_DATABASE_URL")]
    pub database_url: String,
    /// County programmes.
    #[arg(long, default_value_t = 40)]
    pub programmes: usize,
    /// Enterprises in each programme.
    #[arg(long, default_value_t = 100)]
    pub enterprises: usize,
    /// Evidence files per application.
    #[arg(long, default_value_t = 3)]
    pub files: usize,
    /// Enterprises going through their steps at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Offices reading their cycle boards at once (each every 100 ms).
    #[arg(long, default_value_t = 4)]
    pub readers: usize,
    /// The qaward binary (default: beside this one).
    #[arg(long)]
    pub qaward: Option<PathBuf>,
}

/// A client over the HTTP/JSON door (its errors a named type, so calls can run in spawned
/// tasks).
type Apps = ApplicationServiceClient<Upstream>;

/// One running `qaward serve --target`.
struct Process {
    name: &'static str,
    child: tokio::process::Child,
    grpc: String,
    http: Option<String>,
}

impl Process {
    /// Peak resident memory so far, KiB.
    fn peak_kib(&self) -> u64 {
        self.child
            .id()
            .map_or(0, |pid| crate::process::peak_kib(&pid.to_string()))
    }
}

async fn start(
    qaward: &Path,
    name: &'static str,
    data_dir: &Path,
    database_url: &str,
    upstreams: &[(&str, String)],
) -> Result<Process, String> {
    let mut cmd = tokio::process::Command::new(qaward);
    cmd.args(["serve", "--target", name])
        .arg("--data-dir")
        .arg(data_dir)
        .env("QAWARD_DATABASE_URL", database_url)
        .env("QAWARD_TELEMETRY__LOG_FILTER", "warn")
        .stdout(Stdio::piped())
        .stderr(
            std::fs::File::create(data_dir.join(format!("{name}.log")))
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null()),
        )
        .kill_on_drop(true);
    let listens: &[&str] = if name == "gateway" {
        &["GATEWAY_GRPC", "GATEWAY_HTTP"]
    } else {
        &[]
    };
    for k in listens {
        cmd.env(format!("QAWARD_LISTEN__{k}"), "127.0.0.1:0");
    }
    if name != "gateway" {
        cmd.env(
            format!("QAWARD_LISTEN__{}", name.to_uppercase()),
            "127.0.0.1:0",
        );
    }
    for (kind, url) in upstreams {
        cmd.env(format!("QAWARD_UPSTREAMS__{}", kind.to_uppercase()), url);
    }
    let mut child = cmd.spawn().map_err(|e| format!("{name}: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let (mut grpc, mut http) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(60);
    while grpc.is_none() || (name == "gateway" && http.is_none()) {
        let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
            .await
            .map_err(|_| format!("{name} did not start within 60 s"))?
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{name} exited; see {name}.log"))?;
        if let Some(addr) = line.strip_prefix(&format!("listening {name} grpc ")) {
            grpc = Some(format!("http://{addr}"));
        } else if let Some(addr) = line.strip_prefix("listening gateway http ") {
            http = Some(addr.to_string());
        }
    }
    // Keep reading, so the process never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Process {
        name,
        child,
        grpc: grpc.unwrap_or_default(),
        http,
    })
}

/// A fresh database beside the one named, for this run alone.
async fn fresh_database(url: &str) -> Result<(String, String), String> {
    use sqlx::Connection;
    let name = format!("qaward_rush_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(url)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .map_err(|e| format!("create database {name}: {e}"))?;
    let base = url.rsplit_once('/').map(|(b, _)| b).unwrap_or(url);
    Ok((format!("{base}/{name}"), name))
}

/// Generated bytes: a PDF header, then a stream that does not compress.
fn evidence(seed: u64, len: usize) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n".to_vec();
    let mut x = seed | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Per-step latencies (µs) and the errors met.
#[derive(Default)]
struct Tally {
    steps: BTreeMap<&'static str, Vec<u64>>,
    errors: Vec<String>,
}

impl Tally {
    fn took(&mut self, step: &'static str, since: Instant) {
        self.steps
            .entry(step)
            .or_default()
            .push(since.elapsed().as_micros() as u64);
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64
}

struct County {
    id: String,
    division: String,
    office: String,
}

fn request<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    if let Ok(v) = format!("Bearer {token}").parse() {
        r.metadata_mut().insert("authorization", v);
    }
    r
}

/// The programme, its county and its open cycle.
async fn open_county(apps: &mut Apps, c: &County, year: i32) -> Result<(), String> {
    let made = apps
        .create_programme(request(
            &c.office,
            pb::CreateProgrammeRequest {
                programme: Some(pb::Programme {
                    display_name: format!("{}县县长质量奖", c.division),
                    ..Default::default()
                }),
                programme_id: c.id.clone(),
                request_id: format!("rush-{}-programme", c.id),
            },
        ))
        .await
        .map_err(|e| format!("create programme {}: {e}", c.id))?
        .into_inner();
    let mut settings = made.settings.unwrap_or_default();
    settings.division_codes = vec![c.division.clone()];
    apps.update_programme_settings(request(
        &c.office,
        pb::UpdateProgrammeSettingsRequest {
            name: format!("programmes/{}", c.id),
            settings: Some(settings),
            request_id: format!("rush-{}-settings", c.id),
        },
    ))
    .await
    .map_err(|e| format!("settings of {}: {e}", c.id))?;
    let deadline = time::Date::from_calendar_date(year, time::Month::December, 31)
        .map_err(|e| e.to_string())?
        .with_hms(23, 0, 0)
        .map_err(|e| e.to_string())?
        .assume_offset(qaward_kit::clock::CHINA);
    apps.create_cycle(request(
        &c.office,
        pb::CreateCycleRequest {
            parent: format!("programmes/{}", c.id),
            cycle: Some(pb::Cycle {
                year,
                notice_title: format!("关于开展{year}年度县长质量奖评选工作的通知"),
                conditions: "在本县登记注册并纳税、具有独立法人资格、连续经营3年以上".into(),
                required_materials: vec!["申报表".into(), "自评报告".into(), "证明材料".into()],
                deadline: Some(prost_types::Timestamp {
                    seconds: deadline.unix_timestamp(),
                    nanos: 0,
                }),
                ..Default::default()
            }),
            request_id: format!("rush-{}-cycle", c.id),
        },
    ))
    .await
    .map_err(|e| format!("cycle of {}: {e}", c.id))?;
    Ok(())
}

/// One enterprise's deadline day: registered, drafted, three files, submitted.
#[allow(clippy::too_many_arguments)]
async fn enterprise(
    apps: &mut Apps,
    county: &County,
    cycle: &str,
    index: usize,
    code: &str,
    token: &str,
    files: usize,
    tally: &Mutex<Tally>,
) -> Result<(), String> {
    let t = Instant::now();
    apps.create_enterprise(request(
        &county.office,
        pb::CreateEnterpriseRequest {
            enterprise: Some(pb::Enterprise {
                display_name: format!("重庆{}第{index}机械有限公司", county.division),
                credit_code: code.to_string(),
                established_date: Some(Date {
                    year: 2015,
                    month: 5,
                    day: 1,
                }),
                industry_code: "C34".into(),
                recommending_unit: "qinglong-street".into(),
                ..Default::default()
            }),
            request_id: format!("rush-enterprise-{code}"),
        },
    ))
    .await
    .map_err(|e| format!("register {code}: {e}"))?;
    tally.lock().unwrap().took("register", t);

    let t = Instant::now();
    apps.create_application(request(
        token,
        pb::CreateApplicationRequest {
            parent: cycle.to_string(),
            application: Some(pb::Application {
                enterprise: format!("enterprises/{code}"),
                application_form: "县长质量奖申报表".into(),
                organisation_profile: "推行卓越绩效管理模式。".repeat(50),
                self_assessment: "按照GB/T 19580《卓越绩效评价准则》逐条开展自评。".repeat(200),
                ..Default::default()
            }),
            request_id: format!("rush-draft-{code}"),
        },
    ))
    .await
    .map_err(|e| format!("draft {code}: {e}"))?;
    tally.lock().unwrap().took("draft", t);

    let application = format!("{cycle}/applications/{code}");
    for f in 0..files {
        // Every enterprise's files its own (FNV-1a of its credit code and the file's number):
        // nothing for a content-addressed store to share.
        let seed = code
            .bytes()
            .chain([f as u8])
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
        let len = 100 * 1024 + (seed % (1900 * 1024)) as usize;
        let bytes = evidence(seed, len);
        let mut parts = vec![pb::UploadEvidenceRequest {
            part: Some(pb::upload_evidence_request::Part::Header(
                pb::EvidenceHeader {
                    parent: application.clone(),
                    file_name: format!("证明材料{f}.pdf"),
                    content_type: "application/pdf".into(),
                    size_bytes: len as i64,
                    ..Default::default()
                },
            )),
            request_id: format!("rush-evidence-{code}-{f}"),
        }];
        parts.extend(bytes.chunks(256 * 1024).map(|c| pb::UploadEvidenceRequest {
            part: Some(pb::upload_evidence_request::Part::Chunk(c.to_vec())),
            request_id: String::new(),
        }));
        let t = Instant::now();
        apps.upload_evidence(request(token, tokio_stream::iter(parts)))
            .await
            .map_err(|e| format!("upload {f} of {code}: {e}"))?;
        tally.lock().unwrap().took("upload", t);
    }

    let t = Instant::now();
    apps.submit_application(request(
        token,
        pb::SubmitApplicationRequest {
            name: application.clone(),
            request_id: format!("rush-submit-{code}"),
        },
    ))
    .await
    .map_err(|e| format!("submit {code}: {e}"))?;
    tally.lock().unwrap().took("submit", t);
    Ok(())
}

fn size_of_dir(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => size_of_dir(&e.path()),
                    Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

pub async fn run(o: RushOptions) -> Result<(), String> {
    let qaward = crate::process::qaward_binary(o.qaward.clone())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (url, database) = fresh_database(&o.database_url).await?;
    eprintln!(
        "rush: database {database}, data directory {}",
        dir.path().display()
    );
    let outcome = rush(&o, &qaward, dir.path(), &url).await;
    // The database goes whatever happened.
    {
        use sqlx::Connection;
        if let Ok(mut admin) = sqlx::PgConnection::connect(&o.database_url).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await;
        }
    }
    outcome
}

async fn rush(o: &RushOptions, qaward: &Path, data: &Path, url: &str) -> Result<(), String> {
    // The province: each service its own process, the applications service and the gateway
    // told where the others listen.
    let mut processes = Vec::new();
    for name in ["reviewers", "scoring", "notifications"] {
        processes.push(start(qaward, name, data, url, &[]).await?);
    }
    let upstreams: Vec<(&str, String)> =
        processes.iter().map(|p| (p.name, p.grpc.clone())).collect();
    processes.push(start(qaward, "applications", data, url, &upstreams).await?);
    let mut all = upstreams.clone();
    all.push(("applications", processes[3].grpc.clone()));
    processes.push(start(qaward, "gateway", data, url, &all).await?);
    let http: std::net::SocketAddr = processes[4]
        .http
        .clone()
        .unwrap_or_default()
        .parse()
        .map_err(|e| format!("the gateway's HTTP address: {e}"))?;

    let config = Config {
        data_dir: data.to_path_buf(),
        ..Config::default()
    };
    let key = qaward_kit::auth::LocalKey::load_or_create(data).map_err(|e| e.to_string())?;
    let now = time::OffsetDateTime::now_utc();
    let issue = |role, subject: &str, org: Option<&str>, programme: Option<&str>| {
        key.issue(
            &config.auth,
            now,
            subject,
            role,
            org.map(str::to_string),
            programme.map(str::to_string),
        )
        .map_err(|e| e.to_string())
    };
    let client = || -> Result<Apps, String> {
        Ok(ApplicationServiceClient::new(boxed(HttpJson::new(http)?))
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20))
    };
    // Chongqing's counties and districts have division codes 500101 onwards.
    let mut counties = Vec::new();
    for i in 0..o.programmes {
        let division = format!("{}", 500101 + i);
        let id = format!("county-{division}");
        counties.push(County {
            office: issue(Role::Office, &format!("office-{division}"), None, Some(&id))?,
            id,
            division,
        });
    }
    let year = now.to_offset(qaward_kit::clock::CHINA).year();
    let started = Instant::now();
    let mut apps = client()?;
    for c in &counties {
        open_county(&mut apps, c, year).await?;
    }
    eprintln!(
        "rush: {} programmes with open cycles in {:.1} s",
        counties.len(),
        started.elapsed().as_secs_f64()
    );

    // Enterprises in an order that mixes the counties, as a province's deadline day does.
    let mut work = Vec::new();
    for e in 0..o.enterprises {
        for (c, county) in counties.iter().enumerate() {
            let first17 = format!("91{}MA5U{:05}", county.division, 10_000 + e);
            let code = cn::with_check(&first17).ok_or("a credit code")?;
            let token = issue(Role::Enterprise, &format!("e-{code}"), Some(&code), None)?;
            work.push((c, e, code, token));
        }
    }
    let work = Arc::new(work);
    let counties = Arc::new(counties);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let cycle = move |c: &County| format!("programmes/{}/cycles/{year}", c.id);

    let rush_started = Instant::now();
    let mut readers = tokio::task::JoinSet::new();
    for r in 0..o.readers {
        let (counties, tally, done) = (counties.clone(), tally.clone(), done.clone());
        let mut apps = client()?;
        readers.spawn(async move {
            let mut i = r;
            while !done.load(Ordering::Relaxed) {
                let c = &counties[i % counties.len()];
                let t = Instant::now();
                let read = apps
                    .get_cycle_board(request(
                        &c.office,
                        pb::GetCycleBoardRequest {
                            name: format!("programmes/{}/cycles/{year}", c.id),
                        },
                    ))
                    .await;
                match read {
                    Ok(_) => tally.lock().unwrap().took("board", t),
                    Err(e) => tally.lock().unwrap().errors.push(format!("board: {e}")),
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..o.concurrency.max(1) {
        let (work, counties, tally, next) =
            (work.clone(), counties.clone(), tally.clone(), next.clone());
        let mut apps = client()?;
        let files = o.files;
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((c, e, code, token)) = work.get(i) else {
                    break;
                };
                let county = &counties[*c];
                let outcome = enterprise(
                    &mut apps,
                    county,
                    &cycle(county),
                    *e,
                    code,
                    token,
                    files,
                    &tally,
                )
                .await;
                if let Err(e) = outcome {
                    tally.lock().unwrap().errors.push(e);
                }
            }
        });
    }
    while workers.join_next().await.is_some() {}
    let completion = rush_started.elapsed();
    done.store(true, Ordering::Relaxed);
    while readers.join_next().await.is_some() {}

    // The database's size and the evidence files', with every process still up.
    let db_bytes: i64 = {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(url)
            .await
            .map_err(|e| e.to_string())?;
        sqlx::query_scalar("SELECT pg_database_size(current_database())")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| e.to_string())?
    };
    let files_bytes = size_of_dir(data);
    let tally = tally.lock().unwrap();
    let enterprises = work.len();
    let line = |metric: &str, unit: &str, value: f64| {
        println!(
            "{}",
            serde_json::json!({
                "scenario": "rush", "metric": metric, "value": (value * 1000.0).round() / 1000.0,
                "unit": unit, "baseline": "none",
            })
        );
    };
    line("enterprises", "count", enterprises as f64);
    line("completion_time", "s", completion.as_secs_f64());
    line(
        "submissions_per_second",
        "1/s",
        tally.steps.get("submit").map_or(0, Vec::len) as f64 / completion.as_secs_f64(),
    );
    line("errors", "count", tally.errors.len() as f64);
    for (step, times) in &tally.steps {
        let mut sorted = times.clone();
        sorted.sort_unstable();
        line(&format!("{step}_calls"), "count", sorted.len() as f64);
        line(
            &format!("{step}_p50"),
            "ms",
            percentile(&sorted, 50.0) / 1000.0,
        );
        line(
            &format!("{step}_p99"),
            "ms",
            percentile(&sorted, 99.0) / 1000.0,
        );
    }
    for p in &processes {
        line(
            &format!("peak_rss_{}", p.name),
            "MiB",
            p.peak_kib() as f64 / 1024.0,
        );
    }
    line("database_size", "MiB", db_bytes as f64 / (1024.0 * 1024.0));
    line(
        "data_dir_size",
        "MiB",
        files_bytes as f64 / (1024.0 * 1024.0),
    );
    for e in tally.errors.iter().take(10) {
        eprintln!("rush: error: {e}");
    }
    if tally.errors.is_empty() {
        Ok(())
    } else {
        Err(format!("{} calls failed", tally.errors.len()))
    }
}
