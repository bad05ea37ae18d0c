//! A draw's entropy from its parties: commitments, the public value, reveals — and the
//! last reveal executes the draw, so once every part is in nobody chooses when or whether. The
//! rules are [`crate::domain::entropy`]; a draw still missing a part at its deadline fails on
//! the record ([`fail_overdue_draws`]).

use qaward_kit::{
    Error, Result,
    audit::{self, AuditRecord},
    auth::Caller,
    change::Done,
    clock::unix_micros,
    db::Database,
    idempotency::RequestKey,
};
use qaward_proto::qaward::reviewers::v1 as pb;

use super::{ReviewersApi, convert::draw_pb, draws, names::child};
use crate::{
    domain::{
        entropy::{self, Part, Step},
        lifecycle,
    },
    store,
};

fn party_of(party: &str) -> Result<String> {
    let party = party.trim();
    if party.is_empty() || party.len() > 32 {
        return Err(Error::invalid(
            "party",
            "name the part you take, as the draw lists it (\"supervisor\")",
        ));
    }
    Ok(party.to_ascii_lowercase())
}

pub(super) async fn commit(
    api: &ReviewersApi,
    c: &Caller,
    r: pb::CommitDrawEntropyRequest,
) -> Result<pb::Draw> {
    let (programme, id) = child(&r.name, "draws", "name")?;
    c.acts_for(&programme)?;
    let key = RequestKey::new("CommitDrawEntropy", c, &r.request_id, &r)?;
    let party = party_of(&r.party)?;
    let commitment = r.commitment.trim().to_ascii_lowercase();
    if let Some(p) = entropy::commitment_problem(&commitment) {
        return Err(Error::invalid("commitment", p));
    }
    let (programme, id) = (programme.as_str(), id.as_str());
    let (party, commitment) = (party.as_str(), commitment.as_str());
    api.change(key, |mut tx| async move {
        let mut d = store::lock_draw(&mut tx, programme, id).await?;
        lifecycle::accepts_parts(d.state)?;
        let now = api.now_micros();
        let who = (c.role.as_str(), c.identity());
        entropy::may_commit(&d.prepared, &d.parts, now, (who.0, &who.1), party)?;
        d.parts.push(Part {
            party: party.to_string(),
            subject: who.1,
            commitment: commitment.to_string(),
            committed_micros: now,
            secret: None,
            revealed_micros: None,
        });
        store::set_parts(&mut tx, id, &d.parts).await?;
        let draw = draw_pb(&store::get_draw(&mut tx, programme, id).await?, false);
        let record = AuditRecord::by(c, "draw.commit", draw.name.clone())
            .because("R-53")
            .with_detail(serde_json::json!({ "party": party, "commitment": commitment }));
        Ok(Done::new(tx, record, draw))
    })
    .await
}

pub(super) async fn fix_public_value(
    api: &ReviewersApi,
    c: &Caller,
    r: pb::FixDrawPublicValueRequest,
) -> Result<pb::Draw> {
    let (programme, id) = child(&r.name, "draws", "name")?;
    c.acts_for(&programme)?;
    let key = RequestKey::new("FixDrawPublicValue", c, &r.request_id, &r)?;
    let value = r.public_value.trim();
    if value.is_empty() || value.chars().count() > 200 {
        return Err(Error::invalid(
            "public_value",
            "1-200 characters: the dice, or the beacon round's output",
        ));
    }
    let (programme, id) = (programme.as_str(), id.as_str());
    api.change(key, |mut tx| async move {
        let d = store::lock_draw(&mut tx, programme, id).await?;
        lifecycle::accepts_parts(d.state)?;
        entropy::may_fix_public_value(
            &d.prepared,
            &d.parts,
            d.public_value.as_deref(),
            api.now_micros(),
        )?;
        store::set_public_value(&mut tx, id, value).await?;
        let draw = draw_pb(&store::get_draw(&mut tx, programme, id).await?, false);
        let record = AuditRecord::by(c, "draw.public_value", draw.name.clone())
            .because("R-53")
            .with_detail(
                serde_json::json!({ "public_value": value, "source": d.prepared.entropy_source }),
            );
        Ok(Done::new(tx, record, draw))
    })
    .await
}

