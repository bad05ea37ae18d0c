//! Which qaward service each span belongs to, so a trace viewer tells the hops apart in one
//! process as when the services run apart: every span is exported under the resource of its
//! service (`service.name` = `qaward-gateway`, `qaward-reviewers`, …; `service.namespace` =
//! `qaward`).
//!
//! A server span names its service in the attribute `qaward.service` ([`crate::telemetry::TraceLayer`]).
//! [`ServiceSampler`] carries that name in the span's W3C trace state (`qaward=<service>`),
//! which every span below it inherits — handler spans, SQL spans — and which stops at the
//! next server span (the next hop names itself). [`ByService`] sends each finished span to a
//! batch exporter whose resource names that service; spans of no service (start-up, background
//! work outside a call) go under the process's own name.

use std::collections::HashMap;

use opentelemetry::{
    Context, KeyValue,
    trace::{Link, SpanKind, TraceContextExt, TraceId},
};
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    trace::{
        BatchSpanProcessor, SamplingDecision, SamplingResult, ShouldSample, Span, SpanData,
        SpanProcessor,
    },
};

/// The attribute a server span names its service with.
pub const SERVICE_ATTRIBUTE: &str = "qaward.service";

/// The trace-state key that carries it to the spans below.
const TRACE_STATE_KEY: &str = "qaward";

/// The services a process may run, whose spans get resources of their own.
pub const SERVICES: [&str; 5] = [
    "gateway",
    "applications",
    "reviewers",
    "scoring",
    "notifications",
];

/// The resource `service.name` of a service's spans.
pub fn service_name(service: &str) -> String {
    format!("qaward-{service}")
}

/// Parent-based sampling that records each span's service in its trace state: the span's own
/// `qaward.service` when it is a server span, else its parent's.
#[derive(Debug, Clone)]
pub struct ServiceSampler;

impl ShouldSample for ServiceSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        _trace_id: TraceId,
        _name: &str,
        _span_kind: &SpanKind,
        attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        let parent = parent_context
            .filter(|cx| cx.has_active_span())
            .map(|cx| cx.span().span_context().clone());
        let decision = match &parent {
            Some(p) if p.is_valid() && !p.is_sampled() => SamplingDecision::Drop,
            _ => SamplingDecision::RecordAndSample,
        };
        let inherited = parent
            .as_ref()
            .map(|p| p.trace_state().clone())
            .unwrap_or_default();
        let own = attributes
            .iter()
            .find(|a| a.key.as_str() == SERVICE_ATTRIBUTE)
            .map(|a| a.value.as_str().to_string());
        let trace_state = match own {
            Some(service) => inherited
                .insert(TRACE_STATE_KEY, service)
                .unwrap_or(inherited),
            None => inherited,
        };
        SamplingResult {
            decision,
            attributes: Vec::new(),
            trace_state,
        }
    }
}

/// The service a finished span belongs to, from its trace state.
pub fn service_of(span: &SpanData) -> Option<String> {
    span.span_context
        .trace_state()
        .get(TRACE_STATE_KEY)
        .map(str::to_string)
}

/// A batch processor per service, each exporting under its service's resource; one more for
/// spans of no service.
#[derive(Debug)]
pub struct ByService {
    services: HashMap<&'static str, BatchSpanProcessor>,
    rest: BatchSpanProcessor,
}

impl ByService {
    /// `make` builds one batch processor (with its own exporter) per service and one for the
    /// rest.
    pub fn try_new<E>(
        mut make: impl FnMut() -> Result<BatchSpanProcessor, E>,
    ) -> Result<ByService, E> {
        let mut services = HashMap::new();
        for s in SERVICES {
            services.insert(s, make()?);
        }
        Ok(ByService {
            services,
            rest: make()?,
        })
    }

    fn processors(&self) -> impl Iterator<Item = &BatchSpanProcessor> {
        self.services.values().chain(std::iter::once(&self.rest))
    }
}

impl SpanProcessor for ByService {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        let target = service_of(&span)
            .and_then(|s| self.services.get(s.as_str()))
            .unwrap_or(&self.rest);
        target.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        // Every processor, even after one fails; the first failure is the answer.
        let all: Vec<OTelSdkResult> = self.processors().map(|p| p.force_flush()).collect();
        all.into_iter().collect()
    }

    fn shutdown_with_timeout(&self, timeout: std::time::Duration) -> OTelSdkResult {
        let all: Vec<OTelSdkResult> = self
            .processors()
            .map(|p| p.shutdown_with_timeout(timeout))
            .collect();
        all.into_iter().collect()
    }

    /// The provider's resource, with each service's own name (and the namespace).
    fn set_resource(&mut self, resource: &Resource) {
        let with_name = |name: String| {
            Resource::builder_empty()
                .with_attributes(
                    resource
                        .iter()
                        .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
                )
                .with_attributes([
                    KeyValue::new("service.name", name),
                    KeyValue::new("service.namespace", "qaward"),
                ])
                .build()
        };
        for (service, p) in self.services.iter_mut() {
            p.set_resource(&with_name(service_name(service)));
        }
        let own = resource
            .get(&opentelemetry::Key::from_static_str("service.name"))
            .map(|v| v.to_string())
            .unwrap_or_else(|| "qaward".to_string());
        self.rest.set_resource(&with_name(own));
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceState};

    use super::*;

    fn parent(state: TraceState, sampled: bool) -> Context {
        Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from(7u128),
            SpanId::from(9u64),
            if sampled {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            },
            true,
            state,
        ))
    }

    fn sample(parent: Option<&Context>, service: Option<&str>) -> SamplingResult {
        let attributes: Vec<KeyValue> = service
            .map(|s| KeyValue::new(SERVICE_ATTRIBUTE, s.to_string()))
            .into_iter()
            .collect();
        ServiceSampler.should_sample(
            parent,
            TraceId::from(7u128),
            "x",
            &SpanKind::Internal,
            &attributes,
            &[],
        )
    }

    #[test]
    fn a_server_span_names_its_service_and_the_spans_below_inherit_it() {
        // A server span of the gateway, with no parent.
        let gateway = sample(None, Some("gateway"));
        assert_eq!(gateway.decision, SamplingDecision::RecordAndSample);
        assert_eq!(gateway.trace_state.get("qaward"), Some("gateway"));
        // A span below it inherits the gateway.
        let below = sample(Some(&parent(gateway.trace_state.clone(), true)), None);
        assert_eq!(below.trace_state.get("qaward"), Some("gateway"));
        // The next hop's server span, whose remote parent is the gateway's, names itself.
        let service = sample(Some(&parent(gateway.trace_state, true)), Some("reviewers"));
        assert_eq!(service.trace_state.get("qaward"), Some("reviewers"));
        // A caller's own trace state is kept beside ours, and a parent that was not sampled is
        // not either.
        let theirs = TraceState::from_key_value([("vendor", "x")]).unwrap();
        let kept = sample(Some(&parent(theirs, true)), Some("scoring"));
        assert_eq!(kept.trace_state.get("vendor"), Some("x"));
        assert_eq!(kept.trace_state.get("qaward"), Some("scoring"));
        let dropped = sample(Some(&parent(TraceState::default(), false)), None);
        assert_eq!(dropped.decision, SamplingDecision::Drop);
    }
}
