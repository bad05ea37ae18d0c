//! A gRPC transport that speaks the gateway's HTTP/JSON API: the generated clients
//! (`ApplicationServiceClient<HttpJson>`…) work unchanged, and every call goes out as the
//! county platform's would — the route of the method's `google.api.http` annotation, path
//! variables from the request's fields, the body or the query from the rest, proto3 JSON both
//! ways, errors read back from Google's JSON model (reason, rule, field violations, retry
//! delay) into the same gRPC status the service gave. An evidence upload goes as the file
//! itself (`transcode::call_streaming`).
//!
//! It is the client side of `transcode.rs`, so a test can drive the whole award cycle through
//! the HTTP port with the same code that drives it over gRPC.

use std::{collections::HashMap, convert::Infallible, net::SocketAddr, pin::Pin, sync::Arc};

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use prost::Message;
use prost_reflect::{DynamicMessage, Kind, ReflectMessage, SerializeOptions, Value};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::transcode::{Routes, percent_encode};

/// One transport type for the generated clients whichever way they go: a tonic `Channel`
/// (gRPC, to the gateway or a service) or [`HttpJson`], boxed by [`boxed`].
pub type Transport = tower::util::BoxCloneService<
    http::Request<tonic::body::Body>,
    http::Response<tonic::body::Body>,
    Box<dyn std::error::Error + Send + Sync>,
>;

/// `s` as a [`Transport`].
pub fn boxed<S, E>(s: S) -> Transport
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = E,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    use tower::ServiceExt;
    tower::util::BoxCloneService::new(s.map_err(Into::into))
}

/// The transport: one HTTP/1.1 client with keep-alive to the gateway's HTTP port.
#[derive(Clone)]
pub struct HttpJson {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    routes: Arc<Routes>,
}

impl HttpJson {
    /// A transport to the gateway's HTTP port at `addr`.
    pub fn new(addr: SocketAddr) -> Result<HttpJson, String> {
        Ok(HttpJson {
            base: format!("http://{addr}"),
            client: Client::builder(TokioExecutor::new()).build_http(),
            routes: Arc::new(Routes::from_descriptors(qaward_proto::FILE_DESCRIPTOR_SET)?),
        })
    }

