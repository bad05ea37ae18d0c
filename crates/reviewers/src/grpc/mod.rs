//! The gRPC surface of `qaward.reviewers.v1.ReviewerService`, one file per resource:
//!
//! | file           | methods                                                        |
//! |----------------|----------------------------------------------------------------|
//! | `programmes`   | Create/Get/ListProgrammes, UpdateDrawPolicy                    |
//! | `registry`     | ImportReviewers, Get/ListReviewers                             |
//! | `conflicts`    | relations, flags, CheckConflicts                  |
//! | `draws`        | Prepare/Execute/Get/List/VerifyDraw               |
//! | `entropy`      | Commit/RevealDrawEntropy, FixDrawPublicValue            |
//! | `panels`       | Get/ListPanels, RespondToAssignment, ReplaceMember, ReleasePanel |
//! | `events`       | ListEvents: the feed other services follow (issue 24)          |
//! | `records`      | RecordReviewerEvent, GetReviewerRecord (Art. 6(3), R-42)       |
//! | `replay`       | a recorded draw replayed offline                        |
//! | `convert`      | proto ↔ domain                                                 |
//! | `names`        | the resource names this service parses                         |
//!
//! A handler parses its request (field violations at the edge), checks who the record belongs
//! to, loads, lets a `domain` function decide, stores — and commits the change with its audit
//! record through [`ReviewersApi::change`]. The trait methods below only route.

mod conflicts;
mod convert;
mod draws;
mod entropy;
mod events;
mod names;
mod panels;
mod programmes;
mod records;
mod registry;
mod replay;

use pb::reviewer_service_server::ReviewerService;
use qaward_kit::{
    Result,
    auth::{Caller, Role},
    change::{self, Done, reply},
    db::{Database, Tx},
    idempotency::RequestKey,
    server::ServiceContext,
};
use qaward_proto::qaward::common::v1 as common;
use qaward_proto::qaward::reviewers::v1 as pb;
use tonic::{Request, Response, Status};

pub use entropy::fail_overdue_draws;

/// A draw's name, `programmes/{programme}/draws/{draw}`, parsed as the service parses it:
/// (programme, draw).
pub fn draw_name(name: &str) -> Result<(String, String)> {
    names::child(name, "draws", "draw")
}
pub use replay::{Recorded, verify, verify_record};

use crate::store;

type Answer<M> = std::result::Result<Response<M>, Status>;

pub struct ReviewersApi {
    db: Database,
    ctx: ServiceContext,
    registry: store::RegistryCache,
}

impl ReviewersApi {
    pub fn new(db: Database, ctx: ServiceContext) -> Self {
        ReviewersApi {
            // Stored answers are sealed with the field keys.
            db: db.with_fields(ctx.fields.clone()),
            ctx,
            registry: store::RegistryCache::default(),
        }
    }

    fn now(&self) -> time::OffsetDateTime {
        self.ctx.clock.now()
    }

    fn now_micros(&self) -> i64 {
        qaward_kit::clock::unix_micros(self.now())
    }

    fn new_id(&self) -> String {
        let mut b = [0u8; 10];
        self.ctx.randomness.fill(&mut b);
        let t = qaward_kit::clock::unix_micros(self.now()) / 1_000_000;
        format!("{t:x}{}", hex::encode(b))
    }

    /// Runs one mutating call ([`change::run`]): a retry gets its first answer; otherwise
    /// `work` changes the store in a transaction committed with its audit record.
    async fn change<M, F, Fut>(&self, key: Option<RequestKey>, work: F) -> Result<M>
    where
        M: prost::Message + Default,
        F: FnOnce(Tx) -> Fut,
        Fut: Future<Output = Result<Done<M>>>,
    {
        change::run(&self.db, self.now(), key, work).await
    }
}

/// Is the caller this reviewer (a reviewer token whose subject is the certificate number)?
fn is_self(c: &Caller, reviewer: &str) -> bool {
    c.role == Role::Reviewer && c.subject.eq_ignore_ascii_case(reviewer)
}

/// The reason of a write to the shared registry by an office whose issuer does not keep it.
pub(crate) const NOT_REGISTRY_KEEPER: &str = "NOT_REGISTRY_KEEPER";

/// Writes to the municipal registry every programme's draws rely on (import, relations,
/// flags) are the registry keeper's: an office whose issuer is granted `registry_keeper`.
fn registry_keeper(c: &Caller) -> Result<()> {
    c.require(&[Role::Office])?;
    if !c.registry_keeper {
        return Err(qaward_kit::Error::new(
            qaward_kit::ErrorCode::PermissionDenied,
            NOT_REGISTRY_KEEPER,
            format!(
                "the reviewer registry is shared by every programme; only its keeper writes it, and issuer {} is not",
                c.issuer
            ),
        ));
    }
    Ok(())
}

