//! Bad input across the edge, for every public method: over HTTP/JSON a missing token,
//! malformed JSON, an unknown field, an oversized body and a wrongly typed query parameter; over
//! gRPC a missing token and a message that is not the method's. Each gets its documented
//! error, naming the problem, from the gateway — and nothing changes: every service's audit
//! trail has the same rows afterwards.

use qaward_gateway::transcode::Routes;
use tonic::{Code, client::Grpc};
use tonic_prost::ProstCodec;

use crate::support::{Qaward, qaward};

/// One HTTP/1.1 exchange over a plain socket: (status, JSON body).
fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n",
        body.len(),
        token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default(),
    )
    .into_bytes();
    request.extend_from_slice(body);
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    // The server may answer (413) before reading the whole body; that is fine.
    let _ = s.write_all(&request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let raw = String::from_utf8_lossy(&out);
    let status: u16 = raw.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let json = raw
        .split("\r\n\r\n")
        .nth(1)
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(serde_json::Value::Null);
    (status, json)
}

/// The row counts `qaward audit verify` reports for every service.
fn audit_rows(q: &Qaward) -> Vec<String> {
    ["applications", "reviewers", "scoring", "notifications"]
        .iter()
        .map(|target| {
            let out = qaward(&["audit", "verify", "--target", target, "--data-dir"])
                .arg(q.data_dir.path())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        })
        .collect()
}

