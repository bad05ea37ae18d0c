//! Accepting a notification: idempotent by request id, stored before it is acknowledged,
//! delivered to the inbox; bad input refused with the field named and nothing stored.

use qaward_kit::{auth::Role, fields::FieldKeys, testing};
use qaward_proto::qaward::notifications::v1 as pb;
use tonic::Code;

use crate::*;

#[tokio::test]
async fn the_same_request_id_is_one_notification_and_it_reaches_the_inbox() {
    for db in testing::backends("notifications", &qaward_notifications::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db, settings()).await;
        let code = enterprise();
        let first = r.create(passed(vec![inbox_recipient(&code)]), "n-1").await;
        let again = r.create(passed(vec![inbox_recipient(&code)]), "n-1").await;
        assert_eq!(first, again, "{label}");
        assert!(first.name.starts_with("notifications/"));
        assert_eq!(first.deliveries.len(), 1);
        let d = &first.deliveries[0];
        assert_eq!(
            (d.channel, d.template_version, d.recipient_id.as_str()),
            (pb::Channel::Inbox as i32, 1, code.as_str())
        );

        // The same id for a different notification is refused, not silently merged.
        let err = r
            .client
            .create_notification(as_(
                &r.office,
                pb::CreateNotificationRequest {
                    notification: Some(passed(vec![inbox_recipient("another")])),
                    request_id: "n-1".into(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{label}");

        let n = r.settle(&first.name, time::Duration::ZERO, delivered).await;
        assert_eq!(n.deliveries[0].attempts, 1, "{label}");
        let all = r
            .client
            .list_notifications(as_(&r.office, pb::ListNotificationsRequest::default()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(all.notifications.len(), 1, "{label}: one notification");

        // The enterprise reads its inbox (its subject is its credit code) and marks it read.
        let me = r.keys.token(&code, Role::Enterprise);
        let inbox = r.inbox(&me, &code, false).await.unwrap();
        assert_eq!(inbox.len(), 1, "{label}");
        let m = &inbox[0];
        assert!(
            m.subject.contains("进入陈述答辩和现场评审"),
            "{}",
            m.subject
        );
        assert!(m.body.contains("得分512.50分"), "{}", m.body);
        assert!(
            m.body.starts_with("重庆云阳某某机械有限公司："),
            "{}",
            m.body
        );
        assert!(!m.read);
        let read = r
            .client
            .mark_inbox_message_read(as_(
                &me,
                pb::MarkInboxMessageReadRequest {
                    name: m.name.clone(),
                    request_id: "read-1".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(read.read);
        let unread = r.inbox(&me, &code, true).await.unwrap();
        assert!(unread.is_empty(), "{label}");

        // Someone else's inbox is not theirs to read, nor to mark.
        let other = r.keys.token("91500235MA5U7YYY0X", Role::Enterprise);
        let err = r.inbox(&other, &code, false).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{label}");
        let err = r
            .client
            .mark_inbox_message_read(as_(
                &r.office,
                pb::MarkInboxMessageReadRequest {
                    name: m.name.clone(),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{label}");
    }
}

#[tokio::test]
async fn bad_input_names_the_field_and_stores_nothing() {
    for db in testing::backends("notifications", &qaward_notifications::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db, settings()).await;
        let code = enterprise();
        let with = |f: &dyn Fn(&mut pb::Notification)| {
            let mut n = passed(vec![inbox_recipient(&code)]);
            f(&mut n);
            n
        };
        let past = timestamp(r.now() - time::Duration::minutes(10));
        let cases: Vec<(pb::Notification, &str)> = vec![
            (
                with(&|n| n.event_type = "award.granted_typo".into()),
                "notification.event_type",
            ),
            (with(&|n| n.recipients.clear()), "notification.recipients"),
            (
                with(&|n| n.recipients[0].channels = vec![pb::Channel::Email as i32]),
                "notification.recipients[0].email",
            ),
            (
                with(&|n| {
                    n.recipients[0].channels = vec![pb::Channel::Sms as i32];
                    n.recipients[0].mobile = "1381234567".into();
                }),
                "notification.recipients[0].mobile",
            ),
            (
                with(&|n| n.recipients[0].email = "not-an-address".into()),
                "notification.recipients[0].email",
            ),
            (
                with(&|n| n.recipients[0].id = "a/b".into()),
                "notification.recipients[0].id",
            ),
            (
                with(&|n| n.recipients[0].channels = vec![9]),
                "notification.recipients[0].channels[0]",
            ),
            (
                with(&|n| {
                    n.variables.remove("materials_score");
                }),
                "notification.variables",
            ),
            (
                with(&|n| {
                    n.variables.insert("bonus".into(), "1".into());
                }),
                "notification.variables[bonus]",
            ),
            (
                with(&|n| n.send_time = Some(past)),
                "notification.send_time",
            ),
        ];
        for (i, (n, field)) in cases.into_iter().enumerate() {
            let err = r
                .client
                .create_notification(as_(
                    &r.office,
                    pb::CreateNotificationRequest {
                        notification: Some(n),
                        request_id: format!("bad-{i}"),
                    },
                ))
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{label} case {i}");
            let details = tonic_types::StatusExt::get_error_details(&err);
            let fields: Vec<String> = details
                .bad_request()
                .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
                .unwrap_or_default();
            assert!(
                fields.iter().any(|f| f == field),
                "{label} case {i}: wanted {field}, got {fields:?}: {}",
                err.message()
            );
        }
        // No request id: refused too (it is the idempotency key).
        let err = r
            .client
            .create_notification(as_(
                &r.office,
                pb::CreateNotificationRequest {
                    notification: Some(passed(vec![inbox_recipient(&code)])),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        let all = r
            .client
            .list_notifications(as_(&r.office, pb::ListNotificationsRequest::default()))
            .await
            .unwrap()
            .into_inner();
        assert!(all.notifications.is_empty(), "{label}: nothing stored");
        assert_eq!(
            qaward_notifications::store::count_state(&r.db, "pending")
                .await
                .unwrap(),
            0
        );
    }
}

#[tokio::test]
async fn only_senders_send_and_a_recipient_sees_only_its_own_part() {
    for db in testing::backends("notifications", &qaward_notifications::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db, settings()).await;
        let code = enterprise();
        let me = r.keys.token(&code, Role::Enterprise);
        let err = r
            .client
            .create_notification(as_(
                &me,
                pb::CreateNotificationRequest {
                    notification: Some(passed(vec![inbox_recipient(&code)])),
                    request_id: "x-1".into(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{label}");

        // A service (an outbox relay) may send.
        let service = r.keys.token("system:applications", Role::Service);
        let mut copy = inbox_recipient("unit-500235-101");
        copy.display_name = "云阳县青龙街道办事处".into();
        r.client
            .create_notification(as_(
                &service,
                pb::CreateNotificationRequest {
                    notification: Some(passed(vec![inbox_recipient(&code), copy])),
                    request_id: "evt-1".into(),
                },
            ))
            .await
            .unwrap();

        let mine = r
            .client
            .list_notifications(as_(
                &me,
                pb::ListNotificationsRequest {
                    recipient_id: code.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(mine.notifications.len(), 1, "{label}");
        let n = &mine.notifications[0];
        assert_eq!(
            n.recipients.len(),
            1,
            "{label}: the copy's address is not shown"
        );
        assert!(n.deliveries.iter().all(|d| d.recipient_id == code));
        let err = r
            .client
            .list_notifications(as_(&me, pb::ListNotificationsRequest::default()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{label}");
    }
}

#[tokio::test]
async fn fifty_concurrent_first_calls_with_one_request_id_get_one_answer_and_make_one_notification()
{
    // Issue 21: 2-22 % of simultaneous first calls once got ALREADY_EXISTS (or another error)
    // instead of the stored answer. Each now waits its turn and gets the first one's answer.
    for db in testing::backends("notifications", &qaward_notifications::MIGRATIONS).await {
        let label = db.label;
        let r = start(db, settings()).await;
        let code = enterprise();
        let calls = (0..50).map(|_| {
            let mut client = r.client.clone();
            let office = r.office.clone();
            let n = passed(vec![inbox_recipient(&code)]);
            tokio::spawn(async move {
                client
                    .create_notification(as_(
                        &office,
                        pb::CreateNotificationRequest {
                            notification: Some(n),
                            request_id: "rush-1".into(),
                        },
                    ))
                    .await
                    .map(|r| r.into_inner().name)
            })
        });
        let answers: Vec<Result<String, tonic::Status>> = futures_util::future::join_all(calls)
            .await
            .into_iter()
            .map(|j| j.unwrap())
            .collect();
        let failed: Vec<_> = answers.iter().filter_map(|a| a.as_ref().err()).collect();
        assert!(
            failed.is_empty(),
            "{label}: {} of 50 failed, the first: {:?}",
            failed.len(),
            failed.first().map(|s| (s.code(), s.message()))
        );
        let names: std::collections::BTreeSet<&String> =
            answers.iter().filter_map(|a| a.as_ref().ok()).collect();
        assert_eq!(names.len(), 1, "{label}: {names:?}");
        let all = r
            .client
            .clone()
            .list_notifications(as_(&r.office, pb::ListNotificationsRequest::default()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(all.notifications.len(), 1, "{label}");
    }
}

#[tokio::test]
async fn r54_addresses_are_sealed_at_rest_masked_for_staff_and_shown_to_their_recipient() {
    for db in testing::backends("notifications", &qaward_notifications::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db, settings()).await;
        let code = enterprise();
        let (email, mobile) = ("zhang.san@example.cn", "13812345678");
        let recipient = pb::Recipient {
            email: email.into(),
            mobile: mobile.into(),
            channels: vec![pb::Channel::Inbox as i32, pb::Channel::Email as i32],
            ..inbox_recipient(&code)
        };
        // Staff (the office here) see the addresses masked, in the answer it keeps too.
        let made = r.create(passed(vec![recipient]), "pd-1").await;
        let shown = &made.recipients[0];
        assert!(
            shown.email != email && shown.email.contains('*') && shown.mobile == "138****5678",
            "{label}: {shown:?}"
        );
        // At rest no address is in clear: not in the notification, not in its deliveries.
        use sqlx::Row;
        let pool = r.db.db.pool().clone();
        let stored: String = sqlx::query("SELECT recipients FROM notifications")
            .fetch_one(&pool)
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert!(
            !stored.contains(email) && !stored.contains(mobile) && stored.contains("enc1:sm4-gcm:"),
            "{label}: {stored}"
        );
        let addresses: Vec<String> = sqlx::query("SELECT address FROM deliveries")
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|row| row.try_get(0).unwrap())
            .collect();
        assert!(
            addresses
                .iter()
                .all(|a| !a.contains(email) && !a.contains(mobile)),
            "{label}: {addresses:?}"
        );
        assert!(addresses.iter().any(|a| r.fields.open(a).unwrap() == email));
        // The recipient itself reads its own address in clear.
        let me = r.keys.token(&code, Role::Enterprise);
        let mine = r
            .client
            .list_notifications(as_(
                &me,
                pb::ListNotificationsRequest {
                    recipient_id: code.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(mine.notifications[0].recipients[0].email, email, "{label}");
        // The message itself (it names the enterprise) is sealed too: in the notification's
        // variables, the deliveries, the inbox once delivered, and the stored answers.
        let inbox_done = |d: &pb::Delivery| d.channel != pb::Channel::Inbox as i32 || delivered(d);
        let n = r.settle(&made.name, time::Duration::ZERO, inbox_done).await;
        assert!(
            n.variables["enterprise_name"].contains("某某机械"),
            "{label}"
        );
        let name = "某某机械";
        for (table, column) in [
            ("notifications", "variables"),
            ("notifications", "recipients"),
            ("deliveries", "subject"),
            ("deliveries", "body"),
            ("inbox_messages", "subject"),
            ("inbox_messages", "body"),
        ] {
            let values: Vec<String> =
                sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {column} FROM {table}")))
                    .fetch_all(&pool)
                    .await
                    .unwrap()
                    .iter()
                    .map(|row| row.try_get(0).unwrap())
                    .collect();
            assert!(!values.is_empty(), "{label}: {table}");
            assert!(
                values
                    .iter()
                    .all(|v| !v.contains(name) && FieldKeys::is_sealed(v)),
                "{label}: {table}.{column} {values:?}"
            );
        }
        let answers: Vec<Vec<u8>> = sqlx::query("SELECT response FROM request_log")
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|row| row.try_get(0).unwrap())
            .collect();
        assert!(!answers.is_empty(), "{label}");
        for a in &answers {
            assert!(a.starts_with(b"\0enc1:sm4-gcm:"), "{label}");
            assert!(!a.windows(mobile.len()).any(|w| w == mobile.as_bytes()));
        }
        // The inbox reads in clear for its recipient.
        let inbox = r
            .client
            .list_inbox_messages(as_(
                &me,
                pb::ListInboxMessagesRequest {
                    parent: format!("inboxes/{code}"),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(inbox.messages[0].body.contains(name), "{label}");
        // A notification an earlier version stored (the list in clear with each address
        // sealed inside it, the variables in clear) is sealed whole by the start-up pass, and
        // reads the same.
        let legacy = serde_json::json!([{
            "id": code, "display_name": "重庆云阳某某机械有限公司",
            "email": r.fields.seal(email), "mobile": r.fields.seal(mobile),
            "channels": ["inbox", "email"],
        }])
        .to_string();
        sqlx::query("UPDATE notifications SET recipients = $1, variables = $2")
            .bind(&legacy)
            .bind(r#"{"enterprise_name":"重庆云阳某某机械有限公司"}"#)
            .execute(&pool)
            .await
            .unwrap();
        let done = qaward_kit::reseal::reseal(
            &r.db.db,
            &r.fields,
            "notifications",
            "qaward-local",
            time::OffsetDateTime::now_utc(),
            qaward_notifications::store::SEALED,
            100,
        )
        .await
        .unwrap();
        assert_eq!((done.resealed, done.unreadable), (2, 0), "{label}");
        let row = sqlx::query("SELECT recipients, variables FROM notifications")
            .fetch_one(&pool)
            .await
            .unwrap();
        let (recipients, variables): (String, String) =
            (row.try_get(0).unwrap(), row.try_get(1).unwrap());
        assert!(FieldKeys::is_sealed(&recipients) && FieldKeys::is_sealed(&variables));
        let inner = r.fields.open(&recipients).unwrap();
        assert!(
            inner.contains(email) && !inner.contains("enc1:"),
            "{label}: {inner}"
        );
        let again = r
            .client
            .list_notifications(as_(
                &me,
                pb::ListNotificationsRequest {
                    recipient_id: code.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let n = &again.notifications[0];
        assert_eq!(
            (
                n.recipients[0].mobile.as_str(),
                n.variables["enterprise_name"].as_str()
            ),
            (mobile, "重庆云阳某某机械有限公司"),
            "{label}"
        );
    }
}
