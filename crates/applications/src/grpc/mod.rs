//! The gRPC surface of `qaward.applications.v1.ApplicationService`, one file per resource:
//!
//! | file           | methods                                                                |
//! |----------------|------------------------------------------------------------------------|
//! | `programmes`   | Create/Get/ListProgrammes, UpdateProgrammeSettings                     |
//! | `cycles`       | Create/Get/ListCycles (the notice, R-01), CheckEligibility (R-02-R-04) |
//! | `enterprises`  | Create/Get/ListEnterprises                                             |
//! | `applications` | Create/Get/List/UpdateApplication, GetCycleBoard (R-05-R-08)           |
//! | `evidence`     | UploadEvidence                                                  |
//! | `submission`   | Submit/Withdraw, SignRecommendation, TransitionApplication (the stages) |
//! | `reviews`      | Prepare/Start/Get/ListReviewGroups                  |
//! | `release`      | ReleaseReviewStage, StopSiteVisit                   |
//! | `consultation` | FixCandidates, RequestConsultation, opinions, objections (R-17-R-20)   |
//! | `notice`       | Open/GetPublicNotice, complaints                          |
//! | `committee`    | RecordCommitteeMeeting, RecordApproval                    |
//! | `duties`       | winners' reports, overdue reports, RevokeAward (R-30-R-32)             |
//! | `export`       | ExportCycleRecord                                                      |
//! | `consistency`  | CheckConsistency: this service against reviewers and scoring (issue 24) |
//! | `disqualify`   | what every disqualification sets off (R-15, R-20, R-21, Art. 12(2))    |
//! | `convert`      | proto ↔ domain                                                         |
//! | `names`        | the resource names this service parses and builds                      |
//!
//! A handler parses its request (field violations at the edge), checks whose record it is,
//! loads, lets a `domain` function decide, and stores the change with its audit record and
//! outbox notices in one transaction; calls to the reviewers and scoring services go through
//! the clients here. The trait methods below only route.

mod access;
mod applications;
mod audit_log;
mod committee;
mod complaints;
mod consistency;
mod consultation;
mod convert;
mod cycles;
mod disqualify;
mod duties;
mod enterprises;
mod evidence;
mod export;
mod names;
mod notice;
mod programmes;
mod recheck;
mod release;
mod reviews;
mod revocation;
mod submission;

use pb::application_service_server::ApplicationService;
use qaward_kit::{
    Error, Result,
    auth::{Caller, Role},
    change::{self, Done, reply},
    config::ServiceKind,
    db::{Database, Tx},
    idempotency::RequestKey,
    server::ServiceContext,
    upstream::Upstream,
};
use qaward_proto::qaward::{
    applications::v1 as pb, common::v1 as common,
    notifications::v1::notification_service_client::NotificationServiceClient,
    reviewers::v1::reviewer_service_client::ReviewerServiceClient,
    scoring::v1::scoring_service_client::ScoringServiceClient,
};
use tonic::{Request, Response, Status};

use crate::blobs::BlobStore;

pub(crate) use convert::notice;
pub(crate) use names::application_resource;
pub(crate) use reviews::assigned_people;

pub struct ApplicationsApi {
    db: Database,
    ctx: ServiceContext,
    blobs: BlobStore,
    calendar: qaward_kit::calendar::Calendar,
    reviewers: ReviewerServiceClient<Upstream>,
    scoring: ScoringServiceClient<Upstream>,
    /// Only for the notifications' audit checkpoint a published decision prints (issue 22);
    /// notices themselves go through the outbox.
    notifications: NotificationServiceClient<Upstream>,
}

/// Another service, in process when this process serves it, else a lazily connected channel
/// as the configuration names it (calls fail with UNAVAILABLE while it is down); each call has
/// a deadline.
fn channel_to(ctx: &ServiceContext, kind: ServiceKind) -> Upstream {
    qaward_kit::upstream::connect(ctx, kind, Some(std::time::Duration::from_secs(30)))
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "invalid upstream; calls will fail");
            qaward_kit::upstream::network(
                tonic::transport::Endpoint::from_static("http://127.0.0.1:1").connect_lazy(),
            )
        })
}

pub(crate) fn caller<T>(r: &Request<T>) -> Result<Caller, Status> {
    Caller::of(r).cloned()
}

/// The enterprise itself (its token's `org` is its credit code).
pub(crate) fn is_enterprise(c: &Caller, code: &str) -> bool {
    c.role == Role::Enterprise && c.org.as_deref() == Some(code)
}

pub(crate) fn upstream(service: &'static str) -> impl Fn(Status) -> Error {
    move |s| Error::from_upstream(service, &s)
}

