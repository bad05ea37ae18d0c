//! Applications: a draft, what it may say, who may read it, and the cycle board.

use qaward_kit::{
    Error, Result,
    audit::AuditRecord,
    auth::{Caller, Role},
    change,
    change::Done,
    clock::unix_micros,
    cn::CreditCode,
    convert::chinese_date,
    error::FieldViolation,
    idempotency::RequestKey,
    paging::Page,
};
use qaward_proto::qaward::applications::v1 as pb;

use crate::{
    domain::{Explanation, board, cycle::CycleState, drafts::DraftField, refused, stage::Stage},
    store::{self, ApplicationRow, stage_of},
};

use super::{
    ApplicationsApi,
    access::{load, may_read, only_the_enterprise},
    convert::{application_pb, china_date, stage_pb},
    names::{application_name, cycle_id},
};

impl ApplicationsApi {
    pub(super) async fn intake_create(
        &self,
        c: &Caller,
        r: pb::CreateApplicationRequest,
    ) -> Result<pb::Application> {
        let (p, y) = cycle_id(&r.parent, "parent")?;
        let a = r
            .application
            .as_ref()
            .ok_or_else(|| Error::invalid("application", "is required"))?;
        let code = a
            .enterprise
            .strip_prefix("enterprises/")
            .ok_or_else(|| {
                Error::invalid(
                    "application.enterprise",
                    "must be enterprises/{credit code}",
                )
            })
            .and_then(|s| {
                CreditCode::parse(s)
                    .map_err(|e| Error::invalid("application.enterprise", e.to_string()))
            })?;
        only_the_enterprise(c, code.as_str())?;
        let key = RequestKey::new("CreateApplication", c, &r.request_id, &r)?;
        // A retry is answered before the state it reads below has moved on (AIP-155).
        if let Some(done) = change::recall(self.db(), &key).await? {
            return Ok(done);
        }
        let now = self.now();
        let micros = unix_micros(now);
        self.change(key, |mut tx| async move {
            let cycle = store::get_cycle(&mut tx, &p, y).await?;
            let settings = store::settings_version(&mut tx, &p, cycle.settings_version).await?;
            let bad: Vec<FieldViolation> = DraftField::ALL
                .into_iter()
                .filter_map(|f| {
                    f.too_long(draft_text(a, f), &settings)
                        .map(|why| FieldViolation::new(format!("application.{}", f.path()), why))
                })
                .collect();
            if !bad.is_empty() {
                return Err(Error::invalid_fields(bad));
            }
            store::get_enterprise(&mut tx, code.as_str()).await?;
            if cycle.state != CycleState::Open || micros > cycle.deadline_micros {
                return Err(refused(
                    Explanation::new("R-01", "CYCLE_CLOSED", "本年度申报已截止").with(
                        "deadline",
                        qaward_kit::clock::from_unix_micros(cycle.deadline_micros),
                    ),
                ));
            }
            let row = ApplicationRow {
                id: ApplicationRow::key(&p, y, code.as_str()),
                programme_id: p.clone(),
                year: y,
                credit_code: code.as_str().to_string(),
                stage: Stage::Draft.as_str().to_string(),
                application_form: a.application_form.clone(),
                organisation_profile: a.organisation_profile.clone(),
                self_assessment: a.self_assessment.clone(),
                submitted_micros: None,
                last_rule: "R-05".into(),
                last_reason: "DRAFTED".into(),
                last_message: "申报草稿已创建".into(),
                last_inputs: "{}".into(),
                created_micros: micros,
                updated_micros: micros,
            };
            store::insert_application(&mut tx, &row).await?;
            let response = application_pb(&mut tx, &row).await?;
            let record =
                AuditRecord::by(c, "application.create", response.name.clone()).because("R-05");
            Ok(Done::new(tx, record, response))
        })
        .await
    }

