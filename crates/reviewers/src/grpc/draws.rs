//! Draws: prepared with their pool and exclusions fixed and published, executed
//! once with the committed entropy, seated as a panel, and replayable by anyone.

use qaward_kit::{
    Error, Result,
    audit::AuditRecord,
    auth::Caller,
    change::{self, Done},
    cn,
    error::FieldViolation,
    idempotency::RequestKey,
    paging::Page,
};
use qaward_proto::qaward::reviewers::v1 as pb;

use super::{
    ReviewersApi,
    convert::{date_of, draw_pb, enterprise_codes, panel_pb, purpose_of},
    events,
    names::{child, programme_id},
};
use crate::{
    domain::{
        Purpose,
        draw::{self, Prepared, SpecialityNeed},
        eligibility::{self, Load},
        entropy, lifecycle,
        panel::{self, Panel},
        policy,
        pool::{self, Group},
    },
    store,
};

/// The longest window a group may be booked for.
pub const MAX_WINDOW_DAYS: i64 = 92;
/// The longest an annual appointment runs: a year.
pub const MAX_APPOINTMENT_DAYS: i64 = 366;

/// A draw request's fields, checked: every violation at once.
struct DrawRequest {
    purpose: Purpose,
    start: String,
    end: String,
    codes: Vec<String>,
    needs: Vec<SpecialityNeed>,
    replaces: String,
}

impl DrawRequest {
    /// `today` is the service's date in China (`YYYY-MM-DD`): a window is not in the past.
    fn parse(d: &pb::Draw, today: &str) -> Result<DrawRequest> {
        let mut bad = Vec::new();
        let purpose = purpose_of(d.purpose);
        if purpose.is_none() {
            bad.push(FieldViolation::new("draw.purpose", "must be set"));
        }
        if d.enterprise_codes.is_empty() {
            bad.push(FieldViolation::new(
                "draw.enterprise_codes",
                "name the applicants the group reviews",
            ));
        }
        let start = date_of(&d.window_start, "draw.window_start")?;
        let end = date_of(&d.window_end, "draw.window_end")?;
        let max_days = if purpose.is_some_and(|p| !p.is_review()) {
            MAX_APPOINTMENT_DAYS
        } else {
            MAX_WINDOW_DAYS
        };
        match (&start, &end) {
            (Some(s), Some(e)) if e < s => bad.push(FieldViolation::new(
                "draw.window_end",
                "is before window_start",
            )),
            (Some(s), Some(e)) if eligibility::days(s, e).len() as i64 > max_days => {
                bad.push(FieldViolation::new(
                    "draw.window_end",
                    format!("a window is at most {max_days} days"),
                ))
            }
            // A review books the days it reviews: none of them may have passed (issue 25,
            // item 7). An appointment may have begun, but not ended.
            (Some(s), Some(_)) if purpose.is_some_and(|p| p.is_review()) && s.as_str() < today => {
                bad.push(FieldViolation::new(
                    "draw.window_start",
                    format!("is in the past (today is {today})"),
                ))
            }
            (Some(_), Some(e)) if e.as_str() < today => bad.push(FieldViolation::new(
                "draw.window_end",
                format!("is in the past (today is {today})"),
            )),
            (Some(_), Some(_)) => {}
            _ => bad.push(FieldViolation::new(
                "draw.window_start",
                "window_start and window_end are required",
            )),
        }
        if d.size < 0 {
            bad.push(FieldViolation::new("draw.size", "must not be negative"));
        }
        match d.backups {
            Some(b) if b < 0 => {
                bad.push(FieldViolation::new("draw.backups", "must not be negative"))
            }
            Some(b) => {
                if let Some(p) = policy::backups_problem(b as u32) {
                    bad.push(FieldViolation::new("draw.backups", p));
                }
            }
            None => {}
        }
        if !d.entropy_commitment.is_empty() {
            bad.push(FieldViolation::new(
                "draw.entropy_commitment",
                "leave empty: each party commits with CommitDrawEntropy (R-53)",
            ));
        }
        if d.entropy_source.trim().is_empty() || d.entropy_source.chars().count() > 200 {
            bad.push(FieldViolation::new(
                "draw.entropy_source",
                "say where the entropy will come from (1-200 characters)",
            ));
        }
        let mut needs = Vec::new();
        for (i, s) in d.specialities.iter().enumerate() {
            match cn::industry(&s.speciality) {
                Ok(code) if s.min_members > 0 => needs.push(SpecialityNeed {
                    code,
                    min: s.min_members as u32,
                }),
                Ok(_) => bad.push(FieldViolation::new(
                    format!("draw.specialities[{i}].min_members"),
                    "must be at least 1",
                )),
                Err(e) => bad.push(FieldViolation::new(
                    format!("draw.specialities[{i}].speciality"),
                    e.to_string(),
                )),
            }
        }
        let codes = enterprise_codes(&d.enterprise_codes, "draw.enterprise_codes");
        if let Err(e) = &codes {
            bad.extend(e.violations.clone());
        }
        if !bad.is_empty() {
            return Err(Error::invalid_fields(bad));
        }
        let replaces = if d.replaces_draw.is_empty() {
            String::new()
        } else {
            child(&d.replaces_draw, "draws", "draw.replaces_draw")?.1
        };
        Ok(DrawRequest {
            purpose: purpose.unwrap_or(Purpose::MaterialsGroup),
            start: start.unwrap_or_default(),
            end: end.unwrap_or_default(),
            codes: codes?,
            needs,
            replaces,
        })
    }
}