impl ApplicationsApi {
    /// The service over `db`, keeping evidence files in `blobs` (`BlobStore::from_config`).
    pub fn new(db: Database, ctx: ServiceContext, blobs: BlobStore) -> Self {
        let reviewers = channel_to(&ctx, ServiceKind::Reviewers);
        let scoring = channel_to(&ctx, ServiceKind::Scoring);
        Self::with_upstreams(db, ctx, blobs, reviewers, scoring)
    }

    /// The service with its own channels to the reviewers and scoring services.
    pub fn with_upstreams(
        db: Database,
        ctx: ServiceContext,
        blobs: BlobStore,
        reviewers: Upstream,
        scoring: Upstream,
    ) -> Self {
        // `start` refuses a calendar file that does not load; a test's defaults always do.
        let calendar = ctx.config.calendar().unwrap_or_else(|e| {
            tracing::error!(error = %e, "calendar_file does not load; using the built-in years");
            qaward_kit::calendar::Calendar::built_in()
        });
        // Stored answers are sealed with the field keys.
        let db = db.with_fields(ctx.fields.clone());
        let notifications =
            NotificationServiceClient::new(channel_to(&ctx, ServiceKind::Notifications));
        ApplicationsApi {
            db,
            notifications,
            ctx,
            blobs,
            calendar,
            reviewers: ReviewerServiceClient::new(reviewers),
            scoring: ScoringServiceClient::new(scoring),
        }
    }

    /// The working-day calendar.
    pub(crate) fn calendar(&self) -> qaward_kit::calendar::Calendar {
        self.calendar.clone()
    }

    pub(crate) fn reviewers(&self) -> ReviewerServiceClient<Upstream> {
        self.reviewers.clone()
    }

    pub(crate) fn scoring(&self) -> ScoringServiceClient<Upstream> {
        self.scoring.clone()
    }

    pub(crate) fn notifications(&self) -> NotificationServiceClient<Upstream> {
        self.notifications.clone()
    }

    pub(crate) fn now(&self) -> time::OffsetDateTime {
        self.ctx.clock.now()
    }

    pub(crate) fn db(&self) -> &Database {
        &self.db
    }

    pub(crate) fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    pub(crate) fn new_id(&self) -> String {
        self.ctx.time_ordered_id()
    }

    /// Runs one mutating call ([`change::run`]): a retry gets its first answer; otherwise
    /// `work` changes the store in a transaction committed with its audit record (and the
    /// outbox events `work` enqueued in it).
    async fn change<M, F, Fut>(&self, key: Option<RequestKey>, work: F) -> Result<M>
    where
        M: prost::Message + Default,
        F: FnOnce(Tx) -> Fut,
        Fut: Future<Output = Result<Done<M>>>,
    {
        change::run(&self.db, self.now(), key, work).await
    }
}

