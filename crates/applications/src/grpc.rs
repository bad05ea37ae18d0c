//! The gRPC surface of `qaward.applications.v1.ApplicationService`: validate at the edge, check
//! the caller, decide in `domain`, move data through `store` — each change with its audit
//! record in one transaction. Programmes and their settings, cycles (the notice), enterprises
//! and the eligibility check are here; the intake of applications is in `intake.rs`, the
//! orchestration of the reviews in `review.rs`, candidates to approval in `selection.rs`, the
//! winners' duties and revocation in `duties.rs`.

use pb::application_service_server::ApplicationService;
use qaward_kit::config::ServiceKind;
use qaward_kit::{
    Error, Result,
    audit::AuditRecord,
    auth::{Caller, Role},
    change,
    clock::{to_timestamp, unix_micros},
    cn::{self, CreditCode},
    convert::{date_from_pb, date_to_pb, iso_date, parse_iso_date, timestamp_from_pb},
    db::Database,
    error::FieldViolation,
    idempotency::RequestKey,
    names::{programme_id, valid_id},
    paging::Page,
    server::ServiceContext,
};
use qaward_proto::qaward::{applications::v1 as pb, common::v1 as common};
use qaward_proto::qaward::{
    reviewers::v1::reviewer_service_client::ReviewerServiceClient,
    scoring::v1::scoring_service_client::ScoringServiceClient,
};
use rust_decimal::Decimal;
use tonic::{
    Request, Response, Status,
    transport::{Channel, Endpoint},
};

use crate::{
    blobs::BlobStore,
    domain::{
        self, eligibility,
        settings::{Settings, defaults},
    },
    store::{self, CycleRow, EnterpriseRow, ProgrammeRow},
};

pub struct ApplicationsApi {
    db: Database,
    ctx: ServiceContext,
    blobs: BlobStore,
    calendar: qaward_kit::calendar::Calendar,
    reviewers: ReviewerServiceClient<Channel>,
    scoring: ScoringServiceClient<Channel>,
}

/// A lazily connected channel to another service, as the configuration names it; calls fail
/// with UNAVAILABLE while it is down, and each call has a deadline.
fn upstream(ctx: &ServiceContext, kind: ServiceKind) -> Channel {
    let endpoint = qaward_kit::tls::upstream_endpoint(&ctx.config, kind).unwrap_or_else(|e| {
        tracing::error!(error = %e, "invalid upstream; calls will fail");
        Endpoint::from_static("http://127.0.0.1:1")
    });
    endpoint
        .timeout(std::time::Duration::from_secs(30))
        .connect_lazy()
}

impl ApplicationsApi {
    pub fn new(db: Database, ctx: ServiceContext) -> Self {
        let reviewers = upstream(&ctx, ServiceKind::Reviewers);
        let scoring = upstream(&ctx, ServiceKind::Scoring);
        Self::with_upstreams(db, ctx, reviewers, scoring)
    }

    /// The service with its own channels to the reviewers and scoring services.
    pub fn with_upstreams(
        db: Database,
        ctx: ServiceContext,
        reviewers: Channel,
        scoring: Channel,
    ) -> Self {
        let blobs = BlobStore::new(&ctx.config.data_dir);
        // `start` refuses a calendar file that does not load; a test's defaults always do.
        let calendar = ctx.config.calendar().unwrap_or_else(|e| {
            tracing::error!(error = %e, "calendar_file does not load; using the built-in years");
            qaward_kit::calendar::Calendar::built_in()
        });
        ApplicationsApi {
            db,
            ctx,
            blobs,
            calendar,
            reviewers: ReviewerServiceClient::new(reviewers),
            scoring: ScoringServiceClient::new(scoring),
        }
    }

    /// The service with another blob store (the configured S3 bucket).
    pub fn with_blobs(mut self, blobs: BlobStore) -> Self {
        self.blobs = blobs;
        self
    }

    /// The working-day calendar.
    pub(crate) fn calendar(&self) -> qaward_kit::calendar::Calendar {
        self.calendar.clone()
    }

    pub(crate) fn reviewers(&self) -> ReviewerServiceClient<Channel> {
        self.reviewers.clone()
    }

