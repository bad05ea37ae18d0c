//! Templates: shipped for every event and channel, versioned, and checked when registered.

use qaward_kit::{auth::Role, testing};
use qaward_proto::qaward::notifications::v1 as pb;
use tonic::Code;

use crate::*;

#[tokio::test]
async fn a_template_using_a_variable_its_event_lacks_is_refused_and_new_versions_are_used() {
    for db in testing::backends("notifications", &qaward_notifications::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db, settings()).await;
        // Every shipped event has version 1 for each of the four channels; pages resume.
        let mut all = Vec::new();
        let mut token = String::new();
        loop {
            let page = r
                .client
                .list_templates(as_(
                    &r.office,
                    pb::ListTemplatesRequest {
                        page_size: 7,
                        page_token: token.clone(),
                        event_type: String::new(),
                    },
                ))
                .await
                .unwrap()
                .into_inner();
            all.extend(page.templates);
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        let events = qaward_notifications::domain::catalogue::events().len();
        assert_eq!(all.len(), events * 4, "{label}");
        assert!(all.iter().all(|t| t.version == 1));

        let template = |body: &str| pb::Template {
            event_type: "materials_review.passed".into(),
            channel: pb::Channel::Inbox as i32,
            subject: "{{ enterprise_name }}资料评审通过".into(),
            body: body.into(),
            ..Default::default()
        };
        let err = r
            .client
            .create_template(as_(
                &r.office,
                pb::CreateTemplateRequest {
                    template: Some(template(
                        "得分{{ materials_score }}，答辩时间{{ defence_time }}",
                    )),
                    request_id: "t-bad".into(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{label}");
        assert!(err.message().contains("defence_time"), "{}", err.message());

        let v2 = r
            .client
            .create_template(as_(
                &r.office,
                pb::CreateTemplateRequest {
                    template: Some(template(
                        "{{ recipient_name }}：得分{{ materials_score }}分（第二版）",
                    )),
                    request_id: "t-2".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(v2.version, 2, "{label}");
        assert_eq!(v2.name, "templates/materials_review.passed.inbox.v2");

        // Only the office registers templates.
        let supervisor = r.keys.token("sup-1", Role::Supervisor);
        let err = r
            .client
            .create_template(as_(
                &supervisor,
                pb::CreateTemplateRequest {
                    template: Some(template("x")),
                    request_id: "t-3".into(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);

        let n = r
            .create(passed(vec![inbox_recipient(&enterprise())]), "n-1")
            .await;
        assert_eq!(n.deliveries[0].template_version, 2, "{label}");
        r.settle(&n.name, time::Duration::ZERO, delivered).await;
        let me = r.keys.token(&enterprise(), Role::Enterprise);
        let inbox = r.inbox(&me, &enterprise(), false).await.unwrap();
        assert_eq!(
            inbox[0].body, "重庆云阳某某机械有限公司：得分512.50分（第二版）",
            "{label}"
        );
    }
}
