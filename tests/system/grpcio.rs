//! The gateway's gRPC door read by a client that is not ours: Python's grpcio, whose grpc-core
//! transport is what most of the county platform's and other programmes' clients use. Every
//! kind of error a service raises (and the gateway's own) must reach it with its code, message,
//! ErrorInfo and BadRequest intact, over a unary and a client-streaming method — a tonic client
//! once hid a gateway that broke exactly this.
//!
//! Needs a Python with `grpcio` and `grpcio-status`: `QAWARD_TEST_PYTHON` names it (`.ci/run`
//! installs one and sets it, and there a missing one is a failure); otherwise `python3` is used
//! if it has them, and the test prints SKIPPED if not.

use prost::Message;
use qaward_proto::qaward::{applications::v1 as apps, reviewers::v1 as pb};
use serde_json::{Value, json};

use crate::support::Qaward;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/system/grpcio_client.py"
);

/// The Python to run grpcio with, or `None` (test skipped) when none is set up here.
pub fn python() -> Option<String> {
    if let Ok(python) = std::env::var("QAWARD_TEST_PYTHON") {
        return Some(python);
    }
    let has_grpcio = std::process::Command::new("python3")
        .args(["-c", "import grpc, grpc_status"])
        .output()
        .is_ok_and(|o| o.status.success());
    has_grpcio.then(|| "python3".to_string())
}

/// One call for the script: a method, a token and its messages.
fn call(method: &str, token: Option<&str>, messages: &[Vec<u8>]) -> Value {
    json!({
        "method": method,
        "token": token,
        "messages": messages.iter().map(hex::encode).collect::<Vec<_>>(),
        "client_streaming": false,
    })
}

