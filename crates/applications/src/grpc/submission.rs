//! An application through its stages (the stage table, docs/stages.md): submission, withdrawal,
//! the recommending unit's sign-off, the office's transitions and disqualification.

use qaward_kit::{
    Error, Result,
    audit::AuditRecord,
    auth::{Caller, Role},
    change::Done,
    clock::unix_micros,
    cn::CreditCode,
    convert::chinese_date,
    error::FieldViolation,
    idempotency::RequestKey,
    notify,
};
use qaward_proto::qaward::{applications::v1 as pb, notifications::v1 as npb};

use crate::{
    domain::{
        Explanation, intake, refused,
        stage::{self, Stage, Step},
    },
    store::{self, RecommendationRow, decide, stage_of},
};

use super::{
    ApplicationsApi,
    access::{load, only_the_enterprise},
    convert::{application_pb, china_date, line, notice, opinion_field},
    cycles::eligibility_of,
    disqualify,
    names::{application_name, department_inbox},
};

impl ApplicationsApi {
    pub(super) async fn intake_submit(
        &self,
        c: &Caller,
        r: pb::SubmitApplicationRequest,
    ) -> Result<pb::Application> {
        let (p, y, code) = application_name(&r.name, "name")?;
        only_the_enterprise(c, code.as_str())?;
        let key = RequestKey::new("SubmitApplication", c, &r.request_id, &r)?;
        let now = self.now();
        self.change(key, |mut tx| async move {
            let mut l = load(&mut tx, &p, y, &code).await?;
            let settings = store::settings_version(&mut tx, &p, l.cycle.settings_version).await?;
            let ineligible = eligibility_of(&mut tx, &code, &l.enterprise, &l.cycle).await?;
            let files = store::evidence_of(&mut tx, &l.row.id).await?.len();
            let problems = intake::submission_problems(
                now,
                qaward_kit::clock::from_unix_micros(l.cycle.deadline_micros),
                ineligible,
                intake::Materials {
                    application_form: &l.row.application_form,
                    profile: &l.row.organisation_profile,
                    self_assessment: &l.row.self_assessment,
                    evidence_files: files,
                },
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
            // Art. 13(1): each required department is asked for its opinion too.
            for dept in &settings.required_departments {
                notify::enqueue(
                    &mut tx,
                    now,
                    &notice(
                        "department_opinion.requested",
                        &department_inbox(dept),
                        dept,
                        &[
                            ("unit_name", dept.clone()),
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
            }
            let record =
                AuditRecord::by(c, "application.submit", response.name.clone()).because(d.why.rule);
            Ok(Done::new(tx, record, response))
        })
        .await
    }

    pub(super) async fn intake_withdraw(
        &self,
        c: &Caller,
        r: pb::WithdrawApplicationRequest,
    ) -> Result<pb::Application> {
        let (p, y, code) = application_name(&r.name, "name")?;
        only_the_enterprise(c, code.as_str())?;
        let mut bad = Vec::new();
        let reason = line(&r.reason, "reason", 500, &mut bad);
        if !bad.is_empty() {
            return Err(Error::invalid_fields(bad));
        }
        self.step(
            c,
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
    }

    pub(super) async fn intake_sign(
        &self,
        c: &Caller,
        r: pb::SignRecommendationRequest,
    ) -> Result<pb::Application> {
        let (p, y, code) = application_name(&r.name, "name")?;
        let mut bad = Vec::new();
        let opinion = opinion_field(r.opinion, &mut bad);
        let reasons = r.reasons.trim().to_string();
        if reasons.is_empty() || reasons.chars().count() > 2_000 {
            bad.push(FieldViolation::new("reasons", "must be 1-2000 characters"));
        }
        let mut attested: Vec<String> = Vec::new();
        for (i, a) in r.attested.iter().enumerate() {
            match pb::Condition::try_from(*a) {
                Ok(pb::Condition::Unspecified) | Err(_) => bad.push(FieldViolation::new(
                    format!("attested[{i}]"),
                    "must name a condition of Art. 2, Art. 11 or Art. 12(1)",
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
        let key = RequestKey::new("SignRecommendation", c, &r.request_id, &r)?;
        let now = self.now();
        self.change(key, |mut tx| async move {
            let mut l = load(&mut tx, &p, y, &code).await?;
            let settings = store::settings_version(&mut tx, &p, l.cycle.settings_version).await?;
            // The recommending unit signs as itself; a required department as its org.
            let required = intake::required_signers(
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
                let missing = intake::missing_opinions(&required, &signed);
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
                AuditRecord::by(c, "application.sign_recommendation", response.name.clone())
                    .because("R-05")
                    .with_detail(serde_json::json!({ "unit": unit, "opinion": opinion }));
            Ok(Done::new(tx, record, response))
        })
        .await
    }

    pub(super) async fn intake_transition(
        &self,
        c: &Caller,
        r: pb::TransitionApplicationRequest,
    ) -> Result<pb::Application> {
        let (p, y, code) = application_name(&r.name, "name")?;
        c.acts_for(&p)?;
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
                return self.disqualify(c, &r, &p, y, &code, &reason).await;
            }
            // A stopped visit found unfounded resumes (Art. 16(5)3).
            Ok(pb::ApplicationStage::SiteVisit) => {
                return self
                    .review_resume_site_visit(c, &r, &p, y, &code, &reason)
                    .await;
            }
            Ok(pb::ApplicationStage::Unspecified) | Err(_) => {
                return Err(Error::invalid("to_stage", "must name a stage"));
            }
            Ok(other) => {
                let how = match other {
                    pb::ApplicationStage::MaterialsReview | pb::ApplicationStage::Defence => {
                        "StartReviewGroup"
                    }
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
            c,
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
    }

    /// The office confirms what the site group found: the applicant is disqualified, the
    /// finding is kept as a fraud record that bars it for the programme's ban years, and
    /// it is told with the rule and the reason.
    pub(super) async fn disqualify(
        &self,
        c: &Caller,
        r: &pb::TransitionApplicationRequest,
        p: &str,
        y: i64,
        code: &CreditCode,
        reason: &str,
    ) -> Result<pb::Application> {
        let key = RequestKey::new("TransitionApplication", c, &r.request_id, r)?;
        let now = self.now();
        self.change(key, |mut tx| async move {
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
            // A site-visit stop is a finding of fraud or serious mismatch: it bars (Art. 12(2)).
            disqualify::consequences(&mut tx, now, &l.row, "R-15", &full, true).await?;
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
            Ok(Done::new(tx, record, response))
        })
        .await
    }

    /// One step of the stage table on one application, with its audit record.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn step<M: prost::Message>(
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
        let now = self.now();
        self.change(key, |mut tx| async move {
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
            Ok(Done::new(tx, record, response))
        })
        .await
    }
}
