//! The group's consensus: its discussion opened on the spread of the independent
//! scores, signed by the leader, and the reserved opinions of members who disagree
//! (Rev. Art. 6(4)).

use qaward_kit::{
    Error, Result,
    audit::AuditRecord,
    auth::{Caller, Role},
    change::Done,
    error::FieldViolation,
    idempotency::RequestKey,
    paging::Page,
};
use qaward_proto::qaward::scoring::v1 as pb;

use super::{
    ScoringApi, assignments,
    convert::{items_from_pb, opinion_pb, sheet_pb},
    names, staff_of,
};
use crate::{
    domain::{
        group,
        lifecycle::{self, Sheet, SheetKind, SheetState},
        sheet,
    },
    store,
};

pub(super) async fn open(
    api: &ScoringApi,
    c: &Caller,
    r: pb::OpenConsensusRequest,
) -> Result<pb::ConsensusView> {
    let named = names::assignment(&r.assignment, "assignment")?;
    let mut conn = api.db.pool().acquire().await?;
    let a = assignments::named(&mut conn, &named).await?;
    if !(staff_of(c, &a.cycle)
        || (c.role == Role::Reviewer && a.role_of(&c.subject) == Some("LEADER")))
    {
        return Err(Error::permission_denied("the group leader opens consensus"));
    }
    let independent = lifecycle::all_independent_in(
        a.scorers(),
        store::assignment_sheets(&mut conn, &a.id).await?,
    )?;
    let (_, rubric) = store::get_rubric(&mut conn, &a.rubric_id, Some(a.rubric_version)).await?;
    let mut items: Vec<pb::ItemSpread> = rubric
        .items()
        .map(|item| {
            let by: Vec<(String, u32)> = independent
                .iter()
                .filter_map(|s| {
                    s.items
                        .iter()
                        .find(|i| i.code == item.code)
                        .map(|i| (format!("reviewers/{}", s.reviewer), i.percent))
                })
                .collect();
            let sp = sheet::spread(&item.code, &by.iter().map(|(_, p)| *p).collect::<Vec<_>>());
            pb::ItemSpread {
                item_code: item.code.clone(),
                percent_by_reviewer: by.into_iter().map(|(r, p)| (r, p as i32)).collect(),
                spread: sp.spread as i32,
                discuss_first: sp.discuss_first,
            }
        })
        .collect();
    // Items whose scores lie more than one band apart are discussed first.
    items.sort_by_key(|i| !i.discuss_first);
    Ok(pb::ConsensusView {
        assignment: names::assignment_name(&a.cycle, &a.id),
        items,
    })
}

pub(super) async fn sign(
    api: &ScoringApi,
    c: &Caller,
    r: pb::SignConsensusRequest,
) -> Result<pb::Sheet> {
    let named = names::assignment(&r.assignment, "assignment")?;
    let key = RequestKey::new("SignConsensus", c, &r.request_id, &r)?;
    api.change(key, |mut tx| async move {
        let a = assignments::named(&mut tx, &named).await?;
        if !(c.role == Role::Reviewer && a.role_of(&c.subject) == Some("LEADER")) {
            return Err(Error::permission_denied(
                "the group leader signs the consensus (R-12)",
            ));
        }
        let sheet_id = Sheet::consensus_id(&a.id);
        let released = store::released(&mut tx, &a.cycle, &a.stage).await?;
        let signed = a.stage != "DEFENCE" && store::get_sheet(&mut tx, &sheet_id).await?.is_some();
        lifecycle::may_sign_consensus(&a.stage, signed, released)?;
        lifecycle::check_not_held(&a.hold_reason)?;
        let independent = lifecycle::all_independent_in(
            a.scorers(),
            store::assignment_sheets(&mut tx, &a.id).await?,
        )?;
        let (_, rubric) = store::get_rubric(&mut tx, &a.rubric_id, Some(a.rubric_version)).await?;
        let items = items_from_pb(&r.items, &rubric, "items")?;
        let agreed: Vec<(&str, u32, &str)> = items
            .iter()
            .map(|i| (i.code.as_str(), i.percent, i.reason.as_str()))
            .collect();
        let given: Vec<(&str, u32)> = independent
            .iter()
            .flat_map(|s| s.items.iter().map(|x| (x.code.as_str(), x.percent)))
            .collect();
        let bad: Vec<FieldViolation> = sheet::unexplained_changes(&agreed, &given)
            .into_iter()
            .map(|i| {
                FieldViolation::new(
                    format!("items[{i}].reason"),
                    "the agreed score differs from an independent score: give the reason",
                )
            })
            .collect();
        if !bad.is_empty() {
            return Err(Error::invalid_fields(bad));
        }
        let percents: Vec<(String, u32)> =
            items.iter().map(|i| (i.code.clone(), i.percent)).collect();
        let total = sheet::total(&rubric, &percents).map_err(|e| Error::invalid("items", e))?;
        let mut row = Sheet {
            id: sheet_id,
            version: 1,
            assignment_id: a.id.clone(),
            reviewer: c.subject.to_ascii_uppercase(),
            kind: SheetKind::Consensus,
            state: SheetState::Submitted,
            items,
            defence_score: String::new(),
            total: total.normalize().to_string(),
            seal_hash: String::new(),
            correction_reason: String::new(),
            submitted_micros: Some(api.now_micros()),
        };
        row.seal_hash = row.seal_hash();
        store::insert_sheet(&mut tx, &row).await?;
        let response = sheet_pb(&a.cycle, &row);
        let record = AuditRecord::by(c, "consensus.sign", response.name.clone())
            .with_detail(serde_json::json!({ "total": row.total, "seal_hash": row.seal_hash }));
        Ok(Done::new(tx, record, response))
    })
    .await
}

