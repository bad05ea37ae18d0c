//! Intake: an enterprise drafts, edits and submits its application, uploads its
//! evidence by client streaming, its recommending unit signs an opinion, and the office accepts
//! or rejects it. Every step goes through `domain::stage::apply` and commits with its audit
//! record; a submission also puts its notices in the outbox, in the same transaction.

use qaward_kit::{
    Error, Result,
    audit::AuditRecord,
    auth::{Caller, Role},
    change,
    clock::{to_timestamp, unix_micros},
    cn::CreditCode,
    convert::chinese_date,
    db::Conn,
    error::FieldViolation,
    idempotency::RequestKey,
    notify,
    paging::Page,
};
use qaward_proto::qaward::{applications::v1 as pb, notifications::v1 as npb};
use tonic::{Request, Response, Status, Streaming};

use crate::{
    domain::{
        Explanation, evidence,
        stage::{self, Stage, Step},
    },
    grpc::{ApplicationsApi, caller, china_date, cycle_id, eligibility_of, is_enterprise, line},
    store::{self, ApplicationRow, CycleRow, EnterpriseRow, EvidenceRow, RecommendationRow},
};

/// Chunks of an upload are at most this large (the client's choice below it).
pub const MAX_CHUNK_BYTES: usize = 4 * 1024 * 1024;
/// Drafts may run over the limits (they are checked at submission), up to this many characters.
const MAX_DRAFT_CHARS: usize = 1_000_000;

/// `programmes/{p}/cycles/{y}/applications/{code}` → (p, y, code).
pub(crate) fn application_name(name: &str, field: &str) -> Result<(String, i64, CreditCode)> {
    let (cycle, code) = name.rsplit_once("/applications/").ok_or_else(|| {
        Error::invalid(
            field,
            "must be programmes/{p}/cycles/{year}/applications/{credit code}",
        )
    })?;
    let (p, y) = cycle_id(cycle, field)?;
    let code = CreditCode::parse(code).map_err(|e| Error::invalid(field, e.to_string()))?;
    Ok((p, y, code))
}

pub(crate) fn stage_of(row: &ApplicationRow) -> Result<Stage> {
    Stage::parse(&row.stage)
        .ok_or_else(|| Error::internal(format_args!("unknown stage {}", row.stage)))
}

fn stage_pb(s: &str) -> i32 {
    pb::ApplicationStage::from_str_name(&format!("APPLICATION_STAGE_{s}")).unwrap_or_default()
        as i32
}

pub(crate) fn opinion_str(o: i32) -> Option<&'static str> {
    match pb::Opinion::try_from(o).ok()? {
        pb::Opinion::Support => Some("SUPPORT"),
        pb::Opinion::Object => Some("OBJECT"),
        pb::Opinion::Unspecified => None,
    }
}

/// Records a decision on the row: its stage and why.
pub(crate) fn decide(row: &mut ApplicationRow, to: Stage, why: &Explanation, now: i64) {
    row.stage = to.as_str().to_string();
    row.last_rule = why.rule.to_string();
    row.last_reason = why.reason.to_string();
    row.last_message = why.message.clone();
    row.last_inputs = serde_json::to_string(&why.inputs).unwrap_or_default();
    row.updated_micros = now;
}

/// A refusal by a rule: FAILED_PRECONDITION with the rule id.
pub(crate) fn refused(e: Explanation) -> Error {
    let mut err = Error::rule(e.rule, e.reason, e.message.clone());
    for (k, v) in &e.inputs {
        err = err.with_metadata(k.clone(), v.clone());
    }
    err
}

pub(crate) struct Loaded {
    pub row: ApplicationRow,
    pub cycle: CycleRow,
    pub enterprise: EnterpriseRow,
}

pub(crate) async fn load(conn: &mut Conn, p: &str, y: i64, code: &CreditCode) -> Result<Loaded> {
    let row = store::get_application(conn, &ApplicationRow::key(p, y, code.as_str())).await?;
    let cycle = store::get_cycle(conn, p, y).await?;
    let enterprise = store::get_enterprise(conn, code.as_str()).await?;
    Ok(Loaded {
        row,
        cycle,
        enterprise,
    })
}

