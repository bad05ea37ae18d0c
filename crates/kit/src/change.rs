//! The two bookends of every mutating call, the same in every service: before the change, the
//! stored answer to a retried request (AIP-155); after it, the audit record and the
//! answer, committed in one transaction with the change itself. [`run`] puts them around a
//! handler's own work, so a handler says only what is particular to it; [`reply`] turns its
//! result into the gRPC answer.

use prost::Message;
use tonic::{Response, Status};

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
            idempotency::recall(&mut conn, k, db.fields()).await
        }
        None => Ok(None),
    }
}

/// Appends the audit record, stores the answer for retries (sealed, R-54), and commits the
/// change.
pub async fn commit<M: Message>(
    db: &Database,
    mut tx: Tx,
    at: time::OffsetDateTime,
    key: &Option<RequestKey>,
    record: AuditRecord,
    response: &M,
) -> Result<()> {
    if db.audits() {
        audit::append(&mut tx, at, &record).await?;
    }
    if let Some(k) = key {
        idempotency::remember(&mut tx, k, at, response, db.fields()).await?;
    }
    tx.commit().await?;
    db.audit_committed();
    Ok(())
}

/// What a mutating call did inside its transaction: the transaction, handed back to be
/// committed, the audit record of the change and the answer.
pub struct Done<M> {
    pub tx: Tx,
    pub record: AuditRecord,
    pub response: M,
}

impl<M> Done<M> {
    pub fn new(tx: Tx, record: AuditRecord, response: M) -> Self {
        Done {
            tx,
            record,
            response,
        }
    }
}

/// Runs one mutating call: a retry with the same request id gets the answer already given;
/// otherwise `work` makes the change in a new transaction, and its audit record and answer are
/// committed with it, at `at`. An error from `work` drops the transaction: nothing is written
/// (unless `work` committed something of its own, such as the record of a failed attempt).
pub async fn run<M, F, Fut>(
    db: &Database,
    at: time::OffsetDateTime,
    key: Option<RequestKey>,
    work: F,
) -> Result<M>
where
    M: Message + Default,
    F: FnOnce(Tx) -> Fut,
    Fut: Future<Output = Result<Done<M>>>,
{
    if let Some(done) = recall(db, &key).await? {
        return Ok(done);
    }
    let tx = match turn(db, &key).await? {
        Turn::Answered(done) => return Ok(done),
        Turn::Mine(tx) => tx,
    };
    let done = work(tx).await?;
    commit(db, done.tx, at, &key, done.record, &done.response).await?;
    Ok(done.response)
}

/// Whose turn it is to make the change a request id stands for.
pub enum Turn<M> {
    /// Another call with the same key made it first: its answer.
    Answered(M),
    /// This call's: the transaction to make it in.
    Mine(Tx),
}

/// The transaction in which a call makes its change, or the answer to a call with the same
/// key that made it first. A concurrent first call with the same key waits here for the other
/// to end, then finds its answer: every caller with one key gets one answer, and one change.
/// Handlers that do work before their transaction (calls to other services, which are
/// idempotent by derived request ids) take their turn here, at the transaction.
pub async fn turn<M: Message + Default>(
    db: &Database,
    key: &Option<RequestKey>,
) -> Result<Turn<M>> {
    let mut tx = db.begin().await?;
    if let Some(k) = key {
        idempotency::take_turn(&mut tx, db.backend(), k).await?;
        if let Some(done) = idempotency::recall(&mut tx, k, db.fields()).await? {
            return Ok(Turn::Answered(done));
        }
    }
    Ok(Turn::Mine(tx))
}

/// A handler's result as the gRPC answer: the message, or the error's status (ErrorInfo and
/// BadRequest attached).
pub fn reply<M>(result: Result<M>) -> std::result::Result<Response<M>, Status> {
    result.map(Response::new).map_err(crate::Error::into_status)
}
