//! The gRPC surface of `qaward.notifications.v1.NotificationService`: validate at the edge,
//! check the caller, render with the current templates, and store the notification with one
//! delivery per recipient and channel — acknowledged only once committed.

use std::{collections::BTreeMap, sync::Arc};

use pb::notification_service_server::NotificationService;
use qaward_kit::{
    Error, Result,
    audit::AuditRecord,
    auth::{Caller, Role},
    calendar::{Calendar, CalendarError},
    change,
    clock::{to_timestamp, unix_micros},
    convert::timestamp_from_pb,
    db::{Conn, Database},
    error::{ErrorCode, FieldViolation},
    idempotency::RequestKey,
    paging::Page,
    server::ServiceContext,
};
use qaward_proto::qaward::notifications::v1 as pb;
use tokio::sync::Notify;
use tonic::{Request, Response, Status};

use crate::{
    domain::{
        Channel,
        catalogue::{self, EventType},
        recipient::{self, Recipient},
        reminder::{self, DAYS_LEFT_VAR, DEADLINE_VAR, ScheduleError},
        template,
    },
    store::{self, DeliveryRow, NotificationRow, PENDING},
};

/// How far in the past a send time may lie (clock skew between services) before it is
/// refused rather than sent at once; and how far ahead one may be scheduled.
pub const SEND_TIME_GRACE_SECS: i64 = 300;
pub const MAX_SCHEDULE_DAYS: i64 = 2 * 366;
/// The longest variable value, in characters.
pub const MAX_VARIABLE_CHARS: usize = 4_000;

pub struct NotificationsApi {
    db: Database,
    ctx: ServiceContext,
    calendar: Arc<Calendar>,
    wake: Arc<Notify>,
}

impl NotificationsApi {
    pub fn new(db: Database, ctx: ServiceContext, calendar: Calendar, wake: Arc<Notify>) -> Self {
        NotificationsApi {
            db,
            ctx,
            calendar: Arc::new(calendar),
            wake,
        }
    }

    fn now(&self) -> time::OffsetDateTime {
        self.ctx.clock.now()
    }

    fn new_id(&self) -> String {
        self.ctx.time_ordered_id()
    }
}

fn caller<T>(r: &Request<T>) -> Result<Caller, Status> {
    Caller::of(r).cloned()
}

fn channel_of(c: i32) -> Option<Channel> {
    match pb::Channel::try_from(c).ok()? {
        pb::Channel::Inbox => Some(Channel::Inbox),
        pb::Channel::Email => Some(Channel::Email),
        pb::Channel::Webhook => Some(Channel::Webhook),
        pb::Channel::Sms => Some(Channel::Sms),
        pb::Channel::Unspecified => None,
    }
}

fn channel_pb(c: Channel) -> pb::Channel {
    match c {
        Channel::Inbox => pb::Channel::Inbox,
        Channel::Email => pb::Channel::Email,
        Channel::Webhook => pb::Channel::Webhook,
        Channel::Sms => pb::Channel::Sms,
    }
}

fn state_pb(s: &str) -> pb::DeliveryState {
    match s {
        store::PENDING => pb::DeliveryState::Pending,
        store::RETRYING => pb::DeliveryState::Retrying,
        store::DELIVERED => pb::DeliveryState::Delivered,
        store::DEAD => pb::DeliveryState::Dead,
        _ => pb::DeliveryState::Unspecified,
    }
}

