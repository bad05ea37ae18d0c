//! The events other services follow (issue 24): a panel's members changed, a draw superseded,
//! a cooling-off violation found. Each is written to the outbox in the transaction of its
//! change ([`publish`]); the relay numbers it into the feed ([`qaward_kit::events`]), and a
//! following service reads the feed with `ListEvents`. This service calls no other.

use prost::Message;
use qaward_kit::{
    Error, Result,
    auth::{Caller, Role},
    clock::to_timestamp,
    db::Conn,
    events,
    outbox::{self, Event},
};
use qaward_proto::qaward::reviewers::v1 as pb;

use super::ReviewersApi;
use crate::domain::panel::{Panel, SeatState};

/// The feed's page: 100 by default, at most 500.
const PAGE_DEFAULT: i64 = 100;
const PAGE_MAX: i32 = 500;

pub(super) async fn list(
    api: &ReviewersApi,
    c: &Caller,
    r: pb::ListEventsRequest,
) -> Result<pb::ListEventsResponse> {
    c.require(&[Role::Service])?;
    let after = if r.page_token.is_empty() {
        r.after_sequence
    } else {
        r.page_token
            .strip_prefix("after:")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| Error::invalid("page_token", "is not a token this feed gave"))?
    };
    if after < 0 {
        return Err(Error::invalid("after_sequence", "must not be negative"));
    }
    let limit = match r.page_size {
        0 => PAGE_DEFAULT,
        n if (1..=PAGE_MAX).contains(&n) => i64::from(n),
        _ => return Err(Error::invalid("page_size", "must be 0-500")),
    };
    let (rows, last) = events::read(&api.db, after, limit).await?;
    let mut out = Vec::with_capacity(rows.len());
    for p in rows {
        let mut e = pb::ReviewersEvent::decode(p.event.payload.as_slice())
            .map_err(|e| Error::internal(format!("feed event {} does not decode: {e}", p.seq)))?;
        e.sequence = p.seq;
        e.create_time = Some(to_timestamp(p.event.created_micros));
        out.push(e);
    }
    let next_page_token = match out.last() {
        Some(e) if e.sequence < last => format!("after:{}", e.sequence),
        _ => String::new(),
    };
    Ok(pb::ListEventsResponse {
        events: out,
        last_sequence: last,
        next_page_token,
    })
}

/// Writes an event of `programme` to the outbox, in the caller's transaction.
pub(super) async fn publish(
    conn: &mut Conn,
    at: time::OffsetDateTime,
    programme: &str,
    kind: pb::reviewers_event::Kind,
) -> Result<()> {
    let topic = match &kind {
        pb::reviewers_event::Kind::MemberReplaced(_) => "reviewers.member_replaced",
        pb::reviewers_event::Kind::DrawSuperseded(_) => "reviewers.draw_superseded",
        pb::reviewers_event::Kind::CoolingOffViolation(_) => "reviewers.cooling_off_violation",
    };
    let mut event = Event::new(topic, Vec::new());
    event.payload = pb::ReviewersEvent {
        id: event.id.clone(),
        programme: format!("programmes/{programme}"),
        kind: Some(kind),
        ..Default::default()
    }
    .encode_to_vec();
    outbox::enqueue(conn, at, &event).await
}

/// The panel's sitting members (pending or accepted), as followers seat them.
pub(super) fn members(p: &Panel) -> pb::PanelMembers {
    let sitting: Vec<_> = p
        .seats
        .iter()
        .filter(|s| s.is_member() && matches!(s.state, SeatState::Pending | SeatState::Accepted))
        .collect();
    pb::PanelMembers {
        panel: format!("programmes/{}/panels/{}", p.programme_id, p.id),
        draw: format!("programmes/{}/draws/{}", p.programme_id, p.draw_id),
        members: sitting
            .iter()
            .map(|s| format!("reviewers/{}", s.reviewer_id))
            .collect(),
        leader: sitting
            .iter()
            .find(|s| s.leader)
            .map(|s| format!("reviewers/{}", s.reviewer_id))
            .unwrap_or_default(),
    }
}