#[tokio::test]
async fn every_method_refuses_bad_input_at_the_edge_with_its_error_and_changes_nothing() {
    // No rate limits here: the test is one caller making hundreds of calls, a few hundred of
    // them without a token from one address (the edge's limit on failed authentications is
    // tested in the gateway's edge tests).
    let q = Qaward::start(
        &[],
        &[
            ("QAWARD_GATEWAY__RATE_PER_SECOND", "0"),
            ("QAWARD_GATEWAY__FAILED_AUTH_PER_SECOND", "0"),
        ],
    )
    .await;
    // A token of a role each method allows, so what is checked is the input, not the role.
    let tokens: std::collections::HashMap<qaward_kit::auth::Role, String> =
        qaward_kit::auth::Role::ALL
            .iter()
            .map(|role| {
                let token = q.token_for(
                    role.as_str(),
                    "caller-1",
                    &["--programme", "yunyang", "--org", "91500235MA5U7XXX0X"],
                );
                (*role, token)
            })
            .collect();
    let allowed = |grpc_path: &str| {
        let rule = qaward::policy()
            .rule_of(grpc_path)
            .expect("a row for every method");
        tokens[&rule.roles[0]].clone()
    };
    // A method only the services call (ListEvents) is not at the public edge: the gateway
    // refuses the service role, so every caller there is refused before the input is read.
    let internal = |grpc_path: &str| {
        let rule = qaward::policy()
            .rule_of(grpc_path)
            .expect("a row for every method");
        rule.roles == [qaward_kit::auth::Role::Service]
    };
    let before = audit_rows(&q);
    let routes = Routes::from_descriptors(qaward_proto::FILE_DESCRIPTOR_SET).unwrap();
    let http_addr = q.addr("gateway-http");
    let oversized = {
        let mut b = b"{\"x\": \"".to_vec();
        b.extend(std::iter::repeat_n(b'a', 5 * 1024 * 1024));
        b.extend_from_slice(b"\"}");
        b
    };
    let mut problems = Vec::new();
    let mut checks = 0;
    for route in routes.all() {
        let path = route.template.example();
        let method = route.http_method.as_str();
        let what = format!("{method} {path}");
        let mut expect = |got: (u16, serde_json::Value), status: u16, names: &str, case: &str| {
            checks += 1;
            let message = got.1["error"]["message"].as_str().unwrap_or_default();
            if got.0 != status || !message.contains(names) {
                problems.push(format!(
                    "{what} ({case}): want {status} naming {names:?}, got {} {}",
                    got.0, got.1
                ));
            }
        };
        let no_token = tokio::task::spawn_blocking({
            let path = path.clone();
            let method = method.to_string();
            move || http(http_addr, &method, &path, None, b"")
        })
        .await
        .unwrap();
        expect(no_token, 401, "token", "no token");
        let office = allowed(&route.grpc_path);
        let has_json_body = !route.body.is_empty() && !route.client_streaming;
        if has_json_body {
            for (body, status, names, case) in [
                (b"{".to_vec(), 400, "JSON", "malformed JSON"),
                (b"{\"colour\": 1}".to_vec(), 400, "colour", "unknown field"),
                (oversized.clone(), 413, "larger", "oversized body"),
            ] {
                let (path, method, token) = (path.clone(), method.to_string(), office.clone());
                let got = tokio::task::spawn_blocking(move || {
                    http(http_addr, &method, &path, Some(&token), &body)
                })
                .await
                .unwrap();
                expect(got, status, names, case);
            }
        }
        if route.http_method == http::Method::GET
            && route.input.get_field_by_name("page_size").is_some()
        {
            let (path, token) = (format!("{path}?pageSize=many"), office.clone());
            let got = tokio::task::spawn_blocking(move || {
                http(http_addr, "GET", &path, Some(&token), b"")
            })
            .await
            .unwrap();
            if internal(&route.grpc_path) {
                expect(got, 403, "gateway", "an internal method at the edge");
            } else {
                expect(got, 400, "pageSize", "wrongly typed query");
            }
        }
    }

    // gRPC, every method through the gateway: no token; then a message that is not the
    // method's (a string field declared longer than the bytes behind it).
    let channel = q.channel("gateway").await;
    for route in routes.all() {
        let path: http::uri::PathAndQuery = route.grpc_path.parse().unwrap();
        let mut grpc = Grpc::new(channel.clone());
        grpc.ready().await.unwrap();
        let unauthenticated = grpc
            .unary(
                tonic::Request::new(()),
                path.clone(),
                ProstCodec::<(), ()>::default(),
            )
            .await
            .unwrap_err();
        checks += 1;
        if unauthenticated.code() != Code::Unauthenticated {
            problems.push(format!(
                "{} without a token: {unauthenticated:?}",
                route.grpc_path
            ));
        }
        if route.client_streaming {
            continue;
        }
        let mut request = tonic::Request::new(Garbage);
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", allowed(&route.grpc_path))
                .parse()
                .unwrap(),
        );
        grpc.ready().await.unwrap();
        let refused = grpc.unary(request, path, GarbageCodec).await.unwrap_err();
        checks += 1;
        if internal(&route.grpc_path) {
            if refused.code() != Code::PermissionDenied {
                problems.push(format!(
                    "{} is internal, yet the gateway let it through: {refused:?}",
                    route.grpc_path
                ));
            }
            continue;
        }
        // The message names the request type (and, from a service, the field that broke).
        if refused.code() != Code::InvalidArgument || !refused.message().contains("Request") {
            problems.push(format!(
                "{} with a broken message: {refused:?}",
                route.grpc_path
            ));
        }
    }
    assert!(checks > 400, "{checks}");
    assert!(
        problems.is_empty(),
        "{} of {checks} checks failed:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert_eq!(audit_rows(&q), before, "bad input changed something");
}

/// A request body that is no valid message of any type: field 1, length-delimited, declared
/// 200 bytes long with one byte behind it.
struct Garbage;

#[derive(Clone, Copy)]
struct GarbageCodec;

impl tonic::codec::Codec for GarbageCodec {
    type Encode = Garbage;
    type Decode = ();
    type Encoder = GarbageCodec;
    type Decoder = tonic_prost::ProstDecoder<()>;
    fn encoder(&mut self) -> Self::Encoder {
        *self
    }
    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<(), ()>::default().decoder()
    }
}

impl tonic::codec::Encoder for GarbageCodec {
    type Item = Garbage;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        _: Garbage,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put_slice(&[0x0a, 200, 0x41]);
        Ok(())
    }
}
