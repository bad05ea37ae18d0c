//! A score sheet's life: a scorer's draft, saved over while it is a
//! draft; submitted once, which fixes its total and seals it with a hash; corrected only as a
//! new version with its reason; the group's consensus signed once by its leader after every
//! scorer's independent sheet is in; and nothing changes once the stage's results are released.
//! Handlers load, call these, and store what they return.

use qaward_kit::{Error, Result};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{rubric::Rubric, sheet};

/// released results are read-only.
pub const STAGE_RELEASED: &str = "STAGE_RELEASED";
/// an advisor sits on the defence panel but never scores.
pub const ADVISORS_DO_NOT_SCORE: &str = "ADVISORS_DO_NOT_SCORE";
/// a submitted sheet is sealed; it changes only by a correction.
pub const SHEET_SEALED: &str = "SHEET_SEALED";
/// a sheet is submitted once.
pub const ALREADY_SUBMITTED: &str = "ALREADY_SUBMITTED";
/// a sheet is submitted with every item scored (or its defence score given).
pub const SHEET_INCOMPLETE: &str = "SHEET_INCOMPLETE";
/// only a submitted independent sheet is corrected.
pub const NOTHING_TO_CORRECT: &str = "NOTHING_TO_CORRECT";
/// the version corrected was corrected by another call meanwhile.
pub const ALREADY_CORRECTED: &str = "ALREADY_CORRECTED";
/// a defence score is the panel's mean, never a consensus.
pub const NO_CONSENSUS_AT_DEFENCE: &str = "NO_CONSENSUS_AT_DEFENCE";
/// a consensus is signed once.
pub const CONSENSUS_SIGNED: &str = "CONSENSUS_SIGNED";
/// the consensus waits for every scorer's independent sheet.
pub const INDEPENDENT_SHEETS_MISSING: &str = "INDEPENDENT_SHEETS_MISSING";
/// what needs the consensus (the feedback report) waits for it.
pub const NO_CONSENSUS_YET: &str = "NO_CONSENSUS_YET";

/// A scorer's own sheet, the group's consensus, or a defence panel member's score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SheetKind {
    Independent,
    Defence,
    Consensus,
}

impl SheetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SheetKind::Independent => "INDEPENDENT",
            SheetKind::Defence => "DEFENCE",
            SheetKind::Consensus => "CONSENSUS",
        }
    }

    pub fn parse(s: &str) -> Option<SheetKind> {
        [
            SheetKind::Independent,
            SheetKind::Defence,
            SheetKind::Consensus,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// The kind a scorer's own sheet has at `stage`: DEFENCE at the defence, INDEPENDENT
    /// otherwise.
    pub fn own_at(stage: &str) -> SheetKind {
        if stage == "DEFENCE" {
            SheetKind::Defence
        } else {
            SheetKind::Independent
        }
    }
}

/// A draft is saved over; a submitted sheet is sealed; a corrected one is superseded by its
/// next version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SheetState {
    Draft,
    Submitted,
    Superseded,
    /// An unsubmitted sheet of a scorer who left the assignment: kept, never counted.
    Void,
}

impl SheetState {
    pub fn as_str(self) -> &'static str {
        match self {
            SheetState::Draft => "DRAFT",
            SheetState::Submitted => "SUBMITTED",
            SheetState::Superseded => "SUPERSEDED",
            SheetState::Void => "VOID",
        }
    }

    pub fn parse(s: &str) -> Option<SheetState> {
        [
            SheetState::Draft,
            SheetState::Submitted,
            SheetState::Superseded,
            SheetState::Void,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// An item as a sheet records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemEntry {
    pub code: String,
    pub percent: u32,
    pub strengths: String,
    pub opportunities: String,
    pub reason: String,
}

/// One version of a sheet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sheet {
    pub id: String,
    pub version: i64,
    pub assignment_id: String,
    pub reviewer: String,
    pub kind: SheetKind,
    pub state: SheetState,
    pub items: Vec<ItemEntry>,
    pub defence_score: String,
    pub total: String,
    pub seal_hash: String,
    pub correction_reason: String,
    pub submitted_micros: Option<i64>,
}

