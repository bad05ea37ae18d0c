//! One error type for every service, mapped once to a gRPC status (with google.rpc
//! `ErrorInfo` and `BadRequest` details) and to an HTTP status.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every error qaward returns.
pub const ERROR_DOMAIN: &str = "qaward";

/// The small set of error kinds qaward uses; each maps to exactly one gRPC code and one HTTP
/// status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Malformed input; names the fields (INVALID_ARGUMENT, 400).
    InvalidArgument,
    /// No such resource (NOT_FOUND, 404).
    NotFound,
    /// A create collided with an existing resource (ALREADY_EXISTS, 409).
    AlreadyExists,
    /// A rule of DOMAIN.md forbids the step now (FAILED_PRECONDITION, 400 as in Google's
    /// published mapping).
    FailedPrecondition,
    /// The caller's role or organisation may not do this (PERMISSION_DENIED, 403).
    PermissionDenied,
    /// No valid credentials (UNAUTHENTICATED, 401).
    Unauthenticated,
    /// Too much load or a quota (RESOURCE_EXHAUSTED, 429).
    ResourceExhausted,
    /// A concurrent change won; retry (ABORTED, 409).
    Aborted,
    /// A dependency is down; retry later (UNAVAILABLE, 503).
    Unavailable,
    /// The deadline passed (DEADLINE_EXCEEDED, 504).
    DeadlineExceeded,
    /// Not built yet (UNIMPLEMENTED, 501).
    Unimplemented,
    /// Our fault; details are logged, never returned (INTERNAL, 500).
    Internal,
}

impl ErrorCode {
    /// The gRPC status code.
    pub fn grpc(self) -> Code {
        match self {
            ErrorCode::InvalidArgument => Code::InvalidArgument,
            ErrorCode::NotFound => Code::NotFound,
            ErrorCode::AlreadyExists => Code::AlreadyExists,
            ErrorCode::FailedPrecondition => Code::FailedPrecondition,
            ErrorCode::PermissionDenied => Code::PermissionDenied,
            ErrorCode::Unauthenticated => Code::Unauthenticated,
            ErrorCode::ResourceExhausted => Code::ResourceExhausted,
            ErrorCode::Aborted => Code::Aborted,
            ErrorCode::Unavailable => Code::Unavailable,
            ErrorCode::DeadlineExceeded => Code::DeadlineExceeded,
            ErrorCode::Unimplemented => Code::Unimplemented,
            ErrorCode::Internal => Code::Internal,
        }
    }

    /// The HTTP status the gateway answers with (Google's published gRPC-to-HTTP mapping).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidArgument => 400,
            // A rule forbids the step in the current state: a conflict with the state, which
            // the caller resolves by changing it (docs/http.md).
            ErrorCode::FailedPrecondition => 409,
            ErrorCode::Unauthenticated => 401,
            ErrorCode::PermissionDenied => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::AlreadyExists | ErrorCode::Aborted => 409,
            ErrorCode::ResourceExhausted => 429,
            ErrorCode::Internal => 500,
            ErrorCode::Unimplemented => 501,
            ErrorCode::Unavailable => 503,
            ErrorCode::DeadlineExceeded => 504,
        }
    }

    /// The code for a gRPC status code, for errors that arrive from another service.
    pub fn from_grpc(code: Code) -> ErrorCode {
        match code {
            Code::InvalidArgument | Code::OutOfRange => ErrorCode::InvalidArgument,
            Code::NotFound => ErrorCode::NotFound,
            Code::AlreadyExists => ErrorCode::AlreadyExists,
            Code::FailedPrecondition => ErrorCode::FailedPrecondition,
            Code::PermissionDenied => ErrorCode::PermissionDenied,
            Code::Unauthenticated => ErrorCode::Unauthenticated,
            Code::ResourceExhausted => ErrorCode::ResourceExhausted,
            Code::Aborted => ErrorCode::Aborted,
            Code::Unavailable | Code::Cancelled => ErrorCode::Unavailable,
            Code::DeadlineExceeded => ErrorCode::DeadlineExceeded,
            Code::Unimplemented => ErrorCode::Unimplemented,
            Code::Ok | Code::Unknown | Code::Internal | Code::DataLoss => ErrorCode::Internal,
        }
    }
}

