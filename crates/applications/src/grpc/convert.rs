//! Proto ↔ domain for `qaward.applications.v1`: messages into domain values (with the field
//! violations of what does not convert) and stored rows into messages. No rule is decided here.

use qaward_kit::{
    Error, Result,
    auth::{Caller, Role},
    clock::to_timestamp,
    convert::{chinese_date, date_to_pb, parse_iso_date},
    db::Conn,
    error::FieldViolation,
};
use qaward_proto::qaward::{
    applications::v1 as pb, common::v1 as common, notifications::v1 as npb, reviewers::v1 as rpb,
    scoring::v1 as spb,
};
use rust_decimal::Decimal;

use crate::{
    domain::{
        self, committee,
        cycle::CycleState,
        review::{GroupState, ReviewStage},
        settings::{Settings, defaults},
    },
    store::{
        self, ApplicationRow, ComplaintRow, CycleRow, EnterpriseRow, EvidenceRow, ProgrammeRow,
        ReportRow, ReviewGroupRow,
    },
};

use super::names::resource_of_id;

pub(super) fn decimal_of(
    d: &Option<common::Decimal>,
    field: &'static str,
    bad: &mut Vec<FieldViolation>,
) -> Decimal {
    match d.as_ref().map(|d| d.value.trim().parse::<Decimal>()) {
        Some(Ok(v)) => v,
        Some(Err(_)) => {
            bad.push(FieldViolation::new(
                format!("settings.{field}"),
                "is not a decimal number",
            ));
            Decimal::ZERO
        }
        None => {
            bad.push(FieldViolation::new(
                format!("settings.{field}"),
                "is required",
            ));
            Decimal::ZERO
        }
    }
}

pub(super) fn count_of(v: i32, field: &'static str, bad: &mut Vec<FieldViolation>) -> u32 {
    u32::try_from(v).unwrap_or_else(|_| {
        bad.push(FieldViolation::new(
            format!("settings.{field}"),
            "must not be negative",
        ));
        0
    })
}

pub(super) fn or_default(
    v: i32,
    field: &'static str,
    default: fn() -> u32,
    bad: &mut Vec<FieldViolation>,
) -> u32 {
    if v == 0 {
        default()
    } else {
        count_of(v, field, bad)
    }
}

fn committee_rule_of(v: i32, bad: &mut Vec<FieldViolation>) -> committee::Rule {
    match pb::CommitteeRule::try_from(v) {
        Ok(pb::CommitteeRule::Unspecified) | Ok(pb::CommitteeRule::MoreThanHalfPresent) => {
            committee::Rule::MoreThanHalfPresent
        }
        Ok(pb::CommitteeRule::TwoThirdsPresent) => committee::Rule::TwoThirdsPresent,
        Ok(pb::CommitteeRule::MoreThanHalfMembers) => committee::Rule::MoreThanHalfMembers,
        Err(_) => {
            bad.push(FieldViolation::new(
                "settings.committee_rule",
                "is not a CommitteeRule",
            ));
            committee::Rule::default()
        }
    }
}

pub(super) fn committee_rule_pb(r: committee::Rule) -> pb::CommitteeRule {
    match r {
        committee::Rule::MoreThanHalfPresent => pb::CommitteeRule::MoreThanHalfPresent,
        committee::Rule::TwoThirdsPresent => pb::CommitteeRule::TwoThirdsPresent,
        committee::Rule::MoreThanHalfMembers => pb::CommitteeRule::MoreThanHalfMembers,
    }
}

