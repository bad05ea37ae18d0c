//! Proto ↔ domain for `qaward.notifications.v1`. No rule is decided here.

use qaward_kit::fields::FieldKeys;
use qaward_kit::{Error, Result, clock::to_timestamp, error::FieldViolation};
use qaward_proto::qaward::notifications::v1 as pb;
use std::collections::BTreeMap;

use crate::{
    domain::{
        Channel,
        catalogue::{self, EventType},
        recipient::{self, Recipient},
    },
    store::{self, DeliveryRow, NotificationRow},
};

use super::notifications::MAX_VARIABLE_CHARS;

pub(super) fn channel_of(c: i32) -> Option<Channel> {
    match pb::Channel::try_from(c).ok()? {
        pb::Channel::Inbox => Some(Channel::Inbox),
        pb::Channel::Email => Some(Channel::Email),
        pb::Channel::Webhook => Some(Channel::Webhook),
        pb::Channel::Sms => Some(Channel::Sms),
        pb::Channel::Unspecified => None,
    }
}

pub(super) fn channel_pb(c: Channel) -> pb::Channel {
    match c {
        Channel::Inbox => pb::Channel::Inbox,
        Channel::Email => pb::Channel::Email,
        Channel::Webhook => pb::Channel::Webhook,
        Channel::Sms => pb::Channel::Sms,
    }
}

pub(super) fn state_pb(s: &str) -> pb::DeliveryState {
    match s {
        store::PENDING => pb::DeliveryState::Pending,
        store::RETRYING => pb::DeliveryState::Retrying,
        store::DELIVERED => pb::DeliveryState::Delivered,
        store::DEAD => pb::DeliveryState::Dead,
        store::CANCELLED => pb::DeliveryState::Cancelled,
        _ => pb::DeliveryState::Unspecified,
    }
}