/// One malformed field of a request: its path (`programme.policy.yearly_cap`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        FieldViolation {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// The error every service function returns. Boxed, so `Result`s stay small on the happy
/// path; its parts read as fields (`error.code`, `error.violations`) through `Deref`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", .0.message)]
pub struct Error(Box<ErrorParts>);

/// What an [`Error`] says.
#[derive(Debug, Clone)]
pub struct ErrorParts {
    pub code: ErrorCode,
    /// Stable, UPPER_SNAKE_CASE reason for `ErrorInfo.reason`.
    pub reason: String,
    pub message: String,
    /// The DOMAIN.md rule id (`R-13`) when a rule forbade the step.
    pub rule: Option<String>,
    pub violations: Vec<FieldViolation>,
    pub metadata: Vec<(String, String)>,
}

impl std::ops::Deref for Error {
    type Target = ErrorParts;
    fn deref(&self) -> &ErrorParts {
        &self.0
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: ErrorCode, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Error(Box::new(ErrorParts {
            code,
            reason: reason.into(),
            message: message.into(),
            rule: None,
            violations: Vec::new(),
            metadata: Vec::new(),
        }))
    }

    /// One malformed field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Error::invalid_fields(vec![FieldViolation::new(field, description)])
    }

    /// Several malformed fields at once, so a client can fix them all in one round.
    pub fn invalid_fields(violations: Vec<FieldViolation>) -> Self {
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        let message = match violations.as_slice() {
            [one] => format!("invalid {}: {}", one.field, one.description),
            _ => format!("invalid fields: {}", fields.join(", ")),
        };
        let mut e = Error::new(ErrorCode::InvalidArgument, "INVALID_FIELD", message);
        e.0.violations = violations;
        e
    }

    /// A resource that does not exist, by its resource name.
    pub fn not_found(name: impl Into<String>) -> Self {
        let name = name.into();
        Error::new(
            ErrorCode::NotFound,
            "NOT_FOUND",
            format!("{name} not found"),
        )
        .with_metadata("resource", name)
    }

    /// A step that a rule of DOMAIN.md forbids now.
    pub fn rule(rule: &str, reason: impl Into<String>, message: impl Into<String>) -> Self {
        let mut e = Error::new(ErrorCode::FailedPrecondition, reason, message);
        e.0.rule = Some(rule.to_string());
        e
    }

    pub fn permission_denied(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::PermissionDenied, "PERMISSION_DENIED", message)
    }

    pub fn unauthenticated(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Error::new(ErrorCode::Unauthenticated, reason, message)
    }

    pub fn already_exists(name: impl Into<String>) -> Self {
        let name = name.into();
        Error::new(
            ErrorCode::AlreadyExists,
            "ALREADY_EXISTS",
            format!("{name} already exists"),
        )
        .with_metadata("resource", name)
    }

    /// Our own fault. The detail is logged here; the caller sees only a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Error::new(ErrorCode::Internal, "INTERNAL", "internal error")
    }

    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.metadata.push((key.into(), value.into()));
        self
    }

    /// The gRPC status, with `ErrorInfo` always and `BadRequest` when fields are named.
    pub fn to_status(&self) -> Status {
        let mut metadata: HashMap<String, String> = self.metadata.iter().cloned().collect();
        if let Some(rule) = &self.rule {
            metadata.insert("rule".to_string(), rule.clone());
        }
        let mut details = ErrorDetails::with_error_info(&self.reason, ERROR_DOMAIN, metadata);
        for v in &self.violations {
            details.add_bad_request_violation(&v.field, &v.description);
        }
        Status::with_error_details(self.code.grpc(), &self.message, details)
    }
}

