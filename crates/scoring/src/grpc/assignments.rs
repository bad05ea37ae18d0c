//! Assignments: which group or panel scores which application at which stage, on
//! which rubric version.

use qaward_kit::{
    Error, Result, audit::AuditRecord, auth::Caller, change::Done, db::Conn, error::FieldViolation,
    idempotency::RequestKey, paging::Page,
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
    } else if !a
        .application
        .strip_prefix(a.cycle.as_str())
        .and_then(|r| r.strip_prefix("/applications/"))
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
    {
        bad.push(FieldViolation::new(
            "assignment.application",
            "must be an application of the assignment's cycle ({cycle}/applications/{application})",
        ));
    }
    let stage = stage_name(a.stage);
    if stage.is_none() {
        bad.push(FieldViolation::new("assignment.stage", "must be set"));
    }
    let mut people: Vec<(String, String)> = Vec::new();
    for (i, p) in a.people.iter().enumerate() {
        let role = match pb::AssignmentRole::try_from(p.role) {
            Ok(pb::AssignmentRole::Member) => "MEMBER",
            Ok(pb::AssignmentRole::Leader) => "LEADER",
            Ok(pb::AssignmentRole::Advisor) => "ADVISOR",
            _ => {
                bad.push(FieldViolation::new(
                    format!("assignment.people[{i}].role"),
                    "must be set",
                ));
                continue;
            }
        };
        match p
            .reviewer
            .strip_prefix("reviewers/")
            .filter(|x| !x.is_empty() && !x.contains('/'))
        {
            Some(id) if !people.iter().any(|(r, _)| r.eq_ignore_ascii_case(id)) => {
                people.push((id.to_ascii_uppercase(), role.to_string()))
            }
            _ => bad.push(FieldViolation::new(
                format!("assignment.people[{i}].reviewer"),
                "must be reviewers/{reviewer}, once",
            )),
        }
    }
    if let Some(stage) = stage {
        let roles: Vec<&str> = people.iter().map(|(_, r)| r.as_str()).collect();
        bad.extend(
            group::composition_problems(stage, &roles)
                .into_iter()
                .map(|description| FieldViolation::new("assignment.people", description)),
        );
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
