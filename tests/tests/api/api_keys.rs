//! API keys and service accounts, as an integrator uses them: an administrator makes a service
//! account and a key for it, the key drives the API (`Authorization: Bearer dk_…` or
//! `X-API-Key`), what it writes is recorded as the service with the key's id, and a revoked,
//! expired or misplaced key stops working with its own answer. The secret is shown once and is
//! nowhere after that.

use std::time::Duration;

use docket_tests::{Session, TestApp, spawn_app, spawn_app_on};
use reqwest::Method;
use serde_json::{Value, json};

/// A request with the key in `X-API-Key` rather than as a bearer token.
async fn with_header(app: &TestApp, method: Method, path: &str, key: &str) -> (u16, Value) {
    let response = app
        .request(method, path, None, None, &[("X-API-Key", key)])
        .await;
    (response.status.as_u16(), response.body)
}

async fn service_key(app: &TestApp, admin: &Session, role: &str) -> (String, Value) {
    let service = app.service_account(role).await;
    app.api_key(
        &admin.token,
        json!({"name": format!("{role} integration"), "role": role, "user_id": service}),
    )
    .await
}

#[tokio::test]
async fn a_service_account_works_through_its_key_and_is_recorded_as_a_service() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let customer = app.customer().await;

    // A service account has no password: none is accepted, and nobody can sign in as it.
    let email = format!("ci-{}@docket.test", uuid::Uuid::new_v4().simple());
    app.post(
        "/api/users",
        &admin.token,
        json!({"email": email, "password": "password123", "full_name": "CI", "role": "agent",
               "service": true}),
    )
    .await
    .expect_problem(422, "validation-failed");
    let made = app
        .post(
            "/api/users",
            &admin.token,
            json!({"email": email, "full_name": "CI exporter", "role": "agent", "service": true}),
        )
        .await
        .expect(201);
    assert_eq!(made.body["service"], true);
    let service = made.body["id"].as_str().unwrap().to_string();
    app.request(
        Method::POST,
        "/api/auth/login",
        None,
        Some(json!({"email": email, "password": ""})),
        &[],
    )
    .await
    .expect_problem(401, "unauthenticated");
    // People still need a password.
    app.post(
        "/api/users",
        &admin.token,
        json!({"email": format!("p-{email}"), "full_name": "P", "role": "agent"}),
    )
    .await
    .expect_problem(422, "validation-failed");

    let (key, answer) = app
        .api_key(
            &admin.token,
            json!({"name": "CI exporter", "role": "agent", "user_id": service}),
        )
        .await;
    let prefix = answer["prefix"].as_str().unwrap();
    assert!(key.starts_with(&format!("dk_{prefix}_")), "{key}");
    assert_eq!(answer["user_id"], json!(service));
    assert_eq!(answer["state"], "active");
    assert!(answer["last_used_at"].is_null());
    let key_id = answer["id"].as_str().unwrap().to_string();

    // The key as a bearer token writes; read back at once, as the key's account.
    let ticket = app
        .post(
            "/api/tickets",
            &key,
            json!({"subject": "Exported invoice is blank", "description": "From CI.",
                   "priority": "high", "customer_id": customer.user_id}),
        )
        .await
        .expect(201)
        .body;
    let id = ticket["id"].as_str().unwrap();
    let me = app.get("/api/auth/me", &key).await.expect(200);
    assert_eq!(me.body["id"], json!(service));
    // The same key in X-API-Key reads.
    let (status, read) = with_header(&app, Method::GET, &format!("/api/tickets/{id}"), &key).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["subject"], "Exported invoice is blank");

    // The history says a service did it, and with which key.
    let history = app
        .get(&format!("/api/tickets/{id}/history"), &admin.token)
        .await
        .expect(200);
    let created = &history.body["events"][0];
    assert_eq!(created["type"], "TicketCreated");
    assert_eq!(created["actor"]["id"], json!(service));
    assert_eq!(created["actor"]["service"], true);
    assert_eq!(created["actor"]["api_key_id"], json!(key_id));
    // A person's change is a person's.
    app.post(
        &format!("/api/tickets/{id}/comments"),
        &admin.token,
        json!({"body": "Looking."}),
    )
    .await
    .expect(201);
    let history = app
        .get(&format!("/api/tickets/{id}/history"), &admin.token)
        .await
        .expect(200);
    let by_admin = history.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "CommentAdded")
        .unwrap();
    assert_eq!(by_admin["actor"]["service"], false);
    assert!(by_admin["actor"]["api_key_id"].is_null());

    // The key's first use and last use are kept, and the log has that it was made and used.
    let listed = app
        .get(&format!("/api/api-keys?user_id={service}"), &admin.token)
        .await
        .expect(200);
    assert_eq!(listed.body["total"], 1);
    let entry = &listed.body["items"][0];
    assert_eq!(entry["id"], json!(key_id));
    assert!(entry["first_used_at"].is_string(), "{entry}");
    assert!(entry["last_used_at"].is_string(), "{entry}");
    assert_eq!(entry["last_used_ip"], "127.0.0.1");
    assert!(entry.get("key").is_none(), "{entry}");
    let types: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE aggregate_type = 'api_key' AND aggregate_id = $1
          ORDER BY sequence",
    )
    .bind(&key_id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(types, ["ApiKeyCreated", "ApiKeyFirstUsed"]);

    // Revoked: refused at once, and the log says who revoked it.
    app.delete(&format!("/api/api-keys/{key_id}"), &admin.token)
        .await
        .expect(204);
    let refused = app
        .get(&format!("/api/tickets/{id}"), &key)
        .await
        .expect_problem(401, "unauthenticated");
    assert!(
        refused.body["detail"].as_str().unwrap().contains("revoked"),
        "{}",
        refused.text
    );
    let (status, _) = with_header(&app, Method::GET, "/api/auth/me", &key).await;
    assert_eq!(status, 401);
    let gone = app
        .get(&format!("/api/api-keys/{key_id}"), &admin.token)
        .await
        .expect(200);
    assert_eq!(gone.body["state"], "revoked");
    // Revoked keys are left out of the list unless asked for.
    let listed = app
        .get(&format!("/api/api-keys?user_id={service}"), &admin.token)
        .await
        .expect(200);
    assert_eq!(listed.body["total"], 0);
    let listed = app
        .get(
            &format!("/api/api-keys?user_id={service}&include_revoked=true"),
            &admin.token,
        )
        .await
        .expect(200);
    assert_eq!(listed.body["total"], 1);
    app.delete(&format!("/api/api-keys/{key_id}"), &admin.token)
        .await
        .expect_problem(409, "already-revoked");

    // Deactivating the account stops its other keys too.
    let (second, _) = app
        .api_key(
            &admin.token,
            json!({"name": "second", "role": "viewer", "user_id": service}),
        )
        .await;
    app.get("/api/tickets", &second).await.expect(200);
    app.patch(
        &format!("/api/users/{service}"),
        &admin.token,
        json!({"active": false}),
    )
    .await
    .expect(200);
    app.get("/api/tickets", &second)
        .await
        .expect_problem(401, "unauthenticated");
}