    pub(super) async fn intake_get(
        &self,
        c: &Caller,
        r: pb::GetApplicationRequest,
    ) -> Result<pb::Application> {
        let (p, y, code) = application_name(&r.name, "name")?;
        let mut conn = self.db().pool().acquire().await?;
        let l = load(&mut conn, &p, y, &code).await?;
        // a drawn reviewer reads the application while its review runs, and only then.
        if !super::access::reviewer_may_read(&mut conn, c, &l.row).await? {
            may_read(c, &l)?;
        }
        application_pb(&mut conn, &l.row).await
    }

    pub(super) async fn intake_list(
        &self,
        c: &Caller,
        r: pb::ListApplicationsRequest,
    ) -> Result<pb::ListApplicationsResponse> {
        let (p, y) = cycle_id(&r.parent, "parent")?;
        // The office and supervisor list every application; an enterprise its own; a
        // recommending unit those of the enterprises it recommends.
        let org = c.org.clone().unwrap_or_default();
        let mut filter = store::ApplicationFilter::default();
        match c.role {
            Role::Enterprise if !org.is_empty() => filter.credit_code = &org,
            Role::RecommendingUnit if !org.is_empty() => filter.recommending_unit = &org,
            _ => c.require_programme(&p, &[Role::Office, Role::Supervisor])?,
        }
        let page = Page::parse(r.page_size, &r.page_token)?;
        let stage = match pb::ApplicationStage::try_from(r.stage) {
            Ok(pb::ApplicationStage::Unspecified) => String::new(),
            Ok(s) => s
                .as_str_name()
                .trim_start_matches("APPLICATION_STAGE_")
                .to_string(),
            Err(_) => return Err(Error::invalid("stage", "unknown stage")),
        };
        filter.stage = &stage;
        let mut conn = self.db().pool().acquire().await?;
        let mut rows = store::list_applications(&mut conn, &p, y, &filter, &page).await?;
        let next_page_token = page.finish(&mut rows, |a| a.credit_code.clone());
        let mut applications = Vec::new();
        for row in &rows {
            applications.push(application_pb(&mut conn, row).await?);
        }
        Ok(pb::ListApplicationsResponse {
            applications,
            next_page_token,
        })
    }

