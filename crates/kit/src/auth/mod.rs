//! Who is calling. Every request outside health and reflection carries a bearer JWT signed
//! with an asymmetric key (EdDSA, ES256 or RS256; never HMAC, never `none`); the token names
//! the caller's subject, role (the roles of DOMAIN.md), organisation and programme. The
//! gateway relays the token unchanged, so every service knows the original caller.
//!
//! On one machine `qaward serve` makes an Ed25519 key in `<data_dir>/keys/` on first start
//! and `qaward token` signs with it: there is no unauthenticated mode to forget to switch off.

use std::{path::PathBuf, sync::Arc};

use serde::{Deserialize, Serialize};
use tonic::{Request, Status};

use crate::{Error, config};

mod jwks;
pub(crate) mod local_key;
mod verifier;

pub use jwks::MAX_JWKS_BYTES;
pub use local_key::LocalKey;
pub use verifier::{ISSUER_MAY_NOT_ASSERT, MAX_TOKEN_BYTES, Verifier, claimed_identity};

/// The roles of DOMAIN.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Enterprise,
    RecommendingUnit,
    Office,
    Reviewer,
    Advisor,
    CommitteeMember,
    Department,
    Government,
    Public,
    Supervisor,
    /// Another qaward service acting on its own account, not a person's: the applications
    /// service's outbox relay creating notifications. Subject `system:<service>`.
    Service,
}

impl Role {
    pub const ALL: [Role; 11] = [
        Role::Enterprise,
        Role::RecommendingUnit,
        Role::Office,
        Role::Reviewer,
        Role::Advisor,
        Role::CommitteeMember,
        Role::Department,
        Role::Government,
        Role::Public,
        Role::Supervisor,
        Role::Service,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Enterprise => "enterprise",
            Role::RecommendingUnit => "recommending_unit",
            Role::Office => "office",
            Role::Reviewer => "reviewer",
            Role::Advisor => "advisor",
            Role::CommitteeMember => "committee_member",
            Role::Department => "department",
            Role::Government => "government",
            Role::Public => "public",
            Role::Supervisor => "supervisor",
            Role::Service => "service",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The role a value of the contracts' one role enum (`qaward.common.v1.Role`) names:
    /// `ROLE_OFFICE` is `office`. None for ROLE_UNSPECIFIED and unknown numbers.
    pub fn from_number(number: i32) -> Option<Role> {
        let value = qaward_proto::qaward::common::v1::Role::try_from(number).ok()?;
        Role::parse(
            &value
                .as_str_name()
                .strip_prefix("ROLE_")?
                .to_ascii_lowercase(),
        )
    }
}

/// The caller's subject as the services compare it. A reviewer (or an advisor, who is a
/// reviewer of the registry) is named in the contracts as `reviewers/{certificate number}`,
/// and its token may say so; the bare certificate number is accepted too. Either way the
/// subject is the certificate number.
pub(super) fn subject_of(role: Role, sub: String) -> String {
    match (role, sub.strip_prefix("reviewers/")) {
        (Role::Reviewer | Role::Advisor, Some(id)) => id.to_string(),
        _ => sub,
    }
}

/// The identity of `subject` of `issuer`, as [`Caller::identity`] writes it.
pub fn identity(issuer: &str, subject: &str) -> String {
    format!("{issuer}#{subject}")
}

/// The reason of a refusal for the caller's role alone (the policy table's, or a handler's).
pub const ROLE_NOT_ALLOWED: &str = "ROLE_NOT_ALLOWED";

/// The claims of a qaward token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: Audience,
    pub sub: String,
    pub exp: u64,
    pub iat: u64,
    /// Not before: a token is refused until then (RFC 7519 §4.1.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub programme: Option<String>,
}

/// A token's `aud`: one audience, or several (RFC 7519 §4.1.3 allows an array); the token is
/// for us when ours is among them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl From<String> for Audience {
    fn from(one: String) -> Self {
        Audience::One(one)
    }
}

