//! The reviewers service through its gRPC API, on SQLite and (when configured) PostgreSQL.

mod audit_log;
mod chain_migration;
mod data_rights;
mod entropy;
mod events;
mod redraws;
mod registry_keeper;

use std::sync::Arc;

use pb::reviewer_service_client::ReviewerServiceClient;
use qaward_kit::{
    auth::Role,
    clock::{ManualClock, SeededRandomness},
    cn,
    config::Config,
    server::{ServiceContext, ServiceHost},
    testing::{self, TestDb, TestKeys},
};
use qaward_proto::qaward::{common::v1::Date, reviewers::v1 as pb};
use tonic::{Code, Request, transport::Channel};

struct Running {
    client: ReviewerServiceClient<Channel>,
    keys: TestKeys,
    clock: Arc<ManualClock>,
    fields: Arc<qaward_kit::fields::FieldKeys>,
    audit: Arc<qaward_kit::audit::AuditKey>,
    db: TestDb,
}

async fn start(db: TestDb) -> Running {
    let keys = TestKeys::new();
    let clock = Arc::new(ManualClock::new(
        time::macros::datetime!(2026-02-20 09:00 UTC),
    ));
    let ctx = ServiceContext {
        config: Arc::new(Config::default()),
        verifier: keys.verifier.clone(),
        clock: clock.clone(),
        randomness: Arc::new(SeededRandomness::new(7)),
        audit: std::sync::Arc::new(qaward_kit::audit::AuditKey::ephemeral()),
        in_process: Default::default(),
        fields: std::sync::Arc::new(qaward_kit::fields::FieldKeys::ephemeral(
            qaward_kit::fields::Algorithm::Sm4Gcm,
        )),
    };
    let fields = ctx.fields.clone();
    let audit = ctx.audit.clone();
    let host = ServiceHost::new("reviewers", &ctx.config.server, ctx.verifier.clone()).add_service(
        pb::reviewer_service_server::ReviewerServiceServer::new(
            qaward_reviewers::ReviewersApi::new(db.db.clone(), ctx),
        ),
    );
    let channel = testing::serve_on_loopback(host).await;
    Running {
        client: ReviewerServiceClient::new(channel),
        keys,
        clock,
        fields,
        audit,
        db,
    }
}

