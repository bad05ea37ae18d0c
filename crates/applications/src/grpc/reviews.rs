//! Review groups: prepared with their applicants, drawn through the reviewers
//! service, assigned in the scoring service; read by whom they concern.

use qaward_kit::{
    Error, Result,
    audit::{self, AuditRecord},
    auth::{Caller, relay_token},
    change,
    clock::unix_micros,
    cn,
    convert::{chinese_date, date_from_pb, date_to_pb, iso_date},
    db::Conn,
    error::FieldViolation,
    idempotency::{RequestKey, derived_request_id},
    notify,
    paging::Page,
};
use qaward_proto::qaward::{applications::v1 as pb, reviewers::v1 as rpb, scoring::v1 as spb};
use tonic::Request;

use crate::{
    domain::{
        refused,
        review::{self, GroupState, ReviewStage},
        settings::Settings,
        stage,
    },
    store::{self, ApplicationRow, ReviewGroupRow, decide, stage_of},
};

use super::{
    ApplicationsApi,
    access::load,
    convert::{
        group_pb, line, notice, purpose, read_date, result_settings, scoring_stage, stage_from_pb,
    },
    names::{application_name, application_resource, cycle_id, group_name},
    upstream,
};

/// Applications one group may review at once.
pub(super) const MAX_GROUP_APPLICATIONS: usize = 30;

impl ApplicationsApi {
    /// The award programme's tenant in the reviewers service (`DrawTenant`), made on the
    /// programme's first draw with the seed's draw policy, under the office's own token and in
    /// its name: a county creates the award programme here and nothing in the reviewers
    /// service. A tenant made there first (a custom draw policy) is kept as it is. The group
    /// sizes the draws ask for come from this programme's settings, which the reviewers'
    /// rule of sizes already checked.
    async fn ensure_draw_tenant(&self, c: &Caller, p: &str) -> Result<()> {
        let mut reviewers = self.reviewers();
        let mut get = Request::new(rpb::GetProgrammeRequest {
            name: format!("programmes/{p}"),
        });
        relay_token(c, &mut get);
        match reviewers.get_programme(get).await {
            Ok(_) => return Ok(()),
            Err(s) if s.code() == tonic::Code::NotFound => {}
            Err(s) => return Err(upstream("reviewers")(s)),
        }
        let mut conn = self.db().pool().acquire().await?;
        let programme = store::get_programme(&mut conn, p).await?;
        drop(conn);
        let mut create = Request::new(rpb::CreateProgrammeRequest {
            programme: Some(rpb::DrawTenant {
                display_name: programme.display_name,
                ..Default::default()
            }),
            programme_id: p.to_string(),
            request_id: derived_request_id(&[p, "draw-tenant"]),
        });
        relay_token(c, &mut create);
        match reviewers.create_programme(create).await {
            // Made meanwhile by another office call: the tenant is there either way.
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::AlreadyExists => Ok(()),
            Err(s) => Err(upstream("reviewers")(s)),
        }
    }

