//! The headers on every response (issue 24): a sample of routes, answers and errors, signed in
//! and not, and CORS for the origins configured.

use docket_tests::{TestApp, fresh_database, spawn_app, spawn_with, test_settings};
use reqwest::Method;

const ALLOWED: &str = "https://app.example.com";

/// A request of the sample: method, path, headers, and the status it answers.
type Case<'a> = (Method, &'a str, &'a [(&'a str, &'a str)], u16);

async fn behind_https_with_one_origin() -> TestApp {
    let (_, url) = fresh_database().await;
    let mut settings = test_settings(&url);
    settings.public_url = Some("https://help.example.com".into());
    settings.cors_origins = vec![ALLOWED.into()];
    spawn_with(settings).await
}

async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut request = client.request(method, format!("{}{path}", app.address));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

fn value(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[tokio::test]
async fn every_response_carries_the_security_headers_errors_and_the_explorer_included() {
    let app = behind_https_with_one_origin().await;
    let agent = app.user("agent").await;
    let bearer = format!("Bearer {}", agent.token);
    let signed_in = [("authorization", bearer.as_str())];
    let cases: [Case; 9] = [
        (Method::GET, "/health", &[], 200),
        (Method::GET, "/api/tickets", &signed_in, 200),
        (Method::GET, "/api/tickets", &[], 401),
        (Method::GET, "/api/tickets/not-a-ticket", &signed_in, 400),
        (Method::GET, "/api/nothing-here", &signed_in, 404),
        (Method::DELETE, "/api/tickets", &signed_in, 405),
        (Method::GET, "/docs", &[], 200),
        (Method::GET, "/openapi.json", &[], 200),
        (Method::GET, "/login", &[], 200),
    ];
    for (method, path, headers, status) in cases {
        let response = raw(&app, method.clone(), path, headers).await;
        let what = format!("{method} {path}");
        assert_eq!(response.status().as_u16(), status, "{what}");
        assert_eq!(
            value(&response, "x-content-type-options").as_deref(),
            Some("nosniff"),
            "{what}"
        );
        assert_eq!(
            value(&response, "referrer-policy").as_deref(),
            Some("no-referrer"),
            "{what}"
        );
        assert_eq!(
            value(&response, "strict-transport-security").as_deref(),
            Some("max-age=31536000; includeSubDomains"),
            "{what}: Docket is reached over https"
        );
        if !headers.is_empty() {
            assert_eq!(
                value(&response, "cache-control").as_deref(),
                Some("no-store"),
                "{what}: an authenticated answer is never cached"
            );
        }
    }
}

#[tokio::test]
async fn without_an_https_address_there_is_no_strict_transport_and_no_cors() {
    let app = spawn_app().await;
    let response = raw(&app, Method::GET, "/health", &[("origin", ALLOWED)]).await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(value(&response, "strict-transport-security"), None);
    assert_eq!(value(&response, "access-control-allow-origin"), None);
    assert_eq!(
        value(&response, "x-content-type-options").as_deref(),
        Some("nosniff")
    );
    let preflight = raw(
        &app,
        Method::OPTIONS,
        "/api/tickets",
        &[
            ("origin", ALLOWED),
            ("access-control-request-method", "GET"),
        ],
    )
    .await;
    assert_eq!(
        preflight.status().as_u16(),
        403,
        "no origin is allowed by default"
    );
}

#[tokio::test]
async fn cors_answers_the_allowed_origin_and_refuses_the_others() {
    let app = behind_https_with_one_origin().await;
    let agent = app.user("agent").await;
    let preflight = raw(
        &app,
        Method::OPTIONS,
        "/api/tickets",
        &[
            ("origin", ALLOWED),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization, content-type, if-match",
            ),
        ],
    )
    .await;
    assert_eq!(preflight.status().as_u16(), 204);
    assert_eq!(
        value(&preflight, "access-control-allow-origin").as_deref(),
        Some(ALLOWED)
    );
    let methods = value(&preflight, "access-control-allow-methods").unwrap_or_default();
    assert!(
        methods.contains("POST") && methods.contains("PATCH"),
        "{methods}"
    );
    let allowed = value(&preflight, "access-control-allow-headers").unwrap_or_default();
    for wanted in ["authorization", "content-type", "if-match", "x-api-key"] {
        assert!(allowed.contains(wanted), "{wanted} in {allowed}");
    }
    assert!(value(&preflight, "access-control-max-age").is_some());

    let refused = raw(
        &app,
        Method::OPTIONS,
        "/api/tickets",
        &[
            ("origin", "https://evil.example.com"),
            ("access-control-request-method", "GET"),
        ],
    )
    .await;
    assert_eq!(refused.status().as_u16(), 403);
    assert_eq!(value(&refused, "access-control-allow-origin"), None);
    let problem: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(
        problem["type"],
        "https://docket.dev/problems/cors-origin-refused"
    );

    let bearer = format!("Bearer {}", agent.token);
    let read = raw(
        &app,
        Method::GET,
        "/api/tickets",
        &[("origin", ALLOWED), ("authorization", &bearer)],
    )
    .await;
    assert_eq!(read.status().as_u16(), 200);
    assert_eq!(
        value(&read, "access-control-allow-origin").as_deref(),
        Some(ALLOWED)
    );
    let exposed = value(&read, "access-control-expose-headers").unwrap_or_default();
    assert!(
        exposed.contains("etag") && exposed.contains("x-consistency-token"),
        "{exposed}"
    );
    let other = raw(
        &app,
        Method::GET,
        "/api/tickets",
        &[
            ("origin", "https://evil.example.com"),
            ("authorization", &bearer),
        ],
    )
    .await;
    assert_eq!(
        other.status().as_u16(),
        200,
        "the server answers; the browser will not hand it over"
    );
    assert_eq!(value(&other, "access-control-allow-origin"), None);
}
