//! `qaward serve` brings up every service, each SERVING and listed by reflection, on one
//! machine with nothing else installed.

use crate::support::{Qaward, health, reflected_services};

const SERVICES: [(&str, &str); 4] = [
    ("applications", "qaward.applications.v1.ApplicationService"),
    ("reviewers", "qaward.reviewers.v1.ReviewerService"),
    ("scoring", "qaward.scoring.v1.ScoringService"),
    (
        "notifications",
        "qaward.notifications.v1.NotificationService",
    ),
];

#[tokio::test]
async fn every_service_is_serving_and_listed_by_reflection() {
    let q = Qaward::start(&[], &[]).await;
    for (name, service) in SERVICES {
        let channel = q.channel(name).await;
        assert_eq!(
            health(channel.clone(), service).await,
            1,
            "{name} not SERVING"
        );
        assert_eq!(
            health(channel.clone(), "").await,
            1,
            "{name} overall not SERVING"
        );
        assert_eq!(
            reflected_services(channel).await,
            vec![
                "grpc.health.v1.Health".to_string(),
                "grpc.reflection.v1.ServerReflection".to_string(),
                "grpc.reflection.v1alpha.ServerReflection".to_string(),
                service.to_string(),
            ],
            "{name} advertises exactly what it serves"
        );
    }
    // The gateway advertises the whole API.
    let gateway = q.channel("gateway").await;
    assert_eq!(health(gateway.clone(), "").await, 1);
    let listed = reflected_services(gateway).await;
    for (_, service) in SERVICES {
        assert!(listed.contains(&service.to_string()), "{listed:?}");
    }
    // Each service keeps its own SQLite file in the data directory.
    for (name, _) in SERVICES {
        assert!(
            q.data_dir.path().join(format!("{name}.db")).exists(),
            "{name}.db"
        );
    }
}

#[tokio::test]
async fn a_target_runs_only_that_service() {
    let q = Qaward::start(&["--target", "reviewers"], &[]).await;
    assert_eq!(q.addrs.keys().collect::<Vec<_>>(), vec!["reviewers"]);
    let channel = q.channel("reviewers").await;
    assert_eq!(
        health(channel, "qaward.reviewers.v1.ReviewerService").await,
        1
    );
    assert!(!q.data_dir.path().join("scoring.db").exists());
}

#[tokio::test]
async fn the_gateway_http_port_reports_every_service() {
    let q = Qaward::start(&[], &[]).await;
    let addr = q.addr("gateway-http");
    // A plain HTTP/1.1 request over a TCP socket, as curl would send it.
    let body = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    })
    .await
    .unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    let json: serde_json::Value =
        serde_json::from_str(body.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(json["status"], "SERVING");
    for (_, service) in SERVICES {
        assert_eq!(json["services"][service], "SERVING", "{json}");
    }
}

#[tokio::test]
async fn a_simulated_clock_starts_where_configured_and_runs_faster() {
    // For training and demonstrations: the services' time starts at clock.start and runs
    // clock.speed times faster (here an hour per second); resources carry that time.
    use qaward_proto::qaward::reviewers::v1::{
        CreateProgrammeRequest, DrawTenant, reviewer_service_client::ReviewerServiceClient,
    };
    let q = crate::support::Qaward::start(
        &[],
        &[
            ("QAWARD_CLOCK__START", "2027-07-01T09:00:00+08:00"),
            ("QAWARD_CLOCK__SPEED", "3600"),
        ],
    )
    .await;
    let mut client = ReviewerServiceClient::new(q.channel("gateway").await);
    let mut times = Vec::new();
    for id in ["p1", "p2"] {
        let token = q.token_for("office", "office-1", &["--programme", id]);
        let p = client
            .create_programme(crate::support::with_token(
                CreateProgrammeRequest {
                    programme_id: id.into(),
                    programme: Some(DrawTenant {
                        display_name: "演示".into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
                &token,
            ))
            .await
            .unwrap()
            .into_inner();
        times.push(p.create_time.unwrap().seconds);
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    let start = 1_814_403_600; // 2027-07-01T01:00:00Z
    assert!(times[0] >= start && times[0] < start + 86_400, "{times:?}");
    // 1.1 s of real time apart: over an hour of simulated time.
    assert!(times[1] - times[0] >= 3600, "{times:?}");
}

/// The image sets `QAWARD_TARGETS` to its build argument, empty by default: an empty list of
/// targets is every service, for `serve` and `health` alike (the image once failed to start:
/// "invalid value '' for '--target'").
#[tokio::test]
async fn an_empty_targets_variable_serves_every_service() {
    let q = Qaward::start(&[], &[("QAWARD_TARGETS", "")]).await;
    for name in [
        "gateway",
        "gateway-http",
        "applications",
        "reviewers",
        "scoring",
        "notifications",
    ] {
        assert!(
            q.addrs.contains_key(name),
            "{name} is not served: {:?}",
            q.addrs
        );
    }
    assert_eq!(q.terminate().await, Some(0));
}
