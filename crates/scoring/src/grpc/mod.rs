//! The gRPC surface of `qaward.scoring.v1.ScoringService`, one file per resource:
//!
//! | file          | methods                                                          |
//! |---------------|------------------------------------------------------------------|
//! | `rubrics`     | Create/Get/ListRubrics                                    |
//! | `assignments` | Create/ListAssignments: who scores which application (R-12, R-14) |
//! | `sheets`      | Save/Get/List/Submit/CorrectSheet             |
//! | `consensus`   | Open/SignConsensus, reserved opinions (R-12, Rev. Art. 6(4))     |
//! | `leaders`     | RecordLeadersMeeting: the group leaders' meeting (Art. 16(5)4)    |
//! | `logs`        | Save/GetReviewLog: the hearing and site-visit logs (Art. 16(4-5)) |
//! | `results`     | ReleaseStage, ComputeResults, GetFeedbackReport   |
//! | `convert`     | proto ↔ domain                                                   |
//! | `names`       | the resource names this service parses                           |
//!
//! A handler parses its request (field violations at the edge), checks who the record belongs
//! to, loads, lets a `domain` function decide, stores — and commits the change with its audit
//! record through [`ScoringApi::change`]. The trait methods below only route.

mod assignments;
mod consensus;
mod convert;
mod leaders;
mod logs;
mod names;
mod results;
mod rubrics;
mod sheets;

use pb::scoring_service_server::ScoringService;
use qaward_kit::{
    Result,
    auth::{Caller, Role},
    change::{self, Done, reply},
    db::{Database, Tx},
    idempotency::RequestKey,
    server::ServiceContext,
};
use qaward_proto::qaward::common::v1 as common;
use qaward_proto::qaward::scoring::v1 as pb;
use tonic::{Request, Response, Status};

pub use results::compute_cycle;

type Answer<M> = std::result::Result<Response<M>, Status>;

pub struct ScoringApi {
    db: Database,
    ctx: ServiceContext,
}

impl ScoringApi {
    pub fn new(db: Database, ctx: ServiceContext) -> Self {
        // Stored answers are sealed with the field keys.
        ScoringApi {
            db: db.with_fields(ctx.fields.clone()),
            ctx,
        }
    }

    fn now(&self) -> time::OffsetDateTime {
        self.ctx.clock.now()
    }

    /// Today in China (the day a panel's window is counted in).
    fn today(&self) -> time::Date {
        qaward_kit::clock::china_date(self.now())
    }

    fn now_micros(&self) -> i64 {
        qaward_kit::clock::unix_micros(self.now())
    }

