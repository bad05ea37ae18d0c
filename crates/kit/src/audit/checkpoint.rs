//! Signed checkpoints of the audit log (issue 22, item 3): a statement, signed with an Ed25519
//! key kept outside the database, that the log of `origin` had `size` leaves with root `root`
//! at `time`. An auditor who keeps one can later prove any rewrite, deletion, truncation or
//! rollback of the first `size` records. The text is specified in `docs/audit.md` §3.

use std::path::{Path, PathBuf};

use base64::{Engine, engine::general_purpose::STANDARD};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// The first line of every checkpoint.
pub const HEADER: &str = "qaward audit checkpoint v1";
/// The first line of a restore statement.
pub const RESTORE_HEADER: &str = "qaward audit restore v1";

/// The key that signs a deployment's checkpoints.
pub struct AuditKey {
    signing: SigningKey,
}

/// The public half, as an auditor holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPublicKey(VerifyingKey);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckpointError {
    #[error("audit key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("not a checkpoint: {0}")]
    Malformed(String),
    #[error("the checkpoint's signature does not verify under key {0}")]
    BadSignature(String),
}

impl AuditKey {
    /// Reads the key at `path`, or makes one there (0600) with its public half at
    /// `path.pub` (`audit-key.pub`: the key id and the public key in hex).
    pub fn load_or_create(path: &Path) -> Result<AuditKey, CheckpointError> {
        let err = |message: String| CheckpointError::Key {
            path: path.to_path_buf(),
            message,
        };
        let prefix = &crate::auth::local_key::ED25519_PKCS8_PREFIX[..];
        let (key, made) = match std::fs::read(path) {
            Ok(der) => {
                let seed: [u8; 32] = der
                    .strip_prefix(prefix)
                    .and_then(|s| s.try_into().ok())
                    .ok_or_else(|| err("not an Ed25519 PKCS#8 key".to_string()))?;
                (AuditKey::from_seed(seed), false)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed).map_err(|e| err(e.to_string()))?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
                }
                match crate::auth::local_key::write_private(path, &[prefix, &seed[..]].concat()) {
                    Ok(()) => (AuditKey::from_seed(seed), true),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        return Self::load_or_create(path);
                    }
                    Err(e) => return Err(err(e.to_string())),
                }
            }
            Err(e) => return Err(err(e.to_string())),
        };
        // The public half beside a key made here; beside a mounted (read-only) key it is
        // written where it can be and otherwise left to whoever mounted the key.
        let public = public_path(path);
        let wrote = std::fs::write(&public, key.public().to_text());
        match wrote {
            Err(e) if made => {
                return Err(CheckpointError::Key {
                    path: public.clone(),
                    message: e.to_string(),
                });
            }
            Err(e) => {
                tracing::debug!(path = %public.display(), error = %e, "audit public key not written beside a mounted key")
            }
            Ok(()) => {}
        }
        Ok(key)
    }

    /// A key made now and kept nowhere: tests' services, whose checkpoints no one keeps.
    pub fn ephemeral() -> AuditKey {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).expect("the operating system's randomness");
        AuditKey::from_seed(seed)
    }

    /// A key from a 32-byte seed (tests and vectors use fixed seeds).
    pub fn from_seed(seed: [u8; 32]) -> AuditKey {
        AuditKey {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    pub fn public(&self) -> AuditPublicKey {
        AuditPublicKey(self.signing.verifying_key())
    }

    fn sign(&self, body: &str) -> String {
        STANDARD.encode(self.signing.sign(body.as_bytes()).to_bytes())
    }
}

/// Where the public half of the key at `path` is written.
pub fn public_path(path: &Path) -> PathBuf {
    path.with_extension("pub")
}

impl AuditPublicKey {
    /// The key id: the first 8 bytes of SHA-256 of the public key, hex.
    pub fn id(&self) -> String {
        hex::encode(&Sha256::digest(self.0.to_bytes())[..8])
    }

    /// `key <id> <public key hex>`, one line: the file an auditor copies.
    pub fn to_text(&self) -> String {
        format!("ed25519 {} {}\n", self.id(), hex::encode(self.0.to_bytes()))
    }

    /// Reads [`AuditPublicKey::to_text`]'s line (or the bare hex key).
    pub fn parse(text: &str) -> Result<AuditPublicKey, CheckpointError> {
        let bad = || CheckpointError::Malformed("not an audit public key".to_string());
        let hex_key = text.split_whitespace().last().ok_or_else(bad)?;
        let bytes: [u8; 32] = hex::decode(hex_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| bad())?;
        let public = AuditPublicKey(key);
        if let Some(id) = text.split_whitespace().nth(1)
            && text.split_whitespace().count() == 3
            && id != public.id()
        {
            return Err(CheckpointError::Malformed(format!(
                "key id {id} is not this key's ({})",
                public.id()
            )));
        }
        Ok(public)
    }

    fn verifies(&self, body: &str, signature: &str) -> bool {
        let Ok(bytes) = STANDARD.decode(signature) else {
            return false;
        };
        let Ok(sig) = ed25519_dalek::Signature::from_slice(&bytes) else {
            return false;
        };
        self.0.verify_strict(body.as_bytes(), &sig).is_ok()
    }
}

/// One signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Whose log: `qaward/<service>`.
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// Unix microseconds.
    pub at_micros: i64,
    pub key_id: String,
    /// Base64 of the Ed25519 signature over [`Checkpoint::body`].
    pub signature: String,
}

