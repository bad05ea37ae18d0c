//! The error-detail protos shipped under `proto/google/rpc` (for client authors, who once had
//! to fetch them elsewhere) decode exactly what qaward sends: a status built as the services
//! build theirs, its `grpc-status-details-bin` bytes read back through the shipped files alone.

use std::path::PathBuf;

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, Value};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

fn shipped() -> DescriptorPool {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let mut compiler = protox::Compiler::new([&root]).unwrap();
    compiler
        .include_imports(true)
        .open_files([
            "google/rpc/status.proto",
            "google/rpc/code.proto",
            "google/rpc/error_details.proto",
        ])
        .unwrap();
    DescriptorPool::decode(compiler.encode_file_descriptor_set().as_slice()).unwrap()
}

#[test]
fn the_shipped_google_rpc_protos_decode_the_details_qaward_sends() {
    let pool = shipped();
    let mut details = ErrorDetails::with_error_info(
        "CYCLE_CLOSED",
        "qaward",
        [("rule".to_string(), "R-01".to_string())],
    );
    details.set_bad_request(vec![FieldViolation::new(
        "application.organisation_profile",
        "has 6001 characters; a draft holds at most 6000",
    )]);
    details.set_retry_info(Some(std::time::Duration::from_millis(1500)));
    let status = tonic::Status::with_error_details(
        tonic::Code::InvalidArgument,
        "本年度申报已截止",
        details,
    );

    let status_type = pool.get_message_by_name("google.rpc.Status").unwrap();
    let decoded = DynamicMessage::decode(status_type, status.details()).unwrap();
    assert_eq!(decoded.get_field_by_name("code").unwrap().as_i32(), Some(3));
    let code = pool.get_enum_by_name("google.rpc.Code").unwrap();
    assert_eq!(code.get_value(3).unwrap().name(), "INVALID_ARGUMENT");
    assert_eq!(code.get_value(16).unwrap().name(), "UNAUTHENTICATED");

    let mut seen = Vec::new();
    let any = decoded.get_field_by_name("details").unwrap();
    for item in any.as_list().unwrap() {
        let item = item.as_message().unwrap();
        let url = item.get_field_by_name("type_url").unwrap();
        let name = url
            .as_str()
            .unwrap()
            .trim_start_matches("type.googleapis.com/");
        let bytes = item.get_field_by_name("value").unwrap();
        let message = pool
            .get_message_by_name(name)
            .unwrap_or_else(|| panic!("{name} is not in the shipped protos"));
        let detail = DynamicMessage::decode(message, bytes.as_bytes().unwrap().as_ref()).unwrap();
        match name {
            "google.rpc.ErrorInfo" => {
                assert_eq!(
                    detail.get_field_by_name("reason").unwrap().as_str(),
                    Some("CYCLE_CLOSED")
                );
                assert_eq!(
                    detail.get_field_by_name("domain").unwrap().as_str(),
                    Some("qaward")
                );
                let metadata = detail.get_field_by_name("metadata").unwrap();
                let rule = metadata
                    .as_map()
                    .unwrap()
                    .get(&prost_reflect::MapKey::String("rule".into()))
                    .cloned();
                assert_eq!(rule, Some(Value::String("R-01".into())));
            }
            "google.rpc.BadRequest" => {
                let violations = detail.get_field_by_name("field_violations").unwrap();
                let first = violations.as_list().unwrap()[0]
                    .as_message()
                    .unwrap()
                    .clone();
                assert_eq!(
                    first.get_field_by_name("field").unwrap().as_str(),
                    Some("application.organisation_profile")
                );
            }
            "google.rpc.RetryInfo" => {
                let delay = detail.get_field_by_name("retry_delay").unwrap();
                let delay = delay.as_message().unwrap();
                assert_eq!(
                    delay.get_field_by_name("seconds").unwrap().as_i64(),
                    Some(1)
                );
                assert_eq!(
                    delay.get_field_by_name("nanos").unwrap().as_i32(),
                    Some(500_000_000)
                );
            }
            other => panic!("unexpected detail {other}"),
        }
        seen.push(name.to_string());
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "google.rpc.BadRequest",
            "google.rpc.ErrorInfo",
            "google.rpc.RetryInfo"
        ]
    );
    // The same bytes re-encode identically: no field was lost on the way through.
    assert_eq!(decoded.encode_to_vec(), status.details().to_vec());
}