    /// A cycle's results as scoring computes them with the cycle's settings, for the caller.
    pub(crate) async fn scoring_results(
        &self,
        c: &Caller,
        p: &str,
        y: i64,
        settings: &Settings,
    ) -> Result<spb::CycleResults> {
        let mut compute = Request::new(spb::ComputeResultsRequest {
            cycle: qaward_proto::names::cycle(p, y),
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
        let cycle = qaward_proto::names::cycle(p, y);
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

    pub(super) async fn review_prepare(
        &self,
        c: &Caller,
        r: pb::PrepareReviewGroupRequest,
    ) -> Result<pb::ReviewGroup> {
        let (p, y) = cycle_id(&r.parent, "parent")?;
        c.acts_for(&p)?;
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
        if !g.entropy_commitment.trim().is_empty() {
            bad.push(FieldViolation::new(
                "review_group.entropy_commitment",
                "leave empty: the draw's parties commit at the reviewers service (R-53)",
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
        // advisors are named once each; how many a panel seats is the programme's (below).
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
        let (Some(stage), &[start, end]) = (stage, &window[..]) else {
            return Err(Error::invalid_fields(bad));
        };
        if !bad.is_empty() {
            return Err(Error::invalid_fields(bad));
        }
        let key = RequestKey::new("PrepareReviewGroup", c, &r.request_id, &r)?;
        if let Some(done) = change::recall(self.db(), &key).await? {
            return Ok(done);
        }

        // Read what the draw needs; every application must be where this review starts.
        let mut conn = self.db().pool().acquire().await?;
        let cycle = store::get_cycle(&mut conn, &p, y).await?;
        let settings = store::settings_version(&mut conn, &p, cycle.settings_version).await?;
        let days = (end - start).whole_days() + 1;
        if let Some(why) = review::window_problem(stage, days, settings.site_visit_max_days) {
            return Err(Error::invalid("review_group.window_end", why));
        }
        if let Some(why) = review::advisors_problem(
            stage,
            advisors.len(),
            settings.min_advisors,
            settings.max_advisors,
        ) {
            return Err(Error::invalid("review_group.advisors", why));
        }
        let mut ids = Vec::new();
        let mut industries = Vec::new();
        for code in &codes {
            let l = load(&mut conn, &p, y, code).await?;
            review::may_join(stage, stage_of(&l.row)?).map_err(|e| {
                refused(e).with_metadata("application", application_resource(&l.row))
            })?;
            let other = store::group_of(&mut conn, &l.row.id, stage.as_str()).await?;
            review::one_group_per_stage(
                stage,
                &application_resource(&l.row),
                other.as_ref().map(|g| g.id.as_str()),
            )
            .map_err(refused)?;
            ids.push(l.row.id.clone());
            industries.push(l.enterprise.industry_code.clone());
        }
        drop(conn);
        if specialities.is_empty() {
            specialities = review::specialities(&industries);
        }
        let size = review::ReviewStage::size(stage, &settings);
        self.ensure_draw_tenant(c, &p).await?;

        let mut call = Request::new(rpb::PrepareDrawRequest {
            parent: format!("programmes/{p}"),
            draw: Some(rpb::Draw {
                purpose: purpose(stage) as i32,
                enterprise_codes: codes.iter().map(|c| c.as_str().to_string()).collect(),
                size: size as i32,
                backups: Some(settings.draw_backups as i32),
                specialities: specialities
                    .iter()
                    .map(|s| rpb::SpecialityRequirement {
                        speciality: s.clone(),
                        min_members: 1,
                    })
                    .collect(),
                window_start: Some(date_to_pb(start)),
                window_end: Some(date_to_pb(end)),
                entropy_source: source.clone(),
                fixes_public_value: g.fixes_public_value,
                ..Default::default()
            }),
            request_id: derived_request_id(&[&r.request_id, &c.subject, "prepare"]),
        });
        relay_token(c, &mut call);
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
            state: GroupState::Prepared,
            window_start: iso_date(start),
            window_end: iso_date(end),
            entropy_commitment: String::new(),
            entropy_source: source,
            fixes_public_value: g.fixes_public_value,
            specialities,
            advisors,
            size: i64::from(size),
            draw: draw.name.clone(),
            panel: String::new(),
            created_micros: unix_micros(now),
            applications: ids.into_iter().map(|a| (a, String::new())).collect(),
            members: Vec::new(),
        };
        let mut tx = match change::turn(self.db(), &key).await? {
            change::Turn::Answered(done) => return Ok(done),
            change::Turn::Mine(tx) => tx,
        };
        store::insert_review_group(&mut tx, &row).await?;
        let response = group_pb(&row, c);
        let record = AuditRecord::by(c, "review_group.prepare", response.name.clone())
            .because(stage.rule())
            .with_detail(serde_json::json!({
                "stage": row.stage,
                "draw": row.draw,
                "size": size,
                "applications": response.applications,
                "specialities": row.specialities,
            }));
        change::commit(self.db(), tx, now, &key, record, &response).await?;
        Ok(response)
    }

    pub(super) async fn review_start(
        &self,
        c: &Caller,
        r: pb::StartReviewGroupRequest,
    ) -> Result<pb::ReviewGroup> {
        let (p, y, id) = group_name(&r.name, "name")?;
        c.acts_for(&p)?;
        if !r.entropy.is_empty() {
            return Err(Error::invalid(
                "entropy",
                "leave empty: the draw executes on its parties' last reveal (R-53)",
            ));
        }
        let key = RequestKey::new("StartReviewGroup", c, &r.request_id, &r)?;
        if let Some(done) = change::recall(self.db(), &key).await? {
            return Ok(done);
        }
        let mut conn = self.db().pool().acquire().await?;
        let mut g = store::get_review_group(&mut conn, &p, y, &id).await?;
        let stage = ReviewStage::parse(&g.stage)
            .ok_or_else(|| Error::internal(format_args!("group stage {}", g.stage)))?;
        review::may_draw(&id, g.state).map_err(refused)?;
        // Every application must still be where the review starts (none withdrew).
        for (app, _) in &g.applications {
            let row = store::get_application(&mut conn, app).await?;
            review::may_join(stage, stage_of(&row)?)
                .map_err(|e| refused(e).with_metadata("application", application_resource(&row)))?;
        }
        let cycle = store::get_cycle(&mut conn, &p, y).await?;
        let settings = store::settings_version(&mut conn, &p, cycle.settings_version).await?;
        drop(conn);

        // The draw: executed once; a retry (by anyone) finds it executed.
        let mut reviewers = self.reviewers();
        let mut get = Request::new(rpb::GetDrawRequest {
            name: g.draw.clone(),
        });
        relay_token(c, &mut get);
        let mut draw = reviewers
            .get_draw(get)
            .await
            .map_err(upstream("reviewers"))?
            .into_inner();
        // Executed by its last reveal, it is read; a draw whose parts are all in but whose
        // execution did not complete is executed here (the answer carries the panel); one still
        // waiting for a part is refused with what it waits for.
        let mut panel = None;
        if draw.state == rpb::DrawState::Prepared as i32 {
            let mut exec = Request::new(rpb::ExecuteDrawRequest {
                name: g.draw.clone(),
                entropy: String::new(),
                request_id: derived_request_id(&[&g.id, "execute"]),
            });
            relay_token(c, &mut exec);
            let executed = reviewers
                .execute_draw(exec)
                .await
                .map_err(upstream("reviewers"))?
                .into_inner();
            draw = executed.draw.unwrap_or_default();
            panel = executed.panel;
        }
        review::drawn(
            &draw.name,
            draw.state == rpb::DrawState::Executed as i32,
            &draw.failure,
        )
        .map_err(refused)?;
        // The draw names reviewers `reviewers/{id}`; the group keeps their certificate numbers.
        let id = |name: &str| {
            qaward_proto::names::reviewer_id(name)
                .unwrap_or(name)
                .to_string()
        };
        let panel = match panel {
            Some(panel) => panel,
            None => {
                let mut get_panel = Request::new(rpb::GetPanelRequest {
                    name: draw.panel.clone(),
                });
                relay_token(c, &mut get_panel);
                reviewers
                    .get_panel(get_panel)
                    .await
                    .map_err(upstream("reviewers"))?
                    .into_inner()
            }
        };
        // The panel's sitting members, not the draw's: a member replaced between the draw's
        // execution and this start (a start retried after a timeout) is seated as replaced
        // the reviewers' event of it found no started group to move.
        let sitting: Vec<&rpb::PanelMember> = panel
            .members
            .iter()
            .filter(|m| {
                m.state == rpb::AssignmentState::Pending as i32
                    || m.state == rpb::AssignmentState::Accepted as i32
            })
            .collect();
        let members = review::seated(
            &sitting
                .iter()
                .find(|m| m.leader)
                .map(|m| id(&m.reviewer))
                .unwrap_or_default(),
            &sitting.iter().map(|m| id(&m.reviewer)).collect::<Vec<_>>(),
        );

        // One scoring assignment per application, reused when a retry finds it.
        let rubric = if settings.rubric.is_empty() {
            format!("rubrics/{}", qaward_proto::names::DEFAULT_RUBRIC_ID)
        } else {
            settings.rubric.clone()
        };
        let cycle_name = qaward_proto::names::cycle(&p, y);
        let mut scoring = self.scoring();
        let mut conn = self.db().pool().acquire().await?;
        for (app, assignment) in g.applications.iter_mut() {
            let row = store::get_application(&mut conn, app).await?;
            let enterprise = store::get_enterprise(&mut conn, &row.credit_code).await?;
            let resource = application_resource(&row);
            let mut list = Request::new(spb::ListAssignmentsRequest {
                cycle: cycle_name.clone(),
                application: resource.clone(),
                page_size: 10,
                page_token: String::new(),
            });
            relay_token(c, &mut list);
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
                            cycle: cycle_name.clone(),
                            application: resource.clone(),
                            stage: scoring_stage(stage) as i32,
                            rubric: rubric.clone(),
                            people: assigned_people(stage, &members, &g.advisors),
                            enterprise_code: row.credit_code.clone(),
                            recommending_unit: enterprise.recommending_unit.clone(),
                            // The group's days: a defence sheet is scored on them.
                            window_start: qaward_kit::convert::parse_iso_date(&g.window_start)
                                .map(date_to_pb),
                            window_end: qaward_kit::convert::parse_iso_date(&g.window_end)
                                .map(date_to_pb),
                            ..Default::default()
                        }),
                        request_id: derived_request_id(&[&g.id, app, "assign"]),
                    });
                    relay_token(c, &mut create);
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
        let mut tx = match change::turn(self.db(), &key).await? {
            change::Turn::Answered(done) => return Ok(done),
            change::Turn::Mine(tx) => tx,
        };
        g.state = GroupState::Started;
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
                c,
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
                            .to_offset(qaward_kit::clock::CHINA)
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
        let response = group_pb(&g, c);
        let record = AuditRecord::by(c, "review_group.start", response.name.clone())
            .because(stage.rule())
            .with_detail(serde_json::json!({
                "draw": g.draw, "panel": g.panel, "members": response.members,
                "assignments": response.assignments,
            }));
        change::commit(self.db(), tx, now, &key, record, &response).await?;
        Ok(response)
    }

    pub(super) async fn review_get(
        &self,
        c: &Caller,
        r: pb::GetReviewGroupRequest,
    ) -> Result<pb::ReviewGroup> {
        let (p, y, id) = group_name(&r.name, "name")?;
        c.acts_for(&p)?;
        let mut conn = self.db().pool().acquire().await?;
        let g = store::get_review_group(&mut conn, &p, y, &id).await?;
        Ok(group_pb(&g, c))
    }

    pub(super) async fn review_list(
        &self,
        c: &Caller,
        r: pb::ListReviewGroupsRequest,
    ) -> Result<pb::ListReviewGroupsResponse> {
        let (p, y) = cycle_id(&r.parent, "parent")?;
        c.acts_for(&p)?;
        let page = Page::parse(r.page_size, &r.page_token)?;
        let mut conn = self.db().pool().acquire().await?;
        let mut rows = store::list_review_groups(&mut conn, &p, y, &page).await?;
        let next = page.finish(&mut rows, |g| g.id.clone());
        Ok(pb::ListReviewGroupsResponse {
            review_groups: rows.iter().map(|g| group_pb(g, c)).collect(),
            next_page_token: next,
        })
    }

    /// The applications of a cycle whose `stage` review runs and that a started group reviews.
    pub(super) async fn in_review(
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
                .is_some_and(|g| g.state == GroupState::Started)
            {
                out.push(row);
            }
        }
        Ok(out)
    }
}

/// The people of a group's scoring assignments ([`review::scorers`]), as scoring takes them.
pub(crate) fn assigned_people(
    stage: ReviewStage,
    members: &[(String, bool)],
    advisors: &[String],
) -> Vec<spb::AssignedPerson> {
    review::scorers(stage, members, advisors)
        .into_iter()
        .map(|(reviewer, role)| spb::AssignedPerson {
            reviewer: format!("reviewers/{reviewer}"),
            role: match role {
                "LEADER" => spb::AssignmentRole::Leader,
                "ADVISOR" => spb::AssignmentRole::Advisor,
                _ => spb::AssignmentRole::Member,
            } as i32,
        })
        .collect()
}
