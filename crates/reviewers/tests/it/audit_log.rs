//! Issue 22, item 3: the reviewers' audit log by API. The office proves its programme's records
//! against a checkpoint signed by the deployment's key, and checks each with nothing but
//! docs/audit.md's hashing; another programme's office reaches none of them; anyone reads the
//! checkpoint and proves that the log only grew.

use qaward_kit::{
    audit::{self, AuditRecord, Checkpoint, log},
    auth::Role,
    merkle::{self, Hash},
    testing,
};
use qaward_proto::qaward::{common::v1 as common, reviewers::v1 as pb};
use tonic::Code;

use super::{as_, set_up, start};

fn unhex(h: &str) -> Hash {
    hex::decode(h).unwrap().try_into().unwrap()
}

/// Checks every record as an outside verifier would: its content hashes to its row hash, its
/// leaf is in the signed checkpoint's tree.
fn check(proofs: &common::AuditRecordProofs, key: &audit::AuditPublicKey) -> Checkpoint {
    let c = Checkpoint::parse(&proofs.checkpoint.as_ref().unwrap().text).unwrap();
    c.check(key).unwrap();
    for r in &proofs.records {
        let record = AuditRecord {
            actor: r.actor.clone(),
            role: r.role.clone(),
            action: r.action.clone(),
            resource: r.resource.clone(),
            reason: r.reason.clone(),
            detail: serde_json::Value::Null,
        };
        assert_eq!(
            audit::row_hash(&r.prev_hash, r.at_micros, &record, &r.detail),
            r.row_hash
        );
        let proof: Vec<Hash> = r.inclusion_proof.iter().map(|h| unhex(h)).collect();
        let leaf = log::leaf(r.seq, &r.row_hash);
        assert!(
            merkle::verify_inclusion(&leaf, r.seq as u64 - 1, c.size, &proof, &c.root),
            "record {}",
            r.seq
        );
    }
    c
}

/// The code and the field an INVALID_ARGUMENT names ("invalid {field}: …").
fn code_and_field(e: &tonic::Status) -> (Code, String) {
    let field = e
        .message()
        .strip_prefix("invalid ")
        .and_then(|m| m.split_once(':'))
        .map(|(f, _)| f.to_string())
        .unwrap_or_default();
    (e.code(), field)
}

#[tokio::test]
async fn the_office_proves_its_programmes_records_and_no_other_programme_reaches_them() {
    for db in testing::backends("reviewers", &qaward_reviewers::MIGRATIONS).await {
        let mut r = start(db).await;
        let office = set_up(&mut r, 8).await;
        let public = r.audit.public();
        let anyone = r.keys.token_for("passer-by", Role::Public, "");
        let other = r.keys.token_for("office-9", Role::Office, "wanzhou");
        let label = r.db.label.to_string();

        let asked = |resource: &str, seq: i64| common::ProveAuditRecordsRequest {
            resource: resource.into(),
            seq,
        };
        let proofs = r
            .client
            .prove_audit_records(as_(&office, asked("programmes/yunyang", 0)))
            .await
            .unwrap()
            .into_inner();
        assert!(!proofs.records.is_empty(), "{label}");
        assert!(
            proofs
                .records
                .iter()
                .all(|p| p.resource.starts_with("programmes/yunyang")),
            "{label}"
        );
        let first = check(&proofs, &public);

        // One record by its number, against the same checkpoint.
        let seq = proofs.records[0].seq;
        let one = r
            .client
            .prove_audit_records(as_(&office, asked("", seq)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(one.records.len(), 1, "{label}");
        assert_eq!(
            check(&one, &public),
            first,
            "{label}: no new checkpoint while the log did not grow"
        );

        // Another programme's office reaches none of it, by name or by number.
        for req in [asked("programmes/yunyang", 0), asked("", seq)] {
            let e = r
                .client
                .prove_audit_records(as_(&other, req))
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::PermissionDenied, "{label}");
        }
        // Bad input names its field.
        for (req, field) in [
            (asked("", 0), "resource"),
            (asked("programmes/yunyang", 3), "seq"),
            (asked("", -1), "seq"),
        ] {
            let e = r
                .client
                .prove_audit_records(as_(&office, req))
                .await
                .unwrap_err();
            assert_eq!(
                code_and_field(&e),
                (Code::InvalidArgument, field.to_string()),
                "{label}"
            );
        }
        let e = r
            .client
            .prove_audit_records(as_(&office, asked("", 1_000_000)))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound, "{label}");
        // The public may not ask for records at all.
        let e = r
            .client
            .prove_audit_records(as_(&anyone, asked("programmes/yunyang", 0)))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{label}");

        // Anyone reads the checkpoint (the same while the log did not grow), and after the log
        // grows, proves it only grew.
        let got = r
            .client
            .get_audit_checkpoint(as_(&anyone, common::GetAuditCheckpointRequest {}))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(Checkpoint::parse(&got.text).unwrap(), first, "{label}");
        r.client
            .create_programme(as_(
                &r.keys.token_for("office-9", Role::Office, "wanzhou"),
                pb::CreateProgrammeRequest {
                    programme: Some(pb::DrawTenant {
                        display_name: "万州区质量奖".into(),
                        ..Default::default()
                    }),
                    programme_id: "wanzhou".into(),
                    request_id: "p-9".into(),
                },
            ))
            .await
            .unwrap();
        let later = r
            .client
            .prove_audit_records(as_(&other, asked("programmes/wanzhou", 0)))
            .await
            .unwrap()
            .into_inner();
        let second = check(&later, &public);
        assert!(
            second.size > first.size,
            "{label}: a checkpoint that covers the new record was taken"
        );
        let c = r
            .client
            .prove_audit_consistency(as_(
                &anyone,
                common::ProveAuditConsistencyRequest {
                    first_size: first.size as i64,
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let proof: Vec<Hash> = c.proof.iter().map(|h| unhex(h)).collect();
        assert_eq!(unhex(&c.first_root), first.root, "{label}");
        let to = Checkpoint::parse(&c.checkpoint.unwrap().text).unwrap();
        assert!(
            merkle::verify_consistency(first.size, to.size, &first.root, &to.root, &proof),
            "{label}"
        );
        for bad in [0, to.size as i64 + 5] {
            let e = r
                .client
                .prove_audit_consistency(as_(
                    &anyone,
                    common::ProveAuditConsistencyRequest { first_size: bad },
                ))
                .await
                .unwrap_err();
            assert_eq!(
                code_and_field(&e),
                (Code::InvalidArgument, "first_size".to_string()),
                "{label}"
            );
        }
    }
}