impl Sheet {
    /// The id of `reviewer`'s own sheet of `kind` for an assignment.
    pub fn own_id(assignment: &str, reviewer: &str, kind: SheetKind) -> String {
        format!(
            "{assignment}-{}-{}",
            reviewer.to_lowercase(),
            if kind == SheetKind::Defence { "d" } else { "i" }
        )
    }

    /// The id of an assignment's consensus sheet.
    pub fn consensus_id(assignment: &str) -> String {
        format!("{assignment}-consensus")
    }

    /// A new draft of `reviewer`'s own sheet.
    pub fn draft(
        assignment: &str,
        reviewer: &str,
        kind: SheetKind,
        items: Vec<ItemEntry>,
        defence_score: String,
    ) -> Sheet {
        let reviewer = reviewer.to_ascii_uppercase();
        Sheet {
            id: Sheet::own_id(assignment, &reviewer, kind),
            version: 1,
            assignment_id: assignment.to_string(),
            reviewer,
            kind,
            state: SheetState::Draft,
            items,
            defence_score,
            total: String::new(),
            seal_hash: String::new(),
            correction_reason: String::new(),
            submitted_micros: None,
        }
    }

    /// SHA-256 over what the sheet says (not over when it was sealed): any later change
    /// to a sealed version shows.
    pub fn seal_hash(&self) -> String {
        let content = serde_json::json!({
            "sheet": self.id, "version": self.version, "assignment": self.assignment_id,
            "reviewer": self.reviewer, "kind": self.kind.as_str(), "items": self.items,
            "defence_score": self.defence_score, "total": self.total,
            "correction_reason": self.correction_reason,
        });
        hex::encode(Sha256::digest(content.to_string().as_bytes()))
    }

    /// submits a draft at `at`: its total fixed — the defence score, or every
    /// item scored over `rubric` — and sealed.
    pub fn submit(&mut self, rubric: &Rubric, at: i64) -> Result<()> {
        if self.state != SheetState::Draft {
            return Err(Error::rule(
                "R-51",
                ALREADY_SUBMITTED,
                "the sheet is already submitted",
            ));
        }
        self.total = if self.kind == SheetKind::Defence {
            if self.defence_score.is_empty() {
                return Err(Error::rule(
                    "R-14",
                    SHEET_INCOMPLETE,
                    "the defence score is missing",
                ));
            }
            self.defence_score.clone()
        } else {
            items_total(rubric, &self.items)?.normalize().to_string()
        };
        self.state = SheetState::Submitted;
        self.submitted_micros = Some(at);
        self.seal_hash = self.seal_hash();
        Ok(())
    }

    /// only a submitted independent sheet is corrected.
    pub fn may_correct(&self) -> Result<()> {
        if self.state != SheetState::Submitted || self.kind != SheetKind::Independent {
            return Err(Error::rule(
                "R-51",
                NOTHING_TO_CORRECT,
                "only a submitted independent sheet is corrected; a draft is simply saved",
            ));
        }
        Ok(())
    }

    /// the next version of a submitted independent sheet, `changed` items replaced (or
    /// added), with its reason, re-totalled and sealed at `at`. The old version is then
    /// superseded.
    pub fn corrected(
        &self,
        rubric: &Rubric,
        changed: Vec<ItemEntry>,
        reason: &str,
        at: i64,
    ) -> Result<Sheet> {
        self.may_correct()?;
        self.next_version(rubric, changed, reason, at)
    }

    /// Art. 16(5)4, R-51: the group leaders' meeting unifies a site group's result: the next
    /// version of its signed consensus, `changed` items replaced, with the meeting's reason.
    pub fn unified(
        &self,
        rubric: &Rubric,
        changed: Vec<ItemEntry>,
        reason: &str,
        at: i64,
    ) -> Result<Sheet> {
        if self.state != SheetState::Submitted || self.kind != SheetKind::Consensus {
            return Err(Error::rule(
                "R-15",
                NO_SIGNED_CONSENSUS,
                "the leaders' meeting changes a group's signed consensus, and this is none",
            ));
        }
        self.next_version(rubric, changed, reason, at)
    }

