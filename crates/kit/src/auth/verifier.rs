//! Verifying bearer tokens: the trusted keys (a JWKS file, a JWKS URL kept fresh, or the
//! local key), the checks every token passes, and the memory of tokens already verified.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{
    Algorithm, DecodingKey, Validation,
    jwk::{AlgorithmParameters, JwkSet},
};

use super::{Caller, Claims, KeyError, LocalKey, Role, jwks::fetch_jwks, subject_of};
use crate::{Error, config};

struct VerifyingKey {
    alg: Algorithm,
    key: DecodingKey,
}

/// What an issuer's tokens may assert.
#[derive(Debug, Clone)]
struct Grant {
    roles: Vec<Role>,
    /// None: any programme, or none.
    programmes: Option<Vec<String>>,
    registry_keeper: bool,
}

/// One issuer whose tokens are accepted: its keys (only they verify a token naming it) and
/// its grant.
struct Trusted {
    issuer: String,
    keys: RwLock<HashMap<String, Arc<VerifyingKey>>>,
    grant: Grant,
    /// Where its keys are fetched from, if they are (`jwks_url`).
    url: Option<String>,
    /// Wakes its JWKS refresher when a token names a key not yet known.
    wake: Arc<tokio::sync::Notify>,
    last_wake: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Trusted {
    fn new(issuer: &str, grant: Grant, url: Option<String>) -> Trusted {
        Trusted {
            issuer: issuer.to_string(),
            keys: RwLock::new(HashMap::new()),
            grant,
            url,
            wake: Arc::new(tokio::sync::Notify::new()),
            last_wake: std::sync::Mutex::new(None),
        }
    }

    /// Asks its JWKS refresher for the provider's keys now, at most once every
    /// [`WAKE_AT_MOST_EVERY`] (without a refresher, nobody listens).
    fn wake_refresher(&self) {
        let now = std::time::Instant::now();
        let mut last = self.last_wake.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|at| now.duration_since(at) >= WAKE_AT_MOST_EVERY) {
            *last = Some(now);
            self.wake.notify_one();
        }
    }

    /// Refuses claims beyond the issuer's grant.
    fn check_grant(&self, role: Role, programme: Option<&str>) -> Result<(), Error> {
        let refuse = |what: String| {
            Err(Error::unauthenticated(
                ISSUER_MAY_NOT_ASSERT,
                format!("issuer {} may not assert {what}", self.issuer),
            ))
        };
        if !self.grant.roles.contains(&role) {
            return refuse(format!("role {}", role.as_str()));
        }
        if let Some(allowed) = &self.grant.programmes {
            let id = programme.map(|p| p.trim_start_matches("programmes/"));
            if !id.is_some_and(|id| allowed.iter().any(|a| a == id)) {
                return refuse(format!(
                    "programme {}",
                    programme.unwrap_or("(none: its tokens must name one)")
                ));
            }
        }
        Ok(())
    }
}

/// The reason of a token whose issuer signed claims beyond its grant: a role or a programme
/// it may not speak for.
pub const ISSUER_MAY_NOT_ASSERT: &str = "ISSUER_MAY_NOT_ASSERT";

/// Verifies bearer tokens: each issuer against its own keys and grant.
pub struct Verifier {
    /// The own issuer first, then the services' issuer, then `auth.other_issuers`.
    issuers: Vec<Trusted>,
    audience: String,
    leeway: u64,
    /// `auth.max_token_lifetime_secs`.
    max_lifetime: u64,
    /// Tokens already verified, each by its whole text (a lookup compares every byte, so only
    /// the very token verified matches), with the caller and the last second they are good for
    /// (`exp` plus the leeway). Keyed by the text rather than a digest of it: hashing the map's
    /// key is a small fraction of a SHA-256 of a kilobyte-long token, which was most of what
    /// admitting a call cost (issue 26, item 2).
    verified: std::sync::Mutex<HashMap<Box<str>, (Caller, u64)>>,
}

/// The largest bearer token read: a signed JWT with our claims is under 1 KB; one far larger
/// is refused before it is decoded (and never relayed to a service, whose header limit it
/// could break).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Beyond this many remembered tokens the memory starts again empty.
const VERIFIED_REMEMBERED: usize = 10_000;

/// The soonest a token with an unknown key wakes the JWKS refresher again.
const WAKE_AT_MOST_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Every role a person may have: what the own issuer may assert.
fn people() -> Vec<Role> {
    Role::ALL
        .into_iter()
        .filter(|r| *r != Role::Service)
        .collect()
}

