//! Path templates of `google.api.http` rules (`/v1/{name=programmes/*}`): parsed, matched
//! against a request path with its variables bound, expanded back for a client, and the
//! percent-encoding they use.

use prost_reflect::{DynamicMessage, ReflectMessage, Value};

/// One piece of a path template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Piece {
    Literal(String),
    /// `*`: one segment.
    Any,
    /// `{field=pattern}` or `{field}` (= `{field=*}`).
    Var {
        field: String,
        pattern: Vec<Piece>,
    },
}

/// A parsed `google.api.http` path template: `/v1/{name=programmes/*}/cycles:verb`.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pieces: Vec<Piece>,
    verb: Option<String>,
}

impl Template {
    pub fn parse(t: &str) -> Result<Template, String> {
        let body = t
            .strip_prefix('/')
            .ok_or_else(|| format!("{t}: a template starts with /"))?;
        // The verb follows the last ':' outside braces.
        let mut depth = 0;
        let mut verb_at = None;
        for (i, ch) in body.char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => depth -= 1,
                ':' if depth == 0 => verb_at = Some(i),
                _ => {}
            }
        }
        let (path, verb) = match verb_at {
            Some(i) => (&body[..i], Some(body[i + 1..].to_string())),
            None => (body, None),
        };
        let mut pieces = Vec::new();
        let mut rest = path;
        while !rest.is_empty() {
            if let Some(inner) = rest.strip_prefix('{') {
                let end = inner
                    .find('}')
                    .ok_or_else(|| format!("{t}: unclosed variable"))?;
                let (field, pattern) = match inner[..end].split_once('=') {
                    Some((f, p)) => (f, p),
                    None => (&inner[..end], "*"),
                };
                pieces.push(Piece::Var {
                    field: field.to_string(),
                    pattern: pattern
                        .split('/')
                        .map(|s| {
                            if s == "*" {
                                Piece::Any
                            } else {
                                Piece::Literal(s.to_string())
                            }
                        })
                        .collect(),
                });
                rest = inner[end + 1..].trim_start_matches('/');
            } else {
                let end = rest.find('/').unwrap_or(rest.len());
                let seg = &rest[..end];
                pieces.push(if seg == "*" {
                    Piece::Any
                } else {
                    Piece::Literal(seg.to_string())
                });
                rest = rest[end..].trim_start_matches('/');
            }
        }
        Ok(Template { pieces, verb })
    }

    /// A path this template matches, with `x` for every wildcard segment (for tests and
    /// examples).
    pub fn example(&self) -> String {
        let piece = |p: &Piece| match p {
            Piece::Literal(l) => l.clone(),
            _ => "x".to_string(),
        };
        let mut out = String::new();
        for p in &self.pieces {
            out.push('/');
            match p {
                Piece::Var { pattern, .. } => {
                    out.push_str(&pattern.iter().map(piece).collect::<Vec<_>>().join("/"))
                }
                other => out.push_str(&piece(other)),
            }
        }
        if let Some(v) = &self.verb {
            out.push(':');
            out.push_str(v);
        }
        out
    }

    /// The path of this template for `msg`, each variable filled from its field (which must
    /// match the variable's pattern, as the server will check), percent-encoded; and the field
    /// paths it used. The client side of [`Template::matches`].
    pub fn expand(&self, msg: &DynamicMessage) -> Result<(String, Vec<String>), String> {
        let mut out = String::new();
        let mut used = Vec::new();
        for p in &self.pieces {
            out.push('/');
            match p {
                Piece::Literal(l) => out.push_str(l),
                Piece::Any => return Err("a bare wildcard takes no field".to_string()),
                Piece::Var { field, pattern } => {
                    let value = string_at(msg, field).unwrap_or_default();
                    let segments: Vec<&str> = value.split('/').collect();
                    let fits = segments.len() == pattern.len()
                        && pattern.iter().zip(&segments).all(|(p, s)| match p {
                            Piece::Literal(l) => l == s,
                            _ => !s.is_empty(),
                        });
                    if !fits {
                        return Err(format!("{field} {value:?} does not fit the route"));
                    }
                    let encoded: Vec<String> = segments.iter().map(|s| percent_encode(s)).collect();
                    out.push_str(&encoded.join("/"));
                    used.push(field.clone());
                }
            }
        }
        if let Some(v) = &self.verb {
            out.push(':');
            out.push_str(v);
        }
        Ok((out, used))
    }

    /// The path variables when `path` matches, else `None`.
    pub fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let path = path.strip_prefix('/')?;
        let path = match &self.verb {
            Some(v) => path.strip_suffix(&format!(":{v}"))?,
            None => {
                if path
                    .rsplit('/')
                    .next()
                    .is_some_and(|last| last.contains(':'))
                {
                    return None;
                }
                path
            }
        };
        let segments: Vec<String> = path.split('/').map(percent_decode).collect();
        let mut at = 0;
        let mut vars = Vec::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(l) => {
                    if segments.get(at) != Some(l) {
                        return None;
                    }
                    at += 1;
                }
                Piece::Any => {
                    if segments.get(at).is_none_or(|s| s.is_empty()) {
                        return None;
                    }
                    at += 1;
                }
                Piece::Var { field, pattern } => {
                    let start = at;
                    for p in pattern {
                        match (p, segments.get(at)) {
                            (Piece::Literal(l), Some(s)) if s == l => at += 1,
                            (Piece::Any, Some(s)) if !s.is_empty() => at += 1,
                            _ => return None,
                        }
                    }
                    vars.push((field.clone(), segments[start..at].join("/")));
                }
            }
        }
        (at == segments.len()).then_some(vars)
    }
}

/// Every byte outside RFC 3986's unreserved characters as `%XX`.
pub fn percent_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, UNRESERVED_KEPT).to_string()
}

/// Everything but RFC 3986's unreserved characters (letters, digits, `-._~`) is encoded.
const UNRESERVED_KEPT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The string at a dotted field path of `msg`.
pub(crate) fn string_at(msg: &DynamicMessage, path: &str) -> Option<String> {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let field = msg.descriptor().get_field_by_name(head)?;
    match (rest, msg.get_field(&field).as_ref()) {
        (Some(rest), Value::Message(inner)) => string_at(inner, rest),
        (None, Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

pub(crate) fn percent_decode(s: &str) -> String {
    // A `%` not followed by two hex digits stays as it is; bytes that are not UTF-8 become
    // U+FFFD.
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}