    async fn exchange(
        self,
        request: http::Request<tonic::body::Body>,
    ) -> Result<http::Response<tonic::body::Body>, Status> {
        let grpc_path = request.uri().path().to_string();
        let route = self
            .routes
            .of_method(&grpc_path)
            .ok_or_else(|| Status::unimplemented(format!("{grpc_path} has no HTTP binding")))?
            .clone();
        let (parts, body) = request.into_parts();
        let bytes = body
            .collect()
            .await
            .map_err(|e| Status::internal(format!("request body: {e}")))?
            .to_bytes();
        let messages = frames(bytes)?;
        let decode = |b: &Bytes| {
            DynamicMessage::decode(route.input.clone(), b.clone())
                .map_err(|e| Status::internal(format!("request: {e}")))
        };
        let first = decode(
            messages
                .first()
                .ok_or_else(|| Status::internal("a call without a request message"))?,
        )?;
        let (path, used) = route
            .template
            .expand(&first)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let mut rest = first.clone();
        for field in &used {
            clear_path(&mut rest, field);
        }
        let mut query = Vec::new();
        let mut builder = http::Request::builder().method(route.http_method.clone());
        let body = if route.client_streaming {
            // The file is the body; the first message's other fields are the query.
            let mut file = BytesMut::new();
            for m in &messages[1..] {
                if let Some(Value::Bytes(b)) = decode(m)?.get_field_by_name("chunk").as_deref() {
                    file.extend_from_slice(b);
                }
            }
            if let Some(Value::String(t)) = string_field(&first, "header.content_type") {
                builder = builder.header(http::header::CONTENT_TYPE, t);
            }
            clear_path(&mut rest, "header.content_type");
            clear_path(&mut rest, "header.size_bytes");
            query_pairs(&rest, "", &mut query)?;
            file.freeze()
        } else {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
            match route.body.as_str() {
                "*" => json(&rest)?,
                "" => {
                    query_pairs(&rest, "", &mut query)?;
                    Bytes::new()
                }
                field => {
                    let inner = match rest.get_field_by_name(field).as_deref() {
                        Some(Value::Message(m)) => json(m)?,
                        _ => Bytes::from_static(b"{}"),
                    };
                    rest.clear_field_by_name(field);
                    query_pairs(&rest, "", &mut query)?;
                    inner
                }
            }
        };
        let mut uri = format!("{}{path}", self.base);
        if !query.is_empty() {
            let q: Vec<String> = query
                .iter()
                .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
                .collect();
            uri.push('?');
            uri.push_str(&q.join("&"));
        }
        builder = builder.uri(uri);
        for name in [
            "authorization",
            "x-request-id",
            "grpc-timeout",
            "traceparent",
            "tracestate",
        ] {
            if let Some(v) = parts.headers.get(name) {
                builder = builder.header(name, v.clone());
            }
        }
        let http_request = builder
            .body(Full::new(body))
            .map_err(|e| Status::internal(e.to_string()))?;
        let response = self
            .client
            .request(http_request)
            .await
            .map_err(|e| Status::unavailable(format!("the gateway's HTTP port: {e}")))?;
        let ok = response.status() == http::StatusCode::OK;
        let answer = response
            .into_body()
            .collect()
            .await
            .map_err(|e| Status::unavailable(format!("the gateway's answer: {e}")))?
            .to_bytes();
        let value: serde_json::Value = serde_json::from_slice(&answer)
            .map_err(|e| Status::internal(format!("the gateway's answer is not JSON: {e}")))?;
        if !ok {
            return Err(status_of(&value));
        }
        let reply = DynamicMessage::deserialize(route.output.clone(), value).map_err(|e| {
            Status::internal(format!(
                "the answer to {} {} does not fit its message: {e}",
                route.http_method, route.template_text
            ))
        })?;
        Ok(grpc_ok(reply.encode_to_vec()))
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for HttpJson {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            Ok(this
                .exchange(request)
                .await
                .unwrap_or_else(|s| s.into_http()))
        })
    }
}

/// The messages of a gRPC request body (uncompressed length-prefixed frames).
fn frames(mut bytes: Bytes) -> Result<Vec<Bytes>, Status> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < 5 || bytes[0] != 0 {
            return Err(Status::internal("a malformed or compressed gRPC frame"));
        }
        let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
        if bytes.len() < 5 + len {
            return Err(Status::internal("a truncated gRPC frame"));
        }
        let frame = bytes.split_to(5 + len);
        out.push(frame.slice(5..));
    }
    Ok(out)
}

/// One message and status OK, as a gRPC server answers.
fn grpc_ok(message: Vec<u8>) -> http::Response<tonic::body::Body> {
    let mut framed = BytesMut::with_capacity(5 + message.len());
    framed.put_u8(0);
    framed.put_u32(message.len() as u32);
    framed.put_slice(&message);
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    let frames = futures_util::stream::iter([
        Ok::<_, Infallible>(http_body::Frame::data(framed.freeze())),
        Ok(http_body::Frame::trailers(trailers)),
    ]);
    let mut response = http::Response::new(tonic::body::Body::new(
        http_body_util::StreamBody::new(frames),
    ));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    response
}

fn json(m: &DynamicMessage) -> Result<Bytes, Status> {
    let options = SerializeOptions::new().skip_default_fields(true);
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::new(&mut out);
    m.serialize_with_options(&mut ser, &options)
        .map_err(|e| Status::internal(e.to_string()))?;
    Ok(Bytes::from(out))
}