impl Verifier {
    /// A verifier with no keys yet: the issuers and grants of `auth`.
    fn empty(auth: &config::Auth) -> Verifier {
        let mut issuers = vec![
            Trusted::new(
                &auth.issuer,
                Grant {
                    roles: people(),
                    programmes: None,
                    registry_keeper: auth.registry_keeper,
                },
                auth.jwks_url.clone(),
            ),
            Trusted::new(
                &auth.service_issuer,
                Grant {
                    roles: vec![Role::Service],
                    programmes: None,
                    registry_keeper: false,
                },
                None,
            ),
        ];
        for o in &auth.other_issuers {
            issuers.push(Trusted::new(
                &o.issuer,
                Grant {
                    roles: o
                        .roles
                        .iter()
                        .copied()
                        .filter(|r| *r != Role::Service)
                        .collect(),
                    programmes: Some(
                        o.programmes
                            .iter()
                            .map(|p| p.trim_start_matches("programmes/").to_string())
                            .collect(),
                    ),
                    registry_keeper: o.registry_keeper,
                },
                o.jwks_url.clone(),
            ));
        }
        Verifier {
            issuers,
            audience: auth.audience.clone(),
            leeway: auth.leeway_secs,
            max_lifetime: auth.max_token_lifetime_secs,
            verified: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// A verifier with the own issuer's keys from a JWKS document; the services' and other
    /// issuers' keys are added with [`Verifier::replace_keys_of`].
    pub fn from_jwks(jwks: &str, auth: &config::Auth) -> Result<Verifier, KeyError> {
        let v = Verifier::empty(auth);
        v.replace_keys(jwks)?;
        Ok(v)
    }

    /// The verifier the configuration asks for. The own issuer's keys: a JWKS file, a JWKS
    /// URL, or else the local key in the data directory (made if missing). The services' keys:
    /// `auth.service_jwks_file`, or else the local service key. Each other issuer's: its file
    /// or URL.
    pub async fn from_config(config: &config::Config) -> Result<Arc<Verifier>, KeyError> {
        let auth = &config.auth;
        let read = |path: &std::path::Path| {
            std::fs::read_to_string(path).map_err(|e| KeyError::File {
                path: path.to_path_buf(),
                message: e.to_string(),
            })
        };
        let v = Verifier::empty(auth);
        let own = if let Some(url) = &auth.jwks_url {
            fetch_jwks(url, auth.jwks_ca_file.as_deref()).await?
        } else {
            let path = match &auth.jwks_file {
                Some(p) => p.clone(),
                None => {
                    LocalKey::load_or_create(&config.data_dir)?;
                    config.data_dir.join(LocalKey::JWKS_FILE)
                }
            };
            read(&path)?
        };
        v.replace_keys(&own)?;
        let services = match &auth.service_jwks_file {
            Some(path) => read(path)?,
            None => LocalKey::load_or_create_service(&config.data_dir)?.jwks_json(),
        };
        v.replace_keys_of(&auth.service_issuer, &services)?;
        for o in &auth.other_issuers {
            let jwks = match (&o.jwks_file, &o.jwks_url) {
                (Some(path), _) => read(path)?,
                (None, Some(url)) => fetch_jwks(url, auth.jwks_ca_file.as_deref()).await?,
                (None, None) => {
                    return Err(KeyError::Jwks(format!("issuer {} has no keys", o.issuer)));
                }
            };
            v.replace_keys_of(&o.issuer, &jwks)?;
        }
        let verifier = Arc::new(v);
        for (i, trusted) in verifier.issuers.iter().enumerate() {
            if let Some(url) = trusted.url.clone() {
                spawn_refresher(&verifier, i, url, auth);
            }
        }
        Ok(verifier)
    }

    /// Replaces the own issuer's key set, refusing symmetric and malformed keys.
    pub fn replace_keys(&self, jwks: &str) -> Result<(), KeyError> {
        self.issuers[0].replace(jwks)?;
        self.forget_verified();
        Ok(())
    }

    /// Replaces the key set of `issuer` (the own issuer, the services' or another configured
    /// one).
    pub fn replace_keys_of(&self, issuer: &str, jwks: &str) -> Result<(), KeyError> {
        let trusted = self
            .issuers
            .iter()
            .find(|t| t.issuer == issuer)
            .ok_or_else(|| KeyError::Jwks(format!("issuer {issuer} is not configured")))?;
        trusted.replace(jwks)?;
        self.forget_verified();
        Ok(())
    }

    fn forget_verified(&self) {
        self.verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

/// Keeps `verifier.issuers[index]`'s keys fresh from `url`: every `jwks_refresh_secs`, or at
/// once when a token names a key not yet known (a provider that rotated since).
fn spawn_refresher(verifier: &Arc<Verifier>, index: usize, url: String, auth: &config::Auth) {
    let ca_file = auth.jwks_ca_file.clone();
    let every = std::time::Duration::from_secs(auth.jwks_refresh_secs.max(10));
    let weak = Arc::downgrade(verifier);
    let wake = verifier.issuers[index].wake.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = wake.notified() => {}
            }
            let Some(v) = weak.upgrade() else { return };
            match fetch_jwks(&url, ca_file.as_deref())
                .await
                .and_then(|j| v.issuers[index].replace(&j))
            {
                Ok(()) => {
                    v.forget_verified();
                    tracing::debug!(%url, "JWKS refreshed")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "JWKS refresh failed; keeping the old keys")
                }
            }
        }
    });
}