pub(super) async fn reserve_opinion(
    api: &ScoringApi,
    c: &Caller,
    r: pb::ReserveOpinionRequest,
) -> Result<pb::ReservedOpinion> {
    let named = names::assignment(&r.assignment, "assignment")?;
    let o = r
        .reserved_opinion
        .as_ref()
        .ok_or_else(|| Error::invalid("reserved_opinion", "is required"))?;
    let text = o.text.trim();
    let mut bad = Vec::new();
    if text.is_empty() || text.chars().count() > 2000 {
        bad.push(FieldViolation::new(
            "reserved_opinion.text",
            "the disagreement and its reasons, 1-2000 characters",
        ));
    }
    let key = RequestKey::new("ReserveOpinion", c, &r.request_id, &r)?;
    api.change(key, |mut tx| async move {
        let a = assignments::named(&mut tx, &named).await?;
        let (_, rubric) = store::get_rubric(&mut tx, &a.rubric_id, Some(a.rubric_version)).await?;
        for (i, code) in o.item_codes.iter().enumerate() {
            if rubric.item(code).is_none() {
                bad.push(FieldViolation::new(
                    format!("reserved_opinion.item_codes[{i}]"),
                    "is not an item of the rubric",
                ));
            }
        }
        if !bad.is_empty() {
            return Err(Error::invalid_fields(bad));
        }
        let role = (c.role == Role::Reviewer)
            .then(|| a.role_of(&c.subject))
            .flatten();
        let consensus = store::get_sheet(&mut tx, &Sheet::consensus_id(&a.id)).await?;
        let released = store::released(&mut tx, &a.cycle, &a.stage).await?;
        group::may_reserve_opinion(role, consensus.is_some(), released).map_err(group::refused)?;
        let row = store::OpinionRow {
            assignment_id: a.id.clone(),
            reviewer: c.subject.to_ascii_uppercase(),
            text: text.to_string(),
            item_codes: o.item_codes.clone(),
            consensus_total: consensus.map(|s| s.total).unwrap_or_default(),
            created_micros: api.now_micros(),
        };
        store::insert_opinion(&mut tx, &row).await?;
        let response = opinion_pb(&a.cycle, &row);
        let record = AuditRecord::by(c, "consensus.reserve_opinion", response.name.clone())
            .with_detail(serde_json::json!({
                "consensus_total": row.consensus_total,
                "item_codes": row.item_codes,
            }));
        Ok(Done::new(tx, record, response))
    })
    .await
}

pub(super) async fn list_reserved_opinions(
    api: &ScoringApi,
    c: &Caller,
    r: pb::ListReservedOpinionsRequest,
) -> Result<pb::ListReservedOpinionsResponse> {
    let named = names::assignment(&r.parent, "parent")?;
    let page = Page::parse(r.page_size, &r.page_token)?;
    let mut conn = api.db.pool().acquire().await?;
    let a = assignments::named(&mut conn, &named).await?;
    let member = c.role == Role::Reviewer && a.role_of(&c.subject).is_some();
    let staff = staff_of(c, &a.cycle);
    if !(staff || member) {
        return Err(Error::permission_denied(
            "reserved opinions are the office's and their authors' (Rev. Art. 6(4))",
        ));
    }
    let mut rows = store::opinions(&mut conn, &a.id, &page).await?;
    // A member reads its own; the office and the supervisor every one.
    if !staff {
        rows.retain(|o| o.reviewer.eq_ignore_ascii_case(&c.subject));
    }
    let next_page_token = page.finish(&mut rows, |o| o.reviewer.clone());
    Ok(pb::ListReservedOpinionsResponse {
        reserved_opinions: rows.iter().map(|o| opinion_pb(&a.cycle, o)).collect(),
        next_page_token,
    })
}
