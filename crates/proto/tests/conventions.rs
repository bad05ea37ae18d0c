//! The contracts follow the conventions the project chose (AIP, buf-style lint); this test
//! compiles the descriptor set and fails on the first contract that breaks one, so a later
//! change cannot quietly drift.

use prost_reflect::{DescriptorPool, EnumDescriptor, Kind, MessageDescriptor, MethodDescriptor};

fn pool() -> DescriptorPool {
    DescriptorPool::decode(qaward_proto::FILE_DESCRIPTOR_SET).expect("descriptor set decodes")
}

fn ours(full_name: &str) -> bool {
    full_name.starts_with("qaward.")
}

fn upper_snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

fn all_enums(pool: &DescriptorPool) -> Vec<EnumDescriptor> {
    pool.all_enums().filter(|e| ours(e.full_name())).collect()
}

fn field_kind(m: &MessageDescriptor, name: &str) -> Option<Kind> {
    m.get_field_by_name(name).map(|f| f.kind())
}

// "Prove": an audit log proof reads the log (and at most signs a checkpoint of what is there).
const READ_VERBS: &[&str] = &[
    "Get", "List", "Check", "Verify", "Compute", "Export", "Prove",
];

fn is_read(method: &MethodDescriptor) -> bool {
    READ_VERBS.iter().any(|v| method.name().starts_with(v))
}

#[test]
fn the_four_services_and_the_gateway_have_their_fixed_names() {
    let pool = pool();
    let mut names: Vec<String> = pool
        .services()
        .filter(|s| ours(s.full_name()))
        .map(|s| s.full_name().to_string())
        .collect();
    names.sort();
    let mut expected: Vec<String> = qaward_proto::SERVICE_NAMES
        .iter()
        .chain(&[qaward_proto::GATEWAY_SERVICE_NAME])
        .map(|s| s.to_string())
        .collect();
    expected.sort();
    assert_eq!(names, expected);
}

#[test]
fn packages_are_versioned_and_match_their_folders() {
    for file in pool().files().filter(|f| ours(f.package_name())) {
        let dir = file.name().rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        assert_eq!(
            dir.replace('/', "."),
            file.package_name(),
            "{}",
            file.name()
        );
        assert!(file.package_name().ends_with(".v1"), "{}", file.name());
    }
}

#[test]
fn enum_zero_values_are_unspecified_and_values_carry_the_enum_prefix() {
    let mut problems = Vec::new();
    for e in all_enums(&pool()) {
        let prefix = upper_snake(e.name());
        let zero = e.get_value(0).map(|v| v.name().to_string());
        if zero.as_deref() != Some(&format!("{prefix}_UNSPECIFIED")) {
            problems.push(format!(
                "{}: zero value is {zero:?}, want {prefix}_UNSPECIFIED",
                e.full_name()
            ));
        }
        for v in e.values() {
            if !v.name().starts_with(&format!("{prefix}_")) {
                problems.push(format!(
                    "{}: value {} lacks prefix {prefix}_",
                    e.full_name(),
                    v.name()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_method_has_an_http_binding() {
    let pool = pool();
    let http = pool
        .get_extension_by_name("google.api.http")
        .expect("google.api.http is in the descriptor set");
    let mut missing = Vec::new();
    for s in pool.services().filter(|s| ours(s.full_name())) {
        for m in s.methods() {
            if !m.options().has_extension(&http) {
                missing.push(m.full_name().to_string());
            }
        }
    }
    assert!(missing.is_empty(), "no google.api.http on: {missing:?}");
}

#[test]
fn no_two_methods_share_an_http_binding() {
    // The gateway serves every service on one HTTP port: a binding names one method.
    let pool = pool();
    let http = pool
        .get_extension_by_name("google.api.http")
        .expect("google.api.http is in the descriptor set");
    let mut seen: std::collections::HashMap<String, String> = Default::default();
    let mut clashes = Vec::new();
    for s in pool.services().filter(|s| ours(s.full_name())) {
        for m in s.methods() {
            let options = m.options();
            let rule = options.get_extension(&http);
            let Some(rule) = rule.as_message() else {
                continue;
            };
            for verb in ["get", "post", "patch", "put", "delete"] {
                let Some(t) = rule.get_field_by_name(verb) else {
                    continue;
                };
                let Some(t) = t.as_str().filter(|t| !t.is_empty()) else {
                    continue;
                };
                if let Some(other) = seen.insert(format!("{verb} {t}"), m.full_name().to_string()) {
                    clashes.push(format!("{verb} {t}: {other} and {}", m.full_name()));
                }
            }
        }
    }
    assert!(clashes.is_empty(), "{}", clashes.join("\n"));
}

#[test]
fn every_list_is_paged_from_day_one() {
    let mut problems = Vec::new();
    for s in pool().services().filter(|s| ours(s.full_name())) {
        for m in s.methods().filter(|m| m.name().starts_with("List")) {
            let (req, res) = (m.input(), m.output());
            if field_kind(&req, "page_size") != Some(Kind::Int32) {
                problems.push(format!("{}: request lacks int32 page_size", m.full_name()));
            }
            if field_kind(&req, "page_token") != Some(Kind::String) {
                problems.push(format!(
                    "{}: request lacks string page_token",
                    m.full_name()
                ));
            }
            if field_kind(&res, "next_page_token") != Some(Kind::String) {
                problems.push(format!(
                    "{}: response lacks string next_page_token",
                    m.full_name()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_create_and_mutating_call_takes_a_request_id() {
    let mut missing = Vec::new();
    for s in pool().services().filter(|s| ours(s.full_name())) {
        for m in s.methods().filter(|m| !is_read(m)) {
            if field_kind(&m.input(), "request_id") != Some(Kind::String) {
                missing.push(m.full_name().to_string());
            }
        }
    }
    assert!(missing.is_empty(), "no string request_id on: {missing:?}");
}

#[test]
fn names_follow_protobuf_style() {
    let mut problems = Vec::new();
    for m in pool().all_messages().filter(|m| ours(m.full_name())) {
        if !m
            .name()
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_uppercase())
            || m.name().contains('_')
        {
            problems.push(format!("message {} is not UpperCamelCase", m.full_name()));
        }
        for f in m.fields() {
            if f.name() != f.name().to_ascii_lowercase() {
                problems.push(format!("field {} is not lower_snake_case", f.full_name()));
            }
        }
    }
    for s in pool().services().filter(|s| ours(s.full_name())) {
        for m in s.methods() {
            let req = format!("{}Request", m.name());
            // Requests are named after their method (AIP-131..136).
            if m.input().name() != req {
                problems.push(format!(
                    "{}: request is {}, want {req}",
                    m.full_name(),
                    m.input().name()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_method_says_who_may_call_it() {
    // The policy table is the contracts' `qaward.common.v1.access` options (docs/policy.md):
    // a method without one, or admitting nobody, would be a door nobody decided about.
    let pool = pool();
    let access = pool
        .get_extension_by_name("qaward.common.v1.access")
        .expect("qaward.common.v1.access is in the descriptor set");
    let mut problems = Vec::new();
    for s in pool.services().filter(|s| ours(s.full_name())) {
        for m in s.methods() {
            let options = m.options();
            if !options.has_extension(&access) {
                problems.push(format!("{}: no access option", m.full_name()));
                continue;
            }
            let value = options.get_extension(&access);
            let roles = value
                .as_message()
                .and_then(|row| row.get_field_by_name("roles"))
                .and_then(|v| v.as_list().map(|l| l.len()))
                .unwrap_or(0);
            if roles == 0 {
                problems.push(format!("{}: admits no role", m.full_name()));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
