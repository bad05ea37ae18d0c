//! The delivery workers: each takes due deliveries from the durable queue, waits for its
//! channel's rate limit, makes one attempt, and records the outcome — delivered, retry later
//! (backoff with jitter) or dead letter. A worker that dies mid-attempt leaves a lease that
//! runs out, and the delivery is attempted again: at least once, with the delivery id as the
//! idempotency key so the receiver sees it once.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::future::join_all;
use qaward_kit::{
    Result,
    clock::{SharedClock, SharedRandomness, unix_micros},
    db::{Backend, Database},
};
use tokio::{sync::Notify, time::Instant};
use tracing::Instrument;

use crate::{
    channels::Channels,
    domain::{
        Channel,
        delivery::{Next, Outcome, RetryPolicy, TokenBucket},
    },
    store::{self, Attempt, DEAD, DeliveryRow, RETRYING},
};

/// Deliveries one worker claims, and attempts concurrently, at a time.
const BATCH: i64 = 128;

/// What the workers of one process share.
pub struct Pool {
    db: Database,
    channels: Channels,
    clock: SharedClock,
    randomness: SharedRandomness,
    policy: RetryPolicy,
    lease: Duration,
    poll: Duration,
    buckets: Mutex<HashMap<Channel, TokenBucket>>,
    started: Instant,
    wake: Arc<Notify>,
    /// Opens the sealed addresses for the attempt only.
    fields: Arc<qaward_kit::fields::FieldKeys>,
    /// `notifications.deliveries`: attempts by channel and outcome (delivered, retrying, dead).
    attempts: opentelemetry::metrics::Counter<u64>,
}

impl Pool {
    pub fn new(
        db: Database,
        channels: Channels,
        clock: SharedClock,
        randomness: SharedRandomness,
        settings: &qaward_kit::config::Notifications,
        wake: Arc<Notify>,
        fields: Arc<qaward_kit::fields::FieldKeys>,
    ) -> Arc<Pool> {
        let r = &settings.rate_per_second;
        let buckets = [
            (Channel::Inbox, r.inbox),
            (Channel::Email, r.email),
            (Channel::Webhook, r.webhook),
            (Channel::Sms, r.sms),
        ]
        .into_iter()
        .map(|(c, rate)| (c, TokenBucket::new(rate)))
        .collect();
        Arc::new(Pool {
            fields,
            db,
            channels,
            clock,
            randomness,
            policy: RetryPolicy {
                max_attempts: settings.max_attempts,
                base: Duration::from_millis(settings.base_backoff_ms),
                max: Duration::from_millis(settings.max_backoff_ms.max(settings.base_backoff_ms)),
            },
            lease: Duration::from_millis(settings.lease_ms.max(1_000)),
            poll: Duration::from_millis(settings.poll_ms.max(10)),
            buckets: Mutex::new(buckets),
            started: Instant::now(),
            wake,
            attempts: opentelemetry::global::meter("qaward")
                .u64_counter("notifications.deliveries")
                .with_description("Delivery attempts by channel and outcome")
                .build(),
        })
    }

    /// Starts `n` workers on the current runtime; they run until aborted or the runtime ends
    /// (a delivery cut off mid-attempt is retried once its lease runs out).
    pub fn spawn(self: &Arc<Self>, n: usize) -> Vec<tokio::task::JoinHandle<()>> {
        (0..n)
            .map(|i| {
                let pool = self.clone();
                tokio::spawn(async move { pool.run(i).await })
            })
            .collect()
    }

