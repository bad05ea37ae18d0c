//! The reviews orchestrated across the real services: the
//! applications service draws groups through the reviewers service, registers assignments with
//! scoring, takes scoring's decisions when the office releases a stage, and hands its notices
//! to the notifications service through the outbox. Several applicants go from the notice to
//! the final selection: one ineligible by region, one late, one at exactly 500, one failing
//! with its feedback report sent to its recommending unit, one disqualified at the site visit,
//! one in the final selection and one below its line.

use std::{sync::Arc, time::Duration};

use qaward::policy;

use qaward_kit::{
    auth::Role,
    clock::{ManualClock, SeededRandomness},
    config::Config,
    server::{ServiceContext, ServiceHost},
    testing::{self, TestDb, TestKeys},
};
use qaward_proto::qaward::{
    applications::v1 as pb,
    notifications::v1::{self as npb, notification_service_client::NotificationServiceClient},
    reviewers::v1::{self as rpb, reviewer_service_client::ReviewerServiceClient},
    scoring::v1::{self as spb, scoring_service_client::ScoringServiceClient},
};
use qaward_scoring::domain::rubric::Rubric;
use tonic::Code;

use super::{as_, code, date};

pub(super) const UNIT: &str = "qinglong-street";
pub(super) const CYCLE: &str = "programmes/yunyang/cycles/2026";

/// How the test's calls reach the services: directly, or through the gateway as the county
/// platform calls it, over gRPC or over HTTP/JSON (the generated clients over
/// `qaward_gateway::http_client::HttpJson`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Door {
    Direct,
    GatewayGrpc,
    GatewayHttp,
}

pub(super) use qaward_gateway::http_client::Transport;
use qaward_gateway::http_client::boxed as transport;

/// The backends of the service tests, each with direct calls; and SQLite again through each
/// of the gateway's doors (what the gateway does does not depend on the database).
pub(super) async fn every_door() -> Vec<(TestDb, Door)> {
    let mut all: Vec<(TestDb, Door)> =
        testing::backends("applications", &qaward_applications::MIGRATIONS)
            .await
            .into_iter()
            .map(|db| (db, Door::Direct))
            .collect();
    for door in [Door::GatewayGrpc, Door::GatewayHttp] {
        all.push((
            testing::sqlite("applications", &qaward_applications::MIGRATIONS).await,
            door,
        ));
    }
    all
}

pub(super) struct World {
    pub(super) label: &'static str,
    pub(super) apps: pb::application_service_client::ApplicationServiceClient<Transport>,
    pub(super) reviewers: ReviewerServiceClient<Transport>,
    pub(super) scoring: ScoringServiceClient<Transport>,
    pub(super) notifications: NotificationServiceClient<Transport>,
    pub(super) keys: TestKeys,
    pub(super) office: String,
    pub(super) clock: Arc<ManualClock>,
    /// The gateway's HTTP/JSON port, when the world is reached through it.
    pub(super) http: Option<std::net::SocketAddr>,
    /// Every service as a gateway reaches it: over loopback (`network`), and in process
    /// (`in_process`; its applications service reaches the others in process too), for the
    /// test that holds the two paths to the same answers.
    pub(super) paths: Paths,
    pub(super) _dirs: Vec<tempfile::TempDir>,
    pub(super) _dbs: Vec<TestDb>,
}

pub(super) type Upstreams = std::collections::HashMap<&'static str, qaward_kit::upstream::Upstream>;

pub(super) struct Paths {
    pub(super) network: Upstreams,
    pub(super) in_process: Upstreams,
    pub(super) ctx: ServiceContext,
}

async fn database(label: &str, service: &str, m: &qaward_kit::db::Migrations) -> TestDb {
    if label == "sqlite" {
        testing::sqlite(service, m).await
    } else {
        testing::postgres(service, m).await.expect("PostgreSQL")
    }
}

/// Every service on its own database and loopback port, sharing one clock and one key set,
/// called directly.
pub(super) async fn world(apps_db: TestDb) -> World {
    world_through(apps_db, Door::Direct).await
}

