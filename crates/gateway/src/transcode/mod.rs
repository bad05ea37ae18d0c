//! HTTP/JSON transcoding driven by the descriptor set: every method's `google.api.http` rule
//! becomes a route; a request is matched to its rule, its JSON body, path variables and query
//! parameters become the method's request message (proto3 JSON mapping, unknown fields refused),
//! the call goes to the service over gRPC with the caller's token and trace context, and the
//! answer comes back as proto3 JSON — or as Google's JSON error model with the status mapped
//! once (`kit::error::ErrorCode::http_status`). A new method is reachable over HTTP by
//! annotating it; nothing here names a method.

mod routes;
mod template;

use std::{collections::HashMap, sync::Arc};

use bytes::{Buf, BufMut, Bytes};
use http::{HeaderMap, StatusCode, uri::PathAndQuery};
use prost::Message;
use prost_reflect::{
    DeserializeOptions, DynamicMessage, Kind, MessageDescriptor, ReflectMessage, SerializeOptions,
    Value,
};
use qaward_kit::{error::ErrorCode, upstream::Upstream};
use tonic::{
    Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
};
use tonic_types::StatusExt;

pub use routes::{Bindings, Route, Routes};
pub use template::{Template, percent_encode};

/// Sets `path` (dotted, for nested fields) of `msg` from its text form.
fn set_path(msg: &mut DynamicMessage, path: &str, text: &str) -> Result<(), String> {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let desc = msg.descriptor();
    let field = desc
        .get_field_by_name(head)
        .or_else(|| desc.get_field_by_json_name(head))
        .ok_or_else(|| format!("{path}: no such field"))?;
    if let Some(rest) = rest {
        let value = msg.get_field_mut(&field);
        return match value {
            Value::Message(inner) => set_path(inner, rest, text),
            _ => Err(format!("{head} is not a message")),
        };
    }
    let value = match field.kind() {
        Kind::Message(m) if m.full_name() == "google.protobuf.FieldMask" => field_mask(&m, text),
        kind => scalar(&kind, text).map_err(|e| format!("{path}: {e}"))?,
    };
    if field.is_list() {
        if let Value::List(items) = msg.get_field_mut(&field) {
            items.push(value);
        }
    } else {
        msg.set_field(&field, value);
    }
    Ok(())
}

/// A `google.protobuf.FieldMask` from a path or query parameter: comma-separated paths, each
/// written as in its JSON form (`selfAssessment`) or as the field is named (`self_assessment`).
fn field_mask(desc: &MessageDescriptor, text: &str) -> Value {
    let mut mask = DynamicMessage::new(desc.clone());
    let paths = text
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| Value::String(snake_case(p)))
        .collect();
    mask.set_field_by_name("paths", Value::List(paths));
    Value::Message(mask)
}

fn scalar(kind: &Kind, text: &str) -> Result<Value, String> {
    let bad = |what: &str| format!("{text:?} is not {what}");
    Ok(match kind {
        Kind::String => Value::String(text.to_string()),
        Kind::Bool => Value::Bool(text.parse().map_err(|_| bad("true or false"))?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(text.parse().map_err(|_| bad("a 32-bit integer"))?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Value::I64(text.parse().map_err(|_| bad("an integer"))?)
        }
        Kind::Uint32 | Kind::Fixed32 => {
            Value::U32(text.parse().map_err(|_| bad("an unsigned integer"))?)
        }
        Kind::Uint64 | Kind::Fixed64 => {
            Value::U64(text.parse().map_err(|_| bad("an unsigned integer"))?)
        }
        Kind::Double => Value::F64(text.parse().map_err(|_| bad("a number"))?),
        Kind::Float => Value::F32(text.parse().map_err(|_| bad("a number"))?),
        Kind::Enum(e) => match e.get_value_by_name(text) {
            Some(v) => Value::EnumNumber(v.number()),
            None => Value::EnumNumber(text.parse().map_err(|_| bad("a value of this enum"))?),
        },
        Kind::Bytes | Kind::Message(_) => return Err("cannot be set from a path or query".into()),
    })
}

/// The request message of `route` from the HTTP request's parts.
pub fn request_message(
    route: &Route,
    vars: &[(String, String)],
    query: Option<&str>,
    body: &[u8],
) -> Result<DynamicMessage, Status> {
    let invalid = |field: &str, e: String| invalid_argument(field, &e);
    let options = DeserializeOptions::new().deny_unknown_fields(true);
    let parse = |desc: MessageDescriptor| -> Result<DynamicMessage, Status> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(DynamicMessage::new(desc));
        }
        let mut de = serde_json::Deserializer::from_slice(body);
        let m = DynamicMessage::deserialize_with_options(desc, &mut de, &options)
            .map_err(|e| invalid("body", format!("not valid JSON for this request: {e}")))?;
        de.end()
            .map_err(|e| invalid("body", format!("trailing characters: {e}")))?;
        Ok(m)
    };
    let mut msg = match route.body.as_str() {
        "*" => parse(route.input.clone())?,
        "" => {
            if !body.iter().all(u8::is_ascii_whitespace) {
                return Err(invalid("body", "this method takes no body".into()));
            }
            DynamicMessage::new(route.input.clone())
        }
        field => {
            let f = route.input.get_field_by_name(field).ok_or_else(|| {
                Status::internal(format!("body field {field} is not in the request"))
            })?;
            let Kind::Message(inner) = f.kind() else {
                return Err(Status::internal(format!(
                    "body field {field} is not a message"
                )));
            };
            let inner = parse(inner)?;
            let mut m = DynamicMessage::new(route.input.clone());
            m.set_field(&f, Value::Message(inner));
            m
        }
    };
    for (field, value) in vars {
        set_path(&mut msg, field, value).map_err(|e| invalid(field, e))?;
    }
    if let Some(q) = query {
        // application/x-www-form-urlencoded: `+` is a space, `%XX` a byte.
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            if vars.iter().any(|(f, _)| *f == k) {
                continue;
            }
            set_path(&mut msg, &k, &v).map_err(|e| invalid(&k, e))?;
        }
    }
    Ok(msg)
}

