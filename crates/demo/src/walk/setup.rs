//! The programme, its notice, the registry and the applications: the cycle up to the reviews.

use qaward_kit::auth::Role;
use qaward_proto::qaward::{applications::v1 as pb, common::v1::Date, reviewers::v1 as rpb};
use time::Duration;
use tonic::Code;

use crate::{
    call,
    sample::{self, Plan},
};

use super::{
    Failure, UNIT, Walk, already_there, date_of, decimal, failed, inputs, reason_and_rule, rid,
    stage_name,
};

impl Walk {
    /// The award programme (Yunyang's settings), the shared registry and the relations that
    /// force recusals.
    pub async fn set_up(&mut self) -> Result<(), Failure> {
        let p = self.plan.programme.clone();
        self.say.heading(&format!(
            "{} — through the gateway at {} ({:?})",
            self.plan.display_name, self.door.address, self.door.protocol
        ));
        // Requests repeat by id, so a second run would be answered from the first; look first.
        let exists = call!(
            self.door.apps,
            get_programme,
            &self.office,
            pb::GetProgrammeRequest {
                name: format!("programmes/{p}")
            }
        );
        match exists {
            Err(s) if s.code() == Code::NotFound => {}
            Ok(_) => return Err(already_there(&p)),
            Err(s) => return Err(failed("look for the programme")(s)),
        }
        let programme = call!(
            self.door.apps,
            create_programme,
            &self.office,
            pb::CreateProgrammeRequest {
                programme: Some(pb::Programme {
                    display_name: self.plan.display_name.clone(),
                    ..Default::default()
                }),
                programme_id: p.clone(),
                request_id: rid(&format!("demo-{p}-programme")),
            }
        )
        .map_err(failed("create the programme"))?;
        self.clock.observe(&programme.create_time);
        // One owner: the award programme is created here only; the applications service
        // makes its tenant in the reviewers service on the first draw.
        let mut settings = programme.settings.unwrap_or_default();
        if settings.division_codes != [self.plan.division] {
            settings.division_codes = vec![self.plan.division.to_string()];
            let updated = call!(
                self.door.apps,
                update_programme_settings,
                &self.office,
                pb::UpdateProgrammeSettingsRequest {
                    name: format!("programmes/{p}"),
                    settings: Some(settings.clone()),
                    request_id: rid(&format!("demo-{p}-settings")),
                }
            )
            .map_err(failed("set the programme's county"))?;
            settings = updated.settings.unwrap_or_default();
        }
        self.say.line(&format!(
            "programme {p}: settings v{} — materials pass at {} (R-13), review = {} × materials + {} × site (R-16), final selection at {}, candidates at {} (at most {}, R-17), public notice {} days (R-21), committee of {} member units, a quorum above two thirds (R-22); county {}",
            settings.version,
            decimal(&settings.materials_threshold),
            decimal(&settings.materials_weight),
            decimal(&settings.site_weight),
            decimal(&settings.final_selection_threshold),
            decimal(&settings.candidate_threshold),
            settings.max_candidates,
            settings.public_notice_days,
            settings.committee_member_units,
            settings.division_codes.join(","),
        ));
        self.settings = Some(settings);

        let report = call!(
            self.door.reviewers,
            import_reviewers,
            &self.office,
            rpb::ImportReviewersRequest {
                format: rpb::ImportFormat::Csv as i32,
                encoding: rpb::TextEncoding::Utf8 as i32,
                content: sample::registry_csv(),
                request_id: rid(&format!("demo-{p}-registry")),
            }
        )
        .map_err(failed("import the reviewer registry"))?;
        self.say.line(&format!(
            "reviewer registry imported from the office's spreadsheet: {} new, {} updated, {} unchanged, {} rows rejected",
            report.created,
            report.updated,
            report.unchanged,
            report.rejected.len()
        ));
        let reviewers = sample::reviewers();
        let yunyang = Plan::yunyang("yunyang").codes();
        for (r, e, kind, note) in sample::relations() {
            let made = call!(
                self.door.reviewers,
                create_relation,
                &self.office,
                rpb::CreateRelationRequest {
                    parent: format!("reviewers/{}", reviewers[r].certificate),
                    relation: Some(rpb::Relation {
                        enterprise_code: yunyang[e].clone(),
                        kind: kind as i32,
                        start_date: Some(Date {
                            year: 2025,
                            month: 1,
                            day: 1
                        }),
                        note: note.to_string(),
                        ..Default::default()
                    }),
                    request_id: rid(&format!("demo-relation-{r}-{e}")),
                }
            );
            match made {
                Ok(_) => {}
                Err(s) if s.code() == Code::AlreadyExists => {}
                Err(s) => return Err(failed("declare a relation")(s)),
            }
            self.say.line(&format!(
                "declared: {} ({}) — {}: {note}",
                reviewers[r].name,
                reviewers[r].certificate,
                kind.as_str_name().trim_start_matches("RELATION_KIND_")
            ));
        }
        Ok(())
    }

