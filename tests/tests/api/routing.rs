//! Agents, skills, teams, shifts and routing from the outside: tickets go where the formula says,
//! breaks and shifts are respected, the queue drains when an agent comes on shift, two server
//! processes never overfill an agent, and every decision can be explained from the log.

use std::time::Duration;

use chrono::Utc;
use docket_tests::live::SseClient;
use docket_tests::{Session, TestApp, fresh_database, spawn_app, spawn_app_on};
use reqwest::Method;
use serde_json::{Value, json};

async fn skill(app: &TestApp, admin: &Session, name: &str) -> String {
    app.post("/api/skills", &admin.token, json!({"name": name}))
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn set_skills(app: &TestApp, admin: &Session, agent: &Session, skills: &[(&str, u8)]) {
    let skills: Vec<Value> = skills
        .iter()
        .map(|(id, p)| json!({"skill_id": id, "proficiency": p}))
        .collect();
    app.put(
        &format!("/api/agents/{}/skills", agent.user_id),
        &admin.token,
        json!({ "skills": skills }),
    )
    .await
    .expect(200);
}

/// The agent starts a shift (which makes them available); returns the shift.
async fn start_shift(app: &TestApp, agent: &Session) -> Value {
    app.post("/api/shifts/start", &agent.token, json!({}))
        .await
        .expect(201)
        .body
}

/// A ticket for a fresh customer, opened by `staff` with extra routing fields.
async fn ticket(app: &TestApp, staff: &Session, priority: &str, extra: Value) -> Value {
    ticket_and_token(app, staff, priority, extra).await.0
}

/// The same, with the consistency token of the write (to read the models after it).
async fn ticket_and_token(
    app: &TestApp,
    staff: &Session,
    priority: &str,
    extra: Value,
) -> (Value, String) {
    let customer = app.customer().await;
    let mut body = json!({
        "subject": "Cannot pay my invoice",
        "description": "The card is refused.",
        "priority": priority,
        "customer_id": customer.user_id,
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            body.insert(k.clone(), v.clone());
        }
    }
    let response = app
        .post("/api/tickets", &staff.token, body)
        .await
        .expect(201);
    let token = response.consistency_token().unwrap();
    (response.body, token)
}

async fn get_after(app: &TestApp, path: &str, token: &str, seen: &str) -> Value {
    app.request(
        Method::GET,
        path,
        Some(token),
        None,
        &[("X-Consistency-Token", seen)],
    )
    .await
    .expect(200)
    .body
}

async fn assign(app: &TestApp, staff: &Session, ticket: &Value, agent: &Session) -> String {
    app.post(
        &format!("/api/tickets/{}/assign", ticket["id"].as_str().unwrap()),
        &staff.token,
        json!({"agent_id": agent.user_id}),
    )
    .await
    .expect(200)
    .consistency_token()
    .unwrap()
}

async fn agent_view(app: &TestApp, token: &str, agent: &Session, consistency: &str) -> Value {
    app.request(
        Method::GET,
        &format!("/api/agents/{}", agent.user_id),
        Some(token),
        None,
        &[("X-Consistency-Token", consistency)],
    )
    .await
    .expect(200)
    .body
}

async fn routing_of(app: &TestApp, token: &str, ticket: &Value) -> Value {
    app.get(
        &format!("/api/tickets/{}/routing", ticket["id"].as_str().unwrap()),
        token,
    )
    .await
    .expect(200)
    .body
}

fn id(session: &Session) -> Value {
    json!(session.user_id.to_string())
}

/// Polls the ticket until `check` holds, or fails after `wait`.
async fn eventually(
    app: &TestApp,
    token: &str,
    ticket: &str,
    wait: Duration,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        // The list model may not have the ticket yet (404): that is "not yet" too.
        let response = app.get(&format!("/api/tickets/{ticket}"), token).await;
        let body = response.body;
        if response.status == 200 && check(&body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached within {wait:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn tickets_are_routed_exactly_as_the_formula_says() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let billing = skill(&app, &admin, "Billing").await;
    let network = skill(&app, &admin, "Network").await;
    let (ana, ben, cy) = (
        app.user("agent").await,
        app.user("agent").await,
        app.user("agent").await,
    );
    set_skills(&app, &admin, &ana, &[(&billing, 4)]).await;
    set_skills(&app, &admin, &ben, &[(&billing, 3)]).await;
    set_skills(&app, &admin, &cy, &[(&network, 5)]).await;

    // Given: Ana already holds two tickets, one of them critical (before anyone is on shift,
    // so nothing is routed behind our back).
    let held = ticket(&app, &admin, "critical", json!({})).await;
    assign(&app, &admin, &held, &ana).await;
    let held = ticket(&app, &admin, "low", json!({})).await;
    let token = assign(&app, &admin, &held, &ana).await;
    let view = agent_view(&app, &admin.token, &ana, &token).await;
    assert_eq!(
        (
            view["open_tickets"].clone(),
            view["critical_tickets"].clone()
        ),
        (json!(2), json!(1))
    );
    assert_eq!(
        view["routable"],
        json!(false),
        "offline and off shift: {view}"
    );
    for agent in [&ana, &ben, &cy] {
        start_shift(&app, agent).await;
    }

    // When: a billing ticket is auto-assigned.
    // Ana: 2 + 2×1 − 5×4 = −16; Ben: 0 + 0 − 5×3 = −15; Cy lacks the skill.
    let first = ticket(
        &app,
        &admin,
        "medium",
        json!({"auto_assign": true, "skill": "billing"}),
    )
    .await;
    assert_eq!(first["assignee_id"], id(&ana), "{first}");
    let why = routing_of(&app, &admin.token, &first).await;
    let decision = &why["decisions"][0];
    assert_eq!(decision["chosen_agent_id"], id(&ana));
    assert_eq!(decision["skill_id"], json!(billing));
    assert_eq!(decision["eligible"], json!(2));
    let scores: Vec<f64> = decision["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["score"].as_f64().unwrap())
        .collect();
    assert_eq!(scores, vec![-16.0, -15.0]);
    assert_eq!(decision["candidates"][0]["proficiency"], json!(4));
    assert_eq!(
        decision["excluded"],
        json!([{"reason": "lacks_skill", "agents": 1}])
    );
    assert_eq!(
        decision["weights"],
        json!({"active_tickets": 1.0, "critical_tickets": 2.0, "proficiency": 5.0})
    );

    // Then Ana holds 3 (−15) and ties with Ben (−15): Ben was assigned least recently (never).
    let second = ticket(
        &app,
        &admin,
        "medium",
        json!({"auto_assign": true, "skill": billing}),
    )
    .await;
    assert_eq!(second["assignee_id"], id(&ben), "{second}");
    let why = routing_of(&app, &admin.token, &second).await;
    let scores: Vec<f64> = why["decisions"][0]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["score"].as_f64().unwrap())
        .collect();
    assert_eq!(scores, vec![-15.0, -15.0]);

    // A network ticket can only go to Cy.
    let third = ticket(
        &app,
        &admin,
        "high",
        json!({"auto_assign": true, "skill": "Network"}),
    )
    .await;
    assert_eq!(third["assignee_id"], id(&cy));

    // The assignment is the router's, and customers never see the routing.
    let history = app
        .get(
            &format!("/api/tickets/{}/history", third["id"].as_str().unwrap()),
            &admin.token,
        )
        .await
        .expect(200)
        .body;
    let routed: Vec<&Value> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "TicketRouted" || e["type"] == "TicketAssigned")
        .collect();
    assert_eq!(routed.len(), 2, "{history}");
    assert!(
        routed.iter().all(|e| e["actor"]["role"] == "system"),
        "{history}"
    );
    let customer = app.customer().await;
    app.get(
        &format!("/api/tickets/{}/routing", third["id"].as_str().unwrap()),
        &customer.token,
    )
    .await
    .expect_problem(403, "forbidden");
}

#[tokio::test]
async fn an_agent_on_a_break_stops_receiving_tickets() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (ana, ben) = (app.user("agent").await, app.user("agent").await);
    let shift = start_shift(&app, &ana).await;
    start_shift(&app, &ben).await;
    // Ben holds one ticket, so Ana (0) wins while she works.
    let held = ticket(&app, &admin, "low", json!({"auto_assign": true})).await;
    assert_eq!(held["assignee_id"], id(&ana));
    let next = ticket(&app, &admin, "low", json!({"auto_assign": true})).await;
    assert_eq!(
        next["assignee_id"],
        id(&ben),
        "a tie goes to the least recently assigned"
    );
    let third = ticket(&app, &admin, "low", json!({"auto_assign": true})).await;
    assert_eq!(third["assignee_id"], id(&ana));

    // Ana takes a break that has begun: Ben gets the next tickets although Ana would win.
    let now = Utc::now();
    let on_break = app
        .post(
            &format!("/api/shifts/{}/breaks", shift["id"].as_str().unwrap()),
            &ana.token,
            json!({"starts_at": now - chrono::Duration::seconds(1), "ends_at": now + chrono::Duration::minutes(15), "reason": "lunch"}),
        )
        .await
        .expect(201)
        .consistency_token()
        .unwrap();
    let during = ticket(&app, &admin, "low", json!({"auto_assign": true})).await;
    assert_eq!(during["assignee_id"], id(&ben), "{during}");
    let why = routing_of(&app, &admin.token, &during).await;
    assert_eq!(
        why["decisions"][0]["excluded"],
        json!([{"reason": "on_break", "agents": 1}])
    );
    let ana_now = get_after(
        &app,
        &format!("/api/agents/{}", ana.user_id),
        &admin.token,
        &on_break,
    )
    .await;
    assert_eq!(ana_now["shift"]["on_break"], json!(true), "{ana_now}");
    let available = get_after(&app, "/api/agents/available", &admin.token, &on_break).await;
    let ids: Vec<&Value> = available["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["id"])
        .collect();
    assert_eq!(ids, vec![&id(&ben)]);

    // Breaks may not overlap, and must not lie in the past.
    app.post(
        &format!("/api/shifts/{}/breaks", shift["id"].as_str().unwrap()),
        &ana.token,
        json!({"starts_at": now + chrono::Duration::minutes(10), "ends_at": now + chrono::Duration::minutes(20)}),
    )
    .await
    .expect_problem(409, "workforce-conflict");
    app.post(
        &format!("/api/shifts/{}/breaks", shift["id"].as_str().unwrap()),
        &ana.token,
        json!({"starts_at": now - chrono::Duration::hours(2), "ends_at": now - chrono::Duration::hours(1)}),
    )
    .await
    .expect_problem(422, "validation-failed");
    // And only Ana or a manager schedule hers.
    app.post(
        &format!("/api/shifts/{}/breaks", shift["id"].as_str().unwrap()),
        &ben.token,
        json!({"starts_at": now + chrono::Duration::hours(1), "ends_at": now + chrono::Duration::hours(2)}),
    )
    .await
    .expect_problem(403, "forbidden");
}

#[tokio::test]
async fn a_ticket_nobody_can_take_waits_and_is_assigned_when_an_agent_comes_on_shift() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let network = skill(&app, &admin, "Network").await;
    let ana = app.user("agent").await;
    set_skills(&app, &admin, &ana, &[(&network, 2)]).await;

    let waiting = ticket(
        &app,
        &admin,
        "high",
        json!({"auto_assign": true, "skill": "Network"}),
    )
    .await;
    assert_eq!(waiting["assignee_id"], Value::Null);
    let older_low = ticket(&app, &admin, "low", json!({})).await;
    let (critical, seen) =
        ticket_and_token(&app, &admin, "critical", json!({"skill": network})).await;
    let why = routing_of(&app, &admin.token, &waiting).await;
    // Nobody is on shift: routing considered no one.
    assert_eq!(why["decisions"][0]["chosen_agent_id"], Value::Null);
    assert_eq!(why["decisions"][0]["eligible"], json!(0));

    // The queue, in the order it will be served: most urgent first, then oldest.
    let queue = get_after(&app, "/api/tickets/queue", &admin.token, &seen).await;
    let order: Vec<&Value> = queue["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["ticket_id"])
        .collect();
    assert_eq!(
        order,
        vec![&critical["id"], &waiting["id"], &older_low["id"]],
        "{queue}"
    );
    assert_eq!(queue["total"], json!(3));
    assert_eq!(queue["items"][1]["skill_id"], json!(network));

    // Ana comes on shift: the background router gives her the queue, most urgent first.
    start_shift(&app, &ana).await;
    for t in [&critical, &waiting, &older_low] {
        let done = eventually(
            &app,
            &admin.token,
            t["id"].as_str().unwrap(),
            Duration::from_secs(15),
            |b| !b["assignee_id"].is_null(),
        )
        .await;
        assert_eq!(done["assignee_id"], id(&ana));
    }
    let why = routing_of(&app, &admin.token, &waiting).await;
    assert_eq!(why["decisions"].as_array().unwrap().len(), 2, "{why}");
    assert_eq!(why["decisions"][1]["chosen_agent_id"], id(&ana));
    assert_eq!(
        why["decisions"][1]["skill_id"],
        json!(network),
        "the requirement is kept"
    );
}

#[tokio::test]
async fn queue_processing_claims_and_rebalancing_respect_skills_and_capacity() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let manager = app.user("manager").await;
    let (ana, ben) = (app.user("agent").await, app.user("agent").await);

    // Claiming: Ana takes a queued ticket; nobody can claim it again.
    let queued = ticket(&app, &admin, "medium", json!({})).await;
    let claimed = app
        .post(
            &format!(
                "/api/agents/{}/claim/{}",
                ana.user_id,
                queued["id"].as_str().unwrap()
            ),
            &ana.token,
            json!({}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(claimed["assignee_id"], id(&ana));
    app.post(
        &format!(
            "/api/agents/{}/claim/{}",
            ben.user_id,
            queued["id"].as_str().unwrap()
        ),
        &ben.token,
        json!({}),
    )
    .await
    .expect_problem(409, "already-claimed");
    // Agents claim for themselves only.
    let other = ticket(&app, &admin, "medium", json!({})).await;
    app.post(
        &format!(
            "/api/agents/{}/claim/{}",
            ana.user_id,
            other["id"].as_str().unwrap()
        ),
        &ben.token,
        json!({}),
    )
    .await
    .expect_problem(403, "forbidden");

    // Ana takes two more, then her capacity drops to 1: two of her three must move.
    for _ in 0..2 {
        let t = ticket(&app, &admin, "low", json!({})).await;
        app.post(
            &format!(
                "/api/agents/{}/claim/{}",
                ana.user_id,
                t["id"].as_str().unwrap()
            ),
            &manager.token,
            json!({}),
        )
        .await
        .expect(200);
    }
    app.put(
        &format!("/api/agents/{}/capacity", ana.user_id),
        &ana.token,
        json!({"capacity": 1}),
    )
    .await
    .expect_problem(403, "forbidden");
    let capped = app
        .put(
            &format!("/api/agents/{}/capacity", ana.user_id),
            &manager.token,
            json!({"capacity": 1}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(capped["capacity"], json!(1));
    assert_eq!(capped["open_tickets"], json!(3));
    // At capacity: no more claims.
    let extra = ticket(&app, &admin, "low", json!({})).await;
    app.post(
        &format!(
            "/api/agents/{}/claim/{}",
            ana.user_id,
            extra["id"].as_str().unwrap()
        ),
        &ana.token,
        json!({}),
    )
    .await
    .expect_problem(409, "at-capacity");
    start_shift(&app, &ana).await;
    start_shift(&app, &ben).await;

    let dry = app
        .post(
            "/api/workload/rebalance",
            &manager.token,
            json!({"dry_run": true}),
        )
        .await
        .expect(200)
        .body;
    let moves = dry["moves"].as_array().unwrap();
    assert_eq!(moves.len(), 2, "{dry}");
    assert!(
        moves
            .iter()
            .all(|m| m["from_agent_id"] == id(&ana) && m["to_agent_id"] == id(&ben))
    );
    app.post(
        "/api/workload/rebalance",
        &ana.token,
        json!({"dry_run": true}),
    )
    .await
    .expect_problem(403, "forbidden");
    let done = app
        .post("/api/workload/rebalance", &manager.token, json!({}))
        .await
        .expect(200)
        .body;
    assert_eq!(done["moves"].as_array().unwrap().len(), 2, "{done}");
    for m in done["moves"].as_array().unwrap() {
        let t = eventually(
            &app,
            &admin.token,
            m["ticket_id"].as_str().unwrap(),
            Duration::from_secs(5),
            |b| b["assignee_id"] == id(&ben),
        )
        .await;
        assert_eq!(t["assignee_id"], id(&ben));
    }
    // The oldest (work in progress) stays with Ana.
    let first = app
        .get(
            &format!("/api/tickets/{}", queued["id"].as_str().unwrap()),
            &admin.token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(first["assignee_id"], id(&ana));

    // Processing the queue (here: the two unclaimed tickets) respects Ana's capacity.
    let processed = app
        .post("/api/tickets/process-queue", &ana.token, json!({}))
        .await
        .expect(200)
        .body;
    assert!(
        processed["moves"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["to_agent_id"] == id(&ben)),
        "{processed}"
    );
    for t in [&other, &extra] {
        let done = eventually(
            &app,
            &admin.token,
            t["id"].as_str().unwrap(),
            Duration::from_secs(10),
            |b| !b["assignee_id"].is_null(),
        )
        .await;
        assert_eq!(done["assignee_id"], id(&ben), "Ana is full");
    }
    // The workload model follows the log a moment behind the ticket list.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let workload = loop {
        let workload = app
            .get("/api/workload/agents", &admin.token)
            .await
            .expect(200)
            .body;
        let total: i64 = workload["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["open_tickets"].as_i64().unwrap())
            .sum();
        if total == 5 || tokio::time::Instant::now() > deadline {
            break workload;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let of = |s: &Session| {
        workload["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["agent_id"] == id(s))
            .cloned()
            .unwrap()
    };
    assert_eq!(of(&ana)["open_tickets"], json!(1));
    assert_eq!(of(&ana)["utilisation"], json!(1.0));
    assert_eq!(of(&ben)["open_tickets"], json!(4));
    let metrics = app
        .get("/api/workload/metrics", &admin.token)
        .await
        .expect(200)
        .body;
    assert_eq!(metrics["assigned_tickets"], json!(5));
    assert_eq!(metrics["queued_tickets"], json!(0));
    assert_eq!(metrics["agents_on_shift"], json!(2));
}

#[tokio::test]
async fn two_processes_routing_at_once_never_exceed_an_agents_capacity() {
    let (_, url) = fresh_database().await;
    let first = spawn_app_on(&url).await;
    let second = spawn_app_on(&url).await;
    let admin = first.admin().await;
    let ana = first.user("agent").await;
    first
        .put(
            &format!("/api/agents/{}/capacity", ana.user_id),
            &admin.token,
            json!({"capacity": 3}),
        )
        .await
        .expect(200);
    start_shift(&first, &ana).await;
    let mut customers = Vec::new();
    for _ in 0..10 {
        customers.push(first.customer().await);
    }
    let creates = customers.iter().enumerate().map(|(n, customer)| {
        let app = if n % 2 == 0 { &first } else { &second };
        let body = json!({"subject": format!("Ticket {n}"), "description": "Help.", "priority": "high", "customer_id": customer.user_id, "auto_assign": true});
        let token = admin.token.clone();
        async move { app.post("/api/tickets", &token, body).await.expect(201).body }
    });
    let created = futures::future::join_all(creates).await;
    let assigned = created
        .iter()
        .filter(|t| t["assignee_id"] == id(&ana))
        .count();
    assert_eq!(assigned, 3, "exactly the capacity: {created:?}");
    // And the log agrees: three assignments to Ana, none later by the background routers.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let in_log: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'TicketAssigned'
            AND payload -> 'TicketAssigned' ->> 'assignee_id' = $1",
    )
    .bind(ana.user_id.to_string())
    .fetch_one(&first.pool)
    .await
    .unwrap();
    assert_eq!(in_log, 3);
    let queue = second
        .get("/api/tickets/queue", &admin.token)
        .await
        .expect(200)
        .body;
    assert_eq!(queue["total"], json!(7));
    second.stop().await;
    first.stop().await;
}

#[tokio::test]
async fn teams_skills_and_shifts_are_managed_with_clear_errors() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let manager = app.user("manager").await;
    let (ana, ben) = (app.user("agent").await, app.user("agent").await);
    let customer = app.customer().await;

    // Skills: managers add them; names are unique ignoring case; agents may not add them.
    let billing = skill(&app, &manager, "Billing").await;
    app.post("/api/skills", &manager.token, json!({"name": "BILLING"}))
        .await
        .expect_problem(409, "already-exists");
    app.post("/api/skills", &ana.token, json!({"name": "Network"}))
        .await
        .expect_problem(403, "forbidden");
    app.post("/api/skills", &manager.token, json!({"name": "  "}))
        .await
        .expect_problem(422, "validation-failed");
    app.get("/api/skills", &customer.token)
        .await
        .expect_problem(403, "forbidden");
    app.put(
        &format!("/api/agents/{}/skills", ana.user_id),
        &manager.token,
        json!({"skills": [{"skill_id": uuid::Uuid::new_v4(), "proficiency": 3}]}),
    )
    .await
    .expect_problem(422, "validation-failed");
    app.put(
        &format!("/api/agents/{}/skills", ana.user_id),
        &manager.token,
        json!({"skills": [{"skill_id": billing, "proficiency": 6}]}),
    )
    .await
    .expect_problem(422, "validation-failed");
    app.put(
        &format!("/api/agents/{}/skills", customer.user_id),
        &manager.token,
        json!({"skills": []}),
    )
    .await
    .expect_problem(422, "validation-failed");
    let ana_view = app
        .put(
            &format!("/api/agents/{}/skills", ana.user_id),
            &manager.token,
            json!({"skills": [{"skill_id": billing, "proficiency": 5}]}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(
        ana_view["skills"],
        json!([{"skill_id": billing, "name": "Billing", "proficiency": 5}])
    );

    // Teams: a lead and a member; routing with a team considers only its members.
    let team = app
        .post("/api/teams", &manager.token, json!({"name": "Tier 2"}))
        .await
        .expect(201)
        .body;
    let team_id = team["id"].as_str().unwrap().to_string();
    app.post(
        &format!("/api/teams/{team_id}/members"),
        &manager.token,
        json!({"user_id": ben.user_id, "team_role": "lead"}),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/teams/{team_id}/members"),
        &manager.token,
        json!({"user_id": customer.user_id}),
    )
    .await
    .expect_problem(422, "validation-failed");
    app.post(
        &format!("/api/teams/{team_id}/members"),
        &ana.token,
        json!({"user_id": ana.user_id}),
    )
    .await
    .expect_problem(403, "forbidden");
    let teams = app.get("/api/teams", &ana.token).await.expect(200).body;
    assert_eq!(teams["items"][0]["members"][0]["user_id"], id(&ben));
    assert_eq!(teams["items"][0]["members"][0]["team_role"], json!("lead"));

    start_shift(&app, &ana).await;
    let ben_shift = start_shift(&app, &ben).await;
    app.post("/api/shifts/start", &ben.token, json!({}))
        .await
        .expect_problem(409, "shift-running");
    app.post(
        "/api/shifts/start",
        &ana.token,
        json!({"agent_id": ben.user_id}),
    )
    .await
    .expect_problem(403, "forbidden");
    let created = app
        .post("/api/tickets", &admin.token, json!({"subject": "Router down", "description": "Down.", "priority": "high", "customer_id": customer.user_id, "auto_assign": true, "team_id": team_id}))
        .await
        .expect(201);
    let seen = created.consistency_token().unwrap();
    let routed = created.body;
    assert_eq!(routed["assignee_id"], id(&ben), "only Tier 2 is considered");
    assert_eq!(routed["team_id"], json!(team_id));
    let by_team = app
        .request(
            Method::GET,
            &format!("/api/tickets?team_id={team_id}"),
            Some(&admin.token),
            None,
            &[("X-Consistency-Token", &seen)],
        )
        .await
        .expect(200)
        .body;
    assert_eq!(by_team["total"], json!(1), "{by_team}");
    assert_eq!(by_team["items"][0]["team_id"], json!(team_id));
    let why = routing_of(&app, &admin.token, &routed).await;
    assert_eq!(why["team_id"], json!(team_id));
    assert_eq!(
        why["decisions"][0]["excluded"],
        json!([{"reason": "not_in_team", "agents": 1}])
    );
    let team_load = app
        .request(
            Method::GET,
            "/api/workload/teams",
            Some(&admin.token),
            None,
            &[("X-Consistency-Token", &seen)],
        )
        .await
        .expect(200)
        .body;
    assert_eq!(
        team_load["items"][0]["open_tickets"],
        json!(1),
        "{team_load}"
    );
    assert_eq!(team_load["items"][0]["members"], json!(1));
    app.request(
        Method::DELETE,
        &format!("/api/teams/{team_id}/members?user_id={}", ana.user_id),
        Some(&manager.token),
        None,
        &[],
    )
    .await
    .expect_problem(404, "not-found");
    app.request(
        Method::DELETE,
        &format!("/api/teams/{team_id}/members?user_id={}", ben.user_id),
        Some(&manager.token),
        None,
        &[],
    )
    .await
    .expect(204);
    // Routing follows the membership change at once: Tier 2 has no one left.
    let orphan = app
        .post("/api/tickets", &admin.token, json!({"subject": "Switch down", "description": "Down.", "priority": "high", "customer_id": customer.user_id, "auto_assign": true, "team_id": team_id}))
        .await
        .expect(201)
        .body;
    assert_eq!(orphan["assignee_id"], json!(null), "{orphan}");
    assert_eq!(orphan["team_id"], json!(team_id));
    app.post("/api/tickets", &admin.token, json!({"subject": "x", "description": "y", "priority": "low", "customer_id": customer.user_id, "team_id": uuid::Uuid::new_v4()}))
        .await
        .expect_problem(422, "validation-failed");
    app.post("/api/tickets", &admin.token, json!({"subject": "x", "description": "y", "priority": "low", "customer_id": customer.user_id, "skill": "Juggling"}))
        .await
        .expect_problem(422, "validation-failed");

    // Shifts end once; the agent goes offline and off the routing.
    let ended = app
        .post(
            &format!("/api/shifts/{}/end", ben_shift["id"].as_str().unwrap()),
            &manager.token,
            json!({}),
        )
        .await
        .expect(200);
    assert!(!ended.body["ended_at"].is_null());
    app.post(
        &format!("/api/shifts/{}/end", ben_shift["id"].as_str().unwrap()),
        &ben.token,
        json!({}),
    )
    .await
    .expect_problem(409, "workforce-conflict");
    let token = ended.consistency_token().unwrap();
    let ben_now = agent_view(&app, &admin.token, &ben, &token).await;
    assert_eq!(ben_now["status"], json!("offline"));
    assert_eq!(ben_now["shift"], Value::Null);
    let shifts = app
        .get(&format!("/api/shifts/agent/{}", ben.user_id), &admin.token)
        .await
        .expect(200)
        .body;
    assert_eq!(shifts["items"].as_array().unwrap().len(), 1);
    assert_eq!(shifts["total"], 1);
    assert!(!shifts["items"][0]["ended_at"].is_null());
    app.post(
        &format!("/api/shifts/{}/end", uuid::Uuid::new_v4()),
        &manager.token,
        json!({}),
    )
    .await
    .expect_problem(404, "not-found");
}

#[tokio::test]
async fn status_changes_reach_staff_on_the_live_stream_and_predictions_say_how() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let ana = app.user("agent").await;
    let mut stream = SseClient::connect(&app.address, &admin.token, None, "").await;
    app.put(
        &format!("/api/agents/{}/status", ana.user_id),
        &ana.token,
        json!({"status": "busy"}),
    )
    .await
    .expect(200);
    let event = stream
        .until("agent_status", Duration::from_secs(10))
        .await
        .expect("an agent_status message");
    assert_eq!(event.data["user_id"], id(&ana));
    assert_eq!(event.data["status"], json!("busy"));
    assert_eq!(event.data["data"]["from"], json!("offline"));
    let other = app.user("agent").await;
    app.put(
        &format!("/api/agents/{}/status", ana.user_id),
        &other.token,
        json!({"status": "away"}),
    )
    .await
    .expect_problem(403, "forbidden");
    app.put(
        &format!("/api/agents/{}/status", ana.user_id),
        &ana.token,
        json!({"status": "sleeping"}),
    )
    .await
    .expect_problem(422, "validation-failed");

    // Two tickets now: the forecast for this hour next week would see them; today's has none.
    ticket(&app, &admin, "low", json!({})).await;
    let predictions = app
        .get("/api/workload/predictions?hours=12", &admin.token)
        .await
        .expect(200)
        .body;
    assert_eq!(predictions["hours"].as_array().unwrap().len(), 12);
    assert!(predictions["method"].as_str().unwrap().contains("seasonal"));
    assert_eq!(
        predictions["holdout_mean_absolute_error"],
        Value::Null,
        "no five weeks of history yet"
    );
    assert!(
        predictions["hours"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["expected_tickets"] == json!(0.0))
    );
    app.get("/api/workload/predictions?hours=0", &admin.token)
        .await
        .expect_problem(400, "invalid-parameter");
}

#[tokio::test]
async fn an_escalation_rule_hands_an_overdue_ticket_to_its_team_lead() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (lead, member) = (app.user("agent").await, app.user("agent").await);
    let team = app
        .post("/api/teams", &admin.token, json!({"name": "Escalations"}))
        .await
        .expect(201)
        .body;
    let team_id = team["id"].as_str().unwrap().to_string();
    for (who, role) in [(&member, "member"), (&lead, "lead")] {
        app.post(
            &format!("/api/teams/{team_id}/members"),
            &admin.token,
            json!({"user_id": who.user_id, "team_role": role}),
        )
        .await
        .expect(200);
    }
    let slow = json!({"first_response": 3600, "resolution": 86400, "escalation": 7200});
    let fast = json!({"first_response": 2, "resolution": 86400, "escalation": 7200});
    app.post(
        "/api/sla/policies",
        &admin.token,
        json!({"name": "Fast high", "position": 1, "conditions": {"priorities": ["high"]},
               "targets": {"critical": slow, "high": fast, "medium": slow, "low": slow}}),
    )
    .await
    .expect(201);
    let rule = app
        .post(
            "/api/escalation-rules",
            &admin.token,
            json!({"name": "Overdue to the lead", "priorities": ["high"],
                   "conditions": [{"type": "response_overdue"}],
                   "actions": [{"type": "escalate", "parameters": {"to_team_lead": true}}]}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(
        rule["actions"][0]["parameters"]["to_team_lead"],
        json!(true)
    );

    // Nobody is on shift, so only the rule can move the ticket.
    let waiting = ticket(&app, &admin, "high", json!({"team_id": team_id})).await;
    let done = eventually(
        &app,
        &admin.token,
        waiting["id"].as_str().unwrap(),
        Duration::from_secs(20),
        |b| !b["assignee_id"].is_null(),
    )
    .await;
    assert_eq!(
        done["assignee_id"],
        id(&lead),
        "the lead, not the member: {done}"
    );
    assert_eq!(done["escalation_level"], json!(1));
}
