//! Events between services (issue 24): the feed numbers every published event once, without
//! gaps, whatever publishes at once; a follower applies each event once, with its consequence
//! or not at all, and stays on an event it cannot apply.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
};

use qaward_kit::{
    Error, Result,
    clock::{SharedClock, SystemClock},
    db::{Conn, Database},
    events::{self, Apply, Feed, Follower, Published},
    outbox::Event,
    testing,
};

fn clock() -> SharedClock {
    Arc::new(SystemClock)
}

/// Reads the feed of another database, as a follower reads a publisher's API.
struct Local(Database);

impl Feed for Local {
    async fn fetch(&self, after: i64, limit: i64) -> Result<(Vec<Published>, i64)> {
        events::read(&self.0, after, limit).await
    }
}

/// Writes each event's id into the follower's own table (the consequence), and fails on
/// events whose payload says so while `failing` is set.
#[derive(Clone, Default)]
struct Mark {
    failing: Arc<Mutex<bool>>,
    calls: Arc<AtomicUsize>,
}

impl Apply for Mark {
    async fn apply(&self, conn: &mut Conn, e: &Published, _at: time::OffsetDateTime) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        sqlx::query("INSERT INTO service_meta (key, value) VALUES ($1, $2)")
            .bind(format!("applied:{}", e.event.id))
            .bind(e.seq.to_string())
            .execute(&mut *conn)
            .await?;
        if e.event.payload == b"poison" && *self.failing.lock().unwrap() {
            return Err(Error::internal("cannot apply this one yet"));
        }
        Ok(())
    }
}

async fn consequences(db: &Database) -> i64 {
    use sqlx::Row;
    sqlx::query("SELECT COUNT(*) AS n FROM service_meta WHERE key LIKE 'applied:%'")
        .fetch_one(db.pool())
        .await
        .unwrap()
        .try_get("n")
        .unwrap()
}

fn event(payload: &str) -> Event {
    let mut e = Event::new("test.changed", payload.as_bytes().to_vec());
    e.created_micros = 1;
    e
}

#[tokio::test]
async fn the_feed_numbers_each_event_once_and_without_gaps() {
    for db in testing::backends("events_feed", &testing::no_migrations()).await {
        let e = event("a");
        events::publish(&db, &e, 10).await.unwrap();
        // The relay died before it marked the event delivered, and publishes it again.
        events::publish(&db, &e, 11).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..12 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                events::publish(&db, &event(&format!("p{i}")), 12).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let (all, last) = events::read(&db, 0, 100).await.unwrap();
        assert_eq!(last, 13);
        assert_eq!(
            all.iter().map(|p| p.seq).collect::<Vec<_>>(),
            (1..=13).collect::<Vec<_>>()
        );
        assert_eq!(all[0].event, e);
        let (after, _) = events::read(&db, 10, 100).await.unwrap();
        assert_eq!(after.len(), 3);
    }
}

#[tokio::test]
async fn a_follower_applies_each_event_once_even_when_read_again() {
    let publishers = testing::backends("events_pub", &testing::no_migrations()).await;
    let followers = testing::backends("events_sub", &testing::no_migrations()).await;
    for (publisher, follower) in publishers.into_iter().zip(followers) {
        for i in 0..5 {
            events::publish(&publisher, &event(&format!("e{i}")), 20)
                .await
                .unwrap();
        }
        let mark = Mark::default();
        let f = Follower::new(
            "pub",
            follower.clone(),
            Local(publisher.clone()),
            mark.clone(),
            clock(),
        );
        assert_eq!(f.run_once().await.unwrap(), 5);
        assert_eq!(f.run_once().await.unwrap(), 0);
        // The cursor is lost (restored from an older backup): every event is read again and
        // none is applied twice.
        sqlx::query("DELETE FROM event_cursors")
            .execute(follower.pool())
            .await
            .unwrap();
        assert_eq!(f.run_once().await.unwrap(), 0);
        assert_eq!(consequences(&follower).await, 5);
        assert_eq!(mark.calls.load(Ordering::SeqCst), 5);
        let p = events::progress(&follower, "pub").await.unwrap();
        assert_eq!((p.applied, p.published, p.behind()), (5, 5, 0));
    }
}

#[tokio::test]
async fn a_follower_stays_on_an_event_it_cannot_apply_and_changes_nothing_for_it() {
    let publishers = testing::backends("events_pub2", &testing::no_migrations()).await;
    let followers = testing::backends("events_sub2", &testing::no_migrations()).await;
    for (publisher, follower) in publishers.into_iter().zip(followers) {
        for p in ["one", "poison", "three"] {
            events::publish(&publisher, &event(p), 30).await.unwrap();
        }
        let mark = Mark::default();
        *mark.failing.lock().unwrap() = true;
        let f = Follower::new(
            "pub",
            follower.clone(),
            Local(publisher.clone()),
            mark.clone(),
            clock(),
        );
        assert!(f.run_once().await.is_err());
        // The first applied; the second's consequence rolled back with its record; the third
        // waits behind it.
        assert_eq!(consequences(&follower).await, 1);
        let p = events::progress(&follower, "pub").await.unwrap();
        assert_eq!((p.applied, p.behind()), (1, 2));
        assert!(
            p.last_error.unwrap().contains("event 2"),
            "the error names the event"
        );
        *mark.failing.lock().unwrap() = false;
        assert_eq!(f.run_once().await.unwrap(), 2);
        assert_eq!(consequences(&follower).await, 3);
        assert_eq!(
            events::progress(&follower, "pub").await.unwrap().last_error,
            None
        );
    }
}
