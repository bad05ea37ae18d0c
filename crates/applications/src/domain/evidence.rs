//! Evidence files: which kinds are accepted, how large, and whether a file is what it
//! says it is — judged by its first bytes, not by its name.

/// The largest evidence file.
pub const MAX_BYTES: u64 = 50 * 1024 * 1024;
/// The most files one application may carry.
pub const MAX_FILES: usize = 200;

/// Accepted content types and the bytes every such file starts with.
const KINDS: &[(&str, &[u8])] = &[
    ("application/pdf", b"%PDF-"),
    ("image/jpeg", &[0xFF, 0xD8, 0xFF]),
    (
        "image/png",
        &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A],
    ),
    // Office Open XML (docx, xlsx) are ZIP containers.
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        b"PK\x03\x04",
    ),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        b"PK\x03\x04",
    ),
];

/// The accepted content types.
pub fn accepted() -> Vec<&'static str> {
    KINDS.iter().map(|(t, _)| *t).collect()
}

/// Whether `content_type` is accepted.
pub fn is_accepted(content_type: &str) -> bool {
    KINDS.iter().any(|(t, _)| *t == content_type)
}

/// Whether a file of `content_type` may start with `head` (its first bytes).
pub fn matches(content_type: &str, head: &[u8]) -> bool {
    KINDS
        .iter()
        .any(|(t, magic)| *t == content_type && head.starts_with(magic))
}

/// Art. 14 ("申报材料相关证明须由县级相关部门出具"): a certificate names the county-level department
/// that issued it — a 县 department — and other evidence names none. Why not, if it does not.
pub fn issuer_problem(certificate: bool, issued_by: &str) -> Option<&'static str> {
    let n = issued_by.trim().chars().count();
    if certificate {
        if n == 0 || n > 100 {
            return Some(
                "a certificate names its issuing county-level department (Art. 14), 1-100 characters",
            );
        }
        if !issued_by.contains('县') {
            return Some("a certificate is issued by a county-level (县) department (Art. 14)");
        }
    } else if n > 0 {
        return Some("only a certificate names an issuing department");
    }
    None
}

/// A file name as shown: 1-200 characters, no path separators or control characters.
pub fn valid_file_name(name: &str) -> bool {
    let n = name.chars().count();
    (1..=200).contains(&n)
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control)
        && name != "."
        && name != ".."
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r05_a_file_must_be_what_its_type_says() {
        assert!(matches("application/pdf", b"%PDF-1.7\n..."));
        assert!(!matches("application/pdf", b"\x89PNG\r\n\x1a\n"));
        assert!(matches("image/png", b"\x89PNG\r\n\x1a\nIHDR"));
        assert!(!matches("application/x-msdownload", b"MZ"));
        assert!(!is_accepted("text/html"));
        assert!(valid_file_name("质量手册（2025版）.pdf"));
        for bad in ["", "../etc/passwd", "a\\b.pdf", "a\u{0}b.pdf", ".."] {
            assert!(!valid_file_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn r05_art_14_a_certificate_names_its_county_level_issuer() {
        assert!(issuer_problem(true, "云阳县应急管理局").is_none());
        assert!(issuer_problem(true, "").is_some());
        assert!(
            issuer_problem(true, "重庆市应急管理局").is_some(),
            "not county-level"
        );
        assert!(issuer_problem(false, "").is_none());
        assert!(issuer_problem(false, "云阳县应急管理局").is_some());
    }
}
