//! A cycle's results: a stage's release, the composite, thresholds and ranking
//! with the rule and numbers of every decision, and each applicant's feedback report.

use prost::Message;
use qaward_kit::{
    Error, Result,
    audit::AuditRecord,
    auth::{Caller, Role},
    change::Done,
    db::{Conn, Database},
    error::FieldViolation,
    idempotency::RequestKey,
    paging::Page,
};
use qaward_proto::qaward::{common::v1 as common, scoring::v1 as pb};
use rust_decimal::Decimal;

use super::{
    ScoringApi,
    convert::{dec_pb, exclusion_pb, results_pb, settings_from_pb, stage_name},
    names, staff_of,
};
use crate::{
    domain::{
        charts, leaders,
        lifecycle::{self, Sheet, SheetKind, SheetState},
        report,
        results::{self, Settings},
    },
    store,
};

pub(super) async fn release_stage(
    api: &ScoringApi,
    c: &Caller,
    r: pb::ReleaseStageRequest,
) -> Result<pb::ReleaseStageResponse> {
    names::cycle(&r.cycle, "cycle")?;
    c.acts_for(names::programme_of(&r.cycle))?;
    let stage = stage_name(r.stage).ok_or_else(|| Error::invalid("stage", "must be set"))?;
    let key = RequestKey::new("ReleaseStage", c, &r.request_id, &r)?;
    api.change(key, |mut tx| async move {
        let page = Page::parse(qaward_kit::paging::MAX_PAGE_SIZE as i32, "")?;
        if stage == "SITE" {
            let groups = store::list_assignments(&mut tx, &r.cycle, "", &page)
                .await?
                .iter()
                .filter(|a| a.stage == "SITE")
                .count();
            let held = store::leaders_meeting_held(&mut tx, &r.cycle).await?;
            leaders::site_release_ready(groups, held)?;
        }
        store::release(&mut tx, &r.cycle, stage, api.now()).await?;
        let mut n = 0;
        for a in store::list_assignments(&mut tx, &r.cycle, "", &page)
            .await?
            .iter()
            .filter(|a| a.stage == stage)
        {
            n += store::assignment_sheets(&mut tx, &a.id)
                .await?
                .iter()
                .filter(|s| s.state == SheetState::Submitted)
                .count() as i32;
        }
        let response = pb::ReleaseStageResponse { released_sheets: n };
        let record = AuditRecord::by(
            c,
            "stage.release",
            format!("{}/stages/{}", r.cycle, stage.to_lowercase()),
        );
        Ok(Done::new(tx, record, response))
    })
    .await
}

pub(super) async fn compute(
    api: &ScoringApi,
    c: &Caller,
    r: pb::ComputeResultsRequest,
) -> Result<pb::CycleResults> {
    names::cycle(&r.cycle, "cycle")?;
    // The office and the supervisor of the cycle's programme (the policy admits no one else).
    c.acts_for(names::programme_of(&r.cycle))?;
    let settings = settings_from_pb(&r.settings)?;
    let mut conn = api.db.pool().acquire().await?;
    answer(&mut conn, &r.cycle, &settings).await
}

/// A cycle's results as they stand on `conn` (a transaction sees its own exclusion), with
/// the office's charts and the exclusions.
async fn answer(conn: &mut Conn, cycle: &str, settings: &Settings) -> Result<pb::CycleResults> {
    let computed = compute_cycle_in(conn, cycle, settings).await?;
    let mut answer = results_pb(cycle, &computed);
    answer.charts = result_charts(&computed, settings);
    answer.exclusions = store::exclusions(conn, cycle)
        .await?
        .iter()
        .map(exclusion_pb)
        .collect();
    Ok(answer)
}

