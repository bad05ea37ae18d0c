//! Server bootstrap shared by every service: gRPC health and server reflection, the tower
//! layers (trace context, load shedding with RESOURCE_EXHAUSTED, request timeout), and
//! graceful shutdown (health goes NOT_SERVING first, in-flight calls finish, then exit).

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tokio::{net::TcpListener, sync::Semaphore};
use tonic::{server::NamedService, service::Routes, transport::Server};
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    auth::Verifier,
    clock::{SharedClock, SharedRandomness},
    config::{Config, ServerLimits},
    security,
    telemetry::TraceLayer,
};

/// What every service is started with: its configuration, the token verifier, and the
/// injected clock and randomness.
#[derive(Clone)]
pub struct ServiceContext {
    pub config: Arc<Config>,
    pub verifier: Arc<Verifier>,
    pub clock: SharedClock,
    pub randomness: SharedRandomness,
    /// The keys that seal personal-data fields at rest.
    pub fields: Arc<crate::fields::FieldKeys>,
    /// The key that signs the audit log's checkpoints (issue 22, item 3), outside the database.
    pub audit: Arc<crate::audit::AuditKey>,
    /// The services this process serves itself, which its other parts call in process
    /// ([`crate::upstream`]); empty until `qaward serve` offers them.
    pub in_process: crate::upstream::InProcess,
}

impl ServiceContext {
    /// The context of a real process: the configured clock (the wall clock unless `[clock]`
    /// says otherwise) and the operating system's randomness.
    /// The field keys come from the configured key file, made on first start.
    pub fn new(config: Config, verifier: Arc<Verifier>) -> Result<Self, String> {
        let fields = crate::fields::FieldKeys::load_or_create(
            &config.privacy.key_file_in(&config.data_dir),
            config.privacy.algorithm,
        )?;
        let audit =
            crate::audit::AuditKey::load_or_create(&config.audit.key_file_in(&config.data_dir))
                .map_err(|e| e.to_string())?;
        Ok(ServiceContext {
            audit: Arc::new(audit),
            clock: crate::clock::from_config(&config.clock),
            config: Arc::new(config),
            verifier,
            randomness: Arc::new(crate::clock::OsRandomness),
            fields: Arc::new(fields),
            in_process: Default::default(),
        })
    }
}

impl ServiceContext {
    /// A new identifier that sorts by creation time: milliseconds since the epoch (11 hex
    /// digits), then 8 random bytes, so list pages in id order come in creation order.
    pub fn time_ordered_id(&self) -> String {
        let mut b = [0u8; 8];
        self.randomness.fill(&mut b);
        format!(
            "{:011x}{}",
            crate::clock::unix_micros(self.clock.now()) / 1000,
            hex::encode(b)
        )
    }
}

type Fallback = Box<dyn FnOnce(axum::Router) -> axum::Router + Send>;

/// Binds a listener, with a one-line error naming the address when it is taken.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))
}

/// One gRPC server hosting one or more authenticated services plus health and reflection.
pub struct ServiceHost {
    name: String,
    limits: ServerLimits,
    verifier: Arc<Verifier>,
    routes: tonic::service::RoutesBuilder,
    services: Vec<&'static str>,
    health: HealthReporter,
    health_service:
        tonic_health::pb::health_server::HealthServer<tonic_health::server::HealthService>,
    fallback: Option<Fallback>,
    /// Services reachable here through the fallback, advertised by reflection.
    passed_through: Vec<&'static str>,
    tls: Option<tonic::transport::ServerTlsConfig>,
    /// The layers every call passes, shared by the listener and the in-process door: one
    /// trace layer, one shedding semaphore.
    trace: TraceLayer,
    shed: ShedLayer,
    /// The finished routes (services, health, reflection, fallback), once built.
    built: Option<Routes>,
}

impl ServiceHost {
    pub fn new(name: impl Into<String>, limits: &ServerLimits, verifier: Arc<Verifier>) -> Self {
        let name = name.into();
        let health = HealthReporter::new();
        let health_service = tonic_health::pb::health_server::HealthServer::new(
            tonic_health::server::HealthService::from_health_reporter(health.clone()),
        );
        ServiceHost {
            name: name.clone(),
            limits: limits.clone(),
            verifier,
            routes: Routes::builder(),
            services: Vec::new(),
            health,
            health_service,
            fallback: None,
            passed_through: Vec::new(),
            tls: None,
            trace: TraceLayer::for_service(&name),
            shed: ShedLayer::new(limits.max_concurrent_requests),
            built: None,
        }
    }

