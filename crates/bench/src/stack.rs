//! Scenario `stack` (issue 26, item 2): what a service's whole per-request stack costs on a
//! real call, in instructions rather than time — instruction counts under
//! `valgrind --tool=callgrind` hold still on a busy shared machine where throughput does not.
//!
//! Target: an authenticated read (`ReviewerService/GetProgramme` with an office's bearer token)
//! through the reviewers service as `qaward serve` hosts it: the kit's host (token
//! verification, policy table, record rules, trace layer, load shedding, deadline, health and
//! reflection beside it) over the reviewers' handler.
//! Baseline: the same handler over the same store (the same `ReviewersApi` on the same SQLite
//! file, the caller put on the request as the host would) in a bare tonic server — nothing
//! between the connection and the handler.
//!
//! The same run counts the read through a gateway that shares the process and calls the service
//! in process (`gateway_in_process`, issue 26 item 1), against the service called directly.
//!
//! Each variant runs in its own process under callgrind twice, with `calls` and with
//! `3 × calls` calls after the same warm-up; the difference of the two totals over the
//! difference in calls is the instructions per call, start-up and warm-up cancelled. The
//! process runs one thread of tokio (how a multi-threaded scheduler happens to spread the calls
//! moved the count by ±5 %), and the figure is the median of three such pairs. Client and
//! server share the process, so a call's count includes its client half, the same for both.
//! Each call carries a bearer token and an `x-request-id`, as every call behind the gateway does.
//! No background work runs (the host's relays and timers are not started), so nothing but
//! calls grows with the number of calls.

use std::{path::Path, process::Command, sync::Arc};

use qaward_kit::{
    auth::{Caller, Role},
    config::{Config, ServiceKind},
    db::Database,
    server::{ServiceContext, ServiceHost, bind},
    telemetry,
    testing::TestKeys,
};
use qaward_proto::qaward::reviewers::v1::{
    self as pb,
    reviewer_service_client::ReviewerServiceClient,
    reviewer_service_server::{ReviewerService, ReviewerServiceServer},
};
use qaward_reviewers::ReviewersApi;
use tonic::{Request, Response, Status};

use crate::Figure;

#[derive(clap::Args, Clone)]
pub struct StackOptions {
    /// Calls in the shorter run; the longer makes three times as many.
    #[arg(long, default_value_t = 300)]
    pub calls: usize,
    /// The valgrind to run.
    #[arg(long, default_value = "valgrind")]
    pub valgrind: String,
}

#[derive(clap::Args, Clone)]
pub struct OneOptions {
    /// `qaward` (the host's whole stack), `bare` (tonic alone) or `gateway` (through the
    /// gateway, which calls the service in process).
    #[arg(long)]
    pub variant: String,
    #[arg(long)]
    pub calls: usize,
}

pub async fn run(options: StackOptions) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut per_call = Vec::new();
    for variant in ["bare", "qaward", "gateway"] {
        // The median of three pairs of runs.
        let mut runs = Vec::new();
        for _ in 0..3 {
            let short = instructions(&options, &exe, dir.path(), variant, options.calls)?;
            let long = instructions(&options, &exe, dir.path(), variant, 3 * options.calls)?;
            let per = long.saturating_sub(short) as f64 / (2 * options.calls) as f64;
            eprintln!(
                "{variant}: {short} instructions with {} calls, {long} with {}: {per:.0} per call",
                options.calls,
                3 * options.calls
            );
            runs.push(per);
        }
        runs.sort_by(f64::total_cmp);
        per_call.push(runs[1]);
    }
    let (bare, ours, gateway) = (per_call[0], per_call[1], per_call[2]);
    eprintln!(
        "the stack's share of an authenticated read: {:.1} % ({:.0} of {ours:.0} instructions per call)",
        100.0 * (ours - bare) / ours,
        ours - bare
    );
    Figure {
        scenario: "stack",
        metric: "instructions_per_call",
        unit: "Ir",
        value: ours,
        baseline: "bare_tonic_same_read",
        baseline_value: bare,
    }
    .print();
    // Issue 26, item 1: the same read through a gateway in the same process, which calls the
    // service in process, against the service called directly.
    Figure {
        scenario: "gateway_in_process",
        metric: "instructions_per_call",
        unit: "Ir",
        value: gateway,
        baseline: "reviewers_direct",
        baseline_value: ours,
    }
    .print();
    Ok(())
}

/// The total instructions of one `stack-one` process under callgrind.
fn instructions(
    options: &StackOptions,
    exe: &Path,
    dir: &Path,
    variant: &str,
    calls: usize,
) -> Result<u64, String> {
    let out = dir.join(format!("callgrind.{variant}.{calls}"));
    let status = Command::new(&options.valgrind)
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(exe)
        .args(["stack-one", "--variant", variant, "--calls"])
        .arg(calls.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| {
            format!(
                "{}: {e} (the stack scenario needs valgrind)",
                options.valgrind
            )
        })?;
    if !status.success() {
        return Err(format!(
            "{variant} with {calls} calls under callgrind: {status}"
        ));
    }
    let text = std::fs::read_to_string(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("{}: no summary line", out.display()))
}

