//! Complaints and tip-offs (Art. 6(5); ): anyone files one in writing, about an
//! applicant, a winner or a reviewer of its review; each is a case with a number, an owner in
//! the office, a date it is answered by and an outcome; its filer follows it; the filer's
//! identity is shown to the office alone. The rules are `domain::selection`'s.

use qaward_kit::{
    Error, Result,
    audit::AuditRecord,
    auth::{Caller, Role},
    change::Done,
    clock::{from_unix_micros, unix_micros},
    error::FieldViolation,
    idempotency::RequestKey,
    notify,
    paging::Page,
};
use qaward_proto::qaward::applications::v1 as pb;

use crate::{
    domain::{
        Explanation, refused, selection,
        stage::{Stage, Step},
    },
    store::{self, ApplicationRow, ComplaintRow, stage_of},
};

use super::{
    ApplicationsApi,
    consultation::move_by,
    convert::{china_date, complaint_pb, line, notice},
    disqualify,
    names::application_name,
};

impl ApplicationsApi {
    pub(super) async fn selection_complain(
        &self,
        c: &Caller,
        r: pb::CreateComplaintRequest,
    ) -> Result<pb::Complaint> {
        let (p, y, code) = application_name(&r.parent, "parent")?;
        let complaint = r
            .complaint
            .as_ref()
            .ok_or_else(|| Error::invalid("complaint", "is required"))?;
        let mut bad = Vec::new();
        let text = complaint.text.trim().to_string();
        if text.is_empty() || text.chars().count() > 10_000 {
            bad.push(FieldViolation::new(
                "complaint.text",
                "must be 1-10000 characters: a complaint is made in writing (R-21)",
            ));
        }
        if complaint.evidence.len() > 20 {
            bad.push(FieldViolation::new(
                "complaint.evidence",
                "at most 20 items",
            ));
        }
        let evidence: Vec<String> = complaint
            .evidence
            .iter()
            .enumerate()
            .map(|(i, e)| line(e, &format!("complaint.evidence[{i}]"), 500, &mut bad))
            .collect();
        // About a reviewer of the review (Art. 6(5)), or else the applicant.
        let reviewer = match complaint.reviewer.trim() {
            "" => String::new(),
            r => match r
                .strip_prefix("reviewers/")
                .filter(|x| !x.is_empty() && x.len() <= 64 && !x.contains('/'))
            {
                Some(id) => id.to_ascii_uppercase(),
                None => {
                    bad.push(FieldViolation::new(
                        "complaint.reviewer",
                        "must be reviewers/{id} or empty",
                    ));
                    String::new()
                }
            },
        };
        if !bad.is_empty() {
            return Err(Error::invalid_fields(bad));
        }
        let key = RequestKey::new("CreateComplaint", c, &r.request_id, &r)?;
        let now = self.now();
        self.change(key, |mut tx| async move {
            let row =
                store::get_application(&mut tx, &ApplicationRow::key(&p, y, code.as_str())).await?;
            // Art. 6(5): an objection to a candidate on the notice while it runs; any
            // other complaint is a tip-off, accepted at any stage, never refused.
            if !reviewer.is_empty() {
                let mut members = Vec::new();
                for stage in ["MATERIALS", "DEFENCE", "SITE"] {
                    if let Some(g) = store::group_of(&mut tx, &row.id, stage).await? {
                        members.extend(g.members.into_iter().map(|(m, _)| m));
                        members.extend(g.advisors);
                    }
                }
                selection::reviewer_of_review(&reviewer, &members).map_err(refused)?;
            }
            let notice = store::public_notice(&mut tx, &p, y).await?;
            let kind = selection::complaint_kind(
                stage_of(&row)? == Stage::PublicNotice,
                !reviewer.is_empty(),
                match notice {
                    Some((start, end)) => selection::complaint_window(
                        now,
                        from_unix_micros(start),
                        from_unix_micros(end),
                    ),
                    None => Err(Explanation::new("R-21", "NO_PUBLIC_NOTICE", "公示尚未开始")),
                },
            );
            let cycle = store::get_cycle(&mut tx, &p, y).await?;
            let settings = store::settings_version(&mut tx, &p, cycle.settings_version).await?;
            // A year the working-day calendar does not know yet leaves the date unset rather than
            // guessed; the complaint is still accepted.
            let answer_by = self
                .calendar()
                .add_working_days(
                    china_date(unix_micros(now)),
                    settings.complaint_answer_working_days,
                )
                .ok()
                .and_then(|d| d.with_hms(23, 59, 59).ok())
                .map(|d| d.assume_offset(qaward_kit::clock::CHINA));
            let stored = ComplaintRow {
                id: self.new_id(),
                application_id: row.id.clone(),
                complainant: c.subject.clone(),
                text,
                evidence,
                outcome: "PENDING".to_string(),
                investigation: String::new(),
                created_micros: unix_micros(now),
                kind: kind.as_str().to_string(),
                case_number: store::next_case_number(&mut tx, &p, y).await?,
                answer_by_micros: answer_by.map(unix_micros),
                owner: String::new(),
                reviewer: reviewer.clone(),
                filed_by: c.identity(),
            };
            store::insert_complaint(&mut tx, &stored).await?;
            let response = complaint_pb(&r.parent, &stored, is_office(c));
            let record = AuditRecord::by(c, "complaint.create", response.name.clone())
                .because(kind.rule())
                .with_detail(serde_json::json!({
                    "kind": kind.as_str(), "case_number": stored.case_number,
                    "reviewer": stored.reviewer,
                }));
            Ok(Done::new(tx, record, response))
        })
        .await
    }

