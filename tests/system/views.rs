//! The gateway's composed views, as the county platform's pages call them: an application's
//! dossier and the office's cycle overview, over HTTP/JSON and gRPC, each part as the caller
//! may see it and the parts it may not named in `omitted`.

use qaward_proto::qaward::gateway::v1::{
    GetDossierRequest, gateway_service_client::GatewayServiceClient,
};

use crate::support::{Qaward, with_token};

/// One HTTP/1.1 exchange: (status, JSON body).
async fn http(
    q: &Qaward,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    let addr = q.addr("gateway-http");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\nAuthorization: Bearer {token}\r\n\r\n{body}",
        body.len(),
    );
    let raw = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    })
    .await
    .unwrap();
    let status: u16 = raw[9..12].parse().unwrap();
    let body = raw.split("\r\n\r\n").nth(1).unwrap_or("");
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

fn omitted(view: &serde_json::Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = view["omitted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["part"].as_str().unwrap().to_string(),
                o["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn the_dossier_and_the_overview_are_composed_with_each_callers_rights() {
    let q = Qaward::start(&[], &[]).await;
    let code = qaward_kit::cn::with_check("91500235MA5U7XXX0").unwrap();
    let office = q.token_for("office", "office-1", &["--programme", "yunyang"]);
    let supervisor = q.token_for("supervisor", "audit-1", &["--programme", "yunyang"]);
    let enterprise = q.token_for("enterprise", "ent-1", &["--org", &code]);
    let other = q.token_for(
        "enterprise",
        "ent-2",
        &[
            "--org",
            &qaward_kit::cn::with_check("91500235MA5U7XXX1").unwrap(),
        ],
    );

    let ok = |(status, body): (u16, serde_json::Value)| {
        assert_eq!(status, 200, "{body}");
        body
    };
    ok(http(
        &q,
        "POST",
        "/v1/programmes?programmeId=yunyang",
        &office,
        r#"{"displayName": "云阳县县长质量奖"}"#,
    )
    .await);
    ok(http(
        &q,
        "POST",
        "/v1/programmes/yunyang/cycles",
        &office,
        r#"{"year": 2027, "noticeTitle": "关于开展2027年度云阳县县长质量奖评选工作的通知",
            "conditions": "在本县登记注册……", "requiredMaterials": ["申报表"],
            "deadline": "2027-06-30T09:00:00Z"}"#,
    )
    .await);
    ok(http(
        &q,
        "POST",
        "/v1/enterprises",
        &enterprise,
        &format!(
            r#"{{"displayName": "重庆云阳某某机械有限公司", "creditCode": "{code}",
                "establishedDate": {{"year": 2015, "month": 3, "day": 1}},
                "industryCode": "C34", "recommendingUnit": "qinglong-street"}}"#
        ),
    )
    .await);
    let application = format!("programmes/yunyang/cycles/2027/applications/{code}");
    ok(http(
        &q,
        "POST",
        "/v1/programmes/yunyang/cycles/2027/applications",
        &enterprise,
        &format!(r#"{{"enterprise": "enterprises/{code}", "applicationForm": "申报表"}}"#),
    )
    .await);

    // The enterprise's dossier: its application and its inbox; the review groups are the
    // office's, and there is no feedback report before the materials stage is released.
    let path = format!("/v1/{application}/dossier");
    let dossier = ok(http(&q, "GET", &path, &enterprise, "").await);
    assert_eq!(dossier["application"]["name"], application.as_str());
    assert_eq!(dossier["application"]["stage"], "APPLICATION_STAGE_DRAFT");
    assert!(dossier["messages"].is_array());
    let parts = omitted(&dossier);
    assert!(
        parts.contains(&("review_groups".into(), "PERMISSION_DENIED".into())),
        "{parts:?}"
    );
    assert!(
        parts.iter().any(|(p, _)| p == "feedback_report"),
        "{parts:?}"
    );
    assert!(!parts.iter().any(|(p, _)| p == "messages"), "{parts:?}");

    // The office sees the review groups (none yet) and the enterprise's inbox.
    let dossier = ok(http(&q, "GET", &path, &office, "").await);
    let parts = omitted(&dossier);
    assert!(
        !parts.iter().any(|(p, _)| p == "review_groups"),
        "{parts:?}"
    );
    assert!(!parts.iter().any(|(p, _)| p == "messages"), "{parts:?}");

    // Over gRPC, the same view.
    let mut client = GatewayServiceClient::new(q.channel("gateway").await);
    let d = client
        .get_dossier(with_token(
            GetDossierRequest {
                name: application.clone(),
            },
            &enterprise,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(d.application.unwrap().name, application);
    assert!(d.omitted.iter().any(|o| o.part == "review_groups"));

    // Another enterprise gets nothing: the application itself is refused, so the page is.
    let (status, body) = http(&q, "GET", &path, &other, "").await;
    assert_eq!(status, 403, "{body}");
    // A malformed name is named before any service is called.
    let (status, body) = http(
        &q,
        "GET",
        "/v1/programmes/yunyang/cycles/2027/applications/123/dossier",
        &office,
        "",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"]["details"][1]["fieldViolations"][0]["field"],
        "name"
    );

    // The office's overview: the board with the draft application, nothing late yet (the
    // deadline is in 2027), nothing undelivered, every part present.
    let overview = ok(http(
        &q,
        "GET",
        "/v1/programmes/yunyang/cycles/2027/overview",
        &office,
        "",
    )
    .await);
    assert_eq!(
        overview["board"]["rows"][0]["application"],
        application.as_str()
    );
    assert_eq!(overview["overdue"], serde_json::json!([]));
    assert_eq!(overview["deadLetters"], 0);
    assert_eq!(omitted(&overview), vec![]);
    // The supervisor reads it too; an enterprise may not (the policy table).
    ok(http(
        &q,
        "GET",
        "/v1/programmes/yunyang/cycles/2027/overview",
        &supervisor,
        "",
    )
    .await);
    let (status, body) = http(
        &q,
        "GET",
        "/v1/programmes/yunyang/cycles/2027/overview",
        &enterprise,
        "",
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["details"][0]["reason"], "ROLE_NOT_ALLOWED");
}

#[tokio::test]
async fn the_views_count_against_the_callers_rate_over_grpc_too() {
    let q = Qaward::start(
        &[],
        &[
            ("QAWARD_GATEWAY__RATE_PER_SECOND", "1"),
            ("QAWARD_GATEWAY__RATE_BURST", "2"),
        ],
    )
    .await;
    let office = q.token_for("office", "office-1", &["--programme", "yunyang"]);
    let mut client = GatewayServiceClient::new(q.channel("gateway").await);
    let mut codes = Vec::new();
    for _ in 0..3 {
        let answer = client
            .get_dossier(with_token(
                GetDossierRequest {
                    name: "programmes/yunyang/cycles/2027/applications/91500235MA5U7XXX0X".into(),
                },
                &office,
            ))
            .await;
        codes.push(answer.err().map(|s| s.code()));
    }
    // Two within the burst reach the view (no such application); the third is refused at
    // the edge with the time to wait.
    assert_eq!(codes[2], Some(tonic::Code::ResourceExhausted), "{codes:?}");
    assert_ne!(codes[0], Some(tonic::Code::ResourceExhausted), "{codes:?}");
}
