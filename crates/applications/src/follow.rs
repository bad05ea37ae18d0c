//! What the reviewers service's changes set off here (issue 24). The reviewers service calls
//! nobody; this service follows its event feed (`ListEvents`, with its own `service` token)
//! and applies each event once ([`qaward_kit::events::Follower`]), in one transaction with
//! the record that it was applied:
//!
//! | event | consequence |
//! |---|---|
//! | a member replaced (R-41, R-45) | the group's members, and so who reads its applications, are the panel's; each scoring assignment is reseated (through the outbox, below); the office is told |
//! | a draw superseded by its redraw (R-45) | the group follows the redraw's draw, panel and members, as above |
//! | a cooling-off violation (R-44) | the office of each programme whose review it breaks is told |
//!
//! What scoring must do travels through this service's outbox as `scoring.*` events, which
//! [`ScoringSink`] hands to the scoring service with the event's id as `request_id`: a
//! redelivered event is answered, not applied, twice.

use prost::Message;
use qaward_kit::{
    Error, Result,
    audit::{self, AuditRecord},
    clock::unix_micros,
    db::{Conn, Database},
    events::{Apply, Feed, Follower, Published},
    notify::{self, TokenSource},
    outbox::{self, Event, Sink},
    server::ServiceContext,
    upstream::Upstream,
};
use qaward_proto::qaward::{
    reviewers::v1::{self as rpb, reviewer_service_client::ReviewerServiceClient},
    scoring::v1::{self as spb, scoring_service_client::ScoringServiceClient},
};

use crate::{
    domain::review::{self, ReviewStage},
    grpc::{assigned_people, notice},
    store,
};

/// The source name this service's cursor over the reviewers' feed is kept under.
pub const REVIEWERS: &str = "reviewers";

/// Outbox topics of what scoring must do; `ScoringSink` takes every `scoring.` topic.
pub const RESEAT: &str = "scoring.reseat";
pub const EXCLUDE: &str = "scoring.exclude";
pub const HOLD: &str = "scoring.hold";

/// The reviewers service's feed, read over its API.
pub struct ReviewersFeed {
    pub client: ReviewerServiceClient<Upstream>,
    pub token: TokenSource,
}

impl Feed for ReviewersFeed {
    async fn fetch(&self, after: i64, limit: i64) -> Result<(Vec<Published>, i64)> {
        let mut request = tonic::Request::new(rpb::ListEventsRequest {
            after_sequence: after,
            page_size: limit.clamp(1, 500) as i32,
            page_token: String::new(),
        });
        bearer(&mut request, &self.token);
        let page = self
            .client
            .clone()
            .list_events(request)
            .await
            .map_err(|s| Error::from_upstream("reviewers", &s))?
            .into_inner();
        let events = page
            .events
            .into_iter()
            .map(|e| {
                let created = e
                    .create_time
                    .as_ref()
                    .and_then(|t| qaward_kit::convert::timestamp_from_pb(t, "create_time").ok())
                    .map(unix_micros)
                    .unwrap_or_default();
                let topic = match &e.kind {
                    Some(rpb::reviewers_event::Kind::MemberReplaced(_)) => {
                        "reviewers.member_replaced"
                    }
                    Some(rpb::reviewers_event::Kind::DrawSuperseded(_)) => {
                        "reviewers.draw_superseded"
                    }
                    Some(rpb::reviewers_event::Kind::CoolingOffViolation(_)) => {
                        "reviewers.cooling_off_violation"
                    }
                    None => "reviewers.unknown",
                };
                Published {
                    seq: e.sequence,
                    event: Event {
                        id: e.id.clone(),
                        topic: topic.into(),
                        payload: e.encode_to_vec(),
                        created_micros: created,
                    },
                }
            })
            .collect();
        Ok((events, page.last_sequence))
    }
}

fn bearer<T>(request: &mut tonic::Request<T>, token: &TokenSource) {
    if let Ok(v) = format!("Bearer {}", token()).parse() {
        request.metadata_mut().insert("authorization", v);
    }
    qaward_kit::telemetry::inject_context(request.metadata_mut());
}

/// Applies the reviewers' events here.
pub struct Consequences {
    /// The services' issuer, for the audit records this service writes on its own account.
    pub issuer: String,
}

impl Consequences {
    fn record(&self, action: &str, resource: impl Into<String>) -> AuditRecord {
        AuditRecord::by_service(&self.issuer, "applications", action, resource)
    }

