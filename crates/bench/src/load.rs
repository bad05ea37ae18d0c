//! Load generators, each with a warm-up and then a measured window; latencies are kept whole
//! and sorted for exact percentiles.
//!
//! - Closed loop ([`run`]): `concurrency` callers spread over `connections` HTTP/2
//!   connections, each calling as fast as answers come — the maximum throughput.
//! - Open loop ([`run_open`]): calls sent at a fixed rate whatever the answers do, each
//!   latency measured from the time the call was due, not from when it went out — so a
//!   server that falls behind is charged the queueing it causes (no coordinated omission).

use std::{
    future::Future,
    net::SocketAddr,
    time::{Duration, Instant},
};

use tonic::transport::Channel;

#[derive(Debug, Clone, clap::Args)]
pub struct LoadOptions {
    /// Seconds measured per target.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Seconds of warm-up per target, not measured.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// HTTP/2 connections the callers share.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Rounds per target, alternating target and baseline so drift hits both alike.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
}

pub struct LoadResult {
    /// Open loop: how late the generator itself sent each measured call (µs, sorted); empty
    /// for the closed loop.
    pub send_lag_us: Vec<u64>,
    pub calls: usize,
    pub errors: usize,
    pub elapsed: Duration,
    /// Sorted latencies in microseconds.
    pub latencies_us: Vec<u64>,
}

impl LoadResult {
    /// All rounds of one target as one result.
    pub fn merge(rounds: Vec<LoadResult>) -> LoadResult {
        let mut all = LoadResult {
            send_lag_us: Vec::new(),
            calls: 0,
            errors: 0,
            elapsed: Duration::ZERO,
            latencies_us: Vec::new(),
        };
        for r in rounds {
            all.calls += r.calls;
            all.errors += r.errors;
            all.elapsed += r.elapsed;
            all.latencies_us.extend(r.latencies_us);
            all.send_lag_us.extend(r.send_lag_us);
        }
        all.latencies_us.sort_unstable();
        all.send_lag_us.sort_unstable();
        all
    }

    pub fn throughput(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }

    pub fn percentile(&self, p: f64) -> f64 {
        percentile_of(&self.latencies_us, p)
    }

    /// Open loop: the generator's own lateness at percentile `p` (µs).
    pub fn send_lag(&self, p: f64) -> f64 {
        percentile_of(&self.send_lag_us, p)
    }
}

fn percentile_of(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64
}

pub async fn connect(addr: SocketAddr, connections: usize) -> Result<Vec<Channel>, String> {
    let mut channels = Vec::new();
    for _ in 0..connections.max(1) {
        let c = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| e.to_string())?
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        channels.push(c);
    }
    Ok(channels)
}

/// Runs `call` in a closed loop on every caller and measures the window after warm-up.
pub async fn run<F, Fut>(options: &LoadOptions, channels: &[Channel], call: F) -> LoadResult
where
    F: Fn(Channel) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    let warmup = Duration::from_secs_f64(options.warmup);
    let window = Duration::from_secs_f64(options.seconds);
    let start = Instant::now();
    let measure_from = start + warmup;
    let stop_at = measure_from + window;
    let mut tasks = Vec::new();
    for i in 0..options.concurrency.max(1) {
        let channel = channels[i % channels.len()].clone();
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            loop {
                let t0 = Instant::now();
                if t0 >= stop_at {
                    break;
                }
                let ok = call(channel.clone()).await;
                if t0 >= measure_from {
                    if ok {
                        latencies.push(t0.elapsed().as_micros() as u64);
                    } else {
                        errors += 1;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies_us = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.expect("load task");
        latencies_us.extend(l);
        errors += e;
    }
    latencies_us.sort_unstable();
    LoadResult {
        send_lag_us: Vec::new(),
        calls: latencies_us.len(),
        errors,
        elapsed: window,
        latencies_us,
    }
}

/// A call not answered within this long is counted as failed.
const OPEN_LOOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends `call` at `rate` calls a second, round-robin over `channels`, and measures the window
/// after warm-up: each latency from the instant the call was due. A call whose send the
/// scheduler could only make late (the timer's granularity, a busy core) is charged that
/// lateness too, as a client would see it.
pub async fn run_open<F, Fut>(
    options: &LoadOptions,
    channels: &[Channel],
    rate: f64,
    call: F,
) -> LoadResult
where
    F: Fn(Channel) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    let warmup = Duration::from_secs_f64(options.warmup);
    let window = Duration::from_secs_f64(options.seconds);
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let start = tokio::time::Instant::now();
    let measure_from = start + warmup;
    let stop_at = measure_from + window;
    let mut tasks = Vec::new();
    for i in 0u32.. {
        let due = start + interval * i;
        if due >= stop_at {
            break;
        }
        tokio::time::sleep_until(due).await;
        let channel = channels[i as usize % channels.len()].clone();
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let lag = due.elapsed().as_micros() as u64;
            let ok = tokio::time::timeout(OPEN_LOOP_TIMEOUT, call(channel))
                .await
                .unwrap_or(false);
            (
                due >= measure_from,
                ok,
                due.elapsed().as_micros() as u64,
                lag,
            )
        }));
    }
    let (mut latencies_us, mut send_lag_us) = (Vec::new(), Vec::new());
    let mut errors = 0;
    for t in tasks {
        let (measured, ok, latency, lag) = t.await.expect("open-loop call");
        match (measured, ok) {
            (true, true) => {
                latencies_us.push(latency);
                send_lag_us.push(lag);
            }
            (true, false) => errors += 1,
            (false, _) => {}
        }
    }
    latencies_us.sort_unstable();
    send_lag_us.sort_unstable();
    LoadResult {
        send_lag_us,
        calls: latencies_us.len(),
        errors,
        elapsed: window,
        latencies_us,
    }
}
