//! SIGTERM stops every service cleanly with exit code 0.

use crate::support::Qaward;

#[tokio::test]
async fn sigterm_stops_all_services_with_exit_code_zero() {
    let q = Qaward::start(&[], &[]).await;
    let reviewers = q.addr("reviewers");
    assert_eq!(q.terminate().await, Some(0));
    // Nothing listens any more.
    assert!(tokio::net::TcpStream::connect(reviewers).await.is_err());
}

/// A SIGTERM while the servers are still starting (an early `docker stop`, a rolling update)
/// drains them too: the signal is sent the instant the first listener is reported — before
/// readiness — and again the instant readiness is reported, five times each.
#[tokio::test]
async fn sigterm_the_instant_it_starts_still_exits_with_code_zero() {
    use tokio::io::AsyncBufReadExt;
    for (round, on) in ["listening", "qaward is serving"]
        .iter()
        .flat_map(|on| std::iter::repeat_n(*on, 5))
        .enumerate()
    {
        let data_dir = tempfile::tempdir().unwrap();
        let mut cmd: tokio::process::Command = crate::support::qaward(&["serve"]).into();
        cmd.arg("--data-dir")
            .arg(data_dir.path())
            .envs(crate::support::free_port_env())
            .env("QAWARD_TELEMETRY__LOG_FILTER", "warn")
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with(on) {
                break;
            }
        }
        let pid = child.id().unwrap().to_string();
        assert!(
            std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let status = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait())
            .await
            .expect("qaward exits after SIGTERM")
            .unwrap();
        assert_eq!(
            status.code(),
            Some(0),
            "round {round}, SIGTERM on {on:?}: {status:?}"
        );
    }
}
