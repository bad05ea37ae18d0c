//! Score sheets: a scorer's draft, its submission and seal, its
//! correction, and who may read which sheet when.

use qaward_kit::{
    Error, Result,
    audit::AuditRecord,
    auth::{Caller, Role},
    change::Done,
    idempotency::RequestKey,
    paging::Page,
};
use qaward_proto::qaward::scoring::v1 as pb;
use rust_decimal::Decimal;

use super::{
    ScoringApi, assignments,
    convert::{dec, items_from_pb, sheet_pb},
    names, staff_of,
};
use crate::{
    domain::lifecycle::{self, Sheet, SheetKind, SheetState},
    store::{self, AssignmentRow},
};

/// May `c` read `sheet`? The office and supervisor always; the author always;
/// another scorer of the group only once their own sheet of that kind is submitted; the
/// group after release.
fn may_read(
    c: &Caller,
    a: &AssignmentRow,
    sheet: &Sheet,
    own_submitted: bool,
    released: bool,
) -> bool {
    if staff_of(c, &a.cycle) {
        return true;
    }
    if c.role != Role::Reviewer || a.role_of(&c.subject).is_none() {
        return false;
    }
    sheet.reviewer.eq_ignore_ascii_case(&c.subject) || own_submitted || released
}

/// The sheet `id` of the named assignment, or NOT_FOUND.
async fn sheet(
    conn: &mut qaward_kit::db::Conn,
    assignment: &names::AssignmentName,
    id: &str,
) -> Result<Sheet> {
    store::get_sheet(conn, id)
        .await?
        .filter(|s| s.assignment_id == assignment.id)
        .ok_or_else(|| {
            Error::not_found(format!(
                "{}/sheets/{id}",
                names::assignment_name(&assignment.cycle, &assignment.id)
            ))
        })
}

pub(super) async fn save(
    api: &ScoringApi,
    c: &Caller,
    r: pb::SaveSheetRequest,
) -> Result<pb::Sheet> {
    let s = r
        .sheet
        .as_ref()
        .ok_or_else(|| Error::invalid("sheet", "is required"))?;
    let assignment = names::assignment(&s.assignment, "sheet.assignment")?;
    let kind = match pb::SheetKind::try_from(s.kind) {
        Ok(pb::SheetKind::Independent) => SheetKind::Independent,
        Ok(pb::SheetKind::Defence) => SheetKind::Defence,
        Ok(pb::SheetKind::Consensus) => {
            return Err(Error::invalid(
                "sheet.kind",
                "the consensus sheet is signed with SignConsensus",
            ));
        }
        _ => {
            return Err(Error::invalid(
                "sheet.kind",
                "must be INDEPENDENT or DEFENCE",
            ));
        }
    };
    let key = RequestKey::new("SaveSheet", c, &r.request_id, &r)?;
    api.change(key, |mut tx| async move {
        let a = assignments::named(&mut tx, &assignment).await?;
        lifecycle::may_score(a.role_of(&c.subject).filter(|_| c.role == Role::Reviewer))?;
        let own = SheetKind::own_at(&a.stage);
        if kind != own {
            return Err(Error::invalid(
                "sheet.kind",
                format!(
                    "a {} assignment takes {} sheets",
                    a.stage.to_lowercase(),
                    own.as_str()
                ),
            ));
        }
        lifecycle::check_open(store::released(&mut tx, &a.cycle, &a.stage).await?)?;
        lifecycle::check_not_held(&a.hold_reason)?;
        lifecycle::check_defence_day(kind, api.today(), a.window())?;
        let (_, rubric) = store::get_rubric(&mut tx, &a.rubric_id, Some(a.rubric_version)).await?;
        let items = if kind == SheetKind::Independent {
            items_from_pb(&s.items, &rubric, "sheet.items")?
        } else {
            Vec::new()
        };
        let defence = if kind == SheetKind::Defence {
            match dec(&s.defence_score, "sheet.defence_score")? {
                Some(d) if d >= Decimal::ZERO && d <= Decimal::from(100) => {
                    d.normalize().to_string()
                }
                Some(_) => {
                    return Err(Error::invalid(
                        "sheet.defence_score",
                        "must be 0-100 (R-14)",
                    ));
                }
                None => String::new(),
            }
        } else {
            String::new()
        };
        let draft = Sheet::draft(&a.id, &c.subject, kind, items, defence);
        lifecycle::may_save_over(store::get_sheet(&mut tx, &draft.id).await?.as_ref())?;
        store::save_draft(&mut tx, &draft).await?;
        let response = sheet_pb(&a.cycle, &draft);
        let record = AuditRecord::by(c, "sheet.save", response.name.clone());
        Ok(Done::new(tx, record, response))
    })
    .await
}

