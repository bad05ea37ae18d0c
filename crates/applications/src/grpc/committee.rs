//! The committee as a body (Art. 5, 16(9); R-22): each member unit casts its own ballot, and
//! the meeting's decisions follow from the ballots; the county government approves or returns
//! each adopted candidate (Art. 16(10); R-23).

use qaward_kit::{
    Error, Result,
    audit::AuditRecord,
    auth::Caller,
    change,
    change::Done,
    clock::{from_unix_micros, to_timestamp, unix_micros},
    convert::iso_date,
    error::FieldViolation,
    idempotency::RequestKey,
    notify,
};
use qaward_proto::qaward::applications::v1 as pb;

use crate::{
    domain::{
        committee::{self, Tally, Vote},
        cycle::CycleState,
        duties, refused, selection,
        stage::{Stage, Step},
    },
    store::{self, ApplicationRow, BallotRow, VoteRow},
};

use super::{
    ApplicationsApi,
    consultation::move_by,
    convert::{committee_rule_pb, cycle_pb, line, notice, required_date},
    names::{application_name, application_resource, cycle_id},
};

impl ApplicationsApi {
    pub(super) async fn committee_ballot(
        &self,
        c: &Caller,
        r: pb::CastCommitteeBallotRequest,
    ) -> Result<pb::CommitteeBallot> {
        let (p, y) = cycle_id(&r.parent, "parent")?;
        c.acts_for(&p)?;
        let unit = member_unit(c)?;
        let b = r.ballot.clone().unwrap_or_default();
        let mut bad = Vec::new();
        if r.ballot.is_none() {
            bad.push(FieldViolation::new("ballot", "is required"));
        }
        let representative = line(&b.representative, "ballot.representative", 100, &mut bad);
        let mut votes: Vec<(String, Vote, String)> = Vec::new();
        for (i, v) in b.votes.iter().enumerate() {
            let field = format!("ballot.votes[{i}]");
            let code = match application_name(&v.application, &format!("{field}.application")) {
                Ok((ap, ay, code)) if ap == p && ay == y => code.as_str().to_string(),
                Ok(_) => {
                    bad.push(FieldViolation::new(
                        format!("{field}.application"),
                        "is not of this cycle",
                    ));
                    continue;
                }
                Err(e) => {
                    bad.extend(e.violations.clone());
                    continue;
                }
            };
            let Some(vote) = vote_of(v.choice) else {
                bad.push(FieldViolation::new(
                    format!("{field}.choice"),
                    "must be ADOPT, NOT_ADOPT, ABSTAIN or RECUSED",
                ));
                continue;
            };
            let note = v.note.trim().to_string();
            if note.chars().count() > 500 {
                bad.push(FieldViolation::new(
                    format!("{field}.note"),
                    "at most 500 characters",
                ));
            } else if vote == Vote::Recused && note.is_empty() {
                bad.push(FieldViolation::new(
                    format!("{field}.note"),
                    "a recusal says why (R-22)",
                ));
            }
            if votes.iter().any(|(c, _, _)| *c == code) {
                bad.push(FieldViolation::new(
                    format!("{field}.application"),
                    "is voted on twice",
                ));
            }
            votes.push((code, vote, note));
        }
        if !bad.is_empty() {
            return Err(Error::invalid_fields(bad));
        }
        let key = RequestKey::new("CastCommitteeBallot", c, &r.request_id, &r)?;
        if let Some(done) = change::recall(self.db(), &key).await? {
            return Ok(done);
        }
        let now = self.now();
        let on_notice = self.all_in(&p, y, Stage::PublicNotice).await?;
        let caller = c.identity();
        self.change(key, |mut tx| async move {
            let cycle = store::get_cycle(&mut tx, &p, y).await?;
            let settings = store::settings_version(&mut tx, &p, cycle.settings_version).await?;
            committee::is_member(&unit, &settings).map_err(refused)?;
            may_meet(&mut tx, &p, y, now).await?;
            let cast = store::ballot_cast(&mut tx, &p, y, &unit).await?;
            committee::may_cast(cast, cycle.state != CycleState::PublicNotice).map_err(refused)?;
            let (missing, strangers) = coverage(&on_notice, votes.iter().map(|v| v.0.as_str()));
            committee::ballot_complete(&missing, &strangers).map_err(refused)?;
            let ordinal = settings
                .committee_units
                .iter()
                .position(|u| *u == unit)
                .unwrap_or(0) as i64
                + 1;
            let ballot = BallotRow {
                unit: unit.clone(),
                ordinal,
                representative: representative.clone(),
                cast_micros: unix_micros(now),
                votes: votes
                    .iter()
                    .filter_map(|(code, vote, note)| {
                        let a = on_notice.iter().find(|a| a.credit_code == *code)?;
                        Some(VoteRow {
                            unit: unit.clone(),
                            application_id: a.id.clone(),
                            credit_code: code.clone(),
                            vote: vote.as_str().to_string(),
                            note: note.clone(),
                        })
                    })
                    .collect(),
            };
            store::insert_ballot(&mut tx, &p, y, &ballot, &caller).await?;
            let response = ballot_pb(&p, y, &ballot);
            let record = AuditRecord::by(c, "cycle.committee_ballot", response.name.clone())
                .because("R-22")
                .with_detail(serde_json::json!({
                    "unit": unit, "representative": representative,
                    "votes": votes.iter().map(|(code, v, n)| serde_json::json!({
                        "enterprise": code, "vote": v.as_str(), "note": n,
                    })).collect::<Vec<_>>(),
                }));
            Ok(Done::new(tx, record, response))
        })
        .await
    }

