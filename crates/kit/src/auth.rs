//! Who is calling. Every request outside health and reflection carries a bearer JWT signed
//! with an asymmetric key (EdDSA, ES256 or RS256; never HMAC, never `none`); the token names
//! the caller's subject, role (the roles of DOMAIN.md), organisation and programme. The
//! gateway relays the token unchanged, so every service knows the original caller.
//!
//! On one machine `qaward serve` makes an Ed25519 key in `<data_dir>/keys/` on first start
//! and `qaward token` signs with it: there is no unauthenticated mode to forget to switch off.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation,
    jwk::{AlgorithmParameters, JwkSet},
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tonic::{Request, Status};

use crate::{Error, config};

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
fn subject_of(role: Role, sub: String) -> String {
    match (role, sub.strip_prefix("reviewers/")) {
        (Role::Reviewer | Role::Advisor, Some(id)) => id.to_string(),
        _ => sub,
    }
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
    pub subject: String,
    pub role: Role,
    pub org: Option<String>,
    pub programme: Option<String>,
    /// The bearer token as received, relayed unchanged on calls to other services.
    pub token: String,
}

impl Caller {
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

/// The local Ed25519 signing key of a one-machine installation.
pub struct LocalKey {
    kid: String,
    encoding: EncodingKey,
    public: [u8; 32],
}

/// PKCS#8 v1 prefix of an Ed25519 private key (RFC 8410): the 32-byte seed follows.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

impl LocalKey {
    pub const SIGNING_KEY_FILE: &'static str = "keys/signing-key.pk8";
    pub const JWKS_FILE: &'static str = "keys/jwks.json";

