//! The sections about what is kept at rest: personal data's field keys and retention,
//! and the key that signs the audit log's checkpoints (issue 22).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Personal data at rest: the field cipher and where its keys are.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Privacy {
    /// `SM4-GCM` (default) or `AES-256-GCM`: the algorithm of the keys a new key file gets.
    pub algorithm: crate::fields::Algorithm,
    /// The field key file; empty: `{data_dir}/keys/fields.json`. A KMS- or HSM-mounted path is
    /// the production choice.
    pub key_file: Option<PathBuf>,
    /// Days a mutating call's stored answer (the request log) is kept for its retries, then
    /// purged, on the record.
    pub request_log_days: u32,
    /// Days a message's text and address (each delivery's, the inbox's, a notification's
    /// variables and recipients) are kept once it is done with; then blanked, the delivery's
    /// record staying.
    pub message_days: u32,
    /// Days a delivery's record (who was sent what event, when, with what outcome) is kept;
    /// then it and its notification are deleted. At least `message_days`.
    pub delivery_days: u32,
    /// Days after its cycle's application deadline that a draft never submitted is kept; then
    /// it, its evidence and their files are deleted (R-54; R-05: it can no longer be submitted).
    pub draft_days: u32,
}

impl Default for Privacy {
    fn default() -> Self {
        Privacy {
            algorithm: crate::fields::Algorithm::Sm4Gcm,
            key_file: None,
            request_log_days: 90,
            message_days: 365,
            delivery_days: 1095,
            draft_days: 90,
        }
    }
}

impl Privacy {
    pub fn key_file_in(&self, data_dir: &std::path::Path) -> PathBuf {
        self.key_file
            .clone()
            .unwrap_or_else(|| data_dir.join("keys").join("fields.json"))
    }
}

/// The audit log's signed checkpoints (issue 22, item 3).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuditLog {
    /// The Ed25519 key (PKCS#8) that signs the log's checkpoints; empty:
    /// `{data_dir}/keys/audit-key.pk8`, made on first start with its public half beside it
    /// (`audit-key.pub`). Kept outside the database; a KMS- or HSM-mounted path is the production
    /// choice. The same file for every process of a deployment.
    pub key_file: Option<PathBuf>,
    /// Minutes between scheduled checkpoints (taken only when the log grew). At least 1.
    pub checkpoint_minutes: u32,
}

impl Default for AuditLog {
    fn default() -> Self {
        AuditLog {
            key_file: None,
            checkpoint_minutes: 60,
        }
    }
}

impl AuditLog {
    pub fn key_file_in(&self, data_dir: &std::path::Path) -> PathBuf {
        self.key_file
            .clone()
            .unwrap_or_else(|| data_dir.join("keys").join("audit-key.pk8"))
    }
}
