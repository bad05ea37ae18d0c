//! The outbox delivers every committed event at least once, with its idempotency key, even
//! when the process that committed it is killed before relaying.

use std::{
    collections::{BTreeSet, HashMap},
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use qaward_kit::{
    clock::{SharedClock, SystemClock},
    db::Database,
    outbox::{self, Event, Relay, RelayOptions, Sink},
    testing,
};

/// A sink that records what it receives, keyed by idempotency key, and can be told to fail.
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<HashMap<String, usize>>>,
    fail_first: Arc<Mutex<usize>>,
}

impl Sink for Recorder {
    async fn deliver(&self, event: &Event) -> Result<(), String> {
        {
            let mut fail = self.fail_first.lock().unwrap();
            if *fail > 0 {
                *fail -= 1;
                return Err("sink unavailable".into());
            }
        }
        *self
            .seen
            .lock()
            .unwrap()
            .entry(event.id.clone())
            .or_default() += 1;
        Ok(())
    }
}

fn clock() -> SharedClock {
    Arc::new(SystemClock)
}

fn fast() -> RelayOptions {
    RelayOptions {
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        poll: Duration::from_millis(10),
        ..RelayOptions::default()
    }
}

async fn commit_events(db: &Database, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let mut tx = db.begin().await.unwrap();
        let e = Event::new("test.happened", format!("{{\"i\":{i}}}"));
        outbox::enqueue(&mut tx, time::OffsetDateTime::now_utc(), &e)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        ids.push(e.id);
    }
    ids
}

#[tokio::test]
async fn every_committed_event_is_delivered_and_rolled_back_ones_are_not() {
    for db in testing::backends("outbox", &testing::no_migrations()).await {
        let ids = commit_events(&db, 7).await;
        let mut tx = db.begin().await.unwrap();
        let ghost = Event::new("test.happened", "never committed");
        outbox::enqueue(&mut tx, time::OffsetDateTime::now_utc(), &ghost)
            .await
            .unwrap();
        tx.rollback().await.unwrap();

        let sink = Recorder::default();
        let relay = Relay::new(db.db.clone(), sink.clone(), clock(), fast());
        assert_eq!(relay.run_once().await.unwrap(), 7, "{}", db.label);
        assert_eq!(relay.run_once().await.unwrap(), 0, "{}", db.label);
        let seen = sink.seen.lock().unwrap().clone();
        assert_eq!(
            seen.keys().cloned().collect::<BTreeSet<_>>(),
            ids.into_iter().collect::<BTreeSet<_>>()
        );
        assert!(!seen.contains_key(&ghost.id));
        assert_eq!(outbox::pending(&db).await.unwrap(), 0);
    }
}

#[tokio::test]
async fn a_failing_sink_is_retried_with_backoff_until_it_takes_the_event() {
    for db in testing::backends("outbox", &testing::no_migrations()).await {
        let ids = commit_events(&db, 1).await;
        let sink = Recorder::default();
        *sink.fail_first.lock().unwrap() = 3;
        let relay = Relay::new(db.db.clone(), sink.clone(), clock(), fast());
        let mut delivered = 0;
        for _ in 0..50 {
            delivered += relay.run_once().await.unwrap();
            if delivered == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(delivered, 1, "{}", db.label);
        assert_eq!(sink.seen.lock().unwrap().get(&ids[0]), Some(&1));
    }
}

#[tokio::test]
async fn enqueueing_the_same_event_twice_stores_it_once() {
    for db in testing::backends("outbox", &testing::no_migrations()).await {
        let e = Event::new("test.happened", "once");
        for _ in 0..2 {
            let mut tx = db.begin().await.unwrap();
            outbox::enqueue(&mut tx, time::OffsetDateTime::now_utc(), &e)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
        assert_eq!(outbox::pending(&db).await.unwrap(), 1, "{}", db.label);
    }
}

const CHILD_DB: &str = "QAWARD_OUTBOX_CHILD_DB";

/// Not a test on its own: the child process of the crash test below. It commits events one
/// by one, printing each id after its commit, and never relays.
#[tokio::test]
async fn crash_child_commits_without_relaying() {
    let Ok(path) = std::env::var(CHILD_DB) else {
        return;
    };
    let db = Database::connect_sqlite(std::path::Path::new(&path), "outbox", 2)
        .await
        .unwrap();
    db.migrate("outbox", &testing::no_migrations())
        .await
        .unwrap();
    loop {
        let id = commit_events(&db, 1).await.remove(0);
        println!("COMMITTED {id}");
    }
}

#[tokio::test]
async fn events_survive_a_kill_between_commit_and_relay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "outbox::crash_child_commits_without_relaying",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reported = BTreeSet::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while reported.len() < 25 {
        let line = lines.next().expect("child ended early").unwrap();
        if let Some(id) = line.strip_prefix("COMMITTED ") {
            reported.insert(id.to_string());
        }
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up.
    child.wait().unwrap();

    let db = Database::connect_sqlite(&path, "outbox", 2).await.unwrap();
    db.migrate("outbox", &testing::no_migrations())
        .await
        .unwrap();
    let stored = outbox::pending(&db).await.unwrap();
    assert!(stored as usize >= reported.len());

    let sink = Recorder::default();
    let relay = Relay::new(db.clone(), sink.clone(), clock(), fast());
    while relay.run_once().await.unwrap() > 0 {}
    let seen = sink.seen.lock().unwrap().clone();
    // Every event the dead process reported committed arrived, and so did every other row it
    // managed to commit before the kill.
    for id in &reported {
        assert_eq!(seen.get(id), Some(&1), "event {id} not delivered");
    }
    assert_eq!(seen.len() as i64, stored);
    assert_eq!(outbox::pending(&db).await.unwrap(), 0);
}
