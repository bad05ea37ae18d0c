//! Candidates and the departments' consultation: fixing the candidates, asking the
//! departments, their opinions and the office's decisions on objections.

use qaward_kit::{
    Error, Result,
    audit::{self, AuditRecord},
    auth::{Caller, Role},
    change,
    change::Done,
    clock::unix_micros,
    convert::{chinese_date, date_from_pb, iso_date},
    db::Conn,
    error::FieldViolation,
    idempotency::RequestKey,
    notify,
};
use qaward_proto::qaward::{applications::v1 as pb, scoring::v1 as spb};

use crate::{
    domain::{
        Explanation,
        cycle::CycleState,
        refused,
        selection::{self, Ranked, Ranking, TieResolution},
        stage::{self, Stage, Step},
    },
    store::{self, ApplicationRow, decide, stage_of},
};

use super::{
    ApplicationsApi,
    convert::{application_pb, china_date, cycle_pb, decimal, line, notice, opinion_field},
    disqualify,
    names::{application_name, application_resource, cycle_id, department_inbox},
};

/// Applies one step of the stage table to `row` and appends its audit record.
pub(super) async fn move_by(
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

impl ApplicationsApi {
    /// The applications of a cycle in `stage`, read on their own connection.
    pub(super) async fn all_in(
        &self,
        p: &str,
        y: i64,
        stage: Stage,
    ) -> Result<Vec<ApplicationRow>> {
        let mut conn = self.db().pool().acquire().await?;
        store::applications_in(&mut conn, p, y, stage.as_str()).await
    }

    pub(super) async fn selection_fix(
        &self,
        c: &Caller,
        r: pb::FixCandidatesRequest,
    ) -> Result<pb::FixCandidatesResponse> {
        let (p, y) = cycle_id(&r.cycle, "cycle")?;
        c.acts_for(&p)?;
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
        let key = RequestKey::new("FixCandidates", c, &r.request_id, &r)?;
        // A retry is answered before the state it reads below has moved on (AIP-155).
        if let Some(done) = change::recall(self.db(), &key).await? {
            return Ok(done);
        }
        let mut conn = self.db().pool().acquire().await?;
        let cycle = store::get_cycle(&mut conn, &p, y).await?;
        let settings = store::settings_version(&mut conn, &p, cycle.settings_version).await?;
        drop(conn);
        let finalists = self.all_in(&p, y, Stage::FinalSelection).await?;
        selection::has_finalists(finalists.len()).map_err(refused)?;
        // The defence scores enter the composite now: release them, then rank.
        self.release_in_scoring(c, &p, y, spb::Stage::Defence)
            .await?;
        let results = self.scoring_results(c, &p, y, &settings).await?;
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
        selection::all_defended(&missing).map_err(refused)?;
        let verdicts = selection::fix_candidates(&ranked, &ties, &settings).map_err(refused)?;

        let now = self.now();
        self.change(key, |mut tx| async move {
            let mut moved = Vec::new();
            let mut any = false;
            for v in &verdicts {
                let (_, _, code) = application_name(&v.application, "application")?;
                let mut row =
                    store::get_application(&mut tx, &ApplicationRow::key(&p, y, code.as_str()))
                        .await?;
                move_by(
                    &mut tx,
                    c,
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
                cycle.state = CycleState::Vacant;
                store::set_cycle_state(&mut tx, &cycle).await?;
            }
            let response = pb::FixCandidatesResponse {
                cycle: Some(cycle_pb(&cycle)),
                applications: moved,
                vacant: !any,
            };
            let record = AuditRecord::by(c, "cycle.fix_candidates", r.cycle.clone())
                .because("R-17")
                .with_detail(serde_json::json!({
                    "vacant": !any,
                    "ties": ties.iter().map(|t| serde_json::json!({
                        "application": t.application, "candidate": t.candidate, "reason": t.reason,
                    })).collect::<Vec<_>>(),
                }));
            Ok(Done::new(tx, record, response))
        })
        .await
    }

    pub(super) async fn selection_request_consultation(
        &self,
        c: &Caller,
        r: pb::RequestConsultationRequest,
    ) -> Result<pb::Cycle> {
        let (p, y) = cycle_id(&r.cycle, "cycle")?;
        c.require_programme(&p, &[Role::Office])?;
        let deadline = match &r.deadline {
            Some(d) => date_from_pb(d, "deadline")?,
            None => return Err(Error::invalid("deadline", "is required")),
        };
        let key = RequestKey::new("RequestConsultation", c, &r.request_id, &r)?;
        // A retry is answered before the state it reads below has moved on (AIP-155).
        if let Some(done) = change::recall(self.db(), &key).await? {
            return Ok(done);
        }
        let now = self.now();
        if deadline < china_date(unix_micros(now)) {
            return Err(Error::invalid("deadline", "must not be in the past"));
        }
        let candidates = self.all_in(&p, y, Stage::Candidate).await?;
        selection::may_consult(candidates.len()).map_err(refused)?;
        self.change(key, |mut tx| async move {
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
            let record = AuditRecord::by(c, "cycle.request_consultation", r.cycle.clone())
                .because("R-20")
                .with_detail(serde_json::json!({
                    "departments": settings.consulted_departments,
                    "deadline": iso_date(deadline),
                    "candidates": candidates.iter().map(application_resource).collect::<Vec<_>>(),
                }));
            Ok(Done::new(tx, record, response))
        })
        .await
    }

    pub(super) async fn selection_record_opinion(
        &self,
        c: &Caller,
        r: pb::RecordConsultationOpinionRequest,
    ) -> Result<pb::Application> {
        let (p, y, code) = application_name(&r.name, "name")?;
        let mut bad = Vec::new();
        let opinion = opinion_field(r.opinion, &mut bad);
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
        let key = RequestKey::new("RecordConsultationOpinion", c, &r.request_id, &r)?;
        let now = self.now();
        self.change(key, |mut tx| async move {
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
            let record =
                AuditRecord::by(c, "application.consultation_opinion", response.name.clone())
                    .because("R-20")
                    .with_detail(
                        serde_json::json!({ "department": r.department, "opinion": opinion }),
                    );
            Ok(Done::new(tx, record, response))
        })
        .await
    }

    pub(super) async fn selection_decide_objection(
        &self,
        c: &Caller,
        r: pb::DecideObjectionRequest,
    ) -> Result<pb::Application> {
        let (p, y, code) = application_name(&r.name, "name")?;
        c.acts_for(&p)?;
        let mut bad = Vec::new();
        let reason = line(&r.reason, "reason", 2_000, &mut bad);
        if r.department.trim().is_empty() {
            bad.push(FieldViolation::new("department", "is required"));
        }
        if !bad.is_empty() {
            return Err(Error::invalid_fields(bad));
        }
        if r.fraud && !r.upheld {
            return Err(Error::invalid(
                "fraud",
                "only an upheld objection finds fraud (Art. 12(2))",
            ));
        }
        let key = RequestKey::new("DecideObjection", c, &r.request_id, &r)?;
        let now = self.now();
        self.change(key, |mut tx| async move {
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
                let finding = format!("{}的异议成立：{reason}", r.department);
                move_by(
                    &mut tx,
                    c,
                    now,
                    &mut row,
                    &Step::Disqualify {
                        rule: "R-20",
                        reason: finding.clone(),
                    },
                )
                .await?;
                disqualify::consequences(&mut tx, now, &row, "R-20", &finding, r.fraud).await?;
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
            let record = AuditRecord::by(c, "application.decide_objection", response.name.clone())
                .because("R-20")
                .with_detail(serde_json::json!({ "department": r.department, "upheld": r.upheld, "fraud": r.fraud, "reason": reason }));
            Ok(Done::new(tx, record, response))
        })
        .await
    }
}
