//! `GET /openapi.json`: an OpenAPI 3.0 document generated from the same descriptor set and
//! annotations the transcoder serves, so the document and the routes cannot drift apart. Each
//! wildcard of a resource name becomes a path parameter named after the collection before it
//! (`programmes/*` → `{programme}`); messages become component schemas in their proto3 JSON
//! form.

use std::collections::BTreeMap;

use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Value, json};

use crate::transcode::Routes;

/// `programmes` → `programme`, `inboxes` → `inbox`, `deadLetters` → `deadLetter`.
fn singular(collection: &str) -> String {
    if let Some(stem) = collection.strip_suffix("xes") {
        format!("{stem}x")
    } else if let Some(stem) = collection.strip_suffix('s') {
        stem.to_string()
    } else {
        collection.to_string()
    }
}

/// The OpenAPI path of a template, with its parameters in order.
fn openapi_path(template: &str) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut params = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = open + rest[open..].find('}').unwrap_or(rest.len() - open - 1);
        let inner = &rest[open + 1..close];
        match inner.split_once('=') {
            Some((_, pattern)) => {
                let mut previous = "";
                let parts: Vec<String> = pattern
                    .split('/')
                    .map(|seg| {
                        let piece = if seg == "*" {
                            let name = singular(previous);
                            params.push(name.clone());
                            format!("{{{name}}}")
                        } else {
                            seg.to_string()
                        };
                        previous = seg;
                        piece
                    })
                    .collect();
                out.push_str(&parts.join("/"));
            }
            None => {
                params.push(inner.to_string());
                out.push_str(&format!("{{{inner}}}"));
            }
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    (out, params)
}

