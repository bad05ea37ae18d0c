//! The committee's decision and the county government's approval.

use qaward_kit::{
    Error, Result,
    audit::AuditRecord,
    auth::Caller,
    change,
    change::Done,
    clock::{from_unix_micros, unix_micros},
    convert::{date_from_pb, iso_date},
    error::FieldViolation,
    idempotency::RequestKey,
    notify,
};
use qaward_proto::qaward::applications::v1 as pb;

use crate::{
    domain::{
        cycle::CycleState,
        duties, refused, selection,
        stage::{Stage, Step},
    },
    store::{self, ApplicationRow},
};

use super::{
    ApplicationsApi,
    consultation::move_by,
    convert::{cycle_pb, line, notice},
    names::{application_name, application_resource, cycle_id},
};

impl ApplicationsApi {
    pub(super) async fn selection_committee(
        &self,
        c: &Caller,
        r: pb::RecordCommitteeMeetingRequest,
    ) -> Result<pb::Cycle> {
        let (p, y) = cycle_id(&r.name, "name")?;
        c.acts_for(&p)?;
        let mut bad = Vec::new();
        let mut units: Vec<String> = Vec::new();
        for (i, u) in r.units_present.iter().enumerate() {
            let u = line(u, &format!("units_present[{i}]"), 100, &mut bad);
            if units.contains(&u) {
                bad.push(FieldViolation::new(
                    format!("units_present[{i}]"),
                    "is listed twice",
                ));
            }
            units.push(u);
        }
        let mut decisions = Vec::new();
        for (i, d) in r.decisions.iter().enumerate() {
            let field = format!("decisions[{i}]");
            match application_name(&d.application, &format!("{field}.application")) {
                Ok((ap, ay, code)) if ap == p && ay == y => {
                    if d.note.chars().count() > 2_000 {
                        bad.push(FieldViolation::new(
                            format!("{field}.note"),
                            "at most 2000 characters",
                        ));
                    }
                    decisions.push((code, d.adopted, d.note.trim().to_string()));
                }
                Ok(_) => bad.push(FieldViolation::new(
                    format!("{field}.application"),
                    "is not of this cycle",
                )),
                Err(e) => bad.extend(e.violations.clone()),
            }
        }
        let mut recusals = Vec::new();
        for (i, x) in r.recusals.iter().enumerate() {
            let field = format!("recusals[{i}]");
            let unit = line(&x.unit, &format!("{field}.unit"), 100, &mut bad);
            let reason = line(&x.reason, &format!("{field}.reason"), 500, &mut bad);
            if !units.contains(&unit) {
                bad.push(FieldViolation::new(
                    format!("{field}.unit"),
                    "a recused unit is one of units_present",
                ));
            }
            if application_name(&x.application, &format!("{field}.application")).is_err() {
                bad.push(FieldViolation::new(
                    format!("{field}.application"),
                    "must name an application",
                ));
            }
            recusals.push(serde_json::json!({
                "unit": unit, "application": x.application, "reason": reason,
            }));
        }
        if !bad.is_empty() {
            return Err(Error::invalid_fields(bad));
        }
        let key = RequestKey::new("RecordCommitteeMeeting", c, &r.request_id, &r)?;
        // A retry is answered before the state it reads below has moved on (AIP-155).
        if let Some(done) = change::recall(self.db(), &key).await? {
            return Ok(done);
        }
        let now = self.now();
        let on_notice = self.all_in(&p, y, Stage::PublicNotice).await?;
        self.change(key, |mut tx| async move {
            let mut cycle = store::get_cycle(&mut tx, &p, y).await?;
            let settings = store::settings_version(&mut tx, &p, cycle.settings_version).await?;
            selection::committee_may_decide(units.len() as u32, &settings).map_err(refused)?;
            let (_, end) = selection::published(store::public_notice(&mut tx, &p, y).await?)
                .map_err(refused)?;
            let pending = store::pending_complaints(&mut tx, &p, y).await?;
            selection::committee_may_meet(now, from_unix_micros(end), pending).map_err(refused)?;
            let codes: Vec<&str> = decisions.iter().map(|(code, _, _)| code.as_str()).collect();
            let undecided: Vec<String> = on_notice
                .iter()
                .filter(|a| !codes.contains(&a.credit_code.as_str()))
                .map(application_resource)
                .collect();
            let strangers: Vec<&str> = codes
                .iter()
                .filter(|code| !on_notice.iter().any(|a| a.credit_code == **code))
                .copied()
                .collect();
            selection::decisions_complete(on_notice.len(), &undecided, &strangers)
                .map_err(refused)?;
            let meeting = self.new_id();
            let recusals = serde_json::Value::Array(recusals);
            store::insert_meeting(
                &mut tx,
                &meeting,
                &p,
                y,
                &units,
                &recusals,
                unix_micros(now),
            )
            .await?;
            for (code, adopted, note) in &decisions {
                let mut row =
                    store::get_application(&mut tx, &ApplicationRow::key(&p, y, code.as_str()))
                        .await?;
                store::insert_committee_decision(&mut tx, &row.id, &meeting, *adopted, note)
                    .await?;
                if !adopted {
                    move_by(
                        &mut tx,
                        c,
                        now,
                        &mut row,
                        &Step::NotAdopted { note: note.clone() },
                    )
                    .await?;
                }
            }
            cycle.state = if decisions.iter().any(|d| d.1) {
                CycleState::Decided
            } else {
                CycleState::Vacant
            };
            store::set_cycle_state(&mut tx, &cycle).await?;
            let response = cycle_pb(&cycle);
            let record = AuditRecord::by(c, "cycle.committee_meeting", r.name.clone())
                .because("R-22")
                .with_detail(serde_json::json!({
                    "meeting": meeting, "units_present": units, "recusals": recusals,
                    "member_units": settings.committee_member_units,
                    "decisions": decisions.iter().map(|(code, a, n)| serde_json::json!({
                        "enterprise": code.as_str(), "adopted": a, "note": n,
                    })).collect::<Vec<_>>(),
                }));
            Ok(Done::new(tx, record, response))
        })
        .await
    }

