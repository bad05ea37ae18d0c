//! The data directory is the operator's alone (issue 23, item 5; PIPL Art. 51, 等保 2.0):
//! whatever `qaward serve` creates there — database files and their WAL, keys, the evidence
//! store — is 0600 (directories 0700), and a wider file it finds there at start is named in a
//! warning.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::support::{free_port_env, qaward};

#[tokio::test]
async fn the_data_directory_is_private_and_a_wider_file_found_there_is_named_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    // A file restored from a backup with the umask of another machine.
    let stale = dir.path().join("restored-export.json");
    std::fs::write(&stale, b"{}").unwrap();
    std::fs::set_permissions(&stale, std::fs::Permissions::from_mode(0o644)).unwrap();

    let mut cmd: tokio::process::Command = qaward(&["serve", "--data-dir"]).into();
    cmd.arg(dir.path())
        .envs(free_port_env())
        .env("QAWARD_TELEMETRY__LOG_FILTER", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = child.stderr.take().unwrap();
    let serving = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with("qaward is serving") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(serving, Ok(true));
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let mut said = String::new();
    stderr.read_to_string(&mut said).await.unwrap();
    assert!(
        said.contains("restored-export.json mode=644")
            && said.matches("readable beyond").count() == 1,
        "the wider file is named with its mode: {said}"
    );

    // Everything the process made is private; only the stale file is not.
    let mut made = 0;
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        if p != stale {
            assert_eq!(mode & 0o077, 0, "{} is {mode:o}", p.display());
            made += 1;
        }
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(
        made >= 6 && names.iter().any(|n| n.ends_with(".db")),
        "the databases and keys were made there: {names:?}"
    );
}
