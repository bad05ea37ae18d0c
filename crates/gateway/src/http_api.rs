//! The gateway's HTTP port: `GET /healthz`, the health of every service behind the gateway as
//! JSON (200 when all serve, 503 otherwise), and every annotated method as HTTP/JSON
//! (`transcode.rs`), authenticated here before anything else.

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::get,
};
use qaward_kit::upstream::Upstream;
use tokio::net::TcpListener;
use tonic::Status;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tonic_types::StatusExt;
use tracing::Instrument;

use qaward_proto::qaward::gateway::v1::gateway_service_server::GatewayServiceServer;

use crate::{
    edge::{Edge, deadline_exceeded},
    transcode::{self, Routes},
    views::Views,
};

type Upstreams = Arc<HashMap<&'static str, Upstream>>;

/// What the HTTP handlers share.
#[derive(Clone)]
struct Port {
    upstreams: Upstreams,
    routes: Arc<Routes>,
    edge: Arc<Edge>,
    openapi: Arc<serde_json::Value>,
    cors_origins: Arc<Vec<String>>,
    /// The gateway's own service, called in-process.
    views: GatewayServiceServer<Views>,
}

/// The largest JSON body the gateway reads. An evidence file is not read whole: its body is
/// streamed to the service in chunks, and the service applies its own limit.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Serves the HTTP port until `shutdown` resolves.
pub async fn serve_http(
    listener: TcpListener,
    channels: HashMap<&'static str, Upstream>,
    edge: Arc<Edge>,
    tls: qaward_kit::config::Tls,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let app = router(channels, edge)?;
    let Some(acceptor) = tls_acceptor(&tls)? else {
        tracing::info!(service = "gateway-http", %addr, "serving");
        use axum::serve::ListenerExt;
        // No delayed-ACK stall on small answers (see kit::server).
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        return axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| format!("gateway HTTP on {addr}: {e}"));
    };
    tracing::info!(service = "gateway-http", %addr, "serving over TLS");
    serve_tls(listener, acceptor, tls.handshake_timeout(), app, shutdown).await;
    Ok(())
}

/// The HTTP port's TLS from `[tls]`: this process's certificate, HTTP/2 or HTTP/1.1 by ALPN,
/// no client certificate asked (the platform authenticates with bearer tokens).
fn tls_acceptor(
    tls: &qaward_kit::config::Tls,
) -> Result<Option<tokio_rustls::TlsAcceptor>, String> {
    use tokio_rustls::rustls::{
        self,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    };
    let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) else {
        return Ok(None);
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("tls.cert_file {}: {e}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("tls.key_file {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("tls.cert_file and tls.key_file: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
}

/// Accepts TLS connections until `shutdown`; each connection is served on its own task (a
/// failed handshake ends only that connection) and finishes its exchanges after the
/// listener stops.
async fn serve_tls(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    handshake_timeout: Duration,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "gateway HTTP: accept failed");
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        // The client's address, for the edge's limit on failed authentications.
        let (acceptor, app) = (
            acceptor.clone(),
            app.clone()
                .layer(axum::Extension(axum::extract::ConnectInfo(peer))),
        );
        tokio::spawn(async move {
            // A client that connects and says nothing holds no task past the timeout.
            let stream = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "gateway HTTP: TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "gateway HTTP: TLS handshake timed out");
                    return;
                }
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let served =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "gateway HTTP: connection ended");
            }
        });
    }
}

