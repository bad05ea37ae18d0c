//! The local Ed25519 signing key of a one-machine installation: made once in the data
//! directory, its public half published as a JWKS beside it, and `qaward token` signs with it.

use std::path::Path;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sha2::{Digest, Sha256};

use super::{Claims, KeyError, Role};
use crate::config;

/// The local Ed25519 signing key of a one-machine installation.
pub struct LocalKey {
    kid: String,
    encoding: EncodingKey,
    public: [u8; 32],
}

/// PKCS#8 v1 prefix of an Ed25519 private key (RFC 8410): the 32-byte seed follows.
pub(crate) const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

impl LocalKey {
    pub const SIGNING_KEY_FILE: &'static str = "keys/signing-key.pk8";
    pub const JWKS_FILE: &'static str = "keys/jwks.json";

    /// The services' own key (role `service` tokens), apart from the people's key.
    pub const SERVICE_KEY_FILE: &'static str = "keys/service-key.pk8";
    pub const SERVICE_JWKS_FILE: &'static str = "keys/service-jwks.json";

    /// Reads the key in `data_dir`, or makes one (and its public JWKS) on first start.
    pub fn load_or_create(data_dir: &Path) -> Result<LocalKey, KeyError> {
        Self::load_or_create_at(
            &data_dir.join(Self::SIGNING_KEY_FILE),
            &data_dir.join(Self::JWKS_FILE),
        )
    }

    /// Reads the services' key in `data_dir`, or makes one (and its public JWKS).
    pub fn load_or_create_service(data_dir: &Path) -> Result<LocalKey, KeyError> {
        Self::load_or_create_at(
            &data_dir.join(Self::SERVICE_KEY_FILE),
            &data_dir.join(Self::SERVICE_JWKS_FILE),
        )
    }

    /// Reads an Ed25519 PKCS#8 key that must exist (a mounted secret).
    pub fn load(path: &Path) -> Result<LocalKey, KeyError> {
        let der = std::fs::read(path).map_err(|e| KeyError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Self::from_pkcs8(&der).ok_or_else(|| KeyError::File {
            path: path.to_path_buf(),
            message: "not an Ed25519 PKCS#8 key".to_string(),
        })
    }

    fn from_pkcs8(der: &[u8]) -> Option<LocalKey> {
        let seed: [u8; 32] = der
            .strip_prefix(&ED25519_PKCS8_PREFIX[..])
            .and_then(|s| s.try_into().ok())?;
        Some(LocalKey::from_seed(seed))
    }

    /// Reads the key at `path`, or makes one there; either way writes its public JWKS to
    /// `jwks_path`.
    pub fn load_or_create_at(path: &Path, jwks_path: &Path) -> Result<LocalKey, KeyError> {
        let path = path.to_path_buf();
        let file_err = |message: String| KeyError::File {
            path: path.clone(),
            message,
        };
        let read = |path: &Path| LocalKey::load(path);
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
        std::fs::write(jwks_path, key.jwks_json()).map_err(|e| KeyError::File {
            path: jwks_path.to_path_buf(),
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

    /// A service's own token: issuer `auth.service_issuer`, role `service`, valid for
    /// `auth.service_token_ttl_secs` from `now`.
    pub fn issue_service(
        &self,
        auth: &config::Auth,
        now: time::OffsetDateTime,
        subject: &str,
    ) -> Result<String, KeyError> {
        let iat = now.unix_timestamp().max(0) as u64;
        self.sign(&Claims {
            iss: auth.service_issuer.clone(),
            aud: auth.audience.clone().into(),
            sub: subject.to_string(),
            iat,
            nbf: None,
            exp: iat + auth.service_token_ttl_secs,
            role: Role::Service,
            org: None,
            programme: None,
        })
    }
}

#[cfg(unix)]
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}
