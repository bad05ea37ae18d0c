//! The gRPC surface of `qaward.reviewers.v1.ReviewerService`: validate at the edge, check the
//! caller's role and programme, call the domain, and move data through the store — each
//! change with its audit record in one transaction.

use pb::reviewer_service_server::ReviewerService;
use qaward_kit::{
    Error, Result,
    audit::AuditRecord,
    auth::{Caller, Role},
    change,
    clock::{from_unix_micros, to_timestamp, unix_micros},
    cn,
    convert::{date_from_pb, date_to_pb, iso_date, parse_iso_date},
    db::Database,
    error::FieldViolation,
    idempotency::RequestKey,
    names::{programme_id, valid_id},
    paging::Page,
    server::ServiceContext,
};
use qaward_proto::qaward::{common::v1 as common, reviewers::v1 as pb};
use tonic::{Request, Response, Status};

use crate::{
    domain::{
        Purpose,
        draw::{self, Exclusion, Prepared, SpecialityNeed},
        eligibility::{self, Load},
        policy::DrawPolicy,
        record,
        registry::{self, Encoding, Format},
    },
    store::{self, PanelRow, SeatRow},
};

/// How long a drawn reviewer has to accept or decline.
pub const RESPONSE_HOURS: i64 = 72;
/// The longest window a group may be booked for.
pub const MAX_WINDOW_DAYS: i64 = 92;
/// The longest an annual appointment runs: a year.
pub const MAX_APPOINTMENT_DAYS: i64 = 366;

pub struct ReviewersApi {
    db: Database,
    ctx: ServiceContext,
    registry: store::RegistryCache,
}

impl ReviewersApi {
    pub fn new(db: Database, ctx: ServiceContext) -> Self {
        ReviewersApi {
            db,
            ctx,
            registry: store::RegistryCache::default(),
        }
    }

    fn now(&self) -> time::OffsetDateTime {
        self.ctx.clock.now()
    }

    fn new_id(&self) -> String {
        let mut b = [0u8; 10];
        self.ctx.randomness.fill(&mut b);
        let t = unix_micros(self.now()) / 1_000_000;
        format!("{t:x}{}", hex::encode(b))
    }
}

fn caller<T>(r: &Request<T>) -> Result<Caller, Status> {
    Caller::of(r).cloned()
}

/// `programmes/{p}/{kind}/{id}` → (p, id).
fn child(name: &str, kind: &str, field: &str) -> Result<(String, String)> {
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        ["programmes", p, k, id] if *k == kind && valid_id(p) && !id.is_empty() => {
            Ok((p.to_string(), id.to_string()))
        }
        _ => Err(Error::invalid(
            field,
            format!("must be programmes/{{programme}}/{kind}/{{id}}"),
        )),
    }
}

/// `reviewers/{cert}` → cert.
fn reviewer_id(name: &str, field: &str) -> Result<String> {
    name.strip_prefix("reviewers/")
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .map(str::to_ascii_uppercase)
        .ok_or_else(|| Error::invalid(field, "must be reviewers/{certificate number}"))
}

/// An optional date at the edge, stored as `YYYY-MM-DD`.
fn date_of(d: &Option<common::Date>, field: &str) -> Result<Option<String>> {
    d.as_ref()
        .map(|d| date_from_pb(d, field).map(iso_date))
        .transpose()
}

fn date_pb(s: &str) -> Option<common::Date> {
    parse_iso_date(s).map(date_to_pb)
}

/// Is the caller this reviewer (a reviewer token whose subject is the certificate number)?
fn is_self(c: &Caller, reviewer: &str) -> bool {
    c.role == Role::Reviewer && c.subject.eq_ignore_ascii_case(reviewer)
}

/// The reviewer themselves, or a caller in one of `roles`; true when it is the reviewer.
fn self_or(c: &Caller, reviewer: &str, roles: &[Role]) -> Result<bool> {
    if is_self(c, reviewer) {
        return Ok(true);
    }
    c.require(roles)?;
    Ok(false)
}

fn policy_from_pb(p: &pb::DrawPolicy) -> Result<DrawPolicy> {
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

fn policy_pb(p: &DrawPolicy, version: i64) -> pb::DrawPolicy {
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
    }
}

fn programme_pb(r: &store::ProgrammeRow) -> pb::Programme {
    pb::Programme {
        name: format!("programmes/{}", r.id),
        display_name: r.display_name.clone(),
        policy: Some(policy_pb(&r.policy, r.policy_version)),
        create_time: Some(to_timestamp(r.created_micros)),
    }
}

/// Personal data is shown to the office, the supervisor and the reviewer themselves;
/// masked for everyone else (and never logged).
fn reviewer_pb(r: &store::ReviewerRow, c: &Caller) -> pb::Reviewer {
    let rec = &r.record;
    let entitled =
        matches!(c.role, Role::Office | Role::Supervisor) || is_self(c, &rec.certificate_number);
    let show = |v: &str| if entitled { v.to_string() } else { cn::mask(v) };
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

fn relation_kind(k: i32) -> Option<&'static str> {
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

fn relation_kind_pb(k: &str) -> i32 {
    (match k {
        "POST" => pb::RelationKind::Post,
        "PART_TIME_POST" => pb::RelationKind::PartTimePost,
        "CONSULTANCY" => pb::RelationKind::Consultancy,
        "SHAREHOLDING" => pb::RelationKind::Shareholding,
        "KINSHIP" => pb::RelationKind::Kinship,
        _ => pb::RelationKind::Other,
    }) as i32
}

fn relation_pb(r: &store::RelationRow) -> pb::Relation {
    pb::Relation {
        name: format!("reviewers/{}/relations/{}", r.reviewer_id, r.id),
        enterprise_code: r.enterprise_code.clone(),
        kind: relation_kind_pb(&r.kind),
        start_date: date_pb(&r.start_date),
        end_date: r.end_date.as_deref().and_then(date_pb),
        note: r.note.clone(),
    }
}

fn flag_kind(k: i32) -> Option<&'static str> {
    match pb::FlagKind::try_from(k).ok()? {
        pb::FlagKind::Complaint => Some("COMPLAINT"),
        pb::FlagKind::Disciplinary => Some("DISCIPLINARY"),
        pb::FlagKind::Suspension => Some("SUSPENSION"),
        pb::FlagKind::Unavailable => Some("UNAVAILABLE"),
        pb::FlagKind::Unspecified => None,
    }
}

