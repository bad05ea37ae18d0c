//! R-54 (issue 23, item 6): personal data written through the API — reviewers' mobile and
//! resident ID numbers, a notification recipient's e-mail and mobile — is nowhere in clear at
//! rest: not in any byte of any file the run leaves in the data directory (SQLite databases
//! and their WAL, keys, blobs), nor in a `pg_dump` of every schema on PostgreSQL.

use qaward_proto::qaward::{
    notifications::v1 as npb,
    reviewers::v1::{self as rpb, reviewer_service_client::ReviewerServiceClient},
};

use crate::support::{Qaward, qaward, with_token};

/// Known values, unlike anything else the run writes.
fn people() -> Vec<(String, String)> {
    (0..5)
        .map(|i| {
            (
                format!("1397654{i:04}"),
                qaward_kit::cn::resident_id_with_check(&format!("50023519870412{i:03}")).unwrap(),
            )
        })
        .collect()
}

const EMAIL: &str = "li.si.private@example.cn";

fn registry() -> Vec<u8> {
    let mut s = "name,mobile,resident_id,certificate_number,certificate_valid_from,certificate_valid_until,specialities,employer_code,leader_qualified,status\n".to_string();
    for (i, (mobile, id)) in people().iter().enumerate() {
        s.push_str(&format!(
            "R{i},{mobile},{id},PD-{i:03},2024-01-01,2029-12-31,C13,,true,ACTIVE\n"
        ));
    }
    s.into_bytes()
}

/// Every byte of every file below `dir`, searched for each needle; the hits as (file, needle).
fn scan(dir: &std::path::Path, needles: &[String]) -> Vec<(String, String)> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let bytes = std::fs::read(&p).unwrap_or_default();
        for n in needles {
            if bytes.windows(n.len()).any(|w| w == n.as_bytes()) {
                hits.push((p.display().to_string(), n.clone()));
            }
        }
    }
    hits
}