fn invalid_argument(field: &str, description: &str) -> Status {
    qaward_kit::Error::invalid(field, description).to_status()
}

/// Passes bytes through untouched: the request is already encoded, and the answer is decoded
/// with the method's descriptor.
#[derive(Debug, Clone, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        let n = src.remaining();
        Ok(Some(src.copy_to_bytes(n)))
    }
}

/// The headers relayed to the service: the caller's token, the trace context, the request id.
const RELAYED: &[&str] = &["authorization", "traceparent", "tracestate", "x-request-id"];

/// Calls the route's method on `service` (a channel to the service, or the gateway's own views
/// in-process) and renders the answer as proto3 JSON.
pub async fn call<T>(
    service: T,
    route: &Route,
    message: DynamicMessage,
    headers: &HeaderMap,
    timeout: std::time::Duration,
) -> Result<serde_json::Value, Status>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let mut request = tonic::Request::new(Bytes::from(message.encode_to_vec()));
    // Sent as `grpc-timeout`: the service stops when the caller would have stopped waiting.
    request.set_timeout(timeout);
    for name in RELAYED {
        if let Some(v) = headers.get(*name).and_then(|v| v.to_str().ok())
            && let Ok(v) = v.parse()
        {
            request.metadata_mut().insert(*name, v);
        }
    }
    let mut grpc = tonic::client::Grpc::new(service);
    grpc.ready().await.map_err(|e| {
        let e: tonic::codegen::StdError = e.into();
        Status::unavailable(format!("{} is unreachable: {e}", route.service))
    })?;
    let path = PathAndQuery::try_from(route.grpc_path.clone())
        .map_err(|e| Status::internal(e.to_string()))?;
    let answer = grpc.unary(request, path, RawCodec).await?.into_inner();
    render(route, answer)
}

/// The largest chunk message an upload is cut into.
const CHUNK_BYTES: usize = 256 * 1024;