    /// Reads the key in `data_dir`, or makes one (and its public JWKS) on first start.
    pub fn load_or_create(data_dir: &Path) -> Result<LocalKey, KeyError> {
        let path = data_dir.join(Self::SIGNING_KEY_FILE);
        let file_err = |message: String| KeyError::File {
            path: path.clone(),
            message,
        };
        let read = |path: &Path| -> Result<LocalKey, KeyError> {
            let der = std::fs::read(path).map_err(|e| file_err(e.to_string()))?;
            let seed: [u8; 32] = der
                .strip_prefix(&ED25519_PKCS8_PREFIX[..])
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| file_err("not an Ed25519 PKCS#8 key".to_string()))?;
            Ok(LocalKey::from_seed(seed))
        };
        let key = if path.exists() {
            read(&path)?
        } else {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(|e| file_err(e.to_string()))?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| file_err(e.to_string()))?;
            }
            match write_private(&path, &[&ED25519_PKCS8_PREFIX[..], &seed[..]].concat()) {
                Ok(()) => LocalKey::from_seed(seed),
                // Another process (`qaward token` beside `qaward serve`) made it first.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(&path)?,
                Err(e) => return Err(file_err(e.to_string())),
            }
        };
        let jwks_path = data_dir.join(Self::JWKS_FILE);
        std::fs::write(&jwks_path, key.jwks_json()).map_err(|e| KeyError::File {
            path: jwks_path,
            message: e.to_string(),
        })?;
        Ok(key)
    }

    /// A key from a 32-byte seed (tests use fixed seeds).
    pub fn from_seed(seed: [u8; 32]) -> LocalKey {
        let public = ed25519_dalek::SigningKey::from_bytes(&seed)
            .verifying_key()
            .to_bytes();
        let kid = hex::encode(&Sha256::digest(public)[..8]);
        let der = [&ED25519_PKCS8_PREFIX[..], &seed[..]].concat();
        LocalKey {
            kid,
            encoding: EncodingKey::from_ed_der(&der),
            public,
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWKS document.
    pub fn jwks_json(&self) -> String {
        serde_json::json!({
            "keys": [{
                "kty": "OKP",
                "crv": "Ed25519",
                "alg": "EdDSA",
                "use": "sig",
                "kid": self.kid,
                "x": URL_SAFE_NO_PAD.encode(self.public),
            }]
        })
        .to_string()
    }

    /// Signs a token for `claims`.
    pub fn sign(&self, claims: &Claims) -> Result<String, KeyError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| KeyError::Jwks(e.to_string()))
    }

    /// A token for `subject` in `role`, valid for the configured lifetime from `now`.
    pub fn issue(
        &self,
        auth: &config::Auth,
        now: time::OffsetDateTime,
        subject: &str,
        role: Role,
        org: Option<String>,
        programme: Option<String>,
    ) -> Result<String, KeyError> {
        let iat = now.unix_timestamp().max(0) as u64;
        self.sign(&Claims {
            iss: auth.issuer.clone(),
            aud: auth.audience.clone().into(),
            sub: subject.to_string(),
            iat,
            nbf: None,
            exp: iat + auth.token_ttl_secs,
            role,
            org,
            programme,
        })
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

struct VerifyingKey {
    alg: Algorithm,
    key: DecodingKey,
}

/// Verifies bearer tokens against a set of public keys.
pub struct Verifier {
    keys: RwLock<HashMap<String, Arc<VerifyingKey>>>,
    /// `auth.issuer` first, then `auth.other_issuers`.
    issuers: Vec<String>,
    audience: String,
    leeway: u64,
    /// `auth.max_token_lifetime_secs`.
    max_lifetime: u64,
    /// Wakes the JWKS refresher (with a `jwks_url`) when a token names an unknown key.
    wake: Arc<tokio::sync::Notify>,
    last_wake: std::sync::Mutex<Option<std::time::Instant>>,
    /// Tokens already verified (by SHA-256), with the caller and the last second they are
    /// good for (`exp` plus the leeway).
    verified: std::sync::Mutex<HashMap<[u8; 32], (Caller, u64)>>,
}

/// Beyond this many remembered tokens the memory starts again empty.
const VERIFIED_REMEMBERED: usize = 10_000;

/// The soonest a token with an unknown key wakes the JWKS refresher again.
const WAKE_AT_MOST_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

impl Verifier {
    /// A verifier with the keys of a JWKS document.
    pub fn from_jwks(jwks: &str, auth: &config::Auth) -> Result<Verifier, KeyError> {
        let v = Verifier {
            keys: RwLock::new(HashMap::new()),
            issuers: std::iter::once(auth.issuer.clone())
                .chain(auth.other_issuers.iter().cloned())
                .collect(),
            audience: auth.audience.clone(),
            leeway: auth.leeway_secs,
            max_lifetime: auth.max_token_lifetime_secs,
            wake: Arc::new(tokio::sync::Notify::new()),
            last_wake: std::sync::Mutex::new(None),
            verified: std::sync::Mutex::new(HashMap::new()),
        };
        v.replace_keys(jwks)?;
        Ok(v)
    }

    /// The verifier the configuration asks for: a JWKS file, a JWKS URL, or else the local
    /// key in the data directory (made if missing).
    pub async fn from_config(config: &config::Config) -> Result<Arc<Verifier>, KeyError> {
        let auth = &config.auth;
        let jwks = if let Some(url) = &auth.jwks_url {
            fetch_jwks(url, auth.jwks_ca_file.as_deref()).await?
        } else {
            let path = match &auth.jwks_file {
                Some(p) => p.clone(),
                None => {
                    LocalKey::load_or_create(&config.data_dir)?;
                    config.data_dir.join(LocalKey::JWKS_FILE)
                }
            };
            std::fs::read_to_string(&path).map_err(|e| KeyError::File {
                path,
                message: e.to_string(),
            })?
        };
        let verifier = Arc::new(Verifier::from_jwks(&jwks, auth)?);
        if let Some(url) = auth.jwks_url.clone() {
            let ca_file = auth.jwks_ca_file.clone();
            let every = std::time::Duration::from_secs(auth.jwks_refresh_secs.max(10));
            let weak = Arc::downgrade(&verifier);
            let wake = verifier.wake.clone();
            tokio::spawn(async move {
                loop {
                    // Every interval, or at once when a token names a key not yet known (a
                    // provider that rotated since the last refresh).
                    tokio::select! {
                        _ = tokio::time::sleep(every) => {}
                        _ = wake.notified() => {}
                    }
                    let Some(v) = weak.upgrade() else { return };
                    match fetch_jwks(&url, ca_file.as_deref())
                        .await
                        .and_then(|j| v.replace_keys(&j))
                    {
                        Ok(()) => tracing::debug!(%url, "JWKS refreshed"),
                        Err(e) => {
                            tracing::warn!(error = %e, "JWKS refresh failed; keeping the old keys")
                        }
                    }
                }
            });
        }
        Ok(verifier)
    }

    /// Asks the JWKS refresher for the provider's keys now, at most once every
    /// [`WAKE_AT_MOST_EVERY`] (without a refresher, nobody listens).
    fn wake_refresher(&self) {
        let now = std::time::Instant::now();
        let mut last = self.last_wake.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|at| now.duration_since(at) >= WAKE_AT_MOST_EVERY) {
            *last = Some(now);
            self.wake.notify_one();
        }
    }

    /// Replaces the key set, refusing symmetric and malformed keys.
    pub fn replace_keys(&self, jwks: &str) -> Result<(), KeyError> {
        let set: JwkSet = serde_json::from_str(jwks).map_err(|e| KeyError::Jwks(e.to_string()))?;
        let mut keys = HashMap::new();
        for (i, jwk) in set.keys.iter().enumerate() {
            let alg = match &jwk.algorithm {
                AlgorithmParameters::OctetKeyPair(p) => {
                    // jsonwebtoken slices the key to 32 bytes; check the length first.
                    let x = URL_SAFE_NO_PAD
                        .decode(&p.x)
                        .map_err(|e| KeyError::Jwks(format!("key {i}: {e}")))?;
                    if x.len() != 32 {
                        return Err(KeyError::Jwks(format!(
                            "key {i}: Ed25519 key is not 32 bytes"
                        )));
                    }
                    Algorithm::EdDSA
                }
                AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                _ => {
                    return Err(KeyError::Jwks(format!(
                        "key {i}: only asymmetric keys (OKP, EC, RSA) are accepted"
                    )));
                }
            };
            let key =
                DecodingKey::from_jwk(jwk).map_err(|e| KeyError::Jwks(format!("key {i}: {e}")))?;
            let kid = jwk.common.key_id.clone().unwrap_or_default();
            keys.insert(kid, Arc::new(VerifyingKey { alg, key }));
        }
        if keys.is_empty() {
            return Err(KeyError::Jwks("no keys".to_string()));
        }
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
        self.verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        Ok(())
    }

    /// Verifies a token and returns its caller, or UNAUTHENTICATED with a stable reason.
    pub fn verify(&self, token: &str) -> Result<Caller, Error> {
        // A token verified before is answered from memory until it expires: the signature
        // check is most of what a call's admission costs, and the platform sends the same
        // token with every call of a session. The memory is emptied whenever the key set
        // changes, so a withdrawn key stops working at once.
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
        if let Some((caller, until)) = self
            .verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&digest)
            && now <= *until
        {
            return Ok(caller.clone());
        }
        let (caller, exp) = self.verify_signed(token)?;
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= VERIFIED_REMEMBERED {
            verified.clear();
        }
        verified.insert(digest, (caller.clone(), exp.saturating_add(self.leeway)));
        Ok(caller)
    }

    /// The full check: key, algorithm, signature, issuer, audience, expiry, not-before, issue
    /// time and lifetime. The caller and the
    /// token's `exp`.
    fn verify_signed(&self, token: &str) -> Result<(Caller, u64), Error> {
        let refuse = |reason: &str, message: &str| Error::unauthenticated(reason, message);
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| refuse("MALFORMED_TOKEN", "the bearer token is not a signed JWT"))?;
        let key = {
            let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
            match &header.kid {
                Some(kid) => keys.get(kid).cloned(),
                None if keys.len() == 1 => keys.values().next().cloned(),
                None => None,
            }
        }
        .ok_or_else(|| {
            self.wake_refresher();
            refuse("UNKNOWN_KEY", "the token is signed with an unknown key")
        })?;
        if header.alg != key.alg {
            return Err(refuse(
                "WRONG_ALGORITHM",
                "the token's algorithm does not match its key",
            ));
        }
        let mut validation = Validation::new(key.alg);
        validation.leeway = self.leeway;
        validation.set_issuer(&self.issuers);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        let data = jsonwebtoken::decode::<Claims>(token, &key.key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::ExpiredSignature => refuse("TOKEN_EXPIRED", "the token has expired"),
                K::InvalidAudience => refuse("WRONG_AUDIENCE", "the token is for another audience"),
                K::InvalidIssuer => refuse("WRONG_ISSUER", "the token is from another issuer"),
                K::InvalidSignature => {
                    refuse("BAD_SIGNATURE", "the token's signature does not verify")
                }
                K::ImmatureSignature => refuse("TOKEN_NOT_YET_VALID", "the token is not valid yet"),
                _ => refuse("INVALID_TOKEN", "the token is not valid"),
            }
        })?;
        let c = data.claims;
        let now = time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
        if c.iat > now.saturating_add(self.leeway) {
            return Err(refuse(
                "TOKEN_NOT_YET_VALID",
                "the token says it was issued in the future",
            ));
        }
        if c.exp.saturating_sub(c.iat) > self.max_lifetime {
            return Err(refuse(
                "TOKEN_LIFETIME_TOO_LONG",
                &format!(
                    "the token is meant to last longer than the {} s accepted",
                    self.max_lifetime
                ),
            ));
        }
        let exp = c.exp;
        Ok((
            Caller {
                subject: subject_of(c.role, c.sub),
                role: c.role,
                org: c.org,
                programme: c.programme,
                token: token.to_string(),
            },
            exp,
        ))
    }
}