async fn write_and_read(q: &Qaward) -> Vec<String> {
    let office = q.token_for("office", "office-1", &["--programme", "yunyang"]);
    let mut reviewers = ReviewerServiceClient::new(q.channel("gateway").await);
    reviewers
        .import_reviewers(with_token(
            rpb::ImportReviewersRequest {
                format: rpb::ImportFormat::Csv as i32,
                encoding: rpb::TextEncoding::Utf8 as i32,
                content: registry(),
                request_id: String::new(),
            },
            &office,
        ))
        .await
        .unwrap();
    // Reads mask; the keeper's reveal opens one, for a purpose.
    let listed = reviewers
        .list_reviewers(with_token(
            rpb::ListReviewersRequest {
                page_size: 10,
                ..Default::default()
            },
            &office,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.reviewers.iter().all(|r| r.mobile.contains('*')));
    let revealed = reviewers
        .reveal_reviewer(with_token(
            rpb::RevealReviewerRequest {
                name: "reviewers/PD-000".into(),
                purpose: "通知现场评审日程".into(),
                // Kept for retries: the stored answer holds the number, sealed.
                request_id: "pd-reveal".into(),
            },
            &office,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revealed.mobile, people()[0].0);
    let mut notifications = npb::notification_service_client::NotificationServiceClient::new(
        q.channel("gateway").await,
    );
    notifications
        .create_notification(with_token(
            npb::CreateNotificationRequest {
                notification: Some(npb::Notification {
                    event_type: "reviewer.drawn".into(),
                    recipients: vec![npb::Recipient {
                        id: "PD-001".into(),
                        display_name: "R1".into(),
                        email: EMAIL.into(),
                        mobile: people()[1].0.clone(),
                        channels: vec![npb::Channel::Inbox as i32, npb::Channel::Sms as i32],
                    }],
                    variables: [
                        ("reviewer_name", "R1"),
                        ("purpose", "现场评审"),
                        ("window_start", "2027-05-11"),
                        ("window_end", "2027-05-12"),
                        ("respond_by", "2027-05-01"),
                    ]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                    ..Default::default()
                }),
                request_id: "pd-notify".into(),
            },
            &office,
        ))
        .await
        .unwrap();
    let mut needles: Vec<String> = people().into_iter().flat_map(|(m, i)| [m, i]).collect();
    needles.push(EMAIL.into());
    needles
}

#[tokio::test]
async fn no_personal_data_is_in_clear_in_any_file_the_run_leaves_on_sqlite() {
    let q = Qaward::start(&[], &[]).await;
    let needles = write_and_read(&q).await;
    // Killed, as a crash would: the WAL files stay as they are.
    let dir = q.kill().await;
    let hits = scan(dir.path(), &needles);
    assert!(hits.is_empty(), "personal data in clear: {hits:?}");
    // The control: what is not personal data (a certificate number) is found, so the scan
    // does read what the run wrote.
    assert!(!scan(dir.path(), &["PD-003".to_string()]).is_empty());
}

#[tokio::test]
async fn no_personal_data_is_in_clear_in_a_dump_of_every_schema_on_postgresql() {
    let Some(url) = qaward_kit::testing::fresh_postgres_database().await else {
        return;
    };
    let q = Qaward::start(&["--database-url", &url], &[]).await;
    let needles = write_and_read(&q).await;
    let dir = q.kill().await;
    let dump = std::process::Command::new("pg_dump").arg(&url).output();
    let Ok(dump) = dump else {
        eprintln!("SKIPPED the dump: pg_dump is not installed");
        return;
    };
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let text = String::from_utf8_lossy(&dump.stdout);
    assert!(text.contains("reviewers"), "the dump holds the schemas");
    let in_dump: Vec<&String> = needles
        .iter()
        .filter(|n| text.contains(n.as_str()))
        .collect();
    assert!(
        in_dump.is_empty(),
        "personal data in clear in pg_dump: {in_dump:?}"
    );
    let hits = scan(dir.path(), &needles);
    assert!(hits.is_empty(), "personal data in clear: {hits:?}");
}

/// `qaward keys … --data-dir DIR`: its exit status and what it printed.
fn keys(args: &[&str], dir: &std::path::Path) -> (bool, String) {
    let out = qaward(&["keys"])
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn r54_after_a_key_rotation_every_value_reads_and_none_stays_under_the_old_key() {
    let q = Qaward::start(&[], &[]).await;
    write_and_read(&q).await;
    let dir = q.kill().await;
    let (ok, text) = keys(&["status"], dir.path());
    assert!(ok, "before: everything under k1: {text}");
    let (ok, text) = keys(&["rotate"], dir.path());
    assert!(ok && text.contains("field key k2"), "{text}");
    // Now every sealed value is under a key that is no longer current.
    let (ok, text) = keys(&["status"], dir.path());
    assert!(
        !ok && text.contains("reviewers: reviewers.mobile: 5 not under k2"),
        "{text}"
    );
    assert!(
        text.contains("notifications: deliveries.address: 2 not under k2"),
        "{text}"
    );
    // Restarted, the services re-seal in the background until none is left under k1.
    let q = Qaward::start_in(dir, &[], &[]).await;
    let mut last = String::new();
    for _ in 0..100 {
        let (ok, text) = keys(&["status"], q.data_dir.path());
        if ok {
            last.clear();
            break;
        }
        last = text;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(last.is_empty(), "still under the old key: {last}");
    // And every value still reads: the reveal, a stored answer retried, a notification.
    let office = q.token_for("office", "office-1", &["--programme", "yunyang"]);
    let mut reviewers = ReviewerServiceClient::new(q.channel("gateway").await);
    for (request_id, person) in [("pd-reveal", 0), ("pd-reveal-2", 2)] {
        let revealed = reviewers
            .reveal_reviewer(with_token(
                rpb::RevealReviewerRequest {
                    name: format!("reviewers/PD-{person:03}"),
                    purpose: "通知现场评审日程".into(),
                    request_id: request_id.into(),
                },
                &office,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(revealed.mobile, people()[person].0);
    }
    let mut notifications = npb::notification_service_client::NotificationServiceClient::new(
        q.channel("gateway").await,
    );
    let me = q.token_for("reviewer", "PD-001", &["--programme", "yunyang"]);
    let mine = notifications
        .list_notifications(with_token(
            npb::ListNotificationsRequest {
                recipient_id: "PD-001".into(),
                ..Default::default()
            },
            &me,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine.notifications[0].recipients[0].email, EMAIL);
    assert_eq!(mine.notifications[0].variables["reviewer_name"], "R1");
}
