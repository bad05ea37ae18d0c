//! AIP-155 request ids: a retry gets the first answer, a reused id with another request is
//! refused, and the answer exists exactly when the change does.

use qaward_kit::{
    ErrorCode,
    auth::{Caller, Role},
    idempotency::{self, RequestKey},
    testing,
};

fn caller() -> Caller {
    Caller {
        subject: "office-1".into(),
        role: Role::Office,
        org: None,
        programme: None,
        token: String::new(),
    }
}

// Any prost message will do as request and response.
type Msg = qaward_proto::qaward::common::v1::Explanation;

fn msg(rule: &str) -> Msg {
    Msg {
        rule: rule.into(),
        message: "m".into(),
        inputs: [
            ("b".to_string(), "2".to_string()),
            ("a".to_string(), "1".to_string()),
        ]
        .into_iter()
        .collect(),
    }
}

#[tokio::test]
async fn a_retry_gets_the_stored_answer_and_a_reused_id_is_refused() {
    for db in testing::backends("idem", &testing::no_migrations()).await {
        let key = RequestKey::new("Create", &caller(), "3f2a-1", &msg("R-01"))
            .unwrap()
            .unwrap();
        let mut tx = db.begin().await.unwrap();
        assert_eq!(
            idempotency::recall::<Msg>(&mut tx, &key).await.unwrap(),
            None
        );
        idempotency::remember(
            &mut tx,
            &key,
            time::OffsetDateTime::now_utc(),
            &msg("answer"),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();

        let mut conn = db.pool().acquire().await.unwrap();
        let again = RequestKey::new("Create", &caller(), "3f2a-1", &msg("R-01"))
            .unwrap()
            .unwrap();
        assert_eq!(
            idempotency::recall::<Msg>(&mut conn, &again).await.unwrap(),
            Some(msg("answer")),
            "{}",
            db.label
        );
        let other = RequestKey::new("Create", &caller(), "3f2a-1", &msg("R-02"))
            .unwrap()
            .unwrap();
        let err = idempotency::recall::<Msg>(&mut conn, &other)
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArgument);
        assert_eq!(err.violations[0].field, "request_id");
    }
}

#[tokio::test]
async fn no_request_id_means_no_idempotency_and_a_bad_one_is_invalid() {
    assert!(
        RequestKey::new("Create", &caller(), "", &msg("x"))
            .unwrap()
            .is_none()
    );
    let err = RequestKey::new("Create", &caller(), "has space", &msg("x")).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    let err = RequestKey::new("Create", &caller(), &"a".repeat(65), &msg("x")).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
}

#[tokio::test]
async fn the_same_request_always_hashes_alike() {
    // Maps are ordered (BTreeMap), so equal requests encode to equal bytes.
    let a = RequestKey::new("Create", &caller(), "k", &msg("R-01"))
        .unwrap()
        .unwrap();
    for _ in 0..20 {
        let b = RequestKey::new("Create", &caller(), "k", &msg("R-01"))
            .unwrap()
            .unwrap();
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }
}
