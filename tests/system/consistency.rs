//! Changes travel between services (issue 24), as a province runs them: every service its own
//! process on PostgreSQL, driven through the gateway. A member replaced in the reviewers
//! service while the applications service is down loses their read access and scoring seat
//! once it is back, the backup gains both, and `CheckConsistency` finds the three services
//! agreeing; a second replacement with everything up travels the same way. The closing note's
//! lag figures are printed here (`consistency lag`).

use std::time::{Duration, Instant};

use qaward_demo::{Plan, call};
use qaward_kit::auth::Role;
use qaward_proto::qaward::{
    applications::v1 as pb, common::v1::Date, reviewers::v1 as rpb, scoring::v1 as spb,
};
use tonic::Code;

use crate::cycle_across_processes::{cluster, walk};

async fn agreed(
    door: &qaward_demo::Door,
    office: &str,
    cycle: &str,
) -> (Duration, pb::ConsistencyReport) {
    let took = crate::support::services_agree_on(door, office, cycle).await;
    let report = call!(
        door.apps,
        check_consistency,
        office,
        pb::CheckConsistencyRequest {
            cycle: cycle.to_string()
        }
    )
    .unwrap();
    (took, report)
}

#[tokio::test]
async fn r41_a_replaced_reviewer_loses_their_seat_everywhere_even_across_a_crash() {
    let Some(mut c) = cluster().await else { return };
    let (mut w, account) = walk(&c, false, Plan::yunyang("yunyang")).await;
    let fail = |e: qaward_demo::Failure| -> ! { panic!("{e}\n{}", account.text()) };
    w.set_up().await.unwrap_or_else(|e| fail(e));
    w.open_cycle().await.unwrap_or_else(|e| fail(e));
    w.applications().await.unwrap_or_else(|e| fail(e));
    let accepted = w.accepted();
    let (group, draw) = w
        .materials_group(&accepted)
        .await
        .unwrap_or_else(|e| fail(e));
    let office = w.office_token().to_string();
    let door = w.door().clone();
    let app = w.app(accepted[0]);
    let cycle = app.split("/applications/").next().unwrap().to_string();
    let (_, first) = agreed(&door, &office, &cycle).await;
    assert!(
        first.groups_checked == 1 && first.assignments_checked as usize == accepted.len(),
        "{first:?}"
    );

    let reviewer = |name: &str| {
        w.tokens().issue(
            Role::Reviewer,
            name.trim_start_matches("reviewers/"),
            None,
            None,
        )
    };
    let reads = |token: String| {
        let door = door.clone();
        let app = app.clone();
        async move {
            call!(
                door.apps,
                get_application,
                &token,
                pb::GetApplicationRequest { name: app }
            )
            .map(drop)
            .map_err(|s| s.code())
        }
    };
    let leaving = draw
        .members
        .iter()
        .find(|m| **m != draw.leader)
        .unwrap()
        .clone();
    assert_eq!(
        reads(reviewer(&leaving)).await,
        Ok(()),
        "drawn, the member reads (R-43)"
    );

    // The applications service dies; meanwhile a late conflict replaces the member.
    c.kill("applications").await;
    let today = w.server_now().date();
    call!(
        door.reviewers,
        create_relation,
        &office,
        rpb::CreateRelationRequest {
            parent: leaving.clone(),
            relation: Some(rpb::Relation {
                enterprise_code: w.code(accepted[0]).to_string(),
                kind: rpb::RelationKind::Consultancy as i32,
                start_date: Some(Date {
                    year: today.year(),
                    month: u8::from(today.month()) as i32,
                    day: today.day() as i32,
                }),
                ..Default::default()
            }),
            request_id: String::new(),
        }
    )
    .unwrap();
    let panel = call!(
        door.reviewers,
        replace_member,
        &office,
        rpb::ReplaceMemberRequest {
            panel: draw.panel.clone(),
            reviewer: leaving.clone(),
            reason: rpb::ReplaceReason::LateConflict as i32,
            note: String::new(),
            request_id: String::new(),
        }
    )
    .unwrap();
    let joining = panel
        .members
        .iter()
        .find(|m| m.reviewer == leaving)
        .unwrap()
        .replaced_by
        .clone();
    c.restart("applications").await;
    let (after_crash, report) = agreed(&door, &office, &cycle).await;
    assert_eq!(report.disagreements, vec![]);

    // The leaver reads nothing and scores nothing; the backup does both.
    assert_eq!(reads(reviewer(&leaving)).await, Err(Code::PermissionDenied));
    assert_eq!(reads(reviewer(&joining)).await, Ok(()));
    let assignments = call!(
        door.scoring,
        list_assignments,
        &office,
        spb::ListAssignmentsRequest {
            cycle: cycle.clone(),
            application: app.clone(),
            page_size: 10,
            page_token: String::new(),
        }
    )
    .unwrap()
    .assignments;
    let people: Vec<&str> = assignments[0]
        .people
        .iter()
        .map(|p| p.reviewer.as_str())
        .collect();
    assert!(
        people.contains(&joining.as_str()) && !people.contains(&leaving.as_str()),
        "{people:?}"
    );
    let g = call!(
        door.apps,
        get_review_group,
        &office,
        pb::GetReviewGroupRequest {
            name: group.name.clone()
        }
    )
    .unwrap();
    assert!(
        !g.members.contains(&leaving) && g.members.contains(&joining),
        "{:?}",
        g.members
    );

    // With everything up: the next member declines, the next backup sits.
    let second = panel
        .members
        .iter()
        .find(|m| m.reviewer != draw.leader && m.reviewer != joining && m.replaced_by.is_empty())
        .unwrap()
        .reviewer
        .clone();
    let changed = Instant::now();
    call!(
        door.reviewers,
        respond_to_assignment,
        &reviewer(&second),
        rpb::RespondToAssignmentRequest {
            panel: draw.panel.clone(),
            accept: false,
            reason: "出差无法参加".into(),
            request_id: String::new(),
            reviewer: second.clone(),
        }
    )
    .unwrap();
    let (_, _) = agreed(&door, &office, &cycle).await;
    let live = changed.elapsed();
    assert_eq!(reads(reviewer(&second)).await, Err(Code::PermissionDenied));
    println!(
        "consistency lag: {} ms from the applications service's restart to agreement; {} ms from a decline to agreement with every service up",
        after_crash.as_millis(),
        live.as_millis()
    );
    // The same report over HTTP/JSON, as curl would ask for it; the office's alone.
    let ask = |token: String| {
        let addr = c.gateway_http();
        let path = format!("/v1/{cycle}:checkConsistency");
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            write!(
                s,
                "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\r\n"
            )
            .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            let status: u16 = out[9..12].parse().unwrap();
            let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
            (
                status,
                serde_json::from_str::<serde_json::Value>(&body).unwrap_or_default(),
            )
        })
    };
    let (status, report) = ask(office.clone()).await.unwrap();
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["groupsChecked"], 1, "{report}");
    assert_eq!(report["disagreements"], serde_json::json!([]), "{report}");
    let (status, _) = ask(reviewer(&joining)).await.unwrap();
    assert_eq!(status, 403);
    // And as the operator runs it.
    let out = crate::support::qaward(&["check", "consistency", "--cycle", &cycle])
        .args(["--gateway", &c.gateway_grpc(), "--data-dir"])
        .arg(c.data_dir.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("consistent"),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.audit_intact();
}
