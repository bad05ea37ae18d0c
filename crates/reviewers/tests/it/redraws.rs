//! One live draw per chain: executing a redraw supersedes the draw it names — its panel
//! no longer stands, its reviewers are free again — and a superseded draw can never be executed.
//! Before, the original stayed EXECUTED beside its redraw (two live panels for one group), and
//! an original could still be executed after its redraw.

use qaward_kit::{
    auth::Role,
    testing::{self, reason},
};
use tonic::Code;

use super::{all_but_last_reveal, as_, draw_request, execute, last_reveal, pb, set_up, start};

fn prepare(replaces: &str, id: &str) -> pb::PrepareDrawRequest {
    pb::PrepareDrawRequest {
        parent: "programmes/yunyang".into(),
        draw: Some(pb::Draw {
            replaces_draw: replaces.to_string(),
            ..draw_request(3, 0, 2, 4)
        }),
        request_id: id.into(),
    }
}

#[tokio::test]
async fn r45_a_redraw_supersedes_the_draw_it_names_and_a_superseded_draw_is_never_executed() {
    for db in testing::backends("reviewers", &qaward_reviewers::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db).await;
        let office = set_up(&mut r, 30).await;
        let _ = r.keys.token_for("office-1", Role::Office, "yunyang");

        // A is executed: its panel stands and its members are booked.
        let a = r
            .client
            .prepare_draw(as_(&office, prepare("", "a")))
            .await
            .unwrap()
            .into_inner();
        let first = execute(&mut r, &a.name, "first").await.unwrap();
        let a_members = first.draw.unwrap().members;

        // B redraws A, and C redraws B: one chain.
        let b = r
            .client
            .prepare_draw(as_(&office, prepare(&a.name, "b")))
            .await
            .unwrap()
            .into_inner();
        let c = r
            .client
            .prepare_draw(as_(&office, prepare(&b.name, "c")))
            .await
            .unwrap()
            .into_inner();
        execute(&mut r, &b.name, "second").await.unwrap();
        let get = |name: &str| pb::GetDrawRequest {
            name: name.to_string(),
        };
        let a_now = r
            .client
            .get_draw(as_(&office, get(&a.name)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(a_now.state, pb::DrawState::Superseded as i32, "{label}");
        assert!(
            a_now.failure.contains(&b.name),
            "{label}: {}",
            a_now.failure
        );
        // C, prepared in the chain and not executed, gives way too.
        let c_now = r
            .client
            .get_draw(as_(&office, get(&c.name)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(c_now.state, pb::DrawState::Superseded as i32, "{label}");

        // Neither can be executed any more.
        for (name, what) in [(&a.name, "the original"), (&c.name, "a later redraw")] {
            let s = r
                .client
                .execute_draw(as_(
                    &office,
                    pb::ExecuteDrawRequest {
                        name: name.to_string(),
                        entropy: String::new(),
                        request_id: String::new(),
                    },
                ))
                .await
                .unwrap_err();
            assert_eq!(
                (s.code(), reason(&s).as_str()),
                (Code::FailedPrecondition, "DRAW_SUPERSEDED"),
                "{label}: {what}"
            );
        }

        // A's reviewers are free again: a new draw in the same window may seat them. (The pool
        // is the ten C13 reviewers of the registry less those booked: B's three, and, before
        // superseding released them, A's three as well.)
        let wide = r
            .client
            .prepare_draw(as_(
                &office,
                pb::PrepareDrawRequest {
                    parent: "programmes/yunyang".into(),
                    draw: Some(draw_request(5, 0, 2, 4)),
                    request_id: "wide".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(
            a_members
                .iter()
                .all(|m| !wide.exclusions.iter().any(|e| &e.reviewer == m)),
            "{label}: a superseded panel's reviewers are not held: {:?}",
            wide.exclusions
        );
        assert_eq!(
            wide.pool_size, 7,
            "{label}: ten C13 reviewers less B's three"
        );
    }
}

#[tokio::test]
async fn r45_two_redraws_of_one_draw_executed_at_once_leave_one_live_draw() {
    for db in testing::backends("reviewers", &qaward_reviewers::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db).await;
        let office = set_up(&mut r, 30).await;
        let a = r
            .client
            .prepare_draw(as_(&office, prepare("", "a")))
            .await
            .unwrap()
            .into_inner();
        let mut redraws = Vec::new();
        for i in 0..4 {
            redraws.push(
                r.client
                    .prepare_draw(as_(&office, prepare(&a.name, &format!("r{i}"))))
                    .await
                    .unwrap()
                    .into_inner()
                    .name,
            );
        }
        // Every part but the last reveal of each, then the last reveals all at once.
        for name in &redraws {
            all_but_last_reveal(&mut r.client, &r.keys, name, "together")
                .await
                .unwrap();
        }
        let calls: Vec<_> = redraws
            .iter()
            .map(|name| {
                let mut client = r.client.clone();
                let req = last_reveal(&r.keys, name, "together", 1);
                tokio::spawn(async move { client.reveal_draw_entropy(req).await })
            })
            .collect();
        let mut results = Vec::new();
        for call in calls {
            results.push(call.await);
        }
        assert!(
            results.iter().any(|r| r.as_ref().unwrap().is_ok()),
            "{label}"
        );
        let mut executed = 0;
        for name in redraws.iter().chain([&a.name]) {
            let d = r
                .client
                .get_draw(as_(&office, pb::GetDrawRequest { name: name.clone() }))
                .await
                .unwrap()
                .into_inner();
            if d.state == pb::DrawState::Executed as i32 {
                executed += 1;
            }
        }
        assert_eq!(executed, 1, "{label}: one live draw in the chain");
    }
}
