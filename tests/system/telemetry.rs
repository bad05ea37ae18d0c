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
    /// The `service.name` of the resource each span came under, by span id.
    service_of: Arc<Mutex<std::collections::HashMap<Vec<u8>, String>>>,
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
            let mut name = String::new();
            if let Some(resource) = &rs.resource {
                for a in &resource.attributes {
                    if a.key == "service.name" {
                        self.services.lock().unwrap().push(format!("{:?}", a.value));
                        if let Some(
                            opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                                v,
                            ),
                        ) = a.value.as_ref().and_then(|v| v.value.clone())
                        {
                            name = v;
                        }
                    }
                }
            }
            for ss in rs.scope_spans {
                for span in &ss.spans {
                    self.service_of
                        .lock()
                        .unwrap()
                        .insert(span.span_id.clone(), name.clone());
                }
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
    // Each hop under its own service's name, in one process as apart (issue 20): a trace
    // viewer tells the gateway from the service it called.
    let named = collector.service_of.lock().unwrap().clone();
    assert_eq!(named[&gateway.span_id], "qaward-gateway", "{named:?}");
    assert_eq!(named[&service.span_id], "qaward-reviewers", "{named:?}");
    // Everything below the service's span (its handler, its SQL) is the service's too.
    for span in ours.iter().filter(|s| s.parent_span_id == service.span_id) {
        assert_eq!(named[&span.span_id], "qaward-reviewers", "{}", span.name);
    }
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

/// Starts qaward exporting to a collector of the test's own.
async fn with_collector() -> (Collector, Qaward) {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .add_service(MetricsServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let q = Qaward::start(
        &[],
        &[("QAWARD_TELEMETRY__OTLP_ENDPOINT", endpoint.as_str())],
    )
    .await;
    (collector, q)
}

/// One applicant taken to ACCEPTED and a materials group prepared for it, through the
/// gateway; returns the group's name.
async fn a_prepared_group(q: &Qaward, channel: tonic::transport::Channel) -> String {
    use qaward_proto::qaward::{applications::v1 as pb, reviewers::v1 as rpb};
    let office = q.token_for("office", "office-1", &["--programme", "yunyang"]);
    let code = qaward_kit::cn::with_check("91500235MA5U7XXX0").unwrap();
    let enterprise = q.token_for("enterprise", "ent-1", &["--org", &code]);
    let unit = q.token_for("recommending_unit", "unit-1", &["--org", "qinglong-street"]);
    let mut reviewers = ReviewerServiceClient::new(channel.clone());
    let mut apps = pb::application_service_client::ApplicationServiceClient::new(channel);
    let date = |y, m, d| {
        Some(qaward_proto::qaward::common::v1::Date {
            year: y,
            month: m,
            day: d,
        })
    };

    reviewers
        .create_programme(with_token(
            rpb::CreateProgrammeRequest {
                programme_id: "yunyang".into(),
                programme: Some(rpb::DrawTenant {
                    display_name: "云阳县县长质量奖".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &office,
        ))
        .await
        .unwrap();
    let mut csv = "姓名,手机号,身份证号,证书编号,证书有效期起,证书有效期止,专业,工作单位统一社会信用代码,组长资格,状态\n".to_string();
    for i in 0..8 {
        let leader = if i % 4 == 0 { "是" } else { "否" };
        csv.push_str(&format!(
            "评审员{i},139{i:08},11010519491231002X,CQ-{i:04},2024-01-01,2029-12-31,C34,,{leader},在册\n"
        ));
    }
    reviewers
        .import_reviewers(with_token(
            rpb::ImportReviewersRequest {
                format: rpb::ImportFormat::Csv as i32,
                encoding: rpb::TextEncoding::Utf8 as i32,
                content: csv.into_bytes(),
                request_id: String::new(),
            },
            &office,
        ))
        .await
        .unwrap();
    apps.create_programme(with_token(
        pb::CreateProgrammeRequest {
            programme_id: "yunyang".into(),
            programme: Some(pb::Programme {
                display_name: "云阳县县长质量奖".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        },
        &office,
    ))
    .await
    .unwrap();
    apps.create_cycle(with_token(
        pb::CreateCycleRequest {
            parent: "programmes/yunyang".into(),
            cycle: Some(pb::Cycle {
                year: 2027,
                notice_title: "关于开展2027年度云阳县县长质量奖评选工作的通知".into(),
                conditions: "在本县登记注册……".into(),
                required_materials: vec!["申报表".into()],
                deadline: Some(prost_types::Timestamp {
                    seconds: 1_814_346_000, // 2027-06-30 17:00 +08
                    nanos: 0,
                }),
                ..Default::default()
            }),
            request_id: String::new(),
        },
        &office,
    ))
    .await
    .unwrap();
    apps.create_enterprise(with_token(
        pb::CreateEnterpriseRequest {
            enterprise: Some(pb::Enterprise {
                display_name: "重庆云阳某某机械有限公司".into(),
                credit_code: code.clone(),
                established_date: date(2015, 5, 1),
                industry_code: "C34".into(),
                recommending_unit: "qinglong-street".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        },
        &office,
    ))
    .await
    .unwrap();
    let application = format!("programmes/yunyang/cycles/2027/applications/{code}");
    apps.create_application(with_token(
        pb::CreateApplicationRequest {
            parent: "programmes/yunyang/cycles/2027".into(),
            application: Some(pb::Application {
                enterprise: format!("enterprises/{code}"),
                application_form: "申报表".into(),
                organisation_profile: "企业概况……".into(),
                self_assessment: "卓越绩效自评报告".repeat(100),
                ..Default::default()
            }),
            request_id: String::new(),
        },
        &enterprise,
    ))
    .await
    .unwrap();
    let pdf = b"%PDF-1.7\n% evidence\n".to_vec();
    let parts = vec![
        pb::UploadEvidenceRequest {
            part: Some(pb::upload_evidence_request::Part::Header(
                pb::EvidenceHeader {
                    parent: application.clone(),
                    file_name: "质量手册.pdf".into(),
                    content_type: "application/pdf".into(),
                    size_bytes: pdf.len() as i64,
                    ..Default::default()
                },
            )),
            request_id: String::new(),
        },
        pb::UploadEvidenceRequest {
            part: Some(pb::upload_evidence_request::Part::Chunk(pdf)),
            request_id: String::new(),
        },
    ];
    apps.upload_evidence(with_token(tokio_stream::iter(parts), &enterprise))
        .await
        .unwrap();
    apps.submit_application(with_token(
        pb::SubmitApplicationRequest {
            name: application.clone(),
            request_id: String::new(),
        },
        &enterprise,
    ))
    .await
    .unwrap();
    apps.sign_recommendation(with_token(
        pb::SignRecommendationRequest {
            name: application.clone(),
            opinion: pb::Opinion::Support as i32,
            reasons: "同意推荐".into(),
            request_id: String::new(),
            attested: (1..=8).collect(),
        },
        &unit,
    ))
    .await
    .unwrap();
    // Art. 13(1): the county's environment and safety departments sign too (the default).
    for d in ["生态环境局", "应急管理局"] {
        let department = q.token_for("department", "dept-1", &["--org", d]);
        apps.sign_recommendation(with_token(
            pb::SignRecommendationRequest {
                name: application.clone(),
                opinion: pb::Opinion::Support as i32,
                reasons: "同意推荐".into(),
                request_id: String::new(),
                attested: Vec::new(),
            },
            &department,
        ))
        .await
        .unwrap();
    }
    apps.transition_application(with_token(
        pb::TransitionApplicationRequest {
            name: application.clone(),
            to_stage: pb::ApplicationStage::Accepted as i32,
            reason: "材料齐全".into(),
            request_id: String::new(),
        },
        &office,
    ))
    .await
    .unwrap();
    let group = apps
        .prepare_review_group(with_token(
            pb::PrepareReviewGroupRequest {
                parent: "programmes/yunyang/cycles/2027".into(),
                review_group: Some(pb::ReviewGroup {
                    stage: pb::ReviewStage::Materials as i32,
                    applications: vec![application],
                    window_start: date(2027, 7, 1),
                    window_end: date(2027, 7, 10),
                    entropy_source: "两枚骰子，监督人员在场投掷".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &office,
        ))
        .await
        .unwrap()
        .into_inner();
    // the office and the supervisor commit and reveal; the last reveal executes the draw.
    let supervisor = q.token_for("supervisor", "supervisor-1", &["--programme", "yunyang"]);
    let parties = [("office", &office), ("supervisor", &supervisor)];
    let secret =
        |party: &str| format!("{party:0>64}").replace(|c: char| !c.is_ascii_hexdigit(), "7");
    for (party, token) in parties {
        reviewers
            .commit_draw_entropy(with_token(
                rpb::CommitDrawEntropyRequest {
                    name: group.draw.clone(),
                    party: party.into(),
                    commitment: qaward_reviewers::domain::entropy::commitment(
                        &group.draw,
                        party,
                        &secret(party),
                    ),
                    request_id: String::new(),
                },
                token,
            ))
            .await
            .unwrap();
    }
    for (party, token) in parties {
        reviewers
            .reveal_draw_entropy(with_token(
                rpb::RevealDrawEntropyRequest {
                    name: group.draw.clone(),
                    party: party.into(),
                    secret: secret(party),
                    request_id: String::new(),
                },
                token,
            ))
            .await
            .unwrap();
    }
    group.name
}

#[tokio::test]
async fn a_panel_draw_through_the_gateway_is_one_trace_from_the_caller_to_the_database() {
    use qaward_proto::qaward::applications::v1 as pb;
    let (collector, q) = with_collector().await;
    let gateway = q.channel("gateway").await;
    let group = a_prepared_group(&q, gateway.clone()).await;

    // The office starts the group: the applications service reads the panel its parties'
    // last reveal drew from the reviewers service and makes the scoring assignments. The
    // caller's trace context rides along.
    let office = q.token_for("office", "office-1", &["--programme", "yunyang"]);
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let client_span = "b7ad6b7169203331";
    let mut request = with_token(
        pb::StartReviewGroupRequest {
            name: group,
            entropy: String::new(),
            request_id: String::new(),
        },
        &office,
    );
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{client_span}-01").parse().unwrap(),
    );
    let started = pb::application_service_client::ApplicationServiceClient::new(gateway.clone())
        .start_review_group(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(started.state, pb::ReviewGroupState::Started as i32);
    // The drawn reviewer's notice goes through the outbox and the notifications service: wait
    // for it in the inbox, so the delivery metrics have something to say.
    let member = started.members[0]
        .trim_start_matches("reviewers/")
        .to_string();
    let mut inbox = qaward_proto::qaward::notifications::v1::notification_service_client::NotificationServiceClient::new(gateway);
    let mut delivered = false;
    for _ in 0..100 {
        let listed = inbox
            .list_inbox_messages(with_token(
                qaward_proto::qaward::notifications::v1::ListInboxMessagesRequest {
                    parent: format!("inboxes/{member}"),
                    page_size: 10,
                    ..Default::default()
                },
                &office,
            ))
            .await
            .unwrap()
            .into_inner();
        if !listed.messages.is_empty() {
            delivered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(delivered, "the drawn reviewer's notice never arrived");
    assert_eq!(q.terminate().await, Some(0));

    // The metrics of deploy/README.md left the process too.
    let metrics = collector.metrics.lock().unwrap().clone();
    for name in [
        "rpc.server.duration",
        "outbox.lag",
        "outbox.handovers",
        "notifications.deliveries",
        "db.pool.connections",
        "db.pool.max",
    ] {
        assert!(
            metrics.iter().any(|m| m == name),
            "{name} not exported: {metrics:?}"
        );
    }

    let spans = collector.spans.lock().unwrap().clone();
    let ours: Vec<_> = spans
        .iter()
        .filter(|s| hex(&s.trace_id) == trace_id)
        .collect();
    let child_of = |parent: &[u8], name: &str| {
        ours.iter()
            .find(|s| s.parent_span_id == parent && s.name == name)
            .copied()
    };
    let names = || {
        ours.iter()
            .map(|s| format!("{} ({})", s.name, hex(&s.parent_span_id)))
            .collect::<Vec<_>>()
    };
    // caller → gateway
    let gateway = ours
        .iter()
        .find(|s| hex(&s.parent_span_id) == client_span)
        .unwrap_or_else(|| panic!("nothing is the child of the caller's span: {:?}", names()));
    assert_eq!(
        gateway.name,
        "qaward.applications.v1.ApplicationService/StartReviewGroup"
    );
    // gateway → applications
    let applications = child_of(
        &gateway.span_id,
        "qaward.applications.v1.ApplicationService/StartReviewGroup",
    )
    .unwrap_or_else(|| panic!("no applications span under the gateway's: {:?}", names()));
    // applications → reviewers: the executed draw read
    let draw = child_of(
        &applications.span_id,
        "qaward.reviewers.v1.ReviewerService/GetDraw",
    )
    .unwrap_or_else(|| {
        panic!(
            "no reviewers draw under the applications span: {:?}",
            names()
        )
    });
    // applications → scoring: the assignment made
    assert!(
        child_of(
            &applications.span_id,
            "qaward.scoring.v1.ScoringService/CreateAssignment"
        )
        .is_some(),
        "{:?}",
        names()
    );
    // and the database work of both, under their own spans
    for (owner, what) in [(applications, "applications"), (draw, "reviewers")] {
        let queries: Vec<_> = ours
            .iter()
            .filter(|s| s.parent_span_id == owner.span_id && s.name == "db.query")
            .collect();
        assert!(
            !queries.is_empty(),
            "no database span under {what}: {:?}",
            names()
        );
        let named = collector.service_of.lock().unwrap().clone();
        assert_eq!(named[&owner.span_id], format!("qaward-{what}"));
        for query in &queries {
            assert!(query.start_time_unix_nano >= owner.start_time_unix_nano);
            assert!(query.end_time_unix_nano <= owner.end_time_unix_nano + 1_000_000);
            // A query is its service's, exported under that service's name.
            assert_eq!(named[&query.span_id], format!("qaward-{what}"), "{what}");
        }
    }
    // Every span of the request is in this one trace.
    assert!(
        spans
            .iter()
            .filter(|s| s.name.contains("StartReviewGroup"))
            .all(|s| hex(&s.trace_id) == trace_id),
        "a span of the request left the caller's trace"
    );
}
