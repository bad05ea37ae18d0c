//! Revocation (Art. 20; ), each step by its own role: the office verifies and opens
//! the case, the committee reviews it, the county government approves it — which withdraws the
//! award, bars the enterprise and publishes the revocation — or refuses it. The path is
//! `domain::revocation`.

use qaward_kit::{
    Error, Result,
    audit::AuditRecord,
    auth::Caller,
    change::Done,
    clock::{to_timestamp, unix_micros},
    convert::{chinese_date, date_to_pb, iso_date, parse_iso_date},
    error::FieldViolation,
    idempotency::RequestKey,
    notify,
};
use qaward_proto::qaward::applications::v1 as pb;

use crate::{
    domain::{
        Explanation, committee, duties, refused,
        revocation::{self, State, Step},
    },
    store::{self, RevocationRow},
};

use super::{
    ApplicationsApi,
    committee::member_unit,
    convert::{china_date, line, notice, required_date},
    names::enterprise_code,
};

impl ApplicationsApi {
    /// Art. 20, step one: the office of the award's programme verifies a ground.
    pub(super) async fn revocation_open(
        &self,
        c: &Caller,
        r: pb::RevokeAwardRequest,
    ) -> Result<pb::Revocation> {
        let code = enterprise_code(&r.name, "name")?;
        let p = c.programme_id().map(str::to_string).ok_or_else(|| {
            Error::permission_denied("the office of the award's programme revokes it")
        })?;
        c.acts_for(&p)?;
        let mut bad = Vec::new();
        let reason = line(&r.reason, "reason", 2_000, &mut bad);
        let ground = match pb::RevocationGround::try_from(r.ground) {
            Ok(pb::RevocationGround::Unspecified) | Err(_) => {
                bad.push(FieldViolation::new(
                    "ground",
                    "must be one of Art. 20's grounds (R-32)",
                ));
                ""
            }
            Ok(g) => g.as_str_name().trim_start_matches("REVOCATION_GROUND_"),
        };
        if !bad.is_empty() {
            return Err(Error::invalid_fields(bad));
        }
        let key = RequestKey::new("RevokeAward", c, &r.request_id, &r)?;
        let now = self.now();
        let id = self.new_id();
        self.change(key, |mut tx| async move {
            store::get_enterprise(&mut tx, code.as_str()).await?;
            let Some(award) = store::awards_of(&mut tx, code.as_str())
                .await?
                .into_iter()
                .find(|a| a.programme_id == p && !a.revoked)
            else {
                return Err(refused(Explanation::new(
                    "R-32",
                    "NO_STANDING_AWARD",
                    "该企业没有可撤销的本奖项",
                )));
            };
            revocation::may_open(store::open_revocation(&mut tx, &award.application_id).await?)
                .map_err(refused)?;
            let row = RevocationRow {
                id,
                credit_code: code.as_str().to_string(),
                programme_id: p.clone(),
                application_id: award.application_id.clone(),
                ground: ground.to_string(),
                reason,
                state: State::Verified.as_str().to_string(),
                verified_micros: unix_micros(now),
                committee_unit: String::new(),
                committee_note: String::new(),
                reviewed_micros: None,
                approval_document: String::new(),
                approval_date: String::new(),
                publication: String::new(),
                government_note: String::new(),
                ban_until: String::new(),
                decided_micros: None,
            };
            store::insert_revocation(&mut tx, &row).await?;
            let response = revocation_pb(&row, &award.certificate_number);
            let record = AuditRecord::by(c, "award.revocation_verified", response.name.clone())
                .because("R-32")
                .with_detail(serde_json::json!({
                    "certificate": award.certificate_number, "ground": row.ground,
                    "reason": row.reason,
                }));
            Ok(Done::new(tx, record, response))
        })
        .await
    }

