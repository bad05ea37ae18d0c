//! Reminders of deadlines counted in working days.

use qaward_kit::{
    Error, Result,
    audit::AuditRecord,
    auth::Caller,
    calendar::CalendarError,
    change,
    change::Done,
    clock::{to_timestamp, unix_micros},
    convert::timestamp_from_pb,
    error::{ErrorCode, FieldViolation},
    idempotency::RequestKey,
    paging::Page,
};
use qaward_proto::qaward::notifications::v1 as pb;

use crate::{
    domain::reminder::{self, DAYS_LEFT_VAR, DEADLINE_VAR, ScheduleError},
    store,
};

use super::{
    NotificationsApi,
    convert::{
        event_at, recipients_json, recipients_of, recipients_pb, variables_json, variables_of,
        variables_opened,
    },
};

impl NotificationsApi {
    pub(super) async fn reminder_create(
        &self,
        c: &Caller,
        r: pb::CreateReminderRequest,
    ) -> Result<pb::Reminder> {
        let key = RequestKey::new("CreateReminder", c, &r.request_id, &r)?;
        // A retry is answered before the state it reads below has moved on (AIP-155).
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
        let occurrences = reminder::schedule(deadline, &days, m.working_days, &self.calendar, now)
            .map_err(|e| match e {
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
            })?;
        let id = self.new_id();
        let deadline_text = reminder::chinese_date(reminder::deadline_date(deadline));
        self.change(key, |mut tx| async move {
            store::insert_reminder(
                &mut tx,
                &store::ReminderRow {
                    id: id.clone(),
                    event_type: event.name.clone(),
                    variables: variables_json(&m.variables, &self.ctx.fields),
                    recipients: recipients_json(&recipients, &self.ctx.fields),
                    deadline_micros: unix_micros(deadline),
                    days_before: serde_json::to_string(&days).unwrap_or_default(),
                    working_days: m.working_days,
                    created_by: c.subject.clone(),
                    created_micros: unix_micros(now),
                    cancelled_micros: None,
                    cancel_reason: String::new(),
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
                recipients: recipients_pb(
                    &recipients_json(&recipients, &self.ctx.fields),
                    &self.ctx.fields,
                    &|_| false,
                ),
                variables: m.variables.clone(),
                deadline: Some(to_timestamp(unix_micros(deadline))),
                days_before: m.days_before.clone(),
                working_days: m.working_days,
                scheduled_times: occurrences
                    .iter()
                    .map(|o| to_timestamp(unix_micros(o.send_at)))
                    .collect(),
                notifications: names,
                cancel_time: None,
                cancel_reason: String::new(),
            };
            let record = AuditRecord::by(c, "reminder.create", response.name.clone())
                .because(event.rule.clone())
                .with_detail(serde_json::json!({
                    "event_type": event.name,
                    "deadline": deadline_text,
                    "working_days": m.working_days,
                    "scheduled": occurrences.iter().map(|o| unix_micros(o.send_at)).collect::<Vec<_>>(),
                }));
            Ok(Done::new(tx, record, response))
        })
        .await
    }

    pub(super) async fn reminder_list(
        &self,
        _caller: &Caller,
        r: pb::ListRemindersRequest,
    ) -> Result<pb::ListRemindersResponse> {
        let page = Page::parse(r.page_size, &r.page_token)?;
        let mut rows = store::list_reminders(&self.db, &page).await?;
        let next_page_token = page.finish(&mut rows, |m| m.id.clone());
        Ok(pb::ListRemindersResponse {
            reminders: rows
                .iter()
                .map(|m| pb::Reminder {
                    name: format!("reminders/{}", m.id),
                    event_type: m.event_type.clone(),
                    recipients: recipients_pb(&m.recipients, &self.ctx.fields, &|_| false),
                    variables: variables_opened(&m.variables, &self.ctx.fields),
                    deadline: Some(to_timestamp(m.deadline_micros)),
                    days_before: serde_json::from_str(&m.days_before).unwrap_or_default(),
                    working_days: m.working_days,
                    scheduled_times: Vec::new(),
                    notifications: Vec::new(),
                    cancel_time: m.cancelled_micros.map(to_timestamp),
                    cancel_reason: m.cancel_reason.clone(),
                })
                .collect(),
            next_page_token,
        })
    }

    pub(super) async fn reminder_cancel(
        &self,
        c: &Caller,
        r: pb::CancelRemindersRequest,
    ) -> Result<pb::CancelRemindersResponse> {
        let mut bad = Vec::new();
        if !qaward_kit::notify::valid_recipient_id(&r.recipient_id) {
            bad.push(FieldViolation::new(
                "recipient_id",
                "1-64 letters, digits, '-', '_' or '.'",
            ));
        }
        if let Err(e) = event_at(&r.event_type, "event_type") {
            bad.extend(e.violations.clone());
        }
        let reason = r.reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            bad.push(FieldViolation::new("reason", "must be 1-500 characters"));
        }
        if !bad.is_empty() {
            return Err(Error::invalid_fields(bad));
        }
        let key = RequestKey::new("CancelReminders", c, &r.request_id, &r)?;
        let now = self.now();
        self.change(key, |mut tx| async move {
            let (ids, stopped) = store::cancel_reminders(
                &mut tx,
                &r.recipient_id,
                &r.event_type,
                reason,
                unix_micros(now),
            )
            .await?;
            let response = pb::CancelRemindersResponse {
                reminders: ids.iter().map(|id| format!("reminders/{id}")).collect(),
                cancelled_deliveries: stopped as i32,
            };
            let record = AuditRecord::by(
                c,
                "reminder.cancel",
                format!("inboxes/{}", r.recipient_id),
            )
            .because(reason.to_string())
            .with_detail(serde_json::json!({
                "event_type": r.event_type, "reminders": response.reminders, "deliveries": stopped,
            }));
            Ok(Done::new(tx, record, response))
        })
        .await
    }
}
