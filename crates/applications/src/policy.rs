//! Who may call which method of `qaward.applications.v1.ApplicationService`: the roles the gateway and this
//! service's host admit, and which records the handler then lets each reach. `docs/policy.md`
//! prints every service's table.

use qaward_kit::{
    auth::Role::{
        Advisor, CommitteeMember, Department, Enterprise, Government, Office, Public,
        RecommendingUnit, Reviewer, Supervisor,
    },
    policy::{ANYONE, OFFICE, OWN_PROGRAMME, STAFF, ServicePolicy, rule},
};

/// This service's rows of the policy table.
pub const POLICY: ServicePolicy = ServicePolicy {
    service: "qaward.applications.v1.ApplicationService",
    rules: &[
        rule("CreateProgramme", OFFICE, OWN_PROGRAMME),
        rule("GetProgramme", STAFF, OWN_PROGRAMME),
        rule("ListProgrammes", STAFF, "all"),
        rule("UpdateProgrammeSettings", OFFICE, OWN_PROGRAMME),
        rule("CreateCycle", OFFICE, OWN_PROGRAMME),
        rule("GetCycle", ANYONE, "all: the notice is public (R-01)"),
        rule("ListCycles", ANYONE, "all: the notice is public (R-01)"),
        rule("GetCycleBoard", STAFF, OWN_PROGRAMME),
        rule(
            "CreateEnterprise",
            &[Enterprise, Office],
            "an enterprise registers itself (`org` = its credit code)",
        ),
        rule(
            "GetEnterprise",
            &[Office, Supervisor, Enterprise, RecommendingUnit],
            "an enterprise itself; a recommending unit the enterprises of its area",
        ),
        rule("ListEnterprises", STAFF, "all"),
        rule(
            "CheckEligibility",
            &[Office, Supervisor, Enterprise, RecommendingUnit],
            "an enterprise itself; a recommending unit the enterprises of its area",
        ),
        rule("CreateApplication", &[Enterprise], "its own"),
        rule(
            "GetApplication",
            &[Office, Supervisor, Enterprise, RecommendingUnit, Reviewer],
            "an enterprise its own; a unit its area's; a reviewer only while drawn into the started group reviewing it (R-43)",
        ),
        rule(
            "ListApplications",
            &[Office, Supervisor, Enterprise, RecommendingUnit],
            "an enterprise its own; a unit its area's; office and supervisor all",
        ),
        rule("UpdateApplication", &[Enterprise], "its own"),
        rule("UploadEvidence", &[Enterprise], "its own"),
        rule("SubmitApplication", &[Enterprise], "its own"),
        rule("WithdrawApplication", &[Enterprise], "its own"),
        rule(
            "SignRecommendation",
            &[RecommendingUnit, Department],
            "the enterprise's recommending unit; the cycle's required departments",
        ),
        rule("TransitionApplication", OFFICE, OWN_PROGRAMME),
        rule("PrepareReviewGroup", OFFICE, OWN_PROGRAMME),
        rule("StartReviewGroup", OFFICE, OWN_PROGRAMME),
        rule("GetReviewGroup", STAFF, OWN_PROGRAMME),
        rule("ListReviewGroups", STAFF, OWN_PROGRAMME),
        rule("ReleaseReviewStage", OFFICE, OWN_PROGRAMME),
        rule(
            "StopSiteVisit",
            &[Reviewer],
            "the leader of the started site group visiting that applicant (R-15)",
        ),
        rule("FixCandidates", OFFICE, OWN_PROGRAMME),
        rule("RequestConsultation", OFFICE, OWN_PROGRAMME),
        rule("DecideObjection", OFFICE, OWN_PROGRAMME),
        rule("OpenPublicNotice", OFFICE, OWN_PROGRAMME),
        rule("GetPublicNotice", ANYONE, "published notices (R-21)"),
        rule(
            "RecordConsultationOpinion",
            &[Department],
            "the consulted department itself (`org`)",
        ),
        rule(
            "CreateComplaint",
            &[
                Public,
                Enterprise,
                RecommendingUnit,
                Reviewer,
                Advisor,
                CommitteeMember,
                Department,
                Government,
            ],
            "while the public notice runs (R-21, R-52)",
        ),
        rule("ListComplaints", STAFF, OWN_PROGRAMME),
        rule("ResolveComplaint", OFFICE, OWN_PROGRAMME),
        rule("RecordCommitteeMeeting", OFFICE, OWN_PROGRAMME),
        rule("RecordApproval", OFFICE, OWN_PROGRAMME),
        rule("FileReport", &[Enterprise], "the award holder itself"),
        rule(
            "ListReports",
            &[Office, Supervisor, Enterprise],
            "an enterprise its own",
        ),
        rule("RevokeAward", OFFICE, OWN_PROGRAMME),
        rule("ExportCycleRecord", STAFF, OWN_PROGRAMME),
        rule("ListOverdueReports", STAFF, OWN_PROGRAMME),
    ],
};
