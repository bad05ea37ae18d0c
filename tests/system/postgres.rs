//! With `--database-url postgres://…` every service keeps its data in its own schema of one
//! PostgreSQL database. Runs when QAWARD_TEST_DATABASE_URL is set; says so when skipped.

use crate::support::{Qaward, health};

#[tokio::test]
async fn every_service_serves_from_postgres() {
    let Some(url) = qaward_kit::testing::fresh_postgres_database().await else {
        return;
    };
    let q = Qaward::start(&["--database-url", &url], &[]).await;
    for (name, service) in [
        ("applications", "qaward.applications.v1.ApplicationService"),
        ("reviewers", "qaward.reviewers.v1.ReviewerService"),
        ("scoring", "qaward.scoring.v1.ScoringService"),
        (
            "notifications",
            "qaward.notifications.v1.NotificationService",
        ),
    ] {
        assert_eq!(health(q.channel(name).await, service).await, 1, "{name}");
        assert!(!q.data_dir.path().join(format!("{name}.db")).exists());
    }
    assert_eq!(q.terminate().await, Some(0));
}
