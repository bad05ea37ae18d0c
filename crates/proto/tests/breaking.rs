//! A guard on every change of the contracts: what a client can see of them (services, methods,
//! HTTP bindings, who may call, messages, fields, enums) is written, one line a thing, in the
//! committed snapshot `proto/snapshot.txt`. This test fails when the contracts differ from it,
//! naming each breaking change (something removed, renumbered, retyped, renamed, or a role no
//! longer admitted) and each addition. A change lands by updating the snapshot
//! (`QAWARD_UPDATE_SNAPSHOT=1 cargo test -p qaward-proto --test breaking`) in the same commit as
//! a `CHANGELOG.md` entry that names the snapshot's new fingerprint and says what changed and how
//! a client migrates: the test also fails while the fingerprint has no entry. Before 1.0
//! breaking changes are allowed, but never silent.

use std::collections::BTreeMap;

use prost_reflect::{Cardinality, DescriptorPool, FieldDescriptor, Kind, Value};
use sha2::{Digest, Sha256};

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto/snapshot.txt");
const CHANGELOG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../CHANGELOG.md");

/// What a client sees of the contracts: `kind name` → what it is. Sorted, so the text is
/// stable and its diff reads as the change.
fn surface(pool: &DescriptorPool) -> BTreeMap<String, String> {
    let ours = |name: &str| name.starts_with("qaward.");
    let mut out = BTreeMap::new();
    let http = pool.get_extension_by_name("google.api.http");
    let access = pool.get_extension_by_name("qaward.common.v1.access");
    for s in pool.services().filter(|s| ours(s.full_name())) {
        out.insert(format!("service {}", s.full_name()), String::new());
        for m in s.methods() {
            let name = m.full_name();
            let stream = |yes: bool| if yes { "stream " } else { "" };
            out.insert(
                format!("rpc {name}"),
                format!(
                    "({}{}) returns ({}{})",
                    stream(m.is_client_streaming()),
                    m.input().full_name(),
                    stream(m.is_server_streaming()),
                    m.output().full_name()
                ),
            );
            let options = m.options();
            if let Some(http) = &http
                && options.has_extension(http)
                && let Value::Message(rule) = options.get_extension(http).as_ref()
            {
                let mut binding = Vec::new();
                for verb in ["get", "post", "patch", "put", "delete"] {
                    if let Some(Value::String(t)) = rule.get_field_by_name(verb).as_deref()
                        && !t.is_empty()
                    {
                        binding.push(format!("{verb} {t}"));
                    }
                }
                if let Some(Value::String(b)) = rule.get_field_by_name("body").as_deref()
                    && !b.is_empty()
                {
                    binding.push(format!("body {b}"));
                }
                out.insert(format!("http {name}"), binding.join(" "));
            }
            if let Some(access) = &access
                && options.has_extension(access)
                && let Value::Message(row) = options.get_extension(access).as_ref()
            {
                let mut roles: Vec<String> = match row.get_field_by_name("roles").as_deref() {
                    Some(Value::List(values)) => values
                        .iter()
                        .filter_map(|v| v.as_enum_number())
                        .map(|n| role_name(pool, n))
                        .collect(),
                    _ => Vec::new(),
                };
                roles.sort();
                out.insert(format!("access {name}"), roles.join(" "));
            }
        }
    }
    for m in pool.all_messages().filter(|m| ours(m.full_name())) {
        if m.is_map_entry() {
            continue;
        }
        out.insert(format!("message {}", m.full_name()), String::new());
        for f in m.fields() {
            out.insert(format!("field {}", f.full_name()), field_text(&f));
        }
    }
    for e in pool.all_enums().filter(|e| ours(e.full_name())) {
        out.insert(format!("enum {}", e.full_name()), String::new());
        for v in e.values() {
            out.insert(
                format!("value {}.{}", e.full_name(), v.name()),
                v.number().to_string(),
            );
        }
    }
    out
}

fn role_name(pool: &DescriptorPool, number: i32) -> String {
    pool.get_enum_by_name("qaward.common.v1.Role")
        .and_then(|e| e.get_value(number))
        .map(|v| v.name().to_string())
        .unwrap_or_else(|| number.to_string())
}

/// A field as the wire and JSON see it: number, cardinality, type, JSON name, and its oneof
/// or explicit presence.
fn field_text(f: &FieldDescriptor) -> String {
    let kind = match f.kind() {
        Kind::Message(m) if f.is_map() => {
            let key = m.map_entry_key_field().kind();
            let value = m.map_entry_value_field().kind();
            format!("map<{}, {}>", kind_name(&key), kind_name(&value))
        }
        k => kind_name(&k),
    };
    let cardinality = match f.cardinality() {
        Cardinality::Repeated if !f.is_map() => "repeated ",
        _ => "",
    };
    let mut text = format!("{} {cardinality}{kind} json={}", f.number(), f.json_name());
    if let Some(oneof) = f.containing_oneof() {
        if oneof.is_synthetic() {
            text.push_str(" optional");
        } else {
            text.push_str(&format!(" oneof={}", oneof.name()));
        }
    }
    text
}

