//! Issue 26, item 1: when the gateway and the services share one `qaward serve`, the gateway
//! calls each service's own stack in process, and the applications service the others; run
//! apart, they call over the network. The two paths must be indistinguishable to a caller:
//! every call of the table below is made through a gateway whose services are reached over
//! loopback and through one whose services are reached in process (the same services, the same
//! databases), on both of its doors, and must get the same answer or the same error, byte for
//! byte — code, message, details, message body; over HTTP/JSON, status and body.

use std::sync::Arc;

use prost::Message;
use qaward::policy;
use qaward_kit::{auth::Role, testing};
use qaward_proto::qaward::{applications::v1 as pb, reviewers::v1 as rpb};
use tonic::Code;

use super::code;
use super::reviews::{
    CYCLE, Upstreams, World, accepted, app, applicant, group, open_cycle, set_up_registry, world,
};

/// A gateway's two doors.
struct Gateway {
    grpc: tonic::transport::Channel,
    http: std::net::SocketAddr,
}

async fn gateway(w: &World, upstreams: &Upstreams) -> Gateway {
    let ctx = &w.paths.ctx;
    // The edge as configured, but no rate limit: the table is one fast caller.
    let mut config = (*ctx.config).clone();
    config.gateway.rate_per_second = 0;
    let edge = || {
        Arc::new(qaward_gateway::Edge::new(
            &config,
            w.keys.verifier.clone(),
            policy(),
        ))
    };
    let host = qaward_gateway::start(ctx, upstreams.clone(), edge()).unwrap();
    let grpc = testing::serve_on_loopback(host).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = listener.local_addr().unwrap();
    tokio::spawn(qaward_gateway::serve_http(
        listener,
        upstreams.clone(),
        edge(),
        Default::default(),
        std::future::pending(),
    ));
    Gateway { grpc, http }
}

/// Message bytes in and out, as they travel: the table's calls are any method's.
#[derive(Clone, Default)]
struct Raw;

impl tonic::codec::Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl tonic::codec::Encoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        let n = bytes::Buf::remaining(src);
        Ok(Some(bytes::Buf::copy_to_bytes(src, n).to_vec()))
    }
}

/// What a caller sees of an answer.
#[derive(Debug, PartialEq)]
enum Seen {
    Grpc {
        code: Code,
        message: String,
        details: Vec<String>,
        body: Vec<u8>,
        request_id: Option<String>,
    },
    Http {
        status: u16,
        retry_after: Option<String>,
        body: String,
    },
}

enum Call {
    Grpc {
        path: &'static str,
        message: Vec<u8>,
    },
    Http {
        method: &'static str,
        path: String,
        body: &'static str,
    },
}

struct Row {
    what: &'static str,
    token: Option<String>,
    /// `grpc-timeout`, on either door.
    timeout: Option<&'static str>,
    call: Call,
    /// The gRPC code the call must get (its HTTP status on the HTTP door, per docs/http.md).
    expect: Code,
}

async fn send(gateway: &Gateway, row: &Row) -> Seen {
    match &row.call {
        Call::Grpc { path, message } => {
            let mut grpc = tonic::client::Grpc::new(gateway.grpc.clone());
            grpc.ready().await.unwrap();
            let mut request = tonic::Request::new(message.clone());
            let m = request.metadata_mut();
            m.insert("x-request-id", "in-process-table".parse().unwrap());
            if let Some(t) = &row.token {
                m.insert("authorization", format!("Bearer {t}").parse().unwrap());
            }
            if let Some(t) = row.timeout {
                m.insert("grpc-timeout", t.parse().unwrap());
            }
            let path = http::uri::PathAndQuery::from_static(path);
            match grpc.unary(request, path, Raw).await {
                Ok(r) => Seen::Grpc {
                    code: Code::Ok,
                    message: String::new(),
                    details: Vec::new(),
                    request_id: r
                        .metadata()
                        .get("x-request-id")
                        .map(|v| v.to_str().unwrap().to_string()),
                    body: r.into_inner(),
                },
                Err(s) => Seen::Grpc {
                    code: s.code(),
                    message: s.message().to_string(),
                    details: details(&s),
                    body: Vec::new(),
                    request_id: s
                        .metadata()
                        .get("x-request-id")
                        .map(|v| v.to_str().unwrap().to_string()),
                },
            }
        }
        Call::Http { method, path, body } => {
            // As curl sends it, over a bare connection.
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut stream = tokio::net::TcpStream::connect(gateway.http).await.unwrap();
            let auth = row
                .token
                .as_ref()
                .map(|t| format!("Authorization: Bearer {t}\r\n"))
                .unwrap_or_default();
            let timeout = row
                .timeout
                .map(|t| format!("grpc-timeout: {t}\r\n"))
                .unwrap_or_default();
            let request = format!(
                "{method} {path} HTTP/1.1\r\nHost: qaward\r\n{auth}{timeout}Accept: application/json\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await.unwrap();
            let answer = String::from_utf8_lossy(&answer).into_owned();
            let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
            let header = |name: &str| {
                head.lines().find_map(|l| {
                    l.split_once(':')
                        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.trim().to_string())
                })
            };
            Seen::Http {
                status: head
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
                retry_after: header("retry-after"),
                body: body.to_string(),
            }
        }
    }
}

