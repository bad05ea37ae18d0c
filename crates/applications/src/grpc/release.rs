//! Releasing a review stage: the scores read from the scoring service, each
//! application moved on or out with its notice; a site visit stopped.

use qaward_kit::{
    Error, Result,
    audit::{self, AuditRecord},
    auth::{Caller, Role},
    change,
    change::Done,
    clock::unix_micros,
    db::Conn,
    idempotency::RequestKey,
    notify,
};
use qaward_proto::qaward::applications::v1 as pb;

use crate::{
    domain::{
        Explanation, refused,
        review::{self, GroupState, ReviewStage},
        stage::{self, Stage},
    },
    store::{self, ApplicationRow, decide, stage_of},
};

use super::{
    ApplicationsApi,
    access::load,
    convert::{application_pb, decimal, line, notice, scoring_stage, stage_from_pb},
    names::{application_name, application_resource, cycle_id},
};

impl ApplicationsApi {
    pub(super) async fn review_release(
        &self,
        c: &Caller,
        r: pb::ReleaseReviewStageRequest,
    ) -> Result<pb::ReleaseReviewStageResponse> {
        let (p, y) = cycle_id(&r.cycle, "cycle")?;
        c.acts_for(&p)?;
        let stage = match stage_from_pb(r.stage) {
            Some(s @ (ReviewStage::Materials | ReviewStage::Site)) => s,
            Some(ReviewStage::Defence) => {
                return Err(Error::invalid(
                    "stage",
                    "the defence score enters the composite with the candidates (R-17); release MATERIALS or SITE",
                ));
            }
            None => return Err(Error::invalid("stage", "must be MATERIALS or SITE")),
        };
        let key = RequestKey::new("ReleaseReviewStage", c, &r.request_id, &r)?;
        // A retry is answered before the state it reads below has moved on (AIP-155).
        if let Some(done) = change::recall(self.db(), &key).await? {
            return Ok(done);
        }
        let mut conn = self.db().pool().acquire().await?;
        let cycle = store::get_cycle(&mut conn, &p, y).await?;
        let settings = store::settings_version(&mut conn, &p, cycle.settings_version).await?;
        let running = self.in_review(&mut conn, &p, y, stage).await?;
        drop(conn);
        review::may_release(stage, running.len(), &[]).map_err(refused)?;
        let results = self.scoring_results(c, &p, y, &settings).await?;
        // Every application of the stage must have scoring's decision: a group that has
        // not signed its consensus holds the release back.
        let mut steps = Vec::new();
        let mut waiting = Vec::new();
        for row in &running {
            let resource = application_resource(row);
            let result = results.results.iter().find(|x| x.application == resource);
            let materials =
                result.and_then(|x| Some((x.materials_passed?, decimal(&x.materials_score)?)));
            let reviewed =
                result.and_then(|x| Some((x.in_final_selection?, decimal(&x.review_score)?)));
            match review::result_steps(stage, materials, reviewed, &settings) {
                Some(s) => steps.push((row.id.clone(), s)),
                None => waiting.push(resource),
            }
        }
        review::may_release(stage, running.len(), &waiting).map_err(refused)?;
        self.release_in_scoring(c, &p, y, scoring_stage(stage))
            .await?;

        let now = self.now();
        self.change(key, |mut tx| async move {
            let programme = store::get_programme(&mut tx, &p).await?;
            let mut moved = Vec::new();
            for (id, s) in steps {
                let mut row = store::get_application(&mut tx, &id).await?;
                let mut why = Vec::new();
                for step in &s {
                    let d = stage::apply(stage_of(&row)?, step).map_err(refused)?;
                    decide(&mut row, d.to, &d.why, unix_micros(now));
                    why.push(d.why);
                }
                store::save_application(&mut tx, &row).await?;
                let enterprise = store::get_enterprise(&mut tx, &row.credit_code).await?;
                let resource = application_resource(&row);
                for (step, w) in s.iter().zip(&why) {
                    let record = AuditRecord::by(
                        c,
                        &format!("application.{}", step.name()),
                        resource.clone(),
                    )
                    .because(w.rule)
                    .with_detail(serde_json::json!({ "message": w.message, "inputs": w.inputs }));
                    audit::append(&mut tx, now, &record).await?;
                }
                let last = why.last().cloned().unwrap_or_else(|| {
                    Explanation::new(stage.rule(), "STAGE_CHANGED", String::new())
                });
                self.result_notice(
                    &mut tx,
                    now,
                    &row,
                    &enterprise,
                    &programme.display_name,
                    &last,
                )
                .await?;
                moved.push(application_pb(&mut tx, &row).await?);
            }
            let response = pb::ReleaseReviewStageResponse {
                applications: moved,
                audit_checkpoints: Vec::new(),
            };
            let record = AuditRecord::by(
                c,
                "review_stage.release",
                format!("{}/stages/{}", r.cycle, stage.as_str().to_lowercase()),
            )
            .because(if stage == ReviewStage::Materials {
                "R-13"
            } else {
                "R-16"
            });
            Ok(Done::new(tx, record, response))
        })
        .await
    }

