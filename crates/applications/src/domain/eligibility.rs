//! Who may apply: what the system holds as data is checked here — the
//! county of registration, years of operation, and its own records of awards, revocations and
//! fraud findings. The other conditions of Art. 11 are attestations that the recommending units
//! confirm. An ineligible application is told every reason, each with its rule.

use qaward_kit::cn::CreditCode;
use time::{Date, Month};

use super::{Explanation, settings::Settings};

/// What the system knows about an applicant.
#[derive(Debug, Clone, Default)]
pub struct Facts<'a> {
    pub credit_code: Option<&'a CreditCode>,
    /// Date of establishment (registration), from the enterprise record.
    pub established: Option<Date>,
    /// Dates this programme awarded the enterprise.
    pub awards: &'a [Date],
    /// Dates an award of the enterprise was revoked.
    pub revocations: &'a [Date],
    /// Dates fraud in this award was found against the enterprise.
    pub fraud_findings: &'a [Date],
}

/// `date` plus `years` years; 29 February becomes 28 February in a year without it (the period
/// ends on the last day of that month).
pub fn add_years(date: Date, years: u32) -> Date {
    let year = date.year() + years as i32;
    Date::from_calendar_date(year, date.month(), date.day())
        .or_else(|_| Date::from_calendar_date(year, Month::February, 28))
        .unwrap_or(date)
}

