//! Logs, traces and metrics. `tracing` everywhere; readable or JSON logs; OpenTelemetry OTLP
//! export of traces and metrics when an endpoint is configured (or `OTEL_EXPORTER_OTLP_ENDPOINT`
//! is set); W3C trace context extracted from every incoming gRPC request ([`TraceLayer`]) and
//! injected into every outgoing one ([`TracePropagation`]).

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use opentelemetry::{
    global,
    propagation::{Extractor, Injector},
    trace::TracerProvider as _,
};
use opentelemetry_sdk::{
    Resource, metrics::SdkMeterProvider, propagation::TraceContextPropagator,
    trace::SdkTracerProvider,
};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

use crate::config::{LogFormat, Telemetry};

/// Whether this process's spans leave it (an OTLP endpoint is configured and the subscriber
/// with the OpenTelemetry layer is installed). When they do not, a call's span is only its log
/// context — no OpenTelemetry span is made, no metric attributes allocated — and the caller's
/// W3C trace context travels on as it came (issue 26, item 2: the per-request stack pays for
/// what it exports).
static EXPORTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether spans and metrics leave this process ([`EXPORTING`]).
pub fn exporting() -> bool {
    EXPORTING.load(std::sync::atomic::Ordering::Relaxed)
}

/// The trace context to pass on: the current span's when spans are exported, else the
/// caller's as it came ([`TraceService`] attaches it to the call).
fn current_context() -> opentelemetry::Context {
    if exporting() {
        tracing::Span::current().context()
    } else {
        opentelemetry::Context::current()
    }
}

/// Keeps the exporters alive; flushes and shuts them down when dropped.
pub struct TelemetryGuard {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(t) = self.tracer.take() {
            let _ = t.shutdown();
        }
        if let Some(m) = self.meter.take() {
            let _ = m.shutdown();
        }
    }
}

/// The OTLP endpoint in force: the configuration's, else the standard variable's.
pub fn otlp_endpoint(cfg: &Telemetry) -> Option<String> {
    cfg.otlp_endpoint
        .clone()
        .filter(|e| !e.is_empty())
        .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok())
        .filter(|e| !e.is_empty())
}

/// Installs the process-wide subscriber. Spans always carry W3C trace ids (so context crosses
/// every hop and logs can be joined to traces); they leave the process only when an OTLP
/// endpoint is configured. Calling it twice is harmless (the second call changes nothing).
pub fn init(cfg: &Telemetry, service_name: &str) -> anyhow::Result<TelemetryGuard> {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let resource = Resource::builder()
        .with_service_name(service_name.to_string())
        .build();
    let endpoint = otlp_endpoint(cfg);

    let mut tracer_builder = SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_sampler(crate::hops::ServiceSampler);
    let mut meter = None;
    if let Some(endpoint) = &endpoint {
        use opentelemetry_otlp::WithExportConfig;
        // Each service's spans under its own service name (crate::hops), one exporter each.
        let by_service = crate::hops::ByService::try_new(|| {
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .build()
                .map(|e| opentelemetry_sdk::trace::BatchSpanProcessor::builder(e).build())
        })?;
        tracer_builder = tracer_builder.with_span_processor(by_service);
        let metrics = opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .build()?;
        let provider = SdkMeterProvider::builder()
            .with_resource(resource)
            .with_periodic_exporter(metrics)
            .build();
        global::set_meter_provider(provider.clone());
        meter = Some(provider);
    }
    let tracer_provider = tracer_builder.build();
    let tracer = tracer_provider.tracer("qaward");
    global::set_tracer_provider(tracer_provider.clone());

    // The log filter governs what is printed; spans for traces are kept at INFO and above
    // whatever the log level, so quieter logs never break a trace.
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.log_filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = match cfg.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
    };
    let metrics_layer = meter.clone().map(tracing_opentelemetry::MetricsLayer::new);
    // Database work as spans, only when traces leave the process (it turns sqlx's per-query
    // events on).
    let db_spans = endpoint.as_ref().map(|_| {
        DbSpans {
            tracer: tracer.clone(),
        }
        .with_filter(
            tracing_subscriber::filter::Targets::new()
                .with_target("sqlx::query", tracing::Level::DEBUG),
        )
    });
    // Spans become OpenTelemetry spans only when they are exported.
    let otel = endpoint.as_ref().map(|_| {
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
    });
    let installed = tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .with(metrics_layer)
        .with(db_spans)
        .try_init()
        .is_ok();
    if installed {
        EXPORTING.store(endpoint.is_some(), std::sync::atomic::Ordering::Relaxed);
    }
    if let Some(endpoint) = endpoint {
        tracing::info!(%endpoint, "exporting traces and metrics over OTLP");
    }
    Ok(TelemetryGuard {
        tracer: Some(tracer_provider),
        meter,
    })
}

