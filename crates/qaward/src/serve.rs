//! `qaward serve`: bind every listener first (so a taken port fails before anything starts),
//! open and migrate each service's database, then serve until SIGTERM or SIGINT and drain.

use qaward_kit::{
    auth::Verifier,
    config::{Config, ServiceKind, local_url},
    db::{Database, DbError},
    server::{ServiceContext, ServiceHost, bind, shutdown_signal},
    telemetry,
};
use std::sync::Arc;

use tokio::{sync::watch, task::JoinSet};

async fn start_service(kind: ServiceKind, ctx: &ServiceContext) -> Result<ServiceHost, DbError> {
    match kind {
        ServiceKind::Applications => qaward_applications::start(ctx).await,
        ServiceKind::Reviewers => qaward_reviewers::start(ctx).await,
        ServiceKind::Scoring => qaward_scoring::start(ctx).await,
        ServiceKind::Notifications => qaward_notifications::start(ctx).await,
        ServiceKind::Gateway => unreachable!("the gateway is started on its own"),
    }
}

/// The order the parts of one process start in: each after those it calls.
const STARTS_AFTER: [ServiceKind; 5] = [
    ServiceKind::Reviewers,
    ServiceKind::Scoring,
    ServiceKind::Notifications,
    ServiceKind::Applications,
    ServiceKind::Gateway,
];

pub async fn serve(mut config: Config, targets: Vec<ServiceKind>) -> Result<(), String> {
    let mut targets = if targets.is_empty() {
        ServiceKind::ALL.to_vec()
    } else {
        targets
    };
    targets.sort_by_key(|k| ServiceKind::ALL.iter().position(|a| a == k));
    targets.dedup();
    let _telemetry =
        telemetry::init(&config.telemetry, "qaward").map_err(|e| format!("telemetry: {e}"))?;

    config.refuse_plaintext_beyond_loopback(&targets)?;
    // What this process creates is private (`main` sets the mask); what it finds is checked.
    qaward_kit::files::warn_if_wider(&config.data_dir);
    // Before anything binds: a SIGTERM from here on drains (see `shutdown_signal`).
    let shutdown = shutdown_signal().map_err(|e| format!("signal handlers: {e}"))?;
    let mut listeners = Vec::new();
    for kind in &targets {
        listeners.push((*kind, bind(config.listen_addr(*kind)).await?));
    }
    let http_listener = if targets.contains(&ServiceKind::Gateway) {
        Some(bind(config.listen.gateway_http).await?)
    } else {
        None
    };
    // Services in this process are reached in process (`qaward_kit::upstream`), unless the
    // configuration names an upstream; their address is where they actually listen (port 0
    // included).
    let mut here = Vec::new();
    for (kind, listener) in &listeners {
        let url = local_url(listener.local_addr().map_err(|e| e.to_string())?);
        let slot = match kind {
            ServiceKind::Applications => &mut config.upstreams.applications,
            ServiceKind::Reviewers => &mut config.upstreams.reviewers,
            ServiceKind::Scoring => &mut config.upstreams.scoring,
            ServiceKind::Notifications => &mut config.upstreams.notifications,
            ServiceKind::Gateway => continue,
        };
        if slot.as_deref().is_none_or(str::is_empty) {
            *slot = Some(url);
            here.push(*kind);
        }
    }

    let verifier = Verifier::from_config(&config)
        .await
        .map_err(|e| e.to_string())?;
    let ctx = ServiceContext::new(config, verifier)?;
    if ctx.config.clock.simulated() {
        tracing::warn!(
            start = ?ctx.config.clock.start,
            speed = ctx.config.clock.speed,
            now = %ctx.clock.now(),
            "the services run on a simulated clock: for training and demonstrations only"
        );
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let mut hosts = Vec::new();
    let mut upstreams = None;
    let edge = Arc::new(qaward_gateway::Edge::new(
        &ctx.config,
        ctx.verifier.clone(),
        qaward::policy(),
    ));
    // Each part starts after the services it calls, so it finds them in process: the services
    // the applications service calls, then it, then the gateway.
    listeners.sort_by_key(|(kind, _)| STARTS_AFTER.iter().position(|k| k == kind));
    for (kind, listener) in listeners {
        let host = if kind == ServiceKind::Gateway {
            let u = qaward_gateway::upstreams(&ctx)?;
            upstreams = Some(u.clone());
            qaward_gateway::start(&ctx, u, edge.clone())?
        } else {
            let mut host = start_service(kind, &ctx).await.map_err(|e| e.to_string())?;
            if here.contains(&kind) {
                ctx.in_process.offer(kind, host.in_process()?);
            }
            host
        };
        hosts.push((kind, listener, host));
    }
    hosts.sort_by_key(|(kind, _, _)| ServiceKind::ALL.iter().position(|k| k == kind));

    let mut tasks = JoinSet::new();
    for (kind, listener, host) in hosts {
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        println!("listening {} grpc {addr}", kind.as_str());
        tasks.spawn(host.serve(listener, stopped()));
    }
    if let (Some(listener), Some(channels)) = (http_listener, upstreams) {
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        println!("listening gateway http {addr}");
        tasks.spawn(qaward_gateway::serve_http(
            listener,
            channels,
            edge.clone(),
            ctx.config.tls.clone(),
            stopped(),
        ));
    }
    println!(
        "qaward is serving (data: {}); stop with Ctrl-C or SIGTERM",
        if ctx.config.uses_postgres() {
            "PostgreSQL".to_string()
        } else {
            ctx.config.data_dir.display().to_string()
        }
    );

    let early = tokio::select! {
        _ = shutdown => None,
        Some(result) = tasks.join_next() => Some(result),
    };
    let _ = stop_tx.send(true);
    let mut first_error = match early {
        Some(Ok(Err(e))) => Some(e),
        Some(Err(e)) => Some(format!("a server task failed: {e}")),
        Some(Ok(Ok(()))) => Some("a server stopped unexpectedly".to_string()),
        None => None,
    };
    while let Some(result) = tasks.join_next().await {
        let error = match result {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e,
            Err(e) => format!("a server task failed: {e}"),
        };
        first_error.get_or_insert(error);
    }
    match first_error {
        Some(e) => Err(e),
        None => {
            tracing::info!("stopped cleanly");
            Ok(())
        }
    }
}

/// The migrations of a service with a database (all but the gateway).
pub fn migrations_of(kind: ServiceKind) -> Option<&'static qaward_kit::db::Migrations> {
    match kind {
        ServiceKind::Applications => Some(&qaward_applications::MIGRATIONS),
        ServiceKind::Reviewers => Some(&qaward_reviewers::MIGRATIONS),
        ServiceKind::Scoring => Some(&qaward_scoring::MIGRATIONS),
        ServiceKind::Notifications => Some(&qaward_notifications::MIGRATIONS),
        ServiceKind::Gateway => None,
    }
}

