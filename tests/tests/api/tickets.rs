use docket_tests::{OPENED_VERSION, Session, TestApp, TestResponse, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

fn id_of(ticket: &Value) -> String {
    ticket["id"].as_str().unwrap().to_string()
}

/// Moves ticket `id` to `status` as `token`; the answer must be 200.
async fn set_status(app: &TestApp, token: &str, id: &str, status: &str) -> TestResponse {
    app.patch(
        &format!("/api/tickets/{id}/status"),
        token,
        json!({"status": status}),
    )
    .await
    .expect(200)
}

struct Desk {
    app: TestApp,
    customer: Session,
    other_customer: Session,
    agent: Session,
    manager: Session,
    viewer: Session,
}

async fn desk() -> Desk {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let other_customer = app.customer().await;
    let agent = app.user("agent").await;
    let manager = app.user("manager").await;
    let viewer = app.user("viewer").await;
    Desk {
        app,
        customer,
        other_customer,
        agent,
        manager,
        viewer,
    }
}

#[tokio::test]
async fn a_customer_opens_a_ticket_and_reads_it_back() {
    let desk = desk().await;
    let app = &desk.app;
    let created = app
        .post(
            "/api/tickets",
            &desk.customer.token,
            json!({"subject": "VPN drops every hour", "description": "Since Monday.",
                   "priority": "high", "category": "network", "tags": ["vpn", "remote"]}),
        )
        .await
        .expect(201);
    let ticket = &created.body;
    let id = id_of(ticket);
    assert!(uuid::Uuid::parse_str(&id).is_ok());
    assert_eq!(ticket["number"], "TKT-000001");
    assert_eq!(ticket["status"], "new");
    assert_eq!(ticket["priority"], "high");
    assert_eq!(ticket["version"], OPENED_VERSION);
    assert_eq!(ticket["customer_id"], json!(desk.customer.user_id));
    assert_eq!(ticket["escalation_level"], 0);
    assert_eq!(ticket["assignee_id"], Value::Null);
    let opened_etag = format!("\"{OPENED_VERSION}\"");
    assert_eq!(created.header("etag"), Some(opened_etag.clone()));
    assert_eq!(
        created.header("location"),
        Some(format!("/api/tickets/{id}"))
    );
    assert!(created.consistency_token().is_some());

    let read = app
        .read_ticket(&desk.customer.token, &id, 1)
        .await
        .expect(200);
    assert_eq!(read.body["subject"], "VPN drops every hour");
    assert_eq!(read.body["tags"], json!(["vpn", "remote"]));
    assert_eq!(read.body["comments"], json!([]));
    assert_eq!(read.header("etag"), Some(opened_etag));

    let second = app.ticket_for(&desk.customer, "Another one").await;
    assert_eq!(second["number"], "TKT-000002");
}

#[tokio::test]
async fn staff_open_tickets_for_a_customer_they_name() {
    let desk = desk().await;
    let app = &desk.app;
    let body = |customer: Option<uuid::Uuid>| {
        let mut body = json!({"subject": "Phone call", "description": "Customer called in.", "priority": "low"});
        if let Some(customer) = customer {
            body["customer_id"] = json!(customer);
        }
        body
    };
    let missing = app
        .post("/api/tickets", &desk.agent.token, body(None))
        .await
        .expect_problem(422, "validation-failed");
    assert_eq!(missing.body["field"], "customer_id");
    let not_a_customer = app
        .post(
            "/api/tickets",
            &desk.agent.token,
            body(Some(desk.manager.user_id)),
        )
        .await
        .expect_problem(422, "validation-failed");
    assert_eq!(not_a_customer.body["field"], "customer_id");
    app.post(
        "/api/tickets",
        &desk.agent.token,
        body(Some(uuid::Uuid::new_v4())),
    )
    .await
    .expect_problem(422, "validation-failed");
    let created = app
        .post(
            "/api/tickets",
            &desk.agent.token,
            body(Some(desk.customer.user_id)),
        )
        .await
        .expect(201);
    assert_eq!(created.body["customer_id"], json!(desk.customer.user_id));
    app.post(
        "/api/tickets",
        &desk.viewer.token,
        body(Some(desk.customer.user_id)),
    )
    .await
    .expect_problem(403, "forbidden");
    app.post(
        "/api/tickets",
        &desk.customer.token,
        body(Some(desk.other_customer.user_id)),
    )
    .await
    .expect_problem(403, "forbidden");
}

#[tokio::test]
async fn customers_see_only_their_own_tickets() {
    let desk = desk().await;
    let app = &desk.app;
    let mine = app.ticket_for(&desk.customer, "Mine").await;
    let theirs = app.ticket_for(&desk.other_customer, "Theirs").await;
    let token = app
        .post(
            &format!("/api/tickets/{}/comments", id_of(&theirs)),
            &desk.agent.token,
            json!({"body": "sync point"}),
        )
        .await
        .expect(201)
        .consistency_token()
        .unwrap();
    let listed = app
        .request(
            Method::GET,
            "/api/tickets",
            Some(&desk.customer.token),
            None,
            &[("X-Consistency-Token", &token)],
        )
        .await
        .expect(200);
    assert_eq!(listed.body["total"], 1);
    assert_eq!(listed.body["items"][0]["id"], mine["id"]);
    let snooping = app
        .get(
            &format!("/api/tickets?customer_id={}", desk.other_customer.user_id),
            &desk.customer.token,
        )
        .await
        .expect(200);
    assert_eq!(snooping.body["total"], 0);
    // Someone else's ticket does not exist, as far as a customer can tell.
    for path in ["", "/history", "/comments"] {
        app.get(
            &format!("/api/tickets/{}{path}", id_of(&theirs)),
            &desk.customer.token,
        )
        .await
        .expect_problem(404, "not-found");
    }
    app.post(
        &format!("/api/tickets/{}/comments", id_of(&theirs)),
        &desk.customer.token,
        json!({"body": "hi"}),
    )
    .await
    .expect_problem(404, "not-found");
    let staff = app
        .request(
            Method::GET,
            "/api/tickets",
            Some(&desk.viewer.token),
            None,
            &[("X-Consistency-Token", &token)],
        )
        .await
        .expect(200);
    assert_eq!(staff.body["total"], 2);
}

#[tokio::test]
async fn the_list_filters_sorts_and_pages() {
    let desk = desk().await;
    let app = &desk.app;
    let mut last_token = String::new();
    let specs = [
        ("critical", "billing", vec!["refund"]),
        ("low", "billing", vec![]),
        ("high", "network", vec!["vpn"]),
        ("critical", "network", vec!["vpn", "refund"]),
    ];
    let mut ids = Vec::new();
    for (priority, category, tags) in specs {
        let created = app
            .post(
                "/api/tickets",
                &desk.customer.token,
                json!({"subject": format!("{priority} {category}"), "description": "d",
                       "priority": priority, "category": category, "tags": tags}),
            )
            .await
            .expect(201);
        ids.push(id_of(&created.body));
        last_token = created.consistency_token().unwrap();
    }
    let assigned = app
        .post(
            &format!("/api/tickets/{}/assign", ids[2]),
            &desk.manager.token,
            json!({"agent_id": desk.agent.user_id}),
        )
        .await
        .expect(200);
    set_status(app, &desk.agent.token, &ids[0], "pending").await;
    let status_token = set_status(app, &desk.agent.token, &ids[1], "open")
        .await
        .consistency_token()
        .unwrap();
    assert!(assigned.consistency_token().is_some());
    let _ = last_token;

    let agent_token = desk.agent.token.clone();
    let list = |query: &str| {
        let query = query.to_string();
        let token = status_token.clone();
        let agent_token = agent_token.clone();
        async move {
            app.request(
                Method::GET,
                &format!("/api/tickets?{query}"),
                Some(&agent_token),
                None,
                &[("X-Consistency-Token", &token)],
            )
            .await
            .expect(200)
            .body
        }
    };
    let subjects = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["subject"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(list("priority=critical").await["total"], 2);
    assert_eq!(list("priority=critical,low").await["total"], 3);
    assert_eq!(list("status=pending,open").await["total"], 2);
    assert_eq!(list("status=new").await["total"], 2);
    assert_eq!(list("category=network").await["total"], 2);
    assert_eq!(list("tag=refund").await["total"], 2);
    assert_eq!(list("tag=vpn&priority=critical").await["total"], 1);
    let by_assignee = list(&format!("assignee_id={}", desk.agent.user_id)).await;
    assert_eq!(subjects(&by_assignee), ["high network"]);
    assert_eq!(
        list(&format!("customer_id={}", desk.customer.user_id)).await["total"],
        4
    );
    assert_eq!(
        subjects(&list("sort=number").await),
        [
            "critical billing",
            "low billing",
            "high network",
            "critical network"
        ]
    );
    assert_eq!(
        subjects(&list("sort=-number").await),
        [
            "critical network",
            "high network",
            "low billing",
            "critical billing"
        ]
    );
    assert_eq!(
        subjects(&list("sort=-priority").await)[..2],
        ["critical billing", "critical network"]
    );
    let page = list("sort=number&page=2&page_size=3").await;
    assert_eq!(page["total"], 4);
    assert_eq!(page["page"], 2);
    assert_eq!(page["page_size"], 3);
    assert_eq!(subjects(&page), ["critical network"]);

    for bad in [
        "page_size=101",
        "page=0",
        "status=started",
        "priority=urgent",
        "sort=colour",
    ] {
        let problem = app
            .get(&format!("/api/tickets?{bad}"), &desk.agent.token)
            .await
            .expect_problem(400, "invalid-parameter");
        assert_eq!(
            problem.body["field"],
            bad.split('=').next().unwrap(),
            "{bad}: {}",
            problem.text
        );
    }
}

/// A list narrowed by status and priority alone takes its total from counts the projection keeps
/// (`ticket_counts`): they must follow every new ticket, priority change and status change, and
/// lose the pair a last ticket leaves.
#[tokio::test]
async fn list_totals_by_status_and_priority_follow_every_change() {
    let desk = desk().await;
    let app = &desk.app;
    let mut ids = Vec::new();
    for priority in ["low", "low", "medium", "high", "high", "critical"] {
        let created = app
            .post(
                "/api/tickets",
                &desk.customer.token,
                json!({"subject": format!("{priority} one"), "description": "d", "priority": priority}),
            )
            .await
            .expect(201);
        ids.push(id_of(&created.body));
    }
    // low, low, medium, high, high, critical → critical, low, medium, high, high, low.
    app.patch(
        &format!("/api/tickets/{}", ids[0]),
        &desk.agent.token,
        json!({"priority": "critical"}),
    )
    .await
    .expect(200);
    app.patch(
        &format!("/api/tickets/{}", ids[5]),
        &desk.agent.token,
        json!({"priority": "low"}),
    )
    .await
    .expect(200);
    for (n, status) in [(1, "open"), (3, "open"), (3, "pending"), (4, "resolved")] {
        set_status(app, &desk.agent.token, &ids[n], status).await;
    }
    let token = set_status(app, &desk.agent.token, &ids[2], "open")
        .await
        .consistency_token()
        .unwrap();
    // Now: 0 new/critical, 1 open/low, 2 open/medium, 3 pending/high, 4 resolved/high,
    // 5 new/low.
    let expected = [
        ("", 6),
        ("status=new", 2),
        ("status=open", 2),
        ("status=open,pending", 3),
        ("priority=high", 2),
        ("priority=low,critical", 3),
        ("status=new&priority=critical", 1),
        ("status=new&priority=low", 1),
        ("status=new,open&priority=low", 2),
        ("status=resolved&priority=high", 1),
        ("status=pending&priority=low", 0),
        ("status=closed", 0),
    ];
    for (query, total) in expected {
        let body = app
            .request(
                Method::GET,
                &format!("/api/tickets?page_size=100&{query}"),
                Some(&desk.agent.token),
                None,
                &[("X-Consistency-Token", &token)],
            )
            .await
            .expect(200)
            .body;
        assert_eq!(body["total"], total, "{query}: {body}");
        assert_eq!(
            body["items"].as_array().unwrap().len(),
            total,
            "{query}: {body}"
        );
    }
    // A pair no ticket holds any more has no row (as a rebuild would leave it).
    let pairs: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT status, priority, tickets FROM ticket_counts ORDER BY 1, 2")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let pair = |s: &str, p: &str, n: i64| (s.to_string(), p.to_string(), n);
    assert_eq!(
        pairs,
        [
            pair("new", "critical", 1),
            pair("new", "low", 1),
            pair("open", "low", 1),
            pair("open", "medium", 1),
            pair("pending", "high", 1),
            pair("resolved", "high", 1),
        ]
    );
}

#[tokio::test]
async fn agents_edit_details_and_if_match_guards_against_stale_writes() {
    let desk = desk().await;
    let app = &desk.app;
    let ticket = app.ticket_for(&desk.customer, "Printer").await;
    let path = format!("/api/tickets/{}", id_of(&ticket));
    let edited = app
        .request(
            Method::PATCH,
            &path,
            Some(&desk.agent.token),
            Some(json!({"subject": "Printer on fire", "priority": "critical", "tags": ["hardware"], "category": "facilities"})),
            &[("If-Match", &format!("\"{OPENED_VERSION}\""))],
        )
        .await
        .expect(200);
    assert_eq!(edited.body["subject"], "Printer on fire");
    assert_eq!(edited.body["priority"], "critical");
    assert_eq!(edited.body["category"], "facilities");
    // Details and priority are separate events, and the new priority retargets the
    // running SLA clocks with events of their own.
    let edited_version = edited.body["version"].as_i64().unwrap();
    assert!(edited_version >= OPENED_VERSION + 2, "{}", edited.text);
    assert_eq!(edited.header("etag"), Some(format!("\"{edited_version}\"")));

    let stale = app
        .request(
            Method::PATCH,
            &path,
            Some(&desk.agent.token),
            Some(json!({"subject": "Overwrite"})),
            &[("If-Match", &format!("\"{OPENED_VERSION}\""))],
        )
        .await
        .expect_problem(412, "version-mismatch");
    assert_eq!(stale.body["current_version"], edited_version);

    let cleared = app
        .patch(&path, &desk.agent.token, json!({"category": null}))
        .await
        .expect(200);
    assert_eq!(cleared.body["category"], Value::Null);
    assert_eq!(cleared.body["version"], edited_version + 1);

    let unchanged = app
        .patch(&path, &desk.agent.token, json!({"priority": "critical"}))
        .await
        .expect(200);
    assert_eq!(
        unchanged.body["version"],
        edited_version + 1,
        "a no-op edit adds no event"
    );

    app.patch(&path, &desk.agent.token, json!({}))
        .await
        .expect_problem(422, "validation-failed");
    app.patch(&path, &desk.customer.token, json!({"subject": "Mine now"}))
        .await
        .expect_problem(403, "forbidden");
    app.patch(&path, &desk.viewer.token, json!({"subject": "Viewer"}))
        .await
        .expect_problem(403, "forbidden");

    let read = app
        .read_ticket(&desk.agent.token, &id_of(&ticket), edited_version + 1)
        .await
        .expect(200);
    assert_eq!(read.body["subject"], "Printer on fire");
    assert_eq!(read.body["category"], Value::Null);
}

#[tokio::test]
async fn a_ticket_moves_through_its_lifecycle_and_nonsense_transitions_are_409() {
    let desk = desk().await;
    let app = &desk.app;
    let ticket = app.ticket_for(&desk.customer, "Lifecycle").await;
    let path = format!("/api/tickets/{}/status", id_of(&ticket));
    for status in [
        "open",
        "in_progress",
        "pending",
        "on_hold",
        "in_progress",
        "resolved",
        "closed",
    ] {
        let moved = app
            .patch(
                &path,
                &desk.agent.token,
                json!({"status": status, "comment": format!("to {status}")}),
            )
            .await
            .expect(200);
        assert_eq!(moved.body["status"], status);
    }
    for status in ["in_progress", "resolved", "pending", "closed"] {
        let refused = app
            .patch(&path, &desk.agent.token, json!({"status": status}))
            .await
            .expect_problem(409, "invalid-transition");
        assert!(refused.body["detail"].as_str().unwrap().contains("closed"));
    }
    app.patch(&path, &desk.agent.token, json!({"status": "new"}))
        .await
        .expect_problem(409, "invalid-transition");
    app.post(
        &format!("/api/tickets/{}/comments", id_of(&ticket)),
        &desk.agent.token,
        json!({"body": "after closing"}),
    )
    .await
    .expect_problem(409, "ticket-closed");

    // The customer may reopen their own ticket, and do nothing else with the status.
    app.patch(&path, &desk.other_customer.token, json!({"status": "open"}))
        .await
        .expect_problem(404, "not-found");
    let reopened = app
        .patch(
            &path,
            &desk.customer.token,
            json!({"status": "open", "comment": "Still broken"}),
        )
        .await
        .expect(200);
    assert_eq!(reopened.body["status"], "open");
    app.patch(&path, &desk.customer.token, json!({"status": "resolved"}))
        .await
        .expect_problem(403, "forbidden");
    app.patch(&path, &desk.viewer.token, json!({"status": "resolved"}))
        .await
        .expect_problem(403, "forbidden");
    let bad = app
        .patch(&path, &desk.agent.token, json!({"status": "done"}))
        .await
        .expect_problem(422, "validation-failed");
    assert_eq!(bad.body["field"], "status");
}

#[tokio::test]
async fn tickets_are_assigned_to_active_agents_and_managers_only() {
    let desk = desk().await;
    let app = &desk.app;
    let admin = app.admin().await;
    let ticket = app.ticket_for(&desk.customer, "Assign me").await;
    let path = format!("/api/tickets/{}/assign", id_of(&ticket));
    let assigned = app
        .post(
            &path,
            &desk.manager.token,
            json!({"agent_id": desk.agent.user_id, "reason": "Network skills"}),
        )
        .await
        .expect(200);
    assert_eq!(assigned.body["assignee_id"], json!(desk.agent.user_id));
    app.post(
        &path,
        &desk.manager.token,
        json!({"agent_id": desk.agent.user_id}),
    )
    .await
    .expect_problem(409, "already-assigned");
    app.post(
        &path,
        &desk.agent.token,
        json!({"agent_id": desk.manager.user_id}),
    )
    .await
    .expect(200);
    for not_assignable in [desk.customer.user_id, desk.viewer.user_id, admin.user_id] {
        let problem = app
            .post(
                &path,
                &desk.manager.token,
                json!({"agent_id": not_assignable}),
            )
            .await
            .expect_problem(422, "validation-failed");
        assert_eq!(problem.body["field"], "agent_id");
    }
    let leaver = app.user("agent").await;
    app.patch(
        &format!("/api/users/{}", leaver.user_id),
        &admin.token,
        json!({"active": false}),
    )
    .await
    .expect(200);
    app.post(
        &path,
        &desk.manager.token,
        json!({"agent_id": leaver.user_id}),
    )
    .await
    .expect_problem(422, "validation-failed");
    app.post(
        &path,
        &desk.customer.token,
        json!({"agent_id": desk.agent.user_id}),
    )
    .await
    .expect_problem(403, "forbidden");
}

#[tokio::test]
async fn escalating_raises_the_level_and_can_reassign() {
    let desk = desk().await;
    let app = &desk.app;
    let ticket = app.ticket_for(&desk.customer, "Escalate me").await;
    let id = id_of(&ticket);
    let path = format!("/api/tickets/{id}/escalate");
    let first = app
        .post(&path, &desk.agent.token, json!({"reason": "VIP customer"}))
        .await
        .expect(200);
    assert_eq!(first.body["escalation_level"], 1);
    assert_eq!(first.body["assignee_id"], Value::Null);
    let second = app
        .post(
            &path,
            &desk.agent.token,
            json!({"reason": "Needs a manager", "escalate_to": desk.manager.user_id}),
        )
        .await
        .expect(200);
    assert_eq!(second.body["escalation_level"], 2);
    assert_eq!(second.body["assignee_id"], json!(desk.manager.user_id));
    app.post(&path, &desk.agent.token, json!({"reason": ""}))
        .await
        .expect_problem(422, "validation-failed");
    app.post(
        &path,
        &desk.agent.token,
        json!({"reason": "x", "escalate_to": desk.customer.user_id}),
    )
    .await
    .expect_problem(422, "validation-failed");
    app.post(&path, &desk.customer.token, json!({"reason": "please"}))
        .await
        .expect_problem(403, "forbidden");
    app.patch(
        &format!("/api/tickets/{id}/status"),
        &desk.agent.token,
        json!({"status": "resolved"}),
    )
    .await
    .expect(200);
    app.post(&path, &desk.agent.token, json!({"reason": "too late"}))
        .await
        .expect_problem(409, "ticket-finished");
}

#[tokio::test]
async fn a_ticket_moves_between_teams_and_lists_under_its_team() {
    let desk = desk().await;
    let app = &desk.app;
    let admin = app.admin().await;
    let team = app
        .post("/api/teams", &admin.token, json!({"name": "Billing desk"}))
        .await
        .expect(201)
        .body;
    let team_id = team["id"].as_str().unwrap().to_string();
    let ticket = app.ticket_for(&desk.customer, "Invoice twice").await;
    let id = id_of(&ticket);
    let path = format!("/api/tickets/{id}/team");
    let moved = app
        .put(&path, &desk.agent.token, json!({"team_id": team_id}))
        .await
        .expect(200);
    assert_eq!(moved.body["team_id"], json!(team_id));
    let listed = app
        .get(
            &format!("/api/tickets?team_id={team_id}"),
            &desk.agent.token,
        )
        .await
        .expect(200);
    assert_eq!(listed.body["total"], 1);
    assert_eq!(listed.body["items"][0]["id"], json!(id));
    let history = app
        .get(&format!("/api/tickets/{id}/history"), &desk.agent.token)
        .await
        .expect(200);
    assert!(
        history.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "TicketTeamAssigned"),
        "the move is in the log: {}",
        history.body
    );
    let cleared = app
        .put(&path, &desk.agent.token, json!({"team_id": null}))
        .await
        .expect(200);
    assert_eq!(cleared.body["team_id"], Value::Null);
    app.put(
        &path,
        &desk.agent.token,
        json!({"team_id": uuid::Uuid::new_v4()}),
    )
    .await
    .expect_problem(422, "validation-failed");
    app.put(&path, &desk.customer.token, json!({"team_id": team_id}))
        .await
        .expect_problem(403, "forbidden");
    app.request(
        Method::PUT,
        &path,
        Some(&desk.agent.token),
        Some(json!({"team_id": team_id})),
        &[("If-Match", "\"1\"")],
    )
    .await
    .expect_problem(412, "version-mismatch");
}

#[tokio::test]
async fn customers_never_see_or_post_internal_comments() {
    let desk = desk().await;
    let app = &desk.app;
    let ticket = app.ticket_for(&desk.customer, "Comments").await;
    let id = id_of(&ticket);
    let path = format!("/api/tickets/{id}/comments");
    let public = app
        .post(
            &path,
            &desk.agent.token,
            json!({"body": "Have you tried turning it off and on?"}),
        )
        .await
        .expect(201);
    assert_eq!(public.body["internal"], false);
    assert_eq!(public.body["author_role"], "agent");
    // The comment, and the first-response clock it stops.
    let after_reply = OPENED_VERSION + 2;
    assert_eq!(public.header("etag"), Some(format!("\"{after_reply}\"")));
    app.post(
        &path,
        &desk.agent.token,
        json!({"body": "Customer sounds upset", "internal": true}),
    )
    .await
    .expect(201);
    let customer_reply = app
        .post(&path, &desk.customer.token, json!({"body": "Yes, twice."}))
        .await
        .expect(201);
    let latest: i64 = customer_reply
        .header("etag")
        .unwrap()
        .trim_matches('"')
        .parse()
        .unwrap();
    app.post(
        &path,
        &desk.customer.token,
        json!({"body": "Psst", "internal": true}),
    )
    .await
    .expect_problem(403, "forbidden");
    app.post(&path, &desk.viewer.token, json!({"body": "Viewer"}))
        .await
        .expect_problem(403, "forbidden");

    let as_customer = app
        .read_ticket(&desk.customer.token, &id, latest)
        .await
        .expect(200);
    let bodies: Vec<&str> = as_customer.body["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        bodies,
        ["Have you tried turning it off and on?", "Yes, twice."]
    );
    let listed = app.get(&path, &desk.customer.token).await.expect(200);
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        listed.body["total"], 2,
        "internal comments are not counted for customers"
    );

    let as_staff = app
        .read_ticket(&desk.viewer.token, &id, latest)
        .await
        .expect(200);
    assert_eq!(as_staff.body["comments"].as_array().unwrap().len(), 3);
    assert_eq!(as_staff.body["comments"][1]["internal"], true);
    assert_eq!(as_staff.body["comment_count"], 3);

    let history = app
        .get(&format!("/api/tickets/{id}/history"), &desk.customer.token)
        .await
        .expect(200);
    assert!(!history.text.contains("Customer sounds upset"));
    let staff_history = app
        .get(&format!("/api/tickets/{id}/history"), &desk.agent.token)
        .await
        .expect(200);
    assert!(staff_history.text.contains("Customer sounds upset"));
}

