//! After scoring: the candidates, the departments' consultation, the public notice, the
//! committee and the approval.

use qaward_kit::auth::Role;
use qaward_proto::qaward::{applications::v1 as pb, common::v1::Explanation};
use std::time::Instant;
use time::OffsetDateTime;

use crate::call;

use super::{
    Failure, OBJECTING_DEPARTMENT, Walk, date_of, decimal, failed, reason_and_rule, rid, stage_name,
};

impl Walk {
    /// Fixes the candidates from the ranking; a tie at the cut line is reported
    /// to the office, which resolves it with the committee's reasons. `true` when vacant.
    pub async fn select(&mut self) -> Result<bool, Failure> {
        let cycle = self.cycle();
        let fix = |ties: Vec<pb::TieResolution>, n: usize| pb::FixCandidatesRequest {
            cycle: cycle.clone(),
            tie_resolutions: ties,
            request_id: rid(&format!("demo-{cycle}-fix-{n}")),
        };
        let fixed = match call!(self.door.apps, fix_candidates, &self.office, fix(vec![], 1)) {
            Err(s)
                if reason_and_rule(&s).0 == "TIE_UNRESOLVED" && !self.plan.tie_break.is_empty() =>
            {
                let (reason, rule) = reason_and_rule(&s);
                let told = format!("{rule} {reason}: {}", s.message());
                self.say.heading("Tie at the cut line");
                self.say.line(&format!("the office is told: {told}"));
                self.outcome.tie_reported = Some(told);
                let ties: Vec<pb::TieResolution> = self
                    .plan
                    .tie_break
                    .iter()
                    .map(|(i, seat)| pb::TieResolution {
                        application: self.app(*i),
                        candidate: *seat,
                        reason: "评审委员会研究：顾客满意度和市场结果得分更高者优先".into(),
                    })
                    .collect();
                for (i, seat) in &self.plan.tie_break {
                    self.say.line(&format!(
                        "tie-break: {} {}",
                        self.name(*i),
                        if *seat { "takes the seat" } else { "does not" }
                    ));
                }
                call!(self.door.apps, fix_candidates, &self.office, fix(ties, 2))
                    .map_err(failed("fix the candidates after the tie-break"))?
            }
            other => other.map_err(failed("fix the candidates"))?,
        };
        for a in &fixed.applications {
            self.record(a);
        }
        self.results_table();
        if fixed.vacant {
            self.outcome.vacant = true;
            self.say.heading(&format!(
                "Vacant: nobody reached the candidate line this year (R-17); cycle {} is {}",
                cycle,
                fixed
                    .cycle
                    .map(|c| pb::CycleState::try_from(c.state)
                        .map(|s| s.as_str_name().to_string())
                        .unwrap_or_default())
                    .unwrap_or_default()
            ));
            return Ok(true);
        }
        self.outcome.candidates = self.in_stage(&[pb::ApplicationStage::Candidate]);
        Ok(false)
    }

    pub(super) fn results_table(&mut self) {
        self.say
            .heading("Results: every threshold decision, with its rule and numbers");
        let pick = |d: &[(i32, Explanation)], key: &str| {
            d.iter()
                .rev()
                .find_map(|(_, e)| e.inputs.get(key).cloned())
                .unwrap_or_else(|| "-".into())
        };
        let mut rows: Vec<(usize, String)> = Vec::new();
        for (i, d) in &self.outcome.decisions {
            let (stage, last) = d.last().cloned().unwrap_or_default();
            rows.push((
                *i,
                format!(
                    "{:<28} materials {:>6}  review {:>7}  composite {:>7}  → {:<16} {} {}",
                    self.plan.entrants[*i].name,
                    pick(d, "materials_score"),
                    pick(d, "review_score"),
                    pick(d, "composite_score"),
                    stage_name(stage),
                    last.rule,
                    last.message
                ),
            ));
        }
        for (_, row) in rows {
            self.say.line(&row);
        }
    }