/// The HTTP port's routes, over `channels` to the services.
pub fn router(
    channels: HashMap<&'static str, Upstream>,
    edge: Arc<Edge>,
) -> Result<Router, String> {
    let routes = Routes::from_descriptors(qaward_proto::FILE_DESCRIPTOR_SET)?;
    let openapi = crate::openapi::document(qaward_proto::FILE_DESCRIPTOR_SET, &routes)?;
    // The HTTP edge counts the caller's rate before it calls the views in-process.
    let views = GatewayServiceServer::new(Views::new(channels.clone(), edge.max_timeout, None));
    let port = Port {
        views,
        upstreams: Arc::new(channels),
        routes: Arc::new(routes),
        cors_origins: Arc::new(edge.cors_origins.clone()),
        edge,
        openapi: Arc::new(openapi),
    };
    Ok(Router::new()
        .route("/healthz", get(healthz))
        .route(
            "/openapi.json",
            get(|State(port): State<Port>| async move { Json(port.openapi.as_ref().clone()) }),
        )
        .fallback(transcoded)
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            port.edge.http_body_timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            port.edge.clone(),
            crate::http_limits::limits,
        ))
        .layer(axum::middleware::from_fn(request_id))
        .layer(cors(&port.cors_origins))
        .with_state(port))
}

async fn healthz(State(port): State<Port>) -> (StatusCode, Json<serde_json::Value>) {
    let upstreams = port.upstreams;
    let mut services = serde_json::Map::new();
    let mut all_serving = true;
    let mut names: Vec<&&str> = upstreams.keys().collect();
    names.sort();
    for name in names {
        let mut client = HealthClient::new(upstreams[*name].clone());
        let check = client.check(HealthCheckRequest {
            service: name.to_string(),
        });
        let status = match tokio::time::timeout(Duration::from_secs(2), check).await {
            Ok(Ok(r)) if r.get_ref().status == 1 => "SERVING",
            Ok(Ok(_)) => "NOT_SERVING",
            Ok(Err(_)) | Err(_) => "UNREACHABLE",
        };
        all_serving &= status == "SERVING";
        services.insert(name.to_string(), status.into());
    }
    let code = if all_serving {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if all_serving { "SERVING" } else { "DEGRADED" },
        "services": services,
    });
    (code, Json(body))
}

pub(crate) fn error(status: &Status) -> Response {
    let (code, body) = transcode::error_response(status);
    answer(code, body, status)
}

/// An error answered with an HTTP status of its own (413, 405) that the gRPC code does not
/// give: the body's `code` says the same status as the response.
pub(crate) fn error_with(http_status: StatusCode, status: &Status) -> Response {
    let (_, mut body) = transcode::error_response(status);
    body["error"]["code"] = serde_json::json!(http_status.as_u16());
    answer(http_status, body, status)
}

fn answer(code: StatusCode, body: serde_json::Value, status: &Status) -> Response {
    let mut response = (code, Json(body)).into_response();
    if let Some(wait) = status
        .get_error_details()
        .retry_info()
        .and_then(|r| r.retry_delay)
    {
        // Whole seconds, rounded up, as RFC 9110 writes them.
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
            response.headers_mut().insert(http::header::RETRY_AFTER, v);
        }
    }
    response
}