/// A status's details, each as text; an `ErrorInfo`'s metadata (a protobuf map, whose order
/// on the wire is any) in key order.
fn details(s: &tonic::Status) -> Vec<String> {
    use tonic_types::{ErrorDetail, StatusExt};
    s.get_error_details_vec()
        .into_iter()
        .map(|d| match d {
            ErrorDetail::ErrorInfo(i) => format!(
                "ErrorInfo {} {} {:?}",
                i.reason,
                i.domain,
                i.metadata
                    .into_iter()
                    .collect::<std::collections::BTreeMap<_, _>>()
            ),
            other => format!("{other:?}"),
        })
        .collect()
}

/// The HTTP status docs/http.md gives a gRPC code.
fn http_status(code: Code) -> u16 {
    match code {
        Code::Ok => 200,
        Code::InvalidArgument => 400,
        Code::FailedPrecondition | Code::AlreadyExists | Code::Aborted => 409,
        Code::Unauthenticated => 401,
        Code::PermissionDenied => 403,
        Code::NotFound => 404,
        Code::ResourceExhausted => 429,
        Code::Unimplemented => 501,
        Code::Unavailable => 503,
        Code::DeadlineExceeded => 504,
        _ => 500,
    }
}

fn grpc(path: &'static str, message: impl Message) -> Call {
    Call::Grpc {
        path,
        message: message.encode_to_vec(),
    }
}

fn table(w: &World, enterprise: &str, applicant: &str) -> Vec<Row> {
    let office = Some(w.office.clone());
    let other_office = Some(w.keys.token_for("office-9", Role::Office, "fengjie"));
    // The office's token with its signature changed.
    let forged = {
        let (signed, signature) = w.office.rsplit_once('.').unwrap();
        let other = if signature.starts_with('A') { "B" } else { "A" };
        Some(format!("{signed}.{other}{}", &signature[1..]))
    };
    let me = Some(w.keys.token_for_org("e", Role::Enterprise, enterprise));
    let nobody = code("91500235MA5U7QP02");
    let programme = |name: &str| pb::GetProgrammeRequest { name: name.into() };
    let get = |path| Call::Http {
        method: "GET",
        path,
        body: "",
    };
    let row = |what, token: &Option<String>, call, expect| Row {
        what,
        token: token.clone(),
        timeout: None,
        call,
        expect,
    };
    vec![
        row(
            "a read of one service",
            &office,
            grpc(
                "/qaward.applications.v1.ApplicationService/GetProgramme",
                programme("programmes/yunyang"),
            ),
            Code::Ok,
        ),
        row(
            "a read that calls reviewers and scoring in turn",
            &office,
            grpc(
                "/qaward.applications.v1.ApplicationService/CheckConsistency",
                pb::CheckConsistencyRequest {
                    cycle: CYCLE.into(),
                },
            ),
            Code::Ok,
        ),
        row(
            "a read that calls reviewers for each group",
            &office,
            grpc(
                "/qaward.applications.v1.ApplicationService/ExportCycleRecord",
                pb::ExportCycleRecordRequest { name: CYCLE.into() },
            ),
            Code::Ok,
        ),
        row(
            "a read of the reviewers' registry",
            &office,
            grpc(
                "/qaward.reviewers.v1.ReviewerService/ListReviewers",
                rpb::ListReviewersRequest {
                    page_size: 5,
                    ..Default::default()
                },
            ),
            Code::Ok,
        ),
        row(
            "an enterprise reads its own application",
            &me,
            grpc(
                "/qaward.applications.v1.ApplicationService/GetApplication",
                pb::GetApplicationRequest {
                    name: app(applicant),
                },
            ),
            Code::Ok,
        ),
        row(
            "a field the service refuses",
            &office,
            grpc(
                "/qaward.applications.v1.ApplicationService/GetProgramme",
                programme("yunyang"),
            ),
            Code::InvalidArgument,
        ),
        row(
            "a record that is not there",
            &office,
            grpc(
                "/qaward.applications.v1.ApplicationService/GetApplication",
                pb::GetApplicationRequest { name: app(&nobody) },
            ),
            Code::NotFound,
        ),
        row(
            "a programme made twice",
            &office,
            grpc(
                "/qaward.applications.v1.ApplicationService/CreateProgramme",
                pb::CreateProgrammeRequest {
                    programme: Some(pb::Programme {
                        display_name: "云阳县县长质量奖".into(),
                        ..Default::default()
                    }),
                    programme_id: "yunyang".into(),
                    request_id: "again-1".into(),
                },
            ),
            Code::AlreadyExists,
        ),
        row(
            "a step the application's stage forbids",
            &me,
            grpc(
                "/qaward.applications.v1.ApplicationService/SubmitApplication",
                pb::SubmitApplicationRequest {
                    name: app(applicant),
                    request_id: "again-2".into(),
                },
            ),
            Code::FailedPrecondition,
        ),
        row(
            "another programme's office, refused by the service's record rule",
            &other_office,
            grpc(
                "/qaward.applications.v1.ApplicationService/GetCycleBoard",
                pb::GetCycleBoardRequest { name: CYCLE.into() },
            ),
            Code::PermissionDenied,
        ),
        row(
            "a role the policy table refuses",
            &me,
            grpc(
                "/qaward.reviewers.v1.ReviewerService/ListReviewers",
                rpb::ListReviewersRequest::default(),
            ),
            Code::PermissionDenied,
        ),
        row(
            "no token",
            &None,
            grpc(
                "/qaward.applications.v1.ApplicationService/GetProgramme",
                programme("programmes/yunyang"),
            ),
            Code::Unauthenticated,
        ),
        row(
            "a token signed by another key",
            &forged,
            grpc(
                "/qaward.applications.v1.ApplicationService/GetProgramme",
                programme("programmes/yunyang"),
            ),
            Code::Unauthenticated,
        ),
        row(
            "a message larger than the gateway takes",
            &office,
            grpc(
                "/qaward.applications.v1.ApplicationService/GetProgramme",
                programme(&"x".repeat(5 << 20)),
            ),
            Code::ResourceExhausted,
        ),
        row(
            "a method no service has",
            &office,
            Call::Grpc {
                path: "/qaward.applications.v1.ApplicationService/Nothing",
                message: Vec::new(),
            },
            Code::Unimplemented,
        ),
        // The HTTP/JSON door.
        row(
            "HTTP: a read of one service",
            &office,
            get(format!("/v1/{CYCLE}")),
            Code::Ok,
        ),
        row(
            "HTTP: a read that calls reviewers and scoring",
            &office,
            get(format!("/v1/{CYCLE}:checkConsistency")),
            Code::Ok,
        ),
        row(
            "HTTP: a record that is not there",
            &office,
            get(format!("/v1/{}", app(&nobody))),
            Code::NotFound,
        ),
        row(
            "HTTP: a field the service refuses",
            &office,
            Call::Http {
                method: "POST",
                path: "/v1/programmes".into(),
                body: r#"{"displayName":"x"}"#,
            },
            Code::InvalidArgument,
        ),
        row(
            "HTTP: another programme's office",
            &other_office,
            get(format!("/v1/{CYCLE}/board")),
            Code::PermissionDenied,
        ),
        row(
            "HTTP: a step the stage forbids",
            &me,
            Call::Http {
                method: "POST",
                path: format!("/v1/{}:submit", app(applicant)),
                body: r#"{"requestId":"again-3"}"#,
            },
            Code::FailedPrecondition,
        ),
        // A deadline already spent when the gateway passes the call on (over gRPC the caller's
        // own client would end the call first, at the same moment: a race, not a path).
        Row {
            timeout: Some("0m"),
            ..row(
                "HTTP: a deadline already spent",
                &office,
                get(format!("/v1/{CYCLE}:export")),
                Code::DeadlineExceeded,
            )
        },
        row(
            "HTTP: no token",
            &None,
            get(format!("/v1/{CYCLE}")),
            Code::Unauthenticated,
        ),
    ]
}

