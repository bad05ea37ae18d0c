//! Starting with a taken port, a bad database URL or an unreadable configuration gives one
//! line on stderr and a non-zero exit, never a panic.

use crate::support::{free_port_env, qaward};

fn fails_with_one_line(mut cmd: std::process::Command, expect: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = cmd
        .arg("--data-dir")
        .arg(dir.path())
        .envs(free_port_env())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("qaward: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains(expect), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_port_in_use_is_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut cmd = qaward(&["serve", "--target", "reviewers"]);
    cmd.env("QAWARD_LISTEN__REVIEWERS", &addr);
    // free_port_env() is applied after; keep ours by setting it again below.
    let dir = tempfile::tempdir().unwrap();
    let out = cmd
        .arg("--data-dir")
        .arg(dir.path())
        .env("QAWARD_LISTEN__GATEWAY_HTTP", "127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_bad_database_url_is_one_line() {
    fails_with_one_line(
        qaward(&["serve", "--database-url", "mysql://localhost/x"]),
        "postgres://",
    );
    fails_with_one_line(
        qaward(&[
            "serve",
            "--target",
            "scoring",
            "--database-url",
            "postgres://nobody@127.0.0.1:1/none",
        ]),
        "cannot connect to the scoring database",
    );
}

#[test]
fn an_unreadable_configuration_is_one_line() {
    fails_with_one_line(
        qaward(&["serve", "--config", "/nonexistent/qaward.toml"]),
        "/nonexistent/qaward.toml",
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[listen\nreviewers = 1").unwrap();
    let mut cmd = qaward(&["serve", "--config"]);
    cmd.arg(&bad);
    fails_with_one_line(cmd, "not valid TOML");
}

#[test]
fn config_prints_the_effective_configuration_with_secrets_masked() {
    let out = qaward(&[
        "config",
        "--database-url",
        "postgres://app:s3cret@db/qaward",
    ])
    .env("QAWARD_LISTEN__REVIEWERS", "127.0.0.1:7777")
    .output()
    .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("reviewers = \"127.0.0.1:7777\""), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
    assert!(text.contains("********"), "{text}");
}

#[test]
fn a_plain_text_listener_beyond_loopback_is_refused_unless_allowed() {
    // Issue 21: compose once published plain text on every interface. Now the binary refuses.
    let dir = tempfile::tempdir().unwrap();
    let out = qaward(&["serve", "--target", "reviewers"])
        .arg("--data-dir")
        .arg(dir.path())
        .envs(free_port_env())
        .env("QAWARD_LISTEN__REVIEWERS", "0.0.0.0:0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("listen.reviewers = 0.0.0.0:0") && stderr.contains("tls.cert_file"),
        "{stderr}"
    );
    // The named setting lets it start (then SIGTERM stops it cleanly).
    let mut child = qaward(&["serve", "--target", "reviewers"])
        .arg("--data-dir")
        .arg(dir.path())
        .envs(free_port_env())
        .env("QAWARD_LISTEN__REVIEWERS", "0.0.0.0:0")
        .env("QAWARD_SERVER__ALLOW_PLAINTEXT", "true")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let serving = lines.any(|l| l.unwrap().contains("qaward is serving"));
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(serving);
    assert_eq!(status.code(), Some(0));
}
