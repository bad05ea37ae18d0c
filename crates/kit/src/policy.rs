//! Who may call what: one table, role × method, for every public method of every service.
//!
//! The table is applied twice from this one place: by the gateway at the edge (a call the table
//! refuses never reaches a service) and by every service's host before its handlers (a service
//! reached directly, as other award programmes reach the reviewers service, refuses the same
//! calls). The handlers then decide the record-level part from the verified caller: whose
//! application, which group, while assigned, which area. `docs/policy.md` prints the table; a
//! test keeps the two equal, and another proves every method of the contracts has a row.

use crate::{Error, ErrorCode, auth::Caller, auth::Role};

/// One method's row: the roles that may call it at all, and to which records (the handler's
/// part, stated for the docs).
#[derive(Debug)]
pub struct Rule {
    pub method: &'static str,
    pub roles: &'static [Role],
    pub records: &'static str,
}

/// One service's rows.
#[derive(Debug)]
pub struct ServicePolicy {
    pub service: &'static str,
    pub rules: &'static [Rule],
}

use Role::*;

const OFFICE: &[Role] = &[Office];
const STAFF: &[Role] = &[Office, Supervisor];
/// Every authenticated caller, the public included.
const ANYONE: &[Role] = &Role::ALL;
/// Every caller that can be the recipient of a message: all but the public and the services.
const RECIPIENTS: &[Role] = &[
    Enterprise,
    RecommendingUnit,
    Office,
    Reviewer,
    Advisor,
    CommitteeMember,
    Department,
    Government,
    Supervisor,
];

const fn rule(method: &'static str, roles: &'static [Role], records: &'static str) -> Rule {
    Rule {
        method,
        roles,
        records,
    }
}

const OWN_PROGRAMME: &str = "the programme its token acts for (`programme` claim)";

/// The table.
pub const POLICY: &[ServicePolicy] = &[
    ServicePolicy {
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
    },
    ServicePolicy {
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
    },
    ServicePolicy {
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
    },
    ServicePolicy {
        service: "qaward.notifications.v1.NotificationService",
        rules: &[
            rule(
                "CreateNotification",
                &[Office, Service],
                "the applications service's outbox relay acts as `service`",
            ),
            rule("GetNotification", &[Office, Supervisor, Service], "all"),
            rule(
                "ListNotifications",
                &[
                    Enterprise,
                    RecommendingUnit,
                    Office,
                    Reviewer,
                    Advisor,
                    CommitteeMember,
                    Department,
                    Government,
                    Supervisor,
                    Service,
                ],
                "staff all; a recipient its own deliveries (`recipient_id` = itself)",
            ),
            rule("CreateTemplate", OFFICE, "all"),
            rule("ListTemplates", &[Office, Supervisor, Service], "all"),
            rule(
                "ListInboxMessages",
                RECIPIENTS,
                "the recipient its own inbox; office and supervisor any",
            ),
            rule(
                "MarkInboxMessageRead",
                &[
                    Enterprise,
                    RecommendingUnit,
                    Office,
                    Reviewer,
                    Advisor,
                    CommitteeMember,
                    Department,
                    Government,
                ],
                "the recipient only",
            ),
            rule("ListDeadLetters", STAFF, "all"),
            rule("RequeueDeadLetter", OFFICE, "all"),
            rule("CreateReminder", &[Office, Service], "all"),
            rule("ListReminders", &[Office, Supervisor, Service], "all"),
        ],
    },
    ServicePolicy {
        service: "qaward.gateway.v1.GatewayService",
        rules: &[
            rule(
                "GetDossier",
                &[Office, Supervisor, Enterprise, RecommendingUnit],
                "as GetApplication; each part as the service that owns it decides",
            ),
            rule("GetCycleOverview", STAFF, OWN_PROGRAMME),
        ],
    },
];

/// Whether the table has rows for a gRPC service (every service of the contracts has).
pub fn governs(service: &str) -> bool {
    POLICY.iter().any(|s| s.service == service)
}

/// The row of a gRPC path (`/qaward.scoring.v1.ScoringService/GetRubric`), if it has one.
pub fn rule_of(path: &str) -> Option<&'static Rule> {
    let (service, method) = path.trim_start_matches('/').split_once('/')?;
    POLICY
        .iter()
        .find(|s| s.service == service)?
        .rules
        .iter()
        .find(|r| r.method == method)
}

/// Refuses a caller whose role the table does not allow for this gRPC path:
/// PERMISSION_DENIED with reason `ROLE_NOT_ALLOWED`; UNIMPLEMENTED for a path with no row (no
/// such method, so nothing to allow).
pub fn check(path: &str, caller: &Caller) -> Result<(), Error> {
    let rule = rule_of(path).ok_or_else(|| {
        Error::new(
            ErrorCode::Unimplemented,
            "UNKNOWN_METHOD",
            format!("{path} is not a method of the qaward API"),
        )
    })?;
    if rule.roles.contains(&caller.role) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::PermissionDenied,
            crate::auth::ROLE_NOT_ALLOWED,
            format!(
                "role {} may not call {}; allowed: {}",
                caller.role.as_str(),
                rule.method,
                roles_text(rule.roles)
            ),
        ))
    }
}

