//! The municipal registry is shared by every programme's draws: only its keeper
//! writes it; any programme reads it. Another programme's identity provider is not the keeper.

use qaward_kit::{
    auth::Role,
    testing::{self, reason},
};
use tonic::Code;

use super::{applicant, as_, date, pb, set_up, start};

#[tokio::test]
async fn another_programmes_office_reads_the_registry_but_cannot_change_it() {
    for db in testing::backends("reviewers", &qaward_reviewers::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db).await;
        let county = set_up(&mut r, 6).await;
        let flag = r
            .client
            .create_flag(as_(
                &county,
                pb::CreateFlagRequest {
                    parent: "reviewers/CQ-0002".into(),
                    flag: Some(pb::Flag {
                        kind: pb::FlagKind::Disciplinary as i32,
                        start_date: date(2026, 1, 1),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let other = r.keys.other_token("office-1", Role::Office, "other");

        // It reads what its draws need.
        let listed = r
            .client
            .list_reviewers(as_(&other, pb::ListReviewersRequest::default()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(listed.reviewers.len(), 6, "{label}");

        // It writes nothing every programme relies on.
        let refusals = [
            r.client
                .import_reviewers(as_(
                    &other,
                    pb::ImportReviewersRequest {
                        format: pb::ImportFormat::Csv as i32,
                        encoding: pb::TextEncoding::Utf8 as i32,
                        content: super::registry_csv(1).into_bytes(),
                        request_id: String::new(),
                    },
                ))
                .await
                .map(drop),
            r.client
                .create_relation(as_(
                    &other,
                    pb::CreateRelationRequest {
                        parent: "reviewers/CQ-0001".into(),
                        relation: Some(pb::Relation {
                            enterprise_code: applicant(),
                            kind: pb::RelationKind::Shareholding as i32,
                            start_date: date(2021, 1, 1),
                            ..Default::default()
                        }),
                        request_id: String::new(),
                    },
                ))
                .await
                .map(drop),
            r.client
                .create_flag(as_(
                    &other,
                    pb::CreateFlagRequest {
                        parent: "reviewers/CQ-0003".into(),
                        flag: Some(pb::Flag {
                            kind: pb::FlagKind::Complaint as i32,
                            start_date: date(2026, 1, 1),
                            ..Default::default()
                        }),
                        request_id: String::new(),
                    },
                ))
                .await
                .map(drop),
            r.client
                .resolve_flag(as_(
                    &other,
                    pb::ResolveFlagRequest {
                        name: flag.name.clone(),
                        note: "closed by another programme".into(),
                        request_id: String::new(),
                    },
                ))
                .await
                .map(drop),
        ];
        for (i, result) in refusals.iter().enumerate() {
            let s = result.as_ref().expect_err("refused");
            assert_eq!(
                (s.code(), reason(s).as_str()),
                (Code::PermissionDenied, "NOT_REGISTRY_KEEPER"),
                "{label}: write {i}: {s:?}"
            );
        }
        // Nothing changed: the flag is still open, no relation was recorded.
        let flags = r
            .client
            .list_flags(as_(
                &county,
                pb::ListFlagsRequest {
                    parent: "reviewers/CQ-0002".into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(flags.flags.iter().all(|f| !f.resolved), "{label}");
        let relations = r
            .client
            .list_relations(as_(
                &county,
                pb::ListRelationsRequest {
                    parent: "reviewers/CQ-0001".into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(relations.relations.is_empty(), "{label}");

        // Its identity provider cannot make it the county's office either.
        let claimed = r.keys.other_token("office-1", Role::Office, "yunyang");
        let s = r
            .client
            .list_reviewers(as_(&claimed, pb::ListReviewersRequest::default()))
            .await
            .unwrap_err();
        assert_eq!(
            (s.code(), reason(&s).as_str()),
            (Code::Unauthenticated, "ISSUER_MAY_NOT_ASSERT"),
            "{label}"
        );
    }
}
