//! Compiles the contracts under `proto/` with protox (pure Rust: no `protoc` on any machine) and
//! generates prost messages and tonic stubs. Client and server modules are gated behind the
//! crate's `client` and `server` features; the descriptor set is kept for reflection and
//! HTTP/JSON transcoding.

use std::{env, path::PathBuf};

const PROTOS: &[&str] = &[
    "qaward/common/v1/common.proto",
    "qaward/applications/v1/applications.proto",
    "qaward/reviewers/v1/reviewers.proto",
    "qaward/scoring/v1/scoring.proto",
    "qaward/notifications/v1/notifications.proto",
    "qaward/gateway/v1/gateway.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let out = PathBuf::from(env::var("OUT_DIR")?);
    println!("cargo:rerun-if-changed={}", root.display());

    let mut compiler = protox::Compiler::new([&root])?;
    compiler
        .include_imports(true)
        .include_source_info(true)
        .open_files(PROTOS)?;
    // Encoded straight from the compiler so that options such as google.api.http survive
    // (prost_types drops extensions it does not know); source info keeps the comments for
    // reflection clients and the OpenAPI document.
    std::fs::write(
        out.join("qaward_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    let fds = compiler.file_descriptor_set();

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .client_mod_attribute(".", r#"#[cfg(feature = "client")]"#)
        .server_mod_attribute(".", r#"#[cfg(feature = "server")]"#)
        // Methods a later issue builds answer UNIMPLEMENTED until a service overrides them.
        .generate_default_stubs(true)
        // Ordered maps: encoding the same message always gives the same bytes, so requests
        // and records can be hashed (idempotency keys, sealed sheets, recorded draws).
        .btree_map(".")
        .include_file("qaward.rs")
        .compile_fds(fds)?;
    Ok(())
}