/// A client-streaming method over HTTP (evidence upload): the body is the file itself, not
/// JSON. The first message is built from the path and query as for any route
/// (`?header.fileName=质量手册.pdf&requestId=…`), its `header.content_type` and
/// `header.size_bytes` taken from `Content-Type` and `Content-Length` when the query does not
/// give them; the body follows as `chunk` messages of at most 256 KiB, streamed as it arrives,
/// never held whole by the gateway.
pub async fn call_streaming<S, E>(
    channel: Upstream,
    route: &Route,
    vars: &[(String, String)],
    query: Option<&str>,
    headers: &HeaderMap,
    body: S,
    timeout: std::time::Duration,
) -> Result<serde_json::Value, Status>
where
    S: futures_util::Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: std::fmt::Display,
{
    use futures_util::StreamExt;
    let chunk_field = route
        .input
        .get_field_by_name("chunk")
        .filter(|f| f.kind() == Kind::Bytes)
        .ok_or_else(|| Status::unimplemented("this streaming method has no HTTP form"))?;
    let mut first = request_message(route, vars, query, b"")?;
    let header_text = |name: &http::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    for (path, value) in [
        (
            "header.content_type",
            header_text(&http::header::CONTENT_TYPE),
        ),
        (
            "header.size_bytes",
            header_text(&http::header::CONTENT_LENGTH),
        ),
    ] {
        if let Some(v) = value
            && !has_value(&first, path)
        {
            set_path(&mut first, path, &v).map_err(|e| invalid_argument(path, &e))?;
        }
    }
    let input = route.input.clone();
    let chunks = body
        .map(move |piece| {
            let piece = piece.map_err(|e| Status::cancelled(format!("the upload broke off: {e}")));
            futures_util::stream::iter(match piece {
                Ok(bytes) => bytes
                    .chunks(CHUNK_BYTES)
                    .map(|c| {
                        let mut m = DynamicMessage::new(input.clone());
                        m.set_field(&chunk_field, Value::Bytes(Bytes::copy_from_slice(c)));
                        Bytes::from(m.encode_to_vec())
                    })
                    .collect::<Vec<_>>(),
                Err(_) => Vec::new(),
            })
        })
        .flatten();
    let messages =
        futures_util::stream::once(async move { Bytes::from(first.encode_to_vec()) }).chain(chunks);
    let mut request = tonic::Request::new(messages);
    for name in RELAYED {
        if let Some(v) = headers.get(*name).and_then(|v| v.to_str().ok())
            && let Ok(v) = v.parse()
        {
            request.metadata_mut().insert(*name, v);
        }
    }
    request.set_timeout(timeout);
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("{} is unreachable: {e}", route.service)))?;
    let path = PathAndQuery::try_from(route.grpc_path.clone())
        .map_err(|e| Status::internal(e.to_string()))?;
    let answer = grpc
        .client_streaming(request, path, RawCodec)
        .await?
        .into_inner();
    render(route, answer)
}

/// Whether a field path of `msg` holds a non-default value.
fn has_value(msg: &DynamicMessage, path: &str) -> bool {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let Some(field) = msg.descriptor().get_field_by_name(head) else {
        return false;
    };
    match (rest, msg.get_field(&field).as_ref()) {
        (Some(rest), Value::Message(inner)) => has_value(inner, rest),
        (None, _) => msg.has_field(&field),
        _ => false,
    }
}

/// The answer of `route` as proto3 JSON, every field present.
fn render(route: &Route, answer: Bytes) -> Result<serde_json::Value, Status> {
    let reply = DynamicMessage::decode(route.output.clone(), answer)
        .map_err(|e| Status::internal(format!("undecodable answer: {e}")))?;
    let options = SerializeOptions::new().skip_default_fields(false);
    reply
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|e| Status::internal(e.to_string()))
}

/// A gRPC code as Google's error model names it: `PERMISSION_DENIED` for `PermissionDenied`.
pub fn code_name(code: tonic::Code) -> String {
    snake_case(&format!("{code:?}")).to_ascii_uppercase()
}

/// `selfAssessment` or `PermissionDenied` as `self_assessment` or `permission_denied`; a name
/// already in snake case is unchanged.
fn snake_case(camel: &str) -> String {
    let mut out = String::new();
    for (i, ch) in camel.chars().enumerate() {
        if i > 0 && ch.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(ch.to_ascii_lowercase());
    }
    out
}

/// A status as Google's JSON error model, with the HTTP status mapped once by the kit.
pub fn error_response(status: &Status) -> (StatusCode, serde_json::Value) {
    let code = ErrorCode::from_grpc(status.code());
    let http =
        StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let details = status.get_error_details();
    let mut list = Vec::new();
    if let Some(info) = details.error_info() {
        list.push(serde_json::json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": info.reason,
            "domain": info.domain,
            "metadata": info.metadata,
        }));
    }
    if let Some(bad) = details.bad_request() {
        list.push(serde_json::json!({
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": bad.field_violations.iter().map(|v| serde_json::json!({
                "field": v.field, "description": v.description,
            })).collect::<Vec<_>>(),
        }));
    }
    if let Some(delay) = details.retry_info().and_then(|r| r.retry_delay) {
        list.push(serde_json::json!({
            "@type": "type.googleapis.com/google.rpc.RetryInfo",
            "retryDelay": format!("{}.{:03}s", delay.as_secs(), delay.subsec_millis()),
        }));
    }
    let upper = code_name(status.code());
    (
        http,
        serde_json::json!({
            "error": {
                "code": http.as_u16(),
                "message": status.message(),
                "status": upper,
                "details": list,
            }
        }),
    )
}

