//! CheckConsistency (issue 24): compares what this service holds about a cycle with what the
//! reviewers and scoring services hold, under the office's own token; the comparisons are
//! `domain::consistency`'s.

use qaward_kit::{
    Result,
    auth::{Caller, relay_token},
    events,
};
use qaward_proto::qaward::{applications::v1 as pb, reviewers::v1 as rpb, scoring::v1 as spb};
use tonic::Request;

use super::{
    ApplicationsApi, assigned_people,
    names::{application_resource, cycle_id},
    upstream,
};
use crate::{
    domain::{
        consistency::{self, Disagreement, PANEL_MEMBERS, SCORERS},
        review::{GroupState, ReviewStage},
        stage::Stage,
    },
    follow, store,
};

impl ApplicationsApi {
    pub(super) async fn consistency_check(
        &self,
        c: &Caller,
        r: pb::CheckConsistencyRequest,
    ) -> Result<pb::ConsistencyReport> {
        let (p, y) = cycle_id(&r.cycle, "cycle")?;
        c.acts_for(&p)?;
        let mut conn = self.db().pool().acquire().await?;
        let cycle = store::get_cycle(&mut conn, &p, y).await?;
        let settings = store::settings_version(&mut conn, &p, cycle.settings_version).await?;
        let mut groups = Vec::new();
        let mut page =
            qaward_kit::paging::Page::parse(qaward_kit::paging::MAX_PAGE_SIZE as i32, "")?;
        loop {
            let mut rows = store::list_review_groups(&mut conn, &p, y, &page).await?;
            let next = page.finish(&mut rows, |g| g.id.clone());
            groups.extend(rows);
            if next.is_empty() {
                break;
            }
            page =
                qaward_kit::paging::Page::parse(qaward_kit::paging::MAX_PAGE_SIZE as i32, &next)?;
        }
        let applications = store::applications_in(&mut conn, &p, y, "").await?;
        drop(conn);

        let mut found: Vec<Disagreement> = Vec::new();
        let mut report = pb::ConsistencyReport {
            cycle: r.cycle.clone(),
            ..Default::default()
        };
        for g in groups.iter().filter(|g| g.state == GroupState::Started) {
            report.groups_checked += 1;
            let subject = format!("{}/reviewGroups/{}", r.cycle, g.id);
            let here: Vec<String> = g.members.iter().map(|(m, _)| m.clone()).collect();
            let mut get = Request::new(rpb::GetPanelRequest {
                name: g.panel.clone(),
            });
            relay_token(c, &mut get);
            let panel = self
                .reviewers()
                .get_panel(get)
                .await
                .map_err(upstream("reviewers"))?
                .into_inner();
            let sitting: Vec<String> = panel
                .members
                .iter()
                .filter(|m| {
                    m.state == rpb::AssignmentState::Pending as i32
                        || m.state == rpb::AssignmentState::Accepted as i32
                })
                .map(|m| {
                    qaward_proto::names::reviewer_id(&m.reviewer)
                        .unwrap_or(&m.reviewer)
                        .to_string()
                })
                .collect();
            found.extend(consistency::compare(
                PANEL_MEMBERS,
                &subject,
                &here,
                &sitting,
            ));
            let Some(stage) = ReviewStage::parse(&g.stage) else {
                continue;
            };
            let expected: Vec<String> = assigned_people(stage, &g.members, &g.advisors)
                .iter()
                .map(|p| format!("{}:{}", p.reviewer, p.role))
                .collect();
            for (app, assignment) in &g.applications {
                if assignment.is_empty() {
                    continue;
                }
                report.assignments_checked += 1;
                let row = applications.iter().find(|a| &a.id == app);
                let mut list = Request::new(spb::ListAssignmentsRequest {
                    cycle: r.cycle.clone(),
                    application: row.map(application_resource).unwrap_or_default(),
                    page_size: 10,
                    page_token: String::new(),
                });
                relay_token(c, &mut list);
                let there: Vec<String> = self
                    .scoring()
                    .list_assignments(list)
                    .await
                    .map_err(upstream("scoring"))?
                    .into_inner()
                    .assignments
                    .into_iter()
                    .find(|a| &a.name == assignment)
                    .map(|a| {
                        a.people
                            .iter()
                            .map(|p| format!("{}:{}", p.reviewer, p.role))
                            .collect()
                    })
                    .unwrap_or_default();
                found.extend(consistency::compare(SCORERS, assignment, &expected, &there));
            }
        }
        let results = self.scoring_results(c, &p, y, &settings).await?;
        for a in &applications {
            let name = application_resource(a);
            let scored = results.results.iter().any(|x| x.application == name);
            let disqualified = Stage::parse(&a.stage) == Some(Stage::Disqualified);
            // Only an application scoring knows of can be ranked by it.
            if !(scored || disqualified) {
                continue;
            }
            report.applications_checked += 1;
            let excluded = results.exclusions.iter().any(|x| x.application == name);
            found.extend(consistency::exclusion(&name, disqualified, excluded));
        }
        let progress = events::progress(self.db(), follow::REVIEWERS).await?;
        report.events_behind = progress.behind();
        report.follower_error = progress.last_error.unwrap_or_default();
        report.disagreements = found
            .into_iter()
            .map(|d| pb::Disagreement {
                kind: d.kind.to_string(),
                subject: d.subject,
                here: d.here,
                there: d.there,
            })
            .collect();
        Ok(report)
    }
}
