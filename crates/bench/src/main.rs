//! `qaward-bench`: the one home of qaward's benchmarks. Each scenario is a subcommand and
//! prints JSON lines — `scenario`, `metric`, `value`, `unit`, `baseline`, `baseline_value`,
//! `ratio` — measuring qaward and its named baseline in the same run, so runs on different
//! machines compare by ratio. Benchmarks measure; tests never assert on wall-clock time.

mod deliveries;
mod draw;
mod gateway;
mod growth;
mod health;
mod load;
mod privacy;
mod process;
mod proofs;
mod results;
mod rush;
mod stack;
mod startup;
mod submit;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "qaward-bench",
    about = "qaward benchmarks; JSON lines on stdout"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Health-check throughput and p50/p99 latency of one qaward service (all its tower
    /// layers) against a bare tonic server answering the same RPC.
    Health(load::LoadOptions),
    /// A read (`ReviewerService/GetProgramme`) through the gateway's gRPC pass-through
    /// against the same read to the reviewers service directly.
    Gateway(load::LoadOptions),
    /// A reviewer draw (5 + 3 backups, full recusal) against `ORDER BY random() LIMIT 8` on
    /// PostgreSQL with 100,000 reviewers and 20,000 relations; and the registry import time.
    Draw(draw::DrawOptions),
    /// The cost of sealing personal data: the registry import (first and again) and a
    /// cold draw with SM4-GCM and AES-256-GCM against the same with sealing off, on PostgreSQL.
    Privacy(privacy::PrivacyOptions),
    /// Results of a cycle of 10,000 applications (consensus and 5 defence sheets each) against
    /// reading the same rows, on PostgreSQL.
    Results(results::ResultsOptions),
    /// Instructions per call of an authenticated read through a service's whole stack against
    /// bare tonic serving the same read from the same store, under valgrind's callgrind.
    Stack(stack::StackOptions),
    /// One variant of `stack` (not a scenario).
    #[command(hide = true)]
    StackOne(stack::OneOptions),
    /// Webhook deliveries per second from the notifications queue on PostgreSQL against
    /// plain HTTP POSTs of the same bodies to the same loopback sink.
    Deliveries(deliveries::DeliveriesOptions),
    /// `qaward serve` (every service, SQLite, fresh data directory): time from spawn to
    /// SERVING and idle memory, against a bare tonic health-server process measured the same way.
    Startup(startup::StartupOptions),
    /// An application submission (the application, its audit record, an outbox event and the
    /// request log in one transaction) on PostgreSQL over gRPC, against pgbench-style
    /// single-row inserts at the same concurrency.
    Submit(submit::SubmitOptions),
    /// How cost grows (issue 26, item 6): the cold draw (10k → 1M reviewers), a cycle's
    /// results (1k → 100k applications), the audit verifier (10k → 1M records), each size in
    /// its own process, with peak memory and the fitted exponent. By hand; not in `all`.
    Growth(growth::GrowthOptions),
    /// The audit log's Merkle proofs (RFC 9162) for a synthetic log of a million records:
    /// their sizes and the time to make and check them. By hand; not in `all`.
    Proofs(proofs::ProofsOptions),
    /// A deadline day for a province (issue 26, item 5): 40 counties × 100 enterprises
    /// registering, drafting, uploading 3 evidence files and submitting through the gateway's
    /// HTTP/JSON port on PostgreSQL, the services in their own processes. By hand; not in `all`.
    Rush(rush::RushOptions),
    /// One size of one kind of `growth` (not a scenario).
    #[command(hide = true)]
    GrowthOne(growth::OneOptions),
    /// Every scenario above but growth in turn, each in its own process with its default options (the
    /// PostgreSQL ones on --database-url / QAWARD_TEST_DATABASE_URL): the whole suite, JSON
    /// lines on stdout.
    All {
        #[arg(long, env = "QAWARD_TEST_DATABASE_URL")]
        database_url: String,
    },
    /// The baseline process of `startup` (not a scenario).
    #[command(hide = true)]
    BareServer,
}

/// One measured figure beside its baseline.
pub struct Figure {
    pub scenario: &'static str,
    pub metric: &'static str,
    pub unit: &'static str,
    pub value: f64,
    pub baseline: &'static str,
    pub baseline_value: f64,
}

impl Figure {
    pub fn print(&self) {
        let ratio = if self.baseline_value == 0.0 {
            f64::NAN
        } else {
            self.value / self.baseline_value
        };
        let line = serde_json::json!({
            "scenario": self.scenario,
            "metric": self.metric,
            "value": round(self.value),
            "unit": self.unit,
            "baseline": self.baseline,
            "baseline_value": round(self.baseline_value),
            "ratio": round(ratio),
        });
        println!("{line}");
    }
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Runs each scenario as a child process of this binary; stops at the first that fails.
async fn all(database_url: &str) -> Result<(), String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let database = ["--database-url", database_url];
    let scenarios: [(&str, &[&str]); 9] = [
        ("health", &[]),
        ("stack", &[]),
        ("gateway", &[]),
        ("startup", &[]),
        ("draw", &database),
        ("privacy", &database),
        ("results", &database),
        ("deliveries", &database),
        ("submit", &database),
    ];
    for (name, args) in scenarios {
        eprintln!("qaward-bench all: {name}");
        let status = tokio::process::Command::new(&me)
            .arg(name)
            .args(args)
            .status()
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        if !status.success() {
            return Err(format!("{name} failed: {status}"));
        }
    }
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    // `stack-one` counts instructions under callgrind: one thread, so that how the scheduler
    // happens to spread the calls does not change the count.
    let mut builder = match cli.scenario {
        Scenario::StackOne(_) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = builder.enable_all().build().expect("tokio runtime");
    let result = runtime.block_on(async {
        match cli.scenario {
            Scenario::Health(options) => health::run(options).await,
            Scenario::Gateway(options) => gateway::run(options).await,
            Scenario::Draw(options) => draw::run(options).await,
            Scenario::Results(options) => results::run(options).await,
            Scenario::Privacy(options) => privacy::run(options).await,
            Scenario::Deliveries(options) => deliveries::run(options).await,
            Scenario::Startup(options) => startup::run(options).await,
            Scenario::Submit(options) => submit::run(options).await,
            Scenario::BareServer => startup::bare_server().await,
            Scenario::Growth(options) => growth::run(options).await,
            Scenario::GrowthOne(options) => growth::one(options).await,
            Scenario::Proofs(options) => proofs::run(options).await,
            Scenario::Stack(options) => stack::run(options).await,
            Scenario::Rush(options) => rush::run(options).await,
            Scenario::StackOne(options) => stack::one(options).await,
            Scenario::All { database_url } => all(&database_url).await,
        }
    });
    if let Err(e) = result {
        eprintln!("qaward-bench: error: {e}");
        std::process::exit(1);
    }
}
