//! The trust boundary from outside (issue 21), on every door of a running `qaward serve`: the
//! gateway's gRPC and HTTP ports and a service's own port. Another award programme's identity
//! provider is configured with its own keys and grant; each probe is an attack that once
//! worked.

use qaward_kit::{
    auth::{Claims, LocalKey, Role},
    testing::reason,
};
use qaward_proto::qaward::reviewers::v1::{
    ImportReviewersRequest, ListReviewersRequest, reviewer_service_client::ReviewerServiceClient,
};
use tonic::Code;

use crate::{
    http_json::http,
    support::{Qaward, with_token},
};

const WANZHOU: &str = "https://idp.wanzhou.gov.cn";

fn signed(key: &LocalKey, iss: &str, role: Role, programme: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    key.sign(&Claims {
        iss: iss.into(),
        aud: "qaward".into(),
        sub: "office-1".into(),
        exp: now + 600,
        iat: now,
        nbf: None,
        role,
        org: None,
        programme: Some(programme.into()),
    })
    .unwrap()
}

#[tokio::test]
async fn another_programmes_identity_provider_speaks_only_for_itself_on_every_door() {
    let wanzhou = LocalKey::from_seed([42u8; 32]);
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("wanzhou-jwks.json");
    std::fs::write(&jwks, wanzhou.jwks_json()).unwrap();
    let other = format!(
        r#"[{{issuer = "{WANZHOU}", jwks_file = "{}", roles = ["office"], programmes = ["wanzhou"]}}]"#,
        jwks.display()
    );
    let q = Qaward::start(&[], &[("QAWARD_AUTH__OTHER_ISSUERS", &other)]).await;

    // (probe, token, the reason every door must give)
    let probes = [
        (
            "Wanzhou's key signs a county office token",
            signed(&wanzhou, "qaward-local", Role::Office, "yunyang"),
            Some("UNKNOWN_KEY"),
        ),
        (
            "Wanzhou speaks for Yunyang's office",
            signed(&wanzhou, WANZHOU, Role::Office, "yunyang"),
            Some("ISSUER_MAY_NOT_ASSERT"),
        ),
        (
            "Wanzhou asserts the supervisor role",
            signed(&wanzhou, WANZHOU, Role::Supervisor, "wanzhou"),
            Some("ISSUER_MAY_NOT_ASSERT"),
        ),
        (
            "Wanzhou's key signs a service token",
            signed(&wanzhou, "qaward-services", Role::Service, "wanzhou"),
            Some("UNKNOWN_KEY"),
        ),
        (
            "Wanzhou's own office, for its own programme",
            signed(&wanzhou, WANZHOU, Role::Office, "wanzhou"),
            None,
        ),
    ];
    let gateway = q.channel("gateway").await;
    let reviewers = q.channel("reviewers").await;
    for (probe, token, refused) in &probes {
        for (door, channel) in [("gateway", &gateway), ("reviewers", &reviewers)] {
            let got = ReviewerServiceClient::new(channel.clone())
                .list_reviewers(with_token(ListReviewersRequest::default(), token))
                .await;
            match refused {
                Some(why) => {
                    let s = got.expect_err(probe);
                    assert_eq!(
                        (s.code(), reason(&s).as_str()),
                        (Code::Unauthenticated, *why),
                        "{probe} at the {door}"
                    );
                }
                None => assert!(got.is_ok(), "{probe} at the {door}: {got:?}"),
            }
        }
        // The HTTP door, as curl would call it.
        let (status, body) = http(&q, "GET", "/v1/reviewers", Some(token), "").await;
        match refused {
            Some(why) => {
                assert_eq!(status, 401, "{probe} over HTTP: {body}");
                assert_eq!(body["error"]["details"][0]["reason"], *why, "{probe}");
            }
            None => assert_eq!(status, 200, "{probe} over HTTP: {body}"),
        }
    }

    // Wanzhou's office reads the shared registry but does not write it.
    let own = signed(&wanzhou, WANZHOU, Role::Office, "wanzhou");
    let s = ReviewerServiceClient::new(reviewers.clone())
        .import_reviewers(with_token(
            ImportReviewersRequest {
                format: 1,
                encoding: 1,
                content: "姓名,手机号,身份证号,证书编号,证书有效期起,证书有效期止,专业,工作单位统一社会信用代码,组长资格,状态\n".into(),
                request_id: String::new(),
            },
            &own,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (s.code(), reason(&s).as_str()),
        (Code::PermissionDenied, "NOT_REGISTRY_KEEPER")
    );

    // The county's own key (which `qaward token` signs with) cannot mint a service token
    // (tests/system/policy.rs shows the services' key can, and only service ports admit it).
    let people = LocalKey::load_or_create(q.data_dir.path()).unwrap();
    let forged = signed(&people, "qaward-local", Role::Service, "yunyang");
    let s = ReviewerServiceClient::new(reviewers.clone())
        .list_reviewers(with_token(ListReviewersRequest::default(), &forged))
        .await
        .unwrap_err();
    assert_eq!(reason(&s), "ISSUER_MAY_NOT_ASSERT");
}
