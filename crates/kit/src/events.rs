//! Events between services (issue 24): what one service changed that another must react to.
//!
//! The publisher writes an event to its outbox in the transaction of the change
//! ([`crate::outbox::enqueue`]); its relay moves the event to the service's **feed** with
//! [`FeedSink`], numbering it. Numbers are gap-free and in the order the relay published, under
//! the feed's table lock, so a follower that has applied every event up to N has seen them all:
//! no event committed earlier can appear later below N. A follower reads the feed over the
//! publisher's API (the publisher calls nobody) and applies each event with [`Follower`] in
//! one transaction with its consequence: the event's id goes into `events_applied` and the
//! cursor moves on, or nothing does. A redelivered event finds its id and changes nothing.

use std::{future::Future, time::Duration};

use sqlx::Row;

use crate::{
    Error, Result,
    clock::{SharedClock, unix_micros},
    db::{Backend, Conn, Database},
    outbox::{Event, Sink},
};

/// One published event, as a follower reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub seq: i64,
    /// Its `created_micros` is when the change committed.
    pub event: Event,
}

/// The relay's sink of a publishing service: appends each event to the service's own feed.
#[derive(Clone)]
pub struct FeedSink {
    db: Database,
    clock: SharedClock,
}

impl FeedSink {
    pub fn new(db: Database, clock: SharedClock) -> Self {
        FeedSink { db, clock }
    }
}

impl Sink for FeedSink {
    async fn deliver(&self, event: &Event) -> Result<(), String> {
        publish(&self.db, event, unix_micros(self.clock.now()))
            .await
            .map_err(|e| e.to_string())
    }
}

