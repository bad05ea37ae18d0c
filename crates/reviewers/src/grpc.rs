//! The gRPC surface of `qaward.reviewers.v1.ReviewerService`.

use qaward_kit::{db::Database, server::ServiceContext};
use qaward_proto::qaward::reviewers::v1::reviewer_service_server::ReviewerService;

/// The service's handlers. Methods it does not override answer UNIMPLEMENTED (the generated
/// default), until their issue builds them.
pub struct ReviewersApi {
    #[expect(dead_code, reason = "read by the methods issue #3 builds")]
    db: Database,
    #[expect(dead_code, reason = "read by the methods issue #3 builds")]
    ctx: ServiceContext,
}

impl ReviewersApi {
    pub fn new(db: Database, ctx: ServiceContext) -> Self {
        ReviewersApi { db, ctx }
    }
}

#[tonic::async_trait]
impl ReviewerService for ReviewersApi {}