    pub(crate) fn scoring(&self) -> ScoringServiceClient<Channel> {
        self.scoring.clone()
    }

    pub(crate) fn now(&self) -> time::OffsetDateTime {
        self.ctx.clock.now()
    }

    pub(crate) fn db(&self) -> &Database {
        &self.db
    }

    pub(crate) fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    pub(crate) fn new_id(&self) -> String {
        self.ctx.time_ordered_id()
    }
}

pub(crate) fn caller<T>(r: &Request<T>) -> Result<Caller, Status> {
    Caller::of(r).cloned()
}

/// `programmes/{p}/cycles/{year}` → (p, year).
pub(crate) fn cycle_id(name: &str, field: &str) -> Result<(String, i64)> {
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        ["programmes", p, "cycles", y] if valid_id(p) => y
            .parse::<i64>()
            .ok()
            .filter(|y| (2000..=2100).contains(y))
            .map(|y| (p.to_string(), y)),
        _ => None,
    }
    .ok_or_else(|| Error::invalid(field, "must be programmes/{programme}/cycles/{year}"))
}

/// `enterprises/{credit code}` → the validated code.
pub(crate) fn enterprise_code(name: &str, field: &str) -> Result<CreditCode> {
    let code = name
        .strip_prefix("enterprises/")
        .ok_or_else(|| Error::invalid(field, "must be enterprises/{unified social credit code}"))?;
    CreditCode::parse(code).map_err(|e| Error::invalid(field, e.to_string()))
}

/// The enterprise itself (its token's `org` is its credit code).
pub(crate) fn is_enterprise(c: &Caller, code: &str) -> bool {
    c.role == Role::Enterprise && c.org.as_deref() == Some(code)
}

fn decimal_of(
    d: &Option<common::Decimal>,
    field: &'static str,
    bad: &mut Vec<FieldViolation>,
) -> Decimal {
    match d.as_ref().map(|d| d.value.trim().parse::<Decimal>()) {
        Some(Ok(v)) => v,
        Some(Err(_)) => {
            bad.push(FieldViolation::new(
                format!("settings.{field}"),
                "is not a decimal number",
            ));
            Decimal::ZERO
        }
        None => {
            bad.push(FieldViolation::new(
                format!("settings.{field}"),
                "is required",
            ));
            Decimal::ZERO
        }
    }
}

fn count_of(v: i32, field: &'static str, bad: &mut Vec<FieldViolation>) -> u32 {
    u32::try_from(v).unwrap_or_else(|_| {
        bad.push(FieldViolation::new(
            format!("settings.{field}"),
            "must not be negative",
        ));
        0
    })
}

fn or_default(
    v: i32,
    field: &'static str,
    default: fn() -> u32,
    bad: &mut Vec<FieldViolation>,
) -> u32 {
    if v == 0 {
        default()
    } else {
        count_of(v, field, bad)
    }
}

