//! In-app notifications as the people told meet them: who is told of what (the assignee, the
//! customer, a mentioned colleague, followers, the team lead, the admins of a failing webhook),
//! what each turned off, the unread count and marking read, the push on the live stream to its
//! recipient alone, and a replay of the log that tells the same people the same things.

use std::time::Duration;

use docket_tests::live::SseClient;
use docket_tests::receiver::Receiver;
use docket_tests::{Session, TestApp, spawn_app, spawn_app_on};
use reqwest::Method;
use serde_json::{Value, json};

const PATIENCE: Duration = Duration::from_secs(15);

/// `session`'s notifications once `enough` holds for them (or after the patience runs out).
async fn notifications_when(
    app: &TestApp,
    session: &Session,
    enough: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    app.items_when(
        "/api/notifications?page_size=100",
        &session.token,
        PATIENCE,
        enough,
    )
    .await
}

fn kinds(items: &[Value]) -> Vec<&str> {
    items.iter().filter_map(|n| n["kind"].as_str()).collect()
}

async fn email_of(app: &TestApp, admin: &Session, who: &Session) -> String {
    app.get(&format!("/api/users/{}", who.user_id), &admin.token)
        .await
        .expect(200)
        .body["email"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn each_person_is_told_what_concerns_them_and_nothing_else() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let manager = app.user("manager").await;
    let agent = app.user("agent").await;
    let follower = app.user("viewer").await;
    let customer = app.customer().await;
    let ticket = app.ticket_for(&customer, "Printer jams on page two").await;
    let id = ticket["id"].as_str().unwrap();
    app.post(
        &format!("/api/tickets/{id}/followers"),
        &follower.token,
        json!({}),
    )
    .await
    .expect(200);

    // The manager assigns the ticket to the agent: the agent is told.
    app.request(
        Method::POST,
        &format!("/api/tickets/{id}/assign"),
        Some(&manager.token),
        Some(json!({"agent_id": agent.user_id})),
        &[],
    )
    .await
    .expect(200);
    let told = notifications_when(&app, &agent, |n| !n.is_empty()).await;
    assert_eq!(kinds(&told), ["assigned"]);
    assert_eq!(told[0]["ticket_id"], json!(id));
    assert_eq!(told[0]["ticket_number"], ticket["number"]);
    assert_eq!(told[0]["actor_id"], json!(manager.user_id));
    assert!(
        told[0]["title"]
            .as_str()
            .unwrap()
            .contains("assigned to you")
    );
    assert!(told[0]["read_at"].is_null());

    // The customer replies: the assignee and the follower are told, nobody else.
    app.post(
        &format!("/api/tickets/{id}/comments"),
        &customer.token,
        json!({"body": "It jams again."}),
    )
    .await
    .expect(201);
    let told = notifications_when(&app, &agent, |n| n.len() >= 2).await;
    assert_eq!(kinds(&told), ["customer_reply", "assigned"]);
    assert_eq!(told[0]["body"], "It jams again.");

    // An internal note that mentions the manager: the manager is told, the customer is not.
    let manager_email = email_of(&app, &admin, &manager).await;
    app.post(
        &format!("/api/tickets/{id}/comments"),
        &agent.token,
        json!({"body": format!("@{manager_email} can we replace the roller?"), "internal": true}),
    )
    .await
    .expect(201);
    let told = notifications_when(&app, &manager, |n| !n.is_empty()).await;
    assert_eq!(kinds(&told), ["mentioned"]);
    assert!(
        told[0]["body"]
            .as_str()
            .unwrap()
            .contains("replace the roller")
    );

    // A public reply and a resolution: the customer is told of both.
    app.post(
        &format!("/api/tickets/{id}/comments"),
        &agent.token,
        json!({"body": "A new roller is on its way."}),
    )
    .await
    .expect(201);
    app.patch(
        &format!("/api/tickets/{id}/status"),
        &agent.token,
        json!({"status": "resolved"}),
    )
    .await
    .expect(200);
    let told = notifications_when(&app, &customer, |n| n.len() >= 2).await;
    assert_eq!(kinds(&told), ["status_changed", "public_reply"]);
    assert!(
        told.iter()
            .all(|n| !n["body"].as_str().unwrap_or_default().contains("roller?")),
        "the customer never hears of the internal note: {told:?}"
    );

    // The follower heard of every comment (the internal one too), the assignment and the
    // resolution.
    let heard = notifications_when(&app, &follower, |n| n.len() >= 5).await;
    assert_eq!(kinds(&heard).len(), 5, "{heard:?}");
    assert!(kinds(&heard).iter().all(|k| *k == "followed"));

    // Nobody is told of what they did themselves.
    let own = notifications_when(&app, &agent, |n| n.len() > 2).await;
    assert_eq!(own.len(), 2, "{own:?}");

    // Unread counts, marking one read, then all.
    let count = app
        .get("/api/notifications/unread/count", &follower.token)
        .await
        .expect(200);
    assert_eq!(count.body["count"], 5);
    let first = heard[0]["id"].as_str().unwrap();
    app.request(
        Method::PATCH,
        &format!("/api/notifications/{first}/read"),
        Some(&follower.token),
        None,
        &[],
    )
    .await
    .expect(204);
    let unread = app
        .get("/api/notifications?unread=true", &follower.token)
        .await
        .expect(200);
    assert_eq!(unread.body["total"], 4);
    // Someone else's notification is not there for them.
    app.request(
        Method::PATCH,
        &format!("/api/notifications/{first}/read"),
        Some(&agent.token),
        None,
        &[],
    )
    .await
    .expect_problem(404, "not-found");
    let all = app
        .request(
            Method::PATCH,
            "/api/notifications/read-all",
            Some(&follower.token),
            None,
            &[],
        )
        .await
        .expect(200);
    assert_eq!(all.body["marked"], 4);
    let count = app
        .get("/api/notifications/unread/count", &follower.token)
        .await
        .expect(200);
    assert_eq!(count.body["count"], 0);
}

#[tokio::test]
async fn a_kind_switched_off_is_not_told_and_bad_kinds_are_named() {
    let app = spawn_app().await;
    let manager = app.user("manager").await;
    let agent = app.user("agent").await;
    let customer = app.customer().await;
    let set = app
        .put(
            "/api/users/me/notification-preferences",
            &agent.token,
            json!({"kinds": [{"kind": "assigned", "in_app": false, "email": true}]}),
        )
        .await
        .expect(200);
    let assigned = set.body["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "assigned")
        .unwrap()
        .clone();
    assert_eq!(
        assigned,
        json!({"kind": "assigned", "in_app": false, "email": true})
    );
    assert_eq!(set.body["kinds"].as_array().unwrap().len(), 12);
    let read = app
        .get("/api/users/me/notification-preferences", &agent.token)
        .await
        .expect(200);
    assert_eq!(read.body, set.body);
    let refused = app
        .put(
            "/api/users/me/notification-preferences",
            &agent.token,
            json!({"kinds": [{"kind": "gossip", "in_app": false, "email": false}]}),
        )
        .await
        .expect_problem(422, "validation-failed");
    assert_eq!(refused.body["field"], "kinds[0].kind");

    let ticket = app.ticket_for(&customer, "Switched off").await;
    let id = ticket["id"].as_str().unwrap();
    app.request(
        Method::POST,
        &format!("/api/tickets/{id}/assign"),
        Some(&manager.token),
        Some(json!({"agent_id": agent.user_id})),
        &[],
    )
    .await
    .expect(200);
    // The customer's reply, which the agent still wants, arrives; the assignment never does.
    app.post(
        &format!("/api/tickets/{id}/comments"),
        &customer.token,
        json!({"body": "Any news?"}),
    )
    .await
    .expect(201);
    let told = notifications_when(&app, &agent, |n| !n.is_empty()).await;
    assert_eq!(kinds(&told), ["customer_reply"]);
    // The preference is in the account's history.
    let logged: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE aggregate_type = 'user' AND aggregate_id = $1",
    )
    .bind(agent.user_id.to_string())
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(logged.contains(&"NotificationPreferencesSet".to_string()));
}

#[tokio::test]
async fn followers_are_staff_and_only_workers_add_others() {
    let app = spawn_app().await;
    let agent = app.user("agent").await;
    let viewer = app.user("viewer").await;
    let manager = app.user("manager").await;
    let customer = app.customer().await;
    let ticket = app.ticket_for(&customer, "Who follows").await;
    let id = ticket["id"].as_str().unwrap();
    let path = format!("/api/tickets/{id}/followers");
    let followed = app.post(&path, &viewer.token, json!({})).await.expect(200);
    assert_eq!(followed.body["followers"], json!([viewer.user_id]));
    assert!(followed.header("etag").is_some());
    app.post(&path, &viewer.token, json!({"user_id": manager.user_id}))
        .await
        .expect_problem(403, "forbidden");
    app.post(&path, &agent.token, json!({"user_id": manager.user_id}))
        .await
        .expect(200);
    app.post(&path, &agent.token, json!({"user_id": customer.user_id}))
        .await
        .expect_problem(422, "validation-failed");
    app.post(&path, &customer.token, json!({}))
        .await
        .expect_problem(403, "forbidden");
    app.get(&path, &customer.token)
        .await
        .expect_problem(403, "forbidden");
    let listed = app.get(&path, &agent.token).await.expect(200);
    assert_eq!(listed.body["followers"].as_array().unwrap().len(), 2);
    let left = app
        .request(
            Method::DELETE,
            &format!("{path}?user_id={}", manager.user_id),
            Some(&agent.token),
            None,
            &[],
        )
        .await
        .expect(200);
    assert_eq!(left.body["followers"], json!([viewer.user_id]));
    let left = app.delete(&path, &viewer.token).await.expect(200);
    assert_eq!(left.body["followers"], json!([]));
}

#[tokio::test]
async fn an_escalation_tells_the_team_lead() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let lead = app.user("manager").await;
    let agent = app.user("agent").await;
    let customer = app.customer().await;
    let team = app
        .post("/api/teams", &admin.token, json!({"name": "Printers"}))
        .await
        .expect(201)
        .body;
    let team_id = team["id"].as_str().unwrap();
    app.post(
        &format!("/api/teams/{team_id}/members"),
        &admin.token,
        json!({"user_id": lead.user_id, "team_role": "lead"}),
    )
    .await
    .expect(200);
    let ticket = app.ticket_for(&customer, "Escalate me").await;
    let id = ticket["id"].as_str().unwrap();
    app.put(
        &format!("/api/tickets/{id}/team"),
        &agent.token,
        json!({"team_id": team_id}),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/tickets/{id}/escalate"),
        &agent.token,
        json!({"reason": "Needs a decision on a replacement"}),
    )
    .await
    .expect(200);
    let told = notifications_when(&app, &lead, |n| !n.is_empty()).await;
    assert_eq!(kinds(&told), ["escalated"]);
    assert_eq!(told[0]["body"], "Needs a decision on a replacement");
}

