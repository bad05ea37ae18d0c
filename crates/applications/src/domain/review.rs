//! The reviews: which stage an application must be in for a group of
//! a review stage, how big the group is, which specialities the applicants need, which step the
//! released results take, and who may read an application while a review runs.

use super::{
    Explanation,
    settings::Settings,
    stage::{Stage, Step},
};

/// A review stage, named as scoring names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewStage {
    Materials,
    Defence,
    Site,
}

impl ReviewStage {
    pub const ALL: [ReviewStage; 3] = [
        ReviewStage::Materials,
        ReviewStage::Defence,
        ReviewStage::Site,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReviewStage::Materials => "MATERIALS",
            ReviewStage::Defence => "DEFENCE",
            ReviewStage::Site => "SITE",
        }
    }

    pub fn parse(s: &str) -> Option<ReviewStage> {
        ReviewStage::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The step that moves an application into this review when its group starts.
    pub fn start_step(self) -> Step {
        match self {
            ReviewStage::Materials => Step::StartMaterialsReview,
            ReviewStage::Defence => Step::StartDefence,
            ReviewStage::Site => Step::StartSiteVisit,
        }
    }

    /// The application's stage while this review runs.
    pub fn running(self) -> Stage {
        match self {
            ReviewStage::Materials => Stage::MaterialsReview,
            ReviewStage::Defence => Stage::Defence,
            ReviewStage::Site => Stage::SiteVisit,
        }
    }

    /// How many reviewers the programme draws: R-12 (at least 3), R-14 (at least 5), R-15.
    pub fn size(self, s: &Settings) -> u32 {
        match self {
            ReviewStage::Materials => s.materials_group_size,
            ReviewStage::Defence => s.defence_panel_size,
            ReviewStage::Site => s.site_group_size,
        }
    }

    /// The rule that organises this review.
    pub fn rule(self) -> &'static str {
        match self {
            ReviewStage::Materials => "R-12",
            ReviewStage::Defence => "R-14",
            ReviewStage::Site => "R-15",
        }
    }

    /// Chinese name, for notices and messages.
    pub fn label(self) -> &'static str {
        match self {
            ReviewStage::Materials => "资料评审",
            ReviewStage::Defence => "陈述答辩",
            ReviewStage::Site => "现场评审",
        }
    }
}

/// A review group: prepared (its draw fixed, not yet executed), then started (drawn, assigned
/// in scoring). Stored as its upper-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Prepared,
    Started,
}

impl GroupState {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Prepared => "PREPARED",
            GroupState::Started => "STARTED",
        }
    }

    pub fn parse(s: &str) -> Option<GroupState> {
        [GroupState::Prepared, GroupState::Started]
            .into_iter()
            .find(|g| g.as_str() == s)
    }
}

