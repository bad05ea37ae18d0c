//! With an OTLP endpoint configured, traces and metrics leave the process, and the W3C trace
//! context crosses every hop: client → gateway → service form one trace, each span the child
//! of the one before.

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::{
    metrics::v1::{
        ExportMetricsServiceRequest, ExportMetricsServiceResponse,
        metrics_service_server::{MetricsService, MetricsServiceServer},
    },
    trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
};
use qaward_proto::qaward::reviewers::v1::{
    GetProgrammeRequest, reviewer_service_client::ReviewerServiceClient,
};

use crate::support::{Qaward, with_token};

#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<opentelemetry_proto::tonic::trace::v1::Span>>>,
    services: Arc<Mutex<Vec<String>>>,
    metrics: Arc<Mutex<Vec<String>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        for rs in request.into_inner().resource_spans {
            if let Some(resource) = &rs.resource {
                for a in &resource.attributes {
                    if a.key == "service.name" {
                        self.services.lock().unwrap().push(format!("{:?}", a.value));
                    }
                }
            }
            for ss in rs.scope_spans {
                self.spans.lock().unwrap().extend(ss.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        for rm in request.into_inner().resource_metrics {
            for sm in rm.scope_metrics {
                for m in sm.metrics {
                    self.metrics.lock().unwrap().push(m.name);
                }
            }
        }
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tokio::test]
async fn one_trace_crosses_gateway_and_service_and_is_exported_over_otlp() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .add_service(MetricsServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let q = Qaward::start(&[], &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())]).await;
    let token = q.token("office", "office-1");
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let mut request = with_token(
        GetProgrammeRequest {
            name: "programmes/yunyang".into(),
        },
        &token,
    );
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{client_span}-01").parse().unwrap(),
    );
    let mut client = ReviewerServiceClient::new(q.channel("gateway").await);
    let _ = client.get_programme(request).await;
    drop(client);
    // Shutdown flushes the exporters.
    assert_eq!(q.terminate().await, Some(0));

    let spans = collector.spans.lock().unwrap().clone();
    let ours: Vec<_> = spans
        .iter()
        .filter(|s| hex(&s.trace_id) == trace_id)
        .collect();
    let gateway = ours
        .iter()
        .find(|s| hex(&s.parent_span_id) == client_span)
        .unwrap_or_else(|| {
            panic!("no span is the child of the client's: {ours:#?}; all spans: {spans:#?}")
        });
    let service = ours
        .iter()
        .find(|s| s.parent_span_id == gateway.span_id)
        .unwrap_or_else(|| panic!("no span is the child of the gateway's: {ours:#?}"));
    assert_eq!(
        service.name,
        "qaward.reviewers.v1.ReviewerService/GetProgramme"
    );
    assert!(
        collector
            .services
            .lock()
            .unwrap()
            .iter()
            .any(|s| s.contains("qaward"))
    );
    assert!(
        collector
            .metrics
            .lock()
            .unwrap()
            .iter()
            .any(|m| m == "rpc.server.duration"),
        "metrics: {:?}",
        collector.metrics.lock().unwrap()
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