pub(super) async fn versions(
    api: &ScoringApi,
    c: &Caller,
    r: pb::ListResultVersionsRequest,
) -> Result<pb::ListResultVersionsResponse> {
    names::cycle(&r.cycle, "cycle")?;
    c.acts_for(names::programme_of(&r.cycle))?;
    let page = Page::parse(r.page_size, &r.page_token)?;
    let after: i64 = if page.after.is_empty() {
        0
    } else {
        page.after
            .parse()
            .map_err(|_| Error::invalid("page_token", "is not a token this list gave"))?
    };
    let mut conn = api.db.pool().acquire().await?;
    let mut rows = store::result_versions(&mut conn, &r.cycle, after, page.fetch()).await?;
    let next_page_token = page.finish(&mut rows, |v| v.version.to_string());
    let versions = rows
        .iter()
        .map(|v| {
            let mut x = pb::CycleResults::decode(v.results.as_slice()).map_err(|e| {
                Error::internal(format!("stored result version {}: {e}", v.version))
            })?;
            x.version = v.version as i32;
            x.version_reason = v.reason.clone();
            x.version_time = Some(qaward_kit::clock::to_timestamp(v.created_micros));
            Ok(x)
        })
        .collect::<Result<_>>()?;
    Ok(pb::ListResultVersionsResponse {
        versions,
        next_page_token,
    })
}

pub(super) async fn feedback_report(
    api: &ScoringApi,
    c: &Caller,
    r: pb::GetFeedbackReportRequest,
) -> Result<pb::FeedbackReport> {
    let (cycle, application) = names::feedback_report(&r.name, "name")?;
    let mut conn = api.db.pool().acquire().await?;
    let page = Page::parse(1, "")?;
    let a = store::list_assignments(&mut conn, &cycle, &application, &Page { size: 10, ..page })
        .await?
        .into_iter()
        .find(|a| a.stage == "MATERIALS")
        .ok_or_else(|| Error::not_found(r.name.clone()))?;
    let released = store::released(&mut conn, &cycle, "MATERIALS").await?;
    let entitled = staff_of(c, &cycle)
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
    let consensus = lifecycle::signed_consensus(
        store::get_sheet(&mut conn, &Sheet::consensus_id(&a.id)).await?,
    )?;
    let (_, rubric) = store::get_rubric(&mut conn, &a.rubric_id, Some(a.rubric_version)).await?;
    let f = report::feedback(&rubric, &consensus);
    Ok(pb::FeedbackReport {
        name: r.name.clone(),
        total: dec_pb(f.total),
        items: f
            .items
            .iter()
            .map(|i| pb::FeedbackItem {
                item_code: i.item_code.clone(),
                title: i.title.clone(),
                score: dec_pb(i.score),
                band: i.band.clone(),
                strengths: i.strengths.clone(),
                opportunities: i.opportunities.clone(),
            })
            .collect(),
        html: if r.include_html {
            report::html(&application, &f)
        } else {
            String::new()
        },
        categories: f
            .categories
            .iter()
            .map(|b| pb::CategoryScore {
                code: b.code.clone(),
                title: b.title.clone(),
                score: dec_pb(b.score),
                max: dec_pb(b.max),
            })
            .collect(),
        profile_svg: f.profile_svg,
    })
}

/// Reads a cycle's submitted consensus and defence sheets and computes its results.
pub async fn compute_cycle(
    db: &Database,
    cycle: &str,
    settings: &Settings,
) -> Result<results::CycleResults> {
    let mut conn = db.pool().acquire().await?;
    compute_cycle_in(&mut conn, cycle, settings).await
}