/// the specialities a group needs — the industry division (GB/T 4754 letter and two
/// digits, `C13`) of each applicant, once each, sorted; a section-only code stays a section.
pub fn specialities(industries: &[String]) -> Vec<String> {
    let mut v: Vec<String> = industries
        .iter()
        .map(|i| i.chars().take(3).collect::<String>())
        .filter(|i| !i.is_empty())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Refuses a group for an application that is not where the review starts from, with the rule
/// of the step (the application must be accepted before its materials review, and so on).
pub fn may_join(stage: ReviewStage, current: Stage) -> Result<(), Explanation> {
    super::stage::apply(current, &stage.start_step()).map(|_| ())
}

/// The step the released results take for an application of `stage`, from scoring's
/// decisions. `None` when scoring has not decided it yet (its score is not released).
/// Materials: R-13 (scoring compares the consensus score with the threshold). Site: the scoring
/// is finished, then R-16 (scoring computes the review score and compares it).
pub fn result_steps(
    stage: ReviewStage,
    materials: Option<(bool, rust_decimal::Decimal)>,
    review: Option<(bool, rust_decimal::Decimal)>,
    s: &Settings,
) -> Option<Vec<Step>> {
    match stage {
        ReviewStage::Materials => {
            let (passed, score) = materials?;
            Some(vec![Step::MaterialsDecided {
                passed,
                score,
                threshold: s.materials_threshold,
            }])
        }
        ReviewStage::Site => {
            let (selected, review_score) = review?;
            Some(vec![
                Step::FinishScoring,
                Step::ReviewDecided {
                    selected,
                    review_score,
                    threshold: s.final_selection_threshold,
                },
            ])
        }
        // The defence score enters the composite with the candidates, in part 2; the
        // application stays in DEFENCE until its site group starts.
        ReviewStage::Defence => None,
    }
}

/// Art. 16(5)1: a site visit lasts at most `max_days` (the programme's setting); other groups'
/// windows are the reviewers service's to bound. Why not, if the window is too long.
pub fn window_problem(stage: ReviewStage, days: i64, max_days: u32) -> Option<String> {
    (stage == ReviewStage::Site && days > i64::from(max_days))
        .then(|| format!("a site visit lasts at most {max_days} days (Art. 16(5)), not {days}"))
}

/// Art. 16(4), R-14: a defence panel invites the programme's number of non-scoring advisors
/// (1-2 by default: "邀请1-2名经济、管理、技术专家作为点评顾问，但不打分"); no other group has
/// any. Why not, if `advisors` is the wrong number.
pub fn advisors_problem(stage: ReviewStage, advisors: usize, min: u32, max: u32) -> Option<String> {
    if stage != ReviewStage::Defence {
        return (advisors > 0).then(|| "advisors sit only on the defence panel (R-14)".to_string());
    }
    let n = advisors as u32;
    (n < min || n > max).then(|| {
        format!("a defence panel invites {min}-{max} non-scoring advisors (R-14), not {n}")
    })
}

/// The group's members as a draw or a change of its panel seats them (reviewer ids): the
/// leader first, marked, then the others in draw order. A panel with no leader seat (a
/// defence panel) has none marked.
pub fn seated(leader: &str, members: &[String]) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = Vec::with_capacity(members.len());
    if !leader.is_empty() {
        out.push((leader.to_string(), true));
    }
    out.extend(
        members
            .iter()
            .filter(|m| m.as_str() != leader)
            .map(|m| (m.clone(), false)),
    );
    out
}

/// Who scores an application of a group, and as what (scoring's roles): the leader as LEADER,
/// except on a defence panel where every member scores alike, the others as MEMBER,
/// the defence panel's advisors as ADVISOR (they do not score).
pub fn scorers(
    stage: ReviewStage,
    members: &[(String, bool)],
    advisors: &[String],
) -> Vec<(String, &'static str)> {
    members
        .iter()
        .map(|(m, leads)| {
            let role = if *leads && stage != ReviewStage::Defence {
                "LEADER"
            } else {
                "MEMBER"
            };
            (m.clone(), role)
        })
        .chain(advisors.iter().map(|a| (a.clone(), "ADVISOR")))
        .collect()
}

/// a reviewer reads an application only while a review it is drawn for runs — the
/// application is in that review's stage.
pub fn reviewer_may_read(current: Stage, drawn_for: &[ReviewStage]) -> bool {
    drawn_for.iter().any(|s| s.running() == current)
}

/// an application sits in one group of each review stage; `other` is the
/// group it already sits in, if any.
pub fn one_group_per_stage(
    stage: ReviewStage,
    application: &str,
    other: Option<&str>,
) -> Result<(), Explanation> {
    match other {
        Some(other) => Err(Explanation::new(
            stage.rule(),
            "ALREADY_IN_A_GROUP",
            format!("申报{application}已分入本阶段的评审组{other}"),
        )
        .with("application", application)),
        None => Ok(()),
    }
}

/// a group's reviewers are drawn once.
pub fn may_draw(group: &str, state: GroupState) -> Result<(), Explanation> {
    if state == GroupState::Started {
        return Err(Explanation::new(
            "R-45",
            "ALREADY_STARTED",
            format!("评审组{group}已抽取，不能重新抽取"),
        ));
    }
    Ok(())
}

/// the group starts only on an executed draw; a failed one says why.
pub fn drawn(draw: &str, executed: bool, failure: &str) -> Result<(), Explanation> {
    if !executed {
        return Err(
            Explanation::new("R-40", "DRAW_FAILED", format!("抽取未能完成：{failure}"))
                .with("draw", draw),
        );
    }
    Ok(())
}

