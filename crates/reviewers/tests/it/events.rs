//! The events other services follow (issue 24): a replaced member, a superseded draw and a
//! cooling-off violation each reach the feed, numbered, with the panel's sitting members; only
//! a service reads the feed. Before, none of these left the reviewers service, so the
//! applications and scoring services kept a replaced member's seat and nobody was told
//! of an R-44 violation.

use std::sync::Arc;

use qaward_kit::{
    auth::Role,
    clock::SystemClock,
    events::FeedSink,
    outbox::{Relay, RelayOptions},
    testing,
};
use tonic::Code;

use super::{applicant, as_, date, draw_request, execute, pb, set_up, start};

#[tokio::test]
async fn r41_r44_r45_replacements_redraws_and_cooling_off_violations_reach_the_feed() {
    for db in testing::backends("reviewers", &qaward_reviewers::MIGRATIONS).await {
        let label = db.label;
        let feed_db = db.db.clone();
        let mut r = start(db).await;
        let office = set_up(&mut r, 30).await;
        let service = r.keys.token("system:applications", Role::Service);
        let relay = Relay::new(
            feed_db.clone(),
            FeedSink::new(feed_db.clone(), Arc::new(SystemClock)),
            Arc::new(SystemClock),
            RelayOptions::default(),
        );
        let list = |after: i64| pb::ListEventsRequest {
            after_sequence: after,
            page_size: 0,
            page_token: String::new(),
        };

        // Only a service reads the feed: it spans every programme.
        let refused = r
            .client
            .list_events(as_(&office, list(0)))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{label}");

        let d = r
            .client
            .prepare_draw(as_(
                &office,
                pb::PrepareDrawRequest {
                    parent: "programmes/yunyang".into(),
                    draw: Some(draw_request(3, 2, 2, 6)),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let x = execute(&mut r, &d.name, "42").await.unwrap().draw.unwrap();
        let second = x.members[1].clone();

        // A tie with the applicant from inside the review's window: a late conflict
        // and a cooling-off violation, which opens a disciplinary flag.
        r.client
            .create_relation(as_(
                &office,
                pb::CreateRelationRequest {
                    parent: second.clone(),
                    relation: Some(pb::Relation {
                        enterprise_code: applicant(),
                        kind: pb::RelationKind::Consultancy as i32,
                        start_date: date(2026, 3, 5),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap();
        let flags = r
            .client
            .list_flags(as_(
                &office,
                pb::ListFlagsRequest {
                    parent: second.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .flags;
        assert_eq!(flags.len(), 1, "{label}: the R-44 flag");
        assert_eq!(flags[0].kind, pb::FlagKind::Disciplinary as i32);
        assert!(flags[0].note.contains("R-44"), "{}", flags[0].note);

        // A note travels in the event and the office's notice: bounded at the edge.
        let long = r
            .client
            .replace_member(as_(
                &office,
                pb::ReplaceMemberRequest {
                    panel: x.panel.clone(),
                    reviewer: second.clone(),
                    reason: pb::ReplaceReason::LateConflict as i32,
                    note: "长".repeat(501),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(long.code(), Code::InvalidArgument, "{label}");
        assert!(long.message().contains("note"), "{}", long.message());
        r.client
            .replace_member(as_(
                &office,
                pb::ReplaceMemberRequest {
                    panel: x.panel.clone(),
                    reviewer: second.clone(),
                    reason: pb::ReplaceReason::LateConflict as i32,
                    note: String::new(),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap();

        // Nothing is in the feed until the relay has run: events leave with their commit.
        let empty = r
            .client
            .list_events(as_(&service, list(0)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!((empty.events.len(), empty.last_sequence), (0, 0), "{label}");
        relay.run_once().await.unwrap();
        let feed = r
            .client
            .list_events(as_(&service, list(0)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(feed.last_sequence, 2, "{label}");
        assert_eq!(
            feed.next_page_token, "",
            "{label}: the whole feed in one page"
        );
        let paged = r
            .client
            .list_events(as_(
                &service,
                pb::ListEventsRequest {
                    page_size: 1,
                    ..list(0)
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let rest = r
            .client
            .list_events(as_(
                &service,
                pb::ListEventsRequest {
                    page_token: paged.next_page_token.clone(),
                    ..list(0)
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (paged.events[0].sequence, rest.events[0].sequence),
            (1, 2),
            "{label}"
        );
        let seqs: Vec<i64> = feed.events.iter().map(|e| e.sequence).collect();
        assert_eq!(seqs, vec![1, 2]);
        let Some(pb::reviewers_event::Kind::CoolingOffViolation(v)) = &feed.events[0].kind else {
            panic!(
                "{label}: first a cooling-off violation, got {:?}",
                feed.events[0]
            );
        };
        assert_eq!(
            (v.reviewer.as_str(), v.flag.as_str()),
            (second.as_str(), flags[0].name.as_str())
        );
        assert_eq!(feed.events[0].programme, "programmes/yunyang");
        let Some(pb::reviewers_event::Kind::MemberReplaced(m)) = &feed.events[1].kind else {
            panic!("{label}: then the replacement, got {:?}", feed.events[1]);
        };
        assert_eq!(m.rule, "R-41");
        assert_eq!(m.leaving, second);
        assert_eq!(m.joining, x.backup_order[0]);
        let seated = m.panel.as_ref().unwrap();
        assert_eq!(seated.panel, x.panel);
        assert!(!seated.members.contains(&second) && seated.members.contains(&m.joining));
        assert_eq!(seated.members.len(), 3);

        // A redraw supersedes the draw: its event names the draw and the redraw's panel.
        let redraw = r
            .client
            .prepare_draw(as_(
                &office,
                pb::PrepareDrawRequest {
                    parent: "programmes/yunyang".into(),
                    draw: Some(pb::Draw {
                        replaces_draw: d.name.clone(),
                        ..draw_request(3, 0, 2, 6)
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let y = execute(&mut r, &redraw.name, "43")
            .await
            .unwrap()
            .draw
            .unwrap();
        relay.run_once().await.unwrap();
        let more = r
            .client
            .list_events(as_(&service, list(2)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(more.events.len(), 1, "{label}: read after the last applied");
        let Some(pb::reviewers_event::Kind::DrawSuperseded(s)) = &more.events[0].kind else {
            panic!("{label}: a superseded draw, got {:?}", more.events[0]);
        };
        assert_eq!(s.superseded, vec![d.name.clone()]);
        let p = s.panel.as_ref().unwrap();
        assert_eq!(
            (p.draw.as_str(), p.panel.as_str()),
            (y.name.as_str(), y.panel.as_str())
        );
        assert_eq!(p.members, y.members);

        let bad = r
            .client
            .list_events(as_(
                &service,
                pb::ListEventsRequest {
                    after_sequence: 0,
                    page_size: 501,
                    page_token: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(bad.code(), Code::InvalidArgument);
    }
}
