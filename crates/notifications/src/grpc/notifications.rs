//! Notifications: accepted once committed, rendered with the current templates, one delivery
//! per recipient and channel.

use qaward_kit::{
    Error, Result,
    audit::AuditRecord,
    auth::Caller,
    change,
    clock::unix_micros,
    convert::timestamp_from_pb,
    db::Conn,
    error::{ErrorCode, FieldViolation},
    idempotency::RequestKey,
    paging::Page,
};
use qaward_proto::qaward::notifications::v1 as pb;
use std::collections::BTreeMap;

use crate::{
    domain::{
        Channel,
        catalogue::EventType,
        recipient::{self, Recipient},
        template,
    },
    store::{self, DeliveryRow, NotificationRow, PENDING},
};

use super::{
    NotificationsApi, STAFF,
    convert::{
        delivery_pb, event_at, notification_pb, recipients_json, recipients_of, template_pb,
        variables_json, variables_of,
    },
    id_of, is_recipient,
};

/// How far in the past a send time may lie (clock skew between services) before it is
/// refused rather than sent at once; and how far ahead one may be scheduled.
pub const SEND_TIME_GRACE_SECS: i64 = 300;

pub const MAX_SCHEDULE_DAYS: i64 = 2 * 366;

/// The longest variable value, in characters.
pub const MAX_VARIABLE_CHARS: usize = 4_000;