    pub(super) async fn selection_list_complaints(
        &self,
        c: &Caller,
        r: pb::ListComplaintsRequest,
    ) -> Result<pb::ListComplaintsResponse> {
        let (p, y, code) = application_name(&r.parent, "parent")?;
        c.acts_for(&p)?;
        let page = Page::parse(r.page_size, &r.page_token)?;
        let mut conn = self.db().pool().acquire().await?;
        let mut rows =
            store::complaints_of(&mut conn, &ApplicationRow::key(&p, y, code.as_str()), &page)
                .await?;
        let next_page_token = page.finish(&mut rows, |x| x.id.clone());
        Ok(pb::ListComplaintsResponse {
            complaints: rows
                .iter()
                .map(|x| complaint_pb(&r.parent, x, is_office(c)))
                .collect(),
            next_page_token,
        })
    }

    pub(super) async fn selection_resolve_complaint(
        &self,
        c: &Caller,
        r: pb::ResolveComplaintRequest,
    ) -> Result<pb::Complaint> {
        let (application, id) = r.name.rsplit_once("/complaints/").ok_or_else(|| {
            Error::invalid(
                "name",
                "must be …/applications/{code}/complaints/{complaint}",
            )
        })?;
        let (p, y, code) = application_name(application, "name")?;
        c.acts_for(&p)?;
        let mut bad = Vec::new();
        let investigation = r.investigation.trim().to_string();
        if investigation.is_empty() || investigation.chars().count() > 10_000 {
            bad.push(FieldViolation::new(
                "investigation",
                "must be 1-10000 characters",
            ));
        }
        let outcome = match pb::ComplaintOutcome::try_from(r.outcome) {
            Ok(pb::ComplaintOutcome::Substantiated) => "SUBSTANTIATED",
            Ok(pb::ComplaintOutcome::Unfounded) => "UNFOUNDED",
            _ => {
                bad.push(FieldViolation::new(
                    "outcome",
                    "must be SUBSTANTIATED or UNFOUNDED",
                ));
                ""
            }
        };
        if r.fraud && outcome != "SUBSTANTIATED" {
            bad.push(FieldViolation::new(
                "fraud",
                "only a substantiated complaint finds fraud (Art. 12(2))",
            ));
        }
        if !bad.is_empty() {
            return Err(Error::invalid_fields(bad));
        }
        let key = RequestKey::new("ResolveComplaint", c, &r.request_id, &r)?;
        let now = self.now();
        let r = &r;
        self.change(key, |mut tx| async move {
            let mut row =
                store::get_application(&mut tx, &ApplicationRow::key(&p, y, code.as_str())).await?;
            let mut complaint = store::get_complaint(&mut tx, &row.id, id)
                .await?
                .ok_or_else(|| Error::not_found(r.name.clone()))?;
            let first =
                store::resolve_complaint(&mut tx, id, outcome, &investigation, unix_micros(now))
                    .await?;
            selection::first_resolution(first).map_err(refused)?;
            complaint.outcome = outcome.to_string();
            complaint.investigation = investigation.clone();
            // a substantiated objection disqualifies; unfounded keeps the candidate.
            // whether a substantiated tip-off disqualifies is
            // `selection::substantiated_disqualifies`; the finding stays on the record either way.
            let kind = selection::ComplaintKind::parse(&complaint.kind)
                .unwrap_or(selection::ComplaintKind::Objection);
            let mut disqualified = false;
            if outcome == "SUBSTANTIATED" {
                let finding = match kind {
                    selection::ComplaintKind::Objection => {
                        format!("公示期异议经调查属实：{investigation}")
                    }
                    selection::ComplaintKind::TipOff => {
                        format!(
                            "举报经调查属实（{}）：{investigation}",
                            complaint.case_number
                        )
                    }
                };
                let step = Step::Disqualify {
                    rule: kind.rule(),
                    reason: finding.clone(),
                };
                let about_reviewer = !complaint.reviewer.is_empty();
                if selection::substantiated_disqualifies(
                    kind,
                    about_reviewer,
                    stage_of(&row)?,
                    &step,
                ) {
                    move_by(&mut tx, c, now, &mut row, &step).await?;
                    disqualify::consequences(&mut tx, now, &row, kind.rule(), &finding, r.fraud)
                        .await?;
                    disqualified = true;
                } else if r.fraud && !about_reviewer {
                    // Past the running, a fraud finding still bars (Art. 12(2)).
                    disqualify::bar(&mut tx, now, &row, kind.rule(), &finding).await?;
                }
            }
            let enterprise = store::get_enterprise(&mut tx, &row.credit_code).await?;
            if notify::valid_recipient_id(&complaint.complainant) {
                notify::enqueue(
                    &mut tx,
                    now,
                    &notice(
                        "complaint.outcome",
                        &complaint.complainant,
                        "",
                        &[
                            ("complainant_name", complaint.complainant.clone()),
                            ("enterprise_name", enterprise.display_name.clone()),
                            (
                                "outcome",
                                if outcome == "SUBSTANTIATED" {
                                    "异议属实"
                                } else {
                                    "异议不成立"
                                }
                                .to_string(),
                            ),
                            ("reason", investigation.clone()),
                        ],
                    ),
                )
                .await?;
            }
            let response = complaint_pb(application, &complaint, true);
            let record = AuditRecord::by(c, "complaint.resolve", response.name.clone())
                .because(kind.rule())
                .with_detail(serde_json::json!({
                    "outcome": outcome, "fraud": r.fraud, "kind": complaint.kind,
                    "case_number": complaint.case_number, "disqualified": disqualified,
                }));
            Ok(Done::new(tx, record, response))
        })
        .await
    }