    fn new_id(&self) -> String {
        let mut b = [0u8; 8];
        self.ctx.randomness.fill(&mut b);
        hex::encode(b)
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

/// The office and the supervisor read every record of the service.
/// Whether `c` is the office or the supervisor of the programme `cycle` belongs to. Staff of
/// another programme are outsiders here: they read and change nothing of it.
fn staff_of(c: &Caller, cycle: &str) -> bool {
    matches!(c.role, Role::Office | Role::Supervisor)
        && c.programme_id() == Some(names::programme_of(cycle))
}

impl ScoringApi {
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
impl ScoringService for ScoringApi {
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

    async fn create_rubric(&self, r: Request<pb::CreateRubricRequest>) -> Answer<pb::Rubric> {
        let (c, r) = Caller::and_message(r)?;
        reply(rubrics::create(self, &c, r).await)
    }

    async fn get_rubric(&self, r: Request<pb::GetRubricRequest>) -> Answer<pb::Rubric> {
        reply(rubrics::get(self, r.into_inner()).await)
    }

    async fn list_rubrics(
        &self,
        r: Request<pb::ListRubricsRequest>,
    ) -> Answer<pb::ListRubricsResponse> {
        reply(rubrics::list(self, r.into_inner()).await)
    }

    async fn create_assignment(
        &self,
        r: Request<pb::CreateAssignmentRequest>,
    ) -> Answer<pb::Assignment> {
        let (c, r) = Caller::and_message(r)?;
        reply(assignments::create(self, &c, r).await)
    }

    async fn list_assignments(
        &self,
        r: Request<pb::ListAssignmentsRequest>,
    ) -> Answer<pb::ListAssignmentsResponse> {
        let (c, r) = Caller::and_message(r)?;
        reply(assignments::list(self, &c, r).await)
    }

    async fn hold_assignment(
        &self,
        r: Request<pb::HoldAssignmentRequest>,
    ) -> Answer<pb::Assignment> {
        let (c, r) = Caller::and_message(r)?;
        reply(assignments::hold(self, &c, r).await)
    }

    async fn reseat_scorers(&self, r: Request<pb::ReseatScorersRequest>) -> Answer<pb::Assignment> {
        let (c, r) = Caller::and_message(r)?;
        reply(assignments::reseat(self, &c, r).await)
    }

    async fn exclude_application(
        &self,
        r: Request<pb::ExcludeApplicationRequest>,
    ) -> Answer<pb::Exclusion> {
        let (c, r) = Caller::and_message(r)?;
        reply(results::exclude(self, &c, r).await)
    }

    async fn list_result_versions(
        &self,
        r: Request<pb::ListResultVersionsRequest>,
    ) -> Answer<pb::ListResultVersionsResponse> {
        let (c, r) = Caller::and_message(r)?;
        reply(results::versions(self, &c, r).await)
    }

    async fn save_sheet(&self, r: Request<pb::SaveSheetRequest>) -> Answer<pb::Sheet> {
        let (c, r) = Caller::and_message(r)?;
        reply(sheets::save(self, &c, r).await)
    }

    async fn get_sheet(&self, r: Request<pb::GetSheetRequest>) -> Answer<pb::Sheet> {
        let (c, r) = Caller::and_message(r)?;
        reply(sheets::get(self, &c, r).await)
    }

    async fn list_sheets(
        &self,
        r: Request<pb::ListSheetsRequest>,
    ) -> Answer<pb::ListSheetsResponse> {
        let (c, r) = Caller::and_message(r)?;
        reply(sheets::list(self, &c, r).await)
    }

    async fn submit_sheet(&self, r: Request<pb::SubmitSheetRequest>) -> Answer<pb::Sheet> {
        let (c, r) = Caller::and_message(r)?;
        reply(sheets::submit(self, &c, r).await)
    }

    async fn correct_sheet(&self, r: Request<pb::CorrectSheetRequest>) -> Answer<pb::Sheet> {
        let (c, r) = Caller::and_message(r)?;
        reply(sheets::correct(self, &c, r).await)
    }

    async fn open_consensus(
        &self,
        r: Request<pb::OpenConsensusRequest>,
    ) -> Answer<pb::ConsensusView> {
        let (c, r) = Caller::and_message(r)?;
        reply(consensus::open(self, &c, r).await)
    }

    async fn sign_consensus(&self, r: Request<pb::SignConsensusRequest>) -> Answer<pb::Sheet> {
        let (c, r) = Caller::and_message(r)?;
        reply(consensus::sign(self, &c, r).await)
    }

    async fn reserve_opinion(
        &self,
        r: Request<pb::ReserveOpinionRequest>,
    ) -> Answer<pb::ReservedOpinion> {
        let (c, r) = Caller::and_message(r)?;
        reply(consensus::reserve_opinion(self, &c, r).await)
    }

    async fn list_reserved_opinions(
        &self,
        r: Request<pb::ListReservedOpinionsRequest>,
    ) -> Answer<pb::ListReservedOpinionsResponse> {
        let (c, r) = Caller::and_message(r)?;
        reply(consensus::list_reserved_opinions(self, &c, r).await)
    }

    async fn save_review_log(&self, r: Request<pb::SaveReviewLogRequest>) -> Answer<pb::ReviewLog> {
        let (c, r) = Caller::and_message(r)?;
        reply(logs::save(self, &c, r).await)
    }

    async fn get_review_log(&self, r: Request<pb::GetReviewLogRequest>) -> Answer<pb::ReviewLog> {
        let (c, r) = Caller::and_message(r)?;
        reply(logs::get(self, &c, r).await)
    }

    async fn record_leaders_meeting(
        &self,
        r: Request<pb::RecordLeadersMeetingRequest>,
    ) -> Answer<pb::LeadersMeeting> {
        let (c, r) = Caller::and_message(r)?;
        reply(leaders::record(self, &c, r).await)
    }

    async fn release_stage(
        &self,
        r: Request<pb::ReleaseStageRequest>,
    ) -> Answer<pb::ReleaseStageResponse> {
        let (c, r) = Caller::and_message(r)?;
        reply(results::release_stage(self, &c, r).await)
    }

    async fn compute_results(
        &self,
        r: Request<pb::ComputeResultsRequest>,
    ) -> Answer<pb::CycleResults> {
        let (c, r) = Caller::and_message(r)?;
        reply(results::compute(self, &c, r).await)
    }

    async fn get_feedback_report(
        &self,
        r: Request<pb::GetFeedbackReportRequest>,
    ) -> Answer<pb::FeedbackReport> {
        let (c, r) = Caller::and_message(r)?;
        reply(results::feedback_report(self, &c, r).await)
    }
}
