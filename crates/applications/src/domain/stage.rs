//! How an application moves: one table of allowed steps (`TABLE`), and `apply`, which takes a
//! stage and a step and either names the next stage with the rule and numbers behind it, or
//! refuses with the rule that forbids the step. `docs/stages.md` prints the table; a test keeps
//! the two equal.

use rust_decimal::Decimal;
use time::OffsetDateTime;

use super::{Explanation, chars, settings::Settings};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    Draft,
    Submitted,
    Recommended,
    Accepted,
    Rejected,
    MaterialsReview,
    MaterialsPassed,
    MaterialsFailed,
    Defence,
    SiteVisit,
    Scored,
    FinalSelection,
    NotSelected,
    Candidate,
    PublicNotice,
    Awarded,
    Withdrawn,
    Disqualified,
}

impl Stage {
    pub const ALL: [Stage; 18] = [
        Stage::Draft,
        Stage::Submitted,
        Stage::Recommended,
        Stage::Accepted,
        Stage::Rejected,
        Stage::MaterialsReview,
        Stage::MaterialsPassed,
        Stage::MaterialsFailed,
        Stage::Defence,
        Stage::SiteVisit,
        Stage::Scored,
        Stage::FinalSelection,
        Stage::NotSelected,
        Stage::Candidate,
        Stage::PublicNotice,
        Stage::Awarded,
        Stage::Withdrawn,
        Stage::Disqualified,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Draft => "DRAFT",
            Stage::Submitted => "SUBMITTED",
            Stage::Recommended => "RECOMMENDED",
            Stage::Accepted => "ACCEPTED",
            Stage::Rejected => "REJECTED",
            Stage::MaterialsReview => "MATERIALS_REVIEW",
            Stage::MaterialsPassed => "MATERIALS_PASSED",
            Stage::MaterialsFailed => "MATERIALS_FAILED",
            Stage::Defence => "DEFENCE",
            Stage::SiteVisit => "SITE_VISIT",
            Stage::Scored => "SCORED",
            Stage::FinalSelection => "FINAL_SELECTION",
            Stage::NotSelected => "NOT_SELECTED",
            Stage::Candidate => "CANDIDATE",
            Stage::PublicNotice => "PUBLIC_NOTICE",
            Stage::Awarded => "AWARDED",
            Stage::Withdrawn => "WITHDRAWN",
            Stage::Disqualified => "DISQUALIFIED",
        }
    }

    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// No step leads out of it.
    pub fn is_final(self) -> bool {
        !TABLE.iter().any(|e| e.from.contains(&self))
    }
}

/// A step, with what it needs to decide.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The enterprise submits; `problems` are from [`submission_problems`].
    Submit {
        problems: Vec<Explanation>,
    },
    /// Every required recommendation opinion is signed (`missing` names the units still to sign).
    Recommend {
        missing: Vec<String>,
    },
    /// The office's acceptance review.
    Accept,
    Reject {
        reason: String,
    },
    StartMaterialsReview,
    /// Scoring released the materials stage and decided R-13 on the consensus score. The
    /// threshold comparison is scoring's (`scoring::domain::results`); this step only moves the
    /// application by that decision and records its numbers.
    MaterialsDecided {
        passed: bool,
        score: Decimal,
        threshold: Decimal,
    },
    StartDefence,
    StartSiteVisit,
    /// Defence and site scores are in.
    FinishScoring,
    /// Scoring computed the review score (20 % materials + 80 % site) and decided R-16.
    ReviewDecided {
        selected: bool,
        review_score: Decimal,
        threshold: Decimal,
    },
    /// The office fixed the candidate list from scoring's ranking, resolving ties at the
    /// cut line; `why` is [`super::selection::fix_candidates`]'s verdict.
    Candidacy {
        candidate: bool,
        why: Explanation,
    },
    /// The public notice opens for the candidates.
    OpenPublicNotice,
    /// The committee did not adopt the candidate.
    NotAdopted {
        note: String,
    },
    /// The government approved the list the committee adopted.
    Award {
        document: String,
    },
    /// The enterprise withdraws, before the review starts.
    Withdraw,
    /// Fraud confirmed at the site visit, an upheld objection, a substantiated
    /// objection or tip-off.
    Disqualify {
        rule: &'static str,
        reason: String,
    },
}

