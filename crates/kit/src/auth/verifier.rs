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
use sha2::{Digest, Sha256};

use super::{Caller, Claims, KeyError, LocalKey, jwks::fetch_jwks, subject_of};
use crate::{Error, config};

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
