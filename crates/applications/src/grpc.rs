//! The gRPC surface of `qaward.applications.v1.ApplicationService`.

use qaward_kit::{db::Database, server::ServiceContext};
use qaward_proto::qaward::applications::v1::application_service_server::ApplicationService;

/// The service's handlers. Methods it does not override answer UNIMPLEMENTED (the generated
/// default), until their issue builds them.
pub struct ApplicationsApi {
    #[expect(dead_code, reason = "read by the methods issue #6 and #7 builds")]
    db: Database,
    #[expect(dead_code, reason = "read by the methods issue #6 and #7 builds")]
    ctx: ServiceContext,
}

impl ApplicationsApi {
    pub fn new(db: Database, ctx: ServiceContext) -> Self {
        ApplicationsApi { db, ctx }
    }
}

#[tonic::async_trait]
impl ApplicationService for ApplicationsApi {}
