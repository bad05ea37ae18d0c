//! How an application moves: one table of allowed steps (`TABLE`), and `apply`, which takes a
//! stage and a step and either names the next stage with the rule and numbers behind it, or
//! refuses with the rule that forbids the step. `docs/stages.md` prints the table; a test keeps
//! the two equal.

use super::Explanation;
use rust_decimal::Decimal;

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
    /// The enterprise submits; `problems` are from [`super::intake::submission_problems`].
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
    /// The committee's votes did not adopt the candidate; `why` is
    /// [`super::committee::decide`]'s verdict with the tally.
    NotAdopted {
        why: Explanation,
    },
    /// The county government returned a candidate the committee adopted (R-23, Art. 16(10)).
    Returned {
        document: String,
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
            Step::Returned { .. } => "returned",
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
        when: "the committee, with more than two thirds of its member units present, does not adopt the candidate: the units' votes fall short under the programme's rule",
    },
    Edge {
        step: "returned",
        from: &[PublicNotice],
        to: &[NotSelected],
        rule: "R-23",
        when: "the county government returns a candidate the committee adopted, with its document number and reason",
    },
    Edge {
        step: "award",
        from: &[PublicNotice],
        to: &[Awarded],
        rule: "R-23",
        when: "the committee adopted the candidate after the notice closed with no complaint pending, and the government approves it",
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
        Step::NotAdopted { why } => Ok(Decision {
            to: NotSelected,
            why: why.clone(),
        }),
        Step::Returned { document, note } => Ok(Decision {
            to: NotSelected,
            why: Explanation::new(
                "R-23",
                "RETURNED",
                format!("县人民政府未予批准（{document}）：{note}"),
            )
            .with("document", document),
        }),
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
    use super::*;

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
