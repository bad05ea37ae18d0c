//! The orchestration of the reviews. The office prepares a group
//! for some applications of a cycle and one review stage: the reviewers service prepares the
//! draw with the programme's size, the applicants (for recusal, R-41) and the specialities
//! their industries need. Starting the group reveals the entropy: the draw executes,
//! scoring gets one assignment per application with the drawn members, and the applications
//! move into the review stage, each with its audit record and notices. Releasing a stage
//! releases it in scoring and moves every application of it by scoring's decision (R-13,
//! The office's token is relayed on every call, so the other services check the office
//! as they would if it called them itself; upstream calls carry request ids derived from this
//! request or group, so a retry repeats no draw and no assignment.

use qaward_kit::{
    Error, Result,
    audit::{self, AuditRecord},
    auth::{Caller, Role, relay_token},
    change,
    clock::{to_timestamp, unix_micros},
    cn,
    convert::{chinese_date, date_from_pb, date_to_pb, iso_date, parse_iso_date},
    db::Conn,
    error::FieldViolation,
    idempotency::{RequestKey, derived_request_id},
    notify,
    paging::Page,
};
use qaward_proto::qaward::{applications::v1 as pb, reviewers::v1 as rpb, scoring::v1 as spb};
use rust_decimal::Decimal;
use tonic::{Request, Response, Status};

use crate::{
    domain::{
        Explanation,
        review::{self, ReviewStage},
        settings::Settings,
        stage::{self, Stage},
    },
    grpc::{ApplicationsApi, caller, cycle_id, line},
    intake::{application_name, application_pb, decide, load, notice, refused, stage_of},
    store::{self, ApplicationRow, ReviewGroupRow},
};

/// Applications one group may review at once.
const MAX_GROUP_APPLICATIONS: usize = 30;

fn stage_from_pb(v: i32) -> Option<ReviewStage> {
    match pb::ReviewStage::try_from(v).ok()? {
        pb::ReviewStage::Materials => Some(ReviewStage::Materials),
        pb::ReviewStage::Defence => Some(ReviewStage::Defence),
        pb::ReviewStage::Site => Some(ReviewStage::Site),
        pb::ReviewStage::Unspecified => None,
    }
}

fn stage_pb(s: ReviewStage) -> pb::ReviewStage {
    match s {
        ReviewStage::Materials => pb::ReviewStage::Materials,
        ReviewStage::Defence => pb::ReviewStage::Defence,
        ReviewStage::Site => pb::ReviewStage::Site,
    }
}

fn purpose(s: ReviewStage) -> rpb::DrawPurpose {
    match s {
        ReviewStage::Materials => rpb::DrawPurpose::MaterialsGroup,
        ReviewStage::Defence => rpb::DrawPurpose::DefencePanel,
        ReviewStage::Site => rpb::DrawPurpose::SiteGroup,
    }
}

fn scoring_stage(s: ReviewStage) -> spb::Stage {
    match s {
        ReviewStage::Materials => spb::Stage::Materials,
        ReviewStage::Defence => spb::Stage::Defence,
        ReviewStage::Site => spb::Stage::Site,
    }
}

/// `programmes/{p}/cycles/{y}/reviewGroups/{id}` → (p, y, id).
fn group_name(name: &str, field: &str) -> Result<(String, i64, String)> {
    let (cycle, id) = name.rsplit_once("/reviewGroups/").ok_or_else(|| {
        Error::invalid(
            field,
            "must be programmes/{p}/cycles/{year}/reviewGroups/{group}",
        )
    })?;
    let (p, y) = cycle_id(cycle, field)?;
    if !qaward_kit::names::valid_id(id) {
        return Err(Error::invalid(field, "the group id is malformed"));
    }
    Ok((p, y, id.to_string()))
}

pub(crate) fn application_resource(row: &ApplicationRow) -> String {
    format!(
        "programmes/{}/cycles/{}/applications/{}",
        row.programme_id, row.year, row.credit_code
    )
}

/// The application's resource name from its id (`{p}/{y}/{code}`).
pub(crate) fn resource_of_id(id: &str) -> String {
    let mut p = id.splitn(3, '/');
    let (a, b, c) = (
        p.next().unwrap_or(""),
        p.next().unwrap_or(""),
        p.next().unwrap_or(""),
    );
    format!("programmes/{a}/cycles/{b}/applications/{c}")
}

