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
    let names: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
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
    let rule = app
        .post(
            "/api/automations",
            &manager.token,
            vip_rule(&agent.user_id.to_string()),
        )
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
