//! Scenario `health`: what qaward's server stack (trace-context layer, load shedding,
//! timeout, health reporter, reflection alongside) costs on the cheapest RPC there is.
//!
//! Target: the reviewers service started in-process exactly as `qaward serve` starts it
//! (SQLite in a temporary directory, the real kit bootstrap, telemetry at its defaults).
//! Baseline: a bare tonic server with nothing but tonic-health, answering the same
//! `grpc.health.v1.Health/Check` — the framework's ceiling on this machine.

use std::time::Duration;

use qaward_kit::{
    auth::Verifier,
    config::Config,
    server::{ServiceContext, bind},
    telemetry,
};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Channel;
use tonic_health::{
    ServingStatus,
    pb::{HealthCheckRequest, health_client::HealthClient},
};

use crate::{
    Figure,
    load::{self, LoadOptions},
};

const SERVICE: &str = "qaward.reviewers.v1.ReviewerService";

async fn check(channel: Channel) -> bool {
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: SERVICE.to_string(),
        })
        .await
        .is_ok_and(|r| r.get_ref().status == ServingStatus::Serving as i32)
}

pub async fn run(options: LoadOptions) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let _telemetry =
        telemetry::init(&config.telemetry, "qaward-bench").map_err(|e| e.to_string())?;

    // qaward: the reviewers service through the kit bootstrap.
    let verifier = Verifier::from_config(&config)
        .await
        .map_err(|e| e.to_string())?;
    let ctx = ServiceContext::new(config, verifier).expect("field keys");
    let host = qaward_reviewers::start(&ctx)
        .await
        .map_err(|e| e.to_string())?;
    let listener = bind("127.0.0.1:0".parse().unwrap()).await?;
    let qaward_addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(host.serve(listener, std::future::pending()));

    // Baseline: bare tonic with the health service only.
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(SERVICE, ServingStatus::Serving)
        .await;
    let listener = bind("127.0.0.1:0".parse().unwrap()).await?;
    let bare_addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;

    let bare_channels = load::connect(bare_addr, options.connections).await?;
    let qaward_channels = load::connect(qaward_addr, options.connections).await?;
    let (mut bare, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..options.rounds.max(1) {
        bare.push(load::run(&options, &bare_channels, check).await);
        ours.push(load::run(&options, &qaward_channels, check).await);
    }
    let (bare, ours) = (load::LoadResult::merge(bare), load::LoadResult::merge(ours));
    if ours.errors > 0 || bare.errors > 0 {
        return Err(format!(
            "calls failed: qaward {}, bare tonic {}",
            ours.errors, bare.errors
        ));
    }

    let figure = |metric, unit, value, baseline_value| Figure {
        scenario: "health",
        metric,
        unit,
        value,
        baseline: "bare_tonic_health",
        baseline_value,
    };
    figure("throughput", "req/s", ours.throughput(), bare.throughput()).print();
    figure(
        "p50_latency",
        "us",
        ours.percentile(50.0),
        bare.percentile(50.0),
    )
    .print();
    figure(
        "p99_latency",
        "us",
        ours.percentile(99.0),
        bare.percentile(99.0),
    )
    .print();
    Ok(())
}
