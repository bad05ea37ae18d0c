//! `qaward demo` as the README tells a newcomer to run it: `qaward serve` on a simulated clock
//! with nothing else installed (SQLite), then the demo against it, over gRPC and over
//! HTTP/JSON; the same against a server on PostgreSQL; and a server on the wall clock is
//! refused with the command that works.

use crate::support::{Qaward, qaward};

const SIMULATED: [(&str, &str); 2] = [
    ("QAWARD_CLOCK__START", "2026-03-02T09:00:00+08:00"),
    ("QAWARD_CLOCK__SPEED", "86400"),
];

async fn demo(q: &Qaward, extra: &[String]) -> (bool, String, String) {
    let gateway = format!("http://{}", q.addr("gateway"));
    let mut cmd: tokio::process::Command = qaward(&["demo", "--gateway", &gateway]).into();
    let out = cmd
        .args(extra)
        .arg("--data-dir")
        .arg(q.data_dir.path())
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test]
async fn the_demo_walks_a_whole_cycle_against_a_fresh_server() {
    let q = Qaward::start(&[], &SIMULATED).await;
    let (ok, out, err) = demo(&q, &[]).await;
    assert!(ok, "{out}{err}");
    for expected in [
        "recused: 刘建国 (CQZJ-0001) — EMPLOYER (R-41)",
        "replayed offline: MATCH",
        "submission refused — R-02 OUTSIDE_COUNTY",
        "MATERIALS_PASSED — R-13 资料评审得分500分",
        "MATERIALS_FAILED — R-13",
        "税务局 objects to",
        "a citizen complains about",
        "AWARDED 重庆云阳长江机械制造有限公司",
        "AWARDED 云阳县三峡食品股份有限公司",
        // The failing enterprise reads its feedback report in its dossier.
        "feedback report of the materials review, total 450",
        "Done in",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in\n{out}");
    }
    // The exported draw records verify with the offline command the account names.
    let records = q.data_dir.path().join("demo-draws/yunyang");
    for n in 1..=3 {
        let file = records.join(format!("draw-{n}.json"));
        let check = qaward(&["draw", "verify"]).arg(&file).output().unwrap();
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
    // Run again, it says the programme exists and how to go on, changing nothing.
    let (ok, _, err) = demo(&q, &[]).await;
    assert!(
        !ok && err.contains("already exists on this server"),
        "{err}"
    );
    // Another programme over the HTTP/JSON port, on the same server.
    let http = vec![
        "--http".to_string(),
        q.addr("gateway-http").to_string(),
        "--programme".to_string(),
        "yunyang-http".to_string(),
    ];
    let (ok, out, err) = demo(&q, &http).await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("(HttpJson)") && out.contains("AWARDED"),
        "{out}"
    );
}

#[tokio::test]
async fn the_demo_walks_a_whole_cycle_against_a_server_on_postgres() {
    let Some(url) = qaward_kit::testing::fresh_postgres_database().await else {
        return;
    };
    let q = Qaward::start(&["--database-url", &url], &SIMULATED).await;
    let (ok, out, err) = demo(&q, &[]).await;
    assert!(ok, "{out}{err}");
    assert_eq!(out.matches("   AWARDED ").count(), 2, "{out}");
    assert_eq!(out.matches("replayed offline: MATCH").count(), 3, "{out}");
}

#[tokio::test]
async fn the_demo_refuses_a_server_on_the_wall_clock_and_says_how_to_start_one() {
    let q = Qaward::start(&[], &[]).await;
    let (ok, out, err) = demo(&q, &[]).await;
    assert!(!ok, "{out}");
    assert!(
        err.contains("QAWARD_CLOCK__SPEED=86400") && err.contains("public notice would take days"),
        "{err}"
    );
}
