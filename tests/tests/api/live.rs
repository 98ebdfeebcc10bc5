//! The live stream: typed messages, authorisation per message, resuming, two processes,
//! WebSocket subscriptions and ephemeral typing.

use std::time::Duration;

use docket_tests::live::{SseClient, WsClient};
use docket_tests::{spawn_app, spawn_app_on};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(600);

#[tokio::test]
async fn staff_see_every_change_as_a_typed_message() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let agent = app.user("agent").await;
    let manager = app.user("manager").await;
    let mut stream = SseClient::connect(&app.address, &manager.token, None, "").await;

    let ticket = app.ticket_for(&customer, "Live ticket").await;
    let id = ticket["id"].as_str().unwrap();
    app.post(
        &format!("/api/tickets/{id}/assign"),
        &manager.token,
        json!({"agent_id": agent.user_id}),
    )
    .await
    .expect(200);
    app.patch(
        &format!("/api/tickets/{id}/status"),
        &agent.token,
        json!({"status": "in_progress"}),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/tickets/{id}/comments"),
        &agent.token,
        json!({"body": "On it"}),
    )
    .await
    .expect(201);
    app.post(
        &format!("/api/tickets/{id}/escalate"),
        &agent.token,
        json!({"reason": "Stuck"}),
    )
    .await
    .expect(200);
    app.patch(
        &format!("/api/tickets/{id}"),
        &agent.token,
        json!({"priority": "critical"}),
    )
    .await
    .expect(200);

    let expected = [
        "ticket_created",
        "ticket_assigned",
        "ticket_status_changed",
        "new_comment",
        "ticket_escalated",
        "ticket_updated",
    ];
    let (mut last_id, mut last_version) = (0i64, 0i64);
    for kind in expected {
        let event = stream
            .next(WAIT)
            .await
            .unwrap_or_else(|| panic!("no {kind}"));
        assert_eq!(event.event.as_deref(), Some(kind));
        assert_eq!(event.data["type"], kind);
        assert_eq!(event.data["ticket_id"], json!(id));
        // SLA bookkeeping between them takes versions but is not a message of its own.
        let version = event.data["version"].as_i64().unwrap();
        assert!(
            version > last_version,
            "{kind}: {version} after {last_version}"
        );
        last_version = version;
        let position: i64 = event.id.as_deref().unwrap().parse().unwrap();
        assert!(position > last_id);
        last_id = position;
    }
}

#[tokio::test]
async fn a_customer_receives_only_their_own_tickets_and_never_internal_notes() {
    let app = spawn_app().await;
    let ann = app.customer().await;
    let bob = app.customer().await;
    let agent = app.user("agent").await;
    // The replies also tell Ann in a notification of her own: not what this test is about.
    let mut ann_stream = SseClient::connect(&app.address, &ann.token, None, "")
        .await
        .ignoring("notification");

    let anns = app.ticket_for(&ann, "Ann's").await;
    let bobs = app.ticket_for(&bob, "Bob's").await;
    let (anns, bobs) = (anns["id"].as_str().unwrap(), bobs["id"].as_str().unwrap());
    app.post(
        &format!("/api/tickets/{bobs}/comments"),
        &agent.token,
        json!({"body": "for bob"}),
    )
    .await
    .expect(201);
    app.post(
        &format!("/api/tickets/{anns}/comments"),
        &agent.token,
        json!({"body": "secret", "internal": true}),
    )
    .await
    .expect(201);
    app.post(
        &format!("/api/tickets/{anns}/comments"),
        &agent.token,
        json!({"body": "for ann"}),
    )
    .await
    .expect(201);

    let first = ann_stream.next(WAIT).await.unwrap();
    assert_eq!(first.data["type"], "ticket_created");
    assert_eq!(first.data["ticket_id"], json!(anns));
    let second = ann_stream.next(WAIT).await.unwrap();
    assert_eq!(second.data["type"], "new_comment");
    assert_eq!(second.data["data"]["body"], "for ann");
    assert!(ann_stream.next(QUIET).await.is_none());
}

