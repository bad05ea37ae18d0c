//! The gRPC surface of `qaward.scoring.v1.ScoringService`: validate at the edge, check the
//! caller, decide in `domain/`, record through `store.rs` with the audit record in the same
//! transaction.

use pb::scoring_service_server::ScoringService;
use qaward_kit::{
    Error, Result,
    audit::AuditRecord,
    auth::{Caller, Role},
    change,
    clock::{to_timestamp, unix_micros},
    db::Database,
    error::FieldViolation,
    idempotency::RequestKey,
    names::valid_id,
    paging::Page,
    server::ServiceContext,
};
use qaward_proto::qaward::{common::v1 as common, scoring::v1 as pb};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use crate::{
    domain::{
        charts, group,
        results::{self, DefenceRule, Outcome, Settings},
        review_log,
        rubric::{Category, Item, ItemKind, Rubric},
        sheet,
    },
    store::{self, AssignmentRow, ItemEntry, SheetRow},
};

pub struct ScoringApi {
    db: Database,
    ctx: ServiceContext,
}

impl ScoringApi {
    pub fn new(db: Database, ctx: ServiceContext) -> Self {
        ScoringApi { db, ctx }
    }

    fn now(&self) -> time::OffsetDateTime {
        self.ctx.clock.now()
    }

    fn new_id(&self) -> String {
        let mut b = [0u8; 8];
        self.ctx.randomness.fill(&mut b);
        hex::encode(b)
    }
}

fn dec(d: &Option<common::Decimal>, field: &str) -> Result<Option<Decimal>> {
    match d {
        None => Ok(None),
        Some(v) if v.value.trim().is_empty() => Ok(None),
        Some(v) => v
            .value
            .trim()
            .parse::<Decimal>()
            .map(Some)
            .map_err(|_| Error::invalid(field, "is not a decimal number")),
    }
}

fn dec_pb(d: Decimal) -> Option<common::Decimal> {
    Some(common::Decimal {
        value: d.normalize().to_string(),
    })
}

fn id_of<'a>(name: &'a str, collection: &str, field: &str) -> Result<&'a str> {
    name.strip_prefix(collection)
        .and_then(|r| r.strip_prefix('/'))
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .ok_or_else(|| Error::invalid(field, format!("must be {collection}/{{id}}")))
}

fn stage_name(s: i32) -> Option<&'static str> {
    match pb::Stage::try_from(s).ok()? {
        pb::Stage::Materials => Some("MATERIALS"),
        pb::Stage::Defence => Some("DEFENCE"),
        pb::Stage::Site => Some("SITE"),
        pb::Stage::Unspecified => None,
    }
}

fn stage_pb(s: &str) -> i32 {
    (match s {
        "MATERIALS" => pb::Stage::Materials,
        "DEFENCE" => pb::Stage::Defence,
        _ => pb::Stage::Site,
    }) as i32
}

fn rubric_from_pb(r: &pb::Rubric) -> Result<Rubric> {
    let mut bad = Vec::new();
    fn point(d: &Option<common::Decimal>, field: String, bad: &mut Vec<FieldViolation>) -> Decimal {
        match dec(d, &field) {
            Ok(Some(v)) => v,
            Ok(None) => {
                bad.push(FieldViolation {
                    field,
                    description: "is required".into(),
                });
                Decimal::ZERO
            }
            Err(e) => {
                bad.extend(e.violations.clone());
                Decimal::ZERO
            }
        }
    }
    let total = point(&r.total_points, "rubric.total_points".into(), &mut bad);
    let mut categories = Vec::new();
    for (ci, c) in r.categories.iter().enumerate() {
        let points = point(
            &c.points,
            format!("rubric.categories[{ci}].points"),
            &mut bad,
        );
        let mut items = Vec::new();
        for (ii, i) in c.items.iter().enumerate() {
            let kind = match pb::ItemKind::try_from(i.kind) {
                Ok(pb::ItemKind::Process) => ItemKind::Process,
                Ok(pb::ItemKind::Results) => ItemKind::Results,
                _ => {
                    bad.push(FieldViolation {
                        field: format!("rubric.categories[{ci}].items[{ii}].kind"),
                        description: "must be PROCESS or RESULTS".into(),
                    });
                    ItemKind::Process
                }
            };
            items.push(Item {
                code: i.code.trim().into(),
                title: i.title.trim().into(),
                points: point(
                    &i.points,
                    format!("rubric.categories[{ci}].items[{ii}].points"),
                    &mut bad,
                ),
                kind,
            });
        }
        categories.push(Category {
            code: c.code.trim().into(),
            title: c.title.trim().into(),
            points,
            items,
        });
    }
    let rubric = Rubric {
        title: r.title.trim().into(),
        edition: r.edition.trim().into(),
        total,
        categories,
    };
    bad.extend(
        rubric
            .validate()
            .into_iter()
            .map(|(field, description)| FieldViolation { field, description }),
    );
    if bad.is_empty() {
        Ok(rubric)
    } else {
        Err(Error::invalid_fields(bad))
    }
}

