//! How a service announces a step through the notifications service: it writes the
//! notification into its own outbox in the transaction of the change ([`enqueue`]), and its
//! outbox relay hands it over with [`NotifySink`], which calls `CreateNotification` with the
//! outbox event's id as `request_id`. The notifications service answers a repeated id with the
//! notification it already accepted, so a committed change produces its notification exactly
//! once — even when the relay dies between the call and marking the event delivered.

use std::sync::Arc;

use crate::upstream::Upstream;
use prost::Message;
use qaward_proto::qaward::notifications::v1::{
    CancelRemindersRequest, CreateNotificationRequest, CreateReminderRequest, Notification,
    Reminder, notification_service_client::NotificationServiceClient,
};
use tonic::Code;

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

/// The outbox topic of reminders to cancel (a duty ended: an award revoked, R-32).
pub const CANCEL_REMINDERS_TOPIC: &str = "notifications.cancel_reminders";

/// Writes to the outbox that the reminders of `event_type` to `recipient` are cancelled.
pub async fn enqueue_cancel_reminders(
    conn: &mut Conn,
    at: time::OffsetDateTime,
    recipient: &str,
    event_type: &str,
    reason: &str,
) -> Result<Event> {
    let request = CancelRemindersRequest {
        recipient_id: recipient.to_string(),
        event_type: event_type.to_string(),
        reason: reason.chars().take(500).collect(),
        request_id: String::new(),
    };
    let event = Event::new(CANCEL_REMINDERS_TOPIC, request.encode_to_vec());
    outbox::enqueue(conn, at, &event).await?;
    Ok(event)
}

/// Where the relaying service's own token comes from (a `service` role token).
pub type TokenSource = Arc<dyn Fn() -> String + Send + Sync>;

/// Hands outbox notifications to the notifications service.
#[derive(Clone)]
pub struct NotifySink {
    client: NotificationServiceClient<Upstream>,
    token: TokenSource,
}

impl NotifySink {
    pub fn new(channel: Upstream, token: TokenSource) -> Self {
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
            CANCEL_REMINDERS_TOPIC => {
                let mut cancel = CancelRemindersRequest::decode(event.payload.as_slice())
                    .map_err(|e| format!("outbox event {} does not decode: {e}", event.id))?;
                cancel.request_id = event.id.clone();
                let request = self.authorised(cancel);
                self.client
                    .clone()
                    .cancel_reminders(request)
                    .await
                    .map(drop)
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
