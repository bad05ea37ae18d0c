//! The suite as a province runs it: every service its own process on PostgreSQL, the gateway
//! the only door, driven over gRPC and over HTTP/JSON by the same walk `qaward demo` prints.
//! Run when QAWARD_TEST_DATABASE_URL is set (CI always sets it).

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
};

use qaward_demo::{Door, Narrator, Plan, Walk};
use qaward_kit::auth::Role;
use qaward_proto::qaward::{applications::v1 as pb, common::v1::Date, reviewers::v1 as rpb};

use crate::support::Cluster;

/// A writer the test can read back: the account the walk printed.
#[derive(Clone, Default)]
pub struct Account(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Account {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Account {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).to_string()
    }
}

/// The province's deployment: every service connects as its own role, which may only append to
/// its audit log; the schemas' owner migrates and grants (issue 22, item 3).
pub async fn cluster() -> Option<Cluster> {
    use sqlx::Executor;
    let owner = qaward_kit::testing::fresh_postgres_database().await?;
    let role = format!(
        "qaward_svc_{}",
        owner
            .rsplit('/')
            .next()
            .unwrap()
            .trim_start_matches("qaward_t_")
    );
    let admin = sqlx::AnyPool::connect(&owner).await.unwrap();
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE ROLE {role} LOGIN")))
        .await
        .unwrap();
    admin.close().await;
    let (scheme, rest) = owner.split_once("://").unwrap();
    let service = format!("{scheme}://{role}@{}", rest.split_once('@').unwrap().1);
    Some(Cluster::start(&service, &[("QAWARD_DATABASE_OWNER_URL", &owner)]).await)
}

pub async fn walk(c: &Cluster, http: bool, plan: Plan) -> (Walk, Account) {
    let door = if http {
        Door::http(c.gateway_http()).unwrap()
    } else {
        Door::grpc(&c.gateway_grpc()).await.unwrap()
    };
    let account = Account::default();
    // The draws' secrets seeded: the same panels on every run, as the fixed dice gave.
    let walk = Walk::new(door, c.tokens(), plan, Narrator::to(account.clone())).with_randomness(
        std::sync::Arc::new(qaward_kit::clock::SeededRandomness::new(2026)),
    );
    (walk, account)
}

fn rules(w: &Walk, i: usize) -> Vec<String> {
    w.outcome.decisions[&i]
        .iter()
        .map(|(_, e)| e.rule.clone())
        .collect()
}

