//! a message's text and address are kept `privacy.message_days` once it is done with,
//! its delivery record `privacy.delivery_days`; then purged, on the record, in batches.

use qaward_kit::{config::Config, retention, testing};
use qaward_proto::qaward::notifications::v1 as pb;
use sqlx::Row;
use tonic::Code;

use crate::*;

#[tokio::test]
async fn r54_message_texts_then_delivery_records_are_purged_past_their_days() {
    for db in testing::backends("notifications", &qaward_notifications::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db, settings()).await;
        let code = enterprise();
        // An inbox message (delivered) and an SMS with no SMS channel here (a dead letter).
        let recipient = pb::Recipient {
            mobile: "13812345678".into(),
            channels: vec![pb::Channel::Inbox as i32, pb::Channel::Sms as i32],
            ..inbox_recipient(&code)
        };
        let made = r.create(passed(vec![recipient]), "rt-1").await;
        let n = r
            .settle(&made.name, time::Duration::ZERO, |d| {
                delivered(d) || dead(d)
            })
            .await;
        assert_eq!(n.deliveries.len(), 2, "{label}");
        let pool = r.db.db.pool().clone();
        let kinds = qaward_notifications::store::retention(&Config::default());
        let days: Vec<(&str, u32)> = kinds.iter().map(|(k, d)| (k.name, *d)).collect();
        assert_eq!(
            days,
            [
                ("request_log", 90),
                ("deliveries.message", 365),
                ("notifications.content", 365),
                ("reminders.content", 365),
                ("deliveries", 1095),
                ("notifications", 1095)
            ],
            "the defaults"
        );
        let run = |names: &'static [&'static str], before: i64| {
            let (db, kinds) = (r.db.db.clone(), kinds.clone());
            async move {
                let mut n = 0;
                for (k, _) in kinds.iter().filter(|(k, _)| names.contains(&k.name)) {
                    n +=
                        retention::purge(&db, "notifications", "qaward-local", START, k, before, 1)
                            .await
                            .unwrap();
                }
                n
            }
        };
        let texts = &[
            "deliveries.message",
            "notifications.content",
            "reminders.content",
        ];
        let records = &["deliveries", "notifications"];
        let written = qaward_kit::clock::unix_micros(START);
        assert_eq!(
            run(texts, written).await,
            0,
            "{label}: nothing is old enough"
        );
        // Past message_days: the texts and addresses go, the records stay.
        assert_eq!(
            run(texts, written + 1).await,
            3,
            "{label}: two deliveries, one notification"
        );
        let blanked: Vec<(String, String, String)> =
            sqlx::query("SELECT address, subject, body FROM deliveries")
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|row| (row.get(0), row.get(1), row.get(2)))
                .collect();
        assert_eq!(blanked.len(), 2, "{label}");
        assert!(
            blanked
                .iter()
                .all(|(a, s, b)| a.is_empty() && s.is_empty() && b.is_empty())
        );
        let inbox: i64 = sqlx::query("SELECT COUNT(*) AS n FROM inbox_messages")
            .fetch_one(&pool)
            .await
            .unwrap()
            .get("n");
        assert_eq!(inbox, 0, "{label}");
        let kept = r
            .client
            .get_notification(as_(
                &r.office,
                pb::GetNotificationRequest {
                    name: made.name.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(
            kept.recipients.is_empty() && kept.variables.is_empty(),
            "{label}"
        );
        assert_eq!(kept.deliveries.len(), 2, "{label}: the records stay");
        // A dead letter whose text is gone cannot be requeued: it would send nothing.
        let letter = kept.deliveries.iter().find(|d| dead(d)).unwrap();
        let err = r
            .client
            .requeue_dead_letter(as_(
                &r.office,
                pb::RequeueDeadLetterRequest {
                    name: letter.name.replace("deliveries/", "deadLetters/"),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{label}: {err:?}");
        assert!(err.message().contains("privacy.message_days"), "{label}");
        // Past delivery_days: the records go too, one batch at a time, each on the record.
        assert_eq!(run(records, written + 1).await, 3, "{label}");
        let left: i64 = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM deliveries) + (SELECT COUNT(*) FROM notifications) AS n",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
        .get("n");
        assert_eq!(left, 0, "{label}");
        qaward_kit::audit::sequence_all(&r.db.db).await.unwrap();
        let purges: Vec<String> = sqlx::query(
            "SELECT resource FROM audit_log WHERE action = 'retention.purge' ORDER BY seq",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
        assert_eq!(
            purges,
            [
                "deliveries.message",
                "deliveries.message",
                "notifications.content",
                "deliveries",
                "deliveries",
                "notifications"
            ],
            "{label}"
        );
        assert_eq!(
            run(texts, written + 1).await + run(records, written + 1).await,
            0
        );
    }
}