    async fn run(self: Arc<Self>, worker: usize) {
        loop {
            match self.round().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(worker, error = %e, "notification delivery round failed"),
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
    }

    fn lease_token(&self) -> String {
        let mut b = [0u8; 12];
        self.randomness.fill(&mut b);
        hex::encode(b)
    }

    /// Claims one batch of due deliveries, attempts them concurrently, and records every
    /// outcome in one transaction (one commit per batch, not per delivery); returns how many
    /// it claimed. An inbox message is written in that same transaction, so the inbox gets it
    /// exactly once. On PostgreSQL the batch stays row-locked in that transaction from claim
    /// to record; on SQLite it is claimed with a lease (see `store::claim`).
    pub async fn round(&self) -> Result<usize> {
        let now = unix_micros(self.clock.now());
        let (held, claimed, token) = match self.db.backend() {
            Backend::Postgres => {
                let mut tx = self.db.begin().await?;
                let rows = store::claim_locked(&mut tx, now, BATCH).await?;
                (Some(tx), rows, String::new())
            }
            Backend::Sqlite => {
                let token = self.lease_token();
                let until = now + self.lease.as_micros() as i64;
                let rows = store::claim(&self.db, now, until, &token, BATCH).await?;
                (None, rows, token)
            }
        };
        if claimed.is_empty() {
            return Ok(0);
        }
        let span = tracing::info_span!("notifications.deliver", batch = claimed.len());
        let outcomes = join_all(claimed.iter().map(|d| self.attempt(d)))
            .instrument(span)
            .await;
        let mut tx = match held {
            Some(tx) => tx,
            None => self.db.begin().await?,
        };
        let written = unix_micros(self.clock.now());
        let mut delivered = Vec::new();
        for (d, outcome) in claimed.iter().zip(outcomes) {
            let step = self.next_step(d, &outcome);
            self.attempts.add(
                1,
                &[
                    opentelemetry::KeyValue::new("channel", d.channel.clone()),
                    opentelemetry::KeyValue::new("outcome", step.state),
                ],
            );
            if step.state == store::DELIVERED {
                if d.channel == Channel::Inbox.as_str() {
                    store::put_inbox_message(&mut tx, d, written).await?;
                }
                delivered.push(d.id.as_str());
            } else {
                store::record_attempt(&mut tx, &d.id, &token, &step.as_attempt()).await?;
            }
        }
        store::record_delivered(&mut tx, &delivered, &token, written).await?;
        tx.commit().await?;
        Ok(claimed.len())
    }

    async fn wait_for_rate(&self, channel: Channel) {
        loop {
            let wait = {
                let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
                match buckets.get_mut(&channel) {
                    Some(b) => b.take(self.started.elapsed()),
                    None => Ok(()),
                }
            };
            match wait {
                Ok(()) => return,
                Err(d) => tokio::time::sleep(d).await,
            }
        }
    }

    /// One attempt. The inbox needs no network: it is delivered by the batch's transaction.
    async fn attempt(&self, d: &DeliveryRow) -> Outcome {
        let Some(channel) = Channel::parse(&d.channel) else {
            return Outcome::Permanent(format!("unknown channel {}", d.channel));
        };
        self.wait_for_rate(channel).await;
        if channel == Channel::Inbox {
            return Outcome::Delivered;
        }
        // The address and the message are sealed at rest; opened for this attempt only.
        let mut open = d.clone();
        let opened = (|| {
            open.address = self.fields.open(&d.address)?;
            open.subject = self.fields.open(&d.subject)?;
            open.body = self.fields.open(&d.body)?;
            Ok::<_, qaward_kit::fields::FieldError>(())
        })();
        if let Err(e) = opened {
            return Outcome::Permanent(format!("the message does not open: {e}"));
        }
        self.channels
            .send(channel, &open, self.clock.now().unix_timestamp())
            .await
    }

    /// What the retry policy makes of an outcome.
    fn next_step(&self, d: &DeliveryRow, outcome: &Outcome) -> Step {
        let attempts = d.attempts + 1;
        let jitter = (self.randomness.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let now = unix_micros(self.clock.now());
        let error = outcome.error().to_string();
        let (state, next, delivered) = match self.policy.next(outcome, attempts as u32, jitter) {
            Next::Delivered => (store::DELIVERED, now, Some(now)),
            Next::RetryAfter(delay) => {
                tracing::warn!(delivery = %d.id, channel = %d.channel, attempts, %error, "delivery failed; will retry");
                (RETRYING, now + delay.as_micros() as i64, None)
            }
            Next::Dead => {
                tracing::warn!(delivery = %d.id, channel = %d.channel, attempts, %error, "delivery is a dead letter");
                (DEAD, now, None)
            }
        };
        Step {
            state,
            attempts,
            error,
            next,
            delivered,
        }
    }
}

/// An attempt's recorded result, owned.
struct Step {
    state: &'static str,
    attempts: i64,
    error: String,
    next: i64,
    delivered: Option<i64>,
}

impl Step {
    fn as_attempt(&self) -> Attempt<'_> {
        Attempt {
            state: self.state,
            attempts: self.attempts,
            last_error: &self.error,
            next_attempt_micros: self.next,
            delivered_micros: self.delivered,
        }
    }
}
