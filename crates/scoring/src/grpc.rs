//! The gRPC surface of `qaward.scoring.v1.ScoringService`.

use qaward_kit::{db::Database, server::ServiceContext};
use qaward_proto::qaward::scoring::v1::scoring_service_server::ScoringService;

/// The service's handlers. Methods it does not override answer UNIMPLEMENTED (the generated
/// default), until their issue builds them.
pub struct ScoringApi {
    #[expect(dead_code, reason = "read by the methods issue #4 builds")]
    db: Database,
    #[expect(dead_code, reason = "read by the methods issue #4 builds")]
    ctx: ServiceContext,
}

impl ScoringApi {
    pub fn new(db: Database, ctx: ServiceContext) -> Self {
        ScoringApi { db, ctx }
    }
}

#[tonic::async_trait]
impl ScoringService for ScoringApi {}
