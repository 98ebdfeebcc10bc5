//! Webhooks as an integrator meets them, against a real HTTP receiver started by the test that
//! verifies every signature with the `standardwebhooks` crate: what an endpoint subscribed to
//! arrives signed and nothing else does; a receiver that is down gets everything once it is
//! back; a slow receiver does not delay a fast one; a 410 disables the endpoint; deliveries are
//! listed with every attempt and can be sent again; a rotated secret signs beside the old one.

use std::collections::HashSet;
use std::time::Duration;

use docket_tests::receiver::{Received, Receiver};
use docket_tests::{Session, TestApp, fresh_database, spawn_app, spawn_with, test_settings};
use serde_json::{Value, json};

const PATIENCE: Duration = Duration::from_secs(20);

/// Adds an endpoint for `receiver` and makes the receiver trust its secret.
async fn endpoint(app: &TestApp, admin: &Session, receiver: &Receiver, body: Value) -> Value {
    let mut body = body;
    body["url"] = json!(receiver.url());
    let made = app
        .post("/api/webhooks", &admin.token, body)
        .await
        .expect(201);
    let secret = made.body["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    receiver.trust(secret);
    made.body
}

fn of_type<'a>(received: &'a [Received], kind: &str) -> Vec<&'a Received> {
    received.iter().filter(|r| r.body["type"] == kind).collect()
}

/// A server, its admin, a customer, and a receiver with an endpoint for `ticket.created`.
async fn one_endpoint() -> (TestApp, Session, Session, Receiver, Value) {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    let receiver = Receiver::start().await;
    let made = endpoint(
        &app,
        &admin,
        &receiver,
        json!({"events": ["ticket.created"]}),
    )
    .await;
    (app, admin, customer, receiver, made)
}

async fn open_ticket(app: &TestApp, customer: &Session, subject: &str) -> String {
    app.ticket_for(customer, subject).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn an_endpoint_gets_what_it_subscribed_to_signed_and_nothing_else() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let agent = app.user("agent").await;
    let customer = app.customer().await;
    let public = Receiver::start().await;
    let everything = Receiver::start().await;
    let made = endpoint(
        &app,
        &admin,
        &public,
        json!({"events": ["ticket.created", "comment.added", "ticket.resolved"],
               "description": "CRM sync"}),
    )
    .await;
    assert_eq!(made["state"], "active");
    assert_eq!(made["include_internal"], false);
    endpoint(
        &app,
        &admin,
        &everything,
        json!({"events": ["comment.added"], "include_internal": true}),
    )
    .await;

    let id = open_ticket(&app, &customer, "Invoices are blank").await;
    for (body, internal) in [
        ("Checking the exporter.", true),
        ("Fixed, try again.", false),
    ] {
        app.post(
            &format!("/api/tickets/{id}/comments"),
            &agent.token,
            json!({"body": body, "internal": internal}),
        )
        .await
        .expect(201);
    }
    app.patch(
        &format!("/api/tickets/{id}/status"),
        &agent.token,
        json!({"status": "resolved"}),
    )
    .await
    .expect(200);

    let received = public
        .wait_for(PATIENCE, |r| !of_type(r, "ticket.resolved").is_empty())
        .await;
    let types: Vec<&str> = received
        .iter()
        .filter_map(|r| r.body["type"].as_str())
        .collect();
    assert_eq!(
        types,
        ["ticket.created", "comment.added", "ticket.resolved"],
        "in log order, the internal note left out: {received:#?}"
    );
    for delivery in &received {
        assert!(delivery.verified, "signature: {delivery:#?}");
        assert!(delivery.webhook_id.starts_with("msg_"));
        assert_eq!(delivery.body["data"]["ticket_id"], json!(id));
        assert!(delivery.timestamp.parse::<i64>().is_ok());
        assert!(delivery.signature.starts_with("v1,"));
    }
    assert_eq!(
        received[1].body["data"]["event"]["body"],
        "Fixed, try again."
    );
    assert_eq!(received[0].body["data"]["event"]["number"], "TKT-000001");
    // The endpoint that asked for internal notes has both comments.
    let both = everything
        .wait_for(PATIENCE, |r| of_type(r, "comment.added").len() >= 2)
        .await;
    let bodies: Vec<&str> = both
        .iter()
        .filter_map(|r| r.body["data"]["event"]["body"].as_str())
        .collect();
    assert_eq!(bodies, ["Checking the exporter.", "Fixed, try again."]);

    // Every attempt is listed with what the receiver said.
    let deliveries = app
        .get(
            &format!("/api/webhooks/{}/deliveries", made["id"].as_str().unwrap()),
            &admin.token,
        )
        .await
        .expect(200);
    assert_eq!(deliveries.body["total"], 3);
    let first = &deliveries.body["items"][0];
    assert_eq!(first["state"], "delivered");
    assert_eq!(first["attempts"][0]["status_code"], 200);
    assert_eq!(first["attempts"][0]["response"], "thanks");
    assert!(first["message_id"].as_str().unwrap().starts_with("msg_"));
    let listed = app.get("/api/webhooks", &admin.token).await.expect(200);
    assert_eq!(listed.body["total"], 2);
    assert!(listed.body["items"][0]["last_success_at"].is_string());
    // The secret is never shown again.
    assert!(listed.body["items"][0].get("secret").is_none());
}