/// A stage is released when some application is in it, and only once every one of them has
/// scoring's decision (R-12: a group that has not signed its consensus holds it back).
pub fn may_release(
    stage: ReviewStage,
    running: usize,
    waiting: &[String],
) -> Result<(), Explanation> {
    if running == 0 {
        return Err(Explanation::new(
            stage.rule(),
            "NOTHING_TO_RELEASE",
            format!("本年度没有处于{}阶段的申报", stage.label()),
        ));
    }
    if !waiting.is_empty() {
        return Err(Explanation::new(
            "R-12",
            "CONSENSUS_MISSING",
            format!("以下申报的评审组尚未签署共识评分：{}", waiting.join("、")),
        )
        .with("waiting", waiting.join(",")));
    }
    Ok(())
}

/// a site visit is stopped while it runs, once.
pub fn may_stop_site_visit(current: Stage, already_stopped: bool) -> Result<(), Explanation> {
    if current != Stage::SiteVisit {
        return Err(Explanation::new(
            "R-15",
            "STEP_NOT_ALLOWED",
            format!("申报处于{}阶段，没有进行中的现场评审", current.as_str()),
        ));
    }
    if already_stopped {
        return Err(Explanation::new(
            "R-15",
            "ALREADY_STOPPED",
            "现场评审已经中止，等待评选委员会办公室确认",
        ));
    }
    Ok(())
}