pub(super) async fn prepare(
    api: &ReviewersApi,
    c: &Caller,
    r: pb::PrepareDrawRequest,
) -> Result<pb::Draw> {
    let programme = programme_id(&r.parent, "parent")?;
    c.acts_for(&programme)?;
    let key = RequestKey::new("PrepareDraw", c, &r.request_id, &r)?;
    let d = r
        .draw
        .as_ref()
        .ok_or_else(|| Error::invalid("draw", "is required"))?;
    let ask = DrawRequest::parse(
        d,
        &qaward_kit::convert::iso_date(qaward_kit::clock::china_date(api.now())),
    )?;
    let id = api.new_id();
    api.change(key, |mut tx| async move {
        let prog = store::get_programme(&mut tx, &programme).await?;
        if let Err((min, max)) = prog.policy.size_allowed(ask.purpose, d.size as u32) {
            let allowed = match max {
                Some(m) => format!("{min}-{m}"),
                None => format!("at least {min}"),
            };
            return Err(Error::invalid(
                "draw.size",
                format!(
                    "a {} has {allowed} reviewers (policy v{})",
                    ask.purpose.as_str().to_lowercase().replace('_', " "),
                    prog.policy_version
                ),
            ));
        }
        // A redraw joins the chain of the draw it names: one live result per chain.
        let chain = if ask.replaces.is_empty() {
            id.clone()
        } else {
            store::get_draw(&mut tx, &programme, &ask.replaces)
                .await?
                .chain
        };
        let needs = prog.policy.needs(ask.needs);
        let need_codes: Vec<String> = needs.iter().map(|n| n.code.clone()).collect();
        let candidates = store::candidate_facts(
            &mut tx,
            &api.registry,
            &programme,
            &need_codes,
            &ask.codes,
            &ask.start,
            &ask.end,
        )
        .await?;
        let load = Load {
            yearly_cap: prog.policy.yearly_cap,
            cooldown_days: prog.policy.cooldown_days,
        };
        // a review is drawn from the year's appointees when the programme has an
        // appointment covering its window.
        let appointees = if ask.purpose.is_review() {
            store::appointees(&mut tx, &programme, &ask.start, &ask.end).await?
        } else {
            None
        };
        let group = Group {
            enterprises: &ask.codes,
            from: &ask.start,
            to: &ask.end,
        };
        let (pool, exclusions) = pool::split(candidates, group, load, appointees.as_deref());
        let prepared = Prepared {
            algorithm: draw::ALGORITHM.into(),
            draw: format!("programmes/{programme}/draws/{id}"),
            programme: format!("programmes/{programme}"),
            purpose: ask.purpose.as_str().into(),
            enterprise_codes: ask.codes.clone(),
            size: d.size as u32,
            backups: match d.backups {
                None => prog.policy.backups_per_draw,
                Some(b) => b as u32,
            },
            specialities: needs,
            leader_required: prog.policy.leader_must_be_qualified && ask.purpose.is_review(),
            window_start: ask.start.clone(),
            window_end: ask.end.clone(),
            policy_version: prog.policy_version as u32,
            entropy_source: d.entropy_source.trim().to_string(),
            entropy_commitment: String::new(),
            replaces_draw: if ask.replaces.is_empty() {
                String::new()
            } else {
                format!("programmes/{programme}/draws/{}", ask.replaces)
            },
            pool,
            pool_hash: String::new(),
            exclusions,
            entropy_parties: entropy::parties(&prog.policy.entropy_parties),
            fixes_public_value: d.fixes_public_value,
            reveal_deadline_micros: entropy::reveal_deadline(
                api.now_micros(),
                prog.policy.reveal_hours,
            ),
        }
        .normalise();
        lifecycle::check_feasible(&prepared)?;
        let text = prepared.to_json();
        let inputs_hash = draw::sha256_hex(text.as_bytes());
        store::insert_draw(
            &mut tx,
            &store::NewDraw {
                id: &id,
                programme: &programme,
                chain: &chain,
                prepared_text: &text,
                inputs_hash: &inputs_hash,
                at: api.now(),
                reveal_deadline_micros: prepared.reveal_deadline_micros,
            },
        )
        .await?;
        let response = draw_pb(&store::get_draw(&mut tx, &programme, &id).await?, false);
        let record = AuditRecord::by(c, "draw.prepare", response.name.clone())
            .with_detail(serde_json::json!({ "inputs_hash": inputs_hash, "pool_hash": prepared.pool_hash, "pool_size": prepared.pool.len(), "replaces": prepared.replaces_draw }));
        Ok(Done::new(tx, record, response))
    })
    .await
}

