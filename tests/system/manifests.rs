//! The deployment files agree with the binary: every port and probe in the Kubernetes
//! manifests is the port the configuration makes the service listen on, the drain fits in the
//! termination grace period, and every `QAWARD_*` setting named in deploy/ (manifests, compose
//! file, Dockerfile) is one the binary has. (CI also renders every overlay with kustomize and
//! validates it against the Kubernetes schemas: `.ci/run`.)

use std::{collections::BTreeMap, path::PathBuf};

use qaward_kit::config::{Config, ServiceKind};
use serde_json::Value;

fn deploy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn documents(path: &PathBuf) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| {
            let v: serde_yaml::Value = serde::Deserialize::deserialize(d).unwrap();
            serde_json::to_value(v).unwrap()
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// The settings the configuration is given by the environment lines of deploy/, as
/// `(file, name, value)`.
fn settings() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let k8s = deploy().join("k8s");
    for kustomization in [
        "base/kustomization.yaml",
        "overlays/single-node/kustomization.yaml",
        "overlays/production/kustomization.yaml",
    ] {
        for doc in documents(&k8s.join(kustomization)) {
            for generator in doc["configMapGenerator"].as_array().into_iter().flatten() {
                for literal in generator["literals"].as_array().into_iter().flatten() {
                    let (k, v) = literal.as_str().unwrap().split_once('=').unwrap();
                    out.push((kustomization.to_string(), k.to_string(), v.to_string()));
                }
            }
        }
    }
    for doc in documents(&k8s.join("overlays/production/secrets.yaml")) {
        for c in doc["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
        {
            for e in c["env"].as_array().unwrap() {
                out.push((
                    "secrets.yaml".into(),
                    e["name"].as_str().unwrap().into(),
                    "x".into(),
                ));
            }
        }
    }
    for doc in documents(&deploy().join("compose.yaml")) {
        let mut envs = vec![doc["x-qaward"]["environment"].clone()];
        for (_, s) in doc["services"].as_object().unwrap() {
            envs.push(s["environment"].clone());
        }
        for env in envs {
            for (k, v) in env.as_object().into_iter().flatten() {
                if k != "<<" {
                    out.push((
                        "compose.yaml".into(),
                        k.clone(),
                        v.as_str().unwrap_or("").into(),
                    ));
                }
            }
        }
    }
    let dockerfile = std::fs::read_to_string(deploy().join("Dockerfile")).unwrap();
    for line in dockerfile.lines() {
        let line = line
            .trim()
            .trim_start_matches("ENV ")
            .trim_end_matches('\\')
            .trim();
        if let Some((k, v)) = line.split_once('=')
            && k.starts_with("QAWARD_")
        {
            out.push(("Dockerfile".into(), k.to_string(), v.to_string()));
        }
    }
    out
}

#[test]
fn every_setting_named_in_deploy_is_one_the_binary_has() {
    let all = settings();
    assert!(all.len() > 30, "{all:?}");
    for (file, name, value) in &all {
        if !name.starts_with("QAWARD_") || name == "QAWARD_TARGETS" {
            continue;
        }
        // A secret from a file is checked under its own name; other settings ending in
        // _FILE (auth.jwks_file, tls.cert_file) are settings of their own.
        let name = name
            .strip_suffix("_FILE")
            .filter(|n| {
                qaward_kit::config::SECRET_SETTINGS
                    .contains(&n.trim_start_matches(qaward_kit::config::ENV_PREFIX))
            })
            .unwrap_or(name);
        // Values from the compose file's own variables (${…}) and secrets are placeholders.
        let value = if value.contains("${") || value.is_empty() && name.contains("URL") {
            String::new()
        } else {
            value.clone()
        };
        let value = match name {
            "QAWARD_DATABASE_URL" => "postgres://x@db/qaward".to_string(),
            _ => value,
        };
        let mut env = vec![(name.to_string(), value.clone())];
        if name.starts_with("QAWARD_BLOBS__S3__") {
            // An S3 store is all or nothing; give it the rest.
            for (k, v) in [
                ("QAWARD_BLOBS__S3__ENDPOINT", "http://s3"),
                ("QAWARD_BLOBS__S3__BUCKET", "b"),
                ("QAWARD_BLOBS__S3__REGION", "r"),
                ("QAWARD_BLOBS__S3__ACCESS_KEY_ID", "a"),
                ("QAWARD_BLOBS__S3__SECRET_ACCESS_KEY", "s"),
            ] {
                if k != name {
                    env.push((k.into(), v.into()));
                }
            }
        }
        if name.starts_with("QAWARD_TLS__") {
            // TLS is a certificate and its key together (the CAs need them too), read at
            // start: stand-in files that exist, in place of the mounted ones.
            let readable = deploy().join("compose.yaml").display().to_string();
            env = [
                "CERT_FILE",
                "KEY_FILE",
                name.trim_start_matches("QAWARD_TLS__"),
            ]
            .map(|k| (format!("QAWARD_TLS__{k}"), readable.clone()))
            .to_vec();
        }
        if let Err(e) = Config::load_from(None, env) {
            panic!("{file}: {name}={value} is not a setting of the binary: {e}");
        }
    }
}

#[test]
fn ports_and_probes_in_the_manifests_are_where_the_services_listen() {
    let defaults = Config::default();
    let settings: BTreeMap<String, String> = settings()
        .into_iter()
        .filter(|(f, _, _)| f == "base/kustomization.yaml")
        .map(|(_, k, v)| (k, v))
        .collect();
    let configured = Config::load_from(None, settings.clone()).unwrap();
    let base = deploy().join("k8s/base");
    let mut seen = Vec::new();
    for kind in ServiceKind::ALL {
        let docs = documents(&base.join(format!("{}.yaml", kind.as_str())));
        let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
        let service = docs.iter().find(|d| d["kind"] == "Service").unwrap();
        let pod = &deployment["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        let port_of = |name: &str| {
            c["ports"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .and_then(|p| p["containerPort"].as_u64())
                .unwrap_or_else(|| panic!("{}: no port {name}", kind.as_str()))
        };
        let grpc = port_of("grpc");
        // The port the binary listens on, by default and as the ConfigMap sets it (0.0.0.0).
        assert_eq!(
            grpc,
            u64::from(defaults.listen_addr(kind).port()),
            "{}",
            kind.as_str()
        );
        assert_eq!(
            grpc,
            u64::from(configured.listen_addr(kind).port()),
            "{}",
            kind.as_str()
        );
        assert!(configured.listen_addr(kind).ip().is_unspecified());
        if kind == ServiceKind::Gateway {
            assert_eq!(
                port_of("http"),
                u64::from(configured.listen.gateway_http.port())
            );
        }
        for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
            assert_eq!(
                c[probe]["grpc"]["port"].as_u64(),
                Some(grpc),
                "{} {probe}",
                kind.as_str()
            );
        }
        assert_eq!(
            c["env"][0],
            serde_json::json!({"name": "QAWARD_TARGETS", "value": kind.as_str()})
        );
        // The Service sends each port to a named container port that exists, at the same number.
        for p in service["spec"]["ports"].as_array().unwrap() {
            assert_eq!(
                p["port"].as_u64(),
                Some(port_of(p["targetPort"].as_str().unwrap()))
            );
        }
        // The drain fits: preStop, then the server's grace period, inside the pod's.
        let drain = c["lifecycle"]["preStop"]["sleep"]["seconds"]
            .as_u64()
            .unwrap()
            + configured.server.shutdown_grace().as_secs();
        assert!(
            pod["terminationGracePeriodSeconds"].as_u64().unwrap() > drain,
            "{}: the pod is killed before it has drained",
            kind.as_str()
        );
        // Upstream URLs name this Service at this port.
        if kind != ServiceKind::Gateway {
            assert_eq!(
                configured.upstream_url(kind),
                format!("http://{}:{grpc}", kind.as_str())
            );
            assert_eq!(service["metadata"]["name"], kind.as_str());
        }
        seen.push(kind);
    }
    assert_eq!(seen.len(), 5);
    // The image exposes the same ports.
    let dockerfile = std::fs::read_to_string(deploy().join("Dockerfile")).unwrap();
    let expose = dockerfile
        .lines()
        .find(|l| l.starts_with("EXPOSE"))
        .unwrap();
    for kind in ServiceKind::ALL {
        assert!(
            expose.contains(&defaults.listen_addr(kind).port().to_string()),
            "{expose}"
        );
    }
    assert!(expose.contains(&defaults.listen.gateway_http.port().to_string()));
}

#[test]
fn the_ops_guide_lists_every_setting_with_its_variable() {
    let guide = std::fs::read_to_string(deploy().join("README.md")).unwrap();
    let example = std::fs::read_to_string(deploy().join("qaward.example.toml")).unwrap();
    let mut section = String::new();
    let mut checked = 0;
    for line in example.lines().map(str::trim) {
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_string();
            continue;
        }
        let line = line.trim_start_matches('#').trim();
        let Some((key, _)) = line.split_once(" = ") else {
            continue;
        };
        if !key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            continue;
        }
        let path: Vec<String> = section
            .split('.')
            .filter(|p| !p.is_empty())
            .chain([key])
            .map(str::to_ascii_uppercase)
            .collect();
        let variable = format!("QAWARD_{}", path.join("__"));
        assert!(
            guide.contains(&format!("`{variable}`")),
            "deploy/README.md does not list {variable}"
        );
        checked += 1;
    }
    assert!(checked > 60, "{checked}");
}

