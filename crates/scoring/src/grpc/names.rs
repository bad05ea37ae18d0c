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

/// A parsed `programmes/{programme}/cycles/{cycle}/assignments/{assignment}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct AssignmentName {
    /// `programmes/{programme}/cycles/{cycle}`.
    pub cycle: String,
    pub id: String,
}

const ASSIGNMENT: &str = "programmes/{programme}/cycles/{cycle}/assignments/{assignment}";

impl AssignmentName {
    /// NOT_FOUND unless `a` is the assignment this name names. The id finds the row; the cycle
    /// must be the row's, so a name is canonical and never an alias of another.
    pub(super) fn check(&self, a: &crate::store::AssignmentRow) -> Result<()> {
        if a.id == self.id && a.cycle == self.cycle {
            Ok(())
        } else {
            Err(Error::not_found(assignment_name(&self.cycle, &self.id)))
        }
    }
}

/// The name of assignment `id` of `cycle` (`programmes/{p}/cycles/{c}`).
pub(super) fn assignment_name(cycle: &str, id: &str) -> String {
    format!("{cycle}/assignments/{id}")
}

/// `programmes/{p}/cycles/{c}/assignments/{a}` → its cycle and id.
pub(super) fn assignment(name: &str, field: &str) -> Result<AssignmentName> {
    let bad = || Error::invalid(field, format!("must be {ASSIGNMENT}"));
    let (cycle_name, id) = name.rsplit_once("/assignments/").ok_or_else(bad)?;
    if !single(id) {
        return Err(bad());
    }
    let cycle = cycle(cycle_name, field).map_err(|_| bad())?;
    Ok(AssignmentName {
        cycle,
        id: id.to_string(),
    })
}

/// `{assignment name}/sheets/{sheet}` → the assignment's name and the sheet's id.
pub(super) fn sheet(name: &str, field: &str) -> Result<(AssignmentName, String)> {
    let bad = || Error::invalid(field, format!("must be {ASSIGNMENT}/sheets/{{sheet}}"));
    let (assignment_part, id) = name.rsplit_once("/sheets/").ok_or_else(bad)?;
    if !single(id) {
        return Err(bad());
    }
    Ok((
        assignment(assignment_part, field).map_err(|_| bad())?,
        id.to_string(),
    ))
}

/// `{assignment name}/reviewLog` → the assignment's name.
pub(super) fn review_log(name: &str, field: &str) -> Result<AssignmentName> {
    let bad = || Error::invalid(field, format!("must be {ASSIGNMENT}/reviewLog"));
    let assignment_part = name.strip_suffix("/reviewLog").ok_or_else(bad)?;
    assignment(assignment_part, field).map_err(|_| bad())
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

/// The programme id of a cycle name `programmes/{programme}/cycles/{cycle}` (as [`cycle`]
/// accepted it; empty for anything else).
pub(super) fn programme_of(cycle: &str) -> &str {
    cycle
        .strip_prefix("programmes/")
        .and_then(|r| r.split_once("/cycles/"))
        .map(|(p, _)| p)
        .unwrap_or_default()
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

/// The application's id when `application` names one of `cycle`'s
/// (`{cycle}/applications/{application}`), else `None`.
pub(super) fn application_id_in<'a>(cycle: &str, application: &'a str) -> Option<&'a str> {
    application
        .strip_prefix(cycle)
        .and_then(|r| r.strip_prefix("/applications/"))
        .filter(|id| !id.is_empty() && !id.contains('/'))
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
    }

    #[test]
    fn assignments_sheets_and_logs_sit_under_their_cycle() {
        let a = assignment(
            "programmes/yunyang/cycles/2026/assignments/a1",
            "assignment",
        )
        .unwrap();
        assert_eq!(
            (a.cycle.as_str(), a.id.as_str()),
            ("programmes/yunyang/cycles/2026", "a1")
        );
        let (a2, s) = sheet(
            "programmes/yunyang/cycles/2026/assignments/a1/sheets/s9",
            "name",
        )
        .unwrap();
        assert_eq!((a2, s.as_str()), (a.clone(), "s9"));
        assert_eq!(
            review_log(
                "programmes/yunyang/cycles/2026/assignments/a1/reviewLog",
                "name"
            )
            .unwrap(),
            a
        );
        for bad in [
            "assignments/a1",
            "programmes/yunyang/cycles/2026/assignments/",
            "programmes/yunyang/cycles/2026/assignments/a/b",
            "cycles/x/assignments/a1",
        ] {
            let e = assignment(bad, "assignment").unwrap_err();
            assert_eq!(e.code, qaward_kit::ErrorCode::InvalidArgument, "{bad}");
        }
        assert!(sheet("sheets/s9", "name").is_err());
        assert!(review_log("assignments/a1/reviewLog", "name").is_err());
        assert!(cycle("programmes/yunyang/cycles/2026", "cycle").is_ok());
    }
}
