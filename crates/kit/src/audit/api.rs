//! The audit log read by API (issue 22, item 3): every service answers GetAuditCheckpoint,
//! ProveAuditRecords and ProveAuditConsistency with these, after its own access rule. A proof
//! is always against a signed checkpoint that includes what it proves: when the latest does
//! not yet, one is taken first (at most one per growth of the log).

use qaward_proto::qaward::common::v1 as common;
use sqlx::Row;

use super::{Checkpoint, log, sequence_all};
use crate::{Error, Result, auth::Caller, db::Database, server::ServiceContext};

/// Whether `caller` reaches the audit records of `resource` by its programme: the office and
/// the supervisor act for one programme and reach the records named below it, no others.
pub fn of_programme(caller: &Caller, resource: &str) -> bool {
    caller.programme_id().is_some_and(|p| {
        let own = format!("programmes/{p}");
        resource == own || resource.starts_with(&format!("{own}/"))
    })
}

/// Records one answer proves at most; more are asked for by number.
pub const MAX_RECORDS: usize = 1_000;

pub fn checkpoint_pb(c: &Checkpoint) -> common::AuditCheckpoint {
    common::AuditCheckpoint {
        origin: c.origin.clone(),
        size: c.size as i64,
        root: hex::encode(c.root),
        time_micros: c.at_micros,
        key_id: c.key_id.clone(),
        signature: c.signature.clone(),
        text: c.to_text(),
    }
}

/// A signed checkpoint of `service`'s log as it is now: the latest, or a new one when the log
/// grew since (so at most one per growth, however often it is asked for).
pub async fn checkpoint(
    db: &Database,
    ctx: &ServiceContext,
    service: &str,
) -> Result<common::AuditCheckpoint> {
    sequence_all(db).await?;
    let mut conn = db.pool().acquire().await?;
    let size = log::size(&mut conn).await?;
    drop(conn);
    Ok(checkpoint_pb(&covering(db, ctx, service, size).await?))
}

/// The latest checkpoint if it covers `size` records, else a new one.
async fn covering(
    db: &Database,
    ctx: &ServiceContext,
    service: &str,
    size: u64,
) -> Result<Checkpoint> {
    let mut conn = db.pool().acquire().await?;
    if let Some((c, _)) = log::latest_checkpoint(&mut conn).await?
        && c.size >= size
    {
        return Ok(c);
    }
    drop(conn);
    log::take_checkpoint(
        db,
        &ctx.audit,
        &log::origin(service),
        "proof",
        ctx.clock.now(),
    )
    .await
}

/// What a ProveAuditRecords request asks for, checked.
pub enum Wanted {
    Resource(String),
    Seq(i64),
}

impl TryFrom<&common::ProveAuditRecordsRequest> for Wanted {
    type Error = Error;
    fn try_from(r: &common::ProveAuditRecordsRequest) -> Result<Wanted> {
        match (r.resource.trim(), r.seq) {
            ("", 0) => Err(Error::invalid(
                "resource",
                "name a resource, or a record by seq",
            )),
            (_, s) if s < 0 => Err(Error::invalid("seq", "is a record number, 1 or more")),
            ("", s) => Ok(Wanted::Seq(s)),
            (name, 0) => Ok(Wanted::Resource(name.to_string())),
            _ => Err(Error::invalid("seq", "name a resource or a seq, not both")),
        }
    }
}

