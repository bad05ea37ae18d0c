//! Conflicts of interest: a reviewer's relations to enterprises and the flags on
//! their record, and the check of whether they may review given applicants.

use qaward_kit::{
    Error, Result,
    audit::AuditRecord,
    auth::{Caller, Role},
    change::Done,
    cn,
    convert::iso_date,
    error::FieldViolation,
    idempotency::RequestKey,
    paging::Page,
};
use qaward_proto::qaward::reviewers::v1 as pb;

use super::{
    ReviewersApi,
    convert::{date_of, enterprise_codes, flag_kind, flag_pb, relation_kind, relation_pb},
    events, is_self,
    names::{flag, reviewer_id},
    registry_keeper, self_or,
};
use crate::{domain::eligibility, store};

pub(super) async fn create_relation(
    api: &ReviewersApi,
    c: &Caller,
    r: pb::CreateRelationRequest,
) -> Result<pb::Relation> {
    let reviewer = reviewer_id(&r.parent, "parent")?;
    let declared_by_self = is_self(c, &reviewer);
    if !declared_by_self {
        registry_keeper(c)?;
    }
    let key = RequestKey::new("CreateRelation", c, &r.request_id, &r)?;
    let rel = r
        .relation
        .as_ref()
        .ok_or_else(|| Error::invalid("relation", "is required"))?;
    let mut bad = Vec::new();
    let code = cn::CreditCode::parse(&rel.enterprise_code)
        .map_err(|e| {
            bad.push(FieldViolation {
                field: "relation.enterprise_code".into(),
                description: e.to_string(),
            })
        })
        .ok();
    let kind = relation_kind(rel.kind);
    if kind.is_none() {
        bad.push(FieldViolation {
            field: "relation.kind".into(),
            description: "must be set".into(),
        });
    }
    let start = date_of(&rel.start_date, "relation.start_date")?;
    if start.is_none() {
        bad.push(FieldViolation {
            field: "relation.start_date".into(),
            description: "is required".into(),
        });
    }
    let end = date_of(&rel.end_date, "relation.end_date")?;
    if let (Some(s), Some(e)) = (&start, &end)
        && e < s
    {
        bad.push(FieldViolation {
            field: "relation.end_date".into(),
            description: "is before start_date".into(),
        });
    }
    if rel.note.chars().count() > 500 {
        bad.push(FieldViolation {
            field: "relation.note".into(),
            description: "at most 500 characters".into(),
        });
    }
    if !bad.is_empty() {
        return Err(Error::invalid_fields(bad));
    }
    let row = store::RelationRow {
        id: api.new_id(),
        reviewer_id: reviewer.clone(),
        enterprise_code: code.map(|c| c.to_string()).unwrap_or_default(),
        kind: kind.unwrap_or_default().to_string(),
        start_date: start.unwrap_or_default(),
        end_date: end,
        note: rel.note.clone(),
    };
    api.change(key, |mut tx| async move {
        store::get_reviewer(&mut tx, &reviewer).await?;
        store::insert_relation(&mut tx, &row, api.now()).await?;
        // a tie that begins within 3 years of a review of that enterprise is a
        // violation, reported in the audit trail as it is recorded.
        let facts = store::reviewer_facts(
            &mut tx,
            &reviewer,
            std::slice::from_ref(&row.enterprise_code),
        )
        .await?;
        let violations =
            eligibility::cooling_off_violations(&facts, &row.enterprise_code, &row.start_date);
        let response = relation_pb(&row);
        let mut record = AuditRecord::by(c, "relation.create", response.name.clone()).because(
            if declared_by_self {
                "declared by the reviewer"
            } else {
                "recorded by the office"
            },
        );
        if !violations.is_empty() {
            tracing::warn!(relation = %response.name, "cooling-off violation recorded (R-44)");
            let flag = cooling_off_flag(api, &mut tx, &row, &violations).await?;
            record =
                record.with_detail(serde_json::json!({ "violations": violations, "flag": flag }));
        }
        Ok(Done::new(tx, record, response))
    })
    .await
}

/// a tie that breaks a cooling-off period opens a disciplinary flag on the reviewer (so
/// they are drawn for nobody while it is pending, R-41) and tells the office of each programme
/// whose review it breaks, through the event its follower turns into a notice. Returns the
/// flag's name.
async fn cooling_off_flag(
    api: &ReviewersApi,
    tx: &mut qaward_kit::db::Tx,
    rel: &store::RelationRow,
    violations: &[eligibility::Reason],
) -> Result<String> {
    let flag = store::FlagRow {
        id: api.new_id(),
        reviewer_id: rel.reviewer_id.clone(),
        kind: "DISCIPLINARY".into(),
        start_date: iso_date(api.now().date()),
        end_date: None,
        note: format!(
            "R-44 回避期内与受评企业 {} 建立关系（reviewers/{}/relations/{}）",
            rel.enterprise_code, rel.reviewer_id, rel.id
        ),
        resolved: false,
    };
    store::insert_flag(tx, &flag, api.now()).await?;
    let name = flag_pb(&flag).name;
    for programme in store::programmes_reviewing(tx, &rel.reviewer_id, &rel.enterprise_code).await?
    {
        events::publish(
            tx,
            api.now(),
            &programme,
            pb::reviewers_event::Kind::CoolingOffViolation(pb::CoolingOffViolation {
                reviewer: format!("reviewers/{}", rel.reviewer_id),
                relation: format!("reviewers/{}/relations/{}", rel.reviewer_id, rel.id),
                flag: name.clone(),
                enterprise_code: rel.enterprise_code.clone(),
                reasons: violations.iter().map(|v| v.message.clone()).collect(),
            }),
        )
        .await?;
    }
    Ok(name)
}