#[tokio::test]
async fn only_admins_configure_webhooks_and_bad_input_is_named() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let manager = app.user("manager").await;
    app.post(
        "/api/webhooks",
        &manager.token,
        json!({"url": "https://hooks.example.com/", "events": ["ticket.created"]}),
    )
    .await
    .expect_problem(403, "forbidden");
    app.get("/api/webhooks", &manager.token)
        .await
        .expect_problem(403, "forbidden");
    for (body, field) in [
        (
            json!({"url": "https://hooks.example.com/", "events": ["ticket.created", "ticket.exploded"]}),
            "events[1]",
        ),
        (
            json!({"url": "https://hooks.example.com/", "events": []}),
            "events",
        ),
        (
            json!({"url": "ftp://hooks.example.com/", "events": ["ticket.created"]}),
            "url",
        ),
    ] {
        let refused = app
            .post("/api/webhooks", &admin.token, body)
            .await
            .expect_problem(422, "validation-failed");
        assert_eq!(refused.body["field"], field, "{}", refused.text);
    }
    app.get(
        &format!("/api/webhooks/{}", uuid::Uuid::new_v4()),
        &admin.token,
    )
    .await
    .expect_problem(404, "not-found");
}

#[tokio::test]
async fn private_addresses_are_refused_unless_allowed() {
    let (_, url) = fresh_database().await;
    let mut settings = test_settings(&url);
    settings.webhook_allow_private = false;
    let app = spawn_with(settings).await;
    let admin = app.admin().await;
    for private in [
        "http://127.0.0.1:9000/hook",
        "http://localhost:9000/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://10.0.0.7/hook",
    ] {
        let refused = app
            .post(
                "/api/webhooks",
                &admin.token,
                json!({"url": private, "events": ["ticket.created"]}),
            )
            .await
            .expect_problem(422, "validation-failed");
        assert_eq!(refused.body["field"], "url");
        assert!(
            refused.text.contains("private or local address"),
            "{}",
            refused.text
        );
    }
}

