//! Award programmes and their versioned settings (Art. 5-8): what every number of a cycle comes
//! from.

use qaward_kit::{
    Error, Result,
    audit::AuditRecord,
    auth::Role,
    change::Done,
    clock::unix_micros,
    error::FieldViolation,
    idempotency::RequestKey,
    names::{programme_id, valid_id},
    paging::Page,
};
use qaward_proto::qaward::applications::v1 as pb;
use tonic::{Request, Response, Status};

use crate::{domain::settings::Settings, store};

use super::{
    ApplicationsApi, caller,
    convert::{line, programme_pb, settings_from_pb},
};

impl ApplicationsApi {
    pub(super) async fn programme_create(
        &self,
        request: Request<pb::CreateProgrammeRequest>,
    ) -> Result<Response<pb::Programme>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            if !valid_id(&r.programme_id) {
                return Err(Error::invalid(
                    "programme_id",
                    "1-63 lower-case letters, digits or '-'",
                ));
            }
            c.require_programme(&r.programme_id, &[Role::Office])?;
            let key = RequestKey::new("CreateProgramme", &c, &r.request_id, &r)?;
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
                            FieldViolation::new(
                                format!("programme.{}", v.field),
                                v.description.clone(),
                            )
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
                store::insert_programme(
                    &mut tx,
                    &r.programme_id,
                    &name,
                    &settings,
                    unix_micros(now),
                )
                .await?;
                let response = programme_pb(&store::get_programme(&mut tx, &r.programme_id).await?);
                let record =
                    AuditRecord::by(&c, "programme.create", response.name.clone()).because("R-01");
                Ok(Done::new(tx, record, response))
            })
            .await
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    pub(super) async fn programme_get(
        &self,
        request: Request<pb::GetProgrammeRequest>,
    ) -> Result<Response<pb::Programme>, Status> {
        let c = caller(&request)?;
        let run = async {
            let id = programme_id(&request.get_ref().name, "name")?;
            c.require_programme(&id, &[Role::Office, Role::Supervisor])?;
            let mut conn = self.db.pool().acquire().await?;
            Ok(programme_pb(&store::get_programme(&mut conn, &id).await?))
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    pub(super) async fn programme_list(
        &self,
        request: Request<pb::ListProgrammesRequest>,
    ) -> Result<Response<pb::ListProgrammesResponse>, Status> {
        let c = caller(&request)?;
        let run = async {
            c.require(&[Role::Office, Role::Supervisor])?;
            let r = request.get_ref();
            let page = Page::parse(r.page_size, &r.page_token)?;
            let only = c.programme_id().unwrap_or_default();
            let mut rows = store::list_programmes(&self.db, only, &page).await?;
            let next_page_token = page.finish(&mut rows, |p| p.id.clone());
            Ok(pb::ListProgrammesResponse {
                programmes: rows.iter().map(programme_pb).collect(),
                next_page_token,
            })
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    pub(super) async fn programme_update_settings(
        &self,
        request: Request<pb::UpdateProgrammeSettingsRequest>,
    ) -> Result<Response<pb::Programme>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let id = programme_id(&r.name, "name")?;
            c.require_programme(&id, &[Role::Office])?;
            let key = RequestKey::new("UpdateProgrammeSettings", &c, &r.request_id, &r)?;
            let settings = settings_from_pb(
                r.settings
                    .as_ref()
                    .ok_or_else(|| Error::invalid("settings", "is required"))?,
            )?;
            let now = self.now();
            self.change(key, |mut tx| async move {
                let version =
                    store::update_settings(&mut tx, &id, &settings, unix_micros(now)).await?;
                let response = programme_pb(&store::get_programme(&mut tx, &id).await?);
                let record =
                    AuditRecord::by(&c, "programme.update_settings", response.name.clone())
                        .because("R-01")
                        .with_detail(serde_json::json!({ "version": version }));
                Ok(Done::new(tx, record, response))
            })
            .await
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }
}
