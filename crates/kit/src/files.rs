//! The data directory is the operator's alone (PIPL Art. 51; 等保 2.0: confidentiality at
//! rest): every file the process creates there — database files and their WAL, evidence
//! blobs, keys — is `0600`, every directory `0700`, by the process's file-mode mask, set before
//! anything is created. At start the directory is checked and any entry wider than that is
//! named in a warning (an older installation, a restored backup, a hand-made file).

use std::path::{Path, PathBuf};

/// Sets the file-mode mask so that what the process creates is private to its user: files
/// `0600`, directories `0700`. Returns the mask it replaced. A no-op off Unix.
pub fn private_by_default() -> u32 {
    #[cfg(unix)]
    {
        // SAFETY: umask has no preconditions and cannot fail; it only swaps the mask.
        unsafe { libc::umask(0o077) as u32 }
    }
    #[cfg(not(unix))]
    {
        0
    }
}

/// Entries below `dir` (itself included) whose mode lets the group or others in: files with
/// any of `0o077`, directories likewise; with their mode. Symlinks are not followed; the walk
/// goes at most 6 levels deep and stops at 10,000 entries.
pub fn wider_than_private(dir: &Path) -> Vec<(PathBuf, u32)> {
    let mut out = Vec::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut stack = vec![(dir.to_path_buf(), 0)];
        let mut seen = 0;
        while let Some((path, depth)) = stack.pop() {
            seen += 1;
            if seen > 10_000 {
                break;
            }
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.file_type().is_symlink() {
                continue;
            }
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                out.push((path.clone(), mode));
            }
            if meta.is_dir()
                && depth < 6
                && let Ok(entries) = std::fs::read_dir(&path)
            {
                for e in entries.flatten() {
                    stack.push((e.path(), depth + 1));
                }
            }
        }
        out.sort();
    }
    #[cfg(not(unix))]
    let _ = dir;
    out
}

/// Warns once per entry of `dir` wider than private, naming it and its mode; how many.
pub fn warn_if_wider(dir: &Path) -> usize {
    let wide = wider_than_private(dir);
    for (path, mode) in &wide {
        tracing::warn!(
            path = %path.display(),
            mode = %format!("{mode:o}"),
            "a data file or directory is readable beyond its owner: chmod it to 600 (700 for a directory)"
        );
    }
    wide.len()
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_file_or_directory_readable_by_others_is_named_and_private_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let private = dir.path().join("applications.db");
        std::fs::write(&private, b"x").unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
        let open = dir.path().join("applications.db-wal");
        std::fs::write(&open, b"x").unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
        let blobs = dir.path().join("blobs");
        std::fs::create_dir(&blobs).unwrap();
        std::fs::set_permissions(&blobs, std::fs::Permissions::from_mode(0o755)).unwrap();
        let got = wider_than_private(dir.path());
        assert_eq!(got, [(open, 0o644), (blobs, 0o755)]);
    }
}