#[tonic::async_trait]
impl ApplicationService for ApplicationsApi {
    async fn create_programme(
        &self,
        request: Request<pb::CreateProgrammeRequest>,
    ) -> Result<Response<pb::Programme>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.programme_create(&c, r).await)
    }

    async fn get_programme(
        &self,
        request: Request<pb::GetProgrammeRequest>,
    ) -> Result<Response<pb::Programme>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.programme_get(&c, r).await)
    }

    async fn list_programmes(
        &self,
        request: Request<pb::ListProgrammesRequest>,
    ) -> Result<Response<pb::ListProgrammesResponse>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.programme_list(&c, r).await)
    }

    async fn update_programme_settings(
        &self,
        request: Request<pb::UpdateProgrammeSettingsRequest>,
    ) -> Result<Response<pb::Programme>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.programme_update_settings(&c, r).await)
    }

    async fn create_cycle(
        &self,
        request: Request<pb::CreateCycleRequest>,
    ) -> Result<Response<pb::Cycle>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.cycle_create(&c, r).await)
    }

    async fn get_cycle(
        &self,
        request: Request<pb::GetCycleRequest>,
    ) -> Result<Response<pb::Cycle>, Status> {
        self.cycle_get(request).await
    }

    async fn list_cycles(
        &self,
        request: Request<pb::ListCyclesRequest>,
    ) -> Result<Response<pb::ListCyclesResponse>, Status> {
        self.cycle_list(request).await
    }

    async fn create_enterprise(
        &self,
        request: Request<pb::CreateEnterpriseRequest>,
    ) -> Result<Response<pb::Enterprise>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.enterprise_create(&c, r).await)
    }

    async fn get_enterprise(
        &self,
        request: Request<pb::GetEnterpriseRequest>,
    ) -> Result<Response<pb::Enterprise>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.enterprise_get(&c, r).await)
    }

    async fn list_enterprises(
        &self,
        request: Request<pb::ListEnterprisesRequest>,
    ) -> Result<Response<pb::ListEnterprisesResponse>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.enterprise_list(&c, r).await)
    }

    async fn get_cycle_board(
        &self,
        request: Request<pb::GetCycleBoardRequest>,
    ) -> Result<Response<pb::CycleBoard>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.intake_board(&c, r).await)
    }

    async fn check_consistency(
        &self,
        request: Request<pb::CheckConsistencyRequest>,
    ) -> Result<Response<pb::ConsistencyReport>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.consistency_check(&c, r).await)
    }

    async fn create_application(
        &self,
        request: Request<pb::CreateApplicationRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.intake_create(&c, r).await)
    }

    async fn get_audit_checkpoint(
        &self,
        _r: Request<common::GetAuditCheckpointRequest>,
    ) -> Result<Response<common::AuditCheckpoint>, Status> {
        reply(qaward_kit::audit::api::checkpoint(self.db(), &self.ctx, crate::KIND.as_str()).await)
    }

    async fn prove_audit_records(
        &self,
        request: Request<common::ProveAuditRecordsRequest>,
    ) -> Result<Response<common::AuditRecordProofs>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.prove_audit_records(&c, r).await)
    }

    async fn prove_audit_consistency(
        &self,
        request: Request<common::ProveAuditConsistencyRequest>,
    ) -> Result<Response<common::AuditConsistencyProof>, Status> {
        let r = request.into_inner();
        reply(
            qaward_kit::audit::api::prove_consistency(
                self.db(),
                &self.ctx,
                crate::KIND.as_str(),
                &r,
            )
            .await,
        )
    }

    async fn get_application(
        &self,
        request: Request<pb::GetApplicationRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.intake_get(&c, r).await)
    }

    async fn list_applications(
        &self,
        request: Request<pb::ListApplicationsRequest>,
    ) -> Result<Response<pb::ListApplicationsResponse>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.intake_list(&c, r).await)
    }

    async fn update_application(
        &self,
        request: Request<pb::UpdateApplicationRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.intake_update(&c, r).await)
    }

    async fn upload_evidence(
        &self,
        request: Request<tonic::Streaming<pb::UploadEvidenceRequest>>,
    ) -> Result<Response<pb::EvidenceFile>, Status> {
        self.intake_upload(request).await
    }

    async fn submit_application(
        &self,
        request: Request<pb::SubmitApplicationRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.intake_submit(&c, r).await)
    }

    async fn withdraw_application(
        &self,
        request: Request<pb::WithdrawApplicationRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.intake_withdraw(&c, r).await)
    }

    async fn sign_recommendation(
        &self,
        request: Request<pb::SignRecommendationRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.intake_sign(&c, r).await)
    }

    async fn transition_application(
        &self,
        request: Request<pb::TransitionApplicationRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.intake_transition(&c, r).await)
    }

    async fn prepare_review_group(
        &self,
        request: Request<pb::PrepareReviewGroupRequest>,
    ) -> Result<Response<pb::ReviewGroup>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.review_prepare(&c, r).await)
    }

    async fn start_review_group(
        &self,
        request: Request<pb::StartReviewGroupRequest>,
    ) -> Result<Response<pb::ReviewGroup>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.review_start(&c, r).await)
    }

    async fn get_review_group(
        &self,
        request: Request<pb::GetReviewGroupRequest>,
    ) -> Result<Response<pb::ReviewGroup>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.review_get(&c, r).await)
    }

    async fn list_review_groups(
        &self,
        request: Request<pb::ListReviewGroupsRequest>,
    ) -> Result<Response<pb::ListReviewGroupsResponse>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.review_list(&c, r).await)
    }

    async fn release_review_stage(
        &self,
        request: Request<pb::ReleaseReviewStageRequest>,
    ) -> Result<Response<pb::ReleaseReviewStageResponse>, Status> {
        let (c, r) = Caller::and_message(request)?;
        let decision = audit_log::release_decision(&r);
        reply(
            async {
                let mut released = self.review_release(&c, r).await?;
                // Issue 22, item 3: the R-13 results name a checkpoint that includes them.
                released.audit_checkpoints = self.decision_checkpoints(&c, &decision).await?;
                Ok(released)
            }
            .await,
        )
    }

    async fn stop_site_visit(
        &self,
        request: Request<pb::StopSiteVisitRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.review_stop_site_visit(&c, r).await)
    }

    async fn fix_candidates(
        &self,
        request: Request<pb::FixCandidatesRequest>,
    ) -> Result<Response<pb::FixCandidatesResponse>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.selection_fix(&c, r).await)
    }

    async fn request_consultation(
        &self,
        request: Request<pb::RequestConsultationRequest>,
    ) -> Result<Response<pb::Cycle>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.selection_request_consultation(&c, r).await)
    }

    async fn record_consultation_opinion(
        &self,
        request: Request<pb::RecordConsultationOpinionRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.selection_record_opinion(&c, r).await)
    }

    async fn decide_objection(
        &self,
        request: Request<pb::DecideObjectionRequest>,
    ) -> Result<Response<pb::Application>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.selection_decide_objection(&c, r).await)
    }

    async fn open_public_notice(
        &self,
        request: Request<pb::OpenPublicNoticeRequest>,
    ) -> Result<Response<pb::PublicNotice>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.selection_open_notice(&c, r).await)
    }

    async fn get_public_notice(
        &self,
        request: Request<pb::GetPublicNoticeRequest>,
    ) -> Result<Response<pb::PublicNotice>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.selection_get_notice(&c, r).await)
    }

    async fn create_complaint(
        &self,
        request: Request<pb::CreateComplaintRequest>,
    ) -> Result<Response<pb::Complaint>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.selection_complain(&c, r).await)
    }

    async fn list_complaints(
        &self,
        request: Request<pb::ListComplaintsRequest>,
    ) -> Result<Response<pb::ListComplaintsResponse>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.selection_list_complaints(&c, r).await)
    }

    async fn resolve_complaint(
        &self,
        request: Request<pb::ResolveComplaintRequest>,
    ) -> Result<Response<pb::Complaint>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.selection_resolve_complaint(&c, r).await)
    }

    async fn record_committee_meeting(
        &self,
        request: Request<pb::RecordCommitteeMeetingRequest>,
    ) -> Result<Response<pb::CommitteeMeeting>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.selection_committee(&c, r).await)
    }

    async fn cast_committee_ballot(
        &self,
        request: Request<pb::CastCommitteeBallotRequest>,
    ) -> Result<Response<pb::CommitteeBallot>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.committee_ballot(&c, r).await)
    }

    async fn record_approval(
        &self,
        request: Request<pb::RecordApprovalRequest>,
    ) -> Result<Response<pb::Cycle>, Status> {
        let (c, r) = Caller::and_message(request)?;
        let decision = audit_log::award_decision(&r.name);
        reply(
            async {
                let mut cycle = self.selection_approve(&c, r).await?;
                // Issue 22, item 3: the award names a checkpoint that includes it.
                cycle.award_audit_checkpoints = self.decision_checkpoints(&c, &decision).await?;
                Ok(cycle)
            }
            .await,
        )
    }

    async fn file_report(
        &self,
        request: Request<pb::FileReportRequest>,
    ) -> Result<Response<pb::WinnerReport>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.duties_file(&c, r).await)
    }

    async fn list_reports(
        &self,
        request: Request<pb::ListReportsRequest>,
    ) -> Result<Response<pb::ListReportsResponse>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.duties_list(&c, r).await)
    }

    async fn revoke_award(
        &self,
        request: Request<pb::RevokeAwardRequest>,
    ) -> Result<Response<pb::Revocation>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.revocation_open(&c, r).await)
    }

    async fn assign_complaint(
        &self,
        request: Request<pb::AssignComplaintRequest>,
    ) -> Result<Response<pb::Complaint>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.complaint_assign(&c, r).await)
    }

    async fn get_complaint(
        &self,
        request: Request<pb::GetComplaintRequest>,
    ) -> Result<Response<pb::Complaint>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.complaint_get(&c, r).await)
    }

    async fn request_recheck(
        &self,
        request: Request<pb::RequestRecheckRequest>,
    ) -> Result<Response<pb::Recheck>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.recheck_request(&c, r).await)
    }

    async fn decide_recheck(
        &self,
        request: Request<pb::DecideRecheckRequest>,
    ) -> Result<Response<pb::Recheck>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.recheck_decide(&c, r).await)
    }

    async fn review_revocation(
        &self,
        request: Request<pb::ReviewRevocationRequest>,
    ) -> Result<Response<pb::Revocation>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.revocation_review(&c, r).await)
    }

    async fn approve_revocation(
        &self,
        request: Request<pb::ApproveRevocationRequest>,
    ) -> Result<Response<pb::Revocation>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.revocation_approve(&c, r).await)
    }

    async fn list_overdue_reports(
        &self,
        request: Request<pb::ListOverdueReportsRequest>,
    ) -> Result<Response<pb::ListOverdueReportsResponse>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.duties_overdue(&c, r).await)
    }

    async fn export_cycle_record(
        &self,
        request: Request<pb::ExportCycleRecordRequest>,
    ) -> Result<Response<pb::CycleRecordArchive>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.export_cycle(&c, r).await)
    }

    async fn check_eligibility(
        &self,
        request: Request<pb::CheckEligibilityRequest>,
    ) -> Result<Response<pb::CheckEligibilityResponse>, Status> {
        let (c, r) = Caller::and_message(request)?;
        reply(self.cycle_check_eligibility(&c, r).await)
    }
}
