//! Enterprises: the applicants known to the programme, by unified social credit code.

use qaward_kit::{
    Error, Result,
    audit::AuditRecord,
    auth::{Caller, Role},
    change,
    change::Done,
    clock::unix_micros,
    cn::{self, CreditCode},
    convert::{date_from_pb, iso_date},
    error::FieldViolation,
    idempotency::RequestKey,
    paging::Page,
};
use qaward_proto::qaward::applications::v1 as pb;

use crate::store::{self, EnterpriseRow};

use super::{
    ApplicationsApi,
    convert::{enterprise_pb, line},
    is_enterprise,
    names::enterprise_code,
};

impl ApplicationsApi {
    pub(super) async fn enterprise_create(
        &self,
        c: &Caller,
        r: pb::CreateEnterpriseRequest,
    ) -> Result<pb::Enterprise> {
        let e = r
            .enterprise
            .as_ref()
            .ok_or_else(|| Error::invalid("enterprise", "is required"))?;
        let mut bad = Vec::new();
        let code = match CreditCode::parse(&e.credit_code) {
            Ok(code) => Some(code),
            Err(err) => {
                bad.push(FieldViolation::new(
                    "enterprise.credit_code",
                    err.to_string(),
                ));
                None
            }
        };
        // The enterprise registers itself (its token's org is its code), or the office does.
        if let Some(code) = &code
            && !is_enterprise(c, code.as_str())
        {
            c.require(&[Role::Office])?;
        }
        let key = RequestKey::new("CreateEnterprise", c, &r.request_id, &r)?;
        // A retry is answered before the state it reads below has moved on (AIP-155).
        if let Some(done) = change::recall(self.db(), &key).await? {
            return Ok(done);
        }
        let name = line(&e.display_name, "enterprise.display_name", 200, &mut bad);
        let now = self.now();
        let established = match &e.established_date {
            None => {
                bad.push(FieldViolation::new(
                    "enterprise.established_date",
                    "is required",
                ));
                None
            }
            Some(d) => match date_from_pb(d, "enterprise.established_date") {
                Ok(d) if d > now.date() => {
                    bad.push(FieldViolation::new(
                        "enterprise.established_date",
                        "is in the future",
                    ));
                    None
                }
                Ok(d) => Some(d),
                Err(err) => {
                    bad.extend(err.violations.iter().cloned());
                    None
                }
            },
        };
        let industry = cn::industry(&e.industry_code).unwrap_or_else(|err| {
            bad.push(FieldViolation::new(
                "enterprise.industry_code",
                err.to_string(),
            ));
            String::new()
        });
        let unit = e.recommending_unit.trim().to_string();
        if !(1..=64).contains(&unit.len()) || unit.contains(['/', ' ']) {
            bad.push(FieldViolation::new(
                "enterprise.recommending_unit",
                "must be the recommending unit's id (1-64 characters, no '/' or spaces)",
            ));
        }
        let (Some(code), Some(established), true) = (code, established, bad.is_empty()) else {
            return Err(Error::invalid_fields(bad));
        };
        let row = EnterpriseRow {
            credit_code: code.as_str().to_string(),
            display_name: name,
            established_date: iso_date(established),
            industry_code: industry,
            recommending_unit: unit,
            created_micros: unix_micros(now),
        };
        self.change(key, |mut tx| async move {
            store::insert_enterprise(&mut tx, &row).await?;
            let response = enterprise_pb(&row);
            let record =
                AuditRecord::by(c, "enterprise.create", response.name.clone()).because("R-02");
            Ok(Done::new(tx, record, response))
        })
        .await
    }

    pub(super) async fn enterprise_get(
        &self,
        c: &Caller,
        r: pb::GetEnterpriseRequest,
    ) -> Result<pb::Enterprise> {
        let code = enterprise_code(&r.name, "name")?;
        let mut conn = self.db.pool().acquire().await?;
        let row = store::get_enterprise(&mut conn, code.as_str()).await?;
        let its_unit = c.role == Role::RecommendingUnit
            && c.org.as_deref() == Some(row.recommending_unit.as_str());
        if !is_enterprise(c, code.as_str()) && !its_unit {
            c.require(&[Role::Office, Role::Supervisor])?;
        }
        Ok(enterprise_pb(&row))
    }

    pub(super) async fn enterprise_list(
        &self,
        _caller: &Caller,
        r: pb::ListEnterprisesRequest,
    ) -> Result<pb::ListEnterprisesResponse> {
        let page = Page::parse(r.page_size, &r.page_token)?;
        let mut rows = store::list_enterprises(&self.db, &page).await?;
        let next_page_token = page.finish(&mut rows, |e| e.credit_code.clone());
        Ok(pb::ListEnterprisesResponse {
            enterprises: rows.iter().map(enterprise_pb).collect(),
            next_page_token,
        })
    }
}