impl Step {
    pub fn name(&self) -> &'static str {
        match self {
            Step::Submit { .. } => "submit",
            Step::Recommend { .. } => "recommend",
            Step::Accept => "accept",
            Step::Reject { .. } => "reject",
            Step::StartMaterialsReview => "start_materials_review",
            Step::MaterialsDecided { .. } => "materials_decided",
            Step::StartDefence => "start_defence",
            Step::StartSiteVisit => "start_site_visit",
            Step::FinishScoring => "finish_scoring",
            Step::ReviewDecided { .. } => "review_decided",
            Step::Candidacy { .. } => "candidacy",
            Step::OpenPublicNotice => "open_public_notice",
            Step::NotAdopted { .. } => "not_adopted",
            Step::Award { .. } => "award",
            Step::Withdraw => "withdraw",
            Step::Disqualify { .. } => "disqualify",
        }
    }
}

/// One row of the transition table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub step: &'static str,
    pub from: &'static [Stage],
    pub to: &'static [Stage],
    pub rule: &'static str,
    pub when: &'static str,
}

use Stage::*;

/// Stages from which an application may still withdraw: before the review starts.
const BEFORE_REVIEW: &[Stage] = &[Draft, Submitted, Recommended, Accepted];
/// Stages in which an applicant can be disqualified.
const UNDER_REVIEW: &[Stage] = &[
    Accepted,
    MaterialsReview,
    MaterialsPassed,
    Defence,
    SiteVisit,
    Scored,
    FinalSelection,
    Candidate,
    PublicNotice,
];

/// Every allowed step. Part 2 of the cycle (candidates, public notice, award) adds its rows.
pub const TABLE: &[Edge] = &[
    Edge {
        step: "submit",
        from: &[Draft],
        to: &[Submitted],
        rule: "R-05",
        when: "before the deadline, eligible (R-02 to R-04), profile and report within their character limits, evidence attached",
    },
    Edge {
        step: "recommend",
        from: &[Submitted],
        to: &[Recommended],
        rule: "R-05",
        when: "every required recommendation opinion is signed (Art. 13(1))",
    },
    Edge {
        step: "accept",
        from: &[Recommended],
        to: &[Accepted],
        rule: "R-05",
        when: "the office's acceptance review finds the application complete",
    },
    Edge {
        step: "reject",
        from: &[Submitted, Recommended],
        to: &[Rejected],
        rule: "R-05",
        when: "the office refuses, with its reason",
    },
    Edge {
        step: "start_materials_review",
        from: &[Accepted],
        to: &[MaterialsReview],
        rule: "R-12",
        when: "the materials group is drawn and assigned",
    },
    Edge {
        step: "materials_decided",
        from: &[MaterialsReview],
        to: &[MaterialsPassed, MaterialsFailed],
        rule: "R-13",
        when: "scoring's decision on the released consensus score (≥ threshold, inclusive, passes); a failed applicant gets the feedback report, copied to its recommending unit",
    },
    Edge {
        step: "start_defence",
        from: &[MaterialsPassed],
        to: &[Defence],
        rule: "R-14",
        when: "the defence panel is drawn",
    },
    Edge {
        step: "start_site_visit",
        from: &[Defence],
        to: &[SiteVisit],
        rule: "R-15",
        when: "the site group is drawn",
    },
    Edge {
        step: "finish_scoring",
        from: &[SiteVisit],
        to: &[Scored],
        rule: "R-15",
        when: "the site consensus is signed and the stage released",
    },
    Edge {
        step: "review_decided",
        from: &[Scored],
        to: &[FinalSelection, NotSelected],
        rule: "R-16",
        when: "scoring's decision on the review score (20 % materials + 80 % site; ≥ threshold, inclusive, enters the final selection)",
    },
    Edge {
        step: "candidacy",
        from: &[FinalSelection],
        to: &[Candidate, NotSelected],
        rule: "R-17",
        when: "the office fixes the candidates from scoring's ranking (composite ≥ threshold, at most the programme's number), resolving every tie at the cut line with a reason (R-18)",
    },
    Edge {
        step: "open_public_notice",
        from: &[Candidate],
        to: &[PublicNotice],
        rule: "R-21",
        when: "every consulted department has answered and every objection is decided (R-20)",
    },
    Edge {
        step: "not_adopted",
        from: &[PublicNotice],
        to: &[NotSelected],
        rule: "R-22",
        when: "the committee, with more than two thirds of its member units present, does not adopt the candidate",
    },
    Edge {
        step: "award",
        from: &[PublicNotice],
        to: &[Awarded],
        rule: "R-23",
        when: "the committee adopted the candidate after the notice closed with no complaint pending, and the government's approval is recorded",
    },
    Edge {
        step: "withdraw",
        from: BEFORE_REVIEW,
        to: &[Withdrawn],
        rule: "R-05",
        when: "the enterprise withdraws before the review starts",
    },
    Edge {
        step: "disqualify",
        from: UNDER_REVIEW,
        to: &[Disqualified],
        rule: "R-15",
        when: "fraud or a serious mismatch confirmed by the office (R-15), an upheld objection (R-20), a substantiated objection (R-21) or tip-off (R-52)",
    },
];

