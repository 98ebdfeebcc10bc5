//! Concurrent writers never lose an update; retries by clients are safe.

use docket_tests::{OPENED_VERSION, spawn_app, spawn_app_on};
use futures::future::join_all;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn concurrent_comments_on_one_ticket_are_all_kept() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let agent = app.user("agent").await;
    let ticket = app.ticket_for(&customer, "Busy ticket").await;
    let id = ticket["id"].as_str().unwrap().to_string();
    let path = format!("/api/tickets/{id}/comments");
    let writers = (0..64).map(|i| {
        let (app, path, token) = (&app, path.clone(), agent.token.clone());
        async move {
            app.post(&path, &token, json!({"body": format!("comment {i}")}))
                .await
        }
    });
    let results = join_all(writers).await;
    let accepted = results.iter().filter(|r| r.status == 201).count();
    for refused in results.iter().filter(|r| r.status != 201) {
        assert_eq!(refused.status, 409, "{}", refused.text);
    }
    // One process queues writers to one ticket, so none even needs a retry here.
    assert_eq!(accepted, 64);

    let (events, comments): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE event_type = 'CommentAdded')
           FROM events WHERE aggregate_type = 'ticket' AND aggregate_id = $1",
    )
    .bind(&id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(comments, accepted as i64);
    // Plus the one SLA clock the first public staff reply stopped.
    assert_eq!(events, OPENED_VERSION + accepted as i64 + 1);
    let read = app.read_ticket(&agent.token, &id, events).await.expect(200);
    assert_eq!(read.body["version"], events);
    assert_eq!(read.body["comment_count"], accepted as i64);
    assert_eq!(read.body["comments"].as_array().unwrap().len(), accepted);
}

#[tokio::test]
async fn a_repeated_idempotency_key_returns_the_first_response_and_acts_once() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let body = json!({"subject": "Exactly once", "description": "d", "priority": "medium"});
    let send = |body: serde_json::Value| {
        let token = customer.token.clone();
        let app = &app;
        async move {
            app.request(
                Method::POST,
                "/api/tickets",
                Some(&token),
                Some(body),
                &[("Idempotency-Key", "order-7")],
            )
            .await
        }
    };
    let first = send(body.clone()).await.expect(201);
    let again = send(body.clone()).await.expect(201);
    assert_eq!(first.body, again.body);
    assert_eq!(
        again.header("idempotency-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(first.header("etag"), again.header("etag"));
    let tickets: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'TicketCreated'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(tickets, 1);

    let mut other = body.clone();
    other["subject"] = json!("Something else");
    send(other)
        .await
        .expect_problem(422, "idempotency-key-reused");

    // The key belongs to its user: someone else may use the same key.
    let stranger = app.customer().await;
    app.request(
        Method::POST,
        "/api/tickets",
        Some(&stranger.token),
        Some(body),
        &[("Idempotency-Key", "order-7")],
    )
    .await
    .expect(201);
}

#[tokio::test]
async fn idempotent_requests_racing_each_other_act_once() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let body = json!({"subject": "Race", "description": "d", "priority": "low"});
    let racers = (0..8).map(|_| {
        let (app, token, body) = (&app, customer.token.clone(), body.clone());
        async move {
            app.request(
                Method::POST,
                "/api/tickets",
                Some(&token),
                Some(body),
                &[("Idempotency-Key", "race-1")],
            )
            .await
        }
    });
    let results = join_all(racers).await;
    for result in &results {
        assert!(
            result.status == 201 || result.status == 409,
            "{}: {}",
            result.status,
            result.text
        );
    }
    let created: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'TicketCreated'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(created, 1);
}

/// A process decides commands on the ticket as it last saw it (the log still confirms every
/// write). A write made through another process in between must be neither lost nor
/// overwritten, and `If-Match` is judged against the log, not against that memory.
#[tokio::test]
async fn a_process_that_remembers_a_ticket_still_sees_writes_made_elsewhere() {
    let first = spawn_app().await;
    let second = spawn_app_on(&first.database_url).await;
    let customer = first.customer().await;
    let agent = first.user("agent").await;
    let ticket = first.ticket_for(&customer, "Written from two places").await;
    let id = ticket["id"].as_str().unwrap().to_string();
    let comments = format!("/api/tickets/{id}/comments");

    // The first process remembers the ticket as of its own write.
    first
        .post(
            &comments,
            &agent.token,
            json!({"body": "one", "internal": true}),
        )
        .await
        .expect(201);
    // The second writes; the first does not know.
    let elsewhere = second
        .post(
            &comments,
            &agent.token,
            json!({"body": "two", "internal": true}),
        )
        .await
        .expect(201);
    let current = elsewhere.header("etag").unwrap();

    // A client that has seen the second write may name its version through the first.
    let edited = first
        .request(
            Method::PATCH,
            &format!("/api/tickets/{id}"),
            Some(&agent.token),
            Some(json!({"priority": "critical"})),
            &[("if-match", current.as_str())],
        )
        .await
        .expect(200);
    // And an unconditional write through the first lands after both.
    let last = first
        .post(
            &comments,
            &agent.token,
            json!({"body": "three", "internal": true}),
        )
        .await
        .expect(201);

    let (events, bodies): (i64, Vec<String>) = sqlx::query_as(
        "SELECT count(*), array_agg(payload -> 'CommentAdded' ->> 'body' ORDER BY sequence)
                          FILTER (WHERE event_type = 'CommentAdded')
           FROM events WHERE aggregate_type = 'ticket' AND aggregate_id = $1",
    )
    .bind(&id)
    .fetch_one(&first.pool)
    .await
    .unwrap();
    assert_eq!(bodies, ["one", "two", "three"]);
    assert_eq!(edited.body["priority"], "critical");
    assert_eq!(last.header("etag"), Some(format!("\"{events}\"")));
    second.stop().await;
}

/// "One running shift per agent" holds when two starts race, in one process or in two: the
/// agent's own stream decides, so exactly one start wins and the other is told a shift runs.
#[tokio::test]
async fn two_shifts_started_at_once_for_one_agent_start_one() {
    let first = spawn_app().await;
    let second = spawn_app_on(&first.database_url).await;
    let agent = first.user("agent").await;
    for round in 0..10 {
        let start = |app: &'static str| {
            let server = if app == "first" { &first } else { &second };
            let token = agent.token.clone();
            async move { server.post("/api/shifts/start", &token, json!({})).await }
        };
        let (a, b, c) = tokio::join!(start("first"), start("second"), start("first"));
        let started: Vec<_> = [&a, &b, &c]
            .into_iter()
            .filter(|r| r.status == 201)
            .collect();
        assert_eq!(
            started.len(),
            1,
            "round {round}: {} {} {}",
            a.text,
            b.text,
            c.text
        );
        for refused in [&a, &b, &c].into_iter().filter(|r| r.status != 201) {
            assert_eq!(refused.status, 409, "{}", refused.text);
            assert_eq!(
                refused.body["type"], "https://docket.dev/problems/shift-running",
                "{}",
                refused.text
            );
        }
        let shift = started[0].body["id"].as_str().unwrap().to_string();
        first
            .post(&format!("/api/shifts/{shift}/end"), &agent.token, json!({}))
            .await
            .expect(200);
    }
    let running: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = 'shift' AND event_type = 'ShiftStarted'",
    )
    .fetch_one(&first.pool)
    .await
    .unwrap();
    assert_eq!(running, 10);
    second.stop().await;
}
