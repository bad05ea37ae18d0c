//! A reviewer's rights over their personal data (R-54; PIPL Art. 46-47): they correct their own
//! mobile number; their data is erased at their request unless a panel still needs to reach
//! them, and stays erased through later imports; an import reports one resident ID behind
//! several certificates without the ID being kept.

use qaward_kit::{
    auth::Role,
    fields::FieldKeys,
    testing::{self, reason},
};
use sqlx::Row;
use tonic::Code;

use super::{as_, pb, registry_csv, set_up, start};

async fn stored(db: &qaward_kit::db::Database, id: &str) -> (String, String, String) {
    let row = sqlx::query("SELECT mobile, resident_id, status FROM reviewers WHERE id = $1")
        .bind(id)
        .fetch_one(db.pool())
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

#[tokio::test]
async fn r54_a_reviewer_corrects_their_own_mobile_and_no_one_else_does() {
    for db in testing::backends("reviewers", &qaward_reviewers::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db).await;
        let office = set_up(&mut r, 3).await;
        let me = r.keys.token_for("CQ-0001", Role::Reviewer, "yunyang");
        let other = r.keys.token_for("CQ-0002", Role::Reviewer, "yunyang");
        let correct = |mobile: &str| pb::CorrectReviewerContactRequest {
            name: "reviewers/CQ-0001".into(),
            mobile: mobile.into(),
            request_id: String::new(),
        };
        for token in [&other, &office] {
            let e = r
                .client
                .correct_reviewer_contact(as_(token, correct("13911112222")))
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::PermissionDenied, "{label}");
        }
        let e = r
            .client
            .correct_reviewer_contact(as_(&me, correct("1391111")))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{label}");
        assert!(e.message().contains("mobile"), "{label}: {}", e.message());
        let before = stored(&r.db.db, "CQ-0001").await;
        assert_eq!(
            r.fields.open(&before.0).unwrap(),
            "13800000001",
            "{label}: unchanged"
        );
        let mine = r
            .client
            .correct_reviewer_contact(as_(&me, correct("13911112222")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(mine.mobile, "13911112222", "{label}: they see their own");
        let (mobile, _, _) = stored(&r.db.db, "CQ-0001").await;
        assert!(FieldKeys::is_sealed(&mobile) && !mobile.contains("13911112222"));
        assert_eq!(r.fields.open(&mobile).unwrap(), "13911112222");
        qaward_kit::audit::sequence_all(&r.db.db).await.unwrap();
        let detail: String =
            sqlx::query("SELECT detail FROM audit_log WHERE action = 'reviewer.correct'")
                .fetch_one(r.db.db.pool())
                .await
                .unwrap()
                .get(0);
        assert!(
            !detail.contains("13911112222"),
            "{label}: the trail keeps no number"
        );
    }
}

#[tokio::test]
async fn r54_erasure_waits_for_the_panel_then_holds_through_a_reimport() {
    for db in testing::backends("reviewers", &qaward_reviewers::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db).await;
        let office = set_up(&mut r, 3).await;
        let me = r.keys.token_for("CQ-0001", Role::Reviewer, "yunyang");
        let erase = || pb::EraseReviewerDataRequest {
            name: "reviewers/CQ-0001".into(),
            reason: "本人申请删除个人信息".into(),
            request_id: String::new(),
        };
        // Booked on a day not yet past (the test's today is 2026-02-20): a panel needs them.
        sqlx::query("INSERT INTO bookings (reviewer_id, day, panel_id) VALUES ('CQ-0001', '2026-03-02', 'p-1')")
            .execute(r.db.db.pool())
            .await
            .unwrap();
        let e = r
            .client
            .erase_reviewer_data(as_(&me, erase()))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{label}");
        assert_eq!(reason(&e), "NEEDED_BY_A_PANEL", "{label}");
        assert!(
            e.message().contains("2026-03-02"),
            "{label}: {}",
            e.message()
        );
        assert!(
            FieldKeys::is_sealed(&stored(&r.db.db, "CQ-0001").await.0),
            "{label}: unchanged"
        );
        // Another reviewer cannot ask for them; a day already past does not hold it.
        let other = r.keys.token_for("CQ-0002", Role::Reviewer, "yunyang");
        let e = r
            .client
            .erase_reviewer_data(as_(&other, erase()))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{label}");
        sqlx::query("UPDATE bookings SET day = '2026-02-19' WHERE reviewer_id = 'CQ-0001'")
            .execute(r.db.db.pool())
            .await
            .unwrap();
        let erased = r
            .client
            .erase_reviewer_data(as_(&me, erase()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (
                erased.mobile.as_str(),
                erased.resident_id.as_str(),
                erased.status
            ),
            ("", "", pb::ReviewerStatus::Retired as i32),
            "{label}"
        );
        assert_eq!(erased.display_name, "评审员1", "{label}: the name stays");
        assert_eq!(
            stored(&r.db.db, "CQ-0001").await,
            (String::new(), String::new(), "RETIRED".to_string()),
            "{label}"
        );
        // The registry's next export does not bring the data back.
        let csv = registry_csv(3);
        let (bytes, _, _) = encoding_rs::GB18030.encode(&csv);
        r.client
            .import_reviewers(as_(
                &office,
                pb::ImportReviewersRequest {
                    format: pb::ImportFormat::Csv as i32,
                    encoding: pb::TextEncoding::Gb18030 as i32,
                    content: bytes.to_vec(),
                    request_id: "imp-again".into(),
                },
            ))
            .await
            .unwrap();
        assert_eq!(
            stored(&r.db.db, "CQ-0001").await,
            (String::new(), String::new(), "RETIRED".to_string()),
            "{label}: still erased"
        );
        // A correction after erasure is refused.
        let e = r
            .client
            .correct_reviewer_contact(as_(
                &me,
                pb::CorrectReviewerContactRequest {
                    name: "reviewers/CQ-0001".into(),
                    mobile: "13911112222".into(),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(reason(&e), "ERASED", "{label}");
        qaward_kit::audit::sequence_all(&r.db.db).await.unwrap();
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM audit_log WHERE action = 'reviewer.erase'")
            .fetch_one(r.db.db.pool())
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 1, "{label}");
    }
}

#[tokio::test]
async fn r54_an_import_reports_one_id_behind_several_certificates() {
    for db in testing::backends("reviewers", &qaward_reviewers::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db).await;
        // Every reviewer of the test registry has one ID (its only sample): all three are
        // one person to the keyed index.
        let office = set_up(&mut r, 1).await;
        let mut csv = registry_csv(3);
        csv.push_str(
            "另一人,13800009999,500235198704120028,CQ-9999,2024-01-01,2028-12-31,C13,,否,在册\n",
        );
        let (bytes, _, _) = encoding_rs::GB18030.encode(&csv);
        let report = r
            .client
            .import_reviewers(as_(
                &office,
                pb::ImportReviewersRequest {
                    format: pb::ImportFormat::Csv as i32,
                    encoding: pb::TextEncoding::Gb18030 as i32,
                    content: bytes.to_vec(),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            report.same_person,
            [pb::SamePerson {
                reviewers: vec![
                    "reviewers/CQ-0000".into(),
                    "reviewers/CQ-0001".into(),
                    "reviewers/CQ-0002".into()
                ],
                resident_id_last4: "002X".into(),
            }],
            "{label}"
        );
    }
}