    fn next_version(
        &self,
        rubric: &Rubric,
        changed: Vec<ItemEntry>,
        reason: &str,
        at: i64,
    ) -> Result<Sheet> {
        let mut items = self.items.clone();
        for c in changed {
            match items.iter_mut().find(|i| i.code == c.code) {
                Some(i) => *i = c,
                None => items.push(c),
            }
        }
        let total = items_total(rubric, &items)?;
        let mut next = Sheet {
            version: self.version + 1,
            items,
            total: total.normalize().to_string(),
            correction_reason: reason.to_string(),
            submitted_micros: Some(at),
            state: SheetState::Submitted,
            ..self.clone()
        };
        next.seal_hash = next.seal_hash();
        Ok(next)
    }
}

/// a sheet's total over the rubric, every item scored.
fn items_total(rubric: &Rubric, items: &[ItemEntry]) -> Result<Decimal> {
    let percents: Vec<(String, u32)> = items.iter().map(|i| (i.code.clone(), i.percent)).collect();
    sheet::total(rubric, &percents).map_err(|e| Error::rule("R-11", SHEET_INCOMPLETE, e))
}

/// Art. 16(5)4: a change of the leaders' meeting needs the group's signed consensus.
pub const NO_SIGNED_CONSENSUS: &str = "NO_SIGNED_CONSENSUS";

/// the site visit was stopped; its sheets wait for the office's decision.
pub const VISIT_STOPPED: &str = "VISIT_STOPPED";

/// R-15, Art. 16(5)3: while a stopped site visit waits for the office, nothing of its sheets
/// changes. `hold_reason` is the assignment's (empty when not held).
pub fn check_not_held(hold_reason: &str) -> Result<()> {
    if hold_reason.is_empty() {
        return Ok(());
    }
    Err(Error::rule(
        "R-15",
        VISIT_STOPPED,
        format!(
            "the site visit is stopped and its sheets frozen until the office decides: {hold_reason}"
        ),
    ))
}

/// Art. 16(4), R-14: a defence sheet is scored on the panel's days (`window`, China dates,
/// when the assignment has them), not before the hearing nor after it.
pub fn check_defence_day(
    kind: SheetKind,
    today: time::Date,
    window: Option<(time::Date, time::Date)>,
) -> Result<()> {
    match window {
        Some((start, end)) if kind == SheetKind::Defence && (today < start || today > end) => {
            Err(Error::rule(
                "R-14",
                OUTSIDE_PANEL_WINDOW,
                format!("答辩评分只在答辩组的评审日期内进行（{start}至{end}），今天是{today}"),
            )
            .with_metadata("window_start", start.to_string())
            .with_metadata("window_end", end.to_string())
            .with_metadata("today", today.to_string()))
        }
        _ => Ok(()),
    }
}

/// a defence sheet outside the panel's days.
pub const OUTSIDE_PANEL_WINDOW: &str = "OUTSIDE_PANEL_WINDOW";

/// nothing of a stage changes once its results are released.
pub fn check_open(released: bool) -> Result<()> {
    if released {
        return Err(Error::rule(
            "R-51",
            STAGE_RELEASED,
            "released results are read-only",
        ));
    }
    Ok(())
}

/// who scores an assignment: its members and leader (`role` is the caller's role in
/// the group, if any); an advisor never does.
pub fn may_score(role: Option<&str>) -> Result<()> {
    match role {
        None => Err(Error::permission_denied(
            "only the assigned reviewers score this application",
        )),
        Some("ADVISOR") => Err(Error::rule(
            "R-14",
            ADVISORS_DO_NOT_SCORE,
            "a non-scoring advisor never scores",
        )),
        Some(_) => Ok(()),
    }
}

/// a draft may be saved over the sheet there is, if any, only while that is a draft.
pub fn may_save_over(existing: Option<&Sheet>) -> Result<()> {
    match existing {
        Some(s) if s.state != SheetState::Draft => Err(Error::rule(
            "R-51",
            SHEET_SEALED,
            "a submitted sheet cannot change; submit a correction with its reason",
        )),
        _ => Ok(()),
    }
}

/// the sheet was submitted by another call between our read and our write.
pub fn submitted_meanwhile() -> Error {
    Error::rule(
        "R-51",
        ALREADY_SUBMITTED,
        "the sheet was submitted meanwhile",
    )
}