/// The event named at `field`, or INVALID_ARGUMENT listing the known ones.
pub(super) fn event_at(name: &str, field: &str) -> Result<&'static EventType> {
    catalogue::event(name).ok_or_else(|| {
        Error::invalid(
            field,
            format!(
                "unknown event type {name:?}; known: {}",
                catalogue::events()
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

/// Validates the recipients at `field` (`notification.recipients`).
pub(super) fn recipients_of(
    list: &[pb::Recipient],
    field: &str,
    bad: &mut Vec<FieldViolation>,
) -> Vec<Recipient> {
    if list.is_empty() || list.len() > recipient::MAX_RECIPIENTS {
        bad.push(FieldViolation::new(
            field,
            format!("must list 1-{} recipients", recipient::MAX_RECIPIENTS),
        ));
        return Vec::new();
    }
    let mut out: Vec<Recipient> = Vec::new();
    for (i, r) in list.iter().enumerate() {
        let mut channels = Vec::new();
        for (j, c) in r.channels.iter().enumerate() {
            match channel_of(*c) {
                Some(ch) => channels.push(ch),
                None => bad.push(FieldViolation::new(
                    format!("{field}[{i}].channels[{j}]"),
                    "must be CHANNEL_INBOX, CHANNEL_EMAIL, CHANNEL_WEBHOOK or CHANNEL_SMS",
                )),
            }
        }
        match recipient::check(&r.id, &r.display_name, &r.email, &r.mobile, &channels) {
            Ok(rec) => {
                if out.iter().any(|o| o.id == rec.id) {
                    bad.push(FieldViolation::new(
                        format!("{field}[{i}].id"),
                        format!("{} is listed twice", rec.id),
                    ));
                }
                out.push(rec);
            }
            Err(problems) => bad.extend(
                problems
                    .into_iter()
                    .map(|(f, d)| FieldViolation::new(format!("{field}[{i}].{f}"), d)),
            ),
        }
    }
    out
}

/// The variables must be exactly those the event carries, less `supplied` (those the service
/// fills in itself).
pub(super) fn variables_of(
    event: &EventType,
    given: &BTreeMap<String, String>,
    supplied: &[&str],
    field: &str,
    bad: &mut Vec<FieldViolation>,
) {
    let missing: Vec<&str> = event
        .variables
        .iter()
        .map(String::as_str)
        .filter(|v| !supplied.contains(v) && !given.contains_key(*v))
        .collect();
    if !missing.is_empty() {
        bad.push(FieldViolation::new(
            field,
            format!("event {} needs {}", event.name, missing.join(", ")),
        ));
    }
    for (k, v) in given {
        if supplied.contains(&k.as_str()) {
            bad.push(FieldViolation::new(
                format!("{field}[{k}]"),
                "is filled in by the service; do not give it",
            ));
        } else if !event.variables.contains(k) {
            bad.push(FieldViolation::new(
                format!("{field}[{k}]"),
                format!("event {} carries no variable {k}", event.name),
            ));
        } else if v.chars().count() > MAX_VARIABLE_CHARS {
            bad.push(FieldViolation::new(
                format!("{field}[{k}]"),
                format!("must be at most {MAX_VARIABLE_CHARS} characters"),
            ));
        }
    }
}

/// The recipients as stored: the whole list (names, e-mail, mobile) sealed.
pub(super) fn recipients_json(list: &[Recipient], keys: &FieldKeys) -> String {
    keys.seal(
        &serde_json::Value::Array(
            list.iter()
                .map(|r| {
                    serde_json::json!({
                        "id": r.id, "display_name": r.display_name,
                        "email": r.email, "mobile": r.mobile,
                        "channels": r.channels.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                    })
                })
                .collect(),
        )
        .to_string(),
    )
}

/// The stored recipients opened: the list, and within it any address an earlier version
/// sealed one by one. A list that does not open reads as empty (never a failed answer).
pub(super) fn recipients_opened(stored: &str, keys: &FieldKeys) -> Vec<serde_json::Value> {
    keys.open(stored)
        .and_then(|json| store::recipients_plain(keys, json))
        .ok()
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default()
}

/// Stored variables opened (sealed since R-54; older rows in clear).
pub(super) fn variables_opened(stored: &str, keys: &FieldKeys) -> BTreeMap<String, String> {
    keys.open(stored)
        .ok()
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default()
}

/// Variables as stored: sealed, since they carry names.
pub(super) fn variables_json(variables: &BTreeMap<String, String>, keys: &FieldKeys) -> String {
    keys.seal(&serde_json::to_string(variables).unwrap_or_default())
}

/// Stored recipients as a reader sees them: the addresses masked unless `shown` says the
/// reader is that recipient (R-54: masked by default, staff included).
pub(super) fn recipients_pb(
    stored: &str,
    keys: &FieldKeys,
    shown: &dyn Fn(&str) -> bool,
) -> Vec<pb::Recipient> {
    recipients_opened(stored, keys)
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            let id = s("id");
            let address = |k: &str| {
                let plain = s(k);
                if shown(&id) || plain.is_empty() {
                    plain
                } else {
                    qaward_kit::cn::mask(&plain)
                }
            };
            pb::Recipient {
                display_name: s("display_name"),
                email: address("email"),
                mobile: address("mobile"),
                id,
                channels: r["channels"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|c| c.as_str().and_then(Channel::parse))
                            .map(|c| channel_pb(c) as i32)
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect()
}

pub(super) fn delivery_pb(d: &DeliveryRow) -> pb::Delivery {
    pb::Delivery {
        name: format!("deliveries/{}", d.id),
        recipient_id: d.recipient_id.clone(),
        channel: Channel::parse(&d.channel)
            .map(channel_pb)
            .unwrap_or_default() as i32,
        state: state_pb(&d.state) as i32,
        attempts: d.attempts as i32,
        last_error: d.last_error.clone(),
        next_attempt_time: matches!(d.state.as_str(), store::PENDING | store::RETRYING)
            .then(|| to_timestamp(d.next_attempt_micros)),
        delivered_time: d.delivered_micros.map(to_timestamp),
        notification: format!("notifications/{}", d.notification_id),
        event_type: d.event_type.clone(),
        template_version: d.template_version as i32,
    }
}

pub(super) fn notification_pb(
    n: &NotificationRow,
    deliveries: &[DeliveryRow],
    keys: &FieldKeys,
    shown: &dyn Fn(&str) -> bool,
) -> pb::Notification {
    pb::Notification {
        name: format!("notifications/{}", n.id),
        event_type: n.event_type.clone(),
        recipients: recipients_pb(&n.recipients, keys, shown),
        variables: variables_opened(&n.variables, keys),
        send_time: Some(to_timestamp(n.send_micros)),
        deliveries: deliveries.iter().map(delivery_pb).collect(),
        create_time: Some(to_timestamp(n.created_micros)),
    }
}

pub(super) fn template_pb(t: &store::TemplateRow) -> pb::Template {
    pb::Template {
        name: format!("templates/{}.{}.v{}", t.event_type, t.channel, t.version),
        event_type: t.event_type.clone(),
        channel: Channel::parse(&t.channel)
            .map(channel_pb)
            .unwrap_or_default() as i32,
        version: t.version as i32,
        subject: t.subject.clone(),
        body: t.body.clone(),
    }
}

/// An inbox message opened for its reader (subject and body are sealed at rest, R-54).
pub(super) fn inbox_pb(m: &store::InboxRow, keys: &FieldKeys) -> pb::InboxMessage {
    pb::InboxMessage {
        name: format!("inboxes/{}/messages/{}", m.recipient_id, m.id),
        subject: keys.open(&m.subject).unwrap_or_else(|_| "????".into()),
        body: keys.open(&m.body).unwrap_or_else(|_| "????".into()),
        read: m.read_micros.is_some(),
        create_time: Some(to_timestamp(m.created_micros)),
    }
}
