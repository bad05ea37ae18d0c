//! The public notice. Complaints and tip-offs are `complaints.rs`.

use qaward_kit::{
    Error, Result,
    audit::AuditRecord,
    auth::Caller,
    change,
    change::Done,
    clock::{to_timestamp, unix_micros},
    convert::chinese_date,
    db::Conn,
    idempotency::RequestKey,
    notify,
};
use qaward_proto::qaward::{applications::v1 as pb, notifications::v1 as npb};

use crate::{
    domain::{
        cycle::CycleState,
        refused, selection,
        stage::{Stage, Step},
    },
    store,
};

use super::{
    ApplicationsApi,
    consultation::move_by,
    convert::{china_date, notice},
    names::{application_resource, cycle_id},
};

impl ApplicationsApi {
    pub(super) async fn selection_open_notice(
        &self,
        c: &Caller,
        r: pb::OpenPublicNoticeRequest,
    ) -> Result<pb::PublicNotice> {
        let (p, y) = cycle_id(&r.cycle, "cycle")?;
        c.acts_for(&p)?;
        let key = RequestKey::new("OpenPublicNotice", c, &r.request_id, &r)?;
        // A retry is answered before the state it reads below has moved on (AIP-155).
        let mut notice = match change::recall(self.db(), &key).await? {
            Some(done) => done,
            None => self.open_notice_once(c, key, &r, &p, y).await?,
        };
        // Issue 22, item 3: the notice names a signed checkpoint that includes its opening
        // (kept once: a retry prints the same).
        notice.audit_checkpoints = self.decision_checkpoints(c, &notice.name).await?;
        Ok(notice)
    }

    async fn open_notice_once(
        &self,
        c: &Caller,
        key: Option<RequestKey>,
        r: &pb::OpenPublicNoticeRequest,
        p: &str,
        y: i64,
    ) -> Result<pb::PublicNotice> {
        let (p, y) = (p.to_string(), y);
        let candidates = self.all_in(&p, y, Stage::Candidate).await?;
        selection::may_publish(candidates.len()).map_err(refused)?;
        let now = self.now();
        let notice = self
            .change(key, |mut tx| async move {
                // every consulted department answered, every objection decided.
                let mut open = Vec::new();
                for row in &candidates {
                    let asked = store::consultations_of(&mut tx, &row.id).await?;
                    if asked.is_empty() {
                        open.push(format!("{}（未征求意见）", application_resource(row)));
                    }
                    for a in asked.iter().filter(|a| {
                        a.opinion.is_empty() || (a.opinion == "OBJECT" && a.decision.is_empty())
                    }) {
                        open.push(format!("{}（{}）", application_resource(row), a.department));
                    }
                }
                selection::consultation_done(&open).map_err(refused)?;
                let mut cycle = store::get_cycle(&mut tx, &p, y).await?;
                let settings = store::settings_version(&mut tx, &p, cycle.settings_version).await?;
                let ends = selection::notice_ends(now, &settings);
                store::insert_public_notice(&mut tx, &p, y, unix_micros(now), unix_micros(ends))
                    .await
                    .map_err(|_| Error::already_exists(format!("{}/publicNotice", r.cycle)))?;
                let programme = store::get_programme(&mut tx, &p).await?;
                let mut names = Vec::new();
                for row in &candidates {
                    let mut row = row.clone();
                    move_by(&mut tx, c, now, &mut row, &Step::OpenPublicNotice).await?;
                    names.push(
                        store::get_enterprise(&mut tx, &row.credit_code)
                            .await?
                            .display_name,
                    );
                }
                cycle.state = CycleState::PublicNotice;
                store::set_cycle_state(&mut tx, &cycle).await?;
                let when = |t: time::OffsetDateTime| chinese_date(china_date(unix_micros(t)));
                let mut n = notice(
                    "public_notice.opened",
                    &candidates[0].credit_code,
                    "",
                    &[
                        ("programme_name", programme.display_name.clone()),
                        ("year", y.to_string()),
                        ("candidates", names.join("、")),
                        ("notice_start", when(now)),
                        ("notice_end", when(ends)),
                        ("notice_url", format!("/v1/{}/publicNotice", r.cycle)),
                    ],
                );
                n.recipients = candidates
                    .iter()
                    .map(|row| npb::Recipient {
                        id: row.credit_code.clone(),
                        ..Default::default()
                    })
                    .collect();
                notify::enqueue(&mut tx, now, &n).await?;
                let response = self.notice_pb(&mut tx, &p, y).await?;
                let record = AuditRecord::by(c, "cycle.open_public_notice", response.name.clone())
                    .because("R-21")
                    .with_detail(serde_json::json!({ "ends_micros": unix_micros(ends) }));
                Ok(Done::new(tx, record, response))
            })
            .await
            .map(|mut notice| {
                notice.audit_checkpoints.clear();
                notice
            })?;
        // Issue 22, item 3: the notice names a signed checkpoint that includes its opening.
        let mut notice = notice;
        notice.audit_checkpoints = self.decision_checkpoints(c, &notice.name).await?;
        Ok(notice)
    }

    pub(super) async fn notice_pb(
        &self,
        conn: &mut Conn,
        p: &str,
        y: i64,
    ) -> Result<pb::PublicNotice> {
        let name = format!("programmes/{p}/cycles/{y}/publicNotice");
        let (start, end) = store::public_notice(conn, p, y)
            .await?
            .ok_or_else(|| Error::not_found(name.clone()))?;
        let mut entries = Vec::new();
        for stage in [Stage::PublicNotice, Stage::Awarded] {
            for row in store::applications_in(conn, p, y, stage.as_str()).await? {
                let e = store::get_enterprise(conn, &row.credit_code).await?;
                let k = store::candidacy(conn, &row.id).await?.unwrap_or_default();
                let dec = |v: &str| {
                    Some(qaward_proto::qaward::common::v1::Decimal {
                        value: v.to_string(),
                    })
                };
                let score = |k2: &str| k.scores[k2].as_str().and_then(dec);
                entries.push(pb::NoticeEntry {
                    application: application_resource(&row),
                    enterprise_name: e.display_name,
                    organisation_profile: row.organisation_profile.clone(),
                    composite_score: dec(&k.composite),
                    rank: k.rank as i32,
                    materials_score: score("materials"),
                    site_score: score("site"),
                    review_score: score("review"),
                    defence_score: score("defence"),
                });
            }
        }
        entries.sort_by_key(|e| e.rank);
        Ok(pb::PublicNotice {
            name,
            start_time: Some(to_timestamp(start)),
            end_time: Some(to_timestamp(end)),
            entries,
            audit_checkpoints: Vec::new(),
        })
    }

    pub(super) async fn selection_get_notice(
        &self,
        caller: &Caller,
        r: pb::GetPublicNoticeRequest,
    ) -> Result<pb::PublicNotice> {
        let name = &r.name;
        let cycle = name.strip_suffix("/publicNotice").ok_or_else(|| {
            Error::invalid("name", "must be programmes/{p}/cycles/{year}/publicNotice")
        })?;
        let (p, y) = cycle_id(cycle, "name")?;
        // Published to everyone, the public role included.
        let mut conn = self.db().pool().acquire().await?;
        let mut notice = self.notice_pb(&mut conn, &p, y).await?;
        drop(conn);
        // Taken as it opened; here only if the process stopped between the two.
        notice.audit_checkpoints = self.decision_checkpoints(caller, &notice.name).await?;
        Ok(notice)
    }
}
