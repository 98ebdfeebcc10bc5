//! Reads that see your own writes, without asking (DESIGN.md decision 12): each of these does a
//! write and the read a user would do next, a hundred times in a row, with no consistency
//! parameter, and every read must show the write.

use docket_tests::{TestApp, fresh_database, spawn_app, spawn_with, test_settings};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

const ROUNDS: usize = 100;

fn id_of(body: &Value) -> String {
    body["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_ticket_just_created_is_there_when_read() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let mut seen = 0;
    for n in 0..ROUNDS {
        let created = app.ticket_for(&customer, &format!("Created {n}")).await;
        let read = app
            .get(
                &format!("/api/tickets/{}", id_of(&created)),
                &customer.token,
            )
            .await;
        if read.status == 200 && read.body["subject"] == json!(format!("Created {n}")) {
            seen += 1;
        }
    }
    assert_eq!(seen, ROUNDS);
}

#[tokio::test]
async fn a_comment_just_added_is_in_the_ticket_when_read() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let agent = app.user("agent").await;
    let ticket = app.ticket_for(&customer, "Talkative").await;
    let id = id_of(&ticket);
    let mut seen = 0;
    for n in 0..ROUNDS {
        let body = format!("Reply number {n}");
        let added = app
            .post(
                &format!("/api/tickets/{id}/comments"),
                &agent.token,
                json!({"body": body}),
            )
            .await
            .expect(201);
        // The comment says which version of the ticket it made.
        let version = added.body["ticket_version"].as_i64().unwrap();
        let read = app
            .get(&format!("/api/tickets/{id}"), &agent.token)
            .await
            .expect(200);
        let comments = read.body["comments"].as_array().unwrap();
        if comments.iter().any(|c| c["body"] == json!(body)) && read.body["version"] == version {
            seen += 1;
        }
    }
    assert_eq!(seen, ROUNDS);
}

#[tokio::test]
async fn a_ticket_just_claimed_reads_as_the_agents() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let agent = app.user("agent").await;
    let manager = app.user("manager").await;
    app.put(
        &format!("/api/agents/{}/capacity", agent.user_id),
        &manager.token,
        json!({"capacity": 1000}),
    )
    .await
    .expect(200);
    let mut seen = 0;
    for n in 0..ROUNDS {
        let ticket = app.ticket_for(&customer, &format!("Unclaimed {n}")).await;
        let id = id_of(&ticket);
        app.post(
            &format!("/api/agents/{}/claim/{id}", agent.user_id),
            &agent.token,
            json!({}),
        )
        .await
        .expect(200);
        let read = app
            .get(&format!("/api/tickets/{id}"), &agent.token)
            .await
            .expect(200);
        if read.body["assignee_id"] == json!(agent.user_id) {
            seen += 1;
        }
    }
    assert_eq!(seen, ROUNDS);
}

#[tokio::test]
async fn a_ticket_created_to_be_routed_is_in_the_queue_when_nobody_can_take_it() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let agent = app.user("agent").await;
    let mut seen = 0;
    for n in 0..ROUNDS {
        let created = app
            .post(
                "/api/tickets",
                &agent.token,
                json!({"subject": format!("Route me {n}"), "description": "Nobody is on shift.",
                       "priority": "low", "customer_id": customer.user_id, "auto_assign": true}),
            )
            .await
            .expect(201);
        let id = id_of(&created.body);
        let queue = app
            .get("/api/tickets/queue?page_size=100", &agent.token)
            .await
            .expect(200);
        let queued = queue.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["ticket_id"] == json!(id));
        if queued {
            seen += 1;
        }
    }
    assert_eq!(seen, ROUNDS);
}

