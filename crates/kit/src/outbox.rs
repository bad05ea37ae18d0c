//! The transactional outbox. A service writes an event with [`enqueue`] in the same
//! transaction as the change it announces; a [`Relay`] later hands every committed event to a
//! [`Sink`] at least once, with the event id as the idempotency key, so the receiver can drop
//! repeats. Events survive a crash between commit and relay: they are rows, and the relay of
//! the restarted process picks them up.

use std::{future::Future, sync::Arc, time::Duration};

use sqlx::Row;
use tokio::sync::Notify;

use crate::{
    Result,
    clock::{SharedClock, unix_micros},
    db::{Conn, Database},
};

/// An event as written to the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Unique per event; the idempotency key the sink receives.
    pub id: String,
    /// What happened, for routing: `application.stage_changed`.
    pub topic: String,
    /// The event body (protobuf or JSON, as the topic defines).
    pub payload: Vec<u8>,
    /// When the change it announces committed (Unix microseconds): set on the events a relay
    /// hands over, 0 on a new one ([`enqueue`] takes the time of the change).
    pub created_micros: i64,
}

impl Event {
    /// A new event with a fresh, time-ordered id.
    pub fn new(topic: impl Into<String>, payload: impl Into<Vec<u8>>) -> Self {
        Event {
            id: uuid::Uuid::now_v7().to_string(),
            topic: topic.into(),
            payload: payload.into(),
            created_micros: 0,
        }
    }
}

/// Writes `event` inside the caller's transaction. An event id already present is a no-op,
/// so a retried request does not announce its change twice.
pub async fn enqueue(conn: &mut Conn, at: time::OffsetDateTime, event: &Event) -> Result<()> {
    let now = unix_micros(at);
    sqlx::query(
        "INSERT INTO outbox (event_id, topic, payload, created_micros, next_attempt_micros)
         VALUES ($1, $2, $3, $4, $4)
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(&event.id)
    .bind(&event.topic)
    .bind(&event.payload)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Where a relay delivers events. `deliver` must be idempotent by `event.id`.
pub trait Sink: Send + Sync + 'static {
    fn deliver(&self, event: &Event) -> impl Future<Output = Result<(), String>> + Send;
}

/// Hands each event to the sink its topic names: topics that start with `prefix` to `first`,
/// every other to `rest`. One relay per outbox, however many services it feeds.
pub struct ByTopic<A: Sink, B: Sink> {
    pub prefix: &'static str,
    pub first: A,
    pub rest: B,
}

impl<A: Sink, B: Sink> Sink for ByTopic<A, B> {
    async fn deliver(&self, event: &Event) -> Result<(), String> {
        if event.topic.starts_with(self.prefix) {
            self.first.deliver(event).await
        } else {
            self.rest.deliver(event).await
        }
    }
}

/// How a relay paces itself.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// Events claimed per round.
    pub batch: i64,
    /// How long a claimed event is reserved for this relay before another may take it.
    pub lease: Duration,
    /// How often to look for due events when nobody calls [`Relay::wake`].
    pub poll: Duration,
    /// First retry delay; doubles per attempt up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions {
            batch: 100,
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(500),
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(300),
        }
    }
}

/// Moves committed events to a sink. Several relays (one per replica) may run against one
/// PostgreSQL database: each claims a batch by pushing its `next_attempt_micros` forward by
/// the lease, and a claim only takes rows that are still due.
pub struct Relay<S: Sink> {
    db: Database,
    sink: S,
    clock: SharedClock,
    options: RelayOptions,
    wake: Arc<Notify>,
    metrics: RelayMetrics,
}

/// `outbox.lag` (ms from commit to handover) and `outbox.handovers` (by topic and outcome).
struct RelayMetrics {
    lag: opentelemetry::metrics::Histogram<f64>,
    handovers: opentelemetry::metrics::Counter<u64>,
}

impl<S: Sink> Relay<S> {
    pub fn new(db: Database, sink: S, clock: SharedClock, options: RelayOptions) -> Self {
        let meter = opentelemetry::global::meter("qaward");
        let metrics = RelayMetrics {
            lag: meter
                .f64_histogram("outbox.lag")
                .with_unit("ms")
                .with_description("From an event's commit to its handover to the sink")
                .build(),
            handovers: meter
                .u64_counter("outbox.handovers")
                .with_description("Outbox handovers by topic and outcome (delivered, retry)")
                .build(),
        };
        Relay {
            db,
            sink,
            clock,
            options,
            wake: Arc::new(Notify::new()),
            metrics,
        }
    }

