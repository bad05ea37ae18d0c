//! `qaward audit …`: the auditor's and the operator's commands on a service's audit log
//! (R-50; issue 22, item 3). `verify` reads only; `checkpoint` and `restored` write signed
//! statements with the deployment's checkpoint key.

use std::path::{Path, PathBuf};

use qaward_kit::{
    audit::{self, AuditKey, AuditPublicKey, Checkpoint, log},
    config::{Config, ServiceKind},
    db::Database,
};

async fn open(config: &Config, target: ServiceKind) -> Result<Database, String> {
    let Some(migrations) = crate::serve::migrations_of(target) else {
        return Err("the gateway keeps no audit trail".to_string());
    };
    Database::open(config, target.as_str(), migrations)
        .await
        .map_err(|e| e.to_string())
}

fn key_path(config: &Config) -> PathBuf {
    config.audit.key_file_in(&config.data_dir)
}

fn read(path: &Path, what: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{what} {}: {e}", path.display()))
}

/// `qaward audit verify --target NAME [--checkpoint FILE] [--public-key FILE]`: re-hashes the
/// chain, recomputes the tree from the rows, checks every stored checkpoint and, if given, the
/// one an auditor kept. The public key is the deployment's (`audit-key.pub` beside the key
/// file) unless one is given: an auditor passes the copy they were handed.
pub async fn verify(
    config: Config,
    target: ServiceKind,
    kept: Option<PathBuf>,
    public_key: Option<PathBuf>,
) -> Result<(), String> {
    let db = open(&config, target).await?;
    let name = target.as_str();
    // The chain, as before: records committed but not yet sequenced are brought in first.
    let chain = match audit::verify(&db).await.map_err(|e| e.to_string())? {
        audit::Verdict::Intact { rows, head } => {
            format!("{name}: audit trail intact, {rows} rows, head {head}")
        }
        audit::Verdict::Broken { seq, problem } => {
            return Err(format!(
                "{name}: audit trail broken at row {seq}: {problem:?}"
            ));
        }
    };
    let public_path =
        public_key.unwrap_or_else(|| audit::checkpoint::public_path(&key_path(&config)));
    let public = AuditPublicKey::parse(&read(&public_path, "public key")?)
        .map_err(|e| format!("{}: {e}", public_path.display()))?;
    let kept = match kept {
        Some(path) => Some(
            Checkpoint::parse(&read(&path, "checkpoint")?)
                .map_err(|e| format!("{}: {e}", path.display()))?,
        ),
        None => None,
    };
    if let Some(k) = &kept
        && k.origin != log::origin(name)
    {
        return Err(format!(
            "the checkpoint is of {}, not of {}",
            k.origin,
            log::origin(name)
        ));
    }
    let report = audit::check_log(&db, &public, kept.as_ref())
        .await
        .map_err(|e| e.to_string())?;
    println!("{chain}");
    println!(
        "{name}: log of {} records, root {}; its signed checkpoints checked (key {})",
        report.rows,
        hex::encode(report.root),
        public.id()
    );
    for f in &report.findings {
        println!("{name}: {}", describe(f));
    }
    if let Some(k) = &kept
        && report.sound()
    {
        println!(
            "{name}: the kept checkpoint of {} records is a prefix of this log",
            k.size
        );
    }
    if report.sound() {
        Ok(())
    } else {
        Err(format!(
            "{name}: the audit log does not hold up ({} findings)",
            report.findings.len()
        ))
    }
}

fn describe(f: &audit::Finding) -> String {
    use audit::Finding::*;
    match f {
        Chain { seq, problem } => format!("row {seq}: {problem:?}"),
        TreeMismatch { level, index } => {
            format!("the stored tree's node ({level}, {index}) is not the rows' ")
        }
        BadCheckpoint { size, why } => format!("stored checkpoint of {size} records: {why}"),
        KeptNotSigned => "the kept checkpoint is not signed by this key".to_string(),
        Rewritten { size } => {
            format!("the first {size} records are not those the kept checkpoint covered: rewritten")
        }
        RolledBack { kept, now } => format!(
            "rolled back: the kept checkpoint covers {kept} records, the log has {now}, and no restore record says why"
        ),
        Restored { seq, to, kept } => format!(
            "documented restore at row {seq}: restored to {to} records; the kept checkpoint's records after that ({kept} in all) were lost by the restore"
        ),
        BadRestoreRecord { seq, why } => format!("restore record at row {seq}: {why}"),
    }
}

/// `qaward audit checkpoint --target NAME`: signs a checkpoint of the log now and prints it —
/// the text an auditor keeps.
pub async fn checkpoint(config: Config, target: ServiceKind) -> Result<(), String> {
    let db = open(&config, target).await?;
    let key = AuditKey::load_or_create(&key_path(&config)).map_err(|e| e.to_string())?;
    let c = log::take_checkpoint(
        &db,
        &key,
        &log::origin(target.as_str()),
        "operator",
        time::OffsetDateTime::now_utc(),
    )
    .await
    .map_err(|e| e.to_string())?;
    print!("{}", c.to_text());
    Ok(())
}

/// `qaward audit restored --target NAME`: after restoring the service's database from a backup,
/// with the service stopped, records the restore as a signed statement naming a checkpoint of
/// the log as restored; the verifier then reports a documented restore, not a rollback.
pub async fn restored(config: Config, target: ServiceKind) -> Result<(), String> {
    let db = open(&config, target).await?;
    let key = AuditKey::load_or_create(&key_path(&config)).map_err(|e| e.to_string())?;
    let actor = qaward_kit::auth::identity(&config.auth.issuer, "system:operator");
    let statement = audit::record_restore(
        &db,
        &key,
        &log::origin(target.as_str()),
        &actor,
        time::OffsetDateTime::now_utc(),
    )
    .await
    .map_err(|e| e.to_string())?;
    println!(
        "{}: restore recorded, back to {} records",
        target.as_str(),
        statement.restored_to.size
    );
    print!("{}", statement.restored_to.to_text());
    Ok(())
}
