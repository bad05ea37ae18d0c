//! Award programmes and their versioned settings (Art. 5-8): what every number of a cycle comes
//! from.

use qaward_kit::{
    Error, Result,
    audit::AuditRecord,
    auth::Caller,
    change::Done,
    clock::unix_micros,
    error::FieldViolation,
    idempotency::RequestKey,
    names::{programme_id, valid_id},
    paging::Page,
};
use qaward_proto::qaward::applications::v1 as pb;

use crate::{domain::settings::Settings, store};

use super::{
    ApplicationsApi,
    convert::{line, programme_pb, settings_from_pb},
};

impl ApplicationsApi {
    pub(super) async fn programme_create(
        &self,
        c: &Caller,
        r: pb::CreateProgrammeRequest,
    ) -> Result<pb::Programme> {
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
        let mut bad = Vec::new();
        let name = line(&p.display_name, "programme.display_name", 200, &mut bad);
        let settings = match &p.settings {
            None => Settings::default(),
            Some(s) => match settings_from_pb(s) {
                Ok(s) => s,
                Err(e) => {
                    bad.extend(e.violations.iter().map(|v| {
                        FieldViolation::new(format!("programme.{}", v.field), v.description.clone())
                    }));
                    Settings::default()
                }
            },
        };
        if !bad.is_empty() {
            return Err(Error::invalid_fields(bad));
        }
        let now = self.now();
        self.change(key, |mut tx| async move {
            store::insert_programme(&mut tx, &r.programme_id, &name, &settings, unix_micros(now))
                .await?;
            let response = programme_pb(&store::get_programme(&mut tx, &r.programme_id).await?);
            let record =
                AuditRecord::by(c, "programme.create", response.name.clone()).because("R-01");
            Ok(Done::new(tx, record, response))
        })
        .await
    }

    pub(super) async fn programme_get(
        &self,
        c: &Caller,
        r: pb::GetProgrammeRequest,
    ) -> Result<pb::Programme> {
        let id = programme_id(&r.name, "name")?;
        c.acts_for(&id)?;
        let mut conn = self.db.pool().acquire().await?;
        Ok(programme_pb(&store::get_programme(&mut conn, &id).await?))
    }

    pub(super) async fn programme_list(
        &self,
        c: &Caller,
        r: pb::ListProgrammesRequest,
    ) -> Result<pb::ListProgrammesResponse> {
        let page = Page::parse(r.page_size, &r.page_token)?;
        let only = c.programme_id().unwrap_or_default();
        let mut rows = store::list_programmes(&self.db, only, &page).await?;
        let next_page_token = page.finish(&mut rows, |p| p.id.clone());
        Ok(pb::ListProgrammesResponse {
            programmes: rows.iter().map(programme_pb).collect(),
            next_page_token,
        })
    }

    pub(super) async fn programme_update_settings(
        &self,
        c: &Caller,
        r: pb::UpdateProgrammeSettingsRequest,
    ) -> Result<pb::Programme> {
        let id = programme_id(&r.name, "name")?;
        c.acts_for(&id)?;
        let key = RequestKey::new("UpdateProgrammeSettings", c, &r.request_id, &r)?;
        let settings = settings_from_pb(
            r.settings
                .as_ref()
                .ok_or_else(|| Error::invalid("settings", "is required"))?,
        )?;
        let now = self.now();
        self.change(key, |mut tx| async move {
            let version = store::update_settings(&mut tx, &id, &settings, unix_micros(now)).await?;
            let response = programme_pb(&store::get_programme(&mut tx, &id).await?);
            let record = AuditRecord::by(c, "programme.update_settings", response.name.clone())
                .because("R-01")
                .with_detail(serde_json::json!({ "version": version }));
            Ok(Done::new(tx, record, response))
        })
        .await
    }
}