impl Checkpoint {
    /// Signs the statement that `origin`'s log had `size` leaves with `root` at `at_micros`.
    pub fn sign(key: &AuditKey, origin: &str, size: u64, root: Hash, at_micros: i64) -> Self {
        let mut c = Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            at_micros,
            key_id: key.public().id(),
            signature: String::new(),
        };
        c.signature = key.sign(&c.body());
        c
    }

    /// The signed text: five lines, each ending in a newline.
    pub fn body(&self) -> String {
        format!(
            "{HEADER}\norigin {}\nsize {}\nroot {}\ntime {}\n",
            self.origin,
            self.size,
            hex::encode(self.root),
            self.at_micros
        )
    }

    /// The body and the signature line: what is stored, published and kept.
    pub fn to_text(&self) -> String {
        format!(
            "{}signature {} {}\n",
            self.body(),
            self.key_id,
            self.signature
        )
    }

    /// Reads [`Checkpoint::to_text`], exactly (the signature is not checked here).
    pub fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
        let bad = |why: &str| CheckpointError::Malformed(why.to_string());
        let lines: Vec<&str> = text
            .strip_suffix('\n')
            .unwrap_or(text)
            .split('\n')
            .collect();
        let [header, origin, size, root, time, signature] = lines[..] else {
            return Err(bad("six lines expected"));
        };
        if header != HEADER {
            return Err(bad("first line is not the checkpoint header"));
        }
        let field = |line: &'static str, value: &str| -> Result<String, CheckpointError> {
            value
                .strip_prefix(line)
                .and_then(|v| v.strip_prefix(' '))
                .map(str::to_string)
                .ok_or_else(|| CheckpointError::Malformed(format!("no {line} line")))
        };
        let origin = field("origin", origin)?;
        let size = field("size", size)?
            .parse()
            .map_err(|_| bad("size is not a number"))?;
        let root: Hash = hex::decode(field("root", root)?)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("root is not 32 bytes of hex"))?;
        let at_micros = field("time", time)?
            .parse()
            .map_err(|_| bad("time is not a number"))?;
        let signature = field("signature", signature)?;
        let Some((key_id, signature)) = signature.split_once(' ') else {
            return Err(bad("signature line is `signature <key id> <base64>`"));
        };
        let c = Checkpoint {
            origin,
            size,
            root,
            at_micros,
            key_id: key_id.to_string(),
            signature: signature.to_string(),
        };
        if c.to_text() != text {
            return Err(bad("not in the canonical form"));
        }
        Ok(c)
    }

    /// Whether `key` signed this checkpoint.
    pub fn check(&self, key: &AuditPublicKey) -> Result<(), CheckpointError> {
        if self.key_id == key.id() && key.verifies(&self.body(), &self.signature) {
            Ok(())
        } else {
            Err(CheckpointError::BadSignature(key.id()))
        }
    }
}

