//! The two bookends of every mutating call, the same in every service: before the change, the
//! stored answer to a retried request (AIP-155); after it, the audit record and the
//! answer, committed in one transaction with the change itself.

use prost::Message;

use crate::{
    Result,
    audit::{self, AuditRecord},
    db::{Database, Tx},
    idempotency::{self, RequestKey},
};

/// The answer already given to this request, if it is a retry.
pub async fn recall<M: Message + Default>(
    db: &Database,
    key: &Option<RequestKey>,
) -> Result<Option<M>> {
    match key {
        Some(k) => {
            let mut conn = db.pool().acquire().await?;
            idempotency::recall(&mut conn, k).await
        }
        None => Ok(None),
    }
}

/// Appends the audit record, stores the answer for retries, and commits the change.
pub async fn commit<M: Message>(
    mut tx: Tx,
    at: time::OffsetDateTime,
    key: &Option<RequestKey>,
    record: AuditRecord,
    response: &M,
) -> Result<()> {
    audit::append(&mut tx, at, &record).await?;
    if let Some(k) = key {
        idempotency::remember(&mut tx, k, at, response).await?;
    }
    tx.commit().await?;
    Ok(())
}
