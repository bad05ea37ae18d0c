//! After scoring: the office fixes the candidates from scoring's ranking
//! (resolving ties at the cut line), consults the departments, opens the public notice, records
//! complaints and their investigation, the committee's meeting and the government's approval,
//! which makes the adopted candidates award holders. Rules in `domain::selection` and the stage
//! table; every step commits with its audit records and notices.

use qaward_kit::{
    Error, Result,
    audit::{self, AuditRecord},
    auth::{Caller, Role},
    change,
    clock::{from_unix_micros, to_timestamp, unix_micros},
    convert::{chinese_date, date_from_pb, iso_date},
    db::Conn,
    error::FieldViolation,
    idempotency::RequestKey,
    notify,
    paging::Page,
};
use qaward_proto::qaward::{applications::v1 as pb, notifications::v1 as npb, scoring::v1 as spb};
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use crate::{
    domain::{
        Explanation,
        selection::{self, Ranked, Ranking, TieResolution},
        stage::{self, Stage, Step},
    },
    grpc::{ApplicationsApi, caller, china_date, cycle_id, cycle_pb, line},
    intake::{application_name, application_pb, decide, notice, opinion_str, refused, stage_of},
    review::{application_resource, decimal},
    store::{self, ApplicationRow, ComplaintRow},
};

/// The inbox id of a department named in the programme's settings (names are Chinese;
/// recipient ids are ASCII): `department-` and the first 16 hex digits of the name's SHA-256.
pub fn department_inbox(name: &str) -> String {
    format!(
        "department-{}",
        &hex::encode(Sha256::digest(name.as_bytes()))[..16]
    )
}

/// Applies one step of the stage table to `row` and appends its audit record.
async fn move_by(
    tx: &mut Conn,
    c: &Caller,
    now: time::OffsetDateTime,
    row: &mut ApplicationRow,
    step: &Step,
) -> Result<Explanation> {
    let d = stage::apply(stage_of(row)?, step).map_err(refused)?;
    decide(row, d.to, &d.why, unix_micros(now));
    store::save_application(tx, row).await?;
    let record = AuditRecord::by(
        c,
        &format!("application.{}", step.name()),
        application_resource(row),
    )
    .because(d.why.rule)
    .with_detail(serde_json::json!({ "message": d.why.message, "inputs": d.why.inputs }));
    audit::append(tx, now, &record).await?;
    Ok(d.why)
}

fn complaint_pb(application: &str, c: &ComplaintRow) -> pb::Complaint {
    pb::Complaint {
        name: format!("{application}/complaints/{}", c.id),
        text: c.text.clone(),
        evidence: c.evidence.clone(),
        outcome: pb::ComplaintOutcome::from_str_name(&format!("COMPLAINT_OUTCOME_{}", c.outcome))
            .unwrap_or_default() as i32,
        investigation: c.investigation.clone(),
        create_time: Some(to_timestamp(c.created_micros)),
    }
}

impl ApplicationsApi {
    /// The applications of a cycle in `stage`, read on their own connection.
    async fn all_in(&self, p: &str, y: i64, stage: Stage) -> Result<Vec<ApplicationRow>> {
        let mut conn = self.db().pool().acquire().await?;
        store::applications_in(&mut conn, p, y, stage.as_str()).await
    }