/// The services `addr` advertises to grpcio's reflection client (v1alpha).
fn reflected_by_grpcio(python: &str, addr: std::net::SocketAddr) -> Value {
    let out = std::process::Command::new(python)
        .arg(SCRIPT)
        .arg(addr.to_string())
        .arg("--list-services")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "grpcio reflection failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs the calls with grpcio against `addr`, in order; what grpcio saw of each.
fn run_grpcio(python: &str, addr: std::net::SocketAddr, calls: &[Value]) -> Vec<Value> {
    use std::io::Write;
    let mut child = std::process::Command::new(python)
        .arg(SCRIPT)
        .arg(addr.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{python}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(calls).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "grpcio client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

const REVIEWERS: &str = "/qaward.reviewers.v1.ReviewerService";

#[tokio::test]
async fn grpcio_reads_every_error_kind_through_the_gateway_with_its_details() {
    let Some(python) = python() else {
        println!("SKIPPED: no Python with grpcio (set QAWARD_TEST_PYTHON)");
        return;
    };
    let q = Qaward::start(&[], &[]).await;
    let office = q.token_for("office", "office-1", &["--programme", "yunyang"]);
    let other_office = q.token_for("office", "office-9", &["--programme", "elsewhere"]);
    let applicant = qaward_kit::cn::with_check("91500235MA5U7XXX0").unwrap();
    let enterprise = q.token_for("enterprise", "ent-1", &["--org", &applicant]);
    let get = pb::GetProgrammeRequest {
        name: "programmes/yunyang".into(),
    }
    .encode_to_vec();
    let create = |id: &str, request_id: &str| {
        pb::CreateProgrammeRequest {
            programme: Some(pb::DrawTenant {
                display_name: "云阳县县长质量奖".into(),
                ..Default::default()
            }),
            programme_id: id.into(),
            request_id: request_id.into(),
        }
        .encode_to_vec()
    };
    // A materials-group draw the empty registry cannot fill.
    // Next year's March: a draw's window is never in the past.
    let next_year = time::OffsetDateTime::now_utc().year() + 1;
    let date = |day| qaward_proto::qaward::common::v1::Date {
        year: next_year,
        month: 3,
        day,
    };
    let prepare = pb::PrepareDrawRequest {
        parent: "programmes/yunyang".into(),
        draw: Some(pb::Draw {
            purpose: pb::DrawPurpose::MaterialsGroup as i32,
            enterprise_codes: vec![applicant.clone()],
            size: 3,
            backups: None,
            specialities: vec![pb::SpecialityRequirement {
                speciality: "C13".into(),
                min_members: 1,
            }],
            window_start: Some(date(1)),
            window_end: Some(date(5)),
            entropy_source: "beacon round 4501234".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    }
    .encode_to_vec();
    let upload = [
        apps::UploadEvidenceRequest {
            part: Some(apps::upload_evidence_request::Part::Header(
                apps::EvidenceHeader {
                    parent: format!("programmes/yunyang/cycles/2026/applications/{applicant}"),
                    file_name: "report.pdf".into(),
                    content_type: "application/pdf".into(),
                    size_bytes: 3,
                    ..Default::default()
                },
            )),
            request_id: String::new(),
        }
        .encode_to_vec(),
        apps::UploadEvidenceRequest {
            part: Some(apps::upload_evidence_request::Part::Chunk(b"pdf".to_vec())),
            request_id: String::new(),
        }
        .encode_to_vec(),
    ];
    let mut streaming = call(
        "/qaward.applications.v1.ApplicationService/UploadEvidence",
        Some(&enterprise),
        &upload,
    );
    streaming["client_streaming"] = json!(true);

    let calls = [
        // 0: the gateway's own refusal.
        call(
            &format!("{REVIEWERS}/GetProgramme"),
            None,
            std::slice::from_ref(&get),
        ),
        // 1-6: the service's.
        call(
            &format!("{REVIEWERS}/GetProgramme"),
            Some(&office),
            std::slice::from_ref(&get),
        ),
        call(
            &format!("{REVIEWERS}/CreateProgramme"),
            Some(&office),
            &[create("", "c-0")],
        ),
        call(
            &format!("{REVIEWERS}/CreateProgramme"),
            Some(&office),
            &[create("yunyang", "c-1")],
        ),
        call(
            &format!("{REVIEWERS}/CreateProgramme"),
            Some(&office),
            &[create("yunyang", "c-2")],
        ),
        call(
            &format!("{REVIEWERS}/GetProgramme"),
            Some(&other_office),
            std::slice::from_ref(&get),
        ),
        call(
            &format!("{REVIEWERS}/PrepareDraw"),
            Some(&office),
            &[prepare],
        ),
        // 7: a client-streaming method's error.
        streaming,
    ];
    let seen = run_grpcio(&python, q.addr("gateway"), &calls);
    let code = |i: usize| seen[i]["code"].as_str().unwrap().to_string();
    let reason = |i: usize| seen[i]["error_info"]["reason"].as_str().map(str::to_string);
    for (i, s) in seen.iter().enumerate() {
        if s["code"] != "OK" {
            assert_eq!(s["error_info"]["domain"], "qaward", "call {i}: {s}");
            assert!(
                !s["details"]
                    .as_str()
                    .unwrap_or("")
                    .contains("Stream removed"),
                "call {i}: {s}"
            );
        }
    }
    assert_eq!(code(0), "UNAUTHENTICATED", "{}", seen[0]);
    assert_eq!(code(1), "NOT_FOUND", "{}", seen[1]);
    assert_eq!(code(2), "INVALID_ARGUMENT", "{}", seen[2]);
    assert_eq!(
        seen[2]["field_violations"][0]["field"], "programme_id",
        "{}",
        seen[2]
    );
    assert_eq!(code(3), "OK", "{}", seen[3]);
    let created =
        pb::DrawTenant::decode(&hex::decode(seen[3]["response"].as_str().unwrap()).unwrap()[..])
            .unwrap();
    assert_eq!(created.name, "programmes/yunyang");
    assert_eq!(created.display_name, "云阳县县长质量奖");
    assert_eq!(code(4), "ALREADY_EXISTS", "{}", seen[4]);
    assert_eq!(code(5), "PERMISSION_DENIED", "{}", seen[5]);
    assert_eq!(code(6), "FAILED_PRECONDITION", "{}", seen[6]);
    assert_eq!(
        reason(6).as_deref(),
        Some("DRAW_CONSTRAINTS_UNMET"),
        "{}",
        seen[6]
    );
    assert_eq!(
        seen[6]["error_info"]["metadata"]["rule"], "R-40",
        "{}",
        seen[6]
    );
    assert_eq!(code(7), "NOT_FOUND", "{}", seen[7]);
}

#[tokio::test]
async fn grpcio_reflection_lists_the_whole_api_at_the_gateway_and_a_service() {
    let Some(python) = python() else {
        println!("SKIPPED: no Python with grpcio (set QAWARD_TEST_PYTHON)");
        return;
    };
    let q = Qaward::start(&[], &[]).await;
    let gateway = reflected_by_grpcio(&python, q.addr("gateway"));
    let services: Vec<&str> = gateway["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    for service in [
        "qaward.applications.v1.ApplicationService",
        "qaward.reviewers.v1.ReviewerService",
        "qaward.scoring.v1.ScoringService",
        "qaward.notifications.v1.NotificationService",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(services.contains(&service), "{gateway}");
    }
    assert!(
        gateway["files"]
            .as_array()
            .unwrap()
            .contains(&json!("qaward/reviewers/v1/reviewers.proto")),
        "{gateway}"
    );
    // Who may call a method is in the contract, and reflection hands it to a client that has
    // none of our code (docs/policy.md).
    assert_eq!(
        gateway["access"]["/qaward.reviewers.v1.ReviewerService/ExecuteDraw"]["roles"],
        json!(["ROLE_OFFICE"]),
        "{gateway}"
    );
    // the supervisor's part in a draw is a commitment and a reveal, nothing else.
    assert_eq!(
        gateway["access"]["/qaward.reviewers.v1.ReviewerService/CommitDrawEntropy"]["roles"],
        json!(["ROLE_OFFICE", "ROLE_SUPERVISOR"]),
        "{gateway}"
    );
    assert_eq!(
        gateway["access"]["/qaward.reviewers.v1.ReviewerService/FixDrawPublicValue"]["roles"],
        json!(["ROLE_OFFICE"]),
        "{gateway}"
    );
    assert_eq!(
        gateway["access"]["/qaward.applications.v1.ApplicationService/GetApplication"]["roles"],
        json!([
            "ROLE_OFFICE",
            "ROLE_SUPERVISOR",
            "ROLE_ENTERPRISE",
            "ROLE_RECOMMENDING_UNIT",
            "ROLE_REVIEWER"
        ]),
        "{gateway}"
    );
    let access = gateway["access"].as_object().unwrap();
    let methods: usize = qaward::policy()
        .services()
        .filter(|s| services.contains(&s.service.as_str()))
        .map(|s| s.rules.len())
        .sum();
    assert_eq!(access.len(), methods, "{gateway}");
    assert!(
        access
            .values()
            .all(|a| a["roles"].as_array().is_some_and(|r| !r.is_empty())),
        "every method the gateway advertises says who may call it: {gateway}"
    );
    let reviewers = reflected_by_grpcio(&python, q.addr("reviewers"));
    assert_eq!(
        reviewers["services"],
        json!([
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
            "qaward.reviewers.v1.ReviewerService"
        ]),
        "{reviewers}"
    );
}
