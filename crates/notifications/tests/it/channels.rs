//! Each external channel against a real receiver: an SMTP server (STARTTLS and AUTH, or a
//! plain relay), the county platform's webhook and the SMS gateway as HTTP sinks that check
//! the signature.

use base64::{Engine, engine::general_purpose::STANDARD};
use qaward_kit::{
    config::{Secret, SignedHttp, Smtp, SmtpTls},
    testing::{self, HttpSink},
};
use qaward_notifications::domain::signature;
use qaward_proto::qaward::notifications::v1 as pb;

use crate::{smtp::SmtpServer, *};

const SECRET: &str = "county-platform-shared-secret";

fn email_recipient() -> pb::Recipient {
    pb::Recipient {
        id: enterprise(),
        display_name: "重庆云阳某某机械有限公司".into(),
        email: "quality@mouji.example.cn".into(),
        channels: vec![pb::Channel::Email as i32],
        ..Default::default()
    }
}

/// The decoded text body of a simple (single-part) message.
fn text_body(data: &str) -> String {
    let (head, body) = data.split_once("\r\n\r\n").unwrap();
    let head = head.to_ascii_lowercase();
    if head.contains("content-transfer-encoding: base64") {
        String::from_utf8(STANDARD.decode(body.replace("\r\n", "").trim()).unwrap()).unwrap()
    } else if head.contains("content-transfer-encoding: quoted-printable") {
        let joined = body.replace("=\r\n", "");
        let mut out = Vec::new();
        let b = joined.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'=' && i + 2 < b.len() + 1 {
                out.push(u8::from_str_radix(&joined[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    } else {
        body.to_string()
    }
}

fn smtp_settings(server: &SmtpServer, tls: SmtpTls, ca_file: Option<std::path::PathBuf>) -> Smtp {
    Smtp {
        host: "localhost".into(),
        port: server.port,
        tls,
        ca_file,
        username: crate::smtp::USER.into(),
        password: Secret::new(crate::smtp::PASSWORD.into()),
        from: "云阳县县长质量奖办公室 <award@yunyang.example.cn>".into(),
        timeout_ms: 5_000,
    }
}

#[tokio::test]
async fn email_goes_over_starttls_with_authentication_to_a_real_smtp_server() {
    for db in testing::backends("notifications", &qaward_notifications::MIGRATIONS).await {
        let label = db.label;
        let server = SmtpServer::start(true).await;
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, server.ca_pem.as_ref().unwrap()).unwrap();
        let mut s = settings();
        s.smtp = smtp_settings(&server, SmtpTls::Starttls, Some(ca));
        let mut r = start(db, s).await;
        let n = r.create(passed(vec![email_recipient()]), "mail-1").await;
        let n = r.settle(&n.name, time::Duration::ZERO, delivered).await;
        let mails = server.mails();
        assert_eq!(mails.len(), 1, "{label}");
        let m = &mails[0];
        assert!(m.over_tls, "{label}: STARTTLS was used");
        assert_eq!(m.authenticated_as.as_deref(), Some(crate::smtp::USER));
        assert_eq!(m.from, "award@yunyang.example.cn");
        assert_eq!(m.to, ["quality@mouji.example.cn"]);
        let delivery_id = n.deliveries[0].name.trim_start_matches("deliveries/");
        assert!(
            m.data
                .contains(&format!("Message-ID: <{delivery_id}@qaward>")),
            "{}",
            m.data
        );
        assert!(text_body(&m.data).contains("得分512.50分"), "{}", m.data);
    }
}

#[tokio::test]
async fn a_relay_that_says_try_later_is_retried_and_one_that_says_no_is_a_dead_letter() {
    for db in testing::backends("notifications", &qaward_notifications::MIGRATIONS).await {
        let label = db.label;
        let server = SmtpServer::start(false).await;
        server.refuse_next(&["451 4.3.0 mailbox busy, try later"]);
        let mut s = settings();
        s.smtp = smtp_settings(&server, SmtpTls::None, None);
        let mut r = start(db, s).await;
        let n = r.create(passed(vec![email_recipient()]), "mail-1").await;
        let n = r
            .settle(&n.name, time::Duration::seconds(5), delivered)
            .await;
        assert_eq!(n.deliveries[0].attempts, 2, "{label}");
        // The refused attempt left no mail. Delivery is at least once: under a loaded run a
        // sent mail was once sent again (its outcome not yet recorded), so a repeat is allowed,
        // but only of the same message, which the receiver knows by its Message-ID.
        let mails = server.mails();
        let id = |m: &crate::smtp::Mail| {
            m.data
                .lines()
                .find(|l| l.starts_with("Message-ID:"))
                .map(str::to_string)
        };
        assert!(!mails.is_empty(), "{label}");
        assert!(
            mails
                .iter()
                .all(|m| id(m).is_some() && id(m) == id(&mails[0])),
            "{label}: {} mails, not one message",
            mails.len()
        );

        server.refuse_next(&["550 5.1.1 no such mailbox"]);
        let n = r.create(passed(vec![email_recipient()]), "mail-2").await;
        let n = r.settle(&n.name, time::Duration::seconds(5), dead).await;
        assert_eq!(
            n.deliveries[0].attempts, 1,
            "{label}: a permanent refusal is not retried"
        );
        assert!(
            n.deliveries[0].last_error.contains("550"),
            "{}",
            n.deliveries[0].last_error
        );
    }
}

#[tokio::test]
async fn webhook_posts_are_signed_and_carry_the_idempotency_key() {
    for db in testing::backends("notifications", &qaward_notifications::MIGRATIONS).await {
        let label = db.label;
        let sink = HttpSink::start().await;
        let mut s = settings();
        s.webhook = SignedHttp {
            url: sink.url.clone(),
            secret: Secret::new(SECRET.into()),
            timeout_ms: 5_000,
        };
        let mut r = start(db, s).await;
        let mut to = inbox_recipient(&enterprise());
        to.channels = vec![pb::Channel::Webhook as i32, pb::Channel::Inbox as i32];
        let n = r.create(passed(vec![to]), "hook-1").await;
        assert_eq!(n.deliveries.len(), 2);
        let n = r.settle(&n.name, time::Duration::ZERO, delivered).await;
        let got = sink.received();
        assert_eq!(got.len(), 1, "{label}");
        let post = &got[0];
        let ts: i64 = post.header(signature::TIMESTAMP_HEADER).parse().unwrap();
        assert_eq!(ts, r.now().unix_timestamp());
        assert!(signature::verify(
            SECRET.as_bytes(),
            ts,
            &post.body,
            post.header(signature::SIGNATURE_HEADER),
            ts
        ));
        assert!(!signature::verify(
            b"someone-elses-secret",
            ts,
            &post.body,
            post.header(signature::SIGNATURE_HEADER),
            ts
        ));
        let hook = n
            .deliveries
            .iter()
            .find(|d| d.channel == pb::Channel::Webhook as i32)
            .unwrap();
        let key = hook.name.trim_start_matches("deliveries/");
        assert_eq!(post.header(signature::IDEMPOTENCY_HEADER), key, "{label}");
        let json = post.json();
        assert_eq!(json["idempotency_key"], key);
        assert_eq!(json["event_type"], "materials_review.passed");
        assert_eq!(json["notification"], n.name.as_str());
        assert_eq!(json["recipient_id"], enterprise().as_str());
        assert!(json["body"].as_str().unwrap().contains("得分512.50分"));
    }
}

#[tokio::test]
async fn sms_goes_to_the_gateway_with_the_mobile_number_and_the_short_text() {
    for db in testing::backends("notifications", &qaward_notifications::MIGRATIONS).await {
        let label = db.label;
        let sink = HttpSink::start().await;
        let mut s = settings();
        s.sms = SignedHttp {
            url: sink.url.clone(),
            secret: Secret::new(SECRET.into()),
            timeout_ms: 5_000,
        };
        let mut r = start(db, s).await;
        let mut to = inbox_recipient("CQ-0001");
        to.display_name = "张三".into();
        to.mobile = "+86 138-1234-5678".into();
        to.channels = vec![pb::Channel::Sms as i32];
        let mut n = passed(vec![to]);
        n.event_type = "reviewer.drawn".into();
        n.variables = vars(&[
            ("reviewer_name", "张三"),
            ("purpose", "资料评审组"),
            ("window_start", "2026年5月10日"),
            ("window_end", "2026年5月20日"),
            ("respond_by", "2026年5月4日"),
        ]);
        let n = r.create(n, "sms-1").await;
        r.settle(&n.name, time::Duration::ZERO, delivered).await;
        let got = sink.received();
        assert_eq!(got.len(), 1, "{label}");
        let json = got[0].json();
        assert_eq!(json["mobile"], "13812345678", "{label}: normalised");
        assert_eq!(
            json["text"],
            "【县长质量奖】您已被抽取参加资料评审组（2026年5月10日至2026年5月20日），请于2026年5月4日前登录平台确认。"
        );
        let ts: i64 = got[0].header(signature::TIMESTAMP_HEADER).parse().unwrap();
        assert!(signature::verify(
            SECRET.as_bytes(),
            ts,
            &got[0].body,
            got[0].header(signature::SIGNATURE_HEADER),
            ts
        ));
    }
}

#[tokio::test]
async fn a_channel_this_deployment_has_not_configured_is_a_dead_letter_saying_so() {
    for db in testing::backends("notifications", &qaward_notifications::MIGRATIONS).await {
        let label = db.label;
        let mut r = start(db, settings()).await;
        let n = r.create(passed(vec![email_recipient()]), "mail-1").await;
        let n = r.settle(&n.name, time::Duration::ZERO, dead).await;
        assert!(
            n.deliveries[0].last_error.contains("notifications.smtp"),
            "{label}: {}",
            n.deliveries[0].last_error
        );
    }
}