    /// The notice that opens the year's cycle, its deadline a month from the server's today,
    /// or the year's last day when that comes first (R-01: a year's notice closes in that year).
    pub async fn open_cycle(&mut self) -> Result<(), Failure> {
        let p = self.plan.programme.clone();
        let year = self.clock.date(0).year;
        let year_end = time::Date::from_calendar_date(year, time::Month::December, 31)
            .map(|d| {
                d.with_hms(23, 0, 0)
                    .unwrap()
                    .assume_offset(qaward_kit::clock::CHINA)
            })
            .map_err(|e| Failure(format!("the year {year}: {e}")))?;
        let deadline = (self.clock.now() + Duration::days(30)).min(year_end);
        let cycle = call!(
            self.door.apps,
            create_cycle,
            &self.office,
            pb::CreateCycleRequest {
                parent: format!("programmes/{p}"),
                cycle: Some(pb::Cycle {
                    year,
                    notice_title: format!("关于开展{year}年度{}评选工作的通知", self.plan.display_name),
                    conditions: "在本县登记注册并纳税、具有独立法人资格、连续经营3年以上，近3年无重大质量、安全、环境事故及违法行为".into(),
                    required_materials: vec![
                        "申报表".into(),
                        "组织概述（不超过3000字）".into(),
                        "自评报告（不超过6万字）".into(),
                        "证明材料".into(),
                    ],
                    deadline: Some(prost_types::Timestamp {
                        seconds: deadline.unix_timestamp(),
                        nanos: 0,
                    }),
                    ..Default::default()
                }),
                request_id: rid(&format!("demo-{p}-cycle-{year}")),
            }
        )
        .map_err(failed("publish the notice"))?;
        self.outcome.cycle = cycle.name.clone();
        self.say.heading(&format!("Notice: {}", cycle.notice_title));
        self.say.line(&format!(
            "cycle {} open, settings pinned at v{} (R-01); applications close {}",
            cycle.name,
            cycle.settings_version,
            date_of(&self.clock.date(30))
        ));
        Ok(())
    }