/// The next stage and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub to: Stage,
    pub why: Explanation,
}

fn refuse(rule: &'static str, reason: &'static str, message: String) -> Explanation {
    Explanation::new(rule, reason, message)
}

/// Applies `step` to an application in `from`.
pub fn apply(from: Stage, step: &Step) -> Result<Decision, Explanation> {
    let Some(edge) = TABLE
        .iter()
        .find(|e| e.step == step.name() && e.from.contains(&from))
    else {
        let rule = TABLE
            .iter()
            .find(|e| e.step == step.name())
            .map_or("R-50", |e| e.rule);
        return Err(refuse(
            rule,
            "STEP_NOT_ALLOWED",
            format!("申报处于{}阶段，不能执行{}", from.as_str(), step.name()),
        )
        .with("stage", from.as_str())
        .with("step", step.name()));
    };
    let to = |stage: Stage, message: String| Decision {
        to: stage,
        why: Explanation::new(edge.rule, "STAGE_CHANGED", message),
    };
    match step {
        Step::Submit { problems } => match problems.first() {
            Some(first) => Err(Explanation {
                message: problems
                    .iter()
                    .map(|p| format!("{}（{}）", p.message, p.rule))
                    .collect::<Vec<_>>()
                    .join("；"),
                ..first.clone()
            }),
            None => Ok(to(Submitted, "申报材料已提交".into())),
        },
        Step::Recommend { missing } if !missing.is_empty() => Err(refuse(
            "R-05",
            "RECOMMENDATIONS_MISSING",
            format!("尚缺推荐意见：{}", missing.join("、")),
        )
        .with("missing", missing.join(","))),
        Step::Recommend { .. } => Ok(to(Recommended, "推荐意见已齐全".into())),
        Step::Accept => Ok(to(Accepted, "受理审查通过".into())),
        Step::Reject { reason } => Ok(to(Rejected, format!("不予受理：{reason}"))),
        Step::StartMaterialsReview => Ok(to(MaterialsReview, "进入资料评审".into())),
        Step::MaterialsDecided {
            passed,
            score,
            threshold,
        } => {
            let (stage, verdict) = if *passed {
                (MaterialsPassed, "达到")
            } else {
                (MaterialsFailed, "未达到")
            };
            let mut d = to(
                stage,
                format!("资料评审得分{score}分，{verdict}入围分数线{threshold}分（含本数）"),
            );
            d.why = d
                .why
                .with("materials_score", score)
                .with("threshold", threshold);
            Ok(d)
        }
        Step::StartDefence => Ok(to(Defence, "进入陈述答辩".into())),
        Step::StartSiteVisit => Ok(to(SiteVisit, "进入现场评审".into())),
        Step::FinishScoring => Ok(to(Scored, "现场评审完成".into())),
        Step::ReviewDecided {
            selected,
            review_score,
            threshold,
        } => {
            let (stage, verdict) = if *selected {
                (FinalSelection, "进入终选")
            } else {
                (NotSelected, "未进入终选")
            };
            let mut d = to(
                stage,
                format!("评审得分{review_score}分，终选分数线{threshold}分（含本数），{verdict}"),
            );
            d.why = d
                .why
                .with("review_score", review_score)
                .with("threshold", threshold);
            Ok(d)
        }
        Step::Candidacy { candidate, why } => Ok(Decision {
            to: if *candidate { Candidate } else { NotSelected },
            why: why.clone(),
        }),
        Step::OpenPublicNotice => Ok(to(PublicNotice, "候选企业进入公示".into())),
        Step::NotAdopted { note } => Ok(to(NotSelected, format!("评选委员会未予通过：{note}"))),
        Step::Award { document } => Ok(to(
            Awarded,
            format!("经县人民政府批准（{document}），授予县长质量奖"),
        )),
        Step::Withdraw => Ok(to(Withdrawn, "企业撤回申报".into())),
        Step::Disqualify { rule, reason } => Ok(Decision {
            to: Disqualified,
            why: Explanation::new(rule, "DISQUALIFIED", format!("取消评选资格：{reason}")),
        }),
    }
}

