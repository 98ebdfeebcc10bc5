//! Bad input gets a clear, typed problem and never a 500.

use docket_tests::spawn_app;
use reqwest::Method;
use serde_json::json;

async fn raw(
    app: &docket_tests::TestApp,
    method: Method,
    path: &str,
    token: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> docket_tests::TestResponse {
    let mut request = app
        .client
        .request(method, format!("{}{path}", app.address))
        .bearer_auth(token)
        .body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    docket_tests::TestResponse {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or_default(),
        text,
    }
}

#[tokio::test]
async fn malformed_and_mistyped_bodies_are_400_and_422_naming_the_field() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let json = Some("application/json");
    let post = |body: &str| {
        raw(
            &app,
            Method::POST,
            "/api/tickets",
            &customer.token,
            json,
            body.as_bytes().to_vec(),
        )
    };
    post("{\"subject\": ")
        .await
        .expect_problem(400, "malformed-request");
    post("not json at all")
        .await
        .expect_problem(400, "malformed-request");
    let nesting_bomb = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    post(&nesting_bomb)
        .await
        .expect_problem(400, "malformed-request");

    let cases = [
        (
            json!({"subject": 42, "description": "d", "priority": "low"}),
            "subject",
        ),
        (
            json!({"subject": "s", "description": "d", "priority": "urgent"}),
            "priority",
        ),
        (json!({"description": "d", "priority": "low"}), "subject"),
        (
            json!({"subject": "s", "description": "d", "priority": "low", "tags": ["ok", 3]}),
            "tags[1]",
        ),
        (
            json!({"subject": "s", "description": "d", "priority": "low", "tags": ["ok", ""]}),
            "tags[1]",
        ),
        (
            json!({"subject": "x".repeat(201), "description": "d", "priority": "low"}),
            "subject",
        ),
        (
            json!({"subject": "   ", "description": "d", "priority": "low"}),
            "subject",
        ),
        (
            json!({"subject": "s", "description": "d".repeat(50_001), "priority": "low"}),
            "description",
        ),
        (
            json!({"subject": "s", "description": "d", "priority": "low", "customer_id": "not-a-uuid"}),
            "customer_id",
        ),
        (
            json!({"subject": "s", "description": "d", "priority": "low", "colour": "red"}),
            "colour",
        ),
    ];
    for (body, field) in cases {
        let problem = post(&body.to_string())
            .await
            .expect_problem(422, "validation-failed");
        assert_eq!(problem.body["field"], field, "{}", problem.text);
        assert!(problem.body["detail"].is_string());
        assert!(problem.body["request_id"].is_string());
    }
    // A 200-character subject and a 50,000-character comment are fine.
    let ticket = post(
        &json!({"subject": "é".repeat(200), "description": "d", "priority": "low"}).to_string(),
    )
    .await
    .expect(201);
    let id = ticket.body["id"].as_str().unwrap();
    app.post(
        &format!("/api/tickets/{id}/comments"),
        &customer.token,
        json!({"body": "b".repeat(50_000)}),
    )
    .await
    .expect(201);
    let too_long = app
        .post(
            &format!("/api/tickets/{id}/comments"),
            &customer.token,
            json!({"body": "b".repeat(50_001)}),
        )
        .await
        .expect_problem(422, "validation-failed");
    assert_eq!(too_long.body["field"], "body");
}

