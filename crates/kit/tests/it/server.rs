//! The server bootstrap: authentication on every service call, load shedding with
//! RESOURCE_EXHAUSTED, health that goes NOT_SERVING on shutdown, and in-flight calls that
//! finish before the server exits.

use std::time::Duration;

use qaward_kit::{auth::Role, config::ServerLimits, testing::TestKeys};
use tonic::Code;
use tonic_health::ServingStatus;

use crate::probe;

#[tokio::test]
async fn a_call_without_a_token_is_unauthenticated_and_with_one_succeeds() {
    let keys = TestKeys::new();
    let running = probe::start(
        ServerLimits::default(),
        keys.verifier.clone(),
        Duration::ZERO,
    )
    .await;
    let channel = probe::channel(running.addr).await;

    let logged = qaward_kit::security::refusals(qaward_kit::security::Kind::Authentication);
    let refused = probe::call(channel.clone(), None).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);

    let garbage = probe::call(channel.clone(), Some("not.a.jwt"))
        .await
        .unwrap_err();
    assert_eq!(garbage.code(), Code::Unauthenticated);
    // Each refusal is a security event (one log line on the `security` target, one count).
    assert!(
        qaward_kit::security::refusals(qaward_kit::security::Kind::Authentication) >= logged + 2
    );

    let token = keys.token("office-1", Role::Office);
    let ok = probe::call(channel.clone(), Some(&token)).await.unwrap();
    assert_eq!(ok.status, 1);

    // Health needs no token.
    assert_eq!(
        probe::health(channel, "qaward.test.Probe").await.unwrap(),
        ServingStatus::Serving
    );
}

#[tokio::test]
async fn beyond_the_concurrency_limit_calls_are_shed_with_resource_exhausted() {
    let keys = TestKeys::new();
    let limits = ServerLimits {
        max_concurrent_requests: 2,
        ..ServerLimits::default()
    };
    // Long enough that all six calls overlap even on a loaded 2-core CI machine.
    let running = probe::start(limits, keys.verifier.clone(), Duration::from_secs(2)).await;
    let channel = probe::channel(running.addr).await;
    let token = keys.token("office-1", Role::Office);
    let spawn = |n: usize| -> Vec<_> {
        (0..n)
            .map(|_| {
                let (c, t) = (channel.clone(), token.clone());
                tokio::spawn(async move { probe::call(c, Some(&t)).await })
            })
            .collect()
    };
    // Fill the two places, wait until both calls are inside, then four more arrive.
    let mut calls = spawn(2);
    while running.arrived.load(std::sync::atomic::Ordering::SeqCst) < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    calls.extend(spawn(4));
    let mut ok = 0;
    let mut shed = 0;
    for c in calls {
        match c.await.unwrap() {
            Ok(_) => ok += 1,
            Err(s) if s.code() == Code::ResourceExhausted => {
                // Said as such, with when to come back (the gateway's HTTP door turns the
                // RetryInfo into Retry-After).
                let details = tonic_types::StatusExt::get_error_details(&s);
                assert_eq!(
                    details.error_info().map(|i| i.reason.as_str()),
                    Some("OVERLOADED")
                );
                assert!(
                    details
                        .retry_info()
                        .is_some_and(|r| r.retry_delay.is_some())
                );
                shed += 1
            }
            Err(s) => panic!("unexpected {s:?}"),
        }
    }
    assert_eq!(ok, 2, "exactly the limit is served");
    assert_eq!(shed, 4, "the rest are refused, not queued");
    // Health is never shed.
    assert_eq!(
        probe::health(channel, "").await.unwrap(),
        ServingStatus::Serving
    );
}

#[tokio::test]
async fn shutdown_reports_not_serving_and_lets_an_in_flight_call_finish() {
    let keys = TestKeys::new();
    let mut running = probe::start(
        ServerLimits::default(),
        keys.verifier.clone(),
        Duration::from_millis(1500),
    )
    .await;
    let channel = probe::channel(running.addr).await;
    let token = keys.token("office-1", Role::Office);

    let in_flight = {
        let (c, t) = (channel.clone(), token.clone());
        tokio::spawn(async move { probe::call(c, Some(&t)).await })
    };
    // Wait until the call is really in flight inside the server.
    while running.arrived.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A health watcher on the same connection sees the switch before the server is gone.
    let mut watcher = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let mut stream = watcher
        .watch(tonic_health::pb::HealthCheckRequest {
            service: "qaward.test.Probe".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().status, 1);

    running.stop.take().unwrap().send(()).unwrap();
    assert_eq!(
        stream.message().await.unwrap().unwrap().status,
        2,
        "NOT_SERVING first"
    );

    let answer = in_flight
        .await
        .unwrap()
        .expect("the in-flight call finishes");
    assert_eq!(answer.status, 1);
    drop(stream);
    drop(watcher);
    drop(channel);
    let exit = tokio::time::timeout(Duration::from_secs(15), running.task)
        .await
        .expect("server exits")
        .unwrap();
    assert_eq!(exit, Ok(()));
}
