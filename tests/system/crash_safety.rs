//! Notifications survive a crash: SIGKILL the notifications service in the middle of a burst,
//! restart it on the same data, and every notification it acknowledged reaches the webhook
//! sink — which, deduplicating by the idempotency key, sees each exactly once.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use qaward_kit::testing::HttpSink;
use qaward_proto::qaward::notifications::v1::{
    self as pb, notification_service_client::NotificationServiceClient,
};

use crate::support::{Qaward, with_token};

const BURST: usize = 240;
const KILL_AFTER: usize = 80;
const SECRET: &str = "crash-test-shared-secret";

fn notification(i: usize) -> pb::Notification {
    pb::Notification {
        event_type: "reviewer.drawn".into(),
        recipients: vec![pb::Recipient {
            id: format!("CQ-{i:04}"),
            display_name: format!("评审员{i}"),
            channels: vec![pb::Channel::Webhook as i32],
            ..Default::default()
        }],
        variables: [
            ("reviewer_name", format!("评审员{i}")),
            ("purpose", "资料评审组".to_string()),
            ("window_start", "2026年5月10日".to_string()),
            ("window_end", "2026年5月20日".to_string()),
            ("respond_by", "2026年5月4日".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        ..Default::default()
    }
}

async fn crash_mid_burst(database_url: Option<String>) {
    // A slow receiver and a rate limit, so a backlog builds and deliveries are in flight
    // when the process dies.
    let sink = HttpSink::start().await;
    sink.set_delay(Duration::from_millis(15));
    let env = [
        ("QAWARD_NOTIFICATIONS__RATE_PER_SECOND__WEBHOOK", "20"),
        ("QAWARD_NOTIFICATIONS__WEBHOOK__URL", sink.url.as_str()),
        ("QAWARD_NOTIFICATIONS__WEBHOOK__SECRET", SECRET),
        // Longer than a claimed batch takes to send at this rate (128 at 20/s: 6.4 s). A 1 s
        // lease expired mid-batch: other workers claimed the same deliveries again, posted
        // them again and had their outcomes discarded, so under a loaded CI machine a
        // delivery could stay PENDING past the wait below. Recovery after the kill does not
        // wait for leases: SQLite releases a dead process's claims at start, PostgreSQL's
        // claims are row locks.
        ("QAWARD_NOTIFICATIONS__LEASE_MS", "10000"),
        ("QAWARD_NOTIFICATIONS__BASE_BACKOFF_MS", "100"),
    ];
    let mut args = vec!["--target", "notifications"];
    if let Some(url) = &database_url {
        args.extend(["--database-url", url.as_str()]);
    }
    let q = Qaward::start(&args, &env).await;
    let token = q.token("office", "office-1");
    let client = NotificationServiceClient::new(q.channel("notifications").await);

    // The burst: four senders, each notification with its own request id; remember which
    // ones were acknowledged. Kill the process once KILL_AFTER have been.
    let acked: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let mut senders = Vec::new();
    for s in 0..4 {
        let (mut client, token, acked) = (client.clone(), token.clone(), acked.clone());
        senders.push(tokio::spawn(async move {
            for i in (s..BURST).step_by(4) {
                let request = pb::CreateNotificationRequest {
                    notification: Some(notification(i)),
                    request_id: format!("burst-{i}"),
                };
                match client
                    .create_notification(with_token(request, &token))
                    .await
                {
                    Ok(n) => {
                        let n = n.into_inner();
                        acked.lock().unwrap().insert(format!("burst-{i}"), n.name);
                    }
                    Err(_) => return, // the process is gone
                }
            }
        }));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < KILL_AFTER {
        assert!(tokio::time::Instant::now() < deadline, "the burst stalled");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let data_dir = q.kill().await;
    for s in senders {
        let _ = s.await;
    }
    let acked = acked.lock().unwrap().clone();
    let seen_before_restart = sink.received().len();
    assert!(acked.len() >= KILL_AFTER);

    // Restart on the same data; the sink must end up with every acknowledged notification.
    let q = Qaward::start_in(data_dir, &args, &env).await;
    let wanted: BTreeSet<String> = acked.values().cloned().collect();
    let got = sink
        .wait_until(Duration::from_secs(60), |got| {
            let names: BTreeSet<String> = got
                .iter()
                .map(|p| {
                    p.json()["notification"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                })
                .collect();
            wanted.is_subset(&names)
        })
        .await;
    let mut by_key: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in &got {
        assert!(
            qaward_notifications::domain::signature::verify(
                SECRET.as_bytes(),
                p.header("x-qaward-timestamp").parse().unwrap(),
                &p.body,
                p.header("x-qaward-signature"),
                p.header("x-qaward-timestamp").parse().unwrap(),
            ),
            "every post is signed"
        );
        by_key
            .entry(p.json()["notification"].as_str().unwrap().to_string())
            .or_default()
            .insert(p.header("idempotency-key").to_string());
    }
    let missing: Vec<&String> = wanted.iter().filter(|n| !by_key.contains_key(*n)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but never delivered: {missing:?}"
    );
    // Deduplicated by key, each notification arrived once: one key per notification.
    assert!(by_key.values().all(|keys| keys.len() == 1));
    eprintln!(
        "crash test ({}): {} acknowledged before SIGKILL, {} posts received before the kill, {} posts in all for {} notifications ({} repeats dropped by key)",
        if database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        acked.len(),
        seen_before_restart,
        got.len(),
        by_key.len(),
        got.len() - by_key.len()
    );

    // The restarted service still answers for what it acknowledged, and records each as
    // delivered — the sink has the post before the worker records the outcome, so the record
    // may lag the post by a moment.
    let mut client = NotificationServiceClient::new(q.channel("notifications").await);
    for name in wanted.iter().take(5) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let state = loop {
            let n = client
                .get_notification(with_token(
                    pb::GetNotificationRequest { name: name.clone() },
                    &token,
                ))
                .await
                .unwrap()
                .into_inner();
            let state = n.deliveries[0].state;
            if state == pb::DeliveryState::Delivered as i32
                || tokio::time::Instant::now() > deadline
            {
                break state;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(state, pb::DeliveryState::Delivered as i32, "{name}");
    }
    assert_eq!(q.terminate().await, Some(0));
}

#[tokio::test]
async fn sigkill_mid_burst_loses_no_acknowledged_notification_on_sqlite() {
    crash_mid_burst(None).await;
}

#[tokio::test]
async fn sigkill_mid_burst_loses_no_acknowledged_notification_on_postgres() {
    let Some(url) = qaward_kit::testing::fresh_postgres_database().await else {
        return;
    };
    crash_mid_burst(Some(url)).await;
}