#[tokio::test]
async fn a_notification_is_pushed_live_to_its_recipient_alone() {
    let app = spawn_app().await;
    let manager = app.user("manager").await;
    let agent = app.user("agent").await;
    let other = app.user("agent").await;
    let customer = app.customer().await;
    let mut mine = SseClient::connect(&app.address, &agent.token, None, "").await;
    let mut theirs = SseClient::connect(&app.address, &other.token, None, "").await;
    let ticket = app.ticket_for(&customer, "Live bell").await;
    let id = ticket["id"].as_str().unwrap();
    app.request(
        Method::POST,
        &format!("/api/tickets/{id}/assign"),
        Some(&manager.token),
        Some(json!({"agent_id": agent.user_id})),
        &[],
    )
    .await
    .expect(200);
    let pushed = mine
        .until("notification", PATIENCE)
        .await
        .expect("the agent's stream gets the notification");
    assert_eq!(pushed.data["data"]["kind"], "assigned");
    assert_eq!(pushed.data["ticket_id"], json!(id));
    assert!(
        theirs
            .until("notification", Duration::from_secs(2))
            .await
            .is_none(),
        "another person's stream does not"
    );
}

#[tokio::test]
async fn the_admins_are_told_when_docket_disables_a_webhook() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    let receiver = Receiver::start().await;
    receiver.answer(410);
    app.post(
        "/api/webhooks",
        &admin.token,
        json!({"url": receiver.url(), "events": ["ticket.created"]}),
    )
    .await
    .expect(201);
    app.ticket_for(&customer, "Nobody home").await;
    let told = notifications_when(&app, &admin, |n| !n.is_empty()).await;
    assert_eq!(kinds(&told), ["webhook_disabled"]);
    assert!(told[0]["body"].as_str().unwrap().contains("410"));
}

