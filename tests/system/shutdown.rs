//! SIGTERM stops every service cleanly with exit code 0.

use crate::support::Qaward;

#[tokio::test]
async fn sigterm_stops_all_services_with_exit_code_zero() {
    let q = Qaward::start(&[], &[]).await;
    let reviewers = q.addr("reviewers");
    assert_eq!(q.terminate().await, Some(0));
    // Nothing listens any more.
    assert!(tokio::net::TcpStream::connect(reviewers).await.is_err());
}