/// Issue 21: only what must sign gets a key. The applications service (its outbox relays to
/// the notifications service) holds the services' private key; no container holds the people's
/// signing key (it stays with whoever runs `qaward token`); the gateway verifies with public
/// keys only.
#[test]
fn only_the_applications_service_holds_the_services_key_and_no_container_the_signing_key() {
    let text = std::fs::read_to_string(deploy().join("compose.yaml")).unwrap();
    let mut compose: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    compose.apply_merge().unwrap();
    for (_, s) in compose["services"].as_mapping_mut().unwrap().iter_mut() {
        s.apply_merge().unwrap();
    }
    let compose = serde_json::to_value(compose).unwrap();
    for (file, secret) in compose["secrets"].as_object().unwrap() {
        assert!(
            !secret["file"].as_str().unwrap().contains("signing-key"),
            "compose secret {file} is the people's signing key"
        );
    }
    let mut qaward_services = 0;
    for (name, s) in compose["services"].as_object().unwrap() {
        if !s["image"].as_str().unwrap_or("").contains("QAWARD_IMAGE") {
            continue;
        }
        qaward_services += 1;
        let secrets: Vec<&str> = s["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            secrets.contains(&"service_key"),
            name == "applications",
            "{name}: {secrets:?}"
        );
        assert!(secrets.contains(&"service_jwks"), "{name}");
        assert!(secrets.contains(&"jwks"), "{name}");
        // No shared data volume carries keys between containers any more.
        for v in s["volumes"].as_array().into_iter().flatten() {
            assert!(
                name == "applications" && v.as_str().unwrap().starts_with("evidence:"),
                "{name} mounts {v}"
            );
        }
        // Every listener serves TLS, and the services require client certificates.
        let env = &s["environment"];
        assert!(env["QAWARD_TLS__CERT_FILE"].is_string(), "{name}");
        assert!(env["QAWARD_TLS__CLIENT_CA_FILE"].is_string(), "{name}");
        assert!(
            env.get("QAWARD_SERVER__ALLOW_PLAINTEXT").is_none(),
            "{name}"
        );
    }
    assert_eq!(qaward_services, 6, "migrate and five services");
    // Published on loopback unless told otherwise.
    for port in compose["services"]["gateway"]["ports"].as_array().unwrap() {
        assert!(
            port.as_str()
                .unwrap()
                .starts_with("${QAWARD_PUBLISH_ADDRESS:-127.0.0.1}:"),
            "{port}"
        );
    }

    // Kubernetes (production): the private key is patched into the applications Deployment
    // alone; every Deployment gets only the public half.
    let production = deploy().join("k8s/overlays/production");
    let kustomization = &documents(&production.join("kustomization.yaml"))[0];
    let patches = kustomization["patches"].as_array().unwrap();
    let key_patch = patches
        .iter()
        .find(|p| p["path"] == "service-key.yaml")
        .unwrap();
    assert_eq!(
        key_patch["target"],
        serde_json::json!({"kind": "Deployment", "name": "applications"})
    );
    let everyone = &documents(&production.join("tls-and-keys.yaml"))[0];
    let volumes = everyone["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap();
    let items: Vec<&Value> = volumes
        .iter()
        .filter(|v| v["secret"]["secretName"] == "qaward-service-keys")
        .flat_map(|v| v["secret"]["items"].as_array().into_iter().flatten())
        .collect();
    assert_eq!(
        items,
        [&serde_json::json!({"key": "service-jwks.json", "path": "service-jwks.json"})]
    );
    // R-54: every Deployment reads the same field keys, from their own secret.
    assert!(
        volumes
            .iter()
            .any(|v| v["secret"]["secretName"] == "qaward-field-keys"),
        "{volumes:?}"
    );
    let secrets = std::fs::read_to_string(production.join("secrets.yaml")).unwrap();
    assert!(
        !secrets.contains("SERVICE_TOKEN"),
        "no long-lived service token"
    );
    // Issue 22: the audit checkpoint key goes to the four services, not to the gateway, which
    // keeps no log and signs nothing.
    let every = std::fs::read_to_string(production.join("tls-and-keys.yaml")).unwrap();
    assert!(
        !every.contains("qaward-audit-key"),
        "the key patch of every Deployment"
    );
    let kustomization = std::fs::read_to_string(production.join("kustomization.yaml")).unwrap();
    assert!(
        kustomization.contains(
            "labelSelector: app.kubernetes.io/name=qaward,app.kubernetes.io/component!=gateway\n    path: audit-key.yaml"
        ),
        "{kustomization}"
    );
}
