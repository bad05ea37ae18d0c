//! What the reviewers service's changes set off here (issue 24), with every service in process
//! and wired as `start` wires them: a member replaced after the group started loses read
//! access and their scoring seat, the backup gains both, the office is told, and the services
//! agree (`CheckConsistency`); a redelivered event changes nothing. Before, the leaver kept
//! reading and scoring (docs/reviews.md listed it as a known limit).

use std::time::{Duration, Instant};

use qaward_kit::{auth::Role, testing};
use qaward_proto::qaward::{applications::v1 as pb, reviewers::v1 as rpb, scoring::v1 as spb};
use tonic::Code;

use super::{
    as_, code, date,
    reviews::{
        CYCLE, World, accepted, app, applicant, get, group, office_told, open_cycle,
        set_up_registry, world,
    },
};

async fn agreed(w: &mut World) -> pb::ConsistencyReport {
    let started = Instant::now();
    loop {
        let r = w
            .apps
            .check_consistency(as_(
                &w.office,
                pb::CheckConsistencyRequest {
                    cycle: CYCLE.into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        if r.disagreements.is_empty() && r.events_behind == 0 && r.follower_error.is_empty() {
            return r;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}: still disagree: {r:?}",
            w.label
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn r41_a_member_replaced_after_the_start_loses_read_access_and_scoring_seat() {
    for db in testing::backends("applications", &qaward_applications::MIGRATIONS).await {
        let mut w = world(db).await;
        let label = w.label;
        let office = w.office.clone();
        set_up_registry(&mut w).await;
        open_cycle(&mut w).await;
        let c = code("91500235MA5U7XX01");
        let me = applicant(&mut w, &c, "重庆云阳恰好机械有限公司").await;
        accepted(&mut w, &c, &me).await;
        let g = group(
            &mut w,
            pb::ReviewStage::Materials,
            &[c.as_str()],
            (6, 10),
            "materials-4711",
        )
        .await;
        agreed(&mut w).await;
        // The leader comes first; a member leaves.
        let leaving = g.members[1].clone();
        let token = |w: &World, m: &str| {
            w.keys
                .token(m.trim_start_matches("reviewers/"), Role::Reviewer)
        };
        let t = token(&w, &leaving);
        get(&mut w, &t, &c).await.unwrap();

        w.reviewers
            .create_relation(as_(
                &office,
                rpb::CreateRelationRequest {
                    parent: leaving.clone(),
                    relation: Some(rpb::Relation {
                        enterprise_code: c.clone(),
                        kind: rpb::RelationKind::Consultancy as i32,
                        start_date: date(2026, 7, 7),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap();
        let panel = w
            .reviewers
            .replace_member(as_(
                &office,
                rpb::ReplaceMemberRequest {
                    panel: g.panel.clone(),
                    reviewer: leaving.clone(),
                    reason: rpb::ReplaceReason::LateConflict as i32,
                    note: String::new(),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let joining = panel
            .members
            .iter()
            .find(|m| m.reviewer == leaving)
            .unwrap()
            .replaced_by
            .clone();
        let report = agreed(&mut w).await;
        assert_eq!(
            (report.groups_checked, report.assignments_checked),
            (1, 1),
            "{label}"
        );

        // the leaver reads nothing more; the backup reads the application.
        let e = get(&mut w, &t, &c).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{label}");
        let tj = token(&w, &joining);
        get(&mut w, &tj, &c).await.unwrap();
        // The scoring seat moved with the panel's seat; the group shows the new members.
        let a = w
            .scoring
            .list_assignments(as_(
                &office,
                spb::ListAssignmentsRequest {
                    cycle: CYCLE.into(),
                    application: app(&c),
                    page_size: 10,
                    page_token: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .assignments
            .remove(0);
        let people: Vec<String> = a.people.iter().map(|p| p.reviewer.clone()).collect();
        assert!(
            people.contains(&joining) && !people.contains(&leaving),
            "{label}: {people:?}"
        );
        let after = w
            .apps
            .get_review_group(as_(
                &office,
                pb::GetReviewGroupRequest {
                    name: g.name.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(
            after.members.contains(&joining) && !after.members.contains(&leaving),
            "{label}"
        );
        // The office is told, once.
        let started = Instant::now();
        while office_told(&w, "panel.member_replaced").await == 0
            && started.elapsed() < Duration::from_secs(10)
        {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(office_told(&w, "panel.member_replaced").await, 1, "{label}");
        // the tie began inside the review's window, after its first day: a cooling-off
        // violation, so the reviewer's record has a disciplinary flag and the office is told.
        let flags = w
            .reviewers
            .list_flags(as_(
                &office,
                rpb::ListFlagsRequest {
                    parent: leaving.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .flags;
        assert!(
            flags.iter().any(|f| f.note.contains("R-44")),
            "{label}: {flags:?}"
        );
        let violations = office_told(&w, "reviewer.cooling_off_violation").await;
        assert_eq!(violations, 1, "{label}");

        // A redelivery (the cursor lost, as after a restore) applies nothing twice.
        sqlx::query("DELETE FROM event_cursors")
            .execute(w._dbs[0].db.pool())
            .await
            .unwrap();
        let started = Instant::now();
        loop {
            let p = qaward_kit::events::progress(&w._dbs[0].db, "reviewers")
                .await
                .unwrap();
            if p.applied >= 1 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{label}: the follower re-read nothing"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        agreed(&mut w).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            office_told(&w, "panel.member_replaced").await,
            1,
            "{label}: a redelivered event tells the office again"
        );
    }
}

#[tokio::test]
async fn r45_a_start_retried_after_a_replacement_seats_the_panel_as_it_stands() {
    // The draw was executed (a start that timed out after the reviewers service committed),
    // then a member was replaced, then the office retried the start: the group takes the
    // panel's sitting members, not the draw's; before, it seated the replaced member.
    for db in testing::backends("applications", &qaward_applications::MIGRATIONS).await {
        let mut w = world(db).await;
        let label = w.label;
        let office = w.office.clone();
        set_up_registry(&mut w).await;
        open_cycle(&mut w).await;
        let c = code("91500235MA5U7XX01");
        let me = applicant(&mut w, &c, "重庆云阳恰好机械有限公司").await;
        accepted(&mut w, &c, &me).await;
        let entropy = "materials-4711";
        let prepared = w
            .apps
            .prepare_review_group(as_(
                &office,
                pb::PrepareReviewGroupRequest {
                    parent: CYCLE.into(),
                    review_group: Some(pb::ReviewGroup {
                        stage: pb::ReviewStage::Materials as i32,
                        applications: vec![app(&c)],
                        window_start: date(2026, 7, 6),
                        window_end: date(2026, 7, 10),
                        entropy_source: "两枚骰子".into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let executed = super::reviews::run_draw(&mut w, &prepared.draw, entropy).await;
        let leaving = executed
            .members
            .iter()
            .find(|m| **m != executed.leader)
            .unwrap()
            .clone();
        let panel = w
            .reviewers
            .replace_member(as_(
                &office,
                rpb::ReplaceMemberRequest {
                    panel: executed.panel.clone(),
                    reviewer: leaving.clone(),
                    reason: rpb::ReplaceReason::Declined as i32,
                    note: "临时出差".into(),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let joining = panel
            .members
            .iter()
            .find(|m| m.reviewer == leaving)
            .unwrap()
            .replaced_by
            .clone();
        let started = w
            .apps
            .start_review_group(as_(
                &office,
                pb::StartReviewGroupRequest {
                    name: prepared.name.clone(),
                    entropy: String::new(),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(
            started.members.contains(&joining) && !started.members.contains(&leaving),
            "{label}: {:?}",
            started.members
        );
        agreed(&mut w).await;
    }
}