pub(super) async fn list_relations(
    api: &ReviewersApi,
    c: &Caller,
    r: pb::ListRelationsRequest,
) -> Result<pb::ListRelationsResponse> {
    let reviewer = reviewer_id(&r.parent, "parent")?;
    self_or(c, &reviewer, &[Role::Office, Role::Supervisor])?;
    let page = Page::parse(r.page_size, &r.page_token)?;
    let mut rows = store::list_relations(&api.db, &reviewer, &page).await?;
    let next_page_token = page.finish(&mut rows, |x| x.id.clone());
    Ok(pb::ListRelationsResponse {
        relations: rows.iter().map(relation_pb).collect(),
        next_page_token,
    })
}

pub(super) async fn create_flag(
    api: &ReviewersApi,
    c: &Caller,
    r: pb::CreateFlagRequest,
) -> Result<pb::Flag> {
    let reviewer = reviewer_id(&r.parent, "parent")?;
    let f = r
        .flag
        .as_ref()
        .ok_or_else(|| Error::invalid("flag", "is required"))?;
    let kind = flag_kind(f.kind).ok_or_else(|| Error::invalid("flag.kind", "must be set"))?;
    // A reviewer may declare their own unavailability; everything else is the office's.
    if !(kind == "UNAVAILABLE" && is_self(c, &reviewer)) {
        registry_keeper(c)?;
    }
    let key = RequestKey::new("CreateFlag", c, &r.request_id, &r)?;
    let start = date_of(&f.start_date, "flag.start_date")?
        .ok_or_else(|| Error::invalid("flag.start_date", "is required"))?;
    let end = date_of(&f.end_date, "flag.end_date")?;
    if end.as_ref().is_some_and(|e| *e < start) {
        return Err(Error::invalid("flag.end_date", "is before start_date"));
    }
    if f.note.chars().count() > 500 {
        return Err(Error::invalid("flag.note", "at most 500 characters"));
    }
    let row = store::FlagRow {
        id: api.new_id(),
        reviewer_id: reviewer,
        kind: kind.into(),
        start_date: start,
        end_date: end,
        note: f.note.clone(),
        resolved: false,
    };
    api.change(key, |mut tx| async move {
        store::get_reviewer(&mut tx, &row.reviewer_id).await?;
        store::insert_flag(&mut tx, &row, api.now()).await?;
        let response = flag_pb(&row);
        let record = AuditRecord::by(c, "flag.create", response.name.clone()).because(kind);
        Ok(Done::new(tx, record, response))
    })
    .await
}

pub(super) async fn list_flags(
    api: &ReviewersApi,
    c: &Caller,
    r: pb::ListFlagsRequest,
) -> Result<pb::ListFlagsResponse> {
    let reviewer = reviewer_id(&r.parent, "parent")?;
    self_or(c, &reviewer, &[Role::Office, Role::Supervisor])?;
    let page = Page::parse(r.page_size, &r.page_token)?;
    let mut rows = store::list_flags(&api.db, &reviewer, &page).await?;
    let next_page_token = page.finish(&mut rows, |x| x.id.clone());
    Ok(pb::ListFlagsResponse {
        flags: rows.iter().map(flag_pb).collect(),
        next_page_token,
    })
}

pub(super) async fn resolve_flag(
    api: &ReviewersApi,
    c: &Caller,
    r: pb::ResolveFlagRequest,
) -> Result<pb::Flag> {
    let (reviewer, id) = flag(&r.name, "name")?;
    registry_keeper(c)?;
    let key = RequestKey::new("ResolveFlag", c, &r.request_id, &r)?;
    api.change(key, |mut tx| async move {
        let row = store::resolve_flag(&mut tx, &reviewer, &id, api.now()).await?;
        let response = flag_pb(&row);
        let record =
            AuditRecord::by(c, "flag.resolve", response.name.clone()).because(r.note.clone());
        Ok(Done::new(tx, record, response))
    })
    .await
}

pub(super) async fn check(
    api: &ReviewersApi,
    c: &Caller,
    r: pb::CheckConflictsRequest,
) -> Result<pb::CheckConflictsResponse> {
    let reviewer = reviewer_id(&r.reviewer, "reviewer")?;
    self_or(c, &reviewer, &[Role::Office, Role::Supervisor])?;
    if r.enterprise_codes.is_empty() {
        return Err(Error::invalid(
            "enterprise_codes",
            "name at least one enterprise",
        ));
    }
    let codes = enterprise_codes(&r.enterprise_codes, "enterprise_codes")?;
    let on = date_of(&r.on_date, "on_date")?.unwrap_or_else(|| iso_date(api.now().date()));
    let mut conn = api.db.pool().acquire().await?;
    let facts = store::reviewer_facts(&mut conn, &reviewer, &codes).await?;
    let reasons = eligibility::conflicts(&facts, &codes, &on, &on);
    Ok(pb::CheckConflictsResponse {
        may_review: reasons.is_empty(),
        reasons: reasons
            .into_iter()
            .map(|x| pb::ConflictReason {
                code: x.code,
                rule: x.rule.to_string(),
                enterprise_code: x.enterprise_code,
                record: x.record,
                message: x.message,
            })
            .collect(),
    })
}
