//! Every method's HTTP route, read from the descriptor set, and the lookup of a request's route.

use http::Method;
use prost_reflect::{DescriptorPool, MessageDescriptor, Value};

use super::template::Template;

/// Path variables bound by a match: (field path, value).
pub type Bindings = Vec<(String, String)>;

/// One annotated method.
#[derive(Debug, Clone)]
pub struct Route {
    pub http_method: Method,
    pub template: Template,
    /// The template as annotated, for the OpenAPI document.
    pub template_text: String,
    /// `*`, a field name, or empty.
    pub body: String,
    /// `/qaward.reviewers.v1.ReviewerService/PrepareDraw`.
    pub grpc_path: String,
    /// `qaward.reviewers.v1.ReviewerService`.
    pub service: String,
    pub input: MessageDescriptor,
    pub output: MessageDescriptor,
    pub client_streaming: bool,
}

/// Every route of the contracts.
#[derive(Debug, Clone)]
pub struct Routes {
    routes: Vec<Route>,
}

impl Routes {
    /// The routes of every `qaward.*` service in the descriptor set.
    pub fn from_descriptors(encoded: &[u8]) -> Result<Routes, String> {
        let pool = DescriptorPool::decode(encoded).map_err(|e| e.to_string())?;
        let http = pool
            .get_extension_by_name("google.api.http")
            .ok_or("google.api.http is not in the descriptor set")?;
        let mut routes = Vec::new();
        for s in pool
            .services()
            .filter(|s| s.full_name().starts_with("qaward."))
        {
            for m in s.methods() {
                let options = m.options();
                if !options.has_extension(&http) {
                    continue;
                }
                let rule = options.get_extension(&http);
                let Value::Message(rule) = rule.as_ref() else {
                    continue;
                };
                let mut found = None;
                for verb in ["get", "post", "patch", "put", "delete"] {
                    if let Some(Value::String(t)) = rule.get_field_by_name(verb).as_deref()
                        && !t.is_empty()
                    {
                        found = Some((verb, t.clone()));
                    }
                }
                let Some((verb, template)) = found else {
                    continue;
                };
                let body = match rule.get_field_by_name("body").as_deref() {
                    Some(Value::String(b)) => b.clone(),
                    _ => String::new(),
                };
                routes.push(Route {
                    http_method: Method::from_bytes(verb.to_ascii_uppercase().as_bytes())
                        .map_err(|e| e.to_string())?,
                    template: Template::parse(&template)?,
                    template_text: template.clone(),
                    body,
                    grpc_path: format!("/{}/{}", s.full_name(), m.name()),
                    service: s.full_name().to_string(),
                    input: m.input(),
                    output: m.output(),
                    client_streaming: m.is_client_streaming(),
                });
            }
        }
        Ok(Routes { routes })
    }

    pub fn all(&self) -> &[Route] {
        &self.routes
    }

    /// The route of a gRPC method (`/qaward.reviewers.v1.ReviewerService/GetDraw`).
    pub fn of_method(&self, grpc_path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.grpc_path == grpc_path)
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The HTTP methods some route answers at `path` (for a 405's `Allow`).
    pub fn methods_at(&self, path: &str) -> Vec<&Method> {
        let mut methods: Vec<&Method> = Vec::new();
        for r in &self.routes {
            if r.template.matches(path).is_some() && !methods.contains(&&r.http_method) {
                methods.push(&r.http_method);
            }
        }
        methods
    }

    /// The route for a request, with its path variables. A path that matches under another
    /// HTTP method is `Err(true)` (405); none at all `Err(false)` (404).
    pub fn find(&self, method: &Method, path: &str) -> Result<(&Route, Bindings), bool> {
        let mut other_method = false;
        for r in &self.routes {
            if let Some(vars) = r.template.matches(path) {
                if r.http_method == method {
                    return Ok((r, vars));
                }
                other_method = true;
            }
        }
        Err(other_method)
    }
}