/// The group as its reader may see it: members are sealed from everyone but the office and
/// the supervisor.
fn group_pb(g: &ReviewGroupRow, c: &Caller) -> pb::ReviewGroup {
    let office = matches!(c.role, Role::Office | Role::Supervisor);
    let stage = ReviewStage::parse(&g.stage).unwrap_or(ReviewStage::Materials);
    pb::ReviewGroup {
        name: format!(
            "programmes/{}/cycles/{}/reviewGroups/{}",
            g.programme_id, g.year, g.id
        ),
        stage: stage_pb(stage) as i32,
        applications: g
            .applications
            .iter()
            .map(|(a, _)| resource_of_id(a))
            .collect(),
        window_start: parse_iso_date(&g.window_start).map(date_to_pb),
        window_end: parse_iso_date(&g.window_end).map(date_to_pb),
        entropy_commitment: g.entropy_commitment.clone(),
        entropy_source: g.entropy_source.clone(),
        state: (if g.state == "STARTED" {
            pb::ReviewGroupState::Started
        } else {
            pb::ReviewGroupState::Prepared
        }) as i32,
        draw: g.draw.clone(),
        panel: g.panel.clone(),
        members: if office {
            g.members
                .iter()
                .map(|(r, _)| format!("reviewers/{r}"))
                .collect()
        } else {
            Vec::new()
        },
        assignments: g
            .applications
            .iter()
            .map(|(_, a)| a.clone())
            .filter(|a| !a.is_empty())
            .collect(),
        size: g.size as i32,
        specialities: g.specialities.clone(),
        advisors: g
            .advisors
            .iter()
            .map(|a| format!("reviewers/{a}"))
            .collect(),
        create_time: Some(to_timestamp(g.created_micros)),
    }
}

/// A stored ISO date as people read it (2026年7月10日).
pub(crate) fn read_date(iso: &str) -> String {
    parse_iso_date(iso).map(chinese_date).unwrap_or_default()
}

pub(crate) fn upstream(service: &'static str) -> impl Fn(Status) -> Error {
    move |s| Error::from_upstream(service, &s)
}

/// The scoring settings of a programme's settings.
fn result_settings(s: &Settings) -> spb::ResultSettings {
    let dec = |d: Decimal| {
        Some(qaward_proto::qaward::common::v1::Decimal {
            value: d.normalize().to_string(),
        })
    };
    spb::ResultSettings {
        materials_threshold: dec(s.materials_threshold),
        materials_weight: dec(s.materials_weight),
        site_weight: dec(s.site_weight),
        final_threshold: dec(s.final_selection_threshold),
        candidate_threshold: dec(s.candidate_threshold),
        max_candidates: s.max_candidates as i32,
        ..Default::default()
    }
}

pub(crate) fn decimal(d: &Option<qaward_proto::qaward::common::v1::Decimal>) -> Option<Decimal> {
    d.as_ref().and_then(|d| d.value.parse().ok())
}

impl ApplicationsApi {
    /// A cycle's results as scoring computes them with the cycle's settings, for the caller.
    pub(crate) async fn scoring_results(
        &self,
        c: &Caller,
        p: &str,
        y: i64,
        settings: &Settings,
    ) -> Result<spb::CycleResults> {
        let mut compute = Request::new(spb::ComputeResultsRequest {
            cycle: review::scoring_cycle(p, y),
            settings: Some(result_settings(settings)),
        });
        relay_token(c, &mut compute);
        Ok(self
            .scoring()
            .compute_results(compute)
            .await
            .map_err(upstream("scoring"))?
            .into_inner())
    }

    /// Releases a stage of a cycle in scoring, once (a retry is recognised by its request id).
    pub(crate) async fn release_in_scoring(
        &self,
        c: &Caller,
        p: &str,
        y: i64,
        stage: spb::Stage,
    ) -> Result<()> {
        let cycle = review::scoring_cycle(p, y);
        let mut release = Request::new(spb::ReleaseStageRequest {
            cycle: cycle.clone(),
            stage: stage as i32,
            request_id: derived_request_id(&[&cycle, stage.as_str_name(), "release"]),
        });
        relay_token(c, &mut release);
        self.scoring()
            .release_stage(release)
            .await
            .map_err(upstream("scoring"))?;
        Ok(())
    }

