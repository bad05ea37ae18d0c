//! A cycle's results, in exact decimals, every outcome explained by its rule
//! and numbers. Every threshold and weight is a programme setting.

use rust_decimal::{Decimal, RoundingStrategy};

/// The numbers of DOMAIN.md, as a programme sets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// materials score needed for defence and site visit ("含": inclusive).
    pub materials_threshold: Decimal,
    /// review score = materials × this + site × `site_weight`.
    pub materials_weight: Decimal,
    pub site_weight: Decimal,
    /// review score needed for the final selection (inclusive).
    pub final_threshold: Decimal,
    /// composite score needed to be a candidate (inclusive).
    pub candidate_threshold: Decimal,
    /// at most this many candidates.
    pub max_candidates: usize,
    /// the defence score is the panel mean, or a trimmed mean.
    pub defence: DefenceRule,
    pub defence_min_scorers: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefenceRule {
    Mean,
    /// Drop one highest and one lowest score, then the mean.
    TrimmedMean,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            materials_threshold: Decimal::from(500),
            materials_weight: Decimal::new(2, 1),
            site_weight: Decimal::new(8, 1),
            final_threshold: Decimal::from(350),
            candidate_threshold: Decimal::from(400),
            max_candidates: 2,
            defence: DefenceRule::Mean,
            defence_min_scorers: 5,
        }
    }
}

/// Scores are kept to two decimal places where a division makes more; half away from zero.
pub const SCALE: u32 = 2;

fn round(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(SCALE, RoundingStrategy::MidpointAwayFromZero)
        .normalize()
}

/// The defence score of a panel's scores.
pub fn defence_score(scores: &[Decimal], settings: &Settings) -> Result<Decimal, String> {
    if scores.len() < settings.defence_min_scorers {
        return Err(format!(
            "{} defence scores, at least {} needed (R-14)",
            scores.len(),
            settings.defence_min_scorers
        ));
    }
    if let Some(bad) = scores
        .iter()
        .find(|s| **s < Decimal::ZERO || **s > Decimal::from(100))
    {
        return Err(format!("defence score {bad} is outside 0-100"));
    }
    let mut s = scores.to_vec();
    if settings.defence == DefenceRule::TrimmedMean {
        if s.len() < 3 {
            return Err("a trimmed mean needs at least 3 scores".into());
        }
        s.sort();
        s = s[1..s.len() - 1].to_vec();
    }
    Ok(round(s.iter().sum::<Decimal>() / Decimal::from(s.len())))
}

/// What one applicant brings to the results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scores {
    pub application: String,
    /// The consensus materials score.
    pub materials: Option<Decimal>,
    /// The site group's consensus score.
    pub site: Option<Decimal>,
    /// The defence score, already computed from the panel.
    pub defence: Option<Decimal>,
    /// Why the panel's scores give no defence score yet (too few scorers, R-14).
    pub defence_problem: Option<String>,
    /// Disqualified in the applications service: the rule and the finding (issue 24).
    pub disqualified: Option<(&'static str, String)>,
}

