//! After scoring: the candidate list from scoring's ranking with the office's
//! resolution of ties at the cut line, the public notice's window and the complaints
//! it admits, when the committee meets (R-21, R-52; its votes are `committee`), and the
//! award's certificate numbers.

use rust_decimal::Decimal;
use time::{Duration, OffsetDateTime};

use super::{Explanation, cycle::CycleState, settings::Settings};

/// Scoring's verdict on one application of the final selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranking {
    Candidate,
    NotCandidate,
    /// Level with others at the cut line: the office decides.
    TiedAtCut,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub application: String,
    pub ranking: Ranking,
    pub composite: Decimal,
    pub rank: u32,
}

/// The office's decision on one application tied at the cut line, with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TieResolution {
    pub application: String,
    pub candidate: bool,
    pub reason: String,
}

/// Whether an application becomes a candidate, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub application: String,
    pub candidate: bool,
    pub why: Explanation,
}

/// the candidates from scoring's ranking. Scoring has applied the threshold and the
/// number of candidates; what is left for the office is the tie at the cut line, which it must
/// resolve for every tied application, filling exactly the seats left, each with a reason. An
/// empty list of candidates means the award is vacant this year.
pub fn fix_candidates(
    ranked: &[Ranked],
    ties: &[TieResolution],
    s: &Settings,
) -> Result<Vec<Verdict>, Explanation> {
    let tied: Vec<&Ranked> = ranked
        .iter()
        .filter(|r| r.ranking == Ranking::TiedAtCut)
        .collect();
    for t in ties {
        if !tied.iter().any(|r| r.application == t.application) {
            return Err(Explanation::new(
                "R-18",
                "NOT_TIED",
                format!("{}不在分数线并列之列，无需裁定", t.application),
            )
            .with("application", &t.application));
        }
    }
    let unresolved: Vec<&str> = tied
        .iter()
        .filter(|r| !ties.iter().any(|t| t.application == r.application))
        .map(|r| r.application.as_str())
        .collect();
    if !unresolved.is_empty() {
        return Err(Explanation::new(
            "R-18",
            "TIE_UNRESOLVED",
            format!(
                "以下申报在候选分数线上并列，须由评选委员会办公室裁定：{}",
                unresolved.join("、")
            ),
        )
        .with("tied", unresolved.join(",")));
    }
    let sure = ranked
        .iter()
        .filter(|r| r.ranking == Ranking::Candidate)
        .count();
    let seats = (s.max_candidates as usize).saturating_sub(sure);
    let chosen = ties.iter().filter(|t| t.candidate).count();
    if !tied.is_empty() && chosen != seats.min(tied.len()) {
        return Err(Explanation::new(
            "R-17",
            "SEATS_NOT_FILLED",
            format!(
                "候选名额{}个，已确定{sure}个，并列者中须选定{}个，实际选定{chosen}个",
                s.max_candidates,
                seats.min(tied.len())
            ),
        )
        .with("seats_left", seats)
        .with("chosen", chosen));
    }
    Ok(ranked
        .iter()
        .map(|r| {
            let numbers = |e: Explanation| {
                e.with("composite_score", r.composite.normalize())
                    .with("rank", r.rank)
                    .with("threshold", s.candidate_threshold)
            };
            match r.ranking {
                Ranking::Candidate => Verdict {
                    application: r.application.clone(),
                    candidate: true,
                    why: numbers(Explanation::new(
                        "R-17",
                        "CANDIDATE",
                        format!(
                            "综合得分{}分，排名第{}，达到{}分且在前{}名之内，确定为候选企业",
                            r.composite.normalize(),
                            r.rank,
                            s.candidate_threshold,
                            s.max_candidates
                        ),
                    )),
                },
                Ranking::NotCandidate => Verdict {
                    application: r.application.clone(),
                    candidate: false,
                    why: numbers(Explanation::new(
                        "R-17",
                        "NOT_CANDIDATE",
                        format!(
                            "综合得分{}分，排名第{}，未能进入候选（{}分以上前{}名）",
                            r.composite.normalize(),
                            r.rank,
                            s.candidate_threshold,
                            s.max_candidates
                        ),
                    )),
                },
                Ranking::TiedAtCut => {
                    let t = ties
                        .iter()
                        .find(|t| t.application == r.application)
                        .expect("every tie is resolved above");
                    Verdict {
                        application: r.application.clone(),
                        candidate: t.candidate,
                        why: numbers(Explanation::new(
                            "R-18",
                            "TIE_RESOLVED",
                            format!(
                                "综合得分{}分与他人在候选分数线上并列，评选委员会办公室裁定{}：{}",
                                r.composite.normalize(),
                                if t.candidate {
                                    "列为候选"
                                } else {
                                    "不列为候选"
                                },
                                t.reason
                            ),
                        )),
                    }
                }
            }
        })
        .collect())
}