/// The demo's cycle: two winners, every decision on the way with its rule.
fn assert_the_sample_cycle(w: &Walk, account: &Account, over: &str) {
    let o = &w.outcome;
    let text = account.text();
    assert_eq!(o.winners, [0, 1], "{over}: {text}");
    assert_eq!(o.candidates, [0, 1], "{over}");
    assert_eq!(o.draws.len(), 3, "{over}");
    // Each draw replayed offline from its exported record.
    assert_eq!(text.matches("replayed offline: MATCH").count(), 3, "{text}");
    // The relations and the lapsed certificate kept four reviewers out of every group.
    for why in [
        "刘建国 (CQZJ-0001) — EMPLOYER (R-41)",
        "陈静 (CQZJ-0002) — CONSULTANCY (R-41)",
        "王海燕 (CQZJ-0003) — KINSHIP (R-41)",
        "谢长青 (CQZJ-0024) — CERTIFICATE_LAPSED (R-42)",
    ] {
        assert_eq!(text.matches(why).count(), 3, "{over}: {why}\n{text}");
    }
    assert!(
        text.contains("submission refused — R-02 OUTSIDE_COUNTY"),
        "{text}"
    );
    // Art. 16(5)3, R-15: a member (not the leader) stops a site visit; scoring freezes the
    // sheets; the office finds the stop unfounded and the visit resumes.
    assert!(
        text.contains("a member, not the leader (Art. 16(5)3)")
            && text.contains("the office finds it unfounded: R-15")
            && text.contains("the visit resumes and its sheets are free again"),
        "{over}: {text}"
    );
    // Art. 16(5)4: the group leaders' meeting unifies the site results before their release,
    // raising the winner's agreed 4.1.1 by 5 % of its 50 points (a new consensus version).
    assert!(
        text.contains("Group leaders' meeting (Art. 16(5)4): reviewers/"),
        "{over}: {text}"
    );
    assert!(
        text.contains("site consensus 750 → 752.5"),
        "{over}: {text}"
    );
    // the applicant at 450 asks for a re-check of its report; the office confirms it.
    assert!(
        text.contains("feedback report (R-13): asked within the window ending ")
            && text.contains("RECHECK_OUTCOME_CONFIRMED"),
        "{over}: {text}"
    );
    // six of the eight units of Art. 5 vote, each with its own token.
    assert!(
        text.contains("6 of 8 member units present (absent: 县应急局、县税务局)"),
        "{over}: {text}"
    );
    // Art. 6(5), R-52: a tip-off during the reviews is taken, with its case number.
    assert!(
        text.contains("case yunyang-2026-0001 (R-52, not refused)"),
        "{over}: {text}"
    );
    // Exactly 500 passes (R-13 inclusive); 450 fails; 310 stops at R-16; 405 is fifth.
    assert_eq!(
        w.outcome.decisions[&3]
            .iter()
            .find(|(_, e)| e.rule == "R-13")
            .map(|(s, e)| (*s, e.inputs["materials_score"].clone())),
        Some((pb::ApplicationStage::MaterialsPassed as i32, "500".into())),
        "{over}"
    );
    assert_eq!(rules(w, 6).last().map(String::as_str), Some("R-13"));
    assert_eq!(rules(w, 5).last().map(String::as_str), Some("R-16"));
    let fifth = &o.decisions[&4].last().unwrap().1;
    assert_eq!(
        (
            fifth.rule.as_str(),
            fifth.inputs["composite_score"].as_str()
        ),
        ("R-17", "405"),
        "{over}"
    );
    for winner in [0, 1] {
        assert_eq!(rules(w, winner).last().map(String::as_str), Some("R-23"));
    }
}

