//! Re-checks of the feedback report: the applicant asks within the programme's window,
//! the office answers with its reasons, each told in its inbox. The rules are
//! `domain::recheck`.

use qaward_kit::{
    Error, Result,
    audit::AuditRecord,
    auth::Caller,
    change::Done,
    clock::{to_timestamp, unix_micros},
    convert::{date_to_pb, iso_date, parse_iso_date},
    error::FieldViolation,
    idempotency::RequestKey,
    notify,
};
use qaward_proto::qaward::applications::v1 as pb;

use crate::{
    domain::{recheck, refused},
    store::{self, ApplicationRow, RecheckRow, stage_of},
};

use super::{
    ApplicationsApi,
    convert::{china_date, notice},
    is_enterprise,
    names::{application_name, application_resource},
};

impl ApplicationsApi {
    pub(super) async fn recheck_request(
        &self,
        c: &Caller,
        r: pb::RequestRecheckRequest,
    ) -> Result<pb::Recheck> {
        let (p, y, code) = application_name(&r.parent, "parent")?;
        if !is_enterprise(c, code.as_str()) {
            return Err(Error::permission_denied(
                "an applicant asks for a re-check of its own report",
            ));
        }
        let reason = r
            .recheck
            .as_ref()
            .map(|x| x.reason.trim().to_string())
            .unwrap_or_default();
        if reason.is_empty() || reason.chars().count() > 2_000 {
            return Err(Error::invalid_fields(vec![FieldViolation::new(
                "recheck.reason",
                "must be 1-2000 characters",
            )]));
        }
        let key = RequestKey::new("RequestRecheck", c, &r.request_id, &r)?;
        let now = self.now();
        self.change(key, |mut tx| async move {
            let row =
                store::get_application(&mut tx, &ApplicationRow::key(&p, y, code.as_str())).await?;
            let cycle = store::get_cycle(&mut tx, &p, y).await?;
            let settings = store::settings_version(&mut tx, &p, cycle.settings_version).await?;
            // MATERIALS_FAILED is final: the row last changed when the materials were decided.
            let end =
                recheck::window_end(china_date(row.updated_micros), settings.recheck_window_days);
            let already = store::get_recheck(&mut tx, &row.id).await?.is_some();
            recheck::may_request(stage_of(&row)?, china_date(unix_micros(now)), end, already)
                .map_err(refused)?;
            let stored = RecheckRow {
                application_id: row.id.clone(),
                reason: reason.clone(),
                requested_by: c.identity(),
                requested_micros: unix_micros(now),
                window_end: iso_date(end),
                outcome: "PENDING".into(),
                decision_reasons: String::new(),
                decided_micros: None,
            };
            store::insert_recheck(&mut tx, &stored).await?;
            let e = store::get_enterprise(&mut tx, code.as_str()).await?;
            let resource = application_resource(&row);
            notify::enqueue(
                &mut tx,
                now,
                &notice(
                    "recheck.requested",
                    &format!("office.{p}"),
                    "",
                    &[
                        ("enterprise_name", e.display_name.clone()),
                        ("application", resource.clone()),
                        ("reason", reason.clone()),
                    ],
                ),
            )
            .await?;
            let response = recheck_pb(&resource, &stored);
            let record = AuditRecord::by(c, "application.recheck_requested", resource)
                .because("R-13")
                .with_detail(
                    serde_json::json!({ "reason": reason, "window_end": stored.window_end }),
                );
            Ok(Done::new(tx, record, response))
        })
        .await
    }

    pub(super) async fn recheck_decide(
        &self,
        c: &Caller,
        r: pb::DecideRecheckRequest,
    ) -> Result<pb::Recheck> {
        let parent = r.name.strip_suffix("/recheck").ok_or_else(|| {
            Error::invalid(
                "name",
                "must be programmes/{p}/cycles/{c}/applications/{a}/recheck",
            )
        })?;
        let (p, y, code) = application_name(parent, "name")?;
        c.acts_for(&p)?;
        let mut bad = Vec::new();
        let outcome = match pb::RecheckOutcome::try_from(r.outcome) {
            Ok(pb::RecheckOutcome::Confirmed) => "CONFIRMED",
            Ok(pb::RecheckOutcome::Upheld) => "UPHELD",
            _ => {
                bad.push(FieldViolation::new(
                    "outcome",
                    "must be CONFIRMED or UPHELD",
                ));
                ""
            }
        };
        let reasons = r.reasons.trim().to_string();
        if reasons.is_empty() || reasons.chars().count() > 2_000 {
            bad.push(FieldViolation::new("reasons", "must be 1-2000 characters"));
        }
        if !bad.is_empty() {
            return Err(Error::invalid_fields(bad));
        }
        let key = RequestKey::new("DecideRecheck", c, &r.request_id, &r)?;
        let now = self.now();
        self.change(key, |mut tx| async move {
            let row =
                store::get_application(&mut tx, &ApplicationRow::key(&p, y, code.as_str())).await?;
            let mut stored = store::get_recheck(&mut tx, &row.id)
                .await?
                .ok_or_else(|| Error::not_found(r.name.clone()))?;
            recheck::may_decide(stored.outcome == "PENDING").map_err(refused)?;
            stored.outcome = outcome.to_string();
            stored.decision_reasons = reasons.clone();
            stored.decided_micros = Some(unix_micros(now));
            if !store::decide_recheck(&mut tx, &stored).await? {
                return Err(refused(recheck::may_decide(false).unwrap_err()));
            }
            let e = store::get_enterprise(&mut tx, code.as_str()).await?;
            notify::enqueue(
                &mut tx,
                now,
                &notice(
                    "recheck.decided",
                    code.as_str(),
                    &e.display_name,
                    &[
                        ("enterprise_name", e.display_name.clone()),
                        (
                            "outcome",
                            if outcome == "UPHELD" {
                                "复核成立"
                            } else {
                                "维持原评审结论"
                            }
                            .into(),
                        ),
                        ("reasons", reasons.clone()),
                    ],
                ),
            )
            .await?;
            let resource = application_resource(&row);
            let response = recheck_pb(&resource, &stored);
            let record = AuditRecord::by(c, "application.recheck_decided", resource)
                .because("R-13")
                .with_detail(serde_json::json!({ "outcome": outcome, "reasons": reasons }));
            Ok(Done::new(tx, record, response))
        })
        .await
    }
}

fn recheck_pb(application: &str, r: &RecheckRow) -> pb::Recheck {
    let outcome = match r.outcome.as_str() {
        "PENDING" => pb::RecheckOutcome::Pending,
        "CONFIRMED" => pb::RecheckOutcome::Confirmed,
        "UPHELD" => pb::RecheckOutcome::Upheld,
        _ => pb::RecheckOutcome::Unspecified,
    };
    pb::Recheck {
        name: format!("{application}/recheck"),
        reason: r.reason.clone(),
        outcome: outcome as i32,
        decision_reasons: r.decision_reasons.clone(),
        request_time: Some(to_timestamp(r.requested_micros)),
        decide_time: r.decided_micros.map(to_timestamp),
        window_end: parse_iso_date(&r.window_end).map(date_to_pb),
    }
}