/// Settings from the request, every field given, validated by the domain.
fn settings_from_pb(p: &pb::ProgrammeSettings) -> Result<Settings> {
    let mut bad = Vec::new();
    let s = Settings {
        materials_threshold: decimal_of(&p.materials_threshold, "materials_threshold", &mut bad),
        materials_weight: decimal_of(&p.materials_weight, "materials_weight", &mut bad),
        site_weight: decimal_of(&p.site_weight, "site_weight", &mut bad),
        final_selection_threshold: decimal_of(
            &p.final_selection_threshold,
            "final_selection_threshold",
            &mut bad,
        ),
        candidate_threshold: decimal_of(&p.candidate_threshold, "candidate_threshold", &mut bad),
        max_candidates: count_of(p.max_candidates, "max_candidates", &mut bad),
        public_notice_days: count_of(p.public_notice_days, "public_notice_days", &mut bad),
        committee_member_units: count_of(
            p.committee_member_units,
            "committee_member_units",
            &mut bad,
        ),
        ban_years: count_of(p.ban_years, "ban_years", &mut bad),
        min_operating_years: count_of(p.min_operating_years, "min_operating_years", &mut bad),
        profile_max_chars: count_of(p.profile_max_chars, "profile_max_chars", &mut bad),
        self_assessment_max_chars: count_of(
            p.self_assessment_max_chars,
            "self_assessment_max_chars",
            &mut bad,
        ),
        division_codes: p
            .division_codes
            .iter()
            .map(|c| c.trim().to_string())
            .collect(),
        consulted_departments: p
            .consulted_departments
            .iter()
            .map(|c| c.trim().to_string())
            .collect(),
        rubric: p.rubric.trim().to_string(),
        // Zero keeps the programme's default size.
        materials_group_size: or_default(
            p.materials_group_size,
            "materials_group_size",
            defaults::materials_group_size,
            &mut bad,
        ),
        defence_panel_size: or_default(
            p.defence_panel_size,
            "defence_panel_size",
            defaults::defence_panel_size,
            &mut bad,
        ),
        site_group_size: or_default(
            p.site_group_size,
            "site_group_size",
            defaults::site_group_size,
            &mut bad,
        ),
        draw_backups: count_of(p.draw_backups, "draw_backups", &mut bad),
        required_departments: p
            .required_departments
            .iter()
            .map(|c| c.trim().to_string())
            .collect(),
    };
    if bad.is_empty() {
        bad.extend(
            s.validate()
                .into_iter()
                .map(|(f, d)| FieldViolation::new(format!("settings.{f}"), d)),
        );
    }
    if bad.is_empty() {
        Ok(s)
    } else {
        Err(Error::invalid_fields(bad))
    }
}

fn settings_pb(s: &Settings, version: i64) -> pb::ProgrammeSettings {
    let dec = |d: Decimal| {
        Some(common::Decimal {
            value: d.normalize().to_string(),
        })
    };
    pb::ProgrammeSettings {
        version: version as i32,
        materials_threshold: dec(s.materials_threshold),
        materials_weight: dec(s.materials_weight),
        site_weight: dec(s.site_weight),
        final_selection_threshold: dec(s.final_selection_threshold),
        candidate_threshold: dec(s.candidate_threshold),
        max_candidates: s.max_candidates as i32,
        public_notice_days: s.public_notice_days as i32,
        committee_member_units: s.committee_member_units as i32,
        ban_years: s.ban_years as i32,
        min_operating_years: s.min_operating_years as i32,
        profile_max_chars: s.profile_max_chars as i32,
        self_assessment_max_chars: s.self_assessment_max_chars as i32,
        division_codes: s.division_codes.clone(),
        consulted_departments: s.consulted_departments.clone(),
        rubric: s.rubric.clone(),
        materials_group_size: s.materials_group_size as i32,
        defence_panel_size: s.defence_panel_size as i32,
        site_group_size: s.site_group_size as i32,
        draw_backups: s.draw_backups as i32,
        required_departments: s.required_departments.clone(),
    }
}

fn programme_pb(r: &ProgrammeRow) -> pb::Programme {
    pb::Programme {
        name: format!("programmes/{}", r.id),
        display_name: r.display_name.clone(),
        settings: Some(settings_pb(&r.settings, r.settings_version)),
        create_time: Some(to_timestamp(r.created_micros)),
    }
}

fn cycle_state_pb(s: &str) -> pb::CycleState {
    pb::CycleState::from_str_name(&format!("CYCLE_STATE_{s}")).unwrap_or_default()
}

pub(crate) fn cycle_pb(c: &CycleRow) -> pb::Cycle {
    pb::Cycle {
        name: format!("programmes/{}/cycles/{}", c.programme_id, c.year),
        year: c.year as i32,
        notice_title: c.notice_title.clone(),
        conditions: c.conditions.clone(),
        required_materials: c.required_materials.clone(),
        deadline: Some(to_timestamp(c.deadline_micros)),
        settings_version: c.settings_version as i32,
        state: cycle_state_pb(&c.state) as i32,
        approval_document: c.approval_document.clone(),
        approval_date: parse_iso_date(&c.approval_date).map(date_to_pb),
    }
}

