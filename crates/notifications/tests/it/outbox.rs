//! Another service's outbox reaching this one: a committed change produces its notification
//! exactly once, even when the relay hands it over twice (a crash between the call and
//! marking the event delivered).

use std::sync::Arc;

use qaward_kit::{
    auth::Role,
    clock::SystemClock,
    notify::{self, NotifySink},
    outbox::{self, Relay, RelayOptions, Sink},
    testing,
};
use qaward_proto::qaward::notifications::v1 as pb;

use crate::*;

#[tokio::test]
async fn a_committed_outbox_event_becomes_exactly_one_notification() {
    for db in testing::backends("notifications", &qaward_notifications::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db, settings()).await;
        // The sending service's own database, with the kit's outbox table.
        let sender = testing::sqlite("applications", &testing::no_migrations()).await;
        let mut tx = sender.db.begin().await.unwrap();
        let event = notify::enqueue(
            &mut tx,
            r.now(),
            &passed(vec![inbox_recipient(&enterprise())]),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();

        let channel = r.channel.clone();
        let token = r.keys.token("system:applications", Role::Service);
        let sink = NotifySink::new(
            qaward_kit::upstream::network(channel),
            Arc::new(move || token.clone()),
        );
        let relay = Relay::new(
            sender.db.clone(),
            sink.clone(),
            Arc::new(SystemClock),
            RelayOptions::default(),
        );
        assert_eq!(relay.run_once().await.unwrap(), 1, "{label}");
        assert_eq!(relay.run_once().await.unwrap(), 0, "{label}: nothing left");
        // The relay died after the call but before marking the event: it hands it over again.
        sink.deliver(&event).await.unwrap();

        let all = r
            .client
            .list_notifications(as_(&r.office, pb::ListNotificationsRequest::default()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            all.notifications.len(),
            1,
            "{label}: exactly one notification"
        );
        r.settle(&all.notifications[0].name, time::Duration::ZERO, delivered)
            .await;
        assert_eq!(outbox::pending(&sender.db).await.unwrap(), 0);
    }
}