    pub(crate) async fn review_prepare(
        &self,
        request: Request<pb::PrepareReviewGroupRequest>,
    ) -> Result<Response<pb::ReviewGroup>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let (p, y) = cycle_id(&r.parent, "parent")?;
            c.require_programme(&p, &[Role::Office])?;
            let g = r
                .review_group
                .as_ref()
                .ok_or_else(|| Error::invalid("review_group", "is required"))?;
            let mut bad = Vec::new();
            let stage = stage_from_pb(g.stage);
            if stage.is_none() {
                bad.push(FieldViolation::new(
                    "review_group.stage",
                    "must be MATERIALS, DEFENCE or SITE",
                ));
            }
            let mut codes = Vec::new();
            for (i, a) in g.applications.iter().enumerate() {
                let field = format!("review_group.applications[{i}]");
                match application_name(a, &field) {
                    Ok((ap, ay, code)) if ap == p && ay == y => {
                        if codes.contains(&code) {
                            bad.push(FieldViolation::new(field, "is listed twice"));
                        } else {
                            codes.push(code);
                        }
                    }
                    Ok(_) => bad.push(FieldViolation::new(field, "is not of this cycle")),
                    Err(e) => bad.extend(e.violations.clone()),
                }
            }
            if g.applications.is_empty() || g.applications.len() > MAX_GROUP_APPLICATIONS {
                bad.push(FieldViolation::new(
                    "review_group.applications",
                    format!("must name 1-{MAX_GROUP_APPLICATIONS} applications"),
                ));
            }
            let mut window = Vec::new();
            for (field, d) in [
                ("review_group.window_start", &g.window_start),
                ("review_group.window_end", &g.window_end),
            ] {
                match d {
                    None => bad.push(FieldViolation::new(field, "is required")),
                    Some(d) => match date_from_pb(d, field) {
                        Ok(d) => window.push(d),
                        Err(e) => bad.extend(e.violations.clone()),
                    },
                }
            }
            if let [start, end] = window[..]
                && end < start
            {
                bad.push(FieldViolation::new(
                    "review_group.window_end",
                    "must not be before window_start",
                ));
            }
            let source = line(
                &g.entropy_source,
                "review_group.entropy_source",
                200,
                &mut bad,
            );
            let commitment = g.entropy_commitment.trim().to_ascii_lowercase();
            let is_sha256 =
                commitment.len() == 64 && commitment.bytes().all(|b| b.is_ascii_hexdigit());
            if !commitment.is_empty() && !is_sha256 {
                bad.push(FieldViolation::new(
                    "review_group.entropy_commitment",
                    "must be a SHA-256 in hex (64 characters) or empty",
                ));
            }
            let mut specialities = Vec::new();
            for (i, s) in g.specialities.iter().enumerate() {
                match cn::industry(s) {
                    Ok(s) if !specialities.contains(&s) => specialities.push(s),
                    Ok(_) => bad.push(FieldViolation::new(
                        format!("review_group.specialities[{i}]"),
                        "is listed twice",
                    )),
                    Err(e) => bad.push(FieldViolation::new(
                        format!("review_group.specialities[{i}]"),
                        e.to_string(),
                    )),
                }
            }
            // a defence panel seats 1-2 non-scoring advisors; no other group has any.
            let mut advisors: Vec<String> = Vec::new();
            for (i, a) in g.advisors.iter().enumerate() {
                match a
                    .strip_prefix("reviewers/")
                    .filter(|x| !x.is_empty() && x.len() <= 64 && !x.contains('/'))
                {
                    Some(id) if !advisors.contains(&id.to_ascii_uppercase()) => {
                        advisors.push(id.to_ascii_uppercase())
                    }
                    _ => bad.push(FieldViolation::new(
                        format!("review_group.advisors[{i}]"),
                        "must be reviewers/{id}, once",
                    )),
                }
            }
            if stage == Some(ReviewStage::Defence) && !(1..=2).contains(&advisors.len()) {
                bad.push(FieldViolation::new(
                    "review_group.advisors",
                    "a defence panel invites 1-2 non-scoring advisors (R-14)",
                ));
            }
            if stage.is_some_and(|s| s != ReviewStage::Defence) && !advisors.is_empty() {
                bad.push(FieldViolation::new(
                    "review_group.advisors",
                    "advisors sit only on the defence panel (R-14)",
                ));
            }
            let (Some(stage), &[start, end]) = (stage, &window[..]) else {
                return Err(Error::invalid_fields(bad));
            };
            if !bad.is_empty() {
                return Err(Error::invalid_fields(bad));
            }
            let key = RequestKey::new("PrepareReviewGroup", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(self.db(), &key).await? {
                return Ok(done);
            }

            // Read what the draw needs; every application must be where this review starts.
            let mut conn = self.db().pool().acquire().await?;
            let cycle = store::get_cycle(&mut conn, &p, y).await?;
            let settings = store::settings_version(&mut conn, &p, cycle.settings_version).await?;
            let mut ids = Vec::new();
            let mut industries = Vec::new();
            for code in &codes {
                let l = load(&mut conn, &p, y, code).await?;
                review::may_join(stage, stage_of(&l.row)?).map_err(|e| {
                    refused(e).with_metadata("application", application_resource(&l.row))
                })?;
                if let Some(other) = store::group_of(&mut conn, &l.row.id, stage.as_str()).await? {
                    return Err(Error::rule(
                        stage.rule(),
                        "ALREADY_IN_A_GROUP",
                        format!(
                            "申报{}已分入本阶段的评审组{}",
                            application_resource(&l.row),
                            other.id
                        ),
                    ));
                }
                ids.push(l.row.id.clone());
                industries.push(l.enterprise.industry_code.clone());
            }
            drop(conn);
            if specialities.is_empty() {
                specialities = review::specialities(&industries);
            }
            let size = review::ReviewStage::size(stage, &settings);

            let mut call = Request::new(rpb::PrepareDrawRequest {
                parent: format!("programmes/{p}"),
                draw: Some(rpb::Draw {
                    purpose: purpose(stage) as i32,
                    enterprise_codes: codes.iter().map(|c| c.as_str().to_string()).collect(),
                    size: size as i32,
                    backups: settings.draw_backups as i32,
                    specialities: specialities
                        .iter()
                        .map(|s| rpb::SpecialityRequirement {
                            speciality: s.clone(),
                            min_members: 1,
                        })
                        .collect(),
                    window_start: Some(date_to_pb(start)),
                    window_end: Some(date_to_pb(end)),
                    entropy_commitment: commitment.clone(),
                    entropy_source: source.clone(),
                    ..Default::default()
                }),
                request_id: derived_request_id(&[&r.request_id, &c.subject, "prepare"]),
            });
            relay_token(&c, &mut call);
            let draw = self
                .reviewers()
                .prepare_draw(call)
                .await
                .map_err(upstream("reviewers"))?
                .into_inner();

            let now = self.now();
            let row = ReviewGroupRow {
                id: self.new_id(),
                programme_id: p.clone(),
                year: y,
                stage: stage.as_str().to_string(),
                state: "PREPARED".to_string(),
                window_start: iso_date(start),
                window_end: iso_date(end),
                entropy_commitment: commitment,
                entropy_source: source,
                specialities,
                advisors,
                size: i64::from(size),
                draw: draw.name.clone(),
                panel: String::new(),
                created_micros: unix_micros(now),
                applications: ids.into_iter().map(|a| (a, String::new())).collect(),
                members: Vec::new(),
            };
            let mut tx = self.db().begin().await?;
            store::insert_review_group(&mut tx, &row).await?;
            let response = group_pb(&row, &c);
            let record = AuditRecord::by(&c, "review_group.prepare", response.name.clone())
                .because(stage.rule())
                .with_detail(serde_json::json!({
                    "stage": row.stage,
                    "draw": row.draw,
                    "size": size,
                    "applications": response.applications,
                    "specialities": row.specialities,
                }));
            change::commit(tx, now, &key, record, &response).await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    pub(crate) async fn review_start(
        &self,
        request: Request<pb::StartReviewGroupRequest>,
    ) -> Result<Response<pb::ReviewGroup>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let (p, y, id) = group_name(&r.name, "name")?;
            c.require_programme(&p, &[Role::Office])?;
            let entropy = r.entropy.trim().to_string();
            if entropy.is_empty() || entropy.len() > 256 {
                return Err(Error::invalid("entropy", "must be 1-256 characters"));
            }
            let key = RequestKey::new("StartReviewGroup", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(self.db(), &key).await? {
                return Ok(done);
            }
            let mut conn = self.db().pool().acquire().await?;
            let mut g = store::get_review_group(&mut conn, &p, y, &id).await?;
            let stage = ReviewStage::parse(&g.stage)
                .ok_or_else(|| Error::internal(format_args!("group stage {}", g.stage)))?;
            if g.state == "STARTED" {
                return Err(Error::rule(
                    "R-45",
                    "ALREADY_STARTED",
                    format!("评审组{id}已抽取，不能重新抽取"),
                ));
            }
            // Every application must still be where the review starts (none withdrew).
            for (app, _) in &g.applications {
                let row = store::get_application(&mut conn, app).await?;
                review::may_join(stage, stage_of(&row)?).map_err(|e| {
                    refused(e).with_metadata("application", application_resource(&row))
                })?;
            }
            let cycle = store::get_cycle(&mut conn, &p, y).await?;
            let settings = store::settings_version(&mut conn, &p, cycle.settings_version).await?;
            drop(conn);

            // The draw: executed once; a retry (by anyone) finds it executed.
            let mut reviewers = self.reviewers();
            let mut get = Request::new(rpb::GetDrawRequest {
                name: g.draw.clone(),
            });
            relay_token(&c, &mut get);
            let mut draw = reviewers
                .get_draw(get)
                .await
                .map_err(upstream("reviewers"))?
                .into_inner();
            if draw.state == rpb::DrawState::Prepared as i32 {
                let mut exec = Request::new(rpb::ExecuteDrawRequest {
                    name: g.draw.clone(),
                    entropy: entropy.clone(),
                    request_id: derived_request_id(&[&g.id, "execute"]),
                });
                relay_token(&c, &mut exec);
                draw = reviewers
                    .execute_draw(exec)
                    .await
                    .map_err(upstream("reviewers"))?
                    .into_inner();
            }
            if draw.state != rpb::DrawState::Executed as i32 {
                return Err(Error::rule(
                    "R-40",
                    "DRAW_FAILED",
                    format!("抽取未能完成：{}", draw.failure),
                )
                .with_metadata("draw", draw.name.clone()));
            }
            let leader = draw.leader.clone();
            let mut members: Vec<(String, bool)> = vec![(leader.clone(), true)];
            members.extend(
                draw.members
                    .iter()
                    .filter(|m| **m != leader)
                    .map(|m| (m.clone(), false)),
            );
            let mut get_panel = Request::new(rpb::GetPanelRequest {
                name: draw.panel.clone(),
            });
            relay_token(&c, &mut get_panel);
            let panel = reviewers
                .get_panel(get_panel)
                .await
                .map_err(upstream("reviewers"))?
                .into_inner();

            // One scoring assignment per application, reused when a retry finds it.
            let rubric = if settings.rubric.is_empty() {
                format!("rubrics/{}", qaward_kit::names::DEFAULT_RUBRIC_ID)
            } else {
                settings.rubric.clone()
            };
            let scoring_cycle = review::scoring_cycle(&p, y);
            let mut scoring = self.scoring();
            let mut conn = self.db().pool().acquire().await?;
            for (app, assignment) in g.applications.iter_mut() {
                let row = store::get_application(&mut conn, app).await?;
                let enterprise = store::get_enterprise(&mut conn, &row.credit_code).await?;
                let resource = application_resource(&row);
                let mut list = Request::new(spb::ListAssignmentsRequest {
                    cycle: scoring_cycle.clone(),
                    application: resource.clone(),
                    page_size: 10,
                    page_token: String::new(),
                });
                relay_token(&c, &mut list);
                let existing = scoring
                    .list_assignments(list)
                    .await
                    .map_err(upstream("scoring"))?
                    .into_inner()
                    .assignments
                    .into_iter()
                    .find(|a| a.stage == scoring_stage(stage) as i32);
                let made = match existing {
                    Some(a) => a,
                    None => {
                        let mut create = Request::new(spb::CreateAssignmentRequest {
                            assignment: Some(spb::Assignment {
                                cycle: scoring_cycle.clone(),
                                application: resource.clone(),
                                stage: scoring_stage(stage) as i32,
                                rubric: rubric.clone(),
                                people: members
                                    .iter()
                                    .map(|(m, leads)| spb::AssignedPerson {
                                        reviewer: format!("reviewers/{m}"),
                                        role: if *leads && stage != ReviewStage::Defence {
                                            spb::AssignmentRole::Leader
                                        } else {
                                            spb::AssignmentRole::Member
                                        } as i32,
                                    })
                                    .chain(g.advisors.iter().map(|a| spb::AssignedPerson {
                                        reviewer: format!("reviewers/{a}"),
                                        role: spb::AssignmentRole::Advisor as i32,
                                    }))
                                    .collect(),
                                enterprise_code: row.credit_code.clone(),
                                recommending_unit: enterprise.recommending_unit.clone(),
                                ..Default::default()
                            }),
                            request_id: derived_request_id(&[&g.id, app, "assign"]),
                        });
                        relay_token(&c, &mut create);
                        scoring
                            .create_assignment(create)
                            .await
                            .map_err(upstream("scoring"))?
                            .into_inner()
                    }
                };
                *assignment = made.name;
            }
            drop(conn);

            // Move the applications, with their audit records and notices, in one transaction.
            let now = self.now();
            let mut tx = self.db().begin().await?;
            g.state = "STARTED".to_string();
            g.panel = draw.panel.clone();
            g.members = members.clone();
            store::start_review_group(&mut tx, &g, unix_micros(now)).await?;
            let window = format!(
                "{}至{}",
                read_date(&g.window_start),
                read_date(&g.window_end)
            );
            for (app, assignment) in &g.applications {
                let mut row = store::get_application(&mut tx, app).await?;
                let d = stage::apply(stage_of(&row)?, &stage.start_step()).map_err(refused)?;
                decide(&mut row, d.to, &d.why, unix_micros(now));
                store::save_application(&mut tx, &row).await?;
                let enterprise = store::get_enterprise(&mut tx, &row.credit_code).await?;
                let name = enterprise.display_name.clone();
                match stage {
                    ReviewStage::Defence => {
                        notify::enqueue(
                            &mut tx,
                            now,
                            &notice(
                                "defence.scheduled",
                                &row.credit_code,
                                &name,
                                &[
                                    ("enterprise_name", name.clone()),
                                    ("defence_time", window.clone()),
                                    ("place", "另行通知".to_string()),
                                ],
                            ),
                        )
                        .await?;
                    }
                    ReviewStage::Site => {
                        notify::enqueue(
                            &mut tx,
                            now,
                            &notice(
                                "site_visit.scheduled",
                                &row.credit_code,
                                &name,
                                &[
                                    ("enterprise_name", name.clone()),
                                    ("visit_start", read_date(&g.window_start)),
                                    ("visit_end", read_date(&g.window_end)),
                                ],
                            ),
                        )
                        .await?;
                    }
                    ReviewStage::Materials => {}
                }
                let record = AuditRecord::by(
                    &c,
                    &format!("application.{}", stage.start_step().name()),
                    application_resource(&row),
                )
                .because(d.why.rule)
                .with_detail(serde_json::json!({
                    "group": g.id, "draw": g.draw, "assignment": assignment,
                }));
                audit::append(&mut tx, now, &record).await?;
            }
            for m in &panel.members {
                let Some(id) = m.reviewer.strip_prefix("reviewers/").or(Some(&m.reviewer)) else {
                    continue;
                };
                if !members.iter().any(|(x, _)| x == id) {
                    continue;
                }
                let respond_by = m
                    .respond_by
                    .as_ref()
                    .map(|t| {
                        chinese_date(
                            time::OffsetDateTime::from_unix_timestamp(t.seconds)
                                .unwrap_or(now)
                                .to_offset(time::macros::offset!(+8))
                                .date(),
                        )
                    })
                    .unwrap_or_default();
                notify::enqueue(
                    &mut tx,
                    now,
                    &notice(
                        "reviewer.drawn",
                        id,
                        "",
                        &[
                            ("reviewer_name", id.to_string()),
                            ("purpose", stage.label().to_string()),
                            ("window_start", read_date(&g.window_start)),
                            ("window_end", read_date(&g.window_end)),
                            ("respond_by", respond_by),
                        ],
                    ),
                )
                .await?;
            }
            let response = group_pb(&g, &c);
            let record = AuditRecord::by(&c, "review_group.start", response.name.clone())
                .because(stage.rule())
                .with_detail(serde_json::json!({
                    "draw": g.draw, "panel": g.panel, "members": response.members,
                    "assignments": response.assignments,
                }));
            change::commit(tx, now, &key, record, &response).await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    pub(crate) async fn review_get(
        &self,
        request: Request<pb::GetReviewGroupRequest>,
    ) -> Result<Response<pb::ReviewGroup>, Status> {
        let c = caller(&request)?;
        let run = async {
            let (p, y, id) = group_name(&request.get_ref().name, "name")?;
            c.require_programme(&p, &[Role::Office, Role::Supervisor])?;
            let mut conn = self.db().pool().acquire().await?;
            let g = store::get_review_group(&mut conn, &p, y, &id).await?;
            Ok(group_pb(&g, &c))
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    pub(crate) async fn review_list(
        &self,
        request: Request<pb::ListReviewGroupsRequest>,
    ) -> Result<Response<pb::ListReviewGroupsResponse>, Status> {
        let c = caller(&request)?;
        let run = async {
            let r = request.get_ref();
            let (p, y) = cycle_id(&r.parent, "parent")?;
            c.require_programme(&p, &[Role::Office, Role::Supervisor])?;
            let page = Page::parse(r.page_size, &r.page_token)?;
            let mut conn = self.db().pool().acquire().await?;
            let mut rows = store::list_review_groups(&mut conn, &p, y, &page).await?;
            let next = page.finish(&mut rows, |g| g.id.clone());
            Ok(pb::ListReviewGroupsResponse {
                review_groups: rows.iter().map(|g| group_pb(g, &c)).collect(),
                next_page_token: next,
            })
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    pub(crate) async fn review_release(
        &self,
        request: Request<pb::ReleaseReviewStageRequest>,
    ) -> Result<Response<pb::ReleaseReviewStageResponse>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let (p, y) = cycle_id(&r.cycle, "cycle")?;
            c.require_programme(&p, &[Role::Office])?;
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
            let key = RequestKey::new("ReleaseReviewStage", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(self.db(), &key).await? {
                return Ok(done);
            }
            let mut conn = self.db().pool().acquire().await?;
            let cycle = store::get_cycle(&mut conn, &p, y).await?;
            let settings = store::settings_version(&mut conn, &p, cycle.settings_version).await?;
            let running = self.in_review(&mut conn, &p, y, stage).await?;
            drop(conn);
            if running.is_empty() {
                return Err(Error::rule(
                    stage.rule(),
                    "NOTHING_TO_RELEASE",
                    format!("本年度没有处于{}阶段的申报", stage.label()),
                ));
            }
            let scoring_cycle = review::scoring_cycle(&p, y);
            let results = self.scoring_results(&c, &p, y, &settings).await?;
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
            if !waiting.is_empty() {
                return Err(Error::rule(
                    "R-12",
                    "CONSENSUS_MISSING",
                    format!("以下申报的评审组尚未签署共识评分：{}", waiting.join("、")),
                )
                .with_metadata("waiting", waiting.join(",")));
            }
            self.release_in_scoring(&c, &p, y, scoring_stage(stage))
                .await?;

            let now = self.now();
            let mut tx = self.db().begin().await?;
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
                        &c,
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
                    &scoring_cycle,
                    &last,
                )
                .await?;
                moved.push(application_pb(&mut tx, &row).await?);
            }
            let response = pb::ReleaseReviewStageResponse {
                applications: moved,
            };
            let record = AuditRecord::by(
                &c,
                "review_stage.release",
                format!("{}/stages/{}", r.cycle, stage.as_str().to_lowercase()),
            )
            .because(if stage == ReviewStage::Materials {
                "R-13"
            } else {
                "R-16"
            });
            change::commit(tx, now, &key, record, &response).await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    /// The applications of a cycle whose `stage` review runs and that a started group reviews.
    async fn in_review(
        &self,
        conn: &mut Conn,
        p: &str,
        y: i64,
        stage: ReviewStage,
    ) -> Result<Vec<ApplicationRow>> {
        let mut out = Vec::new();
        for row in store::applications_in(conn, p, y, stage.running().as_str()).await? {
            if store::group_of(conn, &row.id, stage.as_str())
                .await?
                .is_some_and(|g| g.state == "STARTED")
            {
                out.push(row);
            }
        }
        Ok(out)
    }

    /// The notice a released result sends: passed (prepare for the defence), failed (the
    /// feedback report, to the applicant and a copy to its recommending unit, R-13), or the
    /// final-selection decision.
    #[allow(clippy::too_many_arguments)]
    async fn result_notice(
        &self,
        tx: &mut Conn,
        now: time::OffsetDateTime,
        row: &ApplicationRow,
        enterprise: &store::EnterpriseRow,
        programme_name: &str,
        scoring_cycle: &str,
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
                                "/v1/{scoring_cycle}/applications/{}/feedbackReport",
                                application_resource(row)
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

    pub(crate) async fn review_stop_site_visit(
        &self,
        request: Request<pb::StopSiteVisitRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let (p, y, code) = application_name(&r.name, "name")?;
            let mut bad = Vec::new();
            let finding = line(&r.finding, "finding", 2_000, &mut bad);
            if !bad.is_empty() {
                return Err(Error::invalid_fields(bad));
            }
            let key = RequestKey::new("StopSiteVisit", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(self.db(), &key).await? {
                return Ok(done);
            }
            let now = self.now();
            let mut tx = self.db().begin().await?;
            let mut l = load(&mut tx, &p, y, &code).await?;
            // Only the leader of the site group that visits this applicant stops the visit.
            let leads = store::group_of(&mut tx, &l.row.id, ReviewStage::Site.as_str())
                .await?
                .filter(|g| g.state == "STARTED")
                .is_some_and(|g| {
                    c.role == Role::Reviewer
                        && g.members
                            .iter()
                            .any(|(m, leader)| *leader && m.eq_ignore_ascii_case(&c.subject))
                });
            if !leads {
                return Err(Error::permission_denied(
                    "only the leader of the site group visiting this applicant stops the visit (R-15)",
                ));
            }
            let current = stage_of(&l.row)?;
            if current != Stage::SiteVisit {
                return Err(refused(Explanation::new(
                    "R-15",
                    "STEP_NOT_ALLOWED",
                    format!("申报处于{}阶段，没有进行中的现场评审", current.as_str()),
                )));
            }
            if store::site_stop(&mut tx, &l.row.id).await?.is_some() {
                return Err(Error::rule(
                    "R-15",
                    "ALREADY_STOPPED",
                    "现场评审已经中止，等待评选委员会办公室确认",
                ));
            }
            store::insert_site_stop(&mut tx, &l.row.id, &finding, &c.subject, unix_micros(now))
                .await?;
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
            let record = AuditRecord::by(&c, "application.stop_site_visit", response.name.clone())
                .because("R-15")
                .with_detail(serde_json::json!({ "finding": finding }));
            change::commit(tx, now, &key, record, &response).await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }
}

/// whether a reviewer may read an application now — drawn into a started group of a
/// review that is running for it.
pub(crate) async fn reviewer_may_read(
    conn: &mut Conn,
    c: &Caller,
    row: &ApplicationRow,
) -> Result<bool> {
    if c.role != Role::Reviewer {
        return Ok(false);
    }
    let mut drawn_for = Vec::new();
    for stage in ReviewStage::ALL {
        if let Some(g) = store::group_of(conn, &row.id, stage.as_str()).await?
            && g.state == "STARTED"
            && g.members
                .iter()
                .any(|(m, _)| m.eq_ignore_ascii_case(&c.subject))
        {
            drawn_for.push(stage);
        }
    }
    Ok(review::reviewer_may_read(stage_of(row)?, &drawn_for))
}