/// Art. 10, 14: who must sign an opinion on an application — its recommending unit, then the
/// programme's required departments.
pub fn required_signers(recommending_unit: &str, departments: &[String]) -> Vec<String> {
    let mut v = vec![recommending_unit.to_string()];
    v.extend(
        departments
            .iter()
            .filter(|d| *d != recommending_unit)
            .cloned(),
    );
    v
}

/// the required signers without a supporting opinion yet, in the order required.
/// `signed` is (signer, SUPPORT or OBJECT).
pub fn missing_opinions(required: &[String], signed: &[(String, String)]) -> Vec<String> {
    required
        .iter()
        .filter(|r| !signed.iter().any(|(u, o)| u == *r && o == "SUPPORT"))
        .cloned()
        .collect()
}

/// Why a submission at `now` cannot be accepted: the deadline, eligibility (R-02 to
/// R-04, passed in), the character limits and the evidence.
pub fn submission_problems(
    now: OffsetDateTime,
    deadline: OffsetDateTime,
    ineligible: Vec<Explanation>,
    profile: &str,
    self_assessment: &str,
    evidence_files: usize,
    settings: &Settings,
) -> Vec<Explanation> {
    let mut p = Vec::new();
    if now > deadline {
        p.push(
            Explanation::new("R-01", "LATE_SUBMISSION", "已超过申报截止时间，不能提交")
                .with("deadline", deadline)
                .with("submitted_at", now),
        );
    }
    p.extend(ineligible);
    for (what, text, max, name) in [
        (
            "组织概述",
            profile,
            settings.profile_max_chars,
            "organisation_profile",
        ),
        (
            "自评报告",
            self_assessment,
            settings.self_assessment_max_chars,
            "self_assessment",
        ),
    ] {
        let n = chars::count(text);
        if n == 0 {
            p.push(
                Explanation::new("R-05", "MATERIAL_MISSING", format!("{what}不能为空"))
                    .with("field", name),
            );
        } else if n > max as usize {
            p.push(
                Explanation::new(
                    "R-05",
                    "TOO_LONG",
                    format!("{what}共{n}字（不计空白字符），超过{max}字的限制"),
                )
                .with("field", name)
                .with("characters", n)
                .with("limit", max),
            );
        }
    }
    if evidence_files == 0 {
        p.push(Explanation::new(
            "R-05",
            "EVIDENCE_MISSING",
            "未上传证明材料",
        ));
    }
    p
}

