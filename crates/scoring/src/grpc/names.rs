//! The resource names this service parses, each into its id or INVALID_ARGUMENT naming the
//! field.

use qaward_kit::{Error, Result};

/// `{collection}/{id}` → id.
pub(super) fn id_of<'a>(name: &'a str, collection: &str, field: &str) -> Result<&'a str> {
    name.strip_prefix(collection)
        .and_then(|r| r.strip_prefix('/'))
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .ok_or_else(|| Error::invalid(field, format!("must be {collection}/{{id}}")))
}

/// `rubrics/{id}` (the current version) or `rubrics/{id}@{version}` → (id, version).
pub(super) fn rubric(name: &str, field: &str) -> Result<(String, Option<i64>)> {
    let id = id_of(name, "rubrics", field)?;
    match id.split_once('@') {
        Some((id, v)) => v
            .parse::<i64>()
            .map(|v| (id.to_string(), Some(v)))
            .map_err(|_| Error::invalid(field, "the version after @ must be a number")),
        None => Ok((id.to_string(), None)),
    }
}

/// `assignments/{assignment}/reviewLog` → the assignment's id.
pub(super) fn review_log(name: &str, field: &str) -> Result<String> {
    name.strip_prefix("assignments/")
        .and_then(|n| n.strip_suffix("/reviewLog"))
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .map(str::to_string)
        .ok_or_else(|| Error::invalid(field, "must be assignments/{assignment}/reviewLog"))
}

/// `cycles/{cycle}/applications/{application…}/feedbackReport` → (`cycles/{cycle}`, the
/// application's name).
pub(super) fn feedback_report(name: &str, field: &str) -> Result<(String, String)> {
    let rest = name
        .strip_prefix("cycles/")
        .and_then(|x| x.strip_suffix("/feedbackReport"))
        .ok_or_else(|| {
            Error::invalid(
                field,
                "must be cycles/{cycle}/applications/{application}/feedbackReport",
            )
        })?;
    let (cycle, application) = rest
        .split_once("/applications/")
        .ok_or_else(|| Error::invalid(field, "must name an application"))?;
    Ok((format!("cycles/{cycle}"), application.to_string()))
}