    /// The notice a released result sends: passed (prepare for the defence), failed (the
    /// feedback report, to the applicant and a copy to its recommending unit, R-13), or the
    /// final-selection decision.
    pub(super) async fn result_notice(
        &self,
        tx: &mut Conn,
        now: time::OffsetDateTime,
        row: &ApplicationRow,
        enterprise: &store::EnterpriseRow,
        programme_name: &str,
        why: &Explanation,
    ) -> Result<()> {
        let name = enterprise.display_name.clone();
        let input = |k: &str| why.inputs.get(k).cloned().unwrap_or_default();
        let stage = stage_of(row)?;
        let n = match stage {
            Stage::MaterialsPassed => notice(
                "materials_review.passed",
                &row.credit_code,
                &name,
                &[
                    ("enterprise_name", name.clone()),
                    ("programme_name", programme_name.to_string()),
                    ("year", row.year.to_string()),
                    ("materials_score", input("materials_score")),
                    ("threshold", input("threshold")),
                ],
            ),
            Stage::MaterialsFailed => {
                let mut n = notice(
                    "materials_review.failed",
                    &row.credit_code,
                    &name,
                    &[
                        ("enterprise_name", name.clone()),
                        ("programme_name", programme_name.to_string()),
                        ("year", row.year.to_string()),
                        ("materials_score", input("materials_score")),
                        ("threshold", input("threshold")),
                        (
                            "report_url",
                            format!(
                                "/v1/{}",
                                qaward_proto::names::feedback_report(&application_resource(row))
                            ),
                        ),
                    ],
                );
                // the feedback report is copied to the recommending unit.
                n.recipients
                    .push(qaward_proto::qaward::notifications::v1::Recipient {
                        id: enterprise.recommending_unit.clone(),
                        ..Default::default()
                    });
                n
            }
            Stage::FinalSelection | Stage::NotSelected => notice(
                "results.final_selection",
                &row.credit_code,
                &name,
                &[
                    ("enterprise_name", name.clone()),
                    ("review_score", input("review_score")),
                    ("threshold", input("threshold")),
                    (
                        "outcome",
                        if stage == Stage::FinalSelection {
                            "进入终选"
                        } else {
                            "未进入终选"
                        }
                        .to_string(),
                    ),
                ],
            ),
            _ => return Ok(()),
        };
        notify::enqueue(tx, now, &n).await.map(|_| ())
    }

