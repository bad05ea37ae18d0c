//! The municipal registry: importing it, and reading reviewers with their personal
//! data masked by default, revealed one at a time for a stated purpose on the record.

use qaward_kit::{
    Error, Result,
    audit::AuditRecord,
    auth::{Caller, Role},
    change::Done,
    clock::unix_micros,
    cn,
    idempotency::RequestKey,
    paging::Page,
};
use qaward_proto::qaward::reviewers::v1 as pb;

use super::{
    ReviewersApi, convert::reviewer_pb, is_self, names::reviewer_id, registry_keeper,
    registry_reader, self_or,
};
use crate::{
    domain::registry::{self, Encoding, Format},
    store,
};

pub(super) async fn import(
    api: &ReviewersApi,
    c: &Caller,
    r: pb::ImportReviewersRequest,
) -> Result<pb::ImportReviewersResponse> {
    registry_keeper(c)?;
    let key = RequestKey::new("ImportReviewers", c, &r.request_id, &r)?;
    let format = match pb::ImportFormat::try_from(r.format) {
        Ok(pb::ImportFormat::Csv) => Format::Csv,
        Ok(pb::ImportFormat::Json) => Format::Json,
        _ => {
            return Err(Error::invalid(
                "format",
                "must be IMPORT_FORMAT_CSV or IMPORT_FORMAT_JSON",
            ));
        }
    };
    let encoding = match pb::TextEncoding::try_from(r.encoding) {
        Ok(pb::TextEncoding::Gb18030) => Encoding::Gb18030,
        Ok(pb::TextEncoding::Utf8) | Ok(pb::TextEncoding::Unspecified) => Encoding::Utf8,
        Err(_) => return Err(Error::invalid("encoding", "unknown encoding")),
    };
    let registry::Import {
        good,
        rejected,
        ignored,
    } = registry::parse(&r.content, format, encoding)
        .map_err(|e| Error::invalid("content", e.0))?;
    api.change(key, |mut tx| async move {
        let n = store::upsert_reviewers(&mut tx, &good, api.now(), &api.ctx.fields).await?;
        let imported: Vec<String> = good.iter().map(|g| g.certificate_number.clone()).collect();
        let same_person = store::same_person(&mut tx, &imported)
            .await?
            .into_iter()
            .map(|(ids, last4)| pb::SamePerson {
                reviewers: ids.iter().map(|id| format!("reviewers/{id}")).collect(),
                resident_id_last4: last4,
            })
            .collect();
        let response = pb::ImportReviewersResponse {
            same_person,
            created: n.created as i32,
            updated: n.updated as i32,
            unchanged: n.unchanged as i32,
            rejected: rejected
                .iter()
                .map(|x| pb::RejectedRow {
                    row: x.row as i32,
                    field: x.field.clone(),
                    reason: x.reason.clone(),
                })
                .collect(),
            ignored_columns: ignored.clone(),
        };
        let record = AuditRecord::by(c, "registry.import", "reviewers").with_detail(serde_json::json!({
            "created": n.created, "updated": n.updated, "unchanged": n.unchanged, "rejected_rows": rejected.len(),
            "ignored_columns": ignored,
            "certificates": good.iter().map(|g| g.certificate_number.clone()).collect::<Vec<_>>(),
        }));
        Ok(Done::new(tx, record, response))
    })
    .await
}

pub(super) async fn get(
    api: &ReviewersApi,
    c: &Caller,
    r: pb::GetReviewerRequest,
) -> Result<pb::Reviewer> {
    let id = reviewer_id(&r.name, "name")?;
    self_or(c, &id, &[Role::Office, Role::Supervisor])?;
    let mut conn = api.db.pool().acquire().await?;
    Ok(reviewer_pb(
        &store::get_reviewer(&mut conn, &id).await?,
        c,
        false,
        &api.ctx.fields,
    ))
}

/// one reviewer's personal data in clear, for a stated purpose, written to the audit
/// trail with it. The registry keeper reveals anyone; the office of a programme a reviewer it
/// drew or appointed, whom it needs to contact.
pub(super) async fn reveal(
    api: &ReviewersApi,
    c: &Caller,
    r: pb::RevealReviewerRequest,
) -> Result<pb::Reviewer> {
    let id = reviewer_id(&r.name, "name")?;
    let purpose = r.purpose.trim().to_string();
    if purpose.is_empty() || purpose.chars().count() > 200 || purpose.contains(['\n', '\r']) {
        return Err(Error::invalid(
            "purpose",
            "must be one line of 1-200 characters: why the data is needed",
        ));
    }
    c.require(&[Role::Office])?;
    let key = RequestKey::new("RevealReviewer", c, &r.request_id, &r)?;
    api.change(key, |mut tx| async move {
        let row = store::get_reviewer(&mut tx, &id).await?;
        let entitled = c.registry_keeper
            || match c.programme_id() {
                Some(p) => store::seated_in(&mut tx, &id, p).await?,
                None => false,
            };
        if !entitled {
            return Err(Error::permission_denied(
                "only the registry keeper, or the office of a programme that drew or appointed this reviewer, reveals their data",
            ));
        }
        let response = reviewer_pb(&row, c, true, &api.ctx.fields);
        let record = AuditRecord::by(c, "reviewer.reveal", response.name.clone())
            .because("R-54")
            .with_detail(serde_json::json!({
                "purpose": purpose, "fields": ["mobile"],
            }));
        Ok(Done::new(tx, record, response))
    })
    .await
}

