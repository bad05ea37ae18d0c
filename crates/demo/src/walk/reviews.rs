//! The reviews: groups drawn and checked offline, sealed sheets, consensus, release, the
//! defence and the site visit.

use qaward_kit::auth::Role;
use qaward_proto::qaward::{
    applications::v1 as pb,
    common::v1::{Date, Decimal},
    reviewers::v1 as rpb,
    scoring::v1 as spb,
};
use std::collections::BTreeMap;

use crate::{call, sample};

use super::{Failure, Walk, date_of, failed, inputs, rid, stage_name};

impl Walk {
    /// Prepares the group (the draw is fixed), has the office and the supervisor commit to
    /// secrets, fixes the dice thrown in public, has both reveal — the last reveal executes the
    /// draw — starts the group, and reports the draw.
    pub(super) async fn group(
        &mut self,
        stage: pb::ReviewStage,
        entrants: &[usize],
        window: (i64, i64),
        entropy: &str,
    ) -> Result<(pb::ReviewGroup, rpb::Draw), Failure> {
        let label = stage
            .as_str_name()
            .trim_start_matches("REVIEW_STAGE_")
            .to_lowercase();
        let start = self.clock.date(self.plan.window_offset + window.0);
        let end = self.clock.date(self.plan.window_offset + window.1);
        let cycle = self.cycle();
        let prepared = call!(
            self.door.apps,
            prepare_review_group,
            &self.office,
            pb::PrepareReviewGroupRequest {
                parent: cycle.clone(),
                review_group: Some(pb::ReviewGroup {
                    stage: stage as i32,
                    applications: entrants.iter().map(|i| self.app(*i)).collect(),
                    window_start: Some(start),
                    window_end: Some(end),
                    entropy_source: "办公室与监督人员各自承诺的秘密数，及承诺齐备后监督人员在场公开投掷的四枚骰子".into(),
                    fixes_public_value: true,
                    advisors: if stage == pb::ReviewStage::Defence {
                        vec!["reviewers/CQZJ-GW01".into()]
                    } else {
                        Vec::new()
                    },
                    ..Default::default()
                }),
                request_id: rid(&format!("demo-{cycle}-prepare-{label}")),
            }
        )
        .map_err(failed("prepare a review group"))?;
        let parts = self.entropy(&prepared.draw, &label, entropy).await?;
        let started = call!(
            self.door.apps,
            start_review_group,
            &self.office,
            pb::StartReviewGroupRequest {
                name: prepared.name.clone(),
                entropy: String::new(),
                request_id: rid(&format!("demo-{cycle}-start-{label}")),
            }
        )
        .map_err(failed("start a review group"))?;
        let draw = call!(
            self.door.reviewers,
            get_draw,
            &self.office,
            rpb::GetDrawRequest {
                name: started.draw.clone()
            }
        )
        .map_err(failed("read the draw"))?;
        self.outcome.draws.push(draw.name.clone());
        self.report_draw(&label, &started, &draw, &parts, entropy);
        Ok((started, draw))
    }

    /// the office and the supervisor each commit to a secret, the dice thrown in public
    /// are fixed once both commitments are in, both reveal, and the last reveal executes the
    /// draw. Returns each party's commitment.
    async fn entropy(
        &mut self,
        draw: &str,
        label: &str,
        dice: &str,
    ) -> Result<Vec<(String, String)>, Failure> {
        let supervisor = self.supervisor_token();
        let parties = [("office", self.office.clone()), ("supervisor", supervisor)];
        let (commitments, _) = self
            .door
            .draw_by_parties(draw, &parties, Some(dice), label, &*self.randomness)
            .await
            .map_err(failed("take part in a draw's entropy"))?;
        Ok(commitments)
    }