/// What an application in `stage` is waiting for, for the cycle board; `deadline` is the
/// cycle's submission deadline as people read it, `review_ends` the last day of the window of
/// the group reviewing it now, and `visit_stopped` whether its site group stopped the visit.
pub fn open_deadlines(
    stage: Stage,
    deadline: &str,
    review_ends: Option<&str>,
    visit_stopped: bool,
) -> Vec<String> {
    let by = |what: &str, rule: &str| match review_ends {
        Some(end) => format!("{what}：{end}前（{rule}）"),
        None => format!("{what}（{rule}）"),
    };
    match stage {
        Draft => vec![format!("提交申报材料：{deadline}前（R-01）")],
        Submitted => vec!["推荐单位出具推荐意见（R-05）".to_string()],
        Recommended => vec!["评选委员会办公室受理审查（R-05）".to_string()],
        Accepted => vec!["抽取资料评审组（R-12）".to_string()],
        MaterialsReview => vec![by("资料评审组独立评分并形成共识", "R-12")],
        MaterialsPassed => vec!["抽取陈述答辩评审组（R-14）".to_string()],
        Defence => vec![
            by("陈述答辩评分", "R-14"),
            "抽取现场评审组（R-15）".to_string(),
        ],
        SiteVisit if visit_stopped => {
            vec!["评选委员会办公室确认现场评审发现的问题（R-15）".to_string()]
        }
        SiteVisit => vec![by("现场评审并形成共识评分", "R-15")],
        Scored => vec!["发布评审结果（R-16）".to_string()],
        FinalSelection => vec!["确定候选企业（R-17）".to_string()],
        Candidate => vec!["征求有关部门意见（R-20）".to_string()],
        PublicNotice => vec![
            by("公示并处理异议", "R-21"),
            "评选委员会审议（R-22）".to_string(),
        ],
        _ => Vec::new(),
    }
}

/// Whether an application in `stage` is late on `today`, and by which rule: still a draft after
/// the cycle's submission deadline, or still in a review stage after the last day of
/// its group's window (R-12 materials, R-14 defence, R-15 site visit). A stopped site visit
/// waits for the office, not the group. A never-submitted draft is late only while its cycle
/// is still before its decision: once the cycle is decided, vacant or approved, it is no
/// application and owes nothing (issue 25, item 7). Dates are China Standard Time calendar
/// days; the last day itself is not late.
pub fn overdue(
    stage: Stage,
    cycle: crate::domain::cycle::CycleState,
    deadline: time::Date,
    review_ends: Option<time::Date>,
    visit_stopped: bool,
    today: time::Date,
) -> Option<Explanation> {
    use crate::domain::cycle::CycleState;
    let (due, rule, what) = match stage {
        Draft if matches!(cycle, CycleState::Open | CycleState::PublicNotice) => {
            (deadline, "R-01", "申报材料提交期限")
        }
        MaterialsReview => (review_ends?, "R-12", "资料评审组评审期"),
        Defence => (review_ends?, "R-14", "陈述答辩评审期"),
        SiteVisit if !visit_stopped => (review_ends?, "R-15", "现场评审期"),
        _ => return None,
    };
    let date = qaward_kit::convert::chinese_date(due);
    (today > due).then(|| {
        Explanation::new(
            rule,
            "OVERDUE",
            format!("逾期：{what}已于{date}结束（{rule}）"),
        )
        .with("due_date", due)
        .with("today", today)
    })
}

