//! A committed step reaches its recipient through the outbox: the real binary, every service in
//! one process; an enterprise submits through the gateway, and the applicant's notice arrives
//! in its inbox at the notifications service — relayed with the applications service's own
//! token, rendered from the shipped Chinese template.

use std::time::Duration;

use qaward_proto::qaward::{
    applications::v1::{self as pb, application_service_client::ApplicationServiceClient},
    common::v1::Date,
    notifications::v1::{self as npb, notification_service_client::NotificationServiceClient},
};

use crate::support::{Qaward, with_token};

#[tokio::test]
async fn a_submission_puts_the_applicants_notice_in_its_inbox() {
    let q = Qaward::start(&[], &[]).await;
    let code = qaward_kit::cn::with_check("91500235MA5U7XXX0").unwrap();
    let office = q.token_for("office", "office-1", &["--programme", "yunyang"]);
    let me = q.token_for("enterprise", &code, &["--org", &code]);
    let mut apps = ApplicationServiceClient::new(q.channel("gateway").await);

    apps.create_programme(with_token(
        pb::CreateProgrammeRequest {
            programme: Some(pb::Programme {
                display_name: "云阳县县长质量奖".into(),
                ..Default::default()
            }),
            programme_id: "yunyang".into(),
            request_id: "p".into(),
        },
        &office,
    ))
    .await
    .unwrap();
    let deadline = time::OffsetDateTime::now_utc() + time::Duration::days(30);
    apps.create_cycle(with_token(
        pb::CreateCycleRequest {
            parent: "programmes/yunyang".into(),
            cycle: Some(pb::Cycle {
                year: deadline.year(),
                notice_title: "县长质量奖评选通知".into(),
                conditions: "在本县登记注册并纳税……".into(),
                required_materials: vec!["自评报告".into()],
                deadline: Some(prost_types::Timestamp {
                    seconds: deadline.unix_timestamp(),
                    nanos: 0,
                }),
                ..Default::default()
            }),
            request_id: "c".into(),
        },
        &office,
    ))
    .await
    .unwrap();
    apps.create_enterprise(with_token(
        pb::CreateEnterpriseRequest {
            enterprise: Some(pb::Enterprise {
                display_name: "重庆云阳某某机械有限公司".into(),
                credit_code: code.clone(),
                established_date: Some(Date {
                    year: 2015,
                    month: 3,
                    day: 1,
                }),
                industry_code: "C34".into(),
                recommending_unit: "qinglong-street".into(),
                ..Default::default()
            }),
            request_id: "e".into(),
        },
        &me,
    ))
    .await
    .unwrap();
    let cycle = format!("programmes/yunyang/cycles/{}", deadline.year());
    let name = format!("{cycle}/applications/{code}");
    apps.create_application(with_token(
        pb::CreateApplicationRequest {
            parent: cycle.clone(),
            application: Some(pb::Application {
                enterprise: format!("enterprises/{code}"),
                application_form: "申报表".into(),
                organisation_profile: "企业概况".into(),
                self_assessment: "自评报告正文".into(),
                ..Default::default()
            }),
            request_id: "a".into(),
        },
        &me,
    ))
    .await
    .unwrap();
    let pdf = b"%PDF-1.7 evidence".to_vec();
    let parts = vec![
        pb::UploadEvidenceRequest {
            part: Some(pb::upload_evidence_request::Part::Header(
                pb::EvidenceHeader {
                    parent: name.clone(),
                    file_name: "证书.pdf".into(),
                    content_type: "application/pdf".into(),
                    size_bytes: pdf.len() as i64,
                    ..Default::default()
                },
            )),
            request_id: "u".into(),
        },
        pb::UploadEvidenceRequest {
            part: Some(pb::upload_evidence_request::Part::Chunk(pdf)),
            request_id: String::new(),
        },
    ];
    apps.upload_evidence(with_token(tokio_stream::iter(parts), &me))
        .await
        .unwrap();
    let submitted = apps
        .submit_application(with_token(
            pb::SubmitApplicationRequest {
                name: name.clone(),
                request_id: "s".into(),
            },
            &me,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(submitted.stage, pb::ApplicationStage::Submitted as i32);

    let mut notes = NotificationServiceClient::new(q.channel("gateway").await);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let messages = loop {
        let inbox = notes
            .list_inbox_messages(with_token(
                npb::ListInboxMessagesRequest {
                    parent: format!("inboxes/{code}"),
                    ..Default::default()
                },
                &me,
            ))
            .await
            .unwrap()
            .into_inner()
            .messages;
        if !inbox.is_empty() || tokio::time::Instant::now() > deadline {
            break inbox;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(messages.len(), 1, "the applicant's notice arrived once");
    assert_eq!(
        messages[0].subject,
        "申报材料已提交：重庆云阳某某机械有限公司"
    );
    assert!(messages[0].body.contains(&name), "{}", messages[0].body);
    assert_eq!(q.terminate().await, Some(0));
}
