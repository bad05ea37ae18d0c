//! The applications' audit log by API (issue 22, item 3; docs/audit.md): the checkpoint and
//! consistency proofs for anyone, records with their inclusion proofs for the office and the
//! supervisor of their programme, and for an enterprise those of its own applications. A
//! published decision names a checkpoint of this log that includes it, printed with the other
//! services' latest.

use qaward_kit::{
    Error, Result,
    audit::{
        Checkpoint,
        api::{self, Wanted},
        log,
    },
    auth::{Caller, Role, relay_token},
    clock::unix_micros,
};
use qaward_proto::qaward::common::v1 as common;

use super::{
    ApplicationsApi,
    access::{load, may_read},
    names::application_name,
};
use crate::{KIND, store};

/// The decision a release of review results is (its audit record's resource).
pub(super) fn release_decision(
    r: &qaward_proto::qaward::applications::v1::ReleaseReviewStageRequest,
) -> String {
    let stage = qaward_proto::qaward::applications::v1::ReviewStage::try_from(r.stage)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("REVIEW_STAGE_")
                .to_lowercase()
        })
        .unwrap_or_default();
    format!("{}/stages/{stage}", r.cycle)
}

/// The decision an award is.
pub(super) fn award_decision(cycle: &str) -> String {
    format!("{cycle}/award")
}

/// The checkpoints kept with `decision`, if it has been published (read only).
pub(super) async fn kept_checkpoints(
    conn: &mut qaward_kit::db::Conn,
    decision: &str,
) -> Result<Vec<common::AuditCheckpoint>> {
    Ok(store::decision_checkpoints(conn, decision)
        .await?
        .unwrap_or_default()
        .iter()
        .filter_map(|t| Checkpoint::parse(t).ok())
        .map(|c| api::checkpoint_pb(&c))
        .collect())
}

/// How long a decision waits for another service's checkpoint before printing without it.
const OTHERS_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

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

    /// The checkpoints `decision` names, taken once right after it committed: this service's
    /// (which includes the decision), then the reviewers', scoring's and notifications' latest.
    /// A service that does not answer in time is left out, with a warning.
    pub(super) async fn decision_checkpoints(
        &self,
        c: &Caller,
        decision: &str,
    ) -> Result<Vec<common::AuditCheckpoint>> {
        let mut conn = self.db().pool().acquire().await?;
        let kept = kept_checkpoints(&mut conn, decision).await?;
        if !kept.is_empty() {
            return Ok(kept);
        }
        drop(conn);
        let now = self.now();
        let own = log::take_checkpoint(
            self.db(),
            &self.ctx.audit,
            &log::origin(KIND.as_str()),
            &format!("decision {decision}"),
            now,
        )
        .await?;
        let request = || {
            let mut r = tonic::Request::new(common::GetAuditCheckpointRequest {});
            relay_token(c, &mut r);
            r.set_timeout(OTHERS_WAIT);
            r
        };
        let (mut reviewers, mut scoring, mut notifications) =
            (self.reviewers(), self.scoring(), self.notifications());
        let answers = [
            (
                "reviewers",
                tokio::time::timeout(OTHERS_WAIT, reviewers.get_audit_checkpoint(request())).await,
            ),
            (
                "scoring",
                tokio::time::timeout(OTHERS_WAIT, scoring.get_audit_checkpoint(request())).await,
            ),
            (
                "notifications",
                tokio::time::timeout(OTHERS_WAIT, notifications.get_audit_checkpoint(request()))
                    .await,
            ),
        ];
        let mut others = Vec::new();
        for (service, answer) in answers {
            match answer {
                Ok(Ok(cp)) => others.push(cp.into_inner().text),
                Ok(Err(e)) => {
                    tracing::warn!(service, error = %e.message(), decision, "a decision printed without this service's audit checkpoint")
                }
                Err(_) => tracing::warn!(
                    service,
                    decision,
                    "a decision printed without this service's audit checkpoint: no answer in time"
                ),
            }
        }
        let mut conn = self.db().pool().acquire().await?;
        store::keep_decision_checkpoints(
            &mut conn,
            decision,
            &own.to_text(),
            &others,
            unix_micros(now),
        )
        .await?;
        // A concurrent first call may have kept its own: what is kept is what is printed.
        kept_checkpoints(&mut conn, decision).await
    }
}
