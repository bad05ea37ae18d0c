//! Entropy no single party controls (R-53, issue 22 item 1). Before, the office sent the
//! entropy with ExecuteDraw and could try values offline against the public prepared record
//! until one seated the reviewers it wanted; its optional commitment covered its own value only.
//! Now the office and the supervisor each commit to a 256-bit secret before either reveals, a
//! public value is fixed between, the last reveal executes the draw, and a part missing at the
//! deadline fails the draw on the record, naming whose it was.

use qaward_kit::{
    auth::Role,
    config::Config,
    testing::{self, reason},
};
use qaward_proto::qaward::reviewers::v1 as pb;
use qaward_reviewers::domain::entropy;
use tonic::Code;

use super::{as_, draw_request, execute, secret, set_up, start};

/// Prepares `draw` for the programme `yunyang`.
async fn prepare(
    r: &mut super::Running,
    office: &str,
    draw: pb::Draw,
) -> Result<pb::Draw, tonic::Status> {
    let request = pb::PrepareDrawRequest {
        parent: "programmes/yunyang".into(),
        draw: Some(draw),
        request_id: String::new(),
    };
    Ok(r.client
        .prepare_draw(as_(office, request))
        .await?
        .into_inner())
}

fn commit(name: &str, party: &str, secret: &str) -> pb::CommitDrawEntropyRequest {
    pb::CommitDrawEntropyRequest {
        name: name.into(),
        party: party.into(),
        commitment: entropy::commitment(name, party, secret),
        request_id: String::new(),
    }
}

fn reveal(name: &str, party: &str, secret: &str) -> pb::RevealDrawEntropyRequest {
    pb::RevealDrawEntropyRequest {
        name: name.into(),
        party: party.into(),
        secret: secret.into(),
        request_id: String::new(),
    }
}

