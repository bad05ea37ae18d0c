//! Personal data encrypted at rest, field by field (R-54; PIPL Art. 51, 等保 2.0, GB/T
//! 39786-2021): SM4-GCM by default (the national block cipher in the GCM mode of operation),
//! AES-256-GCM selectable. Each stored value carries the algorithm and the id of the key that
//! sealed it, so keys can be rotated and old values still opened:
//!
//! ```text
//! enc1:{algorithm}:{key id}:{base64 (nonce[12] ‖ ciphertext ‖ tag[16])}
//! ```
//!
//! The keys live in a key file outside the database (`{data_dir}/keys/fields.json` by default,
//! or a KMS-mounted path), created 0600 on first use; [`FieldKeys`] is the one interface a
//! county replaces to plug in a certified cryptographic module. A value without the prefix is
//! legacy plaintext: [`FieldKeys::open`] returns it as is, and the services re-seal such rows
//! at start (resumably: a row is either sealed or not).

// RustCrypto's aead 0.5 API takes `generic_array` 0.14 arrays, which that crate now marks
// deprecated in favour of its 1.x; the aead 0.6 line moves off them.
#![allow(deprecated)]

use std::collections::BTreeMap;
use std::path::Path;

use aes_gcm::{
    AesGcm, KeyInit,
    aead::{Aead, generic_array::GenericArray},
};
use base64::Engine as _;

const PREFIX: &str = "enc1:";

/// The field cipher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Algorithm {
    #[serde(rename = "SM4-GCM")]
    Sm4Gcm,
    #[serde(rename = "AES-256-GCM")]
    Aes256Gcm,
}

impl Algorithm {
    fn tag(self) -> &'static str {
        match self {
            Algorithm::Sm4Gcm => "sm4-gcm",
            Algorithm::Aes256Gcm => "aes256-gcm",
        }
    }

    fn parse_tag(s: &str) -> Option<Algorithm> {
        [Algorithm::Sm4Gcm, Algorithm::Aes256Gcm]
            .into_iter()
            .find(|a| a.tag() == s)
    }

    fn key_len(self) -> usize {
        match self {
            Algorithm::Sm4Gcm => 16,
            Algorithm::Aes256Gcm => 32,
        }
    }
}

type Sm4Gcm = AesGcm<sm4::Sm4, aes_gcm::aead::consts::U12>;

/// The key file: which key seals new values, and every key that may open old ones.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct KeyFile {
    algorithm: Algorithm,
    current: String,
    /// key id → hex key.
    keys: BTreeMap<String, String>,
    /// The blind-index key (hex), written at the first rotation so that indexes outlive the
    /// key they were first derived from; before it, derived from the first key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    index_key: Option<String>,
}

impl KeyFile {
    fn read(path: &Path) -> Result<KeyFile, String> {
        let what = |e: &dyn std::fmt::Display| format!("field key file {}: {e}", path.display());
        let text = std::fs::read_to_string(path).map_err(|e| what(&e))?;
        serde_json::from_str(&text).map_err(|e| what(&e))
    }

    /// Replaces the file whole: written 0600 under a private name, synced, renamed into
    /// place, so a reader sees the old file or the new one, never part of either.
    fn replace(&self, path: &Path) -> Result<(), String> {
        let what = |e: &dyn std::fmt::Display| format!("field key file {}: {e}", path.display());
        let text = serde_json::to_string_pretty(self).map_err(|e| what(&e))?;
        let tmp = path.with_extension(format!("tmp-{}", hex::encode(random_bytes(6))));
        write_private(&tmp, &text).map_err(|e| what(&e))?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            what(&e)
        })
    }
}

/// A new file holding `text`, mode 0600, synced.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    use std::io::Write;
    options
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
}