/// Staff reads of the registry: a caller in one of `roles` acting for a programme (whose draws
/// read the registry), or of the keeper's issuer.
fn registry_reader(c: &Caller, roles: &[Role]) -> Result<()> {
    c.require(roles)?;
    if c.programme_id().is_none() && !c.registry_keeper {
        return Err(qaward_kit::Error::permission_denied(
            "a token that acts for no programme and is not the registry keeper's reads no reviewers",
        ));
    }
    Ok(())
}

/// The reviewer themselves, or a caller in one of `roles`; true when it is the reviewer.
fn self_or(c: &Caller, reviewer: &str, roles: &[Role]) -> Result<bool> {
    if is_self(c, reviewer) {
        return Ok(true);
    }
    registry_reader(c, roles)?;
    Ok(false)
}

impl ReviewersApi {
    /// This service's audit log as its RPCs answer it (issue 22, item 3).
    fn audit_log(&self) -> qaward_kit::audit::api::Log<'_> {
        qaward_kit::audit::api::Log {
            db: &self.db,
            ctx: &self.ctx,
            service: crate::KIND.as_str(),
        }
    }
}

#[tonic::async_trait]
impl ReviewerService for ReviewersApi {
    async fn get_audit_checkpoint(
        &self,
        _r: Request<common::GetAuditCheckpointRequest>,
    ) -> Answer<common::AuditCheckpoint> {
        reply(self.audit_log().checkpoint().await)
    }

    async fn prove_audit_records(
        &self,
        r: Request<common::ProveAuditRecordsRequest>,
    ) -> Answer<common::AuditRecordProofs> {
        let (c, r) = Caller::and_message(r)?;
        reply(self.audit_log().prove_records_of_programme(&c, &r).await)
    }

    async fn prove_audit_consistency(
        &self,
        r: Request<common::ProveAuditConsistencyRequest>,
    ) -> Answer<common::AuditConsistencyProof> {
        reply(self.audit_log().prove_consistency(r.get_ref()).await)
    }

    async fn create_programme(
        &self,
        r: Request<pb::CreateProgrammeRequest>,
    ) -> Answer<pb::DrawTenant> {
        let (c, r) = Caller::and_message(r)?;
        reply(programmes::create(self, &c, r).await)
    }

    async fn get_programme(&self, r: Request<pb::GetProgrammeRequest>) -> Answer<pb::DrawTenant> {
        let (c, r) = Caller::and_message(r)?;
        reply(programmes::get(self, &c, r).await)
    }

    async fn list_programmes(
        &self,
        r: Request<pb::ListProgrammesRequest>,
    ) -> Answer<pb::ListProgrammesResponse> {
        let (c, r) = Caller::and_message(r)?;
        reply(programmes::list(self, &c, r).await)
    }

    async fn update_draw_policy(
        &self,
        r: Request<pb::UpdateDrawPolicyRequest>,
    ) -> Answer<pb::DrawTenant> {
        let (c, r) = Caller::and_message(r)?;
        reply(programmes::update_draw_policy(self, &c, r).await)
    }

    async fn import_reviewers(
        &self,
        r: Request<pb::ImportReviewersRequest>,
    ) -> Answer<pb::ImportReviewersResponse> {
        let (c, r) = Caller::and_message(r)?;
        reply(registry::import(self, &c, r).await)
    }

    async fn get_reviewer(&self, r: Request<pb::GetReviewerRequest>) -> Answer<pb::Reviewer> {
        let (c, r) = Caller::and_message(r)?;
        reply(registry::get(self, &c, r).await)
    }

    async fn reveal_reviewer(&self, r: Request<pb::RevealReviewerRequest>) -> Answer<pb::Reviewer> {
        let (c, r) = Caller::and_message(r)?;
        reply(registry::reveal(self, &c, r).await)
    }

    async fn correct_reviewer_contact(
        &self,
        r: Request<pb::CorrectReviewerContactRequest>,
    ) -> Answer<pb::Reviewer> {
        let (c, r) = Caller::and_message(r)?;
        reply(registry::correct_contact(self, &c, r).await)
    }

    async fn erase_reviewer_data(
        &self,
        r: Request<pb::EraseReviewerDataRequest>,
    ) -> Answer<pb::Reviewer> {
        let (c, r) = Caller::and_message(r)?;
        reply(registry::erase(self, &c, r).await)
    }

    async fn list_reviewers(
        &self,
        r: Request<pb::ListReviewersRequest>,
    ) -> Answer<pb::ListReviewersResponse> {
        let (c, r) = Caller::and_message(r)?;
        reply(registry::list(self, &c, r).await)
    }

    async fn create_relation(&self, r: Request<pb::CreateRelationRequest>) -> Answer<pb::Relation> {
        let (c, r) = Caller::and_message(r)?;
        reply(conflicts::create_relation(self, &c, r).await)
    }

    async fn list_relations(
        &self,
        r: Request<pb::ListRelationsRequest>,
    ) -> Answer<pb::ListRelationsResponse> {
        let (c, r) = Caller::and_message(r)?;
        reply(conflicts::list_relations(self, &c, r).await)
    }

