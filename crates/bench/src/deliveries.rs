//! Scenario `deliveries`: webhook deliveries per second from the notifications service's
//! durable queue on PostgreSQL (claim with a lease, sign, POST, record the outcome) against
//! plain HTTP POSTs of the same bodies to the same loopback sink in the same run. The sink runs
//! in this process, as does the load, so on two cores both sides share the CPU.

use std::{sync::Arc, time::Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use qaward_kit::{
    clock::{OsRandomness, SystemClock, unix_micros},
    config::{ChannelRates, Notifications, Secret, SignedHttp},
    db::Database,
    testing::HttpSink,
};
use qaward_notifications::{
    channels::{Channels, webhook_body},
    store::{self, DeliveryRow, NotificationRow},
    worker::Pool,
};

use crate::Figure;

#[derive(Debug, Clone, clap::Args)]
pub struct DeliveriesOptions {
    /// postgres://… (a fresh schema is made in it).
    #[arg(long, env = "QAWARD_TEST_DATABASE_URL")]
    pub database_url: String,
    /// Deliveries per round.
    #[arg(long, default_value_t = 5_000)]
    pub deliveries: usize,
    /// Delivery workers (each attempts a claimed batch of up to 128 concurrently).
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// Concurrent plain POSTers for the baseline; 4 saturates two cores here, so the baseline
    /// is the fastest plain posting this machine does.
    #[arg(long, default_value_t = 4)]
    pub baseline_concurrency: usize,
    /// Measured rounds, after one warm-up round of each that is not counted (the first round
    /// pays for cold caches, connection set-up and the first plans).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[v.len() / 2]
}

/// The JSON body the webhook channel sends for delivery `d`, for the baseline to post.
fn body_of(d: &DeliveryRow) -> Vec<u8> {
    serde_json::to_vec(&webhook_body(d)).expect("json")
}

/// `n` webhook deliveries, each of its own notification, due `now`.
fn rows(round: usize, n: usize, now: i64) -> Vec<(NotificationRow, DeliveryRow)> {
    (0..n)
        .map(|i| {
            let id = format!("r{round:02}n{i:07}");
            let notification = NotificationRow {
                id: id.clone(),
                event_type: "reviewer.drawn".into(),
                variables: "{}".into(),
                recipients: "[]".into(),
                send_micros: now,
                reminder_id: None,
                created_by: "bench".into(),
                created_micros: now,
            };
            let delivery = DeliveryRow {
                id: format!("{id}-0000"),
                notification_id: id,
                event_type: "reviewer.drawn".into(),
                recipient_id: format!("CQ-{i:05}"),
                channel: "webhook".into(),
                address: format!("CQ-{i:05}"),
                template_version: 1,
                subject: "评审任务邀请：资料评审组".into(),
                body: format!("评审员{i}评审员：\n\n您已被随机抽取参加资料评审组，评审时间为2026年5月10日至2026年5月20日。请于2026年5月4日前登录平台确认是否参加；如与被评审企业存在利害关系，请申请回避。\n\n县长质量奖评选委员会办公室"),
                state: store::PENDING.into(),
                attempts: 0,
                last_error: String::new(),
                next_attempt_micros: now,
                delivered_micros: None,
                created_micros: now,
            };
            (notification, delivery)
        })
        .collect()
}

/// Puts the rows on the queue (not timed).
async fn fill(db: &Database, rows: &[(NotificationRow, DeliveryRow)]) -> Result<(), String> {
    let mut tx = db.begin().await.map_err(|e| e.to_string())?;
    for (n, d) in rows {
        store::insert_notification(&mut tx, n)
            .await
            .map_err(|e| e.to_string())?;
        store::insert_delivery(&mut tx, d)
            .await
            .map_err(|e| e.to_string())?;
    }
    tx.commit().await.map_err(|e| e.to_string())
}

async fn queue_round(
    db: &Database,
    settings: &Notifications,
    rows: &[(NotificationRow, DeliveryRow)],
    target: i64,
) -> Result<f64, String> {
    fill(db, rows).await?;
    let n = rows.len();
    let channels = Channels::from_config(settings)?;
    let pool = Pool::new(
        db.clone(),
        channels,
        Arc::new(SystemClock),
        Arc::new(OsRandomness),
        settings,
        Arc::new(tokio::sync::Notify::new()),
        // The bench's rows hold plain addresses, which open as they are.
        Arc::new(qaward_kit::fields::FieldKeys::ephemeral(
            qaward_kit::fields::Algorithm::Sm4Gcm,
        )),
    );
    let started = Instant::now();
    let workers = pool.spawn(settings.workers);
    loop {
        let queued = store::count_queued(db).await.map_err(|e| e.to_string())?;
        if queued == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    for w in workers {
        w.abort();
    }
    let delivered = store::count_state(db, store::DELIVERED)
        .await
        .map_err(|e| e.to_string())?;
    if delivered != target {
        return Err(format!("{delivered} delivered, expected {target}"));
    }
    Ok(n as f64 / secs)
}

async fn plain_round(url: &str, bodies: Vec<Vec<u8>>, workers: usize) -> Result<f64, String> {
    let client: Client<_, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let n = bodies.len();
    let queue = Arc::new(std::sync::Mutex::new(bodies));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (client, queue, url) = (client.clone(), queue.clone(), url.to_string());
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(body) = queue.lock().expect("queue").pop() else {
                    return Ok::<_, String>(());
                };
                let request = http::Request::post(url.as_str())
                    .header(
                        http::header::CONTENT_TYPE,
                        "application/json; charset=utf-8",
                    )
                    .body(Full::new(Bytes::from(body)))
                    .map_err(|e| e.to_string())?;
                let response = client.request(request).await.map_err(|e| e.to_string())?;
                if !response.status().is_success() {
                    return Err(format!("sink answered {}", response.status()));
                }
                response
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

pub async fn run(o: DeliveriesOptions) -> Result<(), String> {
    let schema = format!("bench_deliveries_{}", std::process::id());
    let db = Database::connect_postgres(&o.database_url, &schema, (o.workers as u32) + 2)
        .await
        .map_err(|e| e.to_string())?;
    db.migrate(&schema, &qaward_notifications::MIGRATIONS)
        .await
        .map_err(|e| e.to_string())?;
    let sink = HttpSink::start().await;
    let settings = Notifications {
        workers: o.workers,
        poll_ms: 10,
        rate_per_second: ChannelRates {
            inbox: 0,
            email: 0,
            webhook: 0,
            sms: 0,
        },
        webhook: SignedHttp {
            url: sink.url.clone(),
            secret: Secret::new("benchmark-shared-secret".into()),
            timeout_ms: 10_000,
        },
        ..Notifications::default()
    };
    let (mut queued, mut plain) = (Vec::new(), Vec::new());
    for round in 0..=o.rounds {
        let now = unix_micros(time::OffsetDateTime::now_utc());
        let batch = rows(round, o.deliveries, now);
        let rate = queue_round(&db, &settings, &batch, ((round + 1) * o.deliveries) as i64).await?;
        // The same bodies, posted plainly.
        let bodies = batch.iter().map(|(_, d)| body_of(d)).collect();
        let baseline = plain_round(&sink.url, bodies, o.baseline_concurrency).await?;
        let kind = if round == 0 { "warm-up" } else { "measured" };
        eprintln!("round {round} ({kind}): queue {rate:.0}/s, plain {baseline:.0}/s");
        if round > 0 {
            queued.push(rate);
            plain.push(baseline);
        }
    }
    let received = sink.received();
    let failed = received.iter().filter(|r| r.status != 200).count();
    if failed > 0 {
        return Err(format!("{failed} requests were not answered 200"));
    }
    Figure {
        scenario: "deliveries",
        metric: "webhook deliveries per second (median of rounds)",
        unit: "1/s",
        value: median(queued),
        baseline: "plain HTTP POSTs of the same bodies to the same sink",
        baseline_value: median(plain),
    }
    .print();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE"
    )))
    .execute(db.pool())
    .await
    .map_err(|e| e.to_string())?;
    Ok(())
}
