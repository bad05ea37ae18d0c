//! Intake: draft, evidence by client streaming, submission with every reason, the
//! recommending unit's opinion, and the office's acceptance — each refused step naming its rule.

use qaward_kit::{auth::Role, outbox, testing};
use qaward_proto::qaward::applications::v1 as pb;
use sha2::{Digest, Sha256};
use tonic::Code;

use super::*;

const UNIT: &str = "qinglong-street";

fn rule_of(s: &tonic::Status) -> String {
    tonic_types::StatusExt::get_error_details(s)
        .error_info()
        .and_then(|i| i.metadata.get("rule").cloned())
        .unwrap_or_default()
}

pub(crate) async fn open_cycle(r: &mut Running) {
    programme(r).await;
    r.client
        .create_cycle(as_(
            &r.office,
            pb::CreateCycleRequest {
                parent: "programmes/yunyang".into(),
                cycle: Some(notice(2026)),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
}

pub(crate) fn app_name(code: &str) -> String {
    format!("programmes/yunyang/cycles/2026/applications/{code}")
}

pub(crate) async fn draft(
    r: &mut Running,
    code: &str,
    token: &str,
) -> Result<pb::Application, tonic::Status> {
    r.client
        .create_application(as_(
            token,
            pb::CreateApplicationRequest {
                parent: "programmes/yunyang/cycles/2026".into(),
                application: Some(pb::Application {
                    enterprise: format!("enterprises/{code}"),
                    application_form: "申报表：重庆云阳某某机械有限公司".into(),
                    organisation_profile: "企业概况……".into(),
                    self_assessment: "卓越绩效".repeat(15_001),
                    ..Default::default()
                }),
                request_id: format!("draft-{code}"),
            },
        ))
        .await
        .map(|r| r.into_inner())
}

async fn upload(
    r: &mut Running,
    token: &str,
    code: &str,
    content_type: &str,
    declared: i64,
    chunks: Vec<Vec<u8>>,
    request_id: &str,
) -> Result<pb::EvidenceFile, tonic::Status> {
    let mut messages = vec![pb::UploadEvidenceRequest {
        part: Some(pb::upload_evidence_request::Part::Header(
            pb::EvidenceHeader {
                parent: app_name(code),
                file_name: "质量手册（2025版）.pdf".into(),
                content_type: content_type.into(),
                size_bytes: declared,
                ..Default::default()
            },
        )),
        request_id: request_id.into(),
    }];
    messages.extend(chunks.into_iter().map(|c| pb::UploadEvidenceRequest {
        part: Some(pb::upload_evidence_request::Part::Chunk(c)),
        request_id: String::new(),
    }));
    r.client
        .upload_evidence(as_(token, tokio_stream::iter(messages)))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn r05_an_application_from_draft_to_acceptance() {
    for db in testing::backends("applications", &qaward_applications::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db).await;
        open_cycle(&mut r).await;
        let good = code("91500235MA5U7XXX0");
        enterprise(&mut r, &good, date(2015, 3, 1)).await.unwrap();
        let me = r.keys.token_for_org(&good, Role::Enterprise, &good);

        // Only the enterprise drafts its own application.
        let office = r.office.clone();
        let err = draft(&mut r, &good, &office).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{label}");
        let a = draft(&mut r, &good, &me).await.unwrap();
        assert_eq!(a.stage, pb::ApplicationStage::Draft as i32, "{label}");

        // Evidence: the bytes must be what the type says, and as many as declared.
        let pdf = b"%PDF-1.7\n% quality manual\n".to_vec();
        let err = upload(
            &mut r,
            &me,
            &good,
            "application/pdf",
            8,
            vec![b"\x89PNG\r\n\x1a\n".to_vec()],
            "u-0",
        )
        .await
        .unwrap_err();
        assert_eq!(fields(&err), ["header.content_type"], "{label}");
        let err = upload(
            &mut r,
            &me,
            &good,
            "application/pdf",
            10,
            vec![pdf.clone()],
            "u-1",
        )
        .await
        .unwrap_err();
        assert_eq!(fields(&err), ["header.size_bytes"], "{label}");
        let err = upload(&mut r, &me, &good, "text/html", 10, vec![], "u-2")
            .await
            .unwrap_err();
        assert_eq!(fields(&err), ["header.content_type"], "{label}");
        let (a1, a2) = pdf.split_at(9);
        let file = upload(
            &mut r,
            &me,
            &good,
            "application/pdf",
            pdf.len() as i64,
            vec![a1.to_vec(), a2.to_vec()],
            "u-3",
        )
        .await
        .unwrap();
        assert_eq!(file.sha256, hex::encode(Sha256::digest(&pdf)), "{label}");
        assert_eq!(file.kind, pb::EvidenceKind::Supporting as i32, "{label}");
        // Art. 14: a certificate names the county-level department that issued it.
        let certificate = |issued_by: &str, rid: &str| {
            vec![
                pb::UploadEvidenceRequest {
                    part: Some(pb::upload_evidence_request::Part::Header(
                        pb::EvidenceHeader {
                            parent: app_name(&good),
                            file_name: "安全生产证明.pdf".into(),
                            content_type: "application/pdf".into(),
                            size_bytes: pdf.len() as i64,
                            kind: pb::EvidenceKind::Certificate as i32,
                            issued_by: issued_by.into(),
                        },
                    )),
                    request_id: rid.into(),
                },
                pb::UploadEvidenceRequest {
                    part: Some(pb::upload_evidence_request::Part::Chunk(pdf.clone())),
                    request_id: String::new(),
                },
            ]
        };
        for (issuer, rid) in [("", "c-1"), ("重庆市应急管理局", "c-2")] {
            let err = r
                .client
                .upload_evidence(as_(&me, tokio_stream::iter(certificate(issuer, rid))))
                .await
                .unwrap_err();
            assert_eq!(fields(&err), ["header.issued_by"], "{label}: {issuer:?}");
        }
        let cert = r
            .client
            .upload_evidence(as_(
                &me,
                tokio_stream::iter(certificate("云阳县应急管理局", "c-3")),
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (cert.kind, cert.issued_by.as_str()),
            (pb::EvidenceKind::Certificate as i32, "云阳县应急管理局"),
            "{label}"
        );
        let stored = r
            .data_dir
            .path()
            .join("blobs")
            .join(&file.sha256[..2])
            .join(&file.sha256);
        assert_eq!(
            std::fs::read(stored).unwrap(),
            pdf,
            "{label}: the blob is whole under its hash"
        );

        // 60,004 characters of report: refused at submission with R-05 and the numbers.
        let err = r
            .client
            .submit_application(as_(
                &me,
                pb::SubmitApplicationRequest {
                    name: app_name(&good),
                    request_id: "s-1".into(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{label}");
        assert_eq!(rule_of(&err), "R-05");
        assert!(err.message().contains("60004"), "{}", err.message());
        r.client
            .update_application(as_(
                &me,
                pb::UpdateApplicationRequest {
                    application: Some(pb::Application {
                        name: app_name(&good),
                        self_assessment: "卓越绩效\n".repeat(15_000),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["self_assessment".into()],
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap();
        // A mask naming a field that cannot be updated is refused, naming the field, and
        // changes nothing (AIP-134).
        let err = r
            .client
            .update_application(as_(
                &me,
                pb::UpdateApplicationRequest {
                    application: Some(pb::Application {
                        name: app_name(&good),
                        self_assessment: "改写".into(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["self_assessment".into(), "stage".into()],
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{label}");
        assert_eq!(fields(&err), ["update_mask"], "{}", err.message());
        // No mask: only the fields the request populates change (AIP-134).
        let updated = r
            .client
            .update_application(as_(
                &me,
                pb::UpdateApplicationRequest {
                    application: Some(pb::Application {
                        name: app_name(&good),
                        organisation_profile: "重庆云阳的一家制造企业".into(),
                        ..Default::default()
                    }),
                    update_mask: None,
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(updated.organisation_profile, "重庆云阳的一家制造企业");
        assert_eq!(
            updated.self_assessment,
            "卓越绩效\n".repeat(15_000),
            "{label}: neither the refused mask nor the unmasked update touched it"
        );
        let a = r
            .client
            .submit_application(as_(
                &me,
                pb::SubmitApplicationRequest {
                    name: app_name(&good),
                    request_id: "s-2".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(a.stage, pb::ApplicationStage::Submitted as i32, "{label}");
        assert_eq!(
            a.evidence.len(),
            2,
            "{label}: the manual and the certificate"
        );
        // The applicant's notice and the requests to the unit and to the two departments of
        // Art. 13(1) are in the outbox, committed with it (the departments' were missing).
        assert_eq!(outbox::pending(&r.db).await.unwrap(), 4, "{label}");

        // Submitted: no more edits; not acceptable before the unit's opinion.
        let err = r
            .client
            .update_application(as_(
                &me,
                pb::UpdateApplicationRequest {
                    application: Some(pb::Application {
                        name: app_name(&good),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["organisation_profile".into()],
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(
            (err.code(), rule_of(&err).as_str()),
            (Code::FailedPrecondition, "R-05")
        );
        let accept = |to: pb::ApplicationStage| pb::TransitionApplicationRequest {
            name: app_name(&good),
            to_stage: to as i32,
            reason: "材料齐全".into(),
            request_id: String::new(),
        };
        let err = r
            .client
            .transition_application(as_(&r.office, accept(pb::ApplicationStage::Accepted)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{label}");

        // Another unit cannot sign; the enterprise's own unit supports it.
        let sign = |opinion: pb::Opinion| pb::SignRecommendationRequest {
            name: app_name(&good),
            opinion: opinion as i32,
            reasons: "该企业质量管理水平突出，同意推荐".into(),
            request_id: String::new(),
            attested: all_conditions(),
        };
        let stranger = r
            .keys
            .token_for_org("unit-x", Role::RecommendingUnit, "other-street");
        let err = r
            .client
            .sign_recommendation(as_(&stranger, sign(pb::Opinion::Support)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{label}");
        let unit = r.keys.token_for_org("unit-1", Role::RecommendingUnit, UNIT);
        // support without attesting every condition is refused, naming them.
        let mut partial = sign(pb::Opinion::Support);
        partial.attested = vec![pb::Condition::PolicyCompliance as i32];
        let err = r
            .client
            .sign_recommendation(as_(&unit, partial))
            .await
            .unwrap_err();
        assert_eq!(rule_of(&err), "R-03", "{label}");
        assert!(err.message().contains("诚信"), "{}", err.message());
        let mut bad = sign(pb::Opinion::Support);
        bad.attested = vec![99];
        let err = r
            .client
            .sign_recommendation(as_(&unit, bad))
            .await
            .unwrap_err();
        assert_eq!(fields(&err), ["attested[0]"], "{label}");
        let a = r
            .client
            .sign_recommendation(as_(&unit, sign(pb::Opinion::Support)))
            .await
            .unwrap()
            .into_inner();
        // Art. 13(1): the county's environment and safety departments sign too (Yunyang's
        // default); until they have, the application waits for them.
        assert_eq!(a.stage, pb::ApplicationStage::Submitted as i32, "{label}");
        assert_eq!(a.recommendations.len(), 1);
        assert_eq!(a.recommendations[0].attested, all_conditions());
        let mut a = a;
        for d in ["生态环境局", "应急管理局"] {
            let t = r.keys.token_for_org("d", Role::Department, d);
            a = r
                .client
                .sign_recommendation(as_(
                    &t,
                    pb::SignRecommendationRequest {
                        attested: Vec::new(),
                        ..sign(pb::Opinion::Support)
                    },
                ))
                .await
                .unwrap()
                .into_inner();
        }
        assert_eq!(a.stage, pb::ApplicationStage::Recommended as i32, "{label}");
        assert_eq!(a.recommendations.len(), 3);

        let a = r
            .client
            .transition_application(as_(&r.office, accept(pb::ApplicationStage::Accepted)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(a.stage, pb::ApplicationStage::Accepted as i32, "{label}");
        assert_eq!(a.last_decision.unwrap().rule, "R-05");
        // The acceptance is announced to the applicant, through the outbox.
        assert_eq!(outbox::pending(&r.db).await.unwrap(), 5, "{label}");
        // The office's board: one row, accepted, waiting for its materials group; the
        // enterprise may not read it.
        let board = r
            .client
            .get_cycle_board(as_(
                &r.office,
                pb::GetCycleBoardRequest {
                    name: "programmes/yunyang/cycles/2026".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(board.rows.len(), 1, "{label}");
        assert_eq!(board.rows[0].stage, pb::ApplicationStage::Accepted as i32);
        assert_eq!(board.rows[0].open_deadlines, ["抽取资料评审组（R-12）"]);
        let err = r
            .client
            .get_cycle_board(as_(
                &me,
                pb::GetCycleBoardRequest {
                    name: "programmes/yunyang/cycles/2026".into(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
        // The unit reads it; a stranger does not.
        r.client
            .get_application(as_(
                &unit,
                pb::GetApplicationRequest {
                    name: app_name(&good),
                },
            ))
            .await
            .unwrap();
        let err = r
            .client
            .get_application(as_(
                &stranger,
                pb::GetApplicationRequest {
                    name: app_name(&good),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
    }
}

#[tokio::test]
async fn r02_r01_an_ineligible_or_late_application_is_refused_with_its_rule() {
    for db in testing::backends("applications", &qaward_applications::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db).await;
        open_cycle(&mut r).await;
        let elsewhere = code("91500101MA5U7XXX0");
        enterprise(&mut r, &elsewhere, date(2015, 3, 1))
            .await
            .unwrap();
        let them = r
            .keys
            .token_for_org(&elsewhere, Role::Enterprise, &elsewhere);
        draft(&mut r, &elsewhere, &them).await.unwrap();
        let pdf = b"%PDF-1.4 x".to_vec();
        upload(
            &mut r,
            &them,
            &elsewhere,
            "application/pdf",
            pdf.len() as i64,
            vec![pdf],
            "u",
        )
        .await
        .unwrap();
        let err = r
            .client
            .submit_application(as_(
                &them,
                pb::SubmitApplicationRequest {
                    name: app_name(&elsewhere),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(rule_of(&err), "R-02", "{label}: {}", err.message());
        assert!(err.message().contains("500101"), "{}", err.message());
        assert!(
            err.message().contains("R-05"),
            "every reason is told: {}",
            err.message()
        );

        // The board shows the refused draft still waiting for its submission.
        let board = r
            .client
            .get_cycle_board(as_(
                &r.office,
                pb::GetCycleBoardRequest {
                    name: "programmes/yunyang/cycles/2026".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            board.rows[0].open_deadlines,
            ["提交申报材料：2026年6月30日前（R-01）"],
            "{label}"
        );
        // After the deadline no application is opened.
        let late = code("91500235MA5U7YYY0");
        enterprise(&mut r, &late, date(2015, 3, 1)).await.unwrap();
        r.clock.set(time::macros::datetime!(2026-06-30 17:00:01 +8));
        let mine = r.keys.token_for_org(&late, Role::Enterprise, &late);
        let err = draft(&mut r, &late, &mine).await.unwrap_err();
        assert_eq!(
            (err.code(), rule_of(&err).as_str()),
            (Code::FailedPrecondition, "R-01"),
            "{label}"
        );
    }
}

/// The S3 server's process, stopped when the test ends, passed or not.
struct S3Server(std::process::Child);

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An S3-compatible server (s3s-fs, a real S3 implementation over HTTP with SigV4
/// verification) on a free loopback port, storing under `root`; `None` when
/// `QAWARD_TEST_S3_SERVER` does not name its binary (CI installs it and sets it).
fn s3_server(root: &std::path::Path, secret: &str) -> Option<(S3Server, u16)> {
    let Ok(binary) = std::env::var("QAWARD_TEST_S3_SERVER") else {
        eprintln!("SKIPPED the S3 blob store: QAWARD_TEST_S3_SERVER is not set");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::create_dir_all(root.join("evidence")).unwrap();
    let child = S3Server(
        std::process::Command::new(binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", "qaward", "--secret-key", secret])
            .arg(root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the S3 server"),
    );
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((child, port));
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("the S3 server did not listen on {port}");
}

#[tokio::test]
async fn r05_evidence_goes_to_an_s3_compatible_store_whole_or_not_at_all() {
    let store_root = tempfile::tempdir().unwrap();
    let Some((_server, port)) = s3_server(store_root.path(), "s3-secret") else {
        return;
    };
    for db in testing::backends("applications", &qaward_applications::MIGRATIONS).await {
        let label = db.label;
        let prefix = format!("{label}/");
        let s3 = |secret: &str| qaward_kit::config::S3 {
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: "evidence".into(),
            access_key_id: "qaward".into(),
            secret_access_key: qaward_kit::config::Secret::new(secret.to_string()),
            prefix: prefix.clone(),
            ..Default::default()
        };
        let good = code("91500235MA5U7YY01");
        let pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3 evidence kept in the bucket\n".to_vec();

        // With the wrong secret the store refuses the upload: the call fails and nothing is
        // recorded, not even a partial file.
        let wrong = s3("not-the-secret");
        let mut r = start_with(db, move |c| c.blobs.s3 = wrong).await;
        open_cycle(&mut r).await;
        enterprise(&mut r, &good, date(2015, 3, 1)).await.unwrap();
        let me = r.keys.token_for_org("e", Role::Enterprise, &good);
        draft(&mut r, &good, &me).await.unwrap();
        let err = upload(
            &mut r,
            &me,
            &good,
            "application/pdf",
            pdf.len() as i64,
            vec![pdf.clone()],
            "",
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), Code::Internal, "{label}: {err:?}");
        let a = r
            .client
            .get_application(as_(
                &me,
                pb::GetApplicationRequest {
                    name: app_name(&good),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(a.evidence.is_empty(), "{label}");
        // Nothing was spooled on the local disk (the upload streams to the store), and the
        // store keeps no temporary object either.
        assert_eq!(
            std::fs::read_dir(r.data_dir.path().join("blobs/tmp"))
                .map(|d| d.count())
                .unwrap_or(0),
            0,
            "{label}: nothing spooled"
        );
        assert_eq!(
            std::fs::read_dir(store_root.path().join("evidence").join(&prefix).join("tmp"))
                .map(|d| d.count())
                .unwrap_or(0),
            0,
            "{label}: no temporary object left in the bucket"
        );

        // With the right one the file is in the bucket under its hash, and only there.
        let store = qaward_applications::blobs::BlobStore::from_config(&Config {
            blobs: qaward_kit::config::Blobs {
                s3: s3("s3-secret"),
            },
            ..Config::default()
        })
        .unwrap();
        let db = r.db;
        let right = s3("s3-secret");
        let mut r = start_with(db, move |c| c.blobs.s3 = right).await;
        let me = r.keys.token_for_org("e", Role::Enterprise, &good);
        let file = upload(
            &mut r,
            &me,
            &good,
            "application/pdf",
            pdf.len() as i64,
            vec![pdf.clone()],
            "",
        )
        .await
        .unwrap();
        assert_eq!(file.sha256, hex::encode(Sha256::digest(&pdf)), "{label}");
        let object = store_root
            .path()
            .join("evidence")
            .join(&prefix)
            .join(&file.sha256[..2])
            .join(&file.sha256);
        assert_eq!(
            std::fs::read(&object).unwrap(),
            pdf,
            "{label}: the server holds it whole"
        );
        assert_eq!(store.read(&file.sha256).await.unwrap(), Some(pdf.clone()));
        assert!(
            !r.data_dir
                .path()
                .join("blobs")
                .join(&file.sha256[..2])
                .exists(),
            "{label}"
        );
        // The same content again is stored once, recorded twice.
        upload(
            &mut r,
            &me,
            &good,
            "application/pdf",
            pdf.len() as i64,
            vec![pdf.clone()],
            "",
        )
        .await
        .unwrap();
        let a = r
            .client
            .get_application(as_(
                &me,
                pb::GetApplicationRequest {
                    name: app_name(&good),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(a.evidence.len(), 2, "{label}");
        assert_eq!(
            std::fs::read_dir(object.parent().unwrap()).unwrap().count(),
            1,
            "{label}"
        );

        // A file larger than one part (10 MiB) streams up as a multipart upload, in pieces as
        // it arrives, and is whole under its hash once done.
        let big: Vec<u8> = (0..23 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let mut w = store.writer(&format!("big-{label}")).await.unwrap();
        for chunk in big.chunks(1024 * 1024) {
            w.write(chunk).await.unwrap();
        }
        let (sha, size) = w.finish().await.unwrap();
        assert_eq!(size, big.len() as u64);
        assert_eq!(sha, hex::encode(Sha256::digest(&big)));
        assert_eq!(
            store.read(&sha).await.unwrap().as_deref(),
            Some(&big[..]),
            "{label}"
        );
        assert_eq!(
            std::fs::read_dir(store_root.path().join("evidence").join(&prefix).join("tmp"))
                .map(|d| d.count())
                .unwrap_or(0),
            0,
            "{label}: the temporary object is gone"
        );
    }
}

#[tokio::test]
async fn r05_a_draft_field_past_twice_its_limit_is_refused_naming_it_and_nothing_is_saved() {
    for db in testing::backends("applications", &qaward_applications::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db).await;
        open_cycle(&mut r).await;
        let good = code("91500235MA5U7XXX0");
        enterprise(&mut r, &good, date(2015, 3, 1)).await.unwrap();
        let me = r.keys.token_for_org(&good, Role::Enterprise, &good);
        // The profile's limit is 3,000 characters: a draft may hold 6,000, not 6,001 (it once
        // held 1,000,000).
        let create = |profile: String, request_id: &str| pb::CreateApplicationRequest {
            parent: "programmes/yunyang/cycles/2026".into(),
            application: Some(pb::Application {
                enterprise: format!("enterprises/{good}"),
                organisation_profile: profile,
                ..Default::default()
            }),
            request_id: request_id.into(),
        };
        let err = r
            .client
            .create_application(as_(&me, create("质".repeat(6_001), "big")))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{label}");
        assert_eq!(
            fields(&err),
            ["application.organisation_profile"],
            "{label}"
        );
        assert!(err.message().contains("6000"), "{label}: {}", err.message());
        let a = r
            .client
            .create_application(as_(&me, create("质".repeat(6_000), "fits")))
            .await
            .unwrap()
            .into_inner();
        // An update past the self-assessment's bound (2 × 60,000) changes nothing.
        let err = r
            .client
            .update_application(as_(
                &me,
                pb::UpdateApplicationRequest {
                    application: Some(pb::Application {
                        name: a.name.clone(),
                        organisation_profile: "短".into(),
                        self_assessment: "a".repeat(120_001),
                        ..Default::default()
                    }),
                    update_mask: None,
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(fields(&err), ["application.self_assessment"], "{label}");
        let now = r
            .client
            .get_application(as_(
                &me,
                pb::GetApplicationRequest {
                    name: a.name.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(now.organisation_profile, "质".repeat(6_000), "{label}");
        assert!(now.self_assessment.is_empty(), "{label}");
    }
}

#[tokio::test]
async fn r54_a_draft_never_submitted_is_purged_with_its_files_past_its_days_after_the_deadline() {
    use qaward_kit::retention;
    use sqlx::Row;
    for db in testing::backends("applications", &qaward_applications::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db).await;
        open_cycle(&mut r).await;
        let (idle, busy) = (code("91500235MA5U7XXX0"), code("91500235MA5U7YYY0"));
        let mut files = Vec::new();
        for (c, content) in [
            (&idle, &b"%PDF-1.7 idle"[..]),
            (&busy, &b"%PDF-1.7 busy"[..]),
        ] {
            enterprise(&mut r, c, date(2015, 3, 1)).await.unwrap();
            let me = r.keys.token_for_org(c, Role::Enterprise, c);
            draft(&mut r, c, &me).await.unwrap();
            let f = upload(
                &mut r,
                &me,
                c,
                "application/pdf",
                content.len() as i64,
                vec![content.to_vec()],
                &format!("u-{c}"),
            )
            .await
            .unwrap();
            files.push(f.sha256);
        }
        let blob = |sha: &str| r.data_dir.path().join("blobs").join(&sha[..2]).join(sha);
        assert!(blob(&files[0]).exists() && blob(&files[1]).exists());
        // A complaint names the second draft: it stays with the case.
        sqlx::query(
            "INSERT INTO complaints (id, application_id, complainant, text, evidence, outcome, investigation, created_micros)
             SELECT 'c1', id, 'public-1', '举报', '[]', 'PENDING', '', 0 FROM applications WHERE credit_code = $1",
        )
        .bind(&busy)
        .execute(r.db.db.pool())
        .await
        .unwrap();
        let kinds = qaward_applications::store::retention(&Config::default());
        let (drafts, days) = kinds
            .iter()
            .find(|(k, _)| k.name == "applications.draft")
            .copied()
            .unwrap();
        assert_eq!(days, 90, "the default, privacy.draft_days");
        let deadline = notice(2026).deadline.unwrap().seconds * 1_000_000;
        let purge = |before: i64| {
            retention::purge(
                &r.db.db,
                "applications",
                "qaward-local",
                NOW,
                &drafts,
                before,
                100,
            )
        };
        // Before the cut-off reaches the deadline, nothing goes.
        assert_eq!(purge(deadline).await.unwrap(), 0, "{label}");
        assert_eq!(purge(deadline + 1).await.unwrap(), 1, "{label}");
        let get = |c: &str| {
            let mut client = r.client.clone();
            let name = app_name(c);
            let office = r.office.clone();
            async move {
                client
                    .get_application(as_(&office, pb::GetApplicationRequest { name }))
                    .await
            }
        };
        assert_eq!(
            get(&idle).await.unwrap_err().code(),
            Code::NotFound,
            "{label}"
        );
        // Its file goes with the sweep; the other's stays while its row names it.
        let blobs = qaward_applications::blobs::BlobStore::new(r.data_dir.path()).unwrap();
        assert_eq!(blobs.sweep(&r.db.db).await.unwrap(), 1, "{label}");
        assert!(!blob(&files[0]).exists(), "{label}");
        assert!(blob(&files[1]).exists(), "{label}");
        assert_eq!(
            get(&busy).await.unwrap().into_inner().stage,
            pb::ApplicationStage::Draft as i32
        );
        assert_eq!(
            blobs.sweep(&r.db.db).await.unwrap(),
            0,
            "{label}: a rerun finds nothing"
        );
        // On the record, with its rule and setting.
        qaward_kit::audit::sequence_all(&r.db.db).await.unwrap();
        let reason: String = sqlx::query(
            "SELECT reason FROM audit_log WHERE action = 'retention.purge' AND resource = 'applications.draft'",
        )
        .fetch_one(r.db.db.pool())
        .await
        .unwrap()
        .get("reason");
        assert_eq!(
            reason, "R-54: kept no longer than privacy.draft_days",
            "{label}"
        );
    }
}
