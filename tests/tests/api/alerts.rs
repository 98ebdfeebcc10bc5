//! Alerts from the outside: raised by a critical ticket's breach, a second escalation and a
//! queue too long for too long; one per cause while unresolved; acknowledged and resolved by
//! staff with notes; pushed live to staff only.

use std::time::Duration;

use docket_tests::live::SseClient;
use docket_tests::{TestApp, fresh_database, spawn_app, spawn_with, test_settings};
use serde_json::{Value, json};

const PATIENCE: Duration = Duration::from_secs(15);

async fn active(app: &TestApp, token: &str, kind: &str, count: usize) -> Vec<Value> {
    let kind = kind.to_string();
    app.items_when("/api/alerts?state=active", token, PATIENCE, |items| {
        items.iter().filter(|a| a["kind"] == kind.as_str()).count() >= count
    })
    .await
    .into_iter()
    .filter(|a| a["kind"] == kind.as_str())
    .collect()
}

#[tokio::test]
async fn a_second_escalation_raises_one_alert_that_staff_acknowledge_and_resolve() {
    let app = spawn_app().await;
    let agent = app.user("agent").await;
    let customer = app.customer().await;
    let mut staff_stream = SseClient::connect(&app.address, &agent.token, None, "").await;
    let ticket = app
        .ticket_for(&customer, "The whole floor is offline")
        .await;
    let id = ticket["id"].as_str().unwrap().to_string();
    let escalate = format!("/api/tickets/{id}/escalate");

    // Level 1 is routine; level 2 calls for an alert.
    app.post(&escalate, &agent.token, json!({"reason": "VIP"}))
        .await
        .expect(200);
    app.post(&escalate, &agent.token, json!({"reason": "Still down"}))
        .await
        .expect(200);
    let raised = active(&app, &agent.token, "escalation", 1).await;
    assert_eq!(raised.len(), 1, "{raised:#?}");
    let alert = &raised[0];
    assert_eq!(alert["cause"], format!("escalation:{id}"));
    assert_eq!(alert["severity"], "warning");
    assert_eq!(alert["ticket_id"], json!(id));
    assert!(
        alert["title"]
            .as_str()
            .unwrap()
            .ends_with("escalated to level 2")
    );
    assert_eq!(alert["raised_by"], json!(uuid::Uuid::nil()));
    let alert_id = alert["id"].as_str().unwrap().to_string();

    // Staff hear it live.
    let mut heard = None;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while heard.is_none() && tokio::time::Instant::now() < deadline {
        if let Some(message) = staff_stream.next(Duration::from_secs(1)).await
            && message.event.as_deref() == Some("alert")
        {
            heard = Some(message.data);
        }
    }
    let heard = heard.expect("an alert message on the live stream");
    assert_eq!(heard["data"]["alert_id"], json!(alert_id));
    assert_eq!(heard["status"], "active");
    assert_eq!(heard["data"]["title"], alert["title"]);

    // While it is unresolved, the same cause raises nothing more.
    app.post(&escalate, &agent.token, json!({"reason": "Third time"}))
        .await
        .expect(200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = app
        .get("/api/alerts?page_size=100", &agent.token)
        .await
        .expect(200);
    assert_eq!(all.body["total"], 1, "{:#?}", all.body);

    // Customers see no alerts and answer none.
    app.get("/api/alerts", &customer.token)
        .await
        .expect_problem(403, "forbidden");
    app.post(
        &format!("/api/alerts/{alert_id}/acknowledge"),
        &customer.token,
        json!({}),
    )
    .await
    .expect_problem(403, "forbidden");

    // Acknowledged with a note, once; the list by state follows at once.
    let acknowledged = app
        .post(
            &format!("/api/alerts/{alert_id}/acknowledge"),
            &agent.token,
            json!({"note": "Calling the customer"}),
        )
        .await
        .expect(200);
    assert_eq!(acknowledged.body["state"], "acknowledged");
    assert_eq!(acknowledged.body["acknowledged_by"], json!(agent.user_id));
    assert_eq!(
        acknowledged.body["acknowledge_note"],
        "Calling the customer"
    );
    assert_eq!(acknowledged.header("etag").as_deref(), Some("\"2\""));
    app.post(
        &format!("/api/alerts/{alert_id}/acknowledge"),
        &agent.token,
        json!({}),
    )
    .await
    .expect(409);
    let listed = app
        .get("/api/alerts?state=acknowledged", &agent.token)
        .await
        .expect(200);
    assert_eq!(listed.body["items"][0]["id"], json!(alert_id));
    app.get("/api/alerts?state=bogus", &agent.token)
        .await
        .expect_problem(400, "invalid-parameter");
    app.post(
        &format!("/api/alerts/{alert_id}/resolve"),
        &agent.token,
        json!({"note": "x".repeat(501)}),
    )
    .await
    .expect_problem(422, "validation-failed");

    // Resolved; then the cause is free and the next escalation raises a new alert.
    let resolved = app
        .post(
            &format!("/api/alerts/{alert_id}/resolve"),
            &agent.token,
            json!({"note": "Switch replaced"}),
        )
        .await
        .expect(200);
    assert_eq!(resolved.body["state"], "resolved");
    assert_eq!(resolved.body["resolve_note"], "Switch replaced");
    app.post(
        &format!("/api/alerts/{alert_id}/resolve"),
        &agent.token,
        json!({}),
    )
    .await
    .expect(409);
    app.post(&escalate, &agent.token, json!({"reason": "Down again"}))
        .await
        .expect(200);
    let again = active(&app, &agent.token, "escalation", 1).await;
    assert_eq!(again.len(), 1);
    assert_ne!(again[0]["id"], json!(alert_id));
    assert_eq!(again[0]["severity"], "critical", "level 4 is critical");
    app.get(&format!("/api/alerts/{alert_id}"), &agent.token)
        .await
        .expect(200);
    app.get(
        &format!("/api/alerts/{}", uuid::Uuid::new_v4()),
        &agent.token,
    )
    .await
    .expect_problem(404, "not-found");
}

#[tokio::test]
async fn a_critical_tickets_breach_raises_an_alert_and_a_high_ones_does_not() {
    let app = spawn_app().await;
    let manager = app.user("manager").await;
    let customer = app.customer().await;
    let fast = json!({"first_response": 1, "resolution": 600, "escalation": 900});
    let slow = json!({"first_response": 3600, "resolution": 86400, "escalation": 7200});
    app.post(
        "/api/sla/policies",
        &manager.token,
        json!({
            "name": "Fast lane",
            "position": 1,
            "conditions": {},
            "at_risk_percent": 90,
            "targets": {"critical": fast, "high": fast, "medium": slow, "low": slow}
        }),
    )
    .await
    .expect(201);
    let open = |subject: &str, priority: &str| {
        app.post(
            "/api/tickets",
            &customer.token,
            json!({"subject": subject, "description": "d", "priority": priority}),
        )
    };
    let critical = open("Payments are down", "critical").await.expect(201);
    open("The printer is slow", "high").await.expect(201);
    let critical_id = critical.body["id"].as_str().unwrap().to_string();
    let raised = active(&app, &manager.token, "sla_breach", 1).await;
    assert_eq!(raised.len(), 1, "{raised:#?}");
    assert_eq!(raised[0]["ticket_id"], json!(critical_id));
    assert_eq!(raised[0]["severity"], "critical");
    assert!(
        raised[0]["title"]
            .as_str()
            .unwrap()
            .contains("breached its first_response target"),
        "{}",
        raised[0]
    );
    // The high ticket breached too (its breach is in the log), and raised nothing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = app
        .get("/api/alerts?page_size=100", &manager.token)
        .await
        .expect(200);
    assert_eq!(all.body["total"], 1, "{:#?}", all.body);
}

#[tokio::test]
async fn a_queue_too_long_for_too_long_raises_an_alert_that_resolves_itself() {
    let (_, url) = fresh_database().await;
    let mut settings = test_settings(&url);
    settings.alert_queue_length = 2;
    settings.alert_queue_for = Duration::from_secs(1);
    let app = spawn_with(settings).await;
    let manager = app.user("manager").await;
    let customer = app.customer().await;
    let mut tickets = Vec::new();
    for n in 0..2 {
        tickets.push(app.ticket_for(&customer, &format!("Waiting {n}")).await);
    }
    // Two waiting is not more than two.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let none = app.get("/api/alerts", &manager.token).await.expect(200);
    assert_eq!(none.body["total"], 0, "{:#?}", none.body);
    tickets.push(app.ticket_for(&customer, "Waiting 2").await);
    let raised = active(&app, &manager.token, "queue_length", 1).await;
    assert_eq!(raised.len(), 1);
    assert_eq!(raised[0]["cause"], "queue_length");
    assert!(
        raised[0]["title"]
            .as_str()
            .unwrap()
            .starts_with("3 tickets wait")
    );
    // A ticket taken: the queue is back to two and the system resolves the alert, saying why.
    let id = tickets[0]["id"].as_str().unwrap();
    app.post(
        &format!("/api/tickets/{id}/assign"),
        &manager.token,
        json!({"agent_id": manager.user_id}),
    )
    .await
    .expect(200);
    let resolved = app
        .items_when(
            "/api/alerts?state=resolved",
            &manager.token,
            PATIENCE,
            |items| !items.is_empty(),
        )
        .await;
    assert_eq!(resolved.len(), 1, "the alert resolved itself");
    assert_eq!(resolved[0]["resolve_note"], "The queue is back to 2.");
    assert_eq!(resolved[0]["resolved_by"], json!(uuid::Uuid::nil()));
}
