//! Proto ↔ domain for `qaward.scoring.v1`: messages into domain values (with the field
//! violations of what does not convert) and stored rows into messages. No rule is decided here.

use qaward_kit::{
    Error, Result,
    clock::to_timestamp,
    convert::{date_to_pb, parse_iso_date},
    error::FieldViolation,
};
use qaward_proto::qaward::{common::v1 as common, scoring::v1 as pb};
use rust_decimal::Decimal;

use crate::{
    domain::{
        lifecycle::{ItemEntry, Sheet, SheetKind, SheetState},
        results::{self, DefenceRule, Outcome, Settings},
        review_log,
        rubric::{Category, Item, ItemKind, Rubric},
        sheet,
    },
    store::{self, AssignmentRow},
};

use super::names::assignment_name;

pub(super) fn dec(d: &Option<common::Decimal>, field: &str) -> Result<Option<Decimal>> {
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

pub(super) fn dec_pb(d: Decimal) -> Option<common::Decimal> {
    Some(common::Decimal {
        value: d.normalize().to_string(),
    })
}

pub(super) fn stage_name(s: i32) -> Option<&'static str> {
    match pb::Stage::try_from(s).ok()? {
        pb::Stage::Materials => Some("MATERIALS"),
        pb::Stage::Defence => Some("DEFENCE"),
        pb::Stage::Site => Some("SITE"),
        pb::Stage::Unspecified => None,
    }
}

pub(super) fn stage_pb(s: &str) -> i32 {
    (match s {
        "MATERIALS" => pb::Stage::Materials,
        "DEFENCE" => pb::Stage::Defence,
        _ => pb::Stage::Site,
    }) as i32
}

pub(super) fn rubric_from_pb(r: &pb::Rubric) -> Result<Rubric> {
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

pub(super) fn rubric_pb(id: &str, version: i64, r: &Rubric) -> pb::Rubric {
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

pub(super) fn assignment_pb(a: &AssignmentRow) -> pb::Assignment {
    pb::Assignment {
        name: assignment_name(&a.cycle, &a.id),
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
        hold_reason: a.hold_reason.clone(),
        window_start: parse_iso_date(&a.window_start).map(date_to_pb),
        window_end: parse_iso_date(&a.window_end).map(date_to_pb),
    }
}

/// A sheet of an assignment of `cycle` (`programmes/{p}/cycles/{c}`).
pub(super) fn sheet_pb(cycle: &str, s: &Sheet) -> pb::Sheet {
    let assignment = assignment_name(cycle, &s.assignment_id);
    pb::Sheet {
        name: format!("{assignment}/sheets/{}", s.id),
        assignment,
        reviewer: format!("reviewers/{}", s.reviewer),
        kind: (match s.kind {
            SheetKind::Consensus => pb::SheetKind::Consensus,
            SheetKind::Defence => pb::SheetKind::Defence,
            SheetKind::Independent => pb::SheetKind::Independent,
        }) as i32,
        state: (match s.state {
            SheetState::Draft => pb::SheetState::Draft,
            SheetState::Submitted => pb::SheetState::Submitted,
            SheetState::Superseded => pb::SheetState::Superseded,
            SheetState::Void => pb::SheetState::Void,
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
pub(super) fn items_from_pb(
    items: &[pb::ItemScore],
    rubric: &Rubric,
    field: &str,
) -> Result<Vec<ItemEntry>> {
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

pub(super) fn settings_from_pb(s: &Option<pb::ResultSettings>) -> Result<Settings> {
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

pub(super) fn reviewer_ref(id: &str) -> String {
    format!("reviewers/{}", id.trim_start_matches("reviewers/"))
}

pub(super) fn reviewer_id(r: &str) -> String {
    r.trim_start_matches("reviewers/").to_string()
}

pub(super) fn log_from_pb(l: &pb::ReviewLog) -> Result<review_log::Log> {
    use pb::review_log::Record;
    Ok(match &l.record {
        Some(Record::Hearing(h)) => review_log::Log::Hearing(review_log::Hearing {
            presenter_name: h.presenter_name.trim().to_string(),
            presenter_post: h.presenter_post.trim().to_string(),
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

/// The log of an assignment of `cycle` (`programmes/{p}/cycles/{c}`).
pub(super) fn log_pb(cycle: &str, l: &store::LogRow, scores: Vec<pb::ScoreLine>) -> pb::ReviewLog {
    let assignment = assignment_name(cycle, &l.assignment_id);
    use pb::review_log::Record;
    let record = match &l.log {
        review_log::Log::Hearing(h) => Record::Hearing(pb::Hearing {
            presenter_name: h.presenter_name.clone(),
            presenter_post: h.presenter_post.clone(),
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
        name: format!("{assignment}/reviewLog"),
        assignment,
        version: l.version as i32,
        record: Some(record),
        scores,
        recorded_by: l.recorded_by.clone(),
        update_time: Some(to_timestamp(l.saved_micros)),
    }
}

/// A reserved opinion on an assignment of `cycle` (`programmes/{p}/cycles/{c}`).
pub(super) fn opinion_pb(cycle: &str, o: &store::OpinionRow) -> pb::ReservedOpinion {
    pb::ReservedOpinion {
        name: format!(
            "{}/reservedOpinions/{}",
            assignment_name(cycle, &o.assignment_id),
            o.reviewer
        ),
        reviewer: format!("reviewers/{}", o.reviewer),
        text: o.text.clone(),
        item_codes: o.item_codes.clone(),
        consensus_total: o.consensus_total.parse::<Decimal>().ok().and_then(dec_pb),
        create_time: Some(to_timestamp(o.created_micros)),
    }
}

pub(super) fn results_pb(cycle: &str, r: &results::CycleResults) -> pb::CycleResults {
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
                    Outcome::Disqualified => pb::Outcome::Disqualified,
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
        exclusions: Vec::new(),
        version: 0,
        version_reason: String::new(),
        version_time: None,
    }
}

pub(super) fn exclusion_pb(e: &crate::store::ExclusionRow) -> pb::Exclusion {
    let id = e.application.rsplit('/').next().unwrap_or_default();
    pb::Exclusion {
        name: format!("{}/exclusions/{id}", e.cycle),
        application: e.application.clone(),
        rule: e.rule.clone(),
        reason: e.reason.clone(),
        create_time: Some(qaward_kit::clock::to_timestamp(e.created_micros)),
    }
}
