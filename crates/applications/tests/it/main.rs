//! The applications service through its gRPC API, on SQLite and (when configured) PostgreSQL:
//! programmes and their versioned settings, the notice that opens a cycle, enterprises
//! and the eligibility check.

use std::sync::Arc;

use pb::application_service_client::ApplicationServiceClient;
use qaward_kit::{
    auth::Role,
    clock::{ManualClock, SeededRandomness},
    cn,
    config::Config,
    server::{ServiceContext, ServiceHost},
    testing::{self, TestDb, TestKeys},
};
use qaward_proto::qaward::{
    applications::v1 as pb,
    common::v1::{Date, Decimal},
};
use tonic::{Code, Request, transport::Channel};

mod audit_log;
mod award;
mod committee;
mod complaints;
mod consequences;
mod in_process;
mod intake;
mod recheck;
mod reviews;
mod settings;

struct Running {
    client: ApplicationServiceClient<Channel>,
    keys: TestKeys,
    office: String,
    clock: Arc<ManualClock>,
    data_dir: tempfile::TempDir,
    db: TestDb,
}

/// 2026-03-01 09:00 China time.
const NOW: time::OffsetDateTime = time::macros::datetime!(2026-03-01 01:00 UTC);

async fn start(db: TestDb) -> Running {
    start_with(db, |_| {}).await
}

/// The service with a configuration adjusted by `configure` (the data directory is the test's).
async fn start_with(db: TestDb, configure: impl FnOnce(&mut Config)) -> Running {
    let keys = TestKeys::new();
    let data_dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(NOW));
    let mut config = Config {
        data_dir: data_dir.path().to_path_buf(),
        ..Config::default()
    };
    configure(&mut config);
    let blobs = qaward_applications::blobs::BlobStore::from_config(&config).unwrap();
    let ctx = ServiceContext {
        config: Arc::new(config),
        verifier: keys.verifier.clone(),
        clock: clock.clone(),
        randomness: Arc::new(SeededRandomness::new(5)),
        audit: std::sync::Arc::new(qaward_kit::audit::AuditKey::ephemeral()),
        in_process: Default::default(),
        fields: std::sync::Arc::new(qaward_kit::fields::FieldKeys::ephemeral(
            qaward_kit::fields::Algorithm::Sm4Gcm,
        )),
    };
    let host = ServiceHost::new("applications", &ctx.config.server, ctx.verifier.clone())
        .add_service(
            pb::application_service_server::ApplicationServiceServer::new(
                qaward_applications::ApplicationsApi::new(db.db.clone(), ctx, blobs),
            ),
        );
    let channel = testing::serve_on_loopback(host).await;
    let office = keys.token_for("office-1", Role::Office, "yunyang");
    Running {
        client: ApplicationServiceClient::new(channel),
        keys,
        office,
        clock,
        data_dir,
        db,
    }
}