fn rubric_pb(id: &str, version: i64, r: &Rubric) -> pb::Rubric {
    pb::Rubric {
        name: format!("rubrics/{id}"),
        title: r.title.clone(),
        edition: r.edition.clone(),
        version: version as i32,
        total_points: dec_pb(r.total),
        categories: r
            .categories
            .iter()
            .map(|c| pb::RubricCategory {
                code: c.code.clone(),
                title: c.title.clone(),
                points: dec_pb(c.points),
                items: c
                    .items
                    .iter()
                    .map(|i| pb::RubricItem {
                        code: i.code.clone(),
                        title: i.title.clone(),
                        points: dec_pb(i.points),
                        kind: (if i.kind == ItemKind::Process {
                            pb::ItemKind::Process
                        } else {
                            pb::ItemKind::Results
                        }) as i32,
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn assignment_pb(a: &AssignmentRow) -> pb::Assignment {
    pb::Assignment {
        name: format!("assignments/{}", a.id),
        cycle: a.cycle.clone(),
        application: a.application.clone(),
        stage: stage_pb(&a.stage),
        rubric: format!("rubrics/{}@{}", a.rubric_id, a.rubric_version),
        people: a
            .people
            .iter()
            .map(|(r, role)| pb::AssignedPerson {
                reviewer: format!("reviewers/{r}"),
                role: (match role.as_str() {
                    "LEADER" => pb::AssignmentRole::Leader,
                    "ADVISOR" => pb::AssignmentRole::Advisor,
                    _ => pb::AssignmentRole::Member,
                }) as i32,
            })
            .collect(),
        enterprise_code: a.enterprise_code.clone(),
        recommending_unit: a.recommending_unit.clone(),
    }
}

fn sheet_pb(s: &SheetRow) -> pb::Sheet {
    pb::Sheet {
        name: format!("sheets/{}", s.id),
        assignment: format!("assignments/{}", s.assignment_id),
        reviewer: format!("reviewers/{}", s.reviewer),
        kind: (match s.kind.as_str() {
            "CONSENSUS" => pb::SheetKind::Consensus,
            "DEFENCE" => pb::SheetKind::Defence,
            _ => pb::SheetKind::Independent,
        }) as i32,
        state: (match s.state.as_str() {
            "DRAFT" => pb::SheetState::Draft,
            "SUBMITTED" => pb::SheetState::Submitted,
            _ => pb::SheetState::Superseded,
        }) as i32,
        version: s.version as i32,
        items: s
            .items
            .iter()
            .map(|i| pb::ItemScore {
                item_code: i.code.clone(),
                percent: i.percent as i32,
                strengths: i.strengths.clone(),
                opportunities: i.opportunities.clone(),
                reason: i.reason.clone(),
            })
            .collect(),
        defence_score: (!s.defence_score.is_empty()).then(|| common::Decimal {
            value: s.defence_score.clone(),
        }),
        total: (!s.total.is_empty()).then(|| common::Decimal {
            value: s.total.clone(),
        }),
        seal_hash: s.seal_hash.clone(),
        correction_reason: s.correction_reason.clone(),
        submit_time: s.submitted_micros.map(to_timestamp),
    }
}

/// Validates item scores against the rubric: known items, 0-100 in steps of 5, text
/// within limits, no item twice.
fn items_from_pb(items: &[pb::ItemScore], rubric: &Rubric, field: &str) -> Result<Vec<ItemEntry>> {
    let mut bad = Vec::new();
    let mut out: Vec<ItemEntry> = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let at = format!("{field}[{i}]");
        if rubric.item(&it.item_code).is_none() {
            bad.push(FieldViolation {
                field: format!("{at}.item_code"),
                description: format!("{} is not an item of the rubric", it.item_code),
            });
        } else if out.iter().any(|o| o.code == it.item_code) {
            bad.push(FieldViolation {
                field: format!("{at}.item_code"),
                description: "appears twice".into(),
            });
        }
        let percent = match sheet::valid_percent(it.percent) {
            Ok(p) => p,
            Err(e) => {
                bad.push(FieldViolation {
                    field: format!("{at}.percent"),
                    description: e,
                });
                0
            }
        };
        for (name, text) in [
            ("strengths", &it.strengths),
            ("opportunities", &it.opportunities),
            ("reason", &it.reason),
        ] {
            if text.chars().count() > 5000 {
                bad.push(FieldViolation {
                    field: format!("{at}.{name}"),
                    description: "at most 5,000 characters".into(),
                });
            }
        }
        out.push(ItemEntry {
            code: it.item_code.clone(),
            percent,
            strengths: it.strengths.clone(),
            opportunities: it.opportunities.clone(),
            reason: it.reason.clone(),
        });
    }
    if bad.is_empty() {
        Ok(out)
    } else {
        Err(Error::invalid_fields(bad))
    }
}

/// SHA-256 of a sealed sheet's content.
fn seal_hash(s: &SheetRow) -> String {
    let content = serde_json::json!({
        "sheet": s.id, "version": s.version, "assignment": s.assignment_id, "reviewer": s.reviewer,
        "kind": s.kind, "items": s.items, "defence_score": s.defence_score, "total": s.total,
        "correction_reason": s.correction_reason,
    });
    hex::encode(Sha256::digest(content.to_string().as_bytes()))
}

fn is_office(c: &Caller) -> bool {
    matches!(c.role, Role::Office | Role::Supervisor)
}

/// May `c` read `sheet`? The office and supervisor always; the author always;
/// another scorer of the group only once their own sheet of that kind is submitted; the
/// group after release.
fn may_read(
    c: &Caller,
    a: &AssignmentRow,
    sheet: &SheetRow,
    own_submitted: bool,
    released: bool,
) -> bool {
    if is_office(c) {
        return true;
    }
    if c.role != Role::Reviewer || a.role_of(&c.subject).is_none() {
        return false;
    }
    sheet.reviewer.eq_ignore_ascii_case(&c.subject) || own_submitted || released
}

fn settings_from_pb(s: &Option<pb::ResultSettings>) -> Result<Settings> {
    let d = Settings::default();
    let Some(s) = s else { return Ok(d) };
    let pick = |v: &Option<common::Decimal>, f: &str, default: Decimal| -> Result<Decimal> {
        Ok(dec(v, &format!("settings.{f}"))?.unwrap_or(default))
    };
    let settings = Settings {
        materials_threshold: pick(
            &s.materials_threshold,
            "materials_threshold",
            d.materials_threshold,
        )?,
        materials_weight: pick(&s.materials_weight, "materials_weight", d.materials_weight)?,
        site_weight: pick(&s.site_weight, "site_weight", d.site_weight)?,
        final_threshold: pick(&s.final_threshold, "final_threshold", d.final_threshold)?,
        candidate_threshold: pick(
            &s.candidate_threshold,
            "candidate_threshold",
            d.candidate_threshold,
        )?,
        max_candidates: if s.max_candidates > 0 {
            s.max_candidates as usize
        } else {
            d.max_candidates
        },
        defence: if s.trimmed_defence_mean {
            DefenceRule::TrimmedMean
        } else {
            DefenceRule::Mean
        },
        defence_min_scorers: if s.defence_min_scorers > 0 {
            s.defence_min_scorers as usize
        } else {
            d.defence_min_scorers
        },
    };
    if settings.materials_weight + settings.site_weight != Decimal::ONE {
        return Err(Error::invalid(
            "settings.site_weight",
            "materials_weight and site_weight must add up to 1",
        ));
    }
    Ok(settings)
}

/// The feedback report as a printable HTML document in Chinese, the profile chart embedded.
fn feedback_html(
    application: &str,
    total: Decimal,
    items: &[pb::FeedbackItem],
    profile_svg: &str,
) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut rows = String::new();
    for i in items {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(&i.item_code),
            esc(&i.title),
            i.score
                .as_ref()
                .map(|s| s.value.clone())
                .unwrap_or_default(),
            esc(&i.band),
            esc(&i.strengths),
            esc(&i.opportunities)
        ));
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>材料评审反馈报告</title>\
<style>body{{font-family:sans-serif}}table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:4px}}</style></head>\
<body><h1>材料评审反馈报告</h1><p>申报：{}</p><p>材料评审得分：{}</p>\
<figure>{}</figure>\
<table><tr><th>条款</th><th>名称</th><th>得分</th><th>分段</th><th>优势</th><th>改进机会</th></tr>\n{}</table></body></html>\n",
        esc(application),
        total.normalize(),
        profile_svg,
        rows
    )
}

