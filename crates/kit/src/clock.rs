//! Time and chance come from here, injected, so tests control both: a service never calls
//! `SystemTime::now()` or an OS random generator directly.

use std::sync::{Arc, Mutex};

use rand_chacha::{
    ChaCha20Rng,
    rand_core::{Rng, SeedableRng},
};
use time::OffsetDateTime;

/// The source of the current time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> OffsetDateTime;
}

/// A clock as services hold it.
pub type SharedClock = Arc<dyn Clock>;

/// The real wall clock (UTC).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock for training and demonstrations: it starts at a chosen instant and runs `speed`
/// times faster than the wall clock (`[clock]` in the configuration), so a whole award cycle —
/// a 7-day public notice included — can be walked through in minutes. Never for a real award.
#[derive(Debug)]
pub struct SimulatedClock {
    start: OffsetDateTime,
    /// The real instant at which this clock reads `start`.
    anchor: OffsetDateTime,
    speed: u32,
}

impl SimulatedClock {
    /// A clock reading `start` now.
    pub fn new(start: OffsetDateTime, speed: u32) -> Self {
        SimulatedClock::anchored(start, OffsetDateTime::now_utc(), speed)
    }

    /// A clock that read (or will read) `start` at the real instant `anchor`: processes given
    /// the same three values agree, whenever each of them started.
    pub fn anchored(start: OffsetDateTime, anchor: OffsetDateTime, speed: u32) -> Self {
        SimulatedClock {
            start,
            anchor,
            speed: speed.max(1),
        }
    }
}

impl Clock for SimulatedClock {
    fn now(&self) -> OffsetDateTime {
        let real = OffsetDateTime::now_utc() - self.anchor;
        self.start + real * self.speed
    }
}

/// A clock that tests set and advance by hand.
#[derive(Debug)]
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    pub fn new(at: OffsetDateTime) -> Self {
        ManualClock(Mutex::new(at))
    }
    pub fn set(&self, at: OffsetDateTime) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }
    pub fn advance(&self, by: time::Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The clock the configuration asks for: the wall clock, unless `[clock]` sets a start or a
/// speed.
pub fn from_config(c: &crate::config::ClockSettings) -> SharedClock {
    let parse = |s: &Option<String>| {
        s.as_deref().and_then(|s| {
            OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
        })
    };
    let start = parse(&c.start);
    if start.is_none() && c.speed <= 1 {
        return Arc::new(SystemClock);
    }
    let now = OffsetDateTime::now_utc();
    Arc::new(SimulatedClock::anchored(
        start.unwrap_or(now),
        parse(&c.anchor).unwrap_or(now),
        c.speed,
    ))
}

#[cfg(test)]
mod simulated_tests {
    use super::*;

    #[test]
    fn a_simulated_clock_starts_where_it_is_told_and_runs_faster() {
        let start = time::macros::datetime!(2027-07-01 09:00 +8);
        let clock = SimulatedClock::new(start, 86_400);
        let first = clock.now();
        assert!(first >= start && first - start < time::Duration::hours(1));
        std::thread::sleep(std::time::Duration::from_millis(50));
        // 50 ms at a day per second: over an hour of simulated time.
        assert!(clock.now() - first >= time::Duration::hours(1));
        let c = crate::config::ClockSettings::default();
        let real = from_config(&c).now();
        assert!((OffsetDateTime::now_utc() - real).abs() < time::Duration::seconds(5));
    }

    #[test]
    fn processes_sharing_an_anchor_agree_whenever_they_started() {
        // Two processes of one deployment, the second (re)started 3 s of real time later:
        // with the same start, speed and anchor they read the same time.
        let anchor = (OffsetDateTime::now_utc() - time::Duration::seconds(3))
            .format(&time::format_description::well_known::Rfc3339);
        let c = crate::config::ClockSettings {
            start: Some("2027-03-01T09:00:00+08:00".into()),
            speed: 86_400,
            anchor: Some(anchor.unwrap()),
        };
        let (first, second) = (from_config(&c), from_config(&c));
        let start = time::macros::datetime!(2027-03-01 09:00 +8);
        let (a, b) = (first.now(), second.now());
        // 3 real seconds after the anchor at a day per second: 3 days on.
        assert!(a - start >= time::Duration::days(3), "{a}");
        assert!(a - start < time::Duration::days(4), "{a}");
        assert!((b - a).abs() < time::Duration::hours(2), "{a} {b}");
    }
}

/// China Standard Time, in which the award's days are counted (deadlines, windows, reminders).
pub const CHINA: time::UtcOffset = time::macros::offset!(+8);

/// The date in China at `t`.
pub fn china_date(t: time::OffsetDateTime) -> time::Date {
    t.to_offset(CHINA).date()
}

/// Microseconds since the Unix epoch: how every timestamp is stored, on both backends.
pub fn unix_micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000) as i64
}

/// The inverse of [`unix_micros`].
pub fn from_unix_micros(micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(micros as i128 * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A stored timestamp (microseconds since the epoch) as a protobuf `Timestamp`.
pub fn to_timestamp(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
    }
}

/// The source of randomness for anything that is not itself a recorded, replayable draw
/// (identifiers, entropy for a draw whose commitment is published first).
pub trait Randomness: Send + Sync + 'static {
    fn fill(&self, dest: &mut [u8]);

    fn next_u64(&self) -> u64 {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        u64::from_le_bytes(b)
    }
}

pub type SharedRandomness = Arc<dyn Randomness>;

/// The operating system's generator.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandomness;

impl Randomness for OsRandomness {
    fn fill(&self, dest: &mut [u8]) {
        // The OS generator failing is unrecoverable; there is no safe fallback for entropy.
        getrandom::fill(dest).expect("the operating system's random generator failed");
    }
}

/// A seeded ChaCha20 stream: the same seed gives the same bytes on every platform.
#[derive(Debug)]
pub struct SeededRandomness(Mutex<ChaCha20Rng>);

impl SeededRandomness {
    pub fn new(seed: u64) -> Self {
        SeededRandomness(Mutex::new(ChaCha20Rng::seed_from_u64(seed)))
    }
}

impl Randomness for SeededRandomness {
    fn fill(&self, dest: &mut [u8]) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .fill_bytes(dest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let start = time::macros::datetime!(2026-06-30 16:00 UTC);
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(time::Duration::days(1));
        assert_eq!(clock.now(), time::macros::datetime!(2026-07-01 16:00 UTC));
        assert_eq!(from_unix_micros(unix_micros(clock.now())), clock.now());
    }

    #[test]
    fn the_same_seed_gives_the_same_stream() {
        let a = SeededRandomness::new(42);
        let b = SeededRandomness::new(42);
        let c = SeededRandomness::new(43);
        let (x, y, z) = (a.next_u64(), b.next_u64(), c.next_u64());
        assert_eq!(x, y);
        assert_ne!(x, z);
    }
}