    /// the groups seated from the panel (or from a draw it supersedes) take
    /// its members; each of their scoring assignments is reseated.
    async fn seat(
        &self,
        conn: &mut Conn,
        at: time::OffsetDateTime,
        seated: &rpb::PanelMembers,
        superseded: &[String],
        why: &str,
        event: &str,
    ) -> Result<Vec<store::ReviewGroupRow>> {
        let id = |name: &str| {
            qaward_proto::names::reviewer_id(name)
                .unwrap_or(name)
                .to_string()
        };
        let members = review::seated(
            &id(&seated.leader),
            &seated.members.iter().map(|m| id(m)).collect::<Vec<_>>(),
        );
        let mut changed = Vec::new();
        for mut g in store::groups_seated_by(conn, &seated.panel, superseded).await? {
            if g.members == members && g.panel == seated.panel {
                continue;
            }
            let before = std::mem::replace(&mut g.members, members.clone());
            g.draw = seated.draw.clone();
            g.panel = seated.panel.clone();
            store::reseat_group(conn, &g, unix_micros(at)).await?;
            let stage = ReviewStage::parse(&g.stage)
                .ok_or_else(|| Error::internal(format!("group stage {:?}", g.stage)))?;
            for (n, (_, assignment)) in g.applications.iter().enumerate() {
                if assignment.is_empty() {
                    continue;
                }
                let request = spb::ReseatScorersRequest {
                    assignment: assignment.clone(),
                    people: assigned_people(stage, &members, &g.advisors),
                    // Scoring keeps 500 characters of a reason; a longer note must not make the
                    // relay retry a refusal for ever.
                    reason: why.chars().take(500).collect(),
                    request_id: String::new(),
                };
                // One outbox event per assignment, its id derived from the reviewers' event:
                // applied again, it is the same event and the outbox keeps one.
                let mut e = Event::new(RESEAT, request.encode_to_vec());
                e.id = format!("{event}-{n}");
                outbox::enqueue(conn, at, &e).await?;
            }
            let record = self
                .record("review_group.reseat", group_name(&g))
                .because(why.to_string())
                .with_detail(serde_json::json!({
                    "before": before, "after": g.members, "draw": g.draw, "panel": g.panel, "event": event,
                }));
            audit::append(conn, at, &record).await?;
            changed.push(g);
        }
        Ok(changed)
    }
}

fn group_name(g: &store::ReviewGroupRow) -> String {
    format!(
        "{}/reviewGroups/{}",
        qaward_proto::names::cycle(&g.programme_id, g.year),
        g.id
    )
}

impl Apply for Consequences {
    async fn apply(&self, conn: &mut Conn, e: &Published, at: time::OffsetDateTime) -> Result<()> {
        let event = rpb::ReviewersEvent::decode(e.event.payload.as_slice())
            .map_err(|x| Error::internal(format!("reviewers event {}: {x}", e.seq)))?;
        let programme = event
            .programme
            .strip_prefix("programmes/")
            .unwrap_or_default()
            .to_string();
        match event.kind {
            Some(rpb::reviewers_event::Kind::MemberReplaced(m)) => {
                let seated = m.panel.unwrap_or_default();
                let why = format!("{}: {} → {}（{}）", m.rule, m.leaving, m.joining, m.note);
                for g in self.seat(conn, at, &seated, &[], &why, &event.id).await? {
                    notify::enqueue(
                        conn,
                        at,
                        &notice(
                            "panel.member_replaced",
                            &format!("office.{}", g.programme_id),
                            "",
                            &[
                                ("group", group_name(&g)),
                                ("leaving", m.leaving.clone()),
                                ("joining", m.joining.clone()),
                                ("reason", format!("{}，{}", m.rule, m.note)),
                            ],
                        ),
                    )
                    .await?;
                }
            }
            Some(rpb::reviewers_event::Kind::DrawSuperseded(s)) => {
                let seated = s.panel.unwrap_or_default();
                let why = format!(
                    "R-45: 重新抽取 {} 取代 {}",
                    seated.draw,
                    s.superseded.join("、")
                );
                self.seat(conn, at, &seated, &s.superseded, &why, &event.id)
                    .await?;
            }
            Some(rpb::reviewers_event::Kind::CoolingOffViolation(v)) => {
                // Another award programme's review: not this service's to tell.
                let ours = match store::get_programme(conn, &programme).await {
                    Ok(_) => true,
                    Err(e) if e.code == qaward_kit::ErrorCode::NotFound => false,
                    Err(e) => return Err(e),
                };
                if ours {
                    notify::enqueue(
                        conn,
                        at,
                        &notice(
                            "reviewer.cooling_off_violation",
                            &format!("office.{programme}"),
                            "",
                            &[
                                ("reviewer", v.reviewer.clone()),
                                ("enterprise_code", v.enterprise_code.clone()),
                                ("reasons", v.reasons.join("；")),
                                ("flag", v.flag.clone()),
                            ],
                        ),
                    )
                    .await?;
                    let record = self
                        .record("reviewer.cooling_off_violation", v.reviewer.clone())
                        .because("R-44")
                        .with_detail(serde_json::json!({ "programme": programme, "flag": v.flag, "relation": v.relation }));
                    audit::append(conn, at, &record).await?;
                }
            }
            // A kind this version does not know: applied as nothing, on the record.
            None => tracing::warn!(seq = e.seq, "a reviewers event of an unknown kind"),
        }
        Ok(())
    }
}

/// Hands `scoring.*` outbox events to the scoring service on this service's own account.
pub struct ScoringSink {
    pub client: ScoringServiceClient<Upstream>,
    pub token: TokenSource,
}