impl Scores {
    /// An application with no score yet.
    pub fn new(application: String) -> Self {
        Scores {
            application,
            materials: None,
            site: None,
            defence: None,
            defence_problem: None,
            disqualified: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Below the materials threshold: feedback report.
    FailedMaterials,
    /// Passed materials, review score below the final-selection threshold.
    NotInFinalSelection,
    /// In the final selection but not a candidate.
    NotCandidate,
    Candidate,
    /// Level with others at the cut line: the office decides.
    TiedAtCut,
    /// A score the next step needs is not in yet.
    Pending,
    /// Disqualified: out of the ranking whatever its scores.
    Disqualified,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub rule: &'static str,
    pub message: String,
    pub inputs: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicantResult {
    pub application: String,
    pub materials: Option<Decimal>,
    pub site: Option<Decimal>,
    pub review: Option<Decimal>,
    pub defence: Option<Decimal>,
    pub composite: Option<Decimal>,
    /// Competition ranking by composite among the final selection (1 + how many scored more).
    pub rank: Option<usize>,
    pub outcome: Outcome,
    pub explanations: Vec<Explanation>,
}

impl ApplicantResult {
    /// R-13 as decided by [`compute`]: `None` until the materials score is in.
    pub fn materials_passed(&self) -> Option<bool> {
        self.materials
            .map(|_| self.outcome != Outcome::FailedMaterials)
    }

    /// R-16 as decided by [`compute`]: `None` until the review score is in.
    pub fn in_final_selection(&self) -> Option<bool> {
        self.review
            .map(|_| self.outcome != Outcome::NotInFinalSelection)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleResults {
    /// In rank order, then by application name.
    pub results: Vec<ApplicantResult>,
    /// Nobody reached the candidate threshold: the award is vacant this year.
    pub vacant: bool,
    /// Applications level at the cut line, for the office to decide.
    pub tied_at_cut: Vec<String>,
}

fn explain(rule: &'static str, message: String, inputs: &[(&str, Decimal)]) -> Explanation {
    Explanation {
        rule,
        message,
        inputs: inputs
            .iter()
            .map(|(k, v)| (k.to_string(), v.normalize().to_string()))
            .collect(),
    }
}

/// The rules an application is disqualified under, as an exclusion names them: fraud found at
/// the site visit, a department's objection upheld, a complaint in the public
/// notice substantiated or at another stage, an exclusion found late.
pub const DISQUALIFYING_RULES: [&str; 5] = ["R-04", "R-15", "R-20", "R-21", "R-52"];

/// `rule` as one of [`DISQUALIFYING_RULES`].
pub fn disqualifying_rule(rule: &str) -> Option<&'static str> {
    DISQUALIFYING_RULES.into_iter().find(|r| *r == rule)
}

/// Computes a cycle's results. The same scores and settings always give the same results.
pub fn compute(settings: &Settings, applicants: &[Scores]) -> CycleResults {
    let mut results: Vec<ApplicantResult> = applicants
        .iter()
        .map(|a| {
            let mut r = ApplicantResult {
                application: a.application.clone(),
                materials: a.materials,
                site: a.site,
                review: None,
                defence: a.defence,
                composite: None,
                rank: None,
                outcome: Outcome::Pending,
                explanations: Vec::new(),
            };
            if let Some((rule, finding)) = &a.disqualified {
                // Its scores stay shown; it takes no place and pushes nobody below the cut.
                r.outcome = Outcome::Disqualified;
                r.explanations.push(Explanation {
                    rule,
                    message: format!("已取消评审资格，不参与排名：{finding}"),
                    inputs: Vec::new(),
                });
                return r;
            }
            let Some(m) = a.materials else { return r };
            let t = settings.materials_threshold;
            if m < t {
                r.outcome = Outcome::FailedMaterials;
                r.explanations.push(explain(
                    "R-13",
                    format!(
                        "材料评审得分 {} 低于 {t} 分，不进入答辩和现场评审",
                        m.normalize()
                    ),
                    &[("materials_score", m), ("threshold", t)],
                ));
                return r;
            }
            r.explanations.push(explain(
                "R-13",
                format!(
                    "材料评审得分 {} 达到 {t} 分（含），进入答辩和现场评审",
                    m.normalize()
                ),
                &[("materials_score", m), ("threshold", t)],
            ));
            let Some(s) = a.site else { return r };
            let review = m * settings.materials_weight + s * settings.site_weight;
            r.review = Some(review.normalize());
            let f = settings.final_threshold;
            if review < f {
                r.outcome = Outcome::NotInFinalSelection;
                r.explanations.push(explain(
                    "R-16",
                    format!(
                        "评审得分 {} 低于 {f} 分，不进入最终评选",
                        review.normalize()
                    ),
                    &[
                        ("materials_score", m),
                        ("site_score", s),
                        ("review_score", review),
                        ("threshold", f),
                    ],
                ));
                return r;
            }
            r.explanations.push(explain(
                "R-16",
                format!(
                    "评审得分 = {} × {} + {} × {} = {}，达到 {f} 分（含），进入最终评选",
                    m.normalize(),
                    settings.materials_weight,
                    s.normalize(),
                    settings.site_weight,
                    review.normalize()
                ),
                &[
                    ("materials_score", m),
                    ("site_score", s),
                    ("review_score", review),
                    ("threshold", f),
                ],
            ));
            let Some(d) = a.defence else {
                if let Some(why) = &a.defence_problem {
                    r.explanations.push(Explanation {
                        rule: "R-14",
                        message: why.clone(),
                        inputs: Vec::new(),
                    });
                }
                return r;
            };
            let composite = (review + d).normalize();
            r.composite = Some(composite);
            r.outcome = Outcome::NotCandidate;
            r
        })
        .collect();

    // Rank the final selection by composite: 1 + how many score higher (equal scores share a
    // rank), found by binary search in the composites sorted high to low — n log n, where
    // counting for each applicant was n² (17.8 s for 100,000 applications).
    let mut composites: Vec<Decimal> = results.iter().filter_map(|r| r.composite).collect();
    composites.sort_by(|a, b| b.cmp(a));
    for r in results.iter_mut() {
        if let Some(c) = r.composite {
            r.rank = Some(1 + composites.partition_point(|x| *x > c));
        }
    }
    let threshold = settings.candidate_threshold;
    let mut reaching: Vec<Decimal> = composites
        .iter()
        .copied()
        .filter(|c| *c >= threshold)
        .collect();
    reaching.sort_by(|a, b| b.cmp(a));
    // The cut: when more reach the threshold than there are places, the score of the last
    // place; a tie there is not broken.
    let cut =
        (reaching.len() > settings.max_candidates).then(|| reaching[settings.max_candidates - 1]);
    // A tie matters only when the level group reaches past the last place.
    let tie_at_cut =
        cut.is_some_and(|c| reaching.iter().filter(|x| **x >= c).count() > settings.max_candidates);
    let mut tied = Vec::new();
    for r in results.iter_mut() {
        let Some(c) = r.composite else { continue };
        let inputs = [
            ("composite_score", c),
            ("threshold", threshold),
            ("max_candidates", Decimal::from(settings.max_candidates)),
        ];
        let review = r.review.unwrap_or_default();
        let defence = r.defence.unwrap_or_default();
        if c < threshold {
            r.outcome = Outcome::NotCandidate;
            r.explanations.push(explain(
                "R-17",
                format!("综合得分 = {review} + {defence} = {c}，低于 {threshold} 分"),
                &inputs,
            ));
        } else if cut.is_none()
            || c > cut.unwrap_or_default()
            || (c == cut.unwrap_or_default() && !tie_at_cut)
        {
            r.outcome = Outcome::Candidate;
            r.explanations.push(explain("R-17", format!("综合得分 = {review} + {defence} = {c}，达到 {threshold} 分，排名第 {}，列为候选", r.rank.unwrap_or(0)), &inputs));
        } else if tie_at_cut && c == cut.unwrap_or_default() {
            r.outcome = Outcome::TiedAtCut;
            tied.push(r.application.clone());
            r.explanations.push(explain(
                "R-18",
                format!(
                    "综合得分 {c} 与他人并列于第 {} 名候选名额分界线，由评选委员会办公室决定",
                    settings.max_candidates
                ),
                &inputs,
            ));
        } else {
            r.outcome = Outcome::NotCandidate;
            r.explanations.push(explain(
                "R-17",
                format!(
                    "综合得分 {c} 达到 {threshold} 分，但排名第 {}，超出 {} 个候选名额",
                    r.rank.unwrap_or(0),
                    settings.max_candidates
                ),
                &inputs,
            ));
        }
    }
    results.sort_by(|a, b| {
        a.rank
            .unwrap_or(usize::MAX)
            .cmp(&b.rank.unwrap_or(usize::MAX))
            .then_with(|| a.application.cmp(&b.application))
    });
    tied.sort();
    CycleResults {
        vacant: reaching.is_empty(),
        tied_at_cut: tied,
        results,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn app(name: &str, m: &str, s: &str, def: &str) -> Scores {
        Scores {
            application: name.into(),
            materials: Some(d(m)),
            site: Some(d(s)),
            defence: Some(d(def)),
            defence_problem: None,
            disqualified: None,
        }
    }

    fn outcome(r: &CycleResults, name: &str) -> Outcome {
        r.results
            .iter()
            .find(|x| x.application == name)
            .unwrap()
            .outcome
    }

    #[test]
    fn r13_exactly_500_passes_and_499_95_does_not() {
        let r = compute(
            &Settings::default(),
            &[
                Scores {
                    application: "a".into(),
                    materials: Some(d("500")),
                    site: None,
                    defence: None,
                    defence_problem: None,
                    disqualified: None,
                },
                Scores {
                    application: "b".into(),
                    materials: Some(d("499.95")),
                    site: None,
                    defence: None,
                    defence_problem: None,
                    disqualified: None,
                },
            ],
        );
        assert_eq!(outcome(&r, "a"), Outcome::Pending);
        assert_eq!(
            r.results
                .iter()
                .find(|x| x.application == "a")
                .unwrap()
                .explanations[0]
                .rule,
            "R-13"
        );
        assert_eq!(outcome(&r, "b"), Outcome::FailedMaterials);
    }

    #[test]
    fn r16_review_is_20_80_and_exactly_350_enters_the_final_selection() {
        // 0.2 × 550 + 0.8 × 300 = 110 + 240 = 350.
        let r = compute(
            &Settings::default(),
            &[app("a", "550", "300", "50"), app("b", "550", "299.9", "90")],
        );
        let a = r.results.iter().find(|x| x.application == "a").unwrap();
        assert_eq!(a.review, Some(d("350")));
        assert_eq!(a.composite, Some(d("400")));
        let b = r.results.iter().find(|x| x.application == "b").unwrap();
        assert_eq!(b.review, Some(d("349.92")));
        assert_eq!(b.outcome, Outcome::NotInFinalSelection);
        // The decisions the applications service moves applications by.
        assert_eq!(
            (a.materials_passed(), a.in_final_selection()),
            (Some(true), Some(true))
        );
        assert_eq!(
            (b.materials_passed(), b.in_final_selection()),
            (Some(true), Some(false))
        );
        let pending = compute(&Settings::default(), &[Scores::new("c".into())]);
        assert_eq!(pending.results[0].materials_passed(), None);
    }

    #[test]
    fn r17_exactly_400_is_a_candidate_and_a_single_one_is_the_only_candidate() {
        let r = compute(
            &Settings::default(),
            &[app("a", "550", "300", "50"), app("b", "600", "400", "20")],
        );
        // a: 350 + 50 = 400 → candidate. b: 120 + 320 + 20 = 460? no: 0.2×600 + 0.8×400 = 440, + 20 = 460.
        assert_eq!(outcome(&r, "a"), Outcome::Candidate);
        assert_eq!(outcome(&r, "b"), Outcome::Candidate);
        let r = compute(
            &Settings::default(),
            &[app("a", "550", "300", "50"), app("c", "550", "300", "49.5")],
        );
        assert_eq!(outcome(&r, "a"), Outcome::Candidate);
        assert_eq!(outcome(&r, "c"), Outcome::NotCandidate);
        assert!(!r.vacant);
    }

    #[test]
    fn r17_top_two_of_those_reaching_400() {
        let r = compute(
            &Settings::default(),
            &[
                app("a", "600", "450", "80"),
                app("b", "600", "450", "70"),
                app("c", "600", "450", "60"),
            ],
        );
        assert_eq!(
            (outcome(&r, "a"), outcome(&r, "b"), outcome(&r, "c")),
            (
                Outcome::Candidate,
                Outcome::Candidate,
                Outcome::NotCandidate
            )
        );
        assert_eq!(r.results[0].application, "a");
        assert_eq!(r.results[2].rank, Some(3));
    }

    #[test]
    fn r17_equal_composites_share_a_rank_and_the_next_counts_everyone_above() {
        let r = compute(
            &Settings::default(),
            &[
                app("a", "600", "450", "80"),
                app("b", "600", "450", "70"),
                app("c", "600", "450", "70"),
                app("d", "600", "450", "60"),
                app("e", "400", "450", "90"),
            ],
        );
        let rank = |id: &str| r.results.iter().find(|x| x.application == id).unwrap().rank;
        assert_eq!(
            [rank("a"), rank("b"), rank("c"), rank("d"), rank("e")],
            [Some(1), Some(2), Some(2), Some(4), None]
        );
    }

    #[test]
    fn r17_a_year_where_nobody_reaches_400_is_vacant() {
        // a: 0.2 × 520 + 0.8 × 320 = 360 (final selection), + 30 = 390 < 400.
        let r = compute(
            &Settings::default(),
            &[app("a", "520", "320", "30"), app("b", "510", "200", "90")],
        );
        assert_eq!(outcome(&r, "a"), Outcome::NotCandidate);
        assert_eq!(outcome(&r, "b"), Outcome::NotInFinalSelection);
        assert!(r.vacant);
        assert!(r.results.iter().all(|x| x.outcome != Outcome::Candidate));
    }

    #[test]
    fn r18_a_tie_at_second_place_is_reported_not_broken() {
        let r = compute(
            &Settings::default(),
            &[
                app("a", "600", "450", "80"),
                app("b", "600", "450", "70"),
                app("c", "600", "450", "70"),
            ],
        );
        assert_eq!(outcome(&r, "a"), Outcome::Candidate);
        assert_eq!(outcome(&r, "b"), Outcome::TiedAtCut);
        assert_eq!(outcome(&r, "c"), Outcome::TiedAtCut);
        assert_eq!(r.tied_at_cut, ["b", "c"]);
        assert_eq!(
            r.results
                .iter()
                .find(|x| x.application == "c")
                .unwrap()
                .rank,
            Some(2)
        );
        // A tie above the cut is no problem: both are candidates.
        let r = compute(
            &Settings::default(),
            &[
                app("a", "600", "450", "80"),
                app("b", "600", "450", "80"),
                app("c", "600", "450", "70"),
            ],
        );
        assert_eq!(
            (outcome(&r, "a"), outcome(&r, "b"), outcome(&r, "c")),
            (
                Outcome::Candidate,
                Outcome::Candidate,
                Outcome::NotCandidate
            )
        );
        assert!(r.tied_at_cut.is_empty());
    }

    #[test]
    fn r14_too_few_defence_scores_leave_the_result_pending_and_say_why() {
        let s = Settings::default();
        let four = [d("80"), d("85"), d("90"), d("70")];
        let why = defence_score(&four, &s).unwrap_err();
        let r = compute(
            &s,
            &[Scores {
                application: "a".into(),
                materials: Some(d("600")),
                site: Some(d("450")),
                defence: None,
                defence_problem: Some(why),
                disqualified: None,
            }],
        );
        let a = &r.results[0];
        assert_eq!(a.outcome, Outcome::Pending);
        assert_eq!(a.explanations.last().map(|e| e.rule), Some("R-14"));
        assert!(
            a.explanations
                .last()
                .unwrap()
                .message
                .contains("4 defence scores, at least 5 needed")
        );
    }

    #[test]
    fn r14_the_defence_score_is_the_mean_or_a_trimmed_mean() {
        let s = Settings::default();
        let five = [d("80"), d("85"), d("90"), d("70"), d("95")];
        assert_eq!(defence_score(&five, &s).unwrap(), d("84"));
        let trimmed = Settings {
            defence: DefenceRule::TrimmedMean,
            ..s.clone()
        };
        // Drop 70 and 95: (80 + 85 + 90) / 3 = 85.
        assert_eq!(defence_score(&five, &trimmed).unwrap(), d("85"));
        // 85.666… is kept to two places, half away from zero.
        let odd = [d("80"), d("86"), d("91"), d("70"), d("95")];
        assert_eq!(defence_score(&odd, &trimmed).unwrap(), d("85.67"));
        assert!(defence_score(&five[..4], &s).unwrap_err().contains("R-14"));
    }

    #[test]
    fn r18_the_same_inputs_always_give_the_same_results() {
        let apps = [
            app("b", "600", "450", "70"),
            app("a", "600", "450", "80"),
            app("c", "520", "300", "60"),
        ];
        let mut reversed = apps.to_vec();
        reversed.reverse();
        assert_eq!(
            compute(&Settings::default(), &apps),
            compute(&Settings::default(), &reversed)
        );
    }

    #[test]
    fn r15_a_disqualified_applicant_takes_no_place_and_pushes_nobody_below_the_cut() {
        let settings = Settings {
            max_candidates: 1,
            ..Settings::default()
        };
        let scored = |name: &str, site: i64| Scores {
            materials: Some(Decimal::from(800)),
            site: Some(Decimal::from(site)),
            defence: Some(Decimal::from(90)),
            ..Scores::new(name.to_string())
        };
        let before = compute(&settings, &[scored("a", 900), scored("b", 850)]);
        assert_eq!(outcome(&before, "a"), Outcome::Candidate);
        assert_eq!(outcome(&before, "b"), Outcome::NotCandidate);
        let mut a = scored("a", 900);
        a.disqualified = Some(("R-15", "现场评审发现弄虚作假".to_string()));
        let after = compute(&settings, &[a, scored("b", 850)]);
        assert_eq!(outcome(&after, "a"), Outcome::Disqualified);
        assert_eq!(outcome(&after, "b"), Outcome::Candidate);
        let x = after.results.iter().find(|r| r.application == "a").unwrap();
        assert_eq!((x.rank, x.composite), (None, None));
        assert_eq!(x.explanations[0].rule, "R-15");
        assert!(x.explanations[0].message.contains("弄虚作假"));
    }
}