    /// The host of a qaward service or the gateway as the configuration asks: its limits, its
    /// verifier, and TLS from `[tls]` (mutual TLS for the four services, never for the
    /// gateway, whose callers are the platform's).
    pub fn for_kind(
        kind: crate::config::ServiceKind,
        ctx: &ServiceContext,
    ) -> Result<Self, String> {
        let mut host = ServiceHost::new(kind.as_str(), &ctx.config.server, ctx.verifier.clone());
        host.tls =
            crate::tls::server(&ctx.config.tls, kind != crate::config::ServiceKind::Gateway)?;
        Ok(host)
    }

    /// Routes every path no service claims through `f` (the gateway's pass-through). Such
    /// paths are not authenticated here: the service they reach does that.
    /// `services` are the gRPC services reachable that way, which reflection advertises.
    pub fn with_fallback(
        mut self,
        services: &[&'static str],
        f: impl FnOnce(axum::Router) -> axum::Router + Send + 'static,
    ) -> Self {
        self.fallback = Some(Box::new(f));
        self.passed_through.extend_from_slice(services);
        self
    }

    /// The largest message a service should accept or send; generated servers take it with
    /// `max_decoding_message_size` and `max_encoding_message_size`.
    pub fn max_message_bytes(&self) -> usize {
        self.limits.max_message_bytes
    }

    /// Adds a service; every call to it must carry a valid bearer token, and, for a service of
    /// the contracts, of a role its methods' access options allow
    /// ([`Policy::contracts`](crate::policy::Policy::contracts)).
    pub fn add_service<S>(mut self, service: S) -> Self
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.services.push(S::NAME);
        let policy = crate::policy::Policy::contracts().service(S::NAME);
        self.routes.add_service(Guarded {
            inner: service,
            verifier: self.verifier.clone(),
            policy,
        });
        self
    }

    /// The health reporter, for a service that wants to report its own status.
    pub fn health(&self) -> HealthReporter {
        self.health.clone()
    }

    /// The finished routes: the added services, health, reflection (advertising exactly what
    /// this address answers) and the fallback. Built once; the listener and the in-process
    /// door serve the same.
    fn routes(&mut self) -> Result<Routes, String> {
        if let Some(routes) = &self.built {
            return Ok(routes.clone());
        }
        // Reflection advertises exactly what this address answers, in both protocol versions:
        // v1, and v1alpha, which grpcio's reflection package and many GUI clients still speak.
        // Each version's builder adds its own reflection contract; `other` is the other's, so
        // either can describe both.
        let reflection = |other: &'static [u8]| {
            let mut builder = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(qaward_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(other)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .with_service_name("grpc.health.v1.Health")
                .with_service_name("grpc.reflection.v1.ServerReflection")
                .with_service_name("grpc.reflection.v1alpha.ServerReflection");
            for name in self.services.iter().chain(&self.passed_through) {
                builder = builder.with_service_name(*name);
            }
            builder
        };
        let reflection_v1 = reflection(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(|e| format!("reflection: {e}"))?;
        let reflection_v1alpha = reflection(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
            .build_v1alpha()
            .map_err(|e| format!("reflection: {e}"))?;

        let mut routes = std::mem::take(&mut self.routes);
        routes
            .add_service(self.health_service.clone())
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha);
        let mut routes = routes.routes();
        if let Some(fallback) = self.fallback.take() {
            routes = Routes::from(fallback(routes.into_axum_router()));
        }
        self.built = Some(routes.clone());
        Ok(routes)
    }

    /// The services of this host as another part of the same process calls them
    /// ([`crate::upstream`]): the routes the listener serves, behind the same layers in the
    /// same order as tonic's server puts them (the deadline outermost, errors answered as
    /// statuses, then trace and shedding), the request stripped of the caller's extensions.
    pub fn in_process(&mut self) -> Result<crate::upstream::Upstream, String> {
        let routes = self.routes()?;
        let stack = tower::ServiceBuilder::new()
            .layer_fn(crate::upstream::AsFromWire)
            .map_response(|r: http::Response<_>| r.map(tonic::body::Body::new))
            .layer(tonic::service::RecoverErrorLayer::new())
            .layer_fn(|s| crate::upstream::Deadline::new(s, Some(self.limits.request_timeout())))
            .layer(self.trace.clone())
            .layer(self.shed.clone())
            .service(routes);
        Ok(crate::upstream::boxed(stack))
    }

    /// Serves on `listener` until `shutdown` resolves, then drains: health answers
    /// NOT_SERVING at once, new connections are refused, in-flight calls get up to the
    /// configured grace period to finish.
    pub async fn serve(
        mut self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), String> {
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        for name in &self.services {
            self.health
                .set_service_status(*name, ServingStatus::Serving)
                .await;
        }
        self.health
            .set_service_status("", ServingStatus::Serving)
            .await;
        let routes = self.routes()?;

        let health = self.health.clone();
        let services = self.services.clone();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
        let drain = async move {
            shutdown.await;
            health
                .set_service_status("", ServingStatus::NotServing)
                .await;
            for name in services {
                health
                    .set_service_status(name, ServingStatus::NotServing)
                    .await;
            }
            let _ = started_tx.send(());
        };

        let mut builder = Server::builder();
        if let Some(tls) = self.tls {
            builder = builder
                .tls_config(tls)
                .map_err(|e| format!("{} TLS: {e}", self.name))?;
        }
        let server = builder
            .timeout(self.limits.request_timeout())
            .layer(self.trace.clone())
            .layer(self.shed.clone())
            .add_routes(routes)
            // TCP_NODELAY on every accepted connection: without it a small response waits
            // for the peer's delayed ACK (~40 ms on Linux) whenever only one call is in flight.
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                drain,
            );
        tracing::info!(service = %self.name, %addr, "serving");
        tokio::pin!(server);
        let grace = self.limits.shutdown_grace();
        tokio::select! {
            result = &mut server => result.map_err(|e| format!("{} server on {addr}: {e}", self.name)),
            _ = async { if started_rx.await.is_ok() { tokio::time::sleep(grace).await } else { std::future::pending::<()>().await } } => {
                tracing::warn!(service = %self.name, "shutdown grace period over; abandoning calls still in flight");
                Ok(())
            }
        }
    }
}

