//! What the scenarios that start or watch processes share: where the `qaward` binary is, and a
//! process's peak resident memory.

use std::path::PathBuf;

/// The `qaward` binary: `given`, else the one beside this benchmark binary; an error saying how
/// to build it when it is not there.
pub fn qaward_binary(given: Option<PathBuf>) -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let qaward = given.unwrap_or_else(|| me.with_file_name("qaward"));
    if !qaward.exists() {
        return Err(format!(
            "{} not found: build it (cargo build --release -p qaward) or pass --qaward",
            qaward.display()
        ));
    }
    Ok(qaward)
}

/// The peak resident memory (KiB, `VmHWM`) of a process: `"self"` or a process id; 0 when
/// /proc does not say.
pub fn peak_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
