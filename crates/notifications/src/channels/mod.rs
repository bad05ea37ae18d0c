//! The real deliveries: email over SMTP, and signed JSON over HTTP(S) to the county
//! platform's webhook and to the SMS gateway. The inbox channel is a table of this service,
//! written by the worker in the transaction that records the delivery.

mod email;
mod http;

use qaward_kit::config::Notifications as Settings;

use crate::{
    domain::{Channel, delivery::Outcome},
    store::DeliveryRow,
};

pub use http::SignedPost;

/// The configured external channels; `None` where the deployment has not configured one.
pub struct Channels {
    email: Option<email::Email>,
    webhook: Option<SignedPost>,
    sms: Option<SignedPost>,
}

impl Channels {
    pub fn from_config(settings: &Settings) -> Result<Channels, String> {
        Ok(Channels {
            email: (!settings.smtp.host.is_empty())
                .then(|| email::Email::new(&settings.smtp))
                .transpose()?,
            webhook: (!settings.webhook.url.is_empty())
                .then(|| SignedPost::new(&settings.webhook))
                .transpose()?,
            sms: (!settings.sms.url.is_empty())
                .then(|| SignedPost::new(&settings.sms))
                .transpose()?,
        })
    }

    /// One attempt at an external delivery. `now_secs` stamps the signature.
    pub async fn send(&self, channel: Channel, d: &DeliveryRow, now_secs: i64) -> Outcome {
        let not_configured = |what: &str| {
            Outcome::Permanent(format!(
                "the {what} channel is not configured on this deployment (notifications.{what}); requeue once it is"
            ))
        };
        match channel {
            Channel::Inbox => Outcome::Permanent("the inbox is written by the worker".into()),
            Channel::Email => match &self.email {
                Some(e) => e.send(d).await,
                None => not_configured("smtp"),
            },
            Channel::Webhook => match &self.webhook {
                Some(w) => w.post(&d.id, &webhook_body(d), now_secs).await,
                None => not_configured("webhook"),
            },
            Channel::Sms => match &self.sms {
                Some(s) => {
                    let body = serde_json::json!({
                        "idempotency_key": d.id,
                        "mobile": d.address,
                        "text": d.body,
                        "event_type": d.event_type,
                    });
                    s.post(&d.id, &body, now_secs).await
                }
                None => not_configured("sms"),
            },
        }
    }
}

/// The JSON the county platform's webhook receives for a delivery (docs/notifications.md).
pub fn webhook_body(d: &DeliveryRow) -> serde_json::Value {
    serde_json::json!({
        "idempotency_key": d.id,
        "notification": format!("notifications/{}", d.notification_id),
        "event_type": d.event_type,
        "recipient_id": d.recipient_id,
        "subject": d.subject,
        "body": d.body,
        "template_version": d.template_version,
    })
}