/// The records asked for, each with its inclusion proof in a checkpoint that covers them all.
pub async fn prove_records(
    db: &Database,
    ctx: &ServiceContext,
    service: &str,
    wanted: &Wanted,
    may: &(dyn Fn(&str) -> bool + Sync),
) -> Result<common::AuditRecordProofs> {
    let denied = || Error::permission_denied("these audit records are not the caller's to read");
    if let Wanted::Resource(name) = wanted
        && !may(name)
    {
        return Err(denied());
    }
    // Records committed a moment ago are chained first, so they can be proved at once.
    sequence_all(db).await?;
    let mut conn = db.pool().acquire().await?;
    let columns = "seq, at_micros, actor, role, action, resource, reason, detail, prev_hash, hash";
    let rows = match wanted {
        Wanted::Seq(seq) => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {columns} FROM audit_log WHERE seq = $1"
            )))
            .bind(*seq)
            .fetch_all(&mut *conn)
            .await?
        }
        Wanted::Resource(name) => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {columns} FROM audit_log
                 WHERE resource = $1 OR substr(resource, 1, length($2)) = $2
                 ORDER BY seq LIMIT $3"
            )))
            .bind(name)
            .bind(format!("{name}/"))
            .bind(MAX_RECORDS as i64 + 1)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    if let Wanted::Seq(seq) = wanted
        && rows.is_empty()
    {
        return Err(Error::not_found(format!(
            "{} record {seq}",
            log::origin(service)
        )));
    }
    for row in &rows {
        let resource: String = row.try_get("resource")?;
        if !may(&resource) {
            return Err(denied());
        }
    }
    if rows.len() > MAX_RECORDS {
        return Err(Error::invalid(
            "resource",
            format!("has more than {MAX_RECORDS} audit records: ask for them by seq"),
        ));
    }
    let last = rows
        .iter()
        .map(|r| r.try_get::<i64, _>("seq"))
        .collect::<std::result::Result<Vec<_>, _>>()?
        .into_iter()
        .max()
        .unwrap_or(0);
    drop(conn);
    let checkpoint = covering(db, ctx, service, last as u64).await?;
    let mut conn = db.pool().acquire().await?;
    let mut records = Vec::with_capacity(rows.len());
    for row in &rows {
        let seq: i64 = row.try_get("seq")?;
        let proof = log::inclusion(&mut conn, seq as u64 - 1, checkpoint.size)
            .await?
            .ok_or_else(|| Error::internal("a record beyond its checkpoint"))?;
        records.push(common::AuditRecordProof {
            seq,
            at_micros: row.try_get("at_micros")?,
            actor: row.try_get("actor")?,
            role: row.try_get("role")?,
            action: row.try_get("action")?,
            resource: row.try_get("resource")?,
            reason: row.try_get("reason")?,
            detail: row.try_get("detail")?,
            prev_hash: row.try_get("prev_hash")?,
            row_hash: row.try_get("hash")?,
            inclusion_proof: proof.iter().map(hex::encode).collect(),
        });
    }
    Ok(common::AuditRecordProofs {
        checkpoint: Some(checkpoint_pb(&checkpoint)),
        records,
    })
}

/// That the log's first `first_size` records are a prefix of the log at a signed checkpoint.
pub async fn prove_consistency(
    db: &Database,
    ctx: &ServiceContext,
    service: &str,
    r: &common::ProveAuditConsistencyRequest,
) -> Result<common::AuditConsistencyProof> {
    if r.first_size < 1 {
        return Err(Error::invalid("first_size", "is a log size, 1 or more"));
    }
    let first = r.first_size as u64;
    let checkpoint = covering(db, ctx, service, first).await?;
    if first > checkpoint.size {
        return Err(Error::invalid(
            "first_size",
            format!("the log has {} records", checkpoint.size),
        ));
    }
    let mut conn = db.pool().acquire().await?;
    let proof = log::consistency(&mut conn, first, checkpoint.size)
        .await?
        .ok_or_else(|| Error::internal("no consistency proof within the log"))?;
    Ok(common::AuditConsistencyProof {
        first_size: r.first_size,
        first_root: hex::encode(log::root(&mut conn, first).await?),
        checkpoint: Some(checkpoint_pb(&checkpoint)),
        proof: proof.iter().map(hex::encode).collect(),
    })
}

/// A service's audit log as its three RPCs answer it, for a service whose office and
/// supervisor reach the records of their own programme (every service but the applications,
/// which also lets an enterprise reach its own applications').
pub struct Log<'a> {
    pub db: &'a Database,
    pub ctx: &'a ServiceContext,
    pub service: &'a str,
}

impl Log<'_> {
    pub async fn checkpoint(&self) -> Result<common::AuditCheckpoint> {
        checkpoint(self.db, self.ctx, self.service).await
    }

    pub async fn prove_records_of_programme(
        &self,
        caller: &Caller,
        r: &common::ProveAuditRecordsRequest,
    ) -> Result<common::AuditRecordProofs> {
        let wanted = Wanted::try_from(r)?;
        let may = |resource: &str| of_programme(caller, resource);
        prove_records(self.db, self.ctx, self.service, &wanted, &may).await
    }

    pub async fn prove_consistency(
        &self,
        r: &common::ProveAuditConsistencyRequest,
    ) -> Result<common::AuditConsistencyProof> {
        prove_consistency(self.db, self.ctx, self.service, r).await
    }
}
