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
    applications::v1 as pb, common::v1::Date, notifications::v1 as npb, reviewers::v1 as rpb,
    scoring::v1 as spb,
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
    // The county's date (China time), as the services judge dates.
    let today = w.server_now().to_offset(qaward_kit::clock::CHINA).date();
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

    // With everything up: a member declines, the next backup sits. Which backups keep
    // the group's needs depends on the draw (its name is part of its inputs), so the first
    // member whose decline a backup can take is the one who declines; a refused decline
    // (NO_BACKUP_LEFT) changes nothing.
    let candidates: Vec<String> = panel
        .members
        .iter()
        .filter(|m| m.reviewer != draw.leader && m.reviewer != joining && m.replaced_by.is_empty())
        .map(|m| m.reviewer.clone())
        .collect();
    let changed = Instant::now();
    let mut second = None;
    for candidate in &candidates {
        let declined = call!(
            door.reviewers,
            respond_to_assignment,
            &reviewer(candidate),
            rpb::RespondToAssignmentRequest {
                panel: draw.panel.clone(),
                accept: false,
                reason: "出差无法参加".into(),
                request_id: String::new(),
                reviewer: candidate.clone(),
            }
        );
        match declined {
            Ok(_) => {
                second = Some(candidate.clone());
                break;
            }
            Err(e) if e.message().contains("no remaining backup") => continue,
            Err(e) => panic!("{e:?}"),
        }
    }
    let second = second.unwrap_or_else(|| panic!("no member of {candidates:?} could be replaced"));
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

/// One walk for the rest of issue 24's consequences, each service its own process: fraud
/// found in a complaint during the public notice disqualifies a candidate, takes it out
/// of scoring's ranking in a new released version and bars it next year (Art. 12(2));
/// the remaining winner is reminded of its yearly reports; its incident report gives
/// the office the task of considering revocation; and the services agree.
#[tokio::test]
async fn fraud_found_in_the_notice_excludes_versions_and_bars_and_an_award_sets_off_its_duties() {
    let Some(c) = cluster().await else { return };
    let mut plan = Plan::yunyang("yunyang");
    plan.fraud = Some(1);
    let (mut w, account) = walk(&c, false, plan).await;
    w.run()
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", account.text()));
    let text = account.text();
    assert_eq!(w.outcome.winners, [0], "{text}");
    let (stage, why) = w.outcome.decisions[&1].last().unwrap().clone();
    assert_eq!(
        (stage, why.rule.as_str()),
        (pb::ApplicationStage::Disqualified as i32, "R-21")
    );
    crate::support::services_agree(&w).await;

    let office = w.office_token().to_string();
    let door = w.door().clone();
    let app = w.app(1);
    let cycle = app.split("/applications/").next().unwrap().to_string();
    // the released ranking is kept; a new version says why it changed.
    let versions = call!(
        door.scoring,
        list_result_versions,
        &office,
        spb::ListResultVersionsRequest {
            cycle: cycle.clone(),
            ..Default::default()
        }
    )
    .unwrap()
    .versions;
    assert_eq!(versions.len(), 2, "{versions:?}");
    let of = |v: &spb::CycleResults| {
        v.results
            .iter()
            .find(|r| r.application == app)
            .map(|r| r.outcome)
    };
    assert_eq!(of(&versions[0]), Some(spb::Outcome::Candidate as i32));
    assert_eq!(of(&versions[1]), Some(spb::Outcome::Disqualified as i32));
    assert!(
        versions[1].version_reason.starts_with("R-21"),
        "{}",
        versions[1].version_reason
    );

    // the winner's reports, one reminder a year for the ban years.
    let winner = w.code(0).to_string();
    let started = Instant::now();
    loop {
        let reminders = call!(
            door.notifications,
            list_reminders,
            &office,
            npb::ListRemindersRequest {
                page_size: 100,
                page_token: String::new(),
            }
        )
        .unwrap()
        .reminders;
        let mine = reminders
            .iter()
            .filter(|r| r.event_type == "annual_report.due" && r.recipients[0].id == winner)
            .count();
        if mine == 3 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{mine} reminders: {reminders:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // an incident report is the office's task.
    let holder = w
        .tokens()
        .issue(Role::Enterprise, "user", Some(&winner), None);
    // The county's date (China time), as the services judge dates.
    let today = w.server_now().to_offset(qaward_kit::clock::CHINA).date();
    call!(
        door.apps,
        file_report,
        &holder,
        pb::FileReportRequest {
            parent: format!("enterprises/{winner}"),
            report: Some(pb::WinnerReport {
                kind: pb::ReportKind::Incident as i32,
                text: "厂区发生一般安全生产事故，已整改".into(),
                event_date: Some(Date {
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
    let started = Instant::now();
    loop {
        let tasks = call!(
            door.notifications,
            list_notifications,
            &office,
            npb::ListNotificationsRequest {
                recipient_id: "office.yunyang".into(),
                page_size: 100,
                page_token: String::new(),
            }
        )
        .unwrap()
        .notifications
        .into_iter()
        .filter(|n| n.event_type == "incident_report.review")
        .count();
        if tasks == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no office task: {tasks}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Art. 12(2): next year the fraudulent applicant is barred.
    let now = w.server_now();
    let next_year = now.year() + 1;
    call!(
        door.apps,
        create_cycle,
        &office,
        pb::CreateCycleRequest {
            parent: "programmes/yunyang".into(),
            cycle: Some(pb::Cycle {
                year: next_year,
                notice_title: format!("关于开展{next_year}年度云阳县县长质量奖评选工作的通知"),
                conditions: "在本县登记注册并纳税".into(),
                required_materials: vec!["申报表".into()],
                deadline: Some(prost_types::Timestamp {
                    seconds: (now + time::Duration::days(400)).unix_timestamp(),
                    nanos: 0,
                }),
                ..Default::default()
            }),
            request_id: String::new(),
        }
    )
    .unwrap();
    let check = call!(
        door.apps,
        check_eligibility,
        &office,
        pb::CheckEligibilityRequest {
            enterprise: format!("enterprises/{}", w.code(1)),
            cycle: format!("programmes/yunyang/cycles/{next_year}"),
        }
    )
    .unwrap();
    assert!(
        !check.eligible && check.reasons.iter().any(|r| r.rule == "R-04"),
        "{:?}",
        check.reasons
    );
    crate::support::services_agree(&w).await;
    c.audit_intact();
}