/// The transition table as Markdown, for `docs/stages.md`.
pub fn table_markdown() -> String {
    let list = |s: &[Stage]| s.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(", ");
    let mut out = String::from("| step | from | to | rule | when |\n|---|---|---|---|---|\n");
    for e in TABLE {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            e.step,
            list(e.from),
            list(e.to),
            e.rule,
            e.when
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::domain::cycle::CycleState;

    fn s() -> Settings {
        Settings::default()
    }

    #[test]
    fn r13_scorings_decision_moves_the_application_with_its_numbers() {
        let decided = |passed: bool, score: Decimal| Step::MaterialsDecided {
            passed,
            score,
            threshold: Decimal::from(500),
        };
        let pass = apply(MaterialsReview, &decided(true, Decimal::from(500))).unwrap();
        assert_eq!(pass.to, MaterialsPassed);
        assert_eq!(pass.why.rule, "R-13");
        assert_eq!(pass.why.inputs["materials_score"], "500");
        assert_eq!(pass.why.inputs["threshold"], "500");
        let fail = apply(MaterialsReview, &decided(false, Decimal::new(49999, 2))).unwrap();
        assert_eq!(fail.to, MaterialsFailed);
        assert!(fail.why.message.contains("未达到"), "{}", fail.why.message);
    }

    #[test]
    fn r16_scorings_decision_moves_the_application_into_the_final_selection_or_not() {
        let decided = |selected: bool, review_score: Decimal| Step::ReviewDecided {
            selected,
            review_score,
            threshold: Decimal::from(350),
        };
        let d = apply(Scored, &decided(true, Decimal::from(350))).unwrap();
        assert_eq!(d.to, FinalSelection);
        let d = apply(Scored, &decided(false, Decimal::new(3499, 1))).unwrap();
        assert_eq!(d.to, NotSelected);
        assert_eq!(d.why.inputs["review_score"], "349.9");
    }

    #[test]
    fn a_step_from_the_wrong_stage_is_refused_with_its_rule() {
        let e = apply(
            Draft,
            &Step::MaterialsDecided {
                passed: true,
                score: Decimal::from(600),
                threshold: Decimal::from(500),
            },
        )
        .unwrap_err();
        assert_eq!((e.rule, e.reason), ("R-13", "STEP_NOT_ALLOWED"));
        let e = apply(MaterialsReview, &Step::Withdraw).unwrap_err();
        assert_eq!(
            e.reason, "STEP_NOT_ALLOWED",
            "no withdrawal once the review started"
        );
        for terminal in [
            Rejected,
            MaterialsFailed,
            NotSelected,
            Awarded,
            Withdrawn,
            Disqualified,
        ] {
            assert!(terminal.is_final(), "{terminal:?}");
        }
    }

    #[test]
    fn r05_recommendations_must_all_be_signed_before_acceptance() {
        let e = apply(
            Submitted,
            &Step::Recommend {
                missing: vec!["青龙街道办事处".into()],
            },
        )
        .unwrap_err();
        assert_eq!(e.reason, "RECOMMENDATIONS_MISSING");
        assert_eq!(
            apply(Submitted, &Step::Accept).unwrap_err().reason,
            "STEP_NOT_ALLOWED"
        );
        assert_eq!(
            apply(Submitted, &Step::Recommend { missing: vec![] })
                .unwrap()
                .to,
            Recommended
        );
    }

    #[test]
    fn r05_every_required_signer_supports_before_the_office_reviews() {
        let required = required_signers("qinglong", &["fgw".into(), "qinglong".into()]);
        assert_eq!(required, ["qinglong", "fgw"]);
        let signed = vec![("qinglong".to_string(), "SUPPORT".to_string())];
        assert_eq!(missing_opinions(&required, &signed), ["fgw"]);
        let signed = vec![
            ("qinglong".to_string(), "SUPPORT".to_string()),
            ("fgw".to_string(), "OBJECT".to_string()),
        ];
        assert_eq!(missing_opinions(&required, &signed), ["fgw"]);
        let signed = vec![
            ("fgw".to_string(), "SUPPORT".to_string()),
            ("qinglong".to_string(), "SUPPORT".to_string()),
        ];
        assert!(missing_opinions(&required, &signed).is_empty());
    }

    #[test]
    fn r01_r05_a_late_or_oversize_submission_is_refused_with_every_reason() {
        let deadline = datetime!(2026-06-30 17:00 +8);
        let p = submission_problems(
            datetime!(2026-06-30 17:00:01 +8),
            deadline,
            vec![],
            &"质".repeat(3_001),
            "报告",
            0,
            &s(),
        );
        let got: Vec<_> = p.iter().map(|e| (e.rule, e.reason)).collect();
        assert_eq!(
            got,
            [
                ("R-01", "LATE_SUBMISSION"),
                ("R-05", "TOO_LONG"),
                ("R-05", "EVIDENCE_MISSING")
            ]
        );
        let e = apply(Draft, &Step::Submit { problems: p }).unwrap_err();
        assert_eq!(e.rule, "R-01");
        assert!(e.message.contains("超过3000字"), "{}", e.message);
        // On time, within limits (white space not counted), with evidence: submitted.
        let ok = submission_problems(
            deadline,
            deadline,
            vec![],
            &format!("{}\n\n", "质".repeat(3_000)),
            "报告",
            1,
            &s(),
        );
        assert_eq!(ok, vec![]);
        assert_eq!(
            apply(Draft, &Step::Submit { problems: ok }).unwrap().to,
            Submitted
        );
    }

    #[test]
    fn r15_r21_disqualification_carries_its_own_rule() {
        let d = apply(
            SiteVisit,
            &Step::Disqualify {
                rule: "R-15",
                reason: "现场发现申报数据造假".into(),
            },
        )
        .unwrap();
        assert_eq!((d.to, d.why.rule), (Disqualified, "R-15"));
        let d = apply(
            PublicNotice,
            &Step::Disqualify {
                rule: "R-21",
                reason: "投诉查实".into(),
            },
        )
        .unwrap();
        assert_eq!(d.why.rule, "R-21");
    }

    #[test]
    fn every_stage_is_reachable_from_a_draft() {
        let mut reached = vec![Draft];
        let mut grew = true;
        while grew {
            grew = false;
            for e in TABLE {
                if e.from.iter().any(|f| reached.contains(f)) {
                    for t in e.to {
                        if !reached.contains(t) {
                            reached.push(*t);
                            grew = true;
                        }
                    }
                }
            }
        }
        let unreached: Vec<_> = Stage::ALL.iter().filter(|s| !reached.contains(s)).collect();
        assert!(unreached.is_empty(), "{unreached:?}");
    }

    #[test]
    fn the_board_says_what_each_stage_waits_for() {
        assert_eq!(
            open_deadlines(Draft, "2026年6月30日", None, false),
            ["提交申报材料：2026年6月30日前（R-01）"]
        );
        assert_eq!(open_deadlines(Submitted, "x", None, false).len(), 1);
        assert!(open_deadlines(Withdrawn, "x", None, false).is_empty());
        assert_eq!(
            open_deadlines(MaterialsReview, "x", Some("2026年7月10日"), false),
            ["资料评审组独立评分并形成共识：2026年7月10日前（R-12）"]
        );
        assert!(open_deadlines(SiteVisit, "x", Some("y"), true)[0].contains("确认"));
    }

    #[test]
    fn r01_r12_r14_r15_a_stage_is_overdue_the_day_after_its_last_day() {
        use time::macros::date;
        let (deadline, ends) = (date!(2026 - 06 - 30), date!(2026 - 07 - 10));
        // The last day itself is not late; the next is.
        assert!(
            overdue(
                Draft,
                CycleState::Open,
                deadline,
                None,
                false,
                date!(2026 - 06 - 30)
            )
            .is_none()
        );
        let late = overdue(
            Draft,
            CycleState::Open,
            deadline,
            None,
            false,
            date!(2026 - 07 - 01),
        )
        .unwrap();
        // Once the cycle is decided, a never-submitted draft owes nothing.
        for closed in [
            CycleState::Decided,
            CycleState::Vacant,
            CycleState::Approved,
        ] {
            assert!(overdue(Draft, closed, deadline, None, false, date!(2026 - 12 - 01)).is_none());
        }
        assert_eq!(late.rule, "R-01");
        assert_eq!(late.inputs["due_date"], "2026-06-30");
        assert!(late.message.contains("2026年6月30日"), "{}", late.message);
        for (stage, rule) in [
            (MaterialsReview, "R-12"),
            (Defence, "R-14"),
            (SiteVisit, "R-15"),
        ] {
            assert!(overdue(stage, CycleState::Open, deadline, Some(ends), false, ends).is_none());
            let late = overdue(
                stage,
                CycleState::Open,
                deadline,
                Some(ends),
                false,
                date!(2026 - 07 - 11),
            );
            assert_eq!(late.map(|e| e.rule), Some(rule));
            // No group yet: nothing to be late against.
            assert!(
                overdue(
                    stage,
                    CycleState::Open,
                    deadline,
                    None,
                    false,
                    date!(2027 - 01 - 01)
                )
                .is_none()
            );
        }
        // A stopped visit waits for the office's confirmation, not for the group.
        assert!(
            overdue(
                SiteVisit,
                CycleState::Open,
                deadline,
                Some(ends),
                true,
                date!(2026 - 08 - 01)
            )
            .is_none()
        );
        // Other stages wait for people without a date the system knows.
        assert!(
            overdue(
                Accepted,
                CycleState::Open,
                deadline,
                Some(ends),
                false,
                date!(2027 - 01 - 01)
            )
            .is_none()
        );
    }

    #[test]
    fn docs_print_the_table_as_it_is() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/stages.md"))
                .expect("docs/stages.md");
        assert!(
            doc.contains(&table_markdown()),
            "docs/stages.md is out of date; paste this table:\n{}",
            table_markdown()
        );
    }
}
