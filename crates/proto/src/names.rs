//! Names the contracts give things that more than one service builds: the scoring service's
//! name for a cycle, and the rubric every installation has. (The resource names each service
//! parses for itself live in its `grpc/names.rs`.)

/// The rubric every installation's scoring service has from its first start (GB/T 19580-2012
/// with the points of R-10), and the one a programme that names no rubric is scored on.
pub const DEFAULT_RUBRIC_ID: &str = "gbt-19580-2012";

/// The scoring service's name for the cycle of `programme` in `year`: the applications service
/// creates its assignments under it, and the feedback report of an application is
/// `{scoring_cycle}/applications/{application name}/feedbackReport`. Programme ids are
/// lower-case letters, digits and hyphens and the year ends the name, so the mapping is one to
/// one.
pub fn scoring_cycle(programme: &str, year: i64) -> String {
    format!("cycles/{programme}-{year}")
}
