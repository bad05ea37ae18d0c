//! `qaward`: the award platform in one binary.
//!
//! - `qaward serve` runs every service in one process (SQLite under `./qaward-data`);
//!   `--target NAME` (repeatable) runs a subset, for scale-out; `--database-url postgres://…`
//!   keeps the data in PostgreSQL.
//! - `qaward token --role ROLE --subject NAME` prints a bearer token signed with the local key.
//! - `qaward config` prints the effective configuration, secrets masked.
//! - `qaward audit verify --target NAME [--checkpoint FILE]` checks a service's audit log;
//!   `qaward audit checkpoint` signs one for an auditor to keep; `qaward audit restored` records
//!   a restore from a backup.
//! - `qaward keys init|rotate|activate|status` makes and rotates keys.
//! - `qaward demo` walks a sample award cycle through a running gateway and tells what happens.

mod audit;
mod check;
mod keys;
mod serve;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use qaward_kit::{
    auth::{LocalKey, Role},
    config::{Config, Secret, ServiceKind, local_addr, local_url},
};

#[derive(Parser)]
#[command(
    name = "qaward",
    version,
    about = "The county Mayor's Quality Management Award platform"
)]
struct Cli {
    /// A TOML configuration file (defaults apply without one; QAWARD_* variables override it).
    #[arg(long, global = true, env = "QAWARD_CONFIG")]
    config: Option<PathBuf>,
    /// Where SQLite files and the local signing key live.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// postgres://… to keep every service's data in PostgreSQL (one schema per service).
    #[arg(long, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the services.
    Serve {
        /// A service to run (gateway, applications, reviewers, scoring, notifications);
        /// repeat for several, or give a comma-separated list in QAWARD_TARGETS; all when
        /// omitted.
        #[arg(long = "target", env = "QAWARD_TARGETS", value_delimiter = ',', value_parser = parse_target)]
        targets: Vec<Option<ServiceKind>>,
    },
    /// Migrate the databases of the targets (all services when omitted) to this release, once
    /// per release, before replicas start with server.migrate_on_start = false.
    Migrate {
        #[arg(long = "target", env = "QAWARD_TARGETS", value_delimiter = ',', value_parser = parse_target)]
        targets: Vec<Option<ServiceKind>>,
    },
    /// Exit 0 when every gRPC listener of the targets (all when omitted) is SERVING: the
    /// container health check.
    Health {
        #[arg(long = "target", env = "QAWARD_TARGETS", value_delimiter = ',', value_parser = parse_target)]
        targets: Vec<Option<ServiceKind>>,
    },
    /// Print a bearer token signed with the local key of the data directory (role service:
    /// with the services' key, which a running qaward serve made there).
    Token {
        /// enterprise, recommending_unit, office, reviewer, advisor, committee_member,
        /// department, government, public, supervisor or service.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[arg(long)]
        subject: String,
        /// The caller's organisation (for example its unified social credit code).
        #[arg(long)]
        org: Option<String>,
        /// The award programme the caller acts in.
        #[arg(long)]
        programme: Option<String>,
    },
    /// Print the effective configuration, secrets masked.
    Config,
    /// Audit trail commands.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Walk a sample award cycle — notice, applications, draws, scores, results, consultation,
    /// public notice, committee, approval — through a running `qaward serve`'s gateway, and
    /// print what happens and why. Run the server on a simulated clock, so the 7-day public
    /// notice passes in seconds: QAWARD_CLOCK__START=2026-03-02T09:00:00+08:00
    /// QAWARD_CLOCK__SPEED=86400 qaward serve --data-dir ./demo-data
    Demo {
        /// The gateway's gRPC address (default: listen.gateway_grpc of the configuration).
        #[arg(long)]
        gateway: Option<String>,
        /// Call the gateway's HTTP/JSON port instead, at this address (`127.0.0.1:8080`), or at
        /// listen.gateway_http when given without a value.
        #[arg(long, num_args = 0..=1, default_missing_value = "")]
        http: Option<String>,
        /// The programme the demo creates.
        #[arg(long, default_value = "yunyang")]
        programme: String,
    },
    /// Key commands: the deployment's signing key pairs and the field keys that seal
    /// personal data.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Reviewer draw commands.
    Draw {
        #[command(subcommand)]
        command: DrawCommand,
    },
    /// Checks across services.
    Check {
        #[command(subcommand)]
        command: CheckCommand,
    },
}