    pub(crate) async fn selection_fix(
        &self,
        request: Request<pb::FixCandidatesRequest>,
    ) -> Result<Response<pb::FixCandidatesResponse>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let (p, y) = cycle_id(&r.cycle, "cycle")?;
            c.require_programme(&p, &[Role::Office])?;
            let mut bad = Vec::new();
            let mut ties = Vec::new();
            for (i, t) in r.tie_resolutions.iter().enumerate() {
                let field = format!("tie_resolutions[{i}]");
                let reason = line(&t.reason, &format!("{field}.reason"), 500, &mut bad);
                match application_name(&t.application, &format!("{field}.application")) {
                    Ok((ap, ay, _)) if ap == p && ay == y => ties.push(TieResolution {
                        application: t.application.clone(),
                        candidate: t.candidate,
                        reason,
                    }),
                    Ok(_) => bad.push(FieldViolation::new(
                        format!("{field}.application"),
                        "is not of this cycle",
                    )),
                    Err(e) => bad.extend(e.violations.clone()),
                }
            }
            if !bad.is_empty() {
                return Err(Error::invalid_fields(bad));
            }
            let key = RequestKey::new("FixCandidates", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(self.db(), &key).await? {
                return Ok(done);
            }
            let mut conn = self.db().pool().acquire().await?;
            let cycle = store::get_cycle(&mut conn, &p, y).await?;
            let settings = store::settings_version(&mut conn, &p, cycle.settings_version).await?;
            drop(conn);
            let finalists = self.all_in(&p, y, Stage::FinalSelection).await?;
            if finalists.is_empty() {
                return Err(Error::rule(
                    "R-17",
                    "NO_FINALISTS",
                    "本年度没有进入终选的申报，无需确定候选企业",
                ));
            }
            // The defence scores enter the composite now: release them, then rank.
            self.release_in_scoring(&c, &p, y, spb::Stage::Defence)
                .await?;
            let results = self.scoring_results(&c, &p, y, &settings).await?;
            let mut ranked = Vec::new();
            let mut missing = Vec::new();
            for row in &finalists {
                let name = application_resource(row);
                let result = results.results.iter().find(|x| x.application == name);
                let ranking = match result.map(|x| spb::Outcome::try_from(x.outcome)) {
                    Some(Ok(spb::Outcome::Candidate)) => Ranking::Candidate,
                    Some(Ok(spb::Outcome::TiedAtCut)) => Ranking::TiedAtCut,
                    Some(Ok(spb::Outcome::NotCandidate)) => Ranking::NotCandidate,
                    _ => {
                        missing.push(name);
                        continue;
                    }
                };
                let Some(composite) = result.and_then(|x| decimal(&x.composite_score)) else {
                    missing.push(name);
                    continue;
                };
                ranked.push(Ranked {
                    application: name,
                    ranking,
                    composite,
                    rank: result.map_or(0, |x| x.rank.max(0) as u32),
                });
            }
            if !missing.is_empty() {
                return Err(Error::rule(
                    "R-14",
                    "DEFENCE_SCORE_MISSING",
                    format!(
                        "以下申报尚无答辩得分，不能计算综合得分：{}",
                        missing.join("、")
                    ),
                )
                .with_metadata("waiting", missing.join(",")));
            }
            let verdicts = selection::fix_candidates(&ranked, &ties, &settings).map_err(refused)?;

            let now = self.now();
            let mut tx = self.db().begin().await?;
            let mut moved = Vec::new();
            let mut any = false;
            for v in &verdicts {
                let (_, _, code) = application_name(&v.application, "application")?;
                let mut row =
                    store::get_application(&mut tx, &ApplicationRow::key(&p, y, code.as_str()))
                        .await?;
                move_by(
                    &mut tx,
                    &c,
                    now,
                    &mut row,
                    &Step::Candidacy {
                        candidate: v.candidate,
                        why: v.why.clone(),
                    },
                )
                .await?;
                let rk = ranked.iter().find(|x| x.application == v.application);
                let released = results
                    .results
                    .iter()
                    .find(|x| x.application == v.application);
                let score =
                    |f: fn(
                        &spb::ApplicationResult,
                    )
                        -> &Option<qaward_proto::qaward::common::v1::Decimal>| {
                        released
                            .and_then(|x| f(x).as_ref())
                            .map(|d| d.value.clone())
                    };
                let scores = serde_json::json!({
                    "materials": score(|x| &x.materials_score),
                    "site": score(|x| &x.site_score),
                    "review": score(|x| &x.review_score),
                    "defence": score(|x| &x.defence_score),
                });
                store::put_candidacy(
                    &mut tx,
                    &row.id,
                    v.candidate,
                    &rk.map(|x| x.composite.normalize().to_string())
                        .unwrap_or_default(),
                    &scores,
                    rk.map_or(0, |x| i64::from(x.rank)),
                    unix_micros(now),
                )
                .await?;
                any |= v.candidate;
                moved.push(application_pb(&mut tx, &row).await?);
            }
            let mut cycle = store::get_cycle(&mut tx, &p, y).await?;
            if !any {
                cycle.state = "VACANT".to_string();
                store::set_cycle_state(&mut tx, &cycle).await?;
            }
            let response = pb::FixCandidatesResponse {
                cycle: Some(cycle_pb(&cycle)),
                applications: moved,
                vacant: !any,
            };
            let record = AuditRecord::by(&c, "cycle.fix_candidates", r.cycle.clone())
                .because("R-17")
                .with_detail(serde_json::json!({
                    "vacant": !any,
                    "ties": ties.iter().map(|t| serde_json::json!({
                        "application": t.application, "candidate": t.candidate, "reason": t.reason,
                    })).collect::<Vec<_>>(),
                }));
            change::commit(tx, now, &key, record, &response).await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    pub(crate) async fn selection_request_consultation(
        &self,
        request: Request<pb::RequestConsultationRequest>,
    ) -> Result<Response<pb::Cycle>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let (p, y) = cycle_id(&r.cycle, "cycle")?;
            c.require_programme(&p, &[Role::Office])?;
            let deadline = match &r.deadline {
                Some(d) => date_from_pb(d, "deadline")?,
                None => return Err(Error::invalid("deadline", "is required")),
            };
            let key = RequestKey::new("RequestConsultation", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(self.db(), &key).await? {
                return Ok(done);
            }
            let now = self.now();
            if deadline < china_date(unix_micros(now)) {
                return Err(Error::invalid("deadline", "must not be in the past"));
            }
            let candidates = self.all_in(&p, y, Stage::Candidate).await?;
            if candidates.is_empty() {
                return Err(Error::rule(
                    "R-20",
                    "NO_CANDIDATES",
                    "没有候选企业，无需征求意见",
                ));
            }
            let mut tx = self.db().begin().await?;
            let cycle = store::get_cycle(&mut tx, &p, y).await?;
            let settings = store::settings_version(&mut tx, &p, cycle.settings_version).await?;
            let mut names = Vec::new();
            for row in &candidates {
                for d in &settings.consulted_departments {
                    store::request_consultation(&mut tx, &row.id, d, &iso_date(deadline)).await?;
                }
                names.push(
                    store::get_enterprise(&mut tx, &row.credit_code)
                        .await?
                        .display_name,
                );
            }
            for d in &settings.consulted_departments {
                notify::enqueue(
                    &mut tx,
                    now,
                    &notice(
                        "consultation.requested",
                        &department_inbox(d),
                        d,
                        &[
                            ("department_name", d.clone()),
                            ("candidates", names.join("、")),
                            ("deadline", chinese_date(deadline)),
                        ],
                    ),
                )
                .await?;
            }
            let response = cycle_pb(&cycle);
            let record = AuditRecord::by(&c, "cycle.request_consultation", r.cycle.clone())
                .because("R-20")
                .with_detail(serde_json::json!({
                    "departments": settings.consulted_departments,
                    "deadline": iso_date(deadline),
                    "candidates": candidates.iter().map(application_resource).collect::<Vec<_>>(),
                }));
            change::commit(tx, now, &key, record, &response).await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    pub(crate) async fn selection_record_opinion(
        &self,
        request: Request<pb::RecordConsultationOpinionRequest>,
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
            let text = r.text.trim().to_string();
            if text.is_empty() || text.chars().count() > 5_000 {
                bad.push(FieldViolation::new("text", "must be 1-5000 characters"));
            }
            if r.department.trim().is_empty() {
                bad.push(FieldViolation::new("department", "is required"));
            }
            if !bad.is_empty() {
                return Err(Error::invalid_fields(bad));
            }
            if !(c.role == Role::Department && c.org.as_deref() == Some(r.department.as_str())) {
                return Err(Error::permission_denied(
                    "a department gives its own opinion (role department, org = the department)",
                ));
            }
            let key = RequestKey::new("RecordConsultationOpinion", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(self.db(), &key).await? {
                return Ok(done);
            }
            let now = self.now();
            let mut tx = self.db().begin().await?;
            let mut row =
                store::get_application(&mut tx, &ApplicationRow::key(&p, y, code.as_str())).await?;
            let mut asked = store::consultations_of(&mut tx, &row.id)
                .await?
                .into_iter()
                .find(|x| x.department == r.department)
                .ok_or_else(|| {
                    refused(Explanation::new(
                        "R-20",
                        "NOT_CONSULTED",
                        format!("未就该申报征求{}的意见", r.department),
                    ))
                })?;
            if stage_of(&row)? != Stage::Candidate || !asked.opinion.is_empty() {
                return Err(refused(Explanation::new(
                    "R-20",
                    "CONSULTATION_CLOSED",
                    "该意见已经提交，或申报已不在征求意见阶段",
                )));
            }
            asked.opinion = opinion.to_string();
            asked.text = text.clone();
            // a late answer is recorded and marked late.
            asked.late = qaward_kit::convert::parse_iso_date(&asked.deadline)
                .is_some_and(|d| china_date(unix_micros(now)) > d);
            store::save_consultation(&mut tx, &asked, Some(unix_micros(now))).await?;
            if opinion == "OBJECT" {
                let why = Explanation::new(
                    "R-20",
                    "OBJECTION",
                    format!("{}提出异议：{text}，待评选委员会办公室决定", r.department),
                )
                .with("department", &r.department);
                decide(&mut row, Stage::Candidate, &why, unix_micros(now));
                store::save_application(&mut tx, &row).await?;
            }
            let response = application_pb(&mut tx, &row).await?;
            let record = AuditRecord::by(
                &c,
                "application.consultation_opinion",
                response.name.clone(),
            )
            .because("R-20")
            .with_detail(serde_json::json!({ "department": r.department, "opinion": opinion }));
            change::commit(tx, now, &key, record, &response).await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    pub(crate) async fn selection_decide_objection(
        &self,
        request: Request<pb::DecideObjectionRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let (p, y, code) = application_name(&r.name, "name")?;
            c.require_programme(&p, &[Role::Office])?;
            let mut bad = Vec::new();
            let reason = line(&r.reason, "reason", 2_000, &mut bad);
            if r.department.trim().is_empty() {
                bad.push(FieldViolation::new("department", "is required"));
            }
            if !bad.is_empty() {
                return Err(Error::invalid_fields(bad));
            }
            let key = RequestKey::new("DecideObjection", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(self.db(), &key).await? {
                return Ok(done);
            }
            let now = self.now();
            let mut tx = self.db().begin().await?;
            let mut row =
                store::get_application(&mut tx, &ApplicationRow::key(&p, y, code.as_str())).await?;
            let mut objection = store::consultations_of(&mut tx, &row.id)
                .await?
                .into_iter()
                .find(|x| {
                    x.department == r.department && x.opinion == "OBJECT" && x.decision.is_empty()
                })
                .ok_or_else(|| {
                    refused(Explanation::new(
                        "R-20",
                        "NO_OBJECTION",
                        format!("{}没有待决定的异议", r.department),
                    ))
                })?;
            objection.decision = if r.upheld { "UPHELD" } else { "DISMISSED" }.to_string();
            objection.decision_reason = reason.clone();
            store::save_consultation(&mut tx, &objection, None).await?;
            if r.upheld {
                move_by(
                    &mut tx,
                    &c,
                    now,
                    &mut row,
                    &Step::Disqualify {
                        rule: "R-20",
                        reason: format!("{}的异议成立：{reason}", r.department),
                    },
                )
                .await?;
            } else {
                let why = Explanation::new(
                    "R-20",
                    "OBJECTION_DISMISSED",
                    format!(
                        "{}的异议经评选委员会办公室研究不予采纳：{reason}",
                        r.department
                    ),
                );
                decide(&mut row, Stage::Candidate, &why, unix_micros(now));
                store::save_application(&mut tx, &row).await?;
            }
            let response = application_pb(&mut tx, &row).await?;
            let record = AuditRecord::by(&c, "application.decide_objection", response.name.clone())
                .because("R-20")
                .with_detail(serde_json::json!({ "department": r.department, "upheld": r.upheld, "reason": reason }));
            change::commit(tx, now, &key, record, &response).await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    pub(crate) async fn selection_open_notice(
        &self,
        request: Request<pb::OpenPublicNoticeRequest>,
    ) -> Result<Response<pb::PublicNotice>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let (p, y) = cycle_id(&r.cycle, "cycle")?;
            c.require_programme(&p, &[Role::Office])?;
            let key = RequestKey::new("OpenPublicNotice", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(self.db(), &key).await? {
                return Ok(done);
            }
            let candidates = self.all_in(&p, y, Stage::Candidate).await?;
            if candidates.is_empty() {
                return Err(Error::rule("R-21", "NO_CANDIDATES", "没有候选企业可以公示"));
            }
            let now = self.now();
            let mut tx = self.db().begin().await?;
            // every consulted department answered, every objection decided.
            let mut open = Vec::new();
            for row in &candidates {
                let asked = store::consultations_of(&mut tx, &row.id).await?;
                if asked.is_empty() {
                    open.push(format!("{}（未征求意见）", application_resource(row)));
                }
                for a in asked.iter().filter(|a| {
                    a.opinion.is_empty() || (a.opinion == "OBJECT" && a.decision.is_empty())
                }) {
                    open.push(format!("{}（{}）", application_resource(row), a.department));
                }
            }
            if !open.is_empty() {
                return Err(Error::rule(
                    "R-20",
                    "CONSULTATION_PENDING",
                    format!("以下意见尚未提交或异议尚未决定：{}", open.join("、")),
                ));
            }
            let mut cycle = store::get_cycle(&mut tx, &p, y).await?;
            let settings = store::settings_version(&mut tx, &p, cycle.settings_version).await?;
            let ends = selection::notice_ends(now, &settings);
            store::insert_public_notice(&mut tx, &p, y, unix_micros(now), unix_micros(ends))
                .await
                .map_err(|_| Error::already_exists(format!("{}/publicNotice", r.cycle)))?;
            let programme = store::get_programme(&mut tx, &p).await?;
            let mut names = Vec::new();
            for row in &candidates {
                let mut row = row.clone();
                move_by(&mut tx, &c, now, &mut row, &Step::OpenPublicNotice).await?;
                names.push(
                    store::get_enterprise(&mut tx, &row.credit_code)
                        .await?
                        .display_name,
                );
            }
            cycle.state = "PUBLIC_NOTICE".to_string();
            store::set_cycle_state(&mut tx, &cycle).await?;
            let when = |t: time::OffsetDateTime| chinese_date(china_date(unix_micros(t)));
            let mut n = notice(
                "public_notice.opened",
                &candidates[0].credit_code,
                "",
                &[
                    ("programme_name", programme.display_name.clone()),
                    ("year", y.to_string()),
                    ("candidates", names.join("、")),
                    ("notice_start", when(now)),
                    ("notice_end", when(ends)),
                    ("notice_url", format!("/v1/{}/publicNotice", r.cycle)),
                ],
            );
            n.recipients = candidates
                .iter()
                .map(|row| npb::Recipient {
                    id: row.credit_code.clone(),
                    ..Default::default()
                })
                .collect();
            notify::enqueue(&mut tx, now, &n).await?;
            let response = self.notice_pb(&mut tx, &p, y).await?;
            let record = AuditRecord::by(&c, "cycle.open_public_notice", response.name.clone())
                .because("R-21")
                .with_detail(serde_json::json!({ "ends_micros": unix_micros(ends) }));
            change::commit(tx, now, &key, record, &response).await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn notice_pb(&self, conn: &mut Conn, p: &str, y: i64) -> Result<pb::PublicNotice> {
        let name = format!("programmes/{p}/cycles/{y}/publicNotice");
        let (start, end) = store::public_notice(conn, p, y)
            .await?
            .ok_or_else(|| Error::not_found(name.clone()))?;
        let mut entries = Vec::new();
        for stage in [Stage::PublicNotice, Stage::Awarded] {
            for row in store::applications_in(conn, p, y, stage.as_str()).await? {
                let e = store::get_enterprise(conn, &row.credit_code).await?;
                let k = store::candidacy(conn, &row.id).await?.unwrap_or_default();
                let dec = |v: &str| {
                    Some(qaward_proto::qaward::common::v1::Decimal {
                        value: v.to_string(),
                    })
                };
                let score = |k2: &str| k.scores[k2].as_str().and_then(dec);
                entries.push(pb::NoticeEntry {
                    application: application_resource(&row),
                    enterprise_name: e.display_name,
                    organisation_profile: row.organisation_profile.clone(),
                    composite_score: dec(&k.composite),
                    rank: k.rank as i32,
                    materials_score: score("materials"),
                    site_score: score("site"),
                    review_score: score("review"),
                    defence_score: score("defence"),
                });
            }
        }
        entries.sort_by_key(|e| e.rank);
        Ok(pb::PublicNotice {
            name,
            start_time: Some(to_timestamp(start)),
            end_time: Some(to_timestamp(end)),
            entries,
        })
    }

    pub(crate) async fn selection_get_notice(
        &self,
        request: Request<pb::GetPublicNoticeRequest>,
    ) -> Result<Response<pb::PublicNotice>, Status> {
        let run = async {
            let name = &request.get_ref().name;
            let cycle = name.strip_suffix("/publicNotice").ok_or_else(|| {
                Error::invalid("name", "must be programmes/{p}/cycles/{year}/publicNotice")
            })?;
            let (p, y) = cycle_id(cycle, "name")?;
            // Published to everyone, the public role included.
            let mut conn = self.db().pool().acquire().await?;
            self.notice_pb(&mut conn, &p, y).await
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    pub(crate) async fn selection_complain(
        &self,
        request: Request<pb::CreateComplaintRequest>,
    ) -> Result<Response<pb::Complaint>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let (p, y, code) = application_name(&r.parent, "parent")?;
            let complaint = r
                .complaint
                .as_ref()
                .ok_or_else(|| Error::invalid("complaint", "is required"))?;
            let mut bad = Vec::new();
            let text = complaint.text.trim().to_string();
            if text.is_empty() || text.chars().count() > 10_000 {
                bad.push(FieldViolation::new(
                    "complaint.text",
                    "must be 1-10000 characters: a complaint is made in writing (R-21)",
                ));
            }
            if complaint.evidence.len() > 20 {
                bad.push(FieldViolation::new(
                    "complaint.evidence",
                    "at most 20 items",
                ));
            }
            let evidence: Vec<String> = complaint
                .evidence
                .iter()
                .enumerate()
                .map(|(i, e)| line(e, &format!("complaint.evidence[{i}]"), 500, &mut bad))
                .collect();
            if !bad.is_empty() {
                return Err(Error::invalid_fields(bad));
            }
            let key = RequestKey::new("CreateComplaint", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(self.db(), &key).await? {
                return Ok(done);
            }
            let now = self.now();
            let mut tx = self.db().begin().await?;
            let row =
                store::get_application(&mut tx, &ApplicationRow::key(&p, y, code.as_str())).await?;
            let Some((start, end)) = store::public_notice(&mut tx, &p, y).await? else {
                return Err(refused(Explanation::new(
                    "R-21",
                    "NO_PUBLIC_NOTICE",
                    "公示尚未开始，不受理异议",
                )));
            };
            if stage_of(&row)? != Stage::PublicNotice {
                return Err(refused(Explanation::new(
                    "R-21",
                    "NOT_ON_NOTICE",
                    "该申报不在公示名单中",
                )));
            }
            selection::complaint_window(now, from_unix_micros(start), from_unix_micros(end))
                .map_err(refused)?;
            let stored = ComplaintRow {
                id: self.new_id(),
                application_id: row.id.clone(),
                complainant: c.subject.clone(),
                text,
                evidence,
                outcome: "PENDING".to_string(),
                investigation: String::new(),
                created_micros: unix_micros(now),
            };
            store::insert_complaint(&mut tx, &stored).await?;
            let response = complaint_pb(&r.parent, &stored);
            let record =
                AuditRecord::by(&c, "complaint.create", response.name.clone()).because("R-52");
            change::commit(tx, now, &key, record, &response).await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    pub(crate) async fn selection_list_complaints(
        &self,
        request: Request<pb::ListComplaintsRequest>,
    ) -> Result<Response<pb::ListComplaintsResponse>, Status> {
        let c = caller(&request)?;
        let run = async {
            let r = request.get_ref();
            let (p, y, code) = application_name(&r.parent, "parent")?;
            c.require_programme(&p, &[Role::Office, Role::Supervisor])?;
            let page = Page::parse(r.page_size, &r.page_token)?;
            let mut conn = self.db().pool().acquire().await?;
            let mut rows =
                store::complaints_of(&mut conn, &ApplicationRow::key(&p, y, code.as_str()), &page)
                    .await?;
            let next_page_token = page.finish(&mut rows, |x| x.id.clone());
            Ok(pb::ListComplaintsResponse {
                complaints: rows.iter().map(|x| complaint_pb(&r.parent, x)).collect(),
                next_page_token,
            })
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    pub(crate) async fn selection_resolve_complaint(
        &self,
        request: Request<pb::ResolveComplaintRequest>,
    ) -> Result<Response<pb::Complaint>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let (application, id) = r.name.rsplit_once("/complaints/").ok_or_else(|| {
                Error::invalid(
                    "name",
                    "must be …/applications/{code}/complaints/{complaint}",
                )
            })?;
            let (p, y, code) = application_name(application, "name")?;
            c.require_programme(&p, &[Role::Office])?;
            let mut bad = Vec::new();
            let investigation = r.investigation.trim().to_string();
            if investigation.is_empty() || investigation.chars().count() > 10_000 {
                bad.push(FieldViolation::new(
                    "investigation",
                    "must be 1-10000 characters",
                ));
            }
            let outcome = match pb::ComplaintOutcome::try_from(r.outcome) {
                Ok(pb::ComplaintOutcome::Substantiated) => "SUBSTANTIATED",
                Ok(pb::ComplaintOutcome::Unfounded) => "UNFOUNDED",
                _ => {
                    bad.push(FieldViolation::new(
                        "outcome",
                        "must be SUBSTANTIATED or UNFOUNDED",
                    ));
                    ""
                }
            };
            if !bad.is_empty() {
                return Err(Error::invalid_fields(bad));
            }
            let key = RequestKey::new("ResolveComplaint", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(self.db(), &key).await? {
                return Ok(done);
            }
            let now = self.now();
            let mut tx = self.db().begin().await?;
            let mut row =
                store::get_application(&mut tx, &ApplicationRow::key(&p, y, code.as_str())).await?;
            let mut complaint = store::get_complaint(&mut tx, &row.id, id)
                .await?
                .ok_or_else(|| Error::not_found(r.name.clone()))?;
            if !store::resolve_complaint(&mut tx, id, outcome, &investigation, unix_micros(now))
                .await?
            {
                return Err(Error::rule(
                    "R-52",
                    "ALREADY_RESOLVED",
                    "该异议已有处理结论",
                ));
            }
            complaint.outcome = outcome.to_string();
            complaint.investigation = investigation.clone();
            // substantiated disqualifies; unfounded keeps the candidate.
            if outcome == "SUBSTANTIATED" {
                move_by(
                    &mut tx,
                    &c,
                    now,
                    &mut row,
                    &Step::Disqualify {
                        rule: "R-21",
                        reason: format!("公示期异议经调查属实：{investigation}"),
                    },
                )
                .await?;
            }
            let enterprise = store::get_enterprise(&mut tx, &row.credit_code).await?;
            if notify::valid_recipient_id(&complaint.complainant) {
                notify::enqueue(
                    &mut tx,
                    now,
                    &notice(
                        "complaint.outcome",
                        &complaint.complainant,
                        "",
                        &[
                            ("complainant_name", complaint.complainant.clone()),
                            ("enterprise_name", enterprise.display_name.clone()),
                            (
                                "outcome",
                                if outcome == "SUBSTANTIATED" {
                                    "异议属实"
                                } else {
                                    "异议不成立"
                                }
                                .to_string(),
                            ),
                            ("reason", investigation.clone()),
                        ],
                    ),
                )
                .await?;
            }
            let response = complaint_pb(application, &complaint);
            let record = AuditRecord::by(&c, "complaint.resolve", response.name.clone())
                .because("R-52")
                .with_detail(serde_json::json!({ "outcome": outcome }));
            change::commit(tx, now, &key, record, &response).await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    pub(crate) async fn selection_committee(
        &self,
        request: Request<pb::RecordCommitteeMeetingRequest>,
    ) -> Result<Response<pb::Cycle>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let (p, y) = cycle_id(&r.name, "name")?;
            c.require_programme(&p, &[Role::Office])?;
            let mut bad = Vec::new();
            let mut units: Vec<String> = Vec::new();
            for (i, u) in r.units_present.iter().enumerate() {
                let u = line(u, &format!("units_present[{i}]"), 100, &mut bad);
                if units.contains(&u) {
                    bad.push(FieldViolation::new(
                        format!("units_present[{i}]"),
                        "is listed twice",
                    ));
                }
                units.push(u);
            }
            let mut decisions = Vec::new();
            for (i, d) in r.decisions.iter().enumerate() {
                let field = format!("decisions[{i}]");
                match application_name(&d.application, &format!("{field}.application")) {
                    Ok((ap, ay, code)) if ap == p && ay == y => {
                        if d.note.chars().count() > 2_000 {
                            bad.push(FieldViolation::new(
                                format!("{field}.note"),
                                "at most 2000 characters",
                            ));
                        }
                        decisions.push((code, d.adopted, d.note.trim().to_string()));
                    }
                    Ok(_) => bad.push(FieldViolation::new(
                        format!("{field}.application"),
                        "is not of this cycle",
                    )),
                    Err(e) => bad.extend(e.violations.clone()),
                }
            }
            let mut recusals = Vec::new();
            for (i, x) in r.recusals.iter().enumerate() {
                let field = format!("recusals[{i}]");
                let unit = line(&x.unit, &format!("{field}.unit"), 100, &mut bad);
                let reason = line(&x.reason, &format!("{field}.reason"), 500, &mut bad);
                if !units.contains(&unit) {
                    bad.push(FieldViolation::new(
                        format!("{field}.unit"),
                        "a recused unit is one of units_present",
                    ));
                }
                if application_name(&x.application, &format!("{field}.application")).is_err() {
                    bad.push(FieldViolation::new(
                        format!("{field}.application"),
                        "must name an application",
                    ));
                }
                recusals.push(serde_json::json!({
                    "unit": unit, "application": x.application, "reason": reason,
                }));
            }
            if !bad.is_empty() {
                return Err(Error::invalid_fields(bad));
            }
            let key = RequestKey::new("RecordCommitteeMeeting", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(self.db(), &key).await? {
                return Ok(done);
            }
            let now = self.now();
            let on_notice = self.all_in(&p, y, Stage::PublicNotice).await?;
            let mut tx = self.db().begin().await?;
            let mut cycle = store::get_cycle(&mut tx, &p, y).await?;
            let settings = store::settings_version(&mut tx, &p, cycle.settings_version).await?;
            selection::committee_may_decide(units.len() as u32, &settings).map_err(refused)?;
            let Some((_, end)) = store::public_notice(&mut tx, &p, y).await? else {
                return Err(Error::rule("R-21", "NO_PUBLIC_NOTICE", "候选企业尚未公示"));
            };
            let pending = store::pending_complaints(&mut tx, &p, y).await?;
            selection::committee_may_meet(now, from_unix_micros(end), pending).map_err(refused)?;
            let codes: Vec<&str> = decisions.iter().map(|(code, _, _)| code.as_str()).collect();
            let undecided: Vec<String> = on_notice
                .iter()
                .filter(|a| !codes.contains(&a.credit_code.as_str()))
                .map(application_resource)
                .collect();
            let strangers: Vec<&str> = codes
                .iter()
                .filter(|code| !on_notice.iter().any(|a| a.credit_code == **code))
                .copied()
                .collect();
            if !undecided.is_empty() || !strangers.is_empty() || on_notice.is_empty() {
                return Err(Error::rule(
                    "R-22",
                    "DECISIONS_INCOMPLETE",
                    format!(
                        "评选委员会须对每一个公示期满的候选企业作出决定；未决定：{}；不在名单：{}",
                        undecided.join("、"),
                        strangers.join("、")
                    ),
                ));
            }
            let meeting = self.new_id();
            let recusals = serde_json::Value::Array(recusals);
            store::insert_meeting(
                &mut tx,
                &meeting,
                &p,
                y,
                &units,
                &recusals,
                unix_micros(now),
            )
            .await?;
            for (code, adopted, note) in &decisions {
                let mut row =
                    store::get_application(&mut tx, &ApplicationRow::key(&p, y, code.as_str()))
                        .await?;
                store::insert_committee_decision(&mut tx, &row.id, &meeting, *adopted, note)
                    .await?;
                if !adopted {
                    move_by(
                        &mut tx,
                        &c,
                        now,
                        &mut row,
                        &Step::NotAdopted { note: note.clone() },
                    )
                    .await?;
                }
            }
            cycle.state = if decisions.iter().any(|d| d.1) {
                "DECIDED"
            } else {
                "VACANT"
            }
            .to_string();
            store::set_cycle_state(&mut tx, &cycle).await?;
            let response = cycle_pb(&cycle);
            let record = AuditRecord::by(&c, "cycle.committee_meeting", r.name.clone())
                .because("R-22")
                .with_detail(serde_json::json!({
                    "meeting": meeting, "units_present": units, "recusals": recusals,
                    "member_units": settings.committee_member_units,
                    "decisions": decisions.iter().map(|(code, a, n)| serde_json::json!({
                        "enterprise": code.as_str(), "adopted": a, "note": n,
                    })).collect::<Vec<_>>(),
                }));
            change::commit(tx, now, &key, record, &response).await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    pub(crate) async fn selection_approve(
        &self,
        request: Request<pb::RecordApprovalRequest>,
    ) -> Result<Response<pb::Cycle>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let (p, y) = cycle_id(&r.name, "name")?;
            c.require_programme(&p, &[Role::Office])?;
            let mut bad = Vec::new();
            let document = line(&r.document_number, "document_number", 100, &mut bad);
            let date = match &r.approval_date {
                Some(d) => date_from_pb(d, "approval_date")
                    .map_err(|e| bad.extend(e.violations.clone()))
                    .ok(),
                None => {
                    bad.push(FieldViolation::new("approval_date", "is required"));
                    None
                }
            };
            let (Some(date), true) = (date, bad.is_empty()) else {
                return Err(Error::invalid_fields(bad));
            };
            let key = RequestKey::new("RecordApproval", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(self.db(), &key).await? {
                return Ok(done);
            }
            let now = self.now();
            let on_notice = self.all_in(&p, y, Stage::PublicNotice).await?;
            let mut tx = self.db().begin().await?;
            let mut cycle = store::get_cycle(&mut tx, &p, y).await?;
            if cycle.state != "DECIDED" {
                return Err(Error::rule(
                    "R-23",
                    "NOT_DECIDED",
                    "评选委员会尚未作出决定，不能登记批准文件",
                )
                .with_metadata("cycle_state", cycle.state.clone()));
            }
            let programme = store::get_programme(&mut tx, &p).await?;
            let mut n = 0;
            for mut row in on_notice {
                if store::adopted(&mut tx, &row.id).await? != Some(true) {
                    continue;
                }
                n += 1;
                let certificate = selection::certificate_number(&p, y, n);
                move_by(
                    &mut tx,
                    &c,
                    now,
                    &mut row,
                    &Step::Award {
                        document: document.clone(),
                    },
                )
                .await?;
                store::insert_award(&mut tx, &row.id, &certificate, &iso_date(date), &document)
                    .await?;
                // The award bars the next applications for the ban years.
                store::add_record(
                    &mut tx,
                    &row.credit_code,
                    &p,
                    "award",
                    &iso_date(date),
                    &certificate,
                    unix_micros(now),
                )
                .await?;
                let e = store::get_enterprise(&mut tx, &row.credit_code).await?;
                notify::enqueue(
                    &mut tx,
                    now,
                    &notice(
                        "award.granted",
                        &row.credit_code,
                        &e.display_name,
                        &[
                            ("enterprise_name", e.display_name.clone()),
                            ("programme_name", programme.display_name.clone()),
                            ("year", y.to_string()),
                            ("certificate_number", certificate.clone()),
                            ("document_number", document.clone()),
                        ],
                    ),
                )
                .await?;
            }
            cycle.state = "APPROVED".to_string();
            cycle.approval_document = document.clone();
            cycle.approval_date = iso_date(date);
            store::set_cycle_state(&mut tx, &cycle).await?;
            let response = cycle_pb(&cycle);
            let record = AuditRecord::by(&c, "cycle.approve", r.name.clone())
                .because("R-23")
                .with_detail(serde_json::json!({ "document": document, "date": iso_date(date), "awards": n }));
            change::commit(tx, now, &key, record, &response).await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }
}
