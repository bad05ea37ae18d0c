//! A re-check of the feedback report (R-13, issue 25 item 3): an applicant that failed the
//! materials review asks once, within the programme's window; the office answers with reasons.

use qaward_kit::{auth::Role, testing};
use qaward_proto::qaward::applications::v1 as pb;
use tonic::Code;

use super::{
    as_, code, date, fields,
    reviews::{
        accepted, app, applicant, assignment_of, consensus, group, office_told, open_cycle,
        reason_of, release, rule_of, set_up_registry, world,
    },
};

fn ask(code: &str, reason: &str) -> pb::RequestRecheckRequest {
    pb::RequestRecheckRequest {
        parent: app(code),
        recheck: Some(pb::Recheck {
            reason: reason.into(),
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

#[tokio::test]
async fn r13_a_failed_applicant_asks_for_a_recheck_once_in_its_window_and_the_office_answers() {
    for db in testing::backends("applications", &qaward_applications::MIGRATIONS).await {
        let mut w = world(db).await;
        let label = w.label;
        let office = w.office.clone();
        set_up_registry(&mut w).await;
        open_cycle(&mut w).await;
        let [passes, fails, late] = [1, 2, 3].map(|i| code(&format!("91500235MA5U7RC0{i}")));
        for (x, name) in [
            (&passes, "重庆云阳复核甲机械有限公司"),
            (&fails, "重庆云阳复核乙食品有限公司"),
            (&late, "重庆云阳复核丙电子有限公司"),
        ] {
            let me = applicant(&mut w, x, name).await;
            accepted(&mut w, x, &me).await;
        }
        w.clock.set(time::macros::datetime!(2026-07-01 01:00 UTC));
        let all = [passes.as_str(), fails.as_str(), late.as_str()];
        let m = group(&mut w, pb::ReviewStage::Materials, &all, (6, 10), "rc").await;
        for (x, pct) in all.iter().zip([60, 45, 40]) {
            consensus(&mut w, &m, assignment_of(&m, x), pct).await;
        }
        release(&mut w, pb::ReviewStage::Materials).await.unwrap();
        let token = |x: &str| w.keys.token_for_org("e", Role::Enterprise, x);

        // Only the applicant itself asks, and only with a report to dispute.
        let e = w
            .apps
            .request_recheck(as_(&token(&passes), ask(&fails, "不服")))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{label}");
        let e = w
            .apps
            .request_recheck(as_(&token(&passes), ask(&passes, "不服")))
            .await
            .unwrap_err();
        assert_eq!(
            (rule_of(&e).as_str(), reason_of(&e).as_str()),
            ("R-13", "NO_FEEDBACK_REPORT"),
            "{label}"
        );
        let e = w
            .apps
            .request_recheck(as_(&token(&fails), ask(&fails, " ")))
            .await
            .unwrap_err();
        assert_eq!(fields(&e), ["recheck.reason"], "{label}");

        // Within the window (15 days by default) it is taken, once, and the office is told.
        let asked = w
            .apps
            .request_recheck(as_(
                &token(&fails),
                ask(&fails, "反馈报告对4.3.2的扣分与自评报告所附数据不符"),
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(asked.outcome, pb::RecheckOutcome::Pending as i32, "{label}");
        assert_eq!(asked.window_end, date(2026, 7, 16), "{label}");
        let e = w
            .apps
            .request_recheck(as_(&token(&fails), ask(&fails, "再次申请")))
            .await
            .unwrap_err();
        assert_eq!(reason_of(&e), "ALREADY_REQUESTED", "{label}");
        super::award::eventually(|| async {
            (office_told(&w, "recheck.requested").await == 1).then_some(())
        })
        .await;

        // The office answers with reasons, once; nobody else answers.
        let decide = |outcome: pb::RecheckOutcome, reasons: &str| pb::DecideRecheckRequest {
            name: asked.name.clone(),
            outcome: outcome as i32,
            reasons: reasons.into(),
            request_id: String::new(),
        };
        let e = w
            .apps
            .decide_recheck(as_(
                &token(&fails),
                decide(pb::RecheckOutcome::Upheld, "自行认定"),
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{label}");
        let e = w
            .apps
            .decide_recheck(as_(&office, decide(pb::RecheckOutcome::Pending, "理由")))
            .await
            .unwrap_err();
        assert_eq!(fields(&e), ["outcome"], "{label}");
        let decided = w
            .apps
            .decide_recheck(as_(
                &office,
                decide(
                    pb::RecheckOutcome::Confirmed,
                    "经复核，4.3.2扣分依据为现场核验数据，与自评报告口径不同，维持原结论",
                ),
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            decided.outcome,
            pb::RecheckOutcome::Confirmed as i32,
            "{label}"
        );
        assert!(decided.decide_time.is_some());
        let e = w
            .apps
            .decide_recheck(as_(&office, decide(pb::RecheckOutcome::Upheld, "改判")))
            .await
            .unwrap_err();
        assert_eq!(reason_of(&e), "ALREADY_DECIDED", "{label}");

        // After the window the other failed applicant is too late.
        w.clock.set(time::macros::datetime!(2026-07-17 01:00 +8));
        let e = w
            .apps
            .request_recheck(as_(&token(&late), ask(&late, "不服")))
            .await
            .unwrap_err();
        assert_eq!(
            (rule_of(&e).as_str(), reason_of(&e).as_str()),
            ("R-13", "RECHECK_WINDOW_CLOSED"),
            "{label}"
        );
    }
}