/// the version being corrected was corrected by another call meanwhile.
pub fn corrected_meanwhile() -> Error {
    Error::rule(
        "R-51",
        ALREADY_CORRECTED,
        "the sheet was corrected meanwhile",
    )
}

/// whether a group at `stage` may sign its consensus now: never at the
/// defence, once, before release.
pub fn may_sign_consensus(stage: &str, already_signed: bool, released: bool) -> Result<()> {
    if stage == "DEFENCE" {
        return Err(Error::rule(
            "R-14",
            NO_CONSENSUS_AT_DEFENCE,
            "the defence score is the panel's mean, not a consensus",
        ));
    }
    check_open(released)?;
    if already_signed {
        return Err(Error::rule(
            "R-51",
            CONSENSUS_SIGNED,
            "the consensus is already signed",
        ));
    }
    Ok(())
}

/// the consensus is opened or signed only when every sitting scorer has submitted their
/// independent sheet; the submitted ones of the sitting scorers.
pub fn all_independent_in<'a>(
    scorers: impl IntoIterator<Item = &'a String>,
    sheets: Vec<Sheet>,
) -> Result<Vec<Sheet>> {
    let scorers: Vec<&String> = scorers.into_iter().collect();
    // A scorer who left the assignment is not waited for, and their sheet, kept
    // on the record, does not count.
    let independent: Vec<Sheet> = sheets
        .into_iter()
        .filter(|s| s.kind == SheetKind::Independent && s.state == SheetState::Submitted)
        .filter(|s| scorers.iter().any(|r| r.eq_ignore_ascii_case(&s.reviewer)))
        .collect();
    let missing: Vec<String> = scorers
        .into_iter()
        .filter(|r| {
            !independent
                .iter()
                .any(|s| s.reviewer.eq_ignore_ascii_case(r))
        })
        .map(|m| format!("reviewers/{m}"))
        .collect();
    if !missing.is_empty() {
        return Err(Error::rule(
            "R-12",
            INDEPENDENT_SHEETS_MISSING,
            format!(
                "waiting for the independent sheets of {}",
                missing.join(", ")
            ),
        ));
    }
    Ok(independent)
}