#[tokio::test]
async fn a_status_change_shows_in_the_ticket_and_its_sla_clocks() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let agent = app.user("agent").await;
    let ticket = app.ticket_for(&customer, "Back and forth").await;
    let id = id_of(&ticket);
    let mut seen = 0;
    for n in 0..ROUNDS {
        let (status, resolution) = if n % 2 == 0 {
            ("pending", "paused")
        } else {
            ("in_progress", "running")
        };
        app.patch(
            &format!("/api/tickets/{id}/status"),
            &agent.token,
            json!({"status": status}),
        )
        .await
        .expect(200);
        let check = app
            .get(&format!("/api/sla/check/{id}"), &agent.token)
            .await
            .expect(200);
        let clock = check.body["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["metric"] == "resolution")
            .cloned()
            .unwrap_or_default();
        let read = app
            .get(&format!("/api/tickets/{id}"), &agent.token)
            .await
            .expect(200);
        if clock["state"] == resolution && read.body["status"] == status {
            seen += 1;
        }
    }
    assert_eq!(seen, ROUNDS);
}

#[tokio::test]
async fn a_ticket_just_created_is_in_the_list() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let mut seen = 0;
    for n in 0..ROUNDS {
        let created = app.ticket_for(&customer, &format!("Listed {n}")).await;
        let list = app
            .get("/api/tickets?page_size=1", &customer.token)
            .await
            .expect(200);
        let newest = &list.body["items"][0];
        if newest["id"] == created["id"] && list.body["total"] == json!(n + 1) {
            seen += 1;
        }
    }
    assert_eq!(seen, ROUNDS);
}

/// Holds back every projector: a transaction that took an id before any later write commits
/// keeps all later events out of the safe read order until it ends.
async fn hold_back_projectors(app: &TestApp) -> PgConnection {
    let mut conn = PgConnection::connect(&app.database_url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut conn)
        .await
        .unwrap();
    conn
}

#[tokio::test]
async fn nobody_waits_for_someone_elses_writes_and_a_bulk_reader_can_opt_out() {
    let (_, url) = fresh_database().await;
    let mut settings = test_settings(&url);
    settings.consistency_wait_ms = 500;
    let app = spawn_with(settings).await;
    let writer = app.customer().await;
    let other = app.customer().await;
    let staff = app.user("agent").await;
    let held = hold_back_projectors(&app).await;

    let created = app.ticket_for(&writer, "Not projected yet").await;
    let id = id_of(&created);
    // The writer's own read waits for the write, and the projectors are held back: 503.
    let waited = app
        .get(&format!("/api/tickets/{id}"), &writer.token)
        .await
        .expect_problem(503, "projection-behind");
    assert_eq!(waited.header("retry-after").as_deref(), Some("1"));
    app.get("/api/tickets", &writer.token)
        .await
        .expect_problem(503, "projection-behind");
    // Anyone else reads at once, from the read model as it is.
    let list = app.get("/api/tickets", &other.token).await.expect(200);
    assert_eq!(list.body["total"], 0);
    let all = app.get("/api/tickets", &staff.token).await.expect(200);
    assert_eq!(all.body["total"], 0);
    // And the writer may choose not to wait.
    let eventual = app
        .request(
            Method::GET,
            "/api/tickets",
            Some(&writer.token),
            None,
            &[("Consistency", "eventual")],
        )
        .await
        .expect(200);
    assert_eq!(eventual.body["total"], 0);
    app.request(
        Method::GET,
        "/api/tickets",
        Some(&writer.token),
        None,
        &[("Consistency", "sometimes")],
    )
    .await
    .expect_problem(400, "invalid-parameter");

    // Once the projectors may go on, the writer's read shows the write.
    drop(held);
    let read = app
        .get(&format!("/api/tickets/{id}"), &writer.token)
        .await
        .expect(200);
    assert_eq!(read.body["subject"], "Not projected yet");
}

#[tokio::test]
async fn a_token_carries_a_write_to_a_read_through_another_server() {
    let first = spawn_app().await;
    let second = docket_tests::spawn_app_on(&first.database_url).await;
    let customer = first.customer().await;
    let created = first
        .post(
            "/api/tickets",
            &customer.token,
            json!({"subject": "Across servers", "description": "Written on one.", "priority": "low"}),
        )
        .await
        .expect(201);
    let token = created.consistency_token().unwrap();
    let id = id_of(&created.body);
    let read = second
        .request(
            Method::GET,
            &format!("/api/tickets/{id}"),
            Some(&customer.token),
            None,
            &[("X-Consistency-Token", &token)],
        )
        .await
        .expect(200);
    assert_eq!(read.body["subject"], "Across servers");
    second.stop().await;
}
