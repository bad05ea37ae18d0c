//! The record of a defence hearing (Art. 16(4)) and of a site visit (Art. 16(5)), kept with
//! the scores they explain: what the applicant said, what the panel asked and heard, what the
//! advisors advised; what the site group did, step by step and by whom, what it found on which
//! rubric item and on what evidence, and its report. These are the checks that make a log a
//! record someone can rely on: the right log for the stage, people who were there, items of the
//! rubric, evidence behind every finding.

use serde::{Deserialize, Serialize};

/// What an assignment's log holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Log {
    Hearing(Hearing),
    SiteVisit(SiteVisit),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hearing {
    pub statement_summary: String,
    pub exchanges: Vec<Exchange>,
    pub advisor_comments: Vec<AdvisorComment>,
    /// Art. 16(4): the presenter is the enterprise's principal leader ("答辩人为企业主要负责人"):
    /// their name and post, recorded. Logs saved before read as empty.
    #[serde(default)]
    pub presenter_name: String,
    #[serde(default)]
    pub presenter_post: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    pub question: String,
    /// A reviewer id.
    pub asked_by: String,
    pub answer: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdvisorComment {
    pub advisor: String,
    pub comments: String,
    pub suggestions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteVisit {
    pub agenda: Vec<AgendaEntry>,
    pub findings: Vec<Finding>,
    pub report: String,
}

/// The steps of a site visit, in the order they are held (1 = preparatory meeting … 8 =
/// closing meeting).
pub const AGENDA_STEPS: [&str; 8] = [
    "预备会议",
    "首次会议",
    "现场巡视",
    "分头评审",
    "员工座谈",
    "查阅资料",
    "形成结论",
    "末次会议",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgendaEntry {
    /// 1-8, as [`AGENDA_STEPS`].
    pub step: i32,
    pub start_micros: Option<i64>,
    /// Reviewer ids.
    pub participants: Vec<String>,
    pub notes: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub item_code: String,
    pub finding: String,
    pub documents: Vec<String>,
    pub interviews: Vec<String>,
    /// A reviewer id.
    pub found_by: String,
}

/// (field path, description)
pub type Problem = (String, String);

fn length(out: &mut Vec<Problem>, field: String, text: &str, min: usize, max: usize) {
    let n = text.trim().chars().count();
    if n < min || n > max {
        out.push((
            field,
            if min > 0 {
                format!("{min}-{max} characters")
            } else {
                format!("at most {max} characters")
            },
        ));
    }
}

/// Every problem of `log` for an assignment of `stage` whose people are `people` (reviewer id,
/// MEMBER | LEADER | ADVISOR); `is_item` says whether a code is an item of its rubric.
pub fn problems(
    stage: &str,
    log: &Log,
    people: &[(String, String)],
    is_item: impl Fn(&str) -> bool,
) -> Vec<Problem> {
    let role = |id: &str| {
        people
            .iter()
            .find(|(p, _)| p.eq_ignore_ascii_case(id))
            .map(|(_, r)| r.as_str())
    };
    let scorer = |id: &str| matches!(role(id), Some("MEMBER" | "LEADER"));
    let mut out = Vec::new();
    match log {
        Log::Hearing(h) => {
            if stage != "DEFENCE" {
                out.push((
                    "review_log.hearing".into(),
                    "a hearing log is kept for a defence panel (Art. 16(4), R-14)".into(),
                ));
                return out;
            }
            let at = "review_log.hearing";
            length(
                &mut out,
                format!("{at}.statement_summary"),
                &h.statement_summary,
                1,
                5000,
            );
            length(
                &mut out,
                format!("{at}.presenter_name"),
                &h.presenter_name,
                1,
                50,
            );
            length(
                &mut out,
                format!("{at}.presenter_post"),
                &h.presenter_post,
                1,
                50,
            );
            for (i, e) in h.exchanges.iter().enumerate() {
                let at = format!("{at}.exchanges[{i}]");
                length(&mut out, format!("{at}.question"), &e.question, 1, 2000);
                length(&mut out, format!("{at}.answer"), &e.answer, 0, 5000);
                if !scorer(&e.asked_by) {
                    out.push((
                        format!("{at}.asked_by"),
                        "must be a scoring member of the panel".into(),
                    ));
                }
            }
            for (i, c) in h.advisor_comments.iter().enumerate() {
                let at = format!("{at}.advisor_comments[{i}]");
                if role(&c.advisor) != Some("ADVISOR") {
                    out.push((
                        format!("{at}.advisor"),
                        "must be an advisor of the panel (R-14)".into(),
                    ));
                }
                length(&mut out, format!("{at}.comments"), &c.comments, 1, 5000);
                for (j, s) in c.suggestions.iter().enumerate() {
                    length(&mut out, format!("{at}.suggestions[{j}]"), s, 1, 1000);
                }
            }
        }
        Log::SiteVisit(v) => {
            if stage != "SITE" {
                out.push((
                    "review_log.site_visit".into(),
                    "a site-visit log is kept for a site group (Art. 16(5), R-15)".into(),
                ));
                return out;
            }
            let at = "review_log.site_visit";
            let mut last_step = 0;
            let mut last_start = None;
            for (i, a) in v.agenda.iter().enumerate() {
                let at = format!("{at}.agenda[{i}]");
                if !(1..=8).contains(&a.step) {
                    out.push((format!("{at}.step"), "is one of the eight steps".into()));
                } else if a.step <= last_step {
                    out.push((
                        format!("{at}.step"),
                        "each step once, in the order they are held".into(),
                    ));
                } else {
                    last_step = a.step;
                }
                if let (Some(prev), Some(start)) = (last_start, a.start_micros)
                    && start < prev
                {
                    out.push((
                        format!("{at}.start_time"),
                        "starts before the step before it".into(),
                    ));
                }
                last_start = a.start_micros.or(last_start);
                if a.participants.is_empty() {
                    out.push((format!("{at}.participants"), "who took part".into()));
                }
                for (j, p) in a.participants.iter().enumerate() {
                    if !scorer(p) {
                        out.push((
                            format!("{at}.participants[{j}]"),
                            "must be a member of the group".into(),
                        ));
                    }
                }
                length(&mut out, format!("{at}.notes"), &a.notes, 0, 5000);
            }
            for (i, f) in v.findings.iter().enumerate() {
                let at = format!("{at}.findings[{i}]");
                if !is_item(&f.item_code) {
                    out.push((
                        format!("{at}.item_code"),
                        "is not an item of the rubric".into(),
                    ));
                }
                length(&mut out, format!("{at}.finding"), &f.finding, 1, 5000);
                if f.documents
                    .iter()
                    .chain(&f.interviews)
                    .all(|e| e.trim().is_empty())
                {
                    out.push((
                        format!("{at}.documents"),
                        "a finding rests on documents read or interviews held".into(),
                    ));
                }
                if !scorer(&f.found_by) {
                    out.push((
                        format!("{at}.found_by"),
                        "must be a member of the group".into(),
                    ));
                }
            }
            length(&mut out, format!("{at}.report"), &v.report, 0, 20000);
        }
    }
    out
}

/// a released stage's logs are read-only, as its scores are.
pub fn check_open(released: bool) -> qaward_kit::Result<()> {
    if released {
        return Err(qaward_kit::Error::rule(
            "R-51",
            super::lifecycle::STAGE_RELEASED,
            "released results are read-only, their logs too",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn people() -> Vec<(String, String)> {
        [("R1", "LEADER"), ("R2", "MEMBER"), ("A1", "ADVISOR")]
            .map(|(p, r)| (p.to_string(), r.to_string()))
            .to_vec()
    }

    fn fields(p: Vec<Problem>) -> Vec<String> {
        p.into_iter().map(|(f, _)| f).collect()
    }

    #[test]
    fn r14_a_hearing_log_names_its_presenter_and_the_panels_scorers_and_advisors() {
        let good = Log::Hearing(Hearing {
            statement_summary: "企业陈述了卓越绩效推进情况。".into(),
            exchanges: vec![Exchange {
                question: "顾客满意度如何测量？".into(),
                asked_by: "r2".into(),
                answer: "每季度第三方调查。".into(),
            }],
            advisor_comments: vec![AdvisorComment {
                advisor: "A1".into(),
                comments: "数据分析较弱。".into(),
                suggestions: vec!["建立关键绩效指标体系".into()],
            }],
            presenter_name: "张明".into(),
            presenter_post: "董事长、总经理".into(),
        });
        assert!(problems("DEFENCE", &good, &people(), |_| true).is_empty());
        assert_eq!(
            fields(problems("SITE", &good, &people(), |_| true)),
            ["review_log.hearing"]
        );
        let Log::Hearing(mut bad) = good else {
            unreachable!()
        };
        bad.statement_summary = " ".into();
        bad.presenter_name = String::new();
        bad.exchanges[0].asked_by = "A1".into();
        bad.advisor_comments[0].advisor = "R2".into();
        assert_eq!(
            fields(problems("DEFENCE", &Log::Hearing(bad), &people(), |_| true)),
            [
                "review_log.hearing.statement_summary",
                "review_log.hearing.presenter_name",
                "review_log.hearing.exchanges[0].asked_by",
                "review_log.hearing.advisor_comments[0].advisor"
            ]
        );
    }

    #[test]
    fn r15_a_site_visit_log_holds_the_steps_in_order_and_evidence_behind_each_finding() {
        let entry = |step, start| AgendaEntry {
            step,
            start_micros: start,
            participants: vec!["R1".into(), "R2".into()],
            notes: String::new(),
        };
        let good = Log::SiteVisit(SiteVisit {
            agenda: vec![entry(1, Some(10)), entry(2, Some(20)), entry(8, None)],
            findings: vec![Finding {
                item_code: "4.5.2".into(),
                finding: "关键过程未设绩效指标。".into(),
                documents: vec!["过程管理手册".into()],
                interviews: vec![],
                found_by: "R2".into(),
            }],
            report: "现场评审报告……".into(),
        });
        let items = |c: &str| c == "4.5.2";
        assert!(problems("SITE", &good, &people(), items).is_empty());
        assert_eq!(
            fields(problems("DEFENCE", &good, &people(), items)),
            ["review_log.site_visit"]
        );
        let Log::SiteVisit(mut bad) = good else {
            unreachable!()
        };
        bad.agenda = vec![entry(2, Some(20)), entry(1, Some(10)), entry(9, None)];
        bad.agenda[0].participants.push("A1".into());
        bad.findings[0].item_code = "9.9".into();
        bad.findings[0].documents.clear();
        assert_eq!(
            fields(problems("SITE", &Log::SiteVisit(bad), &people(), items)),
            [
                "review_log.site_visit.agenda[0].participants[2]",
                "review_log.site_visit.agenda[1].step",
                "review_log.site_visit.agenda[1].start_time",
                "review_log.site_visit.agenda[2].step",
                "review_log.site_visit.findings[0].item_code",
                "review_log.site_visit.findings[0].documents"
            ]
        );
    }
}