#[tokio::test]
async fn wrong_content_types_oversized_bodies_and_bad_ids_are_refused() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let body = br#"{"subject": "s", "description": "d", "priority": "low"}"#.to_vec();
    raw(
        &app,
        Method::POST,
        "/api/tickets",
        &customer.token,
        None,
        body.clone(),
    )
    .await
    .expect_problem(415, "unsupported-media-type");
    raw(
        &app,
        Method::POST,
        "/api/tickets",
        &customer.token,
        Some("text/plain"),
        body,
    )
    .await
    .expect_problem(415, "unsupported-media-type");
    let huge = format!(
        r#"{{"subject": "s", "priority": "low", "description": "{}"}}"#,
        "x".repeat(1024 * 1024 + 10)
    );
    raw(
        &app,
        Method::POST,
        "/api/tickets",
        &customer.token,
        Some("application/json"),
        huge.into_bytes(),
    )
    .await
    .expect_problem(413, "payload-too-large");

    let bad_id = app
        .get("/api/tickets/not-a-uuid", &customer.token)
        .await
        .expect_problem(400, "invalid-parameter");
    assert!(bad_id.body["field"].is_string());
    app.get(
        &format!("/api/tickets/{}", uuid::Uuid::new_v4()),
        &customer.token,
    )
    .await
    .expect_problem(404, "not-found");
    app.post(
        &format!("/api/tickets/{}/comments", uuid::Uuid::new_v4()),
        &customer.token,
        json!({"body": "hello?"}),
    )
    .await
    .expect_problem(404, "not-found");
    app.get("/api/nothing-here", &customer.token)
        .await
        .expect_problem(404, "not-found");
    app.request(
        Method::DELETE,
        "/api/tickets",
        Some(&customer.token),
        None,
        &[],
    )
    .await
    .expect_problem(405, "method-not-allowed");
}

#[tokio::test]
async fn sql_metacharacters_are_stored_and_filtered_literally() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let agent = app.user("agent").await;
    let nasty = "Robert'); DROP TABLE events;-- %_\\";
    let created = app
        .post(
            "/api/tickets",
            &customer.token,
            json!({"subject": nasty, "description": nasty, "priority": "low", "category": nasty, "tags": [nasty]}),
        )
        .await
        .expect(201);
    let token = created.consistency_token().unwrap();
    let id = created.body["id"].as_str().unwrap();
    let read = app.read_ticket(&agent.token, id, 1).await.expect(200);
    assert_eq!(read.body["subject"], nasty);
    let encoded: String = nasty.bytes().map(|b| format!("%{b:02X}")).collect();
    for filter in ["category", "tag"] {
        let found = app
            .request(
                Method::GET,
                &format!("/api/tickets?{filter}={encoded}"),
                Some(&agent.token),
                None,
                &[("X-Consistency-Token", &token)],
            )
            .await
            .expect(200);
        assert_eq!(found.body["total"], 1, "{filter}");
    }
    let wildcard = app
        .request(
            Method::GET,
            "/api/tickets?category=%25",
            Some(&agent.token),
            None,
            &[("X-Consistency-Token", &token)],
        )
        .await
        .expect(200);
    assert_eq!(wildcard.body["total"], 0);
}

/// What `/openapi.json` documents as a limit is a limit: found by schemathesis, a saved search
/// could store a subject longer than the contract allows, and then every answer carrying it
/// broke the contract. Text PostgreSQL cannot hold (U+0000) is the client's error, not a 500.
#[tokio::test]
async fn documented_limits_are_enforced_and_unstorable_text_is_refused() {
    let app = spawn_app().await;
    let agent = app.user("agent").await;
    let long_subject = "0".repeat(201);
    let problem = app
        .post(
            "/api/search/saved",
            &agent.token,
            json!({"name": "Long", "query": {"subject": long_subject}}),
        )
        .await
        .expect_problem(422, "validation-failed");
    assert_eq!(problem.body["field"], "query.subject", "{}", problem.body);
    let problem = app
        .post(
            "/api/search/advanced",
            &agent.token,
            json!({"subject": "0".repeat(201)}),
        )
        .await
        .expect_problem(422, "validation-failed");
    assert_eq!(problem.body["field"], "subject");
    app.post(
        "/api/search/saved",
        &agent.token,
        json!({"name": "Fits", "query": {"subject": "0".repeat(200)}}),
    )
    .await
    .expect(201);

    for path in [
        "/api/search/suggest?q=ab%00c",
        "/api/search?q=ab%00c",
        "/api/tickets?q=ab%00c",
    ] {
        let problem = app
            .get(path, &agent.token)
            .await
            .expect_problem(422, "validation-failed");
        assert_eq!(problem.body["field"], "text", "{path}");
    }
}
