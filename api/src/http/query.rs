//! Unknown query parameters are refused, not ignored: `?priorty=high` answered every ticket,
//! as if the filter had matched. Each operation's query parameters are read from the OpenAPI
//! document once (its declared parameters, and a query API key its security scheme takes); a
//! request naming any other gets 400 `invalid-parameter` naming it and listing what the
//! operation takes.

use std::sync::Arc;

use poem::http::{HeaderValue, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};

use crate::http::problem::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Parameter,
}

#[derive(Debug, Clone)]
struct Operation {
    method: String,
    segments: Vec<Segment>,
    /// The query parameters it takes, in the document's order.
    query: Vec<String>,
}

impl Operation {
    /// How well `path` matches: the number of literal segments matched, or `None`.
    fn matches(&self, method: &str, path: &[&str]) -> Option<usize> {
        if !self.method.eq_ignore_ascii_case(method) || self.segments.len() != path.len() {
            return None;
        }
        let mut literal = 0;
        for (segment, part) in self.segments.iter().zip(path) {
            match segment {
                Segment::Literal(text) if text == part => literal += 1,
                Segment::Literal(_) => return None,
                Segment::Parameter => {}
            }
        }
        Some(literal)
    }
}

/// The query parameters of every operation of the document.
#[derive(Debug, Default)]
pub struct KnownQueries {
    operations: Vec<Operation>,
}

fn segments(path: &str) -> Vec<&str> {
    path.trim_matches('/').split('/').collect()
}

impl KnownQueries {
    pub fn of(document: &serde_json::Value) -> Self {
        let query_keys: Vec<(String, String)> = document["components"]["securitySchemes"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, scheme)| scheme["type"] == "apiKey" && scheme["in"] == "query")
            .filter_map(|(name, scheme)| Some((name.clone(), scheme["name"].as_str()?.to_string())))
            .collect();
        let mut operations = Vec::new();
        for (path, methods) in document["paths"].as_object().into_iter().flatten() {
            let template: Vec<Segment> = segments(path)
                .into_iter()
                .map(|s| {
                    if s.starts_with('{') {
                        Segment::Parameter
                    } else {
                        Segment::Literal(s.to_string())
                    }
                })
                .collect();
            for (method, operation) in methods.as_object().into_iter().flatten() {
                let mut query: Vec<String> = operation["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "query")
                    .filter_map(|p| p["name"].as_str().map(str::to_string))
                    .collect();
                for requirement in operation["security"].as_array().into_iter().flatten() {
                    for (scheme, key) in &query_keys {
                        if requirement.get(scheme).is_some() && !query.contains(key) {
                            query.push(key.clone());
                        }
                    }
                }
                operations.push(Operation {
                    method: method.clone(),
                    segments: template.clone(),
                    query,
                });
            }
        }
        Self { operations }
    }

    /// The operation `method path` reaches: the one matching the most literal segments.
    fn operation(&self, method: &str, path: &str) -> Option<&Operation> {
        let parts = segments(path);
        self.operations
            .iter()
            .filter_map(|op| op.matches(method, &parts).map(|score| (score, op)))
            .max_by_key(|(score, _)| *score)
            .map(|(_, op)| op)
    }

    /// The methods of the route `path` reaches (the template matching the most literal
    /// segments), for `Allow`.
    fn allowed(&self, path: &str) -> Vec<String> {
        let parts = segments(path);
        let scored: Vec<(usize, &Operation)> = self
            .operations
            .iter()
            .filter_map(|op| op.matches(&op.method, &parts).map(|score| (score, op)))
            .collect();
        let Some(best) = scored.iter().map(|(score, _)| *score).max() else {
            return Vec::new();
        };
        let mut methods: Vec<String> = scored
            .into_iter()
            .filter(|(score, _)| *score == best)
            .map(|(_, op)| op.method.to_ascii_uppercase())
            .collect();
        methods.sort();
        methods.dedup();
        methods
    }

    /// The first query parameter of `query` the operation does not take, with what it takes.
    fn unknown(&self, method: &str, path: &str, query: &str) -> Option<(String, Vec<String>)> {
        let operation = self.operation(method, path)?;
        query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| pair.split_once('=').map_or(pair, |(key, _)| key))
            .map(percent_decoded)
            .find(|key| !operation.query.contains(key))
            .map(|key| (key, operation.query.clone()))
    }
}