/// The set fields of `m` as query parameters (`pageSize=10`, `header.fileName=…`, one pair per
/// item of a repeated field), as the gateway reads them.
fn query_pairs(
    m: &DynamicMessage,
    prefix: &str,
    out: &mut Vec<(String, String)>,
) -> Result<(), Status> {
    for (field, value) in m.fields() {
        let key = format!("{prefix}{}", field.json_name());
        let items: Vec<&Value> = match value {
            Value::List(items) => items.iter().collect(),
            one => vec![one],
        };
        for v in items {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::I32(n) => n.to_string(),
                Value::I64(n) => n.to_string(),
                Value::U32(n) => n.to_string(),
                Value::U64(n) => n.to_string(),
                Value::F32(n) => n.to_string(),
                Value::F64(n) => n.to_string(),
                Value::EnumNumber(n) => match field.kind() {
                    Kind::Enum(e) => e
                        .get_value(*n)
                        .map(|v| v.name().to_string())
                        .unwrap_or_else(|| n.to_string()),
                    _ => n.to_string(),
                },
                Value::Message(inner) => {
                    query_pairs(inner, &format!("{key}."), out)?;
                    continue;
                }
                _ => {
                    return Err(Status::unimplemented(format!(
                        "{key} cannot be sent in a query"
                    )));
                }
            };
            out.push((key.clone(), text));
        }
    }
    Ok(())
}

fn string_field(m: &DynamicMessage, path: &str) -> Option<Value> {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let field = m.descriptor().get_field_by_name(head)?;
    if !m.has_field(&field) {
        return None;
    }
    match (rest, m.get_field(&field).into_owned()) {
        (Some(rest), Value::Message(inner)) => string_field(&inner, rest),
        (None, v) => Some(v),
        _ => None,
    }
}

fn clear_path(m: &mut DynamicMessage, path: &str) {
    match path.split_once('.') {
        None => m.clear_field_by_name(path),
        Some((head, rest)) => {
            if let Some(field) = m.descriptor().get_field_by_name(head)
                && m.has_field(&field)
                && let Value::Message(inner) = m.get_field_mut(&field)
            {
                clear_path(inner, rest);
            }
        }
    }
}

/// The gRPC status of an answer in Google's JSON error model: code, message, and the details
/// qaward sends (ErrorInfo with the rule, BadRequest, RetryInfo).
pub fn status_of(value: &serde_json::Value) -> Status {
    let e = &value["error"];
    let code = match e["status"].as_str().unwrap_or_default() {
        "CANCELLED" => Code::Cancelled,
        "INVALID_ARGUMENT" => Code::InvalidArgument,
        "DEADLINE_EXCEEDED" => Code::DeadlineExceeded,
        "NOT_FOUND" => Code::NotFound,
        "ALREADY_EXISTS" => Code::AlreadyExists,
        "PERMISSION_DENIED" => Code::PermissionDenied,
        "RESOURCE_EXHAUSTED" => Code::ResourceExhausted,
        "FAILED_PRECONDITION" => Code::FailedPrecondition,
        "ABORTED" => Code::Aborted,
        "OUT_OF_RANGE" => Code::OutOfRange,
        "UNIMPLEMENTED" => Code::Unimplemented,
        "INTERNAL" => Code::Internal,
        "UNAVAILABLE" => Code::Unavailable,
        "DATA_LOSS" => Code::DataLoss,
        "UNAUTHENTICATED" => Code::Unauthenticated,
        _ => Code::Unknown,
    };
    let message = e["message"].as_str().unwrap_or_default().to_string();
    let mut details = ErrorDetails::new();
    for d in e["details"].as_array().into_iter().flatten() {
        match d["@type"].as_str().unwrap_or_default() {
            "type.googleapis.com/google.rpc.ErrorInfo" => {
                let metadata: HashMap<String, String> = d["metadata"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect();
                details.set_error_info(
                    d["reason"].as_str().unwrap_or_default(),
                    d["domain"].as_str().unwrap_or_default(),
                    metadata,
                );
            }
            "type.googleapis.com/google.rpc.BadRequest" => {
                for v in d["fieldViolations"].as_array().into_iter().flatten() {
                    details.add_bad_request_violation(
                        v["field"].as_str().unwrap_or_default(),
                        v["description"].as_str().unwrap_or_default(),
                    );
                }
            }
            "type.googleapis.com/google.rpc.RetryInfo" => {
                let delay = d["retryDelay"]
                    .as_str()
                    .and_then(|s| s.strip_suffix('s'))
                    .and_then(|s| s.parse::<f64>().ok())
                    .map(std::time::Duration::from_secs_f64);
                details.set_retry_info(delay);
            }
            _ => {}
        }
    }
    Status::with_error_details(code, message, details)
}
