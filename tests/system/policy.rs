//! The policy table in the running system: every method of every service, called with every
//! role, directly at the service and through the gateway, is refused for the role alone
//! (PERMISSION_DENIED, reason ROLE_NOT_ALLOWED) exactly when `docs/policy.md` says so. An empty
//! request is enough: the table is applied before any handler reads the request, and a handler
//! that refuses an allowed role for its role alone shows up here as a disagreement.

use qaward_kit::auth::Role;
use tonic::{
    Code, Status,
    client::Grpc,
    transport::{Channel, Endpoint},
};
use tonic_prost::ProstCodec;
use tonic_types::StatusExt;

use crate::support::Qaward;

/// Calls `path` with an empty message (the empty encoding is a valid message of every type).
async fn call(channel: Channel, path: &str, token: &str, streaming: bool) -> Result<(), Status> {
    let mut grpc = Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let path: http::uri::PathAndQuery = path.parse().unwrap();
    let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    let codec = ProstCodec::<(), ()>::default();
    if streaming {
        let mut request = tonic::Request::new(tokio_stream::iter(vec![()]));
        request.metadata_mut().insert("authorization", bearer);
        grpc.client_streaming(request, path, codec)
            .await
            .map(|_| ())
    } else {
        let mut request = tonic::Request::new(());
        request.metadata_mut().insert("authorization", bearer);
        grpc.unary(request, path, codec).await.map(|_| ())
    }
}

fn refused_for_role(result: &Result<(), Status>) -> bool {
    match result {
        Err(s) if s.code() == Code::PermissionDenied => s
            .get_error_details()
            .error_info()
            .is_some_and(|i| i.reason == "ROLE_NOT_ALLOWED"),
        _ => false,
    }
}

#[tokio::test]
async fn every_method_answers_every_role_as_the_policy_table_says_at_the_service_and_the_gateway() {
    // Every role calls every method in a burst, well past a caller's rate (more than its 100
    // calls at once): the rate limit is not this test's subject, so it is off.
    let q = Qaward::start(&[], &[("QAWARD_GATEWAY__RATE_PER_SECOND", "0")]).await;
    let channel = |name: &str| {
        Endpoint::from_shared(format!("http://{}", q.addr(name)))
            .unwrap()
            .connect_lazy()
    };
    let gateway = channel("gateway");
    let mut disagreements = Vec::new();
    let mut calls = 0;
    for role in Role::ALL {
        let token = q.token_for(
            role.as_str(),
            "caller-1",
            &["--programme", "yunyang", "--org", "91500235MA5U0XXXXX"],
        );
        for service in qaward::policy().services() {
            // qaward.<name>.v1.<Service>
            let name = service.service.split('.').nth(1).unwrap();
            let direct = channel(name);
            for rule in &service.rules {
                let path = format!("/{}/{}", service.service, rule.method);
                let streaming = rule.method == "UploadEvidence";
                let allowed = rule.roles.contains(&role);
                for (door, ch) in [("service", direct.clone()), ("gateway", gateway.clone())] {
                    // The gateway refuses the service role whatever the row says.
                    let allowed = allowed && !(door == "gateway" && role == Role::Service);
                    let result = call(ch, &path, &token, streaming).await;
                    calls += 1;
                    if refused_for_role(&result) == allowed {
                        disagreements.push(format!(
                            "{path} as {} at the {door}: table says {}, got {:?}",
                            role.as_str(),
                            if allowed { "allowed" } else { "refused" },
                            result
                                .as_ref()
                                .err()
                                .map(|s| (s.code(), s.message().to_string()))
                        ));
                    }
                    // Whatever the answer, the call was answered: never a transport failure.
                    if let Err(s) = &result {
                        assert_ne!(s.code(), Code::Unavailable, "{path}: {s:?}");
                        assert_ne!(s.code(), Code::Unimplemented, "{path}: {s:?}");
                    }
                }
            }
        }
    }
    let methods: usize = qaward::policy().services().map(|s| s.rules.len()).sum();
    assert_eq!(calls, methods * Role::ALL.len() * 2);
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}