#[tokio::test]
async fn personal_keys_stay_within_their_owners_role_and_cannot_make_keys() {
    let app = spawn_app().await;
    let agent = app.user("agent").await;
    let manager = app.user("manager").await;
    let admin = app.admin().await;

    let refused = app
        .post(
            "/api/api-keys",
            &agent.token,
            json!({"name": "too much", "role": "manager"}),
        )
        .await
        .expect_problem(422, "validation-failed");
    assert_eq!(refused.body["field"], "role");
    let (viewer_key, answer) = app
        .api_key(
            &agent.token,
            json!({"name": "read-only dashboard", "role": "viewer"}),
        )
        .await;
    assert_eq!(answer["user_id"], json!(agent.user_id));
    // A viewer key of an agent reads but does not write.
    app.get("/api/tickets", &viewer_key).await.expect(200);
    let customer = app.customer().await;
    app.post(
        "/api/tickets",
        &viewer_key,
        json!({"subject": "x", "description": "y", "priority": "low",
               "customer_id": customer.user_id}),
    )
    .await
    .expect_problem(403, "forbidden");
    // A key cannot make another key.
    let minted = app
        .post(
            "/api/api-keys",
            &viewer_key,
            json!({"name": "copy", "role": "viewer"}),
        )
        .await
        .expect_problem(403, "forbidden");
    assert!(minted.text.contains("signed-in person"), "{}", minted.text);

    // Only administrators make keys for others, and only for service accounts.
    let service = app.service_account("agent").await;
    app.post(
        "/api/api-keys",
        &manager.token,
        json!({"name": "x", "role": "agent", "user_id": service}),
    )
    .await
    .expect_problem(403, "forbidden");
    let person = app
        .post(
            "/api/api-keys",
            &admin.token,
            json!({"name": "x", "role": "agent", "user_id": agent.user_id}),
        )
        .await
        .expect_problem(422, "validation-failed");
    assert_eq!(person.body["field"], "user_id");
    // Customers have no keys.
    app.post(
        "/api/api-keys",
        &customer.token,
        json!({"name": "mine", "role": "viewer"}),
    )
    .await
    .expect_problem(403, "forbidden");
    // Bad input is named.
    for (body, field) in [
        (
            json!({"name": "x", "role": "agent", "allowed_ips": ["10.0.0.1", "nonsense"]}),
            "allowed_ips[1]",
        ),
        (
            json!({"name": "x", "role": "agent", "expires_at": "2001-01-01T00:00:00Z"}),
            "expires_at",
        ),
        (json!({"name": "", "role": "agent"}), "name"),
    ] {
        let refused = app
            .post("/api/api-keys", &agent.token, body)
            .await
            .expect(422);
        assert_eq!(refused.body["field"], field, "{}", refused.text);
    }

    // Each sees their own keys; only administrators see others'.
    let mine = app.get("/api/api-keys", &agent.token).await.expect(200);
    assert_eq!(mine.body["total"], 1);
    app.get(
        &format!("/api/api-keys?user_id={}", admin.user_id),
        &agent.token,
    )
    .await
    .expect_problem(403, "forbidden");
    let key_id = answer["id"].as_str().unwrap();
    app.get(&format!("/api/api-keys/{key_id}"), &manager.token)
        .await
        .expect_problem(404, "not-found");
    app.delete(&format!("/api/api-keys/{key_id}"), &manager.token)
        .await
        .expect_problem(404, "not-found");
    let everyone = app.get("/api/api-keys", &admin.token).await.expect(200);
    assert_eq!(everyone.body["total"], 1);

    // A person revokes their own key.
    app.delete(&format!("/api/api-keys/{key_id}"), &agent.token)
        .await
        .expect(204);
    app.get("/api/tickets", &viewer_key)
        .await
        .expect_problem(401, "unauthenticated");
}