    /// Art. 20, step two: the committee (its chair, a member unit) reviews the case.
    pub(super) async fn revocation_review(
        &self,
        c: &Caller,
        r: pb::ReviewRevocationRequest,
    ) -> Result<pb::Revocation> {
        let (code, id) = revocation_name(&r.name)?;
        let mut bad = Vec::new();
        let note = line(&r.note, "note", 2_000, &mut bad);
        if !bad.is_empty() {
            return Err(Error::invalid_fields(bad));
        }
        let unit = member_unit(c)?;
        let key = RequestKey::new("ReviewRevocation", c, &r.request_id, &r)?;
        let now = self.now();
        self.change(key, |mut tx| async move {
            let mut row = store::get_revocation(&mut tx, &code, &id).await?;
            c.acts_for(&row.programme_id)?;
            let programme = store::get_programme(&mut tx, &row.programme_id).await?;
            let settings =
                store::settings_version(&mut tx, &row.programme_id, programme.settings_version)
                    .await?;
            committee::is_member(&unit, &settings).map_err(refused)?;
            let from = row.state.clone();
            let to = step(
                &row,
                Step::Review {
                    endorsed: r.endorsed,
                },
            )?;
            row.state = to.as_str().to_string();
            row.committee_unit = unit;
            row.committee_note = note;
            row.reviewed_micros = Some(unix_micros(now));
            moved(store::update_revocation(&mut tx, &row, &from).await?)?;
            let certificate = certificate_of(&mut tx, &row).await?;
            let response = revocation_pb(&row, &certificate);
            let record = AuditRecord::by(c, "award.revocation_reviewed", response.name.clone())
                .because("R-32")
                .with_detail(serde_json::json!({
                    "endorsed": r.endorsed, "unit": row.committee_unit, "note": row.committee_note,
                }));
            Ok(Done::new(tx, record, response))
        })
        .await
    }

    /// Art. 20, step three: the county government approves — the award is withdrawn, the
    /// enterprise barred and the revocation published — or refuses.
    pub(super) async fn revocation_approve(
        &self,
        c: &Caller,
        r: pb::ApproveRevocationRequest,
    ) -> Result<pb::Revocation> {
        let (code, id) = revocation_name(&r.name)?;
        let mut bad = Vec::new();
        let document = line(&r.document_number, "document_number", 100, &mut bad);
        let date = required_date(&r.approval_date, "approval_date", &mut bad);
        let publication = r.publication.trim().to_string();
        let note = r.note.trim().to_string();
        if r.approved {
            line(&publication, "publication", 500, &mut bad);
        } else {
            line(&note, "note", 2_000, &mut bad);
        }
        let (Some(date), true) = (date, bad.is_empty()) else {
            return Err(Error::invalid_fields(bad));
        };
        let key = RequestKey::new("ApproveRevocation", c, &r.request_id, &r)?;
        let now = self.now();
        self.change(key, |mut tx| async move {
            let mut row = store::get_revocation(&mut tx, &code, &id).await?;
            c.acts_for(&row.programme_id)?;
            let from = row.state.clone();
            let to = step(
                &row,
                Step::Decide {
                    approved: r.approved,
                },
            )?;
            row.state = to.as_str().to_string();
            row.approval_document = document.clone();
            row.approval_date = iso_date(date);
            row.publication = publication;
            row.government_note = note;
            row.decided_micros = Some(unix_micros(now));
            if to == State::Approved {
                let programme = store::get_programme(&mut tx, &row.programme_id).await?;
                let settings =
                    store::settings_version(&mut tx, &row.programme_id, programme.settings_version)
                        .await?;
                let until = duties::ban_ends(date, settings.revocation_ban_years);
                row.ban_until = iso_date(until);
                withdraw(&mut tx, now, &row, until).await?;
            }
            moved(store::update_revocation(&mut tx, &row, &from).await?)?;
            let certificate = certificate_of(&mut tx, &row).await?;
            let response = revocation_pb(&row, &certificate);
            let record = AuditRecord::by(c, "award.revocation_decided", response.name.clone())
                .because("R-32")
                .with_detail(serde_json::json!({
                    "approved": r.approved, "document": row.approval_document,
                    "date": row.approval_date, "publication": row.publication,
                    "note": row.government_note, "ban_until": row.ban_until,
                }));
            Ok(Done::new(tx, record, response))
        })
        .await
    }
}

