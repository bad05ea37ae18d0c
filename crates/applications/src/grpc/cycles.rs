//! Cycles: a year of the award opened by its notice, and the eligibility check an
//! enterprise can run against it.

use qaward_kit::{
    Error, Result,
    audit::AuditRecord,
    auth::{Caller, Role},
    change,
    change::Done,
    clock::unix_micros,
    cn::CreditCode,
    convert::{parse_iso_date, timestamp_from_pb},
    error::FieldViolation,
    idempotency::RequestKey,
    names::programme_id,
    paging::Page,
};
use qaward_proto::qaward::applications::v1 as pb;
use tonic::{Request, Response, Status};

use crate::{
    domain::{self, cycle::CycleState, eligibility},
    store::{self, CycleRow, EnterpriseRow},
};

use super::{
    ApplicationsApi, caller,
    convert::{china_date, cycle_pb, explanation_pb, line},
    is_enterprise,
    names::{cycle_id, enterprise_code},
};

/// Every reason `e` may not apply to `cycle`, from the cycle's pinned settings and the
/// enterprise's records.
pub(crate) async fn eligibility_of(
    conn: &mut qaward_kit::db::Conn,
    code: &CreditCode,
    e: &EnterpriseRow,
    cycle: &CycleRow,
) -> Result<Vec<domain::Explanation>> {
    let programme = &cycle.programme_id;
    let settings = store::settings_version(conn, programme, cycle.settings_version).await?;
    let mut dates = Vec::new();
    for kind in ["award", "revocation", "fraud"] {
        let v = store::record_dates(conn, code.as_str(), programme, kind).await?;
        dates.push(
            v.iter()
                .filter_map(|d| parse_iso_date(d))
                .collect::<Vec<_>>(),
        );
    }
    let facts = eligibility::Facts {
        credit_code: Some(code),
        established: parse_iso_date(&e.established_date),
        awards: &dates[0],
        revocations: &dates[1],
        fraud_findings: &dates[2],
    };
    Ok(eligibility::check(
        &facts,
        &settings,
        china_date(cycle.deadline_micros),
    ))
}

impl ApplicationsApi {
    pub(super) async fn cycle_create(
        &self,
        c: &Caller,
        r: pb::CreateCycleRequest,
    ) -> Result<pb::Cycle> {
        let programme = programme_id(&r.parent, "parent")?;
        c.acts_for(&programme)?;
        let key = RequestKey::new("CreateCycle", c, &r.request_id, &r)?;
        // A retry is answered before the state it reads below has moved on (AIP-155).
        if let Some(done) = change::recall(self.db(), &key).await? {
            return Ok(done);
        }
        let cy = r
            .cycle
            .as_ref()
            .ok_or_else(|| Error::invalid("cycle", "is required"))?;
        let now = self.now();
        let mut bad = Vec::new();
        if !(2000..=2100).contains(&cy.year) {
            bad.push(FieldViolation::new("cycle.year", "must be 2000-2100"));
        }
        let title = line(&cy.notice_title, "cycle.notice_title", 200, &mut bad);
        let conditions = cy.conditions.trim().to_string();
        if conditions.is_empty() || conditions.chars().count() > 20_000 {
            bad.push(FieldViolation::new(
                "cycle.conditions",
                "must be 1-20000 characters",
            ));
        }
        if cy.required_materials.is_empty() || cy.required_materials.len() > 50 {
            bad.push(FieldViolation::new(
                "cycle.required_materials",
                "must list 1-50 materials",
            ));
        }
        let materials: Vec<String> = cy
            .required_materials
            .iter()
            .enumerate()
            .map(|(i, m)| line(m, &format!("cycle.required_materials[{i}]"), 200, &mut bad))
            .collect();
        let deadline = match &cy.deadline {
            None => {
                bad.push(FieldViolation::new("cycle.deadline", "is required"));
                now
            }
            Some(t) => match timestamp_from_pb(t, "cycle.deadline") {
                Ok(d) if d <= now => {
                    bad.push(FieldViolation::new(
                        "cycle.deadline",
                        "must be in the future",
                    ));
                    d
                }
                Ok(d) => {
                    if let Some(why) =
                        domain::cycle::deadline_problem(cy.year, china_date(unix_micros(d)))
                    {
                        bad.push(FieldViolation::new("cycle.deadline", why));
                    }
                    d
                }
                Err(e) => {
                    bad.extend(e.violations.iter().cloned());
                    now
                }
            },
        };
        if !bad.is_empty() {
            return Err(Error::invalid_fields(bad));
        }
        self.change(key, |mut tx| async move {
            let p = store::get_programme(&mut tx, &programme).await?;
            let row = CycleRow {
                programme_id: programme.clone(),
                year: i64::from(cy.year),
                notice_title: title,
                conditions,
                required_materials: materials,
                deadline_micros: unix_micros(deadline),
                settings_version: p.settings_version,
                state: CycleState::Open,
                created_micros: unix_micros(now),
                approval_document: String::new(),
                approval_date: String::new(),
            };
            store::insert_cycle(&mut tx, &row).await?;
            let response = cycle_pb(&row);
            let record = AuditRecord::by(c, "cycle.publish_notice", response.name.clone())
                .because("R-01")
                .with_detail(serde_json::json!({ "settings_version": p.settings_version, "deadline_micros": row.deadline_micros }));
            Ok(Done::new(tx, record, response))
        })
        .await
    }

