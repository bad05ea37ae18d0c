//! Part 2 of the cycle across the real services: candidates from scoring's
//! ranking with a tie at the cut line, consultation with an objection, the public notice with a
//! substantiated and an unfounded complaint and a late one, a committee without quorum and then
//! with it, approval, and the award barring the next year's application.

use qaward_kit::{auth::Role, testing};
use qaward_proto::qaward::{applications::v1 as pb, notifications::v1 as npb, scoring::v1 as spb};
use tonic::Code;

use super::{
    as_, code,
    committee::{Choice, ballot, ballot_of, close, member},
    date, fields,
    reviews::{
        CYCLE, World, accepted, app, applicant, assignment_of, consensus, every_door, get, group,
        leaders_meeting, office_told, open_cycle, reason_of, release, reviewer_id, rule_of,
        set_up_registry, world, world_through,
    },
};

/// Every panel member scores the defence `score` out of 100, on the hearing's day: the
/// clock goes to the panel's first day and back.
async fn defence(w: &mut World, g: &pb::ReviewGroup, assignment: &str, score: &str) {
    use qaward_kit::clock::Clock;
    let before = w.clock.now();
    let day = g.window_start.unwrap();
    w.clock.set(
        time::Date::from_calendar_date(
            day.year,
            time::Month::try_from(day.month as u8).unwrap(),
            day.day as u8,
        )
        .unwrap()
        .with_hms(10, 0, 0)
        .unwrap()
        .assume_offset(time::macros::offset!(+8)),
    );
    for m in &g.members {
        let t = w.keys.token(reviewer_id(m), Role::Reviewer);
        let s = w
            .scoring
            .save_sheet(as_(
                &t,
                spb::SaveSheetRequest {
                    sheet: Some(spb::Sheet {
                        assignment: assignment.into(),
                        kind: spb::SheetKind::Defence as i32,
                        defence_score: Some(qaward_proto::qaward::common::v1::Decimal {
                            value: score.into(),
                        }),
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
    w.clock.set(before);
}

fn tie(code: &str, candidate: bool) -> pb::TieResolution {
    pb::TieResolution {
        application: app(code),
        candidate,
        reason: "顾客满意度和市场结果更优".into(),
    }
}

/// The audit records of `resource` the office may prove (issue 22, item 3).
async fn audit_records(
    w: &mut World,
    office: &str,
    resource: String,
) -> qaward_proto::qaward::common::v1::AuditRecordProofs {
    w.apps
        .prove_audit_records(as_(
            office,
            qaward_proto::qaward::common::v1::ProveAuditRecordsRequest { resource, seq: 0 },
        ))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn r17_to_r23_a_full_cycle_from_the_ranking_to_the_award() {
    // Directly on both backends, and through the gateway's two doors: the whole cycle, from
    // the notice to the award, driven through the gateway alone.
    for (db, door) in every_door().await {
        let mut w = world_through(db, door).await;
        let label = w.label;
        let office = w.office.clone();
        set_up_registry(&mut w).await;
        open_cycle(&mut w).await;
        let [a, b, c, d] = [1, 2, 3, 4].map(|i| code(&format!("91500235MA5U7WW0{i}")));
        for (x, name) in [
            (&a, "重庆云阳甲等机械有限公司"),
            (&b, "重庆云阳乙等食品有限公司"),
            (&c, "重庆云阳丙等电子有限公司"),
            (&d, "重庆云阳丁等建材有限公司"),
        ] {
            let me = applicant(&mut w, x, name).await;
            accepted(&mut w, x, &me).await;
        }
        w.clock.set(time::macros::datetime!(2026-07-01 01:00 UTC));
        let all = [a.as_str(), b.as_str(), c.as_str(), d.as_str()];

        // Materials 700 each; defence 80 each; site 600, 550, 550, 300. Review scores 620,
        // 580, 580, 380 (382 after the leaders' meeting); composites 700, 660, 660, 460 (462): A is a candidate, B and C tie at the
        // cut line for the second seat, D is not a candidate.
        let m = group(&mut w, pb::ReviewStage::Materials, &all, (6, 10), "m-1").await;
        for x in all {
            consensus(&mut w, &m, assignment_of(&m, x), 70).await;
        }
        let released = release(&mut w, pb::ReviewStage::Materials).await.unwrap();
        // Issue 22, item 3: the R-13 results name a checkpoint of the applications log that
        // includes their release record.
        let own = &released.audit_checkpoints[0];
        assert_eq!(own.origin, "qaward/applications", "{label}");
        let recorded = audit_records(&mut w, &office, format!("{CYCLE}/stages/materials")).await;
        assert!(
            recorded
                .records
                .iter()
                .any(|r| r.action == "review_stage.release" && r.seq <= own.size),
            "{label}: {:?}",
            recorded.records
        );
        let panel = group(&mut w, pb::ReviewStage::Defence, &all, (15, 16), "d-1").await;
        // Art. 16(4), R-14: the defence is scored on the hearing's days (15-16 July), not on
        // 1 July; the field of the refusal names the panel's days.
        let early = w.keys.token(reviewer_id(&panel.members[0]), Role::Reviewer);
        let e = w
            .scoring
            .save_sheet(as_(
                &early,
                spb::SaveSheetRequest {
                    sheet: Some(spb::Sheet {
                        assignment: assignment_of(&panel, &a).into(),
                        kind: spb::SheetKind::Defence as i32,
                        defence_score: Some(qaward_proto::qaward::common::v1::Decimal {
                            value: "80".into(),
                        }),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(
            (rule_of(&e).as_str(), reason_of(&e).as_str()),
            ("R-14", "OUTSIDE_PANEL_WINDOW"),
            "{label}"
        );
        for x in all {
            defence(&mut w, &panel, assignment_of(&panel, x), "80").await;
        }
        let site = group(&mut w, pb::ReviewStage::Site, &all, (20, 21), "s-1").await;
        for (x, pct) in all.iter().zip([60, 55, 55, 30]) {
            consensus(&mut w, &site, assignment_of(&site, x), pct).await;
        }
        // Art. 16(5)4: the site results wait for the group leaders' meeting, which every
        // site group's leader attends; it raises D's agreed 4.1.1 (50 points) from 30 % to 35 %,
        // a new version of the group's consensus: site 300 → 302.5, composite 460 → 462.
        let e = w
            .apps
            .release_review_stage(as_(
                &office,
                pb::ReleaseReviewStageRequest {
                    cycle: CYCLE.into(),
                    stage: pb::ReviewStage::Site as i32,
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(
            (rule_of(&e).as_str(), reason_of(&e).as_str()),
            ("R-15", "LEADERS_MEETING_MISSING"),
            "{label}"
        );
        let e = w
            .scoring
            .record_leaders_meeting(as_(
                &office,
                spb::RecordLeadersMeetingRequest {
                    cycle: CYCLE.into(),
                    meeting: Some(spb::LeadersMeeting {
                        attendees: Vec::new(),
                        minutes: "无组长到会".into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(reason_of(&e), "LEADER_ABSENT", "{label}");
        let held = leaders_meeting(
            &mut w,
            vec![spb::LeadersMeetingChange {
                assignment: assignment_of(&site, &d).into(),
                items: vec![spb::ItemScore {
                    item_code: "4.1.1".into(),
                    percent: 35,
                    strengths: "高层领导亲自推动质量战略".into(),
                    opportunities: "对标有待加强".into(),
                    reason: "统一评分尺度".into(),
                }],
                reason: "各组评分尺度比对后，该组对领导作用的评分偏严".into(),
                ..Default::default()
            }],
        )
        .await
        .expect("held");
        let totals = |c: &spb::LeadersMeetingChange| {
            let v = |d: &Option<qaward_proto::qaward::common::v1::Decimal>| {
                d.as_ref().map(|d| d.value.clone()).unwrap_or_default()
            };
            (v(&c.total_before), v(&c.total_after))
        };
        assert_eq!(
            totals(&held.changes[0]),
            ("300".to_string(), "302.5".to_string()),
            "{label}"
        );
        assert_eq!(
            held.attendees.len(),
            1,
            "{label}: the one site group's leader"
        );
        release(&mut w, pb::ReviewStage::Site).await.unwrap();

        let fix = |ties: Vec<pb::TieResolution>| {
            as_(
                &office,
                pb::FixCandidatesRequest {
                    cycle: CYCLE.into(),
                    tie_resolutions: ties,
                    request_id: String::new(),
                },
            )
        };
        let e = w.apps.fix_candidates(fix(vec![])).await.unwrap_err();
        assert_eq!(
            (rule_of(&e).as_str(), reason_of(&e).as_str()),
            ("R-18", "TIE_UNRESOLVED"),
            "{label}: {e:?}"
        );
        let e = w
            .apps
            .fix_candidates(fix(vec![tie(&b, true), tie(&c, true)]))
            .await
            .unwrap_err();
        assert_eq!(reason_of(&e), "SEATS_NOT_FILLED", "{label}");
        let fixed = w
            .apps
            .fix_candidates(fix(vec![tie(&b, true), tie(&c, false)]))
            .await
            .unwrap()
            .into_inner();
        assert!(!fixed.vacant, "{label}");
        let stage_of = |code: &str| {
            fixed
                .applications
                .iter()
                .find(|x| x.name == app(code))
                .map(|x| (x.stage, x.last_decision.clone().unwrap()))
                .unwrap()
        };
        assert_eq!(
            stage_of(&a).0,
            pb::ApplicationStage::Candidate as i32,
            "{label}"
        );
        assert_eq!(stage_of(&a).1.inputs["composite_score"], "700");
        assert_eq!(stage_of(&b).0, pb::ApplicationStage::Candidate as i32);
        assert_eq!(stage_of(&b).1.rule, "R-18");
        assert_eq!(stage_of(&c).0, pb::ApplicationStage::NotSelected as i32);
        assert_eq!(stage_of(&d).0, pb::ApplicationStage::NotSelected as i32);
        assert_eq!(stage_of(&d).1.inputs["composite_score"], "462");

        // every consulted department on every candidate; one objection to B.
        w.apps
            .request_consultation(as_(
                &office,
                pb::RequestConsultationRequest {
                    cycle: CYCLE.into(),
                    deadline: date(2026, 7, 31),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap();
        let departments =
            qaward_applications::domain::settings::Settings::default().consulted_departments;
        for dept in &departments {
            let t = w.keys.token_for_org("d", Role::Department, dept);
            for x in [&a, &b] {
                let object = dept == "税务局" && x == &b;
                w.apps
                    .record_consultation_opinion(as_(
                        &t,
                        pb::RecordConsultationOpinionRequest {
                            name: app(x),
                            department: dept.clone(),
                            opinion: if object {
                                pb::Opinion::Object
                            } else {
                                pb::Opinion::Support
                            } as i32,
                            text: if object {
                                "该企业2025年有一笔税款逾期申报".into()
                            } else {
                                "无不良记录".into()
                            },
                            request_id: String::new(),
                        },
                    ))
                    .await
                    .unwrap();
            }
        }
        let open_notice = || {
            as_(
                &office,
                pb::OpenPublicNoticeRequest {
                    cycle: CYCLE.into(),
                    request_id: String::new(),
                },
            )
        };
        let e = w.apps.open_public_notice(open_notice()).await.unwrap_err();
        assert_eq!(
            (rule_of(&e).as_str(), reason_of(&e).as_str()),
            ("R-20", "CONSULTATION_PENDING"),
            "{label}"
        );
        w.apps
            .decide_objection(as_(
                &office,
                pb::DecideObjectionRequest {
                    name: app(&b),
                    department: "税务局".into(),
                    upheld: false,
                    reason: "逾期已补正，不属于重大违法".into(),
                    request_id: String::new(),
                    fraud: false,
                },
            ))
            .await
            .unwrap();
        let with_id = || {
            as_(
                &office,
                pb::OpenPublicNoticeRequest {
                    cycle: CYCLE.into(),
                    request_id: "notice-1".into(),
                },
            )
        };
        let notice = w
            .apps
            .open_public_notice(with_id())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(notice.entries.len(), 2, "{label}");
        // AIP-155: a retry gets the first answer, though the candidates it checked have moved
        // on to the notice since (a fresh call would find none, R-21).
        let again = w
            .apps
            .open_public_notice(with_id())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(again, notice, "{label}");
        // Issue 22, item 3: the notice prints the signed checkpoints of the services' audit
        // logs, the applications' first, including the notice's own opening.
        let origins: Vec<&str> = notice
            .audit_checkpoints
            .iter()
            .map(|c| c.origin.as_str())
            .collect();
        assert_eq!(
            origins[..3],
            ["qaward/applications", "qaward/reviewers", "qaward/scoring"],
            "{label}"
        );
        let opened = audit_records(&mut w, &office, format!("{CYCLE}/publicNotice")).await;
        let seq = opened
            .records
            .iter()
            .find(|r| r.action == "cycle.open_public_notice")
            .unwrap()
            .seq;
        assert!(
            seq <= notice.audit_checkpoints[0].size,
            "{label}: the checkpoint includes the opening"
        );
        for c in &notice.audit_checkpoints {
            let parsed = qaward_kit::audit::Checkpoint::parse(&c.text).unwrap();
            assert_eq!(
                (parsed.size as i64, hex::encode(parsed.root)),
                (c.size, c.root.clone()),
                "{label}"
            );
        }
        // the public reads it.
        let public = w.keys.token("citizen-1", Role::Public);
        let read = w
            .apps
            .get_public_notice(as_(
                &public,
                pb::GetPublicNoticeRequest {
                    name: format!("{CYCLE}/publicNotice"),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let listed: Vec<&str> = read
            .entries
            .iter()
            .map(|e| e.application.as_str())
            .collect();
        assert_eq!(listed, [app(&a).as_str(), app(&b).as_str()], "{label}");
        let first = &read.entries[0];
        let v = |d: &Option<qaward_proto::qaward::common::v1::Decimal>| d.clone().unwrap().value;
        assert_eq!(
            (
                v(&first.review_score),
                v(&first.defence_score),
                v(&first.composite_score)
            ),
            ("620".to_string(), "80".to_string(), "700".to_string()),
            "{label}: the results are published with the candidates (R-21)"
        );

        // Complaints: one against A (unfounded), one against B (substantiated).
        let complain = |code: &str| {
            as_(
                &public,
                pb::CreateComplaintRequest {
                    parent: app(code),
                    complaint: Some(pb::Complaint {
                        text: "举报该企业申报材料中的获奖证书系伪造".into(),
                        evidence: vec!["证书照片".into()],
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            )
        };
        let against_a = w
            .apps
            .create_complaint(complain(&a))
            .await
            .unwrap()
            .into_inner();
        let against_b = w
            .apps
            .create_complaint(complain(&b))
            .await
            .unwrap()
            .into_inner();
        let resolve = |name: &str, outcome: pb::ComplaintOutcome| {
            as_(
                &office,
                pb::ResolveComplaintRequest {
                    name: name.into(),
                    outcome: outcome as i32,
                    investigation: "经核查发证机关记录".into(),
                    request_id: String::new(),
                    fraud: outcome == pb::ComplaintOutcome::Substantiated,
                },
            )
        };
        // The committee cannot meet while the notice runs: no unit may vote yet.
        let e = ballot(&mut w, 1, &a, Choice::Adopt).await.unwrap_err();
        assert_eq!(reason_of(&e), "NOTICE_RUNNING", "{label}");
        w.apps
            .resolve_complaint(resolve(&against_a.name, pb::ComplaintOutcome::Unfounded))
            .await
            .unwrap();
        let resolved = w
            .apps
            .resolve_complaint(resolve(
                &against_b.name,
                pb::ComplaintOutcome::Substantiated,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resolved.outcome, pb::ComplaintOutcome::Substantiated as i32);
        let out = get(&mut w, &office, &b).await.unwrap();
        assert_eq!(
            out.stage,
            pb::ApplicationStage::Disqualified as i32,
            "{label}"
        );
        assert_eq!(out.last_decision.unwrap().rule, "R-21");
        // Scoring takes B out of the ranking; the ranking was released when the candidates
        // were fixed, so it is not edited: a new version with the reason (R-51, issue 24).
        let scoring = w.scoring.clone();
        let versions = eventually(|| async {
            let v = scoring
                .clone()
                .list_result_versions(as_(
                    &office,
                    spb::ListResultVersionsRequest {
                        cycle: CYCLE.into(),
                        ..Default::default()
                    },
                ))
                .await
                .unwrap()
                .into_inner()
                .versions;
            (v.len() == 2).then_some(v)
        })
        .await;
        let of_b = |x: &spb::CycleResults| {
            x.results
                .iter()
                .find(|r| r.application == app(&b))
                .map(|r| r.outcome)
        };
        assert!(
            of_b(&versions[0]).is_some_and(|o| o != spb::Outcome::Disqualified as i32),
            "{label}: as released, B was ranked"
        );
        assert_eq!(
            of_b(&versions[1]),
            Some(spb::Outcome::Disqualified as i32),
            "{label}"
        );
        assert!(versions[1].version_reason.starts_with("R-21"), "{label}");
        let e = w
            .apps
            .resolve_complaint(resolve(
                &against_a.name,
                pb::ComplaintOutcome::Substantiated,
            ))
            .await
            .unwrap_err();
        assert_eq!(reason_of(&e), "ALREADY_RESOLVED", "{label}");

        // After the 7 days: a complaint is no objection any more but a tip-off, accepted
        // with its case number, not refused (Art. 6(5); before, OUTSIDE_NOTICE_WINDOW); found
        // unfounded, A stays. 5 of the 8 units cannot decide.
        w.clock.set(time::macros::datetime!(2026-07-09 01:00 UTC));
        let late = w
            .apps
            .create_complaint(complain(&a))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (late.kind, late.case_number.as_str()),
            (pb::ComplaintKind::TipOff as i32, "yunyang-2026-0003"),
            "{label}"
        );
        assert_eq!(
            against_a.kind,
            pb::ComplaintKind::Objection as i32,
            "{label}"
        );
        w.apps
            .resolve_complaint(resolve(&late.name, pb::ComplaintOutcome::Unfounded))
            .await
            .unwrap();
        // Art. 5, R-22: each member unit votes for itself, with its own token. The office
        // cannot vote for one (its role is not admitted), nor can a unit not on the list.
        let e = w
            .apps
            .cast_committee_ballot(as_(&office, ballot_of(&a, 0, Choice::Adopt)))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{label}");
        let stranger = w
            .keys
            .token_in("x", Role::CommitteeMember, "县教育局", "yunyang");
        let e = w
            .apps
            .cast_committee_ballot(as_(&stranger, ballot_of(&a, 0, Choice::Adopt)))
            .await
            .unwrap_err();
        assert_eq!(
            (rule_of(&e).as_str(), reason_of(&e).as_str()),
            ("R-22", "NOT_A_MEMBER_UNIT"),
            "{label}"
        );
        // Five units vote: the first stands aside on A with its reason, four adopt.
        let mut recusal = ballot_of(&a, 0, Choice::Recused);
        let e = w
            .apps
            .cast_committee_ballot(as_(&member(&w, 0), recusal.clone()))
            .await
            .unwrap_err();
        assert_eq!(
            fields(&e),
            ["ballot.votes[0].note"],
            "{label}: a recusal says why"
        );
        if let Some(b) = recusal.ballot.as_mut() {
            b.votes[0].note = "该单位负责人与申报企业存在亲属关系".into();
        }
        w.apps
            .cast_committee_ballot(as_(&member(&w, 0), recusal))
            .await
            .unwrap();
        for n in 1..=4 {
            ballot(&mut w, n, &a, Choice::Adopt).await.unwrap();
        }
        let e = ballot(&mut w, 1, &a, Choice::NotAdopt).await.unwrap_err();
        assert_eq!(
            reason_of(&e),
            "ALREADY_VOTED",
            "{label}: a vote is not changed"
        );
        // 5 of the 8 units cannot decide.
        let e = close(&mut w, 0).await.unwrap_err();
        assert_eq!(
            (rule_of(&e).as_str(), reason_of(&e).as_str()),
            ("R-22", "NO_QUORUM"),
            "{label}"
        );
        let government = w.keys.token_for("county", Role::Government, "yunyang");
        let approve = |token: &str| {
            as_(
                token,
                pb::RecordApprovalRequest {
                    name: CYCLE.into(),
                    document_number: "云阳府发〔2026〕18号".into(),
                    approval_date: date(2026, 7, 20),
                    request_id: String::new(),
                    decisions: vec![pb::ApprovalDecision {
                        application: app(&a),
                        approved: true,
                        note: String::new(),
                    }],
                },
            )
        };
        let e = w
            .apps
            .record_approval(approve(&government))
            .await
            .unwrap_err();
        assert_eq!(reason_of(&e), "NOT_DECIDED", "{label}");
        // The sixth unit abstains: 6 of 8 present is a quorum; of the five not recused, four
        // adopt — more than half (the default rule; an abstention does not adopt).
        ballot(&mut w, 5, &a, Choice::Abstain).await.unwrap();
        let decided = close(&mut w, 0).await.unwrap().into_inner();
        assert_eq!(
            decided.cycle_state,
            pb::CycleState::Decided as i32,
            "{label}"
        );
        assert_eq!(decided.units_present.len(), 6, "{label}");
        assert_eq!(decided.units_absent, ["县应急局", "县税务局"], "{label}");
        let d = &decided.decisions[0];
        assert_eq!(
            (d.adopted, d.adopt, d.not_adopt, d.abstain, d.recused),
            (true, 4, 0, 1, 1),
            "{label}: {}",
            d.note
        );
        let e = ballot(&mut w, 6, &a, Choice::Adopt).await.unwrap_err();
        assert_eq!(reason_of(&e), "ALREADY_DECIDED", "{label}");
        // The government acts for itself (Art. 16(10)): the office may not record it.
        let e = w.apps.record_approval(approve(&office)).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{label}");

        // approval; A holds the award with its certificate number.
        let approved = w
            .apps
            .record_approval(approve(&government))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(approved.state, pb::CycleState::Approved as i32, "{label}");
        assert_eq!(approved.approval_document, "云阳府发〔2026〕18号");
        // Issue 22, item 3: the award names the audit checkpoints, the applications' first
        // (which includes the approval), and reading the cycle prints the same.
        let origins: Vec<&str> = approved
            .award_audit_checkpoints
            .iter()
            .map(|c| c.origin.as_str())
            .collect();
        assert_eq!(
            origins[..3],
            ["qaward/applications", "qaward/reviewers", "qaward/scoring"],
            "{label}"
        );
        let read = w
            .apps
            .get_cycle(as_(&office, pb::GetCycleRequest { name: CYCLE.into() }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            read.award_audit_checkpoints, approved.award_audit_checkpoints,
            "{label}"
        );
        let winner = get(&mut w, &office, &a).await.unwrap();
        assert_eq!(
            winner.stage,
            pb::ApplicationStage::Awarded as i32,
            "{label}"
        );
        assert_eq!(winner.last_decision.unwrap().rule, "R-23");
        // the award reminds its holder of each year's report, for the programme's ban
        // years (3), each due the next 30 June (issue 24: before, nothing created them).
        let due: Vec<(String, String)> = eventually(|| async {
            let all = w
                .notifications
                .clone()
                .list_reminders(as_(
                    &office,
                    npb::ListRemindersRequest {
                        page_size: 100,
                        page_token: String::new(),
                    },
                ))
                .await
                .unwrap()
                .into_inner()
                .reminders;
            let mine: Vec<(String, String)> = all
                .into_iter()
                .filter(|r| r.event_type == "annual_report.due" && r.recipients[0].id == a)
                .map(|r| {
                    let due =
                        time::OffsetDateTime::from_unix_timestamp(r.deadline.unwrap().seconds)
                            .unwrap()
                            .to_offset(time::macros::offset!(+8));
                    (r.variables["report_year"].clone(), due.date().to_string())
                })
                .collect();
            (mine.len() == 3).then_some(mine)
        })
        .await;
        let mut years: Vec<&str> = due.iter().map(|(y, _)| y.as_str()).collect();
        years.sort();
        assert_eq!(years, ["2026", "2027", "2028"], "{label}");
        assert!(
            due.iter()
                .all(|(y, d)| *d == format!("{}-06-30", y.parse::<i32>().unwrap() + 1)),
            "{label}: each due the next 30 June: {due:?}"
        );

        // next year the winner is barred, with the rule.
        w.apps
            .create_cycle(as_(
                &office,
                pb::CreateCycleRequest {
                    parent: "programmes/yunyang".into(),
                    cycle: Some(pb::Cycle {
                        deadline: Some(prost_types::Timestamp {
                            seconds: time::macros::datetime!(2027-06-30 17:00 +8).unix_timestamp(),
                            nanos: 0,
                        }),
                        ..super::notice(2027)
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap();
        let next = w
            .apps
            .check_eligibility(as_(
                &office,
                pb::CheckEligibilityRequest {
                    enterprise: format!("enterprises/{a}"),
                    cycle: "programmes/yunyang/cycles/2027".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(!next.eligible, "{label}");
        assert!(
            next.reasons.iter().any(|r| r.rule == "R-04"),
            "{label}: {:?}",
            next.reasons
        );
        // Art. 12(2): B's substantiated complaint found fraud, which bars B too — not only a
        // site-visit stop does (issue 24).
        let barred = w
            .apps
            .check_eligibility(as_(
                &office,
                pb::CheckEligibilityRequest {
                    enterprise: format!("enterprises/{b}"),
                    cycle: "programmes/yunyang/cycles/2027".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(
            !barred.eligible && barred.reasons.iter().any(|r| r.rule == "R-04"),
            "{label}: {:?}",
            barred.reasons
        );
        let e = w
            .apps
            .get_public_notice(as_(
                &public,
                pb::GetPublicNoticeRequest {
                    name: "programmes/yunyang/cycles/2027/publicNotice".into(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound, "{label}");

        // an incident report within 15 working days (28 Sep → 23 Oct 2026 across the
        // National Day holiday and its make-up Saturday) is on time; three days later it is late.
        let holder = w.keys.token_for_org("e", Role::Enterprise, &a);
        let file = |kind: pb::ReportKind,
                    year: i32,
                    event: Option<qaward_proto::qaward::common::v1::Date>| {
            as_(
                &holder,
                pb::FileReportRequest {
                    parent: format!("enterprises/{a}"),
                    report: Some(pb::WinnerReport {
                        kind: kind as i32,
                        year,
                        text: "报告内容".into(),
                        event_date: event,
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            )
        };
        w.clock.set(time::macros::datetime!(2026-10-23 10:00 +8));
        let on_time = w
            .apps
            .file_report(file(pb::ReportKind::Incident, 0, date(2026, 9, 28)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (on_time.late, on_time.due_date),
            (false, date(2026, 10, 23)),
            "{label}"
        );
        w.clock.set(time::macros::datetime!(2026-10-26 10:00 +8));
        let late = w
            .apps
            .file_report(file(pb::ReportKind::Incident, 0, date(2026, 9, 28)))
            .await
            .unwrap()
            .into_inner();
        assert!(late.late, "{label}");
        // each incident report gives the office the task of considering revocation.
        let tasks = eventually(|| async {
            let n = office_told(&w, "incident_report.review").await;
            (n == 2).then_some(n)
        })
        .await;
        assert_eq!(tasks, 2, "{label}");
        // An incident before the award (20 July) is no holder's report (issue 25, item 7).
        let e = w
            .apps
            .file_report(file(pb::ReportKind::Incident, 0, date(2026, 7, 1)))
            .await
            .unwrap_err();
        assert_eq!(
            (e.code(), super::fields(&e)),
            (Code::InvalidArgument, vec!["report.event_date".to_string()]),
            "{label}"
        );
        let e = w
            .apps
            .file_report(file(pb::ReportKind::Incident, 0, None))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{label}");

        // the report on 2026 by 30 June 2027 is on time; the one on 2027 is missing
        // in July 2028 and the office's list says so.
        w.clock.set(time::macros::datetime!(2027-06-15 10:00 +8));
        let annual = w
            .apps
            .file_report(file(pb::ReportKind::Annual, 2026, None))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (annual.late, annual.due_date),
            (false, date(2027, 6, 30)),
            "{label}"
        );
        w.clock.set(time::macros::datetime!(2028-07-05 10:00 +8));
        let overdue = w
            .apps
            .list_overdue_reports(as_(
                &office,
                pb::ListOverdueReportsRequest {
                    programme: "programmes/yunyang".into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let got: Vec<(String, i32)> = overdue
            .reports
            .iter()
            .map(|r| (r.enterprise.clone(), r.report_year))
            .collect();
        assert_eq!(got, [(format!("enterprises/{a}"), 2027)], "{label}");

        // revocation on a spot check's finding, as Art. 20 writes it: the office
        // verifies, the committee reviews, the county government approves; then the award is
        // withdrawn and the enterprise barred until 5 July 2031.
        let revoke = |ground: pb::RevocationGround| {
            as_(
                &office,
                pb::RevokeAwardRequest {
                    name: format!("enterprises/{a}"),
                    reason: "国家监督抽查主导产品不合格".into(),
                    ground: ground as i32,
                    request_id: String::new(),
                },
            )
        };
        let e = w
            .apps
            .revoke_award(revoke(pb::RevocationGround::Unspecified))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{label}");
        let case = w
            .apps
            .revoke_award(revoke(pb::RevocationGround::SpotCheck))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(case.state, pb::RevocationState::Verified as i32, "{label}");
        let e = w
            .apps
            .revoke_award(revoke(pb::RevocationGround::SpotCheck))
            .await
            .unwrap_err();
        assert_eq!(reason_of(&e), "REVOCATION_PENDING", "{label}");
        let decide = |token: &str, approved: bool| {
            as_(
                token,
                pb::ApproveRevocationRequest {
                    name: case.name.clone(),
                    approved,
                    document_number: "云阳府发〔2028〕5号".into(),
                    approval_date: date(2028, 7, 5),
                    publication: "云阳县人民政府网站 2028-07-05".into(),
                    note: String::new(),
                    request_id: String::new(),
                },
            )
        };
        // The government cannot go before the committee; nobody takes another's step.
        let e = w
            .apps
            .approve_revocation(decide(&government, true))
            .await
            .unwrap_err();
        assert_eq!(
            (rule_of(&e).as_str(), reason_of(&e).as_str()),
            ("R-32", "REVOCATION_OUT_OF_ORDER"),
            "{label}"
        );
        let review = |token: &str| {
            as_(
                token,
                pb::ReviewRevocationRequest {
                    name: case.name.clone(),
                    endorsed: true,
                    note: "经审议，同意撤销并报请县政府审批".into(),
                    request_id: String::new(),
                },
            )
        };
        for token in [&office, &government] {
            let e = w.apps.review_revocation(review(token)).await.unwrap_err();
            assert_eq!(e.code(), Code::PermissionDenied, "{label}");
        }
        let e = w
            .apps
            .approve_revocation(decide(&office, true))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{label}");
        let reviewed = w
            .apps
            .review_revocation(review(&member(&w, 0)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (reviewed.state, reviewed.committee_unit.as_str()),
            (pb::RevocationState::Endorsed as i32, "县发展改革委"),
            "{label}"
        );
        let approved = w
            .apps
            .approve_revocation(decide(&government, true))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            approved.state,
            pb::RevocationState::Approved as i32,
            "{label}"
        );
        assert_eq!(approved.ban_until, date(2031, 7, 5), "{label}");
        assert_eq!(approved.publication, "云阳县人民政府网站 2028-07-05");
        // The award's duties end with it: its report reminders are cancelled.
        let notifications = w.notifications.clone();
        let cancelled = eventually(|| async {
            let mine: Vec<String> = notifications
                .clone()
                .list_reminders(as_(
                    &office,
                    npb::ListRemindersRequest {
                        page_size: 100,
                        page_token: String::new(),
                    },
                ))
                .await
                .unwrap()
                .into_inner()
                .reminders
                .into_iter()
                .filter(|r| r.event_type == "annual_report.due" && r.recipients[0].id == a)
                .filter(|r| r.cancel_time.is_some())
                .map(|r| r.cancel_reason)
                .collect();
            (mine.len() == 3).then_some(mine)
        })
        .await;
        assert!(
            cancelled.iter().all(|r| r.starts_with("R-32")),
            "{label}: {cancelled:?}"
        );
        let e = w
            .apps
            .revoke_award(revoke(pb::RevocationGround::SpotCheck))
            .await
            .unwrap_err();
        assert_eq!(reason_of(&e), "NO_STANDING_AWARD", "{label}");
        let e = w
            .apps
            .approve_revocation(decide(&government, true))
            .await
            .unwrap_err();
        assert_eq!(
            reason_of(&e),
            "REVOCATION_OUT_OF_ORDER",
            "{label}: it is over"
        );
        let e = w
            .apps
            .file_report(file(pb::ReportKind::Annual, 2027, None))
            .await
            .unwrap_err();
        assert_eq!(reason_of(&e), "NOT_AN_AWARD_HOLDER", "{label}");
        w.apps
            .create_cycle(as_(
                &office,
                pb::CreateCycleRequest {
                    parent: "programmes/yunyang".into(),
                    cycle: Some(pb::Cycle {
                        deadline: Some(prost_types::Timestamp {
                            seconds: time::macros::datetime!(2029-06-30 17:00 +8).unix_timestamp(),
                            nanos: 0,
                        }),
                        ..super::notice(2029)
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap();
        let barred = w
            .apps
            .check_eligibility(as_(
                &office,
                pb::CheckEligibilityRequest {
                    enterprise: format!("enterprises/{a}"),
                    cycle: "programmes/yunyang/cycles/2029".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let r33 = barred
            .reasons
            .iter()
            .find(|r| r.rule == "R-33")
            .unwrap_or_else(|| {
                panic!("{label}: {:?}", barred.reasons);
            });
        assert!(
            r33.message.contains("2031-07-05"),
            "{label}: {}",
            r33.message
        );
    }
}

#[tokio::test]
async fn r17_nobody_at_400_leaves_the_year_vacant() {
    for db in testing::backends("applications", &qaward_applications::MIGRATIONS).await {
        let mut w = world(db).await;
        let label = w.label;
        let office = w.office.clone();
        set_up_registry(&mut w).await;
        open_cycle(&mut w).await;
        let only = code("91500235MA5U7WW09");
        let me = applicant(&mut w, &only, "重庆云阳空缺机械有限公司").await;
        accepted(&mut w, &only, &me).await;
        w.clock.set(time::macros::datetime!(2026-07-01 01:00 UTC));
        let x = [only.as_str()];
        // Materials 600, site 300: review 0.2 × 600 + 0.8 × 300 = 360, in the final selection;
        // defence 30: composite 390, below 400.
        let m = group(&mut w, pb::ReviewStage::Materials, &x, (6, 10), "vm").await;
        consensus(&mut w, &m, assignment_of(&m, &only), 60).await;
        release(&mut w, pb::ReviewStage::Materials).await.unwrap();
        let d = group(&mut w, pb::ReviewStage::Defence, &x, (15, 16), "vd").await;
        defence(&mut w, &d, assignment_of(&d, &only), "30").await;
        let s = group(&mut w, pb::ReviewStage::Site, &x, (20, 21), "vs").await;
        consensus(&mut w, &s, assignment_of(&s, &only), 30).await;
        release(&mut w, pb::ReviewStage::Site).await.unwrap();
        let fixed = w
            .apps
            .fix_candidates(as_(
                &office,
                pb::FixCandidatesRequest {
                    cycle: CYCLE.into(),
                    tie_resolutions: vec![],
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(fixed.vacant, "{label}");
        assert_eq!(
            fixed.cycle.unwrap().state,
            pb::CycleState::Vacant as i32,
            "{label}"
        );
        let a = &fixed.applications[0];
        assert_eq!(a.stage, pb::ApplicationStage::NotSelected as i32);
        assert_eq!(
            a.last_decision.as_ref().unwrap().inputs["composite_score"],
            "390",
            "{label}"
        );
        let e = w
            .apps
            .open_public_notice(as_(
                &office,
                pb::OpenPublicNoticeRequest {
                    cycle: CYCLE.into(),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(reason_of(&e), "NO_CANDIDATES", "{label}");
    }
}

/// The first `Some` that `probe` gives within 10 s (what the outbox relays arrives a moment
/// after the commit).
pub(super) async fn eventually<T, F, Fut>(probe: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = std::time::Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "not within 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}
