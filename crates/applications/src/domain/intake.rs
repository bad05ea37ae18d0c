//! Intake (R-01, R-05; Art. 10, 14): who signs an opinion on an application before the office
//! reviews it, and every reason a submission is refused at once. The step that moves the
//! application is `stage::apply`'s; these decide what it is given.

use time::OffsetDateTime;

use super::{Explanation, chars, settings::Settings};

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
/// What an application submits (Art. 13): its form, profile, self-assessment, and how many
/// evidence files.
#[derive(Debug, Clone, Copy)]
pub struct Materials<'a> {
    pub application_form: &'a str,
    pub profile: &'a str,
    pub self_assessment: &'a str,
    pub evidence_files: usize,
}

pub fn submission_problems(
    now: OffsetDateTime,
    deadline: OffsetDateTime,
    ineligible: Vec<Explanation>,
    m: Materials<'_>,
    settings: &Settings,
) -> Vec<Explanation> {
    let Materials {
        application_form,
        profile,
        self_assessment,
        evidence_files,
    } = m;
    let mut p = Vec::new();
    if now > deadline {
        p.push(
            Explanation::new("R-01", "LATE_SUBMISSION", "已超过申报截止时间，不能提交")
                .with("deadline", deadline)
                .with("submitted_at", now),
        );
    }
    p.extend(ineligible);
    // Art. 13: the application form (申报表) is the first of the materials.
    if chars::count(application_form) == 0 {
        p.push(
            Explanation::new("R-05", "MATERIAL_MISSING", "申报表不能为空")
                .with("field", "application_form"),
        );
    }
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

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::domain::stage::{
        Stage::{Draft, Submitted},
        Step, apply,
    };

    fn s() -> Settings {
        Settings::default()
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
            Materials {
                application_form: " ",
                profile: &"质".repeat(3_001),
                self_assessment: "报告",
                evidence_files: 0,
            },
            &s(),
        );
        let got: Vec<_> = p.iter().map(|e| (e.rule, e.reason)).collect();
        assert_eq!(
            got,
            [
                ("R-01", "LATE_SUBMISSION"),
                ("R-05", "MATERIAL_MISSING"),
                ("R-05", "TOO_LONG"),
                ("R-05", "EVIDENCE_MISSING")
            ]
        );
        // Art. 13: the application form (申报表) is a required item, named by its field.
        assert_eq!(p[1].inputs["field"], "application_form");
        let e = apply(Draft, &Step::Submit { problems: p }).unwrap_err();
        assert_eq!(e.rule, "R-01");
        assert!(e.message.contains("超过3000字"), "{}", e.message);
        // On time, within limits (white space not counted), with evidence: submitted.
        let ok = submission_problems(
            deadline,
            deadline,
            vec![],
            Materials {
                application_form: "申报表",
                profile: &format!("{}\n\n", "质".repeat(3_000)),
                self_assessment: "报告",
                evidence_files: 1,
            },
            &s(),
        );
        assert_eq!(ok, vec![]);
        assert_eq!(
            apply(Draft, &Step::Submit { problems: ok }).unwrap().to,
            Submitted
        );
    }
}