/// Who reads an application: the office and supervisor of its programme, the enterprise, and
/// its recommending unit.
pub(crate) fn may_read(c: &Caller, l: &Loaded) -> Result<()> {
    if is_enterprise(c, &l.row.credit_code)
        || (c.role == Role::RecommendingUnit
            && c.org.as_deref() == Some(l.enterprise.recommending_unit.as_str()))
    {
        return Ok(());
    }
    if c.role == Role::Reviewer {
        return Err(Error::permission_denied(
            "a reviewer reads an application only while a review it is drawn for runs (R-43)",
        ));
    }
    c.require_programme(&l.row.programme_id, &[Role::Office, Role::Supervisor])
}

fn only_the_enterprise(c: &Caller, code: &str) -> Result<()> {
    if is_enterprise(c, code) {
        Ok(())
    } else {
        Err(Error::permission_denied(
            "only the applying enterprise does this",
        ))
    }
}

pub(crate) async fn application_pb(
    conn: &mut Conn,
    row: &ApplicationRow,
) -> Result<pb::Application> {
    let evidence = store::evidence_of(conn, &row.id).await?;
    let recs = store::recommendations_of(conn, &row.id).await?;
    let name = format!(
        "programmes/{}/cycles/{}/applications/{}",
        row.programme_id, row.year, row.credit_code
    );
    Ok(pb::Application {
        evidence: evidence.iter().map(|e| evidence_pb(&name, e)).collect(),
        name,
        enterprise: format!("enterprises/{}", row.credit_code),
        stage: stage_pb(&row.stage),
        application_form: row.application_form.clone(),
        organisation_profile: row.organisation_profile.clone(),
        self_assessment: row.self_assessment.clone(),
        recommendations: recs
            .iter()
            .map(|r| pb::Recommendation {
                unit: r.unit.clone(),
                opinion: pb::Opinion::from_str_name(&format!("OPINION_{}", r.opinion))
                    .unwrap_or_default() as i32,
                reasons: r.reasons.clone(),
                sign_time: Some(to_timestamp(r.signed_micros)),
                attested: r
                    .attested
                    .iter()
                    .filter_map(|a| pb::Condition::from_str_name(&format!("CONDITION_{a}")))
                    .map(|c| c as i32)
                    .collect(),
            })
            .collect(),
        submit_time: row.submitted_micros.map(to_timestamp),
        last_decision: Some(qaward_proto::qaward::common::v1::Explanation {
            rule: row.last_rule.clone(),
            message: row.last_message.clone(),
            inputs: serde_json::from_str(&row.last_inputs).unwrap_or_default(),
        }),
    })
}

fn evidence_pb(application: &str, e: &EvidenceRow) -> pb::EvidenceFile {
    pb::EvidenceFile {
        name: format!("{application}/evidence/{}", e.id),
        file_name: e.file_name.clone(),
        content_type: e.content_type.clone(),
        size_bytes: e.size_bytes,
        sha256: e.sha256.clone(),
    }
}

/// A notification to one recipient's inbox, for the outbox.
pub(crate) fn notice(
    event: &str,
    to: &str,
    display: &str,
    vars: &[(&str, String)],
) -> npb::Notification {
    npb::Notification {
        event_type: event.to_string(),
        recipients: vec![npb::Recipient {
            id: to.to_string(),
            display_name: display.to_string(),
            ..Default::default()
        }],
        variables: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        ..Default::default()
    }
}