/// Every SQL statement sqlx runs, as a span `db.query` under the span of the call that ran it,
/// with the statement's summary, its rows and its real start and end. sqlx reports a statement
/// once it has finished (an event with its elapsed time); the span is made from that report.
struct DbSpans {
    tracer: opentelemetry_sdk::trace::Tracer,
}

#[derive(Default)]
struct QueryReport {
    summary: String,
    elapsed_secs: f64,
    rows_affected: u64,
    rows_returned: u64,
}

impl tracing::field::Visit for QueryReport {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "summary" {
            self.summary = value.to_string();
        }
    }
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        if field.name() == "elapsed_secs" {
            self.elapsed_secs = value;
        }
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        match field.name() {
            "rows_affected" => self.rows_affected = value,
            "rows_returned" => self.rows_returned = value,
            _ => {}
        }
    }
    fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
}

impl<S> Layer<S> for DbSpans
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        use opentelemetry::trace::{Span as _, SpanKind, Tracer as _};
        let mut report = QueryReport::default();
        event.record(&mut report);
        let end = std::time::SystemTime::now();
        let start = end
            .checked_sub(std::time::Duration::from_secs_f64(
                report.elapsed_secs.max(0.0),
            ))
            .unwrap_or(end);
        let parent = tracing::Span::current().context();
        let mut span = self
            .tracer
            .span_builder("db.query")
            .with_kind(SpanKind::Client)
            .with_start_time(start)
            .with_attributes([
                opentelemetry::KeyValue::new("db.query.summary", report.summary),
                opentelemetry::KeyValue::new("db.rows_affected", report.rows_affected as i64),
                opentelemetry::KeyValue::new("db.rows_returned", report.rows_returned as i64),
            ])
            .start_with_context(&self.tracer, &parent);
        span.end_with_timestamp(end);
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            value.parse(),
        ) {
            self.0.insert(k, v);
        }
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            http::header::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(k, v);
        }
    }
}

/// Replaces the trace context in forwarded HTTP/2 headers with the current span's, so the
/// next service's span is a child of this hop's (the gateway's pass-through).
pub fn inject_headers(headers: &mut http::HeaderMap) {
    let cx = current_context();
    global::get_text_map_propagator(|p| p.inject_context(&cx, &mut HeaderInjector(headers)));
}

/// Writes the current span's trace context (`traceparent`, `tracestate`) into outgoing
/// metadata.
pub fn inject_context(metadata: &mut tonic::metadata::MetadataMap) {
    let cx = current_context();
    global::get_text_map_propagator(|p| p.inject_context(&cx, &mut MetadataInjector(metadata)));
}

/// A client interceptor that carries the caller's trace context to the next service.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracePropagation;

impl tonic::service::Interceptor for TracePropagation {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        inject_context(request.metadata_mut());
        Ok(request)
    }
}

/// The header that carries a request's id from the caller through every hop and back.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The request id of a call: the caller's `x-request-id` when it is 1-64 characters of
/// `[A-Za-z0-9._:-]`, else a new time-ordered UUID.
pub fn request_id(headers: &http::HeaderMap) -> String {
    callers_request_id(headers)
        .and_then(|v| v.to_str().ok().map(str::to_string))
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// The caller's `x-request-id` when it is a valid one ([`request_id`]), as it came (a shared
/// copy of the header's bytes).
fn callers_request_id(headers: &http::HeaderMap) -> Option<&http::HeaderValue> {
    headers.get(REQUEST_ID_HEADER).filter(|v| {
        (1..=64).contains(&v.len())
            && v.as_bytes()
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(b))
    })
}

/// A tower layer that opens a server span per gRPC request (with its request id), child of the caller's W3C trace
/// context when the request carries one, and records the OpenTelemetry metric
/// `rpc.server.duration` (milliseconds, by service, method and status code).
#[derive(Debug, Clone)]
pub struct TraceLayer {
    duration: opentelemetry::metrics::Histogram<f64>,
    /// The service whose server this is.
    service: String,
}

impl TraceLayer {
    /// The layer of `service`'s server (`gateway`, `reviewers`, …): its spans, and every span
    /// below them, are exported under that service's name (crate::hops). Takes its instrument
    /// from the global meter provider: build it after [`init`].
    pub fn for_service(service: &str) -> Self {
        let duration = global::meter("qaward")
            .f64_histogram("rpc.server.duration")
            .with_unit("ms")
            .with_description("Duration of inbound gRPC calls")
            .build();
        TraceLayer {
            duration,
            service: service.to_string(),
        }
    }
}