/// The event named at `field`, or INVALID_ARGUMENT listing the known ones.
fn event_at(name: &str, field: &str) -> Result<&'static EventType> {
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
fn recipients_of(
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
fn variables_of(
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

fn recipients_json(list: &[Recipient]) -> String {
    serde_json::Value::Array(
        list.iter()
            .map(|r| {
                serde_json::json!({
                    "id": r.id, "display_name": r.display_name, "email": r.email, "mobile": r.mobile,
                    "channels": r.channels.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
    .to_string()
}

fn recipients_pb(json: &str) -> Vec<pb::Recipient> {
    let list: Vec<serde_json::Value> = serde_json::from_str(json).unwrap_or_default();
    list.iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            pb::Recipient {
                id: s("id"),
                display_name: s("display_name"),
                email: s("email"),
                mobile: s("mobile"),
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

fn delivery_pb(d: &DeliveryRow) -> pb::Delivery {
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

fn notification_pb(n: &NotificationRow, deliveries: &[DeliveryRow]) -> pb::Notification {
    pb::Notification {
        name: format!("notifications/{}", n.id),
        event_type: n.event_type.clone(),
        recipients: recipients_pb(&n.recipients),
        variables: serde_json::from_str(&n.variables).unwrap_or_default(),
        send_time: Some(to_timestamp(n.send_micros)),
        deliveries: deliveries.iter().map(delivery_pb).collect(),
        create_time: Some(to_timestamp(n.created_micros)),
    }
}

fn template_pb(t: &store::TemplateRow) -> pb::Template {
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

/// Callers who see every notification and template.
const STAFF: [Role; 3] = [Role::Office, Role::Supervisor, Role::Service];
/// Callers who may send.
const SENDERS: [Role; 2] = [Role::Office, Role::Service];

/// Whether `c` is the recipient `id`: its subject (a reviewer's certificate number) or its
/// organisation (an enterprise's credit code, a unit's code).
fn is_recipient(c: &Caller, id: &str) -> bool {
    c.subject.eq_ignore_ascii_case(id)
        || c.org.as_deref().is_some_and(|o| o.eq_ignore_ascii_case(id))
}

/// The id of `inboxes/{id}`.
fn inbox_of(parent: &str, field: &str) -> Result<String> {
    parent
        .strip_prefix("inboxes/")
        .filter(|id| recipient::valid_id(id))
        .map(str::to_string)
        .ok_or_else(|| Error::invalid(field, "must be inboxes/{recipient}"))
}

/// The id of `{kind}/{id}`.
fn id_of(name: &str, kind: &str, field: &str) -> Result<String> {
    name.strip_prefix(kind)
        .and_then(|s| s.strip_prefix('/'))
        .filter(|id| !id.is_empty() && id.len() <= 64 && !id.contains('/'))
        .map(str::to_string)
        .ok_or_else(|| Error::invalid(field, format!("must be {kind}/{{id}}")))
}

impl NotificationsApi {
    /// Renders and stores one notification with its deliveries, inside `tx`.
    #[allow(clippy::too_many_arguments)]
    async fn accept(
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
            variables: serde_json::to_string(variables).unwrap_or_default(),
            recipients: recipients_json(recipients),
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
                    address: r.address(*ch).to_string(),
                    template_version: t.version,
                    subject: text.subject,
                    body: text.body,
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
}

#[tonic::async_trait]
impl NotificationService for NotificationsApi {
    async fn create_notification(
        &self,
        request: Request<pb::CreateNotificationRequest>,
    ) -> Result<Response<pb::Notification>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            c.require(&SENDERS)?;
            if r.request_id.is_empty() {
                return Err(Error::invalid(
                    "request_id",
                    "is required: it is the notification's idempotency key",
                ));
            }
            let key = RequestKey::new("CreateNotification", &c, &r.request_id, &r)?;
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
            let mut tx = self.db.begin().await?;
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
            let response = notification_pb(&row, &deliveries);
            let record = AuditRecord::by(&c, "notification.create", response.name.clone())
                .because(event.rule.clone())
                .with_detail(serde_json::json!({
                    "event_type": event.name,
                    "recipients": recipients.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
                    "deliveries": deliveries.len(),
                    "send_micros": row.send_micros,
                }));
            change::commit(tx, now, &key, record, &response).await?;
            self.wake.notify_waiters();
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn get_notification(
        &self,
        request: Request<pb::GetNotificationRequest>,
    ) -> Result<Response<pb::Notification>, Status> {
        let c = caller(&request)?;
        let run = async {
            let id = id_of(&request.get_ref().name, "notifications", "name")?;
            c.require(&STAFF)?;
            let mut conn = self.db.pool().acquire().await?;
            let n = store::get_notification(&mut conn, &id).await?;
            let d = store::deliveries_of(&mut conn, &id).await?;
            Ok(notification_pb(&n, &d))
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn list_notifications(
        &self,
        request: Request<pb::ListNotificationsRequest>,
    ) -> Result<Response<pb::ListNotificationsResponse>, Status> {
        let c = caller(&request)?;
        let run = async {
            let r = request.get_ref();
            let page = Page::parse(r.page_size, &r.page_token)?;
            if !r.recipient_id.is_empty() && !recipient::valid_id(&r.recipient_id) {
                return Err(Error::invalid("recipient_id", "is not a recipient id"));
            }
            // Staff see every notification; anyone else the ones addressed to them, with
            // only their own deliveries and address.
            let own = !STAFF.contains(&c.role);
            if own && (r.recipient_id.is_empty() || !is_recipient(&c, &r.recipient_id)) {
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
                let mut p = notification_pb(n, &[]);
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
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn create_template(
        &self,
        request: Request<pb::CreateTemplateRequest>,
    ) -> Result<Response<pb::Template>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            c.require(&[Role::Office])?;
            let key = RequestKey::new("CreateTemplate", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(&self.db, &key).await? {
                return Ok(done);
            }
            let t = r
                .template
                .as_ref()
                .ok_or_else(|| Error::invalid("template", "is required"))?;
            let event = event_at(&t.event_type, "template.event_type")?;
            let channel = channel_of(t.channel)
                .ok_or_else(|| Error::invalid("template.channel", "must name one channel"))?;
            if channel == Channel::Sms && !t.subject.is_empty() {
                return Err(Error::invalid(
                    "template.subject",
                    "an SMS has no subject; leave it empty",
                ));
            }
            template::check(event, &t.subject, &t.body)
                .map_err(|e| Error::invalid(format!("template.{}", e.part), e.message))?;
            let now = self.now();
            let mut tx = self.db.begin().await?;
            let row = store::insert_template(
                &mut tx,
                &event.name,
                channel,
                &t.subject,
                &t.body,
                &c.subject,
                unix_micros(now),
            )
            .await?;
            let response = template_pb(&row);
            let record = AuditRecord::by(&c, "template.create", response.name.clone());
            change::commit(tx, now, &key, record, &response).await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn list_templates(
        &self,
        request: Request<pb::ListTemplatesRequest>,
    ) -> Result<Response<pb::ListTemplatesResponse>, Status> {
        let c = caller(&request)?;
        let run = async {
            c.require(&STAFF)?;
            let r = request.get_ref();
            let page = Page::parse(r.page_size, &r.page_token)?;
            if !r.event_type.is_empty() {
                event_at(&r.event_type, "event_type")?;
            }
            let mut rows = store::list_templates(&self.db, &r.event_type, &page).await?;
            let next_page_token = page.finish(&mut rows, store::template_key);
            Ok(pb::ListTemplatesResponse {
                templates: rows.iter().map(template_pb).collect(),
                next_page_token,
            })
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn list_inbox_messages(
        &self,
        request: Request<pb::ListInboxMessagesRequest>,
    ) -> Result<Response<pb::ListInboxMessagesResponse>, Status> {
        let c = caller(&request)?;
        let run = async {
            let r = request.get_ref();
            let who = inbox_of(&r.parent, "parent")?;
            if !is_recipient(&c, &who) {
                c.require(&[Role::Office, Role::Supervisor])?;
            }
            let page = Page::parse(r.page_size, &r.page_token)?;
            let mut rows = store::list_inbox(&self.db, &who, r.unread_only, &page).await?;
            let next_page_token = page.finish(&mut rows, |m| m.id.clone());
            Ok(pb::ListInboxMessagesResponse {
                messages: rows.iter().map(inbox_pb).collect(),
                next_page_token,
            })
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn mark_inbox_message_read(
        &self,
        request: Request<pb::MarkInboxMessageReadRequest>,
    ) -> Result<Response<pb::InboxMessage>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let parts: Vec<&str> = r.name.split('/').collect();
            let (who, id) = match parts.as_slice() {
                ["inboxes", who, "messages", id]
                    if recipient::valid_id(who) && !id.is_empty() && id.len() <= 64 =>
                {
                    (who.to_string(), id.to_string())
                }
                _ => {
                    return Err(Error::invalid(
                        "name",
                        "must be inboxes/{recipient}/messages/{message}",
                    ));
                }
            };
            if !is_recipient(&c, &who) {
                return Err(Error::permission_denied(
                    "only the recipient marks a message read",
                ));
            }
            let key = RequestKey::new("MarkInboxMessageRead", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(&self.db, &key).await? {
                return Ok(done);
            }
            let now = self.now();
            let mut tx = self.db.begin().await?;
            let row = store::mark_read(&mut tx, &who, &id, unix_micros(now)).await?;
            let response = inbox_pb(&row);
            let record = AuditRecord::by(&c, "inbox.mark_read", response.name.clone());
            change::commit(tx, now, &key, record, &response).await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn list_dead_letters(
        &self,
        request: Request<pb::ListDeadLettersRequest>,
    ) -> Result<Response<pb::ListDeadLettersResponse>, Status> {
        let c = caller(&request)?;
        let run = async {
            c.require(&[Role::Office, Role::Supervisor])?;
            let r = request.get_ref();
            let page = Page::parse(r.page_size, &r.page_token)?;
            let mut rows = store::list_dead(&self.db, &page).await?;
            let next_page_token = page.finish(&mut rows, |d| d.id.clone());
            Ok(pb::ListDeadLettersResponse {
                dead_letters: rows
                    .iter()
                    .map(|d| {
                        let mut p = delivery_pb(d);
                        p.name = format!("deadLetters/{}", d.id);
                        p
                    })
                    .collect(),
                next_page_token,
            })
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn requeue_dead_letter(
        &self,
        request: Request<pb::RequeueDeadLetterRequest>,
    ) -> Result<Response<pb::Delivery>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let id = id_of(&r.name, "deadLetters", "name")?;
            c.require(&[Role::Office])?;
            let key = RequestKey::new("RequeueDeadLetter", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(&self.db, &key).await? {
                return Ok(done);
            }
            let now = self.now();
            let mut tx = self.db.begin().await?;
            let before = store::get_delivery(&mut tx, &id).await?;
            let row = store::requeue(&mut tx, &id, unix_micros(now)).await?;
            let response = delivery_pb(&row);
            let record = AuditRecord::by(&c, "delivery.requeue", response.name.clone())
                .with_detail(serde_json::json!({
                    "attempts_before": before.attempts, "last_error": before.last_error,
                }));
            change::commit(tx, now, &key, record, &response).await?;
            self.wake.notify_waiters();
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn create_reminder(
        &self,
        request: Request<pb::CreateReminderRequest>,
    ) -> Result<Response<pb::Reminder>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            c.require(&SENDERS)?;
            let key = RequestKey::new("CreateReminder", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(&self.db, &key).await? {
                return Ok(done);
            }
            let m = r
                .reminder
                .as_ref()
                .ok_or_else(|| Error::invalid("reminder", "is required"))?;
            let event = event_at(&m.event_type, "reminder.event_type")?;
            if !(event.carries(DEADLINE_VAR) && event.carries(DAYS_LEFT_VAR)) {
                return Err(Error::invalid(
                    "reminder.event_type",
                    format!(
                        "event {} carries no {DEADLINE_VAR} and {DAYS_LEFT_VAR}, so it cannot remind",
                        event.name
                    ),
                ));
            }
            let mut bad = Vec::new();
            let recipients = recipients_of(&m.recipients, "reminder.recipients", &mut bad);
            variables_of(
                event,
                &m.variables,
                &[DEADLINE_VAR, DAYS_LEFT_VAR],
                "reminder.variables",
                &mut bad,
            );
            let deadline = match &m.deadline {
                None => {
                    bad.push(FieldViolation::new("reminder.deadline", "is required"));
                    None
                }
                Some(t) => match timestamp_from_pb(t, "reminder.deadline") {
                    Ok(d) => Some(d),
                    Err(e) => {
                        bad.extend(e.violations.iter().cloned());
                        None
                    }
                },
            };
            let mut days = Vec::new();
            for (i, d) in m.days_before.iter().enumerate() {
                match u32::try_from(*d) {
                    Ok(d) => days.push(d),
                    Err(_) => bad.push(FieldViolation::new(
                        format!("reminder.days_before[{i}]"),
                        "must not be negative",
                    )),
                }
            }
            if !bad.is_empty() {
                return Err(Error::invalid_fields(bad));
            }
            let deadline = deadline.expect("checked above");
            let now = self.now();
            let occurrences =
                reminder::schedule(deadline, &days, m.working_days, &self.calendar, now).map_err(
                    |e| match e {
                        ScheduleError::Days(d) => Error::invalid("reminder.days_before", d),
                        ScheduleError::AllPassed => Error::invalid(
                            "reminder.days_before",
                            "every reminder day has already passed",
                        ),
                        ScheduleError::Calendar(e @ CalendarError::UnknownYear(_)) => Error::new(
                            ErrorCode::FailedPrecondition,
                            "CALENDAR_YEAR_UNKNOWN",
                            e.to_string(),
                        )
                        .with_metadata("rule", "R-31"),
                        ScheduleError::Calendar(e) => Error::internal(e),
                    },
                )?;
            let id = self.new_id();
            let deadline_text = reminder::chinese_date(reminder::deadline_date(deadline));
            let mut tx = self.db.begin().await?;
            store::insert_reminder(
                &mut tx,
                &store::ReminderRow {
                    id: id.clone(),
                    event_type: event.name.clone(),
                    variables: serde_json::to_string(&m.variables).unwrap_or_default(),
                    recipients: recipients_json(&recipients),
                    deadline_micros: unix_micros(deadline),
                    days_before: serde_json::to_string(&days).unwrap_or_default(),
                    working_days: m.working_days,
                    created_by: c.subject.clone(),
                    created_micros: unix_micros(now),
                },
            )
            .await?;
            let mut names = Vec::new();
            for o in &occurrences {
                let mut vars = m.variables.clone();
                vars.insert(DEADLINE_VAR.into(), deadline_text.clone());
                vars.insert(DAYS_LEFT_VAR.into(), o.days_left.to_string());
                let (row, _) = self
                    .accept(
                        &mut tx,
                        event,
                        &recipients,
                        &vars,
                        o.send_at,
                        Some(id.clone()),
                        &c.subject,
                    )
                    .await?;
                names.push(format!("notifications/{}", row.id));
            }
            let response = pb::Reminder {
                name: format!("reminders/{id}"),
                event_type: event.name.clone(),
                recipients: recipients_pb(&recipients_json(&recipients)),
                variables: m.variables.clone(),
                deadline: Some(to_timestamp(unix_micros(deadline))),
                days_before: m.days_before.clone(),
                working_days: m.working_days,
                scheduled_times: occurrences
                    .iter()
                    .map(|o| to_timestamp(unix_micros(o.send_at)))
                    .collect(),
                notifications: names,
            };
            let record = AuditRecord::by(&c, "reminder.create", response.name.clone())
                .because(event.rule.clone())
                .with_detail(serde_json::json!({
                    "event_type": event.name,
                    "deadline": deadline_text,
                    "working_days": m.working_days,
                    "scheduled": occurrences.iter().map(|o| unix_micros(o.send_at)).collect::<Vec<_>>(),
                }));
            change::commit(tx, now, &key, record, &response).await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn list_reminders(
        &self,
        request: Request<pb::ListRemindersRequest>,
    ) -> Result<Response<pb::ListRemindersResponse>, Status> {
        let c = caller(&request)?;
        let run = async {
            c.require(&STAFF)?;
            let r = request.get_ref();
            let page = Page::parse(r.page_size, &r.page_token)?;
            let mut rows = store::list_reminders(&self.db, &page).await?;
            let next_page_token = page.finish(&mut rows, |m| m.id.clone());
            Ok(pb::ListRemindersResponse {
                reminders: rows
                    .iter()
                    .map(|m| pb::Reminder {
                        name: format!("reminders/{}", m.id),
                        event_type: m.event_type.clone(),
                        recipients: recipients_pb(&m.recipients),
                        variables: serde_json::from_str(&m.variables).unwrap_or_default(),
                        deadline: Some(to_timestamp(m.deadline_micros)),
                        days_before: serde_json::from_str(&m.days_before).unwrap_or_default(),
                        working_days: m.working_days,
                        scheduled_times: Vec::new(),
                        notifications: Vec::new(),
                    })
                    .collect(),
                next_page_token,
            })
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }
}

fn inbox_pb(m: &store::InboxRow) -> pb::InboxMessage {
    pb::InboxMessage {
        name: format!("inboxes/{}/messages/{}", m.recipient_id, m.id),
        subject: m.subject.clone(),
        body: m.body.clone(),
        read: m.read_micros.is_some(),
        create_time: Some(to_timestamp(m.created_micros)),
    }
}