impl From<&str> for Audience {
    fn from(one: &str) -> Self {
        Audience::One(one.to_string())
    }
}

/// The verified caller of a request, available to handlers as a request extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The issuer whose key signed the token (its `iss`).
    pub issuer: String,
    /// The token's subject: who the caller is to that issuer.
    pub subject: String,
    pub role: Role,
    pub org: Option<String>,
    pub programme: Option<String>,
    /// The issuer's callers may write the shared reviewer registry (`registry_keeper` in its
    /// configuration).
    pub registry_keeper: bool,
    /// The bearer token as received, relayed unchanged on calls to other services.
    pub token: String,
}

impl Caller {
    /// Who the caller is, across issuers: `{issuer}#{subject}`. Two issuers may both have a
    /// subject `office-1`; they are different people. Idempotency keys, rate keys and audit
    /// actors use this. (An OpenID issuer has no fragment, so the first `#` splits it.)
    pub fn identity(&self) -> String {
        identity(&self.issuer, &self.subject)
    }

    /// The caller of a request that passed the [`Authenticator`].
    pub fn of<T>(request: &Request<T>) -> Result<&Caller, Status> {
        request
            .extensions()
            .get::<Caller>()
            .ok_or_else(|| Status::unauthenticated("no verified caller"))
    }

    /// The verified caller and the message of a request.
    pub fn and_message<T>(request: Request<T>) -> Result<(Caller, T), Status> {
        let caller = Caller::of(&request)?.clone();
        Ok((caller, request.into_inner()))
    }

    /// The id of the programme the caller acts for (its `programme` claim, with or without the
    /// `programmes/` prefix).
    pub fn programme_id(&self) -> Option<&str> {
        self.programme
            .as_deref()
            .map(|p| p.trim_start_matches("programmes/"))
    }

    /// Refuses unless the caller has one of `roles` and acts for `programme`: office and
    /// supervisor tokens act for one programme, the one their `programme` claim names.
    pub fn require_programme(&self, programme: &str, roles: &[Role]) -> Result<(), Error> {
        self.require(roles)?;
        self.acts_for(programme)
    }

    /// Refuses with PERMISSION_DENIED unless the token acts for `programmes/{programme}`: the
    /// record-level half of [`Caller::require_programme`], for a handler whose roles the policy
    /// table has already checked.
    pub fn acts_for(&self, programme: &str) -> Result<(), Error> {
        if self.programme_id() != Some(programme) {
            return Err(Error::permission_denied(format!(
                "this token does not act for programmes/{programme}"
            )));
        }
        Ok(())
    }

    /// Refuses with PERMISSION_DENIED (reason [`ROLE_NOT_ALLOWED`]) unless the caller has one
    /// of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), Error> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(Error::new(
                crate::ErrorCode::PermissionDenied,
                ROLE_NOT_ALLOWED,
                format!("role {} may not do this", self.role.as_str()),
            ))
        }
    }
}

/// Why a key could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot use key file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("invalid JWKS: {0}")]
    Jwks(String),
    #[error("cannot fetch JWKS from {url}: {message}")]
    Fetch { url: String, message: String },
}

/// Puts the caller's token on an outgoing request to another service, with the current span's
/// trace context, so the other service's work joins the caller's trace.
pub fn relay_token<T>(caller: &Caller, request: &mut Request<T>) {
    if let Ok(value) = format!("Bearer {}", caller.token).parse() {
        request.metadata_mut().insert("authorization", value);
    }
    crate::telemetry::inject_context(request.metadata_mut());
}

