//! docs/clients.md is true: its first calls, run exactly as it writes them against a running
//! `qaward serve` — Python stubs generated from `proto/` with grpcio-tools and the example
//! script over the gateway's gRPC port, and the curl example over its HTTP port.
//!
//! Needs a Python with grpcio, grpcio-tools and grpcio-status (`QAWARD_TEST_PYTHON`; `.ci/run`
//! installs one) and curl; without them the test prints SKIPPED, unless QAWARD_TEST_PYTHON is
//! set, as in CI, where a missing one is a failure.

use std::path::PathBuf;

use serde_json::Value;

use crate::support::Qaward;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tools() -> Option<(String, String)> {
    let python = crate::grpcio::python()?;
    let has_tools = std::process::Command::new(&python)
        .args(["-c", "import grpc_tools"])
        .output()
        .is_ok_and(|o| o.status.success());
    let curl = std::process::Command::new("curl").arg("--version").output();
    (has_tools && curl.is_ok()).then(|| (python, "curl".to_string()))
}

#[tokio::test]
async fn the_first_calls_of_the_client_guide_work_as_written() {
    let Some((python, _)) = tools() else {
        assert!(
            std::env::var("QAWARD_TEST_PYTHON").is_err(),
            "QAWARD_TEST_PYTHON is set (as .ci/run sets it) but has no grpcio-tools, or there is no curl"
        );
        eprintln!("SKIPPED: no Python with grpcio-tools, or no curl");
        return;
    };
    let q = Qaward::start(&[], &[]).await;
    let token = q.token_for("office", "office-1", &["--programme", "yunyang"]);

    // Python: the guide's protoc line, then its script.
    let stubs = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(&python)
        .current_dir(repo())
        .args(["-m", "grpc_tools.protoc", "-I", "proto"])
        .arg(format!("--python_out={}", stubs.path().display()))
        .arg(format!("--grpc_python_out={}", stubs.path().display()))
        .args([
            "proto/qaward/common/v1/common.proto",
            "proto/qaward/reviewers/v1/reviewers.proto",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "protoc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(&python)
        .current_dir(repo())
        .env("PYTHONPATH", stubs.path())
        .arg("docs/examples/first_call.py")
        .arg(q.addr("gateway").to_string())
        .arg(&token)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "first_call.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["code"], "OK", "{lines:?}");
    assert_eq!(lines[1]["code"], "NOT_FOUND", "{lines:?}");
    assert_eq!(lines[1]["reason"], "NOT_FOUND", "{lines:?}");
    assert_eq!(lines[2]["code"], "INVALID_ARGUMENT", "{lines:?}");
    assert_eq!(lines[2]["fields"], serde_json::json!(["name"]), "{lines:?}");

    // curl: the guide's script.
    let out = std::process::Command::new("sh")
        .current_dir(repo())
        .arg("docs/examples/first_call.sh")
        .arg(format!("http://{}", q.addr("gateway-http")))
        .arg(&token)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let bodies: Vec<Value> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        bodies[0]["reviewers"].is_array() || bodies[0].get("error").is_none(),
        "{text}"
    );
    assert_eq!(bodies[1]["error"]["code"], 404, "{text}");
    assert_eq!(
        bodies[1]["error"]["details"][0]["reason"], "NOT_FOUND",
        "{text}"
    );

    // The guide shows these very commands.
    let guide = std::fs::read_to_string(repo().join("docs/clients.md")).unwrap();
    for line in [
        "python -m grpc_tools.protoc -I proto --python_out=stubs --grpc_python_out=stubs \\",
        "    proto/qaward/common/v1/common.proto proto/qaward/reviewers/v1/reviewers.proto",
        "PYTHONPATH=stubs python docs/examples/first_call.py 127.0.0.1:50051 \"$TOKEN\"",
    ] {
        assert!(
            guide.contains(line),
            "docs/clients.md no longer says: {line}"
        );
    }
}