#[derive(Subcommand)]
enum CheckCommand {
    /// Compare what the applications, reviewers and scoring services hold about a cycle
    /// (panels, read access, scoring seats, exclusions) through the gateway; print every
    /// disagreement and exit 1 when there is one or the event follower is behind (issue 24).
    Consistency {
        /// programmes/{programme}/cycles/{year}
        #[arg(long)]
        cycle: String,
        /// The gateway's gRPC address (default: listen.gateway_grpc of the configuration).
        #[arg(long)]
        gateway: Option<String>,
        /// The office's bearer token (default: one signed with the data directory's key).
        #[arg(long, env = "QAWARD_CHECK_TOKEN")]
        token: Option<String>,
    },
}

#[derive(Subcommand)]
enum DrawCommand {
    /// Replay an exported draw record (`record_json` of GetDraw) offline, with no database,
    /// and say whether it gives the recorded members, leader and backups.
    Verify {
        /// The record file (JSON).
        file: PathBuf,
    },
    /// Make a party's secret for a draw: 256 bits from the operating system's
    /// generator, printed with its commitment. Send the commitment with CommitDrawEntropy; keep
    /// the secret to yourself until every commitment is in (and the public value is fixed),
    /// then reveal it with RevealDrawEntropy.
    Commit {
        /// The draw: programmes/{programme}/draws/{draw}.
        draw: String,
        /// Your part, as the draw lists it: office, supervisor, office-2, …
        party: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make the two key pairs of a deployment under DIR/keys (kept if present): the people's
    /// (signing-key.pk8, jwks.json; `qaward token --data-dir DIR` signs with it) and the
    /// services' (service-key.pk8, service-jwks.json). Every service gets both JWKS; only the
    /// services that relay an outbox get service-key.pk8; no container gets signing-key.pk8.
    Init { dir: PathBuf },
    /// Add a field key to the key file (privacy.key_file) and make it current; the
    /// services re-seal their personal data under it in the background after their next
    /// start. With --stage, add it without making it current (for a rolling restart of
    /// several replicas: restart all, then `keys activate`).
    Rotate {
        #[arg(long)]
        stage: bool,
    },
    /// Make a staged field key current.
    Activate { id: String },
    /// How many sealed values of each service are not yet under the current field key; exit 1
    /// while any are left (keep the older keys until then).
    Status {
        #[arg(long = "target", value_parser = parse_kind)]
        targets: Vec<ServiceKind>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check a service's audit log: every link of its chain (naming the first broken row), its
    /// tree against its rows, its signed checkpoints and, with --checkpoint, one an auditor kept.
    Verify {
        #[arg(long = "target", value_parser = parse_kind)]
        target: ServiceKind,
        /// A checkpoint kept from earlier (`qaward audit checkpoint`'s output).
        #[arg(long)]
        checkpoint: Option<std::path::PathBuf>,
        /// The checkpoint key's public half (default: `audit-key.pub` beside the key file).
        #[arg(long)]
        public_key: Option<std::path::PathBuf>,
    },
    /// Sign a checkpoint of a service's audit log now and print it, for an auditor to keep.
    Checkpoint {
        #[arg(long = "target", value_parser = parse_kind)]
        target: ServiceKind,
    },
    /// After restoring a service's database from a backup (the service stopped): record the
    /// restore as a signed statement, so that it is not taken for a silent rollback.
    Restored {
        #[arg(long = "target", value_parser = parse_kind)]
        target: ServiceKind,
    },
}

/// A target of `serve`, `migrate` or `health`: an empty one (`QAWARD_TARGETS=""`, as the image
/// sets it when built without TARGETS) names none, which means all.
fn parse_target(s: &str) -> Result<Option<ServiceKind>, String> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    parse_kind(s.trim()).map(Some)
}

fn parse_kind(s: &str) -> Result<ServiceKind, String> {
    ServiceKind::parse(s).ok_or_else(|| {
        let names: Vec<&str> = ServiceKind::ALL.iter().map(|k| k.as_str()).collect();
        format!("unknown service {s:?}; one of {}", names.join(", "))
    })
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| {
        let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        format!("unknown role {s:?}; one of {}", names.join(", "))
    })
}

