//! Proto ↔ domain for `qaward.reviewers.v1`: messages into domain values (with the field
//! violations of what does not convert) and stored rows into messages. No rule is decided here.

use qaward_kit::{
    Error, Result,
    auth::{Caller, Role},
    clock::to_timestamp,
    cn,
    convert::{date_from_pb, date_to_pb, iso_date, parse_iso_date},
    error::FieldViolation,
};
use qaward_proto::{
    names,
    qaward::{common::v1 as common, reviewers::v1 as pb},
};

use super::is_self;
use crate::{
    domain::{
        Purpose,
        lifecycle::{self, DrawState},
        panel::{Panel, SeatState},
        policy::DrawPolicy,
        record,
    },
    store,
};

/// An optional date at the edge, stored as `YYYY-MM-DD`.
pub(super) fn date_of(d: &Option<common::Date>, field: &str) -> Result<Option<String>> {
    d.as_ref()
        .map(|d| date_from_pb(d, field).map(iso_date))
        .transpose()
}

pub(super) fn date_pb(s: &str) -> Option<common::Date> {
    parse_iso_date(s).map(date_to_pb)
}

pub(super) fn policy_from_pb(p: &pb::DrawPolicy) -> Result<DrawPolicy> {
    let nonneg = |v: i32, f: &'static str, bad: &mut Vec<FieldViolation>| {
        if v < 0 {
            bad.push(FieldViolation {
                field: format!("policy.{f}"),
                description: "must not be negative".into(),
            });
        }
        v.max(0) as u32
    };
    let mut bad = Vec::new();
    let mut quotas: Vec<(String, u32)> = p
        .speciality_quotas
        .iter()
        .map(|(k, v)| (k.clone(), (*v).max(0) as u32))
        .collect();
    quotas.sort();
    let policy = DrawPolicy {
        materials_group_min: nonneg(p.materials_group_min, "materials_group_min", &mut bad),
        materials_group_max: nonneg(p.materials_group_max, "materials_group_max", &mut bad),
        site_group_min: nonneg(p.site_group_min, "site_group_min", &mut bad),
        site_group_max: nonneg(p.site_group_max, "site_group_max", &mut bad),
        defence_panel_min: nonneg(p.defence_panel_min, "defence_panel_min", &mut bad),
        backups_per_draw: nonneg(p.backups_per_draw, "backups_per_draw", &mut bad),
        yearly_cap: nonneg(p.yearly_cap, "yearly_cap", &mut bad),
        cooldown_days: nonneg(p.cooldown_days, "cooldown_days", &mut bad),
        leader_must_be_qualified: p.leader_must_be_qualified,
        speciality_quotas: quotas,
        entropy_parties: if p.entropy_parties.is_empty() {
            DrawPolicy::default().entropy_parties
        } else {
            p.entropy_parties
                .iter()
                .map(|r| r.trim().to_ascii_lowercase())
                .collect()
        },
        reveal_hours: match p.reveal_hours {
            0 => DrawPolicy::default().reveal_hours,
            h => nonneg(h, "reveal_hours", &mut bad),
        },
    };
    bad.extend(policy.validate().into_iter().map(|(f, d)| FieldViolation {
        field: format!("policy.{f}"),
        description: d,
    }));
    if bad.is_empty() {
        Ok(policy)
    } else {
        Err(Error::invalid_fields(bad))
    }
}

pub(super) fn policy_pb(p: &DrawPolicy, version: i64) -> pb::DrawPolicy {
    pb::DrawPolicy {
        version: version as i32,
        materials_group_min: p.materials_group_min as i32,
        materials_group_max: p.materials_group_max as i32,
        site_group_min: p.site_group_min as i32,
        site_group_max: p.site_group_max as i32,
        defence_panel_min: p.defence_panel_min as i32,
        backups_per_draw: p.backups_per_draw as i32,
        yearly_cap: p.yearly_cap as i32,
        cooldown_days: p.cooldown_days as i32,
        leader_must_be_qualified: p.leader_must_be_qualified,
        speciality_quotas: p
            .speciality_quotas
            .iter()
            .map(|(k, v)| (k.clone(), *v as i32))
            .collect(),
        entropy_parties: p.entropy_parties.clone(),
        reveal_hours: p.reveal_hours as i32,
    }
}

