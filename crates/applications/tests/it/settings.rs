//! Every number a setting (issue 25, item 6; R-01): a county that sets other numbers gets other
//! behaviour, and a number no year can have is refused with its field.

use qaward_kit::testing;
use qaward_proto::qaward::applications::v1 as pb;
use tonic::Code;

use super::{
    as_, code, date, fields,
    reviews::{open_cycle, world},
};

fn defence_with_advisors(cycle: &str, n: usize) -> pb::PrepareReviewGroupRequest {
    pb::PrepareReviewGroupRequest {
        parent: cycle.into(),
        review_group: Some(pb::ReviewGroup {
            stage: pb::ReviewStage::Defence as i32,
            applications: vec![format!(
                "{cycle}/applications/{}",
                code("91500235MA5U7WX01")
            )],
            window_start: date(2026, 7, 15),
            window_end: date(2026, 7, 16),
            entropy_source: "两枚骰子".into(),
            advisors: (1..=n).map(|i| format!("reviewers/ADV-{i}")).collect(),
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

#[tokio::test]
async fn r01_a_county_that_sets_other_numbers_gets_other_behaviour() {
    for db in testing::backends("applications", &qaward_applications::MIGRATIONS).await {
        let mut w = world(db).await;
        let label = w.label;
        let office = w.office.clone();
        open_cycle(&mut w).await;
        // Art. 16(4), R-14: by default a defence panel invites 1-2 advisors; three are refused.
        let e = w
            .apps
            .prepare_review_group(as_(
                &office,
                defence_with_advisors("programmes/yunyang/cycles/2026", 3),
            ))
            .await
            .unwrap_err();
        assert_eq!(fields(&e), ["review_group.advisors"], "{label}");

        let current = w
            .apps
            .get_programme(as_(
                &office,
                pb::GetProgrammeRequest {
                    name: "programmes/yunyang".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .settings
            .unwrap();
        // The defaults are the seed's, each readable.
        assert_eq!(
            (
                current.annual_report_due.as_str(),
                current.incident_report_working_days,
                current.revocation_ban_years,
                current.fraud_ban_years,
                current.min_advisors,
                current.max_advisors,
                current.trimmed_defence_mean,
            ),
            ("06-30", 15, Some(3), Some(3), Some(1), Some(2), false),
            "{label}"
        );
        let update = |s: pb::ProgrammeSettings| {
            as_(
                &office,
                pb::UpdateProgrammeSettingsRequest {
                    name: "programmes/yunyang".into(),
                    settings: Some(s),
                    request_id: String::new(),
                },
            )
        };
        // Numbers no year can have are refused, each with its field, and change nothing.
        let e = w
            .apps
            .update_programme_settings(update(pb::ProgrammeSettings {
                annual_report_due: "02-29".into(),
                min_advisors: Some(3),
                max_advisors: Some(2),
                ..current.clone()
            }))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{label}");
        let mut got = fields(&e);
        got.sort();
        assert_eq!(
            got,
            ["settings.annual_report_due", "settings.min_advisors"],
            "{label}"
        );
        // Another county: reports due by 31 March, incidents within 10 working days, fraud
        // barred for 5 years, up to 3 advisors, a trimmed defence mean.
        let other = w
            .apps
            .update_programme_settings(update(pb::ProgrammeSettings {
                annual_report_due: "03-31".into(),
                incident_report_working_days: 10,
                fraud_ban_years: Some(5),
                max_advisors: Some(3),
                trimmed_defence_mean: true,
                ..current.clone()
            }))
            .await
            .unwrap()
            .into_inner()
            .settings
            .unwrap();
        assert_eq!(
            (
                other.version,
                other.annual_report_due.as_str(),
                other.fraud_ban_years,
                other.max_advisors,
                other.trimmed_defence_mean,
            ),
            (2, "03-31", Some(5), Some(3), true),
            "{label}"
        );
        // A cycle opened now pins them: its defence panel may invite three advisors (the call
        // goes on to the next check: the application is not at the defence).
        w.apps
            .create_cycle(as_(
                &office,
                pb::CreateCycleRequest {
                    parent: "programmes/yunyang".into(),
                    cycle: Some(super::notice(2027)),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap();
        let mut three = defence_with_advisors("programmes/yunyang/cycles/2027", 3);
        if let Some(g) = three.review_group.as_mut() {
            g.window_start = date(2027, 7, 15);
            g.window_end = date(2027, 7, 16);
        }
        let e = w
            .apps
            .prepare_review_group(as_(&office, three))
            .await
            .unwrap_err();
        assert!(
            fields(&e).is_empty() && e.code() != Code::InvalidArgument,
            "{label}: three advisors pass under this county's settings: {e:?}"
        );
        // The 2026 cycle keeps the numbers it opened with.
        let e = w
            .apps
            .prepare_review_group(as_(
                &office,
                defence_with_advisors("programmes/yunyang/cycles/2026", 3),
            ))
            .await
            .unwrap_err();
        assert_eq!(fields(&e), ["review_group.advisors"], "{label}");
    }
}
