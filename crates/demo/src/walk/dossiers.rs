//! What enterprises read at the end: the composed dossier through the gateway.

use qaward_proto::qaward::{applications::v1 as pb, gateway::v1 as gpb};

use crate::call;

use super::{Failure, Walk, decimal, failed, stage_name};

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
}