/// Where a service's own token comes from when it calls another service on its own account
/// (role `service`, subject `system:<service>`, issuer `auth.service_issuer`): a fresh,
/// short-lived token for each call, signed with the services' key — `auth.service_key_file`,
/// or on one machine the local service key in `data_dir/keys` (made if missing). Only a
/// service that relays an outbox to another needs it.
pub fn service_token_source(
    config: &config::Config,
    service: &str,
) -> Result<Arc<dyn Fn() -> String + Send + Sync>, KeyError> {
    let key = match &config.auth.service_key_file {
        Some(path) => LocalKey::load(path)?,
        None => LocalKey::load_or_create_service(&config.data_dir)?,
    };
    let auth = config.auth.clone();
    let subject = format!("system:{service}");
    Ok(Arc::new(move || {
        key.issue_service(&auth, time::OffsetDateTime::now_utc(), &subject)
            .unwrap_or_default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reviewer_may_be_named_by_its_resource_name_or_its_certificate_number() {
        assert_eq!(
            subject_of(Role::Reviewer, "reviewers/CQ-0001".into()),
            "CQ-0001"
        );
        assert_eq!(
            subject_of(Role::Advisor, "reviewers/CQ-0002".into()),
            "CQ-0002"
        );
        assert_eq!(subject_of(Role::Reviewer, "CQ-0001".into()), "CQ-0001");
        // Only a reviewer's subject is a reviewer's name.
        assert_eq!(
            subject_of(Role::Office, "reviewers/CQ-0001".into()),
            "reviewers/CQ-0001"
        );
    }

    #[test]
    fn the_contracts_role_enum_names_exactly_these_roles() {
        use qaward_proto::qaward::common::v1::Role as Contract;
        let mut seen = Vec::new();
        for number in 1..64 {
            if let Ok(value) = Contract::try_from(number) {
                let role = Role::from_number(number)
                    .unwrap_or_else(|| panic!("{} has no Rust role", value.as_str_name()));
                seen.push(role);
            }
        }
        assert_eq!(seen, Role::ALL, "the contract's roles, in its order");
        assert_eq!(Role::from_number(0), None);
    }

    #[test]
    fn a_service_token_is_signed_with_the_services_key_and_no_other_key_may_assert_service() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config::Config {
            data_dir: dir.path().to_path_buf(),
            ..config::Config::default()
        };
        let source = service_token_source(&config, "applications").unwrap();
        let people = LocalKey::load_or_create(dir.path()).unwrap();
        let verifier = Verifier::from_jwks(&people.jwks_json(), &config.auth).unwrap();
        let services =
            std::fs::read_to_string(dir.path().join(LocalKey::SERVICE_JWKS_FILE)).unwrap();
        verifier
            .replace_keys_of(&config.auth.service_issuer, &services)
            .unwrap();
        let caller = verifier.verify(&source()).unwrap();
        assert_eq!(caller.role, Role::Service);
        assert_eq!(caller.subject, "system:applications");
        assert_eq!(caller.identity(), "qaward-services#system:applications");

        // The people's key (which `qaward token` signs with) cannot mint a service token.
        let forged = people
            .issue(
                &config.auth,
                time::OffsetDateTime::now_utc(),
                "system:applications",
                Role::Service,
                None,
                None,
            )
            .unwrap();
        assert_eq!(
            verifier.verify(&forged).unwrap_err().reason,
            ISSUER_MAY_NOT_ASSERT
        );
        // Nor by naming the services' issuer: that issuer's keys must verify it.
        let mut claims = verifier_claims(&config.auth);
        claims.iss = config.auth.service_issuer.clone();
        assert_eq!(
            verifier
                .verify(&people.sign(&claims).unwrap())
                .unwrap_err()
                .reason,
            "UNKNOWN_KEY"
        );

        // A service key given by path is used as it is.
        config.auth.service_key_file = Some(dir.path().join(LocalKey::SERVICE_KEY_FILE));
        let again = service_token_source(&config, "applications").unwrap();
        assert!(verifier.verify(&again()).is_ok());
        config.auth.service_key_file = Some(dir.path().join("missing.pk8"));
        assert!(service_token_source(&config, "applications").is_err());
    }

    fn verifier_claims(auth: &config::Auth) -> Claims {
        let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
        Claims {
            iss: auth.issuer.clone(),
            aud: auth.audience.clone().into(),
            sub: "system:applications".into(),
            exp: now + 60,
            iat: now,
            nbf: None,
            role: Role::Service,
            org: None,
            programme: None,
        }
    }
}