fn event_from_pb(e: &pb::ReviewerEvent, office: bool) -> Result<record::Event> {
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

fn event_pb(e: &store::EventRow) -> pb::ReviewerEvent {
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

fn flag_pb(f: &store::FlagRow) -> pb::Flag {
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

fn purpose_of(p: i32) -> Option<Purpose> {
    match pb::DrawPurpose::try_from(p).ok()? {
        pb::DrawPurpose::MaterialsGroup => Some(Purpose::MaterialsGroup),
        pb::DrawPurpose::DefencePanel => Some(Purpose::DefencePanel),
        pb::DrawPurpose::SiteGroup => Some(Purpose::SiteGroup),
        pb::DrawPurpose::AnnualAppointment => Some(Purpose::AnnualAppointment),
        pb::DrawPurpose::Unspecified => None,
    }
}

fn purpose_pb(p: &str) -> i32 {
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
pub fn record_json(d: &store::DrawRow) -> String {
    serde_json::json!({
        "draw": format!("programmes/{}/draws/{}", d.programme_id, d.id),
        "state": d.state,
        "prepared": d.prepared_text,
        "inputs_hash": d.inputs_hash,
        "entropy": d.entropy,
        "outcome": d.outcome,
        "failure": d.failure,
    })
    .to_string()
}

fn draw_pb(d: &store::DrawRow, sealed: bool) -> pb::Draw {
    let p = &d.prepared;
    let outcome = d.outcome.clone().filter(|_| !sealed);
    pb::Draw {
        name: format!("programmes/{}/draws/{}", d.programme_id, d.id),
        purpose: purpose_pb(&p.purpose),
        enterprise_codes: p.enterprise_codes.clone(),
        size: p.size as i32,
        backups: p.backups as i32,
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
        state: (match d.state.as_str() {
            "PREPARED" => pb::DrawState::Prepared,
            "EXECUTED" => pb::DrawState::Executed,
            _ => pb::DrawState::Failed,
        }) as i32,
        entropy_commitment: p.entropy_commitment.clone(),
        entropy: d.entropy.clone().unwrap_or_default(),
        policy_version: p.policy_version as i32,
        pool_hash: p.pool_hash.clone(),
        members: outcome
            .as_ref()
            .map(|o| o.members.clone())
            .unwrap_or_default(),
        backup_order: outcome
            .as_ref()
            .map(|o| o.backups.clone())
            .unwrap_or_default(),
        leader: outcome
            .as_ref()
            .map(|o| o.leader.clone())
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
    }
}

/// Members are sealed until release, except to the office and the supervisor; a drawn
/// reviewer sees their own seat.
fn panel_pb(p: &PanelRow, c: &Caller) -> pb::Panel {
    let full = matches!(c.role, Role::Office | Role::Supervisor) || p.released;
    let members = p
        .seats
        .iter()
        .filter(|s| s.seat == "MEMBER")
        .filter(|s| full || s.reviewer_id.eq_ignore_ascii_case(&c.subject))
        .map(|s| pb::PanelMember {
            reviewer: format!("reviewers/{}", s.reviewer_id),
            leader: s.leader,
            state: (match s.state.as_str() {
                "PENDING" => pb::AssignmentState::Pending,
                "ACCEPTED" => pb::AssignmentState::Accepted,
                "DECLINED" => pb::AssignmentState::Declined,
                "EXPIRED" => pb::AssignmentState::Expired,
                _ => pb::AssignmentState::Replaced,
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
        backups_remaining: p
            .seats
            .iter()
            .filter(|s| s.seat == "BACKUP" && s.state == "WAITING")
            .count() as i32,
        released: p.released,
        window_start: date_pb(&p.window_start),
        window_end: date_pb(&p.window_end),
        sealed: !full,
    }
}

fn enterprise_codes(raw: &[String], field: &str) -> Result<Vec<String>> {
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

fn days(from: &str, to: &str) -> Vec<String> {
    let (Some(mut d), Some(end)) = (eligibility::parse_date(from), eligibility::parse_date(to))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while d <= end {
        out.push(format!(
            "{:04}-{:02}-{:02}",
            d.year(),
            d.month() as u8,
            d.day()
        ));
        match d.next_day() {
            Some(n) => d = n,
            None => break,
        }
    }
    out
}

impl ReviewersApi {
    async fn execute_draw(
        &self,
        c: &Caller,
        programme: &str,
        id: &str,
        entropy: &str,
        key: &Option<RequestKey>,
    ) -> Result<pb::Draw> {
        let mut tx = self.db.begin().await?;
        let d = store::get_draw(&mut tx, programme, id).await?;
        if d.state != "PREPARED" {
            return Err(Error::rule(
                "R-45",
                "DRAW_ALREADY_EXECUTED",
                "a draw is executed once; prepare a new draw that names this one to redraw",
            ));
        }
        let p = &d.prepared;
        if !p.entropy_commitment.is_empty()
            && draw::sha256_hex(entropy.as_bytes()) != p.entropy_commitment
        {
            return Err(Error::rule(
                "R-45",
                "ENTROPY_DOES_NOT_MATCH_COMMITMENT",
                "SHA-256 of the entropy does not match the published commitment",
            ));
        }
        let now = self.now();
        let outcome = match draw::execute_hashed(p, &d.inputs_hash, entropy) {
            Ok(o) => o,
            Err(shortage) => {
                store::fail_draw(&mut tx, id, entropy, &shortage.message(), now).await?;
                change::commit(
                    tx,
                    self.now(),
                    &None,
                    AuditRecord::by(c, "draw.fail", format!("programmes/{programme}/draws/{id}"))
                        .because(shortage.message()),
                    &(),
                )
                .await?;
                return Err(Error::rule(
                    "R-40",
                    "DRAW_CONSTRAINTS_UNMET",
                    shortage.message(),
                ));
            }
        };
        let panel_id = id.to_string();
        let respond_by = unix_micros(now + time::Duration::hours(RESPONSE_HOURS));
        let mut seats = Vec::new();
        for (i, m) in outcome.members.iter().enumerate() {
            seats.push(SeatRow {
                position: i as i64,
                reviewer_id: m.clone(),
                seat: "MEMBER".into(),
                state: "PENDING".into(),
                leader: *m == outcome.leader,
                reason: String::new(),
                replaced_by: String::new(),
                respond_by_micros: respond_by,
            });
        }
        for (i, b) in outcome.backups.iter().enumerate() {
            seats.push(SeatRow {
                position: (outcome.members.len() + i) as i64,
                reviewer_id: b.clone(),
                seat: "BACKUP".into(),
                state: "WAITING".into(),
                leader: false,
                reason: String::new(),
                replaced_by: String::new(),
                respond_by_micros: 0,
            });
        }
        let panel = PanelRow {
            id: panel_id.clone(),
            programme_id: programme.to_string(),
            draw_id: id.to_string(),
            purpose: p.purpose.clone(),
            enterprise_codes: p.enterprise_codes.clone(),
            window_start: p.window_start.clone(),
            window_end: p.window_end.clone(),
            released: false,
            respond_by_micros: respond_by,
            seats,
        };
        store::insert_panel(&mut tx, &panel).await?;
        // An appointment books no days and reviews no one; a review does both.
        let review = Purpose::parse(&p.purpose).is_none_or(|x| x.is_review());
        let window = if review {
            days(&p.window_start, &p.window_end)
        } else {
            Vec::new()
        };
        // Booked in one order — reviewer, then day — whatever the draw order, so two draws
        // executing at once meet on the same first row: one waits and then finds it taken,
        // instead of each holding a row the other needs (a deadlock).
        let mut booking: Vec<&String> = outcome.members.iter().filter(|_| review).collect();
        booking.sort();
        for m in booking {
            if let Err(e) = store::book(&mut tx, m, &window, &panel_id).await {
                // Another draw booked this reviewer after our pool was fixed: the attempt is
                // recorded as failed, never silently retried.
                drop(tx);
                let mut tx = self.db.begin().await?;
                store::fail_draw(&mut tx, id, entropy, &e.message, now).await?;
                change::commit(
                    tx,
                    self.now(),
                    &None,
                    AuditRecord::by(c, "draw.fail", format!("programmes/{programme}/draws/{id}"))
                        .because(e.message.clone()),
                    &(),
                )
                .await?;
                return Err(e);
            }
            store::assign(&mut tx, m, &panel).await?;
        }
        if !store::complete_draw(&mut tx, id, entropy, &outcome, &panel_id, now).await? {
            return Err(Error::rule(
                "R-45",
                "DRAW_ALREADY_EXECUTED",
                "the draw was executed meanwhile",
            ));
        }
        let done = store::get_draw(&mut tx, programme, id).await?;
        let response = draw_pb(&done, false);
        let record = AuditRecord::by(c, "draw.execute", response.name.clone())
            .with_detail(serde_json::json!({ "entropy": entropy, "members": outcome.members, "leader": outcome.leader, "backups": outcome.backups }));
        change::commit(tx, self.now(), key, record, &response).await?;
        Ok(response)
    }

    /// Hands `leaving`'s seat to the next qualifying backup.
    #[allow(clippy::too_many_arguments)]
    async fn replace(
        &self,
        c: &Caller,
        programme: &str,
        panel_id: &str,
        leaving: &str,
        state: &str,
        reason: &str,
        key: &Option<RequestKey>,
    ) -> Result<pb::Panel> {
        let mut tx = self.db.begin().await?;
        let mut panel = store::get_panel(&mut tx, programme, panel_id).await?;
        let d = store::get_draw(&mut tx, programme, &panel.draw_id).await?;
        let members: Vec<String> = panel
            .seats
            .iter()
            .filter(|s| {
                s.seat == "MEMBER"
                    && !matches!(s.state.as_str(), "REPLACED" | "DECLINED" | "EXPIRED")
            })
            .map(|s| s.reviewer_id.clone())
            .collect();
        if !members.iter().any(|m| m == leaving) {
            return Err(Error::rule(
                "R-45",
                "NOT_A_MEMBER",
                format!("reviewers/{leaving} holds no seat on this panel"),
            ));
        }
        let waiting: Vec<String> = panel
            .seats
            .iter()
            .filter(|s| s.seat == "BACKUP" && s.state == "WAITING")
            .map(|s| s.reviewer_id.clone())
            .collect();
        let Some(next) = draw::replacement(&d.prepared, &members, leaving, &waiting).cloned()
        else {
            return Err(Error::rule(
                "R-45",
                "NO_BACKUP_LEFT",
                "no remaining backup keeps the group's needs; prepare a new draw naming this one",
            ));
        };
        let was_leader = panel
            .seats
            .iter()
            .any(|s| s.reviewer_id == leaving && s.leader);
        for s in panel.seats.iter_mut() {
            if s.reviewer_id == leaving {
                s.state = state.to_string();
                s.reason = reason.to_string();
                s.replaced_by = next.clone();
                s.leader = false;
            } else if s.reviewer_id == next {
                // The called backup gets the full time to answer, from now.
                s.seat = "MEMBER".into();
                s.state = "PENDING".into();
                s.respond_by_micros =
                    unix_micros(self.now() + time::Duration::hours(RESPONSE_HOURS));
            }
        }
        if was_leader {
            // The new leader by the draw's own rule, among those still seated, in draw order.
            let active: Vec<String> = d
                .outcome
                .iter()
                .flat_map(|o| o.members.iter().chain(&o.backups))
                .filter(|id| {
                    panel.seats.iter().any(|s| {
                        &s.reviewer_id == *id
                            && s.seat == "MEMBER"
                            && matches!(s.state.as_str(), "PENDING" | "ACCEPTED")
                    })
                })
                .cloned()
                .collect();
            if let Some(l) = draw::leader(&d.prepared, &active).cloned() {
                for s in panel.seats.iter_mut() {
                    s.leader = s.reviewer_id == l;
                }
            }
        }
        for s in &panel.seats {
            store::update_seat(&mut tx, panel_id, s).await?;
        }
        if Purpose::parse(&panel.purpose).is_none_or(|x| x.is_review()) {
            store::unbook(&mut tx, leaving, panel_id).await?;
            store::book(
                &mut tx,
                &next,
                &days(&panel.window_start, &panel.window_end),
                panel_id,
            )
            .await?;
            store::assign(&mut tx, &next, &panel).await?;
        }
        let response = panel_pb(&panel, c);
        let record = AuditRecord::by(c, "panel.replace", response.name.clone())
            .because(format!("{state}: {reason}"))
            .with_detail(
                serde_json::json!({ "leaving": leaving, "backup": next, "work_void": true }),
            );
        change::commit(tx, self.now(), key, record, &response).await?;
        Ok(response)
    }
}

#[tonic::async_trait]
impl ReviewerService for ReviewersApi {
    async fn create_programme(
        &self,
        request: Request<pb::CreateProgrammeRequest>,
    ) -> Result<Response<pb::Programme>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            if !valid_id(&r.programme_id) {
                return Err(Error::invalid(
                    "programme_id",
                    "1-63 lower-case letters, digits or '-'",
                ));
            }
            c.require_programme(&r.programme_id, &[Role::Office])?;
            let key = RequestKey::new("CreateProgramme", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(&self.db, &key).await? {
                return Ok(done);
            }
            let p = r
                .programme
                .clone()
                .ok_or_else(|| Error::invalid("programme", "is required"))?;
            let name = p.display_name.trim().to_string();
            if name.is_empty() || name.chars().count() > 200 {
                return Err(Error::invalid(
                    "programme.display_name",
                    "must be 1-200 characters",
                ));
            }
            let policy = match &p.policy {
                Some(pp) => policy_from_pb(pp)?,
                None => DrawPolicy::default(),
            };
            let mut tx = self.db.begin().await?;
            store::insert_programme(&mut tx, &r.programme_id, &name, &policy, self.now()).await?;
            let row = store::get_programme(&mut tx, &r.programme_id).await?;
            let response = programme_pb(&row);
            change::commit(
                tx,
                self.now(),
                &key,
                AuditRecord::by(&c, "programme.create", response.name.clone()),
                &response,
            )
            .await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn get_programme(
        &self,
        request: Request<pb::GetProgrammeRequest>,
    ) -> Result<Response<pb::Programme>, Status> {
        let c = caller(&request)?;
        let run = async {
            let id = programme_id(&request.get_ref().name, "name")?;
            c.require_programme(&id, &[Role::Office, Role::Supervisor])?;
            let mut conn = self.db.pool().acquire().await?;
            Ok(programme_pb(&store::get_programme(&mut conn, &id).await?))
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn list_programmes(
        &self,
        request: Request<pb::ListProgrammesRequest>,
    ) -> Result<Response<pb::ListProgrammesResponse>, Status> {
        let c = caller(&request)?;
        let run = async {
            c.require(&[Role::Office, Role::Supervisor])?;
            let r = request.get_ref();
            let page = Page::parse(r.page_size, &r.page_token)?;
            // A token for no programme lists none ("\u{0}" matches no id).
            let only = c.programme_id().unwrap_or("\u{0}");
            let mut rows = store::list_programmes(&self.db, Some(only), &page).await?;
            let next_page_token = page.finish(&mut rows, |p| p.id.clone());
            Ok(pb::ListProgrammesResponse {
                programmes: rows.iter().map(programme_pb).collect(),
                next_page_token,
            })
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn update_draw_policy(
        &self,
        request: Request<pb::UpdateDrawPolicyRequest>,
    ) -> Result<Response<pb::Programme>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let id = programme_id(&r.name, "name")?;
            c.require_programme(&id, &[Role::Office])?;
            let key = RequestKey::new("UpdateDrawPolicy", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(&self.db, &key).await? {
                return Ok(done);
            }
            let policy = policy_from_pb(
                r.policy
                    .as_ref()
                    .ok_or_else(|| Error::invalid("policy", "is required"))?,
            )?;
            let mut tx = self.db.begin().await?;
            let version = store::update_policy(&mut tx, &id, &policy, self.now()).await?;
            let response = programme_pb(&store::get_programme(&mut tx, &id).await?);
            let record = AuditRecord::by(&c, "programme.update_policy", response.name.clone())
                .with_detail(serde_json::json!({ "version": version }));
            change::commit(tx, self.now(), &key, record, &response).await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn import_reviewers(
        &self,
        request: Request<pb::ImportReviewersRequest>,
    ) -> Result<Response<pb::ImportReviewersResponse>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            c.require(&[Role::Office])?;
            let key = RequestKey::new("ImportReviewers", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(&self.db, &key).await? {
                return Ok(done);
            }
            let format = match pb::ImportFormat::try_from(r.format) {
                Ok(pb::ImportFormat::Csv) => Format::Csv,
                Ok(pb::ImportFormat::Json) => Format::Json,
                _ => {
                    return Err(Error::invalid(
                        "format",
                        "must be IMPORT_FORMAT_CSV or IMPORT_FORMAT_JSON",
                    ));
                }
            };
            let encoding = match pb::TextEncoding::try_from(r.encoding) {
                Ok(pb::TextEncoding::Gb18030) => Encoding::Gb18030,
                Ok(pb::TextEncoding::Utf8) | Ok(pb::TextEncoding::Unspecified) => Encoding::Utf8,
                Err(_) => return Err(Error::invalid("encoding", "unknown encoding")),
            };
            let (good, rejected) = registry::parse(&r.content, format, encoding)
                .map_err(|e| Error::invalid("content", e.0))?;
            let mut tx = self.db.begin().await?;
            let n = store::upsert_reviewers(&mut tx, &good, self.now()).await?;
            let response = pb::ImportReviewersResponse {
                created: n.created as i32,
                updated: n.updated as i32,
                unchanged: n.unchanged as i32,
                rejected: rejected
                    .iter()
                    .map(|x| pb::RejectedRow {
                        row: x.row as i32,
                        field: x.field.clone(),
                        reason: x.reason.clone(),
                    })
                    .collect(),
            };
            let record = AuditRecord::by(&c, "registry.import", "reviewers").with_detail(serde_json::json!({
                "created": n.created, "updated": n.updated, "unchanged": n.unchanged, "rejected_rows": rejected.len(),
                "certificates": good.iter().map(|g| g.certificate_number.clone()).collect::<Vec<_>>(),
            }));
            change::commit(tx, self.now(), &key, record, &response).await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn get_reviewer(
        &self,
        request: Request<pb::GetReviewerRequest>,
    ) -> Result<Response<pb::Reviewer>, Status> {
        let c = caller(&request)?;
        let run = async {
            let id = reviewer_id(&request.get_ref().name, "name")?;
            self_or(&c, &id, &[Role::Office, Role::Supervisor])?;
            let mut conn = self.db.pool().acquire().await?;
            Ok(reviewer_pb(&store::get_reviewer(&mut conn, &id).await?, &c))
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn list_reviewers(
        &self,
        request: Request<pb::ListReviewersRequest>,
    ) -> Result<Response<pb::ListReviewersResponse>, Status> {
        let c = caller(&request)?;
        let run = async {
            c.require(&[Role::Office, Role::Supervisor])?;
            let r = request.get_ref();
            let page = Page::parse(r.page_size, &r.page_token)?;
            let speciality = if r.speciality.is_empty() {
                String::new()
            } else {
                cn::industry(&r.speciality)
                    .map_err(|e| Error::invalid("speciality", e.to_string()))?
            };
            if r.query.chars().count() > 50 {
                return Err(Error::invalid("query", "at most 50 characters"));
            }
            let mut rows =
                store::list_reviewers(&self.db, &page, &speciality, r.query.trim()).await?;
            let next_page_token = page.finish(&mut rows, |x| x.record.certificate_number.clone());
            Ok(pb::ListReviewersResponse {
                reviewers: rows.iter().map(|x| reviewer_pb(x, &c)).collect(),
                next_page_token,
            })
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn create_relation(
        &self,
        request: Request<pb::CreateRelationRequest>,
    ) -> Result<Response<pb::Relation>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let reviewer = reviewer_id(&r.parent, "parent")?;
            let declared_by_self = self_or(&c, &reviewer, &[Role::Office])?;
            let key = RequestKey::new("CreateRelation", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(&self.db, &key).await? {
                return Ok(done);
            }
            let rel = r
                .relation
                .clone()
                .ok_or_else(|| Error::invalid("relation", "is required"))?;
            let mut bad = Vec::new();
            let code = cn::CreditCode::parse(&rel.enterprise_code)
                .map_err(|e| {
                    bad.push(FieldViolation {
                        field: "relation.enterprise_code".into(),
                        description: e.to_string(),
                    })
                })
                .ok();
            let kind = relation_kind(rel.kind);
            if kind.is_none() {
                bad.push(FieldViolation {
                    field: "relation.kind".into(),
                    description: "must be set".into(),
                });
            }
            let start = date_of(&rel.start_date, "relation.start_date")?;
            if start.is_none() {
                bad.push(FieldViolation {
                    field: "relation.start_date".into(),
                    description: "is required".into(),
                });
            }
            let end = date_of(&rel.end_date, "relation.end_date")?;
            if let (Some(s), Some(e)) = (&start, &end)
                && e < s
            {
                bad.push(FieldViolation {
                    field: "relation.end_date".into(),
                    description: "is before start_date".into(),
                });
            }
            if rel.note.chars().count() > 500 {
                bad.push(FieldViolation {
                    field: "relation.note".into(),
                    description: "at most 500 characters".into(),
                });
            }
            if !bad.is_empty() {
                return Err(Error::invalid_fields(bad));
            }
            let mut tx = self.db.begin().await?;
            store::get_reviewer(&mut tx, &reviewer).await?;
            let row = store::RelationRow {
                id: self.new_id(),
                reviewer_id: reviewer.clone(),
                enterprise_code: code.map(|c| c.to_string()).unwrap_or_default(),
                kind: kind.unwrap_or_default().to_string(),
                start_date: start.unwrap_or_default(),
                end_date: end,
                note: rel.note.clone(),
            };
            store::insert_relation(&mut tx, &row, self.now()).await?;
            // a tie that begins within 3 years of a review of that enterprise is a
            // violation, reported in the audit trail as it is recorded.
            let facts = store::reviewer_facts(
                &mut tx,
                &reviewer,
                std::slice::from_ref(&row.enterprise_code),
            )
            .await?;
            let violations: Vec<_> = eligibility::conflicts(
                &facts,
                std::slice::from_ref(&row.enterprise_code),
                &row.start_date,
                &row.start_date,
            )
            .into_iter()
            .filter(|x| x.rule == "R-44")
            .collect();
            let response = relation_pb(&row);
            let mut record = AuditRecord::by(&c, "relation.create", response.name.clone()).because(
                if declared_by_self {
                    "declared by the reviewer"
                } else {
                    "recorded by the office"
                },
            );
            if !violations.is_empty() {
                tracing::warn!(relation = %response.name, "cooling-off violation recorded (R-44)");
                record = record.with_detail(serde_json::json!({ "violations": violations }));
            }
            change::commit(tx, self.now(), &key, record, &response).await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn list_relations(
        &self,
        request: Request<pb::ListRelationsRequest>,
    ) -> Result<Response<pb::ListRelationsResponse>, Status> {
        let c = caller(&request)?;
        let run = async {
            let r = request.get_ref();
            let reviewer = reviewer_id(&r.parent, "parent")?;
            self_or(&c, &reviewer, &[Role::Office, Role::Supervisor])?;
            let page = Page::parse(r.page_size, &r.page_token)?;
            let mut rows = store::list_relations(&self.db, &reviewer, &page).await?;
            let next_page_token = page.finish(&mut rows, |x| x.id.clone());
            Ok(pb::ListRelationsResponse {
                relations: rows.iter().map(relation_pb).collect(),
                next_page_token,
            })
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn create_flag(
        &self,
        request: Request<pb::CreateFlagRequest>,
    ) -> Result<Response<pb::Flag>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let reviewer = reviewer_id(&r.parent, "parent")?;
            let f = r
                .flag
                .clone()
                .ok_or_else(|| Error::invalid("flag", "is required"))?;
            let kind =
                flag_kind(f.kind).ok_or_else(|| Error::invalid("flag.kind", "must be set"))?;
            // A reviewer may declare their own unavailability; everything else is the office's.
            if !(kind == "UNAVAILABLE" && is_self(&c, &reviewer)) {
                c.require(&[Role::Office])?;
            }
            let key = RequestKey::new("CreateFlag", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(&self.db, &key).await? {
                return Ok(done);
            }
            let start = date_of(&f.start_date, "flag.start_date")?
                .ok_or_else(|| Error::invalid("flag.start_date", "is required"))?;
            let end = date_of(&f.end_date, "flag.end_date")?;
            if end.as_ref().is_some_and(|e| *e < start) {
                return Err(Error::invalid("flag.end_date", "is before start_date"));
            }
            if f.note.chars().count() > 500 {
                return Err(Error::invalid("flag.note", "at most 500 characters"));
            }
            let mut tx = self.db.begin().await?;
            store::get_reviewer(&mut tx, &reviewer).await?;
            let row = store::FlagRow {
                id: self.new_id(),
                reviewer_id: reviewer,
                kind: kind.into(),
                start_date: start,
                end_date: end,
                note: f.note.clone(),
                resolved: false,
            };
            store::insert_flag(&mut tx, &row, self.now()).await?;
            let response = flag_pb(&row);
            change::commit(
                tx,
                self.now(),
                &key,
                AuditRecord::by(&c, "flag.create", response.name.clone()).because(kind),
                &response,
            )
            .await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn list_flags(
        &self,
        request: Request<pb::ListFlagsRequest>,
    ) -> Result<Response<pb::ListFlagsResponse>, Status> {
        let c = caller(&request)?;
        let run = async {
            let r = request.get_ref();
            let reviewer = reviewer_id(&r.parent, "parent")?;
            self_or(&c, &reviewer, &[Role::Office, Role::Supervisor])?;
            let page = Page::parse(r.page_size, &r.page_token)?;
            let mut rows = store::list_flags(&self.db, &reviewer, &page).await?;
            let next_page_token = page.finish(&mut rows, |x| x.id.clone());
            Ok(pb::ListFlagsResponse {
                flags: rows.iter().map(flag_pb).collect(),
                next_page_token,
            })
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn resolve_flag(
        &self,
        request: Request<pb::ResolveFlagRequest>,
    ) -> Result<Response<pb::Flag>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            c.require(&[Role::Office])?;
            let parts: Vec<&str> = r.name.split('/').collect();
            let (reviewer, id) = match parts.as_slice() {
                ["reviewers", rv, "flags", id] if !rv.is_empty() && !id.is_empty() => {
                    (rv.to_ascii_uppercase(), id.to_string())
                }
                _ => {
                    return Err(Error::invalid(
                        "name",
                        "must be reviewers/{reviewer}/flags/{flag}",
                    ));
                }
            };
            let key = RequestKey::new("ResolveFlag", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(&self.db, &key).await? {
                return Ok(done);
            }
            let mut tx = self.db.begin().await?;
            let row = store::resolve_flag(&mut tx, &reviewer, &id, self.now()).await?;
            let response = flag_pb(&row);
            change::commit(
                tx,
                self.now(),
                &key,
                AuditRecord::by(&c, "flag.resolve", response.name.clone()).because(r.note.clone()),
                &response,
            )
            .await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn check_conflicts(
        &self,
        request: Request<pb::CheckConflictsRequest>,
    ) -> Result<Response<pb::CheckConflictsResponse>, Status> {
        let c = caller(&request)?;
        let run = async {
            let r = request.get_ref();
            let reviewer = reviewer_id(&r.reviewer, "reviewer")?;
            self_or(&c, &reviewer, &[Role::Office, Role::Supervisor])?;
            if r.enterprise_codes.is_empty() {
                return Err(Error::invalid(
                    "enterprise_codes",
                    "name at least one enterprise",
                ));
            }
            let codes = enterprise_codes(&r.enterprise_codes, "enterprise_codes")?;
            let today = {
                let d = self.now().date();
                format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())
            };
            let on = date_of(&r.on_date, "on_date")?.unwrap_or(today);
            let mut conn = self.db.pool().acquire().await?;
            let facts = store::reviewer_facts(&mut conn, &reviewer, &codes).await?;
            let reasons = eligibility::conflicts(&facts, &codes, &on, &on);
            Ok(pb::CheckConflictsResponse {
                may_review: reasons.is_empty(),
                reasons: reasons
                    .into_iter()
                    .map(|x| pb::ConflictReason {
                        code: x.code,
                        rule: x.rule.to_string(),
                        enterprise_code: x.enterprise_code,
                        record: x.record,
                        message: x.message,
                    })
                    .collect(),
            })
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn prepare_draw(
        &self,
        request: Request<pb::PrepareDrawRequest>,
    ) -> Result<Response<pb::Draw>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let programme = programme_id(&r.parent, "parent")?;
            c.require_programme(&programme, &[Role::Office])?;
            let key = RequestKey::new("PrepareDraw", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(&self.db, &key).await? {
                return Ok(done);
            }
            let d = r
                .draw
                .clone()
                .ok_or_else(|| Error::invalid("draw", "is required"))?;
            let mut bad = Vec::new();
            let purpose = purpose_of(d.purpose);
            if purpose.is_none() {
                bad.push(FieldViolation {
                    field: "draw.purpose".into(),
                    description: "must be set".into(),
                });
            }
            if d.enterprise_codes.is_empty() {
                bad.push(FieldViolation {
                    field: "draw.enterprise_codes".into(),
                    description: "name the applicants the group reviews".into(),
                });
            }
            let start = date_of(&d.window_start, "draw.window_start")?;
            let end = date_of(&d.window_end, "draw.window_end")?;
            let max_days = if purpose.is_some_and(|p| !p.is_review()) {
                MAX_APPOINTMENT_DAYS
            } else {
                MAX_WINDOW_DAYS
            };
            match (&start, &end) {
                (Some(s), Some(e)) if e < s => bad.push(FieldViolation {
                    field: "draw.window_end".into(),
                    description: "is before window_start".into(),
                }),
                (Some(s), Some(e)) if days(s, e).len() as i64 > max_days => {
                    bad.push(FieldViolation {
                        field: "draw.window_end".into(),
                        description: format!("a window is at most {max_days} days"),
                    })
                }
                (Some(_), Some(_)) => {}
                _ => bad.push(FieldViolation {
                    field: "draw.window_start".into(),
                    description: "window_start and window_end are required".into(),
                }),
            }
            if d.backups < 0 || d.size < 0 {
                bad.push(FieldViolation {
                    field: "draw.size".into(),
                    description: "size and backups must not be negative".into(),
                });
            }
            if !d.entropy_commitment.is_empty()
                && (d.entropy_commitment.len() != 64
                    || !d.entropy_commitment.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                bad.push(FieldViolation {
                    field: "draw.entropy_commitment".into(),
                    description: "must be a SHA-256 in hex (64 characters)".into(),
                });
            }
            if d.entropy_source.trim().is_empty() || d.entropy_source.chars().count() > 200 {
                bad.push(FieldViolation {
                    field: "draw.entropy_source".into(),
                    description: "say where the entropy will come from (1-200 characters)".into(),
                });
            }
            let mut needs = Vec::new();
            for (i, s) in d.specialities.iter().enumerate() {
                match cn::industry(&s.speciality) {
                    Ok(code) if s.min_members > 0 => needs.push(SpecialityNeed {
                        code,
                        min: s.min_members as u32,
                    }),
                    Ok(_) => bad.push(FieldViolation {
                        field: format!("draw.specialities[{i}].min_members"),
                        description: "must be at least 1".into(),
                    }),
                    Err(e) => bad.push(FieldViolation {
                        field: format!("draw.specialities[{i}].speciality"),
                        description: e.to_string(),
                    }),
                }
            }
            let codes = enterprise_codes(&d.enterprise_codes, "draw.enterprise_codes");
            if let Err(e) = &codes {
                bad.extend(e.violations.clone());
            }
            if !bad.is_empty() {
                return Err(Error::invalid_fields(bad));
            }
            let (purpose, start, end, codes) = (
                purpose.unwrap_or(Purpose::MaterialsGroup),
                start.unwrap_or_default(),
                end.unwrap_or_default(),
                codes?,
            );
            let replaces = if d.replaces_draw.is_empty() {
                String::new()
            } else {
                child(&d.replaces_draw, "draws", "draw.replaces_draw")?.1
            };

            let mut tx = self.db.begin().await?;
            let prog = store::get_programme(&mut tx, &programme).await?;
            if let Err((min, max)) = prog.policy.size_allowed(purpose, d.size as u32) {
                let allowed = match max {
                    Some(m) => format!("{min}-{m}"),
                    None => format!("at least {min}"),
                };
                return Err(Error::invalid(
                    "draw.size",
                    format!(
                        "a {} has {allowed} reviewers (policy v{})",
                        purpose.as_str().to_lowercase().replace('_', " "),
                        prog.policy_version
                    ),
                ));
            }
            if !replaces.is_empty() {
                store::get_draw(&mut tx, &programme, &replaces).await?;
            }
            let needs = prog.policy.needs(needs);
            let need_codes: Vec<String> = needs.iter().map(|n| n.code.clone()).collect();
            let candidates = store::candidate_facts(
                &mut tx,
                &self.registry,
                &programme,
                &need_codes,
                &codes,
                &start,
                &end,
            )
            .await?;
            let load = Load {
                yearly_cap: prog.policy.yearly_cap,
                cooldown_days: prog.policy.cooldown_days,
            };
            // a review is drawn from the year's appointees when the programme has an
            // appointment covering its window.
            let appointees = if purpose.is_review() {
                store::appointees(&mut tx, &programme, &start, &end).await?
            } else {
                None
            };
            let mut pool = Vec::new();
            let mut exclusions = Vec::new();
            for (entry, facts) in candidates {
                if !crate::domain::appointed(&entry.id, appointees.as_deref()) {
                    exclusions.push(Exclusion {
                        reviewer: format!("reviewers/{}", entry.id),
                        code: "NOT_APPOINTED".into(),
                        rule: "R-40".into(),
                    });
                    continue;
                }
                let reasons = eligibility::exclusions(&facts, &codes, &start, &end, load);
                if reasons.is_empty() {
                    pool.push(entry);
                } else {
                    exclusions.extend(reasons.into_iter().map(|x| Exclusion {
                        reviewer: format!("reviewers/{}", entry.id),
                        code: x.code,
                        rule: x.rule.to_string(),
                    }));
                }
            }
            let id = self.new_id();
            let prepared = Prepared {
                algorithm: draw::ALGORITHM.into(),
                draw: format!("programmes/{programme}/draws/{id}"),
                programme: format!("programmes/{programme}"),
                purpose: purpose.as_str().into(),
                enterprise_codes: codes,
                size: d.size as u32,
                backups: if d.backups == 0 {
                    prog.policy.backups_per_draw
                } else {
                    d.backups as u32
                },
                specialities: needs,
                leader_required: prog.policy.leader_must_be_qualified && purpose.is_review(),
                window_start: start,
                window_end: end,
                policy_version: prog.policy_version as u32,
                entropy_source: d.entropy_source.trim().to_string(),
                entropy_commitment: d.entropy_commitment.to_ascii_lowercase(),
                replaces_draw: if replaces.is_empty() {
                    String::new()
                } else {
                    format!("programmes/{programme}/draws/{replaces}")
                },
                pool,
                pool_hash: String::new(),
                exclusions,
            }
            .normalise();
            // Refuse at once what can never be drawn, naming what is short.
            draw::check_feasible(&prepared)
                .map_err(|s| Error::rule("R-40", "DRAW_CONSTRAINTS_UNMET", s.message()))?;
            let text = prepared.to_json();
            let inputs_hash = draw::sha256_hex(text.as_bytes());
            store::insert_draw(&mut tx, &id, &programme, &text, &inputs_hash, self.now()).await?;
            let row = store::get_draw(&mut tx, &programme, &id).await?;
            let response = draw_pb(&row, false);
            let record = AuditRecord::by(&c, "draw.prepare", response.name.clone())
                .with_detail(serde_json::json!({ "inputs_hash": inputs_hash, "pool_hash": prepared.pool_hash, "pool_size": prepared.pool.len(), "replaces": prepared.replaces_draw }));
            change::commit(tx, self.now(), &key, record, &response).await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn execute_draw(
        &self,
        request: Request<pb::ExecuteDrawRequest>,
    ) -> Result<Response<pb::Draw>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let (programme, id) = child(&r.name, "draws", "name")?;
            c.require_programme(&programme, &[Role::Office])?;
            let key = RequestKey::new("ExecuteDraw", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(&self.db, &key).await? {
                return Ok(done);
            }
            if r.entropy.is_empty() || r.entropy.chars().count() > 1000 {
                return Err(Error::invalid("entropy", "must be 1-1000 characters"));
            }
            self.execute_draw(&c, &programme, &id, &r.entropy, &key)
                .await
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn get_draw(
        &self,
        request: Request<pb::GetDrawRequest>,
    ) -> Result<Response<pb::Draw>, Status> {
        let c = caller(&request)?;
        let run = async {
            let (programme, id) = child(&request.get_ref().name, "draws", "name")?;
            c.require_programme(&programme, &[Role::Office, Role::Supervisor])?;
            let mut conn = self.db.pool().acquire().await?;
            Ok(draw_pb(
                &store::get_draw(&mut conn, &programme, &id).await?,
                false,
            ))
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn list_draws(
        &self,
        request: Request<pb::ListDrawsRequest>,
    ) -> Result<Response<pb::ListDrawsResponse>, Status> {
        let c = caller(&request)?;
        let run = async {
            let r = request.get_ref();
            let programme = programme_id(&r.parent, "parent")?;
            c.require_programme(&programme, &[Role::Office, Role::Supervisor])?;
            let page = Page::parse(r.page_size, &r.page_token)?;
            let mut rows = store::list_draws(&self.db, &programme, &page).await?;
            let next_page_token = page.finish(&mut rows, |d| d.id.clone());
            Ok(pb::ListDrawsResponse {
                draws: rows.iter().map(|d| draw_pb(d, false)).collect(),
                next_page_token,
            })
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn verify_draw(
        &self,
        request: Request<pb::VerifyDrawRequest>,
    ) -> Result<Response<pb::VerifyDrawResponse>, Status> {
        let c = caller(&request)?;
        let run = async {
            let (programme, id) = child(&request.get_ref().name, "draws", "name")?;
            c.require_programme(&programme, &[Role::Office, Role::Supervisor])?;
            let mut conn = self.db.pool().acquire().await?;
            let d = store::get_draw(&mut conn, &programme, &id).await?;
            Ok(verify(
                &d.prepared_text,
                d.entropy.as_deref(),
                d.outcome.as_ref(),
                &d.inputs_hash,
            ))
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn get_panel(
        &self,
        request: Request<pb::GetPanelRequest>,
    ) -> Result<Response<pb::Panel>, Status> {
        let c = caller(&request)?;
        let run =
            async {
                let (programme, id) = child(&request.get_ref().name, "panels", "name")?;
                let mut conn = self.db.pool().acquire().await?;
                if c.role == Role::Reviewer {
                    let p = store::get_panel(&mut conn, &programme, &id).await?;
                    if !p.seats.iter().any(|s| {
                        s.seat == "MEMBER" && s.reviewer_id.eq_ignore_ascii_case(&c.subject)
                    }) {
                        return Err(Error::permission_denied(
                            "only the panel's members may read it (R-43)",
                        ));
                    }
                    return Ok(panel_pb(&p, &c));
                }
                c.require_programme(&programme, &[Role::Office, Role::Supervisor])?;
                Ok(panel_pb(
                    &store::get_panel(&mut conn, &programme, &id).await?,
                    &c,
                ))
            };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn list_panels(
        &self,
        request: Request<pb::ListPanelsRequest>,
    ) -> Result<Response<pb::ListPanelsResponse>, Status> {
        let c = caller(&request)?;
        let run = async {
            let r = request.get_ref();
            let programme = programme_id(&r.parent, "parent")?;
            c.require_programme(&programme, &[Role::Office, Role::Supervisor])?;
            let page = Page::parse(r.page_size, &r.page_token)?;
            let mut rows = store::list_panels(&self.db, &programme, &page).await?;
            let next_page_token = page.finish(&mut rows, |p| p.id.clone());
            Ok(pb::ListPanelsResponse {
                panels: rows.iter().map(|p| panel_pb(p, &c)).collect(),
                next_page_token,
            })
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn respond_to_assignment(
        &self,
        request: Request<pb::RespondToAssignmentRequest>,
    ) -> Result<Response<pb::Panel>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let (programme, panel_id) = child(&r.panel, "panels", "panel")?;
            let reviewer = reviewer_id(&r.reviewer, "reviewer")?;
            if !is_self(&c, &reviewer) {
                c.require_programme(&programme, &[Role::Office])?;
            }
            if !r.accept && r.reason.trim().is_empty() {
                return Err(Error::invalid("reason", "a decline gives its reason"));
            }
            let key = RequestKey::new("RespondToAssignment", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(&self.db, &key).await? {
                return Ok(done);
            }
            let mut tx = self.db.begin().await?;
            let mut panel = store::get_panel(&mut tx, &programme, &panel_id).await?;
            let Some(seat) = panel
                .seats
                .iter_mut()
                .find(|s| s.seat == "MEMBER" && s.reviewer_id == reviewer)
            else {
                return Err(Error::permission_denied(
                    "this reviewer holds no seat on the panel",
                ));
            };
            if seat.state != "PENDING" {
                return Err(Error::rule(
                    "R-45",
                    "ALREADY_ANSWERED",
                    format!("the seat is {}", seat.state.to_lowercase()),
                ));
            }
            if unix_micros(self.now()) > seat.respond_by_micros {
                return Err(Error::rule(
                    "R-45",
                    "RESPONSE_DEADLINE_PASSED",
                    format!(
                        "answers were due by {}",
                        from_unix_micros(seat.respond_by_micros)
                    ),
                ));
            }
            if r.accept {
                seat.state = "ACCEPTED".into();
                let s = seat.clone();
                store::update_seat(&mut tx, &panel_id, &s).await?;
                let response = panel_pb(&panel, &c);
                change::commit(
                    tx,
                    self.now(),
                    &key,
                    AuditRecord::by(&c, "panel.accept", response.name.clone())
                        .with_detail(serde_json::json!({ "reviewer": reviewer })),
                    &response,
                )
                .await?;
                Ok(response)
            } else {
                drop(tx);
                let response = self
                    .replace(
                        &c,
                        &programme,
                        &panel_id,
                        &reviewer,
                        "DECLINED",
                        r.reason.trim(),
                        &key,
                    )
                    .await?;
                Ok(response)
            }
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn replace_member(
        &self,
        request: Request<pb::ReplaceMemberRequest>,
    ) -> Result<Response<pb::Panel>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let (programme, panel_id) = child(&r.panel, "panels", "panel")?;
            c.require_programme(&programme, &[Role::Office])?;
            let reviewer = reviewer_id(&r.reviewer, "reviewer")?;
            let key = RequestKey::new("ReplaceMember", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(&self.db, &key).await? {
                return Ok(done);
            }
            let mut conn = self.db.pool().acquire().await?;
            let panel = store::get_panel(&mut conn, &programme, &panel_id).await?;
            let (state, why) = match pb::ReplaceReason::try_from(r.reason) {
                Ok(pb::ReplaceReason::MissedDeadline) => {
                    let now = unix_micros(self.now());
                    let overdue = panel.seats.iter().any(|s| {
                        s.reviewer_id == reviewer
                            && s.state == "PENDING"
                            && now > s.respond_by_micros
                    });
                    if !overdue {
                        return Err(Error::rule(
                            "R-45",
                            "DEADLINE_NOT_MISSED",
                            "the reviewer has answered or the deadline has not passed",
                        ));
                    }
                    ("EXPIRED", "missed the response deadline".to_string())
                }
                Ok(pb::ReplaceReason::LateConflict) => {
                    let facts =
                        store::reviewer_facts(&mut conn, &reviewer, &panel.enterprise_codes)
                            .await?;
                    let reasons = eligibility::conflicts(
                        &facts,
                        &panel.enterprise_codes,
                        &panel.window_start,
                        &panel.window_end,
                    );
                    if reasons.is_empty() {
                        return Err(Error::rule(
                            "R-41",
                            "NO_CONFLICT_FOUND",
                            "no conflict is recorded for this reviewer and these applicants; record the relation or flag first",
                        ));
                    }
                    (
                        "REPLACED",
                        format!(
                            "late conflict: {}",
                            reasons
                                .iter()
                                .map(|x| format!("{} ({})", x.code, x.rule))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                }
                Ok(pb::ReplaceReason::Declined) => ("DECLINED", r.note.clone()),
                _ => return Err(Error::invalid("reason", "must be set")),
            };
            drop(conn);
            self.replace(&c, &programme, &panel_id, &reviewer, state, &why, &key)
                .await
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn record_reviewer_event(
        &self,
        request: Request<pb::RecordReviewerEventRequest>,
    ) -> Result<Response<pb::ReviewerEvent>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let reviewer = reviewer_id(&r.parent, "parent")?;
            let e = r
                .event
                .as_ref()
                .ok_or_else(|| Error::invalid("event", "is required"))?;
            let day = date_of(&e.date, "event.date")?
                .ok_or_else(|| Error::invalid("event.date", "is required"))?;
            let office = c.role == Role::Office;
            let event = event_from_pb(e, office)?;
            let bad = record::problems(&event);
            if !bad.is_empty() {
                return Err(Error::invalid_fields(
                    bad.into_iter()
                        .map(|(f, d)| FieldViolation::new(f, d))
                        .collect(),
                ));
            }
            let key = RequestKey::new("RecordReviewerEvent", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(&self.db, &key).await? {
                return Ok(done);
            }
            let mut tx = self.db.begin().await?;
            let subject = store::get_reviewer(&mut tx, &reviewer).await?;
            // A review's events: the reviewer sat on that panel; a leader records only about
            // the other members of the panel it leads.
            let mut leads = false;
            if let Some(panel) = event.panel() {
                let (programme, id) = child(panel, "panels", "event.panel")?;
                let p = store::get_panel(&mut tx, &programme, &id).await?;
                let seated = |who: &str| {
                    p.seats
                        .iter()
                        .find(|s| s.seat == "MEMBER" && s.reviewer_id.eq_ignore_ascii_case(who))
                };
                if seated(&reviewer).is_none() {
                    return Err(Error::invalid(
                        "event.panel",
                        "the reviewer did not sit on this panel",
                    ));
                }
                leads = c.role == Role::Reviewer && seated(&c.subject).is_some_and(|s| s.leader);
            }
            record::may_record(&event, office, leads, is_self(&c, &reviewer))
                .map_err(Error::permission_denied)?;
            if let record::Event::CertificateShown {
                certificate_number, ..
            } = &event
            {
                let rec = &subject.record;
                record::certificate_check(
                    certificate_number,
                    &rec.certificate_number,
                    &rec.cert_valid_from,
                    &rec.cert_valid_until,
                    &day,
                )
                .map_err(|(reason, message)| Error::rule("R-42", reason, message))?;
            }
            let id = self.new_id();
            // A serious violation suspends the reviewer from draws from that day until the
            // office resolves the flag (eligibility already excludes a suspended reviewer).
            let mut suspension = String::new();
            if let record::Event::Violation {
                serious: true,
                duty,
                ..
            } = &event
            {
                let flag = store::FlagRow {
                    id: self.new_id(),
                    reviewer_id: reviewer.clone(),
                    kind: "SUSPENSION".into(),
                    start_date: day.clone(),
                    end_date: None,
                    note: format!("严重违反评审人员行为规范第六条第{duty}项（事件 {id}）"),
                    resolved: false,
                };
                store::insert_flag(&mut tx, &flag, self.now()).await?;
                suspension = format!("reviewers/{reviewer}/flags/{}", flag.id);
            }
            let row = store::EventRow {
                id,
                reviewer_id: reviewer.clone(),
                year: day[..4].parse().unwrap_or_default(),
                date: day,
                event,
                recorded_by: if office {
                    c.subject.clone()
                } else {
                    format!("reviewers/{}", c.subject.to_ascii_uppercase())
                },
                suspension,
                created_micros: unix_micros(self.now()),
            };
            store::insert_event(&mut tx, &row).await?;
            let response = event_pb(&row);
            change::commit(
                tx,
                self.now(),
                &key,
                AuditRecord::by(&c, "reviewer.record_event", response.name.clone()).with_detail(
                    serde_json::json!({
                        "kind": row.event.kind(),
                        "suspension": row.suspension,
                    }),
                ),
                &response,
            )
            .await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn get_reviewer_record(
        &self,
        request: Request<pb::GetReviewerRecordRequest>,
    ) -> Result<Response<pb::ReviewerYear>, Status> {
        let c = caller(&request)?;
        let run = async {
            let name = &request.get_ref().name;
            let (reviewer, year) = name
                .rsplit_once("/years/")
                .and_then(|(r, y)| Some((reviewer_id(r, "name").ok()?, y.parse::<i32>().ok()?)))
                .filter(|(_, y)| (2000..=2100).contains(y))
                .ok_or_else(|| {
                    Error::invalid("name", "must be reviewers/{reviewer}/years/{year}")
                })?;
            self_or(&c, &reviewer, &[Role::Office, Role::Supervisor])?;
            let mut conn = self.db.pool().acquire().await?;
            store::get_reviewer(&mut conn, &reviewer).await?;
            let events = store::events_of_year(&mut conn, &reviewer, year).await?;
            let today = iso_date(self.now().date());
            let suspended = store::list_flags(&self.db, &reviewer, &Page::parse(100, "")?)
                .await?
                .iter()
                .any(|f| {
                    f.kind == "SUSPENSION"
                        && !f.resolved
                        && f.start_date <= today
                        && f.end_date.as_ref().is_none_or(|e| *e >= today)
                });
            let training_hours = events
                .iter()
                .map(|e| match e.event {
                    record::Event::Training { hours, .. } => hours,
                    _ => 0,
                })
                .sum();
            Ok(pb::ReviewerYear {
                name: format!("reviewers/{reviewer}/years/{year}"),
                year,
                events: events.iter().map(event_pb).collect(),
                training_hours,
                suspended,
            })
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    async fn release_panel(
        &self,
        request: Request<pb::ReleasePanelRequest>,
    ) -> Result<Response<pb::Panel>, Status> {
        let c = caller(&request)?;
        let r = request.into_inner();
        let run = async {
            let (programme, panel_id) = child(&r.name, "panels", "name")?;
            c.require_programme(&programme, &[Role::Office])?;
            let key = RequestKey::new("ReleasePanel", &c, &r.request_id, &r)?;
            if let Some(done) = change::recall(&self.db, &key).await? {
                return Ok(done);
            }
            let mut tx = self.db.begin().await?;
            store::get_panel(&mut tx, &programme, &panel_id).await?;
            store::set_released(&mut tx, &panel_id).await?;
            let response = panel_pb(&store::get_panel(&mut tx, &programme, &panel_id).await?, &c);
            change::commit(
                tx,
                self.now(),
                &key,
                AuditRecord::by(&c, "panel.release", response.name.clone()),
                &response,
            )
            .await?;
            Ok(response)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }
}

/// Replays an exported draw record (`record_json` of GetDraw) offline, with no database
/// what `qaward draw verify FILE` and the demo run. `Err` when it is not a record.
pub fn verify_record(record_json: &str) -> Result<pb::VerifyDrawResponse, String> {
    let record: serde_json::Value =
        serde_json::from_str(record_json).map_err(|e| format!("not JSON: {e}"))?;
    let field = |k: &str| record.get(k).and_then(|v| v.as_str());
    let prepared = field("prepared").ok_or("the record has no prepared text")?;
    let inputs_hash = field("inputs_hash").ok_or("the record has no inputs_hash")?;
    let outcome = match record.get("outcome") {
        Some(v) if !v.is_null() => Some(
            serde_json::from_value::<draw::Outcome>(v.clone())
                .map_err(|e| format!("the outcome does not parse: {e}"))?,
        ),
        _ => None,
    };
    Ok(verify(
        prepared,
        field("entropy"),
        outcome.as_ref(),
        inputs_hash,
    ))
}

/// Replays a recorded draw.
pub fn verify(
    prepared_text: &str,
    entropy: Option<&str>,
    outcome: Option<&draw::Outcome>,
    inputs_hash: &str,
) -> pb::VerifyDrawResponse {
    let fail = |message: String| pb::VerifyDrawResponse {
        matches: false,
        replayed_members: vec![],
        replayed_backups: vec![],
        message,
    };
    if draw::sha256_hex(prepared_text.as_bytes()) != inputs_hash {
        return fail("the prepared record does not match its inputs hash".into());
    }
    let Ok(prepared) = serde_json::from_str::<Prepared>(prepared_text) else {
        return fail("the prepared record does not parse".into());
    };
    if draw::pool_hash(&prepared.pool) != prepared.pool_hash {
        return fail("the pool does not match its pool hash".into());
    }
    let Some(entropy) = entropy else {
        return fail("the draw has not been executed".into());
    };
    if !prepared.entropy_commitment.is_empty()
        && draw::sha256_hex(entropy.as_bytes()) != prepared.entropy_commitment
    {
        return fail("the entropy does not match the published commitment".into());
    }
    match (
        draw::execute_hashed(&prepared, inputs_hash, entropy),
        outcome,
    ) {
        (Ok(replayed), Some(recorded)) => pb::VerifyDrawResponse {
            matches: &replayed == recorded,
            message: if &replayed == recorded {
                "the replay gives the recorded members, leader and backups".into()
            } else {
                "the replay differs from the record".into()
            },
            replayed_members: replayed.members,
            replayed_backups: replayed.backups,
        },
        (Err(s), None) => pb::VerifyDrawResponse {
            matches: true,
            replayed_members: vec![],
            replayed_backups: vec![],
            message: format!("the draw failed as recorded: {}", s.message()),
        },
        (Ok(_), None) => fail("the record has no outcome but the replay succeeds".into()),
        (Err(s), Some(_)) => fail(format!("the replay fails: {}", s.message())),
    }
}