/// Settings from the request, every field given, validated by the domain.
pub(super) fn settings_from_pb(p: &pb::ProgrammeSettings) -> Result<Settings> {
    let mut bad = Vec::new();
    let s = Settings {
        materials_threshold: decimal_of(&p.materials_threshold, "materials_threshold", &mut bad),
        materials_weight: decimal_of(&p.materials_weight, "materials_weight", &mut bad),
        site_weight: decimal_of(&p.site_weight, "site_weight", &mut bad),
        final_selection_threshold: decimal_of(
            &p.final_selection_threshold,
            "final_selection_threshold",
            &mut bad,
        ),
        candidate_threshold: decimal_of(&p.candidate_threshold, "candidate_threshold", &mut bad),
        max_candidates: count_of(p.max_candidates, "max_candidates", &mut bad),
        public_notice_days: count_of(p.public_notice_days, "public_notice_days", &mut bad),
        // Empty keeps Art. 5's eight units; the count (field 9) follows the list.
        committee_units: if p.committee_units.is_empty() {
            defaults::committee_units()
        } else {
            p.committee_units
                .iter()
                .map(|u| u.trim().to_string())
                .collect()
        },
        committee_rule: committee_rule_of(p.committee_rule, &mut bad),
        recheck_window_days: or_default(
            p.recheck_window_days,
            "recheck_window_days",
            defaults::recheck_window_days,
            &mut bad,
        ),
        // Unset keeps the default; zero is a choice.
        revocation_ban_years: match p.revocation_ban_years {
            None => defaults::three_years(),
            Some(v) => count_of(v, "revocation_ban_years", &mut bad),
        },
        fraud_ban_years: match p.fraud_ban_years {
            None => defaults::three_years(),
            Some(v) => count_of(v, "fraud_ban_years", &mut bad),
        },
        trimmed_defence_mean: p.trimmed_defence_mean,
        min_advisors: match p.min_advisors {
            None => defaults::min_advisors(),
            Some(v) => count_of(v, "min_advisors", &mut bad),
        },
        max_advisors: match p.max_advisors {
            None => defaults::max_advisors(),
            Some(v) => count_of(v, "max_advisors", &mut bad),
        },
        annual_report_due: if p.annual_report_due.trim().is_empty() {
            defaults::annual_report_due()
        } else {
            p.annual_report_due.trim().to_string()
        },
        incident_report_working_days: or_default(
            p.incident_report_working_days,
            "incident_report_working_days",
            defaults::incident_report_working_days,
            &mut bad,
        ),
        ban_years: count_of(p.ban_years, "ban_years", &mut bad),
        min_operating_years: count_of(p.min_operating_years, "min_operating_years", &mut bad),
        profile_max_chars: count_of(p.profile_max_chars, "profile_max_chars", &mut bad),
        self_assessment_max_chars: count_of(
            p.self_assessment_max_chars,
            "self_assessment_max_chars",
            &mut bad,
        ),
        division_codes: p
            .division_codes
            .iter()
            .map(|c| c.trim().to_string())
            .collect(),
        consulted_departments: p
            .consulted_departments
            .iter()
            .map(|c| c.trim().to_string())
            .collect(),
        rubric: p.rubric.trim().to_string(),
        // Zero keeps the programme's default size.
        materials_group_size: or_default(
            p.materials_group_size,
            "materials_group_size",
            defaults::materials_group_size,
            &mut bad,
        ),
        defence_panel_size: or_default(
            p.defence_panel_size,
            "defence_panel_size",
            defaults::defence_panel_size,
            &mut bad,
        ),
        site_group_size: or_default(
            p.site_group_size,
            "site_group_size",
            defaults::site_group_size,
            &mut bad,
        ),
        draw_backups: match p.draw_backups {
            None => defaults::draw_backups(),
            Some(v) => count_of(v, "draw_backups", &mut bad),
        },
        defence_min_scorers: or_default(
            p.defence_min_scorers,
            "defence_min_scorers",
            defaults::defence_min_scorers,
            &mut bad,
        ),
        site_visit_max_days: or_default(
            p.site_visit_max_days,
            "site_visit_max_days",
            defaults::site_visit_max_days,
            &mut bad,
        ),
        complaint_answer_working_days: or_default(
            p.complaint_answer_working_days,
            "complaint_answer_working_days",
            defaults::complaint_answer_working_days,
            &mut bad,
        ),
        // Empty keeps Art. 13(1)'s two departments.
        required_departments: if p.required_departments.is_empty() {
            defaults::required_departments()
        } else {
            p.required_departments
                .iter()
                .map(|c| c.trim().to_string())
                .collect()
        },
    };
    if bad.is_empty() {
        bad.extend(
            s.validate()
                .into_iter()
                .map(|(f, d)| FieldViolation::new(format!("settings.{f}"), d)),
        );
    }
    if bad.is_empty() {
        Ok(s)
    } else {
        Err(Error::invalid_fields(bad))
    }
}

