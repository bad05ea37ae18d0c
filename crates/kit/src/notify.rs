//! How a service announces a step through the notifications service: it writes the
//! notification into its own outbox in the transaction of the change ([`enqueue`]), and its
//! outbox relay hands it over with [`NotifySink`], which calls `CreateNotification` with the
//! outbox event's id as `request_id`. The notifications service answers a repeated id with the
//! notification it already accepted, so a committed change produces its notification exactly
//! once — even when the relay dies between the call and marking the event delivered.

use std::sync::Arc;

use prost::Message;
use qaward_proto::qaward::notifications::v1::{
    CreateNotificationRequest, CreateReminderRequest, Notification, Reminder,
    notification_service_client::NotificationServiceClient,
};
use tonic::{Code, transport::Channel};

use crate::{
    Result,
    db::Conn,
    outbox::{self, Event, Sink},
};

/// A recipient id: 1-64 characters of letters, digits, '-', '_' or '.', no '/' (it is one
/// segment of a resource name). The notifications service refuses any other; a sender checks
/// with this before it puts a notification in its outbox.
pub fn valid_recipient_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The outbox topic of a notification to create.
pub const TOPIC: &str = "notifications.create";

/// Writes `notification` to the outbox inside the caller's transaction.
pub async fn enqueue(
    conn: &mut Conn,
    at: time::OffsetDateTime,
    notification: &Notification,
) -> Result<Event> {
    let event = Event::new(TOPIC, notification.encode_to_vec());
    outbox::enqueue(conn, at, &event).await?;
    Ok(event)
}

/// The outbox topic of a reminder to create.
pub const REMINDER_TOPIC: &str = "notifications.reminder";

/// Writes `reminder` to the outbox inside the caller's transaction; the relay creates it with
/// the event's id as `request_id`, so it is created once.
pub async fn enqueue_reminder(
    conn: &mut Conn,
    at: time::OffsetDateTime,
    reminder: &Reminder,
) -> Result<Event> {
    let event = Event::new(REMINDER_TOPIC, reminder.encode_to_vec());
    outbox::enqueue(conn, at, &event).await?;
    Ok(event)
}

/// Where the relaying service's own token comes from (a `service` role token).
pub type TokenSource = Arc<dyn Fn() -> String + Send + Sync>;

/// Hands outbox notifications to the notifications service.
#[derive(Clone)]
pub struct NotifySink {
    client: NotificationServiceClient<Channel>,
    token: TokenSource,
}

impl NotifySink {
    pub fn new(channel: Channel, token: TokenSource) -> Self {
        NotifySink {
            client: NotificationServiceClient::new(channel),
            token,
        }
    }
}

impl NotifySink {
    fn authorised<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Ok(v) = format!("Bearer {}", (self.token)()).parse() {
            request.metadata_mut().insert("authorization", v);
        }
        crate::telemetry::inject_context(request.metadata_mut());
        request
    }
}

impl Sink for NotifySink {
    async fn deliver(&self, event: &Event) -> Result<(), String> {
        let outcome = match event.topic.as_str() {
            TOPIC => {
                let notification = Notification::decode(event.payload.as_slice())
                    .map_err(|e| format!("outbox event {} does not decode: {e}", event.id))?;
                let request = self.authorised(CreateNotificationRequest {
                    notification: Some(notification),
                    request_id: event.id.clone(),
                });
                self.client
                    .clone()
                    .create_notification(request)
                    .await
                    .map(drop)
            }
            REMINDER_TOPIC => {
                let reminder = Reminder::decode(event.payload.as_slice())
                    .map_err(|e| format!("outbox event {} does not decode: {e}", event.id))?;
                let request = self.authorised(CreateReminderRequest {
                    reminder: Some(reminder),
                    request_id: event.id.clone(),
                });
                self.client.clone().create_reminder(request).await.map(drop)
            }
            other => return Err(format!("topic {other} is not the notifications service's")),
        };
        match outcome {
            Ok(()) => Ok(()),
            // Refused for good: the relay keeps retrying with its capped backoff and logs it,
            // which is where an operator sees a service sending something malformed.
            Err(s) if s.code() == Code::InvalidArgument => Err(format!(
                "the notifications service refused outbox event {}: {}",
                event.id,
                s.message()
            )),
            Err(s) => Err(format!("{:?}: {}", s.code(), s.message())),
        }
    }
}
