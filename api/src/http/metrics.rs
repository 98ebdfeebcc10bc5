//! Request metrics: every request counted by route template, method and status, with its
//! latency. The template (`/api/tickets/{id}`) comes from the operation poem-openapi names on the
//! response, never from the path, so ids do not explode the label set.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use poem::{Endpoint, IntoResponse, Request, Response};
use poem_openapi::OperationId;

use crate::app::SharedApp;
use crate::http::problem;

/// Route templates by operation id, read from the OpenAPI document.
#[derive(Debug, Default)]
pub struct RouteTemplates(HashMap<String, String>);

impl RouteTemplates {
    pub fn of(document: &serde_json::Value) -> Self {
        let mut templates = HashMap::new();
        if let Some(paths) = document["paths"].as_object() {
            for (path, operations) in paths {
                if let Some(operations) = operations.as_object() {
                    for operation in operations.values() {
                        if let Some(id) = operation["operationId"].as_str() {
                            templates.insert(id.to_string(), path.clone());
                        }
                    }
                }
            }
        }
        Self(templates)
    }

    fn template<'a>(&'a self, operation: Option<&OperationId>, path: &'a str) -> &'a str {
        match operation.and_then(|id| self.0.get(id.0)) {
            Some(template) => template,
            // Not an API operation: the document, the explorer's files, or nothing at all.
            None if path == "/openapi.json" => path,
            None if path.starts_with("/docs") => "/docs",
            None => "unmatched",
        }
    }
}

/// The middleware; installed inside the request context, so errors are already problems.
pub async fn record<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let started = Instant::now();
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let app = req.data::<SharedApp>().cloned();
    let templates = req.data::<Arc<RouteTemplates>>().cloned();
    let (response, operation) = match next.call(req).await {
        Ok(response) => {
            let response = response.into_response();
            let operation = response.data::<OperationId>().copied();
            (response, operation)
        }
        Err(error) => {
            let operation = error.data::<OperationId>().copied();
            (problem::render(error), operation)
        }
    };
    if let (Some(app), Some(templates)) = (app, templates) {
        let route = templates.template(operation.as_ref(), &path);
        let (status, seconds) = (response.status().as_u16(), started.elapsed().as_secs_f64());
        match operation {
            Some(operation) => {
                app.metrics
                    .operation_request(operation.0, route, &method, status, seconds)
            }
            None => app.metrics.http_request(route, &method, status, seconds),
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_is_labelled_by_its_template_and_the_rest_by_kind() {
        let document = serde_json::json!({"paths": {
            "/api/tickets/{id}": {"get": {"operationId": "get_ticket"}, "patch": {"operationId": "update_ticket"}}
        }});
        let templates = RouteTemplates::of(&document);
        assert_eq!(
            templates.template(Some(&OperationId("update_ticket")), "/api/tickets/42"),
            "/api/tickets/{id}"
        );
        assert_eq!(templates.template(None, "/docs/index.css"), "/docs");
        assert_eq!(templates.template(None, "/nope/42"), "unmatched");
    }
}
