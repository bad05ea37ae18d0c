//! The resource names this service parses, each into its parts or INVALID_ARGUMENT naming the
//! field, and the names it builds for others.

use qaward_kit::{Error, Result, cn::CreditCode, names::valid_id};
use sha2::{Digest, Sha256};

use crate::store::ApplicationRow;

/// `programmes/{p}/cycles/{year}` → (p, year).
pub(crate) fn cycle_id(name: &str, field: &str) -> Result<(String, i64)> {
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        ["programmes", p, "cycles", y] if valid_id(p) => y
            .parse::<i64>()
            .ok()
            .filter(|y| (2000..=2100).contains(y))
            .map(|y| (p.to_string(), y)),
        _ => None,
    }
    .ok_or_else(|| Error::invalid(field, "must be programmes/{programme}/cycles/{year}"))
}

/// `enterprises/{credit code}` → the validated code.
pub(crate) fn enterprise_code(name: &str, field: &str) -> Result<CreditCode> {
    let code = name
        .strip_prefix("enterprises/")
        .ok_or_else(|| Error::invalid(field, "must be enterprises/{unified social credit code}"))?;
    CreditCode::parse(code).map_err(|e| Error::invalid(field, e.to_string()))
}

/// `programmes/{p}/cycles/{y}/applications/{code}` → (p, y, code).
pub(crate) fn application_name(name: &str, field: &str) -> Result<(String, i64, CreditCode)> {
    let (cycle, code) = name.rsplit_once("/applications/").ok_or_else(|| {
        Error::invalid(
            field,
            "must be programmes/{p}/cycles/{year}/applications/{credit code}",
        )
    })?;
    let (p, y) = cycle_id(cycle, field)?;
    let code = CreditCode::parse(code).map_err(|e| Error::invalid(field, e.to_string()))?;
    Ok((p, y, code))
}

/// `programmes/{p}/cycles/{y}/reviewGroups/{id}` → (p, y, id).
pub(super) fn group_name(name: &str, field: &str) -> Result<(String, i64, String)> {
    let (cycle, id) = name.rsplit_once("/reviewGroups/").ok_or_else(|| {
        Error::invalid(
            field,
            "must be programmes/{p}/cycles/{year}/reviewGroups/{group}",
        )
    })?;
    let (p, y) = cycle_id(cycle, field)?;
    if !qaward_kit::names::valid_id(id) {
        return Err(Error::invalid(field, "the group id is malformed"));
    }
    Ok((p, y, id.to_string()))
}

pub(crate) fn application_resource(row: &ApplicationRow) -> String {
    format!(
        "programmes/{}/cycles/{}/applications/{}",
        row.programme_id, row.year, row.credit_code
    )
}

/// The application's resource name from its id (`{p}/{y}/{code}`).
pub(crate) fn resource_of_id(id: &str) -> String {
    let mut p = id.splitn(3, '/');
    let (a, b, c) = (
        p.next().unwrap_or(""),
        p.next().unwrap_or(""),
        p.next().unwrap_or(""),
    );
    format!("programmes/{a}/cycles/{b}/applications/{c}")
}

/// The inbox id of a department named in the programme's settings (names are Chinese;
/// recipient ids are ASCII): `department-` and the first 16 hex digits of the name's SHA-256.
pub fn department_inbox(name: &str) -> String {
    format!(
        "department-{}",
        &hex::encode(Sha256::digest(name.as_bytes()))[..16]
    )
}