    pub(super) async fn complaint_assign(
        &self,
        c: &Caller,
        r: pb::AssignComplaintRequest,
    ) -> Result<pb::Complaint> {
        let (application, id, p, y, code) = complaint_name(&r.name)?;
        c.acts_for(&p)?;
        let mut bad = Vec::new();
        let owner = line(&r.owner, "owner", 100, &mut bad);
        if !bad.is_empty() {
            return Err(Error::invalid_fields(bad));
        }
        let key = RequestKey::new("AssignComplaint", c, &r.request_id, &r)?;
        self.change(key, |mut tx| async move {
            let row =
                store::get_application(&mut tx, &ApplicationRow::key(&p, y, code.as_str())).await?;
            let mut complaint = store::get_complaint(&mut tx, &row.id, &id)
                .await?
                .ok_or_else(|| Error::not_found(r.name.clone()))?;
            let before = std::mem::replace(&mut complaint.owner, owner.clone());
            store::set_complaint_owner(&mut tx, &id, &owner).await?;
            let response = complaint_pb(&application, &complaint, true);
            let record = AuditRecord::by(c, "complaint.assign", response.name.clone())
                .because("R-52")
                .with_detail(serde_json::json!({
                    "case_number": complaint.case_number, "owner": owner, "before": before,
                }));
            Ok(Done::new(tx, record, response))
        })
        .await
    }

    pub(super) async fn complaint_get(
        &self,
        c: &Caller,
        r: pb::GetComplaintRequest,
    ) -> Result<pb::Complaint> {
        let (application, id, p, y, code) = complaint_name(&r.name)?;
        let mut conn = self.db().pool().acquire().await?;
        let row =
            store::get_application(&mut conn, &ApplicationRow::key(&p, y, code.as_str())).await?;
        let complaint = store::get_complaint(&mut conn, &row.id, &id)
            .await?
            .ok_or_else(|| Error::not_found(r.name.clone()))?;
        let staff = matches!(c.role, Role::Office | Role::Supervisor) && c.acts_for(&p).is_ok();
        // The filer follows its case; nobody else outside the office and the supervisor reads
        // it (a party complained about learns nothing of it here).
        if !staff && complaint.filed_by != c.identity() {
            return Err(Error::not_found(r.name.clone()));
        }
        Ok(complaint_pb(
            &application,
            &complaint,
            is_office(c) && staff,
        ))
    }
}

/// The filer's identity is shown to the office alone (Art. 6(5)): the domain's rule.
fn is_office(c: &Caller) -> bool {
    selection::filer_shown_to(c.role)
}

/// `…/applications/{a}/complaints/{id}` → the application's name, the id, and the cycle and
/// enterprise it names.
fn complaint_name(name: &str) -> Result<(String, String, String, i64, qaward_kit::cn::CreditCode)> {
    let (application, id) = name
        .rsplit_once("/complaints/")
        .filter(|(_, id)| !id.is_empty() && !id.contains('/'))
        .ok_or_else(|| {
            Error::invalid(
                "name",
                "must be programmes/{p}/cycles/{c}/applications/{a}/complaints/{complaint}",
            )
        })?;
    let (p, y, code) = application_name(application, "name")?;
    Ok((application.to_string(), id.to_string(), p, y, code))
}
