//! `qaward check consistency`: asks the applications service, through the gateway, whether the
//! services agree about a cycle (issue 24), prints every disagreement, and fails when there is
//! one or when its follower of the reviewers' events is behind or stuck.

use qaward_kit::{auth::Role, config::Config};
use qaward_proto::qaward::applications::v1 as pb;

pub async fn consistency(
    config: Config,
    cycle: String,
    gateway: Option<String>,
    token: Option<String>,
) -> Result<(), String> {
    let programme = cycle
        .strip_prefix("programmes/")
        .and_then(|r| r.split('/').next())
        .filter(|p| !p.is_empty() && cycle.contains("/cycles/"))
        .ok_or_else(|| {
            format!("--cycle {cycle:?}: must be programmes/{{programme}}/cycles/{{year}}")
        })?;
    // The office's token: given, or signed with the local key as `qaward token` would.
    let token = match token {
        Some(t) => t,
        None => qaward_kit::auth::LocalKey::load_or_create(&config.data_dir)
            .and_then(|key| {
                key.issue(
                    &config.auth,
                    time::OffsetDateTime::now_utc(),
                    "qaward-check",
                    Role::Office,
                    None,
                    Some(programme.to_string()),
                )
            })
            .map_err(|e| format!("no --token, and the local key does not sign one: {e}"))?,
    };
    let url = gateway.unwrap_or_else(|| qaward_kit::config::local_url(config.listen.gateway_grpc));
    let door = qaward_demo::Door::grpc(&url).await?;
    let report = qaward_demo::call!(
        door.apps,
        check_consistency,
        &token,
        pb::CheckConsistencyRequest {
            cycle: cycle.clone()
        }
    )
    .map_err(|s| format!("{url}: {:?}: {}", s.code(), s.message()))?;
    println!(
        "{cycle}: {} groups, {} assignments, {} applications compared",
        report.groups_checked, report.assignments_checked, report.applications_checked
    );
    for d in &report.disagreements {
        println!(
            "DISAGREE {} {}\n  here:  {}\n  there: {}",
            d.kind, d.subject, d.here, d.there
        );
    }
    if report.events_behind > 0 {
        println!("{} reviewers events not yet applied", report.events_behind);
    }
    if !report.follower_error.is_empty() {
        println!("the follower is stuck: {}", report.follower_error);
    }
    if report.disagreements.is_empty()
        && report.events_behind == 0
        && report.follower_error.is_empty()
    {
        println!("consistent");
        Ok(())
    } else {
        Err("the services disagree".to_string())
    }
}