#[tokio::test]
async fn a_receiver_that_is_down_gets_every_event_once_it_is_back() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    let mut receiver = Receiver::start().await;
    let made = endpoint(
        &app,
        &admin,
        &receiver,
        json!({"events": ["ticket.created"]}),
    )
    .await;
    receiver.go_down().await;
    let mut opened = HashSet::new();
    for n in 0..15 {
        opened.insert(open_ticket(&app, &customer, &format!("While down {n}")).await);
    }
    // Attempts fail while it is down, and each is recorded.
    let webhook = made["id"].as_str().unwrap();
    let mut failed = false;
    for _ in 0..100 {
        let deliveries = app
            .get(&format!("/api/webhooks/{webhook}/deliveries"), &admin.token)
            .await
            .expect(200);
        failed = deliveries.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| {
                d["attempts"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty() && a[0]["error"].is_string())
            });
        if failed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        failed,
        "no failed attempt was recorded while the receiver was down"
    );
    let health = app
        .get(&format!("/api/webhooks/{webhook}"), &admin.token)
        .await
        .expect(200);
    assert!(health.body["failing_since"].is_string(), "{}", health.text);

    receiver.resume().await;
    let received = receiver
        .wait_for(PATIENCE, |r| {
            r.iter().filter(|d| d.applied).count() >= opened.len()
        })
        .await;
    let arrived: HashSet<String> = received
        .iter()
        .filter(|d| d.applied)
        .filter_map(|d| d.body["data"]["ticket_id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(arrived, opened, "every ticket's event arrived");
    assert!(received.iter().all(|d| d.verified));
    let after = app
        .get(&format!("/api/webhooks/{webhook}"), &admin.token)
        .await
        .expect(200);
    assert!(after.body["failing_since"].is_null(), "{}", after.text);
}

#[tokio::test]
async fn a_slow_receiver_does_not_delay_a_fast_one() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    let slow = Receiver::start().await;
    slow.take_time(Duration::from_millis(1500));
    let fast = Receiver::start().await;
    endpoint(&app, &admin, &slow, json!({"events": ["ticket.created"]})).await;
    endpoint(&app, &admin, &fast, json!({"events": ["ticket.created"]})).await;
    for n in 0..12 {
        open_ticket(&app, &customer, &format!("Rush {n}")).await;
    }
    let quick = fast
        .wait_for(PATIENCE, |r| r.iter().filter(|d| d.applied).count() >= 12)
        .await;
    assert_eq!(quick.iter().filter(|d| d.applied).count(), 12);
    // The slow one takes 1.5 s a request, a few at a time: it cannot have them all yet.
    let behind = slow.received().len();
    assert!(
        behind < 12,
        "the slow receiver had {behind} when the fast one had all 12"
    );
    let eventually = slow
        .wait_for(PATIENCE, |r| r.iter().filter(|d| d.applied).count() >= 12)
        .await;
    assert_eq!(eventually.iter().filter(|d| d.applied).count(), 12);
}

#[tokio::test]
async fn a_410_disables_the_endpoint_until_it_is_enabled_again() {
    let (app, admin, customer, receiver, made) = one_endpoint().await;
    receiver.answer(410);
    let webhook = made["id"].as_str().unwrap();
    open_ticket(&app, &customer, "Before the endpoint went away").await;
    let mut state = Value::Null;
    for _ in 0..100 {
        let found = app
            .get(&format!("/api/webhooks/{webhook}"), &admin.token)
            .await
            .expect(200);
        state = found.body.clone();
        if found.body["state"] == "disabled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state["state"], "disabled", "{state}");
    assert_eq!(state["disabled_reason"], "gone");
    assert_eq!(state["enabled"], true);
    // The log says Docket did it.
    let disabled: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE aggregate_type = 'webhook' AND aggregate_id = $1
          ORDER BY sequence",
    )
    .bind(webhook)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(disabled, ["WebhookCreated", "WebhookDisabled"]);
    // Staff get an alert for the endpoint.
    let alerts = app
        .items_when(
            "/api/alerts?state=active",
            &admin.token,
            Duration::from_secs(15),
            |items| items.iter().any(|a| a["kind"] == "webhook_failing"),
        )
        .await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0]["cause"], format!("webhook:{webhook}"));
    // Events while it is disabled are not queued for it: the endpoint said it is gone.
    let before = receiver.received().len();
    open_ticket(&app, &customer, "While disabled").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.received().len(), before);
    let deliveries = app
        .get(&format!("/api/webhooks/{webhook}/deliveries"), &admin.token)
        .await
        .expect(200);
    assert_eq!(deliveries.body["total"], 1, "{}", deliveries.text);
    let gone = deliveries.body["items"][0].clone();
    assert_eq!(gone["state"], "failed");
    assert_eq!(gone["attempts"][0]["status_code"], 410);

    // The receiver is back; an admin enables the endpoint: new events flow again, and the
    // delivery that met the 410 can be sent again.
    receiver.answer(200);
    let enabled = app
        .patch(
            &format!("/api/webhooks/{webhook}"),
            &admin.token,
            json!({"enabled": true}),
        )
        .await
        .expect(200);
    assert_eq!(enabled.body["state"], "active");
    assert!(enabled.body["disabled_reason"].is_null());
    let after = open_ticket(&app, &customer, "After it came back").await;
    app.post(
        &format!(
            "/api/webhooks/{webhook}/deliveries/{}/redeliver",
            gone["id"].as_str().unwrap()
        ),
        &admin.token,
        json!({}),
    )
    .await
    .expect(202);
    let received = receiver
        .wait_for(PATIENCE, |r| r.iter().filter(|d| d.applied).count() >= 2)
        .await;
    let applied: HashSet<&str> = received
        .iter()
        .filter(|d| d.applied)
        .filter_map(|d| d.body["data"]["ticket_id"].as_str())
        .collect();
    assert!(applied.contains(after.as_str()), "{received:#?}");
    assert_eq!(applied.len(), 2, "{received:#?}");
}