#[tokio::test]
async fn reading_the_log_again_tells_the_same_and_keeps_what_was_read() {
    let app = spawn_app().await;
    let manager = app.user("manager").await;
    let agent = app.user("agent").await;
    let customer = app.customer().await;
    for n in 0..3 {
        let ticket = app.ticket_for(&customer, &format!("Replay {n}")).await;
        app.request(
            Method::POST,
            &format!("/api/tickets/{}/assign", ticket["id"].as_str().unwrap()),
            Some(&manager.token),
            Some(json!({"agent_id": agent.user_id})),
            &[],
        )
        .await
        .expect(200);
    }
    let before = notifications_when(&app, &agent, |n| n.len() >= 3).await;
    assert_eq!(before.len(), 3);
    let read = before[1]["id"].as_str().unwrap();
    app.request(
        Method::PATCH,
        &format!("/api/notifications/{read}/read"),
        Some(&agent.token),
        None,
        &[],
    )
    .await
    .expect(204);
    let url = app.database_url.clone();
    app.stop().await;
    // The notifier forgets all it knew and reads the log from its beginning.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    for reset in [
        "DELETE FROM projector_checkpoints WHERE projector = 'notifier'",
        "TRUNCATE notifier_tickets, notifier_teams, notifier_people",
    ] {
        sqlx::query(reset).execute(&pool).await.unwrap();
    }
    let again = spawn_app_on(&url).await;
    let mut caught_up = false;
    for _ in 0..100 {
        let known: i64 = sqlx::query_scalar("SELECT count(*) FROM notifier_people")
            .fetch_one(&pool)
            .await
            .unwrap();
        if known >= 4 {
            caught_up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(caught_up, "the notifier read the log again");
    let agent = again.login(&agent.email, "password123").await;
    let after = notifications_when(&again, &agent, |n| n.len() >= 3).await;
    let ids = |items: &[Value]| -> Vec<String> {
        items
            .iter()
            .map(|n| n["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids(&after),
        ids(&before),
        "the same notifications, none twice"
    );
    assert!(after[1]["read_at"].is_string(), "what was read stays read");
}