    pub(super) async fn selection_committee(
        &self,
        c: &Caller,
        r: pb::RecordCommitteeMeetingRequest,
    ) -> Result<pb::CommitteeMeeting> {
        let (p, y) = cycle_id(&r.name, "name")?;
        c.acts_for(&p)?;
        let unit = member_unit(c)?;
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
            committee::is_member(&unit, &settings).map_err(refused)?;
            committee::may_cast(false, cycle.state != CycleState::PublicNotice).map_err(refused)?;
            may_meet(&mut tx, &p, y, now).await?;
            let ballots = store::ballots(&mut tx, &p, y).await?;
            committee::quorum(ballots.len(), &settings).map_err(refused)?;
            selection::decisions_complete(on_notice.len(), &[], &[]).map_err(refused)?;
            let meeting = self.new_id();
            let present: Vec<String> = ballots.iter().map(|b| b.unit.clone()).collect();
            let recusals: Vec<serde_json::Value> = ballots
                .iter()
                .flat_map(|b| b.votes.iter())
                .filter(|v| v.vote == Vote::Recused.as_str())
                .map(|v| {
                    serde_json::json!({
                        "unit": v.unit, "application": v.credit_code, "reason": v.note,
                    })
                })
                .collect();
            store::insert_meeting(
                &mut tx,
                &meeting,
                &p,
                y,
                &present,
                &serde_json::Value::Array(recusals),
                unix_micros(now),
            )
            .await?;
            let mut decisions = Vec::new();
            for mut row in on_notice {
                let tally = Tally::of(
                    ballots
                        .iter()
                        .flat_map(|b| b.votes.iter())
                        .filter(|v| v.application_id == row.id)
                        .filter_map(|v| Vote::parse(&v.vote)),
                );
                let (adopted, why) = committee::decide(&tally, &settings);
                let numbers = serde_json::json!({
                    "adopt": tally.adopt, "not_adopt": tally.not_adopt,
                    "abstain": tally.abstain, "recused": tally.recused,
                });
                store::insert_committee_decision(
                    &mut tx,
                    &row.id,
                    &meeting,
                    adopted,
                    &why.message,
                    &numbers,
                )
                .await?;
                decisions.push(pb::CommitteeDecision {
                    application: application_resource(&row),
                    adopted,
                    note: why.message.clone(),
                    adopt: tally.adopt as i32,
                    not_adopt: tally.not_adopt as i32,
                    abstain: tally.abstain as i32,
                    recused: tally.recused as i32,
                });
                if !adopted {
                    move_by(&mut tx, c, now, &mut row, &Step::NotAdopted { why }).await?;
                }
            }
            cycle.state = if decisions.iter().any(|d| d.adopted) {
                CycleState::Decided
            } else {
                CycleState::Vacant
            };
            store::set_cycle_state(&mut tx, &cycle).await?;
            let response = pb::CommitteeMeeting {
                cycle: r.name.clone(),
                units_absent: settings
                    .committee_units
                    .iter()
                    .filter(|u| !present.contains(u))
                    .cloned()
                    .collect(),
                units_present: present.clone(),
                rule: committee_rule_pb(settings.committee_rule) as i32,
                decisions,
                ballots: ballots.iter().map(|b| ballot_pb(&p, y, b)).collect(),
                cycle_state: cycle_pb(&cycle).state,
                record_time: Some(to_timestamp(unix_micros(now))),
            };
            let record = AuditRecord::by(c, "cycle.committee_meeting", r.name.clone())
                .because("R-22")
                .with_detail(serde_json::json!({
                    "meeting": meeting, "chair": unit, "units_present": present,
                    "member_units": settings.committee_units,
                    "rule": settings.committee_rule.as_str(),
                    "decisions": response.decisions.iter().map(|d| serde_json::json!({
                        "application": d.application, "adopted": d.adopted,
                        "adopt": d.adopt, "not_adopt": d.not_adopt,
                        "abstain": d.abstain, "recused": d.recused,
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
        let date = required_date(&r.approval_date, "approval_date", &mut bad);
        let mut decisions: Vec<(String, bool, String)> = Vec::new();
        for (i, d) in r.decisions.iter().enumerate() {
            let field = format!("decisions[{i}]");
            match application_name(&d.application, &format!("{field}.application")) {
                Ok((ap, ay, code)) if ap == p && ay == y => {
                    let note = d.note.trim().to_string();
                    if note.chars().count() > 2_000 {
                        bad.push(FieldViolation::new(
                            format!("{field}.note"),
                            "at most 2000 characters",
                        ));
                    } else if !d.approved && note.is_empty() {
                        bad.push(FieldViolation::new(
                            format!("{field}.note"),
                            "a returned candidate is returned with a reason (R-23)",
                        ));
                    }
                    if decisions.iter().any(|x| x.0 == code.as_str()) {
                        bad.push(FieldViolation::new(
                            format!("{field}.application"),
                            "is decided twice",
                        ));
                    }
                    decisions.push((code.as_str().to_string(), d.approved, note));
                }
                Ok(_) => bad.push(FieldViolation::new(
                    format!("{field}.application"),
                    "is not of this cycle",
                )),
                Err(e) => bad.extend(e.violations.clone()),
            }
        }
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
            let mut adopted = Vec::new();
            for row in on_notice {
                if store::adopted(&mut tx, &row.id).await? == Some(true) {
                    adopted.push(row);
                }
            }
            let (missing, strangers) = coverage(&adopted, decisions.iter().map(|d| d.0.as_str()));
            selection::approvals_complete(&missing, &strangers).map_err(refused)?;
            let mut n = 0;
            for mut row in adopted {
                let Some((_, approved, note)) = decisions.iter().find(|d| d.0 == row.credit_code)
                else {
                    continue;
                };
                store::insert_government_decision(
                    &mut tx,
                    &row.id,
                    *approved,
                    note,
                    &document,
                    &iso_date(date),
                    unix_micros(now),
                )
                .await?;
                if !approved {
                    let step = Step::Returned {
                        document: document.clone(),
                        note: note.clone(),
                    };
                    move_by(&mut tx, c, now, &mut row, &step).await?;
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
                for (year, due) in
                    duties::report_reminders(date, settings.ban_years, settings.annual_due_day())
                {
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
            // Every candidate returned leaves the year without an award (R-17's vacancy).
            cycle.state = if n == 0 {
                CycleState::Vacant
            } else {
                CycleState::Approved
            };
            cycle.approval_document = document.clone();
            cycle.approval_date = iso_date(date);
            store::set_cycle_state(&mut tx, &cycle).await?;
            let response = cycle_pb(&cycle);
            let record = AuditRecord::by(c, "cycle.approve", r.name.clone())
                .because("R-23")
                .with_detail(serde_json::json!({
                    "document": document, "date": iso_date(date), "awards": n,
                    "decisions": decisions.iter().map(|(code, approved, note)| serde_json::json!({
                        "enterprise": code, "approved": approved, "note": note,
                    })).collect::<Vec<_>>(),
                }));
            Ok(Done::new(tx, record, response))
        })
        .await
    }
}

/// Art. 5: a committee member's unit is its token's `org`.
pub(super) fn member_unit(c: &Caller) -> Result<String> {
    match c.org.as_deref().map(str::trim) {
        Some(u) if !u.is_empty() => Ok(u.to_string()),
        _ => Err(Error::permission_denied(
            "a committee member's token names its member unit (`org` claim)",
        )),
    }
}

fn vote_of(choice: i32) -> Option<Vote> {
    match pb::CommitteeVoteChoice::try_from(choice).ok()? {
        pb::CommitteeVoteChoice::Adopt => Some(Vote::Adopt),
        pb::CommitteeVoteChoice::NotAdopt => Some(Vote::NotAdopt),
        pb::CommitteeVoteChoice::Abstain => Some(Vote::Abstain),
        pb::CommitteeVoteChoice::Recused => Some(Vote::Recused),
        pb::CommitteeVoteChoice::Unspecified => None,
    }
}

fn vote_pb(v: &str) -> pb::CommitteeVoteChoice {
    match Vote::parse(v) {
        Some(Vote::Adopt) => pb::CommitteeVoteChoice::Adopt,
        Some(Vote::NotAdopt) => pb::CommitteeVoteChoice::NotAdopt,
        Some(Vote::Abstain) => pb::CommitteeVoteChoice::Abstain,
        Some(Vote::Recused) => pb::CommitteeVoteChoice::Recused,
        None => pb::CommitteeVoteChoice::Unspecified,
    }
}

/// the committee sits once the notice has ended and its complaints are answered.
async fn may_meet(
    tx: &mut qaward_kit::db::Conn,
    p: &str,
    y: i64,
    now: time::OffsetDateTime,
) -> Result<()> {
    let (_, end) = selection::published(store::public_notice(tx, p, y).await?).map_err(refused)?;
    let pending = store::pending_complaints(tx, p, y).await?;
    selection::committee_may_meet(now, from_unix_micros(end), pending).map_err(refused)
}

/// Which of `rows` the `named` credit codes leave out (as resource names), and which codes
/// name none of them.
fn coverage<'a>(
    rows: &[ApplicationRow],
    named: impl Iterator<Item = &'a str> + Clone,
) -> (Vec<String>, Vec<String>) {
    let missing = rows
        .iter()
        .filter(|a| !named.clone().any(|c| c == a.credit_code))
        .map(application_resource)
        .collect();
    let strangers = named
        .filter(|c| !rows.iter().any(|a| a.credit_code == *c))
        .map(str::to_string)
        .collect();
    (missing, strangers)
}

fn ballot_pb(p: &str, y: i64, b: &BallotRow) -> pb::CommitteeBallot {
    pb::CommitteeBallot {
        name: format!("programmes/{p}/cycles/{y}/committeeBallots/{}", b.ordinal),
        unit: b.unit.clone(),
        representative: b.representative.clone(),
        votes: b
            .votes
            .iter()
            .map(|v| pb::CommitteeVote {
                application: format!("programmes/{p}/cycles/{y}/applications/{}", v.credit_code),
                choice: vote_pb(&v.vote) as i32,
                note: v.note.clone(),
            })
            .collect(),
        cast_time: Some(to_timestamp(b.cast_micros)),
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