    pub(super) async fn cycle_get(
        &self,
        request: Request<pb::GetCycleRequest>,
    ) -> Result<Response<pb::Cycle>, Status> {
        // A published notice is public: any authenticated caller reads it.
        let _ = caller(&request)?;
        let run = async {
            let (p, y) = cycle_id(&request.get_ref().name, "name")?;
            let mut conn = self.db.pool().acquire().await?;
            let mut cycle = cycle_pb(&store::get_cycle(&mut conn, &p, y).await?);
            cycle.award_audit_checkpoints = super::audit_log::kept_checkpoints(
                &mut conn,
                &super::audit_log::award_decision(&cycle.name),
            )
            .await?;
            Ok(cycle)
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    pub(super) async fn cycle_list(
        &self,
        request: Request<pb::ListCyclesRequest>,
    ) -> Result<Response<pb::ListCyclesResponse>, Status> {
        let _ = caller(&request)?;
        let run = async {
            let r = request.get_ref();
            let p = programme_id(&r.parent, "parent")?;
            let page = Page::parse(r.page_size, &r.page_token)?;
            let mut rows = store::list_cycles(&self.db, &p, &page).await?;
            let next_page_token = page.finish(&mut rows, |c| c.year.to_string());
            Ok(pb::ListCyclesResponse {
                cycles: rows.iter().map(cycle_pb).collect(),
                next_page_token,
            })
        };
        run.await.map(Response::new).map_err(Error::into_status)
    }

    pub(super) async fn cycle_check_eligibility(
        &self,
        c: &Caller,
        r: pb::CheckEligibilityRequest,
    ) -> Result<pb::CheckEligibilityResponse> {
        let code = enterprise_code(&r.enterprise, "enterprise")?;
        let (programme, year) = cycle_id(&r.cycle, "cycle")?;
        if !is_enterprise(c, code.as_str()) {
            c.require(&[Role::Office, Role::Supervisor, Role::RecommendingUnit])?;
        }
        let mut conn = self.db.pool().acquire().await?;
        let e = store::get_enterprise(&mut conn, code.as_str()).await?;
        if c.role == Role::RecommendingUnit
            && c.org.as_deref() != Some(e.recommending_unit.as_str())
        {
            return Err(Error::permission_denied(
                "this enterprise is not in your area",
            ));
        }
        let cycle = store::get_cycle(&mut conn, &programme, year).await?;
        let settings =
            store::settings_version(&mut conn, &programme, cycle.settings_version).await?;
        let dates = |v: Vec<String>| {
            v.iter()
                .filter_map(|d| parse_iso_date(d))
                .collect::<Vec<_>>()
        };
        let awards =
            dates(store::record_dates(&mut conn, code.as_str(), &programme, "award").await?);
        let revocations =
            dates(store::record_dates(&mut conn, code.as_str(), &programme, "revocation").await?);
        let fraud =
            dates(store::record_dates(&mut conn, code.as_str(), &programme, "fraud").await?);
        let facts = eligibility::Facts {
            credit_code: Some(&code),
            established: parse_iso_date(&e.established_date),
            awards: &awards,
            revocations: &revocations,
            fraud_findings: &fraud,
        };
        let deadline = qaward_kit::clock::from_unix_micros(cycle.deadline_micros)
            .to_offset(qaward_kit::clock::CHINA)
            .date();
        let reasons = eligibility::check(&facts, &settings, deadline);
        Ok(pb::CheckEligibilityResponse {
            eligible: reasons.is_empty(),
            reasons: reasons.iter().map(explanation_pb).collect(),
        })
    }
}
