//! Scenario `gateway`: what the gateway's gRPC pass-through costs on a read method.
//!
//! Target: `ReviewerService/GetProgramme` (a token check and one indexed read) through the
//! gateway, which admits the call (token, rate, policy) and forwards it untouched to the
//! reviewers service.
//! Baseline: the same call, same client, same concurrency, to the reviewers service directly.
//! Both services run in-process on SQLite exactly as `qaward serve` starts them.
//!
//! Then, same run, an open loop at 50 % and 80 % of the gateway's measured maximum
//! (`open_50pct_p50` … `open_80pct_p999`): calls at a fixed rate, latency from the instant each
//! was due, through the gateway against the same rate to the reviewers service directly.
//!
//! Scenario `gateway_in_process`, same run: the same call through a gateway that reaches the
//! reviewers service in process, as one `qaward serve` does (issue 26, item 1), against the
//! reviewers service directly.
//!
//! Scenario `gateway_http`, same run: the same read as HTTP/JSON on the gateway's HTTP port
//! (`GET /v1/registry/programmes/yunyang`: route match, transcoding both ways), against the
//! gRPC call through the gateway. HTTP/1.1 keep-alive connections, one per caller.

use std::{collections::HashMap, sync::Arc};

use qaward::policy;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use qaward_kit::{
    auth::Role,
    config::Config,
    server::{ServiceContext, bind},
    testing::TestKeys,
};
use qaward_proto::qaward::reviewers::v1::{
    CreateProgrammeRequest, DrawTenant, GetProgrammeRequest,
    reviewer_service_client::ReviewerServiceClient,
};
use tonic::transport::Channel;

use crate::{
    Figure,
    load::{self, LoadOptions},
};

fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    if let Ok(v) = format!("Bearer {token}").parse() {
        r.metadata_mut().insert("authorization", v);
    }
    r
}