/// Every annotated method over HTTP/JSON: authenticate, match the route, admit (rate and
/// policy), build the request message, call the service within the deadline, answer in proto3
/// JSON.
async fn transcoded(
    State(port): State<Port>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    extensions: http::Extensions,
    body: axum::body::Body,
) -> Response {
    let header = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let client = port.edge.client(&headers, &extensions);
    // A bad token is answered before the route: an unauthenticated caller learns nothing of
    // the API's shape.
    if let Err(s) = port.edge.authenticate(uri.path(), header, &client) {
        return error(&s);
    }
    let (route, vars) = match port.routes.find(&method, uri.path()) {
        Ok(found) => found,
        Err(true) => {
            let allowed: Vec<String> = port
                .routes
                .methods_at(uri.path())
                .into_iter()
                .map(|m| m.to_string())
                .collect();
            let mut r = error_with(
                StatusCode::METHOD_NOT_ALLOWED,
                &Status::unimplemented(format!(
                    "{} {} is not a method of this route; it answers {}",
                    method,
                    uri.path(),
                    allowed.join(", ")
                )),
            );
            if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
                r.headers_mut().insert(http::header::ALLOW, v);
            }
            return r;
        }
        Err(false) => {
            return error(&Status::not_found(format!(
                "no route for {method} {}",
                uri.path()
            )));
        }
    };
    let timeout = match port
        .edge
        .admit(&route.grpc_path, header, &client)
        .and_then(|_| port.edge.timeout(&headers))
    {
        Ok(t) => t,
        Err(s) => return error(&s),
    };
    if route.client_streaming {
        let Some(channel) = port.upstreams.get(route.service.as_str()).cloned() else {
            return error(&Status::unavailable(format!(
                "{} is not behind this gateway",
                route.service
            )));
        };
        let upload = transcode::call_streaming(
            channel,
            route,
            &vars,
            uri.query(),
            &headers,
            body.into_data_stream(),
            timeout,
        );
        return match tokio::time::timeout(timeout, upload).await {
            Ok(Ok(json)) => (StatusCode::OK, Json(json)).into_response(),
            Ok(Err(s)) => error(&s),
            Err(_) => error(&deadline_exceeded(&route.service, timeout)),
        };
    }
    // A JSON body is read whole, up to MAX_BODY_BYTES, within gateway.http_body_timeout_ms.
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(e) => {
            return crate::http_limits::unread_body(
                &e,
                MAX_BODY_BYTES,
                port.edge.http_body_timeout,
            );
        }
    };
    let message = match transcode::request_message(route, &vars, uri.query(), &body) {
        Ok(m) => m,
        Err(s) => return error(&s),
    };
    let started = std::time::Instant::now();
    let answer = if route.service == qaward_proto::GATEWAY_SERVICE_NAME {
        let call = transcode::call(port.views.clone(), route, message, &headers, timeout);
        tokio::time::timeout(timeout, call).await
    } else {
        let Some(channel) = port.upstreams.get(route.service.as_str()).cloned() else {
            return error(&Status::unavailable(format!(
                "{} is not behind this gateway",
                route.service
            )));
        };
        let call = transcode::call(channel, route, message, &headers, timeout);
        tokio::time::timeout(timeout, call).await
    };
    match answer {
        Ok(Ok(json)) => (StatusCode::OK, Json(json)).into_response(),
        Ok(Err(s)) if started.elapsed() < timeout => error(&s),
        Ok(Err(_)) | Err(_) => error(&deadline_exceeded(&route.service, timeout)),
    }
}

/// Around every HTTP exchange: the request id (the caller's `x-request-id` when it is a valid
/// one, else a new one) put on the request for the services, on the span of every log line,
/// and on the response. (tower-http's request-id layers set an id only when none is sent and
/// do not check the one sent; ours must be 1-64 safe characters before it reaches a log.)
async fn request_id(mut request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let id = qaward_kit::telemetry::request_id(request.headers());
    let id_value = HeaderValue::from_str(&id).ok();
    if let Some(v) = &id_value {
        request
            .headers_mut()
            .insert(qaward_kit::telemetry::REQUEST_ID_HEADER, v.clone());
    }
    let span = tracing::info_span!(
        "http",
        otel.kind = "server",
        http.request.method = %request.method(),
        url.path = %request.uri().path(),
        request_id = %id,
        qaward.service = "gateway",
    );
    let mut response = next.run(request).instrument(span).await;
    if let Some(v) = id_value {
        response
            .headers_mut()
            .insert(qaward_kit::telemetry::REQUEST_ID_HEADER, v);
    }
    response
}

/// CORS for the configured origins (tower-http): an allowed origin gets its own origin back
/// (never `*`), the methods, the headers a platform page sends, and `x-request-id` and
/// `Retry-After` exposed; preflights are answered here and never reach a service; any other
/// origin gets no CORS headers, and the browser refuses the call itself.
fn cors(origins: &[String]) -> tower_http::cors::CorsLayer {
    use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    let header = |name: &'static str| http::HeaderName::from_static(name);
    tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::AllowOrigin::list(origins))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::PUT,
            Method::DELETE,
        ])
        .allow_headers([
            AUTHORIZATION,
            CONTENT_TYPE,
            header("x-request-id"),
            header("grpc-timeout"),
            header("traceparent"),
            header("tracestate"),
        ])
        .expose_headers([header("x-request-id"), RETRY_AFTER])
        .max_age(Duration::from_secs(600))
}
