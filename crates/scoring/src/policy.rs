//! Who may call which method of `qaward.scoring.v1.ScoringService`: the roles the gateway and this
//! service's host admit, and which records the handler then lets each reach. `docs/policy.md`
//! prints every service's table.

use qaward_kit::{
    auth::Role::{Advisor, Enterprise, Office, RecommendingUnit, Reviewer, Supervisor},
    policy::{ANYONE, OFFICE, STAFF, ServicePolicy, rule},
};

/// This service's rows of the policy table.
pub const POLICY: ServicePolicy = ServicePolicy {
    service: "qaward.scoring.v1.ScoringService",
    rules: &[
        rule("CreateRubric", OFFICE, "all"),
        rule("GetRubric", ANYONE, "all"),
        rule("ListRubrics", ANYONE, "all"),
        rule("CreateAssignment", OFFICE, "all"),
        rule(
            "ListAssignments",
            &[Office, Supervisor, Reviewer, Advisor],
            "reviewers and advisors their own",
        ),
        rule(
            "SaveSheet",
            &[Reviewer],
            "the assigned scorer's own sheet; advisors never (R-14)",
        ),
        rule(
            "GetSheet",
            &[Office, Supervisor, Reviewer],
            "a group member their own; others' once their own is submitted or the stage is released (R-12)",
        ),
        rule("ListSheets", &[Office, Supervisor, Reviewer], "as GetSheet"),
        rule("SubmitSheet", &[Reviewer], "the author"),
        rule(
            "CorrectSheet",
            &[Reviewer],
            "the author, before release (R-51)",
        ),
        rule(
            "OpenConsensus",
            &[Office, Supervisor, Reviewer],
            "the group leader; office and supervisor to look",
        ),
        rule("SignConsensus", &[Reviewer], "the group leader"),
        rule(
            "ReserveOpinion",
            &[Reviewer],
            "a scoring member of the group, on its signed consensus, before release (Rev. Art. 6(4))",
        ),
        rule(
            "SaveReviewLog",
            &[Office, Reviewer],
            "the office, or a scoring member of the panel or group, before release",
        ),
        rule(
            "GetReviewLog",
            &[Office, Supervisor, Reviewer, Advisor],
            "office and supervisor; the panel's or group's members and advisors (R-43)",
        ),
        rule(
            "ListReservedOpinions",
            &[Office, Supervisor, Reviewer],
            "office and supervisor all; a member its own",
        ),
        rule("ReleaseStage", OFFICE, "all"),
        rule("ComputeResults", STAFF, "all"),
        rule(
            "GetFeedbackReport",
            &[Office, Supervisor, Enterprise, RecommendingUnit],
            "the applicant and its recommending unit, after the materials stage is released (R-13)",
        ),
    ],
};