/// A process that starts after the tickets were opened has never seen whose they are: it learns
/// the owners of a batch's tickets from the log (in one read), and authorises by them.
#[tokio::test]
async fn a_process_started_after_the_tickets_were_opened_still_sends_customers_only_their_own() {
    let before = spawn_app().await;
    let ann = before.customer().await;
    let bob = before.customer().await;
    let agent = before.user("agent").await;
    let mut tickets = Vec::new();
    for n in 0..3 {
        for customer in [&ann, &bob] {
            let ticket = before
                .ticket_for(customer, &format!("Opened before {n}"))
                .await;
            tickets.push(ticket["id"].as_str().unwrap().to_string());
        }
    }
    let url = before.database_url.clone();
    before.stop().await;

    let app = spawn_app_on(&url).await;
    let mut ann_stream = SseClient::connect(&app.address, &ann.token, None, "")
        .await
        .ignoring("notification");
    let mut staff_stream = SseClient::connect(&app.address, &agent.token, None, "").await;
    for id in &tickets {
        app.post(
            &format!("/api/tickets/{id}/comments"),
            &agent.token,
            json!({"body": format!("on {id}")}),
        )
        .await
        .expect(201);
    }
    // Ann's tickets are the even ones.
    for id in tickets.iter().step_by(2) {
        let message = ann_stream.until("new_comment", WAIT).await.unwrap();
        assert_eq!(message.data["ticket_id"], json!(id));
    }
    assert!(ann_stream.next(QUIET).await.is_none());
    for id in &tickets {
        let message = staff_stream.until("new_comment", WAIT).await.unwrap();
        assert_eq!(message.data["ticket_id"], json!(id));
    }
}

#[tokio::test]
async fn a_client_that_reconnects_with_last_event_id_misses_nothing_and_gets_nothing_twice() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let agent = app.user("agent").await;
    let mut stream = SseClient::connect(&app.address, &agent.token, None, "").await;
    let ticket = app.ticket_for(&customer, "Resume").await;
    let id = ticket["id"].as_str().unwrap();
    let created = stream.next(WAIT).await.unwrap();
    drop(stream);

    for n in 0..3 {
        app.post(
            &format!("/api/tickets/{id}/comments"),
            &agent.token,
            json!({"body": format!("missed {n}")}),
        )
        .await
        .expect(201);
    }
    let mut resumed =
        SseClient::connect(&app.address, &agent.token, created.id.as_deref(), "").await;
    for n in 0..3 {
        let event = resumed.next(WAIT).await.unwrap();
        assert_eq!(event.data["data"]["body"], format!("missed {n}"));
    }
    app.post(
        &format!("/api/tickets/{id}/comments"),
        &agent.token,
        json!({"body": "live again"}),
    )
    .await
    .expect(201);
    let live = resumed.next(WAIT).await.unwrap();
    assert_eq!(live.data["data"]["body"], "live again");
    assert!(resumed.next(QUIET).await.is_none());

    let bad = app
        .request(
            reqwest::Method::GET,
            "/api/events/stream",
            Some(&agent.token),
            None,
            &[("Last-Event-ID", "nope")],
        )
        .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn a_client_of_one_process_sees_writes_made_through_another() {
    let first = spawn_app().await;
    let second = spawn_app_on(&first.database_url).await;
    let customer = first.customer().await;
    let agent = second.user("agent").await;
    let mut on_second = SseClient::connect(&second.address, &agent.token, None, "").await;
    let ticket = first.ticket_for(&customer, "Made on the first").await;
    let event = on_second
        .until("ticket_created", WAIT)
        .await
        .expect("seen on the second process");
    assert_eq!(event.data["ticket_id"], ticket["id"]);
}

