//! gRPC pass-through: the first path segment (`/qaward.reviewers.v1.ReviewerService/...`)
//! names the service; the request goes to that service's channel untouched.

use std::{collections::HashMap, convert::Infallible, pin::Pin, sync::Arc, task::Poll};

use tonic::{Status, body::Body, transport::Channel};
use tower::ServiceExt;

#[derive(Clone)]
pub struct Proxy {
    upstreams: Arc<HashMap<&'static str, Channel>>,
}

impl Proxy {
    pub fn new(upstreams: HashMap<&'static str, Channel>) -> Self {
        Proxy {
            upstreams: Arc::new(upstreams),
        }
    }
}

impl tower::Service<http::Request<axum::body::Body>> for Proxy {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<axum::body::Body>) -> Self::Future {
        let service = request
            .uri()
            .path()
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let Some(channel) = self.upstreams.get(service.as_str()).cloned() else {
            return Box::pin(async move {
                Ok(Status::unimplemented(format!("unknown service {service:?}")).into_http())
            });
        };
        Box::pin(async move {
            // This future runs inside the gateway's server span: the service's span becomes
            // its child.
            let mut request = request;
            qaward_kit::telemetry::inject_headers(request.headers_mut());
            match channel.oneshot(request.map(Body::new)).await {
                Ok(response) => Ok(response),
                Err(e) => {
                    tracing::warn!(%service, error = %e, "upstream unreachable");
                    Ok(Status::unavailable(format!("{service} is unreachable")).into_http())
                }
            }
        })
    }
}
