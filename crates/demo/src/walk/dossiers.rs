//! What enterprises read at the end: the composed dossier through the gateway.

use qaward_proto::qaward::{applications::v1 as pb, gateway::v1 as gpb};

use crate::call;

use super::{Failure, Walk, decimal, failed, rid, stage_name};

impl Walk {
    /// What an enterprise sees of its application, through the gateway's composed dossier: for
    /// each that failed the materials review, its feedback report; for the first winner,
    /// its inbox — notices the applications service handed to the notifications service
    /// through its outbox.
    pub async fn dossiers(&mut self) -> Result<(), Failure> {
        let failed_materials = self.in_stage(&[pb::ApplicationStage::MaterialsFailed]);
        let first_winner = self.outcome.winners.first().copied();
        let shown: Vec<usize> = failed_materials.into_iter().chain(first_winner).collect();
        for i in shown {
            let me = self.enterprise_token(i);
            let d = call!(
                self.door.views,
                get_dossier,
                &me,
                gpb::GetDossierRequest { name: self.app(i) }
            )
            .map_err(failed("read a dossier"))?;
            self.say.heading(&format!(
                "Dossier of {}, as the enterprise reads it (gateway view GetDossier)",
                self.name(i)
            ));
            if let Some(a) = &d.application {
                let why = a.last_decision.clone().unwrap_or_default();
                self.say.line(&format!(
                    "stage {} — {} {}",
                    stage_name(a.stage),
                    why.rule,
                    why.message
                ));
            }
            if let Some(r) = &d.feedback_report {
                self.say.line(&format!(
                    "feedback report of the materials review, total {}: {}",
                    decimal(&r.total),
                    r.categories
                        .iter()
                        .map(|c| format!("{} {}/{}", c.title, decimal(&c.score), decimal(&c.max)))
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
            }
            for m in &d.messages {
                self.say.line(&format!("inbox: {}", m.subject));
            }
            for o in &d.omitted {
                self.say.line(&format!(
                    "(not shown: {} — {} {})",
                    o.part, o.status, o.message
                ));
            }
        }
        Ok(())
    }

    /// the first applicant that failed the materials review asks, right after the
    /// release and within the programme's window, for a re-check of its feedback report; the
    /// office confirms the result with its reasons.
    pub async fn recheck(&mut self) -> Result<(), Failure> {
        let Some(i) = self
            .in_stage(&[pb::ApplicationStage::MaterialsFailed])
            .first()
            .copied()
        else {
            return Ok(());
        };
        let cycle = self.cycle();
        let me = self.enterprise_token(i);
        let asked = call!(
            self.door.apps,
            request_recheck,
            &me,
            pb::RequestRecheckRequest {
                parent: self.app(i),
                recheck: Some(pb::Recheck {
                    reason: "反馈报告对经营结果的扣分与自评报告所附数据不符".into(),
                    ..Default::default()
                }),
                request_id: rid(&format!("demo-{cycle}-recheck-{i}")),
            }
        )
        .map_err(failed("ask for a re-check"))?;
        let decided = call!(
            self.door.apps,
            decide_recheck,
            &self.office,
            pb::DecideRecheckRequest {
                name: asked.name.clone(),
                outcome: pb::RecheckOutcome::Confirmed as i32,
                reasons: "经复核，扣分依据为评审组核验的数据，维持资料评审结论".into(),
                request_id: rid(&format!("demo-{cycle}-recheck-decide-{i}")),
            }
        )
        .map_err(failed("decide the re-check"))?;
        self.say.heading(&format!(
            "Re-check of {}'s feedback report (R-13): asked within the window ending {}; {} — {}",
            self.name(i),
            asked
                .window_end
                .as_ref()
                .map(super::date_of)
                .unwrap_or_default(),
            pb::RecheckOutcome::try_from(decided.outcome)
                .map(|o| o.as_str_name())
                .unwrap_or_default(),
            decided.decision_reasons
        ));
        Ok(())
    }
}
