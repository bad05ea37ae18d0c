//! Rubrics: the GB/T 19580 rubric and any other, as versioned data an assignment pins.

use qaward_kit::{
    Error, Result, audit::AuditRecord, auth::Caller, change::Done, idempotency::RequestKey,
    names::valid_id, paging::Page,
};
use qaward_proto::qaward::scoring::v1 as pb;

use super::{
    ScoringApi,
    convert::{rubric_from_pb, rubric_pb},
    names,
};
use crate::store;

pub(super) async fn create(
    api: &ScoringApi,
    c: &Caller,
    r: pb::CreateRubricRequest,
) -> Result<pb::Rubric> {
    if !valid_id(&r.rubric_id) {
        return Err(Error::invalid(
            "rubric_id",
            "1-63 lower-case letters, digits or '-'",
        ));
    }
    let key = RequestKey::new("CreateRubric", c, &r.request_id, &r)?;
    let rubric = rubric_from_pb(
        r.rubric
            .as_ref()
            .ok_or_else(|| Error::invalid("rubric", "is required"))?,
    )?;
    api.change(key, |mut tx| async move {
        let version = store::insert_rubric(&mut tx, &r.rubric_id, &rubric, api.now()).await?;
        let response = rubric_pb(&r.rubric_id, version, &rubric);
        let record = AuditRecord::by(c, "rubric.create", response.name.clone())
            .with_detail(serde_json::json!({ "version": version }));
        Ok(Done::new(tx, record, response))
    })
    .await
}

pub(super) async fn get(api: &ScoringApi, r: pb::GetRubricRequest) -> Result<pb::Rubric> {
    let (id, version) = names::rubric(&r.name, "name")?;
    let mut conn = api.db.pool().acquire().await?;
    let (v, rubric) = store::get_rubric(&mut conn, &id, version).await?;
    Ok(rubric_pb(&id, v, &rubric))
}

pub(super) async fn list(
    api: &ScoringApi,
    r: pb::ListRubricsRequest,
) -> Result<pb::ListRubricsResponse> {
    let page = Page::parse(r.page_size, &r.page_token)?;
    let mut rows = store::list_rubrics(&api.db, &page).await?;
    let next_page_token = page.finish(&mut rows, |x| x.0.clone());
    Ok(pb::ListRubricsResponse {
        rubrics: rows.iter().map(|(id, v, r)| rubric_pb(id, *v, r)).collect(),
        next_page_token,
    })
}