/// PIPL Art. 46: a reviewer corrects their own mobile number; sealed at rest, on the record
/// without the number.
pub(super) async fn correct_contact(
    api: &ReviewersApi,
    c: &Caller,
    r: pb::CorrectReviewerContactRequest,
) -> Result<pb::Reviewer> {
    let id = reviewer_id(&r.name, "name")?;
    if !is_self(c, &id) {
        return Err(Error::permission_denied(
            "a reviewer corrects their own contact only",
        ));
    }
    let mobile = cn::mobile(&r.mobile).map_err(|e| Error::invalid("mobile", e.to_string()))?;
    let key = RequestKey::new("CorrectReviewerContact", c, &r.request_id, &r)?;
    api.change(key, |mut tx| async move {
        let sealed = api.ctx.fields.seal(&mobile);
        let row = store::correct_mobile(&mut tx, &id, &sealed, unix_micros(api.now())).await?;
        let response = reviewer_pb(&row, c, false, &api.ctx.fields);
        let record = AuditRecord::by(c, "reviewer.correct", response.name.clone())
            .because("R-54")
            .with_detail(serde_json::json!({ "fields": ["mobile"] }));
        Ok(Done::new(tx, record, response))
    })
    .await
}

/// PIPL Art. 47: a reviewer's personal data erased at their request (by themselves, or by the
/// registry keeper for them) unless a panel still needs to reach them ([`registry::may_erase`]).
pub(super) async fn erase(
    api: &ReviewersApi,
    c: &Caller,
    r: pb::EraseReviewerDataRequest,
) -> Result<pb::Reviewer> {
    let id = reviewer_id(&r.name, "name")?;
    let reason = r.reason.trim().to_string();
    if reason.is_empty() || reason.chars().count() > 200 || reason.contains(['\n', '\r']) {
        return Err(Error::invalid(
            "reason",
            "must be one line of 1-200 characters: the reviewer's request",
        ));
    }
    if !is_self(c, &id) {
        registry_keeper(c)?;
    }
    let key = RequestKey::new("EraseReviewerData", c, &r.request_id, &r)?;
    api.change(key, |mut tx| async move {
        let now = api.now();
        store::get_reviewer(&mut tx, &id).await?;
        let today = now.to_offset(qaward_kit::clock::CHINA).date().to_string();
        registry::may_erase(&store::booked_from(&mut tx, &id, &today).await?)?;
        let row = store::erase_personal(&mut tx, &id, unix_micros(now)).await?;
        let response = reviewer_pb(&row, c, false, &api.ctx.fields);
        let record = AuditRecord::by(c, "reviewer.erase", response.name.clone())
            .because("R-54")
            .with_detail(serde_json::json!({
                "reason": reason, "fields": ["mobile", "resident_id"], "status": "RETIRED",
            }));
        Ok(Done::new(tx, record, response))
    })
    .await
}

pub(super) async fn list(
    api: &ReviewersApi,
    c: &Caller,
    r: pb::ListReviewersRequest,
) -> Result<pb::ListReviewersResponse> {
    registry_reader(c, &[Role::Office, Role::Supervisor])?;
    let page = Page::parse(r.page_size, &r.page_token)?;
    let speciality = if r.speciality.is_empty() {
        String::new()
    } else {
        cn::industry(&r.speciality).map_err(|e| Error::invalid("speciality", e.to_string()))?
    };
    if r.query.chars().count() > 50 {
        return Err(Error::invalid("query", "at most 50 characters"));
    }
    let mut rows = store::list_reviewers(&api.db, &page, &speciality, r.query.trim()).await?;
    let next_page_token = page.finish(&mut rows, |x| x.record.certificate_number.clone());
    Ok(pb::ListReviewersResponse {
        reviewers: rows
            .iter()
            .map(|x| reviewer_pb(x, c, false, &api.ctx.fields))
            .collect(),
        next_page_token,
    })
}