pub(crate) fn enterprise_pb(e: &EnterpriseRow) -> pb::Enterprise {
    pb::Enterprise {
        name: format!("enterprises/{}", e.credit_code),
        display_name: e.display_name.clone(),
        credit_code: e.credit_code.clone(),
        established_date: parse_iso_date(&e.established_date).map(date_to_pb),
        industry_code: e.industry_code.clone(),
        recommending_unit: e.recommending_unit.clone(),
    }
}

pub(crate) fn explanation_pb(e: &domain::Explanation) -> common::Explanation {
    common::Explanation {
        rule: e.rule.to_string(),
        message: e.message.clone(),
        inputs: e.inputs.clone().into_iter().collect(),
    }
}

/// A one-line text field: trimmed, 1-`max` characters, no line breaks.
pub(crate) fn line(v: &str, field: &str, max: usize, bad: &mut Vec<FieldViolation>) -> String {
    let t = v.trim();
    if t.is_empty() || t.chars().count() > max || t.contains(['\n', '\r']) {
        bad.push(FieldViolation::new(
            field,
            format!("must be one line of 1-{max} characters"),
        ));
    }
    t.to_string()
}

/// Every reason `e` may not apply to `cycle`, from the cycle's pinned settings and the
/// enterprise's records.
pub(crate) async fn eligibility_of(
    conn: &mut qaward_kit::db::Conn,
    code: &CreditCode,
    e: &EnterpriseRow,
    cycle: &CycleRow,
) -> Result<Vec<domain::Explanation>> {
    let programme = &cycle.programme_id;
    let settings = store::settings_version(conn, programme, cycle.settings_version).await?;
    let mut dates = Vec::new();
    for kind in ["award", "revocation", "fraud"] {
        let v = store::record_dates(conn, code.as_str(), programme, kind).await?;
        dates.push(
            v.iter()
                .filter_map(|d| parse_iso_date(d))
                .collect::<Vec<_>>(),
        );
    }
    let facts = eligibility::Facts {
        credit_code: Some(code),
        established: parse_iso_date(&e.established_date),
        awards: &dates[0],
        revocations: &dates[1],
        fraud_findings: &dates[2],
    };
    Ok(eligibility::check(
        &facts,
        &settings,
        china_date(cycle.deadline_micros),
    ))
}

/// The China Standard Time date of a stored instant.
pub(crate) fn china_date(micros: i64) -> time::Date {
    qaward_kit::clock::from_unix_micros(micros)
        .to_offset(time::macros::offset!(+8))
        .date()
}

