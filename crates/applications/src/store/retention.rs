//! What this service keeps for a while, with its days: the request log, and drafts
//! never submitted — deleted `privacy.draft_days` after their cycle's application deadline (by
//! when R-05 no longer lets them be submitted), with their evidence rows; their files are
//! queued for the blob sweep ([`blobs_to_delete`], [`blob_deleted`]).

use qaward_kit::{Result, db::Database, retention};
use sqlx::Row;

pub fn retention(config: &qaward_kit::config::Config) -> Vec<(retention::Kind, u32)> {
    vec![
        retention::request_log(config),
        (DRAFTS, config.privacy.draft_days),
    ]
}

/// A draft whose cycle's deadline is past its days, with nothing else that names it (a
/// complaint or a department's opinion keeps it, with their own record).
const DRAFTS: retention::Kind = retention::Kind {
    name: "applications.draft",
    setting: "privacy.draft_days",
    expired: "SELECT a.id FROM applications a
              JOIN cycles c ON c.programme_id = a.programme_id AND c.year = a.year
              WHERE a.stage = 'DRAFT' AND c.deadline_micros < $1
                AND NOT EXISTS (SELECT 1 FROM complaints k WHERE k.application_id = a.id)
                AND NOT EXISTS (SELECT 1 FROM consultations o WHERE o.application_id = a.id)
              ORDER BY a.id LIMIT $2",
    purge: &[
        "INSERT INTO blob_deletions (sha256)
         SELECT DISTINCT sha256 FROM evidence WHERE application_id = $1
         ON CONFLICT (sha256) DO NOTHING",
        "DELETE FROM evidence WHERE application_id = $1",
        "DELETE FROM recommendations WHERE application_id = $1",
        "DELETE FROM applications WHERE id = $1",
    ],
};

/// Up to `limit` queued files no evidence row names any longer.
pub async fn blobs_to_delete(db: &Database, limit: i64) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT sha256 FROM blob_deletions b
         WHERE NOT EXISTS (SELECT 1 FROM evidence e WHERE e.sha256 = b.sha256)
         ORDER BY sha256 LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get("sha256"))
        .collect::<Result<_, _>>()?)
}

/// Forgets a queued file: it was removed from the store, or it is named again.
pub async fn blob_deleted(db: &Database, sha256: &str) -> Result<()> {
    sqlx::query("DELETE FROM blob_deletions WHERE sha256 = $1")
        .bind(sha256)
        .execute(db.pool())
        .await?;
    Ok(())
}