#[tonic::async_trait]
impl ScoringService for ScoringApi {
    async fn create_rubric(
        &self,
        request: Request<pb::CreateRubricRequest>,
    ) -> Result<Response<pb::Rubric>, Status> {
        let c = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let run = async {
            c.require(&[Role::Office])?;
            if !valid_id(&r.rubric_id) {
                return Err(Error::invalid(
                    "rubric_id",
                    "1-63 lower-case letters, digits or '-'",
                ));
            }
            let key = RequestKey::new("CreateRubric", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(&self.db, &key).await? {
                return Ok(done);
            }
            let rubric = rubric_from_pb(
                r.rubric
                    .as_ref()
                    .ok_or_else(|| Error::invalid("rubric", "is required"))?,
            )?;
            let mut tx = self.db.begin().await?;
            let version = store::insert_rubric(&mut tx, &r.rubric_id, &rubric, self.now()).await?;
            let response = rubric_pb(&r.rubric_id, version, &rubric);
            change::commit(
                tx,
                self.now(),
                &key,
                AuditRecord::by(&c, "rubric.create", response.name.clone())
                    .with_detail(serde_json::json!({ "version": version })),
                &response,
            )
            .await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn get_rubric(
        &self,
        request: Request<pb::GetRubricRequest>,
    ) -> Result<Response<pb::Rubric>, Status> {
        let run = async {
            let name = &request.get_ref().name;
            let (id, version) = match id_of(name.split('@').next().unwrap_or(""), "rubrics", "name")
            {
                Ok(id) => (
                    id.to_string(),
                    name.split_once('@')
                        .map(|(_, v)| v.parse::<i64>())
                        .transpose()
                        .map_err(|_| Error::invalid("name", "version after @ must be a number"))?,
                ),
                Err(e) => return Err(e),
            };
            let mut conn = self.db.pool().acquire().await?;
            let (v, rubric) = store::get_rubric(&mut conn, &id, version).await?;
            Ok(rubric_pb(&id, v, &rubric))
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn list_rubrics(
        &self,
        request: Request<pb::ListRubricsRequest>,
    ) -> Result<Response<pb::ListRubricsResponse>, Status> {
        let run = async {
            let r = request.get_ref();
            let page = Page::parse(r.page_size, &r.page_token)?;
            let mut rows = store::list_rubrics(&self.db, &page).await?;
            let next_page_token = page.finish(&mut rows, |x| x.0.clone());
            Ok(pb::ListRubricsResponse {
                rubrics: rows.iter().map(|(id, v, r)| rubric_pb(id, *v, r)).collect(),
                next_page_token,
            })
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn create_assignment(
        &self,
        request: Request<pb::CreateAssignmentRequest>,
    ) -> Result<Response<pb::Assignment>, Status> {
        let c = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let run = async {
            c.require(&[Role::Office])?;
            let key = RequestKey::new("CreateAssignment", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(&self.db, &key).await? {
                return Ok(done);
            }
            let a = r
                .assignment
                .clone()
                .ok_or_else(|| Error::invalid("assignment", "is required"))?;
            let mut bad = Vec::new();
            if id_of(&a.cycle, "cycles", "assignment.cycle").is_err() {
                bad.push(FieldViolation {
                    field: "assignment.cycle".into(),
                    description: "must be cycles/{cycle}".into(),
                });
            }
            if a.application.trim().is_empty() || a.application.len() > 300 {
                bad.push(FieldViolation {
                    field: "assignment.application".into(),
                    description: "the application's resource name is required".into(),
                });
            }
            let stage = stage_name(a.stage);
            if stage.is_none() {
                bad.push(FieldViolation {
                    field: "assignment.stage".into(),
                    description: "must be set".into(),
                });
            }
            let mut people = Vec::new();
            for (i, p) in a.people.iter().enumerate() {
                let role = match pb::AssignmentRole::try_from(p.role) {
                    Ok(pb::AssignmentRole::Member) => "MEMBER",
                    Ok(pb::AssignmentRole::Leader) => "LEADER",
                    Ok(pb::AssignmentRole::Advisor) => "ADVISOR",
                    _ => {
                        bad.push(FieldViolation {
                            field: format!("assignment.people[{i}].role"),
                            description: "must be set".into(),
                        });
                        continue;
                    }
                };
                match p
                    .reviewer
                    .strip_prefix("reviewers/")
                    .filter(|x| !x.is_empty() && !x.contains('/'))
                {
                    Some(id)
                        if !people
                            .iter()
                            .any(|(r, _): &(String, String)| r.eq_ignore_ascii_case(id)) =>
                    {
                        people.push((id.to_ascii_uppercase(), role.to_string()))
                    }
                    _ => bad.push(FieldViolation {
                        field: format!("assignment.people[{i}].reviewer"),
                        description: "must be reviewers/{reviewer}, once".into(),
                    }),
                }
            }
            if let Some(stage) = stage {
                let roles: Vec<&str> = people.iter().map(|(_, r)| r.as_str()).collect();
                bad.extend(group::composition_problems(stage, &roles).into_iter().map(
                    |description| FieldViolation {
                        field: "assignment.people".into(),
                        description,
                    },
                ));
            }
            // rubrics/{id} pins the current version; rubrics/{id}@{version} names one, so
            // every assignment of a cycle can pin the same version.
            let (rubric_id, pinned) = match id_of(&a.rubric, "rubrics", "assignment.rubric") {
                Ok(id) => match id.split_once('@') {
                    Some((id, v)) => match v.parse::<i64>() {
                        Ok(v) => (id.to_string(), Some(v)),
                        Err(_) => {
                            bad.push(FieldViolation {
                                field: "assignment.rubric".into(),
                                description: "the version after @ must be a number".into(),
                            });
                            (String::new(), None)
                        }
                    },
                    None => (id.to_string(), None),
                },
                Err(e) => {
                    bad.extend(e.violations.clone());
                    (String::new(), None)
                }
            };
            if !bad.is_empty() {
                return Err(Error::invalid_fields(bad));
            }
            let mut tx = self.db.begin().await?;
            let (version, _) = store::get_rubric(&mut tx, &rubric_id, pinned).await?;
            let row = AssignmentRow {
                id: self.new_id(),
                cycle: a.cycle.clone(),
                application: a.application.trim().to_string(),
                stage: stage.unwrap_or_default().to_string(),
                rubric_id,
                rubric_version: version,
                enterprise_code: a.enterprise_code.trim().to_string(),
                recommending_unit: a.recommending_unit.trim().to_string(),
                people,
            };
            store::insert_assignment(&mut tx, &row, self.now()).await?;
            let response = assignment_pb(&row);
            change::commit(
                tx,
                self.now(),
                &key,
                AuditRecord::by(&c, "assignment.create", response.name.clone()).with_detail(
                    serde_json::json!({ "application": row.application, "stage": row.stage }),
                ),
                &response,
            )
            .await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn list_assignments(
        &self,
        request: Request<pb::ListAssignmentsRequest>,
    ) -> Result<Response<pb::ListAssignmentsResponse>, Status> {
        let c = Caller::of(&request)?.clone();
        let run = async {
            c.require(&[
                Role::Office,
                Role::Supervisor,
                Role::Reviewer,
                Role::Advisor,
            ])?;
            let r = request.get_ref();
            let page = Page::parse(r.page_size, &r.page_token)?;
            let mut conn = self.db.pool().acquire().await?;
            let mut rows =
                store::list_assignments(&mut conn, &r.cycle, &r.application, &page).await?;
            let next_page_token = page.finish(&mut rows, |a| a.id.clone());
            // Reviewers and advisors see only their own assignments.
            let visible = rows
                .iter()
                .filter(|a| is_office(&c) || a.role_of(&c.subject).is_some());
            Ok(pb::ListAssignmentsResponse {
                assignments: visible.map(assignment_pb).collect(),
                next_page_token,
            })
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn save_sheet(
        &self,
        request: Request<pb::SaveSheetRequest>,
    ) -> Result<Response<pb::Sheet>, Status> {
        let c = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let run = async {
            let s = r
                .sheet
                .clone()
                .ok_or_else(|| Error::invalid("sheet", "is required"))?;
            let assignment_id =
                id_of(&s.assignment, "assignments", "sheet.assignment")?.to_string();
            let kind = match pb::SheetKind::try_from(s.kind) {
                Ok(pb::SheetKind::Independent) => "INDEPENDENT",
                Ok(pb::SheetKind::Defence) => "DEFENCE",
                Ok(pb::SheetKind::Consensus) => {
                    return Err(Error::invalid(
                        "sheet.kind",
                        "the consensus sheet is signed with SignConsensus",
                    ));
                }
                _ => {
                    return Err(Error::invalid(
                        "sheet.kind",
                        "must be INDEPENDENT or DEFENCE",
                    ));
                }
            };
            let key = RequestKey::new("SaveSheet", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(&self.db, &key).await? {
                return Ok(done);
            }
            let mut tx = self.db.begin().await?;
            let a = store::get_assignment(&mut tx, &assignment_id).await?;
            let role = a.role_of(&c.subject).filter(|_| c.role == Role::Reviewer);
            match role {
                None => {
                    return Err(Error::permission_denied(
                        "only the assigned reviewers score this application",
                    ));
                }
                Some("ADVISOR") => {
                    return Err(Error::rule(
                        "R-14",
                        "ADVISORS_DO_NOT_SCORE",
                        "a non-scoring advisor never scores",
                    ));
                }
                _ => {}
            }
            if (kind == "DEFENCE") != (a.stage == "DEFENCE") {
                return Err(Error::invalid(
                    "sheet.kind",
                    format!(
                        "a {} assignment takes {} sheets",
                        a.stage.to_lowercase(),
                        if a.stage == "DEFENCE" {
                            "DEFENCE"
                        } else {
                            "INDEPENDENT"
                        }
                    ),
                ));
            }
            if store::released(&mut tx, &a.cycle, &a.stage).await? {
                return Err(Error::rule(
                    "R-51",
                    "STAGE_RELEASED",
                    "released results are read-only",
                ));
            }
            let (_, rubric) =
                store::get_rubric(&mut tx, &a.rubric_id, Some(a.rubric_version)).await?;
            let items = if kind == "INDEPENDENT" {
                items_from_pb(&s.items, &rubric, "sheet.items")?
            } else {
                Vec::new()
            };
            let defence = if kind == "DEFENCE" {
                match dec(&s.defence_score, "sheet.defence_score")? {
                    Some(d) if d >= Decimal::ZERO && d <= Decimal::from(100) => {
                        d.normalize().to_string()
                    }
                    Some(_) => {
                        return Err(Error::invalid(
                            "sheet.defence_score",
                            "must be 0-100 (R-14)",
                        ));
                    }
                    None => String::new(),
                }
            } else {
                String::new()
            };
            let reviewer = c.subject.to_ascii_uppercase();
            let id = format!(
                "{}-{}-{}",
                a.id,
                reviewer.to_lowercase(),
                if kind == "DEFENCE" { "d" } else { "i" }
            );
            if let Some(existing) = store::get_sheet(&mut tx, &id).await?
                && existing.state != "DRAFT"
            {
                return Err(Error::rule(
                    "R-51",
                    "SHEET_SEALED",
                    "a submitted sheet cannot change; submit a correction with its reason",
                ));
            }
            let row = SheetRow {
                id,
                version: 1,
                assignment_id: a.id.clone(),
                reviewer,
                kind: kind.into(),
                state: "DRAFT".into(),
                items,
                defence_score: defence,
                total: String::new(),
                seal_hash: String::new(),
                correction_reason: String::new(),
                submitted_micros: None,
            };
            store::save_draft(&mut tx, &row).await?;
            let response = sheet_pb(&row);
            change::commit(
                tx,
                self.now(),
                &key,
                AuditRecord::by(&c, "sheet.save", response.name.clone()),
                &response,
            )
            .await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn get_sheet(
        &self,
        request: Request<pb::GetSheetRequest>,
    ) -> Result<Response<pb::Sheet>, Status> {
        let c = Caller::of(&request)?.clone();
        let run = async {
            let id = id_of(&request.get_ref().name, "sheets", "name")?.to_string();
            let mut conn = self.db.pool().acquire().await?;
            let s = store::get_sheet(&mut conn, &id)
                .await?
                .ok_or_else(|| Error::not_found(format!("sheets/{id}")))?;
            let a = store::get_assignment(&mut conn, &s.assignment_id).await?;
            let own = store::get_sheet(
                &mut conn,
                &format!(
                    "{}-{}-{}",
                    a.id,
                    c.subject.to_lowercase(),
                    if a.stage == "DEFENCE" { "d" } else { "i" }
                ),
            )
            .await?;
            let own_submitted = own.is_some_and(|o| o.state != "DRAFT");
            let released = store::released(&mut conn, &a.cycle, &a.stage).await?;
            if !may_read(&c, &a, &s, own_submitted, released) {
                return Err(Error::permission_denied(
                    "sheets are sealed until your own is submitted, and from everyone outside the group until release (R-12, R-43)",
                ));
            }
            Ok(sheet_pb(&s))
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn list_sheets(
        &self,
        request: Request<pb::ListSheetsRequest>,
    ) -> Result<Response<pb::ListSheetsResponse>, Status> {
        let c = Caller::of(&request)?.clone();
        let run = async {
            let r = request.get_ref();
            let assignment_id = id_of(&r.assignment, "assignments", "assignment")?.to_string();
            let page = Page::parse(r.page_size, &r.page_token)?;
            let mut conn = self.db.pool().acquire().await?;
            let a = store::get_assignment(&mut conn, &assignment_id).await?;
            let mut all = store::assignment_sheets(&mut conn, &a.id).await?;
            let own_submitted = all.iter().any(|s| {
                s.reviewer.eq_ignore_ascii_case(&c.subject)
                    && s.state != "DRAFT"
                    && s.kind != "CONSENSUS"
            });
            let released = store::released(&mut conn, &a.cycle, &a.stage).await?;
            all.retain(|s| s.id > page.after && may_read(&c, &a, s, own_submitted, released));
            let next_page_token = page.finish(&mut all, |s| s.id.clone());
            Ok(pb::ListSheetsResponse {
                sheets: all.iter().map(sheet_pb).collect(),
                next_page_token,
            })
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn submit_sheet(
        &self,
        request: Request<pb::SubmitSheetRequest>,
    ) -> Result<Response<pb::Sheet>, Status> {
        let c = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let run = async {
            let id = id_of(&r.name, "sheets", "name")?.to_string();
            let key = RequestKey::new("SubmitSheet", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(&self.db, &key).await? {
                return Ok(done);
            }
            let mut tx = self.db.begin().await?;
            let mut s = store::get_sheet(&mut tx, &id)
                .await?
                .ok_or_else(|| Error::not_found(format!("sheets/{id}")))?;
            if !(c.role == Role::Reviewer && s.reviewer.eq_ignore_ascii_case(&c.subject)) {
                return Err(Error::permission_denied("only its author submits a sheet"));
            }
            if s.state != "DRAFT" {
                return Err(Error::rule(
                    "R-51",
                    "ALREADY_SUBMITTED",
                    "the sheet is already submitted",
                ));
            }
            let a = store::get_assignment(&mut tx, &s.assignment_id).await?;
            let (_, rubric) =
                store::get_rubric(&mut tx, &a.rubric_id, Some(a.rubric_version)).await?;
            s.total = if s.kind == "DEFENCE" {
                if s.defence_score.is_empty() {
                    return Err(Error::rule(
                        "R-14",
                        "SHEET_INCOMPLETE",
                        "the defence score is missing",
                    ));
                }
                s.defence_score.clone()
            } else {
                let percents: Vec<(String, u32)> = s
                    .items
                    .iter()
                    .map(|i| (i.code.clone(), i.percent))
                    .collect();
                sheet::total(&rubric, &percents)
                    .map_err(|e| Error::rule("R-11", "SHEET_INCOMPLETE", e))?
                    .normalize()
                    .to_string()
            };
            s.state = "SUBMITTED".into();
            s.submitted_micros = Some(unix_micros(self.now()));
            s.seal_hash = seal_hash(&s);
            if !store::seal(&mut tx, &s).await? {
                return Err(Error::rule(
                    "R-51",
                    "ALREADY_SUBMITTED",
                    "the sheet was submitted meanwhile",
                ));
            }
            let response = sheet_pb(&s);
            change::commit(
                tx,
                self.now(),
                &key,
                AuditRecord::by(&c, "sheet.submit", response.name.clone())
                    .with_detail(serde_json::json!({ "total": s.total, "seal_hash": s.seal_hash })),
                &response,
            )
            .await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn correct_sheet(
        &self,
        request: Request<pb::CorrectSheetRequest>,
    ) -> Result<Response<pb::Sheet>, Status> {
        let c = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let run = async {
            let id = id_of(&r.name, "sheets", "name")?.to_string();
            if r.reason.trim().is_empty() {
                return Err(Error::invalid(
                    "reason",
                    "a correction states its reason (R-51)",
                ));
            }
            let key = RequestKey::new("CorrectSheet", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(&self.db, &key).await? {
                return Ok(done);
            }
            let mut tx = self.db.begin().await?;
            let old = store::get_sheet(&mut tx, &id)
                .await?
                .ok_or_else(|| Error::not_found(format!("sheets/{id}")))?;
            if !(c.role == Role::Reviewer && old.reviewer.eq_ignore_ascii_case(&c.subject)) {
                return Err(Error::permission_denied("only its author corrects a sheet"));
            }
            if old.state != "SUBMITTED" || old.kind != "INDEPENDENT" {
                return Err(Error::rule(
                    "R-51",
                    "NOTHING_TO_CORRECT",
                    "only a submitted independent sheet is corrected; a draft is simply saved",
                ));
            }
            let a = store::get_assignment(&mut tx, &old.assignment_id).await?;
            if store::released(&mut tx, &a.cycle, &a.stage).await? {
                return Err(Error::rule(
                    "R-51",
                    "STAGE_RELEASED",
                    "released results are read-only",
                ));
            }
            let (_, rubric) =
                store::get_rubric(&mut tx, &a.rubric_id, Some(a.rubric_version)).await?;
            let mut items = old.items.clone();
            for changed in items_from_pb(&r.items, &rubric, "items")? {
                match items.iter_mut().find(|i| i.code == changed.code) {
                    Some(i) => *i = changed,
                    None => items.push(changed),
                }
            }
            let percents: Vec<(String, u32)> =
                items.iter().map(|i| (i.code.clone(), i.percent)).collect();
            let total = sheet::total(&rubric, &percents)
                .map_err(|e| Error::rule("R-11", "SHEET_INCOMPLETE", e))?;
            let mut new = SheetRow {
                version: old.version + 1,
                items,
                total: total.normalize().to_string(),
                correction_reason: r.reason.trim().to_string(),
                submitted_micros: Some(unix_micros(self.now())),
                state: "SUBMITTED".into(),
                ..old.clone()
            };
            new.seal_hash = seal_hash(&new);
            if !store::supersede(&mut tx, &old.id, old.version).await? {
                return Err(Error::rule(
                    "R-51",
                    "ALREADY_CORRECTED",
                    "the sheet was corrected meanwhile",
                ));
            }
            store::insert_sheet(&mut tx, &new).await?;
            let response = sheet_pb(&new);
            change::commit(tx, self.now(), &key, AuditRecord::by(&c, "sheet.correct", response.name.clone()).because(new.correction_reason.clone()).with_detail(serde_json::json!({ "version": new.version, "previous_seal": old.seal_hash, "seal_hash": new.seal_hash })), &response).await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn open_consensus(
        &self,
        request: Request<pb::OpenConsensusRequest>,
    ) -> Result<Response<pb::ConsensusView>, Status> {
        let c = Caller::of(&request)?.clone();
        let run = async {
            let r = request.get_ref();
            let id = id_of(&r.assignment, "assignments", "assignment")?.to_string();
            let mut conn = self.db.pool().acquire().await?;
            let a = store::get_assignment(&mut conn, &id).await?;
            if !(is_office(&c)
                || (c.role == Role::Reviewer && a.role_of(&c.subject) == Some("LEADER")))
            {
                return Err(Error::permission_denied("the group leader opens consensus"));
            }
            let independent = self.submitted_independent(&mut conn, &a).await?;
            let (_, rubric) =
                store::get_rubric(&mut conn, &a.rubric_id, Some(a.rubric_version)).await?;
            let mut items: Vec<pb::ItemSpread> = rubric
                .items()
                .map(|item| {
                    let by: Vec<(String, u32)> = independent
                        .iter()
                        .filter_map(|s| {
                            s.items
                                .iter()
                                .find(|i| i.code == item.code)
                                .map(|i| (format!("reviewers/{}", s.reviewer), i.percent))
                        })
                        .collect();
                    let sp =
                        sheet::spread(&item.code, &by.iter().map(|(_, p)| *p).collect::<Vec<_>>());
                    pb::ItemSpread {
                        item_code: item.code.clone(),
                        percent_by_reviewer: by.into_iter().map(|(r, p)| (r, p as i32)).collect(),
                        spread: sp.spread as i32,
                        discuss_first: sp.discuss_first,
                    }
                })
                .collect();
            // Items whose scores lie more than one band apart are discussed first.
            items.sort_by_key(|i| !i.discuss_first);
            Ok(pb::ConsensusView {
                assignment: format!("assignments/{}", a.id),
                items,
            })
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn sign_consensus(
        &self,
        request: Request<pb::SignConsensusRequest>,
    ) -> Result<Response<pb::Sheet>, Status> {
        let c = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let run = async {
            let id = id_of(&r.assignment, "assignments", "assignment")?.to_string();
            let key = RequestKey::new("SignConsensus", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(&self.db, &key).await? {
                return Ok(done);
            }
            let mut tx = self.db.begin().await?;
            let a = store::get_assignment(&mut tx, &id).await?;
            if !(c.role == Role::Reviewer && a.role_of(&c.subject) == Some("LEADER")) {
                return Err(Error::permission_denied(
                    "the group leader signs the consensus (R-12)",
                ));
            }
            if a.stage == "DEFENCE" {
                return Err(Error::rule(
                    "R-14",
                    "NO_CONSENSUS_AT_DEFENCE",
                    "the defence score is the panel's mean, not a consensus",
                ));
            }
            if store::released(&mut tx, &a.cycle, &a.stage).await? {
                return Err(Error::rule(
                    "R-51",
                    "STAGE_RELEASED",
                    "released results are read-only",
                ));
            }
            let sheet_id = format!("{}-consensus", a.id);
            if store::get_sheet(&mut tx, &sheet_id).await?.is_some() {
                return Err(Error::rule(
                    "R-51",
                    "CONSENSUS_SIGNED",
                    "the consensus is already signed",
                ));
            }
            let independent = self.submitted_independent(&mut tx, &a).await?;
            let (_, rubric) =
                store::get_rubric(&mut tx, &a.rubric_id, Some(a.rubric_version)).await?;
            let items = items_from_pb(&r.items, &rubric, "items")?;
            let agreed: Vec<(&str, u32, &str)> = items
                .iter()
                .map(|i| (i.code.as_str(), i.percent, i.reason.as_str()))
                .collect();
            let given: Vec<(&str, u32)> = independent
                .iter()
                .flat_map(|s| s.items.iter().map(|x| (x.code.as_str(), x.percent)))
                .collect();
            let bad: Vec<FieldViolation> =
                sheet::unexplained_changes(&agreed, &given)
                    .into_iter()
                    .map(|i| FieldViolation {
                        field: format!("items[{i}].reason"),
                        description:
                            "the agreed score differs from an independent score: give the reason"
                                .into(),
                    })
                    .collect();
            if !bad.is_empty() {
                return Err(Error::invalid_fields(bad));
            }
            let percents: Vec<(String, u32)> =
                items.iter().map(|i| (i.code.clone(), i.percent)).collect();
            let total = sheet::total(&rubric, &percents).map_err(|e| Error::invalid("items", e))?;
            let mut row = SheetRow {
                id: sheet_id,
                version: 1,
                assignment_id: a.id.clone(),
                reviewer: c.subject.to_ascii_uppercase(),
                kind: "CONSENSUS".into(),
                state: "SUBMITTED".into(),
                items,
                defence_score: String::new(),
                total: total.normalize().to_string(),
                seal_hash: String::new(),
                correction_reason: String::new(),
                submitted_micros: Some(unix_micros(self.now())),
            };
            row.seal_hash = seal_hash(&row);
            store::insert_sheet(&mut tx, &row).await?;
            let response = sheet_pb(&row);
            change::commit(
                tx,
                self.now(),
                &key,
                AuditRecord::by(&c, "consensus.sign", response.name.clone()).with_detail(
                    serde_json::json!({ "total": row.total, "seal_hash": row.seal_hash }),
                ),
                &response,
            )
            .await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn reserve_opinion(
        &self,
        request: Request<pb::ReserveOpinionRequest>,
    ) -> Result<Response<pb::ReservedOpinion>, Status> {
        let c = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let run = async {
            let id = id_of(&r.assignment, "assignments", "assignment")?.to_string();
            let o = r
                .reserved_opinion
                .as_ref()
                .ok_or_else(|| Error::invalid("reserved_opinion", "is required"))?;
            let text = o.text.trim();
            let mut bad = Vec::new();
            if text.is_empty() || text.chars().count() > 2000 {
                bad.push(FieldViolation::new(
                    "reserved_opinion.text",
                    "the disagreement and its reasons, 1-2000 characters",
                ));
            }
            let key = RequestKey::new("ReserveOpinion", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(&self.db, &key).await? {
                return Ok(done);
            }
            let mut tx = self.db.begin().await?;
            let a = store::get_assignment(&mut tx, &id).await?;
            let (_, rubric) =
                store::get_rubric(&mut tx, &a.rubric_id, Some(a.rubric_version)).await?;
            for (i, code) in o.item_codes.iter().enumerate() {
                if rubric.item(code).is_none() {
                    bad.push(FieldViolation::new(
                        format!("reserved_opinion.item_codes[{i}]"),
                        "is not an item of the rubric",
                    ));
                }
            }
            if !bad.is_empty() {
                return Err(Error::invalid_fields(bad));
            }
            let role = (c.role == Role::Reviewer)
                .then(|| a.role_of(&c.subject))
                .flatten();
            let consensus = store::get_sheet(&mut tx, &format!("{}-consensus", a.id)).await?;
            let released = store::released(&mut tx, &a.cycle, &a.stage).await?;
            group::may_reserve_opinion(role, consensus.is_some(), released).map_err(
                |(rule, reason, message)| {
                    if reason == "NOT_IN_GROUP" {
                        Error::permission_denied(message)
                    } else {
                        Error::rule(rule, reason, message)
                    }
                },
            )?;
            let consensus_total = consensus.map(|s| s.total).unwrap_or_default();
            let row = store::OpinionRow {
                assignment_id: a.id.clone(),
                reviewer: c.subject.to_ascii_uppercase(),
                text: text.to_string(),
                item_codes: o.item_codes.clone(),
                consensus_total,
                created_micros: unix_micros(self.now()),
            };
            store::insert_opinion(&mut tx, &row).await?;
            let response = opinion_pb(&row);
            change::commit(
                tx,
                self.now(),
                &key,
                AuditRecord::by(&c, "consensus.reserve_opinion", response.name.clone())
                    .with_detail(serde_json::json!({
                        "consensus_total": row.consensus_total,
                        "item_codes": row.item_codes,
                    })),
                &response,
            )
            .await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn list_reserved_opinions(
        &self,
        request: Request<pb::ListReservedOpinionsRequest>,
    ) -> Result<Response<pb::ListReservedOpinionsResponse>, Status> {
        let c = Caller::of(&request)?.clone();
        let run = async {
            let r = request.get_ref();
            let id = id_of(&r.parent, "assignments", "parent")?.to_string();
            let page = Page::parse(r.page_size, &r.page_token)?;
            let mut conn = self.db.pool().acquire().await?;
            let a = store::get_assignment(&mut conn, &id).await?;
            let member = c.role == Role::Reviewer && a.role_of(&c.subject).is_some();
            if !(is_office(&c) || member) {
                return Err(Error::permission_denied(
                    "reserved opinions are the office's and their authors' (Rev. Art. 6(4))",
                ));
            }
            let mut rows = store::opinions(&mut conn, &a.id, &page).await?;
            // A member reads its own; the office and the supervisor every one.
            if !is_office(&c) {
                rows.retain(|o| o.reviewer.eq_ignore_ascii_case(&c.subject));
            }
            let next_page_token = page.finish(&mut rows, |o| o.reviewer.clone());
            Ok(pb::ListReservedOpinionsResponse {
                reserved_opinions: rows.iter().map(opinion_pb).collect(),
                next_page_token,
            })
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn save_review_log(
        &self,
        request: Request<pb::SaveReviewLogRequest>,
    ) -> Result<Response<pb::ReviewLog>, Status> {
        let c = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let run = async {
            let l = r
                .review_log
                .as_ref()
                .ok_or_else(|| Error::invalid("review_log", "is required"))?;
            let id = id_of(&l.assignment, "assignments", "review_log.assignment")?.to_string();
            let log = log_from_pb(l)?;
            let key = RequestKey::new("SaveReviewLog", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(&self.db, &key).await? {
                return Ok(done);
            }
            let mut tx = self.db.begin().await?;
            let a = store::get_assignment(&mut tx, &id).await?;
            let scorer = c.role == Role::Reviewer
                && matches!(a.role_of(&c.subject), Some("MEMBER" | "LEADER"));
            if !(c.role == Role::Office || scorer) {
                return Err(Error::permission_denied(
                    "the log is kept by the office or a scoring member of the panel or group",
                ));
            }
            let (_, rubric) =
                store::get_rubric(&mut tx, &a.rubric_id, Some(a.rubric_version)).await?;
            let problems = review_log::problems(&a.stage, &log, &a.people, |code| {
                rubric.item(code).is_some()
            });
            if !problems.is_empty() {
                return Err(Error::invalid_fields(
                    problems
                        .into_iter()
                        .map(|(f, d)| FieldViolation::new(f, d))
                        .collect(),
                ));
            }
            if store::released(&mut tx, &a.cycle, &a.stage).await? {
                return Err(Error::rule(
                    "R-51",
                    "STAGE_RELEASED",
                    "released results are read-only, their logs too",
                ));
            }
            let version = store::latest_log(&mut tx, &a.id)
                .await?
                .map_or(1, |l| l.version + 1);
            let row = store::LogRow {
                assignment_id: a.id.clone(),
                version,
                log,
                recorded_by: if scorer {
                    format!("reviewers/{}", c.subject.to_ascii_uppercase())
                } else {
                    c.subject.clone()
                },
                saved_micros: unix_micros(self.now()),
            };
            store::insert_log(&mut tx, &row).await?;
            // The scores alongside are the office's to read before release.
            let scores = if c.role == Role::Office {
                log_scores(&mut tx, &a).await?
            } else {
                Vec::new()
            };
            let response = log_pb(&row, scores);
            change::commit(
                tx,
                self.now(),
                &key,
                AuditRecord::by(&c, "review_log.save", response.name.clone())
                    .with_detail(serde_json::json!({ "version": version, "stage": a.stage })),
                &response,
            )
            .await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn get_review_log(
        &self,
        request: Request<pb::GetReviewLogRequest>,
    ) -> Result<Response<pb::ReviewLog>, Status> {
        let c = Caller::of(&request)?.clone();
        let run = async {
            let name = &request.get_ref().name;
            let id = name
                .strip_prefix("assignments/")
                .and_then(|n| n.strip_suffix("/reviewLog"))
                .filter(|id| !id.is_empty() && !id.contains('/'))
                .ok_or_else(|| {
                    Error::invalid("name", "must be assignments/{assignment}/reviewLog")
                })?;
            let mut conn = self.db.pool().acquire().await?;
            let a = store::get_assignment(&mut conn, id).await?;
            let in_group =
                matches!(c.role, Role::Reviewer | Role::Advisor) && a.role_of(&c.subject).is_some();
            if !(is_office(&c) || in_group) {
                return Err(Error::permission_denied(
                    "the log is the office's and the panel's or group's (R-43)",
                ));
            }
            let row = store::latest_log(&mut conn, &a.id)
                .await?
                .ok_or_else(|| Error::not_found(name.clone()))?;
            // Scores alongside: for the office at once; for the group once released.
            let scores = if is_office(&c) || store::released(&mut conn, &a.cycle, &a.stage).await? {
                log_scores(&mut conn, &a).await?
            } else {
                Vec::new()
            };
            Ok(log_pb(&row, scores))
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn release_stage(
        &self,
        request: Request<pb::ReleaseStageRequest>,
    ) -> Result<Response<pb::ReleaseStageResponse>, Status> {
        let c = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let run = async {
            c.require(&[Role::Office])?;
            id_of(&r.cycle, "cycles", "cycle")?;
            let stage =
                stage_name(r.stage).ok_or_else(|| Error::invalid("stage", "must be set"))?;
            let key = RequestKey::new("ReleaseStage", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(&self.db, &key).await? {
                return Ok(done);
            }
            let mut tx = self.db.begin().await?;
            store::release(&mut tx, &r.cycle, stage, self.now()).await?;
            let page = Page::parse(qaward_kit::paging::MAX_PAGE_SIZE as i32, "")?;
            let mut n = 0;
            for a in store::list_assignments(&mut tx, &r.cycle, "", &page)
                .await?
                .iter()
                .filter(|a| a.stage == stage)
            {
                n += store::assignment_sheets(&mut tx, &a.id)
                    .await?
                    .iter()
                    .filter(|s| s.state == "SUBMITTED")
                    .count() as i32;
            }
            let response = pb::ReleaseStageResponse { released_sheets: n };
            change::commit(
                tx,
                self.now(),
                &key,
                AuditRecord::by(
                    &c,
                    "stage.release",
                    format!("{}/stages/{}", r.cycle, stage.to_lowercase()),
                ),
                &response,
            )
            .await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn compute_results(
        &self,
        request: Request<pb::ComputeResultsRequest>,
    ) -> Result<Response<pb::CycleResults>, Status> {
        let c = Caller::of(&request)?.clone();
        let run = async {
            c.require(&[Role::Office, Role::Supervisor])?;
            let r = request.get_ref();
            id_of(&r.cycle, "cycles", "cycle")?;
            let settings = settings_from_pb(&r.settings)?;
            let computed = compute_cycle(&self.db, &r.cycle, &settings).await?;
            let mut answer = results_pb(&r.cycle, &computed);
            answer.charts = result_charts(&computed, &settings);
            Ok(answer)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn get_feedback_report(
        &self,
        request: Request<pb::GetFeedbackReportRequest>,
    ) -> Result<Response<pb::FeedbackReport>, Status> {
        let c = Caller::of(&request)?.clone();
        let run = async {
            let r = request.get_ref();
            // cycles/{cycle}/applications/{application…}/feedbackReport
            let rest = r
                .name
                .strip_prefix("cycles/")
                .and_then(|x| x.strip_suffix("/feedbackReport"))
                .ok_or_else(|| {
                    Error::invalid(
                        "name",
                        "must be cycles/{cycle}/applications/{application}/feedbackReport",
                    )
                })?;
            let (cycle_id, application) = rest
                .split_once("/applications/")
                .ok_or_else(|| Error::invalid("name", "must name an application"))?;
            let cycle = format!("cycles/{cycle_id}");
            let mut conn = self.db.pool().acquire().await?;
            let page = Page::parse(1, "")?;
            let a =
                store::list_assignments(&mut conn, &cycle, application, &Page { size: 10, ..page })
                    .await?
                    .into_iter()
                    .find(|a| a.stage == "MATERIALS")
                    .ok_or_else(|| Error::not_found(r.name.clone()))?;
            let released = store::released(&mut conn, &cycle, "MATERIALS").await?;
            let entitled = is_office(&c)
                || (released
                    && c.role == Role::Enterprise
                    && c.org.as_deref() == Some(a.enterprise_code.as_str()))
                || (released
                    && c.role == Role::RecommendingUnit
                    && c.org.as_deref() == Some(a.recommending_unit.as_str()));
            if !entitled {
                return Err(Error::permission_denied(
                    "the feedback report is the applicant's and its recommending unit's, after release (R-13)",
                ));
            }
            let s = store::get_sheet(&mut conn, &format!("{}-consensus", a.id))
                .await?
                .ok_or_else(|| {
                    Error::rule(
                        "R-12",
                        "NO_CONSENSUS_YET",
                        "the group has not signed its consensus",
                    )
                })?;
            let (_, rubric) =
                store::get_rubric(&mut conn, &a.rubric_id, Some(a.rubric_version)).await?;
            let items: Vec<pb::FeedbackItem> = rubric
                .items()
                .filter_map(|item| {
                    let e = s.items.iter().find(|i| i.code == item.code)?;
                    Some(pb::FeedbackItem {
                        item_code: item.code.clone(),
                        title: item.title.clone(),
                        score: dec_pb(sheet::item_score(item.points, e.percent)),
                        band: sheet::band_label(e.percent),
                        strengths: e.strengths.clone(),
                        opportunities: e.opportunities.clone(),
                    })
                })
                .collect();
            let total: Decimal = s.total.parse().unwrap_or_default();
            // The profile: each category's items added up, against the category's points.
            let bars: Vec<charts::Bar> = rubric
                .categories
                .iter()
                .map(|cat| charts::Bar {
                    code: cat.code.clone(),
                    title: cat.title.clone(),
                    score: cat
                        .items
                        .iter()
                        .filter_map(|item| {
                            let e = s.items.iter().find(|i| i.code == item.code)?;
                            Some(sheet::item_score(item.points, e.percent))
                        })
                        .sum(),
                    max: cat.points,
                })
                .collect();
            let profile_svg = charts::profile_svg("各类目得分与满分（材料评审）", &bars);
            let html = if r.include_html {
                feedback_html(application, total, &items, &profile_svg)
            } else {
                String::new()
            };
            Ok(pb::FeedbackReport {
                name: r.name.clone(),
                total: dec_pb(total),
                items,
                html,
                categories: bars
                    .iter()
                    .map(|b| pb::CategoryScore {
                        code: b.code.clone(),
                        title: b.title.clone(),
                        score: dec_pb(b.score),
                        max: dec_pb(b.max),
                    })
                    .collect(),
                profile_svg,
            })
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }
}

impl ScoringApi {
    /// The submitted independent sheets of a group, refusing unless every scorer has
    /// submitted.
    async fn submitted_independent(
        &self,
        conn: &mut qaward_kit::db::Conn,
        a: &AssignmentRow,
    ) -> Result<Vec<SheetRow>> {
        let sheets = store::assignment_sheets(conn, &a.id).await?;
        let independent: Vec<SheetRow> = sheets
            .into_iter()
            .filter(|s| s.kind == "INDEPENDENT" && s.state == "SUBMITTED")
            .collect();
        let missing: Vec<&String> = a
            .scorers()
            .filter(|r| {
                !independent
                    .iter()
                    .any(|s| s.reviewer.eq_ignore_ascii_case(r))
            })
            .collect();
        if !missing.is_empty() {
            return Err(Error::rule(
                "R-12",
                "INDEPENDENT_SHEETS_MISSING",
                format!(
                    "waiting for the independent sheets of {}",
                    missing
                        .iter()
                        .map(|m| format!("reviewers/{m}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        Ok(independent)
    }
}

/// Reads a cycle's submitted consensus and defence sheets and computes its results.
pub async fn compute_cycle(
    db: &Database,
    cycle: &str,
    settings: &Settings,
) -> Result<results::CycleResults> {
    let sheets = store::cycle_sheets(db, cycle).await?;
    let mut scores: std::collections::BTreeMap<String, results::Scores> =
        store::cycle_applications(db, cycle)
            .await?
            .into_iter()
            .map(|a| (a.clone(), results::Scores::new(a)))
            .collect();
    let mut defence: std::collections::BTreeMap<String, Vec<Decimal>> = Default::default();
    for (application, stage, s) in &sheets {
        let value: Decimal = s.total.parse().map_err(Error::internal)?;
        let entry = scores
            .entry(application.clone())
            .or_insert_with(|| results::Scores::new(application.clone()));
        match (stage.as_str(), s.kind.as_str()) {
            ("MATERIALS", "CONSENSUS") => entry.materials = Some(value),
            ("SITE", "CONSENSUS") => entry.site = Some(value),
            ("DEFENCE", "DEFENCE") => defence.entry(application.clone()).or_default().push(value),
            _ => {}
        }
    }
    for (application, marks) in defence {
        if let Some(e) = scores.get_mut(&application) {
            match results::defence_score(&marks, settings) {
                Ok(score) => e.defence = Some(score),
                Err(why) => e.defence_problem = Some(why),
            }
        }
    }
    Ok(results::compute(
        settings,
        &scores.into_values().collect::<Vec<_>>(),
    ))
}

fn reviewer_ref(id: &str) -> String {
    format!("reviewers/{}", id.trim_start_matches("reviewers/"))
}

fn reviewer_id(r: &str) -> String {
    r.trim_start_matches("reviewers/").to_string()
}

fn log_from_pb(l: &pb::ReviewLog) -> Result<review_log::Log> {
    use pb::review_log::Record;
    Ok(match &l.record {
        Some(Record::Hearing(h)) => review_log::Log::Hearing(review_log::Hearing {
            statement_summary: h.statement_summary.clone(),
            exchanges: h
                .exchanges
                .iter()
                .map(|e| review_log::Exchange {
                    question: e.question.clone(),
                    asked_by: reviewer_id(&e.asked_by),
                    answer: e.answer.clone(),
                })
                .collect(),
            advisor_comments: h
                .advisor_comments
                .iter()
                .map(|a| review_log::AdvisorComment {
                    advisor: reviewer_id(&a.advisor),
                    comments: a.comments.clone(),
                    suggestions: a.suggestions.clone(),
                })
                .collect(),
        }),
        Some(Record::SiteVisit(v)) => review_log::Log::SiteVisit(review_log::SiteVisit {
            agenda: v
                .agenda
                .iter()
                .map(|a| review_log::AgendaEntry {
                    step: a.step,
                    start_micros: a
                        .start_time
                        .as_ref()
                        .map(|t| t.seconds * 1_000_000 + i64::from(t.nanos) / 1_000),
                    participants: a.participants.iter().map(|p| reviewer_id(p)).collect(),
                    notes: a.notes.clone(),
                })
                .collect(),
            findings: v
                .findings
                .iter()
                .map(|f| review_log::Finding {
                    item_code: f.item_code.clone(),
                    finding: f.finding.clone(),
                    documents: f.documents.clone(),
                    interviews: f.interviews.clone(),
                    found_by: reviewer_id(&f.found_by),
                })
                .collect(),
            report: v.report.clone(),
        }),
        None => {
            return Err(Error::invalid(
                "review_log.record",
                "a hearing (defence panel) or a site_visit (site group)",
            ));
        }
    })
}

fn log_pb(l: &store::LogRow, scores: Vec<pb::ScoreLine>) -> pb::ReviewLog {
    use pb::review_log::Record;
    let record = match &l.log {
        review_log::Log::Hearing(h) => Record::Hearing(pb::Hearing {
            statement_summary: h.statement_summary.clone(),
            exchanges: h
                .exchanges
                .iter()
                .map(|e| pb::HearingExchange {
                    question: e.question.clone(),
                    asked_by: reviewer_ref(&e.asked_by),
                    answer: e.answer.clone(),
                })
                .collect(),
            advisor_comments: h
                .advisor_comments
                .iter()
                .map(|a| pb::AdvisorComment {
                    advisor: reviewer_ref(&a.advisor),
                    comments: a.comments.clone(),
                    suggestions: a.suggestions.clone(),
                })
                .collect(),
        }),
        review_log::Log::SiteVisit(v) => Record::SiteVisit(pb::SiteVisitLog {
            agenda: v
                .agenda
                .iter()
                .map(|a| pb::AgendaEntry {
                    step: a.step,
                    start_time: a.start_micros.map(to_timestamp),
                    participants: a.participants.iter().map(|p| reviewer_ref(p)).collect(),
                    notes: a.notes.clone(),
                })
                .collect(),
            findings: v
                .findings
                .iter()
                .map(|f| pb::SiteFinding {
                    item_code: f.item_code.clone(),
                    finding: f.finding.clone(),
                    documents: f.documents.clone(),
                    interviews: f.interviews.clone(),
                    found_by: reviewer_ref(&f.found_by),
                })
                .collect(),
            report: v.report.clone(),
        }),
    };
    pb::ReviewLog {
        name: format!("assignments/{}/reviewLog", l.assignment_id),
        assignment: format!("assignments/{}", l.assignment_id),
        version: l.version as i32,
        record: Some(record),
        scores,
        recorded_by: l.recorded_by.clone(),
        update_time: Some(to_timestamp(l.saved_micros)),
    }
}

/// The scores a log is read alongside: each panel member's defence score, or the group's
/// consensus total; submitted sheets only.
async fn log_scores(
    conn: &mut qaward_kit::db::Conn,
    a: &AssignmentRow,
) -> Result<Vec<pb::ScoreLine>> {
    let sheets = store::assignment_sheets(conn, &a.id).await?;
    Ok(sheets
        .iter()
        .filter(|s| s.state != "DRAFT")
        .filter_map(|s| {
            if a.stage == "DEFENCE" && !s.defence_score.is_empty() {
                Some(pb::ScoreLine {
                    scorer: reviewer_ref(&s.reviewer),
                    score: s.defence_score.parse::<Decimal>().ok().and_then(dec_pb),
                })
            } else if a.stage != "DEFENCE" && s.kind == "CONSENSUS" {
                Some(pb::ScoreLine {
                    scorer: "consensus".to_string(),
                    score: s.total.parse::<Decimal>().ok().and_then(dec_pb),
                })
            } else {
                None
            }
        })
        .collect())
}

fn opinion_pb(o: &store::OpinionRow) -> pb::ReservedOpinion {
    pb::ReservedOpinion {
        name: format!(
            "assignments/{}/reservedOpinions/{}",
            o.assignment_id, o.reviewer
        ),
        reviewer: format!("reviewers/{}", o.reviewer),
        text: o.text.clone(),
        item_codes: o.item_codes.clone(),
        consensus_total: o.consensus_total.parse::<Decimal>().ok().and_then(dec_pb),
        create_time: Some(to_timestamp(o.created_micros)),
    }
}

/// The office's pictures of a cycle: materials scores against the R-13 line, composites against
/// the R-17 line (materials out of 1,000; composites out of 1,000 + a defence score out of 100).
fn result_charts(r: &results::CycleResults, settings: &Settings) -> Vec<common::Chart> {
    let materials: Vec<Decimal> = r.results.iter().filter_map(|x| x.materials).collect();
    let composites: Vec<Decimal> = r.results.iter().filter_map(|x| x.composite).collect();
    let fifty = Decimal::from(50);
    vec![
        common::Chart {
            title: "资料评审得分分布".to_string(),
            svg: charts::distribution_svg(
                "资料评审得分分布",
                &materials,
                fifty,
                Decimal::from(1000),
                settings.materials_threshold,
                &format!("{}分线（R-13）", settings.materials_threshold.normalize()),
            ),
        },
        common::Chart {
            title: "综合得分分布".to_string(),
            svg: charts::distribution_svg(
                "综合得分分布",
                &composites,
                fifty,
                Decimal::from(1100),
                settings.candidate_threshold,
                &format!("{}分线（R-17）", settings.candidate_threshold.normalize()),
            ),
        },
    ]
}

fn results_pb(cycle: &str, r: &results::CycleResults) -> pb::CycleResults {
    pb::CycleResults {
        charts: Vec::new(),
        cycle: cycle.to_string(),
        results: r
            .results
            .iter()
            .map(|x| pb::ApplicationResult {
                application: x.application.clone(),
                materials_score: x.materials.and_then(dec_pb),
                site_score: x.site.and_then(dec_pb),
                review_score: x.review.and_then(dec_pb),
                defence_score: x.defence.and_then(dec_pb),
                composite_score: x.composite.and_then(dec_pb),
                rank: x.rank.unwrap_or(0) as i32,
                outcome: (match x.outcome {
                    Outcome::FailedMaterials => pb::Outcome::Failed,
                    Outcome::NotInFinalSelection | Outcome::NotCandidate => {
                        pb::Outcome::NotCandidate
                    }
                    Outcome::Candidate => pb::Outcome::Candidate,
                    Outcome::TiedAtCut => pb::Outcome::TiedAtCut,
                    Outcome::Pending => pb::Outcome::Passed,
                }) as i32,
                materials_passed: x.materials_passed(),
                in_final_selection: x.in_final_selection(),
                explanations: x
                    .explanations
                    .iter()
                    .map(|e| common::Explanation {
                        rule: e.rule.to_string(),
                        message: e.message.clone(),
                        inputs: e.inputs.iter().cloned().collect(),
                    })
                    .collect(),
            })
            .collect(),
        vacant: r.vacant,
        tied_at_cut: r.tied_at_cut.clone(),
    }
}
