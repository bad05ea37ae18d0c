//! Complaints as cases (issue 25, item 3; Art. 6(5), R-52): about an applicant or a reviewer
//! of its review, each with a number, an owner, a deadline and an outcome; its filer follows
//! it; the filer's identity is the office's alone.

use qaward_kit::{auth::Role, testing};
use qaward_proto::qaward::applications::v1 as pb;
use tonic::Code;

use super::{
    as_, code,
    reviews::{
        accepted, app, applicant, get, group, open_cycle, reason_of, reviewer_id, rule_of,
        set_up_registry, world,
    },
};

#[tokio::test]
async fn r52_a_complaint_about_a_reviewer_is_a_case_its_filer_follows_and_only_the_office_sees_who_filed()
 {
    for db in testing::backends("applications", &qaward_applications::MIGRATIONS).await {
        let mut w = world(db).await;
        let label = w.label;
        let office = w.office.clone();
        set_up_registry(&mut w).await;
        open_cycle(&mut w).await;
        let x = code("91500235MA5U7CP01");
        let me = applicant(&mut w, &x, "重庆云阳投诉机械有限公司").await;
        accepted(&mut w, &x, &me).await;
        w.clock.set(time::macros::datetime!(2026-07-01 01:00 UTC));
        let g = group(
            &mut w,
            pb::ReviewStage::Materials,
            &[x.as_str()],
            (6, 10),
            "cp",
        )
        .await;
        let member = reviewer_id(&g.members[0]).to_string();

        let citizen = w.keys.token("citizen-7", Role::Public);
        let about = |reviewer: &str| {
            as_(
                &citizen,
                pb::CreateComplaintRequest {
                    parent: app(&x),
                    complaint: Some(pb::Complaint {
                        text: "该评审员曾在申报企业担任顾问，未申请回避".into(),
                        evidence: vec!["顾问聘书复印件".into()],
                        reviewer: reviewer.into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            )
        };
        // Only a reviewer of this application's review can be complained about here.
        let e = w
            .apps
            .create_complaint(about("reviewers/NOBODY-1"))
            .await
            .unwrap_err();
        assert_eq!(
            (rule_of(&e).as_str(), reason_of(&e).as_str()),
            ("R-52", "NOT_A_REVIEWER_OF_IT"),
            "{label}"
        );
        let filed = w
            .apps
            .create_complaint(about(&format!("reviewers/{member}")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(filed.kind, pb::ComplaintKind::TipOff as i32, "{label}");
        assert_eq!(filed.reviewer, format!("reviewers/{member}"), "{label}");
        assert!(filed.answer_by.is_some() && !filed.case_number.is_empty());
        assert_eq!(
            filed.complainant, "",
            "{label}: the filer's name is the office's"
        );

        // The office gives the case an owner; it alone sees who filed it.
        let assigned = w
            .apps
            .assign_complaint(as_(
                &office,
                pb::AssignComplaintRequest {
                    name: filed.name.clone(),
                    owner: "评选办 李科长".into(),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (assigned.owner.as_str(), assigned.complainant.as_str()),
            ("评选办 李科长", "citizen-7"),
            "{label}"
        );
        let apps = w.apps.clone();
        let read = |token: String| {
            let apps = apps.clone();
            let name = filed.name.clone();
            async move {
                apps.clone()
                    .get_complaint(as_(&token, pb::GetComplaintRequest { name }))
                    .await
            }
        };
        // Its filer follows it: number, owner, deadline, outcome — not its own name back.
        let followed = read(citizen.clone()).await.unwrap().into_inner();
        assert_eq!(
            (
                followed.case_number.as_str(),
                followed.owner.as_str(),
                followed.outcome,
                followed.complainant.as_str()
            ),
            (
                filed.case_number.as_str(),
                "评选办 李科长",
                pb::ComplaintOutcome::Pending as i32,
                ""
            ),
            "{label}"
        );
        // Nobody else outside the office reads it: not another citizen, not the enterprise
        // complained about, not the reviewer; the supervisor reads it without the filer.
        for other in [
            w.keys.token("citizen-8", Role::Public),
            w.keys.token_for_org(&x, Role::Enterprise, &x),
            w.keys.token(&member, Role::Reviewer),
        ] {
            let e = read(other).await.unwrap_err();
            assert_eq!(e.code(), Code::NotFound, "{label}");
        }
        let supervisor = w.keys.token_for("sup", Role::Supervisor, "yunyang");
        let seen = read(supervisor).await.unwrap().into_inner();
        assert_eq!(seen.complainant, "", "{label}");

        // Substantiated, it concerns the reviewer: the applicant stays in its review.
        w.apps
            .resolve_complaint(as_(
                &office,
                pb::ResolveComplaintRequest {
                    name: filed.name.clone(),
                    outcome: pb::ComplaintOutcome::Substantiated as i32,
                    investigation: "经核实，该评审员三年内曾任企业顾问".into(),
                    request_id: String::new(),
                    fraud: false,
                },
            ))
            .await
            .unwrap();
        let still = get(&mut w, &office, &x).await.unwrap();
        assert_eq!(
            still.stage,
            pb::ApplicationStage::MaterialsReview as i32,
            "{label}"
        );
        let done = read(citizen.clone()).await.unwrap().into_inner();
        assert_eq!(
            done.outcome,
            pb::ComplaintOutcome::Substantiated as i32,
            "{label}"
        );
    }
}