#[tokio::test]
async fn websocket_clients_subscribe_and_see_each_other_typing() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let agent = app.user("agent").await;
    let first = app.ticket_for(&customer, "Watched").await;
    let second = app.ticket_for(&customer, "Not watched").await;
    let (watched, other) = (
        first["id"].as_str().unwrap(),
        second["id"].as_str().unwrap(),
    );

    let mut agent_ws = WsClient::connect_with_protocol(&app.address, &agent.token).await;
    assert_eq!(
        agent_ws.until("welcome", WAIT).await.unwrap()["role"],
        "agent"
    );
    agent_ws
        .send(json!({"type": "subscribe_ticket", "ticket_id": watched}))
        .await;
    assert_eq!(
        agent_ws.until("subscribed", WAIT).await.unwrap()["ticket_id"],
        json!(watched)
    );

    let mut customer_ws = WsClient::connect(&app.address).await;
    customer_ws
        .send(json!({"type": "auth", "token": customer.token}))
        .await;
    assert_eq!(
        customer_ws.until("welcome", WAIT).await.unwrap()["role"],
        "customer"
    );

    app.post(
        &format!("/api/tickets/{other}/comments"),
        &customer.token,
        json!({"body": "unwatched"}),
    )
    .await
    .expect(201);
    app.post(
        &format!("/api/tickets/{watched}/comments"),
        &customer.token,
        json!({"body": "watched"}),
    )
    .await
    .expect(201);
    let comment = agent_ws.until("new_comment", WAIT).await.unwrap();
    assert_eq!(
        comment["data"]["body"], "watched",
        "only the subscribed ticket"
    );

    let events_before: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    agent_ws
        .send(json!({"type": "typing", "ticket_id": watched, "internal": true}))
        .await;
    agent_ws
        .send(json!({"type": "typing", "ticket_id": watched}))
        .await;
    let typing = customer_ws
        .until("typing", WAIT)
        .await
        .expect("the customer sees the agent typing");
    assert_eq!(typing["user_id"], json!(agent.user_id));
    assert_eq!(typing["name"], "A agent", "typing says who, by name");
    assert_eq!(
        typing["internal"], false,
        "typing on an internal note is not shown to customers"
    );
    customer_ws
        .send(json!({"type": "typing", "ticket_id": watched}))
        .await;
    let seen = agent_ws
        .until("typing", WAIT)
        .await
        .expect("the agent sees the customer typing");
    assert!(seen["user_id"] == json!(agent.user_id) || seen["user_id"] == json!(customer.user_id));
    // Staff with the ticket open say so; staff see it, customers never do.
    agent_ws
        .send(json!({"type": "viewing", "ticket_id": watched, "status": "here"}))
        .await;
    let here = agent_ws
        .until("viewing", WAIT)
        .await
        .expect("staff see who has the ticket open");
    assert_eq!(
        (here["user_id"].clone(), here["status"].clone()),
        (json!(agent.user_id), json!("here"))
    );
    customer_ws
        .send(json!({"type": "viewing", "ticket_id": watched}))
        .await;
    assert!(
        customer_ws.until("viewing", QUIET).await.is_none(),
        "customers are never told who is viewing"
    );
    let events_after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(events_before, events_after, "typing is never stored");

    // A customer cannot watch or type on someone else's ticket.
    let stranger = app.customer().await;
    let mut stranger_ws = WsClient::connect_with_protocol(&app.address, &stranger.token).await;
    stranger_ws
        .send(json!({"type": "subscribe_ticket", "ticket_id": watched}))
        .await;
    assert_eq!(
        stranger_ws.until("error", WAIT).await.unwrap()["error"],
        "not_found"
    );

    let mut bad = WsClient::connect(&app.address).await;
    bad.send(json!({"type": "auth", "token": "garbage"})).await;
    assert_eq!(
        bad.until("error", WAIT).await.unwrap()["error"],
        "unauthenticated"
    );
    assert!(
        bad.next(WAIT).await.is_none(),
        "closed after failed authentication"
    );
}

#[tokio::test]
async fn staff_see_who_comes_online() {
    let app = spawn_app().await;
    let manager = app.user("manager").await;
    let agent = app.user("agent").await;
    let mut watcher = WsClient::connect_with_protocol(&app.address, &manager.token).await;
    watcher.until("welcome", WAIT).await.unwrap();
    let arriving = WsClient::connect_with_protocol(&app.address, &agent.token).await;
    // The watcher's own "online" is published after its welcome and may reach it before or
    // after the agent's: only the agent's presence is the subject here.
    async fn agents_presence(
        watcher: &mut WsClient,
        agent: &serde_json::Value,
    ) -> serde_json::Value {
        loop {
            let presence = watcher.until("presence", WAIT).await.expect("presence");
            if presence["user_id"] == *agent {
                return presence;
            }
        }
    }
    let agent_id = json!(agent.user_id);
    let presence = agents_presence(&mut watcher, &agent_id).await;
    assert_eq!(presence["status"], "online");
    drop(arriving);
    let gone = agents_presence(&mut watcher, &agent_id).await;
    assert_eq!(gone["status"], "offline");
}