/// As [`world`], called through `door`.
pub(super) async fn world_through(apps_db: TestDb, door: Door) -> World {
    let backend = apps_db.label;
    let label = match (apps_db.label, door) {
        (l, Door::Direct) => l,
        (_, Door::GatewayGrpc) => "sqlite through the gateway over gRPC",
        (_, Door::GatewayHttp) => "sqlite through the gateway over HTTP/JSON",
    };
    let keys = TestKeys::new();
    let clock = Arc::new(ManualClock::new(super::NOW));
    let dir = tempfile::tempdir().unwrap();
    let ctx = ServiceContext {
        config: Arc::new(Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        }),
        verifier: keys.verifier.clone(),
        clock: clock.clone(),
        randomness: Arc::new(SeededRandomness::new(19)),
        audit: std::sync::Arc::new(qaward_kit::audit::AuditKey::ephemeral()),
        in_process: Default::default(),
        fields: std::sync::Arc::new(qaward_kit::fields::FieldKeys::ephemeral(
            qaward_kit::fields::Algorithm::Sm4Gcm,
        )),
    };
    let server = |name: &str| ServiceHost::new(name, &ctx.config.server, ctx.verifier.clone());

    // Each service is served on loopback and kept as its in-process stack: one host, two doors.
    let both = |mut host: ServiceHost| async move {
        let local = host.in_process().unwrap();
        (testing::serve_on_loopback(host).await, local)
    };
    let rdb = database(backend, "reviewers", &qaward_reviewers::MIGRATIONS).await;
    let (reviewers, reviewers_local) = both(server("reviewers").add_service(
        rpb::reviewer_service_server::ReviewerServiceServer::new(
            qaward_reviewers::ReviewersApi::new(rdb.db.clone(), ctx.clone()),
        ),
    ))
    .await;
    let sdb = database(backend, "scoring", &qaward_scoring::MIGRATIONS).await;
    qaward_scoring::seed_default_rubric(&sdb.db, super::NOW)
        .await
        .unwrap();
    let (scoring, scoring_local) = both(server("scoring").add_service(
        spb::scoring_service_server::ScoringServiceServer::new(qaward_scoring::ScoringApi::new(
            sdb.db.clone(),
            ctx.clone(),
        )),
    ))
    .await;
    let ndb = database(backend, "notifications", &qaward_notifications::MIGRATIONS).await;
    let napi = qaward_notifications::service(ndb.db.clone(), &ctx)
        .await
        .unwrap();
    let (notifications, notifications_local) = both(
        server("notifications")
            .add_service(npb::notification_service_server::NotificationServiceServer::new(napi)),
    )
    .await;
    let network = qaward_kit::upstream::network;
    let applications = |reviewers, scoring| {
        server("applications").add_service(
            pb::application_service_server::ApplicationServiceServer::new(
                qaward_applications::ApplicationsApi::with_upstreams(
                    apps_db.db.clone(),
                    ctx.clone(),
                    qaward_applications::blobs::BlobStore::from_config(&ctx.config).unwrap(),
                    reviewers,
                    scoring,
                ),
            ),
        )
    };
    // A second applications service over the same database, reaching the others in process.
    let apps_local = applications(reviewers_local.clone(), scoring_local.clone())
        .in_process()
        .unwrap();
    let apps = testing::serve_on_loopback(applications(
        network(reviewers.clone()),
        network(scoring.clone()),
    ))
    .await;
    let names = [
        "qaward.applications.v1.ApplicationService",
        "qaward.reviewers.v1.ReviewerService",
        "qaward.scoring.v1.ScoringService",
        "qaward.notifications.v1.NotificationService",
    ];
    let paths = Paths {
        network: names
            .into_iter()
            .zip([&apps, &reviewers, &scoring, &notifications].map(|c| network(c.clone())))
            .collect(),
        in_process: names
            .into_iter()
            .zip([
                apps_local,
                reviewers_local,
                scoring_local,
                notifications_local,
            ])
            .collect(),
        ctx: ctx.clone(),
    };
    // The outbox relays and the follower of the reviewers' events, as the services' `start`
    // runs them, with a service token.
    qaward_reviewers::relay_events(&rdb.db, &ctx);
    let service_token = keys.token("system:applications", Role::Service);
    qaward_applications::follow::spawn(
        &apps_db.db,
        &ctx,
        qaward_applications::follow::Upstreams {
            reviewers: network(reviewers.clone()),
            scoring: network(scoring.clone()),
            notifications: network(notifications.clone()),
        },
        Arc::new(move || service_token.clone()),
    );

    let office = keys.token_for("office-1", Role::Office, "yunyang");
    let mut http = None;
    let [apps, reviewers, scoring, notifications] = match door {
        Door::Direct => [apps, reviewers, scoring, notifications].map(transport),
        Door::GatewayGrpc | Door::GatewayHttp => {
            let channels = paths.network.clone();
            // The edge as configured, but no rate limit: the test is one fast office.
            let mut config = (*ctx.config).clone();
            config.gateway.rate_per_second = 0;
            let edge = Arc::new(qaward_gateway::Edge::new(
                &config,
                keys.verifier.clone(),
                policy(),
            ));
            let front = if door == Door::GatewayGrpc {
                let host = qaward_gateway::start(&ctx, channels, edge).unwrap();
                transport(testing::serve_on_loopback(host).await)
            } else {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                http = Some(addr);
                tokio::spawn(qaward_gateway::serve_http(
                    listener,
                    channels,
                    edge,
                    Default::default(),
                    std::future::pending(),
                ));
                transport(qaward_gateway::http_client::HttpJson::new(addr).unwrap())
            };
            [front.clone(), front.clone(), front.clone(), front]
        }
    };
    World {
        label,
        apps: pb::application_service_client::ApplicationServiceClient::new(apps),
        reviewers: ReviewerServiceClient::new(reviewers),
        scoring: ScoringServiceClient::new(scoring),
        notifications: NotificationServiceClient::new(notifications),
        keys,
        office,
        clock,
        http,
        paths,
        _dirs: vec![dir],
        _dbs: vec![apps_db, rdb, sdb, ndb],
    }
}

pub(super) fn rule_of(s: &tonic::Status) -> String {
    tonic_types::StatusExt::get_error_details(s)
        .error_info()
        .and_then(|i| i.metadata.get("rule").cloned())
        .unwrap_or_default()
}

