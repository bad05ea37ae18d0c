//! Who may call which method of `qaward.reviewers.v1.ReviewerService`: the roles the gateway and this
//! service's host admit, and which records the handler then lets each reach. `docs/policy.md`
//! prints every service's table.

use qaward_kit::{
    auth::Role::{Office, Reviewer, Supervisor},
    policy::{OFFICE, OWN_PROGRAMME, STAFF, ServicePolicy, rule},
};

/// This service's rows of the policy table.
pub const POLICY: ServicePolicy = ServicePolicy {
    service: "qaward.reviewers.v1.ReviewerService",
    rules: &[
        rule("CreateProgramme", OFFICE, OWN_PROGRAMME),
        rule("GetProgramme", STAFF, OWN_PROGRAMME),
        rule("ListProgrammes", STAFF, "all"),
        rule("UpdateDrawPolicy", OFFICE, OWN_PROGRAMME),
        rule(
            "ImportReviewers",
            OFFICE,
            "the registry shared by all programmes",
        ),
        rule(
            "GetReviewer",
            &[Office, Supervisor, Reviewer],
            "a reviewer themselves (subject = certificate number)",
        ),
        rule("ListReviewers", STAFF, "all"),
        rule(
            "CreateRelation",
            &[Office, Reviewer],
            "a reviewer declares their own (R-41)",
        ),
        rule(
            "ListRelations",
            &[Office, Supervisor, Reviewer],
            "a reviewer their own",
        ),
        rule(
            "CreateFlag",
            &[Office, Reviewer],
            "a reviewer declares their own unavailability",
        ),
        rule(
            "ListFlags",
            &[Office, Supervisor, Reviewer],
            "a reviewer their own",
        ),
        rule("ResolveFlag", OFFICE, "all"),
        rule(
            "CheckConflicts",
            &[Office, Supervisor, Reviewer],
            "a reviewer their own",
        ),
        rule("PrepareDraw", OFFICE, OWN_PROGRAMME),
        rule("ExecuteDraw", OFFICE, OWN_PROGRAMME),
        rule("GetDraw", STAFF, OWN_PROGRAMME),
        rule("ListDraws", STAFF, OWN_PROGRAMME),
        rule("VerifyDraw", STAFF, OWN_PROGRAMME),
        rule(
            "GetPanel",
            &[Office, Supervisor, Reviewer],
            "a drawn reviewer their own seat until release (R-43)",
        ),
        rule("ListPanels", STAFF, OWN_PROGRAMME),
        rule(
            "RespondToAssignment",
            &[Office, Reviewer],
            "the drawn reviewer, or the office on their behalf",
        ),
        rule("ReplaceMember", OFFICE, OWN_PROGRAMME),
        rule("ReleasePanel", OFFICE, OWN_PROGRAMME),
        rule(
            "RecordReviewerEvent",
            &[Office, Reviewer],
            "the office; a panel's leader the certificate shown and the assessment of its members",
        ),
        rule(
            "GetReviewerRecord",
            &[Office, Supervisor, Reviewer],
            "a reviewer their own",
        ),
    ],
};