#[tokio::test]
async fn the_whole_cycle_over_grpc_then_next_year_refuses_the_revoked_winner() {
    let Some(c) = cluster().await else { return };
    let (mut w, account) = walk(&c, false, Plan::yunyang("yunyang")).await;
    w.run()
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", account.text()));
    assert_the_sample_cycle(&w, &account, "gRPC");
    crate::support::services_agree(&w).await;

    // a spot check fails; the county revokes the award as Art. 20 writes it — the
    // office verifies, the committee reviews, the government approves, each with its own token
    // — and the enterprise may not apply in the next year's cycle.
    let office = w.office_token().to_string();
    let winner = w.code(0).to_string();
    let door = w.door().clone();
    let case = qaward_demo::call!(
        door.apps,
        revoke_award,
        &office,
        pb::RevokeAwardRequest {
            name: format!("enterprises/{winner}"),
            reason: "国家监督抽查主导产品不合格".into(),
            ground: pb::RevocationGround::SpotCheck as i32,
            request_id: String::new(),
        }
    )
    .unwrap();
    let chair = w.tokens().issue(
        Role::CommitteeMember,
        "chair",
        Some("县发展改革委"),
        Some("yunyang"),
    );
    qaward_demo::call!(
        door.apps,
        review_revocation,
        &chair,
        pb::ReviewRevocationRequest {
            name: case.name.clone(),
            endorsed: true,
            note: "经审议，同意撤销".into(),
            request_id: String::new(),
        }
    )
    .unwrap();
    let government = w
        .tokens()
        .issue(Role::Government, "county", None, Some("yunyang"));
    let today = w.server_now().to_offset(time::macros::offset!(+8)).date();
    let revoked = qaward_demo::call!(
        door.apps,
        approve_revocation,
        &government,
        pb::ApproveRevocationRequest {
            name: case.name.clone(),
            approved: true,
            document_number: "云阳府发〔2026〕31号".into(),
            approval_date: day(today),
            publication: "云阳县人民政府网站".into(),
            note: String::new(),
            request_id: String::new(),
        }
    )
    .unwrap();
    assert_eq!(revoked.state, pb::RevocationState::Approved as i32);
    let now = w.server_now();
    let next_year = now.year() + 1;
    qaward_demo::call!(
        door.apps,
        create_cycle,
        &office,
        pb::CreateCycleRequest {
            parent: "programmes/yunyang".into(),
            cycle: Some(pb::Cycle {
                year: next_year,
                notice_title: format!("关于开展{next_year}年度云阳县县长质量奖评选工作的通知"),
                conditions: "在本县登记注册并纳税".into(),
                required_materials: vec!["申报表".into()],
                deadline: Some(prost_types::Timestamp {
                    seconds: (now + time::Duration::days(400)).unix_timestamp(),
                    nanos: 0,
                }),
                ..Default::default()
            }),
            request_id: String::new(),
        }
    )
    .unwrap();
    let next = format!("programmes/yunyang/cycles/{next_year}");
    let check = qaward_demo::call!(
        door.apps,
        check_eligibility,
        &office,
        pb::CheckEligibilityRequest {
            enterprise: format!("enterprises/{winner}"),
            cycle: next.clone(),
        }
    )
    .unwrap();
    assert!(!check.eligible);
    assert!(
        check.reasons.iter().any(|r| r.rule == "R-33"),
        "{:?}",
        check.reasons
    );
    let me = w
        .tokens()
        .issue(Role::Enterprise, "user", Some(&winner), None);
    let draft = qaward_demo::call!(
        door.apps,
        create_application,
        &me,
        pb::CreateApplicationRequest {
            parent: next.clone(),
            application: Some(pb::Application {
                enterprise: format!("enterprises/{winner}"),
                application_form: "申报表".into(),
                organisation_profile: "企业概况".into(),
                self_assessment: "自评报告".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        }
    );
    let refusal = match draft {
        Err(e) => e,
        Ok(a) => qaward_demo::call!(
            door.apps,
            submit_application,
            &me,
            pb::SubmitApplicationRequest {
                name: a.name,
                request_id: String::new(),
            }
        )
        .unwrap_err(),
    };
    assert!(refusal.message().contains("（R-33）"), "{refusal:?}");

    // every service's audit trail is intact after all of it.
    let said = c.audit_intact();
    assert_eq!(said.len(), 4, "{said:?}");
}

#[tokio::test]
async fn the_whole_cycle_over_http_json() {
    let Some(c) = cluster().await else { return };
    let (mut w, account) = walk(&c, true, Plan::yunyang("yunyang")).await;
    w.run()
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", account.text()));
    assert_the_sample_cycle(&w, &account, "HTTP/JSON");
    crate::support::services_agree(&w).await;
    c.audit_intact();
}

#[tokio::test]
async fn a_year_in_which_nobody_reaches_400_is_vacant() {
    let Some(c) = cluster().await else { return };
    let (mut w, account) = walk(&c, true, Plan::vacant("yunyang")).await;
    let o = w
        .run()
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", account.text()));
    assert!(o.vacant, "{}", account.text());
    assert!(o.candidates.is_empty() && o.winners.is_empty());
    // 0.2 × 600 + 0.8 × 300 = 360, in the final selection; + defence 30 = 390 < 400.
    let first = &o.decisions[&0].last().unwrap().1;
    assert_eq!(
        (
            first.rule.as_str(),
            first.inputs["composite_score"].as_str()
        ),
        ("R-17", "390")
    );
    // 0.2 × 500 + 0.8 × 300 = 340: out before the composite.
    assert_eq!(o.decisions[&1].last().unwrap().1.rule, "R-16");
    assert!(
        account.text().contains("CYCLE_STATE_VACANT"),
        "{}",
        account.text()
    );
    crate::support::services_agree(&w).await;
}

#[tokio::test]
async fn a_tie_at_the_cut_line_is_reported_to_the_office_and_broken_by_its_decision() {
    let Some(c) = cluster().await else { return };
    let (mut w, account) = walk(&c, false, Plan::tie("yunyang")).await;
    let o = w
        .run()
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", account.text()));
    let told = o
        .tie_reported
        .clone()
        .expect("the office was told of the tie");
    assert!(told.starts_with("R-18 TIE_UNRESOLVED"), "{told}");
    // Entrants 1 and 2 both have 0.2 × 700 + 0.8 × 650 + 80 = 740; the tie-break gives the
    // second seat to 1.
    assert_eq!(o.candidates, [0, 1], "{}", account.text());
    // six of the eight units of Art. 5 sit, each with its own token; four of the six
    // adopt (one abstains, one does not): adopted. R-23: the government returns 1 (Art. 16(10)).
    let text = account.text();
    assert!(
        text.contains("6 of 8 member units present (absent: 县应急局、县税务局)"),
        "{text}"
    );
    assert!(text.contains("同意4个、不同意1个、弃权1个"), "{text}");
    assert_eq!(o.winners, [0], "{text}");
    let returned = &o.decisions[&1].last().unwrap();
    assert_eq!(
        (returned.0, returned.1.rule.as_str()),
        (pb::ApplicationStage::NotSelected as i32, "R-23"),
        "{text}"
    );
    assert!(returned.1.message.contains("县人民政府未予批准"), "{text}");
    let left_out = &o.decisions[&2].last().unwrap();
    assert_eq!(left_out.0, pb::ApplicationStage::NotSelected as i32);
    assert_eq!(left_out.1.inputs["composite_score"], "740");
    crate::support::services_agree(&w).await;
}

fn day(d: time::Date) -> Option<Date> {
    Some(Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    })
}

#[tokio::test]
async fn two_programmes_draw_from_the_shared_registry_at_once_without_double_booking() {
    let Some(c) = cluster().await else { return };
    // Each programme's office sets up its own programme; the registry is the province's.
    let (mut yunyang, _) = walk(&c, false, Plan::yunyang("yunyang")).await;
    yunyang.set_up().await.unwrap();
    let (mut fengjie, _) = walk(&c, true, Plan::fengjie("fengjie")).await;
    fengjie.set_up().await.unwrap();
    // Six panels of three from the sample registry's 23 eligible reviewers, of whom 8 may lead:
    // random draws can seat several of the 8 in one panel and leave none for a redraw, which
    // then cannot be made at all — a matter of chance, not of the concurrency this test
    // is about. Here any member may lead; the reviewers service's own tests hold the leader
    // rule.
    // A programme that wants its own draw policy before its first draw makes its tenant in the
    // reviewers service itself (the applications service would make it with the seed's
    // policy on the first review group).
    for w in [&yunyang, &fengjie] {
        let name = format!("programmes/{}", w.plan().programme);
        qaward_demo::call!(
            w.door().reviewers,
            create_programme,
            w.office_token(),
            rpb::CreateProgrammeRequest {
                programme: Some(rpb::DrawTenant {
                    display_name: w.plan().display_name.clone(),
                    ..Default::default()
                }),
                programme_id: w.plan().programme.clone(),
                request_id: String::new(),
            }
        )
        .unwrap();
        let programme = qaward_demo::call!(
            w.door().reviewers,
            get_programme,
            w.office_token(),
            rpb::GetProgrammeRequest { name: name.clone() }
        )
        .unwrap();
        let mut policy = programme.policy.unwrap_or_default();
        policy.leader_must_be_qualified = false;
        qaward_demo::call!(
            w.door().reviewers,
            update_draw_policy,
            w.office_token(),
            rpb::UpdateDrawPolicyRequest {
                name,
                policy: Some(policy),
                request_id: String::new(),
            }
        )
        .unwrap();
    }

    // Each prepares three site-visit draws of 3 members for the same three days, for its own
    // applicants; then all six execute at once. Draws that lose a reviewer to another one
    // meanwhile fail, recorded with the reason; the office redraws them, naming the
    // draw each replaces. In the end: six panels, 18 different reviewers, none booked twice.
    let start = (yunyang.server_now() + time::Duration::days(60)).date();
    let draw = |w: &Walk, n: usize, replaces: String| rpb::PrepareDrawRequest {
        parent: format!("programmes/{}", w.plan().programme),
        draw: Some(rpb::Draw {
            purpose: rpb::DrawPurpose::SiteGroup as i32,
            enterprise_codes: vec![w.code(n).to_string()],
            size: 3,
            backups: None,
            window_start: day(start),
            window_end: day(start + time::Duration::days(2)),
            entropy_source: "公证处摇号".into(),
            replaces_draw: replaces,
            ..Default::default()
        }),
        request_id: String::new(),
    };
    let mut prepared = Vec::new();
    for w in [&yunyang, &fengjie] {
        for n in 0..3 {
            let d = qaward_demo::call!(
                w.door().reviewers,
                prepare_draw,
                w.office_token(),
                draw(w, n, String::new())
            )
            .unwrap();
            prepared.push((w, n, d.name));
        }
    }
    // the office and the supervisor commit and reveal; the last reveal executes the draw.
    let execute = |w: &Walk, name: String, step: String| {
        let (door, token) = (w.door().clone(), w.office_token().to_string());
        let parties = [
            ("office", token.clone()),
            ("supervisor", w.supervisor_token()),
        ];
        let randomness = w.randomness();
        async move {
            let parties: Vec<(&str, String)> = parties.to_vec();
            let result = door
                .draw_by_parties(&name, &parties, None, &step, &*randomness)
                .await;
            let record = qaward_demo::call!(
                door.reviewers,
                get_draw,
                &token,
                rpb::GetDrawRequest { name }
            )
            .unwrap();
            (result.is_ok(), record)
        }
    };
    let done = futures_util::future::join_all(
        prepared
            .iter()
            .map(|(w, n, name)| execute(w, name.clone(), format!("{n}-{name}"))),
    )
    .await;
    let mut panels = Vec::new();
    let mut failures = Vec::new();
    for ((w, n, _), (ok, record)) in prepared.iter().zip(done) {
        if ok {
            assert_eq!(record.state, rpb::DrawState::Executed as i32);
            panels.push(record);
            continue;
        }
        // Recorded as failed with the reason, never silently retried.
        assert_eq!(record.state, rpb::DrawState::Failed as i32);
        assert!(record.failure.contains("booked"), "{}", record.failure);
        failures.push(record.failure.clone());
        let mut replaces = record.name.clone();
        loop {
            let again = qaward_demo::call!(
                w.door().reviewers,
                prepare_draw,
                w.office_token(),
                draw(w, *n, replaces.clone())
            )
            .unwrap();
            let (ok, record) =
                execute(w, again.name.clone(), format!("again-{}", again.name)).await;
            assert_eq!(record.replaces_draw, replaces);
            if ok {
                panels.push(record);
                break;
            }
            replaces = record.name.clone();
        }
    }
    eprintln!(
        "two programmes at once: {} of 6 draws lost a reviewer to a concurrent draw and were redrawn: {failures:?}",
        failures.len()
    );
    let mut booked = BTreeSet::new();
    for p in &panels {
        for m in &p.members {
            assert!(
                booked.insert(m.trim_start_matches("reviewers/").to_string()),
                "{m} booked twice for the same days ({})",
                p.name
            );
        }
    }
    assert_eq!((panels.len(), booked.len()), (6, 18));
    for p in ["programmes/yunyang/", "programmes/fengjie/"] {
        assert_eq!(panels.iter().filter(|d| d.name.starts_with(p)).count(), 3);
    }
}
