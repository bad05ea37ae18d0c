//! The durable queue: retries with backoff, dead letters the office can list and requeue,
//! and sends scheduled for later.

use qaward_kit::{
    auth::Role,
    config::{Secret, SignedHttp},
    testing::{self, HttpSink},
};
use qaward_proto::qaward::notifications::v1 as pb;
use tonic::Code;

use crate::*;

fn webhook_recipient() -> pb::Recipient {
    let mut to = inbox_recipient(&enterprise());
    to.channels = vec![pb::Channel::Webhook as i32];
    to
}

#[tokio::test]
async fn failures_back_off_then_dead_letter_and_the_office_requeues_them() {
    for db in testing::backends("notifications", &qaward_notifications::MIGRATIONS).await {
        let label = db.label;
        let sink = HttpSink::start().await;
        let mut s = settings();
        s.webhook = SignedHttp {
            url: sink.url.clone(),
            secret: Secret::new("county-platform-shared-secret".into()),
            timeout_ms: 5_000,
        };
        let mut r = start(db, s).await;

        // Two 503s, then accepted: delivered on the third attempt, each retry later than
        // the one before.
        sink.script(&[503, 503]);
        let n = r.create(passed(vec![webhook_recipient()]), "w-1").await;
        let mut waits = Vec::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        let n = loop {
            let n = r.get(&n.name).await;
            let d = &n.deliveries[0];
            if delivered(d) {
                break n;
            }
            let mut step = time::Duration::ZERO;
            if state(d) == pb::DeliveryState::Retrying {
                assert!(d.last_error.contains("HTTP 503"), "{}", d.last_error);
                // Each wait is read once, as the worker set it, before the clock moves: the
                // clock then jumps just past the retry time, so the next attempt's wait is
                // measured from the time that attempt was made — however slow the machine.
                if waits.len() < d.attempts as usize {
                    let next = d.next_attempt_time.as_ref().unwrap();
                    waits.push(next.seconds - r.now().unix_timestamp());
                    let at = time::OffsetDateTime::from_unix_timestamp(next.seconds).unwrap()
                        + time::Duration::nanoseconds(i64::from(next.nanos));
                    step =
                        (at - r.now()).max(time::Duration::ZERO) + time::Duration::milliseconds(1);
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "{label}: {d:?}");
            r.clock.advance(step);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert_eq!(n.deliveries[0].attempts, 3, "{label}");
        assert_eq!(waits.len(), 2, "{label}: {waits:?}");
        // Base 1 s with equal jitter: the first wait is 0.5-1 s, the second 1-2 s.
        assert!(
            waits[0] <= 1 && waits[1] >= 1 && waits[1] <= 2,
            "{label}: {waits:?}"
        );
        let keys: Vec<String> = sink
            .received()
            .iter()
            .map(|p| p.header("idempotency-key").to_string())
            .collect();
        assert_eq!(keys.len(), 3);
        assert!(
            keys.iter().all(|k| k == &keys[0]),
            "{label}: one key for every attempt"
        );

        // A 400 will not get better by retrying: dead at once.
        sink.set_status(400);
        let bad = r.create(passed(vec![webhook_recipient()]), "w-2").await;
        let bad = r.settle(&bad.name, time::Duration::seconds(1), dead).await;
        assert_eq!(bad.deliveries[0].attempts, 1, "{label}");
        // A 503 that never ends: dead after max_attempts (4).
        sink.set_status(503);
        let busy = r.create(passed(vec![webhook_recipient()]), "w-3").await;
        let busy = r
            .settle(&busy.name, time::Duration::seconds(30), dead)
            .await;
        assert_eq!(busy.deliveries[0].attempts, 4, "{label}");
        assert!(busy.deliveries[0].last_error.contains("HTTP 503"));

        let supervisor = r.keys.token("sup-1", Role::Supervisor);
        let letters = r
            .client
            .list_dead_letters(as_(&supervisor, pb::ListDeadLettersRequest::default()))
            .await
            .unwrap()
            .into_inner()
            .dead_letters;
        assert_eq!(letters.len(), 2, "{label}");
        assert!(letters.iter().all(|d| d.name.starts_with("deadLetters/")));
        let mut of: Vec<&str> = letters.iter().map(|d| d.notification.as_str()).collect();
        of.sort();
        let mut want = [bad.name.as_str(), busy.name.as_str()];
        want.sort();
        assert_eq!(of, want, "{label}");
        let first = letters[0].clone();

        // Only the office requeues; once the platform is back, the letters are delivered.
        let err = r
            .client
            .requeue_dead_letter(as_(
                &supervisor,
                pb::RequeueDeadLetterRequest {
                    name: first.name.clone(),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
        sink.set_status(204);
        for (i, letter) in letters.iter().enumerate() {
            let d = r
                .client
                .requeue_dead_letter(as_(
                    &r.office,
                    pb::RequeueDeadLetterRequest {
                        name: letter.name.clone(),
                        request_id: format!("rq-{i}"),
                    },
                ))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(state(&d), pb::DeliveryState::Pending, "{label}");
            assert_eq!(d.attempts, 0);
        }
        r.settle(&bad.name, time::Duration::ZERO, delivered).await;
        r.settle(&busy.name, time::Duration::ZERO, delivered).await;
        // A delivered letter is not a dead letter any more.
        let err = r
            .client
            .requeue_dead_letter(as_(
                &r.office,
                pb::RequeueDeadLetterRequest {
                    name: first.name.clone(),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{label}");
        let letters = r
            .client
            .list_dead_letters(as_(&r.office, pb::ListDeadLettersRequest::default()))
            .await
            .unwrap()
            .into_inner()
            .dead_letters;
        assert!(letters.is_empty(), "{label}");
    }
}

#[tokio::test]
async fn a_scheduled_notification_waits_for_its_time() {
    for db in testing::backends("notifications", &qaward_notifications::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db, settings()).await;
        let mut n = passed(vec![inbox_recipient(&enterprise())]);
        let at = r.now() + time::Duration::days(1);
        n.send_time = Some(timestamp(at));
        let n = r.create(n, "later-1").await;
        assert_eq!(n.send_time.as_ref().unwrap().seconds, at.unix_timestamp());
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let now = r.get(&n.name).await;
        assert_eq!(
            state(&now.deliveries[0]),
            pb::DeliveryState::Pending,
            "{label}"
        );
        r.clock.advance(time::Duration::days(1));
        let done = r.settle(&n.name, time::Duration::ZERO, delivered).await;
        assert!(done.deliveries[0].delivered_time.as_ref().unwrap().seconds >= at.unix_timestamp());
    }
}

/// A process killed mid-send leaves its claims behind. On SQLite one process owns the file, so
/// the next one to start hands them back at once instead of waiting out the lease (60 s by
/// default): recovery after a kill -9 takes seconds, not a lease period.
#[tokio::test]
async fn a_restart_on_sqlite_takes_back_at_once_what_a_killed_worker_had_claimed() {
    for db in testing::backends("notifications", &qaward_notifications::MIGRATIONS).await {
        if db.label != "sqlite" {
            continue; // PostgreSQL claims are row locks, released when the process dies
        }
        let sink = HttpSink::start().await;
        let mut s = settings();
        s.webhook = SignedHttp {
            url: sink.url.clone(),
            secret: Secret::new("county-platform-shared-secret".into()),
            timeout_ms: 5_000,
        };
        // The first process: no workers of its own, and a claim made by one that then died.
        let mut before = s.clone();
        before.workers = 0;
        let mut r = start(db, before).await;
        let n = r.create(passed(vec![webhook_recipient()]), "k-1").await;
        let now = qaward_kit::clock::unix_micros(r.now());
        let lease_ms = i64::try_from(s.lease_ms).unwrap();
        let claimed = qaward_notifications::store::claim(
            &r.db,
            now,
            now + lease_ms * 1_000,
            "killed-worker",
            10,
        )
        .await
        .unwrap();
        assert_eq!(claimed.len(), 1);

        // The restarted process, on the same file and the same (unmoving) clock.
        let ctx = qaward_kit::server::ServiceContext {
            config: std::sync::Arc::new(qaward_kit::config::Config {
                notifications: s.clone(),
                ..qaward_kit::config::Config::default()
            }),
            verifier: r.keys.verifier.clone(),
            clock: r.clock.clone(),
            randomness: std::sync::Arc::new(qaward_kit::clock::SeededRandomness::new(12)),
            // The same key file: the sealed address opens after the restart.
            audit: std::sync::Arc::new(qaward_kit::audit::AuditKey::ephemeral()),
            in_process: Default::default(),
            fields: r.fields.clone(),
        };
        let _restarted = qaward_notifications::service(r.db.db.clone(), &ctx)
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let got = r.get(&n.name).await;
            if delivered(&got.deliveries[0]) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "still {:?} a lease period early",
                got.deliveries[0]
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(sink.received().len(), 1);
    }
}