#[tokio::test]
async fn an_expired_key_and_a_key_used_from_elsewhere_are_told_apart() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let (expiring, _) = app
        .api_key(
            &admin.token,
            json!({"name": "short-lived", "role": "viewer", "expires_at": soon}),
        )
        .await;
    app.get("/api/tickets", &expiring).await.expect(200);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let expired = app
        .get("/api/tickets", &expiring)
        .await
        .expect_problem(401, "api-key-expired");
    assert!(
        expired.body["detail"].as_str().unwrap().contains("expired"),
        "{}",
        expired.text
    );

    // The tests call from 127.0.0.1.
    let (elsewhere, _) = app
        .api_key(
            &admin.token,
            json!({"name": "office only", "role": "viewer", "allowed_ips": ["10.0.0.0/8"]}),
        )
        .await;
    let refused = app
        .get("/api/tickets", &elsewhere)
        .await
        .expect_problem(403, "api-key-address-refused");
    assert!(refused.text.contains("127.0.0.1"), "{}", refused.text);
    let (here, answer) = app
        .api_key(
            &admin.token,
            json!({"name": "this host", "role": "viewer",
                   "allowed_ips": ["10.0.0.0/8", "127.0.0.0/31"]}),
        )
        .await;
    assert_eq!(answer["allowed_ips"], json!(["10.0.0.0/8", "127.0.0.0/31"]));
    app.get("/api/tickets", &here).await.expect(200);
    // A key that is not one: a made-up secret of a real prefix, and garbage.
    let prefix = answer["prefix"].as_str().unwrap();
    for wrong in [
        format!("dk_{prefix}_notTheSecret"),
        "dk_nonsense".to_string(),
    ] {
        app.get("/api/tickets", &wrong)
            .await
            .expect_problem(401, "unauthenticated");
    }
}