pub(super) fn programme_pb(r: &store::ProgrammeRow) -> pb::DrawTenant {
    pb::DrawTenant {
        name: format!("programmes/{}", r.id),
        display_name: r.display_name.clone(),
        policy: Some(policy_pb(&r.policy, r.policy_version)),
        create_time: Some(to_timestamp(r.created_micros)),
    }
}

/// Personal data is masked by default: shown in clear to the reviewer themselves and,
/// through `RevealReviewer` (`revealed`), on the record; to the office and the supervisor it is
/// masked like to anyone else (and never logged).
/// The stored values are sealed; they are opened here, for the answer only.
pub(super) fn reviewer_pb(
    r: &store::ReviewerRow,
    c: &Caller,
    revealed: bool,
    keys: &qaward_kit::fields::FieldKeys,
) -> pb::Reviewer {
    let rec = &r.record;
    let entitled = revealed || is_self(c, &rec.certificate_number);
    let show = |v: &str| {
        // A minimised ID shows its last four only, to everyone: the rest is not kept.
        if let Some(shown) = qaward_kit::fields::FieldKeys::minimised_display(v) {
            return shown;
        }
        // A value the keys cannot open is shown as unreadable, never as its ciphertext.
        let plain = keys.open(v).unwrap_or_else(|_| "????".into());
        if entitled { plain } else { cn::mask(&plain) }
    };
    pb::Reviewer {
        name: format!("reviewers/{}", rec.certificate_number),
        display_name: rec.name.clone(),
        mobile: show(&rec.mobile),
        resident_id: show(&rec.resident_id),
        certificate: Some(pb::Certificate {
            number: rec.certificate_number.clone(),
            valid_from: date_pb(&rec.cert_valid_from),
            valid_until: date_pb(&rec.cert_valid_until),
        }),
        specialities: rec.specialities.clone(),
        employer_code: rec.employer_code.clone(),
        leader_qualified: rec.leader_qualified,
        status: match rec.status.as_str() {
            "SUSPENDED" => pb::ReviewerStatus::Suspended,
            "RETIRED" => pb::ReviewerStatus::Retired,
            _ => pb::ReviewerStatus::Active,
        } as i32,
        update_time: Some(to_timestamp(r.updated_micros)),
    }
}

pub(super) fn relation_kind(k: i32) -> Option<&'static str> {
    match pb::RelationKind::try_from(k).ok()? {
        pb::RelationKind::Post => Some("POST"),
        pb::RelationKind::PartTimePost => Some("PART_TIME_POST"),
        pb::RelationKind::Consultancy => Some("CONSULTANCY"),
        pb::RelationKind::Shareholding => Some("SHAREHOLDING"),
        pb::RelationKind::Kinship => Some("KINSHIP"),
        pb::RelationKind::Other => Some("OTHER"),
        pb::RelationKind::Unspecified => None,
    }
}

pub(super) fn relation_kind_pb(k: &str) -> i32 {
    (match k {
        "POST" => pb::RelationKind::Post,
        "PART_TIME_POST" => pb::RelationKind::PartTimePost,
        "CONSULTANCY" => pb::RelationKind::Consultancy,
        "SHAREHOLDING" => pb::RelationKind::Shareholding,
        "KINSHIP" => pb::RelationKind::Kinship,
        _ => pb::RelationKind::Other,
    }) as i32
}

pub(super) fn relation_pb(r: &store::RelationRow) -> pb::Relation {
    pb::Relation {
        name: format!("reviewers/{}/relations/{}", r.reviewer_id, r.id),
        enterprise_code: r.enterprise_code.clone(),
        kind: relation_kind_pb(&r.kind),
        start_date: date_pb(&r.start_date),
        end_date: r.end_date.as_deref().and_then(date_pb),
        note: r.note.clone(),
    }
}

