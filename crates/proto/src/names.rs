//! Names the contracts give things that more than one service builds: a cycle's name, which
//! the scoring service shares with the applications service, an application's feedback report,
//! and the rubric every installation has. (The resource names each service parses for itself
//! live in its `grpc/names.rs`.)

/// The rubric every installation's scoring service has from its first start (GB/T 19580-2012
/// with the points of R-10), and the one a programme that names no rubric is scored on.
pub const DEFAULT_RUBRIC_ID: &str = "gbt-19580-2012";

/// The cycle of `programme` in `year`: `programmes/{programme}/cycles/{year}`, the same name in
/// the applications service (which owns the cycle) and the scoring service (which scores it).
pub fn cycle(programme: &str, year: i64) -> String {
    format!("programmes/{programme}/cycles/{year}")
}

/// The feedback report of the application named `application`
/// (`programmes/{p}/cycles/{c}/applications/{a}`): a singleton under the application it
/// describes, served by the scoring service.
pub fn feedback_report(application: &str) -> String {
    format!("{application}/feedbackReport")
}

/// A reviewer's resource name, `reviewers/{certificate number}`: how every message of the
/// contracts names a reviewer (a draw's members, a panel's seats, a group's members, a scorer).
pub fn reviewer(certificate_number: &str) -> String {
    format!("reviewers/{certificate_number}")
}

/// The certificate number a reviewer's resource name holds, if it is one.
pub fn reviewer_id(name: &str) -> Option<&str> {
    name.strip_prefix("reviewers/")
        .filter(|id| !id.is_empty() && !id.contains('/'))
}
