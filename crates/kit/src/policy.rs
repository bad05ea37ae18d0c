//! Who may call what: the checker. The table itself is in the contracts: every rpc carries a
//! `qaward.common.v1.access` option (the roles admitted, and in words which records the handler
//! then lets each reach), read here from the descriptor set as the gateway reads
//! `google.api.http`. Reflection thus tells any client who may call a method, and
//! `docs/policy.md` prints the same table ([`Policy::markdown`]; a test keeps the two equal).
//!
//! The rows are applied twice: by the gateway at the edge, with the whole table (a call the
//! table refuses never reaches a service), and by every service's host before its handlers,
//! with the service's own rows (a service reached directly, as other award programmes reach the
//! reviewers service, refuses the same calls). The handlers then decide the record-level part
//! from the verified caller: whose application, which group, while assigned, which area.

use std::sync::LazyLock;

use prost_reflect::{DescriptorPool, Value};

use crate::{
    Error, ErrorCode,
    auth::{Caller, Role},
};

/// The extension every rpc of the contracts carries.
pub const ACCESS_OPTION: &str = "qaward.common.v1.access";

/// One method's row: the roles that may call it at all, and to which records (the handler's
/// part, stated for the docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub method: String,
    pub roles: Vec<Role>,
    pub records: String,
}

/// One service's rows.
#[derive(Debug, Clone)]
pub struct ServicePolicy {
    pub service: String,
    pub rules: Vec<Rule>,
}

impl ServicePolicy {
    /// The row of `method`, if the service has one.
    pub fn rule(&self, method: &str) -> Option<&Rule> {
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
                    roles_text(&rule.roles)
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
#[derive(Debug, Clone)]
pub struct Policy(Vec<ServicePolicy>);

static CONTRACTS: LazyLock<Policy> = LazyLock::new(|| {
    Policy::from_descriptors(qaward_proto::FILE_DESCRIPTOR_SET)
        .unwrap_or_else(|e| panic!("the contracts' access options: {e}"))
});

impl Policy {
    pub fn new(services: Vec<ServicePolicy>) -> Self {
        Policy(services)
    }

    /// The table of qaward's contracts, read once from their descriptor set: every service,
    /// the gateway's own included. (The contract crate's tests prove every rpc has its option,
    /// so reading it cannot fail in a build whose tests pass.)
    pub fn contracts() -> &'static Policy {
        &CONTRACTS
    }

    /// The table written in an encoded `FileDescriptorSet`: one row per rpc of a `qaward.`
    /// service. An rpc without the access option, or naming a role this build does not know,
    /// is an error, never a silently open or closed method.
    pub fn from_descriptors(encoded: &[u8]) -> Result<Policy, String> {
        let pool = DescriptorPool::decode(encoded).map_err(|e| e.to_string())?;
        let access = pool
            .get_extension_by_name(ACCESS_OPTION)
            .ok_or_else(|| format!("{ACCESS_OPTION} is not in the descriptor set"))?;
        let mut services = Vec::new();
        for s in pool
            .services()
            .filter(|s| s.full_name().starts_with("qaward."))
        {
            let mut rules = Vec::new();
            for m in s.methods() {
                let options = m.options();
                if !options.has_extension(&access) {
                    return Err(format!("{} has no {ACCESS_OPTION} option", m.full_name()));
                }
                let value = options.get_extension(&access);
                let Value::Message(row) = value.as_ref() else {
                    return Err(format!(
                        "{}: {ACCESS_OPTION} is not a message",
                        m.full_name()
                    ));
                };
                let mut roles = Vec::new();
                if let Some(Value::List(values)) = row.get_field_by_name("roles").as_deref() {
                    for v in values {
                        let number = v.as_enum_number().unwrap_or_default();
                        let role = Role::from_number(number).ok_or_else(|| {
                            format!("{}: unknown role number {number}", m.full_name())
                        })?;
                        if !roles.contains(&role) {
                            roles.push(role);
                        }
                    }
                }
                let records = match row.get_field_by_name("records").as_deref() {
                    Some(Value::String(t)) => t.clone(),
                    _ => String::new(),
                };
                rules.push(Rule {
                    method: m.name().to_string(),
                    roles,
                    records,
                });
            }
            services.push(ServicePolicy {
                service: s.full_name().to_string(),
                rules,
            });
        }
        Ok(Policy(services))
    }

    pub fn services(&self) -> impl Iterator<Item = &ServicePolicy> {
        self.0.iter()
    }

    /// The rows of a gRPC service, if the table has them.
    pub fn service(&self, service: &str) -> Option<&ServicePolicy> {
        self.0.iter().find(|s| s.service == service)
    }

    /// The row of a gRPC path (`/qaward.scoring.v1.ScoringService/GetRubric`), if it has one.
    pub fn rule_of(&self, path: &str) -> Option<&Rule> {
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
    if Role::ALL.iter().all(|r| roles.contains(r)) {
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
    for rule in &s.rules {
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
            issuer: "qaward-local".into(),
            subject: "x".into(),
            role,
            org: None,
            programme: None,
            registry_keeper: false,
            token: String::new(),
        }
    }

    use Role::*;

    fn approvals() -> ServicePolicy {
        ServicePolicy {
            service: "qaward.applications.v1.ApplicationService".into(),
            rules: vec![Rule {
                method: "RecordApproval".into(),
                roles: vec![Office],
                records: "its programme".into(),
            }],
        }
    }

    #[test]
    fn the_contracts_give_every_rpc_its_row() {
        let policy = Policy::contracts();
        let rule = policy
            .rule_of("/qaward.reviewers.v1.ReviewerService/ExecuteDraw")
            .expect("a row for ExecuteDraw");
        assert_eq!(rule.roles, [Office]);
        let rule = policy
            .rule_of("/qaward.scoring.v1.ScoringService/GetRubric")
            .expect("a row for GetRubric");
        assert_eq!(rule.roles.len(), Role::ALL.len(), "everyone reads a rubric");
        assert!(policy.services().all(|s| !s.rules.is_empty()));
    }

    #[test]
    fn an_rpc_without_its_access_option_is_an_error_not_an_open_door() {
        // The descriptor set of a contract that forgot the option on one method.
        let mut set = <prost_types::FileDescriptorSet as prost::Message>::decode(
            qaward_proto::FILE_DESCRIPTOR_SET,
        )
        .unwrap();
        let file = set
            .file
            .iter_mut()
            .find(|f| f.package() == "qaward.scoring.v1")
            .unwrap();
        file.service[0].method[0].options = None;
        let encoded = prost::Message::encode_to_vec(&set);
        let e = Policy::from_descriptors(&encoded).unwrap_err();
        assert!(e.contains("has no qaward.common.v1.access option"), "{e}");
    }

    #[test]
    fn a_refusal_names_the_role_and_the_allowed_ones() {
        let policy = Policy::new(vec![approvals()]);
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
            approvals()
                .check(
                    "/qaward.scoring.v1.ScoringService/RecordApproval",
                    &caller(Office)
                )
                .is_err()
        );
    }
}
