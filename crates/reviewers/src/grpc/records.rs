//! A reviewer's record (Art. 6(3), R-42): training, the certificate shown at a review,
//! assessments and conduct, and the year they add up to.

use qaward_kit::{
    Error, Result,
    audit::AuditRecord,
    auth::{Caller, Role},
    change::Done,
    convert::iso_date,
    error::FieldViolation,
    idempotency::RequestKey,
    paging::Page,
};
use qaward_proto::qaward::reviewers::v1 as pb;

use super::{
    ReviewersApi,
    convert::{date_of, event_from_pb, event_pb},
    is_self,
    names::{child, reviewer_id, reviewer_year},
    self_or,
};
use crate::{
    domain::{eligibility, record},
    store,
};

pub(super) async fn record_event(
    api: &ReviewersApi,
    c: &Caller,
    r: pb::RecordReviewerEventRequest,
) -> Result<pb::ReviewerEvent> {
    let reviewer = reviewer_id(&r.parent, "parent")?;
    let e = r
        .event
        .as_ref()
        .ok_or_else(|| Error::invalid("event", "is required"))?;
    let day = date_of(&e.date, "event.date")?
        .ok_or_else(|| Error::invalid("event.date", "is required"))?;
    let office = c.role == Role::Office;
    let event = event_from_pb(e, office)?;
    let bad = record::problems(&event);
    if !bad.is_empty() {
        return Err(Error::invalid_fields(
            bad.into_iter()
                .map(|(f, d)| FieldViolation::new(f, d))
                .collect(),
        ));
    }
    let key = RequestKey::new("RecordReviewerEvent", c, &r.request_id, &r)?;
    api.change(key, |mut tx| async move {
        let subject = store::get_reviewer(&mut tx, &reviewer).await?;
        // A review's events: the reviewer sat on that panel; a leader records only about
        // the other members of the panel it leads.
        let mut leads = false;
        if let Some(panel) = event.panel() {
            let (programme, id) = child(panel, "panels", "event.panel")?;
            let p = store::get_panel(&mut tx, &programme, &id).await?;
            if p.member(&reviewer).is_none() {
                return Err(Error::invalid(
                    "event.panel",
                    "the reviewer did not sit on this panel",
                ));
            }
            leads = c.role == Role::Reviewer && p.member(&c.subject).is_some_and(|s| s.leader);
        }
        record::may_record(&event, office, leads, is_self(c, &reviewer))
            .map_err(Error::permission_denied)?;
        if let record::Event::CertificateShown {
            certificate_number, ..
        } = &event
        {
            let rec = &subject.record;
            record::certificate_check(
                certificate_number,
                &rec.certificate_number,
                &rec.cert_valid_from,
                &rec.cert_valid_until,
                &day,
            )?;
        }
        let id = api.new_id();
        // A serious violation suspends the reviewer from draws from that day until the
        // office resolves the flag (eligibility already excludes a suspended reviewer).
        let mut suspension = String::new();
        if let record::Event::Violation {
            serious: true,
            duty,
            ..
        } = &event
        {
            let flag = store::FlagRow {
                id: api.new_id(),
                reviewer_id: reviewer.clone(),
                kind: "SUSPENSION".into(),
                start_date: day.clone(),
                end_date: None,
                note: format!("严重违反评审人员行为规范第六条第{duty}项（事件 {id}）"),
                resolved: false,
            };
            store::insert_flag(&mut tx, &flag, api.now()).await?;
            suspension = format!("reviewers/{reviewer}/flags/{}", flag.id);
        }
        let row = store::EventRow {
            id,
            reviewer_id: reviewer.clone(),
            year: day[..4].parse().unwrap_or_default(),
            date: day,
            event,
            recorded_by: if office {
                c.subject.clone()
            } else {
                format!("reviewers/{}", c.subject.to_ascii_uppercase())
            },
            suspension,
            created_micros: api.now_micros(),
        };
        store::insert_event(&mut tx, &row).await?;
        let response = event_pb(&row);
        let record = AuditRecord::by(c, "reviewer.record_event", response.name.clone())
            .with_detail(serde_json::json!({
                "kind": row.event.kind(),
                "suspension": row.suspension,
            }));
        Ok(Done::new(tx, record, response))
    })
    .await
}

pub(super) async fn get_year(
    api: &ReviewersApi,
    c: &Caller,
    r: pb::GetReviewerRecordRequest,
) -> Result<pb::ReviewerYear> {
    let (reviewer, year) = reviewer_year(&r.name, "name")?;
    self_or(c, &reviewer, &[Role::Office, Role::Supervisor])?;
    let mut conn = api.db.pool().acquire().await?;
    store::get_reviewer(&mut conn, &reviewer).await?;
    let events = store::events_of_year(&mut conn, &reviewer, year).await?;
    let today = iso_date(api.now().date());
    let suspended = store::list_flags(&api.db, &reviewer, &Page::parse(100, "")?)
        .await?
        .iter()
        .any(|f| {
            eligibility::suspends(
                &f.kind,
                f.resolved,
                &f.start_date,
                f.end_date.as_deref(),
                &today,
                &today,
            )
        });
    let training_hours = events
        .iter()
        .map(|e| match e.event {
            record::Event::Training { hours, .. } => hours,
            _ => 0,
        })
        .sum();
    Ok(pb::ReviewerYear {
        name: format!("reviewers/{reviewer}/years/{year}"),
        year,
        events: events.iter().map(event_pb).collect(),
        training_hours,
        suspended,
    })
}