fn as_<T>(token: &str, m: T) -> Request<T> {
    let mut r = Request::new(m);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

fn fields(s: &tonic::Status) -> Vec<String> {
    tonic_types::StatusExt::get_error_details(s)
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// Every condition a recommending unit attests when it supports an application.
fn all_conditions() -> Vec<i32> {
    (1..=8).collect()
}

fn code(first17: &str) -> String {
    cn::with_check(first17).unwrap()
}

fn date(y: i32, m: i32, d: i32) -> Option<Date> {
    Some(Date {
        year: y,
        month: m,
        day: d,
    })
}

async fn programme(r: &mut Running) -> pb::Programme {
    r.client
        .create_programme(as_(
            &r.office,
            pb::CreateProgrammeRequest {
                programme: Some(pb::Programme {
                    display_name: "云阳县县长质量奖".into(),
                    ..Default::default()
                }),
                programme_id: "yunyang".into(),
                request_id: "p-1".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

fn notice(year: i32) -> pb::Cycle {
    pb::Cycle {
        year,
        notice_title: format!("关于开展{year}年度云阳县县长质量奖评选工作的通知"),
        conditions: "在本县登记注册并纳税、具有独立法人资格、连续经营3年以上……".into(),
        required_materials: vec![
            "申报表".into(),
            "组织概述（不超过3000字）".into(),
            "自评报告（不超过6万字）".into(),
            "证明材料".into(),
        ],
        // 30 June of its year, 17:00 China time.
        deadline: Some(prost_types::Timestamp {
            seconds: time::Date::from_calendar_date(year, time::Month::June, 30)
                .unwrap()
                .with_hms(17, 0, 0)
                .unwrap()
                .assume_offset(time::macros::offset!(+8))
                .unix_timestamp(),
            nanos: 0,
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn r01_a_cycle_pins_the_settings_it_opened_with() {
    for db in testing::backends("applications", &qaward_applications::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db).await;
        let p = programme(&mut r).await;
        let s = p.settings.clone().unwrap();
        assert_eq!(s.version, 1, "{label}");
        assert_eq!(s.materials_threshold.as_ref().unwrap().value, "500");
        assert_eq!(s.site_weight.as_ref().unwrap().value, "0.8");
        assert_eq!(s.division_codes, ["500235"]);

        let cycle = r
            .client
            .create_cycle(as_(
                &r.office,
                pb::CreateCycleRequest {
                    parent: "programmes/yunyang".into(),
                    cycle: Some(notice(2026)),
                    request_id: "c-1".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(cycle.name, "programmes/yunyang/cycles/2026", "{label}");
        assert_eq!(
            (cycle.settings_version, cycle.state),
            (1, pb::CycleState::Open as i32)
        );

        // A new settings version (threshold 520) does not change the running cycle.
        let mut newer = s.clone();
        newer.materials_threshold = Some(Decimal {
            value: "520".into(),
        });
        let updated = r
            .client
            .update_programme_settings(as_(
                &r.office,
                pb::UpdateProgrammeSettingsRequest {
                    name: "programmes/yunyang".into(),
                    settings: Some(newer),
                    request_id: "s-2".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let kept = updated.settings.unwrap();
        assert_eq!(kept.version, 2);
        assert_eq!(
            kept.draw_backups,
            Some(2),
            "{label}: unset keeps the default"
        );
        assert_eq!(
            kept.defence_min_scorers, 5,
            "{label}: R-14's floor by default"
        );
        let again = r
            .client
            .get_cycle(as_(
                &r.keys.token("someone", Role::Public),
                pb::GetCycleRequest {
                    name: cycle.name.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            again.settings_version, 1,
            "{label}: the notice is public and pinned"
        );

        // No backups is a choice that a whole-message update can make (explicit presence);
        // a group larger than Art. 8 allows is refused by the reviewers' rule of sizes.
        let mut none = s.clone();
        none.materials_threshold = Some(Decimal {
            value: "520".into(),
        });
        none.draw_backups = Some(0);
        let v3 = r
            .client
            .update_programme_settings(as_(
                &r.office,
                pb::UpdateProgrammeSettingsRequest {
                    name: "programmes/yunyang".into(),
                    settings: Some(none.clone()),
                    request_id: "s-3".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .settings
            .unwrap();
        assert_eq!((v3.version, v3.draw_backups), (3, Some(0)), "{label}");
        none.materials_group_size = 6;
        let err = r
            .client
            .update_programme_settings(as_(
                &r.office,
                pb::UpdateProgrammeSettingsRequest {
                    name: "programmes/yunyang".into(),
                    settings: Some(none),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(fields(&err), ["settings.materials_group_size"], "{label}");
        assert!(err.message().contains("Art. 8"), "{}", err.message());

        // Bad settings name their fields and change nothing.
        let mut bad = s.clone();
        bad.materials_weight = Some(Decimal {
            value: "0.3".into(),
        });
        bad.max_candidates = 0;
        bad.division_codes = vec!["5002".into()];
        let err = r
            .client
            .update_programme_settings(as_(
                &r.office,
                pb::UpdateProgrammeSettingsRequest {
                    name: "programmes/yunyang".into(),
                    settings: Some(bad),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        let mut got = fields(&err);
        got.sort();
        assert_eq!(
            got,
            [
                "settings.division_codes",
                "settings.max_candidates",
                "settings.site_weight"
            ],
            "{label}"
        );
        let now = r
            .client
            .get_programme(as_(
                &r.office,
                pb::GetProgrammeRequest {
                    name: "programmes/yunyang".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(now.settings.unwrap().version, 3);

        // Another programme's office cannot touch this one; a deadline in the past is refused.
        let other = r.keys.token_for("office-9", Role::Office, "fengjie");
        let err = r
            .client
            .create_cycle(as_(
                &other,
                pb::CreateCycleRequest {
                    parent: "programmes/yunyang".into(),
                    cycle: Some(notice(2027)),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
        let mut late = notice(2027);
        late.deadline = Some(prost_types::Timestamp {
            seconds: NOW.unix_timestamp() - 1,
            nanos: 0,
        });
        late.required_materials.clear();
        let err = r
            .client
            .create_cycle(as_(
                &r.office,
                pb::CreateCycleRequest {
                    parent: "programmes/yunyang".into(),
                    cycle: Some(late),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        let mut got = fields(&err);
        got.sort();
        assert_eq!(
            got,
            ["cycle.deadline", "cycle.required_materials"],
            "{label}"
        );
        // the 2027 notice cannot close in 2028 (issue 25, item 7).
        let mut next_year = notice(2027);
        next_year.deadline = Some(prost_types::Timestamp {
            seconds: time::macros::datetime!(2028-01-05 17:00 +8).unix_timestamp(),
            nanos: 0,
        });
        let err = r
            .client
            .create_cycle(as_(
                &r.office,
                pb::CreateCycleRequest {
                    parent: "programmes/yunyang".into(),
                    cycle: Some(next_year),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(fields(&err), ["cycle.deadline"], "{label}");
        assert!(err.message().contains("R-01"), "{}", err.message());
    }
}

async fn enterprise(
    r: &mut Running,
    code: &str,
    established: Option<Date>,
) -> Result<pb::Enterprise, tonic::Status> {
    r.client
        .create_enterprise(as_(
            &r.office,
            pb::CreateEnterpriseRequest {
                enterprise: Some(pb::Enterprise {
                    display_name: "重庆云阳某某机械有限公司".into(),
                    credit_code: code.into(),
                    established_date: established,
                    industry_code: "C34".into(),
                    recommending_unit: "qinglong-street".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn r02_to_r04_eligibility_gives_every_reason_with_its_rule() {
    for db in testing::backends("applications", &qaward_applications::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db).await;
        programme(&mut r).await;
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
        let good = code("91500235MA5U7XXX0");
        let elsewhere = code("91500101MA5U7XXX0");
        let young = code("91500235MA5U7YYY0");
        enterprise(&mut r, &good, date(2015, 3, 1)).await.unwrap();
        enterprise(&mut r, &elsewhere, date(2015, 3, 1))
            .await
            .unwrap();
        enterprise(&mut r, &young, date(2023, 7, 1)).await.unwrap();

        let check = |who: &str| pb::CheckEligibilityRequest {
            enterprise: format!("enterprises/{who}"),
            cycle: "programmes/yunyang/cycles/2026".into(),
        };
        let ok = r
            .client
            .check_eligibility(as_(&r.office, check(&good)))
            .await
            .unwrap()
            .into_inner();
        assert!(ok.eligible && ok.reasons.is_empty(), "{label}: {ok:?}");
        let no = r
            .client
            .check_eligibility(as_(&r.office, check(&elsewhere)))
            .await
            .unwrap()
            .into_inner();
        assert!(!no.eligible);
        assert_eq!(no.reasons[0].rule, "R-02", "{label}");
        assert_eq!(no.reasons[0].inputs["division_code"], "500101");
        let no = r
            .client
            .check_eligibility(as_(&r.office, check(&young)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(no.reasons[0].rule, "R-03", "{label}");

        // An award within three years bars the next application; recorded by the award
        // step, here directly.
        let mut conn = r.db.pool().acquire().await.unwrap();
        qaward_applications::store::add_record(
            &mut conn,
            &good,
            "yunyang",
            "award",
            "2024-01-15",
            "2023年度县长质量奖",
            0,
        )
        .await
        .unwrap();
        drop(conn);
        let me = r.keys.token_for_org(&good, Role::Enterprise, &good);
        let no = r
            .client
            .check_eligibility(as_(&me, check(&good)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(no.reasons.len(), 1, "{label}");
        assert_eq!(no.reasons[0].rule, "R-04");
        assert!(
            no.reasons[0].message.contains("获奖未满3年"),
            "{}",
            no.reasons[0].message
        );

        // Another enterprise may not look; a bad credit code is bad input.
        let other = r.keys.token_for_org(&young, Role::Enterprise, &young);
        let err = r
            .client
            .check_eligibility(as_(&other, check(&good)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{label}");
        let err = enterprise(&mut r, "91500235MA5U7XXX01", date(2015, 3, 1))
            .await
            .unwrap_err();
        assert_eq!(fields(&err), ["enterprise.credit_code"], "{label}");
        let err = enterprise(&mut r, &code("91500235MA5U7WWW0"), date(2025, 2, 30))
            .await
            .unwrap_err();
        assert_eq!(fields(&err), ["enterprise.established_date"], "{label}");
        let err = enterprise(&mut r, &good, date(2015, 3, 1))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::AlreadyExists, "{label}");
    }
}