pub(super) fn flag_kind(k: i32) -> Option<&'static str> {
    match pb::FlagKind::try_from(k).ok()? {
        pb::FlagKind::Complaint => Some("COMPLAINT"),
        pb::FlagKind::Disciplinary => Some("DISCIPLINARY"),
        pb::FlagKind::Suspension => Some("SUSPENSION"),
        pb::FlagKind::Unavailable => Some("UNAVAILABLE"),
        pb::FlagKind::Unspecified => None,
    }
}

pub(super) fn event_from_pb(e: &pb::ReviewerEvent, office: bool) -> Result<record::Event> {
    use pb::reviewer_event::Kind;
    Ok(match &e.kind {
        Some(Kind::Training(t)) => record::Event::Training {
            course: t.course.clone(),
            hours: t.hours,
        },
        Some(Kind::CertificateShown(s)) => record::Event::CertificateShown {
            panel: s.panel.clone(),
            certificate_number: s.certificate_number.clone(),
        },
        Some(Kind::Assessment(a)) => record::Event::Assessment {
            panel: a.panel.clone(),
            assessor: if office { "OFFICE" } else { "LEADER" }.to_string(),
            rating: a.rating,
            reasons: a.reasons.clone(),
        },
        Some(Kind::Violation(v)) => record::Event::Violation {
            duty: v.duty,
            description: v.description.clone(),
            serious: v.serious,
            handling: v.handling.clone(),
        },
        None => {
            return Err(Error::invalid(
                "event.kind",
                "a training, certificate_shown, assessment or violation",
            ));
        }
    })
}

pub(super) fn event_pb(e: &store::EventRow) -> pb::ReviewerEvent {
    use pb::reviewer_event::Kind;
    let kind = match &e.event {
        record::Event::Training { course, hours } => Kind::Training(pb::Training {
            course: course.clone(),
            hours: *hours,
        }),
        record::Event::CertificateShown {
            panel,
            certificate_number,
        } => Kind::CertificateShown(pb::CertificateShown {
            panel: panel.clone(),
            certificate_number: certificate_number.clone(),
        }),
        record::Event::Assessment {
            panel,
            assessor,
            rating,
            reasons,
        } => Kind::Assessment(pb::Assessment {
            panel: panel.clone(),
            assessor: if assessor == "OFFICE" {
                pb::Assessor::Office
            } else {
                pb::Assessor::Leader
            } as i32,
            rating: *rating,
            reasons: reasons.clone(),
        }),
        record::Event::Violation {
            duty,
            description,
            serious,
            handling,
        } => Kind::Violation(pb::ConductViolation {
            duty: *duty,
            description: description.clone(),
            serious: *serious,
            handling: handling.clone(),
        }),
    };
    pb::ReviewerEvent {
        name: format!("reviewers/{}/events/{}", e.reviewer_id, e.id),
        date: date_pb(&e.date),
        kind: Some(kind),
        recorded_by: e.recorded_by.clone(),
        create_time: Some(to_timestamp(e.created_micros)),
        suspension: e.suspension.clone(),
    }
}

pub(super) fn flag_pb(f: &store::FlagRow) -> pb::Flag {
    pb::Flag {
        name: format!("reviewers/{}/flags/{}", f.reviewer_id, f.id),
        kind: (match f.kind.as_str() {
            "COMPLAINT" => pb::FlagKind::Complaint,
            "DISCIPLINARY" => pb::FlagKind::Disciplinary,
            "SUSPENSION" => pb::FlagKind::Suspension,
            _ => pb::FlagKind::Unavailable,
        }) as i32,
        start_date: date_pb(&f.start_date),
        end_date: f.end_date.as_deref().and_then(date_pb),
        note: f.note.clone(),
        resolved: f.resolved,
    }
}

