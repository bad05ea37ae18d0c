//! A tiny authenticated service for exercising the server bootstrap: `qaward.test.Probe/Check`
//! answers like a health check after an optional delay.

use std::{convert::Infallible, net::SocketAddr, pin::Pin, sync::Arc, task::Poll, time::Duration};

use qaward_kit::{auth::Verifier, config::ServerLimits, server::ServiceHost};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::{Request, Status, body::Body, server::NamedService};
use tonic_health::{
    ServingStatus,
    pb::{HealthCheckRequest, HealthCheckResponse, health_server::HealthServer},
    server::{HealthReporter, HealthService},
};

#[derive(Clone)]
pub struct Probe {
    health: HealthServer<HealthService>,
    delay: Duration,
    arrived: Arc<std::sync::atomic::AtomicUsize>,
}

impl NamedService for Probe {
    const NAME: &'static str = "qaward.test.Probe";
}

impl tower::Service<http::Request<Body>> for Probe {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        parts.uri = "/grpc.health.v1.Health/Check".parse().unwrap();
        let mut health = self.health.clone();
        let delay = self.delay;
        self.arrived
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            tower::Service::call(&mut health, http::Request::from_parts(parts, body)).await
        })
    }
}

pub struct Running {
    pub addr: SocketAddr,
    /// Calls that reached the probe (past authentication and shedding).
    pub arrived: Arc<std::sync::atomic::AtomicUsize>,
    pub stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<Result<(), String>>,
}

/// Starts a host with the probe on a free loopback port.
pub async fn start(limits: ServerLimits, verifier: Arc<Verifier>, delay: Duration) -> Running {
    let reporter = HealthReporter::new();
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    let arrived = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let probe = Probe {
        health: HealthServer::new(HealthService::from_health_reporter(reporter)),
        delay,
        arrived: arrived.clone(),
    };
    let listener = qaward_kit::server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let host = ServiceHost::new("probe", &limits, verifier).add_service(probe);
    let task = tokio::spawn(host.serve(listener, async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        arrived,
        stop: Some(stop),
        task,
    }
}

pub async fn channel(addr: SocketAddr) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// Calls the probe, with a bearer token if given.
pub async fn call(
    channel: tonic::transport::Channel,
    token: Option<&str>,
) -> Result<HealthCheckResponse, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let mut request = Request::new(HealthCheckRequest {
        service: String::new(),
    });
    if let Some(t) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    grpc.unary(
        request,
        http::uri::PathAndQuery::from_static("/qaward.test.Probe/Check"),
        tonic_prost::ProstCodec::default(),
    )
    .await
    .map(|r| r.into_inner())
}

/// Asks the host's own health service about `service`.
pub async fn health(
    channel: tonic::transport::Channel,
    service: &str,
) -> Result<ServingStatus, Status> {
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let r = client
        .check(HealthCheckRequest {
            service: service.to_string(),
        })
        .await?
        .into_inner();
    Ok(match r.status {
        1 => ServingStatus::Serving,
        2 => ServingStatus::NotServing,
        _ => ServingStatus::Unknown,
    })
}
