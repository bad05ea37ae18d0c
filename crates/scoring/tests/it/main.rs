//! The scoring service through its gRPC API, on SQLite and (when configured) PostgreSQL.

use std::sync::Arc;

use pb::scoring_service_client::ScoringServiceClient;
use qaward_kit::{
    auth::Role,
    clock::{ManualClock, SeededRandomness},
    config::Config,
    server::{ServiceContext, ServiceHost},
    testing::{self, TestDb, TestKeys},
};
use qaward_proto::qaward::{common::v1::Decimal, scoring::v1 as pb};
use qaward_scoring::domain::rubric::Rubric;
use tonic::{Code, Request, transport::Channel};

mod consequences;
mod migrations;

struct Running {
    client: ScoringServiceClient<Channel>,
    keys: TestKeys,
    _db: TestDb,
}

async fn start(db: TestDb) -> Running {
    let keys = TestKeys::new();
    let ctx = ServiceContext {
        config: Arc::new(Config::default()),
        verifier: keys.verifier.clone(),
        clock: Arc::new(ManualClock::new(
            time::macros::datetime!(2026-04-01 09:00 UTC),
        )),
        randomness: Arc::new(SeededRandomness::new(11)),
        audit: std::sync::Arc::new(qaward_kit::audit::AuditKey::ephemeral()),
        in_process: Default::default(),
        fields: std::sync::Arc::new(qaward_kit::fields::FieldKeys::ephemeral(
            qaward_kit::fields::Algorithm::Sm4Gcm,
        )),
    };
    let host = ServiceHost::new("scoring", &ctx.config.server, ctx.verifier.clone()).add_service(
        pb::scoring_service_server::ScoringServiceServer::new(qaward_scoring::ScoringApi::new(
            db.db.clone(),
            ctx,
        )),
    );
    let channel = testing::serve_on_loopback(host).await;
    Running {
        client: ScoringServiceClient::new(channel),
        keys,
        _db: db,
    }
}

