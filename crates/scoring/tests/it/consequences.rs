//! What the other services' changes do to scoring (issue 24): a member who leaves a panel stops
//! scoring, their unsubmitted sheet is void and kept, and the consensus waits for the one who
//! joins; a disqualified application is out of the ranking with its reason
//! . Before, scoring had no way to hear of either: the leaver blocked the consensus and a
//! disqualified applicant kept its candidate place.

use qaward_kit::{
    auth::Role,
    testing::{self, TestDb},
};
use qaward_proto::qaward::scoring::v1 as pb;
use qaward_scoring::domain::rubric::Rubric;
use tonic::Code;

use super::{Running, as_, items, person, reviewer_token, rubric_pb, start};

const CYCLE: &str = "programmes/yunyang/cycles/2026";

fn assignment(app: &str) -> pb::Assignment {
    pb::Assignment {
        cycle: CYCLE.into(),
        application: format!("{CYCLE}/applications/{app}"),
        stage: pb::Stage::Materials as i32,
        rubric: "rubrics/gbt".into(),
        people: vec![
            person("R1", pb::AssignmentRole::Leader),
            person("R2", pb::AssignmentRole::Member),
            person("R3", pb::AssignmentRole::Member),
        ],
        enterprise_code: "915002357474797878".into(),
        recommending_unit: "town-1".into(),
        ..Default::default()
    }
}