    /// Enterprises register, draft, upload evidence and submit; the recommending unit signs;
    /// the office checks eligibility and accepts.
    pub async fn applications(&mut self) -> Result<(), Failure> {
        self.say.heading("Applications");
        let cycle = self.cycle();
        for i in 0..self.plan.entrants.len() {
            let e = self.plan.entrants[i].clone();
            let code = self.codes[i].clone();
            let (y, m, d) = e.established;
            let made = call!(
                self.door.apps,
                create_enterprise,
                &self.office,
                pb::CreateEnterpriseRequest {
                    enterprise: Some(pb::Enterprise {
                        display_name: e.name.clone(),
                        credit_code: code.clone(),
                        established_date: Some(Date {
                            year: y,
                            month: i32::from(m),
                            day: i32::from(d),
                        }),
                        industry_code: e.industry.into(),
                        recommending_unit: UNIT.into(),
                        ..Default::default()
                    }),
                    request_id: rid(&format!("demo-enterprise-{code}")),
                }
            );
            match made {
                Ok(_) => {}
                Err(s) if s.code() == Code::AlreadyExists => {}
                Err(s) => return Err(failed("register an enterprise")(s)),
            }
            let me = self.enterprise_token(i);
            call!(
                self.door.apps,
                create_application,
                &me,
                pb::CreateApplicationRequest {
                    parent: cycle.clone(),
                    application: Some(pb::Application {
                        enterprise: format!("enterprises/{code}"),
                        application_form: format!("{year}年度县长质量奖申报表：{}", e.name, year = self.clock.date(0).year),
                        organisation_profile: format!("{}成立于{y}年，主营{}，推行卓越绩效管理模式。", e.name, e.industry),
                        self_assessment: "按照GB/T 19580《卓越绩效评价准则》逐条开展自评：领导、战略、顾客与市场、资源、过程管理、测量分析与改进、结果。".repeat(20),
                        ..Default::default()
                    }),
                    request_id: rid(&format!("demo-{cycle}-draft-{code}")),
                }
            )
            .map_err(failed("draft an application"))?;
            let pdf = format!("%PDF-1.7\n% {} 质量手册\n%%EOF\n", e.name).into_bytes();
            let parts = vec![
                pb::UploadEvidenceRequest {
                    part: Some(pb::upload_evidence_request::Part::Header(
                        pb::EvidenceHeader {
                            parent: self.app(i),
                            file_name: "质量手册.pdf".into(),
                            content_type: "application/pdf".into(),
                            size_bytes: pdf.len() as i64,
                            ..Default::default()
                        },
                    )),
                    request_id: rid(&format!("demo-{cycle}-evidence-{code}")),
                },
                pb::UploadEvidenceRequest {
                    part: Some(pb::upload_evidence_request::Part::Chunk(pdf)),
                    request_id: String::new(),
                },
            ];
            let mut apps = self.door.apps.clone();
            apps.upload_evidence(crate::door::bearer(&me, tokio_stream::iter(parts)))
                .await
                .map_err(failed("upload evidence"))?;

            let check = call!(
                self.door.apps,
                check_eligibility,
                &self.office,
                pb::CheckEligibilityRequest {
                    enterprise: format!("enterprises/{code}"),
                    cycle: cycle.clone(),
                }
            )
            .map_err(failed("check eligibility"))?;
            for r in &check.reasons {
                self.say.line(&format!(
                    "{} ({code}) is not eligible — {}: {} [{}]",
                    e.name,
                    r.rule,
                    r.message,
                    inputs(r)
                ));
            }
            let submitted = call!(
                self.door.apps,
                submit_application,
                &me,
                pb::SubmitApplicationRequest {
                    name: self.app(i),
                    request_id: rid(&format!("demo-{cycle}-submit-{code}")),
                }
            );
            let submitted = match submitted {
                Ok(a) => a,
                Err(s) if s.code() == Code::FailedPrecondition => {
                    let (reason, rule) = reason_and_rule(&s);
                    self.say.line(&format!(
                        "{}: submission refused — {rule} {reason}: {}",
                        e.name,
                        s.message()
                    ));
                    continue;
                }
                Err(s) => return Err(failed("submit an application")(s)),
            };
            self.clock.observe(&submitted.submit_time);
            self.check_speed()?;
            let unit =
                self.tokens
                    .issue(Role::RecommendingUnit, "qinglong-office", Some(UNIT), None);
            call!(
                self.door.apps,
                sign_recommendation,
                &unit,
                pb::SignRecommendationRequest {
                    name: self.app(i),
                    opinion: pb::Opinion::Support as i32,
                    reasons: "经核实，该企业符合申报条件，同意推荐".into(),
                    request_id: rid(&format!("demo-{cycle}-sign-{code}")),
                    attested: (1..=8).collect(),
                }
            )
            .map_err(failed("sign the recommendation"))?;
            // Art. 13(1): the county's environment and safety departments sign as well.
            let departments = self
                .settings
                .as_ref()
                .map(|s| s.required_departments.clone())
                .unwrap_or_default();
            for d in &departments {
                let t = self
                    .tokens
                    .issue(Role::Department, &format!("{d}-科室"), Some(d), None);
                call!(
                    self.door.apps,
                    sign_recommendation,
                    &t,
                    pb::SignRecommendationRequest {
                        name: self.app(i),
                        opinion: pb::Opinion::Support as i32,
                        reasons: "经核实，该企业近三年无重大环境、安全事故，同意推荐".into(),
                        request_id: rid(&format!("demo-{cycle}-sign-{code}-{d}")),
                        attested: Vec::new(),
                    }
                )
                .map_err(failed("sign a department's opinion"))?;
            }
            let accepted = call!(
                self.door.apps,
                transition_application,
                &self.office,
                pb::TransitionApplicationRequest {
                    name: self.app(i),
                    to_stage: pb::ApplicationStage::Accepted as i32,
                    reason: "材料齐全，予以受理".into(),
                    request_id: rid(&format!("demo-{cycle}-accept-{code}")),
                }
            )
            .map_err(failed("accept an application"))?;
            self.record(&accepted);
            self.say.line(&format!(
                "{} ({code}, {}): submitted, recommended by {UNIT} and signed by {}, {}",
                e.name,
                e.industry,
                departments.join("、"),
                stage_name(accepted.stage)
            ));
        }
        Ok(())
    }

    /// A real-time server would make the walk wait 7 real days for the public notice.
    pub(super) fn check_speed(&self) -> Result<(), Failure> {
        let Some((_, r0)) = self.clock.first else {
            return Ok(());
        };
        if r0.elapsed().as_secs_f64() > 0.2 && self.clock.speed < 100.0 {
            return Err(Failure(format!(
                "the server's clock runs at {:.0}× real time: the {}-day public notice would take days. \
                 Start it on a simulated clock for the demo:\n  \
                 QAWARD_CLOCK__START=2026-03-02T09:00:00+08:00 QAWARD_CLOCK__SPEED=86400 qaward serve --data-dir ./demo-data",
                self.clock.speed,
                self.settings.as_ref().map_or(7, |s| s.public_notice_days)
            )));
        }
        Ok(())
    }
}
