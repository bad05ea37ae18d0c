//! Issue 22, item 3: an enterprise fetches the audit records of its own application with their
//! inclusion proofs in a signed checkpoint, and checks them; another enterprise, or a name that
//! is not an application, gets nothing.

use qaward_kit::{
    audit::{self, AuditRecord, Checkpoint, log},
    auth::Role,
    merkle::{self, Hash},
    testing,
};
use qaward_proto::qaward::common::v1 as common;
use tonic::Code;

use super::{
    as_, code, date, enterprise, fields,
    intake::{app_name, draft, open_cycle},
    start,
};

#[tokio::test]
async fn an_enterprise_proves_the_records_of_its_own_application_and_of_no_other() {
    for db in testing::backends("applications", &qaward_applications::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db).await;
        open_cycle(&mut r).await;
        let (mine, theirs) = (code("91500235MA5U7XXX0"), code("91500235MA5U7YYY0"));
        for c in [&mine, &theirs] {
            enterprise(&mut r, c, date(2015, 3, 1)).await.unwrap();
        }
        let me = r.keys.token_for_org(&mine, Role::Enterprise, &mine);
        let them = r.keys.token_for_org(&theirs, Role::Enterprise, &theirs);
        draft(&mut r, &mine, &me).await.unwrap();
        draft(&mut r, &theirs, &them).await.unwrap();

        let asked = |resource: String, seq: i64| common::ProveAuditRecordsRequest { resource, seq };
        let proofs = r
            .client
            .prove_audit_records(as_(&me, asked(app_name(&mine), 0)))
            .await
            .unwrap()
            .into_inner();
        assert!(!proofs.records.is_empty(), "{label}");
        let c = Checkpoint::parse(&proofs.checkpoint.unwrap().text).unwrap();
        assert_eq!(c.origin, "qaward/applications", "{label}");
        for p in &proofs.records {
            assert!(
                p.resource.starts_with(&app_name(&mine)),
                "{label}: {}",
                p.resource
            );
            let record = AuditRecord {
                actor: p.actor.clone(),
                role: p.role.clone(),
                action: p.action.clone(),
                resource: p.resource.clone(),
                reason: p.reason.clone(),
                detail: serde_json::Value::Null,
            };
            assert_eq!(
                audit::row_hash(&p.prev_hash, p.at_micros, &record, &p.detail),
                p.row_hash
            );
            let path: Vec<Hash> = p
                .inclusion_proof
                .iter()
                .map(|h| hex::decode(h).unwrap().try_into().unwrap())
                .collect();
            let leaf = log::leaf(p.seq, &p.row_hash);
            assert!(
                merkle::verify_inclusion(&leaf, p.seq as u64 - 1, c.size, &path, &c.root),
                "{label}"
            );
        }

        // Another enterprise's application, the whole programme, a record by number: refused.
        let e = r
            .client
            .prove_audit_records(as_(&them, asked(app_name(&mine), 0)))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{label}");
        let e = r
            .client
            .prove_audit_records(as_(&me, asked("programmes/yunyang".into(), 0)))
            .await
            .unwrap_err();
        assert_eq!(
            (e.code(), fields(&e)),
            (Code::InvalidArgument, vec!["resource".to_string()]),
            "{label}"
        );
        let e = r
            .client
            .prove_audit_records(as_(&me, asked(String::new(), proofs.records[0].seq)))
            .await
            .unwrap_err();
        assert_eq!(
            (e.code(), fields(&e)),
            (Code::InvalidArgument, vec!["resource".to_string()]),
            "{label}"
        );

        // The office of the programme reaches both.
        let office = r.office.clone();
        let all = r
            .client
            .prove_audit_records(as_(
                &office,
                asked("programmes/yunyang/cycles/2026".into(), 0),
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(
            all.records
                .iter()
                .any(|p| p.resource.starts_with(&app_name(&theirs))),
            "{label}"
        );
    }
}
