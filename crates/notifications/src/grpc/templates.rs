//! Templates: the Chinese message of each event type and channel, versioned.

use qaward_kit::{
    Error, Result, audit::AuditRecord, auth::Caller, change::Done, clock::unix_micros,
    idempotency::RequestKey, paging::Page,
};
use qaward_proto::qaward::notifications::v1 as pb;

use crate::{
    domain::{Channel, template},
    store,
};

use super::{
    NotificationsApi,
    convert::{channel_of, event_at, template_pb},
};

impl NotificationsApi {
    pub(super) async fn template_create(
        &self,
        c: &Caller,
        r: pb::CreateTemplateRequest,
    ) -> Result<pb::Template> {
        let key = RequestKey::new("CreateTemplate", c, &r.request_id, &r)?;
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
        self.change(key, |mut tx| async move {
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
            let record = AuditRecord::by(c, "template.create", response.name.clone());
            Ok(Done::new(tx, record, response))
        })
        .await
    }

    pub(super) async fn template_list(
        &self,
        _caller: &Caller,
        r: pb::ListTemplatesRequest,
    ) -> Result<pb::ListTemplatesResponse> {
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
    }
}