/// The reviewers' handler with nothing in front: the caller the host would have verified is
/// put on the request as it is.
struct Bare {
    api: Arc<ReviewersApi>,
    caller: Caller,
}

#[tonic::async_trait]
impl ReviewerService for Bare {
    async fn get_programme(
        &self,
        mut r: Request<pb::GetProgrammeRequest>,
    ) -> Result<Response<pb::DrawTenant>, Status> {
        r.extensions_mut().insert(self.caller.clone());
        self.api.get_programme(r).await
    }
}

/// One variant, `calls` calls after a warm-up, in this process (under callgrind).
pub async fn one(options: OneOptions) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    // Telemetry as a service starts it, at its defaults.
    let _telemetry =
        telemetry::init(&config.telemetry, "qaward-bench").map_err(|e| e.to_string())?;
    let keys = TestKeys::new();
    let ctx = ServiceContext {
        config: Arc::new(config),
        verifier: keys.verifier.clone(),
        clock: Arc::new(qaward_kit::clock::SystemClock),
        randomness: Arc::new(qaward_kit::clock::SeededRandomness::new(1)),
        audit: Arc::new(qaward_kit::audit::AuditKey::ephemeral()),
        in_process: Default::default(),
        fields: Arc::new(qaward_kit::fields::FieldKeys::ephemeral(
            qaward_kit::fields::Algorithm::Sm4Gcm,
        )),
    };
    let db = Database::open(&ctx.config, "reviewers", &qaward_reviewers::MIGRATIONS)
        .await
        .map_err(|e| e.to_string())?;
    let api = Arc::new(ReviewersApi::new(db, ctx.clone()));
    let token = keys.token_for("office-1", Role::Office, "yunyang");
    let caller = keys
        .verifier
        .verify_header(Some(&format!("Bearer {token}")))
        .map_err(|e| e.to_string())?;
    let mut create = Request::new(pb::CreateProgrammeRequest {
        programme: Some(pb::DrawTenant {
            display_name: "云阳县县长质量奖".into(),
            ..Default::default()
        }),
        programme_id: "yunyang".into(),
        request_id: String::new(),
    });
    create.extensions_mut().insert(caller.clone());
    api.create_programme(create)
        .await
        .map_err(|e| format!("create the programme: {e}"))?;

    let listener = bind("127.0.0.1:0".parse().unwrap()).await?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    match options.variant.as_str() {
        "qaward" => {
            let host = ServiceHost::for_kind(ServiceKind::Reviewers, &ctx)?
                .add_service(ReviewerServiceServer::from_arc(api));
            tokio::spawn(host.serve(listener, std::future::pending()));
        }
        "gateway" => {
            // The gateway and the service in one process, the service called in process.
            let mut host = ServiceHost::for_kind(ServiceKind::Reviewers, &ctx)?
                .add_service(ReviewerServiceServer::from_arc(api));
            let upstreams = std::collections::HashMap::from([(
                "qaward.reviewers.v1.ReviewerService",
                host.in_process()?,
            )]);
            let mut config = (*ctx.config).clone();
            config.gateway.rate_per_second = 0;
            let edge = Arc::new(qaward_gateway::Edge::new(
                &config,
                ctx.verifier.clone(),
                qaward::policy(),
            ));
            let gateway = qaward_gateway::start(&ctx, upstreams, edge)?;
            tokio::spawn(gateway.serve(listener, std::future::pending()));
        }
        "bare" => {
            let incoming =
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            tokio::spawn(
                tonic::transport::Server::builder()
                    .add_service(ReviewerServiceServer::new(Bare { api, caller }))
                    .serve_with_incoming(incoming),
            );
        }
        other => return Err(format!("--variant {other}: qaward, bare or gateway")),
    }
    calls(addr, &token, options.calls).await
}

/// A warm-up of 50 calls, then `n`, one at a time, each checked.
async fn calls(addr: std::net::SocketAddr, token: &str, n: usize) -> Result<(), String> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| e.to_string())?
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    let mut client = ReviewerServiceClient::new(channel);
    let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {token}")
        .parse()
        .map_err(|e| format!("{e}"))?;
    // Behind the gateway every call carries the request id the gateway gave it.
    let request_id: tonic::metadata::MetadataValue<_> = "0192f5a8-7c3e-7b1d-9a4e-3f2b1c0d9e8f"
        .parse()
        .map_err(|e| format!("{e}"))?;
    for _ in 0..50 + n {
        let mut r = Request::new(pb::GetProgrammeRequest {
            name: "programmes/yunyang".into(),
        });
        r.metadata_mut().insert("authorization", bearer.clone());
        r.metadata_mut().insert("x-request-id", request_id.clone());
        let answer = client
            .get_programme(r)
            .await
            .map_err(|e| format!("GetProgramme: {e}"))?;
        if answer.get_ref().name != "programmes/yunyang" {
            return Err(format!("GetProgramme answered {:?}", answer.get_ref()));
        }
    }
    Ok(())
}