    /// Consultation of the departments, the public notice and a complaint.
    pub async fn consult_and_notify(&mut self) -> Result<(), Failure> {
        let cycle = self.cycle();
        let candidates = self.outcome.candidates.clone();
        self.say.heading("Consultation of the departments (R-20)");
        call!(
            self.door.apps,
            request_consultation,
            &self.office,
            pb::RequestConsultationRequest {
                cycle: cycle.clone(),
                deadline: Some(self.clock.date(10)),
                request_id: rid(&format!("demo-{cycle}-consult")),
            }
        )
        .map_err(failed("ask the departments"))?;
        let departments = self
            .settings
            .as_ref()
            .map(|s| s.consulted_departments.clone())
            .unwrap_or_default();
        for dept in &departments {
            let t = self
                .tokens
                .issue(Role::Department, &format!("{dept}-科室"), Some(dept), None);
            for &i in &candidates {
                let object = dept == OBJECTING_DEPARTMENT && self.plan.objection == Some(i);
                call!(
                    self.door.apps,
                    record_consultation_opinion,
                    &t,
                    pb::RecordConsultationOpinionRequest {
                        name: self.app(i),
                        department: dept.clone(),
                        opinion: if object {
                            pb::Opinion::Object
                        } else {
                            pb::Opinion::Support
                        } as i32,
                        text: if object {
                            "该企业上年度有一笔税款逾期申报".into()
                        } else {
                            "经查询，近三年无不良记录".into()
                        },
                        request_id: rid(&format!("demo-{cycle}-opinion-{dept}-{i}")),
                    }
                )
                .map_err(failed("record a department's opinion"))?;
                if object {
                    self.say.line(&format!(
                        "{dept} objects to {}: 该企业上年度有一笔税款逾期申报",
                        self.name(i)
                    ));
                }
            }
        }
        self.say.line(&format!(
            "{} departments answered for {} candidates",
            departments.len(),
            candidates.len()
        ));
        if let Some(i) = self.plan.objection.filter(|i| candidates.contains(i)) {
            call!(
                self.door.apps,
                decide_objection,
                &self.office,
                pb::DecideObjectionRequest {
                    name: self.app(i),
                    department: OBJECTING_DEPARTMENT.into(),
                    upheld: false,
                    reason: "逾期申报已补正并缴纳滞纳金，不属于重大违法行为".into(),
                    request_id: rid(&format!("demo-{cycle}-objection-{i}")),
                    fraud: false,
                }
            )
            .map_err(failed("decide the objection"))?;
            self.say.line(&format!(
                "the office overrules the objection to {}: 逾期申报已补正，不属于重大违法行为",
                self.name(i)
            ));
        }

        let notice = call!(
            self.door.apps,
            open_public_notice,
            &self.office,
            pb::OpenPublicNoticeRequest {
                cycle: cycle.clone(),
                request_id: rid(&format!("demo-{cycle}-notice")),
            }
        )
        .map_err(failed("open the public notice"))?;
        self.clock.observe(&notice.start_time);
        self.say.heading(&format!(
            "Public notice (R-21): {} entries, until {}",
            notice.entries.len(),
            notice
                .end_time
                .as_ref()
                .and_then(|t| OffsetDateTime::from_unix_timestamp(t.seconds).ok())
                .and_then(|t| {
                    t.to_offset(qaward_kit::clock::CHINA)
                        .format(time::macros::format_description!(
                            "[year]-[month]-[day] [hour]:[minute] (UTC+8)"
                        ))
                        .ok()
                })
                .unwrap_or_default()
        ));
        for e in &notice.entries {
            self.say.line(&format!(
                "#{} {} — materials {}, site {}, review {}, defence {}, composite {}",
                e.rank,
                e.enterprise_name,
                decimal(&e.materials_score),
                decimal(&e.site_score),
                decimal(&e.review_score),
                decimal(&e.defence_score),
                decimal(&e.composite_score)
            ));
        }
        if let Some(i) = self.plan.complaint.filter(|i| candidates.contains(i)) {
            let complaint = self
                .file_complaint(
                    i,
                    "citizen-0423",
                    ("反映该企业厂区夜间噪声扰民，质疑其环境管理", "录音文件说明"),
                    &format!("demo-{cycle}-complaint-{i}"),
                    "file a complaint",
                )
                .await?;
            self.say.line(&format!(
                "a citizen complains about {}: 反映该企业厂区夜间噪声扰民",
                self.name(i)
            ));
            self.resolve_complaint(
                &complaint,
                (pb::ComplaintOutcome::Unfounded, false),
                "经生态环境局现场监测，厂界噪声达标，反映情况不属实",
                &format!("demo-{cycle}-resolve-{i}"),
                "resolve the complaint",
            )
            .await?;
            self.say.line(
                "investigated: 厂界噪声达标，反映情况不属实 (unfounded; the candidate stays)",
            );
        }
        if let Some(i) = self.plan.fraud.filter(|i| candidates.contains(i)) {
            let complaint = self
                .file_complaint(
                    i,
                    "citizen-0511",
                    (
                        "反映该企业申报材料中的第三方检测报告系伪造",
                        "检测机构出具的查无此报告的证明",
                    ),
                    &format!("demo-{cycle}-fraud-{i}"),
                    "report fraud",
                )
                .await?;
            self.resolve_complaint(
                &complaint,
                (pb::ComplaintOutcome::Substantiated, true),
                "经检测机构核实，所附检测报告系伪造",
                &format!("demo-{cycle}-fraud-resolve-{i}"),
                "resolve the fraud report",
            )
            .await?;
            self.say.line(&format!(
                "investigated: {} forged its test report — disqualified (R-21) and barred (Art. 12(2))",
                self.name(i)
            ));
            let a = call!(
                self.door.apps,
                get_application,
                &self.office,
                pb::GetApplicationRequest { name: self.app(i) }
            )
            .map_err(failed("read the disqualified application"))?;
            self.record(&a);
            // Off the list: the committee decides on the candidates still on the notice.
            self.outcome.candidates.retain(|x| *x != i);
        }
        Ok(())
    }

