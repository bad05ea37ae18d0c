//! The resource names this service parses, each into its ids or INVALID_ARGUMENT naming the
//! field.

use qaward_kit::{Error, Result, names::valid_id};

pub(super) use qaward_kit::names::programme_id;

/// `programmes/{p}/{collection}/{id}` → (p, id).
pub(super) fn child(name: &str, collection: &str, field: &str) -> Result<(String, String)> {
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        ["programmes", p, k, id] if *k == collection && valid_id(p) && !id.is_empty() => {
            Ok((p.to_string(), id.to_string()))
        }
        _ => Err(Error::invalid(
            field,
            format!("must be programmes/{{programme}}/{collection}/{{id}}"),
        )),
    }
}

/// `reviewers/{cert}` → the certificate number, upper-case.
pub(super) fn reviewer_id(name: &str, field: &str) -> Result<String> {
    name.strip_prefix("reviewers/")
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .map(str::to_ascii_uppercase)
        .ok_or_else(|| Error::invalid(field, "must be reviewers/{certificate number}"))
}

/// `reviewers/{reviewer}/flags/{flag}` → (reviewer, flag).
pub(super) fn flag(name: &str, field: &str) -> Result<(String, String)> {
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        ["reviewers", rv, "flags", id] if !rv.is_empty() && !id.is_empty() => {
            Ok((rv.to_ascii_uppercase(), id.to_string()))
        }
        _ => Err(Error::invalid(
            field,
            "must be reviewers/{reviewer}/flags/{flag}",
        )),
    }
}

/// `reviewers/{reviewer}/years/{year}` → (reviewer, year), the year 2000-2100.
pub(super) fn reviewer_year(name: &str, field: &str) -> Result<(String, i32)> {
    name.rsplit_once("/years/")
        .and_then(|(r, y)| Some((reviewer_id(r, field).ok()?, y.parse::<i32>().ok()?)))
        .filter(|(_, y)| (2000..=2100).contains(y))
        .ok_or_else(|| Error::invalid(field, "must be reviewers/{reviewer}/years/{year}"))
}