pub(super) fn settings_pb(s: &Settings, version: i64) -> pb::ProgrammeSettings {
    let dec = |d: Decimal| {
        Some(common::Decimal {
            value: d.normalize().to_string(),
        })
    };
    pb::ProgrammeSettings {
        version: version as i32,
        materials_threshold: dec(s.materials_threshold),
        materials_weight: dec(s.materials_weight),
        site_weight: dec(s.site_weight),
        final_selection_threshold: dec(s.final_selection_threshold),
        candidate_threshold: dec(s.candidate_threshold),
        max_candidates: s.max_candidates as i32,
        public_notice_days: s.public_notice_days as i32,
        committee_member_units: s.committee_units.len() as i32,
        committee_units: s.committee_units.clone(),
        committee_rule: committee_rule_pb(s.committee_rule) as i32,
        recheck_window_days: s.recheck_window_days as i32,
        revocation_ban_years: Some(s.revocation_ban_years as i32),
        fraud_ban_years: Some(s.fraud_ban_years as i32),
        trimmed_defence_mean: s.trimmed_defence_mean,
        min_advisors: Some(s.min_advisors as i32),
        max_advisors: Some(s.max_advisors as i32),
        annual_report_due: s.annual_report_due.clone(),
        incident_report_working_days: s.incident_report_working_days as i32,
        ban_years: s.ban_years as i32,
        min_operating_years: s.min_operating_years as i32,
        profile_max_chars: s.profile_max_chars as i32,
        self_assessment_max_chars: s.self_assessment_max_chars as i32,
        division_codes: s.division_codes.clone(),
        consulted_departments: s.consulted_departments.clone(),
        rubric: s.rubric.clone(),
        materials_group_size: s.materials_group_size as i32,
        defence_panel_size: s.defence_panel_size as i32,
        site_group_size: s.site_group_size as i32,
        draw_backups: Some(s.draw_backups as i32),
        defence_min_scorers: s.defence_min_scorers as i32,
        required_departments: s.required_departments.clone(),
        site_visit_max_days: s.site_visit_max_days as i32,
        complaint_answer_working_days: s.complaint_answer_working_days as i32,
    }
}

pub(super) fn programme_pb(r: &ProgrammeRow) -> pb::Programme {
    pb::Programme {
        name: format!("programmes/{}", r.id),
        display_name: r.display_name.clone(),
        settings: Some(settings_pb(&r.settings, r.settings_version)),
        create_time: Some(to_timestamp(r.created_micros)),
    }
}

pub(super) fn cycle_state_pb(s: CycleState) -> pb::CycleState {
    match s {
        CycleState::Open => pb::CycleState::Open,
        CycleState::PublicNotice => pb::CycleState::PublicNotice,
        CycleState::Decided => pb::CycleState::Decided,
        CycleState::Vacant => pb::CycleState::Vacant,
        CycleState::Approved => pb::CycleState::Approved,
    }
}

pub(crate) fn cycle_pb(c: &CycleRow) -> pb::Cycle {
    pb::Cycle {
        name: format!("programmes/{}/cycles/{}", c.programme_id, c.year),
        year: c.year as i32,
        notice_title: c.notice_title.clone(),
        conditions: c.conditions.clone(),
        required_materials: c.required_materials.clone(),
        deadline: Some(to_timestamp(c.deadline_micros)),
        settings_version: c.settings_version as i32,
        state: cycle_state_pb(c.state) as i32,
        approval_document: c.approval_document.clone(),
        approval_date: parse_iso_date(&c.approval_date).map(date_to_pb),
        award_audit_checkpoints: Vec::new(),
    }
}

pub(crate) fn enterprise_pb(e: &EnterpriseRow) -> pb::Enterprise {
    pb::Enterprise {
        name: format!("enterprises/{}", e.credit_code),
        display_name: e.display_name.clone(),
        credit_code: e.credit_code.clone(),
        established_date: parse_iso_date(&e.established_date).map(date_to_pb),
        industry_code: e.industry_code.clone(),
        recommending_unit: e.recommending_unit.clone(),
    }
}

pub(crate) fn explanation_pb(e: &domain::Explanation) -> common::Explanation {
    common::Explanation {
        rule: e.rule.to_string(),
        message: e.message.clone(),
        inputs: e.inputs.clone().into_iter().collect(),
    }
}

/// A one-line text field: trimmed, 1-`max` characters, no line breaks.
pub(crate) fn line(v: &str, field: &str, max: usize, bad: &mut Vec<FieldViolation>) -> String {
    let t = v.trim();
    if t.is_empty() || t.chars().count() > max || t.contains(['\n', '\r']) {
        bad.push(FieldViolation::new(
            field,
            format!("must be one line of 1-{max} characters"),
        ));
    }
    t.to_string()
}

