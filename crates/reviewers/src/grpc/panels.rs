//! Panels: a drawn group sealed until release, its members' answers, and
//! replacements from the backups in draw order.

use qaward_kit::{
    Error, Result,
    audit::AuditRecord,
    auth::{Caller, Role},
    change::Done,
    db::Tx,
    idempotency::RequestKey,
    paging::Page,
};
use qaward_proto::qaward::reviewers::v1 as pb;

use super::{
    ReviewersApi,
    convert::panel_pb,
    events, is_self,
    names::{child, programme_id, reviewer_id},
};
use crate::{
    domain::{
        eligibility,
        panel::{self, SeatState},
    },
    store,
};

/// A decline's reason or a replacement's note: it travels in the panel's events and the
/// office's notices, so it is bounded here, at the edge.
const MAX_NOTE_CHARS: usize = 500;

pub(super) async fn get(
    api: &ReviewersApi,
    c: &Caller,
    r: pb::GetPanelRequest,
) -> Result<pb::Panel> {
    let (programme, id) = child(&r.name, "panels", "name")?;
    let mut conn = api.db.pool().acquire().await?;
    if c.role == Role::Reviewer {
        let p = store::get_panel(&mut conn, &programme, &id).await?;
        if p.member(&c.subject).is_none() {
            return Err(Error::permission_denied(
                "only the panel's members may read it (R-43)",
            ));
        }
        return Ok(panel_pb(&p, c));
    }
    c.require_programme(&programme, &[Role::Office, Role::Supervisor])?;
    Ok(panel_pb(
        &store::get_panel(&mut conn, &programme, &id).await?,
        c,
    ))
}

pub(super) async fn list(
    api: &ReviewersApi,
    c: &Caller,
    r: pb::ListPanelsRequest,
) -> Result<pb::ListPanelsResponse> {
    let programme = programme_id(&r.parent, "parent")?;
    c.acts_for(&programme)?;
    let page = Page::parse(r.page_size, &r.page_token)?;
    let mut rows = store::list_panels(&api.db, &programme, &page).await?;
    let next_page_token = page.finish(&mut rows, |p| p.id.clone());
    Ok(pb::ListPanelsResponse {
        panels: rows.iter().map(|p| panel_pb(p, c)).collect(),
        next_page_token,
    })
}

pub(super) async fn respond(
    api: &ReviewersApi,
    c: &Caller,
    r: pb::RespondToAssignmentRequest,
) -> Result<pb::Panel> {
    let (programme, panel_id) = child(&r.panel, "panels", "panel")?;
    let reviewer = reviewer_id(&r.reviewer, "reviewer")?;
    if !is_self(c, &reviewer) {
        c.require_programme(&programme, &[Role::Office])?;
    }
    if !r.accept && r.reason.trim().is_empty() {
        return Err(Error::invalid("reason", "a decline gives its reason"));
    }
    if r.reason.chars().count() > MAX_NOTE_CHARS {
        return Err(Error::invalid("reason", "at most 500 characters"));
    }
    let key = RequestKey::new("RespondToAssignment", c, &r.request_id, &r)?;
    api.change(key, |mut tx| async move {
        let mut p = store::get_panel(&mut tx, &programme, &panel_id).await?;
        p.answer(&reviewer, r.accept, api.now_micros())?;
        if !r.accept {
            return call_backup(
                api,
                tx,
                c,
                p,
                &reviewer,
                SeatState::Declined,
                r.reason.trim(),
            )
            .await;
        }
        for s in p.seats.iter().filter(|s| s.reviewer_id == reviewer) {
            store::update_seat(&mut tx, &panel_id, s).await?;
        }
        let response = panel_pb(&p, c);
        let record = AuditRecord::by(c, "panel.accept", response.name.clone())
            .with_detail(serde_json::json!({ "reviewer": reviewer }));
        Ok(Done::new(tx, record, response))
    })
    .await
}

