//! When a failed delivery is tried again, when it is given up, and how fast each channel may
//! send.

use std::time::Duration;

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Worth trying again (a timeout, a 5xx, a 429, a refused connection, an SMTP 4xx).
    Transient(String),
    /// Trying again cannot help (a 4xx, an SMTP 5xx, a channel that is not configured): a
    /// dead letter at once, for the office to look at and requeue.
    Permanent(String),
}

impl Outcome {
    /// What went wrong; empty for a delivery.
    pub fn error(&self) -> &str {
        match self {
            Outcome::Delivered => "",
            Outcome::Transient(e) | Outcome::Permanent(e) => e,
        }
    }
}

/// What to do after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Delivered,
    RetryAfter(Duration),
    Dead,
}

/// Retry policy: exponential backoff from `base`, doubled per attempt up to `max`, with
/// "equal jitter" (half the delay fixed, half random) so a burst that failed together does not
/// retry together; at most `max_attempts` attempts in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    /// `attempts` counts the attempt just made (1 after the first); `jitter` is uniform in
    /// [0, 1).
    pub fn next(&self, outcome: &Outcome, attempts: u32, jitter: f64) -> Next {
        match outcome {
            Outcome::Delivered => Next::Delivered,
            Outcome::Permanent(_) => Next::Dead,
            Outcome::Transient(_) if attempts >= self.max_attempts => Next::Dead,
            Outcome::Transient(_) => {
                let exp = attempts.clamp(1, 31) - 1;
                let full = self.base.saturating_mul(1u32 << exp.min(20)).min(self.max);
                let half = full / 2;
                Next::RetryAfter(half + half.mul_f64(jitter.clamp(0.0, 1.0)))
            }
        }
    }
}

/// How an HTTP status answers a delivery.
pub fn http_outcome(status: u16, body: &str) -> Outcome {
    let said = body.chars().take(200).collect::<String>();
    match status {
        200..=299 => Outcome::Delivered,
        408 | 425 | 429 | 500..=599 => Outcome::Transient(format!("HTTP {status}: {said}")),
        _ => Outcome::Permanent(format!("HTTP {status}: {said}")),
    }
}

/// A token bucket: `rate` sends per second, bursts of up to `rate` (at least 1). Time is
/// passed in, so the rule is tested without sleeping.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Option<Duration>,
}

impl TokenBucket {
    /// `rate` 0 means unlimited.
    pub fn new(rate: u32) -> Self {
        let capacity = f64::from(rate.max(1));
        TokenBucket {
            rate: f64::from(rate),
            capacity,
            tokens: capacity,
            last: None,
        }
    }

    /// Takes a token at `now` (time since any fixed origin), or says how long to wait.
    pub fn take(&mut self, now: Duration) -> Result<(), Duration> {
        if self.rate == 0.0 {
            return Ok(());
        }
        if let Some(last) = self.last {
            let elapsed = now.saturating_sub(last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        max_attempts: 5,
        base: Duration::from_secs(2),
        max: Duration::from_secs(20),
    };

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let t = Outcome::Transient("timeout".into());
        assert_eq!(
            POLICY.next(&t, 1, 0.0),
            Next::RetryAfter(Duration::from_secs(1))
        );
        let Next::RetryAfter(d) = POLICY.next(&t, 1, 0.999_999) else {
            panic!("a transient failure is retried")
        };
        assert!(d < Duration::from_secs(2) && d > Duration::from_millis(1_999));
        assert_eq!(
            POLICY.next(&t, 2, 0.0),
            Next::RetryAfter(Duration::from_secs(2))
        );
        assert_eq!(
            POLICY.next(&t, 3, 0.5),
            Next::RetryAfter(Duration::from_secs(6))
        );
        // 2 s * 2^3 = 16 s; 2 s * 2^4 = 32 s is capped at 20 s (equal jitter: 10-20 s).
        assert_eq!(
            POLICY.next(&t, 4, 0.0),
            Next::RetryAfter(Duration::from_secs(8))
        );
        assert_eq!(POLICY.next(&t, 5, 0.0), Next::Dead);
        let capped = RetryPolicy {
            max_attempts: 50,
            ..POLICY
        };
        assert_eq!(
            capped.next(&t, 40, 1.0),
            Next::RetryAfter(Duration::from_secs(20))
        );
    }

    #[test]
    fn permanent_failures_are_dead_at_once() {
        assert_eq!(
            POLICY.next(&Outcome::Permanent("HTTP 400".into()), 1, 0.3),
            Next::Dead
        );
        assert_eq!(POLICY.next(&Outcome::Delivered, 1, 0.3), Next::Delivered);
    }

    #[test]
    fn http_statuses() {
        assert_eq!(http_outcome(204, ""), Outcome::Delivered);
        for s in [408, 429, 500, 503] {
            assert!(matches!(http_outcome(s, ""), Outcome::Transient(_)), "{s}");
        }
        for s in [400, 401, 403, 404, 410, 301] {
            assert!(matches!(http_outcome(s, ""), Outcome::Permanent(_)), "{s}");
        }
    }

    #[test]
    fn the_bucket_allows_its_rate_and_says_how_long_to_wait() {
        let mut b = TokenBucket::new(2);
        let t0 = Duration::from_secs(100);
        assert!(b.take(t0).is_ok());
        assert!(b.take(t0).is_ok());
        assert_eq!(b.take(t0), Err(Duration::from_millis(500)));
        assert!(b.take(t0 + Duration::from_millis(500)).is_ok());
        // Idle time refills up to the burst, not beyond.
        let later = t0 + Duration::from_secs(60);
        assert!(b.take(later).is_ok());
        assert!(b.take(later).is_ok());
        assert!(b.take(later).is_err());
        let mut free = TokenBucket::new(0);
        for _ in 0..10_000 {
            assert!(free.take(t0).is_ok());
        }
    }
}
