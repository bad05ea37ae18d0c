//! The gRPC surface of `qaward.notifications.v1.NotificationService`, one file per resource:
//!
//! | file            | methods                                                        |
//! |-----------------|----------------------------------------------------------------|
//! | `notifications` | Create/Get/ListNotifications: rendered, one delivery per recipient and channel |
//! | `templates`     | Create/ListTemplates                                           |
//! | `inbox`         | ListInboxMessages, MarkInboxMessageRead                        |
//! | `dead_letters`  | ListDeadLetters, RequeueDeadLetter                             |
//! | `reminders`     | Create/ListReminders: deadlines on the working-day calendar (R-30, R-31) |
//! | `convert`       | proto ↔ domain                                                 |
//!
//! A notification is acknowledged only once committed; the worker delivers it. The trait
//! methods below only route.

mod convert;
mod dead_letters;
mod inbox;
mod notifications;
mod reminders;
mod templates;

use pb::notification_service_server::NotificationService;
use qaward_kit::{
    Error, Result,
    auth::{Caller, Role},
    calendar::Calendar,
    change::reply,
    change::{self, Done},
    db::Database,
    db::Tx,
    idempotency::RequestKey,
    server::ServiceContext,
};
use qaward_proto::qaward::common::v1 as common;
use qaward_proto::qaward::notifications::v1 as pb;
use std::sync::Arc;
use tokio::sync::Notify;
use tonic::{Request, Response, Status};

use crate::domain::recipient;

pub struct NotificationsApi {
    db: Database,
    ctx: ServiceContext,
    calendar: Arc<Calendar>,
    wake: Arc<Notify>,
}

/// Callers who see every notification and template.
const STAFF: [Role; 3] = [Role::Office, Role::Supervisor, Role::Service];

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
    pub fn new(db: Database, ctx: ServiceContext, calendar: Calendar, wake: Arc<Notify>) -> Self {
        NotificationsApi {
            // Stored answers are sealed with the field keys.
            db: db.with_fields(ctx.fields.clone()),
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

    /// Runs one mutating call ([`change::run`]): a retry gets its first answer; otherwise
    /// `work` changes the store in a transaction committed with its audit record (and the
    /// outbox events `work` enqueued in it).
    async fn change<M, F, Fut>(&self, key: Option<RequestKey>, work: F) -> Result<M>
    where
        M: prost::Message + Default,
        F: FnOnce(Tx) -> Fut,
        Fut: Future<Output = Result<Done<M>>>,
    {
        change::run(&self.db, self.now(), key, work).await
    }
}

type Answer<M> = std::result::Result<Response<M>, Status>;

impl NotificationsApi {
    /// This service's audit log as its RPCs answer it (issue 22, item 3).
    fn audit_log(&self) -> qaward_kit::audit::api::Log<'_> {
        qaward_kit::audit::api::Log {
            db: &self.db,
            ctx: &self.ctx,
            service: crate::KIND.as_str(),
        }
    }
}

#[tonic::async_trait]
impl NotificationService for NotificationsApi {
    async fn get_audit_checkpoint(
        &self,
        _r: Request<common::GetAuditCheckpointRequest>,
    ) -> Answer<common::AuditCheckpoint> {
        reply(self.audit_log().checkpoint().await)
    }

    async fn prove_audit_records(
        &self,
        r: Request<common::ProveAuditRecordsRequest>,
    ) -> Answer<common::AuditRecordProofs> {
        let (c, r) = Caller::and_message(r)?;
        reply(self.audit_log().prove_records_of_programme(&c, &r).await)
    }

    async fn prove_audit_consistency(
        &self,
        r: Request<common::ProveAuditConsistencyRequest>,
    ) -> Answer<common::AuditConsistencyProof> {
        reply(self.audit_log().prove_consistency(r.get_ref()).await)
    }

    async fn create_notification(
        &self,
        request: Request<pb::CreateNotificationRequest>,
    ) -> Result<Response<pb::Notification>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.notification_create(&c, r).await)
    }

    async fn get_notification(
        &self,
        request: Request<pb::GetNotificationRequest>,
    ) -> Result<Response<pb::Notification>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.notification_get(&c, r).await)
    }

    async fn list_notifications(
        &self,
        request: Request<pb::ListNotificationsRequest>,
    ) -> Result<Response<pb::ListNotificationsResponse>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.notification_list(&c, r).await)
    }

    async fn create_template(
        &self,
        request: Request<pb::CreateTemplateRequest>,
    ) -> Result<Response<pb::Template>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.template_create(&c, r).await)
    }

    async fn list_templates(
        &self,
        request: Request<pb::ListTemplatesRequest>,
    ) -> Result<Response<pb::ListTemplatesResponse>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.template_list(&c, r).await)
    }

    async fn list_inbox_messages(
        &self,
        request: Request<pb::ListInboxMessagesRequest>,
    ) -> Result<Response<pb::ListInboxMessagesResponse>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.inbox_list(&c, r).await)
    }

    async fn mark_inbox_message_read(
        &self,
        request: Request<pb::MarkInboxMessageReadRequest>,
    ) -> Result<Response<pb::InboxMessage>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.inbox_mark_read(&c, r).await)
    }

    async fn list_dead_letters(
        &self,
        request: Request<pb::ListDeadLettersRequest>,
    ) -> Result<Response<pb::ListDeadLettersResponse>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.dead_letter_list(&c, r).await)
    }

    async fn requeue_dead_letter(
        &self,
        request: Request<pb::RequeueDeadLetterRequest>,
    ) -> Result<Response<pb::Delivery>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.dead_letter_requeue(&c, r).await)
    }

    async fn create_reminder(
        &self,
        request: Request<pb::CreateReminderRequest>,
    ) -> Result<Response<pb::Reminder>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.reminder_create(&c, r).await)
    }

    async fn cancel_reminders(
        &self,
        request: Request<pb::CancelRemindersRequest>,
    ) -> Result<Response<pb::CancelRemindersResponse>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.reminder_cancel(&c, r).await)
    }

    async fn list_reminders(
        &self,
        request: Request<pb::ListRemindersRequest>,
    ) -> Result<Response<pb::ListRemindersResponse>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.reminder_list(&c, r).await)
    }
}