impl Error {
    /// An error that another service answered, kept as it was — its code, reason, rule and
    /// field violations — with the message saying which service refused, so the caller of an
    /// orchestrating call sees the real cause (`reviewers: …`).
    pub fn from_upstream(service: &str, status: &Status) -> Self {
        let details = status.get_error_details();
        let info = details.error_info();
        // Our services answer every error with an ErrorInfo; UNKNOWN without one is tonic's
        // own report of a connection that broke with the call in flight (the upstream died or
        // restarted). Nothing says whether it got there, so it is UNAVAILABLE: the caller
        // retries with the same request id, which every call between services carries.
        let code = match status.code() {
            Code::Unknown if info.is_none() => Code::Unavailable,
            other => other,
        };
        let reason = info
            .map(|i| i.reason.clone())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| format!("{code:?}").to_uppercase());
        let mut e = Error::new(
            ErrorCode::from_grpc(code),
            reason,
            format!("{service}: {}", status.message()),
        );
        if let Some(i) = info {
            for (k, v) in &i.metadata {
                if k == "rule" {
                    e.0.rule = Some(v.clone());
                } else {
                    e.0.metadata.push((k.clone(), v.clone()));
                }
            }
        }
        if let Some(b) = details.bad_request() {
            e.0.violations = b
                .field_violations
                .iter()
                .map(|v| FieldViolation::new(v.field.clone(), v.description.clone()))
                .collect();
        }
        e.0.metadata
            .push(("service".to_string(), service.to_string()));
        e
    }

    /// The gRPC status, consuming the error (for `map_err` at the end of a handler).
    pub fn into_status(self) -> Status {
        self.to_status()
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        e.to_status()
    }
}

/// SQLSTATEs of a lost connection or a server going down: class 08 (connection exception)
/// and 57P01-57P03 (admin shutdown, crash shutdown, cannot connect now).
fn connection_lost(sqlstate: &str) -> bool {
    sqlstate.starts_with("08") || matches!(sqlstate, "57P01" | "57P02" | "57P03")
}