fn field_schema(f: &FieldDescriptor) -> Value {
    let one = match f.kind() {
        Kind::String => json!({ "type": "string" }),
        Kind::Bytes => json!({ "type": "string", "format": "byte" }),
        Kind::Bool => json!({ "type": "boolean" }),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 | Kind::Uint32 | Kind::Fixed32 => {
            json!({ "type": "integer", "format": "int32" })
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64 => {
            json!({ "type": "string", "format": "int64" })
        }
        Kind::Float | Kind::Double => json!({ "type": "number" }),
        Kind::Enum(e) => json!({
            "type": "string",
            "enum": e.values().map(|v| v.name().to_string()).collect::<Vec<_>>(),
        }),
        Kind::Message(m) => match m.full_name() {
            "google.protobuf.Timestamp" => json!({ "type": "string", "format": "date-time" }),
            _ if f.is_map() => {
                let value = m.map_entry_value_field();
                return json!({ "type": "object", "additionalProperties": field_schema(&value) });
            }
            name => json!({ "$ref": format!("#/components/schemas/{name}") }),
        },
    };
    if f.is_list() {
        json!({ "type": "array", "items": one })
    } else {
        one
    }
}

fn collect(m: &MessageDescriptor, out: &mut BTreeMap<String, Value>) {
    if out.contains_key(m.full_name()) || m.full_name().starts_with("google.protobuf.") {
        return;
    }
    out.insert(m.full_name().to_string(), Value::Null);
    let mut properties = serde_json::Map::new();
    for f in m.fields() {
        properties.insert(f.json_name().to_string(), field_schema(&f));
        if let Kind::Message(inner) = f.kind() {
            if f.is_map() {
                if let Kind::Message(v) = inner.map_entry_value_field().kind() {
                    collect(&v, out);
                }
            } else {
                collect(&inner, out);
            }
        }
    }
    out.insert(
        m.full_name().to_string(),
        json!({ "type": "object", "properties": properties }),
    );
}

/// The document for every route.
pub fn document(encoded: &[u8], routes: &Routes) -> Result<Value, String> {
    let _pool = DescriptorPool::decode(encoded).map_err(|e| e.to_string())?;
    let mut paths: BTreeMap<String, serde_json::Map<String, Value>> = BTreeMap::new();
    let mut schemas = BTreeMap::new();
    for r in routes.all() {
        collect(&r.input, &mut schemas);
        collect(&r.output, &mut schemas);
        let (path, params) = openapi_path(&r.template_text);
        let mut op = json!({
            "operationId": r.grpc_path.trim_start_matches('/').replace('/', "."),
            "tags": [r.service.rsplit('.').next().unwrap_or_default()],
            "parameters": params.iter().map(|p| json!({
                "name": p, "in": "path", "required": true, "schema": { "type": "string" },
            })).collect::<Vec<_>>(),
            "responses": {
                "200": {
                    "description": "OK",
                    "content": { "application/json": { "schema": {
                        "$ref": format!("#/components/schemas/{}", r.output.full_name()),
                    }}},
                },
                "default": {
                    "description": "Google's JSON error model (docs/http.md)",
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } },
                },
            },
            "security": [{ "bearer": [] }],
        });
        if r.client_streaming {
            // The file itself is the body (docs/http.md, evidence upload).
            op["requestBody"] = json!({
                "required": true,
                "description": "the file itself; its type in Content-Type",
                "content": { "*/*": { "schema": { "type": "string", "format": "binary" } } },
            });
            if let Some(params) = op["parameters"].as_array_mut() {
                params.push(json!({
                    "name": "header.fileName", "in": "query", "required": true,
                    "schema": { "type": "string" },
                }));
                params.push(json!({
                    "name": "requestId", "in": "query", "required": false,
                    "schema": { "type": "string" },
                }));
            }
        } else if !r.body.is_empty() {
            let schema = if r.body == "*" {
                r.input.full_name().to_string()
            } else {
                match r.input.get_field_by_name(&r.body).map(|f| f.kind()) {
                    Some(Kind::Message(m)) => m.full_name().to_string(),
                    _ => r.input.full_name().to_string(),
                }
            };
            op["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": {
                    "$ref": format!("#/components/schemas/{schema}"),
                }}},
            });
        }
        paths
            .entry(path)
            .or_default()
            .insert(r.http_method.as_str().to_ascii_lowercase(), op);
    }
    schemas.insert(
        "Error".to_string(),
        json!({ "type": "object", "properties": { "error": { "type": "object", "properties": {
            "code": { "type": "integer" }, "message": { "type": "string" },
            "status": { "type": "string" }, "details": { "type": "array", "items": { "type": "object" } },
        }}}}),
    );
    Ok(json!({
        "openapi": "3.0.3",
        "info": {
            "title": "qaward",
            "version": "v1",
            "description": "The Mayor's Quality Management Award platform: applications, reviewers, scoring, notifications.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } },
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names_become_path_parameters() {
        assert_eq!(
            openapi_path("/v1/{name=programmes/*/cycles/*}:releaseReviewStage"),
            (
                "/v1/programmes/{programme}/cycles/{cycle}:releaseReviewStage".to_string(),
                vec!["programme".to_string(), "cycle".to_string()]
            )
        );
        assert_eq!(
            openapi_path("/v1/{parent=inboxes/*}/messages").0,
            "/v1/inboxes/{inbox}/messages"
        );
    }

    #[test]
    fn the_document_covers_every_route_with_its_schemas() {
        let routes = Routes::from_descriptors(qaward_proto::FILE_DESCRIPTOR_SET).unwrap();
        let doc = document(qaward_proto::FILE_DESCRIPTOR_SET, &routes).unwrap();
        let operations: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|p| p.as_object().unwrap().len())
            .sum();
        assert_eq!(operations, routes.len());
        let post = &doc["paths"]["/v1/programmes/{programme}/cycles"]["post"];
        assert_eq!(
            post["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/qaward.applications.v1.Cycle"
        );
        let cycle = &doc["components"]["schemas"]["qaward.applications.v1.Cycle"];
        assert_eq!(cycle["properties"]["deadline"]["format"], "date-time");
        assert_eq!(
            cycle["properties"]["state"]["enum"][0],
            "CYCLE_STATE_UNSPECIFIED"
        );
    }
}