pub(super) fn purpose_of(p: i32) -> Option<Purpose> {
    match pb::DrawPurpose::try_from(p).ok()? {
        pb::DrawPurpose::MaterialsGroup => Some(Purpose::MaterialsGroup),
        pb::DrawPurpose::DefencePanel => Some(Purpose::DefencePanel),
        pb::DrawPurpose::SiteGroup => Some(Purpose::SiteGroup),
        pb::DrawPurpose::AnnualAppointment => Some(Purpose::AnnualAppointment),
        pb::DrawPurpose::Unspecified => None,
    }
}

pub(super) fn purpose_pb(p: &str) -> i32 {
    (match Purpose::parse(p) {
        Some(Purpose::MaterialsGroup) => pb::DrawPurpose::MaterialsGroup,
        Some(Purpose::DefencePanel) => pb::DrawPurpose::DefencePanel,
        Some(Purpose::SiteGroup) => pb::DrawPurpose::SiteGroup,
        Some(Purpose::AnnualAppointment) => pb::DrawPurpose::AnnualAppointment,
        None => pb::DrawPurpose::Unspecified,
    }) as i32
}

/// The canonical exported record of a draw: `qaward draw verify` and
/// `docs/draw_replay.py` read it.
pub(super) fn record_json(d: &store::DrawRow) -> String {
    serde_json::json!({
        "draw": format!("programmes/{}/draws/{}", d.programme_id, d.id),
        "state": d.state.as_str(),
        "prepared": d.prepared_text,
        "inputs_hash": d.inputs_hash,
        "entropy": d.entropy,
        "outcome": d.outcome,
        "failure": d.failure,
        "replacements": d.replacements,
        "entropy_parts": d.parts,
        "public_value": d.public_value,
    })
    .to_string()
}

pub(super) fn draw_pb(d: &store::DrawRow, sealed: bool) -> pb::Draw {
    let p = &d.prepared;
    let outcome = d.outcome.clone().filter(|_| !sealed);
    pb::Draw {
        name: format!("programmes/{}/draws/{}", d.programme_id, d.id),
        purpose: purpose_pb(&p.purpose),
        enterprise_codes: p.enterprise_codes.clone(),
        size: p.size as i32,
        backups: Some(p.backups as i32),
        specialities: p
            .specialities
            .iter()
            .map(|s| pb::SpecialityRequirement {
                speciality: s.code.clone(),
                min_members: s.min as i32,
            })
            .collect(),
        window_start: date_pb(&p.window_start),
        window_end: date_pb(&p.window_end),
        state: (match d.state {
            DrawState::Prepared => pb::DrawState::Prepared,
            DrawState::Executed => pb::DrawState::Executed,
            DrawState::Failed => pb::DrawState::Failed,
            DrawState::Superseded => pb::DrawState::Superseded,
        }) as i32,
        entropy_commitment: p.entropy_commitment.clone(),
        entropy: d.entropy.clone().unwrap_or_default(),
        policy_version: p.policy_version as i32,
        pool_hash: p.pool_hash.clone(),
        members: outcome
            .as_ref()
            .map(|o| reviewer_names(&o.members))
            .unwrap_or_default(),
        backup_order: outcome
            .as_ref()
            .map(|o| reviewer_names(&o.backups))
            .unwrap_or_default(),
        leader: outcome
            .as_ref()
            .map(|o| names::reviewer(&o.leader))
            .unwrap_or_default(),
        panel: d
            .panel_id
            .as_ref()
            .map(|id| format!("programmes/{}/panels/{id}", d.programme_id))
            .unwrap_or_default(),
        create_time: Some(to_timestamp(d.created_micros)),
        entropy_source: p.entropy_source.clone(),
        inputs_hash: d.inputs_hash.clone(),
        pool_size: p.pool.len() as i32,
        exclusions: p
            .exclusions
            .iter()
            .map(|e| pb::Exclusion {
                reviewer: e.reviewer.clone(),
                code: e.code.clone(),
                rule: e.rule.clone(),
            })
            .collect(),
        replaces_draw: p.replaces_draw.clone(),
        failure: d.failure.clone().unwrap_or_default(),
        record_json: if sealed {
            String::new()
        } else {
            record_json(d)
        },
        entropy_parts: p
            .entropy_parties
            .iter()
            .map(|party| {
                let part = d.parts.iter().find(|x| x.party == party.party);
                pb::EntropyPart {
                    party: party.party.clone(),
                    role: party.role.clone(),
                    subject: part.map(|x| x.subject.clone()).unwrap_or_default(),
                    commitment: part.map(|x| x.commitment.clone()).unwrap_or_default(),
                    commit_time: part.map(|x| to_timestamp(x.committed_micros)),
                    secret: part.and_then(|x| x.secret.clone()).unwrap_or_default(),
                    reveal_time: part.and_then(|x| x.revealed_micros).map(to_timestamp),
                }
            })
            .collect(),
        fixes_public_value: p.fixes_public_value,
        public_value: d.public_value.clone().unwrap_or_default(),
        reveal_deadline: (p.reveal_deadline_micros > 0)
            .then(|| to_timestamp(p.reveal_deadline_micros)),
        awaiting: if d.state == DrawState::Prepared {
            lifecycle::awaiting(p, &d.parts, d.public_value.as_deref())
        } else {
            String::new()
        },
    }
}