/// The largest JWKS document fetched: a key set is a few kilobytes; a server that sends more
/// is refused rather than read.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Fetches a JWKS document: over https (rustls; the web's roots, or `ca_file`'s certificates
/// for a private CA), or over plain http to a loopback address only (a sidecar on the same
/// host) — a key set fetched in clear over a network could be replaced on the way. At most
/// [`MAX_JWKS_BYTES`], within ten seconds.
async fn fetch_jwks(url: &str, ca_file: Option<&Path>) -> Result<String, KeyError> {
    use http_body_util::BodyExt;
    let fail = |message: String| KeyError::Fetch {
        url: url.to_string(),
        message,
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| fail(e.to_string()))?;
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if loopback(uri.host().unwrap_or_default()) => {}
        Some("http") => {
            return Err(fail(
                "http:// is allowed to a loopback address only; use https://".into(),
            ));
        }
        _ => return Err(fail("must be an https:// URL".into())),
    }
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match ca_file {
        Some(path) => {
            use tokio_rustls::rustls::{self, pki_types::pem::PemObject};
            let bad =
                |e: &dyn std::fmt::Display| fail(format!("jwks_ca_file {}: {e}", path.display()));
            let pem = std::fs::read(path).map_err(|e| bad(&e))?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
                roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
            }
            let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| fail(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
            builder.with_tls_config(tls)
        }
        None => builder.with_webpki_roots(),
    };
    let connector = builder.https_or_http().enable_http1().build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, http_body_util::Empty<bytes::Bytes>>(connector);
    let fetched = async {
        let response = client.get(uri).await.map_err(|e| fail(e.to_string()))?;
        if !response.status().is_success() {
            return Err(fail(format!("HTTP {}", response.status())));
        }
        http_body_util::Limited::new(response.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .map_err(|e| fail(format!("{e} (at most {MAX_JWKS_BYTES} bytes)")))
    };
    let body = tokio::time::timeout(std::time::Duration::from_secs(10), fetched)
        .await
        .map_err(|_| fail("timed out".into()))??;
    String::from_utf8(body.to_vec()).map_err(|e| fail(e.to_string()))
}

