//! Rate limits: per user, per client address, and harder on sign-in; 429 with `Retry-After`.

use docket_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, fresh_database, spawn_with, test_settings};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn sign_in_attempts_and_a_users_requests_are_limited_with_retry_after() {
    let (_, url) = fresh_database().await;
    let mut settings = test_settings(&url);
    settings.rate_limit_per_user = 5; // bursts to 10
    settings.sign_in_limit_per_minute = 3;
    let app = spawn_with(settings).await;
    let admin = app.admin().await; // the first of three sign-ins this minute
    for _ in 0..2 {
        app.request(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": ADMIN_EMAIL, "password": "wrong-password"})),
            &[],
        )
        .await
        .expect_problem(401, "unauthenticated");
    }
    // Even the right password is refused now: attempts are counted, not failures.
    let refused = app
        .request(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})),
            &[],
        )
        .await
        .expect_problem(429, "rate-limited");
    let wait: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    // The web app's sign-in draws on the same budget.
    let page = app
        .client
        .post(format!("{}/login", app.address))
        .form(&[("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 429);

    // One user: a burst of ten, then 429 until the bucket refills.
    let mut statuses = Vec::new();
    for _ in 0..30 {
        statuses.push(app.get("/api/auth/me", &admin.token).await.status.as_u16());
    }
    assert!(statuses[..10].iter().all(|s| *s == 200), "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    // Probes are never limited.
    for _ in 0..20 {
        app.request(Method::GET, "/health", None, None, &[])
            .await
            .expect(200);
    }
    // Refusals are counted, by the limit that refused.
    let metrics = app
        .request(Method::GET, "/metrics", None, None, &[])
        .await
        .expect(200);
    for limit in [
        "sign-in attempts from this address",
        "requests by this user",
    ] {
        assert!(
            metrics.text.contains(&format!(
                "docket_rate_limit_refusals_total{{limit=\"{limit}\"}}"
            )),
            "{limit}: {}",
            metrics.text
        );
    }
}

#[tokio::test]
async fn one_address_is_limited_whoever_it_claims_to_be() {
    let (_, url) = fresh_database().await;
    let mut settings = test_settings(&url);
    settings.rate_limit_per_address = 5; // bursts to 10
    let app = spawn_with(settings).await;
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let response = app
            .request(Method::GET, "/api/tickets", None, None, &[])
            .await;
        statuses.push(response.status.as_u16());
        if response.status == 429 {
            assert!(response.header("retry-after").is_some());
            assert_eq!(
                response.header("content-type").as_deref(),
                Some("application/problem+json")
            );
        }
    }
    // Refused before authentication: the first ten are 401s, then 429s.
    assert!(statuses[..10].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
}

#[tokio::test]
async fn each_api_key_has_a_budget_of_its_own() {
    let (_, url) = fresh_database().await;
    let mut settings = test_settings(&url);
    settings.rate_limit_per_user = 5; // bursts to 10
    let app = spawn_with(settings).await;
    let admin = app.admin().await;
    let (busy, _) = app
        .api_key(&admin.token, json!({"name": "busy", "role": "viewer"}))
        .await;
    let (quiet, _) = app
        .api_key(&admin.token, json!({"name": "quiet", "role": "viewer"}))
        .await;
    let mut statuses = Vec::new();
    let mut refusal = None;
    for _ in 0..30 {
        let response = app
            .request(
                Method::GET,
                "/api/auth/me",
                None,
                None,
                &[("X-API-Key", busy.as_str())],
            )
            .await;
        statuses.push(response.status.as_u16());
        if response.status == 429 {
            refusal = Some(response);
        }
    }
    assert!(statuses[..10].iter().all(|s| *s == 200), "{statuses:?}");
    let refusal = refusal.expect("the busy key is limited");
    assert!(refusal.header("retry-after").is_some());
    assert!(
        refusal.text.contains("requests with this API key"),
        "{}",
        refusal.text
    );
    // The same account's other key, and a made-up secret for the busy key's prefix, draw on
    // budgets of their own: nobody without the key can spend its budget.
    app.get("/api/auth/me", &quiet).await.expect(200);
    let forged = format!("{}x", busy);
    app.get("/api/auth/me", &forged)
        .await
        .expect_problem(401, "unauthenticated");
}
