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

use qaward_kit::{
    Result,
    clock::{SharedClock, SharedRandomness, unix_micros},
    db::Database,
};
use tokio::{sync::Notify, time::Instant};

use crate::{
    channels::Channels,
    domain::{
        Channel,
        delivery::{Next, Outcome, RetryPolicy, TokenBucket},
    },
    store::{self, Attempt, DEAD, DELIVERED, DeliveryRow, RETRYING},
};

/// Deliveries one worker claims at a time.
const BATCH: i64 = 8;

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
}

impl Pool {
    pub fn new(
        db: Database,
        channels: Channels,
        clock: SharedClock,
        randomness: SharedRandomness,
        settings: &qaward_kit::config::Notifications,
        wake: Arc<Notify>,
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
        })
    }

    /// Starts `n` workers on the current runtime.
    pub fn spawn(self: &Arc<Self>, n: usize) {
        for i in 0..n {
            let pool = self.clone();
            tokio::spawn(async move { pool.run(i).await });
        }
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

    /// Claims and attempts one batch of due deliveries; returns how many it claimed.
    pub async fn round(&self) -> Result<usize> {
        let now = unix_micros(self.clock.now());
        let token = self.lease_token();
        let claimed = store::claim(
            &self.db,
            now,
            now + self.lease.as_micros() as i64,
            &token,
            BATCH,
        )
        .await?;
        let n = claimed.len();
        for d in claimed {
            self.attempt(d, &token).await?;
        }
        Ok(n)
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

    async fn attempt(&self, d: DeliveryRow, token: &str) -> Result<()> {
        let Some(channel) = Channel::parse(&d.channel) else {
            return self
                .record(
                    &d,
                    token,
                    Outcome::Permanent(format!("unknown channel {}", d.channel)),
                )
                .await;
        };
        self.wait_for_rate(channel).await;
        if channel == Channel::Inbox {
            // Written and recorded in one transaction: exactly once.
            let now = unix_micros(self.clock.now());
            let mut tx = self.db.begin().await?;
            store::put_inbox_message(&mut tx, &d, now).await?;
            let attempt = Attempt {
                state: DELIVERED,
                attempts: d.attempts + 1,
                last_error: "",
                next_attempt_micros: d.next_attempt_micros,
                delivered_micros: Some(now),
            };
            if store::record_attempt(&mut tx, &d.id, token, &attempt).await? {
                tx.commit().await?;
            }
            return Ok(());
        }
        let outcome = self
            .channels
            .send(channel, &d, self.clock.now().unix_timestamp())
            .await;
        self.record(&d, token, outcome).await
    }

    async fn record(&self, d: &DeliveryRow, token: &str, outcome: Outcome) -> Result<()> {
        let attempts = d.attempts + 1;
        let jitter = (self.randomness.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let now = self.clock.now();
        let error = outcome.error().to_string();
        let (state, next, delivered) = match self.policy.next(&outcome, attempts as u32, jitter) {
            Next::Delivered => (DELIVERED, unix_micros(now), Some(unix_micros(now))),
            Next::RetryAfter(delay) => {
                tracing::warn!(delivery = %d.id, channel = %d.channel, attempts, %error, "delivery failed; will retry");
                (RETRYING, unix_micros(now) + delay.as_micros() as i64, None)
            }
            Next::Dead => {
                tracing::warn!(delivery = %d.id, channel = %d.channel, attempts, %error, "delivery is a dead letter");
                (DEAD, unix_micros(now), None)
            }
        };
        let mut conn = self.db.pool().acquire().await?;
        let attempt = Attempt {
            state,
            attempts,
            last_error: &error,
            next_attempt_micros: next,
            delivered_micros: delivered,
        };
        store::record_attempt(&mut conn, &d.id, token, &attempt).await?;
        Ok(())
    }
}
