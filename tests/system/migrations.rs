//! Migrations once per release: with `server.migrate_on_start = false` a service refuses a
//! database that is not migrated, `qaward migrate` migrates it once, and the replicas then
//! start; `qaward health` is the container health check.

use crate::support::{Qaward, free_port_env, qaward};

#[tokio::test]
async fn replicas_wait_for_qaward_migrate_and_health_reports_them() {
    let dir = tempfile::tempdir().unwrap();
    let no_migrate = [("QAWARD_SERVER__MIGRATE_ON_START", "false")];

    // A replica on a fresh database: one line naming the way out, no panic.
    let out = qaward(&["serve"])
        .arg("--data-dir")
        .arg(dir.path())
        .envs(free_port_env())
        .env("QAWARD_TARGETS", "reviewers")
        .envs(no_migrate)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("qaward migrate"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // The release's migration, once.
    let out = qaward(&["migrate"])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for service in ["applications", "reviewers", "scoring", "notifications"] {
        assert!(stdout.contains(&format!("{service}: migrated")), "{stdout}");
    }
    assert!(
        dir.path().join("keys").exists(),
        "the local key is made once, before the replicas"
    );

    // Now the replicas start without migrating (targets from QAWARD_TARGETS).
    let q = Qaward::start_in(
        dir,
        &[],
        &[
            ("QAWARD_SERVER__MIGRATE_ON_START", "false"),
            ("QAWARD_TARGETS", "reviewers,scoring"),
        ],
    )
    .await;
    assert!(q.addrs.contains_key("reviewers") && q.addrs.contains_key("scoring"));
    assert!(!q.addrs.contains_key("applications"));

    let health = |targets: &str| {
        qaward(&["health"])
            .env("QAWARD_TARGETS", targets)
            .env("QAWARD_LISTEN__REVIEWERS", q.addr("reviewers").to_string())
            .env("QAWARD_LISTEN__SCORING", q.addr("scoring").to_string())
            .env("QAWARD_LISTEN__NOTIFICATIONS", "127.0.0.1:1")
            .output()
            .unwrap()
    };
    let out = health("reviewers,scoring");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("reviewers http://"));
    // Nothing serves notifications here: exit 1, and the line says which.
    let out = health("scoring,notifications");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not serving: notifications"), "{stderr}");
}