/// Executes a draw whose parts are all revealed (when the last reveal's own execution did not
/// complete), or answers with the executed draw and its panel: nobody chooses anything here.
pub(super) async fn execute(
    api: &ReviewersApi,
    c: &Caller,
    r: pb::ExecuteDrawRequest,
) -> Result<pb::ExecuteDrawResponse> {
    let (programme, id) = child(&r.name, "draws", "name")?;
    c.acts_for(&programme)?;
    let key = RequestKey::new("ExecuteDraw", c, &r.request_id, &r)?;
    if !r.entropy.is_empty() {
        return Err(Error::invalid(
            "entropy",
            "leave empty: the entropy is the parties' reveals (R-53)",
        ));
    }
    let (programme, id) = (programme.as_str(), id.as_str());
    {
        // Executed already (by its last reveal): the same answer, nothing changes.
        let mut conn = api.db.pool().acquire().await?;
        let d = store::get_draw(&mut conn, programme, id).await?;
        if execution(&d)? == lifecycle::Execution::Done {
            return executed(&mut conn, c, &d).await;
        }
    }
    api.change(key, |mut tx| async move {
        let d = store::lock_draw(&mut tx, programme, id).await?;
        match execution(&d)? {
            lifecycle::Execution::Run(entropy) => seat(api, c, tx, &d, entropy).await,
            lifecycle::Execution::Done => Err(lifecycle::executed_meanwhile()),
        }
    })
    .await
}

/// What executing the stored draw `d` comes to.
fn execution(d: &store::DrawRow) -> Result<lifecycle::Execution> {
    lifecycle::may_execute(
        d.state,
        &d.prepared,
        &d.inputs_hash,
        &d.parts,
        d.public_value.as_deref(),
    )
}

/// The executed draw and its panel, as ExecuteDraw answers.
async fn executed(
    tx: &mut qaward_kit::db::Conn,
    c: &Caller,
    d: &store::DrawRow,
) -> Result<pb::ExecuteDrawResponse> {
    let draw = draw_pb(d, false);
    let panel = match &d.panel_id {
        Some(p) => Some(panel_pb(
            &store::get_panel(tx, &d.programme_id, p).await?,
            c,
        )),
        None => None,
    };
    Ok(pb::ExecuteDrawResponse {
        draw: Some(draw),
        panel,
    })
}

