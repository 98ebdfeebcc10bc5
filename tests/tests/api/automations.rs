//! Automation rules from the outside: defined, versioned and removed by managers and admins,
//! every mistake a 422 naming its path, what they name looked up, time-based rules that would
//! never stop refused, and a rule tried on a ticket without acting.

use docket_tests::spawn_app;
use serde_json::{Value, json};

fn vip_rule(agent: &str) -> Value {
    json!({
        "name": "VIP to the duty agent",
        "position": 2,
        "trigger": {"type": "event", "events": ["ticket.created"]},
        "conditions": {
            "all": [{"field": "priority", "operator": "in", "value": ["high", "critical"]}],
            "any": [{"field": "subject", "operator": "contains", "value": "outage"}]
        },
        "actions": [
            {"type": "add_tags", "tags": ["vip"]},
            {"type": "assign_agent", "agent_id": agent}
        ]
    })
}

#[tokio::test]
async fn managers_keep_rules_in_order_with_every_change_a_version() {
    let app = spawn_app().await;
    let manager = app.user("manager").await;
    let agent = app.user("agent").await;
    let agent_id = agent.user_id.to_string();

    let made = app
        .post("/api/automations", &manager.token, vip_rule(&agent_id))
        .await
        .expect(201);
    let id = made.body["id"].as_str().unwrap().to_string();
    assert_eq!(made.header("etag").as_deref(), Some("\"1\""));
    assert_eq!(
        made.header("location").as_deref(),
        Some(format!("/api/automations/{id}").as_str())
    );
    assert_eq!(made.body["enabled"], true);
    assert_eq!(made.body["trigger"]["events"], json!(["ticket.created"]));
    assert_eq!(made.body["actions"][1]["agent_id"], json!(agent_id));

    let first = app
        .post(
            "/api/automations",
            &manager.token,
            json!({
                "name": "Tag refunds", "position": 1,
                "trigger": {"type": "event", "events": ["comment.added"]},
                "conditions": {"all": [{"field": "comment_body", "operator": "contains", "value": "refund"}]},
                "actions": [{"type": "add_tags", "tags": ["billing"]}]
            }),
        )
        .await
        .expect(201);
    let listed = app
        .get("/api/automations", &manager.token)
        .await
        .expect(200);
    assert_eq!(
        listed.item_names(),
        ["Tag refunds", "VIP to the duty agent"],
        "by position"
    );

    // A new version replaces the whole rule; a stale If-Match is 412.
    let mut disabled = vip_rule(&agent_id);
    disabled["enabled"] = json!(false);
    let path = format!("/api/automations/{id}");
    let updated = app
        .request(
            reqwest::Method::PUT,
            &path,
            Some(&manager.token),
            Some(disabled.clone()),
            &[("If-Match", "\"1\"")],
        )
        .await
        .expect(200);
    assert_eq!(updated.body["enabled"], false);
    assert_eq!(updated.body["version"], 2);
    app.request(
        reqwest::Method::PUT,
        &path,
        Some(&manager.token),
        Some(disabled),
        &[("If-Match", "\"1\"")],
    )
    .await
    .expect(412);
    let history: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE aggregate_type = 'automation_rule'
          AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(&id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(history, ["AutomationRuleCreated", "AutomationRuleUpdated"]);

    // Agents may not; removing one leaves the other.
    app.get("/api/automations", &agent.token)
        .await
        .expect_problem(403, "forbidden");
    app.post("/api/automations", &agent.token, vip_rule(&agent_id))
        .await
        .expect_problem(403, "forbidden");
    app.delete(&path, &manager.token).await.expect(204);
    app.get(&path, &manager.token)
        .await
        .expect_problem(404, "not-found");
    let left = app
        .get("/api/automations", &manager.token)
        .await
        .expect(200);
    assert_eq!(left.body["items"][0]["id"], first.body["id"]);
    assert_eq!(left.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_bad_rule_is_refused_naming_the_path_of_its_mistake() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let agent = app.user("agent").await;
    let customer = app.customer().await;
    let good = vip_rule(&agent.user_id.to_string());
    let refused = |change: &dyn Fn(&mut Value)| {
        let mut body = good.clone();
        change(&mut body);
        let app = &app;
        let token = admin.token.clone();
        async move {
            let answer = app.post("/api/automations", &token, body).await;
            let answer = answer.expect_problem(422, "validation-failed");
            answer.body["field"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        }
    };
    assert_eq!(
        refused(&|b| b["conditions"]["all"][0]["field"] = json!("mood")).await,
        "conditions.all[0].field"
    );
    assert_eq!(
        refused(&|b| b["conditions"]["any"][0]["operator"] = json!("greater_than")).await,
        "conditions.any[0].operator"
    );
    assert_eq!(
        refused(&|b| b["conditions"]["all"][0]["value"] = json!(["urgent"])).await,
        "conditions.all[0].value[0]"
    );
    assert_eq!(
        refused(&|b| b["actions"][0]["type"] = json!("explode")).await,
        "actions[0].type"
    );
    assert_eq!(
        refused(&|b| b["trigger"]["events"] = json!(["ticket.deleted"])).await,
        "trigger.events[0]"
    );
    // What it names must exist: nobody, a customer (who cannot be assigned), a webhook.
    assert_eq!(
        refused(&|b| b["actions"][1]["agent_id"] = json!(uuid::Uuid::new_v4())).await,
        "actions[1].agent_id"
    );
    let customer_id = customer.user_id;
    assert_eq!(
        refused(&|b| b["actions"][1]["agent_id"] = json!(customer_id)).await,
        "actions[1].agent_id"
    );
    assert_eq!(
        refused(&|b| {
            b["actions"] = json!([{"type": "call_webhook", "webhook_id": uuid::Uuid::new_v4()}])
        })
        .await,
        "actions[0].webhook_id"
    );
    assert_eq!(
        refused(&|b| {
            b["conditions"]["all"][0] =
                json!({"field": "team_id", "operator": "is", "value": uuid::Uuid::new_v4()})
        })
        .await,
        "conditions.all[0].value"
    );
    // A time-based rule that nothing it does would stop is refused.
    let endless = |b: &mut Value| {
        b["trigger"] = json!({"type": "time"});
        b["conditions"] = json!({"all": [
            {"field": "status", "operator": "is", "value": "pending"},
            {"field": "hours_since_status_change", "operator": "greater_than", "value": 48}
        ]});
        b["actions"] = json!([{"type": "notify", "roles": ["manager"], "message": "Stuck"}]);
    };
    assert_eq!(refused(&endless).await, "actions");
    let mut stops = good.clone();
    endless(&mut stops);
    stops["actions"] = json!([{"type": "set_status", "status": "closed"}]);
    app.post("/api/automations", &admin.token, stops)
        .await
        .expect(201);
    // Nothing refused was kept.
    let kept = app.get("/api/automations", &admin.token).await.expect(200);
    assert_eq!(kept.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_rule_tried_on_a_ticket_says_what_held_and_what_it_would_do_and_does_nothing() {
    let app = spawn_app().await;
    let manager = app.user("manager").await;
    let agent = app.user("agent").await;
    let customer = app.customer().await;
    // Switched off, so that only the test says what it would do.
    let mut switched_off = vip_rule(&agent.user_id.to_string());
    switched_off["enabled"] = json!(false);
    let rule = app
        .post("/api/automations", &manager.token, switched_off)
        .await
        .expect(201);
    let id = rule.body["id"].as_str().unwrap();
    let open = |subject: &'static str, priority: &'static str| {
        app.post(
            "/api/tickets",
            &customer.token,
            json!({"subject": subject, "description": "d", "priority": priority}),
        )
    };
    let outage = open("Network outage in Paris", "critical")
        .await
        .expect(201);
    let slow = open("Slow printer", "critical").await.expect(201);
    let test = |ticket: Value| {
        let path = format!("/api/automations/{id}/test");
        let app = &app;
        let token = manager.token.clone();
        async move {
            app.post(&path, &token, json!({"ticket_id": ticket}))
                .await
                .expect(200)
                .body
        }
    };
    let acts = test(outage.body["id"].clone()).await;
    assert_eq!(acts["would_act"], true);
    let held: Vec<(&str, &str, bool)> = acts["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["group"].as_str().unwrap(),
                c["field"].as_str().unwrap(),
                c["held"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(held, [("all", "priority", true), ("any", "subject", true)]);
    assert_eq!(acts["actions"][0]["type"], "add_tags");
    assert_eq!(acts["actions"].as_array().unwrap().len(), 2);
    let rests = test(slow.body["id"].clone()).await;
    assert_eq!(rests["would_act"], false);
    assert_eq!(rests["conditions"][1]["held"], false);
    assert_eq!(rests["actions"], json!([]));
    // Nothing was done to either ticket.
    let outage_id = outage.body["id"].as_str().unwrap();
    let after = app
        .read_ticket(&manager.token, outage_id, 1)
        .await
        .expect(200);
    assert_eq!(after.body["tags"], json!([]));
    assert_eq!(after.body["version"], outage.body["version"]);
    app.post(
        &format!("/api/automations/{id}/test"),
        &manager.token,
        json!({"ticket_id": uuid::Uuid::new_v4()}),
    )
    .await
    .expect_problem(422, "validation-failed");
}

/// The event's type, its metadata, and its payload, for each event of the ticket in order.
async fn ticket_log(app: &docket_tests::TestApp, id: &str) -> Vec<(String, Value, Value)> {
    sqlx::query_as::<_, (String, Value, Value)>(
        "SELECT event_type, metadata, payload FROM events
          WHERE aggregate_type = 'ticket' AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

async fn wait_for_event(
    app: &docket_tests::TestApp,
    id: &str,
    event_type: &str,
) -> Vec<(String, Value, Value)> {
    for _ in 0..150 {
        let log = ticket_log(app, id).await;
        if log.iter().any(|(t, _, _)| t == event_type) {
            return log;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    ticket_log(app, id).await
}

#[tokio::test]
async fn a_rule_acts_on_the_events_it_names_as_itself_caused_by_the_event() {
    let app = spawn_app().await;
    let manager = app.user("manager").await;
    let customer = app.customer().await;
    let rule = app
        .post(
            "/api/automations",
            &manager.token,
            json!({
                "name": "Critical gets a note",
                "trigger": {"type": "event", "events": ["ticket.created"]},
                "conditions": {"all": [{"field": "priority", "operator": "is", "value": "critical"}]},
                "actions": [
                    {"type": "add_tags", "tags": ["vip"]},
                    {"type": "add_internal_note", "body": "Critical: call the customer."},
                    {"type": "raise_alert", "severity": "critical", "title": "A critical ticket came in"}
                ]
            }),
        )
        .await
        .expect(201);
    let rule_id = rule.body["id"].as_str().unwrap().to_string();
    let open = |subject: &'static str, priority: &'static str| {
        app.post(
            "/api/tickets",
            &customer.token,
            json!({"subject": subject, "description": "d", "priority": priority}),
        )
    };
    let low = open("A question", "low").await.expect(201);
    let critical = open("Payments are down", "critical").await.expect(201);
    let id = critical.body["id"].as_str().unwrap().to_string();

    let log = wait_for_event(&app, &id, "CommentAdded").await;
    let types: Vec<&str> = log.iter().map(|(t, _, _)| t.as_str()).collect();
    let fired = types
        .iter()
        .position(|t| *t == "AutomationFired")
        .unwrap_or_else(|| panic!("{types:?}"));
    assert_eq!(types[fired + 1], "TicketDetailsUpdated", "{types:?}");
    assert_eq!(types[fired + 2], "CommentAdded", "{types:?}");
    let (_, metadata, payload) = &log[fired];
    assert_eq!(payload["AutomationFired"]["rule_id"], json!(rule_id));
    assert_eq!(payload["AutomationFired"]["cause"], "TicketCreated");
    assert_eq!(payload["AutomationFired"]["cause_sequence"], 1);
    assert_eq!(
        metadata["actor_id"],
        json!(rule_id),
        "the rule is the actor"
    );
    assert_eq!(metadata["causation_id"], format!("ticket/{id}/1"));
    assert_eq!(metadata["automation_depth"], "1");
    let (_, _, note) = &log[fired + 2];
    assert_eq!(note["CommentAdded"]["internal"], true);
    assert_eq!(note["CommentAdded"]["automated"], true);
    let read = app.read_ticket(&manager.token, &id, 1).await.expect(200);
    let read = app
        .read_ticket(
            &manager.token,
            &id,
            read.body["version"].as_i64().unwrap().max(log.len() as i64),
        )
        .await
        .expect(200);
    assert_eq!(read.body["tags"], json!(["vip"]));
    // Its alert, and nothing for the low ticket.
    let alerts = app
        .items_when(
            "/api/alerts?state=active",
            &manager.token,
            std::time::Duration::from_secs(15),
            |items| items.iter().any(|a| a["kind"] == "rule"),
        )
        .await;
    assert!(
        alerts
            .iter()
            .any(|a| a["title"] == "A critical ticket came in" && a["ticket_id"] == json!(id)),
        "{alerts:#?}"
    );
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let low_log = ticket_log(&app, low.body["id"].as_str().unwrap()).await;
    assert!(
        low_log.iter().all(|(t, _, _)| t != "AutomationFired"),
        "{low_log:?}"
    );
    // Once per event: the log has one AutomationFired for the critical ticket.
    let log = ticket_log(&app, &id).await;
    assert_eq!(
        log.iter()
            .filter(|(t, _, _)| t == "AutomationFired")
            .count(),
        1
    );
}

#[tokio::test]
async fn two_rules_undoing_each_other_stop_after_ten_and_the_rule_says_so() {
    let app = spawn_app().await;
    let manager = app.user("manager").await;
    let agent = app.user("agent").await;
    let customer = app.customer().await;
    let swap = |name: &str, absent: &str, present: &str| {
        json!({
            "name": name,
            "trigger": {"type": "event", "events": ["ticket.updated"]},
            "conditions": {"all": [{"field": "tags", "operator": "not_contains", "value": absent}]},
            "actions": [
                {"type": "add_tags", "tags": [absent]},
                {"type": "remove_tags", "tags": [present]}
            ]
        })
    };
    let a = app
        .post("/api/automations", &manager.token, swap("Ping", "a", "b"))
        .await
        .expect(201);
    let b = app
        .post("/api/automations", &manager.token, swap("Pong", "b", "a"))
        .await
        .expect(201);
    let ticket = app.ticket_for(&customer, "Ping pong").await;
    let id = ticket["id"].as_str().unwrap().to_string();
    app.request(
        reqwest::Method::PATCH,
        &format!("/api/tickets/{id}"),
        Some(&agent.token),
        Some(json!({"tags": ["b"]})),
        &[],
    )
    .await
    .expect(200);
    // The chain stops: one rule records that it did not act.
    let mut stopped = Vec::new();
    for _ in 0..200 {
        stopped = sqlx::query_as::<_, (String, Value)>(
            "SELECT aggregate_id, payload FROM events WHERE event_type = 'AutomationLoopStopped'",
        )
        .fetch_all(&app.pool)
        .await
        .unwrap();
        if !stopped.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    let (rule, payload) = &stopped[0];
    assert!(rule == a.body["id"].as_str().unwrap() || rule == b.body["id"].as_str().unwrap());
    assert_eq!(payload["AutomationLoopStopped"]["ticket_id"], json!(id));
    assert_eq!(payload["AutomationLoopStopped"]["depth"], 11);
    let fired = ticket_log(&app, &id)
        .await
        .into_iter()
        .filter(|(t, _, _)| t == "AutomationFired")
        .count();
    assert_eq!(fired, 10, "ten rule-caused steps, then the stop");
    let shown = app
        .items_when(
            "/api/automations",
            &manager.token,
            std::time::Duration::from_secs(10),
            |items| items.iter().any(|r| r["loops_stopped"] == 1),
        )
        .await;
    assert!(
        shown
            .iter()
            .any(|r| r["loops_stopped"] == 1 && r["last_loop_stopped_at"].is_string()),
        "{shown:#?}"
    );
}

/// The instant an event of the ticket happened, by type (the last such event).
fn occurred(log: &[(String, Value, Value)], event_type: &str) -> chrono::DateTime<chrono::Utc> {
    let (_, _, payload) = log
        .iter()
        .rev()
        .find(|(t, _, _)| t == event_type)
        .unwrap_or_else(|| panic!("no {event_type} in {log:?}"));
    payload[event_type]["occurred_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_time_based_rule_acts_once_when_its_conditions_become_true_and_not_on_tickets_that_moved_on()
 {
    let app = spawn_app().await;
    let manager = app.user("manager").await;
    let agent = app.user("agent").await;
    let customer = app.customer().await;
    let park = |id: String| {
        let app = &app;
        let token = agent.token.clone();
        async move {
            for status in ["in_progress", "pending"] {
                app.patch(
                    &format!("/api/tickets/{id}/status"),
                    &token,
                    json!({"status": status}),
                )
                .await
                .expect(200);
            }
        }
    };
    // Parked before the rule exists: the rule applies to it too.
    let early = app
        .ticket_for(&customer, "Waiting since before the rule")
        .await;
    let early_id = early["id"].as_str().unwrap().to_string();
    park(early_id.clone()).await;

    // "Pending for more than 0.001 hours" (3.6 seconds), once.
    let rule = app
        .post(
            "/api/automations",
            &manager.token,
            json!({
                "name": "Nudge the customer",
                "trigger": {"type": "time"},
                "conditions": {"all": [
                    {"field": "status", "operator": "is", "value": "pending"},
                    {"field": "hours_since_status_change", "operator": "greater_than", "value": 0.001},
                    {"field": "tags", "operator": "not_contains", "value": "nudged"}
                ]},
                "actions": [
                    {"type": "add_tags", "tags": ["nudged"]},
                    {"type": "add_public_reply", "body": "Are you still there?"}
                ]
            }),
        )
        .await
        .expect(201);
    let rule_id = rule.body["id"].as_str().unwrap().to_string();

    let parked = app.ticket_for(&customer, "Waiting on the customer").await;
    let parked_id = parked["id"].as_str().unwrap().to_string();
    park(parked_id.clone()).await;
    // Parked, then back to work before the rule is due: it never acts on it.
    let resumed = app.ticket_for(&customer, "Waiting, then not").await;
    let resumed_id = resumed["id"].as_str().unwrap().to_string();
    park(resumed_id.clone()).await;
    app.patch(
        &format!("/api/tickets/{resumed_id}/status"),
        &agent.token,
        json!({"status": "in_progress"}),
    )
    .await
    .expect(200);
    // Never parked: never due.
    let busy = app.ticket_for(&customer, "Being worked on").await;
    let busy_id = busy["id"].as_str().unwrap().to_string();

    // Tried on the parked ticket now, the rule does not act yet and says when it will.
    let tried = app
        .post(
            &format!("/api/automations/{rule_id}/test"),
            &manager.token,
            json!({"ticket_id": parked_id}),
        )
        .await
        .expect(200);
    let parked_at = occurred(&ticket_log(&app, &parked_id).await, "TicketStatusChanged");
    if tried.body["would_act"] == false {
        let due: chrono::DateTime<chrono::Utc> =
            tried.body["due_at"].as_str().unwrap().parse().unwrap();
        let after = (due - parked_at).num_milliseconds();
        assert!(
            (3_000..=5_000).contains(&after),
            "due {after} ms after parking"
        );
    }

    for id in [&early_id, &parked_id] {
        let log = wait_for_event(&app, id, "CommentAdded").await;
        let types: Vec<&str> = log.iter().map(|(t, _, _)| t.as_str()).collect();
        let fired = types
            .iter()
            .position(|t| *t == "AutomationFired")
            .unwrap_or_else(|| panic!("{types:?}"));
        let (_, metadata, payload) = &log[fired];
        assert_eq!(payload["AutomationFired"]["rule_id"], json!(rule_id));
        assert_eq!(payload["AutomationFired"]["cause"], "time");
        // Caused by the ticket as it stood: its version then, the status change.
        assert_eq!(
            payload["AutomationFired"]["cause_sequence"],
            json!(fired as i64),
            "{types:?}"
        );
        assert_eq!(metadata["actor_id"], json!(rule_id));
        assert_eq!(metadata["actor_kind"], "automation");
        assert_eq!(metadata["causation_id"], format!("ticket/{id}/{fired}"));
        // Not before its condition held: 3.6 s after the ticket was parked.
        let waited = (occurred(&log, "AutomationFired") - occurred(&log, "TicketStatusChanged"))
            .num_milliseconds();
        assert!(waited >= 3_600, "acted {waited} ms after parking");
        assert_eq!(types[fired + 1], "TicketDetailsUpdated", "{types:?}");
        assert_eq!(types[fired + 2], "CommentAdded", "{types:?}");
        let (_, _, reply) = &log[fired + 2];
        assert_eq!(reply["CommentAdded"]["internal"], false);
    }
    // Long enough past the others' due instants: still once each, and never on the other two.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    for id in [&early_id, &parked_id] {
        let log = ticket_log(&app, id).await;
        let fired = log
            .iter()
            .filter(|(t, _, _)| t == "AutomationFired")
            .count();
        assert_eq!(fired, 1, "{log:?}");
    }
    for id in [&resumed_id, &busy_id] {
        let log = ticket_log(&app, id).await;
        assert!(
            log.iter().all(|(t, _, _)| t != "AutomationFired"),
            "{log:?}"
        );
    }
    let log = ticket_log(&app, &parked_id).await;
    let read = app
        .read_ticket(&manager.token, &parked_id, log.len() as i64)
        .await
        .expect(200);
    assert_eq!(read.body["tags"], json!(["nudged"]));
    assert_eq!(
        read.body["status"], "pending",
        "the rule only tagged and replied"
    );
}