async fn compute_cycle_in(
    conn: &mut Conn,
    cycle: &str,
    settings: &Settings,
) -> Result<results::CycleResults> {
    let sheets = store::cycle_sheets(conn, cycle).await?;
    let excluded = store::exclusions(conn, cycle).await?;
    let mut scores: std::collections::BTreeMap<String, results::Scores> =
        store::cycle_applications(conn, cycle)
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
        match (stage.as_str(), s.kind) {
            ("MATERIALS", SheetKind::Consensus) => entry.materials = Some(value),
            ("SITE", SheetKind::Consensus) => entry.site = Some(value),
            ("DEFENCE", SheetKind::Defence) => {
                defence.entry(application.clone()).or_default().push(value)
            }
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
    for x in excluded {
        let entry = scores
            .entry(x.application.clone())
            .or_insert_with(|| results::Scores::new(x.application.clone()));
        let rule = results::disqualifying_rule(&x.rule)
            .ok_or_else(|| Error::internal(format!("stored exclusion rule {:?}", x.rule)))?;
        entry.disqualified = Some((rule, x.reason));
    }
    Ok(results::compute(
        settings,
        &scores.into_values().collect::<Vec<_>>(),
    ))
}

pub(super) async fn exclude(
    api: &ScoringApi,
    c: &Caller,
    r: pb::ExcludeApplicationRequest,
) -> Result<pb::Exclusion> {
    names::cycle(&r.cycle, "cycle")?;
    if c.role != Role::Service {
        c.acts_for(names::programme_of(&r.cycle))?;
    }
    let x = r
        .exclusion
        .as_ref()
        .ok_or_else(|| Error::invalid("exclusion", "is required"))?;
    let mut bad = Vec::new();
    if names::application_id_in(&r.cycle, &x.application).is_none_or(|id| id.len() > 100) {
        bad.push(FieldViolation::new(
            "exclusion.application",
            "must be an application of the cycle ({cycle}/applications/{application})",
        ));
    }
    let rule = results::disqualifying_rule(&x.rule);
    if rule.is_none() {
        bad.push(FieldViolation::new(
            "exclusion.rule",
            format!("must be one of {}", results::DISQUALIFYING_RULES.join(", ")),
        ));
    }
    let reason = x.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        bad.push(FieldViolation::new(
            "exclusion.reason",
            "must be 1-500 characters",
        ));
    }
    if !bad.is_empty() {
        return Err(Error::invalid_fields(bad));
    }
    let settings = r
        .settings
        .as_ref()
        .map(|_| settings_from_pb(&r.settings))
        .transpose()?;
    let key = RequestKey::new("ExcludeApplication", c, &r.request_id, &r)?;
    let row = store::ExclusionRow {
        cycle: r.cycle.clone(),
        application: x.application.clone(),
        rule: rule.unwrap_or_default().to_string(),
        reason: reason.to_string(),
        created_micros: qaward_kit::clock::unix_micros(api.now()),
    };
    api.change(key, |mut tx| async move {
        // once the ranking is released (the defence stage), it is not edited: the
        // version as released is kept and a new one released with the reason.
        let released = store::released(&mut tx, &row.cycle, "DEFENCE").await?;
        let versioned = match (released, &settings) {
            (false, _) => None,
            (true, Some(s)) => Some(s),
            (true, None) => {
                return Err(Error::invalid(
                    "settings",
                    "the ranking was released: a new version of it is computed with the cycle's settings (R-51)",
                ));
            }
        };
        let first = store::exclusions(&mut tx, &row.cycle)
            .await?
            .iter()
            .all(|x| x.application != row.application);
        if let (Some(s), true) = (versioned, first)
            && store::result_versions(&mut tx, &row.cycle, 0, 1).await?.is_empty()
        {
            let before = answer(&mut tx, &row.cycle, s).await?;
            store::add_result_version(&mut tx, &row.cycle, "R-17: 发布的排名", &before.encode_to_vec(), api.now())
                .await?;
        }
        let stands = store::exclude(&mut tx, &row).await?;
        if let (Some(s), true) = (versioned, first) {
            let after = answer(&mut tx, &row.cycle, s).await?;
            let why = format!("{}: {}", stands.rule, stands.reason);
            store::add_result_version(&mut tx, &row.cycle, &why, &after.encode_to_vec(), api.now())
                .await?;
        }
        let response = exclusion_pb(&stands);
        let record = AuditRecord::by(c, "application.exclude", response.name.clone())
            .because(format!("{}: {}", stands.rule, stands.reason));
        Ok(Done::new(tx, record, response))
    })
    .await
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