/// The signed statement that `origin`'s log was restored from a backup to `restored_to`, made
/// by `qaward audit restored` and recorded as the first record after the restore: a verifier
/// tells such a documented restore from an undocumented rollback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreStatement {
    pub restored_to: Checkpoint,
    pub at_micros: i64,
    pub key_id: String,
    pub signature: String,
}

impl RestoreStatement {
    pub fn sign(key: &AuditKey, restored_to: Checkpoint, at_micros: i64) -> Self {
        let mut r = RestoreStatement {
            restored_to,
            at_micros,
            key_id: key.public().id(),
            signature: String::new(),
        };
        r.signature = key.sign(&r.body());
        r
    }

    /// The signed text: the header, the time, then the checkpoint restored to, whole.
    pub fn body(&self) -> String {
        format!(
            "{RESTORE_HEADER}\ntime {}\n{}",
            self.at_micros,
            self.restored_to.to_text()
        )
    }

    /// The record's detail: what the trail stores.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "restored_to": self.restored_to.to_text(),
            "time": self.at_micros,
            "key": self.key_id,
            "signature": self.signature,
        })
    }

    pub fn from_json(v: &serde_json::Value) -> Result<RestoreStatement, CheckpointError> {
        let bad = |why: &str| CheckpointError::Malformed(format!("restore record: {why}"));
        Ok(RestoreStatement {
            restored_to: Checkpoint::parse(
                v["restored_to"]
                    .as_str()
                    .ok_or_else(|| bad("no checkpoint"))?,
            )?,
            at_micros: v["time"].as_i64().ok_or_else(|| bad("no time"))?,
            key_id: v["key"].as_str().ok_or_else(|| bad("no key"))?.to_string(),
            signature: v["signature"]
                .as_str()
                .ok_or_else(|| bad("no signature"))?
                .to_string(),
        })
    }

    pub fn check(&self, key: &AuditPublicKey) -> Result<(), CheckpointError> {
        self.restored_to.check(key)?;
        if self.key_id == key.id() && key.verifies(&self.body(), &self.signature) {
            Ok(())
        } else {
            Err(CheckpointError::BadSignature(key.id()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> AuditKey {
        AuditKey::from_seed([7; 32])
    }

    #[test]
    fn a_checkpoint_reads_back_and_verifies_and_any_changed_byte_does_not() {
        let c = Checkpoint::sign(&key(), "qaward/scoring", 42, [9; 32], 1_790_000_000_000_000);
        let text = c.to_text();
        let back = Checkpoint::parse(&text).unwrap();
        assert_eq!(back, c);
        back.check(&key().public()).unwrap();
        // A bigger size, another root, an earlier time: each breaks the signature.
        for (from, to) in [
            ("size 42", "size 43"),
            ("root 0909", "root 0809"),
            ("time 17", "time 16"),
        ] {
            let forged = Checkpoint::parse(&text.replacen(from, to, 1)).unwrap();
            assert!(forged.check(&key().public()).is_err(), "{from} → {to}");
        }
        assert!(c.check(&AuditKey::from_seed([8; 32]).public()).is_err());
        assert!(Checkpoint::parse(&text.replace('\n', "\r\n")).is_err());
        assert!(Checkpoint::parse(&text.replace("size 42", "size 042")).is_err());
    }

    #[test]
    fn a_restore_statement_binds_the_checkpoint_it_names() {
        let to = Checkpoint::sign(&key(), "qaward/reviewers", 10, [1; 32], 5);
        let r = RestoreStatement::sign(&key(), to.clone(), 9);
        let back = RestoreStatement::from_json(&r.to_json()).unwrap();
        back.check(&key().public()).unwrap();
        let mut other = back.clone();
        other.restored_to = Checkpoint::sign(&key(), "qaward/reviewers", 8, [1; 32], 5);
        assert!(
            other.check(&key().public()).is_err(),
            "another checkpoint, same signature"
        );
    }

    #[test]
    fn the_public_key_file_names_its_key() {
        let text = key().public().to_text();
        assert_eq!(AuditPublicKey::parse(&text).unwrap(), key().public());
        let other = AuditKey::from_seed([8; 32]).public();
        let mixed = format!(
            "ed25519 {} {}",
            other.id(),
            text.split_whitespace().last().unwrap()
        );
        assert!(AuditPublicKey::parse(&mixed).is_err());
    }
}