/// the public notice runs `public_notice_days` full days from its opening.
pub fn notice_ends(opened: OffsetDateTime, s: &Settings) -> OffsetDateTime {
    opened + Duration::days(i64::from(s.public_notice_days))
}

/// What a complaint is (Art. 6(5), R-21, R-52): an objection to a candidate while its public
/// notice runs, decided under R-21; otherwise — before or after the notice, about an applicant at
/// any stage — a tip-off, never refused, decided under R-52.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComplaintKind {
    Objection,
    TipOff,
}

impl ComplaintKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ComplaintKind::Objection => "OBJECTION",
            ComplaintKind::TipOff => "TIP_OFF",
        }
    }

    pub fn parse(s: &str) -> Option<ComplaintKind> {
        [ComplaintKind::Objection, ComplaintKind::TipOff]
            .into_iter()
            .find(|k| k.as_str() == s)
    }

    /// The rule that decides it.
    pub fn rule(self) -> &'static str {
        match self {
            ComplaintKind::Objection => "R-21",
            ComplaintKind::TipOff => "R-52",
        }
    }
}

/// whether a substantiated complaint disqualifies: an objection always (its
/// candidate is on the notice), a tip-off while the application is still in the running — the
/// stage table allows `step` from `current`. Past the running (not selected, awarded) it does
/// not; an award is revoked under R-32 by its own steps.
/// A complaint about a reviewer (`about_reviewer`) never disqualifies the applicant: its finding
/// concerns the reviewer.
pub fn substantiated_disqualifies(
    kind: ComplaintKind,
    about_reviewer: bool,
    current: super::stage::Stage,
    step: &super::stage::Step,
) -> bool {
    !about_reviewer
        && (kind == ComplaintKind::Objection || super::stage::apply(current, step).is_ok())
}

/// Art. 6(5), R-52: the filer of a complaint is shown to the office alone — not the
/// supervisor, not the party complained about, not the filer's other readers.
pub fn filer_shown_to(role: qaward_kit::auth::Role) -> bool {
    role == qaward_kit::auth::Role::Office
}

/// Art. 6(5), R-52: a complaint about a reviewer names one who sat, or sits, on a group of the
/// application's review; `members` are theirs.
pub fn reviewer_of_review(reviewer: &str, members: &[String]) -> Result<(), Explanation> {
    if members.iter().any(|m| m.eq_ignore_ascii_case(reviewer)) {
        return Ok(());
    }
    Err(Explanation::new(
        "R-52",
        "NOT_A_REVIEWER_OF_IT",
        format!("{reviewer}未参加该申报的评审，不能作为被投诉的评审员"),
    )
    .with("reviewer", reviewer))
}

/// An objection when it is about the applicant on the notice while the notice runs; else (a
/// complaint about a reviewer included) a tip-off.
pub fn complaint_kind(
    on_notice: bool,
    about_reviewer: bool,
    window: Result<(), Explanation>,
) -> ComplaintKind {
    if on_notice && !about_reviewer && window.is_ok() {
        ComplaintKind::Objection
    } else {
        ComplaintKind::TipOff
    }
}

/// an objection to a candidate is made while the notice runs (outside it, the complaint
/// is a tip-off, [`complaint_kind`]).
pub fn complaint_window(
    now: OffsetDateTime,
    opened: OffsetDateTime,
    ends: OffsetDateTime,
) -> Result<(), Explanation> {
    if now < opened || now > ends {
        return Err(Explanation::new(
            "R-21",
            "OUTSIDE_NOTICE_WINDOW",
            "公示期内方可提出异议，公示期已结束或尚未开始",
        )
        .with("notice_start", opened)
        .with("notice_end", ends)
        .with("received_at", now));
    }
    Ok(())
}