impl Trusted {
    /// Replaces the key set, refusing symmetric and malformed keys.
    fn replace(&self, jwks: &str) -> Result<(), KeyError> {
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
        Ok(())
    }
}

impl Verifier {
    /// Verifies a token and returns its caller, or UNAUTHENTICATED with a stable reason.
    pub fn verify(&self, token: &str) -> Result<Caller, Error> {
        // A token verified before is answered from memory until it expires: the signature
        // check is most of what a call's admission costs, and the platform sends the same
        // token with every call of a session. The memory is emptied whenever the key set
        // changes, so a withdrawn key stops working at once.
        let now = time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
        if let Some((caller, until)) = self
            .verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            && now <= *until
        {
            return Ok(caller.clone());
        }
        let (caller, exp) = self.verify_signed(token)?;
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= VERIFIED_REMEMBERED {
            verified.clear();
        }
        verified.insert(
            token.into(),
            (caller.clone(), exp.saturating_add(self.leeway)),
        );
        Ok(caller)
    }

    /// The full check: key, algorithm, signature, issuer, audience, expiry, not-before, issue
    /// time and lifetime. The caller and the
    /// token's `exp`.
    fn verify_signed(&self, token: &str) -> Result<(Caller, u64), Error> {
        let refuse = |reason: &str, message: &str| Error::unauthenticated(reason, message);
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| refuse("MALFORMED_TOKEN", "the bearer token is not a signed JWT"))?;
        // The token names its issuer; only that issuer's keys may verify it, so a key of
        // one identity provider never speaks for another.
        let named = unverified_issuer(token)
            .ok_or_else(|| refuse("MALFORMED_TOKEN", "the bearer token names no issuer"))?;
        let trusted = self
            .issuers
            .iter()
            .find(|t| t.issuer == named)
            .ok_or_else(|| refuse("WRONG_ISSUER", "the token is from another issuer"))?;
        let key = {
            let keys = trusted.keys.read().unwrap_or_else(|p| p.into_inner());
            match &header.kid {
                Some(kid) => keys.get(kid).cloned(),
                None if keys.len() == 1 => keys.values().next().cloned(),
                None => None,
            }
        }
        .ok_or_else(|| {
            trusted.wake_refresher();
            refuse(
                "UNKNOWN_KEY",
                "the token is signed with a key its issuer does not have",
            )
        })?;
        if header.alg != key.alg {
            return Err(refuse(
                "WRONG_ALGORITHM",
                "the token's algorithm does not match its key",
            ));
        }
        let mut validation = Validation::new(key.alg);
        validation.leeway = self.leeway;
        validation.set_issuer(&[&trusted.issuer]);
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
        trusted.check_grant(c.role, c.programme.as_deref())?;
        let exp = c.exp;
        Ok((
            Caller {
                issuer: trusted.issuer.clone(),
                subject: subject_of(c.role, c.sub),
                role: c.role,
                org: c.org,
                programme: c.programme,
                registry_keeper: trusted.grant.registry_keeper,
                token: token.to_string(),
            },
            exp,
        ))
    }
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
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Error::unauthenticated(
                "TOKEN_TOO_LARGE",
                format!("a bearer token is at most {MAX_TOKEN_BYTES} bytes"),
            ));
        }
        self.verify(token)
    }
}

/// The `iss` a token's payload names, read before its signature is checked (to choose the
/// keys that must verify it; nothing else is believed until they do).
fn unverified_issuer(token: &str) -> Option<String> {
    unverified_names(token).map(|n| n.iss)
}

#[derive(serde::Deserialize)]
struct Names {
    iss: String,
    #[serde(default)]
    sub: String,
}

fn unverified_names(token: &str) -> Option<Names> {
    let payload = token.split('.').nth(1)?;
    if payload.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Names>(&bytes).ok()
}

/// The identity (`iss#sub`) a bearer token *claims*, unverified: only for counting a failed
/// authentication against someone when the network address says nothing (every caller
/// behind one proxy). Never for deciding what a caller may do.
pub fn claimed_identity(authorization: Option<&str>) -> Option<String> {
    let token = authorization?.strip_prefix("Bearer ")?.trim();
    let names = unverified_names(token)?;
    Some(super::identity(&names.iss, &names.sub))
}
