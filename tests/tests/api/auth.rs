use docket_tests::{
    ADMIN_EMAIL, Session, TEST_JWT_SECRET, fresh_database, spawn_app, spawn_with, test_settings,
};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn anyone_registers_as_a_customer_and_signs_in() {
    let app = spawn_app().await;
    let registered = app
        .request(
            Method::POST,
            "/api/auth/register",
            None,
            Some(json!({"email": "Ann@Example.com", "password": "s3cret-pass", "full_name": "Ann Archer"})),
            &[],
        )
        .await
        .expect(201);
    assert_eq!(registered.body["role"], "customer");
    assert_eq!(registered.body["email"], "ann@example.com");
    assert_eq!(registered.body["active"], true);
    assert!(registered.body.get("password").is_none());
    assert!(
        registered
            .header("location")
            .unwrap()
            .starts_with("/api/users/")
    );

    let login = app
        .request(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": "ann@example.com", "password": "s3cret-pass"})),
            &[],
        )
        .await
        .expect(200);
    assert_eq!(login.body["token_type"], "Bearer");
    assert_eq!(login.body["expires_in"], 900);
    assert!(login.body["access_token"].as_str().unwrap().len() > 20);
    assert!(login.body["refresh_token"].as_str().unwrap().len() > 20);
    assert_eq!(login.body["user"]["id"], registered.body["id"]);
    assert_eq!(login.body["user"]["full_name"], "Ann Archer");
    assert_eq!(login.body["user"]["role"], "customer");

    let token = login.body["access_token"].as_str().unwrap();
    let me = app.get("/api/auth/me", token).await.expect(200);
    assert_eq!(me.body["email"], "ann@example.com");
}

#[tokio::test]
async fn registration_cannot_choose_a_role_or_reuse_an_email() {
    let app = spawn_app().await;
    app.request(
        Method::POST,
        "/api/auth/register",
        None,
        Some(json!({"email": "eve@example.com", "password": "password123", "full_name": "Eve", "role": "admin"})),
        &[],
    )
    .await
    .expect_problem(422, "validation-failed");
    let register = |email: &'static str| {
        app.request(
            Method::POST,
            "/api/auth/register",
            None,
            Some(json!({"email": email, "password": "password123", "full_name": "Eve"})),
            &[],
        )
    };
    register("eve@example.com").await.expect(201);
    register("EVE@example.com")
        .await
        .expect_problem(409, "email-taken");
    let weak = app
        .request(
            Method::POST,
            "/api/auth/register",
            None,
            Some(json!({"email": "weak@example.com", "password": "short", "full_name": "W"})),
            &[],
        )
        .await
        .expect_problem(422, "validation-failed");
    assert_eq!(weak.body["field"], "password");
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_401() {
    let app = spawn_app().await;
    let wrong = app
        .request(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": ADMIN_EMAIL, "password": "not-the-password"})),
            &[],
        )
        .await
        .expect_problem(401, "unauthenticated");
    let unknown = app
        .request(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": "nobody@example.com", "password": "not-the-password"})),
            &[],
        )
        .await
        .expect_problem(401, "unauthenticated");
    assert_eq!(wrong.body["detail"], unknown.body["detail"]);
}

#[tokio::test]
async fn requests_without_a_valid_token_are_401() {
    let app = spawn_app().await;
    let none = app
        .request(Method::GET, "/api/auth/me", None, None, &[])
        .await
        .expect_problem(401, "unauthenticated");
    assert_eq!(none.header("www-authenticate").as_deref(), Some("Bearer"));
    app.get("/api/auth/me", "garbage")
        .await
        .expect_problem(401, "unauthenticated");

    // A token signed with another key.
    let forged = jwt(
        "another-secret-entirely-another-secret",
        &json!({"sub": uuid::Uuid::new_v4().to_string(), "role": "admin", "iss": "docket",
                "typ": "access", "iat": 0, "exp": 4_000_000_000i64, "jti": "x"}),
    );
    app.get("/api/tickets", &forged)
        .await
        .expect_problem(401, "unauthenticated");

    // A correctly signed but expired token.
    let admin = app.admin().await;
    let expired = jwt(
        TEST_JWT_SECRET,
        &json!({"sub": admin.user_id.to_string(), "role": "admin", "iss": "docket",
                "typ": "access", "iat": 1_000, "exp": 2_000, "jti": "x"}),
    );
    let problem = app
        .get("/api/tickets", &expired)
        .await
        .expect_problem(401, "unauthenticated");
    assert!(problem.body["detail"].as_str().unwrap().contains("expired"));
}