/// the committee meets only after the notice has ended and every complaint made in
/// it has its outcome.
pub fn committee_may_meet(
    now: OffsetDateTime,
    notice_end: OffsetDateTime,
    pending_complaints: i64,
) -> Result<(), Explanation> {
    if now <= notice_end {
        return Err(
            Explanation::new("R-21", "NOTICE_RUNNING", "公示期未满，评选委员会不能审议")
                .with("notice_end", notice_end),
        );
    }
    if pending_complaints > 0 {
        return Err(Explanation::new(
            "R-52",
            "COMPLAINTS_PENDING",
            format!("尚有{pending_complaints}件关于公示候选企业的异议或举报未处理完毕"),
        )
        .with("pending", pending_complaints));
    }
    Ok(())
}

/// candidates are fixed from the final selection; a year without finalists has none to
/// fix.
pub fn has_finalists(finalists: usize) -> Result<(), Explanation> {
    if finalists == 0 {
        return Err(Explanation::new(
            "R-17",
            "NO_FINALISTS",
            "本年度没有进入终选的申报，无需确定候选企业",
        ));
    }
    Ok(())
}

/// the composite needs every finalist's defence score; `missing` names those
/// without one.
pub fn all_defended(missing: &[String]) -> Result<(), Explanation> {
    if !missing.is_empty() {
        return Err(Explanation::new(
            "R-14",
            "DEFENCE_SCORE_MISSING",
            format!(
                "以下申报尚无答辩得分，不能计算综合得分：{}",
                missing.join("、")
            ),
        )
        .with("waiting", missing.join(",")));
    }
    Ok(())
}

/// the departments are consulted on candidates; without any there is nothing to ask.
pub fn may_consult(candidates: usize) -> Result<(), Explanation> {
    if candidates == 0 {
        return Err(Explanation::new(
            "R-20",
            "NO_CANDIDATES",
            "没有候选企业，无需征求意见",
        ));
    }
    Ok(())
}

/// the public notice lists candidates; without any there is nothing to publish.
pub fn may_publish(candidates: usize) -> Result<(), Explanation> {
    if candidates == 0 {
        return Err(Explanation::new(
            "R-21",
            "NO_CANDIDATES",
            "没有候选企业可以公示",
        ));
    }
    Ok(())
}

/// the notice opens once every consulted department has answered and every objection is
/// decided; `open` names what is still open.
pub fn consultation_done(open: &[String]) -> Result<(), Explanation> {
    if !open.is_empty() {
        return Err(Explanation::new(
            "R-20",
            "CONSULTATION_PENDING",
            format!("以下意见尚未提交或异议尚未决定：{}", open.join("、")),
        ));
    }
    Ok(())
}

/// a complaint gets one outcome; `first` is whether this resolution was the first.
pub fn first_resolution(first: bool) -> Result<(), Explanation> {
    if !first {
        return Err(Explanation::new(
            "R-52",
            "ALREADY_RESOLVED",
            "该异议已有处理结论",
        ));
    }
    Ok(())
}

/// the committee decides on a published list: the notice's end, if it was published.
pub fn published<T>(notice: Option<T>) -> Result<T, Explanation> {
    notice.ok_or_else(|| Explanation::new("R-21", "NO_PUBLIC_NOTICE", "候选企业尚未公示"))
}

/// the committee decides on every candidate whose notice ended, and on no one else:
/// `undecided` are those it left out, `strangers` those it named who are not on the list.
pub fn decisions_complete(
    on_notice: usize,
    undecided: &[String],
    strangers: &[&str],
) -> Result<(), Explanation> {
    if !undecided.is_empty() || !strangers.is_empty() || on_notice == 0 {
        return Err(Explanation::new(
            "R-22",
            "DECISIONS_INCOMPLETE",
            format!(
                "评选委员会须对每一个公示期满的候选企业作出决定；未决定：{}；不在名单：{}",
                undecided.join("、"),
                strangers.join("、")
            ),
        ));
    }
    Ok(())
}

/// the government's approval is recorded after the committee's decision.
pub fn may_record_approval(cycle_state: CycleState) -> Result<(), Explanation> {
    if cycle_state != CycleState::Decided {
        return Err(Explanation::new(
            "R-23",
            "NOT_DECIDED",
            "评选委员会尚未作出决定，不能登记批准文件",
        )
        .with("cycle_state", cycle_state.as_str()));
    }
    Ok(())
}

