//! The gRPC surface of `qaward.notifications.v1.NotificationService`.

use qaward_kit::{db::Database, server::ServiceContext};
use qaward_proto::qaward::notifications::v1::notification_service_server::NotificationService;

/// The service's handlers. Methods it does not override answer UNIMPLEMENTED (the generated
/// default), until their issue builds them.
pub struct NotificationsApi {
    #[expect(dead_code, reason = "read by the methods issue #5 builds")]
    db: Database,
    #[expect(dead_code, reason = "read by the methods issue #5 builds")]
    ctx: ServiceContext,
}

impl NotificationsApi {
    pub fn new(db: Database, ctx: ServiceContext) -> Self {
        NotificationsApi { db, ctx }
    }
}

#[tonic::async_trait]
impl NotificationService for NotificationsApi {}