fn database_unavailable(e: &sqlx::Error) -> Error {
    tracing::warn!(error = %e, "database connection lost");
    Error::new(
        ErrorCode::Unavailable,
        "DATABASE_UNAVAILABLE",
        "the database is unavailable for a moment; retry",
    )
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Error {
        match &e {
            sqlx::Error::RowNotFound => Error::new(ErrorCode::NotFound, "NOT_FOUND", "not found"),
            sqlx::Error::PoolTimedOut => Error::new(
                ErrorCode::Unavailable,
                "DATABASE_BUSY",
                "the database is busy; retry",
            ),
            sqlx::Error::Database(db) if db.is_unique_violation() => Error::new(
                ErrorCode::AlreadyExists,
                "ALREADY_EXISTS",
                "a resource with this identity already exists",
            ),
            // The connection went away (a database restart, a network blip): nothing was
            // committed, and the caller may retry the same request.
            sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
                database_unavailable(&e)
            }
            // Two transactions waited on each other (40P01) or lost a serialization race
            // (40001): PostgreSQL rolled this one back whole; the caller may try again.
            sqlx::Error::Database(db)
                if db.code().is_some_and(|c| c == "40P01" || c == "40001") =>
            {
                Error::new(
                    ErrorCode::Aborted,
                    "CONCURRENT_CHANGE",
                    "another change got in the way and nothing was written; retry",
                )
            }
            sqlx::Error::Database(db) if db.code().is_some_and(|c| connection_lost(&c)) => {
                database_unavailable(&e)
            }
            _ => Error::internal(format_args!("database: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_broken_in_flight_to_another_service_is_unavailable_and_retryable() {
        // tonic's report of a connection that broke mid-call: UNKNOWN, no details.
        let broken = Error::from_upstream("scoring", &Status::unknown("transport error"));
        let s = broken.into_status();
        assert_eq!(s.code(), tonic::Code::Unavailable, "{s:?}");
        // An answer from the service keeps its code.
        let answered = Error::new(ErrorCode::Internal, "BOOM", "boom").into_status();
        assert_eq!(
            Error::from_upstream("scoring", &answered)
                .into_status()
                .code(),
            tonic::Code::Internal
        );
    }

    #[test]
    fn a_lost_database_connection_is_unavailable_and_retryable() {
        let lost = Error::from(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert_eq!(lost.into_status().code(), tonic::Code::Unavailable);
        assert!(connection_lost("57P01") && connection_lost("08006"));
        assert!(!connection_lost("23505") && !connection_lost("57014"));
        let other = Error::from(sqlx::Error::Protocol("bad".into()));
        assert_eq!(other.into_status().code(), tonic::Code::Internal);
    }

    #[test]
    fn every_code_maps_to_one_grpc_code_and_back() {
        let all = [
            ErrorCode::InvalidArgument,
            ErrorCode::NotFound,
            ErrorCode::AlreadyExists,
            ErrorCode::FailedPrecondition,
            ErrorCode::PermissionDenied,
            ErrorCode::Unauthenticated,
            ErrorCode::ResourceExhausted,
            ErrorCode::Aborted,
            ErrorCode::Unavailable,
            ErrorCode::DeadlineExceeded,
            ErrorCode::Unimplemented,
            ErrorCode::Internal,
        ];
        for code in all {
            assert_eq!(ErrorCode::from_grpc(code.grpc()), code, "{code:?}");
        }
        assert_eq!(ErrorCode::InvalidArgument.http_status(), 400);
        assert_eq!(ErrorCode::Unauthenticated.http_status(), 401);
        assert_eq!(ErrorCode::PermissionDenied.http_status(), 403);
        assert_eq!(ErrorCode::NotFound.http_status(), 404);
        assert_eq!(ErrorCode::ResourceExhausted.http_status(), 429);
    }

    #[test]
    fn an_upstream_refusal_keeps_its_code_rule_and_fields() {
        let upstream = Error::rule("R-40", "POOL_TOO_SMALL", "only 2 eligible")
            .with_metadata("pool", "2")
            .to_status();
        let e = Error::from_upstream("reviewers", &upstream);
        assert_eq!(e.code, ErrorCode::FailedPrecondition);
        assert_eq!(e.reason, "POOL_TOO_SMALL");
        assert_eq!(e.rule.as_deref(), Some("R-40"));
        assert_eq!(e.message, "reviewers: only 2 eligible");
        let bad = Error::invalid("draw.size", "must be 3-5").to_status();
        let e = Error::from_upstream("reviewers", &bad);
        assert_eq!(e.violations[0].field, "draw.size");
        let down = Error::from_upstream("scoring", &Status::unavailable("connection refused"));
        assert_eq!(
            (down.code, down.reason.as_str()),
            (ErrorCode::Unavailable, "UNAVAILABLE")
        );
    }

    #[test]
    fn field_violations_travel_as_bad_request() {
        let status = Error::invalid_fields(vec![
            FieldViolation {
                field: "reviewer.mobile".into(),
                description: "not a mainland mobile number".into(),
            },
            FieldViolation {
                field: "reviewer.resident_id".into(),
                description: "check character does not match".into(),
            },
        ])
        .to_status();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.check_error_details().expect("details decode");
        let info = details.error_info().expect("ErrorInfo present");
        assert_eq!(info.reason, "INVALID_FIELD");
        assert_eq!(info.domain, ERROR_DOMAIN);
        let bad = details.bad_request().expect("BadRequest present");
        let fields: Vec<&str> = bad
            .field_violations
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(fields, ["reviewer.mobile", "reviewer.resident_id"]);
    }

    #[test]
    fn a_rule_refusal_names_its_rule_in_error_info() {
        let status = Error::rule(
            "R-13",
            "BELOW_MATERIALS_THRESHOLD",
            "materials score 499.5 is below 500",
        )
        .to_status();
        assert_eq!(status.code(), Code::FailedPrecondition);
        let details = status.check_error_details().unwrap();
        let info = details.error_info().unwrap();
        assert_eq!(info.reason, "BELOW_MATERIALS_THRESHOLD");
        assert_eq!(info.metadata.get("rule").map(String::as_str), Some("R-13"));
        assert!(details.bad_request().is_none());
    }

    #[test]
    fn internal_errors_hide_their_detail() {
        let status = Error::internal("connection reset by peer at 10.0.0.3").to_status();
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("10.0.0.3"));
    }
}
