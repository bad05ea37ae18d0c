//! The review logs (Art. 16(4-5)): the defence hearing's and the site visit's record, kept by
//! the office or a scoring member, read with the scores beside it once they may be read.

use qaward_kit::{
    Error, Result,
    audit::AuditRecord,
    auth::{Caller, Role},
    change::Done,
    error::FieldViolation,
    idempotency::RequestKey,
};
use qaward_proto::qaward::scoring::v1 as pb;
use rust_decimal::Decimal;

use super::{
    ScoringApi, assignments,
    convert::{dec_pb, log_from_pb, log_pb, reviewer_ref},
    names, staff_of,
};
use crate::{
    domain::{
        lifecycle::{SheetKind, SheetState},
        review_log,
    },
    store::{self, AssignmentRow},
};

pub(super) async fn save(
    api: &ScoringApi,
    c: &Caller,
    r: pb::SaveReviewLogRequest,
) -> Result<pb::ReviewLog> {
    let l = r
        .review_log
        .as_ref()
        .ok_or_else(|| Error::invalid("review_log", "is required"))?;
    let named = names::assignment(&l.assignment, "review_log.assignment")?;
    let log = log_from_pb(l)?;
    let key = RequestKey::new("SaveReviewLog", c, &r.request_id, &r)?;
    api.change(key, |mut tx| async move {
        let a = assignments::named(&mut tx, &named).await?;
        let scorer =
            c.role == Role::Reviewer && matches!(a.role_of(&c.subject), Some("MEMBER" | "LEADER"));
        let office = c.role == Role::Office && staff_of(c, &a.cycle);
        if !(office || scorer) {
            return Err(Error::permission_denied(
                "the log is kept by the office or a scoring member of the panel or group",
            ));
        }
        let (_, rubric) = store::get_rubric(&mut tx, &a.rubric_id, Some(a.rubric_version)).await?;
        let problems = review_log::problems(&a.stage, &log, &a.people, |code| {
            rubric.item(code).is_some()
        });
        if !problems.is_empty() {
            return Err(Error::invalid_fields(
                problems
                    .into_iter()
                    .map(|(f, d)| FieldViolation::new(f, d))
                    .collect(),
            ));
        }
        review_log::check_open(store::released(&mut tx, &a.cycle, &a.stage).await?)?;
        let version = store::latest_log(&mut tx, &a.id)
            .await?
            .map_or(1, |l| l.version + 1);
        let row = store::LogRow {
            assignment_id: a.id.clone(),
            version,
            log,
            recorded_by: if scorer {
                format!("reviewers/{}", c.subject.to_ascii_uppercase())
            } else {
                c.subject.clone()
            },
            saved_micros: api.now_micros(),
        };
        store::insert_log(&mut tx, &row).await?;
        // The scores alongside are the office's to read before release.
        let scores = if office {
            scores_beside(&mut tx, &a).await?
        } else {
            Vec::new()
        };
        let response = log_pb(&a.cycle, &row, scores);
        let record = AuditRecord::by(c, "review_log.save", response.name.clone())
            .with_detail(serde_json::json!({ "version": version, "stage": a.stage }));
        Ok(Done::new(tx, record, response))
    })
    .await
}

pub(super) async fn get(
    api: &ScoringApi,
    c: &Caller,
    r: pb::GetReviewLogRequest,
) -> Result<pb::ReviewLog> {
    let named = names::review_log(&r.name, "name")?;
    let mut conn = api.db.pool().acquire().await?;
    let a = assignments::named(&mut conn, &named).await?;
    let in_group =
        matches!(c.role, Role::Reviewer | Role::Advisor) && a.role_of(&c.subject).is_some();
    let staff = staff_of(c, &a.cycle);
    if !(staff || in_group) {
        return Err(Error::permission_denied(
            "the log is the office's and the panel's or group's (R-43)",
        ));
    }
    let row = store::latest_log(&mut conn, &a.id)
        .await?
        .ok_or_else(|| Error::not_found(r.name.clone()))?;
    // Scores alongside: for the office at once; for the group once released.
    let scores = if staff || store::released(&mut conn, &a.cycle, &a.stage).await? {
        scores_beside(&mut conn, &a).await?
    } else {
        Vec::new()
    };
    Ok(log_pb(&a.cycle, &row, scores))
}

/// The scores a log is read alongside: each panel member's defence score, or the group's
/// consensus total; submitted sheets only.
async fn scores_beside(
    conn: &mut qaward_kit::db::Conn,
    a: &AssignmentRow,
) -> Result<Vec<pb::ScoreLine>> {
    let sheets = store::assignment_sheets(conn, &a.id).await?;
    Ok(sheets
        .iter()
        .filter(|s| s.state != SheetState::Draft)
        .filter_map(|s| {
            if a.stage == "DEFENCE" && !s.defence_score.is_empty() {
                Some(pb::ScoreLine {
                    scorer: reviewer_ref(&s.reviewer),
                    score: s.defence_score.parse::<Decimal>().ok().and_then(dec_pb),
                })
            } else if a.stage != "DEFENCE" && s.kind == SheetKind::Consensus {
                Some(pb::ScoreLine {
                    scorer: "consensus".to_string(),
                    score: s.total.parse::<Decimal>().ok().and_then(dec_pb),
                })
            } else {
                None
            }
        })
        .collect())
}