impl NotificationsApi {
    /// Renders and stores one notification with its deliveries, inside `tx`.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn accept(
        &self,
        tx: &mut Conn,
        event: &EventType,
        recipients: &[Recipient],
        variables: &BTreeMap<String, String>,
        send_at: time::OffsetDateTime,
        reminder_id: Option<String>,
        by: &str,
    ) -> Result<(NotificationRow, Vec<DeliveryRow>)> {
        let now = unix_micros(self.now());
        let row = NotificationRow {
            id: self.new_id(),
            event_type: event.name.clone(),
            variables: variables_json(variables, &self.ctx.fields),
            recipients: recipients_json(recipients, &self.ctx.fields),
            send_micros: unix_micros(send_at),
            reminder_id,
            created_by: by.to_string(),
            created_micros: now,
        };
        store::insert_notification(tx, &row).await?;
        let mut templates: BTreeMap<Channel, store::TemplateRow> = BTreeMap::new();
        let mut deliveries = Vec::new();
        for r in recipients {
            for ch in &r.channels {
                if !templates.contains_key(ch) {
                    let t = store::current_template(tx, &event.name, *ch).await?;
                    templates.insert(*ch, t);
                }
                let t = &templates[ch];
                let text = template::render(&t.subject, &t.body, variables, &r.display_name)
                    .map_err(|e| {
                        Error::new(
                            ErrorCode::FailedPrecondition,
                            "TEMPLATE_DOES_NOT_RENDER",
                            format!("{} does not render: {e}", template_pb(t).name),
                        )
                    })?;
                let d = DeliveryRow {
                    id: format!("{}-{:04}", row.id, deliveries.len()),
                    notification_id: row.id.clone(),
                    event_type: event.name.clone(),
                    recipient_id: r.id.clone(),
                    channel: ch.as_str().to_string(),
                    // Sealed at rest; the worker opens it for the attempt.
                    address: self.ctx.fields.seal(r.address(*ch)),
                    template_version: t.version,
                    // The message carries names: sealed at rest, opened per attempt.
                    subject: self.ctx.fields.seal(&text.subject),
                    body: self.ctx.fields.seal(&text.body),
                    state: PENDING.to_string(),
                    attempts: 0,
                    last_error: String::new(),
                    next_attempt_micros: row.send_micros,
                    delivered_micros: None,
                    created_micros: now,
                };
                store::insert_delivery(tx, &d).await?;
                deliveries.push(d);
            }
        }
        Ok((row, deliveries))
    }

    pub(super) async fn notification_create(
        &self,
        c: &Caller,
        r: pb::CreateNotificationRequest,
    ) -> Result<pb::Notification> {
        if r.request_id.is_empty() {
            return Err(Error::invalid(
                "request_id",
                "is required: it is the notification's idempotency key",
            ));
        }
        let key = RequestKey::new("CreateNotification", c, &r.request_id, &r)?;
        if let Some(done) = change::recall(&self.db, &key).await? {
            return Ok(done);
        }
        let n = r
            .notification
            .as_ref()
            .ok_or_else(|| Error::invalid("notification", "is required"))?;
        let event = event_at(&n.event_type, "notification.event_type")?;
        let mut bad = Vec::new();
        let recipients = recipients_of(&n.recipients, "notification.recipients", &mut bad);
        variables_of(event, &n.variables, &[], "notification.variables", &mut bad);
        let now = self.now();
        let send_at = match &n.send_time {
            None => now,
            Some(t) => match timestamp_from_pb(t, "notification.send_time") {
                Err(e) => {
                    bad.extend(e.violations.iter().cloned());
                    now
                }
                Ok(at) if at < now - time::Duration::seconds(SEND_TIME_GRACE_SECS) => {
                    bad.push(FieldViolation::new(
                        "notification.send_time",
                        format!("is in the past (more than {SEND_TIME_GRACE_SECS} s ago)"),
                    ));
                    now
                }
                Ok(at) if at > now + time::Duration::days(MAX_SCHEDULE_DAYS) => {
                    bad.push(FieldViolation::new(
                        "notification.send_time",
                        format!("is more than {MAX_SCHEDULE_DAYS} days ahead"),
                    ));
                    now
                }
                Ok(at) => at.max(now),
            },
        };
        if !bad.is_empty() {
            return Err(Error::invalid_fields(bad));
        }
        let mut tx = match change::turn(&self.db, &key).await? {
            change::Turn::Answered(done) => return Ok(done),
            change::Turn::Mine(tx) => tx,
        };
        let (row, deliveries) = self
            .accept(
                &mut tx,
                event,
                &recipients,
                &n.variables,
                send_at,
                None,
                &c.subject,
            )
            .await?;
        let response = notification_pb(&row, &deliveries, &self.ctx.fields, &|_| false);
        let record = AuditRecord::by(c, "notification.create", response.name.clone())
            .because(event.rule.clone())
            .with_detail(serde_json::json!({
                "event_type": event.name,
                "recipients": recipients.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
                "deliveries": deliveries.len(),
                "send_micros": row.send_micros,
            }));
        change::commit(&self.db, tx, now, &key, record, &response).await?;
        self.wake.notify_waiters();
        Ok(response)
    }

    pub(super) async fn notification_get(
        &self,
        _caller: &Caller,
        r: pb::GetNotificationRequest,
    ) -> Result<pb::Notification> {
        let id = id_of(&r.name, "notifications", "name")?;
        let mut conn = self.db.pool().acquire().await?;
        let n = store::get_notification(&mut conn, &id).await?;
        let d = store::deliveries_of(&mut conn, &id).await?;
        Ok(notification_pb(&n, &d, &self.ctx.fields, &|_| false))
    }

    pub(super) async fn notification_list(
        &self,
        c: &Caller,
        r: pb::ListNotificationsRequest,
    ) -> Result<pb::ListNotificationsResponse> {
        let page = Page::parse(r.page_size, &r.page_token)?;
        if !r.recipient_id.is_empty() && !recipient::valid_id(&r.recipient_id) {
            return Err(Error::invalid("recipient_id", "is not a recipient id"));
        }
        // Staff see every notification; anyone else the ones addressed to them, with
        // only their own deliveries and address.
        let own = !STAFF.contains(&c.role);
        if own && (r.recipient_id.is_empty() || !is_recipient(c, &r.recipient_id)) {
            return Err(Error::permission_denied(
                "set recipient_id to your own id to list your notifications",
            ));
        }
        let mut rows = store::list_notifications(&self.db, &r.recipient_id, &page).await?;
        let next_page_token = page.finish(&mut rows, |n| n.id.clone());
        let mut conn = self.db.pool().acquire().await?;
        let mut notifications = Vec::new();
        for n in &rows {
            let mut d = store::deliveries_of(&mut conn, &n.id).await?;
            // A recipient reading its own sees its own address; staff see it masked.
            let mine = |id: &str| own && id == r.recipient_id;
            let mut p = notification_pb(n, &[], &self.ctx.fields, &mine);
            if own {
                d.retain(|d| d.recipient_id == r.recipient_id);
                p.recipients.retain(|x| x.id == r.recipient_id);
            }
            p.deliveries = d.iter().map(delivery_pb).collect();
            notifications.push(p);
        }
        Ok(pb::ListNotificationsResponse {
            notifications,
            next_page_token,
        })
    }
}