fn load_config(cli: &Cli) -> Result<Config, String> {
    let mut config = Config::load(cli.config.as_deref()).map_err(|e| e.to_string())?;
    if let Some(dir) = &cli.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(url) = &cli.database_url {
        config.database_url = Secret::new(url.clone());
    }
    // The command line is the last layer; check it like the others.
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

fn main() -> ExitCode {
    // Before anything is created: the data directory's files are the operator's alone (0600,
    // directories 0700; issue 23, item 5).
    qaward_kit::files::private_by_default();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("qaward: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn verify_draw_file(file: &std::path::Path) -> Result<(), String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let answer =
        qaward_reviewers::verify_record(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    let name = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("draw").and_then(|d| d.as_str()).map(str::to_string))
        .unwrap_or_else(|| "the draw".to_string());
    if answer.matches {
        println!("MATCH {name}: {}", answer.message);
        Ok(())
    } else {
        Err(format!("MISMATCH {name}: {}", answer.message))
    }
}

/// `qaward draw commit`: a fresh secret and its commitment (docs/draw.md §2a).
fn commit_draw_secret(draw: &str, party: &str) -> Result<(), String> {
    use qaward_kit::clock::Randomness;
    qaward_reviewers::draw_name(draw).map_err(|e| format!("{draw}: {}", e.message))?;
    let mut bytes = [0u8; 32];
    qaward_kit::clock::OsRandomness.fill(&mut bytes);
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let party = party.trim().to_ascii_lowercase();
    println!("party:      {party}");
    println!(
        "commitment: {}",
        qaward_reviewers::domain::entropy::commitment(draw, &party, &secret)
    );
    println!("secret:     {secret}");
    eprintln!("Send the commitment now; keep the secret private until every commitment is in.");
    Ok(())
}

fn run(cli: Cli) -> Result<(), String> {
    match &cli.command {
        Command::Draw {
            command: DrawCommand::Verify { file },
        } => return verify_draw_file(file),
        Command::Draw {
            command: DrawCommand::Commit { draw, party },
        } => return commit_draw_secret(draw, party),
        _ => {}
    }
    if let Command::Keys {
        command: KeysCommand::Init { dir },
    } = &cli.command
    {
        return keys::init(dir);
    }
    let config = load_config(&cli)?;
    match cli.command {
        Command::Config => {
            print!("{}", config.to_toml());
            Ok(())
        }
        Command::Token {
            role,
            subject,
            org,
            programme,
        } => {
            if config.auth.jwks_file.is_some() || config.auth.jwks_url.is_some() {
                return Err(
                    "auth.jwks_file or auth.jwks_url is set: tokens come from your identity provider, not the local key"
                        .to_string(),
                );
            }
            if role == Role::Service {
                // A service's own credential comes from the services' key, never the people's.
                let path = config
                    .auth
                    .service_key_file
                    .clone()
                    .unwrap_or_else(|| config.data_dir.join(LocalKey::SERVICE_KEY_FILE));
                let key = LocalKey::load(&path).map_err(|e| e.to_string())?;
                let token = key
                    .issue_service(&config.auth, time::OffsetDateTime::now_utc(), &subject)
                    .map_err(|e| e.to_string())?;
                println!("{token}");
                return Ok(());
            }
            let key = LocalKey::load_or_create(&config.data_dir).map_err(|e| e.to_string())?;
            let token = key
                .issue(
                    &config.auth,
                    time::OffsetDateTime::now_utc(),
                    &subject,
                    role,
                    org,
                    programme,
                )
                .map_err(|e| e.to_string())?;
            println!("{token}");
            Ok(())
        }
        Command::Serve { targets } => {
            let runtime = runtime()?;
            let served = runtime.block_on(serve::serve(
                config,
                targets.into_iter().flatten().collect(),
            ));
            // Drained and stopped: a background task still blocked in a name lookup or a
            // file call is not waited for past two seconds, so SIGTERM ends the process well
            // inside a container's grace period (dropping the runtime would wait for it).
            runtime.shutdown_timeout(std::time::Duration::from_secs(2));
            served
        }
        Command::Migrate { targets } => runtime()?.block_on(serve::migrate(
            config,
            targets.into_iter().flatten().collect(),
        )),
        Command::Health { targets } => runtime()?.block_on(serve::health(
            config,
            targets.into_iter().flatten().collect(),
        )),
        Command::Audit { command } => runtime()?.block_on(match command {
            AuditCommand::Verify {
                target,
                checkpoint,
                public_key,
            } => Box::pin(audit::verify(config, target, checkpoint, public_key))
                as std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>>>>,
            AuditCommand::Checkpoint { target } => Box::pin(audit::checkpoint(config, target)),
            AuditCommand::Restored { target } => Box::pin(audit::restored(config, target)),
        }),
        Command::Demo {
            gateway,
            http,
            programme,
        } => runtime()?.block_on(demo(config, gateway, http, programme)),
        Command::Check {
            command:
                CheckCommand::Consistency {
                    cycle,
                    gateway,
                    token,
                },
        } => runtime()?.block_on(check::consistency(config, cycle, gateway, token)),
        Command::Keys {
            command: KeysCommand::Rotate { stage },
        } => keys::rotate(&config, stage),
        Command::Keys {
            command: KeysCommand::Activate { id },
        } => keys::activate(&config, &id),
        Command::Keys {
            command: KeysCommand::Status { targets },
        } => runtime()?.block_on(keys::status(config, targets)),
        Command::Draw { .. }
        | Command::Keys {
            command: KeysCommand::Init { .. },
        } => {
            unreachable!("handled before the configuration is read")
        }
    }
}

async fn demo(
    config: Config,
    gateway: Option<String>,
    http: Option<String>,
    programme: String,
) -> Result<(), String> {
    if config.auth.jwks_file.is_some() || config.auth.jwks_url.is_some() {
        return Err("auth.jwks_file or auth.jwks_url is set: the demo signs its callers' tokens with the local key, which this configuration does not accept".to_string());
    }
    let key_file = config.data_dir.join(LocalKey::SIGNING_KEY_FILE);
    if !key_file.exists() {
        return Err(format!(
            "no signing key at {}: give qaward demo the --data-dir of the running qaward serve",
            key_file.display()
        ));
    }
    let key = LocalKey::load_or_create(&config.data_dir).map_err(|e| e.to_string())?;
    let door = match http {
        Some(addr) if addr.is_empty() => {
            qaward_demo::Door::http(local_addr(config.listen.gateway_http))?
        }
        Some(addr) => {
            use std::net::ToSocketAddrs;
            let addr = addr.trim_start_matches("http://").trim_end_matches('/');
            let resolved = addr
                .to_socket_addrs()
                .map_err(|e| format!("--http {addr}: {e}"))?
                .next()
                .ok_or_else(|| format!("--http {addr} resolves to no address"))?;
            qaward_demo::Door::http(resolved)?
        }
        None => {
            let url = gateway.unwrap_or_else(|| local_url(config.listen.gateway_grpc));
            qaward_demo::Door::grpc(&url).await?
        }
    };
    let tokens = qaward_demo::Tokens::new(key, config.auth.clone());
    let mut walk = qaward_demo::Walk::new(
        door,
        tokens,
        qaward_demo::Plan::yunyang(&programme),
        qaward_demo::Narrator::stdout(),
    )
    .with_records(config.data_dir.join("demo-draws").join(&programme));
    let started = std::time::Instant::now();
    let outcome = walk.run().await.map_err(|e| e.to_string())?;
    println!(
        "\nDone in {:.1} s: {} draws, {} candidates, {} awarded{}. Check every service's audit trail: qaward audit verify --target applications (reviewers, scoring, notifications) --data-dir {}",
        started.elapsed().as_secs_f64(),
        outcome.draws.len(),
        outcome.candidates.len(),
        outcome.winners.len(),
        if outcome.vacant {
            ", the award vacant"
        } else {
            ""
        },
        config.data_dir.display()
    );
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}