/// Adds a fresh key to the key file at `path` and returns its id (`k{n+1}`); with `activate`
/// it becomes the key that seals new values at once. Without, it is staged: every process
/// restarted with the file can open values sealed with it, and [`activate_key`] makes it
/// current once they all have been (a rolling restart in two steps, so no replica meets a
/// value it cannot open). The blind-index key is written out, so indexes stay as they were.
pub fn add_key(path: &Path, activate: bool) -> Result<String, String> {
    let mut file = KeyFile::read(path)?;
    let keys = decoded(&file, path)?;
    file.index_key
        .get_or_insert_with(|| hex::encode(index_key_of(&keys)));
    let next = file
        .keys
        .keys()
        .filter_map(|id| id.strip_prefix('k').and_then(|n| n.parse::<u64>().ok()))
        .max()
        .unwrap_or(0)
        + 1;
    let id = format!("k{next}");
    file.keys.insert(
        id.clone(),
        hex::encode(random_bytes(file.algorithm.key_len())),
    );
    if activate {
        file.current = id.clone();
    }
    file.replace(path)?;
    Ok(id)
}

/// Makes the key `id`, already in the file, the one that seals new values.
pub fn activate_key(path: &Path, id: &str) -> Result<(), String> {
    let mut file = KeyFile::read(path)?;
    if !file.keys.contains_key(id) {
        return Err(format!(
            "field key file {}: it holds no key {id} (it holds {})",
            path.display(),
            file.keys.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    let keys = decoded(&file, path)?;
    file.index_key
        .get_or_insert_with(|| hex::encode(index_key_of(&keys)));
    file.current = id.to_string();
    file.replace(path)
}

/// The file's keys decoded and checked against its algorithm.
fn decoded(file: &KeyFile, path: &Path) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let what = |e: &dyn std::fmt::Display| format!("field key file {}: {e}", path.display());
    let mut keys = BTreeMap::new();
    for (id, k) in &file.keys {
        let bytes = hex::decode(k).map_err(|e| what(&e))?;
        if bytes.len() != file.algorithm.key_len() {
            return Err(what(&format!(
                "key {id} is {} bytes, {} wants {}",
                bytes.len(),
                file.algorithm.tag(),
                file.algorithm.key_len()
            )));
        }
        keys.insert(id.clone(), bytes);
    }
    if keys.is_empty() {
        return Err(what(&"it holds no key"));
    }
    Ok(keys)
}

/// The one interface a county replaces to seal personal data with a certified cryptographic
/// module (密码模块) or a KMS instead of qaward's software cipher: the keys, held by id, and the
/// authenticated encryption under them. [`FieldKeys`] frames what it returns (`enc1:` header,
/// key id, encoding) and decides what is sealed; a cipher never sees a column or a row.
pub trait FieldCipher: Send + Sync {
    /// The tag of the algorithm new values are sealed with (`sm4-gcm`): letters, digits, `-`.
    fn algorithm(&self) -> &str;
    /// The id of the key new values are sealed with: letters, digits, `-`, `_`.
    fn current_key(&self) -> &str;
    /// Every key id it holds (for logs and status; never the keys).
    fn key_ids(&self) -> Vec<String>;
    /// `plain` sealed under the current key with a fresh nonce, as the cipher frames it (for
    /// GCM: nonce ‖ ciphertext ‖ tag).
    fn encrypt(&self, plain: &[u8]) -> Vec<u8>;
    /// The plaintext of what [`FieldCipher::encrypt`] returned under `algorithm` and key `kid`;
    /// [`FieldError::UnknownKey`] for a key it does not hold, [`FieldError::Corrupt`] for
    /// anything that does not authenticate.
    fn decrypt(&self, algorithm: &str, kid: &str, sealed: &[u8]) -> Result<Vec<u8>, FieldError>;
    /// A keyed index of `value` (qaward's: HMAC-SM3 under the blind-index key): equal values,
    /// equal indexes, and nothing else learnt from it.
    fn blind_index(&self, value: &[u8]) -> Vec<u8>;
}

/// The keys that seal and open personal-data fields, through a [`FieldCipher`].
pub struct FieldKeys {
    /// Seal nothing: the baseline of the encryption benchmark, never a service's keys.
    off: bool,
    cipher: Box<dyn FieldCipher>,
}

/// qaward's own cipher: SM4-GCM or AES-256-GCM in software (RustCrypto), keys from the key file.
struct SoftwareCipher {
    algorithm: Algorithm,
    current: String,
    keys: BTreeMap<String, Vec<u8>>,
    /// The blind-index key: written in the key file since its first rotation; before, derived
    /// from the first key.
    index_key: Vec<u8>,
}

impl FieldCipher for SoftwareCipher {
    fn algorithm(&self) -> &str {
        self.algorithm.tag()
    }

    fn current_key(&self) -> &str {
        &self.current
    }

    fn key_ids(&self) -> Vec<String> {
        self.keys.keys().cloned().collect()
    }

    fn encrypt(&self, plain: &[u8]) -> Vec<u8> {
        let key = &self.keys[&self.current];
        let nonce = random_bytes(12);
        let sealed = match self.algorithm {
            Algorithm::Sm4Gcm => Sm4Gcm::new(GenericArray::from_slice(key))
                .encrypt(GenericArray::from_slice(&nonce), plain),
            Algorithm::Aes256Gcm => aes_gcm::Aes256Gcm::new(GenericArray::from_slice(key))
                .encrypt(GenericArray::from_slice(&nonce), plain),
        }
        .expect("GCM seals any length this service stores");
        let mut body = nonce;
        body.extend(sealed);
        body
    }

    fn decrypt(&self, alg: &str, kid: &str, body: &[u8]) -> Result<Vec<u8>, FieldError> {
        let alg = Algorithm::parse_tag(alg).ok_or(FieldError::Corrupt)?;
        let key = self
            .keys
            .get(kid)
            .ok_or_else(|| FieldError::UnknownKey(kid.to_string()))?;
        if key.len() != alg.key_len() || body.len() < 12 + 16 {
            return Err(FieldError::Corrupt);
        }
        let (nonce, ct) = body.split_at(12);
        match alg {
            Algorithm::Sm4Gcm => Sm4Gcm::new(GenericArray::from_slice(key))
                .decrypt(GenericArray::from_slice(nonce), ct),
            Algorithm::Aes256Gcm => aes_gcm::Aes256Gcm::new(GenericArray::from_slice(key))
                .decrypt(GenericArray::from_slice(nonce), ct),
        }
        .map_err(|_| FieldError::Corrupt)
    }

    fn blind_index(&self, value: &[u8]) -> Vec<u8> {
        hmac_sm3(&self.index_key, value)
    }
}

/// HMAC-SM3 (GB/T 32905 in RFC 2104's construction).
fn hmac_sm3(key: &[u8], message: &[u8]) -> Vec<u8> {
    use hmac::Mac;
    let mut mac =
        <hmac::Hmac<sm3::Sm3> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn index_key_of(keys: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let first = keys.values().next().expect("a key file holds a key");
    hmac_sm3(first, b"qaward blind index v1")
}

/// The prefix of a minimised identifier: a blind index and the last four characters.
const INDEX_PREFIX: &str = "idx1:";

impl std::fmt::Debug for FieldKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys themselves.
        f.debug_struct("FieldKeys")
            .field("algorithm", &self.cipher.algorithm())
            .field("current", &self.cipher.current_key())
            .field("key_ids", &self.cipher.key_ids())
            .finish()
    }
}

/// Why a stored value could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FieldError {
    #[error("sealed with key {0}, which the key file does not hold")]
    UnknownKey(String),
    #[error("a sealed value that does not parse or does not authenticate")]
    Corrupt,
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).expect("the operating system's randomness");
    b
}