fn as_<T>(token: &str, m: T) -> Request<T> {
    let mut r = Request::new(m);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

fn date(y: i32, m: i32, d: i32) -> Option<Date> {
    Some(Date {
        year: y,
        month: m,
        day: d,
    })
}

fn applicant() -> String {
    cn::with_check("91500235MA5U7XXX0").unwrap()
}

/// A registry of `n` reviewers, every third with speciality C13, every fourth leader-qualified.
fn registry_csv(n: usize) -> String {
    let mut s = "姓名,手机号,身份证号,证书编号,证书有效期起,证书有效期止,专业,工作单位统一社会信用代码,组长资格,状态\n".to_string();
    for i in 0..n {
        let spec = if i % 3 == 0 { "C13" } else { "C26" };
        let leader = if i % 4 == 0 { "是" } else { "否" };
        s.push_str(&format!("评审员{i},138{i:08},11010519491231002X,CQ-{i:04},2024-01-01,2028-12-31,{spec},,{leader},在册\n"));
    }
    s
}

async fn set_up(r: &mut Running, n: usize) -> String {
    let office = r.keys.token_for("office-1", Role::Office, "yunyang");
    r.client
        .create_programme(as_(
            &office,
            pb::CreateProgrammeRequest {
                programme: Some(pb::DrawTenant {
                    display_name: "云阳县县长质量奖".into(),
                    ..Default::default()
                }),
                programme_id: "yunyang".into(),
                request_id: "p-1".into(),
            },
        ))
        .await
        .unwrap();
    let csv = registry_csv(n);
    let (bytes, _, _) = encoding_rs::GB18030.encode(&csv);
    let report = r
        .client
        .import_reviewers(as_(
            &office,
            pb::ImportReviewersRequest {
                format: pb::ImportFormat::Csv as i32,
                encoding: pb::TextEncoding::Gb18030 as i32,
                content: bytes.to_vec(),
                request_id: "imp-1".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.created as usize, n);
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    office
}

fn draw_request(size: i32, backups: i32, from: i32, to: i32) -> pb::Draw {
    pb::Draw {
        purpose: pb::DrawPurpose::MaterialsGroup as i32,
        enterprise_codes: vec![applicant()],
        size,
        backups: Some(backups),
        specialities: vec![pb::SpecialityRequirement {
            speciality: "C13".into(),
            min_members: 1,
        }],
        window_start: date(2026, 3, from),
        window_end: date(2026, 3, to),
        entropy_source: "beacon round 4501234".into(),
        ..Default::default()
    }
}

/// A test secret for `party` of a draw: 256 bits from `seed`.
fn secret(seed: &str, party: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!("{seed}/{party}")))
}

/// The programme of a draw's name.
fn programme_of(name: &str) -> String {
    name.split('/').nth(1).unwrap_or_default().to_string()
}

/// The office's and the supervisor's tokens for the programme of `name`.
fn parties(keys: &TestKeys, name: &str) -> [(String, &'static str); 2] {
    let programme = programme_of(name);
    [
        (
            keys.token_for("office-1", Role::Office, &programme),
            "office",
        ),
        (
            keys.token_for("supervisor-1", Role::Supervisor, &programme),
            "supervisor",
        ),
    ]
}

/// every part of a draw but the supervisor's reveal: both commit, the office reveals.
async fn all_but_last_reveal(
    client: &mut ReviewerServiceClient<Channel>,
    keys: &TestKeys,
    name: &str,
    seed: &str,
) -> Result<(), tonic::Status> {
    let [office, supervisor] = parties(keys, name);
    for (token, party) in [&office, &supervisor] {
        client
            .commit_draw_entropy(as_(
                token,
                pb::CommitDrawEntropyRequest {
                    name: name.into(),
                    party: party.to_string(),
                    commitment: qaward_reviewers::domain::entropy::commitment(
                        name,
                        party,
                        &secret(seed, party),
                    ),
                    request_id: String::new(),
                },
            ))
            .await?;
    }
    client
        .reveal_draw_entropy(last_reveal(keys, name, seed, 0))
        .await?;
    Ok(())
}

/// The reveal of the office (`which` 0) or of the supervisor (1), whose reveal is the last.
fn last_reveal(
    keys: &TestKeys,
    name: &str,
    seed: &str,
    which: usize,
) -> Request<pb::RevealDrawEntropyRequest> {
    let (token, party) = parties(keys, name)[which].clone();
    as_(
        &token,
        pb::RevealDrawEntropyRequest {
            name: name.into(),
            party: party.into(),
            secret: secret(seed, party),
            request_id: String::new(),
        },
    )
}

/// the office and the supervisor commit and reveal; the last reveal executes the draw.
async fn execute(
    r: &mut Running,
    name: &str,
    seed: &str,
) -> Result<pb::RevealDrawEntropyResponse, tonic::Status> {
    all_but_last_reveal(&mut r.client, &r.keys, name, seed).await?;
    Ok(r.client
        .reveal_draw_entropy(last_reveal(&r.keys, name, seed, 1))
        .await?
        .into_inner())
}

#[tokio::test]
async fn a_draw_is_recused_recorded_sealed_verifiable_and_replaces_from_backups() {
    for db in testing::backends("reviewers", &qaward_reviewers::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db).await;
        let office = set_up(&mut r, 30).await;

        // CQ-0003 holds shares in the applicant; it must never be drawn.
        r.client
            .create_relation(as_(
                &office,
                pb::CreateRelationRequest {
                    parent: "reviewers/CQ-0003".into(),
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
            .unwrap();
        let check = r
            .client
            .check_conflicts(as_(
                &office,
                pb::CheckConflictsRequest {
                    reviewer: "reviewers/CQ-0003".into(),
                    enterprise_codes: vec![applicant()],
                    on_date: date(2026, 3, 2),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(!check.may_review, "{label}");
        assert_eq!(
            (
                check.reasons[0].code.as_str(),
                check.reasons[0].rule.as_str()
            ),
            ("SHAREHOLDING", "R-41")
        );

        let prepared = r
            .client
            .prepare_draw(as_(
                &office,
                pb::PrepareDrawRequest {
                    parent: "programmes/yunyang".into(),
                    draw: Some(draw_request(5, 3, 2, 6)),
                    request_id: "d-1".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(prepared.state, pb::DrawState::Prepared as i32);
        // the pool is the C13 reviewers (every third of 30), less the shareholder.
        assert_eq!(prepared.pool_size, 9, "{label}");
        assert!(
            prepared
                .exclusions
                .iter()
                .any(|e| e.reviewer == "reviewers/CQ-0003" && e.code == "SHAREHOLDING")
        );

        let answer = execute(&mut r, &prepared.name, "7f3a").await.unwrap();
        let executed = answer.draw.unwrap();
        // The answer carries the seated panel: no GetDraw and GetPanel after it.
        let seated = answer.panel.expect("the panel the draw seated");
        assert_eq!(seated.name, executed.panel);
        assert_eq!(seated.draw, executed.name);
        assert_eq!(seated.backups_remaining, 3);
        assert!(!seated.sealed, "the office sees its members");
        let seats: Vec<&str> = seated.members.iter().map(|m| m.reviewer.as_str()).collect();
        assert_eq!(seats.len(), 5, "{seats:?}");
        assert_eq!(
            seated.members.iter().filter(|m| m.leader).count(),
            1,
            "one leader seated"
        );
        assert!(seated.members.iter().all(|m| m.respond_by.is_some()));
        assert_eq!(executed.members.len(), 5);
        assert_eq!(executed.backup_order.len(), 3);
        assert!(!executed.members.contains(&"reviewers/CQ-0003".to_string()));
        // no silent redraw: an executed draw takes no new entropy, and executing it again
        // answers with the same draw.
        let again = execute(&mut r, &prepared.name, "other").await.unwrap_err();
        assert_eq!(again.code(), Code::FailedPrecondition);
        let same = r
            .client
            .execute_draw(as_(
                &office,
                pb::ExecuteDrawRequest {
                    name: prepared.name.clone(),
                    entropy: String::new(),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(same.draw.unwrap().members, executed.members, "{label}");
        let verified = r
            .client
            .verify_draw(as_(
                &office,
                pb::VerifyDrawRequest {
                    name: prepared.name.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(verified.matches, "{label}: {}", verified.message);
        assert_eq!(verified.replayed_members, executed.members);

        // sealed until release — a drawn reviewer sees only their own seat.
        let member = executed.members[0].clone();
        let reviewer = r.keys.token_for(&member, Role::Reviewer, "yunyang");
        let view = r
            .client
            .get_panel(as_(
                &reviewer,
                pb::GetPanelRequest {
                    name: executed.panel.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(view.sealed);
        assert_eq!(view.members.len(), 1);
        assert_eq!(view.members[0].reviewer, member.clone());
        let full = r
            .client
            .get_panel(as_(
                &office,
                pb::GetPanelRequest {
                    name: executed.panel.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(full.members.len(), 5);

        // Declining hands the seat to the first backup that keeps the needs, never a new roll.
        let declined = r
            .client
            .respond_to_assignment(as_(
                &reviewer,
                pb::RespondToAssignmentRequest {
                    panel: executed.panel.clone(),
                    accept: false,
                    reason: "出差".into(),
                    request_id: String::new(),
                    reviewer: member.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(declined.members.len(), 1, "still sealed for the reviewer");
        let after = r
            .client
            .get_panel(as_(
                &office,
                pb::GetPanelRequest {
                    name: executed.panel.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let gone = after.members.iter().find(|m| m.reviewer == member).unwrap();
        assert_eq!(gone.state, pb::AssignmentState::Declined as i32);
        assert!(executed.backup_order.contains(&gone.replaced_by), "{label}");
        assert_eq!(after.backups_remaining, 2);

        // Double booking: a second draw over the same days cannot take the booked members.
        let second = r
            .client
            .prepare_draw(as_(
                &office,
                pb::PrepareDrawRequest {
                    parent: "programmes/yunyang".into(),
                    draw: Some(draw_request(3, 1, 4, 5)),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let booked: Vec<&pb::Exclusion> = second
            .exclusions
            .iter()
            .filter(|e| e.code == "BOOKED")
            .collect();
        assert_eq!(booked.len(), 5, "{label}: {:?}", second.exclusions);
    }
}

#[tokio::test]
async fn shortages_and_bad_input_are_refused_and_change_nothing() {
    for db in testing::backends("reviewers", &qaward_reviewers::MIGRATIONS).await {
        let mut r = start(db).await;
        let office = set_up(&mut r, 6).await;
        let mut d = draw_request(3, 0, 2, 6);
        d.specialities[0].min_members = 3;
        let e = r
            .client
            .prepare_draw(as_(
                &office,
                pb::PrepareDrawRequest {
                    parent: "programmes/yunyang".into(),
                    draw: Some(d),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition);
        assert!(
            e.message()
                .contains("2 eligible reviewers with speciality C13 after recusal, 3 needed"),
            "{}",
            e.message()
        );

        let mut d = draw_request(6, 0, 2, 6);
        d.enterprise_codes = vec!["91500235MA5U7XXX0Z".into()];
        let e = r
            .client
            .prepare_draw(as_(
                &office,
                pb::PrepareDrawRequest {
                    parent: "programmes/yunyang".into(),
                    draw: Some(d),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);

        // Another programme's office sees nothing of this one.
        let other = r.keys.token_for("office-2", Role::Office, "wanzhou");
        let e = r
            .client
            .list_draws(as_(
                &other,
                pb::ListDrawsRequest {
                    parent: "programmes/yunyang".into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);

        // Personal data is masked for roles not entitled to it.
        let reviewer = r.keys.token_for("CQ-0001", Role::Reviewer, "yunyang");
        let own = r
            .client
            .get_reviewer(as_(
                &reviewer,
                pb::GetReviewerRequest {
                    name: "reviewers/CQ-0001".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(own.mobile, "13800000001");
        // at rest the personal data is sealed with SM4-GCM, the plaintext nowhere in
        // the row; a row an older version stored in clear is sealed by the start-up pass.
        let stored = |id: &'static str| {
            let pool = r.db.db.pool().clone();
            async move {
                let row = sqlx::query("SELECT mobile, resident_id FROM reviewers WHERE id = $1")
                    .bind(id)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                use sqlx::Row;
                (
                    row.try_get::<String, _>(0).unwrap(),
                    row.try_get::<String, _>(1).unwrap(),
                )
            }
        };
        let (mobile, resident) = stored("CQ-0001").await;
        assert!(
            mobile.starts_with("enc1:sm4-gcm:k1:") && !mobile.contains("13800000001"),
            "{mobile}"
        );
        // The resident ID is not kept at all: a keyed index and its last four.
        assert!(
            resident.starts_with("idx1:") && !resident.contains("11010519"),
            "{resident}"
        );
        assert_eq!(r.fields.open(&mobile).unwrap(), "13800000001");
        sqlx::query("UPDATE reviewers SET mobile = '13800000002' WHERE id = 'CQ-0002'")
            .execute(r.db.db.pool())
            .await
            .unwrap();
        let reseal = || {
            qaward_kit::reseal::reseal(
                &r.db.db,
                &r.fields,
                "reviewers",
                "qaward-local",
                time::OffsetDateTime::now_utc(),
                &qaward_reviewers::store::SEALED[..1],
                2,
            )
        };
        assert_eq!(
            reseal().await.unwrap().resealed,
            1,
            "only the plaintext row"
        );
        let (mobile, _) = stored("CQ-0002").await;
        assert_eq!(r.fields.open(&mobile).unwrap(), "13800000002");
        assert_eq!(
            reseal().await.unwrap().resealed,
            0,
            "a rerun finds nothing left"
        );
        sqlx::query("UPDATE reviewers SET resident_id = '110105194912310029' WHERE id = 'CQ-0002'")
            .execute(r.db.db.pool())
            .await
            .unwrap();
        let minimise = || qaward_reviewers::store::minimise_resident_ids(&r.db.db, &r.fields, 2);
        assert_eq!(minimise().await.unwrap(), 1, "only the ID kept in clear");
        let (_, resident) = stored("CQ-0002").await;
        assert!(
            resident.starts_with("idx1:") && resident.ends_with(":0029"),
            "{resident}"
        );
        assert_eq!(minimise().await.unwrap(), 0);
        // masked by default, the office and the supervisor included (it was shown in
        // clear to them before); revealed one reviewer at a time, for a stated purpose.
        let staff = r
            .client
            .get_reviewer(as_(
                &office,
                pb::GetReviewerRequest {
                    name: "reviewers/CQ-0001".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (staff.mobile.as_str(), staff.resident_id.contains('*')),
            ("138****0001", true)
        );
        let reveal = |purpose: &str| pb::RevealReviewerRequest {
            name: "reviewers/CQ-0001".into(),
            purpose: purpose.into(),
            request_id: String::new(),
        };
        let e = r
            .client
            .reveal_reviewer(as_(&office, reveal(" ")))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "a purpose is stated");
        let shown = r
            .client
            .reveal_reviewer(as_(&office, reveal("核对注册信息")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(shown.mobile, "13800000001", "the registry keeper");
        assert!(
            shown.resident_id.starts_with("**************"),
            "the ID is not kept, so not revealed: {}",
            shown.resident_id
        );
        // Another programme's office never drew this reviewer: nothing is revealed.
        let stranger = r.keys.other_token("office-9", Role::Office, "other");
        let e = r
            .client
            .reveal_reviewer(as_(&stranger, reveal("联系评审员")))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
        let e = r
            .client
            .get_reviewer(as_(
                &reviewer,
                pb::GetReviewerRequest {
                    name: "reviewers/CQ-0002".into(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);

        // A file that is not a registry changes nothing.
        let e = r
            .client
            .import_reviewers(as_(
                &office,
                pb::ImportReviewersRequest {
                    format: pb::ImportFormat::Csv as i32,
                    encoding: 0,
                    content: b"a,b\n1,2\n".to_vec(),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        let listed = r
            .client
            .list_reviewers(as_(
                &office,
                pb::ListReviewersRequest {
                    page_size: 100,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(listed.reviewers.len(), 6);
    }
}

#[tokio::test]
async fn concurrent_draws_never_book_one_reviewer_twice() {
    // Both draws are prepared over the same pool before either executes, then executed at
    // once: the bookings table's key lets each reviewer be booked once per day, so one draw
    // wins each contested reviewer and the other is recorded as a failed attempt.
    for db in testing::backends("reviewers", &qaward_reviewers::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db).await;
        let office = set_up(&mut r, 15).await; // 5 with C13
        let mut names = Vec::new();
        for i in 0..2 {
            let d = r
                .client
                .prepare_draw(as_(
                    &office,
                    pb::PrepareDrawRequest {
                        parent: "programmes/yunyang".into(),
                        draw: Some(draw_request(3, 1, 2 + i, 6)),
                        request_id: String::new(),
                    },
                ))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(d.pool_size, 5);
            names.push(d.name);
        }
        // Every part but the last reveal, then the last reveals all at once: each executes.
        for (i, name) in names.iter().enumerate() {
            all_but_last_reveal(&mut r.client, &r.keys, name, &format!("e{i}"))
                .await
                .unwrap();
        }
        let runs: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut client = r.client.clone();
                let req = last_reveal(&r.keys, name, &format!("e{i}"), 1);
                tokio::spawn(async move { client.reveal_draw_entropy(req).await })
            })
            .collect();
        let mut members = Vec::new();
        for run in runs {
            match run.await.unwrap() {
                Ok(d) => members.extend(d.into_inner().draw.unwrap().members),
                Err(e) => assert!(
                    matches!(e.code(), Code::Aborted | Code::FailedPrecondition),
                    "{label}: {e:?}"
                ),
            }
        }
        let mut unique = members.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            members.len(),
            "{label}: someone was booked twice: {members:?}"
        );
        // Every attempt is on record: executed or failed, none left prepared.
        let draws = r
            .client
            .list_draws(as_(
                &office,
                pb::ListDrawsRequest {
                    parent: "programmes/yunyang".into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(
            draws
                .draws
                .iter()
                .all(|d| d.state != pb::DrawState::Prepared as i32),
            "{label}"
        );
    }
}

#[tokio::test]
async fn a_missed_deadline_or_a_late_conflict_hands_the_seat_to_the_next_backup() {
    for db in testing::backends("reviewers", &qaward_reviewers::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db).await;
        let office = set_up(&mut r, 30).await;
        let prepare = pb::PrepareDrawRequest {
            parent: "programmes/yunyang".into(),
            draw: Some(draw_request(3, 3, 2, 6)),
            request_id: "same-1".into(),
        };
        let d = r
            .client
            .prepare_draw(as_(&office, prepare.clone()))
            .await
            .unwrap()
            .into_inner();
        // A retried prepare with the same request_id is the same draw, not a second one.
        let again = r
            .client
            .prepare_draw(as_(&office, prepare))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(again.name, d.name);
        let all = r
            .client
            .list_draws(as_(
                &office,
                pb::ListDrawsRequest {
                    parent: "programmes/yunyang".into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(all.draws.len(), 1, "{label}");

        let x = execute(&mut r, &d.name, "42").await.unwrap().draw.unwrap();
        // Executing it again gets the first answer, not a refusal and not another draw.
        let retry = r
            .client
            .execute_draw(as_(
                &office,
                pb::ExecuteDrawRequest {
                    name: d.name.clone(),
                    entropy: String::new(),
                    request_id: "exec-1".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .draw
            .unwrap();
        assert_eq!(retry.members, x.members, "{label}");
        let (first, second) = (x.members[0].clone(), x.members[1].clone());
        let replace = |who: &str, reason: pb::ReplaceReason| pb::ReplaceMemberRequest {
            panel: x.panel.clone(),
            reviewer: who.to_string(),
            reason: reason as i32,
            note: String::new(),
            request_id: String::new(),
        };

        // Before the deadline a silent member cannot be replaced for missing it.
        let early = r
            .client
            .replace_member(as_(
                &office,
                replace(&first, pb::ReplaceReason::MissedDeadline),
            ))
            .await
            .unwrap_err();
        assert_eq!(early.code(), Code::FailedPrecondition);
        r.clock.advance(time::Duration::hours(73));
        let p = r
            .client
            .replace_member(as_(
                &office,
                replace(&first, pb::ReplaceReason::MissedDeadline),
            ))
            .await
            .unwrap()
            .into_inner();
        let m = p.members.iter().find(|m| m.reviewer == first).unwrap();
        assert_eq!(m.state, pb::AssignmentState::Expired as i32, "{label}");
        assert_eq!(m.replaced_by, x.backup_order[0]);
        // The called backup has its own time to answer, counted from the call.
        let called = x.backup_order[0].clone();
        let called_token = r.keys.token_for(&called, Role::Reviewer, "yunyang");
        r.client
            .respond_to_assignment(as_(
                &called_token,
                pb::RespondToAssignmentRequest {
                    panel: x.panel.clone(),
                    accept: true,
                    reason: String::new(),
                    request_id: String::new(),
                    reviewer: called.clone(),
                },
            ))
            .await
            .unwrap();

        // A late conflict needs a recorded conflict; then the next backup takes the seat.
        let none = r
            .client
            .replace_member(as_(
                &office,
                replace(&second, pb::ReplaceReason::LateConflict),
            ))
            .await
            .unwrap_err();
        assert_eq!(none.code(), Code::FailedPrecondition);
        r.client
            .create_relation(as_(
                &office,
                pb::CreateRelationRequest {
                    parent: second.clone(),
                    relation: Some(pb::Relation {
                        enterprise_code: applicant(),
                        kind: pb::RelationKind::Consultancy as i32,
                        start_date: date(2025, 6, 1),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap();
        let p = r
            .client
            .replace_member(as_(
                &office,
                replace(&second, pb::ReplaceReason::LateConflict),
            ))
            .await
            .unwrap()
            .into_inner();
        let m = p.members.iter().find(|m| m.reviewer == second).unwrap();
        assert_eq!(m.state, pb::AssignmentState::Replaced as i32, "{label}");
        assert!(
            m.decline_reason.contains("CONSULTANCY"),
            "{}",
            m.decline_reason
        );
        assert_eq!(m.replaced_by, x.backup_order[1]);
        assert_eq!(p.backups_remaining, 1);

        // R-45 (issue 22, item 5): both replacements are in the replayable record, in order,
        // and replay as docs/draw.md §5 gives them; a record naming another backup is caught.
        let record = r
            .client
            .get_draw(as_(
                &office,
                pb::GetDrawRequest {
                    name: d.name.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .record_json;
        let json: serde_json::Value = serde_json::from_str(&record).unwrap();
        let bare = |n: &str| n.trim_start_matches("reviewers/").to_string();
        let got: Vec<(String, String, String)> = json["replacements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                let f = |k: &str| x[k].as_str().unwrap().to_string();
                (f("leaving"), f("reason"), f("joining"))
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    bare(&first),
                    "MISSED_DEADLINE".into(),
                    bare(&x.backup_order[0])
                ),
                (
                    bare(&second),
                    "LATE_CONFLICT".into(),
                    bare(&x.backup_order[1])
                ),
            ],
            "{label}"
        );
        let checked = qaward_reviewers::verify_record(&record).unwrap();
        assert!(checked.matches, "{label}: {}", checked.message);
        assert!(
            checked.message.contains("2 replacement(s)"),
            "{}",
            checked.message
        );
        let mut forged = json.clone();
        forged["replacements"][1]["joining"] = forged["replacements"][0]["joining"].clone();
        let caught = qaward_reviewers::verify_record(&forged.to_string()).unwrap();
        assert!(!caught.matches, "{label}: a forged replacement passed");
    }
}

#[tokio::test]
async fn a_registry_change_between_draws_is_seen_by_the_next_draw() {
    // Draws reuse registry facts only while the registry is unchanged.
    for db in testing::backends("reviewers", &qaward_reviewers::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db).await;
        let office = set_up(&mut r, 30).await;
        let prepare = || pb::PrepareDrawRequest {
            parent: "programmes/yunyang".into(),
            draw: Some(draw_request(3, 1, 2, 6)),
            request_id: String::new(),
        };
        let first = r
            .client
            .prepare_draw(as_(&office, prepare()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(first.pool_size, 10, "{label}");
        r.client
            .create_flag(as_(
                &office,
                pb::CreateFlagRequest {
                    parent: "reviewers/CQ-0006".into(),
                    flag: Some(pb::Flag {
                        kind: pb::FlagKind::Disciplinary as i32,
                        start_date: date(2026, 1, 1),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap();
        let second = r
            .client
            .prepare_draw(as_(&office, prepare()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(second.pool_size, 9, "{label}");
        assert!(
            second
                .exclusions
                .iter()
                .any(|e| e.reviewer == "reviewers/CQ-0006"
                    && e.code == "PENDING_DISCIPLINARY"
                    && e.rule == "R-41")
        );
    }
}

/// What a second service on the same database, with nothing cached, prepares for `draw`.
async fn prepared_afresh(r: &Running, office: &str, draw: pb::PrepareDrawRequest) -> pb::Draw {
    fresh_service(r)
        .await
        .prepare_draw(as_(office, draw))
        .await
        .unwrap()
        .into_inner()
}

/// A second service on the same database with an empty registry cache: what a draw reads when
/// nothing is cached.
async fn fresh_service(r: &Running) -> ReviewerServiceClient<Channel> {
    let ctx = ServiceContext {
        config: Arc::new(Config::default()),
        verifier: r.keys.verifier.clone(),
        clock: r.clock.clone(),
        // Its own ids: never one the first service made.
        randomness: Arc::new(qaward_kit::clock::OsRandomness),
        audit: std::sync::Arc::new(qaward_kit::audit::AuditKey::ephemeral()),
        in_process: Default::default(),
        fields: r.fields.clone(),
    };
    let host = ServiceHost::new("reviewers", &ctx.config.server, ctx.verifier.clone()).add_service(
        pb::reviewer_service_server::ReviewerServiceServer::new(
            qaward_reviewers::ReviewersApi::new(r.db.db.clone(), ctx),
        ),
    );
    ReviewerServiceClient::new(testing::serve_on_loopback(host).await)
}

/// Issue 26, item 4: after a registry change a draw re-reads the changed reviewers alone and
/// patches its cached registry. What it then draws from must be exactly what a service with
/// nothing cached reads: after a flag, its resolution, a relation, an import that changes one
/// reviewer's speciality, retires another and adds a third.
#[tokio::test]
async fn r40_a_cached_registry_brought_up_to_date_draws_from_what_a_fresh_read_gives() {
    for db in testing::backends("reviewers", &qaward_reviewers::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db).await;
        let office = set_up(&mut r, 30).await;
        let prepare = || pb::PrepareDrawRequest {
            parent: "programmes/yunyang".into(),
            draw: Some(draw_request(3, 1, 2, 6)),
            request_id: String::new(),
        };
        let cached = |d: &pb::Draw| (d.pool_hash.clone(), d.pool_size, d.exclusions.clone());
        let first = r
            .client
            .prepare_draw(as_(&office, prepare()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(first.pool_size, 10, "{label}");
        let flag = r
            .client
            .create_flag(as_(
                &office,
                pb::CreateFlagRequest {
                    parent: "reviewers/CQ-0006".into(),
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
        r.client
            .create_relation(as_(
                &office,
                pb::CreateRelationRequest {
                    parent: "reviewers/CQ-0009".into(),
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
            .unwrap();
        let after = r
            .client
            .prepare_draw(as_(&office, prepare()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            after.pool_size, 8,
            "{label}: one flagged, one a shareholder"
        );
        assert_eq!(
            cached(&after),
            cached(&prepared_afresh(&r, &office, prepare()).await),
            "{label}"
        );

        r.client
            .resolve_flag(as_(
                &office,
                pb::ResolveFlagRequest {
                    name: flag.name.clone(),
                    request_id: String::new(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap();
        // The registry's next export: CQ-0003 moves to C26, CQ-0012 retires, CQ-0030 joins (C13).
        let mut csv = registry_csv(31);
        csv = csv
            .replace(
                "CQ-0003,2024-01-01,2028-12-31,C13",
                "CQ-0003,2024-01-01,2028-12-31,C26",
            )
            .replace(
                "CQ-0012,2024-01-01,2028-12-31,C13,,是,在册",
                "CQ-0012,2024-01-01,2028-12-31,C13,,是,退出",
            );
        let (bytes, _, _) = encoding_rs::GB18030.encode(&csv);
        let report = r
            .client
            .import_reviewers(as_(
                &office,
                pb::ImportReviewersRequest {
                    format: pb::ImportFormat::Csv as i32,
                    encoding: pb::TextEncoding::Gb18030 as i32,
                    content: bytes.to_vec(),
                    request_id: "imp-2".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (report.created, report.updated),
            (1, 2),
            "{label}: {report:?}"
        );
        let last = r
            .client
            .prepare_draw(as_(&office, prepare()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            last.pool_size, 8,
            "{label}: CQ-0006 back, CQ-0003 and CQ-0012 gone, CQ-0030 new"
        );
        assert_eq!(
            cached(&last),
            cached(&prepared_afresh(&r, &office, prepare()).await),
            "{label}"
        );
    }
}

#[tokio::test]
async fn a_reviewers_record_holds_training_certificates_assessments_and_conduct() {
    // Art. 6(3), Rev. Art. 5-6, R-42: the office and a panel's leader keep the record; a
    // serious violation suspends the reviewer from the next draw; the reviewer reads their own.
    for db in testing::backends("reviewers", &qaward_reviewers::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db).await;
        let office = set_up(&mut r, 15).await;
        let prepared = r
            .client
            .prepare_draw(as_(
                &office,
                pb::PrepareDrawRequest {
                    parent: "programmes/yunyang".into(),
                    draw: Some(draw_request(3, 1, 2, 6)),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let drawn = execute(&mut r, &prepared.name, "e")
            .await
            .unwrap()
            .draw
            .unwrap();
        let id = |m: &str| m.trim_start_matches("reviewers/").to_string();
        let leader = id(&drawn.leader);
        let member = drawn
            .members
            .iter()
            .map(|m| id(m))
            .find(|m| *m != leader)
            .unwrap();
        let leader_token = r.keys.token(&leader, Role::Reviewer);
        let member_token = r.keys.token(&member, Role::Reviewer);
        let record = |token: &str, kind: pb::reviewer_event::Kind| {
            let mut client = r.client.clone();
            let (token, parent) = (token.to_string(), format!("reviewers/{member}"));
            async move {
                client
                    .record_reviewer_event(as_(
                        &token,
                        pb::RecordReviewerEventRequest {
                            parent,
                            event: Some(pb::ReviewerEvent {
                                date: date(2026, 3, 3),
                                kind: Some(kind),
                                ..Default::default()
                            }),
                            request_id: String::new(),
                        },
                    ))
                    .await
            }
        };
        use pb::reviewer_event::Kind;
        let shown = |number: &str| {
            Kind::CertificateShown(pb::CertificateShown {
                panel: drawn.panel.clone(),
                certificate_number: number.into(),
            })
        };
        let assessment = Kind::Assessment(pb::Assessment {
            panel: drawn.panel.clone(),
            rating: pb::AssessmentRating::Good as i32,
            reasons: "评分依据充分，意见具体。".into(),
            ..Default::default()
        });

        // Training: the office's.
        let training = Kind::Training(pb::Training {
            course: "GB/T 19580 卓越绩效评价准则".into(),
            hours: 16,
        });
        assert_eq!(
            record(&leader_token, training.clone())
                .await
                .unwrap_err()
                .code(),
            Code::PermissionDenied,
            "{label}"
        );
        record(&office, training).await.unwrap();
        // The certificate shown at the review: the leader records it; a wrong number is R-42.
        let e = record(&leader_token, shown("CQ-9999")).await.unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{label}");
        assert!(e.message().contains("CQ-9999"), "{}", e.message());
        record(&leader_token, shown(&member.to_lowercase()))
            .await
            .unwrap();
        // The leader's assessment of a member; a member does not assess the leader.
        let a = record(&leader_token, assessment.clone())
            .await
            .unwrap()
            .into_inner();
        match a.kind {
            Some(Kind::Assessment(x)) => assert_eq!(x.assessor, pb::Assessor::Leader as i32),
            other => panic!("{other:?}"),
        }
        let e = record(&member_token, assessment.clone()).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{label}");
        // Bad input: every field named, nothing recorded.
        let e = record(
            &office,
            Kind::Violation(pb::ConductViolation {
                duty: 0,
                description: String::new(),
                serious: true,
                handling: "x".into(),
            }),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{label}");
        // A serious breach of confidentiality (Rev. Art. 6(7)) suspends the reviewer.
        let v = record(
            &office,
            Kind::Violation(pb::ConductViolation {
                duty: pb::ConductDuty::Confidentiality as i32,
                description: "评审期间向申报企业透露评审组内部讨论情况。".into(),
                serious: true,
                handling: "暂停评审资格，报评选委员会办公室处理。".into(),
            }),
        )
        .await
        .unwrap()
        .into_inner();
        assert!(
            v.suspension
                .starts_with(&format!("reviewers/{member}/flags/")),
            "{label}"
        );

        // The reviewer reads their own year, suspended from the day of the violation; another
        // reviewer does not read it.
        r.clock.set(time::macros::datetime!(2026-03-07 09:00 UTC));
        let year = r
            .client
            .get_reviewer_record(as_(
                &member_token,
                pb::GetReviewerRecordRequest {
                    name: format!("reviewers/{member}/years/2026"),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(year.events.len(), 4, "{label}");
        assert_eq!(year.training_hours, 16, "{label}");
        assert!(year.suspended, "{label}");
        let e = r
            .client
            .get_reviewer_record(as_(
                &leader_token,
                pb::GetReviewerRecordRequest {
                    name: format!("reviewers/{member}/years/2026"),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{label}");

        // The next draw leaves the suspended reviewer out, and says why.
        let next = r
            .client
            .prepare_draw(as_(
                &office,
                pb::PrepareDrawRequest {
                    parent: "programmes/yunyang".into(),
                    draw: Some(draw_request(3, 1, 10, 12)),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(
            next.exclusions
                .iter()
                .any(|x| x.reviewer.ends_with(&member) && x.code == "PENDING_SUSPENSION"),
            "{label}: {:?}",
            next.exclusions
        );
    }
}

#[tokio::test]
async fn r40_the_years_groups_are_drawn_from_the_reviewers_appointed_for_it() {
    // Rev. Art. 2-3: the office draws the year's reviewers from the registry (recorded,
    // replayable, with recusal); those who accept are appointed, a decline calls the next
    // backup; every review of the year is then drawn from the appointees alone.
    for db in testing::backends("reviewers", &qaward_reviewers::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db).await;
        let office = set_up(&mut r, 15).await;
        let draw = |d: pb::Draw| {
            let mut client = r.client.clone();
            let office = office.clone();
            let keys = &r.keys;
            async move {
                let prepared = client
                    .prepare_draw(as_(
                        &office,
                        pb::PrepareDrawRequest {
                            parent: "programmes/yunyang".into(),
                            draw: Some(d),
                            request_id: String::new(),
                        },
                    ))
                    .await
                    .unwrap()
                    .into_inner();
                all_but_last_reveal(&mut client, keys, &prepared.name, "year")
                    .await
                    .unwrap();
                let executed = client
                    .reveal_draw_entropy(last_reveal(keys, &prepared.name, "year", 1))
                    .await
                    .unwrap()
                    .into_inner()
                    .draw
                    .unwrap();
                (prepared, executed)
            }
        };
        // The registry has five C13 specialists: four appointed, one backup.
        let appointment = pb::Draw {
            purpose: pb::DrawPurpose::AnnualAppointment as i32,
            size: 4,
            backups: Some(1),
            window_start: date(2026, 1, 1),
            window_end: date(2026, 12, 31),
            ..draw_request(4, 2, 1, 1)
        };
        let (_, year) = draw(appointment).await;
        assert_eq!(year.members.len(), 4, "{label}");
        let id = |m: &str| m.trim_start_matches("reviewers/").to_string();
        let respond = |who: String, accept: bool| {
            let mut client = r.client.clone();
            let token = r.keys.token(&who, Role::Reviewer);
            let panel = year.panel.clone();
            async move {
                client
                    .respond_to_assignment(as_(
                        &token,
                        pb::RespondToAssignmentRequest {
                            panel,
                            accept,
                            reason: if accept {
                                String::new()
                            } else {
                                "年度工作安排冲突".into()
                            },
                            request_id: String::new(),
                            reviewer: format!("reviewers/{who}"),
                        },
                    ))
                    .await
                    .unwrap()
                    .into_inner()
            }
        };
        let mut appointees: Vec<String> = year.members[..3].iter().map(|m| id(m)).collect();
        for who in appointees.clone() {
            respond(who, true).await;
        }
        // The fourth declines: the first backup is called and accepts.
        respond(id(&year.members[3]), false).await;
        let backup = id(&year.backup_order[0]);
        respond(backup.clone(), true).await;
        appointees.push(backup);

        // A materials group in March: drawn from the four appointees only, the one who
        // declined excluded for that reason — on the record, so the replay gives the same group.
        let (prepared, group) = draw(draw_request(3, 1, 2, 6)).await;
        let not_appointed = prepared
            .exclusions
            .iter()
            .filter(|x| x.code == "NOT_APPOINTED" && x.rule == "R-40")
            .count();
        assert_eq!(not_appointed, 1, "{label}: {:?}", prepared.exclusions);
        assert_eq!(prepared.pool_size, 4, "{label}");
        for m in &group.members {
            assert!(
                appointees.contains(&id(m)),
                "{label}: {m} was not appointed"
            );
        }
        // The appointment booked no days: its members were free for the group. A review in
        // the next year is not bound by this year's appointment.
        let mut next_year = draw_request(3, 1, 2, 6);
        next_year.window_start = date(2027, 3, 2);
        next_year.window_end = date(2027, 3, 6);
        let prepared = r
            .client
            .prepare_draw(as_(
                &office,
                pb::PrepareDrawRequest {
                    parent: "programmes/yunyang".into(),
                    draw: Some(next_year),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(
            prepared
                .exclusions
                .iter()
                .all(|x| x.code != "NOT_APPOINTED"),
            "{label}"
        );
    }
}

#[tokio::test]
async fn r41_a_draw_may_ask_for_no_backups_and_an_unset_count_takes_the_policys() {
    for db in testing::backends("reviewers", &qaward_reviewers::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db).await;
        let office = set_up(&mut r, 30).await;
        let mut drawn = Vec::new();
        for (i, (backups, days)) in [(Some(0), (2, 3)), (None, (5, 6)), (Some(-1), (8, 9))]
            .into_iter()
            .enumerate()
        {
            let answer = r
                .client
                .prepare_draw(as_(
                    &office,
                    pb::PrepareDrawRequest {
                        parent: "programmes/yunyang".into(),
                        draw: Some(pb::Draw {
                            backups,
                            ..draw_request(3, 0, days.0, days.1)
                        }),
                        request_id: format!("b-{i}"),
                    },
                ))
                .await;
            drawn.push(answer.map(|a| a.into_inner().backups));
        }
        // Explicit presence: 0 is none at all, unset is the policy's 3 (the seed's default).
        assert_eq!(drawn[0].as_ref().ok(), Some(&Some(0)), "{label}");
        assert_eq!(drawn[1].as_ref().ok(), Some(&Some(3)), "{label}");
        let e = drawn[2].as_ref().unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{label}");
        assert!(
            e.message().contains("draw.backups"),
            "{label}: {}",
            e.message()
        );
    }
}

#[tokio::test]
async fn a_draw_for_days_already_past_is_refused_naming_the_window() {
    // Issue 25, item 7: before, a review group could be drawn and booked for last week.
    for db in testing::backends("reviewers", &qaward_reviewers::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db).await;
        let office = set_up(&mut r, 12).await;
        // Today is 2026-02-20 (China time).
        for (from, to, field) in [
            (date(2026, 2, 10), date(2026, 2, 12), "draw.window_start"),
            (date(2026, 2, 19), date(2026, 2, 21), "draw.window_start"),
        ] {
            let e = r
                .client
                .prepare_draw(as_(
                    &office,
                    pb::PrepareDrawRequest {
                        parent: "programmes/yunyang".into(),
                        draw: Some(pb::Draw {
                            window_start: from,
                            window_end: to,
                            ..draw_request(3, 1, 2, 6)
                        }),
                        request_id: String::new(),
                    },
                ))
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "{label}");
            assert!(
                e.message().contains(field) && e.message().contains("past"),
                "{label}: {}",
                e.message()
            );
        }
        // Today itself is not past.
        r.client
            .prepare_draw(as_(
                &office,
                pb::PrepareDrawRequest {
                    parent: "programmes/yunyang".into(),
                    draw: Some(pb::Draw {
                        window_start: date(2026, 2, 20),
                        window_end: date(2026, 2, 22),
                        ..draw_request(3, 1, 2, 6)
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap();
    }
}
