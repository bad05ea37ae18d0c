//! The HTTP port's own limits, checked before any route and answered as every other error
//! (the JSON error body, its `code` the response's status): a request head larger than
//! `gateway.http_max_header_bytes` is 431; past `server.max_concurrent_requests` requests in
//! flight, 429 `OVERLOADED` with `Retry-After` (as the services shed); a body slower than
//! `gateway.http_body_timeout_ms` is 408 (tower-http's request body timeout); a body over its
//! limit is 413.

use std::{sync::Arc, time::Duration};

use axum::{extract::State, response::Response};
use http::StatusCode;
use tonic::Status;

use crate::{
    edge::Edge,
    http_api::{error, error_with},
};

/// Around every exchange of the HTTP port (health and the OpenAPI document included).
pub async fn limits(
    State(edge): State<Arc<Edge>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let head: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if head > edge.http_max_header_bytes {
        return error_with(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            &qaward_kit::Error::invalid(
                "headers",
                format!(
                    "are {head} bytes; at most {} (gateway.http_max_header_bytes)",
                    edge.http_max_header_bytes
                ),
            )
            .to_status(),
        );
    }
    let Ok(_in_flight) = edge.http_in_flight.clone().try_acquire_owned() else {
        return error(&qaward_kit::server::overloaded());
    };
    next.run(request).await
}

/// The answer when a request body could not be read whole: over `max` bytes (413), or not
/// arrived within `timeout` (408), or cut off (400).
pub fn unread_body(e: &axum::Error, max: usize, timeout: Duration) -> Response {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let (mut too_large, mut too_slow) = (false, false);
    while let Some(err) = source {
        too_large |= err.is::<http_body_util::LengthLimitError>();
        too_slow |= err.is::<tower_http::timeout::TimeoutError>();
        source = err.source();
    }
    if too_large {
        return error_with(
            StatusCode::PAYLOAD_TOO_LARGE,
            &qaward_kit::Error::invalid("body", format!("is larger than {max} bytes")).to_status(),
        );
    }
    if too_slow {
        return error_with(
            StatusCode::REQUEST_TIMEOUT,
            &qaward_kit::Error::invalid(
                "body",
                format!(
                    "did not arrive within {} ms (gateway.http_body_timeout_ms)",
                    timeout.as_millis()
                ),
            )
            .to_status(),
        );
    }
    error(&Status::invalid_argument(format!(
        "the request body could not be read: {e}"
    )))
}
