//! A recipient's inbox on the platform.

use qaward_kit::{
    Error, Result, audit::AuditRecord, auth::Caller, auth::Role, change::Done, clock::unix_micros,
    idempotency::RequestKey, paging::Page,
};
use qaward_proto::qaward::notifications::v1 as pb;

use crate::{domain::recipient, store};

use super::{NotificationsApi, convert::inbox_pb, inbox_of, is_recipient};

impl NotificationsApi {
    pub(super) async fn inbox_list(
        &self,
        c: &Caller,
        r: pb::ListInboxMessagesRequest,
    ) -> Result<pb::ListInboxMessagesResponse> {
        let who = inbox_of(&r.parent, "parent")?;
        if !is_recipient(c, &who) {
            c.require(&[Role::Office, Role::Supervisor])?;
        }
        let page = Page::parse(r.page_size, &r.page_token)?;
        let mut rows = store::list_inbox(&self.db, &who, r.unread_only, &page).await?;
        let next_page_token = page.finish(&mut rows, |m| m.id.clone());
        Ok(pb::ListInboxMessagesResponse {
            messages: rows.iter().map(|m| inbox_pb(m, &self.ctx.fields)).collect(),
            next_page_token,
        })
    }

    pub(super) async fn inbox_mark_read(
        &self,
        c: &Caller,
        r: pb::MarkInboxMessageReadRequest,
    ) -> Result<pb::InboxMessage> {
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
        if !is_recipient(c, &who) {
            return Err(Error::permission_denied(
                "only the recipient marks a message read",
            ));
        }
        let key = RequestKey::new("MarkInboxMessageRead", c, &r.request_id, &r)?;
        let now = self.now();
        self.change(key, |mut tx| async move {
            let row = store::mark_read(&mut tx, &who, &id, unix_micros(now)).await?;
            let response = inbox_pb(&row, &self.ctx.fields);
            let record = AuditRecord::by(c, "inbox.mark_read", response.name.clone());
            Ok(Done::new(tx, record, response))
        })
        .await
    }
}