fn kind_name(k: &Kind) -> String {
    match k {
        Kind::Message(m) => m.full_name().to_string(),
        Kind::Enum(e) => e.full_name().to_string(),
        other => format!("{other:?}").to_lowercase(),
    }
}

fn render(surface: &BTreeMap<String, String>) -> String {
    let mut body = String::new();
    for (k, v) in surface {
        if v.is_empty() {
            body.push_str(&format!("{k}\n"));
        } else {
            body.push_str(&format!("{k}: {v}\n"));
        }
    }
    body
}

fn parse(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| match l.split_once(": ") {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

/// The first 16 hex digits of the SHA-256 of the rendered surface.
fn fingerprint(body: &str) -> String {
    hex::encode(Sha256::digest(body.as_bytes()))[..16].to_string()
}

/// What changed from `old` to `new`, breaking changes first.
fn changes(
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> (Vec<String>, Vec<String>) {
    let mut breaking = Vec::new();
    let mut additive = Vec::new();
    for (k, v) in old {
        match new.get(k) {
            None => breaking.push(format!("removed  {k}")),
            Some(w) if w == v => {}
            Some(w) if k.starts_with("access ") => {
                let kept: Vec<&str> = w.split(' ').collect();
                let lost: Vec<&str> = v.split(' ').filter(|r| !kept.contains(r)).collect();
                if lost.is_empty() {
                    additive.push(format!("admits  {k}: {v} -> {w}"));
                } else {
                    breaking.push(format!(
                        "refuses {k}: {} no longer admitted",
                        lost.join(" ")
                    ));
                }
            }
            Some(w) => breaking.push(format!("changed  {k}: {v} -> {w}")),
        }
    }
    for (k, v) in new {
        if !old.contains_key(k) {
            additive.push(format!("added    {k}: {v}"));
        }
    }
    (breaking, additive)
}

#[test]
fn the_contracts_match_their_snapshot_and_every_change_has_a_changelog_entry() {
    let pool = DescriptorPool::decode(qaward_proto::FILE_DESCRIPTOR_SET).unwrap();
    let current = surface(&pool);
    let body = render(&current);
    let print = fingerprint(&body);
    if std::env::var_os("QAWARD_UPDATE_SNAPSHOT").is_some() {
        let text = format!(
            "# What clients see of the qaward contracts; generated by crates/proto/tests/breaking.rs.\n\
             # Do not edit: change proto/, then regenerate, and add a CHANGELOG.md entry naming\n\
             # this fingerprint.\n\
             # fingerprint: {print}\n{body}"
        );
        std::fs::write(SNAPSHOT, text).unwrap();
    }
    let committed = std::fs::read_to_string(SNAPSHOT).unwrap_or_default();
    let snapshot = parse(&committed);
    if snapshot != current {
        let (breaking, additive) = changes(&snapshot, &current);
        panic!(
            "the contracts differ from proto/snapshot.txt.\n\
             breaking ({}):\n  {}\n\
             additive ({}):\n  {}\n\
             Update the snapshot (QAWARD_UPDATE_SNAPSHOT=1 cargo test -p qaward-proto --test \
             breaking) and, in the same commit, add to CHANGELOG.md an entry naming \
             `contracts {print}` that says what changed and how a client migrates.",
            breaking.len(),
            breaking.join("\n  "),
            additive.len(),
            additive.join("\n  "),
        );
    }
    let changelog = std::fs::read_to_string(CHANGELOG).unwrap_or_default();
    assert!(
        changelog.contains(&format!("contracts {print}")),
        "proto/snapshot.txt is fingerprint {print}, and CHANGELOG.md has no entry naming \
         `contracts {print}`: say what changed and how a client migrates"
    );
}

#[test]
fn the_guard_tells_breaking_changes_from_additions() {
    let old = parse(
        "field a.M.x: 1 string json=x\nfield a.M.y: 2 int32 json=y\naccess a.S.Get: ROLE_OFFICE ROLE_SUPERVISOR\naccess a.S.Put: ROLE_OFFICE\n",
    );
    let new = parse(
        "field a.M.x: 1 string json=x\nfield a.M.y: 3 int32 json=y\nfield a.M.z: 4 bool json=z\naccess a.S.Get: ROLE_OFFICE\naccess a.S.Put: ROLE_OFFICE ROLE_SERVICE\n",
    );
    let (breaking, additive) = changes(&old, &new);
    assert_eq!(
        breaking,
        [
            "refuses access a.S.Get: ROLE_SUPERVISOR no longer admitted",
            "changed  field a.M.y: 2 int32 json=y -> 3 int32 json=y",
        ]
    );
    assert_eq!(
        additive,
        [
            "admits  access a.S.Put: ROLE_OFFICE -> ROLE_OFFICE ROLE_SERVICE",
            "added    field a.M.z: 4 bool json=z",
        ]
    );
    let (breaking, _) = changes(&new, &old);
    assert!(breaking.contains(&"removed  field a.M.z".to_string()));
}