/// Art. 16(5)3: the office finds a stop unfounded only while the visit is stopped; the visit
/// then resumes.
pub fn may_resume_site_visit(current: Stage, stopped: bool) -> Result<(), Explanation> {
    if current != Stage::SiteVisit || !stopped {
        return Err(Explanation::new(
            "R-15",
            "NOT_STOPPED",
            "没有中止的现场评审，无需恢复",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;

    #[test]
    fn r12_r14_sizes_come_from_the_programme() {
        let s = Settings::default();
        assert_eq!(ReviewStage::Materials.size(&s), 3);
        assert_eq!(ReviewStage::Defence.size(&s), 5);
        assert_eq!(ReviewStage::Site.size(&s), 3);
    }

    #[test]
    fn r40_groups_need_the_applicants_industry_divisions() {
        let got = specialities(&["C1311".into(), "C13".into(), "E47".into(), "C".into()]);
        assert_eq!(got, ["C", "C13", "E47"]);
    }

    #[test]
    fn a_group_takes_only_applications_where_its_review_starts() {
        assert!(may_join(ReviewStage::Materials, Stage::Accepted).is_ok());
        let e = may_join(ReviewStage::Materials, Stage::Recommended).unwrap_err();
        assert_eq!((e.rule, e.reason), ("R-12", "STEP_NOT_ALLOWED"));
        assert!(may_join(ReviewStage::Defence, Stage::MaterialsPassed).is_ok());
        assert!(may_join(ReviewStage::Defence, Stage::MaterialsFailed).is_err());
        assert!(may_join(ReviewStage::Site, Stage::Defence).is_ok());
    }

    #[test]
    fn r13_r16_results_take_scorings_decision_once_it_is_in() {
        let s = Settings::default();
        assert_eq!(result_steps(ReviewStage::Materials, None, None, &s), None);
        let steps = result_steps(
            ReviewStage::Materials,
            Some((true, Decimal::from(500))),
            None,
            &s,
        )
        .unwrap();
        assert_eq!(
            steps,
            [Step::MaterialsDecided {
                passed: true,
                score: Decimal::from(500),
                threshold: Decimal::from(500)
            }]
        );
        let steps = result_steps(
            ReviewStage::Site,
            Some((true, Decimal::from(600))),
            Some((false, Decimal::new(3495, 1))),
            &s,
        )
        .unwrap();
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0], Step::FinishScoring);
        assert_eq!(result_steps(ReviewStage::Defence, None, None, &s), None);
    }

    #[test]
    fn r14_a_county_that_invites_more_advisors_may_seat_them() {
        assert!(advisors_problem(ReviewStage::Defence, 2, 1, 2).is_none());
        assert!(advisors_problem(ReviewStage::Defence, 3, 1, 2).is_some());
        assert!(advisors_problem(ReviewStage::Defence, 3, 1, 3).is_none());
        assert!(advisors_problem(ReviewStage::Defence, 0, 1, 2).is_some());
        assert!(advisors_problem(ReviewStage::Defence, 0, 0, 2).is_none());
        assert!(advisors_problem(ReviewStage::Site, 1, 0, 5).is_some());
    }

    #[test]
    fn r43_a_reviewer_reads_only_while_its_review_runs() {
        let drawn = [ReviewStage::Materials];
        assert!(reviewer_may_read(Stage::MaterialsReview, &drawn));
        assert!(!reviewer_may_read(Stage::MaterialsPassed, &drawn));
        assert!(!reviewer_may_read(Stage::Accepted, &drawn));
        assert!(reviewer_may_read(
            Stage::SiteVisit,
            &[ReviewStage::Materials, ReviewStage::Site]
        ));
    }

    #[test]
    fn r12_r45_one_group_per_stage_drawn_once_released_when_all_are_scored() {
        let e = one_group_per_stage(ReviewStage::Defence, "a/1", Some("g1")).unwrap_err();
        assert_eq!((e.rule, e.reason), ("R-14", "ALREADY_IN_A_GROUP"));
        assert_eq!(e.inputs["application"], "a/1");
        assert!(one_group_per_stage(ReviewStage::Materials, "a/1", None).is_ok());
        assert_eq!(
            may_draw("g1", GroupState::Started).unwrap_err().reason,
            "ALREADY_STARTED"
        );
        assert!(may_draw("g1", GroupState::Prepared).is_ok());
        assert_eq!(
            drawn("d1", false, "short").unwrap_err().inputs["draw"],
            "d1"
        );
        assert_eq!(
            may_release(ReviewStage::Site, 0, &[]).unwrap_err().reason,
            "NOTHING_TO_RELEASE"
        );
        let e = may_release(ReviewStage::Materials, 2, &["a/2".into()]).unwrap_err();
        assert_eq!((e.rule, e.reason), ("R-12", "CONSENSUS_MISSING"));
        assert!(may_release(ReviewStage::Materials, 2, &[]).is_ok());
    }

    #[test]
    fn r15_a_site_visit_is_stopped_while_it_runs_and_once() {
        assert!(may_stop_site_visit(Stage::SiteVisit, false).is_ok());
        assert_eq!(
            may_stop_site_visit(Stage::SiteVisit, true)
                .unwrap_err()
                .reason,
            "ALREADY_STOPPED"
        );
        assert_eq!(
            may_stop_site_visit(Stage::Defence, false)
                .unwrap_err()
                .reason,
            "STEP_NOT_ALLOWED"
        );
    }

    #[test]
    fn r41_a_replaced_member_leaves_the_seats_and_the_backup_scores_in_their_place() {
        let ids = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        // The draw's order, with the leader anywhere: the leader comes first.
        let before = seated("B", &ids(&["A", "B", "C"]));
        assert_eq!(
            before,
            vec![("B".into(), true), ("A".into(), false), ("C".into(), false)]
        );
        let after = seated("B", &ids(&["D", "B", "C"]));
        let roles = scorers(ReviewStage::Materials, &after, &[]);
        assert_eq!(
            roles,
            vec![
                ("B".into(), "LEADER"),
                ("D".into(), "MEMBER"),
                ("C".into(), "MEMBER")
            ]
        );
        // on a defence panel everyone scores as a member; advisors do not score.
        let roles = scorers(ReviewStage::Defence, &after, &ids(&["X"]));
        assert!(
            roles
                .iter()
                .all(|(r, role)| *role == if r == "X" { "ADVISOR" } else { "MEMBER" })
        );
        assert_eq!(seated("", &ids(&["A"])), vec![("A".into(), false)]);
    }

    #[test]
    fn a_site_visit_lasts_at_most_the_programmes_days() {
        assert_eq!(window_problem(ReviewStage::Site, 2, 2), None);
        assert!(
            window_problem(ReviewStage::Site, 3, 2)
                .unwrap()
                .contains("Art. 16(5)")
        );
        assert_eq!(window_problem(ReviewStage::Materials, 5, 2), None);
    }
}