impl Sink for ScoringSink {
    async fn deliver(&self, event: &Event) -> Result<(), String> {
        let outcome = match event.topic.as_str() {
            RESEAT => {
                let mut r = spb::ReseatScorersRequest::decode(event.payload.as_slice())
                    .map_err(|e| e.to_string())?;
                r.request_id = event.id.clone();
                let mut request = tonic::Request::new(r);
                bearer(&mut request, &self.token);
                self.client.clone().reseat_scorers(request).await.map(drop)
            }
            EXCLUDE => {
                let mut r = spb::ExcludeApplicationRequest::decode(event.payload.as_slice())
                    .map_err(|e| e.to_string())?;
                r.request_id = event.id.clone();
                let mut request = tonic::Request::new(r);
                bearer(&mut request, &self.token);
                self.client
                    .clone()
                    .exclude_application(request)
                    .await
                    .map(drop)
            }
            HOLD => {
                let mut r = spb::HoldAssignmentRequest::decode(event.payload.as_slice())
                    .map_err(|e| e.to_string())?;
                r.request_id = event.id.clone();
                let mut request = tonic::Request::new(r);
                bearer(&mut request, &self.token);
                self.client.clone().hold_assignment(request).await.map(drop)
            }
            other => return Err(format!("no scoring call for outbox topic {other}")),
        };
        outcome.map_err(|s| format!("scoring {:?}: {}", s.code(), s.message()))
    }
}

/// Writes what scoring must do about a disqualified application to the outbox (R-15, R-20,
/// scoring takes it out of the ranking, with the rule and finding; a ranking already
/// released gets a new version with the reason, the one before kept.
pub async fn exclude_from_results(
    conn: &mut Conn,
    at: time::OffsetDateTime,
    row: &store::ApplicationRow,
    rule: &str,
    finding: &str,
    settings: spb::ResultSettings,
) -> Result<()> {
    let cycle = qaward_proto::names::cycle(&row.programme_id, row.year);
    let request = spb::ExcludeApplicationRequest {
        cycle: cycle.clone(),
        exclusion: Some(spb::Exclusion {
            application: crate::grpc::application_resource(row),
            rule: rule.to_string(),
            reason: finding.chars().take(500).collect(),
            ..Default::default()
        }),
        request_id: String::new(),
        // With the cycle's numbers, so that a ranking already released gets a new version
        // rather than an edit.
        settings: Some(settings),
    };
    outbox::enqueue(conn, at, &Event::new(EXCLUDE, request.encode_to_vec())).await
}

/// Writes to the outbox that scoring freezes (`hold`) or frees the sheets of a site group's
/// assignment: a stopped visit waits for the office (R-15, Art. 16(5)3).
pub async fn hold_sheets(
    conn: &mut Conn,
    at: time::OffsetDateTime,
    assignment: &str,
    hold: bool,
    reason: &str,
) -> Result<()> {
    let request = spb::HoldAssignmentRequest {
        assignment: assignment.to_string(),
        hold,
        reason: reason.chars().take(500).collect(),
        request_id: String::new(),
    };
    outbox::enqueue(conn, at, &Event::new(HOLD, request.encode_to_vec())).await
}

/// Starts this service's outbox relay (notifications, and `scoring.*` to scoring) and its
/// follower of the reviewers' events, for as long as the process runs.
pub fn start(db: &Database, ctx: &ServiceContext) -> Result<(), String> {
    use qaward_kit::config::ServiceKind;
    let token = qaward_kit::auth::service_token_source(&ctx.config, crate::KIND.as_str())
        .map_err(|e| format!("the applications service's own token: {e}"))?;
    let channel =
        |kind| qaward_kit::upstream::connect(ctx, kind, Some(std::time::Duration::from_secs(30)));
    spawn(
        db,
        ctx,
        Upstreams {
            reviewers: channel(ServiceKind::Reviewers)?,
            scoring: channel(ServiceKind::Scoring)?,
            notifications: channel(ServiceKind::Notifications)?,
        },
        token,
    );
    Ok(())
}

/// The services this one hands work to and follows.
pub struct Upstreams {
    pub reviewers: Upstream,
    pub scoring: Upstream,
    pub notifications: Upstream,
}

/// [`start`] over given channels and token (a test's loopback services).
pub fn spawn(db: &Database, ctx: &ServiceContext, to: Upstreams, token: TokenSource) {
    let sink = outbox::ByTopic {
        prefix: "scoring.",
        first: ScoringSink {
            client: ScoringServiceClient::new(to.scoring),
            token: token.clone(),
        },
        rest: notify::NotifySink::new(to.notifications, token.clone()),
    };
    outbox::Relay::new(
        db.clone(),
        sink,
        ctx.clock.clone(),
        outbox::RelayOptions {
            poll: std::time::Duration::from_millis(200),
            ..Default::default()
        },
    )
    .spawn();
    let mut follower = Follower::new(
        REVIEWERS,
        db.clone(),
        ReviewersFeed {
            client: ReviewerServiceClient::new(to.reviewers),
            token,
        },
        Consequences {
            issuer: ctx.config.auth.service_issuer.clone(),
        },
        ctx.clock.clone(),
    );
    follower.poll = std::time::Duration::from_millis(250);
    tokio::spawn(follower.run(std::future::pending()));
}