/// A service whose calls are admitted first: the token verified, the role checked against the
/// access options of the service's contract for the called path, and the verified
/// [`Caller`](crate::auth::Caller) put on the request for the handler. A refused call never
/// reaches the handler.
#[derive(Clone)]
struct Guarded<S> {
    inner: S,
    verifier: Arc<Verifier>,
    policy: Option<&'static crate::policy::ServicePolicy>,
}

impl<S: NamedService> NamedService for Guarded<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> tower::Service<http::Request<tonic::body::Body>> for Guarded<S>
where
    S: NamedService
        + tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        let header = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        // Every service of the contracts has its rows; a service outside them (a test's probe)
        // is only authenticated.
        let peer = peer_of(request.extensions());
        // The path stays with the call for the security log (a cheap copy: the URI's bytes
        // are shared).
        let uri = request.uri().clone();
        let path = uri.path();
        let refuse = |kind, e: crate::error::Error, caller: Option<&crate::auth::Caller>| {
            security::refused(kind, &e.reason, path, caller, peer);
            let response = e.to_status().into_http();
            Box::pin(async move { Ok(response) }) as Self::Future
        };
        let caller = match self.verifier.verify_header(header) {
            Err(e) => return refuse(security::Kind::Authentication, e, None),
            Ok(caller) => match self.policy.map(|rows| rows.check(path, &caller)) {
                Some(Err(e)) => return refuse(security::Kind::Policy, e, Some(&caller)),
                _ => caller,
            },
        };
        // The caller goes with the request to the handler, not copied: should the handler
        // refuse the record, the log reads the caller again from the token (a shared copy of
        // the header) through the verifier's memory.
        let token = request.headers().get(http::header::AUTHORIZATION).cloned();
        let verifier = self.verifier.clone();
        request.extensions_mut().insert(caller);
        let answer = self.inner.call(request);
        Box::pin(async move {
            let mut response = answer.await?;
            invalid_message_is_the_callers(&mut response);
            // A record-level refusal by the handler (whose record, which group).
            if response
                .headers()
                .get("grpc-status")
                .is_some_and(|v| v == "7")
            {
                let status = tonic::Status::from_header_map(response.headers());
                let reason = status
                    .as_ref()
                    .and_then(|s| {
                        tonic_types::StatusExt::get_error_details(s)
                            .error_info()
                            .map(|i| i.reason.clone())
                    })
                    .unwrap_or_else(|| "PERMISSION_DENIED".to_string());
                let caller = verifier
                    .verify_header(token.as_ref().and_then(|v| v.to_str().ok()))
                    .ok();
                security::refused(
                    security::Kind::Record,
                    &reason,
                    uri.path(),
                    caller.as_ref(),
                    peer,
                );
            }
            Ok(response)
        })
    }
}