    pub(super) async fn intake_board(
        &self,
        c: &Caller,
        r: pb::GetCycleBoardRequest,
    ) -> Result<pb::CycleBoard> {
        let name = r.name.clone();
        let (p, y) = cycle_id(&name, "name")?;
        c.acts_for(&p)?;
        let mut conn = self.db().pool().acquire().await?;
        let cycle = store::get_cycle(&mut conn, &p, y).await?;
        let deadline_day = china_date(cycle.deadline_micros);
        let deadline = chinese_date(deadline_day);
        let today = self.now().to_offset(time::macros::offset!(+8)).date();
        let mut rows = Vec::new();
        for a in &store::applications_in(&mut conn, &p, y, "").await? {
            {
                let current = stage_of(a)?;
                let running = crate::domain::review::ReviewStage::ALL
                    .into_iter()
                    .find(|s| s.running() == current);
                let mut review_ends = None;
                if let Some(s) = running
                    && let Some(g) = store::group_of(&mut conn, &a.id, s.as_str()).await?
                {
                    review_ends = qaward_kit::convert::parse_iso_date(&g.window_end);
                }
                let stopped = current == Stage::SiteVisit
                    && store::site_stop(&mut conn, &a.id).await?.is_some();
                rows.push(pb::BoardRow {
                    application: format!("{name}/applications/{}", a.credit_code),
                    enterprise: format!("enterprises/{}", a.credit_code),
                    stage: stage_pb(&a.stage),
                    open_deadlines: board::open_deadlines(
                        current,
                        &deadline,
                        review_ends.map(chinese_date).as_deref(),
                        stopped,
                    ),
                    overdue: board::overdue(
                        current,
                        cycle.state,
                        deadline_day,
                        review_ends,
                        stopped,
                        today,
                    )
                    .as_ref()
                    .map(super::convert::explanation_pb),
                });
            }
        }
        drop(conn);
        // The pictures come from scoring with the cycle's pinned numbers; the board does
        // not fail, nor wait long, for them.
        let settings = {
            let mut conn = self.db().pool().acquire().await?;
            store::settings_version(&mut conn, &p, cycle.settings_version).await?
        };
        let charts = match tokio::time::timeout(
            std::time::Duration::from_secs(5),
            self.scoring_results(c, &p, y, &settings),
        )
        .await
        {
            Ok(Ok(results)) => results.charts,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the board's charts: scoring refused");
                Vec::new()
            }
            Err(_) => {
                tracing::warn!("the board's charts: scoring did not answer in time");
                Vec::new()
            }
        };
        Ok(pb::CycleBoard {
            cycle: name,
            rows,
            charts,
        })
    }

    pub(super) async fn intake_update(
        &self,
        c: &Caller,
        r: pb::UpdateApplicationRequest,
    ) -> Result<pb::Application> {
        let a = r
            .application
            .as_ref()
            .ok_or_else(|| Error::invalid("application", "is required"))?;
        let (p, y, code) = application_name(&a.name, "application.name")?;
        only_the_enterprise(c, code.as_str())?;
        let key = RequestKey::new("UpdateApplication", c, &r.request_id, &r)?;
        // AIP-134: no mask means the fields the request populates; `*` replaces all three.
        let fields: Vec<DraftField> = match r.update_mask.as_ref().map(|m| &m.paths[..]) {
            None | Some([]) => DraftField::ALL
                .into_iter()
                .filter(|f| !draft_text(a, *f).is_empty())
                .collect(),
            Some(paths) if paths.iter().any(|p| p == "*") => DraftField::ALL.to_vec(),
            Some(paths) => paths
                .iter()
                .map(|p| {
                    DraftField::parse(p).ok_or_else(|| {
                        Error::invalid(
                            "update_mask",
                            format!(
                                "{p} cannot be updated; the fields are {}",
                                DraftField::ALL.map(DraftField::path).join(", ")
                            ),
                        )
                    })
                })
                .collect::<Result<_>>()?,
        };
        let now = self.now();
        self.change(key, |mut tx| async move {
            let mut l = load(&mut tx, &p, y, &code).await?;
            if stage_of(&l.row)? != Stage::Draft {
                return Err(refused(Explanation::new(
                    "R-05",
                    "NOT_A_DRAFT",
                    format!("申报处于{}阶段，提交后不能修改", l.row.stage),
                )));
            }
            let cycle = store::get_cycle(&mut tx, &p, y).await?;
            let settings = store::settings_version(&mut tx, &p, cycle.settings_version).await?;
            for field in fields {
                let value = draft_text(a, field);
                if let Some(why) = field.too_long(value, &settings) {
                    return Err(Error::invalid(format!("application.{}", field.path()), why));
                }
                *draft_slot(&mut l.row, field) = value.clone();
            }
            l.row.updated_micros = unix_micros(now);
            store::save_application(&mut tx, &l.row).await?;
            let response = application_pb(&mut tx, &l.row).await?;
            let record =
                AuditRecord::by(c, "application.update", response.name.clone()).because("R-05");
            Ok(Done::new(tx, record, response))
        })
        .await
    }
}

/// The text a request gives for a draft field.
fn draft_text(a: &pb::Application, field: DraftField) -> &String {
    match field {
        DraftField::ApplicationForm => &a.application_form,
        DraftField::OrganisationProfile => &a.organisation_profile,
        DraftField::SelfAssessment => &a.self_assessment,
    }
}

/// Where a stored application keeps a draft field.
fn draft_slot(row: &mut ApplicationRow, field: DraftField) -> &mut String {
    match field {
        DraftField::ApplicationForm => &mut row.application_form,
        DraftField::OrganisationProfile => &mut row.organisation_profile,
        DraftField::SelfAssessment => &mut row.self_assessment,
    }
}
