//! Scenario `startup`: how long `qaward serve` (every service, SQLite, a fresh data
//! directory: key made, five databases migrated) takes from spawn to answering SERVING on the
//! gateway, and how much memory it holds once idle.
//! Baseline: this binary's `bare-server`, a process with nothing but a tonic health server,
//! spawned and measured the same way — the floor of a Rust gRPC process on this machine.

use std::{
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use tokio::io::{AsyncBufReadExt, BufReader};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::Figure;

#[derive(Debug, Clone, clap::Args)]
pub struct StartupOptions {
    /// The qaward binary (default: beside this one).
    #[arg(long)]
    pub qaward: Option<PathBuf>,
    /// Starts measured per process.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Seconds to let each process settle before reading its memory.
    #[arg(long, default_value_t = 2.0)]
    pub idle: f64,
}

/// `bare-server`: a tonic health server on a free port; prints `listening ADDR`.
pub async fn bare_server() -> Result<(), String> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "listening {}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    tonic::transport::Server::builder()
        .add_service(health)
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
        .await
        .map_err(|e| e.to_string())
}

/// Resident memory of a process, from /proc (Linux), in KiB.
fn rss_kib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Spawns `cmd`, waits for the address on its stdout (`listening gateway grpc ADDR` or
/// `listening ADDR`), then polls health until SERVING: (time to SERVING, idle RSS in KiB).
async fn measure(mut cmd: tokio::process::Command, idle: Duration) -> Result<(f64, f64), String> {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .map_err(|_| "no address within 60 s".to_string())?
            .map_err(|e| e.to_string())?
            .ok_or("the process ended before it listened")?;
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["listening", "gateway", "grpc", addr] | ["listening", addr] => {
                break addr.to_string();
            }
            _ => {}
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let url = format!("http://{addr}");
    loop {
        if let Ok(channel) = tonic::transport::Endpoint::from_shared(url.clone())
            .map_err(|e| e.to_string())?
            .connect()
            .await
            && let Ok(r) = HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
            && r.get_ref().status == 1
        {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err("not SERVING within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let to_serving = started.elapsed().as_secs_f64() * 1000.0;
    tokio::time::sleep(idle).await;
    let rss = child
        .id()
        .and_then(rss_kib)
        .ok_or("cannot read the process's memory")?;
    let _ = child.kill().await;
    Ok((to_serving, rss))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub async fn run(options: StartupOptions) -> Result<(), String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let qaward = crate::process::qaward_binary(options.qaward.clone())?;
    let idle = Duration::from_secs_f64(options.idle);
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    for _ in 0..options.runs.max(1) {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut cmd = tokio::process::Command::new(&qaward);
        cmd.arg("serve").arg("--data-dir").arg(dir.path());
        for k in [
            "GATEWAY_GRPC",
            "GATEWAY_HTTP",
            "APPLICATIONS",
            "REVIEWERS",
            "SCORING",
            "NOTIFICATIONS",
        ] {
            cmd.env(format!("QAWARD_LISTEN__{k}"), "127.0.0.1:0");
        }
        cmd.env("QAWARD_TELEMETRY__LOG_FILTER", "warn");
        ours.push(measure(cmd, idle).await?);
        let mut bare = tokio::process::Command::new(&me);
        bare.arg("bare-server");
        base.push(measure(bare, idle).await?);
    }
    let figure = |metric, unit, value, baseline_value| Figure {
        scenario: "startup",
        metric,
        unit,
        value,
        baseline: "bare_tonic_process",
        baseline_value,
    };
    figure(
        "time_to_serving",
        "ms",
        median(ours.iter().map(|x| x.0).collect()),
        median(base.iter().map(|x| x.0).collect()),
    )
    .print();
    figure(
        "idle_rss",
        "KiB",
        median(ours.iter().map(|x| x.1).collect()),
        median(base.iter().map(|x| x.1).collect()),
    )
    .print();
    Ok(())
}
