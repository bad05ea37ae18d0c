//! Reminders before deadlines: the annual report by 30 June on calendar days, the
//! incident report within 15 working days on the working-day calendar.

use qaward_kit::{auth::Role, testing};
use qaward_proto::qaward::notifications::v1 as pb;
use tonic::Code;

use crate::*;

fn annual(deadline: time::OffsetDateTime, days: Vec<i32>) -> pb::Reminder {
    pb::Reminder {
        event_type: "annual_report.due".into(),
        recipients: vec![inbox_recipient(&enterprise())],
        variables: vars(&[
            ("enterprise_name", "重庆云阳某某机械有限公司"),
            ("report_year", "2025"),
        ]),
        deadline: Some(timestamp(deadline)),
        days_before: days,
        working_days: false,
        ..Default::default()
    }
}

#[tokio::test]
async fn r30_annual_report_reminders_go_out_30_7_and_1_days_before_30_june() {
    for db in testing::backends("notifications", &qaward_notifications::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db, settings()).await;
        let deadline = time::macros::datetime!(2026-06-30 23:59:59 +8);
        let reminder = r
            .client
            .create_reminder(as_(
                &r.office,
                pb::CreateReminderRequest {
                    reminder: Some(annual(deadline, vec![30, 7, 1])),
                    request_id: "rem-1".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let times: Vec<i64> = reminder.scheduled_times.iter().map(|t| t.seconds).collect();
        assert_eq!(
            times,
            [
                time::macros::datetime!(2026-05-31 09:00 +8).unix_timestamp(),
                time::macros::datetime!(2026-06-23 09:00 +8).unix_timestamp(),
                time::macros::datetime!(2026-06-29 09:00 +8).unix_timestamp(),
            ],
            "{label}"
        );
        assert_eq!(reminder.notifications.len(), 3);

        // On 31 May at 09:00 the first goes out, saying 30 days are left; the others wait.
        r.clock.set(time::macros::datetime!(2026-05-31 09:00 +8));
        let first = r
            .settle(&reminder.notifications[0], time::Duration::ZERO, delivered)
            .await;
        assert!(first.deliveries.iter().all(delivered));
        let second = r.get(&reminder.notifications[1]).await;
        assert_eq!(
            state(&second.deliveries[0]),
            pb::DeliveryState::Pending,
            "{label}"
        );
        let me = r.keys.token(&enterprise(), Role::Enterprise);
        let inbox = r.inbox(&me, &enterprise(), false).await.unwrap();
        assert_eq!(inbox.len(), 1, "{label}");
        assert_eq!(inbox[0].subject, "请报送2025年度自评报告（剩余30天）");
        assert!(inbox[0].body.contains("应于2026年6月30日前报送"));

        let listed = r
            .client
            .list_reminders(as_(&r.office, pb::ListRemindersRequest::default()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(listed.reminders.len(), 1);
        assert_eq!(listed.reminders[0].days_before, [30, 7, 1]);

        // The award is revoked: what is not yet sent is never sent (R-32, issue 24).
        let cancel = |reason: &str, id: &str| pb::CancelRemindersRequest {
            recipient_id: enterprise(),
            event_type: "annual_report.due".into(),
            reason: reason.into(),
            request_id: id.into(),
        };
        let e = r
            .client
            .cancel_reminders(as_(&r.office, cancel(" ", "c0")))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{label}");
        let done = r
            .client
            .cancel_reminders(as_(&r.office, cancel("R-32: 奖项已撤销", "c1")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (done.reminders, done.cancelled_deliveries),
            (vec![reminder.name.clone()], 2),
            "{label}"
        );
        let again = r
            .client
            .cancel_reminders(as_(&r.office, cancel("R-32: 奖项已撤销", "c2")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (again.reminders.len(), again.cancelled_deliveries),
            (0, 0),
            "{label}"
        );
        r.clock.set(time::macros::datetime!(2026-06-29 10:00 +8));
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let second = r.get(&reminder.notifications[1]).await;
        assert_eq!(
            state(&second.deliveries[0]),
            pb::DeliveryState::Cancelled,
            "{label}"
        );
        assert_eq!(
            r.inbox(&me, &enterprise(), false).await.unwrap().len(),
            1,
            "{label}"
        );
        let listed = r
            .client
            .list_reminders(as_(&r.office, pb::ListRemindersRequest::default()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            listed.reminders[0].cancel_reason, "R-32: 奖项已撤销",
            "{label}"
        );
    }
}

#[tokio::test]
async fn r31_incident_reminders_count_working_days_and_an_unknown_year_is_an_error() {
    for db in testing::backends("notifications", &qaward_notifications::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db, settings()).await;
        r.clock.set(time::macros::datetime!(2026-09-25 12:00 +8));
        let incident = |deadline: time::OffsetDateTime, vars_: Vec<(&str, &str)>| pb::Reminder {
            event_type: "incident_report.due".into(),
            recipients: vec![inbox_recipient(&enterprise())],
            variables: vars(&vars_),
            deadline: Some(timestamp(deadline)),
            days_before: vec![9, 3, 1],
            working_days: true,
            ..Default::default()
        };
        let good_vars = vec![
            ("enterprise_name", "重庆云阳某某机械有限公司"),
            ("incident", "市级监督抽查不合格"),
        ];
        let reminder = r
            .client
            .create_reminder(as_(
                &r.office,
                pb::CreateReminderRequest {
                    reminder: Some(incident(
                        time::macros::datetime!(2026-10-22 17:30 +8),
                        good_vars.clone(),
                    )),
                    request_id: "inc-1".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let days: Vec<time::Date> = reminder
            .scheduled_times
            .iter()
            .map(|t| {
                time::OffsetDateTime::from_unix_timestamp(t.seconds)
                    .unwrap()
                    .to_offset(time::macros::offset!(+8))
                    .date()
            })
            .collect();
        // 9 working days before Thu 22 Oct reaches the 调休 Saturday 10 Oct.
        assert_eq!(
            days,
            [
                time::macros::date!(2026 - 10 - 10),
                time::macros::date!(2026 - 10 - 19),
                time::macros::date!(2026 - 10 - 21)
            ],
            "{label}"
        );

        // 2027's holidays are not published in the built-in calendar: an error, not a guess.
        let err = r
            .client
            .create_reminder(as_(
                &r.office,
                pb::CreateReminderRequest {
                    reminder: Some(incident(
                        time::macros::datetime!(2027-01-12 17:30 +8),
                        good_vars.clone(),
                    )),
                    request_id: "inc-2".into(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{label}");
        assert!(err.message().contains("2027"), "{}", err.message());

        // The service fills in the deadline and the days left; the caller may not.
        let mut with_deadline = good_vars.clone();
        with_deadline.push(("deadline", "明天"));
        let err = r
            .client
            .create_reminder(as_(
                &r.office,
                pb::CreateReminderRequest {
                    reminder: Some(incident(
                        time::macros::datetime!(2026-10-22 17:30 +8),
                        with_deadline,
                    )),
                    request_id: "inc-3".into(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        // An event without a deadline cannot remind.
        let mut wrong = incident(time::macros::datetime!(2026-10-22 17:30 +8), good_vars);
        wrong.event_type = "award.granted".into();
        let err = r
            .client
            .create_reminder(as_(
                &r.office,
                pb::CreateReminderRequest {
                    reminder: Some(wrong),
                    request_id: "inc-4".into(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains("cannot remind"), "{}", err.message());
        let listed = r
            .client
            .list_reminders(as_(&r.office, pb::ListRemindersRequest::default()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            listed.reminders.len(),
            1,
            "{label}: refused reminders store nothing"
        );
    }
}
