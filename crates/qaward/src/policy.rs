//! The whole policy table of this binary, as the gateway admits calls with it: the access
//! options of every contract it serves (`proto/qaward/<service>/v1/*.proto`, read by
//! [`Policy::contracts`]). Here are the tests that hold the table to the award's rules.

pub use qaward_kit::policy::Policy;

/// Every service's rows, the gateway's own included.
pub fn policy() -> &'static Policy {
    Policy::contracts()
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use qaward_kit::auth::Role::*;

    /// Every method of the contracts, as `/package.Service/Method`.
    fn contract_methods() -> Vec<String> {
        let set = prost_types::FileDescriptorSet::decode(qaward_proto::FILE_DESCRIPTOR_SET)
            .expect("descriptor set");
        let mut out = Vec::new();
        for file in set.file {
            let package = file.package().to_string();
            if !package.starts_with("qaward.") {
                continue;
            }
            for service in &file.service {
                for method in &service.method {
                    out.push(format!("/{package}.{}/{}", service.name(), method.name()));
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn every_method_of_the_contracts_has_exactly_one_row() {
        let methods = contract_methods();
        assert_eq!(
            methods.len(),
            133,
            "the contracts changed: update the table"
        );
        let mut rows: Vec<String> = policy()
            .services()
            .flat_map(|s| {
                s.rules
                    .iter()
                    .map(move |r| format!("/{}/{}", s.service, r.method))
            })
            .collect();
        rows.sort();
        assert_eq!(rows, methods);
    }

    #[test]
    fn the_supervisor_reads_everything_and_changes_nothing_but_its_part_of_a_draw() {
        // A proof of the audit log reads it (and at most signs a checkpoint of what is there).
        const READS: &[&str] = &[
            "Get", "List", "Check", "Verify", "Compute", "Export", "Prove",
        ];
        // the supervisor commits to a secret and reveals it — nothing else.
        const ITS_PART: &[&str] = &["CommitDrawEntropy", "RevealDrawEntropy"];
        for s in policy().services() {
            for r in &s.rules {
                // Opening a consensus sheet only shows it to staff: nothing is written for them.
                let read =
                    READS.iter().any(|v| r.method.starts_with(v)) || r.method == "OpenConsensus";
                let name = format!("{}/{}", s.service, r.method);
                if r.roles.contains(&Supervisor) {
                    assert!(
                        read || ITS_PART.contains(&r.method.as_ref()),
                        "the supervisor may change something: {name}"
                    );
                }
                if read && r.roles.contains(&Office) {
                    assert!(
                        r.roles.contains(&Supervisor),
                        "hidden from the supervisor: {name}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_public_sees_published_notices_and_may_complain_and_follow_its_complaint_only() {
        let mut public: Vec<String> = policy()
            .services()
            .flat_map(|s| s.rules.iter())
            .filter(|r| r.roles.contains(&Public))
            .map(|r| r.method.to_string())
            .collect();
        public.sort();
        assert_eq!(
            public,
            [
                "CreateComplaint",
                // The audit logs' signed checkpoints and their consistency: anyone may keep and
                // check them (issue 22, item 3), four services each.
                "GetAuditCheckpoint",
                "GetAuditCheckpoint",
                "GetAuditCheckpoint",
                "GetAuditCheckpoint",
                // Its own complaint only: the handler answers its filer.
                "GetComplaint",
                "GetCycle",
                "GetPublicNotice",
                "GetRubric",
                "ListCycles",
                "ListRubrics",
                "ProveAuditConsistency",
                "ProveAuditConsistency",
                "ProveAuditConsistency",
                "ProveAuditConsistency",
            ]
        );
    }

    #[test]
    fn docs_print_the_table_as_it_is() {
        qaward_kit::testing::check_generated(
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/policy.md"),
            "<!-- generated from the contracts' access options",
            &policy().markdown(),
        );
    }
}