#[tokio::test]
async fn a_key_revoked_through_one_server_stops_on_another_within_the_freshness_window() {
    let first = spawn_app().await;
    let second = spawn_app_on(&first.database_url).await;
    let admin = first.admin().await;
    let (key, answer) = service_key(&first, &admin, "agent").await;
    // The second server knows the key (and remembers it).
    second.get("/api/tickets", &key).await.expect(200);
    let key_id = answer["id"].as_str().unwrap();
    first
        .delete(&format!("/api/api-keys/{key_id}"), &admin.token)
        .await
        .expect(204);
    first
        .get("/api/tickets", &key)
        .await
        .expect_problem(401, "unauthenticated");
    // DOCKET_ACCOUNT_FRESHNESS_MS is 1 s: the second server refuses the key well within 5 s.
    let mut refused = false;
    for _ in 0..50 {
        if second.get("/api/tickets", &key).await.status.as_u16() == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "the second server still accepts the revoked key");
    second
        .get("/api/tickets", &key)
        .await
        .expect_problem(401, "unauthenticated");
}

#[tokio::test]
async fn no_secret_is_kept_or_shown_after_the_key_is_made() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let service = app.service_account("manager").await;
    // Made with an Idempotency-Key: the repeat answers without the secret.
    let request = json!({"name": "nightly", "role": "manager", "user_id": service});
    let made = app
        .request(
            Method::POST,
            "/api/api-keys",
            Some(&admin.token),
            Some(request.clone()),
            &[("Idempotency-Key", "make-nightly-key")],
        )
        .await
        .expect(201);
    let key = made.body["key"].as_str().unwrap().to_string();
    let secret = key.rsplit('_').next().unwrap().to_string();
    assert!(secret.len() >= 32, "{key}");
    let repeated = app
        .request(
            Method::POST,
            "/api/api-keys",
            Some(&admin.token),
            Some(request),
            &[("Idempotency-Key", "make-nightly-key")],
        )
        .await
        .expect(201);
    assert_eq!(
        repeated.header("idempotency-replayed").as_deref(),
        Some("true")
    );
    assert!(repeated.body["key"].is_null(), "{}", repeated.text);
    assert_eq!(repeated.body["id"], made.body["id"]);

    // Use it, revoke it, and look everywhere.
    let customer = app.customer().await;
    app.post(
        "/api/tickets",
        &key,
        json!({"subject": "s", "description": "d", "priority": "low",
               "customer_id": customer.user_id}),
    )
    .await
    .expect(201);
    let key_id = made.body["id"].as_str().unwrap();
    app.delete(&format!("/api/api-keys/{key_id}"), &admin.token)
        .await
        .expect(204);
    let mut shown = Vec::new();
    for path in [
        "/api/api-keys?include_revoked=true".to_string(),
        format!("/api/api-keys/{key_id}"),
        format!("/api/audit?aggregate_id={key_id}"),
        "/api/audit?page_size=100".to_string(),
        format!("/api/users/{service}"),
    ] {
        let response = app.get(&path, &admin.token).await;
        shown.push((path, response.text));
    }
    let audit = &shown[2].1;
    assert!(audit.contains("ApiKeyCreated"), "{audit}");
    assert!(audit.contains("ApiKeyRevoked"), "{audit}");
    for (path, text) in &shown {
        assert!(!text.contains(&secret), "{path} shows the secret");
    }
    // Not in the log, not in stored answers, not in the key's row.
    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT payload::text || metadata::text FROM events
         UNION ALL SELECT coalesce(convert_from(body, 'UTF8'), '') FROM idempotency_keys
         UNION ALL SELECT row_to_json(k)::text FROM api_keys k",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(stored.len() > 3);
    for text in &stored {
        assert!(!text.contains(&secret), "stored: {text}");
    }
}

#[tokio::test]
async fn the_openapi_document_declares_both_ways_of_sending_a_key() {
    let app = spawn_app().await;
    let document = app
        .request(Method::GET, "/openapi.json", None, None, &[])
        .await
        .expect(200)
        .body;
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["BearerAuth"]["type"], "http");
    assert_eq!(schemes["BearerAuth"]["scheme"], "bearer");
    assert_eq!(schemes["ApiKeyAuth"]["type"], "apiKey");
    assert_eq!(schemes["ApiKeyAuth"]["in"], "header");
    assert_eq!(schemes["ApiKeyAuth"]["name"], "X-API-Key");
    let security = &document["paths"]["/api/tickets"]["get"]["security"];
    assert_eq!(
        security,
        &json!([{"BearerAuth": []}, {"ApiKeyAuth": []}]),
        "{security}"
    );
}
