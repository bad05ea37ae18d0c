//! Idempotent mutations (AIP-155). A mutating request that carries a `request_id` is
//! answered once; a retry with the same id and the same request gets the stored answer and
//! changes nothing; the same id with a different request is refused. The answer is stored in
//! the same transaction as the change, so an answer exists exactly when the change does.

use prost::Message;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::{
    Error, Result,
    auth::Caller,
    clock::unix_micros,
    db::{Backend, Conn},
    fields::FieldKeys,
};

/// The identity of one idempotent call.
#[derive(Debug, Clone)]
pub struct RequestKey {
    method: String,
    subject: String,
    request_id: String,
    request_hash: String,
}

impl RequestKey {
    /// The key of `request` to `method` by `caller`, or `None` when `request_id` is empty
    /// (the client did not ask for idempotency). A malformed id is INVALID_ARGUMENT.
    pub fn new<M: Message>(
        method: &str,
        caller: &Caller,
        request_id: &str,
        request: &M,
    ) -> Result<Option<RequestKey>> {
        if request_id.is_empty() {
            return Ok(None);
        }
        validate_request_id(request_id)?;
        Ok(Some(RequestKey {
            method: method.to_string(),
            subject: caller.identity(),
            request_id: request_id.to_string(),
            request_hash: hex::encode(Sha256::digest(request.encode_to_vec())),
        }))
    }
}

/// The request id of a call a service makes to another on behalf of one of its own requests:
/// the same parts always give the same id, so a retried orchestration repeats no change
/// upstream. Empty when the originating request had no id (`parts[0]`).
pub fn derived_request_id(parts: &[&str]) -> String {
    if parts.first().is_none_or(|p| p.is_empty()) {
        return String::new();
    }
    hex::encode(Sha256::digest(parts.join("\u{1f}").as_bytes()))[..40].to_string()
}

/// A request id is 1-64 characters of `[A-Za-z0-9_-]` (a UUID fits).
pub fn validate_request_id(request_id: &str) -> Result<()> {
    let ok = (1..=64).contains(&request_id.len())
        && request_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "request_id",
            "must be 1-64 characters of letters, digits, '-' or '_' (a UUID fits)",
        ))
    }
}

/// The stored answer to an earlier call with this key, if any, opened with `keys` when it was
/// sealed.
pub async fn recall<R: Message + Default>(
    conn: &mut Conn,
    key: &RequestKey,
    keys: Option<&FieldKeys>,
) -> Result<Option<R>> {
    let row = sqlx::query(
        "SELECT request_hash, response FROM request_log
         WHERE method = $1 AND subject = $2 AND request_id = $3",
    )
    .bind(&key.method)
    .bind(&key.subject)
    .bind(&key.request_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let hash: String = row.try_get("request_hash")?;
    if hash != key.request_hash {
        return Err(Error::invalid(
            "request_id",
            "was already used for a different request",
        ));
    }
    let mut bytes: Vec<u8> = row.try_get("response")?;
    if let Some(keys) = keys {
        bytes = keys
            .open_bytes(&bytes)
            .map_err(|e| Error::internal(format_args!("stored response does not open: {e}")))?;
    }
    R::decode(bytes.as_slice())
        .map(Some)
        .map_err(|e| Error::internal(format_args!("stored response does not decode: {e}")))
}

/// Makes concurrent calls with one key take turns, inside the transaction of the change: a
/// second first call with the key waits here until the first's transaction ends, then reads
/// its answer ([`recall`] in the same transaction) instead of racing it to the change. On
/// PostgreSQL a transaction-scoped advisory lock on the key's hash; on SQLite the transaction
/// already holds the database's write lock (`BEGIN IMMEDIATE`), so nothing more is needed.
/// Nothing is written: a call that fails (or commits only the record of its failure) leaves no
/// trace of the key.
pub async fn take_turn(conn: &mut Conn, backend: Backend, key: &RequestKey) -> Result<()> {
    if backend == Backend::Postgres {
        let digest = Sha256::digest(
            [
                key.method.as_str(),
                key.subject.as_str(),
                key.request_id.as_str(),
            ]
            .join("\u{1f}")
            .as_bytes(),
        );
        let lock = i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(lock)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Stores the answer, in the transaction of the change it answers: sealed with `keys` when
/// given, since an answer may hold personal data (an inbox message, a revealed number: R-54).
pub async fn remember<R: Message>(
    conn: &mut Conn,
    key: &RequestKey,
    at: time::OffsetDateTime,
    response: &R,
    keys: Option<&FieldKeys>,
) -> Result<()> {
    let bytes = response.encode_to_vec();
    let bytes = match keys {
        Some(keys) => keys.seal_bytes(&bytes),
        None => bytes,
    };
    sqlx::query(
        "INSERT INTO request_log (method, subject, request_id, request_hash, response, created_micros)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&key.method)
    .bind(&key.subject)
    .bind(&key.request_id)
    .bind(&key.request_hash)
    .bind(bytes)
    .bind(unix_micros(at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}