/// R-23, Art. 16(10): the government decides on each candidate the committee adopted, and on
/// no one else: `missing` are those it left out, `strangers` those it named who were not adopted.
pub fn approvals_complete(missing: &[String], strangers: &[String]) -> Result<(), Explanation> {
    if missing.is_empty() && strangers.is_empty() {
        return Ok(());
    }
    Err(Explanation::new(
        "R-23",
        "APPROVALS_INCOMPLETE",
        format!(
            "县人民政府须对评选委员会通过的每一个推荐企业作出批准或退回的决定；未决定：{}；非推荐企业：{}",
            missing.join("、"),
            strangers.join("、")
        ),
    ))
}

/// the certificate number of the `n`th award (from 1) of a programme's year.
pub fn certificate_number(programme: &str, year: i64, n: usize) -> String {
    format!("{}-{year}-{n:03}", programme.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn r(app: &str, ranking: Ranking, composite: i64, rank: u32) -> Ranked {
        Ranked {
            application: app.into(),
            ranking,
            composite: Decimal::from(composite),
            rank,
        }
    }

    fn tie(app: &str, candidate: bool) -> TieResolution {
        TieResolution {
            application: app.into(),
            candidate,
            reason: "顾客满意度结果更优".into(),
        }
    }

    #[test]
    fn r17_candidates_come_from_scorings_ranking() {
        let ranked = [
            r("a", Ranking::Candidate, 480, 1),
            r("b", Ranking::Candidate, 450, 2),
            r("c", Ranking::NotCandidate, 420, 3),
        ];
        let v = fix_candidates(&ranked, &[], &Settings::default()).unwrap();
        let got: Vec<(&str, bool, &str)> = v
            .iter()
            .map(|x| (x.application.as_str(), x.candidate, x.why.rule))
            .collect();
        assert_eq!(
            got,
            [
                ("a", true, "R-17"),
                ("b", true, "R-17"),
                ("c", false, "R-17")
            ]
        );
        assert_eq!(v[0].why.inputs["composite_score"], "480");
    }

    #[test]
    fn r18_a_tie_at_the_cut_is_resolved_by_the_office_filling_exactly_the_seats_left() {
        let ranked = [
            r("a", Ranking::Candidate, 480, 1),
            r("b", Ranking::TiedAtCut, 450, 2),
            r("c", Ranking::TiedAtCut, 450, 2),
        ];
        let s = Settings::default();
        let e = fix_candidates(&ranked, &[], &s).unwrap_err();
        assert_eq!((e.rule, e.reason), ("R-18", "TIE_UNRESOLVED"));
        let e = fix_candidates(&ranked, &[tie("b", true), tie("c", true)], &s).unwrap_err();
        assert_eq!((e.rule, e.reason), ("R-17", "SEATS_NOT_FILLED"));
        let e = fix_candidates(&ranked, &[tie("a", true)], &s).unwrap_err();
        assert_eq!(e.reason, "NOT_TIED");
        let v = fix_candidates(&ranked, &[tie("b", false), tie("c", true)], &s).unwrap();
        assert_eq!(v.iter().filter(|x| x.candidate).count(), 2);
        assert_eq!(v[2].why.rule, "R-18");
        assert!(
            v[2].why.message.contains("顾客满意度"),
            "{}",
            v[2].why.message
        );
    }

    #[test]
    fn r17_nobody_at_400_leaves_the_award_vacant() {
        let ranked = [r("a", Ranking::NotCandidate, 399, 1)];
        let v = fix_candidates(&ranked, &[], &Settings::default()).unwrap();
        assert!(v.iter().all(|x| !x.candidate));
    }

    #[test]
    fn r21_complaints_only_while_the_notice_runs() {
        let s = Settings::default();
        let opened = datetime!(2026-09-01 09:00 +8);
        let ends = notice_ends(opened, &s);
        assert_eq!(ends, datetime!(2026-09-08 09:00 +8));
        assert!(complaint_window(datetime!(2026-09-08 09:00 +8), opened, ends).is_ok());
        let e = complaint_window(datetime!(2026-09-08 09:00:01 +8), opened, ends).unwrap_err();
        assert_eq!((e.rule, e.reason), ("R-21", "OUTSIDE_NOTICE_WINDOW"));
    }

    #[test]
    fn r21_r52_the_committee_waits_for_the_notice_and_its_complaints() {
        let end = datetime!(2026-09-08 09:00 +8);
        let e = committee_may_meet(end, end, 0).unwrap_err();
        assert_eq!((e.rule, e.reason), ("R-21", "NOTICE_RUNNING"));
        let after = datetime!(2026-09-08 09:00:01 +8);
        let e = committee_may_meet(after, end, 1).unwrap_err();
        assert_eq!((e.rule, e.reason), ("R-52", "COMPLAINTS_PENDING"));
        assert!(committee_may_meet(after, end, 0).is_ok());
    }

    #[test]
    fn r23_certificate_numbers_name_the_programme_year_and_order() {
        assert_eq!(certificate_number("yunyang", 2026, 1), "YUNYANG-2026-001");
    }

    #[test]
    fn r17_to_r23_each_step_after_scoring_needs_what_came_before() {
        assert_eq!(has_finalists(0).unwrap_err().reason, "NO_FINALISTS");
        let e = all_defended(&["a/1".into()]).unwrap_err();
        assert_eq!((e.rule, e.inputs["waiting"].as_str()), ("R-14", "a/1"));
        assert_eq!(may_consult(0).unwrap_err().rule, "R-20");
        assert_eq!(may_publish(0).unwrap_err().rule, "R-21");
        assert!(may_publish(1).is_ok());
        assert_eq!(
            consultation_done(&["a/1（发改委）".into()])
                .unwrap_err()
                .reason,
            "CONSULTATION_PENDING"
        );
        assert_eq!(first_resolution(false).unwrap_err().rule, "R-52");
        assert_eq!(
            published::<i64>(None).unwrap_err().reason,
            "NO_PUBLIC_NOTICE"
        );
        assert_eq!(published(Some(7)).unwrap(), 7);
        assert!(decisions_complete(1, &[], &[]).is_ok());
        assert_eq!(
            decisions_complete(0, &[], &[]).unwrap_err().reason,
            "DECISIONS_INCOMPLETE"
        );
        assert_eq!(
            decisions_complete(2, &["a/2".into()], &[])
                .unwrap_err()
                .rule,
            "R-22"
        );
        let e = may_record_approval(CycleState::PublicNotice).unwrap_err();
        assert_eq!(
            (e.reason, e.inputs["cycle_state"].as_str()),
            ("NOT_DECIDED", "PUBLIC_NOTICE")
        );
        assert!(may_record_approval(CycleState::Decided).is_ok());
    }

    #[test]
    fn r21_r52_a_complaint_outside_the_notice_is_a_tip_off_not_refused() {
        let out = Err(Explanation::new("R-21", "OUTSIDE_NOTICE_WINDOW", "x"));
        assert_eq!(
            complaint_kind(true, false, Ok(())),
            ComplaintKind::Objection
        );
        assert_eq!(
            complaint_kind(true, false, out.clone()),
            ComplaintKind::TipOff
        );
        assert_eq!(complaint_kind(false, false, Ok(())), ComplaintKind::TipOff);
        assert_eq!(ComplaintKind::TipOff.rule(), "R-52");
        assert_eq!(ComplaintKind::parse("TIP_OFF"), Some(ComplaintKind::TipOff));
        use crate::domain::stage::{Stage, Step};
        let step = Step::Disqualify {
            rule: "R-52",
            reason: "x".into(),
        };
        assert!(substantiated_disqualifies(
            ComplaintKind::TipOff,
            false,
            Stage::Defence,
            &step
        ));
        assert!(!substantiated_disqualifies(
            ComplaintKind::TipOff,
            false,
            Stage::NotSelected,
            &step
        ));
        assert!(!substantiated_disqualifies(
            ComplaintKind::TipOff,
            false,
            Stage::Awarded,
            &step
        ));
        assert!(substantiated_disqualifies(
            ComplaintKind::Objection,
            false,
            Stage::PublicNotice,
            &step
        ));
        // About a reviewer: a tip-off even on the notice, and never the applicant's loss.
        assert_eq!(complaint_kind(true, true, Ok(())), ComplaintKind::TipOff);
        assert!(!substantiated_disqualifies(
            ComplaintKind::TipOff,
            true,
            Stage::Defence,
            &step
        ));
        assert!(reviewer_of_review("cq-0001", &["CQ-0001".into()]).is_ok());
        use qaward_kit::auth::Role;
        assert!(filer_shown_to(Role::Office));
        assert!(!filer_shown_to(Role::Supervisor) && !filer_shown_to(Role::Enterprise));
        assert_eq!(
            reviewer_of_review("CQ-0009", &["CQ-0001".into()])
                .unwrap_err()
                .reason,
            "NOT_A_REVIEWER_OF_IT"
        );
    }
}
