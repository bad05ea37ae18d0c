//! Assignments: which group or panel scores which application at which stage, on
//! which rubric version.

use qaward_kit::{
    Error, Result,
    audit::AuditRecord,
    auth::{Caller, Role},
    change::Done,
    convert::{date_from_pb, iso_date},
    db::Conn,
    error::FieldViolation,
    idempotency::RequestKey,
    paging::Page,
};
use qaward_proto::qaward::scoring::v1 as pb;

use super::{
    ScoringApi,
    convert::{assignment_pb, stage_name},
    names, staff_of,
};
use crate::{
    domain::group,
    store::{self, AssignmentRow},
};

pub(super) async fn create(
    api: &ScoringApi,
    c: &Caller,
    r: pb::CreateAssignmentRequest,
) -> Result<pb::Assignment> {
    let key = RequestKey::new("CreateAssignment", c, &r.request_id, &r)?;
    let a = r
        .assignment
        .as_ref()
        .ok_or_else(|| Error::invalid("assignment", "is required"))?;
    let mut bad = Vec::new();
    if names::cycle(&a.cycle, "assignment.cycle").is_ok() {
        c.acts_for(names::programme_of(&a.cycle))?;
    } else {
        bad.push(FieldViolation::new(
            "assignment.cycle",
            "must be programmes/{programme}/cycles/{cycle}",
        ));
    }
    if a.application.trim().is_empty() || a.application.len() > 300 {
        bad.push(FieldViolation::new(
            "assignment.application",
            "the application's resource name is required",
        ));
    } else if names::application_id_in(&a.cycle, &a.application).is_none() {
        bad.push(FieldViolation::new(
            "assignment.application",
            "must be an application of the assignment's cycle ({cycle}/applications/{application})",
        ));
    }
    let stage = stage_name(a.stage);
    if stage.is_none() {
        bad.push(FieldViolation::new("assignment.stage", "must be set"));
    }
    let people = people_of(&a.people, "assignment.people", &mut bad);
    if let Some(stage) = stage {
        bad.extend(composition(stage, &people, "assignment.people"));
    }
    // rubrics/{id} pins the current version; rubrics/{id}@{version} names one, so every
    // assignment of a cycle can pin the same version.
    let (rubric_id, pinned) = match names::rubric(&a.rubric, "assignment.rubric") {
        Ok(pinned) => pinned,
        Err(e) => {
            bad.extend(e.violations.clone());
            (String::new(), None)
        }
    };
    let window = match (&a.window_start, &a.window_end) {
        (None, None) => None,
        (Some(s), Some(e)) => match (
            date_from_pb(s, "assignment.window_start"),
            date_from_pb(e, "assignment.window_end"),
        ) {
            (Ok(s), Ok(e)) if s <= e => Some((s, e)),
            (Ok(_), Ok(_)) => {
                bad.push(FieldViolation::new(
                    "assignment.window_end",
                    "must not be before window_start",
                ));
                None
            }
            (s, e) => {
                for r in [s.err(), e.err()].into_iter().flatten() {
                    bad.extend(r.violations.clone());
                }
                None
            }
        },
        _ => {
            bad.push(FieldViolation::new(
                "assignment.window_end",
                "window_start and window_end are given together",
            ));
            None
        }
    };
    if !bad.is_empty() {
        return Err(Error::invalid_fields(bad));
    }
    let id = api.new_id();
    api.change(key, |mut tx| async move {
        let (version, _) = store::get_rubric(&mut tx, &rubric_id, pinned).await?;
        let row = AssignmentRow {
            id,
            cycle: a.cycle.clone(),
            application: a.application.trim().to_string(),
            stage: stage.unwrap_or_default().to_string(),
            rubric_id,
            rubric_version: version,
            enterprise_code: a.enterprise_code.trim().to_string(),
            recommending_unit: a.recommending_unit.trim().to_string(),
            people,
            hold_reason: String::new(),
            window_start: window.map(|w| iso_date(w.0)).unwrap_or_default(),
            window_end: window.map(|w| iso_date(w.1)).unwrap_or_default(),
        };
        store::insert_assignment(&mut tx, &row, api.now()).await?;
        let response = assignment_pb(&row);
        let record = AuditRecord::by(c, "assignment.create", response.name.clone())
            .with_detail(serde_json::json!({ "application": row.application, "stage": row.stage }));
        Ok(Done::new(tx, record, response))
    })
    .await
}

pub(super) async fn list(
    api: &ScoringApi,
    c: &Caller,
    r: pb::ListAssignmentsRequest,
) -> Result<pb::ListAssignmentsResponse> {
    if !r.cycle.is_empty() {
        names::cycle(&r.cycle, "cycle")?;
    }
    let page = Page::parse(r.page_size, &r.page_token)?;
    let mut conn = api.db.pool().acquire().await?;
    let mut rows = store::list_assignments(&mut conn, &r.cycle, &r.application, &page).await?;
    let next_page_token = page.finish(&mut rows, |a| a.id.clone());
    // Reviewers and advisors see only their own assignments.
    let visible = rows
        .iter()
        .filter(|a| staff_of(c, &a.cycle) || a.role_of(&c.subject).is_some());
    Ok(pb::ListAssignmentsResponse {
        assignments: visible.map(assignment_pb).collect(),
        next_page_token,
    })
}

