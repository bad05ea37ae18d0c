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

/// `programmes/{programme}/cycles/{cycle}` (the applications service's name for a cycle),
/// whole, as it is stored.
pub(super) fn cycle(name: &str, field: &str) -> Result<String> {
    let ok = name
        .strip_prefix("programmes/")
        .and_then(|r| r.split_once("/cycles/"))
        .is_some_and(|(p, c)| single(p) && single(c));
    if ok {
        Ok(name.to_string())
    } else {
        Err(Error::invalid(
            field,
            "must be programmes/{programme}/cycles/{cycle}",
        ))
    }
}

fn single(segment: &str) -> bool {
    !segment.is_empty() && !segment.contains('/')
}

/// `programmes/{p}/cycles/{c}/applications/{a}/feedbackReport` → (the cycle
/// `programmes/{p}/cycles/{c}`, the application `programmes/{p}/cycles/{c}/applications/{a}`).
pub(super) fn feedback_report(name: &str, field: &str) -> Result<(String, String)> {
    let shape =
        "must be programmes/{programme}/cycles/{cycle}/applications/{application}/feedbackReport";
    let application = name
        .strip_suffix("/feedbackReport")
        .ok_or_else(|| Error::invalid(field, shape))?;
    let (cycle_name, id) = application
        .split_once("/applications/")
        .ok_or_else(|| Error::invalid(field, shape))?;
    if !single(id) {
        return Err(Error::invalid(field, shape));
    }
    let cycle_name = cycle(cycle_name, field).map_err(|_| Error::invalid(field, shape))?;
    Ok((cycle_name, application.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_named_under_the_application_it_describes() {
        let (c, a) = feedback_report(
            "programmes/yunyang/cycles/2026/applications/91500235MA5U0XXXXX/feedbackReport",
            "name",
        )
        .unwrap();
        assert_eq!(c, "programmes/yunyang/cycles/2026");
        assert_eq!(
            a,
            "programmes/yunyang/cycles/2026/applications/91500235MA5U0XXXXX"
        );
        for bad in [
            "cycles/yunyang-2026/applications/programmes/yunyang/cycles/2026/applications/x/feedbackReport",
            "programmes/yunyang/cycles/2026/applications/x",
            "programmes/yunyang/cycles/2026/applications/a/b/feedbackReport",
            "programmes//cycles/2026/applications/x/feedbackReport",
        ] {
            assert!(feedback_report(bad, "name").is_err(), "{bad}");
        }
        assert!(cycle("cycles/yunyang-2026", "cycle").is_err());
        assert!(cycle("programmes/yunyang/cycles/2026", "cycle").is_ok());
    }
}
