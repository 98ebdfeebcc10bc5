//! `/openapi.json` documents every route with schemas, and matches the committed contract.

use docket_tests::spawn_app;
use reqwest::Method;
use serde_json::Value;

const CONTRACT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");

#[tokio::test]
async fn the_spec_covers_every_route_with_schemas() {
    let app = spawn_app().await;
    let spec = app
        .request(Method::GET, "/openapi.json", None, None, &[])
        .await
        .expect(200)
        .body;
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let paths = spec["paths"].as_object().unwrap();
    let expected = [
        ("/api/auth/register", "post"),
        ("/api/auth/login", "post"),
        ("/api/auth/refresh", "post"),
        ("/api/auth/me", "get"),
        ("/api/auth/change-password", "put"),
        ("/api/users", "post"),
        ("/api/users", "get"),
        ("/api/users/{id}", "get"),
        ("/api/users/{id}", "patch"),
        ("/api/tickets", "post"),
        ("/api/tickets", "get"),
        ("/api/tickets/{id}", "get"),
        ("/api/tickets/{id}", "patch"),
        ("/api/tickets/{id}/status", "patch"),
        ("/api/tickets/{id}/assign", "post"),
        ("/api/tickets/{id}/escalate", "post"),
        ("/api/tickets/{id}/comments", "post"),
        ("/api/tickets/{id}/history", "get"),
        ("/api/skills", "get"),
        ("/api/skills", "post"),
        ("/api/agents/{id}/skills", "put"),
        ("/api/agents/{id}/status", "put"),
        ("/api/teams", "get"),
        ("/api/teams", "post"),
        ("/api/teams/{id}/members", "get"),
        ("/api/teams/{id}/members", "post"),
        ("/api/teams/{id}/members", "delete"),
        ("/api/agents", "get"),
        ("/api/agents/available", "get"),
        ("/api/agents/{id}", "get"),
        ("/api/shifts/start", "post"),
        ("/api/shifts/{id}/end", "post"),
        ("/api/shifts/{id}/breaks", "post"),
        ("/api/shifts/agent/{agent_id}", "get"),
        ("/api/tickets/queue", "get"),
        ("/api/tickets/process-queue", "post"),
        ("/api/tickets/{id}/routing", "get"),
        ("/api/agents/{agent_id}/claim/{ticket_id}", "post"),
        ("/api/workload/rebalance", "post"),
        ("/api/workload/metrics", "get"),
        ("/api/workload/agents", "get"),
        ("/api/workload/teams", "get"),
        ("/api/workload/predictions", "get"),
        ("/health", "get"),
        ("/ready", "get"),
    ];
    for (path, method) in expected {
        let operation = &paths[path][method];
        assert!(operation.is_object(), "{method} {path} is missing");
        let responses = operation["responses"].as_object().unwrap();
        let success = responses
            .iter()
            .find(|(status, _)| status.starts_with('2'))
            .unwrap_or_else(|| panic!("{method} {path} documents no success"));
        if success.0 != "204" {
            assert!(
                success.1["content"].is_object(),
                "{method} {path} has no response schema"
            );
        }
        // Actions named entirely by their path take no body.
        let bodiless = [
            "/api/tickets/process-queue",
            "/api/shifts/{id}/end",
            "/api/agents/{agent_id}/claim/{ticket_id}",
        ];
        if (method == "post" || method == "patch" || method == "put") && !bodiless.contains(&path) {
            assert!(
                operation["requestBody"]["content"]["application/json"]["schema"].is_object(),
                "{method} {path} has no request schema"
            );
        }
        if path.starts_with("/api/") {
            assert!(
                responses.contains_key("422") || method == "get",
                "{method} {path} does not document its errors"
            );
            assert_eq!(
                responses["401"]["content"]["application/problem+json"]["schema"]["$ref"],
                "#/components/schemas/Problem"
            );
        }
    }
    let explorer = app.request(Method::GET, "/docs", None, None, &[]).await;
    assert_eq!(explorer.status, 200);
    assert!(explorer.text.contains("swagger"));
}

/// Regenerate with `DOCKET_UPDATE_OPENAPI=1 cargo test -p docket-tests openapi`.
#[test]
fn the_committed_contract_matches_the_code() {
    let generated: Value = docket_api::startup::openapi_document();
    if std::env::var("DOCKET_UPDATE_OPENAPI").is_ok() {
        std::fs::write(
            CONTRACT,
            serde_json::to_string_pretty(&generated).unwrap() + "\n",
        )
        .unwrap();
    }
    let committed: Value =
        serde_json::from_str(&std::fs::read_to_string(CONTRACT).expect("docs/openapi.json exists"))
            .unwrap();
    assert!(
        committed == generated,
        "docs/openapi.json is out of date: run DOCKET_UPDATE_OPENAPI=1 cargo test -p docket-tests openapi"
    );
}