/// The service with the GB/T 19580 rubric as `rubrics/gbt`, the office's and the applications
/// service's tokens.
async fn with_rubric(db: TestDb) -> (Running, String, String, Rubric) {
    let mut r = start(db).await;
    let office = r.keys.token_for("office-1", Role::Office, "yunyang");
    let service = r.keys.token("system:applications", Role::Service);
    let rubric = Rubric::gbt_19580_2012();
    r.client
        .create_rubric(as_(
            &office,
            pb::CreateRubricRequest {
                rubric: Some(rubric_pb(&rubric)),
                rubric_id: "gbt".into(),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
    (r, office, service, rubric)
}

#[tokio::test]
async fn r41_a_reseated_scorer_stops_scoring_and_the_consensus_waits_for_the_one_who_joins() {
    for db in testing::backends("scoring", &qaward_scoring::MIGRATIONS).await {
        let label = db.label;
        let (mut r, office, service, rubric) = with_rubric(db).await;
        let a = r
            .client
            .create_assignment(as_(
                &office,
                pb::CreateAssignmentRequest {
                    assignment: Some(assignment("a")),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        // R1 and R3 submit; R2 has a draft when a late conflict takes their seat.
        let mut sheets = Vec::new();
        for who in ["R1", "R2", "R3"] {
            let s = r
                .client
                .save_sheet(as_(
                    &reviewer_token(&r.keys, who),
                    pb::SaveSheetRequest {
                        sheet: Some(pb::Sheet {
                            assignment: a.name.clone(),
                            kind: pb::SheetKind::Independent as i32,
                            items: items(&rubric, 60),
                            ..Default::default()
                        }),
                        request_id: String::new(),
                    },
                ))
                .await
                .unwrap()
                .into_inner();
            sheets.push(s.name.clone());
            if who != "R2" {
                r.client
                    .submit_sheet(as_(
                        &reviewer_token(&r.keys, who),
                        pb::SubmitSheetRequest {
                            name: s.name,
                            request_id: String::new(),
                        },
                    ))
                    .await
                    .unwrap();
            }
        }
        let reseat = |people: Vec<pb::AssignedPerson>, id: &str| pb::ReseatScorersRequest {
            assignment: a.name.clone(),
            people,
            reason: "R-41: 迟发现的利益冲突，由候补 R4 替换 R2".into(),
            request_id: id.into(),
        };
        let after = vec![
            person("R1", pb::AssignmentRole::Leader),
            person("R4", pb::AssignmentRole::Member),
            person("R3", pb::AssignmentRole::Member),
        ];

        // Bad input changes nothing: two members and no leader is no group; another
        // programme's office may not reseat this one.
        let bad = r
            .client
            .reseat_scorers(as_(
                &service,
                reseat(vec![person("R4", pb::AssignmentRole::Member)], "bad"),
            ))
            .await
            .unwrap_err();
        assert_eq!(bad.code(), Code::InvalidArgument, "{label}");
        let other = r.keys.token_for("office-9", Role::Office, "fengjie");
        let refused = r
            .client
            .reseat_scorers(as_(&other, reseat(after.clone(), "other")))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{label}");

        let seated = r
            .client
            .reseat_scorers(as_(&service, reseat(after.clone(), "event-1")))
            .await
            .unwrap()
            .into_inner();
        let ids: Vec<&str> = seated.people.iter().map(|p| p.reviewer.as_str()).collect();
        assert!(
            ids.contains(&"reviewers/R4") && !ids.contains(&"reviewers/R2"),
            "{ids:?}"
        );
        // Applied again under another id (a redelivered event): nothing changes.
        let again = r
            .client
            .reseat_scorers(as_(&service, reseat(after.clone(), "event-1-again")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(again.people, seated.people);

        // R2's draft is void, kept on the record; R2 can no longer write.
        let kept = r
            .client
            .get_sheet(as_(
                &office,
                pb::GetSheetRequest {
                    name: sheets[1].clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(kept.state, pb::SheetState::Void as i32, "{label}");
        let gone = r
            .client
            .submit_sheet(as_(
                &reviewer_token(&r.keys, "R2"),
                pb::SubmitSheetRequest {
                    name: sheets[1].clone(),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_ne!(gone.code(), Code::Ok);

        // The consensus waits for R4, not R2.
        let t1 = reviewer_token(&r.keys, "R1");
        let wait = r
            .client
            .open_consensus(as_(
                &t1,
                pb::OpenConsensusRequest {
                    assignment: a.name.clone(),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(wait.code(), Code::FailedPrecondition);
        assert!(
            wait.message().contains("reviewers/R4") && !wait.message().contains("R2"),
            "{}",
            wait.message()
        );
        let t4 = reviewer_token(&r.keys, "R4");
        let s4 = r
            .client
            .save_sheet(as_(
                &t4,
                pb::SaveSheetRequest {
                    sheet: Some(pb::Sheet {
                        assignment: a.name.clone(),
                        kind: pb::SheetKind::Independent as i32,
                        items: items(&rubric, 60),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        r.client
            .submit_sheet(as_(
                &t4,
                pb::SubmitSheetRequest {
                    name: s4.name,
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap();
        let view = r
            .client
            .open_consensus(as_(
                &t1,
                pb::OpenConsensusRequest {
                    assignment: a.name.clone(),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let by = &view.items[0].percent_by_reviewer;
        assert!(
            by.contains_key("reviewers/R4") && !by.contains_key("reviewers/R2"),
            "{label}: {by:?}"
        );
    }
}

#[tokio::test]
async fn r15_an_excluded_application_is_out_of_the_ranking_with_its_reason() {
    for db in testing::backends("scoring", &qaward_scoring::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db).await;
        let office = r.keys.token_for("office-1", Role::Office, "yunyang");
        let service = r.keys.token("system:applications", Role::Service);
        let exclude = |rule: &str, reason: &str| pb::ExcludeApplicationRequest {
            cycle: CYCLE.into(),
            exclusion: Some(pb::Exclusion {
                application: format!("{CYCLE}/applications/a"),
                rule: rule.into(),
                reason: reason.into(),
                ..Default::default()
            }),
            request_id: String::new(),
            settings: None,
        };
        for (request, field) in [
            (exclude("R-99", "弄虚作假"), "exclusion.rule"),
            (exclude("R-15", " "), "exclusion.reason"),
        ] {
            let e = r
                .client
                .exclude_application(as_(&service, request))
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "{label}");
            assert!(e.message().contains(field), "{}", e.message());
        }
        let x = r
            .client
            .exclude_application(as_(
                &service,
                exclude("R-15", "现场评审发现弄虚作假，办公室核实"),
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(x.name, format!("{CYCLE}/exclusions/a"));
        // A second exclusion of the same application keeps the first.
        let again = r
            .client
            .exclude_application(as_(&service, exclude("R-21", "异议成立")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (again.rule.as_str(), again.create_time),
            ("R-15", x.create_time)
        );
        let results = r
            .client
            .compute_results(as_(
                &office,
                pb::ComputeResultsRequest {
                    cycle: CYCLE.into(),
                    settings: Some(pb::ResultSettings::default()),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let a = results
            .results
            .iter()
            .find(|x| x.application.ends_with("/a"))
            .expect("the excluded application is listed");
        assert_eq!(a.outcome, pb::Outcome::Disqualified as i32, "{label}");
        assert_eq!(a.rank, 0);
        assert_eq!(a.explanations[0].rule, "R-15");
        assert_eq!(results.exclusions, vec![x]);
    }
}

#[tokio::test]
async fn r51_an_exclusion_after_the_ranking_was_released_releases_a_new_version_and_keeps_the_old()
{
    for db in testing::backends("scoring", &qaward_scoring::MIGRATIONS).await {
        let label = db.label;
        let (mut r, office, service, _) = with_rubric(db).await;
        for app in ["a", "b"] {
            r.client
                .create_assignment(as_(
                    &office,
                    pb::CreateAssignmentRequest {
                        assignment: Some(assignment(app)),
                        request_id: String::new(),
                    },
                ))
                .await
                .unwrap();
        }
        // The defence stage is released: the ranking is out.
        r.client
            .release_stage(as_(
                &office,
                pb::ReleaseStageRequest {
                    cycle: CYCLE.into(),
                    stage: pb::Stage::Defence as i32,
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap();
        let exclude =
            |settings: Option<pb::ResultSettings>, id: &str| pb::ExcludeApplicationRequest {
                cycle: CYCLE.into(),
                exclusion: Some(pb::Exclusion {
                    application: format!("{CYCLE}/applications/a"),
                    rule: "R-21".into(),
                    reason: "公示期异议经调查属实".into(),
                    ..Default::default()
                }),
                request_id: id.into(),
                settings,
            };
        // Without the numbers there is no new version to compute: refused, nothing changed.
        let e = r
            .client
            .exclude_application(as_(&service, exclude(None, "x1")))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{label}");
        assert!(e.message().contains("settings"), "{}", e.message());
        let list = pb::ListResultVersionsRequest {
            cycle: CYCLE.into(),
            ..Default::default()
        };
        let none = r
            .client
            .list_result_versions(as_(&office, list.clone()))
            .await
            .unwrap()
            .into_inner();
        assert!(none.versions.is_empty(), "{label}");

        for id in ["x2", "x3"] {
            r.client
                .exclude_application(as_(
                    &service,
                    exclude(Some(pb::ResultSettings::default()), id),
                ))
                .await
                .unwrap();
        }
        let v = r
            .client
            .list_result_versions(as_(&office, list))
            .await
            .unwrap()
            .into_inner()
            .versions;
        // The version as released, and the new one with the reason; a repeat adds none.
        assert_eq!(
            v.iter().map(|x| x.version).collect::<Vec<_>>(),
            [1, 2],
            "{label}"
        );
        let outcome = |x: &pb::CycleResults| {
            x.results
                .iter()
                .find(|r| r.application.ends_with("/a"))
                .map(|r| r.outcome)
        };
        assert_ne!(
            outcome(&v[0]),
            Some(pb::Outcome::Disqualified as i32),
            "{label}"
        );
        assert_eq!(
            outcome(&v[1]),
            Some(pb::Outcome::Disqualified as i32),
            "{label}"
        );
        assert!(
            v[1].version_reason.starts_with("R-21"),
            "{}",
            v[1].version_reason
        );
        assert!(v[0].exclusions.is_empty() && v[1].exclusions.len() == 1);
    }
}

#[tokio::test]
async fn r15_a_stopped_visit_freezes_the_sheets_until_the_office_decides() {
    for db in testing::backends("scoring", &qaward_scoring::MIGRATIONS).await {
        let label = db.label;
        let (mut r, office, service, rubric) = with_rubric(db).await;
        let a = r
            .client
            .create_assignment(as_(
                &office,
                pb::CreateAssignmentRequest {
                    assignment: Some(pb::Assignment {
                        stage: pb::Stage::Site as i32,
                        ..assignment("a")
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let hold = |on: bool, id: &str| pb::HoldAssignmentRequest {
            assignment: a.name.clone(),
            hold: on,
            reason: "评审员发现顾客满意度数据系伪造，已中止现场评审".into(),
            request_id: id.into(),
        };
        let held = r
            .client
            .hold_assignment(as_(&service, hold(true, "h1")))
            .await
            .unwrap()
            .into_inner();
        assert!(held.hold_reason.contains("伪造"), "{label}");
        let save = || pb::SaveSheetRequest {
            sheet: Some(pb::Sheet {
                assignment: a.name.clone(),
                kind: pb::SheetKind::Independent as i32,
                items: items(&rubric, 60),
                ..Default::default()
            }),
            request_id: String::new(),
        };
        let t1 = reviewer_token(&r.keys, "R1");
        let e = r.client.save_sheet(as_(&t1, save())).await.unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{label}");
        assert!(e.message().contains("frozen"), "{}", e.message());
        // The office finds the stop unfounded: the sheets are free again.
        let freed = r
            .client
            .hold_assignment(as_(&service, hold(false, "h2")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(freed.hold_reason, "", "{label}");
        r.client.save_sheet(as_(&t1, save())).await.unwrap();
    }
}
