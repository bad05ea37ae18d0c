//! The cycle, step by step, as the county platform drives it for each of its users: the
//! award office, enterprises, the recommending unit, reviewers, departments, the public. Every
//! decision is the services'; the walk reports it with its rule and its numbers.

use std::{collections::BTreeMap, path::PathBuf, time::Instant};

use qaward_kit::auth::Role;
use qaward_proto::qaward::{
    applications::v1 as pb,
    common::v1::{Date, Decimal, Explanation},
    gateway::v1 as gpb,
    reviewers::v1 as rpb,
    scoring::v1 as spb,
};
use sha2::Digest;
use time::{Duration, OffsetDateTime};
use tonic::{Code, Status};

use crate::{
    call,
    door::{Door, Tokens},
    narrate::Narrator,
    sample::{self, Plan},
};

/// Why the walk stopped.
#[derive(Debug, Clone)]
pub struct Failure(pub String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

/// The reason and rule a service gave with a refusal (`google.rpc.ErrorInfo`).
pub fn reason_and_rule(s: &Status) -> (String, String) {
    tonic_types::StatusExt::get_error_details(s)
        .error_info()
        .map(|i| {
            (
                i.reason.clone(),
                i.metadata.get("rule").cloned().unwrap_or_default(),
            )
        })
        .unwrap_or_default()
}

fn failed(step: &str) -> impl FnOnce(Status) -> Failure + '_ {
    move |s| {
        let (reason, rule) = reason_and_rule(&s);
        Failure(format!(
            "{step}: {:?} {reason} {rule}: {}",
            s.code(),
            s.message()
        ))
    }
}

fn already_there(p: &str) -> Failure {
    Failure(format!(
        "programme {p} already exists on this server: the demo has run here before. Start \
         `qaward serve` on a fresh data directory (or database), or pass --programme with \
         another id"
    ))
}

/// What the cycle came to.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// `programmes/{p}/cycles/{year}`.
    pub cycle: String,
    pub vacant: bool,
    /// The entrants (by index in the plan) that became candidates.
    pub candidates: Vec<usize>,
    /// The entrants awarded, once approved.
    pub winners: Vec<usize>,
    /// Every draw made, by name.
    pub draws: Vec<String>,
    /// What the office was told when a tie stood at the cut line.
    pub tie_reported: Option<String>,
    /// Every decision taken on each entrant, in order.
    pub decisions: BTreeMap<usize, Vec<(i32, Explanation)>>,
}

/// The server's time, as the services report it in what they return: the walk never reads
/// its own wall clock for a date it sends.
struct ServerClock {
    first: Option<(OffsetDateTime, Instant)>,
    speed: f64,
}

impl ServerClock {
    fn observe(&mut self, t: &Option<prost_types::Timestamp>) {
        let Some(t) = t else { return };
        let Ok(at) = OffsetDateTime::from_unix_timestamp(t.seconds) else {
            return;
        };
        match self.first {
            None => self.first = Some((at, Instant::now())),
            Some((t0, r0)) => {
                let real = r0.elapsed().as_secs_f64();
                if real > 0.05 {
                    self.speed = (at - t0).as_seconds_f64() / real;
                }
            }
        }
    }

    fn now(&self) -> OffsetDateTime {
        match self.first {
            None => OffsetDateTime::now_utc(),
            Some((t0, r0)) => t0 + Duration::seconds_f64(r0.elapsed().as_secs_f64() * self.speed),
        }
    }

    /// Today in the county (UTC+8), `days` on.
    fn date(&self, days: i64) -> Date {
        let d = (self.now() + Duration::days(days))
            .to_offset(time::macros::offset!(+8))
            .date();
        Date {
            year: d.year(),
            month: d.month() as i32,
            day: d.day() as i32,
        }
    }
}

/// The departments whose opinions the consultation asks for come from the programme's
/// settings; these units sit on the evaluation committee.
const COMMITTEE: [&str; 9] = [
    "县市场监督管理局",
    "县发展和改革委员会",
    "县经济和信息化委员会",
    "县财政局",
    "县科学技术局",
    "县商务委员会",
    "县总工会",
    "县工商业联合会",
    "县统计局",
];
const UNIT: &str = "qinglong-street";
const OBJECTING_DEPARTMENT: &str = "税务局";