impl ApplicationsApi {
    pub(crate) async fn intake_create(
        &self,
        request: Request<pb::CreateApplicationRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
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
            only_the_enterprise(&c, code.as_str())?;
            let key = RequestKey::new("CreateApplication", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(self.db(), &key).await? {
                return Ok(done);
            }
            let mut bad = Vec::new();
            for (field, v) in [
                ("application.application_form", &a.application_form),
                ("application.organisation_profile", &a.organisation_profile),
                ("application.self_assessment", &a.self_assessment),
            ] {
                if v.chars().count() > MAX_DRAFT_CHARS {
                    bad.push(FieldViolation::new(
                        field,
                        format!("must be at most {MAX_DRAFT_CHARS} characters"),
                    ));
                }
            }
            if !bad.is_empty() {
                return Err(Error::invalid_fields(bad));
            }
            let now = self.now();
            let micros = unix_micros(now);
            let mut tx = self.db().begin().await?;
            let cycle = store::get_cycle(&mut tx, &p, y).await?;
            store::get_enterprise(&mut tx, code.as_str()).await?;
            if cycle.state != "OPEN" || micros > cycle.deadline_micros {
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
                AuditRecord::by(&c, "application.create", response.name.clone()).because("R-05");
            change::commit(tx, now, &key, record, &response).await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    pub(crate) async fn intake_get(
        &self,
        request: Request<pb::GetApplicationRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        let c = caller(&request)?;
        let run = async {
            let (p, y, code) = application_name(&request.get_ref().name, "name")?;
            let mut conn = self.db().pool().acquire().await?;
            let l = load(&mut conn, &p, y, &code).await?;
            // a drawn reviewer reads the application while its review runs, and only then.
            if !crate::review::reviewer_may_read(&mut conn, &c, &l.row).await? {
                may_read(&c, &l)?;
            }
            application_pb(&mut conn, &l.row).await
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    pub(crate) async fn intake_list(
        &self,
        request: Request<pb::ListApplicationsRequest>,
    ) -> Result<Response<pb::ListApplicationsResponse>, Status> {
        let c = caller(&request)?;
        let run = async {
            let r = request.get_ref();
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
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    pub(crate) async fn intake_board(
        &self,
        request: Request<pb::GetCycleBoardRequest>,
    ) -> Result<Response<pb::CycleBoard>, Status> {
        let c = caller(&request)?;
        let run = async {
            let name = request.get_ref().name.clone();
            let (p, y) = cycle_id(&name, "name")?;
            c.require_programme(&p, &[Role::Office, Role::Supervisor])?;
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
                        open_deadlines: stage::open_deadlines(
                            current,
                            &deadline,
                            review_ends.map(chinese_date).as_deref(),
                            stopped,
                        ),
                        overdue: stage::overdue(current, deadline_day, review_ends, stopped, today)
                            .as_ref()
                            .map(crate::grpc::explanation_pb),
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
                self.scoring_results(&c, &p, y, &settings),
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
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    pub(crate) async fn intake_update(
        &self,
        request: Request<pb::UpdateApplicationRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let a = r
                .application
                .as_ref()
                .ok_or_else(|| Error::invalid("application", "is required"))?;
            let (p, y, code) = application_name(&a.name, "application.name")?;
            only_the_enterprise(&c, code.as_str())?;
            let key = RequestKey::new("UpdateApplication", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(self.db(), &key).await? {
                return Ok(done);
            }
            let paths: Vec<&str> = if r.update_mask.trim().is_empty() {
                vec![
                    "application_form",
                    "organisation_profile",
                    "self_assessment",
                ]
            } else {
                r.update_mask.split(',').map(str::trim).collect()
            };
            let now = self.now();
            let mut tx = self.db().begin().await?;
            let mut l = load(&mut tx, &p, y, &code).await?;
            if stage_of(&l.row)? != Stage::Draft {
                return Err(refused(Explanation::new(
                    "R-05",
                    "NOT_A_DRAFT",
                    format!("申报处于{}阶段，提交后不能修改", l.row.stage),
                )));
            }
            for path in paths {
                let (slot, value) = match path {
                    "application_form" => (&mut l.row.application_form, &a.application_form),
                    "organisation_profile" => {
                        (&mut l.row.organisation_profile, &a.organisation_profile)
                    }
                    "self_assessment" => (&mut l.row.self_assessment, &a.self_assessment),
                    other => {
                        return Err(Error::invalid(
                            "update_mask",
                            format!("{other} cannot be updated"),
                        ));
                    }
                };
                if value.chars().count() > MAX_DRAFT_CHARS {
                    return Err(Error::invalid(
                        format!("application.{path}"),
                        format!("must be at most {MAX_DRAFT_CHARS} characters"),
                    ));
                }
                *slot = value.clone();
            }
            l.row.updated_micros = unix_micros(now);
            store::save_application(&mut tx, &l.row).await?;
            let response = application_pb(&mut tx, &l.row).await?;
            let record =
                AuditRecord::by(&c, "application.update", response.name.clone()).because("R-05");
            change::commit(tx, now, &key, record, &response).await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    pub(crate) async fn intake_upload(
        &self,
        request: Request<Streaming<pb::UploadEvidenceRequest>>,
    ) -> Result<Response<pb::EvidenceFile>, Status> {
        let c = caller(&request)?;
        let mut stream = request.into_inner();
        let run = async {
            let first = stream
                .message()
                .await
                .map_err(|s| Error::invalid("header", s.message().to_string()))?
                .ok_or_else(|| Error::invalid("header", "the first message must be the header"))?;
            let Some(pb::upload_evidence_request::Part::Header(h)) = first.part.clone() else {
                return Err(Error::invalid(
                    "header",
                    "the first message must be the header",
                ));
            };
            let (p, y, code) = application_name(&h.parent, "header.parent")?;
            only_the_enterprise(&c, code.as_str())?;
            let key = RequestKey::new("UploadEvidence", &c, &first.request_id, &first)?;
            if let Some(done) = change::recall(self.db(), &key).await? {
                return Ok(done);
            }
            let mut bad = Vec::new();
            if !evidence::valid_file_name(&h.file_name) {
                bad.push(FieldViolation::new(
                    "header.file_name",
                    "must be 1-200 characters without '/', '\\' or control characters",
                ));
            }
            if !evidence::is_accepted(&h.content_type) {
                bad.push(FieldViolation::new(
                    "header.content_type",
                    format!("must be one of {}", evidence::accepted().join(", ")),
                ));
            }
            if h.size_bytes <= 0 || h.size_bytes as u64 > evidence::MAX_BYTES {
                bad.push(FieldViolation::new(
                    "header.size_bytes",
                    format!("must be 1-{} bytes (50 MiB)", evidence::MAX_BYTES),
                ));
            }
            if !bad.is_empty() {
                return Err(Error::invalid_fields(bad));
            }
            {
                let mut conn = self.db().pool().acquire().await?;
                let l = load(&mut conn, &p, y, &code).await?;
                if stage_of(&l.row)? != Stage::Draft {
                    return Err(refused(Explanation::new(
                        "R-05",
                        "NOT_A_DRAFT",
                        "申报提交后不能再上传证明材料",
                    )));
                }
                if store::evidence_of(&mut conn, &l.row.id).await?.len() >= evidence::MAX_FILES {
                    return Err(Error::invalid(
                        "header",
                        format!(
                            "an application carries at most {} files",
                            evidence::MAX_FILES
                        ),
                    ));
                }
            }
            let id = self.new_id();
            let mut w = self
                .blobs()
                .writer(&id)
                .await
                .map_err(|e| Error::internal(format_args!("blob store: {e}")))?;
            let declared = h.size_bytes as u64;
            let received = async {
                while let Some(msg) = stream
                    .message()
                    .await
                    .map_err(|s| Error::invalid("chunk", s.message().to_string()))?
                {
                    let Some(pb::upload_evidence_request::Part::Chunk(chunk)) = msg.part else {
                        return Err(Error::invalid(
                            "header",
                            "only the first message is a header",
                        ));
                    };
                    if chunk.len() > MAX_CHUNK_BYTES {
                        return Err(Error::invalid(
                            "chunk",
                            format!("chunks are at most {MAX_CHUNK_BYTES} bytes"),
                        ));
                    }
                    if w.size() == 0 && !evidence::matches(&h.content_type, &chunk) {
                        return Err(Error::invalid(
                            "header.content_type",
                            format!("the file is not {}", h.content_type),
                        ));
                    }
                    if w.size() + chunk.len() as u64 > declared {
                        return Err(Error::invalid(
                            "header.size_bytes",
                            format!("the file is larger than the declared {declared} bytes"),
                        ));
                    }
                    w.write(&chunk)
                        .await
                        .map_err(|e| Error::internal(format_args!("blob store: {e}")))?;
                }
                if w.size() != declared {
                    return Err(Error::invalid(
                        "header.size_bytes",
                        format!("declared {declared} bytes, received {}", w.size()),
                    ));
                }
                Ok(())
            }
            .await;
            if let Err(e) = received {
                w.abort().await;
                return Err(e);
            }
            let (sha, size) = w
                .finish()
                .await
                .map_err(|e| Error::internal(format_args!("blob store: {e}")))?;
            let now = self.now();
            let mut tx = self.db().begin().await?;
            let l = load(&mut tx, &p, y, &code).await?;
            if stage_of(&l.row)? != Stage::Draft {
                return Err(refused(Explanation::new(
                    "R-05",
                    "NOT_A_DRAFT",
                    "申报提交后不能再上传证明材料",
                )));
            }
            let row = EvidenceRow {
                id,
                application_id: l.row.id.clone(),
                file_name: h.file_name.clone(),
                content_type: h.content_type.clone(),
                size_bytes: size as i64,
                sha256: sha.clone(),
                created_micros: unix_micros(now),
            };
            store::insert_evidence(&mut tx, &row).await?;
            let response = evidence_pb(&h.parent, &row);
            let record = AuditRecord::by(&c, "evidence.upload", response.name.clone())
                .because("R-05")
                .with_detail(serde_json::json!({ "sha256": sha, "size_bytes": size, "content_type": h.content_type }));
            change::commit(tx, now, &key, record, &response).await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    pub(crate) async fn intake_submit(
        &self,
        request: Request<pb::SubmitApplicationRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let (p, y, code) = application_name(&r.name, "name")?;
            only_the_enterprise(&c, code.as_str())?;
            let key = RequestKey::new("SubmitApplication", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(self.db(), &key).await? {
                return Ok(done);
            }
            let now = self.now();
            let mut tx = self.db().begin().await?;
            let mut l = load(&mut tx, &p, y, &code).await?;
            let settings = store::settings_version(&mut tx, &p, l.cycle.settings_version).await?;
            let ineligible = eligibility_of(&mut tx, &code, &l.enterprise, &l.cycle).await?;
            let files = store::evidence_of(&mut tx, &l.row.id).await?.len();
            let problems = stage::submission_problems(
                now,
                qaward_kit::clock::from_unix_micros(l.cycle.deadline_micros),
                ineligible,
                &l.row.organisation_profile,
                &l.row.self_assessment,
                files,
                &settings,
            );
            let d = stage::apply(stage_of(&l.row)?, &Step::Submit { problems }).map_err(refused)?;
            decide(&mut l.row, d.to, &d.why, unix_micros(now));
            l.row.submitted_micros = Some(unix_micros(now));
            store::save_application(&mut tx, &l.row).await?;
            let programme = store::get_programme(&mut tx, &p).await?;
            let response = application_pb(&mut tx, &l.row).await?;
            let name = &l.enterprise.display_name;
            notify::enqueue(
                &mut tx,
                now,
                &notice(
                    "application.submitted",
                    code.as_str(),
                    name,
                    &[
                        ("enterprise_name", name.clone()),
                        ("programme_name", programme.display_name.clone()),
                        ("year", y.to_string()),
                        ("application_id", response.name.clone()),
                    ],
                ),
            )
            .await?;
            notify::enqueue(
                &mut tx,
                now,
                &notice(
                    "recommendation.requested",
                    &l.enterprise.recommending_unit,
                    "",
                    &[
                        ("unit_name", l.enterprise.recommending_unit.clone()),
                        ("enterprise_name", name.clone()),
                        ("programme_name", programme.display_name.clone()),
                        ("year", y.to_string()),
                        (
                            "deadline",
                            chinese_date(china_date(l.cycle.deadline_micros)),
                        ),
                    ],
                ),
            )
            .await?;
            let record = AuditRecord::by(&c, "application.submit", response.name.clone())
                .because(d.why.rule);
            change::commit(tx, now, &key, record, &response).await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    pub(crate) async fn intake_withdraw(
        &self,
        request: Request<pb::WithdrawApplicationRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let (p, y, code) = application_name(&r.name, "name")?;
            only_the_enterprise(&c, code.as_str())?;
            let mut bad = Vec::new();
            let reason = line(&r.reason, "reason", 500, &mut bad);
            if !bad.is_empty() {
                return Err(Error::invalid_fields(bad));
            }
            self.step(
                &c,
                &r.request_id,
                "WithdrawApplication",
                &r,
                &p,
                y,
                &code,
                Step::Withdraw,
                &reason,
            )
            .await
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    pub(crate) async fn intake_sign(
        &self,
        request: Request<pb::SignRecommendationRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let (p, y, code) = application_name(&r.name, "name")?;
            let mut bad = Vec::new();
            let opinion = opinion_str(r.opinion).unwrap_or_else(|| {
                bad.push(FieldViolation::new(
                    "opinion",
                    "must be OPINION_SUPPORT or OPINION_OBJECT",
                ));
                ""
            });
            let reasons = r.reasons.trim().to_string();
            if reasons.is_empty() || reasons.chars().count() > 2_000 {
                bad.push(FieldViolation::new("reasons", "must be 1-2000 characters"));
            }
            let mut attested: Vec<String> = Vec::new();
            for (i, a) in r.attested.iter().enumerate() {
                match pb::Condition::try_from(*a) {
                    Ok(pb::Condition::Unspecified) | Err(_) => bad.push(FieldViolation::new(
                        format!("attested[{i}]"),
                        "must name a condition of Art. 11 or Art. 12(1)",
                    )),
                    Ok(c) => {
                        let name = c.as_str_name().trim_start_matches("CONDITION_").to_string();
                        if !attested.contains(&name) {
                            attested.push(name);
                        }
                    }
                }
            }
            if !bad.is_empty() {
                return Err(Error::invalid_fields(bad));
            }
            let key = RequestKey::new("SignRecommendation", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(self.db(), &key).await? {
                return Ok(done);
            }
            let now = self.now();
            let mut tx = self.db().begin().await?;
            let mut l = load(&mut tx, &p, y, &code).await?;
            let settings = store::settings_version(&mut tx, &p, l.cycle.settings_version).await?;
            // The recommending unit signs as itself; a required department as its org.
            let required = stage::required_signers(
                &l.enterprise.recommending_unit,
                &settings.required_departments,
            );
            let unit = match (c.role, c.org.as_deref()) {
                (Role::RecommendingUnit, Some(org)) if org == l.enterprise.recommending_unit => {
                    org.to_string()
                }
                (Role::Department, Some(org))
                    if settings.required_departments.iter().any(|d| d == org) =>
                {
                    org.to_string()
                }
                _ => {
                    return Err(Error::permission_denied(format!(
                        "only {} sign opinions on this application",
                        required.join(", ")
                    )));
                }
            };
            let current = stage_of(&l.row)?;
            if current != Stage::Submitted {
                return Err(refused(Explanation::new(
                    "R-05",
                    "STEP_NOT_ALLOWED",
                    format!("申报处于{}阶段，不需要推荐意见", current.as_str()),
                )));
            }
            // The recommending unit's support attests what the system cannot check (R-03,
            // R-04); a department gives its opinion only.
            if unit == l.enterprise.recommending_unit {
                if opinion == "SUPPORT" {
                    let missing = crate::domain::eligibility::unattested(&attested);
                    if let Some(first) = missing.first() {
                        let names: Vec<String> = missing
                            .iter()
                            .map(|m| m.inputs["condition"].clone())
                            .collect();
                        return Err(refused(Explanation {
                            message: missing
                                .iter()
                                .map(|m| format!("{}（{}）", m.message, m.rule))
                                .collect::<Vec<_>>()
                                .join("；"),
                            ..first.clone()
                        })
                        .with_metadata("missing", names.join(",")));
                    }
                }
            } else if !attested.is_empty() {
                return Err(Error::invalid(
                    "attested",
                    "only the recommending unit attests the conditions",
                ));
            }
            store::put_recommendation(
                &mut tx,
                &l.row.id,
                &RecommendationRow {
                    unit: unit.clone(),
                    opinion: opinion.to_string(),
                    reasons: reasons.clone(),
                    signed_micros: unix_micros(now),
                    attested: attested.clone(),
                },
                &c.subject,
            )
            .await?;
            if opinion == "SUPPORT" {
                let signed: Vec<(String, String)> = store::recommendations_of(&mut tx, &l.row.id)
                    .await?
                    .into_iter()
                    .map(|r| (r.unit, r.opinion))
                    .collect();
                let missing = stage::missing_opinions(&required, &signed);
                match stage::apply(current, &Step::Recommend { missing }) {
                    Ok(d) => decide(&mut l.row, d.to, &d.why, unix_micros(now)),
                    // Still waiting for others: the opinion is recorded, the stage stays.
                    Err(why) => decide(&mut l.row, current, &why, unix_micros(now)),
                }
            } else {
                let why = Explanation::new(
                    "R-05",
                    "RECOMMENDATION_AGAINST",
                    format!("{unit}不同意推荐：{reasons}"),
                )
                .with("unit", &unit);
                decide(&mut l.row, current, &why, unix_micros(now));
            }
            store::save_application(&mut tx, &l.row).await?;
            let response = application_pb(&mut tx, &l.row).await?;
            let record =
                AuditRecord::by(&c, "application.sign_recommendation", response.name.clone())
                    .because("R-05")
                    .with_detail(serde_json::json!({ "unit": unit, "opinion": opinion }));
            change::commit(tx, now, &key, record, &response).await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    pub(crate) async fn intake_transition(
        &self,
        request: Request<pb::TransitionApplicationRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let (p, y, code) = application_name(&r.name, "name")?;
            c.require_programme(&p, &[Role::Office])?;
            let mut bad = Vec::new();
            let reason = line(&r.reason, "reason", 2_000, &mut bad);
            if !bad.is_empty() {
                return Err(Error::invalid_fields(bad));
            }
            let step = match pb::ApplicationStage::try_from(r.to_stage) {
                Ok(pb::ApplicationStage::Accepted) => Step::Accept,
                Ok(pb::ApplicationStage::Rejected) => Step::Reject {
                    reason: reason.clone(),
                },
                Ok(pb::ApplicationStage::Disqualified) => {
                    return self.disqualify(&c, &r, &p, y, &code, &reason).await;
                }
                Ok(pb::ApplicationStage::Unspecified) | Err(_) => {
                    return Err(Error::invalid("to_stage", "must name a stage"));
                }
                Ok(other) => {
                    let how = match other {
                        pb::ApplicationStage::MaterialsReview
                        | pb::ApplicationStage::Defence
                        | pb::ApplicationStage::SiteVisit => "StartReviewGroup",
                        pb::ApplicationStage::MaterialsPassed
                        | pb::ApplicationStage::MaterialsFailed
                        | pb::ApplicationStage::Scored
                        | pb::ApplicationStage::FinalSelection
                        | pb::ApplicationStage::NotSelected => "ReleaseReviewStage",
                        pb::ApplicationStage::Submitted => "SubmitApplication",
                        pb::ApplicationStage::Recommended => "SignRecommendation",
                        pb::ApplicationStage::Withdrawn => "WithdrawApplication",
                        _ => "the candidate steps of part 2 of the cycle (not built yet)",
                    };
                    return Err(Error::invalid(
                        "to_stage",
                        format!(
                            "{} is reached by {how}, not by a transition",
                            other.as_str_name()
                        ),
                    ));
                }
            };
            self.step(
                &c,
                &r.request_id,
                "TransitionApplication",
                &r,
                &p,
                y,
                &code,
                step,
                &reason,
            )
            .await
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    /// The office confirms what the site group found: the applicant is disqualified, the
    /// finding is kept as a fraud record that bars it for the programme's ban years, and
    /// it is told with the rule and the reason.
    async fn disqualify(
        &self,
        c: &Caller,
        r: &pb::TransitionApplicationRequest,
        p: &str,
        y: i64,
        code: &CreditCode,
        reason: &str,
    ) -> Result<pb::Application> {
        let key = RequestKey::new("TransitionApplication", c, &r.request_id, r)?;
        if let Some(done) = change::recall(self.db(), &key).await? {
            return Ok(done);
        }
        let now = self.now();
        let mut tx = self.db().begin().await?;
        let mut l = load(&mut tx, p, y, code).await?;
        let Some(finding) = store::site_stop(&mut tx, &l.row.id).await? else {
            return Err(refused(Explanation::new(
                "R-15",
                "NO_FINDING",
                "没有现场评审组中止评审的记录，不能取消评选资格",
            )));
        };
        let full = format!("{finding}；{reason}");
        let d = stage::apply(
            stage_of(&l.row)?,
            &Step::Disqualify {
                rule: "R-15",
                reason: full.clone(),
            },
        )
        .map_err(refused)?;
        decide(&mut l.row, d.to, &d.why, unix_micros(now));
        store::save_application(&mut tx, &l.row).await?;
        store::add_record(
            &mut tx,
            code.as_str(),
            p,
            "fraud",
            &qaward_kit::convert::iso_date(china_date(unix_micros(now))),
            &full,
            unix_micros(now),
        )
        .await?;
        let name = l.enterprise.display_name.clone();
        notify::enqueue(
            &mut tx,
            now,
            &notice(
                "candidate.disqualified",
                code.as_str(),
                &name,
                &[
                    ("enterprise_name", name.clone()),
                    ("reason", full.clone()),
                    ("rule", "R-15".to_string()),
                ],
            ),
        )
        .await?;
        let response = application_pb(&mut tx, &l.row).await?;
        let record = AuditRecord::by(c, "application.disqualify", response.name.clone())
            .because("R-15")
            .with_detail(serde_json::json!({ "finding": finding, "reason": reason }));
        change::commit(tx, now, &key, record, &response).await?;
        Ok(response)
    }

    /// One step of the stage table on one application, with its audit record.
    #[allow(clippy::too_many_arguments)]
    async fn step<M: prost::Message>(
        &self,
        c: &Caller,
        request_id: &str,
        method: &str,
        request: &M,
        p: &str,
        y: i64,
        code: &CreditCode,
        step: Step,
        reason: &str,
    ) -> Result<pb::Application> {
        let key = RequestKey::new(method, c, request_id, request)?;
        if let Some(done) = change::recall(self.db(), &key).await? {
            return Ok(done);
        }
        let now = self.now();
        let mut tx = self.db().begin().await?;
        let mut l = load(&mut tx, p, y, code).await?;
        let d = stage::apply(stage_of(&l.row)?, &step).map_err(refused)?;
        decide(&mut l.row, d.to, &d.why, unix_micros(now));
        store::save_application(&mut tx, &l.row).await?;
        // The office's acceptance review is announced to the applicant; a refusal is copied to
        // its recommending unit.
        if matches!(d.to, Stage::Accepted | Stage::Rejected) {
            let programme = store::get_programme(&mut tx, p).await?;
            let name = l.enterprise.display_name.clone();
            let mut vars = vec![
                ("enterprise_name", name.clone()),
                ("programme_name", programme.display_name.clone()),
                ("year", y.to_string()),
            ];
            let event = if d.to == Stage::Accepted {
                "application.accepted"
            } else {
                vars.push(("reason", reason.to_string()));
                "application.rejected"
            };
            let mut n = notice(event, code.as_str(), &name, &vars);
            if d.to == Stage::Rejected {
                n.recipients.push(npb::Recipient {
                    id: l.enterprise.recommending_unit.clone(),
                    ..Default::default()
                });
            }
            notify::enqueue(&mut tx, now, &n).await?;
        }
        let response = application_pb(&mut tx, &l.row).await?;
        let record = AuditRecord::by(
            c,
            &format!("application.{}", step.name()),
            response.name.clone(),
        )
        .because(format!("{} {}", d.why.rule, reason).trim().to_string());
        change::commit(tx, now, &key, record, &response).await?;
        Ok(response)
    }
}