fn jwt(secret: &str, claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn refresh(app: &docket_tests::TestApp, token: &str) -> docket_tests::TestResponse {
    app.request(
        Method::POST,
        "/api/auth/refresh",
        None,
        Some(json!({"refresh_token": token})),
        &[],
    )
    .await
}

#[tokio::test]
async fn a_refresh_token_works_once_and_its_reuse_revokes_the_family() {
    let app = spawn_app().await;
    let session = app.customer().await;
    let first = refresh(&app, &session.refresh_token).await.expect(200);
    let rotated = first.body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rotated, session.refresh_token);
    app.get("/api/auth/me", first.body["access_token"].as_str().unwrap())
        .await
        .expect(200);

    // The old token again: refused, and the rotated one dies with it.
    refresh(&app, &session.refresh_token)
        .await
        .expect_problem(401, "unauthenticated");
    refresh(&app, &rotated)
        .await
        .expect_problem(401, "unauthenticated");
}

#[tokio::test]
async fn signing_out_ends_the_refresh_token() {
    let app = spawn_app().await;
    let session = app.customer().await;
    app.post(
        "/api/auth/logout",
        &session.token,
        json!({"refresh_token": session.refresh_token}),
    )
    .await
    .expect(204);
    refresh(&app, &session.refresh_token)
        .await
        .expect_problem(401, "unauthenticated");
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_ends_every_session() {
    let app = spawn_app().await;
    let session: Session = app.customer().await;
    let wrong = app
        .put(
            "/api/auth/change-password",
            &session.token,
            json!({"current_password": "nope-nope", "new_password": "brand-new-pass"}),
        )
        .await
        .expect_problem(422, "validation-failed");
    assert_eq!(wrong.body["field"], "current_password");

    app.put(
        "/api/auth/change-password",
        &session.token,
        json!({"current_password": "password123", "new_password": "brand-new-pass"}),
    )
    .await
    .expect(204);
    refresh(&app, &session.refresh_token)
        .await
        .expect_problem(401, "unauthenticated");
    app.request(
        Method::POST,
        "/api/auth/login",
        None,
        Some(json!({"email": session.email, "password": "password123"})),
        &[],
    )
    .await
    .expect(401);
    app.login(&session.email, "brand-new-pass").await;

    // The log says the password changed, and nothing about what it is.
    let events: Vec<(String, serde_json::Value)> = sqlx::query_as(
        "SELECT event_type, payload FROM events WHERE aggregate_id = $1 ORDER BY sequence",
    )
    .bind(session.user_id.to_string())
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        events.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
        ["UserRegistered", "UserPasswordChanged"]
    );
    let everything = serde_json::to_string(&events).unwrap();
    assert!(!everything.contains("brand-new-pass") && !everything.contains("argon2"));
}

#[tokio::test]
async fn a_deactivated_account_loses_its_token_and_cannot_sign_in() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let agent = app.user("agent").await;
    app.get("/api/auth/me", &agent.token).await.expect(200);
    app.patch(
        &format!("/api/users/{}", agent.user_id),
        &admin.token,
        json!({"active": false}),
    )
    .await
    .expect(200);
    let problem = app
        .get("/api/auth/me", &agent.token)
        .await
        .expect_problem(401, "unauthenticated");
    assert!(
        problem.body["detail"]
            .as_str()
            .unwrap()
            .contains("deactivated")
    );
    app.request(
        Method::POST,
        "/api/auth/login",
        None,
        Some(json!({"email": agent.email, "password": "password123"})),
        &[],
    )
    .await
    .expect_problem(401, "unauthenticated");
}

/// Every process remembers the accounts behind the tokens it checks for a short time
/// (`DOCKET_ACCOUNT_FRESHNESS_MS`): the process that deactivates an account refuses its token
/// at once, every other one within that time.
#[tokio::test]
async fn a_deactivation_reaches_every_process_within_the_freshness_window() {
    let (_, url) = fresh_database().await;
    let mut settings = test_settings(&url);
    settings.account_freshness_ms = 300;
    let first = spawn_with(settings.clone()).await;
    let second = spawn_with(settings).await;
    let admin = first.admin().await;
    let agent = first.user("agent").await;
    // Both have checked the token, so both remember the account.
    first.get("/api/auth/me", &agent.token).await.expect(200);
    second.get("/api/auth/me", &agent.token).await.expect(200);

    first
        .request(
            Method::PATCH,
            &format!("/api/users/{}", agent.user_id),
            Some(&admin.token),
            Some(json!({"active": false})),
            &[],
        )
        .await
        .expect(200);
    first
        .get("/api/auth/me", &agent.token)
        .await
        .expect_problem(401, "unauthenticated");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let answer = second.get("/api/auth/me", &agent.token).await;
        if answer.status == 401 {
            break;
        }
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert!(
            std::time::Instant::now() < deadline,
            "the other process still accepts the token"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    second.stop().await;
}
