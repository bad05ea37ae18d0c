//! The cycle's exported record: everything an auditor needs, in one document.

use qaward_kit::{
    Error, Result, audit,
    auth::{Caller, relay_token},
    clock::{to_timestamp, unix_micros},
    paging::Page,
};
use qaward_proto::qaward::{applications::v1 as pb, reviewers::v1 as rpb};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tonic::Request;

use crate::store;

use super::{
    ApplicationsApi,
    names::{application_resource, cycle_id},
    upstream,
};

impl ApplicationsApi {
    pub(super) async fn export_cycle(
        &self,
        c: &Caller,
        r: pb::ExportCycleRecordRequest,
    ) -> Result<pb::CycleRecordArchive> {
        let name = r.name.clone();
        let (p, y) = cycle_id(&name, "name")?;
        c.acts_for(&p)?;
        let now = self.now();
        let mut conn = self.db().pool().acquire().await?;
        let cycle = store::get_cycle(&mut conn, &p, y).await?;
        let settings = store::settings_version(&mut conn, &p, cycle.settings_version).await?;
        let mut applications = Vec::new();
        for a in store::applications_in(&mut conn, &p, y, "").await? {
            let recs = store::recommendations_of(&mut conn, &a.id).await?;
            let evidence = store::evidence_of(&mut conn, &a.id).await?;
            let consultations = store::consultations_of(&mut conn, &a.id).await?;
            let complaints = store::complaints_of(
                &mut conn,
                &a.id,
                &Page::parse(qaward_kit::paging::MAX_PAGE_SIZE as i32, "")?,
            )
            .await?;
            applications.push(json!({
                "name": application_resource(&a),
                "enterprise": a.credit_code,
                "stage": a.stage,
                "submitted_micros": a.submitted_micros,
                "last_decision": {
                    "rule": a.last_rule, "reason": a.last_reason, "message": a.last_message,
                    "inputs": serde_json::from_str::<Value>(&a.last_inputs).unwrap_or(Value::Null),
                },
                "recommendations": recs.iter().map(|r| json!({
                    "unit": r.unit, "opinion": r.opinion, "reasons": r.reasons,
                    "attested": r.attested, "signed_micros": r.signed_micros,
                })).collect::<Vec<_>>(),
                "evidence": evidence.iter().map(|e| json!({
                    "file_name": e.file_name, "content_type": e.content_type,
                    "size_bytes": e.size_bytes, "sha256": e.sha256,
                    "kind": e.kind, "issued_by": e.issued_by,
                })).collect::<Vec<_>>(),
                "site_visit_stopped": store::site_stop(&mut conn, &a.id).await?,
                "candidacy": store::candidacy(&mut conn, &a.id).await?
                    .map(|k| json!({ "composite": k.composite, "rank": k.rank, "scores": k.scores })),
                "consultations": consultations.iter().map(|x| json!({
                    "department": x.department, "deadline": x.deadline, "opinion": x.opinion,
                    "text": x.text, "decision": x.decision, "decision_reason": x.decision_reason,
                    "late": x.late,
                })).collect::<Vec<_>>(),
                "complaints": complaints.iter().map(|x| json!({
                    // The filer's identity is the office's alone (Art. 6(5)).
                    "id": x.id, "complainant": if crate::domain::selection::filer_shown_to(c.role) { x.complainant.as_str() } else { "" },
                    "text": x.text, "reviewer": x.reviewer, "owner": x.owner,
                    "case_number": x.case_number, "kind": x.kind,
                    "evidence": x.evidence, "outcome": x.outcome,
                    "investigation": x.investigation, "created_micros": x.created_micros,
                })).collect::<Vec<_>>(),
                "committee_adopted": store::adopted(&mut conn, &a.id).await?,
                "award": store::award_of(&mut conn, &a.id).await?
                    .map(|(certificate, date)| json!({ "certificate_number": certificate, "award_date": date })),
            }));
        }
        let groups = store::list_review_groups(
            &mut conn,
            &p,
            y,
            &Page::parse(qaward_kit::paging::MAX_PAGE_SIZE as i32, "")?,
        )
        .await?;
        let mut review_groups = Vec::new();
        for g in &groups {
            let mut get = Request::new(rpb::GetDrawRequest {
                name: g.draw.clone(),
            });
            relay_token(c, &mut get);
            let draw = self
                .reviewers()
                .get_draw(get)
                .await
                .map_err(upstream("reviewers"))?
                .into_inner();
            review_groups.push(json!({
                "id": g.id, "stage": g.stage, "state": g.state.as_str(),
                "window": [g.window_start, g.window_end],
                "applications": g.applications.iter().map(|(a, _)| a).collect::<Vec<_>>(),
                "assignments": g.applications.iter().map(|(_, s)| s).collect::<Vec<_>>(),
                "advisors": g.advisors,
                "members": g.members.iter().map(|(m, leader)| json!({ "reviewer": m, "leader": leader })).collect::<Vec<_>>(),
                "draw": g.draw,
                "draw_record": serde_json::from_str::<Value>(&draw.record_json).unwrap_or(Value::Null),
            }));
        }
        let results = self.scoring_results(c, &p, y, &settings).await?;
        let results: Vec<Value> = results
            .results
            .iter()
            .map(|r| {
                let dec = |d: &Option<qaward_proto::qaward::common::v1::Decimal>| {
                    d.as_ref().map(|d| d.value.clone())
                };
                json!({
                    "application": r.application, "materials": dec(&r.materials_score),
                    "site": dec(&r.site_score), "review": dec(&r.review_score),
                    "defence": dec(&r.defence_score), "composite": dec(&r.composite_score),
                    "rank": r.rank,
                    "explanations": r.explanations.iter().map(|e| json!({
                        "rule": e.rule, "message": e.message, "inputs": e.inputs,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        // each member unit's ballot, with its representative and every vote.
        let ballots: Vec<Value> = store::ballots(&mut conn, &p, y)
            .await?
            .iter()
            .map(|b| {
                json!({
                    "unit": b.unit, "representative": b.representative,
                    "cast_micros": b.cast_micros,
                    "votes": b.votes.iter().map(|v| json!({
                        "enterprise": v.credit_code, "vote": v.vote, "note": v.note,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        // Verified first: verifying chains the records committed so far, so the trail read
        // next holds every change up to this export.
        let intact = matches!(
            audit::verify(self.db()).await?,
            audit::Verdict::Intact { .. }
        );
        let trail = audit::entries_under(&mut conn, &name).await?;
        let document = json!({
            "cycle": {
                "name": name, "year": y, "state": cycle.state.as_str(),
                "notice_title": cycle.notice_title, "deadline_micros": cycle.deadline_micros,
                "settings_version": cycle.settings_version,
                "approval_document": cycle.approval_document, "approval_date": cycle.approval_date,
            },
            "settings": settings,
            "applications": applications,
            "review_groups": review_groups,
            "results": results,
            "committee_ballots": ballots,
            "audit": {
                "chain_intact": intact,
                "entries": trail.iter().map(|e| json!({
                    "seq": e.seq, "at_micros": e.at_micros, "actor": e.record.actor,
                    "role": e.record.role, "action": e.record.action,
                    "resource": e.record.resource, "reason": e.record.reason,
                    "detail": e.record.detail, "hash": e.hash,
                })).collect::<Vec<_>>(),
            },
            "exported_micros": unix_micros(now),
        });
        let archive = serde_json::to_vec_pretty(&document).map_err(Error::internal)?;
        Ok(pb::CycleRecordArchive {
            sha256: hex::encode(Sha256::digest(&archive)),
            name,
            archive,
            export_time: Some(to_timestamp(unix_micros(now))),
        })
    }
}