/// the award and certificate are withdrawn, the enterprise is barred until `until`
/// the award's report reminders end and the holder is told.
async fn withdraw(
    tx: &mut qaward_kit::db::Conn,
    now: time::OffsetDateTime,
    row: &RevocationRow,
    until: time::Date,
) -> Result<()> {
    let today = china_date(unix_micros(now));
    let detail = serde_json::json!({
        "revocation": row.id, "ground": row.ground, "reason": row.reason,
        "approval_document": row.approval_document, "approval_date": row.approval_date,
        "publication": row.publication, "date": iso_date(today),
    });
    store::revoke_award(
        tx,
        &row.application_id,
        &detail.to_string(),
        unix_micros(now),
    )
    .await?;
    store::add_record(
        tx,
        &row.credit_code,
        &row.programme_id,
        "revocation",
        &iso_date(today),
        &row.reason,
        unix_micros(now),
    )
    .await?;
    notify::enqueue_cancel_reminders(
        tx,
        now,
        &row.credit_code,
        "annual_report.due",
        &format!("R-32: 奖项已撤销（{}）", row.approval_document),
    )
    .await?;
    let enterprise = store::get_enterprise(tx, &row.credit_code).await?;
    notify::enqueue(
        tx,
        now,
        &notice(
            "award.revoked",
            &row.credit_code,
            &enterprise.display_name,
            &[
                ("enterprise_name", enterprise.display_name.clone()),
                ("reason", row.reason.clone()),
                ("document_number", row.approval_document.clone()),
                ("ban_until", chinese_date(until)),
            ],
        ),
    )
    .await?;
    Ok(())
}

fn step(row: &RevocationRow, step: Step) -> Result<State> {
    let from = State::parse(&row.state)
        .ok_or_else(|| Error::internal(format!("revocation state {:?}", row.state)))?;
    revocation::apply(from, step).map_err(refused)
}

/// A racing step moved the case between its read and its write.
fn moved(written: bool) -> Result<()> {
    if written {
        Ok(())
    } else {
        Err(Error::new(
            qaward_kit::ErrorCode::Aborted,
            "CONCURRENT_CHANGE",
            "the revocation changed meanwhile; read it again",
        ))
    }
}

async fn certificate_of(tx: &mut qaward_kit::db::Conn, row: &RevocationRow) -> Result<String> {
    Ok(store::awards_of(tx, &row.credit_code)
        .await?
        .into_iter()
        .find(|a| a.application_id == row.application_id)
        .map(|a| a.certificate_number)
        .unwrap_or_default())
}

/// `enterprises/{code}/revocations/{id}`.
fn revocation_name(name: &str) -> Result<(String, String)> {
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        ["enterprises", code, "revocations", id] if !id.is_empty() => {
            let code = enterprise_code(&format!("enterprises/{code}"), "name")?;
            Ok((code.as_str().to_string(), id.to_string()))
        }
        _ => Err(Error::invalid_fields(vec![FieldViolation::new(
            "name",
            "must be enterprises/{enterprise}/revocations/{revocation}",
        )])),
    }
}

fn revocation_pb(row: &RevocationRow, certificate: &str) -> pb::Revocation {
    let state = match State::parse(&row.state) {
        Some(State::Verified) => pb::RevocationState::Verified,
        Some(State::Endorsed) => pb::RevocationState::Endorsed,
        Some(State::Rejected) => pb::RevocationState::Rejected,
        Some(State::Approved) => pb::RevocationState::Approved,
        Some(State::Refused) => pb::RevocationState::Refused,
        None => pb::RevocationState::Unspecified,
    };
    let date = |s: &str| parse_iso_date(s).map(date_to_pb);
    pb::Revocation {
        name: format!("enterprises/{}/revocations/{}", row.credit_code, row.id),
        award_certificate: certificate.to_string(),
        ground: pb::RevocationGround::from_str_name(&format!("REVOCATION_GROUND_{}", row.ground))
            .unwrap_or_default() as i32,
        reason: row.reason.clone(),
        state: state as i32,
        verify_time: Some(to_timestamp(row.verified_micros)),
        committee_unit: row.committee_unit.clone(),
        committee_note: row.committee_note.clone(),
        review_time: row.reviewed_micros.map(to_timestamp),
        approval_document: row.approval_document.clone(),
        approval_date: date(&row.approval_date),
        publication: row.publication.clone(),
        government_note: row.government_note.clone(),
        ban_until: date(&row.ban_until),
    }
}
