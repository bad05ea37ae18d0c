//! Who may call which method of `qaward.gateway.v1.GatewayService`: the roles the gateway and this
//! service's host admit, and which records the handler then lets each reach. `docs/policy.md`
//! prints every service's table.

use qaward_kit::{
    auth::Role::{Enterprise, Office, RecommendingUnit, Supervisor},
    policy::{OWN_PROGRAMME, STAFF, ServicePolicy, rule},
};

/// This service's rows of the policy table.
pub const POLICY: ServicePolicy = ServicePolicy {
    service: "qaward.gateway.v1.GatewayService",
    rules: &[
        rule(
            "GetDossier",
            &[Office, Supervisor, Enterprise, RecommendingUnit],
            "as GetApplication; each part as the service that owns it decides",
        ),
        rule("GetCycleOverview", STAFF, OWN_PROGRAMME),
    ],
};
