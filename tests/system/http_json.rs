//! Every method over HTTP/JSON through the gateway, as the county platform calls it: the token
//! checked at the edge, the route found from the contracts' annotations, proto3 JSON both ways,
//! and errors in Google's JSON model with the status mapped once.

use crate::support::Qaward;

/// One HTTP/1.1 exchange over a plain socket, as curl would make it: (status, JSON body).
pub(crate) async fn http(
    q: &Qaward,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, serde_json::Value) {
    let addr = q.addr("gateway-http");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n{body}",
        body.len(),
        token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default(),
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

#[tokio::test]
async fn the_award_cycle_is_reachable_over_http_json_through_the_gateway() {
    let q = Qaward::start(&[], &[]).await;
    let office = q.token_for("office", "office-1", &["--programme", "yunyang"]);

    // No token: refused at the edge.
    let (status, body) = http(&q, "GET", "/v1/programmes", None, "").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");

    // A create with its id and request id in the query, the resource in the body.
    let (status, body) = http(
        &q,
        "POST",
        "/v1/programmes?programmeId=yunyang&requestId=p-1",
        Some(&office),
        r#"{"displayName": "云阳县县长质量奖"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "programmes/yunyang");
    assert_eq!(body["settings"]["materialsThreshold"]["value"], "500");
    let (status, body) = http(&q, "GET", "/v1/programmes/yunyang", Some(&office), "").await;
    assert_eq!(
        (status, body["displayName"].as_str()),
        (200, Some("云阳县县长质量奖"))
    );

    let cycle = r#"{"year": 2027, "noticeTitle": "关于开展2027年度云阳县县长质量奖评选工作的通知",
        "conditions": "在本县登记注册……", "requiredMaterials": ["申报表"],
        "deadline": "2027-06-30T09:00:00Z"}"#;
    let (status, body) = http(
        &q,
        "POST",
        "/v1/programmes/yunyang/cycles",
        Some(&office),
        cycle,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "CYCLE_STATE_OPEN");
    // The same cycle again: a conflict.
    let (status, body) = http(
        &q,
        "POST",
        "/v1/programmes/yunyang/cycles",
        Some(&office),
        cycle,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["status"], "ALREADY_EXISTS");
    // The notice is readable by the public role, listed with paging from the query.
    let public = q.token("public", "citizen-1");
    let (status, body) = http(
        &q,
        "GET",
        "/v1/programmes/yunyang/cycles?pageSize=1",
        Some(&public),
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["cycles"][0]["year"], 2027);

    // Bad input is refused at the edge with the field named, and changes nothing.
    let (status, body) = http(
        &q,
        "POST",
        "/v1/programmes/yunyang/cycles",
        Some(&office),
        r#"{"year": 2028, "colour": "red"}"#,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("colour"),
        "{body}"
    );
    let (status, body) = http(
        &q,
        "POST",
        "/v1/programmes/yunyang/cycles",
        Some(&office),
        r#"{"year": "soon"}"#,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = http(
        &q,
        "POST",
        "/v1/programmes/yunyang/cycles",
        Some(&office),
        "{",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // A rule's refusal keeps its field violations in Google's error model.
    let (status, body) = http(
        &q,
        "POST",
        "/v1/programmes/yunyang/cycles",
        Some(&office),
        r#"{"year": 2028}"#,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let details = body["error"]["details"].as_array().unwrap();
    assert!(
        details
            .iter()
            .any(|d| d["@type"] == "type.googleapis.com/google.rpc.BadRequest"),
        "{body}"
    );
    let (status, _) = http(&q, "PUT", "/v1/programmes", Some(&office), "").await;
    assert_eq!(status, 405);
    let (status, body) = http(&q, "GET", "/v1/nowhere", Some(&office), "").await;
    assert_eq!(
        (status, body["error"]["status"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    let (status, body) = http(&q, "GET", "/v1/programmes", Some(&public), "").await;
    assert_eq!(status, 403, "{body}");

    // The OpenAPI document comes from the same contracts: the reviewers' registry view of a
    // programme has its own binding, apart from the award's programme.
    let (status, doc) = http(&q, "GET", "/openapi.json", None, "").await;
    assert_eq!((status, doc["openapi"].as_str()), (200, Some("3.0.3")));
    assert!(doc["paths"]["/v1/registry/programmes/{programme}"]["get"].is_object());
    assert!(doc["paths"]["/v1/programmes/{programme}"]["get"].is_object());
}