impl<S> tower::Layer<S> for TraceLayer {
    type Service = TraceService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        TraceService {
            inner,
            service: self.service.clone(),
            duration: self.duration.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TraceService<S> {
    inner: S,
    service: String,
    duration: opentelemetry::metrics::Histogram<f64>,
}

impl<S, B, R> tower::Service<http::Request<B>> for TraceService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The caller's request id, or a new one: passed on with the request (the gateway's
        // pass-through forwards it), recorded on the span, and returned in the response.
        let id_header = match callers_request_id(request.headers()) {
            Some(v) => Some(v.clone()),
            None => {
                let new = http::HeaderValue::from_str(&uuid::Uuid::now_v7().to_string()).ok();
                if let Some(v) = &new {
                    request.headers_mut().insert(REQUEST_ID_HEADER, v.clone());
                }
                new
            }
        };
        let request_id = id_header
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !exporting() {
            // Nothing leaves the process: the span is the call's log context (its request id
            // and method), and the caller's trace context, when it sent one, is attached to the
            // call as it came, for the next hop.
            let parent = request.headers().contains_key("traceparent").then(|| {
                global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(request.headers())))
            });
            let span = tracing::info_span!(
                "grpc",
                rpc = %request.uri().path(),
                request_id = %request_id,
            );
            let future = self.inner.call(request);
            let call = async move {
                let mut response = future.await;
                if let (Ok(r), Some(v)) = (&mut response, id_header) {
                    r.headers_mut().insert(REQUEST_ID_HEADER, v);
                }
                response
            }
            .instrument(span);
            return match parent {
                Some(cx) => Box::pin(opentelemetry::context::FutureExt::with_context(call, cx)),
                None => Box::pin(call),
            };
        }
        let parent =
            global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(request.headers())));
        let path = request.uri().path().trim_start_matches('/');
        let (service, method) = path.split_once('/').unwrap_or((path, ""));
        let span = tracing::info_span!(
            "grpc",
            otel.name = %path,
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
            request_id = %request_id,
            qaward.service = %self.service,
        );
        let _ = span.set_parent(parent);
        let attributes = [
            opentelemetry::KeyValue::new("rpc.system", "grpc"),
            opentelemetry::KeyValue::new("rpc.service", service.to_string()),
            opentelemetry::KeyValue::new("rpc.method", method.to_string()),
        ];
        let duration = self.duration.clone();
        let started = std::time::Instant::now();
        let future = self.inner.call(request);
        Box::pin(
            async move {
                let mut response = future.await;
                if let (Ok(r), Some(v)) = (&mut response, id_header) {
                    r.headers_mut().insert(REQUEST_ID_HEADER, v);
                }
                // Errors travel in a trailers-only response, so their code is a header; a
                // response without one carries its code in the trailers, normally OK.
                let code = match &response {
                    Ok(r) => r
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("0")
                        .to_string(),
                    Err(_) => "2".to_string(),
                };
                tracing::Span::current().record("rpc.grpc.status_code", code.as_str());
                let mut attrs = attributes.to_vec();
                attrs.push(opentelemetry::KeyValue::new("rpc.grpc.status_code", code));
                duration.record(started.elapsed().as_secs_f64() * 1000.0, &attrs);
                response
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    /// With nothing exported (no OTLP endpoint: the default), a call makes no OpenTelemetry
    /// span, yet the caller's trace context still reaches the next hop unchanged, and the
    /// request id still comes back.
    #[tokio::test]
    async fn without_an_exporter_the_callers_trace_context_travels_on_as_it_came() {
        global::set_text_map_propagator(TraceContextPropagator::new());
        assert!(!exporting());
        let next_hop = tower::service_fn(|_: http::Request<()>| async {
            let mut outgoing = tonic::metadata::MetadataMap::new();
            inject_context(&mut outgoing);
            let sent = outgoing
                .get("traceparent")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            Ok::<_, std::convert::Infallible>(
                http::Response::builder()
                    .header("sent-traceparent", sent)
                    .body(())
                    .unwrap(),
            )
        });
        let service = tower::Layer::layer(&TraceLayer::for_service("test"), next_hop);
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let request = http::Request::builder()
            .uri("/qaward.test.v1.Test/Get")
            .header("traceparent", traceparent)
            .header(REQUEST_ID_HEADER, "req-1")
            .body(())
            .unwrap();
        let response = service.clone().oneshot(request).await.unwrap();
        assert_eq!(response.headers()["sent-traceparent"], traceparent);
        assert_eq!(response.headers()[REQUEST_ID_HEADER], "req-1");
        // A call without one starts none, and gets a request id.
        let request = http::Request::builder()
            .uri("/qaward.test.v1.Test/Get")
            .body(())
            .unwrap();
        let response = service.oneshot(request).await.unwrap();
        assert_eq!(response.headers()["sent-traceparent"], "");
        assert!(!response.headers()[REQUEST_ID_HEADER].is_empty());
    }
}