/// A required date field: the date, or its violation in `bad`.
pub(crate) fn required_date(
    d: &Option<qaward_proto::qaward::common::v1::Date>,
    field: &str,
    bad: &mut Vec<FieldViolation>,
) -> Option<time::Date> {
    match d {
        Some(d) => qaward_kit::convert::date_from_pb(d, field)
            .map_err(|e| bad.extend(e.violations.clone()))
            .ok(),
        None => {
            bad.push(FieldViolation::new(field, "is required"));
            None
        }
    }
}

/// The China Standard Time date of a stored instant.
pub(crate) fn china_date(micros: i64) -> time::Date {
    qaward_kit::clock::china_date(qaward_kit::clock::from_unix_micros(micros))
}

pub(super) fn stage_pb(s: &str) -> i32 {
    pb::ApplicationStage::from_str_name(&format!("APPLICATION_STAGE_{s}")).unwrap_or_default()
        as i32
}

pub(crate) fn opinion_str(o: i32) -> Option<&'static str> {
    match pb::Opinion::try_from(o).ok()? {
        pb::Opinion::Support => Some("SUPPORT"),
        pb::Opinion::Object => Some("OBJECT"),
        pb::Opinion::Unspecified => None,
    }
}

/// A request's `opinion` field, or a violation naming it (and "" in its place).
pub(super) fn opinion_field(o: i32, bad: &mut Vec<FieldViolation>) -> &'static str {
    opinion_str(o).unwrap_or_else(|| {
        bad.push(FieldViolation::new(
            "opinion",
            "must be OPINION_SUPPORT or OPINION_OBJECT",
        ));
        ""
    })
}

pub(crate) async fn application_pb(
    conn: &mut Conn,
    row: &ApplicationRow,
) -> Result<pb::Application> {
    let evidence = store::evidence_of(conn, &row.id).await?;
    let recs = store::recommendations_of(conn, &row.id).await?;
    let name = format!(
        "programmes/{}/cycles/{}/applications/{}",
        row.programme_id, row.year, row.credit_code
    );
    Ok(pb::Application {
        evidence: evidence.iter().map(|e| evidence_pb(&name, e)).collect(),
        name,
        enterprise: format!("enterprises/{}", row.credit_code),
        stage: stage_pb(&row.stage),
        application_form: row.application_form.clone(),
        organisation_profile: row.organisation_profile.clone(),
        self_assessment: row.self_assessment.clone(),
        recommendations: recs
            .iter()
            .map(|r| pb::Recommendation {
                unit: r.unit.clone(),
                opinion: pb::Opinion::from_str_name(&format!("OPINION_{}", r.opinion))
                    .unwrap_or_default() as i32,
                reasons: r.reasons.clone(),
                sign_time: Some(to_timestamp(r.signed_micros)),
                attested: r
                    .attested
                    .iter()
                    .filter_map(|a| pb::Condition::from_str_name(&format!("CONDITION_{a}")))
                    .map(|c| c as i32)
                    .collect(),
            })
            .collect(),
        submit_time: row.submitted_micros.map(to_timestamp),
        last_decision: Some(qaward_proto::qaward::common::v1::Explanation {
            rule: row.last_rule.clone(),
            message: row.last_message.clone(),
            inputs: serde_json::from_str(&row.last_inputs).unwrap_or_default(),
        }),
    })
}

pub(super) fn evidence_pb(application: &str, e: &EvidenceRow) -> pb::EvidenceFile {
    pb::EvidenceFile {
        name: format!("{application}/evidence/{}", e.id),
        file_name: e.file_name.clone(),
        content_type: e.content_type.clone(),
        size_bytes: e.size_bytes,
        sha256: e.sha256.clone(),
        kind: if e.kind == "CERTIFICATE" {
            pb::EvidenceKind::Certificate
        } else {
            pb::EvidenceKind::Supporting
        } as i32,
        issued_by: e.issued_by.clone(),
    }
}

pub(super) fn stage_from_pb(v: i32) -> Option<ReviewStage> {
    match pb::ReviewStage::try_from(v).ok()? {
        pb::ReviewStage::Materials => Some(ReviewStage::Materials),
        pb::ReviewStage::Defence => Some(ReviewStage::Defence),
        pb::ReviewStage::Site => Some(ReviewStage::Site),
        pb::ReviewStage::Unspecified => None,
    }
}

pub(super) fn review_stage_pb(s: ReviewStage) -> pb::ReviewStage {
    match s {
        ReviewStage::Materials => pb::ReviewStage::Materials,
        ReviewStage::Defence => pb::ReviewStage::Defence,
        ReviewStage::Site => pb::ReviewStage::Site,
    }
}