pub(super) async fn get(api: &ScoringApi, c: &Caller, r: pb::GetSheetRequest) -> Result<pb::Sheet> {
    let (assignment, id) = names::sheet(&r.name, "name")?;
    let mut conn = api.db.pool().acquire().await?;
    let s = sheet(&mut conn, &assignment, &id).await?;
    let a = assignments::named(&mut conn, &assignment).await?;
    let own_id = Sheet::own_id(&a.id, &c.subject, SheetKind::own_at(&a.stage));
    let own = store::get_sheet(&mut conn, &own_id).await?;
    let own_submitted = own.is_some_and(|o| o.state != SheetState::Draft);
    let released = store::released(&mut conn, &a.cycle, &a.stage).await?;
    if !may_read(c, &a, &s, own_submitted, released) {
        return Err(Error::permission_denied(
            "sheets are sealed until your own is submitted, and from everyone outside the group until release (R-12, R-43)",
        ));
    }
    Ok(sheet_pb(&a.cycle, &s))
}

pub(super) async fn list(
    api: &ScoringApi,
    c: &Caller,
    r: pb::ListSheetsRequest,
) -> Result<pb::ListSheetsResponse> {
    let assignment = names::assignment(&r.assignment, "assignment")?;
    let page = Page::parse(r.page_size, &r.page_token)?;
    let mut conn = api.db.pool().acquire().await?;
    let a = assignments::named(&mut conn, &assignment).await?;
    let mut all = store::assignment_sheets(&mut conn, &a.id).await?;
    let own_submitted = all.iter().any(|s| {
        s.reviewer.eq_ignore_ascii_case(&c.subject)
            && s.state != SheetState::Draft
            && s.kind != SheetKind::Consensus
    });
    let released = store::released(&mut conn, &a.cycle, &a.stage).await?;
    all.retain(|s| s.id > page.after && may_read(c, &a, s, own_submitted, released));
    let next_page_token = page.finish(&mut all, |s| s.id.clone());
    Ok(pb::ListSheetsResponse {
        sheets: all.iter().map(|s| sheet_pb(&a.cycle, s)).collect(),
        next_page_token,
    })
}

pub(super) async fn submit(
    api: &ScoringApi,
    c: &Caller,
    r: pb::SubmitSheetRequest,
) -> Result<pb::Sheet> {
    let (assignment, id) = names::sheet(&r.name, "name")?;
    let key = RequestKey::new("SubmitSheet", c, &r.request_id, &r)?;
    api.change(key, |mut tx| async move {
        let mut s = sheet(&mut tx, &assignment, &id).await?;
        if !(c.role == Role::Reviewer && s.reviewer.eq_ignore_ascii_case(&c.subject)) {
            return Err(Error::permission_denied("only its author submits a sheet"));
        }
        let a = assignments::named(&mut tx, &assignment).await?;
        lifecycle::check_not_held(&a.hold_reason)?;
        lifecycle::check_defence_day(s.kind, api.today(), a.window())?;
        let (_, rubric) = store::get_rubric(&mut tx, &a.rubric_id, Some(a.rubric_version)).await?;
        s.submit(&rubric, api.now_micros())?;
        if !store::seal(&mut tx, &s).await? {
            return Err(lifecycle::submitted_meanwhile());
        }
        let response = sheet_pb(&a.cycle, &s);
        let record = AuditRecord::by(c, "sheet.submit", response.name.clone())
            .with_detail(serde_json::json!({ "total": s.total, "seal_hash": s.seal_hash }));
        Ok(Done::new(tx, record, response))
    })
    .await
}

pub(super) async fn correct(
    api: &ScoringApi,
    c: &Caller,
    r: pb::CorrectSheetRequest,
) -> Result<pb::Sheet> {
    let (assignment, id) = names::sheet(&r.name, "name")?;
    if r.reason.trim().is_empty() {
        return Err(Error::invalid(
            "reason",
            "a correction states its reason (R-51)",
        ));
    }
    let key = RequestKey::new("CorrectSheet", c, &r.request_id, &r)?;
    api.change(key, |mut tx| async move {
        let old = sheet(&mut tx, &assignment, &id).await?;
        if !(c.role == Role::Reviewer && old.reviewer.eq_ignore_ascii_case(&c.subject)) {
            return Err(Error::permission_denied("only its author corrects a sheet"));
        }
        old.may_correct()?;
        let a = assignments::named(&mut tx, &assignment).await?;
        lifecycle::check_open(store::released(&mut tx, &a.cycle, &a.stage).await?)?;
        lifecycle::check_not_held(&a.hold_reason)?;
        let (_, rubric) = store::get_rubric(&mut tx, &a.rubric_id, Some(a.rubric_version)).await?;
        let changed = items_from_pb(&r.items, &rubric, "items")?;
        let new = old.corrected(&rubric, changed, r.reason.trim(), api.now_micros())?;
        if !store::supersede(&mut tx, &old.id, old.version).await? {
            return Err(lifecycle::corrected_meanwhile());
        }
        store::insert_sheet(&mut tx, &new).await?;
        let response = sheet_pb(&a.cycle, &new);
        let record = AuditRecord::by(c, "sheet.correct", response.name.clone())
            .because(new.correction_reason.clone())
            .with_detail(serde_json::json!({ "version": new.version, "previous_seal": old.seal_hash, "seal_hash": new.seal_hash }));
        Ok(Done::new(tx, record, response))
    })
    .await
}
