//! `docs/http.md` lists every HTTP/JSON route as the contracts bind it: the table is generated
//! from the same descriptor set the gateway's transcoder reads, and this test keeps the two
//! equal (`QAWARD_UPDATE_DOCS=1` rewrites the generated part).

use qaward_gateway::transcode::Routes;

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/http.md");
const MARK: &str = "<!-- generated from the contracts' google.api.http annotations";

/// One section per service, one row per route, in the contracts' order.
fn route_table() -> String {
    let routes = Routes::from_descriptors(qaward_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut sections: Vec<(String, String)> = Vec::new();
    for r in routes.all() {
        if sections.last().is_none_or(|(s, _)| *s != r.service) {
            sections.push((r.service.clone(), String::new()));
        }
        let method = r.grpc_path.rsplit('/').next().unwrap_or_default();
        let body = match r.body.as_str() {
            _ if r.client_streaming => "the file, streamed".to_string(),
            "" => "none".to_string(),
            "*" => "the request".to_string(),
            field => format!("`{field}`"),
        };
        let rows = &mut sections.last_mut().expect("pushed above").1;
        rows.push_str(&format!(
            "| {} | `{}` | {method} | {body} |\n",
            r.http_method, r.template_text
        ));
    }
    sections
        .iter()
        .map(|(service, rows)| {
            format!(
                "### `{service}`\n\n| HTTP | path | method | body |\n|---|---|---|---|\n{rows}\n"
            )
        })
        .collect()
}

#[test]
fn the_route_table_in_the_docs_is_the_contracts_bindings() {
    qaward_kit::testing::check_generated(DOC, MARK, &route_table());
}