#[tokio::test]
async fn a_test_ping_and_a_redelivery_arrive_with_their_ids() {
    let (app, admin, customer, receiver, made) = one_endpoint().await;
    let webhook = made["id"].as_str().unwrap();
    let queued = app
        .post(
            &format!("/api/webhooks/{webhook}/test"),
            &admin.token,
            json!({}),
        )
        .await
        .expect(202);
    assert!(queued.body["delivery_id"].is_string());
    let pinged = receiver
        .wait_for(PATIENCE, |r| !of_type(r, "webhook.ping").is_empty())
        .await;
    let ping = of_type(&pinged, "webhook.ping");
    assert_eq!(ping.len(), 1);
    assert!(ping[0].verified);
    assert_eq!(ping[0].body["data"]["webhook_id"], json!(webhook));

    open_ticket(&app, &customer, "Send me twice").await;
    receiver
        .wait_for(PATIENCE, |r| !of_type(r, "ticket.created").is_empty())
        .await;
    let deliveries = app
        .get(&format!("/api/webhooks/{webhook}/deliveries"), &admin.token)
        .await
        .expect(200);
    let created = deliveries.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["type"] == "ticket.created")
        .unwrap()
        .clone();
    app.post(
        &format!(
            "/api/webhooks/{webhook}/deliveries/{}/redeliver",
            created["id"].as_str().unwrap()
        ),
        &admin.token,
        json!({}),
    )
    .await
    .expect(202);
    let again = receiver
        .wait_for(PATIENCE, |r| of_type(r, "ticket.created").len() >= 2)
        .await;
    let both = of_type(&again, "ticket.created");
    assert_eq!(both.len(), 2);
    assert_eq!(
        both[0].webhook_id, both[1].webhook_id,
        "the same webhook-id"
    );
    assert_eq!(both[1].webhook_id, created["message_id"].as_str().unwrap());
    assert!(both[0].applied && !both[1].applied, "applied once");
    app.post(
        &format!(
            "/api/webhooks/{webhook}/deliveries/{}/redeliver",
            uuid::Uuid::new_v4()
        ),
        &admin.token,
        json!({}),
    )
    .await
    .expect_problem(404, "not-found");
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_old_one() {
    let (app, admin, customer, old_only, made) = one_endpoint().await;
    let webhook = made["id"].as_str().unwrap();
    let rotated = app
        .post(
            &format!("/api/webhooks/{webhook}/rotate-secret"),
            &admin.token,
            json!({}),
        )
        .await
        .expect(200);
    let new_secret = rotated.body["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, made["secret"].as_str().unwrap());
    assert!(rotated.body["previous_valid_until"].is_string());
    open_ticket(&app, &customer, "After the rotation").await;
    let received = old_only.wait_for(PATIENCE, |r| !r.is_empty()).await;
    let delivery = &received[0];
    // Two signatures, so a receiver holding either secret accepts it.
    assert_eq!(
        delivery.signature.split(' ').count(),
        2,
        "{}",
        delivery.signature
    );
    assert!(
        delivery.verifies_with(made["secret"].as_str().unwrap()),
        "the old secret"
    );
    assert!(delivery.verifies_with(&new_secret), "the new secret");
    assert!(
        !delivery.verifies_with("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        "any secret"
    );
    // The rotation is in the log, the secret is not.
    let logged: Vec<String> = sqlx::query_scalar(
        "SELECT payload::text FROM events WHERE aggregate_type = 'webhook' AND aggregate_id = $1",
    )
    .bind(webhook)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(logged.iter().any(|p| p.contains("WebhookSecretRotated")));
    assert!(logged.iter().all(|p| !p.contains(&new_secret[6..])));
}

#[tokio::test]
async fn an_endpoint_failing_past_the_grace_is_disabled_as_failing() {
    let (_, url) = fresh_database().await;
    let mut settings = test_settings(&url);
    // Five days in production; a second here.
    settings.webhook_disable_after = Duration::from_secs(1);
    let app = spawn_with(settings).await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    let receiver = Receiver::start().await;
    receiver.answer(503);
    let made = endpoint(
        &app,
        &admin,
        &receiver,
        json!({"events": ["ticket.created"]}),
    )
    .await;
    let webhook = made["id"].as_str().unwrap();
    open_ticket(&app, &customer, "Nobody answers").await;
    let mut found = Value::Null;
    for _ in 0..100 {
        found = app
            .get(&format!("/api/webhooks/{webhook}"), &admin.token)
            .await
            .expect(200)
            .body;
        if found["state"] == "disabled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(found["state"], "disabled", "{found}");
    assert_eq!(found["disabled_reason"], "failing");
    assert!(found["failing_since"].is_string());
    let reason: Value = sqlx::query_scalar(
        "SELECT payload -> 'WebhookDisabled' FROM events
          WHERE aggregate_type = 'webhook' AND aggregate_id = $1 AND event_type = 'WebhookDisabled'",
    )
    .bind(webhook)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(reason["reason"], "failing");
    assert!(reason["since"].is_string(), "{reason}");
    // Every attempt was answered 503 and is listed.
    let deliveries = app
        .get(&format!("/api/webhooks/{webhook}/deliveries"), &admin.token)
        .await
        .expect(200);
    let attempts = deliveries.body["items"][0]["attempts"]
        .as_array()
        .unwrap()
        .clone();
    assert!(attempts.len() >= 2, "{}", deliveries.text);
    assert!(attempts.iter().all(|a| a["status_code"] == 503));
}

/// Runs a documented recipe (`docs/recipes/…`) on one request; what it printed.
async fn recipe(program: &str, script: &str, request: Value) -> String {
    use tokio::io::AsyncWriteExt;
    let path = format!("{}/../docs/recipes/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = tokio::process::Command::new(program)
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(request.to_string().as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[tokio::test]
async fn the_documented_python_and_node_recipes_verify_a_real_delivery() {
    let (app, _admin, customer, receiver, made) = one_endpoint().await;
    open_ticket(&app, &customer, "Verify me").await;
    let received = receiver.wait_for(PATIENCE, |r| !r.is_empty()).await;
    let delivery = &received[0];
    let secret = made["secret"].as_str().unwrap();
    let body = String::from_utf8(delivery.raw.clone()).unwrap();
    let request = |secret: &str, body: &str| {
        json!({
            "secret": secret,
            "headers": {"Webhook-Id": delivery.webhook_id, "Webhook-Timestamp": delivery.timestamp,
                        "Webhook-Signature": delivery.signature},
            "body": body,
        })
    };
    for (program, script) in [
        ("python3", "verify_webhook.py"),
        ("node", "verify_webhook.mjs"),
    ] {
        assert_eq!(
            recipe(program, script, request(secret, &body)).await,
            "valid",
            "{script}"
        );
        let tampered = body.replace("Verify me", "Verify m3");
        assert_eq!(
            recipe(program, script, request(secret, &tampered)).await,
            "invalid",
            "{script} with a changed body"
        );
        assert_eq!(
            recipe(
                program,
                script,
                request("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &body)
            )
            .await,
            "invalid",
            "{script} with another secret"
        );
    }
}
