//! The group leaders' meeting after the site visits (Art. 16(5)4): recorded by the office with
//! its attendees — every site group's leader — its minutes, and each change it makes to a
//! group's agreed score, written as a new version of that group's consensus. The rules
//! are `domain::leaders`.

use std::collections::BTreeSet;

use qaward_kit::{
    Error, Result, audit::AuditRecord, auth::Caller, change::Done, clock::to_timestamp,
    error::FieldViolation, idempotency::RequestKey, paging::Page,
};
use qaward_proto::qaward::scoring::v1 as pb;
use rust_decimal::Decimal;

use super::{
    ScoringApi,
    convert::{dec_pb, items_from_pb},
    names,
};
use crate::{
    domain::{leaders, lifecycle::Sheet},
    store,
};

pub(super) async fn record(
    api: &ScoringApi,
    c: &Caller,
    r: pb::RecordLeadersMeetingRequest,
) -> Result<pb::LeadersMeeting> {
    names::cycle(&r.cycle, "cycle")?;
    c.acts_for(names::programme_of(&r.cycle))?;
    let m = r.meeting.clone().unwrap_or_default();
    let mut bad = Vec::new();
    if r.meeting.is_none() {
        bad.push(FieldViolation::new("meeting", "is required"));
    }
    let minutes = m.minutes.trim().to_string();
    if minutes.is_empty() || minutes.chars().count() > 5_000 {
        bad.push(FieldViolation::new(
            "meeting.minutes",
            "must be 1-5000 characters",
        ));
    }
    let mut attendees = Vec::new();
    for (i, a) in m.attendees.iter().enumerate() {
        match names::id_of(a, "reviewers", &format!("meeting.attendees[{i}]")) {
            Ok(id) => attendees.push(id.to_uppercase()),
            Err(e) => bad.extend(e.violations.clone()),
        }
    }
    let mut changes = Vec::new();
    for (i, ch) in m.changes.iter().enumerate() {
        let field = format!("meeting.changes[{i}]");
        let reason = ch.reason.trim().to_string();
        if reason.is_empty() || reason.chars().count() > 2_000 {
            bad.push(FieldViolation::new(
                format!("{field}.reason"),
                "must be 1-2000 characters",
            ));
        }
        if ch.items.is_empty() {
            bad.push(FieldViolation::new(
                format!("{field}.items"),
                "names the items the meeting changes",
            ));
        }
        match names::assignment(&ch.assignment, &format!("{field}.assignment")) {
            Ok(a) if a.cycle == r.cycle => changes.push((field, a, ch.items.clone(), reason)),
            Ok(_) => bad.push(FieldViolation::new(
                format!("{field}.assignment"),
                "is not of this cycle",
            )),
            Err(e) => bad.extend(e.violations.clone()),
        }
    }
    if !bad.is_empty() {
        return Err(Error::invalid_fields(bad));
    }
    let key = RequestKey::new("RecordLeadersMeeting", c, &r.request_id, &r)?;
    let now = api.now_micros();
    let id = api.new_id();
    api.change(key, |mut tx| async move {
        let page = Page::parse(qaward_kit::paging::MAX_PAGE_SIZE as i32, "")?;
        let site: Vec<store::AssignmentRow> = store::list_assignments(&mut tx, &r.cycle, "", &page)
            .await?
            .into_iter()
            .filter(|a| a.stage == "SITE")
            .collect();
        leaders::may_hold(
            site.len(),
            store::leaders_meeting_held(&mut tx, &r.cycle).await?,
            store::released(&mut tx, &r.cycle, "SITE").await?,
        )?;
        let leaders_of: BTreeSet<String> = site
            .iter()
            .flat_map(|a| a.people.iter())
            .filter(|(_, role)| role == "LEADER")
            .map(|(who, _)| who.to_uppercase())
            .collect();
        leaders::attendance(&leaders_of, &attendees)?;
        let mut made = Vec::new();
        let mut out = Vec::new();
        for (field, named, items, reason) in changes {
            let Some(a) = site.iter().find(|a| a.id == named.id) else {
                return Err(Error::invalid(
                    format!("{field}.assignment"),
                    "is not a site assignment of this cycle",
                ));
            };
            let (_, rubric) =
                store::get_rubric(&mut tx, &a.rubric_id, Some(a.rubric_version)).await?;
            let changed = items_from_pb(&items, &rubric, &format!("{field}.items"))?;
            let consensus = Sheet::consensus_id(&a.id);
            let signed = store::assignment_sheets(&mut tx, &a.id)
                .await?
                .into_iter()
                .find(|s| s.id == consensus);
            let (old, new) = leaders::unify(signed, &rubric, changed, &reason, now, &field)?;
            if !store::supersede(&mut tx, &old.id, old.version).await? {
                return Err(crate::domain::lifecycle::corrected_meanwhile());
            }
            store::insert_sheet(&mut tx, &new).await?;
            let total = |s: &Sheet| s.total.parse::<Decimal>().unwrap_or_default();
            let assignment = names::assignment_name(&a.cycle, &a.id);
            made.push(serde_json::json!({
                "assignment": assignment, "sheet": new.id, "version": new.version,
                "total_before": old.total, "total_after": new.total, "reason": reason,
            }));
            out.push(pb::LeadersMeetingChange {
                sheet: format!("{assignment}/sheets/{}", new.id),
                assignment,
                items,
                reason,
                total_before: dec_pb(total(&old)),
                total_after: dec_pb(total(&new)),
            });
        }
        let attendees_json = serde_json::json!(attendees);
        let changes_json = serde_json::Value::Array(made);
        store::insert_leaders_meeting(
            &mut tx,
            &id,
            &r.cycle,
            &attendees_json,
            &minutes,
            &changes_json,
            now,
        )
        .await?;
        let response = pb::LeadersMeeting {
            name: format!("{}/leadersMeetings/{id}", r.cycle),
            attendees: attendees.iter().map(|a| format!("reviewers/{a}")).collect(),
            minutes: minutes.clone(),
            changes: out,
            record_time: Some(to_timestamp(now)),
        };
        let record = AuditRecord::by(c, "site.leaders_meeting", response.name.clone())
            .because("R-15")
            .with_detail(serde_json::json!({
                "attendees": attendees_json, "minutes": minutes, "changes": changes_json,
            }));
        Ok(Done::new(tx, record, response))
    })
    .await
}