fn as_<T>(token: &str, m: T) -> Request<T> {
    let mut r = Request::new(m);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

fn d(v: &str) -> Option<Decimal> {
    Some(Decimal { value: v.into() })
}

fn rubric_pb(r: &Rubric) -> pb::Rubric {
    pb::Rubric {
        title: r.title.clone(),
        edition: r.edition.clone(),
        total_points: d(&r.total.to_string()),
        categories: r
            .categories
            .iter()
            .map(|c| pb::RubricCategory {
                code: c.code.clone(),
                title: c.title.clone(),
                points: d(&c.points.to_string()),
                items: c
                    .items
                    .iter()
                    .map(|i| pb::RubricItem {
                        code: i.code.clone(),
                        title: i.title.clone(),
                        points: d(&i.points.to_string()),
                        kind: pb::ItemKind::Process as i32,
                    })
                    .collect(),
            })
            .collect(),
        ..Default::default()
    }
}

fn reviewer_token(keys: &TestKeys, id: &str) -> String {
    keys.token(id, Role::Reviewer)
}

fn items(rubric: &Rubric, percent: i32) -> Vec<pb::ItemScore> {
    rubric
        .items()
        .map(|i| pb::ItemScore {
            item_code: i.code.clone(),
            percent,
            strengths: "优势".into(),
            opportunities: "改进".into(),
            reason: String::new(),
        })
        .collect()
}

fn person(id: &str, role: pb::AssignmentRole) -> pb::AssignedPerson {
    pb::AssignedPerson {
        reviewer: format!("reviewers/{id}"),
        role: role as i32,
    }
}

#[tokio::test]
async fn a_cycle_is_scored_sealed_agreed_computed_and_reported() {
    for db in testing::backends("scoring", &qaward_scoring::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db).await;
        let office = r.keys.token_for("office-1", Role::Office, "yunyang");
        let rubric = Rubric::gbt_19580_2012();

        // a rubric that does not add up is refused; the real one is accepted.
        let mut bad = rubric_pb(&rubric);
        bad.total_points = d("990");
        let e = r
            .client
            .create_rubric(as_(
                &office,
                pb::CreateRubricRequest {
                    rubric: Some(bad),
                    rubric_id: "gbt".into(),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{label}");
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

        let group = ["R1", "R2", "R3"];
        let materials = r
            .client
            .create_assignment(as_(
                &office,
                pb::CreateAssignmentRequest {
                    assignment: Some(pb::Assignment {
                        cycle: "programmes/yunyang/cycles/2026".into(),
                        application: "programmes/yunyang/cycles/2026/applications/a".into(),
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
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(materials.rubric, "rubrics/gbt@1");
        // The assignment sits under the cycle it scores; a name is canonical: the same id
        // under another cycle is no name of it, and the old flat form is no name at all.
        assert!(
            materials
                .name
                .starts_with("programmes/yunyang/cycles/2026/assignments/"),
            "{}",
            materials.name
        );
        let id = materials.name.rsplit('/').next().unwrap().to_string();
        for (name, expected) in [
            (
                format!("programmes/yunyang/cycles/2025/assignments/{id}"),
                Code::NotFound,
            ),
            (
                format!("programmes/fengjie/cycles/2026/assignments/{id}"),
                Code::NotFound,
            ),
            (format!("assignments/{id}"), Code::InvalidArgument),
        ] {
            let e = r
                .client
                .list_sheets(as_(
                    &office,
                    pb::ListSheetsRequest {
                        assignment: name.clone(),
                        ..Default::default()
                    },
                ))
                .await
                .unwrap_err();
            assert_eq!(e.code(), expected, "{label}: {name}: {}", e.message());
        }

        // percentages in 5 % steps; an outsider cannot write a sheet.
        let t1 = reviewer_token(&r.keys, "R1");
        let mut wrong = items(&rubric, 50);
        wrong[0].percent = 52;
        let e = r
            .client
            .save_sheet(as_(
                &t1,
                pb::SaveSheetRequest {
                    sheet: Some(pb::Sheet {
                        assignment: materials.name.clone(),
                        kind: pb::SheetKind::Independent as i32,
                        items: wrong,
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        let outsider = reviewer_token(&r.keys, "R9");
        let e = r
            .client
            .save_sheet(as_(
                &outsider,
                pb::SaveSheetRequest {
                    sheet: Some(pb::Sheet {
                        assignment: materials.name.clone(),
                        kind: pb::SheetKind::Independent as i32,
                        items: items(&rubric, 50),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);

        // Independent sheets: R1 50 %, R2 55 %, R3 90 % on every item.
        let mut names = Vec::new();
        for (who, pct) in group.iter().zip([50, 55, 90]) {
            let t = reviewer_token(&r.keys, who);
            let s = r
                .client
                .save_sheet(as_(
                    &t,
                    pb::SaveSheetRequest {
                        sheet: Some(pb::Sheet {
                            assignment: materials.name.clone(),
                            kind: pb::SheetKind::Independent as i32,
                            items: items(&rubric, pct),
                            ..Default::default()
                        }),
                        request_id: String::new(),
                    },
                ))
                .await
                .unwrap()
                .into_inner();
            names.push(s.name);
        }
        // R2 cannot read R1's sheet before submitting their own.
        let t2 = reviewer_token(&r.keys, "R2");
        let e = r
            .client
            .get_sheet(as_(
                &t2,
                pb::GetSheetRequest {
                    name: names[0].clone(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{label}");
        // Consensus before everyone submitted is refused.
        let e = r
            .client
            .open_consensus(as_(
                &t1,
                pb::OpenConsensusRequest {
                    assignment: materials.name.clone(),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition);
        for (who, name) in group.iter().zip(&names) {
            let t = reviewer_token(&r.keys, who);
            let s = r
                .client
                .submit_sheet(as_(
                    &t,
                    pb::SubmitSheetRequest {
                        name: name.clone(),
                        request_id: String::new(),
                    },
                ))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(s.seal_hash.len(), 64);
        }
        assert_eq!(
            r.client
                .get_sheet(as_(
                    &t2,
                    pb::GetSheetRequest {
                        name: names[0].clone()
                    }
                ))
                .await
                .unwrap()
                .into_inner()
                .total,
            d("500")
        );
        // a second submission is refused; a correction is a new version with a reason.
        let t3 = reviewer_token(&r.keys, "R3");
        let e = r
            .client
            .submit_sheet(as_(
                &t3,
                pb::SubmitSheetRequest {
                    name: names[2].clone(),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition);
        let corrected = r
            .client
            .correct_sheet(as_(
                &t3,
                pb::CorrectSheetRequest {
                    name: names[2].clone(),
                    items: vec![pb::ItemScore {
                        item_code: "4.1.1".into(),
                        percent: 85,
                        ..Default::default()
                    }],
                    reason: "誤讀證據".into(),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(corrected.version, 2);

        // items more than one band apart are discussed first.
        let view = r
            .client
            .open_consensus(as_(
                &t1,
                pb::OpenConsensusRequest {
                    assignment: materials.name.clone(),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        // 50/55/90 lie more than one band apart; 4.1.1, corrected to 85, no longer does and
        // comes last.
        assert!(
            view.items
                .iter()
                .filter(|i| i.item_code != "4.1.1")
                .all(|i| i.discuss_first),
            "{label}"
        );
        assert_eq!(
            view.items
                .last()
                .map(|i| (i.item_code.as_str(), i.discuss_first)),
            Some(("4.1.1", false))
        );
        // The consensus needs a reason where it departs from an independent score.
        let e = r
            .client
            .sign_consensus(as_(
                &t1,
                pb::SignConsensusRequest {
                    assignment: materials.name.clone(),
                    items: items(&rubric, 60),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        let mut agreed = items(&rubric, 60);
        for i in &mut agreed {
            i.reason = "组内讨论一致".into();
        }
        let consensus = r
            .client
            .sign_consensus(as_(
                &t1,
                pb::SignConsensusRequest {
                    assignment: materials.name.clone(),
                    items: agreed.clone(),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(consensus.total, d("600"));

        // Rev. Art. 6(4): a member who disagrees reserves an opinion on the signed consensus;
        // the office reads it; the consensus stays 600.
        let reserve = |text: &str, codes: Vec<String>| pb::ReserveOpinionRequest {
            assignment: materials.name.clone(),
            reserved_opinion: Some(pb::ReservedOpinion {
                text: text.into(),
                item_codes: codes,
                ..Default::default()
            }),
            request_id: String::new(),
        };
        let opinion = r
            .client
            .reserve_opinion(as_(
                &t2,
                reserve(
                    "4.7 结果类条款证据不足，本人认为应低于60%。",
                    vec!["4.7.1".into()],
                ),
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(opinion.reviewer, "reviewers/R2");
        assert_eq!(opinion.consensus_total, d("600"), "{label}");
        let e = r
            .client
            .reserve_opinion(as_(&t2, reserve("再次保留意见", vec![])))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::AlreadyExists, "{label}");
        let e = r
            .client
            .reserve_opinion(as_(&t1, reserve("组长不应保留意见", vec![])))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{label}");
        let e = r
            .client
            .reserve_opinion(as_(&t3, reserve(" ", vec!["9.9".into()])))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{label}");
        assert_eq!(
            tonic_types::StatusExt::get_error_details(&e)
                .bad_request()
                .unwrap()
                .field_violations
                .iter()
                .map(|v| v.field.as_str())
                .collect::<Vec<_>>(),
            ["reserved_opinion.text", "reserved_opinion.item_codes[0]"],
            "{label}"
        );
        let list = |t: &str| {
            let mut client = r.client.clone();
            let t = t.to_string();
            let parent = materials.name.clone();
            async move {
                client
                    .list_reserved_opinions(as_(
                        &t,
                        pb::ListReservedOpinionsRequest {
                            parent,
                            ..Default::default()
                        },
                    ))
                    .await
                    .unwrap()
                    .into_inner()
                    .reserved_opinions
            }
        };
        assert_eq!(
            list(&office).await,
            std::slice::from_ref(&opinion),
            "{label}"
        );
        assert_eq!(list(&t2).await.len(), 1, "{label}");
        assert!(
            list(&t3).await.is_empty(),
            "{label}: another member's opinion is its own"
        );

        // Site group (consensus 425 → 42.5 %? use 45 % = 450) and a defence panel of 5 plus an advisor.
        let site = r
            .client
            .create_assignment(as_(
                &office,
                pb::CreateAssignmentRequest {
                    assignment: Some(pb::Assignment {
                        cycle: "programmes/yunyang/cycles/2026".into(),
                        application: "programmes/yunyang/cycles/2026/applications/a".into(),
                        stage: pb::Stage::Site as i32,
                        rubric: "rubrics/gbt@1".into(),
                        people: vec![
                            person("S1", pb::AssignmentRole::Leader),
                            person("S2", pb::AssignmentRole::Member),
                            person("S3", pb::AssignmentRole::Member),
                        ],
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        for who in ["S1", "S2", "S3"] {
            let t = reviewer_token(&r.keys, who);
            let s = r
                .client
                .save_sheet(as_(
                    &t,
                    pb::SaveSheetRequest {
                        sheet: Some(pb::Sheet {
                            assignment: site.name.clone(),
                            kind: pb::SheetKind::Independent as i32,
                            items: items(&rubric, 45),
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
                    &t,
                    pb::SubmitSheetRequest {
                        name: s.name,
                        request_id: String::new(),
                    },
                ))
                .await
                .unwrap();
        }
        let ts1 = reviewer_token(&r.keys, "S1");
        r.client
            .sign_consensus(as_(
                &ts1,
                pb::SignConsensusRequest {
                    assignment: site.name.clone(),
                    items: items(&rubric, 45),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap();
        let defence = r
            .client
            .create_assignment(as_(
                &office,
                pb::CreateAssignmentRequest {
                    assignment: Some(pb::Assignment {
                        cycle: "programmes/yunyang/cycles/2026".into(),
                        application: "programmes/yunyang/cycles/2026/applications/a".into(),
                        stage: pb::Stage::Defence as i32,
                        rubric: "rubrics/gbt".into(),
                        people: ["D1", "D2", "D3", "D4", "D5"]
                            .iter()
                            .map(|x| person(x, pb::AssignmentRole::Member))
                            .chain([person("ADV", pb::AssignmentRole::Advisor)])
                            .collect(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        // advisors never score.
        let adv = reviewer_token(&r.keys, "ADV");
        let e = r
            .client
            .save_sheet(as_(
                &adv,
                pb::SaveSheetRequest {
                    sheet: Some(pb::Sheet {
                        assignment: defence.name.clone(),
                        kind: pb::SheetKind::Defence as i32,
                        defence_score: d("99"),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition);
        for (who, score) in ["D1", "D2", "D3", "D4", "D5"]
            .iter()
            .zip(["80", "85", "90", "70", "95"])
        {
            let t = reviewer_token(&r.keys, who);
            let s = r
                .client
                .save_sheet(as_(
                    &t,
                    pb::SaveSheetRequest {
                        sheet: Some(pb::Sheet {
                            assignment: defence.name.clone(),
                            kind: pb::SheetKind::Defence as i32,
                            defence_score: d(score),
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
                    &t,
                    pb::SubmitSheetRequest {
                        name: s.name,
                        request_id: String::new(),
                    },
                ))
                .await
                .unwrap();
        }

        // Art. 16(4): the hearing log, kept by a panel member, with the advisor's comments; the
        // office reads it with the five defence scores alongside.
        let hearing = pb::ReviewLog {
            assignment: defence.name.clone(),
            record: Some(pb::review_log::Record::Hearing(pb::Hearing {
                statement_summary: "企业介绍了导入卓越绩效模式以来的主要做法和成效。".into(),
                // Art. 16(4): the enterprise's principal presents.
                presenter_name: "王建华".into(),
                presenter_post: "董事长".into(),
                exchanges: vec![pb::HearingExchange {
                    question: "关键绩效指标如何分解到班组？".into(),
                    asked_by: "reviewers/D2".into(),
                    answer: "通过平衡计分卡逐级分解。".into(),
                }],
                advisor_comments: vec![pb::AdvisorComment {
                    advisor: "reviewers/ADV".into(),
                    comments: "战略与预算衔接不足。".into(),
                    suggestions: vec!["建立战略—预算联动机制".into()],
                }],
            })),
            ..Default::default()
        };
        let td1 = reviewer_token(&r.keys, "D1");
        let saved = r
            .client
            .save_review_log(as_(
                &td1,
                pb::SaveReviewLogRequest {
                    review_log: Some(hearing.clone()),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (saved.version, saved.recorded_by.as_str()),
            (1, "reviewers/D1")
        );
        assert!(
            saved.scores.is_empty(),
            "a member does not read the scores before release"
        );
        let log_name = format!("{}/reviewLog", defence.name);
        let read = r
            .client
            .get_review_log(as_(
                &office,
                pb::GetReviewLogRequest {
                    name: log_name.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(read.record, hearing.record, "{label}");
        let mut scores: Vec<String> = read
            .scores
            .iter()
            .map(|s| format!("{} {}", s.scorer, s.score.as_ref().unwrap().value))
            .collect();
        scores.sort();
        assert_eq!(
            scores,
            [
                "reviewers/D1 80",
                "reviewers/D2 85",
                "reviewers/D3 90",
                "reviewers/D4 70",
                "reviewers/D5 95"
            ],
            "{label}"
        );
        // The advisor reads the log; a hearing cannot be kept for a site group; an advisor
        // cannot ask the panel's questions.
        assert!(
            r.client
                .get_review_log(as_(&adv, pb::GetReviewLogRequest { name: log_name }))
                .await
                .is_ok()
        );
        let e = r
            .client
            .save_review_log(as_(
                &office,
                pb::SaveReviewLogRequest {
                    review_log: Some(pb::ReviewLog {
                        assignment: site.name.clone(),
                        ..hearing.clone()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{label}");
        assert!(
            e.message().contains("review_log.hearing"),
            "{}",
            e.message()
        );

        // Art. 16(5): the site-visit log: the steps in order and who took part, a finding on a
        // rubric item with the documents behind it, the report; the consensus alongside.
        let step = |s: pb::AgendaStep, hour: i64| pb::AgendaEntry {
            step: s as i32,
            start_time: Some(prost_types::Timestamp {
                seconds: 1_783_900_800 + hour * 3600,
                nanos: 0,
            }),
            participants: vec![
                "reviewers/S1".into(),
                "reviewers/S2".into(),
                "reviewers/S3".into(),
            ],
            notes: String::new(),
        };
        let visit = pb::ReviewLog {
            assignment: site.name.clone(),
            record: Some(pb::review_log::Record::SiteVisit(pb::SiteVisitLog {
                agenda: vec![
                    step(pb::AgendaStep::PreparatoryMeeting, 0),
                    step(pb::AgendaStep::OpeningMeeting, 1),
                    step(pb::AgendaStep::SiteTour, 2),
                    step(pb::AgendaStep::ClosingMeeting, 30),
                ],
                findings: vec![pb::SiteFinding {
                    item_code: "4.1.1".into(),
                    finding: "高层领导定期评审组织绩效，记录完整。".into(),
                    documents: vec!["2025年度管理评审报告".into()],
                    interviews: vec!["总经理访谈".into()],
                    found_by: "reviewers/S2".into(),
                }],
                report: "现场评审报告：……".into(),
            })),
            ..Default::default()
        };
        let ts2 = reviewer_token(&r.keys, "S2");
        for expected in [1, 2] {
            let saved = r
                .client
                .save_review_log(as_(
                    &ts2,
                    pb::SaveReviewLogRequest {
                        review_log: Some(visit.clone()),
                        request_id: String::new(),
                    },
                ))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(saved.version, expected, "{label}: every save is a version");
        }
        let read = r
            .client
            .get_review_log(as_(
                &office,
                pb::GetReviewLogRequest {
                    name: format!("{}/reviewLog", site.name),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(read.record, visit.record, "{label}");
        assert_eq!(
            read.scores
                .iter()
                .map(|s| (s.scorer.as_str(), s.score.clone()))
                .collect::<Vec<_>>(),
            [("consensus", d("450"))],
            "{label}"
        );
        // A member of another panel reads no log of this group; steps out of order and
        // a finding without evidence are refused, each named.
        let e = r
            .client
            .get_review_log(as_(
                &td1,
                pb::GetReviewLogRequest {
                    name: format!("{}/reviewLog", site.name),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{label}");
        let mut bad = visit.clone();
        if let Some(pb::review_log::Record::SiteVisit(v)) = &mut bad.record {
            v.agenda.swap(0, 1);
            v.findings[0].documents.clear();
            v.findings[0].interviews.clear();
        }
        let e = r
            .client
            .save_review_log(as_(
                &ts2,
                pb::SaveReviewLogRequest {
                    review_log: Some(bad),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{label}");
        assert_eq!(
            tonic_types::StatusExt::get_error_details(&e)
                .bad_request()
                .unwrap()
                .field_violations
                .iter()
                .map(|v| v.field.as_str())
                .collect::<Vec<_>>(),
            [
                "review_log.site_visit.agenda[1].step",
                "review_log.site_visit.agenda[1].start_time",
                "review_log.site_visit.findings[0].documents"
            ],
            "{label}"
        );

        // R-13/16/17: 600 ≥ 500; review 0.2 × 600 + 0.8 × 450 = 480 ≥ 350; defence mean 84;
        // composite 564 ≥ 400: the only candidate.
        let results = r
            .client
            .compute_results(as_(
                &office,
                pb::ComputeResultsRequest {
                    cycle: "programmes/yunyang/cycles/2026".into(),
                    settings: None,
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let a = &results.results[0];
        assert_eq!(
            (
                a.materials_score.clone(),
                a.site_score.clone(),
                a.review_score.clone(),
                a.defence_score.clone(),
                a.composite_score.clone()
            ),
            (d("600"), d("450"), d("480"), d("84"), d("564")),
            "{label}"
        );
        assert_eq!(a.outcome, pb::Outcome::Candidate as i32);
        assert_eq!(
            a.explanations
                .iter()
                .map(|e| e.rule.as_str())
                .collect::<Vec<_>>(),
            ["R-13", "R-16", "R-17"]
        );
        assert!(!results.vacant);
        // The office's pictures: the one materials score in the 600-650 bin, the R-13 line at
        // 500; the composite in 550-600, the R-17 line at 400.
        let bins = |svg: &str| -> Vec<(String, String, String)> {
            let doc = roxmltree::Document::parse(svg).unwrap();
            doc.descendants()
                .filter(|n| n.attribute("class") == Some("bin"))
                .filter(|n| n.attribute("data-count") != Some("0"))
                .map(|n| {
                    (
                        n.attribute("data-from").unwrap().to_string(),
                        n.attribute("data-to").unwrap().to_string(),
                        n.attribute("data-count").unwrap().to_string(),
                    )
                })
                .collect()
        };
        let line = |svg: &str| -> String {
            let doc = roxmltree::Document::parse(svg).unwrap();
            let n = doc
                .descendants()
                .find(|n| n.attribute("class") == Some("threshold"))
                .unwrap();
            n.attribute("data-value").unwrap().to_string()
        };
        assert_eq!(results.charts.len(), 2);
        assert_eq!(
            bins(&results.charts[0].svg),
            [("600".into(), "650".into(), "1".into())]
        );
        assert_eq!(line(&results.charts[0].svg), "500");
        assert_eq!(
            bins(&results.charts[1].svg),
            [("550".into(), "600".into(), "1".into())]
        );
        assert_eq!(line(&results.charts[1].svg), "400");

        // Feedback: not before release; then the enterprise reads it, in Chinese HTML.
        let enterprise = r
            .keys
            .key
            .issue(
                &r.keys.auth,
                time::OffsetDateTime::now_utc(),
                "ent",
                Role::Enterprise,
                Some("915002357474797878".into()),
                None,
            )
            .unwrap();
        let report = pb::GetFeedbackReportRequest {
            name: "programmes/yunyang/cycles/2026/applications/a/feedbackReport".into(),
            include_html: true,
        };
        let e = r
            .client
            .get_feedback_report(as_(&enterprise, report.clone()))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
        r.client
            .release_stage(as_(
                &office,
                pb::ReleaseStageRequest {
                    cycle: "programmes/yunyang/cycles/2026".into(),
                    stage: pb::Stage::Materials as i32,
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap();
        // Released results are read-only: no reserved opinion after release either.
        let e = r
            .client
            .reserve_opinion(as_(
                &t3,
                pb::ReserveOpinionRequest {
                    assignment: materials.name.clone(),
                    reserved_opinion: Some(pb::ReservedOpinion {
                        text: "发布后才提出".into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{label}");
        // Released results are read-only.
        let e = r
            .client
            .correct_sheet(as_(
                &t3,
                pb::CorrectSheetRequest {
                    name: names[2].clone(),
                    items: vec![],
                    reason: "late".into(),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition);
        let e = r
            .client
            .save_sheet(as_(
                &t1,
                pb::SaveSheetRequest {
                    sheet: Some(pb::Sheet {
                        assignment: materials.name.clone(),
                        kind: pb::SheetKind::Independent as i32,
                        items: items(&rubric, 70),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition);
        // The supervisor reads every sheet.
        let supervisor = r.keys.token_for("sup-1", Role::Supervisor, "yunyang");
        assert!(
            r.client
                .get_sheet(as_(
                    &supervisor,
                    pb::GetSheetRequest {
                        name: names[1].clone()
                    }
                ))
                .await
                .is_ok()
        );
        // Another programme's office and supervisor, and staff acting for no programme, see
        // and change nothing of this one: every scoring resource sits under its programme.
        let others = [
            r.keys.token_for("office-9", Role::Office, "fengjie"),
            r.keys.token_for("sup-9", Role::Supervisor, "fengjie"),
            r.keys.token("office-x", Role::Office),
        ];
        let logged = qaward_kit::security::refusals(qaward_kit::security::Kind::Record);
        for other in &others {
            let denied = |e: tonic::Status, what: &str| {
                assert_eq!(e.code(), Code::PermissionDenied, "{label}: {what}: {e:?}");
            };
            let e = r
                .client
                .compute_results(as_(
                    other,
                    pb::ComputeResultsRequest {
                        cycle: "programmes/yunyang/cycles/2026".into(),
                        settings: None,
                    },
                ))
                .await
                .unwrap_err();
            denied(e, "ComputeResults");
            let e = r
                .client
                .get_sheet(as_(
                    other,
                    pb::GetSheetRequest {
                        name: names[1].clone(),
                    },
                ))
                .await
                .unwrap_err();
            denied(e, "GetSheet");
            let e = r
                .client
                .get_feedback_report(as_(other, report.clone()))
                .await
                .unwrap_err();
            denied(e, "GetFeedbackReport");
            let listed = r
                .client
                .list_assignments(as_(
                    other,
                    pb::ListAssignmentsRequest {
                        cycle: "programmes/yunyang/cycles/2026".into(),
                        ..Default::default()
                    },
                ))
                .await
                .unwrap()
                .into_inner();
            assert!(listed.assignments.is_empty(), "{label}: {listed:?}");
        }
        let e = r
            .client
            .release_stage(as_(
                &others[0],
                pb::ReleaseStageRequest {
                    cycle: "programmes/yunyang/cycles/2026".into(),
                    stage: pb::Stage::Site as i32,
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{label}: ReleaseStage");
        let e = r
            .client
            .create_assignment(as_(
                &others[0],
                pb::CreateAssignmentRequest {
                    assignment: Some(pb::Assignment {
                        cycle: "programmes/yunyang/cycles/2026".into(),
                        application: "programmes/yunyang/cycles/2026/applications/b".into(),
                        stage: pb::Stage::Materials as i32,
                        rubric: "rubrics/gbt".into(),
                        people: vec![
                            person("R7", pb::AssignmentRole::Leader),
                            person("R8", pb::AssignmentRole::Member),
                            person("R9", pb::AssignmentRole::Member),
                        ],
                        enterprise_code: "915002357474797878".into(),
                        recommending_unit: "town-1".into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(
            e.code(),
            Code::PermissionDenied,
            "{label}: CreateAssignment"
        );
        // Each refusal of a record is a security event (a log line and a count).
        assert!(
            qaward_kit::security::refusals(qaward_kit::security::Kind::Record) >= logged + 11,
            "{label}"
        );
        let fb = r
            .client
            .get_feedback_report(as_(&enterprise, report))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(fb.total, d("600"));
        assert_eq!(fb.items.len(), 23);
        assert_eq!(fb.items[0].band, "50-65%");
        assert!(fb.html.contains("材料评审反馈报告"));
        // the profile across the seven categories, each at 60 % of its maximum, drawn
        // in the HTML as SVG: parse it and read the numbers back.
        let start = fb.html.find("<svg").expect("an SVG in the report");
        let end = fb.html.find("</svg>").unwrap() + "</svg>".len();
        let doc = roxmltree::Document::parse(&fb.html[start..end]).expect("well-formed SVG");
        use rust_decimal::Decimal as Dec;
        let drawn: Vec<(String, Dec, Dec)> = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("category"))
            .map(|n| {
                (
                    n.attribute("data-title").unwrap().to_string(),
                    n.attribute("data-score").unwrap().parse().unwrap(),
                    n.attribute("data-max").unwrap().parse().unwrap(),
                )
            })
            .collect();
        assert_eq!(drawn.len(), 7, "{label}");
        let maxima: Vec<Dec> = drawn.iter().map(|(_, _, m)| *m).collect();
        assert_eq!(
            maxima,
            [100, 80, 90, 120, 110, 100, 400].map(Dec::from),
            "{label}"
        );
        for (title, score, max) in &drawn {
            assert_eq!(*score, *max * Dec::new(6, 1), "{title}");
        }
        assert_eq!(
            drawn.iter().map(|(_, s, _)| *s).sum::<Dec>(),
            Dec::from(600)
        );
        assert_eq!(drawn[0].0, fb.categories[0].title);
        assert_eq!(fb.categories.len(), 7);
        assert_eq!(fb.profile_svg.trim_end(), &fb.html[start..end]);
        let other = r
            .keys
            .key
            .issue(
                &r.keys.auth,
                time::OffsetDateTime::now_utc(),
                "x",
                Role::Enterprise,
                Some("91500235MA5U7XXX0X".into()),
                None,
            )
            .unwrap();
        let e = r
            .client
            .get_feedback_report(as_(
                &other,
                pb::GetFeedbackReportRequest {
                    name: "programmes/yunyang/cycles/2026/applications/a/feedbackReport".into(),
                    include_html: false,
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
    }
}