/// The assignment a name names, or NOT_FOUND: found by its id, and only if the name's cycle
/// is its own (a name is canonical, never an alias).
pub(super) async fn named(conn: &mut Conn, name: &names::AssignmentName) -> Result<AssignmentRow> {
    let a = store::get_assignment(conn, &name.id).await?;
    name.check(&a)?;
    Ok(a)
}

/// The people of an assignment as (REVIEWER-ID, role), each once; what is wrong goes to `bad`
/// under `field[i]`.
fn people_of(
    people: &[pb::AssignedPerson],
    field: &str,
    bad: &mut Vec<FieldViolation>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (i, p) in people.iter().enumerate() {
        let role = match pb::AssignmentRole::try_from(p.role) {
            Ok(pb::AssignmentRole::Member) => "MEMBER",
            Ok(pb::AssignmentRole::Leader) => "LEADER",
            Ok(pb::AssignmentRole::Advisor) => "ADVISOR",
            _ => {
                bad.push(FieldViolation::new(
                    format!("{field}[{i}].role"),
                    "must be set",
                ));
                continue;
            }
        };
        match p
            .reviewer
            .strip_prefix("reviewers/")
            .filter(|x| !x.is_empty() && x.len() <= 64 && !x.contains('/'))
        {
            Some(id) if !out.iter().any(|(r, _)| r.eq_ignore_ascii_case(id)) => {
                out.push((id.to_ascii_uppercase(), role.to_string()))
            }
            _ => bad.push(FieldViolation::new(
                format!("{field}[{i}].reviewer"),
                "must be reviewers/{reviewer}, once",
            )),
        }
    }
    out
}

/// Art. 8, 16(3-5): who may sit for `stage`, as violations of `field`.
fn composition(stage: &str, people: &[(String, String)], field: &str) -> Vec<FieldViolation> {
    let roles: Vec<&str> = people.iter().map(|(_, r)| r.as_str()).collect();
    group::composition_problems(stage, &roles)
        .into_iter()
        .map(|description| FieldViolation::new(field, description))
        .collect()
}

pub(super) async fn reseat(
    api: &ScoringApi,
    c: &Caller,
    r: pb::ReseatScorersRequest,
) -> Result<pb::Assignment> {
    let name = names::assignment(&r.assignment, "assignment")?;
    if c.role != Role::Service {
        c.acts_for(names::programme_of(&r.assignment))?;
    }
    let mut bad = Vec::new();
    let people = people_of(&r.people, "people", &mut bad);
    let reason = r.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        bad.push(FieldViolation::new("reason", "must be 1-500 characters"));
    }
    if !bad.is_empty() {
        return Err(Error::invalid_fields(bad));
    }
    let key = RequestKey::new("ReseatScorers", c, &r.request_id, &r)?;
    api.change(key, |mut tx| async move {
        let a = named(&mut tx, &name).await?;
        let problems = composition(&a.stage, &people, "people");
        if !problems.is_empty() {
            return Err(Error::invalid_fields(problems));
        }
        let change = group::reseat(&a.people, &people);
        store::reseat(&mut tx, &a.id, &change, reason, api.now()).await?;
        let after = store::get_assignment(&mut tx, &a.id).await?;
        let response = assignment_pb(&after);
        let record = AuditRecord::by(c, "assignment.reseat", response.name.clone())
            .because(reason.to_string())
            .with_detail(serde_json::json!({ "leaving": change.leaving, "seated": change.seated }));
        Ok(Done::new(tx, record, response))
    })
    .await
}

pub(super) async fn hold(
    api: &ScoringApi,
    c: &Caller,
    r: pb::HoldAssignmentRequest,
) -> Result<pb::Assignment> {
    let name = names::assignment(&r.assignment, "assignment")?;
    if c.role != Role::Service {
        c.acts_for(names::programme_of(&r.assignment))?;
    }
    let reason = r.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(Error::invalid("reason", "must be 1-500 characters"));
    }
    let key = RequestKey::new("HoldAssignment", c, &r.request_id, &r)?;
    api.change(key, |mut tx| async move {
        let a = named(&mut tx, &name).await?;
        store::set_hold(&mut tx, &a.id, if r.hold { reason } else { "" }).await?;
        let after = store::get_assignment(&mut tx, &a.id).await?;
        let response = assignment_pb(&after);
        let action = if r.hold {
            "assignment.hold"
        } else {
            "assignment.release_hold"
        };
        let record =
            AuditRecord::by(c, action, response.name.clone()).because(format!("R-15: {reason}"));
        Ok(Done::new(tx, record, response))
    })
    .await
}