fn iso(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Every reason the applicant may not apply to a cycle whose deadline is `deadline`; empty when
/// it may.
pub fn check(facts: &Facts<'_>, settings: &Settings, deadline: Date) -> Vec<Explanation> {
    let mut reasons = Vec::new();
    match facts.credit_code {
        None => reasons.push(Explanation::new(
            "R-02",
            "CREDIT_CODE_MISSING",
            "未登记统一社会信用代码，无法确认企业登记所在地",
        )),
        Some(code) if !settings.division_codes.iter().any(|d| d == code.division()) => {
            reasons.push(
                Explanation::new(
                    "R-02",
                    "OUTSIDE_COUNTY",
                    format!(
                        "统一社会信用代码中的登记管理行政区划码{}不属于本县（{}），企业须在本县登记注册并纳税",
                        code.division(),
                        settings.division_codes.join("、")
                    ),
                )
                .with("division_code", code.division())
                .with("county_division_codes", settings.division_codes.join(",")),
            )
        }
        Some(_) => {}
    }
    let years = settings.min_operating_years;
    match facts.established {
        None => reasons.push(Explanation::new(
            "R-03",
            "ESTABLISHED_DATE_UNKNOWN",
            "未登记成立日期，无法确认连续经营年限",
        )),
        Some(est) if add_years(est, years) > deadline => reasons.push(
            Explanation::new(
                "R-03",
                "TOO_FEW_OPERATING_YEARS",
                format!(
                    "截至申报截止日{}，企业连续经营不满{years}年（成立于{}，满{years}年之日为{}）",
                    iso(deadline),
                    iso(est),
                    iso(add_years(est, years))
                ),
            )
            .with("established_date", iso(est))
            .with("deadline", iso(deadline))
            .with("min_operating_years", years),
        ),
        Some(_) => {}
    }
    // Art. 12(2)-(4): each bar runs its own years.
    let within = |ban: u32| move |d: &&Date| add_years(**d, ban) > deadline;
    let ban = settings.ban_years;
    if let Some(d) = facts.awards.iter().filter(within(ban)).max() {
        reasons.push(
            Explanation::new(
                "R-04",
                "AWARDED_RECENTLY",
                format!(
                    "企业于{}获得本奖项，获奖未满{ban}年（满{ban}年之日为{}）",
                    iso(*d),
                    iso(add_years(*d, ban))
                ),
            )
            .with("award_date", iso(*d))
            .with("ban_years", ban),
        );
    }
    let ban = settings.revocation_ban_years;
    if let Some(d) = facts.revocations.iter().filter(within(ban)).max() {
        reasons.push(
            Explanation::new(
                "R-33",
                "REVOKED_RECENTLY",
                format!(
                    "企业的奖项于{}被撤销，撤销未满{ban}年（满{ban}年之日为{}）",
                    iso(*d),
                    iso(add_years(*d, ban))
                ),
            )
            .with("revocation_date", iso(*d))
            .with("ban_years", ban),
        );
    }
    let ban = settings.fraud_ban_years;
    if let Some(d) = facts.fraud_findings.iter().filter(within(ban)).max() {
        reasons.push(
            Explanation::new(
                "R-04",
                "FRAUD_FOUND",
                format!("企业于{}被认定在本奖项评选中弄虚作假，未满{ban}年", iso(*d)),
            )
            .with("fraud_finding_date", iso(*d))
            .with("ban_years", ban),
        );
    }
    reasons
}

/// The conditions the system does not hold as data, which the recommending unit attests when
/// it supports an application: Art. 11(1)-(5) and Art. 12(1). (name, rule, text).
pub const ATTESTED_CONDITIONS: [(&str, &str, &str); 8] = [
    (
        "POLICY_COMPLIANCE",
        "R-03",
        "符合国家产业、环保、节能、质量政策",
    ),
    (
        "EXCELLENCE_MODEL",
        "R-03",
        "持续实施卓越绩效管理模式，成效显著",
    ),
    (
        "LEADING_QUALITY",
        "R-03",
        "主导产品质量、技术水平和经营结果处于本县同行业领先地位",
    ),
    (
        "NO_MAJOR_ACCIDENT",
        "R-03",
        "近3年未发生重大质量、环境、安全生产事故，监督抽查无质量问题",
    ),
    ("GOOD_CREDIT", "R-03", "近3年诚信记录良好，无违法违规行为"),
    ("LICENCES_HELD", "R-04", "已取得国家规定的相关证照"),
    // Art. 2: the award is for enterprises registered and paying tax in the county, each an
    // independent legal person; the division code shows the registration, not the rest.
    ("TAX_REGISTERED", "R-02", "在本县登记并纳税"),
    ("INDEPENDENT_LEGAL_PERSON", "R-02", "具有独立法人资格"),
];

/// every condition a supporting recommendation leaves unattested, each with its rule.
pub fn unattested(attested: &[String]) -> Vec<Explanation> {
    ATTESTED_CONDITIONS
        .iter()
        .filter(|(name, _, _)| !attested.iter().any(|a| a == name))
        .map(|(name, rule, text)| {
            Explanation::new(
                rule,
                "CONDITION_NOT_ATTESTED",
                format!("推荐单位未确认：{text}"),
            )
            .with("condition", *name)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use qaward_kit::cn;
    use time::macros::date;

    use super::*;

    fn code(first17: &str) -> CreditCode {
        CreditCode::parse(&cn::with_check(first17).unwrap()).unwrap()
    }

    const DEADLINE: Date = date!(2026 - 06 - 30);

    #[test]
    fn an_established_yunyang_enterprise_with_a_clean_record_is_eligible() {
        let c = code("91500235MA5U7XXX0");
        let facts = Facts {
            credit_code: Some(&c),
            established: Some(date!(2015 - 03 - 01)),
            ..Facts::default()
        };
        assert_eq!(check(&facts, &Settings::default(), DEADLINE), vec![]);
    }

    #[test]
    fn r02_an_enterprise_registered_in_another_county_is_refused_with_the_codes() {
        let c = code("91500101MA5U7XXX0"); // Wanzhou, not Yunyang
        let facts = Facts {
            credit_code: Some(&c),
            established: Some(date!(2015 - 03 - 01)),
            ..Facts::default()
        };
        let r = check(&facts, &Settings::default(), DEADLINE);
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].rule, r[0].reason), ("R-02", "OUTSIDE_COUNTY"));
        assert_eq!(r[0].inputs["division_code"], "500101");
        assert!(r[0].message.contains("500101") && r[0].message.contains("500235"));
    }

    #[test]
    fn r03_three_years_of_operation_count_to_the_deadline_inclusive() {
        let c = code("91500235MA5U7XXX0");
        let facts = |est| Facts {
            credit_code: Some(&c),
            established: Some(est),
            ..Facts::default()
        };
        let s = Settings::default();
        // Exactly three years on the deadline: eligible. One day short: not.
        assert_eq!(check(&facts(date!(2023 - 06 - 30)), &s, DEADLINE), vec![]);
        let r = check(&facts(date!(2023 - 07 - 01)), &s, DEADLINE);
        assert_eq!(
            (r[0].rule, r[0].reason),
            ("R-03", "TOO_FEW_OPERATING_YEARS")
        );
        // 29 February: the period ends on 28 February.
        assert_eq!(add_years(date!(2024 - 02 - 29), 3), date!(2027 - 02 - 28));
    }

    #[test]
    fn r04_r33_every_bar_is_reported_with_its_rule() {
        let c = code("91500101MA5U7XXX0");
        let awards = [date!(2019 - 12 - 01), date!(2024 - 01 - 15)];
        let revocations = [date!(2025 - 03 - 01)];
        let fraud = [date!(2024 - 06 - 01)];
        let facts = Facts {
            credit_code: Some(&c),
            established: Some(date!(2024 - 01 - 01)),
            awards: &awards,
            revocations: &revocations,
            fraud_findings: &fraud,
        };
        let r = check(&facts, &Settings::default(), DEADLINE);
        let got: Vec<_> = r.iter().map(|e| (e.rule, e.reason)).collect();
        assert_eq!(
            got,
            [
                ("R-02", "OUTSIDE_COUNTY"),
                ("R-03", "TOO_FEW_OPERATING_YEARS"),
                ("R-04", "AWARDED_RECENTLY"),
                ("R-33", "REVOKED_RECENTLY"),
                ("R-04", "FRAUD_FOUND"),
            ]
        );
        assert_eq!(
            r[2].inputs["award_date"], "2024-01-15",
            "the latest award counts"
        );
        // A finding of 2023-06-30 bars until 2026-06-30, the deadline itself: three full
        // years have passed by then, so it no longer bars.
        let old = [date!(2023 - 06 - 30)];
        let facts = Facts {
            credit_code: Some(&c),
            established: Some(date!(2010 - 01 - 01)),
            fraud_findings: &old,
            ..Facts::default()
        };
        let r = check(&facts, &Settings::default(), DEADLINE);
        assert_eq!(r.iter().filter(|e| e.reason == "FRAUD_FOUND").count(), 0);
        // Art. 12(2)-(4): a county that bars fraud for five years still bars it, while its
        // awards and revocations keep their own years.
        let stricter = Settings {
            fraud_ban_years: 5,
            revocation_ban_years: 1,
            ..Settings::default()
        };
        let r = check(&facts, &stricter, DEADLINE);
        let fraud = r.iter().find(|e| e.reason == "FRAUD_FOUND").unwrap();
        assert_eq!(fraud.inputs["ban_years"], "5");
        let revoked = [date!(2025 - 03 - 01)];
        let facts = Facts {
            credit_code: Some(&c),
            established: Some(date!(2010 - 01 - 01)),
            revocations: &revoked,
            ..Facts::default()
        };
        let r = check(&facts, &stricter, DEADLINE);
        assert!(
            !r.iter().any(|e| e.reason == "REVOKED_RECENTLY"),
            "one year has passed: {r:?}"
        );
        let r = check(&facts, &Settings::default(), DEADLINE);
        assert!(
            r.iter().any(|e| e.reason == "REVOKED_RECENTLY"),
            "three have not"
        );
    }

    #[test]
    fn r03_r04_support_attests_every_condition_the_system_cannot_check() {
        let all: Vec<String> = ATTESTED_CONDITIONS
            .iter()
            .map(|c| c.0.to_string())
            .collect();
        assert!(unattested(&all).is_empty());
        let some: Vec<String> = all[..4].to_vec();
        let missing = unattested(&some);
        let got: Vec<(&str, &str)> = missing
            .iter()
            .map(|e| (e.rule, e.inputs["condition"].as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("R-03", "GOOD_CREDIT"),
                ("R-04", "LICENCES_HELD"),
                // Art. 2: registered and paying tax in the county, an independent legal person.
                ("R-02", "TAX_REGISTERED"),
                ("R-02", "INDEPENDENT_LEGAL_PERSON"),
            ]
        );
    }
}