    /// Waits out the notice, then the committee: six of the eight member units sit (a
    /// quorum: more than two thirds), each casting its own ballot with its own token (four
    /// adopt, one abstains, one does not adopt), the chair closes the meeting and the decisions
    /// follow from the votes; then the county government approves each adopted candidate, or
    /// returns the plan's one.
    pub async fn decide(&mut self) -> Result<(), Failure> {
        let cycle = self.cycle();
        let candidates = self.outcome.candidates.clone();
        let programme = self.plan.programme.clone();
        let member = |unit: &str| {
            self.tokens.issue(
                Role::CommitteeMember,
                &format!("{unit}-负责人"),
                Some(unit),
                Some(&programme),
            )
        };
        // The member units are the programme's (Art. 5): all but the last two sit.
        let units = self
            .settings
            .as_ref()
            .map(|s| s.committee_units.clone())
            .unwrap_or_default();
        let present = &units[..units.len().saturating_sub(2)];
        let waited = Instant::now();
        let mut said = false;
        for (n, unit) in present.iter().enumerate() {
            let choice = match n {
                4 => pb::CommitteeVoteChoice::Abstain,
                5 => pb::CommitteeVoteChoice::NotAdopt,
                _ => pb::CommitteeVoteChoice::Adopt,
            };
            let ballot = pb::CastCommitteeBallotRequest {
                parent: cycle.clone(),
                ballot: Some(pb::CommitteeBallot {
                    representative: format!("{unit}负责人"),
                    votes: candidates
                        .iter()
                        .map(|i| pb::CommitteeVote {
                            application: self.app(*i),
                            choice: choice as i32,
                            note: String::new(),
                        })
                        .collect(),
                    ..Default::default()
                }),
                request_id: rid(&format!("demo-{cycle}-ballot-{n}")),
            };
            let token = member(unit);
            loop {
                match call!(
                    self.door.apps,
                    cast_committee_ballot,
                    &token,
                    ballot.clone()
                ) {
                    Err(s) if reason_and_rule(&s).0 == "NOTICE_RUNNING" => {
                        if !said {
                            self.say.line(&format!(
                                "waiting for the notice to run its course (the server's clock runs at about {:.0}× real time)…",
                                self.clock.speed
                            ));
                            said = true;
                        }
                        if waited.elapsed() > std::time::Duration::from_secs(120) {
                            return Err(Failure(
                                "the public notice did not end within 2 minutes: is the server on a simulated clock (QAWARD_CLOCK__SPEED=86400)?".into(),
                            ));
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                    }
                    other => {
                        other.map_err(failed("cast a committee ballot"))?;
                        break;
                    }
                }
            }
        }
        let decided = call!(
            self.door.apps,
            record_committee_meeting,
            &member(&present[0]),
            pb::RecordCommitteeMeetingRequest {
                name: cycle.clone(),
                request_id: rid(&format!("demo-{cycle}-committee")),
            }
        )
        .map_err(failed("record the committee meeting"))?;
        self.say.heading(&format!(
            "Evaluation committee (R-22): {} of {} member units present (absent: {}), each voting with its own token; cycle {}",
            decided.units_present.len(),
            units.len(),
            decided.units_absent.join("、"),
            pb::CycleState::try_from(decided.cycle_state)
                .map(|s| s.as_str_name())
                .unwrap_or_default()
        ));
        for d in &decided.decisions {
            self.say.line(&format!(
                "{}: {}",
                if d.adopted { "adopted" } else { "not adopted" },
                d.note
            ));
        }
        let adopted: Vec<String> = decided
            .decisions
            .iter()
            .filter(|d| d.adopted)
            .map(|d| d.application.clone())
            .collect();
        let returned = self.plan.returned.map(|i| self.app(i));
        let government = self.tokens.issue(
            Role::Government,
            "county-government",
            None,
            Some(&programme),
        );
        let year = self.clock.date(0).year;
        let approved = call!(
            self.door.apps,
            record_approval,
            &government,
            pb::RecordApprovalRequest {
                name: cycle.clone(),
                document_number: format!("云阳府发〔{year}〕18号"),
                approval_date: Some(self.clock.date(0)),
                request_id: rid(&format!("demo-{cycle}-approval")),
                decisions: adopted
                    .iter()
                    .map(|a| {
                        let back = returned.as_ref() == Some(a);
                        pb::ApprovalDecision {
                            application: a.clone(),
                            approved: !back,
                            note: if back {
                                "县政府常务会议研究：该企业近期环保督察整改尚未完成，暂缓授予"
                                    .into()
                            } else {
                                String::new()
                            },
                        }
                    })
                    .collect(),
            }
        )
        .map_err(failed("record the approval"))?;
        self.say.heading(&format!(
            "Approved by the county government: {} of {}",
            approved.approval_document,
            approved
                .approval_date
                .as_ref()
                .map(date_of)
                .unwrap_or_default()
        ));
        for i in candidates {
            let a = call!(
                self.door.apps,
                get_application,
                &self.office,
                pb::GetApplicationRequest { name: self.app(i) }
            )
            .map_err(failed("read a winner"))?;
            self.record(&a);
            if a.stage == pb::ApplicationStage::Awarded as i32 {
                self.outcome.winners.push(i);
                let d = a.last_decision.unwrap_or_default();
                self.say.line(&format!(
                    "AWARDED {} ({}) — {} {}",
                    self.name(i),
                    self.codes[i],
                    d.rule,
                    d.message
                ));
            } else if let Some(d) = a.last_decision.filter(|d| d.rule == "R-23") {
                self.say.line(&format!(
                    "RETURNED by the county government: {} — {} {}",
                    self.name(i),
                    d.rule,
                    d.message
                ));
            }
        }
        Ok(())
    }

    /// Art. 6(5), R-52: a citizen tips the office off about an applicant during the reviews,
    /// outside any public notice; the complaint is accepted as a tip-off with its case number,
    /// investigated and found unfounded.
    pub async fn tip_off(&mut self) -> Result<(), Failure> {
        let Some(i) = self.plan.tip_off.filter(|i| *i < self.plan.entrants.len()) else {
            return Ok(());
        };
        let cycle = self.cycle();
        let tip = self
            .file_complaint(
                i,
                "citizen-0307",
                ("举报该企业近期发生一起安全生产事故未上报", "现场照片说明"),
                &format!("demo-{cycle}-tip-off-{i}"),
                "file a tip-off",
            )
            .await?;
        if tip.kind != pb::ComplaintKind::TipOff as i32 {
            return Err(Failure(format!(
                "a complaint outside the notice should be a tip-off (R-52), not {}",
                tip.kind
            )));
        }
        self.say.line(&format!(
            "a citizen tips off the office about {} during the reviews: case {} (R-52, not refused)",
            self.name(i),
            tip.case_number
        ));
        self.resolve_complaint(
            &tip,
            (pb::ComplaintOutcome::Unfounded, false),
            "经应急管理局核实，该期间无安全生产事故记录",
            &format!("demo-{cycle}-tip-off-resolve-{i}"),
            "resolve the tip-off",
        )
        .await?;
        self.say
            .line("investigated: 无事故记录，举报不属实 (unfounded; the review goes on)");
        Ok(())
    }

    /// A member of the public files a written complaint with one piece of evidence about
    /// entrant `i` (Art. 6(5)): `(text, evidence)`; `what` names the step if it fails.
    async fn file_complaint(
        &self,
        i: usize,
        citizen: &str,
        (text, evidence): (&str, &str),
        request_id: &str,
        what: &'static str,
    ) -> Result<pb::Complaint, Failure> {
        let public = self.tokens.issue(Role::Public, citizen, None, None);
        call!(
            self.door.apps,
            create_complaint,
            &public,
            pb::CreateComplaintRequest {
                parent: self.app(i),
                complaint: Some(pb::Complaint {
                    text: text.into(),
                    evidence: vec![evidence.into()],
                    ..Default::default()
                }),
                request_id: rid(request_id),
            }
        )
        .map_err(failed(what))
    }

    /// The office resolves `complaint` with `(outcome, fraud)` and its investigation.
    async fn resolve_complaint(
        &self,
        complaint: &pb::Complaint,
        (outcome, fraud): (pb::ComplaintOutcome, bool),
        investigation: &str,
        request_id: &str,
        what: &'static str,
    ) -> Result<(), Failure> {
        call!(
            self.door.apps,
            resolve_complaint,
            &self.office,
            pb::ResolveComplaintRequest {
                name: complaint.name.clone(),
                outcome: outcome as i32,
                investigation: investigation.into(),
                request_id: rid(request_id),
                fraud,
            }
        )
        .map(drop)
        .map_err(failed(what))
    }
}