#[tonic::async_trait]
impl ApplicationService for ApplicationsApi {
    async fn create_programme(
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
            if let Some(done) = change::recall(&self.db, &key).await? {
                return Ok(done);
            }
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
            let mut tx = self.db.begin().await?;
            store::insert_programme(&mut tx, &r.programme_id, &name, &settings, unix_micros(now))
                .await?;
            let response = programme_pb(&store::get_programme(&mut tx, &r.programme_id).await?);
            let record =
                AuditRecord::by(&c, "programme.create", response.name.clone()).because("R-01");
            change::commit(tx, now, &key, record, &response).await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn get_programme(
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

    async fn list_programmes(
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

    async fn update_programme_settings(
        &self,
        request: Request<pb::UpdateProgrammeSettingsRequest>,
    ) -> Result<Response<pb::Programme>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let id = programme_id(&r.name, "name")?;
            c.require_programme(&id, &[Role::Office])?;
            let key = RequestKey::new("UpdateProgrammeSettings", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(&self.db, &key).await? {
                return Ok(done);
            }
            let settings = settings_from_pb(
                r.settings
                    .as_ref()
                    .ok_or_else(|| Error::invalid("settings", "is required"))?,
            )?;
            let now = self.now();
            let mut tx = self.db.begin().await?;
            let version = store::update_settings(&mut tx, &id, &settings, unix_micros(now)).await?;
            let response = programme_pb(&store::get_programme(&mut tx, &id).await?);
            let record = AuditRecord::by(&c, "programme.update_settings", response.name.clone())
                .because("R-01")
                .with_detail(serde_json::json!({ "version": version }));
            change::commit(tx, now, &key, record, &response).await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn create_cycle(
        &self,
        request: Request<pb::CreateCycleRequest>,
    ) -> Result<Response<pb::Cycle>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let programme = programme_id(&r.parent, "parent")?;
            c.require_programme(&programme, &[Role::Office])?;
            let key = RequestKey::new("CreateCycle", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(&self.db, &key).await? {
                return Ok(done);
            }
            let cy = r
                .cycle
                .as_ref()
                .ok_or_else(|| Error::invalid("cycle", "is required"))?;
            let now = self.now();
            let mut bad = Vec::new();
            if !(2000..=2100).contains(&cy.year) {
                bad.push(FieldViolation::new("cycle.year", "must be 2000-2100"));
            }
            let title = line(&cy.notice_title, "cycle.notice_title", 200, &mut bad);
            let conditions = cy.conditions.trim().to_string();
            if conditions.is_empty() || conditions.chars().count() > 20_000 {
                bad.push(FieldViolation::new(
                    "cycle.conditions",
                    "must be 1-20000 characters",
                ));
            }
            if cy.required_materials.is_empty() || cy.required_materials.len() > 50 {
                bad.push(FieldViolation::new(
                    "cycle.required_materials",
                    "must list 1-50 materials",
                ));
            }
            let materials: Vec<String> = cy
                .required_materials
                .iter()
                .enumerate()
                .map(|(i, m)| line(m, &format!("cycle.required_materials[{i}]"), 200, &mut bad))
                .collect();
            let deadline = match &cy.deadline {
                None => {
                    bad.push(FieldViolation::new("cycle.deadline", "is required"));
                    now
                }
                Some(t) => match timestamp_from_pb(t, "cycle.deadline") {
                    Ok(d) if d <= now => {
                        bad.push(FieldViolation::new(
                            "cycle.deadline",
                            "must be in the future",
                        ));
                        d
                    }
                    Ok(d) => d,
                    Err(e) => {
                        bad.extend(e.violations.iter().cloned());
                        now
                    }
                },
            };
            if !bad.is_empty() {
                return Err(Error::invalid_fields(bad));
            }
            let mut tx = self.db.begin().await?;
            let p = store::get_programme(&mut tx, &programme).await?;
            let row = CycleRow {
                programme_id: programme.clone(),
                year: i64::from(cy.year),
                notice_title: title,
                conditions,
                required_materials: materials,
                deadline_micros: unix_micros(deadline),
                settings_version: p.settings_version,
                state: "OPEN".into(),
                created_micros: unix_micros(now),
                approval_document: String::new(),
                approval_date: String::new(),
            };
            store::insert_cycle(&mut tx, &row).await?;
            let response = cycle_pb(&row);
            let record = AuditRecord::by(&c, "cycle.publish_notice", response.name.clone())
                .because("R-01")
                .with_detail(serde_json::json!({ "settings_version": p.settings_version, "deadline_micros": row.deadline_micros }));
            change::commit(tx, now, &key, record, &response).await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn get_cycle(
        &self,
        request: Request<pb::GetCycleRequest>,
    ) -> Result<Response<pb::Cycle>, Status> {
        // A published notice is public: any authenticated caller reads it.
        let _ = caller(&request)?;
        let run = async {
            let (p, y) = cycle_id(&request.get_ref().name, "name")?;
            let mut conn = self.db.pool().acquire().await?;
            Ok(cycle_pb(&store::get_cycle(&mut conn, &p, y).await?))
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn list_cycles(
        &self,
        request: Request<pb::ListCyclesRequest>,
    ) -> Result<Response<pb::ListCyclesResponse>, Status> {
        let _ = caller(&request)?;
        let run = async {
            let r = request.get_ref();
            let p = programme_id(&r.parent, "parent")?;
            let page = Page::parse(r.page_size, &r.page_token)?;
            let mut rows = store::list_cycles(&self.db, &p, &page).await?;
            let next_page_token = page.finish(&mut rows, |c| c.year.to_string());
            Ok(pb::ListCyclesResponse {
                cycles: rows.iter().map(cycle_pb).collect(),
                next_page_token,
            })
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn create_enterprise(
        &self,
        request: Request<pb::CreateEnterpriseRequest>,
    ) -> Result<Response<pb::Enterprise>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let e = r
                .enterprise
                .as_ref()
                .ok_or_else(|| Error::invalid("enterprise", "is required"))?;
            let mut bad = Vec::new();
            let code = match CreditCode::parse(&e.credit_code) {
                Ok(code) => Some(code),
                Err(err) => {
                    bad.push(FieldViolation::new(
                        "enterprise.credit_code",
                        err.to_string(),
                    ));
                    None
                }
            };
            // The enterprise registers itself (its token's org is its code), or the office does.
            if let Some(code) = &code
                && !is_enterprise(&c, code.as_str())
            {
                c.require(&[Role::Office])?;
            }
            let key = RequestKey::new("CreateEnterprise", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(&self.db, &key).await? {
                return Ok(done);
            }
            let name = line(&e.display_name, "enterprise.display_name", 200, &mut bad);
            let now = self.now();
            let established = match &e.established_date {
                None => {
                    bad.push(FieldViolation::new(
                        "enterprise.established_date",
                        "is required",
                    ));
                    None
                }
                Some(d) => match date_from_pb(d, "enterprise.established_date") {
                    Ok(d) if d > now.date() => {
                        bad.push(FieldViolation::new(
                            "enterprise.established_date",
                            "is in the future",
                        ));
                        None
                    }
                    Ok(d) => Some(d),
                    Err(err) => {
                        bad.extend(err.violations.iter().cloned());
                        None
                    }
                },
            };
            let industry = cn::industry(&e.industry_code).unwrap_or_else(|err| {
                bad.push(FieldViolation::new(
                    "enterprise.industry_code",
                    err.to_string(),
                ));
                String::new()
            });
            let unit = e.recommending_unit.trim().to_string();
            if !(1..=64).contains(&unit.len()) || unit.contains(['/', ' ']) {
                bad.push(FieldViolation::new(
                    "enterprise.recommending_unit",
                    "must be the recommending unit's id (1-64 characters, no '/' or spaces)",
                ));
            }
            let (Some(code), Some(established), true) = (code, established, bad.is_empty()) else {
                return Err(Error::invalid_fields(bad));
            };
            let row = EnterpriseRow {
                credit_code: code.as_str().to_string(),
                display_name: name,
                established_date: iso_date(established),
                industry_code: industry,
                recommending_unit: unit,
                created_micros: unix_micros(now),
            };
            let mut tx = self.db.begin().await?;
            store::insert_enterprise(&mut tx, &row).await?;
            let response = enterprise_pb(&row);
            let record =
                AuditRecord::by(&c, "enterprise.create", response.name.clone()).because("R-02");
            change::commit(tx, now, &key, record, &response).await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn get_enterprise(
        &self,
        request: Request<pb::GetEnterpriseRequest>,
    ) -> Result<Response<pb::Enterprise>, Status> {
        let c = caller(&request)?;
        let run = async {
            let code = enterprise_code(&request.get_ref().name, "name")?;
            let mut conn = self.db.pool().acquire().await?;
            let row = store::get_enterprise(&mut conn, code.as_str()).await?;
            let its_unit = c.role == Role::RecommendingUnit
                && c.org.as_deref() == Some(row.recommending_unit.as_str());
            if !is_enterprise(&c, code.as_str()) && !its_unit {
                c.require(&[Role::Office, Role::Supervisor])?;
            }
            Ok(enterprise_pb(&row))
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn list_enterprises(
        &self,
        request: Request<pb::ListEnterprisesRequest>,
    ) -> Result<Response<pb::ListEnterprisesResponse>, Status> {
        let c = caller(&request)?;
        let run = async {
            c.require(&[Role::Office, Role::Supervisor])?;
            let r = request.get_ref();
            let page = Page::parse(r.page_size, &r.page_token)?;
            let mut rows = store::list_enterprises(&self.db, &page).await?;
            let next_page_token = page.finish(&mut rows, |e| e.credit_code.clone());
            Ok(pb::ListEnterprisesResponse {
                enterprises: rows.iter().map(enterprise_pb).collect(),
                next_page_token,
            })
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn get_cycle_board(
        &self,
        request: Request<pb::GetCycleBoardRequest>,
    ) -> Result<Response<pb::CycleBoard>, Status> {
        self.intake_board(request).await
    }

    async fn create_application(
        &self,
        request: Request<pb::CreateApplicationRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        self.intake_create(request).await
    }

    async fn get_application(
        &self,
        request: Request<pb::GetApplicationRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        self.intake_get(request).await
    }

    async fn list_applications(
        &self,
        request: Request<pb::ListApplicationsRequest>,
    ) -> Result<Response<pb::ListApplicationsResponse>, Status> {
        self.intake_list(request).await
    }

    async fn update_application(
        &self,
        request: Request<pb::UpdateApplicationRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        self.intake_update(request).await
    }

    async fn upload_evidence(
        &self,
        request: Request<tonic::Streaming<pb::UploadEvidenceRequest>>,
    ) -> Result<Response<pb::EvidenceFile>, Status> {
        self.intake_upload(request).await
    }

    async fn submit_application(
        &self,
        request: Request<pb::SubmitApplicationRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        self.intake_submit(request).await
    }

    async fn withdraw_application(
        &self,
        request: Request<pb::WithdrawApplicationRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        self.intake_withdraw(request).await
    }

    async fn sign_recommendation(
        &self,
        request: Request<pb::SignRecommendationRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        self.intake_sign(request).await
    }

    async fn transition_application(
        &self,
        request: Request<pb::TransitionApplicationRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        self.intake_transition(request).await
    }

    async fn prepare_review_group(
        &self,
        request: Request<pb::PrepareReviewGroupRequest>,
    ) -> Result<Response<pb::ReviewGroup>, Status> {
        self.review_prepare(request).await
    }

    async fn start_review_group(
        &self,
        request: Request<pb::StartReviewGroupRequest>,
    ) -> Result<Response<pb::ReviewGroup>, Status> {
        self.review_start(request).await
    }

    async fn get_review_group(
        &self,
        request: Request<pb::GetReviewGroupRequest>,
    ) -> Result<Response<pb::ReviewGroup>, Status> {
        self.review_get(request).await
    }

    async fn list_review_groups(
        &self,
        request: Request<pb::ListReviewGroupsRequest>,
    ) -> Result<Response<pb::ListReviewGroupsResponse>, Status> {
        self.review_list(request).await
    }

    async fn release_review_stage(
        &self,
        request: Request<pb::ReleaseReviewStageRequest>,
    ) -> Result<Response<pb::ReleaseReviewStageResponse>, Status> {
        self.review_release(request).await
    }

    async fn stop_site_visit(
        &self,
        request: Request<pb::StopSiteVisitRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        self.review_stop_site_visit(request).await
    }

    async fn fix_candidates(
        &self,
        request: Request<pb::FixCandidatesRequest>,
    ) -> Result<Response<pb::FixCandidatesResponse>, Status> {
        self.selection_fix(request).await
    }

    async fn request_consultation(
        &self,
        request: Request<pb::RequestConsultationRequest>,
    ) -> Result<Response<pb::Cycle>, Status> {
        self.selection_request_consultation(request).await
    }

    async fn record_consultation_opinion(
        &self,
        request: Request<pb::RecordConsultationOpinionRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        self.selection_record_opinion(request).await
    }

    async fn decide_objection(
        &self,
        request: Request<pb::DecideObjectionRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        self.selection_decide_objection(request).await
    }

    async fn open_public_notice(
        &self,
        request: Request<pb::OpenPublicNoticeRequest>,
    ) -> Result<Response<pb::PublicNotice>, Status> {
        self.selection_open_notice(request).await
    }

    async fn get_public_notice(
        &self,
        request: Request<pb::GetPublicNoticeRequest>,
    ) -> Result<Response<pb::PublicNotice>, Status> {
        self.selection_get_notice(request).await
    }

    async fn create_complaint(
        &self,
        request: Request<pb::CreateComplaintRequest>,
    ) -> Result<Response<pb::Complaint>, Status> {
        self.selection_complain(request).await
    }

    async fn list_complaints(
        &self,
        request: Request<pb::ListComplaintsRequest>,
    ) -> Result<Response<pb::ListComplaintsResponse>, Status> {
        self.selection_list_complaints(request).await
    }

    async fn resolve_complaint(
        &self,
        request: Request<pb::ResolveComplaintRequest>,
    ) -> Result<Response<pb::Complaint>, Status> {
        self.selection_resolve_complaint(request).await
    }

    async fn record_committee_meeting(
        &self,
        request: Request<pb::RecordCommitteeMeetingRequest>,
    ) -> Result<Response<pb::Cycle>, Status> {
        self.selection_committee(request).await
    }

    async fn record_approval(
        &self,
        request: Request<pb::RecordApprovalRequest>,
    ) -> Result<Response<pb::Cycle>, Status> {
        self.selection_approve(request).await
    }

    async fn file_report(
        &self,
        request: Request<pb::FileReportRequest>,
    ) -> Result<Response<pb::WinnerReport>, Status> {
        self.duties_file(request).await
    }

    async fn list_reports(
        &self,
        request: Request<pb::ListReportsRequest>,
    ) -> Result<Response<pb::ListReportsResponse>, Status> {
        self.duties_list(request).await
    }

    async fn revoke_award(
        &self,
        request: Request<pb::RevokeAwardRequest>,
    ) -> Result<Response<pb::Enterprise>, Status> {
        self.duties_revoke(request).await
    }

    async fn list_overdue_reports(
        &self,
        request: Request<pb::ListOverdueReportsRequest>,
    ) -> Result<Response<pb::ListOverdueReportsResponse>, Status> {
        self.duties_overdue(request).await
    }

    async fn export_cycle_record(
        &self,
        request: Request<pb::ExportCycleRecordRequest>,
    ) -> Result<Response<pb::CycleRecordArchive>, Status> {
        self.export_cycle(request).await
    }

    async fn check_eligibility(
        &self,
        request: Request<pb::CheckEligibilityRequest>,
    ) -> Result<Response<pb::CheckEligibilityResponse>, Status> {
        let c = caller(&request)?;
        let run = async {
            let r = request.get_ref();
            let code = enterprise_code(&r.enterprise, "enterprise")?;
            let (programme, year) = cycle_id(&r.cycle, "cycle")?;
            if !is_enterprise(&c, code.as_str()) {
                c.require(&[Role::Office, Role::Supervisor, Role::RecommendingUnit])?;
            }
            let mut conn = self.db.pool().acquire().await?;
            let e = store::get_enterprise(&mut conn, code.as_str()).await?;
            if c.role == Role::RecommendingUnit
                && c.org.as_deref() != Some(e.recommending_unit.as_str())
            {
                return Err(Error::permission_denied(
                    "this enterprise is not in your area",
                ));
            }
            let cycle = store::get_cycle(&mut conn, &programme, year).await?;
            let settings =
                store::settings_version(&mut conn, &programme, cycle.settings_version).await?;
            let dates = |v: Vec<String>| {
                v.iter()
                    .filter_map(|d| parse_iso_date(d))
                    .collect::<Vec<_>>()
            };
            let awards =
                dates(store::record_dates(&mut conn, code.as_str(), &programme, "award").await?);
            let revocations = dates(
                store::record_dates(&mut conn, code.as_str(), &programme, "revocation").await?,
            );
            let fraud =
                dates(store::record_dates(&mut conn, code.as_str(), &programme, "fraud").await?);
            let facts = eligibility::Facts {
                credit_code: Some(&code),
                established: parse_iso_date(&e.established_date),
                awards: &awards,
                revocations: &revocations,
                fraud_findings: &fraud,
            };
            let deadline = qaward_kit::clock::from_unix_micros(cycle.deadline_micros)
                .to_offset(time::macros::offset!(+8))
                .date();
            let reasons = eligibility::check(&facts, &settings, deadline);
            Ok(pb::CheckEligibilityResponse {
                eligible: reasons.is_empty(),
                reasons: reasons.iter().map(explanation_pb).collect(),
            })
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }
}