pub(super) async fn replace_member(
    api: &ReviewersApi,
    c: &Caller,
    r: pb::ReplaceMemberRequest,
) -> Result<pb::Panel> {
    let (programme, panel_id) = child(&r.panel, "panels", "panel")?;
    c.acts_for(&programme)?;
    let reviewer = reviewer_id(&r.reviewer, "reviewer")?;
    if r.note.chars().count() > MAX_NOTE_CHARS {
        return Err(Error::invalid("note", "at most 500 characters"));
    }
    let key = RequestKey::new("ReplaceMember", c, &r.request_id, &r)?;
    let reason = pb::ReplaceReason::try_from(r.reason)
        .ok()
        .filter(|x| *x != pb::ReplaceReason::Unspecified)
        .ok_or_else(|| Error::invalid("reason", "must be set"))?;
    api.change(key, |mut tx| async move {
        let p = store::get_panel(&mut tx, &programme, &panel_id).await?;
        let (state, why) = match reason {
            pb::ReplaceReason::MissedDeadline => {
                p.check_overdue(&reviewer, api.now_micros())?;
                (
                    SeatState::Expired,
                    "missed the response deadline".to_string(),
                )
            }
            pb::ReplaceReason::LateConflict => {
                let facts = store::reviewer_facts(&mut tx, &reviewer, &p.enterprise_codes).await?;
                let reasons = eligibility::conflicts(
                    &facts,
                    &p.enterprise_codes,
                    &p.window_start,
                    &p.window_end,
                );
                (SeatState::Replaced, panel::late_conflict(&reasons)?)
            }
            _ => (SeatState::Declined, r.note.clone()),
        };
        call_backup(api, tx, c, p, &reviewer, state, &why).await
    })
    .await
}

pub(super) async fn release(
    api: &ReviewersApi,
    c: &Caller,
    r: pb::ReleasePanelRequest,
) -> Result<pb::Panel> {
    let (programme, panel_id) = child(&r.name, "panels", "name")?;
    c.acts_for(&programme)?;
    let key = RequestKey::new("ReleasePanel", c, &r.request_id, &r)?;
    api.change(key, |mut tx| async move {
        store::get_panel(&mut tx, &programme, &panel_id).await?;
        store::set_released(&mut tx, &panel_id).await?;
        let response = panel_pb(&store::get_panel(&mut tx, &programme, &panel_id).await?, c);
        let record = AuditRecord::by(c, "panel.release", response.name.clone());
        Ok(Done::new(tx, record, response))
    })
    .await
}

/// Hands `leaving`'s seat to the next qualifying backup ([`panel::Panel::replace`]) and moves
/// the bookings with it: the leaving member's days are freed, the backup's booked.
async fn call_backup(
    api: &ReviewersApi,
    mut tx: Tx,
    c: &Caller,
    mut p: panel::Panel,
    leaving: &str,
    state: SeatState,
    reason: &str,
) -> Result<Done<pb::Panel>> {
    let d = store::get_draw(&mut tx, &p.programme_id, &p.draw_id).await?;
    let respond_by = panel::respond_by(api.now());
    let moved = p.replace(
        &d.prepared,
        d.outcome.as_ref(),
        leaving,
        state,
        reason,
        respond_by,
    )?;
    for s in &p.seats {
        store::update_seat(&mut tx, &p.id, s).await?;
    }
    if p.is_review() {
        store::unbook(&mut tx, &moved.leaving, &p.id).await?;
        let days = eligibility::days(&p.window_start, &p.window_end);
        store::book(&mut tx, &moved.next, &days, &p.id).await?;
        store::assign(&mut tx, &moved.next, &p).await?;
    }
    let (reason_pb, rule) = match state {
        SeatState::Replaced => (pb::ReplaceReason::LateConflict, "R-41"),
        SeatState::Expired => (pb::ReplaceReason::MissedDeadline, "R-45"),
        _ => (pb::ReplaceReason::Declined, "R-45"),
    };
    // the replacement joins the draw's replayable record (docs/draw.md §5-§6).
    let replaced = crate::domain::draw::Replaced {
        leaving: moved.leaving.clone(),
        reason: reason_pb
            .as_str_name()
            .trim_start_matches("REPLACE_REASON_")
            .to_string(),
        joining: moved.next.clone(),
        leader: p
            .seats
            .iter()
            .find(|s| s.leader)
            .map(|s| s.reviewer_id.clone())
            .unwrap_or_default(),
    };
    if !store::append_replacement(&mut tx, &d, &replaced).await? {
        return Err(Error::new(
            qaward_kit::ErrorCode::Aborted,
            "CONCURRENT_CHANGE",
            "the draw's record changed meanwhile; try again",
        ));
    }
    events::publish(
        &mut tx,
        api.now(),
        &p.programme_id,
        pb::reviewers_event::Kind::MemberReplaced(pb::MemberReplaced {
            panel: Some(events::members(&p)),
            leaving: format!("reviewers/{}", moved.leaving),
            joining: format!("reviewers/{}", moved.next),
            reason: reason_pb as i32,
            rule: rule.into(),
            note: reason.to_string(),
        }),
    )
    .await?;
    let response = panel_pb(&p, c);
    let record = AuditRecord::by(c, "panel.replace", response.name.clone())
        .because(format!("{}: {reason}", state.as_str()))
        .with_detail(
            serde_json::json!({ "leaving": moved.leaving, "backup": moved.next, "work_void": true }),
        );
    Ok(Done::new(tx, record, response))
}