/// Appends `event` to the feed with the next number, once: an event already there (a relay
/// that died before marking it delivered) is left as it is.
pub async fn publish(db: &Database, event: &Event, now: i64) -> Result<()> {
    let mut tx = db.begin().await?;
    if db.backend() == Backend::Postgres {
        // Numbering under the lock keeps the numbers in commit order: a second publisher waits
        // for the first to commit before it reads the last number.
        sqlx::query("LOCK TABLE event_feed IN EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "INSERT INTO event_feed (seq, event_id, topic, payload, created_micros, published_micros)
         SELECT next.n, $1, $2, $3, $4, $5 FROM (SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM event_feed) next
         WHERE NOT EXISTS (SELECT 1 FROM event_feed WHERE event_id = $1)",
    )
    .bind(&event.id)
    .bind(&event.topic)
    .bind(&event.payload)
    .bind(event.created_micros)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Up to `limit` events after `after`, in order, and the feed's last number.
pub async fn read(db: &Database, after: i64, limit: i64) -> Result<(Vec<Published>, i64)> {
    let mut conn = db.pool().acquire().await?;
    let rows = sqlx::query(
        "SELECT seq, event_id, topic, payload, created_micros FROM event_feed
         WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let events = rows
        .iter()
        .map(|r| {
            Ok(Published {
                seq: r.try_get("seq")?,
                event: Event {
                    id: r.try_get("event_id")?,
                    topic: r.try_get("topic")?,
                    payload: r.try_get("payload")?,
                    created_micros: r.try_get("created_micros")?,
                },
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let last: Option<i64> = sqlx::query("SELECT MAX(seq) AS n FROM event_feed")
        .fetch_one(&mut *conn)
        .await?
        .try_get("n")?;
    Ok((events, last.unwrap_or(0)))
}

/// Where a follower reads another service's feed from.
pub trait Feed: Send + Sync + 'static {
    /// Events after `after` (at most `limit`), and the feed's last number.
    fn fetch(
        &self,
        after: i64,
        limit: i64,
    ) -> impl Future<Output = Result<(Vec<Published>, i64)>> + Send;
}

/// What a follower does with one event, inside the transaction that records it applied.
pub trait Apply: Send + Sync + 'static {
    fn apply(
        &self,
        conn: &mut Conn,
        event: &Published,
        at: time::OffsetDateTime,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// How far a follower has come with one source, and why it stopped if it did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// The last number applied.
    pub applied: i64,
    /// The source's last number when last read.
    pub published: i64,
    /// The last failure to apply, cleared by the next success.
    pub last_error: Option<String>,
}

impl Progress {
    pub fn behind(&self) -> i64 {
        (self.published - self.applied).max(0)
    }
}

/// The follower's progress with `source`.
pub async fn progress(db: &Database, source: &str) -> Result<Progress> {
    let row =
        sqlx::query("SELECT seq, published_seq, last_error FROM event_cursors WHERE source = $1")
            .bind(source)
            .fetch_optional(db.pool())
            .await?;
    Ok(match row {
        None => Progress::default(),
        Some(r) => Progress {
            applied: r.try_get("seq")?,
            published: r.try_get("published_seq")?,
            last_error: r.try_get("last_error")?,
        },
    })
}

/// Records `event` as applied from `source`; false when it already was (a repeat).
pub async fn first_time(
    conn: &mut Conn,
    source: &str,
    event: &Published,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO events_applied (source, event_id, seq, applied_micros) VALUES ($1, $2, $3, $4)
         ON CONFLICT (source, event_id) DO NOTHING",
    )
    .bind(source)
    .bind(&event.event.id)
    .bind(event.seq)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

async fn set_cursor(
    conn: &mut Conn,
    source: &str,
    applied: i64,
    published: i64,
    error: Option<&str>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO event_cursors (source, seq, published_seq, last_error, updated_micros)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (source) DO UPDATE SET
             seq = CASE WHEN event_cursors.seq > excluded.seq THEN event_cursors.seq ELSE excluded.seq END,
             published_seq = excluded.published_seq, last_error = excluded.last_error,
             updated_micros = excluded.updated_micros",
    )
    .bind(source)
    .bind(applied)
    .bind(published)
    .bind(error)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Follows one source's feed: reads after its cursor, applies each event once, moves on.
pub struct Follower<F: Feed, A: Apply> {
    pub source: &'static str,
    pub db: Database,
    pub feed: F,
    pub apply: A,
    pub clock: SharedClock,
    pub batch: i64,
    pub poll: Duration,
    lag: opentelemetry::metrics::Histogram<f64>,
}

impl<F: Feed, A: Apply> Follower<F, A> {
    pub fn new(source: &'static str, db: Database, feed: F, apply: A, clock: SharedClock) -> Self {
        Follower {
            source,
            db,
            feed,
            apply,
            clock,
            batch: 100,
            poll: Duration::from_millis(500),
            lag: opentelemetry::global::meter("qaward")
                .f64_histogram("events.lag")
                .with_unit("ms")
                .with_description(
                    "From a change's commit to its consequence in a following service",
                )
                .build(),
        }
    }

    /// Applies what is due; returns how many events were applied (repeats not counted).
    /// Stops at the first event that fails, leaving it for the next round, and records why.
    pub async fn run_once(&self) -> Result<usize> {
        let mine = progress(&self.db, self.source).await?;
        let (events, published) = self.feed.fetch(mine.applied, self.batch).await?;
        let mut applied = 0;
        for e in &events {
            let at = self.clock.now();
            let now = unix_micros(at);
            let mut tx = self.db.begin().await?;
            let outcome = async {
                if first_time(&mut tx, self.source, e, now).await? {
                    self.apply.apply(&mut tx, e, at).await?;
                    Ok::<_, Error>(true)
                } else {
                    Ok(false)
                }
            }
            .await;
            match outcome {
                Ok(fresh) => {
                    set_cursor(&mut tx, self.source, e.seq, published, None, now).await?;
                    tx.commit().await?;
                    if fresh {
                        applied += 1;
                        let lag = now.saturating_sub(e.event.created_micros) as f64 / 1000.0;
                        self.lag.record(
                            lag,
                            &[opentelemetry::KeyValue::new("topic", e.event.topic.clone())],
                        );
                    }
                }
                Err(error) => {
                    tx.rollback().await?;
                    tracing::warn!(source = self.source, seq = e.seq, event_id = %e.event.id, topic = %e.event.topic, %error, "an event could not be applied; will retry");
                    let mut conn = self.db.pool().acquire().await?;
                    let message = format!("event {} ({}): {error}", e.seq, e.event.topic);
                    set_cursor(
                        &mut conn,
                        self.source,
                        mine.applied.max(e.seq - 1),
                        published,
                        Some(&message),
                        now,
                    )
                    .await?;
                    return Err(error);
                }
            }
        }
        if events.is_empty() {
            let mut conn = self.db.pool().acquire().await?;
            set_cursor(
                &mut conn,
                self.source,
                mine.applied,
                published,
                mine.last_error.as_deref(),
                unix_micros(self.clock.now()),
            )
            .await?;
        }
        Ok(applied)
    }

    /// Follows until `shutdown` resolves: straight on while a round leaves it behind (more
    /// than a batch was waiting), else after `poll`.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            match self.run_once().await {
                Ok(_) => {
                    if progress(&self.db, self.source)
                        .await
                        .is_ok_and(|p| p.behind() > 0)
                    {
                        continue;
                    }
                }
                Err(e) => {
                    tracing::debug!(source = self.source, error = %e, "follower round stopped")
                }
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
    }
}
