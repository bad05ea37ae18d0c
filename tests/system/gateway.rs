//! Calls through the gateway reach the services exactly as direct calls do: the bearer
//! token travels unchanged and the service itself authenticates it.

use qaward_proto::qaward::reviewers::v1::{
    GetProgrammeRequest, reviewer_service_client::ReviewerServiceClient,
};
use tonic::Code;

use crate::support::{Qaward, with_token};

#[tokio::test]
async fn through_the_gateway_a_call_without_a_token_is_refused_at_the_edge() {
    let q = Qaward::start(&[], &[]).await;
    let mut client = ReviewerServiceClient::new(q.channel("gateway").await);
    let status = client
        .get_programme(GetProgrammeRequest {
            name: "programmes/yunyang".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    // A token signed by some other key is refused as well.
    let forged = "eyJhbGciOiJFZERTQSIsImtpZCI6Inh4In0.eyJzdWIiOiJ4In0.c2ln";
    let status = client
        .get_programme(with_token(
            GetProgrammeRequest {
                name: "programmes/yunyang".into(),
            },
            forged,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

#[tokio::test]
async fn with_a_local_token_the_call_reaches_the_service() {
    let q = Qaward::start(&[], &[]).await;
    let token = q.token_for("office", "office-1", &["--programme", "yunyang"]);
    for channel in [q.channel("gateway").await, q.channel("reviewers").await] {
        let mut client = ReviewerServiceClient::new(channel);
        let status = client
            .get_programme(with_token(
                GetProgrammeRequest {
                    name: "programmes/yunyang".into(),
                },
                &token,
            ))
            .await
            .unwrap_err();
        // Authenticated, authorised for the programme and routed: the service looked it up.
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_refused_not_read() {
    // The scoring service takes the configured limit as it is (the reviewers service raises its
    // own to the registry import limit).
    let q = Qaward::start(&[], &[("QAWARD_SERVER__MAX_MESSAGE_BYTES", "1024")]).await;
    let token = q.token("office", "office-1");
    let mut client =
        qaward_proto::qaward::scoring::v1::scoring_service_client::ScoringServiceClient::new(
            q.channel("scoring").await,
        );
    let status = client
        .get_rubric(with_token(
            qaward_proto::qaward::scoring::v1::GetRubricRequest {
                name: "x".repeat(4096),
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("1024"), "{status:?}");
}