/// A query key as the client meant it (`%5F` is `_`, `+` is a space).
fn percent_decoded(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The middleware that holds requests to the document: 400 for a query parameter the operation
/// does not take, and `Allow` (the route's methods) on a 405.
pub async fn as_documented<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let known = req.data::<Arc<KnownQueries>>().cloned();
    if let (Some(known), Some(query)) = (known.as_ref(), req.uri().query())
        && let Some((key, takes)) = known.unknown(req.method().as_str(), req.uri().path(), query)
    {
        let detail = if takes.is_empty() {
            "this operation takes no query parameters".to_string()
        } else {
            format!(
                "is not a parameter of this operation; it takes {}",
                takes.join(", ")
            )
        };
        return Ok(ApiError::InvalidParameter { field: key, detail }.into_response());
    }
    let path = req.uri().path().to_string();
    let mut response = match next.call(req).await {
        Ok(response) => response.into_response(),
        Err(error) if error.status() == StatusCode::METHOD_NOT_ALLOWED => {
            crate::http::problem::render(error)
        }
        Err(error) => return Err(error),
    };
    if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && let Some(known) = known
        && let Ok(allow) = HeaderValue::from_str(&known.allowed(&path).join(", "))
    {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> KnownQueries {
        KnownQueries::of(&serde_json::json!({
            "components": {"securitySchemes": {
                "StreamQueryToken": {"type": "apiKey", "in": "query", "name": "access_token"}}},
            "paths": {
                "/api/tickets": {"get": {"parameters": [
                    {"name": "priority", "in": "query"}, {"name": "If-None-Match", "in": "header"}]}},
                "/api/tickets/{id}": {"get": {"parameters": [{"name": "min_version", "in": "query"}]}},
                "/api/tickets/queue": {"get": {"parameters": [{"name": "limit", "in": "query"}]}},
                "/api/events/stream": {"get": {"security": [{"StreamQueryToken": []}], "parameters": []}}
            }
        }))
    }

    #[test]
    fn allow_names_the_methods_of_the_route_a_path_reaches() {
        let mut known = known();
        known.operations.push(Operation {
            method: "patch".into(),
            segments: vec![
                Segment::Literal("api".into()),
                Segment::Literal("tickets".into()),
                Segment::Parameter,
            ],
            query: vec![],
        });
        assert_eq!(known.allowed("/api/tickets/7"), vec!["GET", "PATCH"]);
        assert_eq!(known.allowed("/api/tickets/queue"), vec!["GET"]);
        assert_eq!(known.allowed("/api/tickets"), vec!["GET"]);
        assert!(known.allowed("/nowhere").is_empty());
    }

    #[test]
    fn a_misspelt_parameter_is_named_with_what_the_operation_takes() {
        let known = known();
        assert_eq!(
            known.unknown("GET", "/api/tickets", "priorty=high"),
            Some(("priorty".to_string(), vec!["priority".to_string()]))
        );
        assert_eq!(known.unknown("GET", "/api/tickets", "priority=high"), None);
        // Headers are not query parameters.
        assert!(
            known
                .unknown("GET", "/api/tickets", "If-None-Match=x")
                .is_some()
        );
    }

    #[test]
    fn the_most_literal_template_decides_and_query_keys_count() {
        let known = known();
        assert_eq!(known.unknown("GET", "/api/tickets/queue", "limit=5"), None);
        assert!(
            known
                .unknown("GET", "/api/tickets/queue", "min_version=5")
                .is_some()
        );
        assert_eq!(
            known.unknown("GET", "/api/tickets/42", "min_version=5"),
            None
        );
        assert_eq!(
            known.unknown("GET", "/api/events/stream", "access_token=t"),
            None
        );
        // A path the document does not know is left to routing (404).
        assert_eq!(known.unknown("GET", "/nowhere", "x=1"), None);
    }

    #[test]
    fn keys_are_percent_decoded() {
        assert_eq!(percent_decoded("page%5Fsize"), "page_size");
        assert_eq!(percent_decoded("a+b"), "a b");
        assert_eq!(percent_decoded("100%"), "100%");
        assert_eq!(percent_decoded("%é"), "%é");
    }
}