    async fn create_flag(&self, r: Request<pb::CreateFlagRequest>) -> Answer<pb::Flag> {
        let (c, r) = Caller::and_message(r)?;
        reply(conflicts::create_flag(self, &c, r).await)
    }

    async fn list_flags(&self, r: Request<pb::ListFlagsRequest>) -> Answer<pb::ListFlagsResponse> {
        let (c, r) = Caller::and_message(r)?;
        reply(conflicts::list_flags(self, &c, r).await)
    }

    async fn resolve_flag(&self, r: Request<pb::ResolveFlagRequest>) -> Answer<pb::Flag> {
        let (c, r) = Caller::and_message(r)?;
        reply(conflicts::resolve_flag(self, &c, r).await)
    }

    async fn check_conflicts(
        &self,
        r: Request<pb::CheckConflictsRequest>,
    ) -> Answer<pb::CheckConflictsResponse> {
        let (c, r) = Caller::and_message(r)?;
        reply(conflicts::check(self, &c, r).await)
    }

    async fn prepare_draw(&self, r: Request<pb::PrepareDrawRequest>) -> Answer<pb::Draw> {
        let (c, r) = Caller::and_message(r)?;
        reply(draws::prepare(self, &c, r).await)
    }

    async fn commit_draw_entropy(
        &self,
        r: Request<pb::CommitDrawEntropyRequest>,
    ) -> Answer<pb::Draw> {
        let (c, r) = Caller::and_message(r)?;
        reply(entropy::commit(self, &c, r).await)
    }

    async fn fix_draw_public_value(
        &self,
        r: Request<pb::FixDrawPublicValueRequest>,
    ) -> Answer<pb::Draw> {
        let (c, r) = Caller::and_message(r)?;
        reply(entropy::fix_public_value(self, &c, r).await)
    }

    async fn reveal_draw_entropy(
        &self,
        r: Request<pb::RevealDrawEntropyRequest>,
    ) -> Answer<pb::RevealDrawEntropyResponse> {
        let (c, r) = Caller::and_message(r)?;
        reply(entropy::reveal(self, &c, r).await)
    }

    async fn execute_draw(
        &self,
        r: Request<pb::ExecuteDrawRequest>,
    ) -> Answer<pb::ExecuteDrawResponse> {
        let (c, r) = Caller::and_message(r)?;
        reply(draws::execute(self, &c, r).await)
    }

    async fn get_draw(&self, r: Request<pb::GetDrawRequest>) -> Answer<pb::Draw> {
        let (c, r) = Caller::and_message(r)?;
        reply(draws::get(self, &c, r).await)
    }

    async fn list_draws(&self, r: Request<pb::ListDrawsRequest>) -> Answer<pb::ListDrawsResponse> {
        let (c, r) = Caller::and_message(r)?;
        reply(draws::list(self, &c, r).await)
    }

    async fn verify_draw(
        &self,
        r: Request<pb::VerifyDrawRequest>,
    ) -> Answer<pb::VerifyDrawResponse> {
        let (c, r) = Caller::and_message(r)?;
        reply(draws::verify(self, &c, r).await)
    }

    async fn get_panel(&self, r: Request<pb::GetPanelRequest>) -> Answer<pb::Panel> {
        let (c, r) = Caller::and_message(r)?;
        reply(panels::get(self, &c, r).await)
    }

    async fn list_panels(
        &self,
        r: Request<pb::ListPanelsRequest>,
    ) -> Answer<pb::ListPanelsResponse> {
        let (c, r) = Caller::and_message(r)?;
        reply(panels::list(self, &c, r).await)
    }

    async fn respond_to_assignment(
        &self,
        r: Request<pb::RespondToAssignmentRequest>,
    ) -> Answer<pb::Panel> {
        let (c, r) = Caller::and_message(r)?;
        reply(panels::respond(self, &c, r).await)
    }

    async fn replace_member(&self, r: Request<pb::ReplaceMemberRequest>) -> Answer<pb::Panel> {
        let (c, r) = Caller::and_message(r)?;
        reply(panels::replace_member(self, &c, r).await)
    }

    async fn record_reviewer_event(
        &self,
        r: Request<pb::RecordReviewerEventRequest>,
    ) -> Answer<pb::ReviewerEvent> {
        let (c, r) = Caller::and_message(r)?;
        reply(records::record_event(self, &c, r).await)
    }

    async fn get_reviewer_record(
        &self,
        r: Request<pb::GetReviewerRecordRequest>,
    ) -> Answer<pb::ReviewerYear> {
        let (c, r) = Caller::and_message(r)?;
        reply(records::get_year(self, &c, r).await)
    }

    async fn release_panel(&self, r: Request<pb::ReleasePanelRequest>) -> Answer<pb::Panel> {
        let (c, r) = Caller::and_message(r)?;
        reply(panels::release(self, &c, r).await)
    }

    async fn list_events(
        &self,
        r: Request<pb::ListEventsRequest>,
    ) -> Answer<pb::ListEventsResponse> {
        let (c, r) = Caller::and_message(r)?;
        reply(events::list(self, &c, r).await)
    }
}