pub async fn run(options: LoadOptions) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let keys = TestKeys::new();
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    // The limiter is on (its cost is part of the figure) but never refuses the one caller.
    config.gateway.rate_per_second = 1_000_000;
    config.gateway.rate_burst = 1_000_000;
    let ctx = ServiceContext {
        config: Arc::new(config),
        verifier: keys.verifier.clone(),
        clock: Arc::new(qaward_kit::clock::SystemClock),
        randomness: Arc::new(qaward_kit::clock::SeededRandomness::new(1)),
        audit: std::sync::Arc::new(qaward_kit::audit::AuditKey::ephemeral()),
        in_process: Default::default(),
        fields: std::sync::Arc::new(qaward_kit::fields::FieldKeys::ephemeral(
            qaward_kit::fields::Algorithm::Sm4Gcm,
        )),
    };
    let mut host = qaward_reviewers::start(&ctx)
        .await
        .map_err(|e| e.to_string())?;
    // The same service as a gateway in the same `qaward serve` calls it (issue 26, item 1).
    let in_process = host.in_process()?;
    let listener = bind("127.0.0.1:0".parse().unwrap()).await?;
    let reviewers_addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(host.serve(listener, std::future::pending()));

    let upstream = tonic::transport::Endpoint::from_shared(format!("http://{reviewers_addr}"))
        .map_err(|e| e.to_string())?
        .tcp_nodelay(true)
        .connect_lazy();
    let mut channels: HashMap<&'static str, qaward_kit::upstream::Upstream> = HashMap::new();
    channels.insert(
        "qaward.reviewers.v1.ReviewerService",
        qaward_kit::upstream::network(upstream),
    );
    let edge = Arc::new(qaward_gateway::Edge::new(
        &ctx.config,
        ctx.verifier.clone(),
        policy(),
    ));
    let (channels_again, edge_again) = (channels.clone(), edge.clone());
    let gateway = qaward_gateway::start(&ctx, channels, edge)?;
    let listener = bind("127.0.0.1:0".parse().unwrap()).await?;
    let gateway_addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(gateway.serve(listener, std::future::pending()));
    let gateway_here = qaward_gateway::start(
        &ctx,
        HashMap::from([("qaward.reviewers.v1.ReviewerService", in_process)]),
        Arc::new(qaward_gateway::Edge::new(
            &ctx.config,
            ctx.verifier.clone(),
            policy(),
        )),
    )?;
    let listener = bind("127.0.0.1:0".parse().unwrap()).await?;
    let gateway_here_addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(gateway_here.serve(listener, std::future::pending()));
    let listener = bind("127.0.0.1:0".parse().unwrap()).await?;
    let http_addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(qaward_gateway::serve_http(
        listener,
        channels_again,
        edge_again,
        Default::default(),
        std::future::pending(),
    ));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;

    let office = keys.token_for("office-1", Role::Office, "yunyang");
    let direct = load::connect(reviewers_addr, options.connections).await?;
    ReviewerServiceClient::new(direct[0].clone())
        .create_programme(with_token(
            CreateProgrammeRequest {
                programme: Some(DrawTenant {
                    display_name: "云阳县县长质量奖".into(),
                    ..Default::default()
                }),
                programme_id: "yunyang".into(),
                request_id: String::new(),
            },
            &office,
        ))
        .await
        .map_err(|e| format!("create the programme: {e}"))?;
    let through = load::connect(gateway_addr, options.connections).await?;
    let through_here = load::connect(gateway_here_addr, options.connections).await?;
    let token = Arc::new(office);
    let http_read = {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(options.concurrency.max(1))
            .build_http();
        let uri: http::Uri = format!("http://{http_addr}/v1/registry/programmes/yunyang")
            .parse()
            .map_err(|e| format!("{e}"))?;
        let bearer = format!("Bearer {token}");
        move |_: Channel| {
            let (client, uri, bearer) = (client.clone(), uri.clone(), bearer.clone());
            async move {
                let request = http::Request::get(uri)
                    .header("authorization", bearer)
                    .body(Full::new(Bytes::new()))
                    .expect("request");
                match client.request(request).await {
                    Ok(r) if r.status() == 200 => r.into_body().collect().await.is_ok(),
                    _ => false,
                }
            }
        }
    };
    let read = move |channel: Channel| {
        let token = token.clone();
        async move {
            ReviewerServiceClient::new(channel)
                .get_programme(with_token(
                    GetProgrammeRequest {
                        name: "programmes/yunyang".into(),
                    },
                    &token,
                ))
                .await
                .is_ok()
        }
    };
    // The framework's ceiling on this machine: a bare tonic server answering the cheapest
    // RPC there is (a health check), same client, same concurrency.
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let listener = bind("127.0.0.1:0".parse().unwrap()).await?;
    let bare_addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let bare = load::connect(bare_addr, options.connections).await?;
    let echo = |channel: Channel| async move {
        tonic_health::pb::health_client::HealthClient::new(channel)
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .is_ok()
    };
    let (mut base, mut ours, mut http, mut ceiling, mut here) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..options.rounds.max(1) {
        base.push(load::run(&options, &direct, read.clone()).await);
        ours.push(load::run(&options, &through, read.clone()).await);
        here.push(load::run(&options, &through_here, read.clone()).await);
        http.push(load::run(&options, &through, http_read.clone()).await);
        ceiling.push(load::run(&options, &bare, echo).await);
    }
    let ceiling = load::LoadResult::merge(ceiling);
    let (base, ours) = (load::LoadResult::merge(base), load::LoadResult::merge(ours));
    let http = load::LoadResult::merge(http);
    let here = load::LoadResult::merge(here);
    if ours.errors > 0 || base.errors > 0 || http.errors > 0 || here.errors > 0 {
        return Err(format!(
            "calls failed: through the gateway {}, direct {}, HTTP/JSON {}, in process {}",
            ours.errors, base.errors, http.errors, here.errors
        ));
    }
    // The gateway and the service in one process, the service called in process.
    for (metric, unit, value, baseline_value) in [
        ("throughput", "req/s", here.throughput(), base.throughput()),
        (
            "p99_latency",
            "us",
            here.percentile(99.0),
            base.percentile(99.0),
        ),
    ] {
        Figure {
            scenario: "gateway_in_process",
            metric,
            unit,
            value,
            baseline: "reviewers_direct",
            baseline_value,
        }
        .print();
    }
    Figure {
        scenario: "gateway_vs_ceiling",
        metric: "throughput",
        unit: "req/s",
        value: ours.throughput(),
        baseline: "tonic_health_ceiling",
        baseline_value: ceiling.throughput(),
    }
    .print();
    let http_figure = |metric, unit, value, baseline_value| Figure {
        scenario: "gateway_http",
        metric,
        unit,
        value,
        baseline: "grpc_through_gateway",
        baseline_value,
    };
    http_figure("throughput", "req/s", http.throughput(), ours.throughput()).print();
    http_figure(
        "p50_latency",
        "us",
        http.percentile(50.0),
        ours.percentile(50.0),
    )
    .print();
    http_figure(
        "p99_latency",
        "us",
        http.percentile(99.0),
        ours.percentile(99.0),
    )
    .print();
    let figure = |metric, unit, value, baseline_value| Figure {
        scenario: "gateway",
        metric,
        unit,
        value,
        baseline: "reviewers_direct",
        baseline_value,
    };
    figure("throughput", "req/s", ours.throughput(), base.throughput()).print();
    // Open loop at 50 % and 80 % of the gateway's measured maximum, the same rate to the
    // reviewers service directly as the baseline: the latency a steady stream of callers sees,
    // queueing included.
    let max = ours.throughput();
    for (share, names) in [
        (0.5, ["open_50pct_p50", "open_50pct_p99", "open_50pct_p999"]),
        (0.8, ["open_80pct_p50", "open_80pct_p99", "open_80pct_p999"]),
    ] {
        let rate = share * max;
        let direct_open = load::run_open(&options, &direct, rate, read.clone()).await;
        let through_open = load::run_open(&options, &through, rate, read.clone()).await;
        if direct_open.errors > 0 || through_open.errors > 0 {
            return Err(format!(
                "open loop at {rate:.0}/s: {} failed through the gateway, {} direct",
                through_open.errors, direct_open.errors
            ));
        }
        eprintln!(
            "open loop at {:.0} % of {max:.0} req/s = {rate:.0} req/s: {} calls measured; the generator's own send lag p50/p99 {:.0}/{:.0} µs",
            share * 100.0,
            through_open.calls,
            through_open.send_lag(50.0),
            through_open.send_lag(99.0)
        );
        for (metric, p) in names.into_iter().zip([50.0, 99.0, 99.9]) {
            figure(
                metric,
                "us",
                through_open.percentile(p),
                direct_open.percentile(p),
            )
            .print();
        }
    }
    figure(
        "p50_latency",
        "us",
        ours.percentile(50.0),
        base.percentile(50.0),
    )
    .print();
    figure(
        "p99_latency",
        "us",
        ours.percentile(99.0),
        base.percentile(99.0),
    )
    .print();
    Ok(())
}