/// The address a call came from, when tonic's listener recorded it (plain TCP or TLS).
pub fn peer_of(ext: &http::Extensions) -> Option<std::net::SocketAddr> {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    ext.get::<TcpConnectInfo>()
        .and_then(|i| i.remote_addr())
        .or_else(|| {
            ext.get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|i| i.get_ref().remote_addr())
        })
}

/// A request whose bytes are not a valid message of the method's type is the caller's error:
/// tonic answers it INTERNAL ("failed to decode Protobuf message"); it is INVALID_ARGUMENT.
fn invalid_message_is_the_callers<B>(response: &mut http::Response<B>) {
    let h = response.headers();
    let undecodable = h.get("grpc-status").is_some_and(|v| v == "13")
        && h.get("grpc-message")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|m| {
                m.starts_with("failed%20to%20decode") || m.starts_with("failed to decode")
            });
    if undecodable {
        response
            .headers_mut()
            .insert("grpc-status", http::HeaderValue::from_static("3"));
    }
}

/// SIGINT (Ctrl-C) or SIGTERM, whichever comes first. The handlers are registered when this is
/// called, not when the future is first polled: call it before binding, so that a signal that
/// arrives while the servers start (an early `docker stop`, a rolling update) drains them
/// instead of ending the process by the signal's default action.
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            tracing::info!("shutdown signal received");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutdown signal received");
        })
    }
}

/// The answer to a call shed at the concurrency limit: RESOURCE_EXHAUSTED with ErrorInfo
/// (reason `OVERLOADED`) and RetryInfo (a second), so a client — and the gateway's HTTP door,
/// which turns RetryInfo into `Retry-After` — knows to come back rather than give up.
pub fn overloaded() -> tonic::Status {
    come_back_later(
        "OVERLOADED",
        "the server is at its concurrency limit",
        std::time::Duration::from_secs(1),
    )
}

/// RESOURCE_EXHAUSTED with `reason` and the time to wait, both in ErrorInfo (`retry_after_ms`)
/// and in RetryInfo, which the gateway's HTTP door turns into `Retry-After`: every "not now,
/// later" answer (load shedding, a caller's rate, an address's failed authentications).
pub fn come_back_later(reason: &str, what: &str, wait: std::time::Duration) -> tonic::Status {
    let mut details = tonic_types::ErrorDetails::with_error_info(
        reason,
        crate::error::ERROR_DOMAIN,
        std::collections::HashMap::from([(
            "retry_after_ms".to_string(),
            wait.as_millis().to_string(),
        )]),
    );
    details.set_retry_info(Some(wait));
    <tonic::Status as tonic_types::StatusExt>::with_error_details(
        tonic::Code::ResourceExhausted,
        format!("{what}; retry in {} ms", wait.as_millis().max(1)),
        details,
    )
}

/// Load shedding: at most `limit` calls in flight; one more is refused at once with
/// RESOURCE_EXHAUSTED rather than queued. Health checks are never shed, so an orchestrator
/// does not kill a busy but healthy replica.
#[derive(Debug, Clone)]
pub struct ShedLayer {
    permits: Arc<Semaphore>,
}

impl ShedLayer {
    pub fn new(limit: usize) -> Self {
        ShedLayer {
            permits: Arc::new(Semaphore::new(limit.max(1))),
        }
    }
}

impl<S> tower::Layer<S> for ShedLayer {
    type Service = Shed<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Shed {
            inner,
            permits: self.permits.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Shed<S> {
    inner: S,
    permits: Arc<Semaphore>,
}

impl<S, B, R> tower::Service<http::Request<B>> for Shed<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path().starts_with("/grpc.health.v1.Health/") {
            return Box::pin(self.inner.call(request));
        }
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let future = self.inner.call(request);
                Box::pin(async move {
                    let response = future.await;
                    drop(permit);
                    response
                })
            }
            Err(_) => Box::pin(async { Ok(overloaded().into_http()) }),
        }
    }
}