/// the signed consensus, or the refusal of what needs it.
pub fn signed_consensus(consensus: Option<Sheet>) -> Result<Sheet> {
    consensus.ok_or_else(|| {
        Error::rule(
            "R-12",
            NO_CONSENSUS_YET,
            "the group has not signed its consensus",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(percent: u32) -> Vec<ItemEntry> {
        Rubric::gbt_19580_2012()
            .items()
            .map(|i| ItemEntry {
                code: i.code.clone(),
                percent,
                strengths: String::new(),
                opportunities: String::new(),
                reason: String::new(),
            })
            .collect()
    }

    #[test]
    fn r51_a_draft_is_submitted_once_totalled_and_sealed() {
        let rubric = Rubric::gbt_19580_2012();
        let mut s = Sheet::draft(
            "a1",
            "cq-0001",
            SheetKind::Independent,
            scored(50),
            "".into(),
        );
        assert_eq!(s.id, "a1-cq-0001-i");
        assert_eq!(s.reviewer, "CQ-0001");
        assert!(may_save_over(Some(&s)).is_ok());
        s.submit(&rubric, 7).unwrap();
        assert_eq!(
            (s.state, s.total.as_str(), s.submitted_micros),
            (SheetState::Submitted, "500", Some(7))
        );
        assert_eq!(s.seal_hash, s.seal_hash());
        assert_eq!(s.submit(&rubric, 8).unwrap_err().reason, ALREADY_SUBMITTED);
        assert_eq!(may_save_over(Some(&s)).unwrap_err().reason, SHEET_SEALED);
    }

    #[test]
    fn r11_r14_a_sheet_is_submitted_complete() {
        let rubric = Rubric::gbt_19580_2012();
        let mut partial = Sheet::draft(
            "a1",
            "CQ-1",
            SheetKind::Independent,
            scored(50)[1..].to_vec(),
            "".into(),
        );
        let e = partial.submit(&rubric, 1).unwrap_err();
        assert_eq!(
            (e.reason.as_str(), e.rule.as_deref()),
            (SHEET_INCOMPLETE, Some("R-11"))
        );
        let mut defence = Sheet::draft("a1", "CQ-1", SheetKind::Defence, vec![], "".into());
        let e = defence.submit(&rubric, 1).unwrap_err();
        assert_eq!(
            (e.reason.as_str(), e.rule.as_deref()),
            (SHEET_INCOMPLETE, Some("R-14"))
        );
        defence.defence_score = "88.5".into();
        defence.submit(&rubric, 1).unwrap();
        assert_eq!(defence.total, "88.5");
        assert_eq!(defence.id, "a1-cq-1-d");
    }

    #[test]
    fn r51_a_correction_is_a_new_sealed_version_with_its_reason() {
        let rubric = Rubric::gbt_19580_2012();
        let mut s = Sheet::draft("a1", "CQ-1", SheetKind::Independent, scored(50), "".into());
        assert_eq!(
            s.corrected(&rubric, vec![], "x", 1).unwrap_err().reason,
            NOTHING_TO_CORRECT
        );
        s.submit(&rubric, 1).unwrap();
        let mut changed = scored(60)[..1].to_vec();
        changed[0].reason = "复核".into();
        let next = s.corrected(&rubric, changed, "录入错误", 2).unwrap();
        assert_eq!(next.version, 2);
        assert_eq!(next.correction_reason, "录入错误");
        assert_ne!(next.total, s.total);
        assert_ne!(next.seal_hash, s.seal_hash);
        assert_eq!(next.seal_hash, next.seal_hash());
    }

    #[test]
    fn r14_r51_who_scores_and_when_nothing_changes() {
        assert!(may_score(Some("MEMBER")).is_ok());
        assert_eq!(
            may_score(Some("ADVISOR")).unwrap_err().reason,
            ADVISORS_DO_NOT_SCORE
        );
        assert_eq!(
            may_score(None).unwrap_err().code,
            qaward_kit::ErrorCode::PermissionDenied
        );
        assert_eq!(check_open(true).unwrap_err().reason, STAGE_RELEASED);
        assert_eq!(
            may_sign_consensus("DEFENCE", false, false)
                .unwrap_err()
                .reason,
            NO_CONSENSUS_AT_DEFENCE
        );
        assert_eq!(
            may_sign_consensus("MATERIALS", true, false)
                .unwrap_err()
                .reason,
            CONSENSUS_SIGNED
        );
        assert!(may_sign_consensus("SITE", false, false).is_ok());
    }

    #[test]
    fn r12_the_consensus_waits_for_every_scorers_sheet() {
        let rubric = Rubric::gbt_19580_2012();
        let mut a = Sheet::draft("a1", "CQ-1", SheetKind::Independent, scored(50), "".into());
        a.submit(&rubric, 1).unwrap();
        let b = Sheet::draft("a1", "CQ-2", SheetKind::Independent, scored(50), "".into());
        let scorers = ["CQ-1".to_string(), "CQ-2".to_string()];
        let e = all_independent_in(&scorers, vec![a.clone(), b]).unwrap_err();
        assert_eq!(e.reason, INDEPENDENT_SHEETS_MISSING);
        assert!(e.message.contains("reviewers/CQ-2"), "{}", e.message);
        assert_eq!(all_independent_in(&scorers[..1], vec![a]).unwrap().len(), 1);
        assert_eq!(signed_consensus(None).unwrap_err().reason, NO_CONSENSUS_YET);
    }

    #[test]
    fn r14_a_defence_sheet_is_scored_on_the_panels_days_only() {
        use time::macros::date;
        let w = Some((date!(2026 - 07 - 15), date!(2026 - 07 - 16)));
        let e = check_defence_day(SheetKind::Defence, date!(2026 - 07 - 14), w).unwrap_err();
        assert_eq!(e.reason, OUTSIDE_PANEL_WINDOW);
        assert!(check_defence_day(SheetKind::Defence, date!(2026 - 07 - 17), w).is_err());
        assert!(check_defence_day(SheetKind::Defence, date!(2026 - 07 - 16), w).is_ok());
        assert!(check_defence_day(SheetKind::Independent, date!(2026 - 07 - 01), w).is_ok());
        assert!(check_defence_day(SheetKind::Defence, date!(2026 - 07 - 01), None).is_ok());
    }
}