#[tokio::test]
async fn the_history_is_the_log_in_order_with_who_did_what() {
    let desk = desk().await;
    let app = &desk.app;
    let ticket = app.ticket_for(&desk.customer, "History").await;
    let id = id_of(&ticket);
    app.post(
        &format!("/api/tickets/{id}/assign"),
        &desk.manager.token,
        json!({"agent_id": desk.agent.user_id}),
    )
    .await
    .expect(200);
    app.patch(
        &format!("/api/tickets/{id}/status"),
        &desk.agent.token,
        json!({"status": "in_progress", "comment": "Looking"}),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/tickets/{id}/escalate"),
        &desk.agent.token,
        json!({"reason": "Stuck", "escalate_to": desk.manager.user_id}),
    )
    .await
    .expect(200);
    let history = app
        .get(&format!("/api/tickets/{id}/history"), &desk.viewer.token)
        .await
        .expect(200);
    assert_eq!(history.body["ticket_id"], json!(id));
    let all_events = history.body["events"].as_array().unwrap();
    let sequences: Vec<i64> = all_events
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    let expected: Vec<i64> = (1..=all_events.len() as i64).collect();
    assert_eq!(sequences, expected, "the whole log, in order, no gaps");
    // SLA bookkeeping is recorded by the system actor; people's actions come first here.
    let (sla, events): (Vec<&Value>, Vec<&Value>) = all_events
        .iter()
        .partition(|e| e["type"].as_str().unwrap().starts_with("Sla"));
    assert!(
        sla.iter().all(|e| e["actor"]["role"] == "system"),
        "{sla:?}"
    );
    assert_eq!(sla[0]["type"], "SlaPolicyApplied");
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "TicketCreated",
            "TicketAssigned",
            "TicketStatusChanged",
            "TicketEscalated",
            "TicketAssigned"
        ]
    );
    assert_eq!(events[0]["actor"]["id"], json!(desk.customer.user_id));
    assert_eq!(events[0]["actor"]["role"], "customer");
    assert_eq!(events[1]["actor"]["role"], "manager");
    assert_eq!(events[1]["data"]["assignee_id"], json!(desk.agent.user_id));
    assert_eq!(events[2]["data"]["from"], "new");
    assert_eq!(events[2]["data"]["to"], "in_progress");
    assert_eq!(events[2]["data"]["comment"], "Looking");
    assert_eq!(events[3]["data"]["to_level"], 1);
    assert!(events.iter().all(|e| e["occurred_at"].is_string()));
    app.get(
        &format!("/api/tickets/{}/history", uuid::Uuid::new_v4()),
        &desk.agent.token,
    )
    .await
    .expect_problem(404, "not-found");
}