    pub(super) async fn selection_approve(
        &self,
        c: &Caller,
        r: pb::RecordApprovalRequest,
    ) -> Result<pb::Cycle> {
        let (p, y) = cycle_id(&r.name, "name")?;
        c.acts_for(&p)?;
        let mut bad = Vec::new();
        let document = line(&r.document_number, "document_number", 100, &mut bad);
        let date = match &r.approval_date {
            Some(d) => date_from_pb(d, "approval_date")
                .map_err(|e| bad.extend(e.violations.clone()))
                .ok(),
            None => {
                bad.push(FieldViolation::new("approval_date", "is required"));
                None
            }
        };
        let (Some(date), true) = (date, bad.is_empty()) else {
            return Err(Error::invalid_fields(bad));
        };
        let key = RequestKey::new("RecordApproval", c, &r.request_id, &r)?;
        // A retry is answered before the state it reads below has moved on (AIP-155).
        if let Some(done) = change::recall(self.db(), &key).await? {
            return Ok(done);
        }
        let now = self.now();
        let on_notice = self.all_in(&p, y, Stage::PublicNotice).await?;
        self.change(key, |mut tx| async move {
            let mut cycle = store::get_cycle(&mut tx, &p, y).await?;
            selection::may_record_approval(cycle.state).map_err(refused)?;
            let programme = store::get_programme(&mut tx, &p).await?;
            let settings = store::settings_version(&mut tx, &p, cycle.settings_version).await?;
            let mut n = 0;
            for mut row in on_notice {
                if store::adopted(&mut tx, &row.id).await? != Some(true) {
                    continue;
                }
                n += 1;
                let certificate = selection::certificate_number(&p, y, n);
                move_by(
                    &mut tx,
                    c,
                    now,
                    &mut row,
                    &Step::Award {
                        document: document.clone(),
                    },
                )
                .await?;
                store::insert_award(&mut tx, &row.id, &certificate, &iso_date(date), &document)
                    .await?;
                // The award bars the next applications for the ban years.
                store::add_record(
                    &mut tx,
                    &row.credit_code,
                    &p,
                    "award",
                    &iso_date(date),
                    &certificate,
                    unix_micros(now),
                )
                .await?;
                let e = store::get_enterprise(&mut tx, &row.credit_code).await?;
                // the winner is reminded of each year's report before it is due.
                for (year, due) in duties::report_reminders(date, settings.ban_years) {
                    notify::enqueue_reminder(
                        &mut tx,
                        now,
                        &report_reminder(&row.credit_code, &e.display_name, year, due),
                    )
                    .await?;
                }
                notify::enqueue(
                    &mut tx,
                    now,
                    &notice(
                        "award.granted",
                        &row.credit_code,
                        &e.display_name,
                        &[
                            ("enterprise_name", e.display_name.clone()),
                            ("programme_name", programme.display_name.clone()),
                            ("year", y.to_string()),
                            ("certificate_number", certificate.clone()),
                            ("document_number", document.clone()),
                        ],
                    ),
                )
                .await?;
            }
            cycle.state = CycleState::Approved;
            cycle.approval_document = document.clone();
            cycle.approval_date = iso_date(date);
            store::set_cycle_state(&mut tx, &cycle).await?;
            let response = cycle_pb(&cycle);
            let record = AuditRecord::by(c, "cycle.approve", r.name.clone())
                .because("R-23")
                .with_detail(serde_json::json!({ "document": document, "date": iso_date(date), "awards": n }));
            Ok(Done::new(tx, record, response))
        })
        .await
    }
}

/// the reminder of one annual report, 30, 7 and 1 days before it is due (the end of 30
/// June, China time), to the award holder's inbox.
fn report_reminder(
    code: &str,
    name: &str,
    year: i32,
    due: time::Date,
) -> qaward_proto::qaward::notifications::v1::Reminder {
    use qaward_proto::qaward::notifications::v1 as npb;
    let deadline = time::PrimitiveDateTime::new(due, time::macros::time!(23:59:59))
        .assume_offset(qaward_kit::clock::CHINA);
    npb::Reminder {
        event_type: "annual_report.due".into(),
        recipients: vec![npb::Recipient {
            id: code.to_string(),
            display_name: name.to_string(),
            ..Default::default()
        }],
        variables: [
            ("enterprise_name".to_string(), name.to_string()),
            ("report_year".to_string(), year.to_string()),
        ]
        .into(),
        deadline: Some(qaward_kit::clock::to_timestamp(unix_micros(deadline))),
        days_before: vec![30, 7, 1],
        working_days: false,
        ..Default::default()
    }
}
