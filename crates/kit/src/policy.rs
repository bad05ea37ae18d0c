//! Who may call what: the policy table's shape and how it is applied. Each service crate owns
//! its rows (`crates/<service>/src/policy.rs`, a [`ServicePolicy`]); the process that runs
//! services composes theirs into a [`Policy`].
//!
//! The rows are applied twice: by the gateway at the edge, with the whole table (a call the
//! table refuses never reaches a service), and by every service's host before its handlers,
//! with the service's own rows (a service reached directly, as other award programmes reach the
//! reviewers service, refuses the same calls). The handlers then decide the record-level part
//! from the verified caller: whose application, which group, while assigned, which area.
//! `docs/policy.md` prints the table; the `qaward` binary's tests keep the two equal and prove
//! every method of the contracts has a row.

use crate::{
    Error, ErrorCode,
    auth::{Caller, Role},
};

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

pub const OFFICE: &[Role] = &[Office];
pub const STAFF: &[Role] = &[Office, Supervisor];
/// Every authenticated caller, the public included.
pub const ANYONE: &[Role] = &Role::ALL;
/// Every caller that can be the recipient of a message: all but the public and the services.
pub const RECIPIENTS: &[Role] = &[
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

/// One row.
pub const fn rule(method: &'static str, roles: &'static [Role], records: &'static str) -> Rule {
    Rule {
        method,
        roles,
        records,
    }
}

pub const OWN_PROGRAMME: &str = "the programme its token acts for (`programme` claim)";

impl ServicePolicy {
    /// The row of `method`, if the service has one.
    pub fn rule(&self, method: &str) -> Option<&'static Rule> {
        self.rules.iter().find(|r| r.method == method)
    }

    /// Refuses a caller whose role this service's rows do not allow for the gRPC path
    /// (`/package.Service/Method`): PERMISSION_DENIED with reason `ROLE_NOT_ALLOWED`;
    /// UNIMPLEMENTED for a method with no row (no such method, so nothing to allow).
    pub fn check(&self, path: &str, caller: &Caller) -> Result<(), Error> {
        let rule = path
            .trim_start_matches('/')
            .split_once('/')
            .filter(|(service, _)| *service == self.service)
            .and_then(|(_, method)| self.rule(method))
            .ok_or_else(|| unknown_method(path))?;
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
}

fn unknown_method(path: &str) -> Error {
    Error::new(
        ErrorCode::Unimplemented,
        "UNKNOWN_METHOD",
        format!("{path} is not a method of the qaward API"),
    )
}

/// The rows of several services: the whole table where the gateway admits every method.
#[derive(Debug, Clone, Copy)]
pub struct Policy(&'static [&'static ServicePolicy]);

impl Policy {
    pub const fn new(services: &'static [&'static ServicePolicy]) -> Self {
        Policy(services)
    }

    pub fn services(&self) -> impl Iterator<Item = &'static ServicePolicy> + use<> {
        self.0.iter().copied()
    }

    /// The rows of a gRPC service, if the table has them.
    pub fn service(&self, service: &str) -> Option<&'static ServicePolicy> {
        self.0.iter().copied().find(|s| s.service == service)
    }

    /// The row of a gRPC path (`/qaward.scoring.v1.ScoringService/GetRubric`), if it has one.
    pub fn rule_of(&self, path: &str) -> Option<&'static Rule> {
        let (service, method) = path.trim_start_matches('/').split_once('/')?;
        self.service(service)?.rule(method)
    }

    /// [`ServicePolicy::check`] with the rows of the path's service; UNIMPLEMENTED for a path
    /// of no service in the table.
    pub fn check(&self, path: &str, caller: &Caller) -> Result<(), Error> {
        let service = path.trim_start_matches('/').split('/').next().unwrap_or("");
        self.service(service)
            .ok_or_else(|| unknown_method(path))?
            .check(path, caller)
    }

    /// The table as Markdown, one section per service, for `docs/policy.md`.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        for s in self.services() {
            out.push_str(&markdown_of(s));
        }
        out
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

/// One service's rows as a Markdown section.
fn markdown_of(s: &ServicePolicy) -> String {
    let mut out = String::new();
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
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: Role) -> Caller {
        Caller {
            subject: "x".into(),
            role,
            org: None,
            programme: None,
            token: String::new(),
        }
    }

    const APPROVALS: ServicePolicy = ServicePolicy {
        service: "qaward.applications.v1.ApplicationService",
        rules: &[rule("RecordApproval", OFFICE, OWN_PROGRAMME)],
    };

    #[test]
    fn a_refusal_names_the_role_and_the_allowed_ones() {
        let policy = Policy::new(&[&APPROVALS]);
        let path = "/qaward.applications.v1.ApplicationService/RecordApproval";
        assert!(policy.check(path, &caller(Office)).is_ok());
        let s = policy
            .check(path, &caller(Supervisor))
            .unwrap_err()
            .to_status();
        assert_eq!(s.code(), tonic::Code::PermissionDenied);
        use tonic_types::StatusExt;
        assert_eq!(
            s.get_error_details().error_info().unwrap().reason,
            "ROLE_NOT_ALLOWED"
        );
        assert!(s.message().contains("supervisor") && s.message().contains("office"));
        for unknown in [
            "/qaward.applications.v1.ApplicationService/Nope",
            "/qaward.nothing.v1.Nothing/Nope",
        ] {
            let s = policy
                .check(unknown, &caller(Office))
                .unwrap_err()
                .to_status();
            assert_eq!(s.code(), tonic::Code::Unimplemented, "{unknown}");
        }
        assert!(policy.rule_of("/grpc.health.v1.Health/Check").is_none());
        // A service's own rows refuse another service's path.
        assert!(
            APPROVALS
                .check(
                    "/qaward.scoring.v1.ScoringService/RecordApproval",
                    &caller(Office)
                )
                .is_err()
        );
    }
}