    pub(super) async fn review_stop_site_visit(
        &self,
        c: &Caller,
        r: pb::StopSiteVisitRequest,
    ) -> Result<pb::Application> {
        let (p, y, code) = application_name(&r.name, "name")?;
        let mut bad = Vec::new();
        let finding = line(&r.finding, "finding", 2_000, &mut bad);
        if !bad.is_empty() {
            return Err(Error::invalid_fields(bad));
        }
        let key = RequestKey::new("StopSiteVisit", c, &r.request_id, &r)?;
        let now = self.now();
        self.change(key, |mut tx| async move {
            let mut l = load(&mut tx, &p, y, &code).await?;
            // Art. 16(5)3: any reviewer of the site group that visits this applicant — not only
            // its leader — stops the visit on finding serious mismatch or fraud.
            let group = store::group_of(&mut tx, &l.row.id, ReviewStage::Site.as_str())
                .await?
                .filter(|g| g.state == GroupState::Started);
            let sits = group.as_ref().is_some_and(|g| {
                c.role == Role::Reviewer
                    && g.members
                        .iter()
                        .any(|(m, _)| m.eq_ignore_ascii_case(&c.subject))
            });
            if !sits {
                return Err(Error::permission_denied(
                    "only a reviewer of the site group visiting this applicant stops the visit (R-15, Art. 16(5))",
                ));
            }
            let current = stage_of(&l.row)?;
            let stopped = store::site_stop(&mut tx, &l.row.id).await?.is_some();
            review::may_stop_site_visit(current, stopped).map_err(refused)?;
            store::insert_site_stop(&mut tx, &l.row.id, &finding, &c.subject, unix_micros(now))
                .await?;
            // The stop freezes the group's sheets of this applicant until the office decides.
            if let Some(assignment) = site_assignment(group.as_ref(), &l.row.id) {
                crate::follow::hold_sheets(&mut tx, now, assignment, true, &finding).await?;
            }
            let why = Explanation::new(
                "R-15",
                "SITE_VISIT_STOPPED",
                format!("现场评审发现严重不符或弄虚作假，已中止：{finding}"),
            );
            decide(&mut l.row, current, &why, unix_micros(now));
            store::save_application(&mut tx, &l.row).await?;
            notify::enqueue(
                &mut tx,
                now,
                &notice(
                    "site_visit.stopped",
                    &format!("office.{p}"),
                    "",
                    &[
                        ("enterprise_name", l.enterprise.display_name.clone()),
                        ("reason", finding.clone()),
                    ],
                ),
            )
            .await?;
            let response = application_pb(&mut tx, &l.row).await?;
            let record = AuditRecord::by(c, "application.stop_site_visit", response.name.clone())
                .because("R-15")
                .with_detail(serde_json::json!({ "finding": finding }));
            Ok(Done::new(tx, record, response))
        })
        .await
    }

    /// Art. 16(5)3: the office finds a stop unfounded (`TransitionApplication` to SITE_VISIT
    /// with its reason): the stop is resolved on the record, the visit resumes, and the group's
    /// sheets are free again.
    pub(super) async fn review_resume_site_visit(
        &self,
        c: &Caller,
        r: &pb::TransitionApplicationRequest,
        p: &str,
        y: i64,
        code: &qaward_kit::cn::CreditCode,
        reason: &str,
    ) -> Result<pb::Application> {
        let key = RequestKey::new("TransitionApplication", c, &r.request_id, r)?;
        let now = self.now();
        self.change(key, |mut tx| async move {
            let mut l = load(&mut tx, p, y, code).await?;
            let finding = store::site_stop(&mut tx, &l.row.id).await?;
            review::may_resume_site_visit(stage_of(&l.row)?, finding.is_some()).map_err(refused)?;
            store::resolve_site_stop(&mut tx, &l.row.id, reason, unix_micros(now)).await?;
            let group = store::group_of(&mut tx, &l.row.id, ReviewStage::Site.as_str()).await?;
            if let Some(assignment) = site_assignment(group.as_ref(), &l.row.id) {
                crate::follow::hold_sheets(&mut tx, now, assignment, false, reason).await?;
            }
            let why = Explanation::new(
                "R-15",
                "SITE_VISIT_RESUMED",
                format!("经评选委员会办公室核实，中止现场评审的情况不成立，现场评审继续：{reason}"),
            );
            decide(&mut l.row, Stage::SiteVisit, &why, unix_micros(now));
            store::save_application(&mut tx, &l.row).await?;
            let response = application_pb(&mut tx, &l.row).await?;
            let record = AuditRecord::by(c, "application.resume_site_visit", response.name.clone())
                .because("R-15")
                .with_detail(serde_json::json!({ "finding": finding, "reason": reason }));
            Ok(Done::new(tx, record, response))
        })
        .await
    }
}

/// The scoring assignment of `application` in its site group, once the group has started.
fn site_assignment<'a>(
    group: Option<&'a store::ReviewGroupRow>,
    application: &str,
) -> Option<&'a str> {
    group?
        .applications
        .iter()
        .find(|(a, assignment)| a == application && !assignment.is_empty())
        .map(|(_, assignment)| assignment.as_str())
}