/// The channels by gRPC service name, shared by the handlers.
pub type Upstreams = Arc<HashMap<&'static str, Upstream>>;

#[cfg(test)]
mod tests {
    use super::template::percent_decode;
    use super::*;
    use http::Method;

    #[test]
    fn a_percent_before_a_multibyte_character_is_kept_not_split() {
        // Found by the fuzz loop below: `%` then a Chinese character used to panic.
        assert_eq!(percent_decode("a%中b"), "a%中b");
        assert_eq!(percent_decode("%E4%B8%AD%2"), "中%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }

    const JSON: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "\"name\"",
        "\"requestId\"",
        "\"cycle\"",
        "1",
        "-1",
        "1e999",
        "null",
        "true",
        "\"2026-13-45\"",
        "\"\\u0000\"",
        "\"中\"",
        " ",
        "\"value\"",
        "\"REVIEW_STAGE_SITE\"",
        "{\"value\":\"1.5\"}",
        "\"year\"",
        "9999999999999999999",
    ];
    const QUERY: &[&str] = &[
        "&",
        "=",
        "%",
        "%zz",
        "%E4%B8%AD",
        "+",
        "pageSize",
        "a.b",
        "x",
        "1",
    ];
    const PATH: &[&str] = &["/", "x", "%2F", "..", ":", "中", "%", "v1", "programmes"];

    proptest::proptest! {
        #![proptest_config(qaward_kit::fuzz::config())]
        #[test]
        fn fuzz_transcoding_never_panics_and_refuses_bad_input_as_invalid_argument(
            route in proptest::prelude::any::<proptest::sample::Index>(),
            url_edits in qaward_kit::fuzz::edits(),
            body_edits in qaward_kit::fuzz::edits(),
            shaped in qaward_kit::fuzz::text(JSON, 12),
            edited_body in proptest::bool::ANY,
            q in qaward_kit::fuzz::text(QUERY, 6),
        ) {
            let routes = routes();
            let route = &routes.all()[route.index(routes.all().len())];
            let example = route.template.example();
            let url = String::from_utf8_lossy(&qaward_kit::fuzz::apply(example.as_bytes(), PATH, &url_edits)).to_string();
            let _ = routes.find(&route.http_method, &url);
            let vars = route.template.matches(&example).unwrap_or_default();
            let body = if edited_body {
                qaward_kit::fuzz::apply(b"{\"name\":\"x\",\"requestId\":\"r-1\"}", JSON, &body_edits)
            } else {
                shaped.into_bytes()
            };
            match request_message(route, &vars, Some(&q), &body) {
                Ok(msg) => {
                    // What decodes encodes again as the service will read it.
                    let bytes = msg.encode_to_vec();
                    assert!(DynamicMessage::decode(route.input.clone(), bytes.as_slice()).is_ok());
                }
                Err(status) => {
                    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}")
                }
            }
        }
    }

