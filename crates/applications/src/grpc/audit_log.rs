//! The applications' audit log by API (issue 22, item 3; docs/audit.md): the checkpoint and
//! consistency proofs for anyone, records with their inclusion proofs for the office and the
//! supervisor of their programme, and for an enterprise those of its own applications.

use qaward_kit::{
    Error, Result,
    audit::api::{self, Wanted},
    auth::{Caller, Role},
};
use qaward_proto::qaward::common::v1 as common;

use super::{
    ApplicationsApi,
    access::{load, may_read},
    names::application_name,
};
use crate::KIND;

impl ApplicationsApi {
    pub(super) async fn prove_audit_records(
        &self,
        c: &Caller,
        r: common::ProveAuditRecordsRequest,
    ) -> Result<common::AuditRecordProofs> {
        let wanted = Wanted::try_from(&r)?;
        if c.role != Role::Enterprise {
            let may = |resource: &str| api::of_programme(c, resource);
            return api::prove_records(self.db(), &self.ctx, KIND.as_str(), &wanted, &may).await;
        }
        let Wanted::Resource(name) = &wanted else {
            return Err(Error::invalid(
                "resource",
                "an enterprise names one of its applications",
            ));
        };
        let (p, y, code) = application_name(name, "resource")?;
        let mut conn = self.db().pool().acquire().await?;
        may_read(c, &load(&mut conn, &p, y, &code).await?)?;
        drop(conn);
        let below = format!("{name}/");
        let may = |resource: &str| resource == name || resource.starts_with(&below);
        api::prove_records(self.db(), &self.ctx, KIND.as_str(), &wanted, &may).await
    }
}