/// Whether `host` (from a URL) is this machine: a loopback address or `localhost`.
fn loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Verifier {
    /// The caller of an `authorization` header value (`Bearer <token>`): UNAUTHENTICATED
    /// without one, or when the token does not verify. Every door checks tokens with this.
    pub fn verify_header(&self, authorization: Option<&str>) -> Result<Caller, Error> {
        let token = authorization
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| Error::unauthenticated("MISSING_TOKEN", "a bearer token is required"))?;
        self.verify(token)
    }
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
/// (role `service`, subject `system:<service>`): `auth.service_token` when set; else, on a
/// one-machine installation with no identity provider configured, a fresh token signed with the
/// local key for each call.
pub fn service_token_source(
    config: &config::Config,
    service: &str,
) -> Result<Arc<dyn Fn() -> String + Send + Sync>, KeyError> {
    let fixed = config.auth.service_token.expose().clone();
    if !fixed.is_empty() {
        return Ok(Arc::new(move || fixed.clone()));
    }
    if config.auth.jwks_file.is_some() || config.auth.jwks_url.is_some() {
        return Err(KeyError::Jwks(
            "tokens come from an identity provider: set auth.service_token to a token with role service"
                .to_string(),
        ));
    }
    let key = LocalKey::load_or_create(&config.data_dir)?;
    let auth = config.auth.clone();
    let subject = format!("system:{service}");
    Ok(Arc::new(move || {
        key.issue(
            &auth,
            time::OffsetDateTime::now_utc(),
            &subject,
            Role::Service,
            None,
            None,
        )
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
    fn a_service_token_is_minted_with_the_local_key_or_taken_from_the_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config::Config {
            data_dir: dir.path().to_path_buf(),
            ..config::Config::default()
        };
        let source = service_token_source(&config, "applications").unwrap();
        let jwks = std::fs::read_to_string(dir.path().join(LocalKey::JWKS_FILE)).unwrap();
        let verifier = Verifier::from_jwks(&jwks, &config.auth).unwrap();
        let caller = verifier.verify(&source()).unwrap();
        assert_eq!(caller.role, Role::Service);
        assert_eq!(caller.subject, "system:applications");

        config.auth.jwks_file = Some(dir.path().join("idp.json"));
        assert!(service_token_source(&config, "applications").is_err());
        config.auth.service_token = config::Secret::new("from-the-idp".into());
        assert_eq!(
            service_token_source(&config, "applications").unwrap()(),
            "from-the-idp"
        );
    }
}
