//! Who may call which method of `qaward.notifications.v1.NotificationService`: the roles the gateway and this
//! service's host admit, and which records the handler then lets each reach. `docs/policy.md`
//! prints every service's table.

use qaward_kit::{
    auth::Role::{
        Advisor, CommitteeMember, Department, Enterprise, Government, Office, RecommendingUnit,
        Reviewer, Service, Supervisor,
    },
    policy::{OFFICE, RECIPIENTS, STAFF, ServicePolicy, rule},
};

/// This service's rows of the policy table.
pub const POLICY: ServicePolicy = ServicePolicy {
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
};
