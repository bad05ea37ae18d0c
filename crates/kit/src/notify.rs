//! How a service announces a step through the notifications service: it writes the
//! notification into its own outbox in the transaction of the change ([`enqueue`]), and its
//! outbox relay hands it over with [`NotifySink`], which calls `CreateNotification` with the
//! outbox event's id as `request_id`. The notifications service answers a repeated id with the
//! notification it already accepted, so a committed change produces its notification exactly
//! once — even when the relay dies between the call and marking the event delivered.

use std::sync::Arc;

use prost::Message;
use qaward_proto::qaward::notifications::v1::{
    CreateNotificationRequest, Notification, notification_service_client::NotificationServiceClient,
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

impl Sink for NotifySink {
    async fn deliver(&self, event: &Event) -> Result<(), String> {
        if event.topic != TOPIC {
            return Err(format!("topic {} is not {TOPIC}", event.topic));
        }
        let notification = Notification::decode(event.payload.as_slice())
            .map_err(|e| format!("outbox event {} does not decode: {e}", event.id))?;
        let mut request = tonic::Request::new(CreateNotificationRequest {
            notification: Some(notification),
            request_id: event.id.clone(),
        });
        if let Ok(v) = format!("Bearer {}", (self.token)()).parse() {
            request.metadata_mut().insert("authorization", v);
        }
        crate::telemetry::inject_context(request.metadata_mut());
        match self.client.clone().create_notification(request).await {
            Ok(_) => Ok(()),
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