fn roles_text(roles: &[Role]) -> String {
    if roles == ANYONE {
        return "every authenticated caller".to_string();
    }
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The table as Markdown, one section per service, for `docs/policy.md`.
pub fn markdown() -> String {
    let mut out = String::new();
    for s in POLICY {
        out.push_str(&format!("### `{}`\n\n", s.service));
        out.push_str("| method |");
        for r in Role::ALL {
            out.push_str(&format!(" {} |", r.as_str()));
        }
        out.push_str(" which records |\n|---|");
        for _ in Role::ALL {
            out.push_str(":-:|");
        }
        out.push_str("---|\n");
        for rule in s.rules {
            out.push_str(&format!("| {} |", rule.method));
            for r in Role::ALL {
                out.push_str(if rule.roles.contains(&r) {
                    " ✓ |"
                } else {
                    " |"
                });
            }
            out.push_str(&format!(" {} |\n", rule.records));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn caller(role: Role) -> Caller {
        Caller {
            subject: "x".into(),
            role,
            org: None,
            programme: None,
            token: String::new(),
        }
    }

    /// Every method of the contracts, as `/package.Service/Method`.
    fn contract_methods() -> Vec<String> {
        let set = prost_types::FileDescriptorSet::decode(qaward_proto::FILE_DESCRIPTOR_SET)
            .expect("descriptor set");
        let mut out = Vec::new();
        for file in set.file {
            let package = file.package().to_string();
            if !package.starts_with("qaward.") {
                continue;
            }
            for service in &file.service {
                for method in &service.method {
                    out.push(format!("/{package}.{}/{}", service.name(), method.name()));
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn every_method_of_the_contracts_has_exactly_one_row() {
        let methods = contract_methods();
        assert_eq!(
            methods.len(),
            100,
            "the contracts changed: update the table"
        );
        let mut rows: Vec<String> = POLICY
            .iter()
            .flat_map(|s| {
                s.rules
                    .iter()
                    .map(move |r| format!("/{}/{}", s.service, r.method))
            })
            .collect();
        rows.sort();
        assert_eq!(rows, methods);
    }

    #[test]
    fn the_supervisor_reads_everything_and_changes_nothing() {
        const READS: &[&str] = &["Get", "List", "Check", "Verify", "Compute", "Export"];
        for s in POLICY {
            for r in s.rules {
                // Opening a consensus sheet only shows it to staff: nothing is written for them.
                let read =
                    READS.iter().any(|v| r.method.starts_with(v)) || r.method == "OpenConsensus";
                let name = format!("{}/{}", s.service, r.method);
                if r.roles.contains(&Supervisor) {
                    assert!(read, "the supervisor may change something: {name}");
                }
                if read && r.roles.contains(&Office) {
                    assert!(
                        r.roles.contains(&Supervisor),
                        "hidden from the supervisor: {name}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_public_sees_published_notices_and_may_complain_only() {
        let mut public: Vec<String> = POLICY
            .iter()
            .flat_map(|s| s.rules.iter())
            .filter(|r| r.roles.contains(&Public))
            .map(|r| r.method.to_string())
            .collect();
        public.sort();
        assert_eq!(
            public,
            [
                "CreateComplaint",
                "GetCycle",
                "GetPublicNotice",
                "GetRubric",
                "ListCycles",
                "ListRubrics"
            ]
        );
    }

    #[test]
    fn a_refusal_names_the_role_and_the_allowed_ones() {
        let path = "/qaward.applications.v1.ApplicationService/RecordApproval";
        assert!(check(path, &caller(Office)).is_ok());
        let s = check(path, &caller(Supervisor)).unwrap_err().to_status();
        assert_eq!(s.code(), tonic::Code::PermissionDenied);
        use tonic_types::StatusExt;
        assert_eq!(
            s.get_error_details().error_info().unwrap().reason,
            "ROLE_NOT_ALLOWED"
        );
        assert!(s.message().contains("supervisor") && s.message().contains("office"));
        let s = check(
            "/qaward.applications.v1.ApplicationService/Nope",
            &caller(Office),
        )
        .unwrap_err()
        .to_status();
        assert_eq!(s.code(), tonic::Code::Unimplemented);
        assert!(rule_of("/grpc.health.v1.Health/Check").is_none());
    }

    #[test]
    fn docs_print_the_table_as_it_is() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/policy.md"))
                .expect("docs/policy.md");
        assert!(
            doc.contains(&markdown()),
            "docs/policy.md is out of date; paste this table:\n{}",
            markdown()
        );
    }
}