pub struct Walk {
    door: Door,
    tokens: Tokens,
    plan: Plan,
    say: Narrator,
    office: String,
    codes: Vec<String>,
    clock: ServerClock,
    settings: Option<pb::ProgrammeSettings>,
    /// Where exported draw records go, for `qaward draw verify`.
    records: Option<PathBuf>,
    pub outcome: Outcome,
}

/// A request id (1-64 of letters, digits, `-`, `_`) naming the step, so a repeated walk step
/// is recognised by the service as the same request (R-50 idempotency).
fn rid(step: &str) -> String {
    format!(
        "demo-{}",
        &hex::encode(sha2::Sha256::digest(step.as_bytes()))[..40]
    )
}

fn date_of(d: &Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)
}

fn decimal(v: &Option<Decimal>) -> String {
    v.as_ref().map(|d| d.value.clone()).unwrap_or_default()
}

fn stage_name(stage: i32) -> String {
    pb::ApplicationStage::try_from(stage)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("APPLICATION_STAGE_")
                .to_string()
        })
        .unwrap_or_else(|_| stage.to_string())
}

fn inputs(e: &Explanation) -> String {
    e.inputs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Walk {
    pub fn new(door: Door, tokens: Tokens, plan: Plan, say: Narrator) -> Walk {
        let office = tokens.issue(Role::Office, "office-demo", None, Some(&plan.programme));
        let codes = plan.codes();
        Walk {
            door,
            tokens,
            plan,
            say,
            office,
            codes,
            clock: ServerClock {
                first: None,
                speed: 1.0,
            },
            settings: None,
            records: None,
            outcome: Outcome::default(),
        }
    }

    /// Exported draw records are written here (`draw-N.json`).
    pub fn with_records(mut self, dir: PathBuf) -> Walk {
        self.records = Some(dir);
        self
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The credit code of entrant `i`.
    pub fn code(&self, i: usize) -> &str {
        &self.codes[i]
    }

    /// The server's time now, as estimated from the times it has reported.
    pub fn server_now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// The tokens the walk signs with.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    pub fn office_token(&self) -> &str {
        &self.office
    }

    pub fn door(&self) -> &Door {
        &self.door
    }

    fn cycle(&self) -> String {
        self.outcome.cycle.clone()
    }

    /// The application of entrant `i` in this cycle.
    pub fn app(&self, i: usize) -> String {
        format!("{}/applications/{}", self.cycle(), self.codes[i])
    }

    fn index_of(&self, application: &str) -> Option<usize> {
        self.codes
            .iter()
            .position(|c| application.ends_with(&format!("/applications/{c}")))
    }

    fn name(&self, i: usize) -> &str {
        &self.plan.entrants[i].name
    }

    fn enterprise_token(&self, i: usize) -> String {
        let code = &self.codes[i];
        self.tokens
            .issue(Role::Enterprise, &format!("user-{code}"), Some(code), None)
    }

    fn record(&mut self, a: &pb::Application) {
        if let (Some(i), Some(d)) = (self.index_of(&a.name), &a.last_decision) {
            let list = self.outcome.decisions.entry(i).or_default();
            if list.last().map(|(s, e)| (*s, e)) != Some((a.stage, d)) {
                list.push((a.stage, d.clone()));
            }
        }
    }

    /// The whole cycle: notice to approval (or to the vacancy).
    pub async fn run(&mut self) -> Result<Outcome, Failure> {
        self.set_up().await?;
        self.open_cycle().await?;
        self.applications().await?;
        let accepted = self.accepted();
        self.materials(&accepted).await?;
        let passed = self.in_stage(&[pb::ApplicationStage::MaterialsPassed]);
        if passed.is_empty() {
            self.say
                .heading("No application passed the materials review");
        } else {
            self.defence_and_site(&passed).await?;
            if !self.select().await? {
                self.consult_and_notify().await?;
                self.decide().await?;
            }
        }
        self.dossiers().await?;
        Ok(self.outcome.clone())
    }

    pub fn accepted(&self) -> Vec<usize> {
        self.in_stage(&[pb::ApplicationStage::Accepted])
    }

    /// The entrants whose latest decision left them in one of `stages`.
    pub fn in_stage(&self, stages: &[pb::ApplicationStage]) -> Vec<usize> {
        self.outcome
            .decisions
            .iter()
            .filter(|(_, d)| {
                d.last()
                    .is_some_and(|(s, _)| stages.iter().any(|x| *x as i32 == *s))
            })
            .map(|(i, _)| *i)
            .collect()
    }

    /// What an enterprise sees of its application, through the gateway's composed dossier: for
    /// each that failed the materials review, its feedback report; for the first winner,
    /// its inbox — notices the applications service handed to the notifications service
    /// through its outbox.
    pub async fn dossiers(&mut self) -> Result<(), Failure> {
        let failed_materials = self.in_stage(&[pb::ApplicationStage::MaterialsFailed]);
        let first_winner = self.outcome.winners.first().copied();
        let shown: Vec<usize> = failed_materials.into_iter().chain(first_winner).collect();
        for i in shown {
            let me = self.enterprise_token(i);
            let d = call!(
                self.door.views,
                get_dossier,
                &me,
                gpb::GetDossierRequest { name: self.app(i) }
            )
            .map_err(failed("read a dossier"))?;
            self.say.heading(&format!(
                "Dossier of {}, as the enterprise reads it (gateway view GetDossier)",
                self.name(i)
            ));
            if let Some(a) = &d.application {
                let why = a.last_decision.clone().unwrap_or_default();
                self.say.line(&format!(
                    "stage {} — {} {}",
                    stage_name(a.stage),
                    why.rule,
                    why.message
                ));
            }
            if let Some(r) = &d.feedback_report {
                self.say.line(&format!(
                    "feedback report of the materials review, total {}: {}",
                    decimal(&r.total),
                    r.categories
                        .iter()
                        .map(|c| format!("{} {}/{}", c.title, decimal(&c.score), decimal(&c.max)))
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
            }
            for m in &d.messages {
                self.say.line(&format!("inbox: {}", m.subject));
            }
            for o in &d.omitted {
                self.say.line(&format!(
                    "(not shown: {} — {} {})",
                    o.part, o.status, o.message
                ));
            }
        }
        Ok(())
    }

    /// The programme in both services (Yunyang's settings), the shared registry and the
    /// relations that force recusals.
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
        let created = call!(
            self.door.reviewers,
            create_programme,
            &self.office,
            rpb::CreateProgrammeRequest {
                programme: Some(rpb::Programme {
                    display_name: self.plan.display_name.clone(),
                    ..Default::default()
                }),
                programme_id: p.clone(),
                request_id: rid(&format!("demo-{p}-reviewers-programme")),
            }
        );
        let created = match created {
            Err(s) if s.code() == Code::AlreadyExists => return Err(already_there(&p)),
            other => other.map_err(failed("create the programme in the reviewers service"))?,
        };
        self.clock.observe(&created.create_time);
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
            "programme {p}: settings v{} — materials pass at {} (R-13), review = {} × materials + {} × site (R-16), final selection at {}, candidates at {} (at most {}, R-17), public notice {} days (R-21), committee quorum of {} member units (R-22); county {}",
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

    /// The notice that opens the year's cycle, its deadline a month from the server's today.
    pub async fn open_cycle(&mut self) -> Result<(), Failure> {
        let p = self.plan.programme.clone();
        let year = self.clock.date(0).year;
        let deadline = self.clock.now() + Duration::days(30);
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
                    attested: (1..=6).collect(),
                }
            )
            .map_err(failed("sign the recommendation"))?;
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
                "{} ({code}, {}): submitted, recommended by {UNIT}, {}",
                e.name,
                e.industry,
                stage_name(accepted.stage)
            ));
        }
        Ok(())
    }

    /// A real-time server would make the walk wait 7 real days for the public notice.
    fn check_speed(&self) -> Result<(), Failure> {
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

    /// Prepares the group (the draw is fixed and its entropy committed), starts it (the
    /// entropy is revealed and the draw executed), and reports the draw.
    async fn group(
        &mut self,
        stage: pb::ReviewStage,
        entrants: &[usize],
        window: (i64, i64),
        entropy: &str,
    ) -> Result<(pb::ReviewGroup, rpb::Draw), Failure> {
        let label = stage
            .as_str_name()
            .trim_start_matches("REVIEW_STAGE_")
            .to_lowercase();
        let start = self.clock.date(self.plan.window_offset + window.0);
        let end = self.clock.date(self.plan.window_offset + window.1);
        let commitment = hex::encode(sha2::Sha256::digest(entropy.as_bytes()));
        let cycle = self.cycle();
        let prepared = call!(
            self.door.apps,
            prepare_review_group,
            &self.office,
            pb::PrepareReviewGroupRequest {
                parent: cycle.clone(),
                review_group: Some(pb::ReviewGroup {
                    stage: stage as i32,
                    applications: entrants.iter().map(|i| self.app(*i)).collect(),
                    window_start: Some(start),
                    window_end: Some(end),
                    entropy_commitment: commitment.clone(),
                    entropy_source: "两枚骰子，由监督人员在场投掷".into(),
                    advisors: if stage == pb::ReviewStage::Defence {
                        vec!["reviewers/CQZJ-GW01".into()]
                    } else {
                        Vec::new()
                    },
                    ..Default::default()
                }),
                request_id: rid(&format!("demo-{cycle}-prepare-{label}")),
            }
        )
        .map_err(failed("prepare a review group"))?;
        let started = call!(
            self.door.apps,
            start_review_group,
            &self.office,
            pb::StartReviewGroupRequest {
                name: prepared.name.clone(),
                entropy: entropy.into(),
                request_id: rid(&format!("demo-{cycle}-start-{label}")),
            }
        )
        .map_err(failed("start a review group"))?;
        let draw = call!(
            self.door.reviewers,
            get_draw,
            &self.office,
            rpb::GetDrawRequest {
                name: started.draw.clone()
            }
        )
        .map_err(failed("read the draw"))?;
        self.outcome.draws.push(draw.name.clone());
        self.report_draw(&label, &started, &draw, &commitment, entropy);
        Ok((started, draw))
    }

    fn report_draw(
        &mut self,
        label: &str,
        g: &pb::ReviewGroup,
        draw: &rpb::Draw,
        commitment: &str,
        entropy: &str,
    ) {
        let names: BTreeMap<String, &str> = sample::reviewers()
            .into_iter()
            .map(|r| (format!("reviewers/{}", r.certificate), r.name))
            .collect();
        let who = |r: &str| {
            let id = r.trim_start_matches("reviewers/");
            format!(
                "{} ({id})",
                names
                    .get(&format!("reviewers/{id}"))
                    .copied()
                    .unwrap_or("?")
            )
        };
        self.say.heading(&format!(
            "Draw for the {label} group: {} ({} to {})",
            draw.name,
            g.window_start.as_ref().map(date_of).unwrap_or_default(),
            g.window_end.as_ref().map(date_of).unwrap_or_default()
        ));
        self.say.line(&format!(
            "fixed before the dice: pool of {} eligible reviewers (pool hash {}…), inputs hash {}…, entropy commitment SHA-256 {}… from \"{}\"",
            draw.pool_size,
            &draw.pool_hash.get(..16).unwrap_or_default(),
            &draw.inputs_hash.get(..16).unwrap_or_default(),
            &commitment[..16],
            draw.entropy_source
        ));
        for x in &draw.exclusions {
            self.say.line(&format!(
                "recused: {} — {} ({})",
                who(&x.reviewer),
                x.code,
                x.rule
            ));
        }
        self.say.line(&format!(
            "dice revealed \"{entropy}\": members {}; leader {}; backups in order {}",
            draw.members
                .iter()
                .map(|m| who(m))
                .collect::<Vec<_>>()
                .join(", "),
            who(&draw.leader),
            draw.backup_order
                .iter()
                .map(|m| who(m))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        match qaward_reviewers::verify_record(&draw.record_json) {
            Ok(v) if v.matches => self
                .say
                .line(&format!("replayed offline: MATCH — {}", v.message)),
            Ok(v) => self
                .say
                .line(&format!("replayed offline: MISMATCH — {}", v.message)),
            Err(e) => self.say.line(&format!("the record does not replay: {e}")),
        }
        if let Some(dir) = &self.records {
            let file = dir.join(format!("draw-{}.json", self.outcome.draws.len()));
            if std::fs::create_dir_all(dir).is_ok()
                && std::fs::write(&file, &draw.record_json).is_ok()
            {
                self.say.line(&format!(
                    "anyone can check it: qaward draw verify {}   (or python3 docs/draw_replay.py {})",
                    file.display(),
                    file.display()
                ));
            }
        }
    }

    fn reviewer_token(&self, member: &str) -> String {
        self.tokens.issue(
            Role::Reviewer,
            member.trim_start_matches("reviewers/"),
            None,
            None,
        )
    }

    /// A reviewer's sheet saved, then sealed (submitted): from then on it cannot change.
    async fn seal(&mut self, token: &str, sheet: spb::Sheet, step: &str) -> Result<(), Failure> {
        let saved = call!(
            self.door.scoring,
            save_sheet,
            token,
            spb::SaveSheetRequest {
                sheet: Some(sheet),
                request_id: rid(step),
            }
        )
        .map_err(failed("save a sheet"))?;
        call!(
            self.door.scoring,
            submit_sheet,
            token,
            spb::SubmitSheetRequest {
                name: saved.name,
                request_id: rid(&format!("{step}-seal")),
            }
        )
        .map_err(failed("seal a sheet"))?;
        Ok(())
    }

    /// Every member scores every item alone and seals the sheet; the leader then opens the
    /// consensus sheet and signs the group's agreed scores.
    async fn consensus(
        &mut self,
        g: &pb::ReviewGroup,
        leader: &str,
        assignment: &str,
        percent: i32,
    ) -> Result<(), Failure> {
        let items = |spread: i32, reason: &str| -> Vec<spb::ItemScore> {
            qaward_scoring::domain::rubric::Rubric::gbt_19580_2012()
                .items()
                .map(|i| spb::ItemScore {
                    item_code: i.code.clone(),
                    percent: (percent + spread).clamp(0, 100),
                    strengths: "领导重视，制度健全".into(),
                    opportunities: "数据分析和对标有待加强".into(),
                    reason: reason.to_string(),
                })
                .collect()
        };
        for (k, m) in g.members.iter().enumerate() {
            let t = self.reviewer_token(m);
            // Independent judgements differ a little around what the group will agree.
            let spread = [0, 5, -5, 5, -5][k % 5];
            self.seal(
                &t,
                spb::Sheet {
                    assignment: assignment.into(),
                    kind: spb::SheetKind::Independent as i32,
                    items: items(spread, ""),
                    ..Default::default()
                },
                &format!("demo-{assignment}-{m}-independent"),
            )
            .await?;
        }
        let t = self.reviewer_token(leader);
        call!(
            self.door.scoring,
            open_consensus,
            &t,
            spb::OpenConsensusRequest {
                assignment: assignment.into(),
                request_id: rid(&format!("demo-{assignment}-open")),
            }
        )
        .map_err(failed("open the consensus sheet"))?;
        call!(
            self.door.scoring,
            sign_consensus,
            &t,
            spb::SignConsensusRequest {
                assignment: assignment.into(),
                items: items(0, "评审组合议：综合各评审员独立评分与现场证据确定"),
                request_id: rid(&format!("demo-{assignment}-sign")),
            }
        )
        .map_err(failed("sign the consensus sheet"))?;
        Ok(())
    }

    fn assignment_of(&self, g: &pb::ReviewGroup, i: usize) -> Result<String, Failure> {
        let app = self.app(i);
        g.applications
            .iter()
            .position(|a| *a == app)
            .and_then(|k| g.assignments.get(k).cloned())
            .ok_or_else(|| Failure(format!("{app} has no assignment in {}", g.name)))
    }

    async fn release(&mut self, stage: pb::ReviewStage) -> Result<(), Failure> {
        let cycle = self.cycle();
        let released = call!(
            self.door.apps,
            release_review_stage,
            &self.office,
            pb::ReleaseReviewStageRequest {
                cycle: cycle.clone(),
                stage: stage as i32,
                request_id: rid(&format!("demo-{cycle}-release-{}", stage.as_str_name())),
            }
        )
        .map_err(failed("release the stage's scores"))?;
        for a in &released.applications {
            self.record(a);
            if let (Some(i), Some(d)) = (self.index_of(&a.name), &a.last_decision) {
                let line = format!(
                    "{}: {} — {} {} [{}]",
                    self.name(i),
                    stage_name(a.stage),
                    d.rule,
                    d.message,
                    inputs(d)
                );
                self.say.line(&line);
            }
        }
        Ok(())
    }

    /// The materials review of the accepted applications.
    pub async fn materials(&mut self, entrants: &[usize]) -> Result<(), Failure> {
        let entropy = format!("{}-{}-{}-{}", 3, 5, 1, 6);
        let (g, draw) = self
            .group(pb::ReviewStage::Materials, entrants, (0, 4), &entropy)
            .await?;
        for &i in entrants {
            let a = self.assignment_of(&g, i)?;
            let pct = self.plan.entrants[i].materials;
            self.consensus(&g, &draw.leader, &a, pct).await?;
        }
        self.say.heading("Materials review released");
        self.release(pb::ReviewStage::Materials).await
    }

    /// The defence panel and the site visit of those that passed, then the
    /// review scores.
    pub async fn defence_and_site(&mut self, entrants: &[usize]) -> Result<(), Failure> {
        let (panel, _) = self
            .group(pb::ReviewStage::Defence, entrants, (7, 8), "2-6-4-4")
            .await?;
        for &i in entrants {
            let a = self.assignment_of(&panel, i)?;
            let score = self.plan.entrants[i].defence;
            for m in panel.members.clone() {
                let t = self.reviewer_token(&m);
                self.seal(
                    &t,
                    spb::Sheet {
                        assignment: a.clone(),
                        kind: spb::SheetKind::Defence as i32,
                        defence_score: Some(Decimal {
                            value: score.into(),
                        }),
                        ..Default::default()
                    },
                    &format!("demo-{a}-{m}-defence"),
                )
                .await?;
            }
        }
        let (site, draw) = self
            .group(pb::ReviewStage::Site, entrants, (11, 13), "6-1-5-2")
            .await?;
        for &i in entrants {
            let a = self.assignment_of(&site, i)?;
            let pct = self.plan.entrants[i].site;
            self.consensus(&site, &draw.leader, &a, pct).await?;
        }
        self.say
            .heading("Site visits released: review score = 20 % materials + 80 % site");
        self.release(pb::ReviewStage::Site).await
    }

    /// Fixes the candidates from the ranking; a tie at the cut line is reported
    /// to the office, which resolves it with the committee's reasons. `true` when vacant.
    pub async fn select(&mut self) -> Result<bool, Failure> {
        let cycle = self.cycle();
        let fix = |ties: Vec<pb::TieResolution>, n: usize| pb::FixCandidatesRequest {
            cycle: cycle.clone(),
            tie_resolutions: ties,
            request_id: rid(&format!("demo-{cycle}-fix-{n}")),
        };
        let fixed = match call!(self.door.apps, fix_candidates, &self.office, fix(vec![], 1)) {
            Err(s)
                if reason_and_rule(&s).0 == "TIE_UNRESOLVED" && !self.plan.tie_break.is_empty() =>
            {
                let (reason, rule) = reason_and_rule(&s);
                let told = format!("{rule} {reason}: {}", s.message());
                self.say.heading("Tie at the cut line");
                self.say.line(&format!("the office is told: {told}"));
                self.outcome.tie_reported = Some(told);
                let ties: Vec<pb::TieResolution> = self
                    .plan
                    .tie_break
                    .iter()
                    .map(|(i, seat)| pb::TieResolution {
                        application: self.app(*i),
                        candidate: *seat,
                        reason: "评审委员会研究：顾客满意度和市场结果得分更高者优先".into(),
                    })
                    .collect();
                for (i, seat) in &self.plan.tie_break {
                    self.say.line(&format!(
                        "tie-break: {} {}",
                        self.name(*i),
                        if *seat { "takes the seat" } else { "does not" }
                    ));
                }
                call!(self.door.apps, fix_candidates, &self.office, fix(ties, 2))
                    .map_err(failed("fix the candidates after the tie-break"))?
            }
            other => other.map_err(failed("fix the candidates"))?,
        };
        for a in &fixed.applications {
            self.record(a);
        }
        self.results_table();
        if fixed.vacant {
            self.outcome.vacant = true;
            self.say.heading(&format!(
                "Vacant: nobody reached the candidate line this year (R-17); cycle {} is {}",
                cycle,
                fixed
                    .cycle
                    .map(|c| pb::CycleState::try_from(c.state)
                        .map(|s| s.as_str_name().to_string())
                        .unwrap_or_default())
                    .unwrap_or_default()
            ));
            return Ok(true);
        }
        self.outcome.candidates = self.in_stage(&[pb::ApplicationStage::Candidate]);
        Ok(false)
    }

    fn results_table(&mut self) {
        self.say
            .heading("Results: every threshold decision, with its rule and numbers");
        let pick = |d: &[(i32, Explanation)], key: &str| {
            d.iter()
                .rev()
                .find_map(|(_, e)| e.inputs.get(key).cloned())
                .unwrap_or_else(|| "-".into())
        };
        let mut rows: Vec<(usize, String)> = Vec::new();
        for (i, d) in &self.outcome.decisions {
            let (stage, last) = d.last().cloned().unwrap_or_default();
            rows.push((
                *i,
                format!(
                    "{:<28} materials {:>6}  review {:>7}  composite {:>7}  → {:<16} {} {}",
                    self.plan.entrants[*i].name,
                    pick(d, "materials_score"),
                    pick(d, "review_score"),
                    pick(d, "composite_score"),
                    stage_name(stage),
                    last.rule,
                    last.message
                ),
            ));
        }
        for (_, row) in rows {
            self.say.line(&row);
        }
    }

    /// Consultation of the departments, the public notice and a complaint.
    pub async fn consult_and_notify(&mut self) -> Result<(), Failure> {
        let cycle = self.cycle();
        let candidates = self.outcome.candidates.clone();
        self.say.heading("Consultation of the departments (R-20)");
        call!(
            self.door.apps,
            request_consultation,
            &self.office,
            pb::RequestConsultationRequest {
                cycle: cycle.clone(),
                deadline: Some(self.clock.date(10)),
                request_id: rid(&format!("demo-{cycle}-consult")),
            }
        )
        .map_err(failed("ask the departments"))?;
        let departments = self
            .settings
            .as_ref()
            .map(|s| s.consulted_departments.clone())
            .unwrap_or_default();
        for dept in &departments {
            let t = self
                .tokens
                .issue(Role::Department, &format!("{dept}-科室"), Some(dept), None);
            for &i in &candidates {
                let object = dept == OBJECTING_DEPARTMENT && self.plan.objection == Some(i);
                call!(
                    self.door.apps,
                    record_consultation_opinion,
                    &t,
                    pb::RecordConsultationOpinionRequest {
                        name: self.app(i),
                        department: dept.clone(),
                        opinion: if object {
                            pb::Opinion::Object
                        } else {
                            pb::Opinion::Support
                        } as i32,
                        text: if object {
                            "该企业上年度有一笔税款逾期申报".into()
                        } else {
                            "经查询，近三年无不良记录".into()
                        },
                        request_id: rid(&format!("demo-{cycle}-opinion-{dept}-{i}")),
                    }
                )
                .map_err(failed("record a department's opinion"))?;
                if object {
                    self.say.line(&format!(
                        "{dept} objects to {}: 该企业上年度有一笔税款逾期申报",
                        self.name(i)
                    ));
                }
            }
        }
        self.say.line(&format!(
            "{} departments answered for {} candidates",
            departments.len(),
            candidates.len()
        ));
        if let Some(i) = self.plan.objection.filter(|i| candidates.contains(i)) {
            call!(
                self.door.apps,
                decide_objection,
                &self.office,
                pb::DecideObjectionRequest {
                    name: self.app(i),
                    department: OBJECTING_DEPARTMENT.into(),
                    upheld: false,
                    reason: "逾期申报已补正并缴纳滞纳金，不属于重大违法行为".into(),
                    request_id: rid(&format!("demo-{cycle}-objection-{i}")),
                }
            )
            .map_err(failed("decide the objection"))?;
            self.say.line(&format!(
                "the office overrules the objection to {}: 逾期申报已补正，不属于重大违法行为",
                self.name(i)
            ));
        }

        let notice = call!(
            self.door.apps,
            open_public_notice,
            &self.office,
            pb::OpenPublicNoticeRequest {
                cycle: cycle.clone(),
                request_id: rid(&format!("demo-{cycle}-notice")),
            }
        )
        .map_err(failed("open the public notice"))?;
        self.clock.observe(&notice.start_time);
        self.say.heading(&format!(
            "Public notice (R-21): {} entries, until {}",
            notice.entries.len(),
            notice
                .end_time
                .as_ref()
                .and_then(|t| OffsetDateTime::from_unix_timestamp(t.seconds).ok())
                .and_then(|t| {
                    t.to_offset(time::macros::offset!(+8))
                        .format(time::macros::format_description!(
                            "[year]-[month]-[day] [hour]:[minute] (UTC+8)"
                        ))
                        .ok()
                })
                .unwrap_or_default()
        ));
        for e in &notice.entries {
            self.say.line(&format!(
                "#{} {} — materials {}, site {}, review {}, defence {}, composite {}",
                e.rank,
                e.enterprise_name,
                decimal(&e.materials_score),
                decimal(&e.site_score),
                decimal(&e.review_score),
                decimal(&e.defence_score),
                decimal(&e.composite_score)
            ));
        }
        if let Some(i) = self.plan.complaint.filter(|i| candidates.contains(i)) {
            let public = self.tokens.issue(Role::Public, "citizen-0423", None, None);
            let complaint = call!(
                self.door.apps,
                create_complaint,
                &public,
                pb::CreateComplaintRequest {
                    parent: self.app(i),
                    complaint: Some(pb::Complaint {
                        text: "反映该企业厂区夜间噪声扰民，质疑其环境管理".into(),
                        evidence: vec!["录音文件说明".into()],
                        ..Default::default()
                    }),
                    request_id: rid(&format!("demo-{cycle}-complaint-{i}")),
                }
            )
            .map_err(failed("file a complaint"))?;
            self.say.line(&format!(
                "a citizen complains about {}: 反映该企业厂区夜间噪声扰民",
                self.name(i)
            ));
            call!(
                self.door.apps,
                resolve_complaint,
                &self.office,
                pb::ResolveComplaintRequest {
                    name: complaint.name.clone(),
                    outcome: pb::ComplaintOutcome::Unfounded as i32,
                    investigation: "经生态环境局现场监测，厂界噪声达标，反映情况不属实".into(),
                    request_id: rid(&format!("demo-{cycle}-resolve-{i}")),
                }
            )
            .map_err(failed("resolve the complaint"))?;
            self.say.line(
                "investigated: 厂界噪声达标，反映情况不属实 (unfounded; the candidate stays)",
            );
        }
        Ok(())
    }

    /// Waits out the notice, then the committee and the county government's approval
    ///
    pub async fn decide(&mut self) -> Result<(), Failure> {
        let cycle = self.cycle();
        let candidates = self.outcome.candidates.clone();
        let meeting = pb::RecordCommitteeMeetingRequest {
            name: cycle.clone(),
            units_present: COMMITTEE[..7].iter().map(|u| u.to_string()).collect(),
            decisions: candidates
                .iter()
                .map(|i| pb::CommitteeDecision {
                    application: self.app(*i),
                    adopted: true,
                    note: "同意授予".into(),
                })
                .collect(),
            request_id: rid(&format!("demo-{cycle}-committee")),
            recusals: Vec::new(),
        };
        let waited = Instant::now();
        let mut said = false;
        let decided = loop {
            match call!(
                self.door.apps,
                record_committee_meeting,
                &self.office,
                meeting.clone()
            ) {
                Err(s) if reason_and_rule(&s).0 == "NOTICE_RUNNING" => {
                    if !said {
                        self.say.line(&format!(
                            "waiting for the notice to run its course (the server's clock runs at about {:.0}× real time)…",
                            self.clock.speed
                        ));
                        said = true;
                    }
                    if waited.elapsed() > std::time::Duration::from_secs(120) {
                        return Err(Failure(
                            "the public notice did not end within 2 minutes: is the server on a simulated clock (QAWARD_CLOCK__SPEED=86400)?".into(),
                        ));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
                other => break other.map_err(failed("record the committee meeting"))?,
            }
        };
        self.say.heading(&format!(
            "Evaluation committee (R-22): {} of {} member units present; every candidate adopted; cycle {}",
            meeting.units_present.len(),
            COMMITTEE.len(),
            pb::CycleState::try_from(decided.state)
                .map(|s| s.as_str_name())
                .unwrap_or_default()
        ));
        let year = self.clock.date(0).year;
        let approved = call!(
            self.door.apps,
            record_approval,
            &self.office,
            pb::RecordApprovalRequest {
                name: cycle.clone(),
                document_number: format!("云阳府发〔{year}〕18号"),
                approval_date: Some(self.clock.date(0)),
                request_id: rid(&format!("demo-{cycle}-approval")),
            }
        )
        .map_err(failed("record the approval"))?;
        self.say.heading(&format!(
            "Approved by the county government: {} of {}",
            approved.approval_document,
            approved
                .approval_date
                .as_ref()
                .map(date_of)
                .unwrap_or_default()
        ));
        for i in candidates {
            let a = call!(
                self.door.apps,
                get_application,
                &self.office,
                pb::GetApplicationRequest { name: self.app(i) }
            )
            .map_err(failed("read a winner"))?;
            self.record(&a);
            if a.stage == pb::ApplicationStage::Awarded as i32 {
                self.outcome.winners.push(i);
                let d = a.last_decision.unwrap_or_default();
                self.say.line(&format!(
                    "AWARDED {} ({}) — {} {}",
                    self.name(i),
                    self.codes[i],
                    d.rule,
                    d.message
                ));
            }
        }
        Ok(())
    }
}
