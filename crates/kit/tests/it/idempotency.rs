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
        issuer: "qaward-local".into(),
        subject: "office-1".into(),
        role: Role::Office,
        org: None,
        programme: None,
        registry_keeper: false,
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
async fn a_retry_gets_the_stored_answer_sealed_at_rest_and_a_reused_id_is_refused() {
    use qaward_kit::fields::{Algorithm, FieldKeys};
    let keys = FieldKeys::ephemeral(Algorithm::Sm4Gcm);
    let keys = Some(&keys);
    for db in testing::backends("idem", &testing::no_migrations()).await {
        let key = RequestKey::new("Create", &caller(), "3f2a-1", &msg("R-01"))
            .unwrap()
            .unwrap();
        let mut tx = db.begin().await.unwrap();
        assert_eq!(
            idempotency::recall::<Msg>(&mut tx, &key, keys)
                .await
                .unwrap(),
            None
        );
        let mut answer = msg("answer");
        answer.message = "13800000001".into();
        idempotency::remember(
            &mut tx,
            &key,
            time::OffsetDateTime::now_utc(),
            &answer,
            keys,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        // the stored answer may hold personal data; it is sealed, not kept in clear.
        let stored: Vec<u8> = sqlx::Row::get(
            &sqlx::query("SELECT response FROM request_log")
                .fetch_one(db.pool())
                .await
                .unwrap(),
            "response",
        );
        assert!(stored.starts_with(b"\0enc1:sm4-gcm:k1:"), "{}", db.label);
        assert!(!stored.windows(11).any(|w| w == b"13800000001"));

        let mut conn = db.pool().acquire().await.unwrap();
        let again = RequestKey::new("Create", &caller(), "3f2a-1", &msg("R-01"))
            .unwrap()
            .unwrap();
        assert_eq!(
            idempotency::recall::<Msg>(&mut conn, &again, keys)
                .await
                .unwrap(),
            Some(answer.clone()),
            "{}",
            db.label
        );
        let other = RequestKey::new("Create", &caller(), "3f2a-1", &msg("R-02"))
            .unwrap()
            .unwrap();
        let err = idempotency::recall::<Msg>(&mut conn, &other, keys)
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

/// Fifty callers send the same first create at once with one request id (a client's retries
/// racing each other): every one gets the same answer, and the change is made once — the
/// second waits for the first instead of racing it (AIP-155; Stripe's idempotency keys do the
/// same). The change's id is the server's, so nothing else would stop a second one.
#[tokio::test]
async fn concurrent_first_calls_with_one_request_id_all_get_the_one_answer() {
    use qaward_kit::{
        audit::AuditRecord,
        change::{self, Done},
    };
    for t in testing::backends("idem", &testing::no_migrations()).await {
        sqlx::query("CREATE TABLE things (id TEXT PRIMARY KEY)")
            .execute(t.db.pool())
            .await
            .unwrap();
        let key = RequestKey::new("CreateThing", &caller(), "same-key-1", &msg("thing"))
            .unwrap()
            .unwrap();
        let mut calls = Vec::new();
        for _ in 0..50 {
            let (db, key) = (t.db.clone(), key.clone());
            calls.push(tokio::spawn(async move {
                change::run(
                    &db,
                    time::OffsetDateTime::now_utc(),
                    Some(key),
                    |mut tx| async move {
                        let id = uuid::Uuid::new_v4().to_string();
                        sqlx::query("INSERT INTO things (id) VALUES ($1)")
                            .bind(&id)
                            .execute(&mut *tx)
                            .await?;
                        let record =
                            AuditRecord::by(&caller(), "thing.create", format!("things/{id}"));
                        Ok(Done::new(tx, record, msg(&id)))
                    },
                )
                .await
            }));
        }
        let mut answers = Vec::new();
        for call in calls {
            answers.push(
                call.await
                    .unwrap()
                    .map(|m: Msg| m.rule)
                    .map_err(|e| e.reason.clone()),
            );
        }
        let first = answers[0].clone();
        assert!(first.is_ok(), "{}: {first:?}", t.label);
        assert!(
            answers.iter().all(|a| *a == first),
            "{}: {:?}",
            t.label,
            answers.iter().filter(|a| **a != first).collect::<Vec<_>>()
        );
        let made: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM things")
            .fetch_one(t.db.pool())
            .await
            .unwrap();
        assert_eq!(made, 1, "{}", t.label);
    }
}

/// An answer stored before identities named their issuer (the subject alone in the key), and
/// an audit trail of that time.
async fn write_as_before(db: &qaward_kit::db::Database, answer: &Msg) {
    use prost::Message;
    use sha2::Digest;
    sqlx::query(
        "INSERT INTO request_log (method, subject, request_id, request_hash, response, created_micros)
         VALUES ('Create', 'office-1', 'before-upgrade', $1, $2, 1)",
    )
    .bind(hex::encode(sha2::Sha256::digest(msg("R-01").encode_to_vec())))
    .bind(answer.encode_to_vec())
    .execute(db.pool())
    .await
    .unwrap();
    let mut tx = db.begin().await.unwrap();
    let record = qaward_kit::audit::AuditRecord {
        actor: "office-1".into(),
        role: "office".into(),
        action: "application.create".into(),
        resource: "programmes/yunyang/cycles/2027/applications/a1".into(),
        reason: String::new(),
        detail: serde_json::Value::Null,
    };
    qaward_kit::audit::append(&mut tx, time::OffsetDateTime::now_utc(), &record)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn a_retry_of_a_request_answered_before_identities_named_their_issuer_gets_its_first_answer()
{
    use qaward_kit::{audit, identities};
    // An answer stored in clear by an earlier version still reads once sealing is on.
    let keys = qaward_kit::fields::FieldKeys::ephemeral(qaward_kit::fields::Algorithm::Sm4Gcm);
    for db in testing::backends("idem_upgrade", &testing::no_migrations()).await {
        write_as_before(&db, &msg("first answer")).await;
        assert!(
            identities::qualify_stored(&db, "idem_upgrade", "qaward-local")
                .await
                .unwrap()
        );
        let key = RequestKey::new("Create", &caller(), "before-upgrade", &msg("R-01"))
            .unwrap()
            .unwrap();
        let mut conn = db.pool().acquire().await.unwrap();
        assert_eq!(
            idempotency::recall::<Msg>(&mut conn, &key, Some(&keys))
                .await
                .unwrap(),
            Some(msg("first answer")),
            "{}: the retry finds the answer stored under the bare subject",
            db.label
        );
        // The same subject of another issuer is someone else.
        let stranger = Caller {
            issuer: "https://idp.wanzhou.gov.cn".into(),
            ..caller()
        };
        let key = RequestKey::new("Create", &stranger, "before-upgrade", &msg("R-01"))
            .unwrap()
            .unwrap();
        assert_eq!(
            idempotency::recall::<Msg>(&mut conn, &key, Some(&keys))
                .await
                .unwrap(),
            None
        );
        drop(conn);
        // The trail is intact and says from where on actors name their issuer.
        assert!(matches!(
            audit::verify(&db).await.unwrap(),
            audit::Verdict::Intact { rows: 2, .. }
        ));
        let mut conn = db.pool().acquire().await.unwrap();
        let rows = audit::entries_under(&mut conn, "").await.unwrap();
        let marker = rows.last().unwrap();
        assert_eq!(marker.record.action, identities::AUDIT_ACTION);
        assert_eq!(marker.record.actor, "qaward-local#system:idem_upgrade");
        assert_eq!(
            marker.record.detail["earlier_actors_are_subjects_of"],
            "qaward-local"
        );
        drop(conn);
        // Once only: a second migration changes nothing.
        assert!(
            !identities::qualify_stored(&db, "idem_upgrade", "qaward-local")
                .await
                .unwrap()
        );
        assert!(matches!(
            audit::verify(&db).await.unwrap(),
            audit::Verdict::Intact { rows: 2, .. }
        ));
    }
}