    /// A handle a service uses to wake the relay right after a commit.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Delivers every due event once; returns how many were delivered.
    pub async fn run_once(&self) -> Result<usize> {
        let now = unix_micros(self.clock.now());
        let lease_until = now + self.options.lease.as_micros() as i64;
        let claimed = sqlx::query(
            "UPDATE outbox SET next_attempt_micros = $1
             WHERE delivered_micros IS NULL AND next_attempt_micros <= $2 AND id IN (
                 SELECT id FROM outbox
                 WHERE delivered_micros IS NULL AND next_attempt_micros <= $2
                 ORDER BY id LIMIT $3)
             RETURNING id, event_id, topic, payload, attempts, created_micros",
        )
        .bind(lease_until)
        .bind(now)
        .bind(self.options.batch)
        .fetch_all(self.db.pool())
        .await?;
        let mut rows = claimed
            .iter()
            .map(|r| {
                Ok((
                    r.try_get::<i64, _>("id")?,
                    (
                        r.try_get::<i64, _>("attempts")?,
                        r.try_get::<i64, _>("created_micros")?,
                    ),
                    Event {
                        id: r.try_get("event_id")?,
                        topic: r.try_get("topic")?,
                        payload: r.try_get("payload")?,
                        created_micros: r.try_get("created_micros")?,
                    },
                ))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        rows.sort_by_key(|(id, _, _)| *id);

        let mut delivered = 0;
        for (id, (attempts, created), event) in rows {
            let outcome = self.sink.deliver(&event).await;
            let topic = opentelemetry::KeyValue::new("topic", event.topic.clone());
            let label = if outcome.is_ok() {
                "delivered"
            } else {
                "retry"
            };
            self.metrics.handovers.add(
                1,
                &[
                    topic.clone(),
                    opentelemetry::KeyValue::new("outcome", label),
                ],
            );
            match outcome {
                Ok(()) => {
                    let lag = unix_micros(self.clock.now()).saturating_sub(created);
                    self.metrics.lag.record(lag as f64 / 1000.0, &[topic]);
                    sqlx::query(
                        "UPDATE outbox SET delivered_micros = $1, attempts = $2, last_error = NULL WHERE id = $3",
                    )
                    .bind(unix_micros(self.clock.now()))
                    .bind(attempts + 1)
                    .bind(id)
                    .execute(self.db.pool())
                    .await?;
                    delivered += 1;
                }
                Err(error) => {
                    let delay = backoff(&self.options, attempts + 1);
                    tracing::warn!(event_id = %event.id, topic = %event.topic, attempts = attempts + 1, %error, "outbox delivery failed; will retry");
                    sqlx::query(
                        "UPDATE outbox SET attempts = $1, last_error = $2, next_attempt_micros = $3 WHERE id = $4",
                    )
                    .bind(attempts + 1)
                    .bind(&error)
                    .bind(unix_micros(self.clock.now()) + delay.as_micros() as i64)
                    .bind(id)
                    .execute(self.db.pool())
                    .await?;
                }
            }
        }
        Ok(delivered)
    }

    /// Relays for as long as the process runs, on a task of its own.
    pub fn spawn(self) {
        tokio::spawn(self.run(std::future::pending()));
    }

    /// Relays until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            match self.run_once().await {
                Ok(n) if n as i64 == self.options.batch => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "outbox relay round failed"),
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.options.poll) => {}
            }
        }
    }
}

/// Exponential backoff: `base * 2^(attempt-1)`, capped.
pub fn backoff(options: &RelayOptions, attempt: i64) -> Duration {
    let exp = (attempt.clamp(1, 30) - 1) as u32;
    options
        .base_backoff
        .saturating_mul(2u32.saturating_pow(exp))
        .min(options.max_backoff)
}

/// Counts of the outbox's rows, for tests and health views.
pub async fn pending(db: &Database) -> Result<i64> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE delivered_micros IS NULL")
        .fetch_one(db.pool())
        .await?;
    Ok(row.try_get("n")?)
}
