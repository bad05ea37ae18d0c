//! Art. 16(5)3: during the site visits a reviewer of the group who is not its leader stops the
//! visit of one applicant on a suspected mismatch; scoring freezes that applicant's site sheets;
//! the office verifies, finds the stop unfounded, and the visit resumes on the record.

use std::time::{Duration, Instant};

use qaward_proto::qaward::{applications::v1 as pb, scoring::v1 as spb};

use crate::call;

use super::{Failure, Walk, failed, rid};

impl Walk {
    pub(super) async fn site_stop(
        &mut self,
        site: &pb::ReviewGroup,
        leader: &str,
    ) -> Result<(), Failure> {
        let Some(i) = self.plan.site_stop else {
            return Ok(());
        };
        let Some(member) = site
            .members
            .iter()
            .find(|m| m.trim_start_matches("reviewers/") != leader.trim_start_matches("reviewers/"))
            .cloned()
        else {
            return Ok(());
        };
        let cycle = self.cycle();
        let token = self.reviewer_token(&member);
        call!(
            self.door.apps,
            stop_site_visit,
            &token,
            pb::StopSiteVisitRequest {
                name: self.app(i),
                finding: "现场查看的检测记录日期与自评报告不符，疑为临时补做".into(),
                request_id: rid(&format!("demo-{cycle}-site-stop-{i}")),
            }
        )
        .map_err(failed("stop a site visit"))?;
        self.say.heading(&format!(
            "Site visit of {} stopped by {member}, a member, not the leader (Art. 16(5)3)",
            self.name(i)
        ));
        // Scoring freezes the applicant's site sheets (the stop travels through the outbox).
        self.wait_for_hold(i, true).await?;
        self.say
            .line("scoring froze its site sheets (R-15 VISIT_STOPPED)");
        let resumed = call!(
            self.door.apps,
            transition_application,
            &self.office,
            pb::TransitionApplicationRequest {
                name: self.app(i),
                to_stage: pb::ApplicationStage::SiteVisit as i32,
                reason: "经核实，检测记录按期形成，中止理由不成立".into(),
                request_id: rid(&format!("demo-{cycle}-site-resume-{i}")),
            }
        )
        .map_err(failed("find the stop unfounded"))?;
        self.record(&resumed);
        let why = resumed.last_decision.unwrap_or_default();
        self.say.line(&format!(
            "the office finds it unfounded: {} {}",
            why.rule, why.message
        ));
        self.wait_for_hold(i, false).await?;
        self.say
            .line("the visit resumes and its sheets are free again");
        Ok(())
    }

    /// Waits until scoring's site assignment of entrant `i` is held (or free).
    async fn wait_for_hold(&mut self, i: usize, held: bool) -> Result<(), Failure> {
        let started = Instant::now();
        loop {
            let listed = call!(
                self.door.scoring,
                list_assignments,
                &self.office,
                spb::ListAssignmentsRequest {
                    cycle: self.cycle(),
                    application: self.app(i),
                    page_size: 10,
                    page_token: String::new(),
                }
            )
            .map_err(failed("read the site assignment"))?;
            let now = listed
                .assignments
                .iter()
                .find(|a| a.stage == spb::Stage::Site as i32)
                .is_some_and(|a| !a.hold_reason.is_empty());
            if now == held {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(30) {
                return Err(Failure(format!(
                    "scoring did not {} the site sheets within 30 s",
                    if held { "freeze" } else { "free" }
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
