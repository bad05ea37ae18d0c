//! Programmes: a tenant of the reviewer pool and its versioned draw policy (Art. 8, 16(3-5)).

use qaward_kit::{
    Error, Result, audit::AuditRecord, auth::Caller, change::Done, idempotency::RequestKey,
    names::valid_id, paging::Page,
};
use qaward_proto::qaward::reviewers::v1 as pb;

use super::{
    ReviewersApi,
    convert::{policy_from_pb, programme_pb},
    names::programme_id,
};
use crate::{domain::policy::DrawPolicy, store};

pub(super) async fn create(
    api: &ReviewersApi,
    c: &Caller,
    r: pb::CreateProgrammeRequest,
) -> Result<pb::DrawTenant> {
    if !valid_id(&r.programme_id) {
        return Err(Error::invalid(
            "programme_id",
            "1-63 lower-case letters, digits or '-'",
        ));
    }
    c.acts_for(&r.programme_id)?;
    let key = RequestKey::new("CreateProgramme", c, &r.request_id, &r)?;
    let p = r
        .programme
        .as_ref()
        .ok_or_else(|| Error::invalid("programme", "is required"))?;
    let name = p.display_name.trim().to_string();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::invalid(
            "programme.display_name",
            "must be 1-200 characters",
        ));
    }
    let policy = match &p.policy {
        Some(pp) => policy_from_pb(pp)?,
        None => DrawPolicy::default(),
    };
    api.change(key, |mut tx| async move {
        store::insert_programme(&mut tx, &r.programme_id, &name, &policy, api.now()).await?;
        let response = programme_pb(&store::get_programme(&mut tx, &r.programme_id).await?);
        let record = AuditRecord::by(c, "programme.create", response.name.clone());
        Ok(Done::new(tx, record, response))
    })
    .await
}

pub(super) async fn get(
    api: &ReviewersApi,
    c: &Caller,
    r: pb::GetProgrammeRequest,
) -> Result<pb::DrawTenant> {
    let id = programme_id(&r.name, "name")?;
    c.acts_for(&id)?;
    let mut conn = api.db.pool().acquire().await?;
    Ok(programme_pb(&store::get_programme(&mut conn, &id).await?))
}

pub(super) async fn list(
    api: &ReviewersApi,
    c: &Caller,
    r: pb::ListProgrammesRequest,
) -> Result<pb::ListProgrammesResponse> {
    let page = Page::parse(r.page_size, &r.page_token)?;
    // A token for no programme lists none ("\u{0}" matches no id).
    let only = c.programme_id().unwrap_or("\u{0}");
    let mut rows = store::list_programmes(&api.db, Some(only), &page).await?;
    let next_page_token = page.finish(&mut rows, |p| p.id.clone());
    Ok(pb::ListProgrammesResponse {
        programmes: rows.iter().map(programme_pb).collect(),
        next_page_token,
    })
}

pub(super) async fn update_draw_policy(
    api: &ReviewersApi,
    c: &Caller,
    r: pb::UpdateDrawPolicyRequest,
) -> Result<pb::DrawTenant> {
    let id = programme_id(&r.name, "name")?;
    c.acts_for(&id)?;
    let key = RequestKey::new("UpdateDrawPolicy", c, &r.request_id, &r)?;
    let policy = policy_from_pb(
        r.policy
            .as_ref()
            .ok_or_else(|| Error::invalid("policy", "is required"))?,
    )?;
    api.change(key, |mut tx| async move {
        let version = store::update_policy(&mut tx, &id, &policy, api.now()).await?;
        let response = programme_pb(&store::get_programme(&mut tx, &id).await?);
        let record = AuditRecord::by(c, "programme.update_policy", response.name.clone())
            .with_detail(serde_json::json!({ "version": version }));
        Ok(Done::new(tx, record, response))
    })
    .await
}
