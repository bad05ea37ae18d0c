//! Deliveries that ran out of retries, and their requeue.

use qaward_kit::{
    Result, audit::AuditRecord, auth::Caller, change, clock::unix_micros, idempotency::RequestKey,
    paging::Page,
};
use qaward_proto::qaward::notifications::v1 as pb;

use crate::store;

use super::{NotificationsApi, convert::delivery_pb, id_of};

impl NotificationsApi {
    pub(super) async fn dead_letter_list(
        &self,
        _caller: &Caller,
        r: pb::ListDeadLettersRequest,
    ) -> Result<pb::ListDeadLettersResponse> {
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
    }

    pub(super) async fn dead_letter_requeue(
        &self,
        c: &Caller,
        r: pb::RequeueDeadLetterRequest,
    ) -> Result<pb::Delivery> {
        let id = id_of(&r.name, "deadLetters", "name")?;
        let key = RequestKey::new("RequeueDeadLetter", c, &r.request_id, &r)?;
        if let Some(done) = change::recall(&self.db, &key).await? {
            return Ok(done);
        }
        let now = self.now();
        let mut tx = match change::turn(&self.db, &key).await? {
            change::Turn::Answered(done) => return Ok(done),
            change::Turn::Mine(tx) => tx,
        };
        let before = store::get_delivery(&mut tx, &id).await?;
        let row = store::requeue(&mut tx, &id, unix_micros(now)).await?;
        let response = delivery_pb(&row);
        let record = AuditRecord::by(c, "delivery.requeue", response.name.clone()).with_detail(
            serde_json::json!({
                "attempts_before": before.attempts, "last_error": before.last_error,
            }),
        );
        change::commit(&self.db, tx, now, &key, record, &response).await?;
        self.wake.notify_waiters();
        Ok(response)
    }
}