    pub(super) fn report_draw(
        &mut self,
        label: &str,
        g: &pb::ReviewGroup,
        draw: &rpb::Draw,
        commitments: &[(String, String)],
        entropy: &str,
    ) {
        let names: BTreeMap<String, &str> = sample::reviewers()
            .into_iter()
            .map(|r| (format!("reviewers/{}", r.certificate), r.name))
            .collect();
        let who = |r: &str| {
            let id = r.trim_start_matches("reviewers/");
            format!(
                "{} ({id})",
                names
                    .get(&format!("reviewers/{id}"))
                    .copied()
                    .unwrap_or("?")
            )
        };
        self.say.heading(&format!(
            "Draw for the {label} group: {} ({} to {})",
            draw.name,
            g.window_start.as_ref().map(date_of).unwrap_or_default(),
            g.window_end.as_ref().map(date_of).unwrap_or_default()
        ));
        self.say.line(&format!(
            "fixed before any secret: pool of {} eligible reviewers (pool hash {}…), inputs hash {}…; entropy from \"{}\"",
            draw.pool_size,
            &draw.pool_hash.get(..16).unwrap_or_default(),
            &draw.inputs_hash.get(..16).unwrap_or_default(),
            draw.entropy_source
        ));
        self.say.line(&format!(
            "committed before any reveal (R-53): {}",
            commitments
                .iter()
                .map(|(party, c)| format!("{party} {}…", c.get(..16).unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        for x in &draw.exclusions {
            self.say.line(&format!(
                "recused: {} — {} ({})",
                who(&x.reviewer),
                x.code,
                x.rule
            ));
        }
        self.say.line(&format!(
            "dice thrown \"{entropy}\", both secrets revealed, entropy {}…: members {}; leader {}; backups in order {}",
            draw.entropy.get(..16).unwrap_or_default(),
            draw.members
                .iter()
                .map(|m| who(m))
                .collect::<Vec<_>>()
                .join(", "),
            who(&draw.leader),
            draw.backup_order
                .iter()
                .map(|m| who(m))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        match qaward_reviewers::verify_record(&draw.record_json) {
            Ok(v) if v.matches => self
                .say
                .line(&format!("replayed offline: MATCH — {}", v.message)),
            Ok(v) => self
                .say
                .line(&format!("replayed offline: MISMATCH — {}", v.message)),
            Err(e) => self.say.line(&format!("the record does not replay: {e}")),
        }
        if let Some(dir) = &self.records {
            let file = dir.join(format!("draw-{}.json", self.outcome.draws.len()));
            if std::fs::create_dir_all(dir).is_ok()
                && std::fs::write(&file, &draw.record_json).is_ok()
            {
                self.say.line(&format!(
                    "anyone can check it: qaward draw verify {}   (or python3 docs/draw_replay.py {})",
                    file.display(),
                    file.display()
                ));
            }
        }
    }

    pub(super) fn reviewer_token(&self, member: &str) -> String {
        self.tokens.issue(
            Role::Reviewer,
            member.trim_start_matches("reviewers/"),
            None,
            None,
        )
    }

    /// Waits until the server's day (China time) reaches `day`, a few hours into it.
    async fn wait_for_day(&mut self, day: Option<&Date>) -> Result<(), Failure> {
        let Some(day) = day else { return Ok(()) };
        let Some(start) = time::Month::try_from(day.month as u8)
            .ok()
            .and_then(|m| time::Date::from_calendar_date(day.year, m, day.day as u8).ok())
        else {
            return Ok(());
        };
        let at = start
            .with_hms(6, 0, 0)
            .map_err(|e| Failure(e.to_string()))?
            .assume_offset(qaward_kit::clock::CHINA);
        let waited = std::time::Instant::now();
        if self.server_now() < at {
            self.say.line(&format!(
                "waiting for the hearing's day, {} (the server's clock runs at about {:.0}× real time)…",
                date_of(day),
                self.clock.speed
            ));
        }
        while self.server_now() < at {
            if waited.elapsed() > std::time::Duration::from_secs(300) {
                return Err(Failure(format!(
                    "the server did not reach {} within 5 minutes",
                    date_of(day)
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// A reviewer's sheet saved, then sealed (submitted): from then on it cannot change.
    pub(super) async fn seal(
        &mut self,
        token: &str,
        sheet: spb::Sheet,
        step: &str,
    ) -> Result<(), Failure> {
        // The walk's idea of the server's day is an estimate from the times the server has
        // reported; under load it can run a few simulated hours ahead. A sheet refused as
        // before the panel's window is saved again a moment later, as the county's
        // platform would, for a few simulated days at most.
        let mut early = 0;
        let saved = loop {
            let answer = call!(
                self.door.scoring,
                save_sheet,
                token,
                spb::SaveSheetRequest {
                    sheet: Some(sheet.clone()),
                    request_id: rid(step),
                }
            );
            match answer {
                Err(s) if early < 30 && before_the_window(&s) => {
                    early += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                other => break other.map_err(failed("save a sheet"))?,
            }
        };
        call!(
            self.door.scoring,
            submit_sheet,
            token,
            spb::SubmitSheetRequest {
                name: saved.name,
                request_id: rid(&format!("{step}-seal")),
            }
        )
        .map_err(failed("seal a sheet"))?;
        Ok(())
    }

    /// Every member scores every item alone and seals the sheet; the leader then opens the
    /// consensus sheet and signs the group's agreed scores.
    pub(super) async fn consensus(
        &mut self,
        g: &pb::ReviewGroup,
        leader: &str,
        assignment: &str,
        percent: i32,
    ) -> Result<(), Failure> {
        let items = |spread: i32, reason: &str| -> Vec<spb::ItemScore> {
            qaward_scoring::domain::rubric::Rubric::gbt_19580_2012()
                .items()
                .map(|i| spb::ItemScore {
                    item_code: i.code.clone(),
                    percent: (percent + spread).clamp(0, 100),
                    strengths: "领导重视，制度健全".into(),
                    opportunities: "数据分析和对标有待加强".into(),
                    reason: reason.to_string(),
                })
                .collect()
        };
        for (k, m) in g.members.iter().enumerate() {
            let t = self.reviewer_token(m);
            // Independent judgements differ a little around what the group will agree.
            let spread = [0, 5, -5, 5, -5][k % 5];
            self.seal(
                &t,
                spb::Sheet {
                    assignment: assignment.into(),
                    kind: spb::SheetKind::Independent as i32,
                    items: items(spread, ""),
                    ..Default::default()
                },
                &format!("demo-{assignment}-{m}-independent"),
            )
            .await?;
        }
        let t = self.reviewer_token(leader);
        call!(
            self.door.scoring,
            open_consensus,
            &t,
            spb::OpenConsensusRequest {
                assignment: assignment.into(),
                request_id: rid(&format!("demo-{assignment}-open")),
            }
        )
        .map_err(failed("open the consensus sheet"))?;
        call!(
            self.door.scoring,
            sign_consensus,
            &t,
            spb::SignConsensusRequest {
                assignment: assignment.into(),
                items: items(0, "评审组合议：综合各评审员独立评分与现场证据确定"),
                request_id: rid(&format!("demo-{assignment}-sign")),
            }
        )
        .map_err(failed("sign the consensus sheet"))?;
        Ok(())
    }

    pub(super) fn assignment_of(&self, g: &pb::ReviewGroup, i: usize) -> Result<String, Failure> {
        let app = self.app(i);
        g.applications
            .iter()
            .position(|a| *a == app)
            .and_then(|k| g.assignments.get(k).cloned())
            .ok_or_else(|| Failure(format!("{app} has no assignment in {}", g.name)))
    }

    pub(super) async fn release(&mut self, stage: pb::ReviewStage) -> Result<(), Failure> {
        let cycle = self.cycle();
        let released = call!(
            self.door.apps,
            release_review_stage,
            &self.office,
            pb::ReleaseReviewStageRequest {
                cycle: cycle.clone(),
                stage: stage as i32,
                request_id: rid(&format!("demo-{cycle}-release-{}", stage.as_str_name())),
            }
        )
        .map_err(failed("release the stage's scores"))?;
        for a in &released.applications {
            self.record(a);
            if let (Some(i), Some(d)) = (self.index_of(&a.name), &a.last_decision) {
                let line = format!(
                    "{}: {} — {} {} [{}]",
                    self.name(i),
                    stage_name(a.stage),
                    d.rule,
                    d.message,
                    inputs(d)
                );
                self.say.line(&line);
            }
        }
        Ok(())
    }

    /// The materials group of the accepted applications, drawn and started.
    pub async fn materials_group(
        &mut self,
        entrants: &[usize],
    ) -> Result<(pb::ReviewGroup, rpb::Draw), Failure> {
        let entropy = format!("{}-{}-{}-{}", 3, 5, 1, 6);
        self.group(pb::ReviewStage::Materials, entrants, (0, 4), &entropy)
            .await
    }

    /// The materials review of the accepted applications.
    pub async fn materials(&mut self, entrants: &[usize]) -> Result<(), Failure> {
        let (g, draw) = self.materials_group(entrants).await?;
        for &i in entrants {
            let a = self.assignment_of(&g, i)?;
            let pct = self.plan.entrants[i].materials;
            self.consensus(&g, &draw.leader, &a, pct).await?;
        }
        self.say.heading("Materials review released");
        self.release(pb::ReviewStage::Materials).await
    }

    /// The defence panel and the site visit of those that passed, then the
    /// review scores.
    pub async fn defence_and_site(&mut self, entrants: &[usize]) -> Result<(), Failure> {
        let (panel, _) = self
            .group(pb::ReviewStage::Defence, entrants, (7, 11), "2-6-4-4")
            .await?;
        // Art. 16(4), R-14: the panel scores on its days; the walk waits for the first.
        self.wait_for_day(panel.window_start.as_ref()).await?;
        for &i in entrants {
            let a = self.assignment_of(&panel, i)?;
            let score = self.plan.entrants[i].defence;
            for m in panel.members.clone() {
                let t = self.reviewer_token(&m);
                self.seal(
                    &t,
                    spb::Sheet {
                        assignment: a.clone(),
                        kind: spb::SheetKind::Defence as i32,
                        defence_score: Some(Decimal {
                            value: score.into(),
                        }),
                        ..Default::default()
                    },
                    &format!("demo-{a}-{m}-defence"),
                )
                .await?;
            }
        }
        let (site, draw) = self
            .group(pb::ReviewStage::Site, entrants, (14, 15), "6-1-5-2")
            .await?;
        self.site_stop(&site, &draw.leader).await?;
        for &i in entrants {
            let a = self.assignment_of(&site, i)?;
            let pct = self.plan.entrants[i].site;
            self.consensus(&site, &draw.leader, &a, pct).await?;
        }
        self.leaders_meeting(&draw.leader, &site).await?;
        self.say
            .heading("Site visits released: review score = 20 % materials + 80 % site");
        self.release(pb::ReviewStage::Site).await
    }

    /// Art. 16(5)4: after the site visits the group leaders meet, each reports, and the
    /// results are unified before release; the plan's entrant has its agreed score raised on
    /// one item, a new version of its group's consensus with the meeting's reason.
    async fn leaders_meeting(
        &mut self,
        leader: &str,
        site: &pb::ReviewGroup,
    ) -> Result<(), Failure> {
        let cycle = self.cycle();
        let mut changes = Vec::new();
        if let Some(i) = self.plan.unified {
            let item = qaward_scoring::domain::rubric::Rubric::gbt_19580_2012()
                .items()
                .next()
                .map(|i| i.code.clone())
                .unwrap_or_default();
            changes.push(spb::LeadersMeetingChange {
                assignment: self.assignment_of(site, i)?,
                items: vec![spb::ItemScore {
                    item_code: item,
                    percent: (self.plan.entrants[i].site + 5).min(100),
                    strengths: "高层领导亲自推动质量战略，成效显著".into(),
                    opportunities: "数据分析和对标有待加强".into(),
                    reason: "组长会议比对各组评分尺度，统一上调".into(),
                }],
                reason: "各组评分尺度比对后，该组对领导作用的评分偏严".into(),
                ..Default::default()
            });
        }
        let held = call!(
            self.door.scoring,
            record_leaders_meeting,
            &self.office,
            spb::RecordLeadersMeetingRequest {
                cycle: cycle.clone(),
                meeting: Some(spb::LeadersMeeting {
                    attendees: vec![format!(
                        "reviewers/{}",
                        leader.trim_start_matches("reviewers/")
                    )],
                    minutes: "各现场评审组组长分别汇报现场评审情况，会议统一评审结果".into(),
                    changes,
                    ..Default::default()
                }),
                request_id: rid(&format!("demo-{cycle}-leaders-meeting")),
            }
        )
        .map_err(failed("record the group leaders' meeting"))?;
        self.say.heading(&format!(
            "Group leaders' meeting (Art. 16(5)4): {} attending, {} change(s)",
            held.attendees.join(", "),
            held.changes.len()
        ));
        for ch in &held.changes {
            let dec = |d: &Option<Decimal>| d.as_ref().map(|d| d.value.clone()).unwrap_or_default();
            self.say.line(&format!(
                "unified: {} site consensus {} → {} ({})",
                ch.assignment,
                dec(&ch.total_before),
                dec(&ch.total_after),
                ch.reason
            ));
        }
        Ok(())
    }
}

/// The scoring service refused a sheet because its panel's window has not begun.
fn before_the_window(s: &tonic::Status) -> bool {
    use tonic_types::StatusExt;
    s.code() == tonic::Code::FailedPrecondition
        && s.get_error_details()
            .error_info()
            .is_some_and(|i| i.reason == qaward_scoring::domain::lifecycle::OUTSIDE_PANEL_WINDOW)
}