pub(super) async fn reveal(
    api: &ReviewersApi,
    c: &Caller,
    r: pb::RevealDrawEntropyRequest,
) -> Result<pb::RevealDrawEntropyResponse> {
    let (programme, id) = child(&r.name, "draws", "name")?;
    c.acts_for(&programme)?;
    let key = RequestKey::new("RevealDrawEntropy", c, &r.request_id, &r)?;
    let party = party_of(&r.party)?;
    let secret = r.secret.trim().to_ascii_lowercase();
    if let Some(p) = entropy::secret_problem(&secret) {
        return Err(Error::invalid("secret", p));
    }
    let (programme, id) = (programme.as_str(), id.as_str());
    let (party, secret) = (party.as_str(), secret.as_str());
    api.change(key, |mut tx| async move {
        let mut d = store::lock_draw(&mut tx, programme, id).await?;
        lifecycle::accepts_parts(d.state)?;
        let now = api.now_micros();
        entropy::may_reveal(
            &d.prepared,
            &d.parts,
            d.public_value.as_deref(),
            now,
            &c.identity(),
            (party, secret),
        )?;
        if let Some(p) = d.parts.iter_mut().find(|p| p.party == party) {
            p.secret = Some(secret.to_string());
            p.revealed_micros = Some(now);
        }
        store::set_parts(&mut tx, id, &d.parts).await?;
        let name = format!("programmes/{programme}/draws/{id}");
        let record = AuditRecord::by(c, "draw.reveal", name)
            .because("R-53")
            .with_detail(serde_json::json!({ "party": party, "secret": secret }));
        let pv = d.public_value.as_deref();
        if entropy::step(&d.prepared, &d.parts, pv) != Step::Execute {
            let draw = draw_pb(&store::get_draw(&mut tx, programme, id).await?, false);
            let response = pb::RevealDrawEntropyResponse {
                draw: Some(draw),
                panel: None,
            };
            return Ok(Done::new(tx, record, response));
        }
        // The last part: the draw executes now, with the entropy of every part.
        audit::append(&mut tx, api.now(), &record).await?;
        let value = entropy::entropy_of(&d.prepared, &d.inputs_hash, &d.parts, pv)
            .map_err(Error::internal)?;
        let done = draws::seat(api, c, tx, &d, value).await?;
        Ok(Done::new(
            done.tx,
            done.record,
            pb::RevealDrawEntropyResponse {
                draw: done.response.draw,
                panel: done.response.panel,
            },
        ))
    })
    .await
}

/// Fails on the record every prepared draw still missing a part at its deadline, naming
/// whose part it was; returns how many. Run every minute by the service, and by tests.
pub async fn fail_overdue_draws(
    db: &Database,
    now: time::OffsetDateTime,
    issuer: &str,
) -> Result<usize> {
    let mut failed = 0;
    for (programme, id) in store::overdue_draws(db, unix_micros(now), 100).await? {
        let mut tx = db.begin().await?;
        let d = store::lock_draw(&mut tx, &programme, &id).await?;
        let pv = d.public_value.as_deref();
        // A draw with every part in is left to ExecuteDraw: nothing in it is missing.
        if d.state != lifecycle::DrawState::Prepared
            || entropy::step(&d.prepared, &d.parts, pv) == Step::Execute
        {
            continue;
        }
        let why = entropy::missing(&d.prepared, &d.parts, pv);
        if !store::fail_draw(&mut tx, &id, None, &why, now).await? {
            continue;
        }
        let resource = format!("programmes/{programme}/draws/{id}");
        let record = AuditRecord::by_service(issuer, "reviewers", "draw.fail", resource)
            .because(why)
            .with_detail(
                serde_json::json!({ "deadline_micros": d.prepared.reveal_deadline_micros }),
            );
        audit::append(&mut tx, now, &record).await?;
        tx.commit().await?;
        failed += 1;
    }
    Ok(failed)
}