pub(super) fn purpose(s: ReviewStage) -> rpb::DrawPurpose {
    match s {
        ReviewStage::Materials => rpb::DrawPurpose::MaterialsGroup,
        ReviewStage::Defence => rpb::DrawPurpose::DefencePanel,
        ReviewStage::Site => rpb::DrawPurpose::SiteGroup,
    }
}

pub(super) fn scoring_stage(s: ReviewStage) -> spb::Stage {
    match s {
        ReviewStage::Materials => spb::Stage::Materials,
        ReviewStage::Defence => spb::Stage::Defence,
        ReviewStage::Site => spb::Stage::Site,
    }
}

/// The group as its reader may see it: members are sealed from everyone but the office and
/// the supervisor.
pub(super) fn group_pb(g: &ReviewGroupRow, c: &Caller) -> pb::ReviewGroup {
    let office = matches!(c.role, Role::Office | Role::Supervisor);
    let stage = ReviewStage::parse(&g.stage).unwrap_or(ReviewStage::Materials);
    pb::ReviewGroup {
        name: format!(
            "programmes/{}/cycles/{}/reviewGroups/{}",
            g.programme_id, g.year, g.id
        ),
        stage: review_stage_pb(stage) as i32,
        applications: g
            .applications
            .iter()
            .map(|(a, _)| resource_of_id(a))
            .collect(),
        window_start: parse_iso_date(&g.window_start).map(date_to_pb),
        window_end: parse_iso_date(&g.window_end).map(date_to_pb),
        entropy_commitment: g.entropy_commitment.clone(),
        entropy_source: g.entropy_source.clone(),
        fixes_public_value: g.fixes_public_value,
        state: (match g.state {
            GroupState::Started => pb::ReviewGroupState::Started,
            GroupState::Prepared => pb::ReviewGroupState::Prepared,
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

/// The scoring settings of a programme's settings.
pub(super) fn result_settings(s: &Settings) -> spb::ResultSettings {
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
        defence_min_scorers: s.defence_min_scorers as i32,
        trimmed_defence_mean: s.trimmed_defence_mean,
    }
}

pub(crate) fn decimal(d: &Option<qaward_proto::qaward::common::v1::Decimal>) -> Option<Decimal> {
    d.as_ref().and_then(|d| d.value.parse().ok())
}

/// A complaint as `show_filer`'s reader sees it: the filer's identity only for the office.
pub(super) fn complaint_pb(application: &str, c: &ComplaintRow, show_filer: bool) -> pb::Complaint {
    pb::Complaint {
        name: format!("{application}/complaints/{}", c.id),
        text: c.text.clone(),
        evidence: c.evidence.clone(),
        outcome: pb::ComplaintOutcome::from_str_name(&format!("COMPLAINT_OUTCOME_{}", c.outcome))
            .unwrap_or_default() as i32,
        investigation: c.investigation.clone(),
        create_time: Some(to_timestamp(c.created_micros)),
        kind: pb::ComplaintKind::from_str_name(&format!("COMPLAINT_KIND_{}", c.kind))
            .unwrap_or_default() as i32,
        case_number: c.case_number.clone(),
        answer_by: c.answer_by_micros.map(to_timestamp),
        reviewer: if c.reviewer.is_empty() {
            String::new()
        } else {
            format!("reviewers/{}", c.reviewer)
        },
        owner: c.owner.clone(),
        complainant: if show_filer {
            c.complainant.clone()
        } else {
            String::new()
        },
    }
}

pub(super) fn report_pb(r: &ReportRow) -> pb::WinnerReport {
    pb::WinnerReport {
        name: format!("enterprises/{}/reports/{}", r.credit_code, r.id),
        kind: pb::ReportKind::from_str_name(&format!("REPORT_KIND_{}", r.kind)).unwrap_or_default()
            as i32,
        year: r.year as i32,
        text: r.text.clone(),
        event_date: parse_iso_date(&r.event_date).map(date_to_pb),
        file_time: Some(to_timestamp(r.filed_micros)),
        late: r.late,
        due_date: parse_iso_date(&r.due_date).map(date_to_pb),
    }
}

/// A notification to one recipient's inbox, for the outbox.
pub(crate) fn notice(
    event: &str,
    to: &str,
    display: &str,
    vars: &[(&str, String)],
) -> npb::Notification {
    npb::Notification {
        event_type: event.to_string(),
        recipients: vec![npb::Recipient {
            id: to.to_string(),
            display_name: display.to_string(),
            ..Default::default()
        }],
        variables: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        ..Default::default()
    }
}