    /// The contracts' routes, read once for all cases.
    fn routes() -> &'static Routes {
        static ROUTES: std::sync::OnceLock<Routes> = std::sync::OnceLock::new();
        ROUTES.get_or_init(|| Routes::from_descriptors(qaward_proto::FILE_DESCRIPTOR_SET).unwrap())
    }

    #[test]
    fn templates_match_paths_and_bind_variables() {
        let t = Template::parse("/v1/{name=programmes/*/cycles/*}:releaseReviewStage").unwrap();
        assert_eq!(
            t.matches("/v1/programmes/yunyang/cycles/2026:releaseReviewStage"),
            Some(vec![(
                "name".into(),
                "programmes/yunyang/cycles/2026".into()
            )])
        );
        assert_eq!(t.matches("/v1/programmes/yunyang/cycles/2026"), None);
        let t = Template::parse("/v1/{parent=programmes/*}/cycles").unwrap();
        assert_eq!(
            t.matches("/v1/programmes/yunyang/cycles"),
            Some(vec![("parent".into(), "programmes/yunyang".into())])
        );
        assert_eq!(t.matches("/v1/programmes/yunyang/cycles/2026"), None);
        let t = Template::parse("/v1/programmes").unwrap();
        assert_eq!(t.matches("/v1/programmes"), Some(vec![]));
        assert_eq!(t.matches("/v1/programmes:x"), None);
        let t = Template::parse("/v1/{name=programmes/*/cycles/*/publicNotice}").unwrap();
        assert!(
            t.matches("/v1/programmes/y/cycles/2026/publicNotice")
                .is_some()
        );
        let t =
            Template::parse("/v1/{application.name=programmes/*/cycles/*/applications/*}").unwrap();
        assert_eq!(
            t.matches("/v1/programmes/y/cycles/2026/applications/9150%2F")
                .unwrap()[0]
                .1,
            "programmes/y/cycles/2026/applications/9150/"
        );
    }

    #[test]
    fn every_annotated_method_has_a_route() {
        let routes = Routes::from_descriptors(qaward_proto::FILE_DESCRIPTOR_SET).unwrap();
        assert!(routes.len() > 80, "{}", routes.len());
        let (r, vars) = routes
            .find(
                &Method::POST,
                "/v1/programmes/yunyang/cycles/2026:releaseReviewStage",
            )
            .unwrap();
        assert_eq!(
            r.grpc_path,
            "/qaward.applications.v1.ApplicationService/ReleaseReviewStage"
        );
        assert_eq!(vars[0].0, "cycle");
        assert!(matches!(
            routes.find(
                &Method::GET,
                "/v1/programmes/yunyang/cycles/2026:releaseReviewStage"
            ),
            Err(true)
        ));
        assert!(matches!(
            routes.find(&Method::GET, "/v1/nothing"),
            Err(false)
        ));
    }

    #[test]
    fn an_update_mask_comes_from_the_query_as_comma_separated_paths() {
        // AIP-134 over HTTP: PATCH ...?updateMask=selfAssessment,application_form.
        let routes = Routes::from_descriptors(qaward_proto::FILE_DESCRIPTOR_SET).unwrap();
        let (r, vars) = routes
            .find(
                &Method::PATCH,
                "/v1/programmes/yunyang/cycles/2026/applications/91500235MA5U0XXXXX",
            )
            .unwrap();
        let m = request_message(
            r,
            &vars,
            Some("updateMask=selfAssessment,application_form"),
            br#"{"selfAssessment": "x"}"#,
        )
        .unwrap();
        let mask = m.get_field_by_name("update_mask").unwrap();
        let paths = mask
            .as_message()
            .unwrap()
            .get_field_by_name("paths")
            .unwrap();
        let paths: Vec<&str> = paths
            .as_list()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert_eq!(paths, ["self_assessment", "application_form"]);
    }

    #[test]
    fn a_request_is_built_from_body_path_and_query_and_refuses_unknown_fields() {
        let routes = Routes::from_descriptors(qaward_proto::FILE_DESCRIPTOR_SET).unwrap();
        let (r, vars) = routes
            .find(
                &Method::GET,
                "/v1/programmes/yunyang/cycles/2026/applications",
            )
            .unwrap();
        let m = request_message(
            r,
            &vars,
            Some("pageSize=5&stage=APPLICATION_STAGE_ACCEPTED"),
            b"",
        )
        .unwrap();
        assert_eq!(m.get_field_by_name("page_size").unwrap().as_i32(), Some(5));
        assert_eq!(
            m.get_field_by_name("stage").unwrap().as_enum_number(),
            Some(4)
        );
        let e = request_message(r, &vars, Some("pageSize=five"), b"").unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        let (r, vars) = routes
            .find(&Method::POST, "/v1/programmes/yunyang/cycles")
            .unwrap();
        let m = request_message(
            r,
            &vars,
            None,
            r#"{"year": 2026, "noticeTitle": "通知"}"#.as_bytes(),
        )
        .unwrap();
        let cycle = m.get_field_by_name("cycle").unwrap();
        assert_eq!(
            cycle
                .as_message()
                .unwrap()
                .get_field_by_name("year")
                .unwrap()
                .as_i32(),
            Some(2026)
        );
        let e = request_message(r, &vars, None, br#"{"year": 2026, "colour": "red"}"#).unwrap_err();
        assert!(e.message().contains("colour"), "{}", e.message());
        let e = request_message(r, &vars, None, br#"{"year": "soon"}"#).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn errors_follow_googles_json_model() {
        let s = qaward_kit::Error::rule("R-13", "BELOW", "未达到").to_status();
        let (http, body) = error_response(&s);
        assert_eq!(http, StatusCode::CONFLICT);
        assert_eq!(body["error"]["status"], "FAILED_PRECONDITION");
        assert_eq!(body["error"]["details"][0]["metadata"]["rule"], "R-13");
        let (http, body) = error_response(&qaward_kit::Error::invalid("year", "bad").to_status());
        assert_eq!(http, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
        assert_eq!(
            body["error"]["details"][1]["fieldViolations"][0]["field"],
            "year"
        );
    }
}