#[tokio::test]
async fn a_call_in_process_gets_the_answer_and_the_error_it_gets_over_the_network() {
    for db in testing::backends("applications", &qaward_applications::MIGRATIONS).await {
        let mut w = world(db).await;
        let label = w.label;
        set_up_registry(&mut w).await;
        open_cycle(&mut w).await;
        // One application accepted and in a started review group (so the cross-service reads
        // call the reviewers and scoring services), one draft.
        let reviewed = code("91500235MA5U7QP01");
        let me = applicant(&mut w, &reviewed, "重庆云阳同答机械有限公司").await;
        accepted(&mut w, &reviewed, &me).await;
        w.clock.set(time::macros::datetime!(2026-07-01 01:00 UTC));
        group(
            &mut w,
            pb::ReviewStage::Materials,
            &[reviewed.as_str()],
            (6, 10),
            "in-process-1",
        )
        .await;
        let network = gateway(&w, &w.paths.network).await;
        let in_process = gateway(&w, &w.paths.in_process).await;

        let rows = table(&w, &reviewed, &reviewed);
        let kinds: std::collections::BTreeSet<i32> = rows.iter().map(|r| r.expect as i32).collect();
        assert!(kinds.len() >= 10, "{label}: the table covers {kinds:?}");
        for row in &rows {
            let over_network = send(&network, row).await;
            let here = send(&in_process, row).await;
            match &over_network {
                Seen::Grpc { code, message, .. } => {
                    assert_eq!(*code, row.expect, "{label}: {}: {message}", row.what)
                }
                Seen::Http { status, body, .. } => assert_eq!(
                    *status,
                    http_status(row.expect),
                    "{label}: {}: {body}",
                    row.what
                ),
            }
            assert_eq!(
                over_network, here,
                "{label}: {}: the network and the in-process paths differ",
                row.what
            );
        }
    }
}