/// Runs the draw with `entropy` and seats its panel in `tx`, superseding the rest of its chain
/// a draw that cannot be made fails on the record instead, never silently retried. What
/// was stored in `tx` before (the last reveal) is kept either way.
pub(super) async fn seat(
    api: &ReviewersApi,
    c: &Caller,
    mut tx: qaward_kit::db::Tx,
    d: &store::DrawRow,
    entropy: String,
) -> Result<Done<pb::ExecuteDrawResponse>> {
    let (programme, id) = (d.programme_id.as_str(), d.id.as_str());
    let p = &d.prepared;
    let now = api.now();
    let entropy = entropy.as_str();
    // A failed attempt is recorded, never silently retried.
    let fail = |tx: qaward_kit::db::Tx, why: String| async move {
        let mut tx = tx;
        store::set_parts(&mut tx, id, &d.parts).await?;
        store::fail_draw(&mut tx, id, Some(entropy), &why, now).await?;
        let record = AuditRecord::by(c, "draw.fail", format!("programmes/{programme}/draws/{id}"))
            .because(why);
        change::commit(&api.db, tx, now, &None, record, &()).await
    };
    let outcome = match draw::execute_hashed(p, &d.inputs_hash, entropy) {
        Ok(o) => o,
        Err(shortage) => {
            fail(tx, shortage.message()).await?;
            return Err(lifecycle::infeasible(&shortage));
        }
    };
    // The chain's other draws give way first: their panels' bookings are released
    // before this one books, and the database keeps one executed draw per chain.
    let superseded = store::supersede_chain(
        &mut tx,
        &d.chain,
        id,
        &format!("superseded by programmes/{programme}/draws/{id}"),
    )
    .await?;
    let respond_by = panel::respond_by(now);
    let seated = Panel::seat(id, programme, id, p, &outcome, respond_by);
    store::insert_panel(&mut tx, &seated).await?;
    // An appointment books no days and reviews no one; a review does both.
    let window = if seated.is_review() {
        eligibility::days(&p.window_start, &p.window_end)
    } else {
        Vec::new()
    };
    // Booked in one order — reviewer, then day — whatever the draw order, so two draws
    // executing at once meet on the same first row: one waits and then finds it taken,
    // instead of each holding a row the other needs (a deadlock).
    let mut booking: Vec<&String> = outcome
        .members
        .iter()
        .filter(|_| seated.is_review())
        .collect();
    booking.sort();
    for m in booking {
        if let Err(e) = store::book(&mut tx, m, &window, id).await {
            // Another draw booked this reviewer after our pool was fixed.
            drop(tx);
            fail(api.db.begin().await?, e.message.clone()).await?;
            return Err(e);
        }
        store::assign(&mut tx, m, &seated).await?;
    }
    match store::complete_draw(&mut tx, id, entropy, &outcome, id, now).await {
        Ok(true) => {}
        Ok(false) => return Err(lifecycle::executed_meanwhile()),
        // Another draw of the chain was executed at the same moment: the index refused us.
        Err(e) if e.code == qaward_kit::ErrorCode::AlreadyExists => {
            return Err(lifecycle::superseded());
        }
        Err(e) => return Err(e),
    }
    let draw = draw_pb(&store::get_draw(&mut tx, programme, id).await?, false);
    let stored = store::get_panel(&mut tx, programme, &seated.id).await?;
    let superseded: Vec<String> = superseded
        .iter()
        .map(|(d, _)| format!("programmes/{programme}/draws/{d}"))
        .collect();
    if !superseded.is_empty() {
        events::publish(
            &mut tx,
            now,
            programme,
            pb::reviewers_event::Kind::DrawSuperseded(pb::DrawSuperseded {
                superseded: superseded.clone(),
                panel: Some(events::members(&stored)),
            }),
        )
        .await?;
    }
    let panel = panel_pb(&stored, c);
    let record = AuditRecord::by(c, "draw.execute", draw.name.clone())
        .with_detail(serde_json::json!({ "entropy": entropy, "members": outcome.members, "leader": outcome.leader, "backups": outcome.backups, "superseded": superseded }));
    let response = pb::ExecuteDrawResponse {
        draw: Some(draw),
        panel: Some(panel),
    };
    Ok(Done::new(tx, record, response))
}

pub(super) async fn get(api: &ReviewersApi, c: &Caller, r: pb::GetDrawRequest) -> Result<pb::Draw> {
    let (programme, id) = child(&r.name, "draws", "name")?;
    c.acts_for(&programme)?;
    let mut conn = api.db.pool().acquire().await?;
    Ok(draw_pb(
        &store::get_draw(&mut conn, &programme, &id).await?,
        false,
    ))
}

pub(super) async fn list(
    api: &ReviewersApi,
    c: &Caller,
    r: pb::ListDrawsRequest,
) -> Result<pb::ListDrawsResponse> {
    let programme = programme_id(&r.parent, "parent")?;
    c.acts_for(&programme)?;
    let page = Page::parse(r.page_size, &r.page_token)?;
    let mut rows = store::list_draws(&api.db, &programme, &page).await?;
    let next_page_token = page.finish(&mut rows, |d| d.id.clone());
    Ok(pb::ListDrawsResponse {
        draws: rows.iter().map(|d| draw_pb(d, false)).collect(),
        next_page_token,
    })
}

pub(super) async fn verify(
    api: &ReviewersApi,
    c: &Caller,
    r: pb::VerifyDrawRequest,
) -> Result<pb::VerifyDrawResponse> {
    let (programme, id) = child(&r.name, "draws", "name")?;
    c.acts_for(&programme)?;
    let mut conn = api.db.pool().acquire().await?;
    let d = store::get_draw(&mut conn, &programme, &id).await?;
    Ok(super::replay::verify(&super::replay::Recorded {
        prepared_text: &d.prepared_text,
        inputs_hash: &d.inputs_hash,
        entropy: d.entropy.as_deref(),
        outcome: d.outcome.as_ref(),
        parts: &d.parts,
        public_value: d.public_value.as_deref(),
    }))
}