#[tokio::test]
async fn every_event_records_who_and_from_where_with_the_request_id_echoed() {
    let desk = desk().await;
    let app = &desk.app;
    let response = app
        .request(
            Method::POST,
            "/api/tickets",
            Some(&desk.customer.token),
            Some(json!({"subject": "Audit me", "description": "d", "priority": "low"})),
            &[
                ("X-Request-Id", "req-abc-123"),
                ("User-Agent", "docket-tests/1.0"),
            ],
        )
        .await
        .expect(201);
    assert_eq!(
        response.header("x-request-id").as_deref(),
        Some("req-abc-123")
    );
    let metadata: Value = sqlx::query_scalar(
        "SELECT metadata FROM events WHERE aggregate_type = 'ticket' AND aggregate_id = $1",
    )
    .bind(id_of(&response.body))
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        metadata["actor_id"],
        json!(desk.customer.user_id.to_string())
    );
    assert_eq!(metadata["actor_role"], "customer");
    assert_eq!(metadata["ip"], "127.0.0.1");
    assert_eq!(metadata["user_agent"], "docket-tests/1.0");
    assert_eq!(metadata["correlation_id"], "req-abc-123");

    // Without one, the server makes one up and still echoes it.
    let generated = app
        .get("/api/auth/me", &desk.customer.token)
        .await
        .expect(200);
    assert!(
        generated
            .header("x-request-id")
            .is_some_and(|id| id.len() >= 16)
    );
}