/// Members are sealed until release, except to the office and the supervisor; a drawn
/// reviewer sees their own seat.
pub(super) fn panel_pb(p: &Panel, c: &Caller) -> pb::Panel {
    let full = matches!(c.role, Role::Office | Role::Supervisor) || p.released;
    let members = p
        .seats
        .iter()
        .filter(|s| s.is_member())
        .filter(|s| full || s.reviewer_id.eq_ignore_ascii_case(&c.subject))
        .map(|s| pb::PanelMember {
            reviewer: format!("reviewers/{}", s.reviewer_id),
            leader: s.leader,
            state: (match s.state {
                SeatState::Pending => pb::AssignmentState::Pending,
                SeatState::Accepted => pb::AssignmentState::Accepted,
                SeatState::Declined => pb::AssignmentState::Declined,
                SeatState::Expired => pb::AssignmentState::Expired,
                SeatState::Replaced | SeatState::Waiting => pb::AssignmentState::Replaced,
            }) as i32,
            respond_by: (s.respond_by_micros > 0).then(|| to_timestamp(s.respond_by_micros)),
            decline_reason: s.reason.clone(),
            replaced_by: if s.replaced_by.is_empty() {
                String::new()
            } else {
                format!("reviewers/{}", s.replaced_by)
            },
        })
        .collect();
    pb::Panel {
        name: format!("programmes/{}/panels/{}", p.programme_id, p.id),
        draw: format!("programmes/{}/draws/{}", p.programme_id, p.draw_id),
        purpose: purpose_pb(&p.purpose),
        enterprise_codes: p.enterprise_codes.clone(),
        members,
        backups_remaining: p.waiting().len() as i32,
        released: p.released,
        window_start: date_pb(&p.window_start),
        window_end: date_pb(&p.window_end),
        sealed: !full,
    }
}

pub(super) fn enterprise_codes(raw: &[String], field: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for (i, c) in raw.iter().enumerate() {
        match cn::CreditCode::parse(c) {
            Ok(code) => out.push(code.to_string()),
            Err(e) => bad.push(FieldViolation {
                field: format!("{field}[{i}]"),
                description: e.to_string(),
            }),
        }
    }
    if !bad.is_empty() {
        return Err(Error::invalid_fields(bad));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Certificate numbers as the contracts name reviewers, `reviewers/{id}`, in order. (A draw's
/// record keeps the bare numbers its algorithm hashed: docs/draw.md.)
pub(super) fn reviewer_names(ids: &[String]) -> Vec<String> {
    ids.iter().map(|id| names::reviewer(id)).collect()
}
