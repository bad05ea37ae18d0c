//! `qaward serve`: bind every listener first (so a taken port fails before anything starts),
//! open and migrate each service's database, then serve until SIGTERM or SIGINT and drain.

use qaward_kit::{
    audit,
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

    let mut listeners = Vec::new();
    for kind in &targets {
        listeners.push((*kind, bind(config.listen_addr(*kind)).await?));
    }
    let http_listener = if targets.contains(&ServiceKind::Gateway) {
        Some(bind(config.listen.gateway_http).await?)
    } else {
        None
    };
    // Services in this process are reached where they actually listen (port 0 included),
    // unless the configuration names an upstream.
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
        }
    }

    let verifier = Verifier::from_config(&config)
        .await
        .map_err(|e| e.to_string())?;
    let ctx = ServiceContext::new(config, verifier);

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let mut hosts = Vec::new();
    let mut channels = None;
    let edge = Arc::new(qaward_gateway::Edge::new(&ctx.config, ctx.verifier.clone()));
    for (kind, listener) in listeners {
        let host = if kind == ServiceKind::Gateway {
            let c = qaward_gateway::upstream_channels(&ctx)?;
            channels = Some(c.clone());
            qaward_gateway::start(&ctx, c, edge.clone())?
        } else {
            start_service(kind, &ctx).await.map_err(|e| e.to_string())?
        };
        hosts.push((kind, listener, host));
    }

    let mut tasks = JoinSet::new();
    for (kind, listener, host) in hosts {
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        println!("listening {} grpc {addr}", kind.as_str());
        tasks.spawn(host.serve(listener, stopped()));
    }
    if let (Some(listener), Some(channels)) = (http_listener, channels) {
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
        _ = shutdown_signal() => None,
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

pub async fn verify_audit(config: Config, target: ServiceKind) -> Result<(), String> {
    if target == ServiceKind::Gateway {
        return Err("the gateway keeps no audit trail".to_string());
    }
    let migrations = match target {
        ServiceKind::Applications => &qaward_applications::MIGRATIONS,
        ServiceKind::Reviewers => &qaward_reviewers::MIGRATIONS,
        ServiceKind::Scoring => &qaward_scoring::MIGRATIONS,
        ServiceKind::Notifications => &qaward_notifications::MIGRATIONS,
        ServiceKind::Gateway => unreachable!(),
    };
    let db = Database::open(&config, target.as_str(), migrations)
        .await
        .map_err(|e| e.to_string())?;
    match audit::verify(&db).await.map_err(|e| e.to_string())? {
        audit::Verdict::Intact { rows, head } => {
            println!(
                "{}: audit trail intact, {rows} rows, head {head}",
                target.as_str()
            );
            Ok(())
        }
        audit::Verdict::Broken { seq, problem } => Err(format!(
            "{}: audit trail broken at row {seq}: {problem:?}",
            target.as_str()
        )),
    }
}
