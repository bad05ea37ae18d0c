//! qaward's protobuf contracts as Rust: prost messages, tonic clients (feature `client`) and
//! servers (feature `server`), and the encoded descriptor set of every file.
//!
//! Callers depend on this crate with `default-features = false, features = ["client"]` so that
//! they pull in no server code.

#![allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]

include!(concat!(env!("OUT_DIR"), "/qaward.rs"));

pub mod names;

/// The encoded `FileDescriptorSet` of every contract and its imports, for gRPC server
/// reflection and proto3 JSON transcoding.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/qaward_descriptor.bin"));

/// The fully qualified names of the four service contracts.
pub const SERVICE_NAMES: &[&str] = &[
    "qaward.applications.v1.ApplicationService",
    "qaward.reviewers.v1.ReviewerService",
    "qaward.scoring.v1.ScoringService",
    "qaward.notifications.v1.NotificationService",
];

/// The gateway's own contract: the views it composes from the four services.
pub const GATEWAY_SERVICE_NAME: &str = "qaward.gateway.v1.GatewayService";
