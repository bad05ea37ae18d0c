//! The notifications service through its gRPC API, on SQLite and (when configured)
//! PostgreSQL, with real receivers: an SMTP server, HTTP sinks for the webhook and the SMS
//! gateway, and the inbox read back through the API.

mod accepting;
mod channels;
mod delivery;
mod outbox;
mod reminders;
mod retention;
mod smtp;
mod templates;

use std::{sync::Arc, time::Duration};

use pb::notification_service_client::NotificationServiceClient;
use qaward_kit::{
    auth::Role,
    clock::{Clock, ManualClock, SeededRandomness},
    config::{Config, Notifications},
    server::{ServiceContext, ServiceHost},
    testing::{self, TestDb, TestKeys},
};
use qaward_proto::qaward::notifications::v1 as pb;
use tonic::{Request, transport::Channel};

pub struct Running {
    pub client: NotificationServiceClient<Channel>,
    pub channel: Channel,
    pub keys: TestKeys,
    pub clock: Arc<ManualClock>,
    pub office: String,
    pub db: TestDb,
    /// The field keys, shared by a restarted process as the key file shares them.
    pub fields: Arc<qaward_kit::fields::FieldKeys>,
}

/// 2026-05-01 10:00 China time.
pub const START: time::OffsetDateTime = time::macros::datetime!(2026-05-01 02:00 UTC);

/// Settings for tests: fast polling and short backoff, so retries happen within a test.
pub fn settings() -> Notifications {
    Notifications {
        workers: 2,
        poll_ms: 20,
        base_backoff_ms: 1_000,
        max_backoff_ms: 60_000,
        max_attempts: 4,
        ..Notifications::default()
    }
}

pub async fn start(db: TestDb, settings: Notifications) -> Running {
    let keys = TestKeys::new();
    let clock = Arc::new(ManualClock::new(START));
    let config = Config {
        notifications: settings,
        ..Config::default()
    };
    let ctx = ServiceContext {
        config: Arc::new(config),
        verifier: keys.verifier.clone(),
        clock: clock.clone(),
        randomness: Arc::new(SeededRandomness::new(11)),
        audit: std::sync::Arc::new(qaward_kit::audit::AuditKey::ephemeral()),
        in_process: Default::default(),
        fields: std::sync::Arc::new(qaward_kit::fields::FieldKeys::ephemeral(
            qaward_kit::fields::Algorithm::Sm4Gcm,
        )),
    };
    let api = qaward_notifications::service(db.db.clone(), &ctx)
        .await
        .expect("service starts");
    let host = ServiceHost::new("notifications", &ctx.config.server, ctx.verifier.clone())
        .add_service(pb::notification_service_server::NotificationServiceServer::new(api));
    let channel = testing::serve_on_loopback(host).await;
    let office = keys.token("office-1", Role::Office);
    Running {
        client: NotificationServiceClient::new(channel.clone()),
        channel,
        keys,
        clock,
        office,
        db,
        fields: ctx.fields.clone(),
    }
}

pub fn as_<T>(token: &str, m: T) -> Request<T> {
    let mut r = Request::new(m);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

/// A valid credit code of an enterprise in Yunyang (500235).
pub fn enterprise() -> String {
    qaward_kit::cn::with_check("91500235MA5U7XXX0").unwrap()
}

pub fn vars(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A materials_review.passed notification to `recipients`.
pub fn passed(recipients: Vec<pb::Recipient>) -> pb::Notification {
    pb::Notification {
        event_type: "materials_review.passed".into(),
        recipients,
        variables: vars(&[
            ("enterprise_name", "重庆云阳某某机械有限公司"),
            ("programme_name", "云阳县县长质量奖"),
            ("year", "2026"),
            ("materials_score", "512.50"),
            ("threshold", "500"),
        ]),
        ..Default::default()
    }
}

pub fn inbox_recipient(id: &str) -> pb::Recipient {
    pb::Recipient {
        id: id.into(),
        display_name: "重庆云阳某某机械有限公司".into(),
        ..Default::default()
    }
}

impl Running {
    pub async fn create(&mut self, n: pb::Notification, request_id: &str) -> pb::Notification {
        self.client
            .create_notification(as_(
                &self.office,
                pb::CreateNotificationRequest {
                    notification: Some(n),
                    request_id: request_id.into(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn get(&mut self, name: &str) -> pb::Notification {
        self.client
            .get_notification(as_(
                &self.office,
                pb::GetNotificationRequest { name: name.into() },
            ))
            .await
            .unwrap()
            .into_inner()
    }

    /// Polls the notification until every delivery satisfies `done`, advancing the manual
    /// clock by `step` between polls so scheduled sends and backoffs come due; panics after
    /// 10 s of real time.
    pub async fn settle(
        &mut self,
        name: &str,
        step: time::Duration,
        done: impl Fn(&pb::Delivery) -> bool,
    ) -> pb::Notification {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let n = self.get(name).await;
            if !n.deliveries.is_empty() && n.deliveries.iter().all(&done) {
                return n;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "deliveries did not settle: {:#?}",
                n.deliveries
            );
            self.clock.advance(step);
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The inbox of `recipient`, read with `token`.
    pub async fn inbox(
        &mut self,
        token: &str,
        recipient: &str,
        unread_only: bool,
    ) -> Result<Vec<pb::InboxMessage>, tonic::Status> {
        self.client
            .list_inbox_messages(as_(
                token,
                pb::ListInboxMessagesRequest {
                    parent: format!("inboxes/{recipient}"),
                    unread_only,
                    ..Default::default()
                },
            ))
            .await
            .map(|r| r.into_inner().messages)
    }

    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }
}

pub fn state(d: &pb::Delivery) -> pb::DeliveryState {
    pb::DeliveryState::try_from(d.state).unwrap()
}

pub fn delivered(d: &pb::Delivery) -> bool {
    state(d) == pb::DeliveryState::Delivered
}

pub fn dead(d: &pb::Delivery) -> bool {
    state(d) == pb::DeliveryState::Dead
}

pub fn timestamp(t: time::OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: 0,
    }
}