pub(super) fn reason_of(s: &tonic::Status) -> String {
    tonic_types::StatusExt::get_error_details(s)
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

/// A GET over a bare TCP connection, as curl would send it: the status code and the raw rest.
async fn http_get(addr: std::net::SocketAddr, path: &str, token: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Accept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

pub(super) fn app(code: &str) -> String {
    format!("{CYCLE}/applications/{code}")
}

/// A registry of 20 reviewers of speciality C34 (the applicants' industry), every fourth
/// leader-qualified, certificates valid through 2028.
fn registry() -> Vec<u8> {
    let mut s = "姓名,手机号,身份证号,证书编号,证书有效期起,证书有效期止,专业,工作单位统一社会信用代码,组长资格,状态\n".to_string();
    for i in 0..20 {
        let leader = if i % 4 == 0 { "是" } else { "否" };
        s.push_str(&format!(
            "评审员{i},139{i:08},11010519491231002X,CQ-{i:04},2024-01-01,2028-12-31,C34,,{leader},在册\n"
        ));
    }
    s.into_bytes()
}

/// The municipal registry, shared by every programme. The programme's tenant in the reviewers
/// service is not made here: the applications service provisions it on the first draw.
pub(super) async fn set_up_registry(w: &mut World) {
    let report = w
        .reviewers
        .import_reviewers(as_(
            &w.office,
            rpb::ImportReviewersRequest {
                format: rpb::ImportFormat::Csv as i32,
                encoding: rpb::TextEncoding::Utf8 as i32,
                content: registry(),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.created, 20, "{:?}", report.rejected);
}

pub(super) async fn open_cycle(w: &mut World) {
    w.apps
        .create_programme(as_(
            &w.office,
            pb::CreateProgrammeRequest {
                programme: Some(pb::Programme {
                    display_name: "云阳县县长质量奖".into(),
                    ..Default::default()
                }),
                programme_id: "yunyang".into(),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
    w.apps
        .create_cycle(as_(
            &w.office,
            pb::CreateCycleRequest {
                parent: "programmes/yunyang".into(),
                cycle: Some(super::notice(2026)),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
}

/// An enterprise with a complete draft and one evidence file.
pub(super) async fn applicant(w: &mut World, code: &str, name: &str) -> String {
    w.apps
        .create_enterprise(as_(
            &w.office,
            pb::CreateEnterpriseRequest {
                enterprise: Some(pb::Enterprise {
                    display_name: name.into(),
                    credit_code: code.into(),
                    established_date: date(2015, 5, 1),
                    industry_code: "C34".into(),
                    recommending_unit: UNIT.into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
    let me = w.keys.token_for_org("e", Role::Enterprise, code);
    w.apps
        .create_application(as_(
            &me,
            pb::CreateApplicationRequest {
                parent: CYCLE.into(),
                application: Some(pb::Application {
                    enterprise: format!("enterprises/{code}"),
                    application_form: format!("申报表：{name}"),
                    organisation_profile: "企业概况……".into(),
                    self_assessment: "卓越绩效自评报告".repeat(100),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
    let pdf = b"%PDF-1.7\n% evidence\n".to_vec();
    let parts = vec![
        pb::UploadEvidenceRequest {
            part: Some(pb::upload_evidence_request::Part::Header(
                pb::EvidenceHeader {
                    parent: app(code),
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
    w.apps
        .upload_evidence(as_(&me, tokio_stream::iter(parts)))
        .await
        .unwrap();
    me
}

pub(super) async fn submit(
    w: &mut World,
    code: &str,
    me: &str,
) -> Result<pb::Application, tonic::Status> {
    w.apps
        .submit_application(as_(
            me,
            pb::SubmitApplicationRequest {
                name: app(code),
                request_id: String::new(),
            },
        ))
        .await
        .map(|r| r.into_inner())
}

/// Submitted, supported by its unit and by each department Art. 13(1) names (the programme's
/// `required_departments`), and accepted by the office.
pub(super) async fn accepted(w: &mut World, code: &str, me: &str) {
    submit(w, code, me).await.unwrap();
    let unit = w.keys.token_for_org("u", Role::RecommendingUnit, UNIT);
    w.apps
        .sign_recommendation(as_(
            &unit,
            pb::SignRecommendationRequest {
                name: app(code),
                opinion: pb::Opinion::Support as i32,
                reasons: "同意推荐".into(),
                request_id: String::new(),
                attested: super::all_conditions(),
            },
        ))
        .await
        .unwrap();
    let departments = w
        .apps
        .get_programme(as_(
            &w.office,
            pb::GetProgrammeRequest {
                name: "programmes/yunyang".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap_or_default()
        .required_departments;
    for d in departments {
        let t = w.keys.token_for_org("d", Role::Department, &d);
        w.apps
            .sign_recommendation(as_(
                &t,
                pb::SignRecommendationRequest {
                    name: app(code),
                    opinion: pb::Opinion::Support as i32,
                    reasons: "同意推荐".into(),
                    request_id: String::new(),
                    attested: Vec::new(),
                },
            ))
            .await
            .unwrap();
    }
    let a = w
        .apps
        .transition_application(as_(
            &w.office,
            pb::TransitionApplicationRequest {
                name: app(code),
                to_stage: pb::ApplicationStage::Accepted as i32,
                reason: "材料齐全".into(),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(a.stage, pb::ApplicationStage::Accepted as i32);
}

/// the office and the supervisor commit to secrets from `seed`, then reveal them; the
/// last reveal executes the draw, which is returned.
pub(super) async fn run_draw(w: &mut World, draw: &str, seed: &str) -> rpb::Draw {
    use sha2::Digest;
    let programme = draw.split('/').nth(1).unwrap_or_default().to_string();
    let supervisor = w
        .keys
        .token_for("supervisor-1", Role::Supervisor, &programme);
    let parties = [(w.office.clone(), "office"), (supervisor, "supervisor")];
    let secret = |party: &str| hex::encode(sha2::Sha256::digest(format!("{seed}/{party}")));
    for (token, party) in &parties {
        w.reviewers
            .commit_draw_entropy(as_(
                token,
                rpb::CommitDrawEntropyRequest {
                    name: draw.into(),
                    party: party.to_string(),
                    commitment: qaward_reviewers::domain::entropy::commitment(
                        draw,
                        party,
                        &secret(party),
                    ),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap();
    }
    let mut last = None;
    for (token, party) in &parties {
        last = w
            .reviewers
            .reveal_draw_entropy(as_(
                token,
                rpb::RevealDrawEntropyRequest {
                    name: draw.into(),
                    party: party.to_string(),
                    secret: secret(party),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .draw;
    }
    let drawn = last.expect("the draw");
    assert_eq!(
        drawn.state,
        rpb::DrawState::Executed as i32,
        "{}",
        drawn.failure
    );
    drawn
}

/// Prepares a group for `codes`, has its draw's parties commit and reveal, and starts it.
pub(super) async fn group(
    w: &mut World,
    stage: pb::ReviewStage,
    codes: &[&str],
    window: (i32, i32),
    entropy: &str,
) -> pb::ReviewGroup {
    let prepared = w
        .apps
        .prepare_review_group(as_(
            &w.office,
            pb::PrepareReviewGroupRequest {
                parent: CYCLE.into(),
                review_group: Some(pb::ReviewGroup {
                    stage: stage as i32,
                    applications: codes.iter().map(|c| app(c)).collect(),
                    window_start: date(2026, 7, window.0),
                    window_end: date(2026, 7, window.1),
                    entropy_source: "两枚骰子，监督人员在场投掷".into(),
                    advisors: advisors_for(stage),
                    ..Default::default()
                }),
                request_id: format!("prep-{entropy}"),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(prepared.state, pb::ReviewGroupState::Prepared as i32);
    assert!(prepared.draw.starts_with("programmes/yunyang/draws/"));
    // the office cannot start the group on an entropy of its own, nor before the draw's
    // parties have revealed: the start names what the draw waits for.
    for (entropy, code) in [
        ("3-5", Code::InvalidArgument),
        ("", Code::FailedPrecondition),
    ] {
        let e = w
            .apps
            .start_review_group(as_(
                &w.office,
                pb::StartReviewGroupRequest {
                    name: prepared.name.clone(),
                    entropy: entropy.into(),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), code, "{}: {e:?}", w.label);
        if code == Code::FailedPrecondition {
            assert!(
                e.message().contains("commitments from office, supervisor"),
                "{e:?}"
            );
        }
    }
    run_draw(w, &prepared.draw, entropy).await;
    let started = w
        .apps
        .start_review_group(as_(
            &w.office,
            pb::StartReviewGroupRequest {
                name: prepared.name.clone(),
                entropy: String::new(),
                request_id: format!("start-{entropy}"),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(started.state, pb::ReviewGroupState::Started as i32);
    assert_eq!(started.assignments.len(), codes.len());
    started
}

/// A group request without a commitment, for the refusals.
fn prepare(
    stage: pb::ReviewStage,
    applications: Vec<String>,
    window: (i32, i32),
) -> pb::PrepareReviewGroupRequest {
    pb::PrepareReviewGroupRequest {
        parent: CYCLE.into(),
        review_group: Some(pb::ReviewGroup {
            stage: stage as i32,
            applications,
            window_start: date(2026, 7, window.0),
            window_end: date(2026, 7, window.1),
            entropy_source: "骰子".into(),
            advisors: advisors_for(stage),
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

/// a defence panel invites one non-scoring advisor; other groups none.
pub(super) fn advisors_for(stage: pb::ReviewStage) -> Vec<String> {
    if stage == pb::ReviewStage::Defence {
        vec!["reviewers/ADVISOR-1".into()]
    } else {
        Vec::new()
    }
}

pub(super) fn items(percent: i32) -> Vec<spb::ItemScore> {
    Rubric::gbt_19580_2012()
        .items()
        .map(|i| spb::ItemScore {
            item_code: i.code.clone(),
            percent,
            strengths: "优势".into(),
            opportunities: "改进机会".into(),
            reason: String::new(),
        })
        .collect()
}

pub(super) fn reviewer_id(member: &str) -> &str {
    member.trim_start_matches("reviewers/")
}

/// Every member scores `percent` on every item alone, then the leader signs the same consensus.
pub(super) async fn consensus(w: &mut World, g: &pb::ReviewGroup, assignment: &str, percent: i32) {
    for m in &g.members {
        let t = w.keys.token(reviewer_id(m), Role::Reviewer);
        let s = w
            .scoring
            .save_sheet(as_(
                &t,
                spb::SaveSheetRequest {
                    sheet: Some(spb::Sheet {
                        assignment: assignment.into(),
                        kind: spb::SheetKind::Independent as i32,
                        items: items(percent),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        w.scoring
            .submit_sheet(as_(
                &t,
                spb::SubmitSheetRequest {
                    name: s.name,
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap();
    }
    let leader = w.keys.token(reviewer_id(&g.members[0]), Role::Reviewer);
    w.scoring
        .open_consensus(as_(
            &leader,
            spb::OpenConsensusRequest {
                assignment: assignment.into(),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
    w.scoring
        .sign_consensus(as_(
            &leader,
            spb::SignConsensusRequest {
                assignment: assignment.into(),
                items: items(percent),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
}

pub(super) fn assignment_of<'a>(g: &'a pb::ReviewGroup, code: &str) -> &'a str {
    let i = g.applications.iter().position(|a| a == &app(code)).unwrap();
    &g.assignments[i]
}

pub(super) async fn release(
    w: &mut World,
    stage: pb::ReviewStage,
) -> Result<pb::ReleaseReviewStageResponse, tonic::Status> {
    if stage == pb::ReviewStage::Site {
        leaders_meeting(w, Vec::new()).await;
    }
    w.apps
        .release_review_stage(as_(
            &w.office,
            pb::ReleaseReviewStageRequest {
                cycle: CYCLE.into(),
                stage: stage as i32,
                request_id: String::new(),
            },
        ))
        .await
        .map(|r| r.into_inner())
}

/// Art. 16(5)4: the group leaders' meeting before the site release, attended by every site
/// group's leader as scoring lists them, making `changes`; a second call finds it held.
pub(super) async fn leaders_meeting(
    w: &mut World,
    changes: Vec<spb::LeadersMeetingChange>,
) -> Option<spb::LeadersMeeting> {
    let listed = w
        .scoring
        .list_assignments(as_(
            &w.office,
            spb::ListAssignmentsRequest {
                cycle: CYCLE.into(),
                page_size: 100,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let mut leaders: Vec<String> = listed
        .assignments
        .iter()
        .filter(|a| a.stage == spb::Stage::Site as i32)
        .flat_map(|a| a.people.iter())
        .filter(|p| p.role == spb::AssignmentRole::Leader as i32)
        .map(|p| p.reviewer.clone())
        .collect();
    leaders.sort();
    leaders.dedup();
    let held = w
        .scoring
        .record_leaders_meeting(as_(
            &w.office,
            spb::RecordLeadersMeetingRequest {
                cycle: CYCLE.into(),
                meeting: Some(spb::LeadersMeeting {
                    attendees: leaders,
                    minutes: "各组长汇报现场评审情况，统一评审结果".into(),
                    changes,
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await;
    match held {
        Ok(m) => Some(m.into_inner()),
        // Held already, nothing to meet on, or released: the release call answers for itself.
        Err(e)
            if ["ALREADY_HELD", "NO_SITE_GROUPS", "STAGE_RELEASED"]
                .contains(&reason_of(&e).as_str()) =>
        {
            None
        }
        Err(e) => panic!("the leaders' meeting: {e:?}"),
    }
}

/// How many notifications of `event_type` the programme office's inbox (`office.yunyang`)
/// holds, as the office lists them.
pub(super) async fn office_told(w: &World, event_type: &str) -> usize {
    w.notifications
        .clone()
        .list_notifications(as_(
            &w.office,
            npb::ListNotificationsRequest {
                recipient_id: "office.yunyang".into(),
                page_size: 100,
                page_token: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .notifications
        .into_iter()
        .filter(|n| n.event_type == event_type)
        .count()
}

pub(super) async fn get(
    w: &mut World,
    token: &str,
    code: &str,
) -> Result<pb::Application, tonic::Status> {
    w.apps
        .get_application(as_(token, pb::GetApplicationRequest { name: app(code) }))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn r12_to_r16_several_applicants_from_the_notice_to_the_final_selection() {
    // Directly on both backends, and through the gateway over gRPC and over HTTP/JSON.
    for (db, door) in every_door().await {
        let mut w = world_through(db, door).await;
        let label = w.label;
        let office = w.office.clone();
        set_up_registry(&mut w).await;
        open_cycle(&mut w).await;

        let (c500, fails, fraud, strong) = (
            code("91500235MA5U7XX01"),
            code("91500235MA5U7XX02"),
            code("91500235MA5U7XX03"),
            code("91500235MA5U7XX04"),
        );
        let (other_county, late) = (code("91500101MA5U7XX05"), code("91500235MA5U7XX06"));
        let mut tokens = Vec::new();
        for (c, name) in [
            (&c500, "重庆云阳恰好机械有限公司"),
            (&fails, "重庆云阳未及食品有限公司"),
            (&fraud, "重庆云阳虚报建材有限公司"),
            (&strong, "重庆云阳卓越电子有限公司"),
        ] {
            let me = applicant(&mut w, c, name).await;
            accepted(&mut w, c, &me).await;
            tokens.push(me);
        }

        // an enterprise of another county is refused with the rule and its division.
        let me = applicant(&mut w, &other_county, "重庆万州外县机械有限公司").await;
        let e = submit(&mut w, &other_county, &me).await.unwrap_err();
        assert_eq!(
            (e.code(), rule_of(&e).as_str()),
            (Code::FailedPrecondition, "R-02"),
            "{label}: {e:?}"
        );
        // after the deadline a draft can no longer be submitted.
        let me = applicant(&mut w, &late, "重庆云阳迟到化工有限公司").await;
        w.clock.set(time::macros::datetime!(2026-07-01 01:00 UTC));
        let e = submit(&mut w, &late, &me).await.unwrap_err();
        assert_eq!(rule_of(&e), "R-01", "{label}: {e:?}");

        // CQ-0004 holds shares in one applicant: never drawn for the group reviewing it.
        w.reviewers
            .create_relation(as_(
                &w.office,
                rpb::CreateRelationRequest {
                    parent: "reviewers/CQ-0004".into(),
                    relation: Some(rpb::Relation {
                        enterprise_code: c500.clone(),
                        kind: rpb::RelationKind::Shareholding as i32,
                        start_date: date(2020, 1, 1),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap();

        // Bad input changes nothing: a group for a draft application, a window backwards, a
        // commitment of the office's own (R-53: the draw's parties commit at the draw).
        let mut own = prepare(pb::ReviewStage::Materials, vec![app(&late)], (6, 10));
        own.review_group.as_mut().unwrap().entropy_commitment = "ab".repeat(32);
        let e = w
            .apps
            .prepare_review_group(as_(&w.office, own))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{label}");
        assert!(
            e.message().contains("review_group.entropy_commitment"),
            "{e:?}"
        );
        let e = w
            .apps
            .prepare_review_group(as_(
                &w.office,
                prepare(pb::ReviewStage::Materials, vec![app(&late)], (10, 6)),
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{label}");
        let e = w
            .apps
            .prepare_review_group(as_(
                &w.office,
                prepare(pb::ReviewStage::Materials, vec![app(&late)], (6, 10)),
            ))
            .await
            .unwrap_err();
        assert_eq!(
            (e.code(), rule_of(&e).as_str()),
            (Code::FailedPrecondition, "R-12"),
            "{label}: a draft is not reviewed"
        );

        // The materials group: three reviewers, drawn with the applicants for recusal.
        let all = [
            c500.as_str(),
            fails.as_str(),
            fraud.as_str(),
            strong.as_str(),
        ];
        let materials = group(
            &mut w,
            pb::ReviewStage::Materials,
            &all,
            (6, 10),
            "materials-4711",
        )
        .await;
        assert_eq!(materials.members.len(), 3, "{label}");
        assert!(
            !materials.members.contains(&"reviewers/CQ-0004".to_string()),
            "{label}: R-41 recusal"
        );
        // One owner: the county created the award programme only; its first draw made the
        // programme's tenant in the reviewers service, named as the award, with the seed's
        // draw policy.
        let tenant = w
            .reviewers
            .get_programme(as_(
                &office,
                rpb::GetProgrammeRequest {
                    name: "programmes/yunyang".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(tenant.display_name, "云阳县县长质量奖", "{label}");
        let policy = tenant.policy.unwrap();
        assert_eq!(
            (
                policy.version,
                policy.materials_group_max,
                policy.defence_panel_min
            ),
            (1, 5, 5),
            "{label}"
        );
        for c in all {
            let a = get(&mut w, &office, c).await.unwrap();
            assert_eq!(
                a.stage,
                pb::ApplicationStage::MaterialsReview as i32,
                "{label}"
            );
        }
        // A second group cannot take an application already in one.
        let e = w
            .apps
            .prepare_review_group(as_(
                &w.office,
                prepare(pb::ReviewStage::Materials, vec![app(&c500)], (6, 10)),
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{label}");

        // a drawn reviewer reads the materials while the review runs; another does not.
        let member = w
            .keys
            .token(reviewer_id(&materials.members[1]), Role::Reviewer);
        get(&mut w, &member, &c500).await.unwrap();
        let outsider = w.keys.token("CQ-0004", Role::Reviewer);
        let e = get(&mut w, &outsider, &c500).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{label}");
        // The board shows what the materials review waits for, with the window's end.
        let board = w
            .apps
            .get_cycle_board(as_(
                &w.office,
                pb::GetCycleBoardRequest { name: CYCLE.into() },
            ))
            .await
            .unwrap()
            .into_inner();
        let row = board
            .rows
            .iter()
            .find(|r| r.application == app(&c500))
            .unwrap();
        assert_eq!(
            row.open_deadlines,
            ["资料评审组独立评分并形成共识：2026年7月10日前（R-12）"],
            "{label}"
        );

        // Consensus: exactly 500, 450, 700, 700. Releasing before every group signed is refused.
        consensus(&mut w, &materials, assignment_of(&materials, &c500), 50).await;
        let e = release(&mut w, pb::ReviewStage::Materials)
            .await
            .unwrap_err();
        assert_eq!(
            (rule_of(&e).as_str(), reason_of(&e).as_str()),
            ("R-12", "CONSENSUS_MISSING"),
            "{label}"
        );
        consensus(&mut w, &materials, assignment_of(&materials, &fails), 45).await;
        consensus(&mut w, &materials, assignment_of(&materials, &fraud), 70).await;
        consensus(&mut w, &materials, assignment_of(&materials, &strong), 70).await;
        // The office's board pictures the scores: the four materials scores, with the
        // 500 line; nobody has a composite yet.
        let board = w
            .apps
            .get_cycle_board(as_(
                &w.office,
                pb::GetCycleBoardRequest { name: CYCLE.into() },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(board.charts.len(), 2, "{label}");
        let materials_chart = &board.charts[0].svg;
        for drawn in [
            "class=\"distribution\" width=\"640.0\"",
            "data-count=\"4\"",
            "data-from=\"450\" data-to=\"500\" data-count=\"1\"",
            "data-from=\"500\" data-to=\"550\" data-count=\"1\"",
            "data-from=\"700\" data-to=\"750\" data-count=\"2\"",
            "class=\"threshold\" data-value=\"500\"",
        ] {
            assert!(
                materials_chart.contains(drawn),
                "{label}: {drawn} not in {materials_chart}"
            );
        }
        assert!(
            board.charts[1].svg.contains("data-value=\"400\""),
            "{label}"
        );
        let released = release(&mut w, pb::ReviewStage::Materials).await.unwrap();
        assert_eq!(released.applications.len(), 4, "{label}");
        let at_500 = get(&mut w, &office, &c500).await.unwrap();
        assert_eq!(
            at_500.stage,
            pb::ApplicationStage::MaterialsPassed as i32,
            "{label}: 500 is inclusive (R-13)"
        );
        let why = at_500.last_decision.unwrap();
        assert_eq!(
            (why.rule.as_str(), why.inputs["materials_score"].as_str()),
            ("R-13", "500")
        );
        let failed = get(&mut w, &office, &fails).await.unwrap();
        assert_eq!(
            failed.stage,
            pb::ApplicationStage::MaterialsFailed as i32,
            "{label}"
        );
        assert_eq!(
            failed.last_decision.unwrap().inputs["materials_score"],
            "450"
        );
        // The review is over for the materials group: no more reading.
        let e = get(&mut w, &member, &c500).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{label}");
        // the feedback report goes to the applicant and a copy to its recommending unit,
        // through the outbox to the notifications service.
        let mut copied = None;
        for _ in 0..200 {
            let listed = w
                .notifications
                .list_notifications(as_(
                    &w.office,
                    npb::ListNotificationsRequest {
                        recipient_id: UNIT.into(),
                        page_size: 100,
                        ..Default::default()
                    },
                ))
                .await
                .unwrap()
                .into_inner();
            copied = listed
                .notifications
                .into_iter()
                .find(|n| n.event_type == "materials_review.failed");
            if copied.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let copied = copied.unwrap_or_else(|| panic!("{label}: no feedback notice for the unit"));
        let ids: Vec<&str> = copied.recipients.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, [fails.as_str(), UNIT], "{label}");
        assert_eq!(copied.variables["materials_score"], "450");
        let report_url = &copied.variables["report_url"];
        assert_eq!(
            *report_url,
            format!("/v1/{}/feedbackReport", app(&fails)),
            "{label}"
        );
        if let Some(addr) = w.http {
            // The link in the notice answers over HTTP/JSON, for the applicant it was sent to
            // asked as a plain HTTP client would: it once named a report the routes
            // could not reach (404).
            let token = w.keys.token_for_org("e", Role::Enterprise, &fails);
            let (status, body) = http_get(addr, report_url, &token).await;
            assert_eq!(status, 200, "{label}: GET {report_url}: {body}");
            assert!(
                body.contains(&format!("\"{}/feedbackReport\"", app(&fails))),
                "{label}: {body}"
            );
        }

        // Defence panel (R-14: five) and site group for the three that passed.
        let passed = [c500.as_str(), fraud.as_str(), strong.as_str()];
        let defence = group(
            &mut w,
            pb::ReviewStage::Defence,
            &passed,
            (15, 16),
            "defence-0815",
        )
        .await;
        assert_eq!(defence.members.len(), 5, "{label}");
        // the advisor sits on the panel's scoring assignment, without scoring.
        let assigned = w
            .scoring
            .list_assignments(as_(
                &office,
                spb::ListAssignmentsRequest {
                    cycle: CYCLE.into(),
                    application: app(&c500),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let panel = assigned
            .assignments
            .iter()
            .find(|a| a.stage == spb::Stage::Defence as i32)
            .unwrap();
        let advisors: Vec<&str> = panel
            .people
            .iter()
            .filter(|p| p.role == spb::AssignmentRole::Advisor as i32)
            .map(|p| p.reviewer.as_str())
            .collect();
        assert_eq!(advisors, ["reviewers/ADVISOR-1"], "{label}");
        let mut no_advisor = prepare(
            pb::ReviewStage::Defence,
            passed.iter().map(|c| app(c)).collect(),
            (15, 16),
        );
        no_advisor.review_group.as_mut().unwrap().advisors.clear();
        let e = w
            .apps
            .prepare_review_group(as_(&office, no_advisor))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{label}: R-14 advisors");
        let e = group_for_failed(&mut w, &fails).await;
        assert_eq!(
            e.code(),
            Code::FailedPrecondition,
            "{label}: a failed applicant has no defence"
        );
        // Art. 16(5)1: a site visit lasts at most the programme's 2 days (issue 25, item 4).
        let e = w
            .apps
            .prepare_review_group(as_(
                &w.office,
                prepare(
                    pb::ReviewStage::Site,
                    passed.iter().map(|c| app(c)).collect(),
                    (20, 22),
                ),
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{label}");
        assert!(
            e.message().contains("review_group.window_end"),
            "{}",
            e.message()
        );
        let site = group(
            &mut w,
            pb::ReviewStage::Site,
            &passed,
            (20, 21),
            "site-2207",
        )
        .await;
        for c in passed {
            let a = get(&mut w, &office, c).await.unwrap();
            assert_eq!(a.stage, pb::ApplicationStage::SiteVisit as i32, "{label}");
        }

        // R-15, Art. 16(5)3: any reviewer of the site group stops a visit (before, only its
        // leader could), a reviewer outside it cannot; the office confirms; the applicant is
        // disqualified and barred.
        let outside = (0..10)
            .map(|i| format!("CQ-{i:04}"))
            .find(|id| !site.members.contains(&format!("reviewers/{id}")))
            .unwrap();
        let outsider = w.keys.token(&outside, Role::Reviewer);
        let stop = |token: &str| {
            as_(
                token,
                pb::StopSiteVisitRequest {
                    name: app(&fraud),
                    finding: "现场核查发现申报的顾客满意度数据系伪造".into(),
                    request_id: String::new(),
                },
            )
        };
        let e = w.apps.stop_site_visit(stop(&outsider)).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{label}");
        let member = w.keys.token(reviewer_id(&site.members[1]), Role::Reviewer);
        let stopped = w
            .apps
            .stop_site_visit(stop(&member))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(stopped.stage, pb::ApplicationStage::SiteVisit as i32);
        assert_eq!(stopped.last_decision.unwrap().rule, "R-15");
        let disqualify = |code: &str| {
            as_(
                &office,
                pb::TransitionApplicationRequest {
                    name: app(code),
                    to_stage: pb::ApplicationStage::Disqualified as i32,
                    reason: "经核实，确认弄虚作假".into(),
                    request_id: String::new(),
                },
            )
        };
        // Without a stopped visit there is nothing to confirm.
        let e = w
            .apps
            .transition_application(disqualify(&strong))
            .await
            .unwrap_err();
        assert_eq!(
            (rule_of(&e).as_str(), reason_of(&e).as_str()),
            ("R-15", "NO_FINDING"),
            "{label}"
        );
        let out = w
            .apps
            .transition_application(disqualify(&fraud))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            out.stage,
            pb::ApplicationStage::Disqualified as i32,
            "{label}"
        );
        let barred = w
            .apps
            .check_eligibility(as_(
                &w.office,
                pb::CheckEligibilityRequest {
                    enterprise: format!("enterprises/{fraud}"),
                    cycle: CYCLE.into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(!barred.eligible, "{label}");
        assert!(
            barred.reasons.iter().any(|r| r.rule == "R-04"),
            "{:?}",
            barred.reasons
        );

        // Art. 16(5)3: a member stops STRONG's visit; its site sheets are frozen until the
        // office decides; the office finds the stop unfounded and the visit resumes, on the
        // record, the sheets free again (issue 25, item 4).
        let member = w.keys.token(reviewer_id(&site.members[2]), Role::Reviewer);
        w.apps
            .stop_site_visit(as_(
                &member,
                pb::StopSiteVisitRequest {
                    name: app(&strong),
                    finding: "怀疑现场展示的检测记录为临时补做".into(),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap();
        let strong_site = assignment_of(&site, &strong).to_string();
        let held = |w: &World| {
            let (scoring, office, strong_app) = (w.scoring.clone(), office.clone(), app(&strong));
            async move {
                scoring
                    .clone()
                    .list_assignments(as_(
                        &office,
                        spb::ListAssignmentsRequest {
                            cycle: CYCLE.into(),
                            application: strong_app,
                            page_size: 10,
                            page_token: String::new(),
                        },
                    ))
                    .await
                    .unwrap()
                    .into_inner()
                    .assignments
                    .into_iter()
                    .find(|a| a.stage == spb::Stage::Site as i32)
                    .map(|a| !a.hold_reason.is_empty())
                    .unwrap_or(false)
            }
        };
        let started = std::time::Instant::now();
        while !held(&w).await {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{label}: never frozen"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let e = w
            .scoring
            .save_sheet(as_(
                &member,
                spb::SaveSheetRequest {
                    sheet: Some(spb::Sheet {
                        assignment: strong_site.clone(),
                        kind: spb::SheetKind::Independent as i32,
                        items: items(60),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{label}: frozen");
        let resumed = w
            .apps
            .transition_application(as_(
                &office,
                pb::TransitionApplicationRequest {
                    name: app(&strong),
                    to_stage: pb::ApplicationStage::SiteVisit as i32,
                    reason: "经核实，检测记录按期形成，中止理由不成立".into(),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            resumed.stage,
            pb::ApplicationStage::SiteVisit as i32,
            "{label}"
        );
        let why = resumed.last_decision.unwrap();
        assert_eq!(why.rule, "R-15", "{label}");
        assert!(why.message.contains("现场评审继续"), "{}", why.message);
        let started = std::time::Instant::now();
        while held(&w).await {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{label}: never freed"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }

        // Site consensus: 70 % and 20 %. R-16: 0.2 × 500 + 0.8 × 700 = 660 enters the final
        // selection; 0.2 × 700 + 0.8 × 200 = 300 does not.
        consensus(&mut w, &site, assignment_of(&site, &c500), 70).await;
        consensus(&mut w, &site, assignment_of(&site, &strong), 20).await;
        let released = release(&mut w, pb::ReviewStage::Site).await.unwrap();
        assert_eq!(
            released.applications.len(),
            2,
            "{label}: the disqualified one is not scored"
        );
        let selected = get(&mut w, &office, &c500).await.unwrap();
        assert_eq!(
            selected.stage,
            pb::ApplicationStage::FinalSelection as i32,
            "{label}"
        );
        let why = selected.last_decision.unwrap();
        assert_eq!(
            (why.rule.as_str(), why.inputs["review_score"].as_str()),
            ("R-16", "660")
        );
        let below = get(&mut w, &office, &strong).await.unwrap();
        assert_eq!(
            below.stage,
            pb::ApplicationStage::NotSelected as i32,
            "{label}"
        );
        assert_eq!(below.last_decision.unwrap().inputs["review_score"], "300");
        // Releasing again finds nothing left to move.
        let e = release(&mut w, pb::ReviewStage::Site).await.unwrap_err();
        assert_eq!(reason_of(&e), "NOTHING_TO_RELEASE", "{label}");

        // The office sees every group with its members and its draw, replayable in reviewers.
        let groups = w
            .apps
            .list_review_groups(as_(
                &w.office,
                pb::ListReviewGroupsRequest {
                    parent: CYCLE.into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(groups.review_groups.len(), 3, "{label}");
        let verified = w
            .reviewers
            .verify_draw(as_(
                &w.office,
                rpb::VerifyDrawRequest {
                    name: materials.draw.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(verified.matches, "{label}: {}", verified.message);
        // Lists show each caller its own: the enterprise its application, the unit its area's.
        let list = |token: &str| {
            as_(
                token,
                pb::ListApplicationsRequest {
                    parent: CYCLE.into(),
                    ..Default::default()
                },
            )
        };
        let own = w
            .apps
            .list_applications(list(&tokens[0]))
            .await
            .unwrap()
            .into_inner();
        let names: Vec<&str> = own.applications.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, [app(&c500).as_str()], "{label}");
        let unit = w.keys.token_for_org("u", Role::RecommendingUnit, UNIT);
        let area = w
            .apps
            .list_applications(list(&unit))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(area.applications.len(), 6, "{label}");
        let elsewhere = w
            .keys
            .token_for_org("u", Role::RecommendingUnit, "other-street");
        let none = w
            .apps
            .list_applications(list(&elsewhere))
            .await
            .unwrap()
            .into_inner();
        assert!(none.applications.is_empty(), "{label}");

        // An enterprise reads none of the groups.
        let e = w
            .apps
            .list_review_groups(as_(
                &tokens[0],
                pb::ListReviewGroupsRequest {
                    parent: CYCLE.into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{label}");

        // Art. 6(5), R-52: during the reviews, with no public notice, a complaint is a tip-off,
        // accepted with a case number and a date it is answered by (before, it was refused);
        // substantiated as fraud, it disqualifies the applicant, which scoring takes out of
        // the ranking (issue 25, item 3).
        let citizen = w.keys.token("citizen-7", Role::Public);
        let tip = w
            .apps
            .create_complaint(as_(
                &citizen,
                pb::CreateComplaintRequest {
                    parent: app(&c500),
                    complaint: Some(pb::Complaint {
                        text: "举报该企业现场展示的顾客满意度调查问卷系事后补填".into(),
                        evidence: vec!["问卷印刷日期照片".into()],
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(tip.kind, pb::ComplaintKind::TipOff as i32, "{label}");
        assert_eq!(tip.case_number, "yunyang-2026-0001", "{label}");
        assert!(tip.answer_by.is_some(), "{label}");
        let out = w
            .apps
            .resolve_complaint(as_(
                &office,
                pb::ResolveComplaintRequest {
                    name: tip.name.clone(),
                    outcome: pb::ComplaintOutcome::Substantiated as i32,
                    investigation: "经核实，问卷系评审前补填".into(),
                    request_id: String::new(),
                    fraud: true,
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(out.outcome, pb::ComplaintOutcome::Substantiated as i32);
        let gone = get(&mut w, &office, &c500).await.unwrap();
        assert_eq!(
            gone.stage,
            pb::ApplicationStage::Disqualified as i32,
            "{label}"
        );
        assert_eq!(gone.last_decision.unwrap().rule, "R-52", "{label}");
        let started = std::time::Instant::now();
        loop {
            let report = w
                .apps
                .check_consistency(as_(
                    &office,
                    pb::CheckConsistencyRequest {
                        cycle: CYCLE.into(),
                    },
                ))
                .await
                .unwrap()
                .into_inner();
            if report.disagreements.is_empty() && report.events_behind == 0 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{label}: {report:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

async fn group_for_failed(w: &mut World, code: &str) -> tonic::Status {
    w.apps
        .prepare_review_group(as_(
            &w.office,
            prepare(pb::ReviewStage::Defence, vec![app(code)], (15, 16)),
        ))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn r05_every_required_department_signs_before_the_office_accepts() {
    for db in testing::backends("applications", &qaward_applications::MIGRATIONS).await {
        let mut w = world(db).await;
        let label = w.label;
        let office = w.office.clone();
        open_cycle(&mut w).await;
        // The programme now needs the development and reform commission's opinion as well;
        // the cycle opened next pins it.
        let p = w
            .apps
            .get_programme(as_(
                &office,
                pb::GetProgrammeRequest {
                    name: "programmes/yunyang".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let mut settings = p.settings.unwrap();
        settings.required_departments = vec!["county-drc".into()];
        w.apps
            .update_programme_settings(as_(
                &office,
                pb::UpdateProgrammeSettingsRequest {
                    name: "programmes/yunyang".into(),
                    settings: Some(settings),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap();
        w.apps
            .create_cycle(as_(
                &office,
                pb::CreateCycleRequest {
                    parent: "programmes/yunyang".into(),
                    cycle: Some(pb::Cycle {
                        year: 2027,
                        ..super::notice(2027)
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap();
        let c = code("91500235MA5U7XX07");
        // `applicant` drafts in the 2026 cycle, which still has no required department.
        let me = applicant(&mut w, &c, "重庆云阳双签机械有限公司").await;
        submit(&mut w, &c, &me).await.unwrap();
        let name = app(&c);
        let sign = |token: &str| {
            as_(
                token,
                pb::SignRecommendationRequest {
                    name: name.clone(),
                    opinion: pb::Opinion::Support as i32,
                    reasons: "同意推荐".into(),
                    request_id: String::new(),
                    attested: Vec::new(),
                },
            )
        };
        let dept = w.keys.token_for_org("d", Role::Department, "county-drc");
        let e = w.apps.sign_recommendation(sign(&dept)).await.unwrap_err();
        assert_eq!(
            e.code(),
            Code::PermissionDenied,
            "{label}: not required in 2026"
        );

        // In 2027 the unit's support alone is not enough.
        let c27 = code("91500235MA5U7XX08");
        w.apps
            .create_enterprise(as_(
                &office,
                pb::CreateEnterpriseRequest {
                    enterprise: Some(pb::Enterprise {
                        display_name: "重庆云阳会签电子有限公司".into(),
                        credit_code: c27.clone(),
                        established_date: date(2015, 5, 1),
                        industry_code: "C34".into(),
                        recommending_unit: UNIT.into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap();
        let me27 = w.keys.token_for_org("e", Role::Enterprise, &c27);
        let name27 = format!("programmes/yunyang/cycles/2027/applications/{c27}");
        w.apps
            .create_application(as_(
                &me27,
                pb::CreateApplicationRequest {
                    parent: "programmes/yunyang/cycles/2027".into(),
                    application: Some(pb::Application {
                        enterprise: format!("enterprises/{c27}"),
                        application_form: "申报表".into(),
                        organisation_profile: "企业概况".into(),
                        self_assessment: "自评报告".into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap();
        let pdf = b"%PDF-1.7\n".to_vec();
        w.apps
            .upload_evidence(as_(
                &me27,
                tokio_stream::iter(vec![
                    pb::UploadEvidenceRequest {
                        part: Some(pb::upload_evidence_request::Part::Header(
                            pb::EvidenceHeader {
                                parent: name27.clone(),
                                file_name: "手册.pdf".into(),
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
                ]),
            ))
            .await
            .unwrap();
        w.apps
            .submit_application(as_(
                &me27,
                pb::SubmitApplicationRequest {
                    name: name27.clone(),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap();
        let sign27 = |token: &str, attested: Vec<i32>| {
            as_(
                token,
                pb::SignRecommendationRequest {
                    name: name27.clone(),
                    opinion: pb::Opinion::Support as i32,
                    reasons: "同意推荐".into(),
                    request_id: String::new(),
                    attested,
                },
            )
        };
        let unit = w.keys.token_for_org("u", Role::RecommendingUnit, UNIT);
        let a = w
            .apps
            .sign_recommendation(sign27(&unit, super::all_conditions()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(a.stage, pb::ApplicationStage::Submitted as i32, "{label}");
        let why = a.last_decision.unwrap();
        assert_eq!(why.rule, "R-05");
        assert_eq!(why.inputs["missing"], "county-drc", "{label}");
        let accept = as_(
            &office,
            pb::TransitionApplicationRequest {
                name: name27.clone(),
                to_stage: pb::ApplicationStage::Accepted as i32,
                reason: "材料齐全".into(),
                request_id: String::new(),
            },
        );
        let e = w.apps.transition_application(accept).await.unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{label}");
        let other = w.keys.token_for_org("d", Role::Department, "county-tax");
        let e = w
            .apps
            .sign_recommendation(sign27(&other, Vec::new()))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{label}");
        let a = w
            .apps
            .sign_recommendation(sign27(&dept, Vec::new()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(a.stage, pb::ApplicationStage::Recommended as i32, "{label}");
        assert_eq!(a.recommendations.len(), 2);
    }
}