/// `qaward migrate`: brings the database of every target (all services when none) to this
/// release, once, and makes the local signing key if tokens come from it — what every replica
/// would otherwise race to do at start.
pub async fn migrate(mut config: Config, targets: Vec<ServiceKind>) -> Result<(), String> {
    config.server.migrate_on_start = true;
    let targets = if targets.is_empty() {
        ServiceKind::ALL.to_vec()
    } else {
        targets
    };
    if config.auth.jwks_file.is_none() && config.auth.jwks_url.is_none() {
        qaward_kit::auth::LocalKey::load_or_create(&config.data_dir).map_err(|e| e.to_string())?;
    }
    if config.auth.service_jwks_file.is_none() {
        qaward_kit::auth::LocalKey::load_or_create_service(&config.data_dir)
            .map_err(|e| e.to_string())?;
    }
    for kind in targets {
        let Some(migrations) = migrations_of(kind) else {
            continue;
        };
        Database::open(&config, kind.as_str(), migrations)
            .await
            .map_err(|e| e.to_string())?;
        println!("{}: migrated", kind.as_str());
    }
    Ok(())
}

/// `qaward health`: every gRPC listener of the targets (all when none) answers
/// `grpc.health.v1` SERVING within two seconds; for container health checks.
pub async fn health(config: Config, targets: Vec<ServiceKind>) -> Result<(), String> {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let targets = if targets.is_empty() {
        ServiceKind::ALL.to_vec()
    } else {
        targets
    };
    let mut failed = Vec::new();
    for kind in targets {
        let mut url = local_url(config.listen_addr(kind));
        if config.tls.serves() {
            url = url.replacen("http://", "https://", 1);
        }
        let mut endpoint = tonic::transport::Endpoint::from_shared(url.clone())
            .map_err(|e| e.to_string())?
            .connect_timeout(std::time::Duration::from_secs(2))
            .timeout(std::time::Duration::from_secs(2));
        if config.tls.serves() {
            // Trusting the CA the services trust, presenting this process's certificate.
            let mut tls = tonic::transport::ClientTlsConfig::new();
            if let Some(ca) = &config.tls.upstream_ca_file {
                let pem = std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
                tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem));
            }
            if let Some(identity) = qaward_kit::tls::identity(&config.tls)? {
                tls = tls.identity(identity);
            }
            endpoint = endpoint.tls_config(tls).map_err(|e| e.to_string())?;
        }
        let status = match endpoint.connect().await {
            Ok(channel) => HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map(|r| r.into_inner().status),
            Err(e) => Err(tonic::Status::unavailable(e.to_string())),
        };
        match status {
            Ok(1) => println!("{} {url}: SERVING", kind.as_str()),
            Ok(other) => failed.push(format!("{} {url}: status {other}", kind.as_str())),
            Err(e) => failed.push(format!("{} {url}: {}", kind.as_str(), e.message())),
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("not serving: {}", failed.join("; ")))
    }
}