impl FieldKeys {
    /// Keys behind another cipher: a certified module or a KMS (see [`FieldCipher`]).
    pub fn with_cipher(cipher: Box<dyn FieldCipher>) -> FieldKeys {
        FieldKeys { off: false, cipher }
    }

    /// One fresh random key held in memory only (tests, and a process that keeps no data).
    pub fn ephemeral(algorithm: Algorithm) -> FieldKeys {
        let keys: BTreeMap<String, Vec<u8>> =
            [("k1".to_string(), random_bytes(algorithm.key_len()))].into();
        FieldKeys::with_cipher(Box::new(SoftwareCipher {
            algorithm,
            current: "k1".into(),
            index_key: index_key_of(&keys),
            keys,
        }))
    }

    /// Keys that seal nothing (values are stored as given; blind indexes are still keyed):
    /// only the baseline `qaward-bench privacy` measures sealing against. No service is ever
    /// started with them.
    #[doc(hidden)]
    pub fn off_for_benchmark() -> FieldKeys {
        FieldKeys {
            off: true,
            ..FieldKeys::ephemeral(Algorithm::Sm4Gcm)
        }
    }

    /// The key file at `path`, created (0600, with a fresh key `k1` for `algorithm`) when it
    /// does not exist.
    pub fn load_or_create(path: &Path, algorithm: Algorithm) -> Result<FieldKeys, String> {
        let what = |e: &dyn std::fmt::Display| format!("field key file {}: {e}", path.display());
        if !path.exists() {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| what(&e))?;
            }
            let file = KeyFile {
                algorithm,
                current: "k1".into(),
                keys: [(
                    "k1".to_string(),
                    hex::encode(random_bytes(algorithm.key_len())),
                )]
                .into(),
                index_key: None,
            };
            let text = serde_json::to_string_pretty(&file).map_err(|e| what(&e))?;
            // Written whole under a private name, then linked into place: processes starting
            // together see no file or a complete one, and the first link wins.
            let tmp = path.with_extension(format!("tmp-{}", hex::encode(random_bytes(6))));
            write_private(&tmp, &text).map_err(|e| what(&e))?;
            let linked = std::fs::hard_link(&tmp, path);
            let _ = std::fs::remove_file(&tmp);
            match linked {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(what(&e)),
            }
        }
        let file = KeyFile::read(path)?;
        let keys = decoded(&file, path)?;
        if !keys.contains_key(&file.current) {
            return Err(what(&format!(
                "the current key {} is not in it",
                file.current
            )));
        }
        let index_key = match &file.index_key {
            Some(k) => hex::decode(k).map_err(|e| what(&e))?,
            None => index_key_of(&keys),
        };
        Ok(FieldKeys::with_cipher(Box::new(SoftwareCipher {
            algorithm: file.algorithm,
            current: file.current,
            index_key,
            keys,
        })))
    }

    /// A keyed blind index of `value` (HMAC-SM3, lower-case hex): equal values give equal
    /// indexes, so equality can be looked up without the value being kept.
    pub fn blind_index(&self, value: &str) -> String {
        hex::encode(self.cipher.blind_index(value.as_bytes()))
    }

    /// An identifier kept minimised (R-54, PIPL Art. 6: no more than the purpose needs): its
    /// blind index, for equality, and its last four characters, for display. The identifier
    /// itself is not kept; the empty value stays empty.
    pub fn minimise(&self, id: &str) -> String {
        if id.is_empty() {
            return String::new();
        }
        let chars: Vec<char> = id.chars().collect();
        let last4: String = chars[chars.len().saturating_sub(4)..].iter().collect();
        format!("{INDEX_PREFIX}{}:{last4}", self.blind_index(id))
    }

    /// Whether `stored` is a minimised identifier.
    pub fn is_minimised(stored: &str) -> bool {
        stored.starts_with(INDEX_PREFIX)
    }

    /// A minimised identifier as shown to anyone: its last four characters behind the
    /// masked rest of an 18-character ID (`**************1234`).
    pub fn minimised_display(stored: &str) -> Option<String> {
        let last4 = stored.strip_prefix(INDEX_PREFIX)?.rsplit(':').next()?;
        Some(format!(
            "{}{last4}",
            "*".repeat(18usize.saturating_sub(last4.chars().count()))
        ))
    }

    /// Whether `stored` is a sealed value (not legacy plaintext).
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }

    /// `plain` sealed with the current key; the empty string stays empty (nothing to hide).
    pub fn seal(&self, plain: &str) -> String {
        if plain.is_empty() || self.off {
            return plain.to_string();
        }
        format!(
            "{PREFIX}{}:{}:{}",
            self.cipher.algorithm(),
            self.cipher.current_key(),
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(self.encrypt(plain.as_bytes()))
        )
    }

    /// Bytes sealed with the current key (a stored protobuf answer, say), as
    /// `\0enc1:{algorithm}:{key id}:` then nonce ‖ ciphertext ‖ tag. The leading zero byte is a
    /// field number no protobuf message starts with, so sealed and legacy bytes never mix up.
    pub fn seal_bytes(&self, plain: &[u8]) -> Vec<u8> {
        if self.off {
            return plain.to_vec();
        }
        let mut out = self.current_header(true);
        out.extend(self.encrypt(plain));
        out
    }

    /// The plaintext of bytes [`FieldKeys::seal_bytes`] stored; legacy bytes as they are.
    pub fn open_bytes(&self, stored: &[u8]) -> Result<Vec<u8>, FieldError> {
        let Some(rest) = stored
            .strip_prefix(b"\0")
            .and_then(|r| r.strip_prefix(PREFIX.as_bytes()))
        else {
            return Ok(stored.to_vec());
        };
        let mut parts = rest.splitn(3, |b| *b == b':');
        let (Some(alg), Some(kid), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(FieldError::Corrupt);
        };
        let alg = std::str::from_utf8(alg).map_err(|_| FieldError::Corrupt)?;
        let kid = std::str::from_utf8(kid).map_err(|_| FieldError::Corrupt)?;
        self.decrypt(alg, kid, body)
    }

    /// The id of the key a stored value (text or bytes) was sealed with; `None` for plaintext.
    pub fn key_id_of(stored: &[u8]) -> Option<&str> {
        let rest = stored
            .strip_prefix(b"\0")
            .unwrap_or(stored)
            .strip_prefix(PREFIX.as_bytes())?;
        let mut parts = rest.splitn(3, |b| *b == b':');
        parts.next()?;
        std::str::from_utf8(parts.next()?).ok()
    }

    /// The header every value sealed now starts with (`enc1:{algorithm}:{key id}:`, after a
    /// zero byte for bytes): what a value not yet under the current key lacks.
    pub fn current_header(&self, bytes: bool) -> Vec<u8> {
        let header = format!(
            "{PREFIX}{}:{}:",
            self.cipher.algorithm(),
            self.cipher.current_key()
        );
        if bytes {
            [b"\0".as_slice(), header.as_bytes()].concat()
        } else {
            header.into_bytes()
        }
    }

    /// The id of the key that seals new values.
    pub fn current_key_id(&self) -> &str {
        self.cipher.current_key()
    }

    fn encrypt(&self, plain: &[u8]) -> Vec<u8> {
        self.cipher.encrypt(plain)
    }

    fn decrypt(&self, alg: &str, kid: &str, body: &[u8]) -> Result<Vec<u8>, FieldError> {
        self.cipher.decrypt(alg, kid, body)
    }

    /// The plaintext of a stored value: sealed values are opened with the key they name;
    /// legacy plaintext is returned as is.
    pub fn open(&self, stored: &str) -> Result<String, FieldError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let mut parts = rest.splitn(3, ':');
        let (Some(alg), Some(kid), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(FieldError::Corrupt);
        };
        let body = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(body)
            .map_err(|_| FieldError::Corrupt)?;
        let plain = self.decrypt(alg, kid, &body)?;
        String::from_utf8(plain).map_err(|_| FieldError::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r54_a_value_is_sealed_with_sm4_gcm_by_default_and_opens_only_with_its_key() {
        let keys = FieldKeys::ephemeral(Algorithm::Sm4Gcm);
        let sealed = keys.seal("13800000001");
        assert!(sealed.starts_with("enc1:sm4-gcm:k1:"), "{sealed}");
        assert!(!sealed.contains("13800000001"));
        assert_ne!(keys.seal("13800000001"), sealed, "a fresh nonce each time");
        assert_eq!(keys.open(&sealed).unwrap(), "13800000001");
        // Another key does not open it; a flipped byte does not authenticate.
        let other = FieldKeys::ephemeral(Algorithm::Sm4Gcm);
        assert_eq!(other.open(&sealed), Err(FieldError::Corrupt));
        let mut bad = sealed.clone();
        let last = bad.pop().unwrap();
        bad.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(keys.open(&bad), Err(FieldError::Corrupt));
        // Legacy plaintext reads as is, and the empty value stays empty.
        assert_eq!(keys.open("13800000002").unwrap(), "13800000002");
        assert_eq!(keys.seal(""), "");
        let aes = FieldKeys::ephemeral(Algorithm::Aes256Gcm);
        let s = aes.seal("500235199001011234");
        assert!(s.starts_with("enc1:aes256-gcm:k1:"));
        assert_eq!(aes.open(&s).unwrap(), "500235199001011234");
    }

    #[test]
    fn r54_the_sm4_block_cipher_gives_the_standards_example() {
        // GB/T 32907-2016, Appendix A, example 1: key = plaintext =
        // 0123456789abcdeffedcba9876543210 → 681edf34d206965e86b3e94f536e4246.
        use aes_gcm::aead::generic_array::GenericArray as A;
        use sm4::cipher::{BlockEncrypt, KeyInit as _};
        let k = hex::decode("0123456789abcdeffedcba9876543210").unwrap();
        let mut block = A::clone_from_slice(&k);
        sm4::Sm4::new(A::from_slice(&k)).encrypt_block(&mut block);
        assert_eq!(hex::encode(block), "681edf34d206965e86b3e94f536e4246");
    }

    #[test]
    fn the_key_file_is_made_private_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/fields.json");
        let a = FieldKeys::load_or_create(&path, Algorithm::Sm4Gcm).unwrap();
        let sealed = a.seal("13800000001");
        let b = FieldKeys::load_or_create(&path, Algorithm::Aes256Gcm).unwrap();
        assert_eq!(b.open(&sealed).unwrap(), "13800000001", "the file wins");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let file: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let k1 = file["keys"]["k1"].as_str().unwrap();
        assert!(!format!("{a:?}").contains(k1), "the keys never show");
    }

    #[test]
    fn r54_an_id_kept_minimised_matches_itself_shows_its_last_four_and_is_not_kept() {
        let keys = FieldKeys::ephemeral(Algorithm::Sm4Gcm);
        let id = "50023519870412001X";
        let kept = keys.minimise(id);
        assert!(FieldKeys::is_minimised(&kept));
        assert!(!kept.contains("500235198704"), "{kept}");
        assert!(kept.ends_with(":001X"));
        assert_eq!(keys.minimise(id), kept, "equal ids, equal indexes");
        assert_ne!(keys.minimise("500235198704120028"), kept);
        // Another key file indexes differently: the index is keyed, not a bare hash.
        assert_ne!(FieldKeys::ephemeral(Algorithm::Sm4Gcm).minimise(id), kept);
        assert_eq!(
            FieldKeys::minimised_display(&kept).unwrap(),
            "**************001X"
        );
        assert_eq!(keys.minimise(""), "");
        // The hash under the HMAC is SM3: GB/T 32905-2016's example, SM3("abc").
        use sm3::Digest;
        assert_eq!(
            hex::encode(sm3::Sm3::digest(b"abc")),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
        assert_eq!(hmac_sm3(b"k", b"m").len(), 32);
    }

    #[test]
    fn r54_a_county_plugs_in_its_own_cipher_and_fieldkeys_frames_and_opens_through_it() {
        // A stand-in for a certified module: its own key ids, every operation counted.
        struct Module {
            inner: SoftwareCipher,
            calls: std::sync::atomic::AtomicUsize,
        }
        impl FieldCipher for Module {
            fn algorithm(&self) -> &str {
                "sm4-gcm"
            }
            fn current_key(&self) -> &str {
                "hsm-slot-3"
            }
            fn key_ids(&self) -> Vec<String> {
                vec!["hsm-slot-3".into()]
            }
            fn encrypt(&self, plain: &[u8]) -> Vec<u8> {
                self.calls
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.inner.encrypt(plain)
            }
            fn decrypt(&self, alg: &str, kid: &str, sealed: &[u8]) -> Result<Vec<u8>, FieldError> {
                self.calls
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if kid != "hsm-slot-3" {
                    return Err(FieldError::UnknownKey(kid.into()));
                }
                self.inner.decrypt(alg, "k1", sealed)
            }
            fn blind_index(&self, value: &[u8]) -> Vec<u8> {
                self.inner.blind_index(value)
            }
        }
        let keys: BTreeMap<String, Vec<u8>> = [("k1".to_string(), random_bytes(16))].into();
        let module = Module {
            inner: SoftwareCipher {
                algorithm: Algorithm::Sm4Gcm,
                current: "k1".into(),
                index_key: index_key_of(&keys),
                keys,
            },
            calls: 0.into(),
        };
        let plugged = FieldKeys::with_cipher(Box::new(module));
        let sealed = plugged.seal("13800000001");
        assert!(sealed.starts_with("enc1:sm4-gcm:hsm-slot-3:"), "{sealed}");
        assert_eq!(plugged.open(&sealed).unwrap(), "13800000001");
        assert_eq!(plugged.open_bytes(&plugged.seal_bytes(b"x")).unwrap(), b"x");
        let software = FieldKeys::ephemeral(Algorithm::Sm4Gcm);
        assert_eq!(
            plugged.open(&software.seal("1")),
            Err(FieldError::UnknownKey("k1".into())),
            "what another cipher sealed is not opened by guess"
        );
        assert!(format!("{plugged:?}").contains("hsm-slot-3"));
    }

    #[test]
    fn the_benchmarks_baseline_keys_store_values_as_given() {
        let off = FieldKeys::off_for_benchmark();
        assert_eq!(off.seal("13800000001"), "13800000001");
        assert_eq!(off.seal_bytes(b"answer"), b"answer");
        assert_eq!(off.open("13800000001").unwrap(), "13800000001");
    }

    #[test]
    fn r54_a_rotation_seals_new_values_under_the_new_key_and_still_opens_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fields.json");
        let before = FieldKeys::load_or_create(&path, Algorithm::Sm4Gcm).unwrap();
        let (old, old_bytes) = (before.seal("13800000001"), before.seal_bytes(b"answer"));
        let index = before.minimise("50023519870412001X");
        // Staged: every process can open it, none seals with it yet.
        assert_eq!(add_key(&path, false).unwrap(), "k2");
        let staged = FieldKeys::load_or_create(&path, Algorithm::Sm4Gcm).unwrap();
        assert_eq!(staged.current_key_id(), "k1");
        assert_eq!(add_key(&path, true).unwrap(), "k3");
        let after = FieldKeys::load_or_create(&path, Algorithm::Sm4Gcm).unwrap();
        assert_eq!(after.current_key_id(), "k3");
        let new = after.seal("13800000001");
        assert_eq!(FieldKeys::key_id_of(new.as_bytes()), Some("k3"));
        assert_eq!(FieldKeys::key_id_of(old.as_bytes()), Some("k1"));
        assert_eq!(FieldKeys::key_id_of(&after.seal_bytes(b"x")), Some("k3"));
        assert_eq!(FieldKeys::key_id_of(b"13800000001"), None);
        assert_eq!(after.open(&old).unwrap(), "13800000001");
        assert_eq!(after.open_bytes(&old_bytes).unwrap(), b"answer");
        assert_eq!(after.open_bytes(b"legacy").unwrap(), b"legacy");
        // The blind index does not move with the current key.
        assert_eq!(after.minimise("50023519870412001X"), index);
        activate_key(&path, "k2").unwrap();
        assert_eq!(
            FieldKeys::load_or_create(&path, Algorithm::Sm4Gcm)
                .unwrap()
                .current_key_id(),
            "k2"
        );
        assert!(activate_key(&path, "k9").unwrap_err().contains("no key k9"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "the rewritten file stays private");
        }
    }
}