#[tokio::test]
async fn r53_the_office_alone_cannot_steer_a_draw_and_every_reveal_is_checked() {
    for db in testing::backends("reviewers", &qaward_reviewers::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db).await;
        let office = set_up(&mut r, 30).await;
        let supervisor = r
            .keys
            .token_for("supervisor-1", Role::Supervisor, "yunyang");
        let other_office = r.keys.token_for("office-9", Role::Office, "yunyang");

        // The single-party ways in are closed: no commitment of the office's own, no entropy
        // handed to ExecuteDraw.
        let e = prepare(
            &mut r,
            &office,
            pb::Draw {
                entropy_commitment: "ab".repeat(32),
                ..draw_request(3, 1, 2, 4)
            },
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{label}");
        assert!(e.message().contains("draw.entropy_commitment"), "{e:?}");
        let d = prepare(
            &mut r,
            &office,
            pb::Draw {
                fixes_public_value: true,
                entropy_source: "四枚骰子，监督人员在场公开投掷".into(),
                ..draw_request(3, 1, 2, 4)
            },
        )
        .await
        .unwrap();
        let parties: Vec<(&str, &str)> = d
            .entropy_parts
            .iter()
            .map(|p| (p.party.as_str(), p.role.as_str()))
            .collect();
        assert_eq!(
            parties,
            [("office", "office"), ("supervisor", "supervisor")]
        );
        assert_eq!(d.awaiting, "commitments from office, supervisor");
        let deadline = d.reveal_deadline.expect("a deadline").seconds;
        assert_eq!(deadline - d.create_time.unwrap().seconds, 72 * 3_600);
        let e = r
            .client
            .execute_draw(as_(
                &office,
                pb::ExecuteDrawRequest {
                    name: d.name.clone(),
                    entropy: "5-2".into(),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{label}");

        let (office_secret, supervisor_secret) = (secret("s", "office"), secret("s", "supervisor"));
        r.client
            .commit_draw_entropy(as_(&office, commit(&d.name, "office", &office_secret)))
            .await
            .unwrap();
        // Nothing is revealed before every commitment is in: the office cannot learn the
        // outcome of its own secret before the supervisor has committed.
        let e = r
            .client
            .reveal_draw_entropy(as_(&office, reveal(&d.name, "office", &office_secret)))
            .await
            .unwrap_err();
        assert_eq!(reason(&e), entropy::ENTROPY_OUT_OF_TURN, "{label}: {e:?}");
        // The office cannot take the supervisor's part, nor a second of its members take the
        // office's part again; and the draw is not executed on the office's part alone.
        let e = r
            .client
            .commit_draw_entropy(as_(&office, commit(&d.name, "supervisor", &office_secret)))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{label}");
        let e = r
            .client
            .commit_draw_entropy(as_(
                &other_office,
                commit(&d.name, "office", &office_secret),
            ))
            .await
            .unwrap_err();
        assert_eq!(reason(&e), entropy::ENTROPY_OUT_OF_TURN, "{label}");
        let e = r
            .client
            .execute_draw(as_(
                &office,
                pb::ExecuteDrawRequest {
                    name: d.name.clone(),
                    entropy: String::new(),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert!(e.message().contains("commitments from supervisor"), "{e:?}");

        r.client
            .commit_draw_entropy(as_(
                &supervisor,
                commit(&d.name, "supervisor", &supervisor_secret),
            ))
            .await
            .unwrap();
        // The supervisor's part is a commitment and a reveal, nothing else.
        let fix = |v: &str| pb::FixDrawPublicValueRequest {
            name: d.name.clone(),
            public_value: v.into(),
            request_id: String::new(),
        };
        let e = r
            .client
            .fix_draw_public_value(as_(&supervisor, fix("6-6-6-6")))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{label}");
        let e = r
            .client
            .reveal_draw_entropy(as_(
                &supervisor,
                reveal(&d.name, "supervisor", &supervisor_secret),
            ))
            .await
            .unwrap_err();
        assert_eq!(
            reason(&e),
            entropy::ENTROPY_OUT_OF_TURN,
            "before the public value"
        );
        r.client
            .fix_draw_public_value(as_(&office, fix("3-5-1-6")))
            .await
            .unwrap();
        let e = r
            .client
            .fix_draw_public_value(as_(&office, fix("6-6-6-6")))
            .await
            .unwrap_err();
        assert_eq!(reason(&e), entropy::ENTROPY_OUT_OF_TURN, "fixed once");

        // Every reveal is checked against its commitment, and only its committer reveals it.
        let e = r
            .client
            .reveal_draw_entropy(as_(
                &supervisor,
                reveal(&d.name, "supervisor", &office_secret),
            ))
            .await
            .unwrap_err();
        assert_eq!(
            reason(&e),
            entropy::SECRET_DOES_NOT_MATCH_COMMITMENT,
            "{label}"
        );
        let e = r
            .client
            .reveal_draw_entropy(as_(
                &other_office,
                reveal(&d.name, "office", &office_secret),
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{label}");
        let first = r
            .client
            .reveal_draw_entropy(as_(&office, reveal(&d.name, "office", &office_secret)))
            .await
            .unwrap()
            .into_inner();
        assert!(first.panel.is_none());
        assert_eq!(first.draw.unwrap().awaiting, "reveals from supervisor");
        // The last reveal executes the draw: nobody chooses when, or whether.
        let last = r
            .client
            .reveal_draw_entropy(as_(
                &supervisor,
                reveal(&d.name, "supervisor", &supervisor_secret),
            ))
            .await
            .unwrap()
            .into_inner();
        let drawn = last.draw.unwrap();
        assert_eq!(drawn.state, pb::DrawState::Executed as i32, "{label}");
        assert!(last.panel.is_some());
        assert_eq!(
            drawn.entropy,
            entropy::combine(
                &d.name,
                &d.inputs_hash,
                &[
                    ("office", &office_secret),
                    ("supervisor", &supervisor_secret)
                ],
                "3-5-1-6",
            ),
            "docs/draw.md §2a"
        );
        let verified = r
            .client
            .verify_draw(as_(
                &supervisor,
                pb::VerifyDrawRequest {
                    name: d.name.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(verified.matches, "{label}: {}", verified.message);

        // Offline: the exported record replays; a record whose secret, public value or
        // commitment was altered does not.
        let record: serde_json::Value = serde_json::from_str(&drawn.record_json).unwrap();
        assert!(
            qaward_reviewers::verify_record(&drawn.record_json)
                .unwrap()
                .matches
        );
        let tamper = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut t = record.clone();
            edit(&mut t);
            qaward_reviewers::verify_record(&t.to_string()).unwrap()
        };
        let swapped =
            tamper(&|t| t["entropy_parts"][1]["secret"] = secret("x", "supervisor").into());
        assert!(
            !swapped.matches && swapped.message.contains("supervisor secret"),
            "{}",
            swapped.message
        );
        let dice = tamper(&|t| t["public_value"] = "6-6-6-6".into());
        assert!(!dice.matches, "{}", dice.message);
        let recommitted = tamper(&|t| {
            let s = secret("x", "office");
            t["entropy_parts"][0]["secret"] = s.clone().into();
            t["entropy_parts"][0]["commitment"] = entropy::commitment(&d.name, "office", &s).into();
        });
        assert!(!recommitted.matches, "{}", recommitted.message);
    }
}

#[tokio::test]
async fn r53_a_missing_reveal_fails_the_draw_on_the_record_naming_whose_it_was() {
    for db in testing::backends("reviewers", &qaward_reviewers::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db).await;
        let office = set_up(&mut r, 30).await;
        let supervisor = r
            .keys
            .token_for("supervisor-1", Role::Supervisor, "yunyang");
        let d = prepare(&mut r, &office, draw_request(3, 1, 2, 4))
            .await
            .unwrap();
        for (token, party) in [(&office, "office"), (&supervisor, "supervisor")] {
            r.client
                .commit_draw_entropy(as_(token, commit(&d.name, party, &secret("m", party))))
                .await
                .unwrap();
        }
        r.client
            .reveal_draw_entropy(as_(
                &office,
                reveal(&d.name, "office", &secret("m", "office")),
            ))
            .await
            .unwrap();
        let issuer = Config::default().auth.issuer;
        let sweep = || {
            qaward_reviewers::fail_overdue_draws(
                &r.db.db,
                qaward_kit::clock::Clock::now(&*r.clock),
                &issuer,
            )
        };
        assert_eq!(sweep().await.unwrap(), 0, "not before the deadline");

        r.clock.advance(time::Duration::hours(73));
        let e = r
            .client
            .reveal_draw_entropy(as_(
                &supervisor,
                reveal(&d.name, "supervisor", &secret("m", "supervisor")),
            ))
            .await
            .unwrap_err();
        assert_eq!(reason(&e), entropy::ENTROPY_DEADLINE_PASSED, "{label}");
        assert_eq!(sweep().await.unwrap(), 1, "{label}");
        assert_eq!(sweep().await.unwrap(), 0, "failed once");
        let failed = r
            .client
            .get_draw(as_(
                &office,
                pb::GetDrawRequest {
                    name: d.name.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(failed.state, pb::DrawState::Failed as i32, "{label}");
        assert!(
            failed
                .failure
                .contains("no reveal by the deadline from supervisor (")
                && failed.failure.contains("supervisor-1"),
            "{label}: {}",
            failed.failure
        );
        // A retry is a new prepared draw naming the failed one, never a silent redraw.
        let retry = prepare(
            &mut r,
            &office,
            pb::Draw {
                replaces_draw: d.name.clone(),
                ..draw_request(3, 1, 2, 4)
            },
        )
        .await
        .unwrap();
        let drawn = execute(&mut r, &retry.name, "again").await.unwrap();
        assert_eq!(drawn.draw.unwrap().state, pb::DrawState::Executed as i32);
    }
}

#[tokio::test]
async fn r53_a_policy_names_at_least_two_parties_and_one_person_takes_one_part() {
    for db in testing::backends("reviewers", &qaward_reviewers::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db).await;
        let office = set_up(&mut r, 30).await;
        let policy = |parties: &[&str]| pb::UpdateDrawPolicyRequest {
            name: "programmes/yunyang".into(),
            policy: Some(pb::DrawPolicy {
                materials_group_min: 3,
                materials_group_max: 5,
                site_group_min: 3,
                site_group_max: 5,
                defence_panel_min: 5,
                backups_per_draw: 3,
                yearly_cap: 6,
                leader_must_be_qualified: true,
                entropy_parties: parties.iter().map(|p| p.to_string()).collect(),
                ..Default::default()
            }),
            request_id: String::new(),
        };
        for bad in [
            &["office"][..],
            &["office", "office"],
            &["office", "enterprise"],
        ] {
            let e = r
                .client
                .update_draw_policy(as_(&office, policy(bad)))
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "{label}: {bad:?}");
            assert!(e.message().contains("policy.entropy_parties"), "{e:?}");
        }
        // A second office member and the supervisor: three parts, one person each.
        r.client
            .update_draw_policy(as_(&office, policy(&["office", "supervisor", "office"])))
            .await
            .unwrap();
        let d = prepare(&mut r, &office, draw_request(3, 1, 2, 4))
            .await
            .unwrap();
        let parties: Vec<&str> = d.entropy_parts.iter().map(|p| p.party.as_str()).collect();
        assert_eq!(parties, ["office", "supervisor", "office-2"], "{label}");
        r.client
            .commit_draw_entropy(as_(
                &office,
                commit(&d.name, "office", &secret("p", "office")),
            ))
            .await
            .unwrap();
        let e = r
            .client
            .commit_draw_entropy(as_(
                &office,
                commit(&d.name, "office-2", &secret("p", "office-2")),
            ))
            .await
            .unwrap_err();
        assert_eq!(
            reason(&e),
            entropy::ENTROPY_OUT_OF_TURN,
            "{label}: one person, one part"
        );
        let second = r.keys.token_for("office-2", Role::Office, "yunyang");
        r.client
            .commit_draw_entropy(as_(
                &second,
                commit(&d.name, "office-2", &secret("p", "office-2")),
            ))
            .await
            .unwrap();
        let now = r
            .client
            .get_draw(as_(
                &office,
                pb::GetDrawRequest {
                    name: d.name.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(now.awaiting, "commitments from supervisor", "{label}");
    }
}
