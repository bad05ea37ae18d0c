//! HTTP/JSON transcoding: any path, query and body for any route either builds a request the
//! service can decode or is INVALID_ARGUMENT. The first two bytes pick the route; the rest is
//! the path, the query and the body, split at the first two 0xFF bytes.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use prost::Message;
use qaward_gateway::transcode::{Routes, request_message};

fn routes() -> &'static Routes {
    static ROUTES: OnceLock<Routes> = OnceLock::new();
    ROUTES.get_or_init(|| Routes::from_descriptors(qaward_proto::FILE_DESCRIPTOR_SET).unwrap())
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let routes = routes();
    let all = routes.all();
    let route = &all[usize::from(u16::from_le_bytes([data[0], data[1]])) % all.len()];
    let mut parts = data[2..].splitn(3, |b| *b == 0xFF);
    let path = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let query = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let body = parts.next().unwrap_or_default();
    let _ = routes.find(&route.http_method, &path);
    let example = route.template.example();
    let vars = route.template.matches(&example).unwrap_or_default();
    match request_message(route, &vars, Some(&query), body) {
        Ok(msg) => {
            let bytes = msg.encode_to_vec();
            assert!(prost_reflect::DynamicMessage::decode(route.input.clone(), bytes.as_slice()).is_ok());
        }
        Err(status) => assert_eq!(status.code(), tonic::Code::InvalidArgument),
    }
});
