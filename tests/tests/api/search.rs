//! Search, suggestions, saved searches, the audit trail and the status timeline.

use docket_projections::rebuild::{self, RebuildSettings};
use docket_projections::tickets::TicketsProjection;
use docket_tests::{
    OPENED_VERSION, Session, TestApp, fresh_database, spawn_app, spawn_with, test_settings,
};
use reqwest::Method;
use serde_json::{Value, json};

async fn open(
    app: &TestApp,
    customer: &Session,
    subject: &str,
    description: &str,
    priority: &str,
    tags: &[&str],
) -> (String, String) {
    let created = app
        .post(
            "/api/tickets",
            &customer.token,
            json!({"subject": subject, "description": description, "priority": priority, "tags": tags}),
        )
        .await
        .expect(201);
    (
        created.body["id"].as_str().unwrap().to_string(),
        created.consistency_token().unwrap(),
    )
}

async fn get_consistent(app: &TestApp, path: &str, token: &str, consistency: &str) -> Value {
    app.request(
        Method::GET,
        path,
        Some(token),
        None,
        &[("X-Consistency-Token", consistency)],
    )
    .await
    .expect(200)
    .body
}

fn subjects(results: &Value) -> Vec<String> {
    results["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["ticket"]["subject"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn full_text_search_ranks_highlights_and_respects_who_is_asking() {
    let app = spawn_app().await;
    let ann = app.customer().await;
    let bob = app.customer().await;
    let agent = app.user("agent").await;
    let (vpn, _) = open(
        &app,
        &ann,
        "VPN drops every hour",
        "The VPN tunnel disconnects; VPN logs attached.",
        "high",
        &["vpn"],
    )
    .await;
    open(
        &app,
        &ann,
        "Printer jams",
        "Paper tray two jams constantly.",
        "low",
        &[],
    )
    .await;
    let (bobs, _) = open(
        &app,
        &bob,
        "VPN refuses my password",
        "Cannot connect to the VPN.",
        "medium",
        &[],
    )
    .await;
    app.post(
        &format!("/api/tickets/{vpn}/comments"),
        &agent.token,
        json!({"body": "Firmware upgrade of the concentrator planned", "internal": true}),
    )
    .await
    .expect(201);
    let token = app
        .post(
            &format!("/api/tickets/{bobs}/comments"),
            &agent.token,
            json!({"body": "Please reset your router firmware"}),
        )
        .await
        .expect(201)
        .consistency_token()
        .unwrap();

    let staff = get_consistent(&app, "/api/search?q=vpn", &agent.token, &token).await;
    assert_eq!(staff["total"], 2);
    assert_eq!(
        subjects(&staff)[0],
        "VPN drops every hour",
        "more mentions rank first"
    );
    let top = &staff["items"][0];
    assert!(top["rank"].as_f64().unwrap() > staff["items"][1]["rank"].as_f64().unwrap());
    // Pages keep the total and the rank order; a page past the last match is empty but still
    // says how many there are.
    for (page, subject) in [
        (1, Some("VPN drops every hour")),
        (2, Some("VPN refuses my password")),
        (3, None),
    ] {
        let paged = get_consistent(
            &app,
            &format!("/api/search?q=vpn&page_size=1&page={page}"),
            &agent.token,
            &token,
        )
        .await;
        assert_eq!(paged["total"], 2, "page {page}: {paged}");
        assert_eq!(
            subjects(&paged).first().map(String::as_str),
            subject,
            "page {page}"
        );
    }
    assert_eq!(top["matched_in"], "ticket");
    assert_eq!(
        top["subject_highlight"],
        "<mark>VPN</mark> drops every hour"
    );
    assert!(
        top["snippet"]
            .as_str()
            .unwrap()
            .contains("<mark>VPN</mark>")
    );

    // Comments are searched: staff find internal notes, customers never do.
    let firmware = get_consistent(&app, "/api/search?q=firmware", &agent.token, &token).await;
    assert_eq!(firmware["total"], 2);
    let ann_firmware = get_consistent(&app, "/api/search?q=firmware", &ann.token, &token).await;
    assert_eq!(ann_firmware["total"], 0, "{ann_firmware}");
    let bob_firmware = get_consistent(&app, "/api/search?q=firmware", &bob.token, &token).await;
    assert_eq!(subjects(&bob_firmware), ["VPN refuses my password"]);
    assert_eq!(bob_firmware["items"][0]["matched_in"], "comment");
    assert!(
        bob_firmware["items"][0]["snippet"]
            .as_str()
            .unwrap()
            .contains("<mark>firmware</mark>")
    );

    // Customers only find their own tickets.
    let ann_vpn = get_consistent(&app, "/api/search?q=vpn", &ann.token, &token).await;
    assert_eq!(subjects(&ann_vpn), ["VPN drops every hour"]);

    // Web-search syntax: phrases and exclusions.
    let phrase = get_consistent(
        &app,
        "/api/search?q=%22every%20hour%22",
        &agent.token,
        &token,
    )
    .await;
    assert_eq!(phrase["total"], 1);
    let excluded =
        get_consistent(&app, "/api/search?q=vpn%20-password", &agent.token, &token).await;
    assert_eq!(subjects(&excluded), ["VPN drops every hour"]);

    // The ticket list takes the same text filter.
    let listed = get_consistent(&app, "/api/tickets?q=jams", &agent.token, &token).await;
    assert_eq!(listed["total"], 1);

    // Markup in tickets comes back escaped around the highlights.
    let (_, token) = open(
        &app,
        &ann,
        "<script>alert(1)</script> unicorn",
        "x",
        "low",
        &[],
    )
    .await;
    let escaped = get_consistent(&app, "/api/search?q=unicorn", &agent.token, &token).await;
    let highlight = escaped["items"][0]["subject_highlight"].as_str().unwrap();
    assert!(highlight.starts_with("&lt;script&gt;"), "{highlight}");

    app.get("/api/search?q=", &agent.token)
        .await
        .expect_problem(400, "invalid-parameter");
}

#[tokio::test]
async fn advanced_search_combines_text_and_filters() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let agent = app.user("agent").await;
    open(
        &app,
        &customer,
        "Invoice VAT wrong",
        "Invoice shows 19%",
        "high",
        &["billing", "vat"],
    )
    .await;
    open(
        &app,
        &customer,
        "Invoice missing",
        "No invoice for March",
        "low",
        &["billing"],
    )
    .await;
    let (assigned, _) = open(
        &app,
        &customer,
        "Invoice PDF broken",
        "Download fails",
        "critical",
        &["pdf"],
    )
    .await;
    let token = app
        .post(
            &format!("/api/tickets/{assigned}/assign"),
            &agent.token,
            json!({"agent_id": agent.user_id}),
        )
        .await
        .expect(200)
        .consistency_token()
        .unwrap();
    let search = |body: Value| {
        let (app, token, agent_token) = (&app, token.clone(), agent.token.clone());
        async move {
            app.request(
                Method::POST,
                "/api/search/advanced",
                Some(&agent_token),
                Some(body),
                &[("X-Consistency-Token", &token)],
            )
            .await
            .expect(200)
            .body
        }
    };
    assert_eq!(search(json!({"q": "invoice"})).await["total"], 3);
    assert_eq!(
        search(json!({"q": "invoice", "priority": ["high", "critical"]})).await["total"],
        2
    );
    assert_eq!(search(json!({"tags": ["vat", "pdf"]})).await["total"], 2);
    assert_eq!(search(json!({"subject": "pdf"})).await["total"], 1);
    assert_eq!(
        search(json!({"subject": "%"})).await["total"],
        0,
        "subject is literal"
    );
    assert_eq!(
        search(json!({"assignee_id": agent.user_id})).await["total"],
        1
    );
    assert_eq!(
        search(json!({"status": ["new"], "customer_id": customer.user_id})).await["total"],
        3
    );
    assert_eq!(
        search(
            json!({"created_from": "2000-01-01T00:00:00Z", "created_to": "2001-01-01T00:00:00Z"})
        )
        .await["total"],
        0
    );
    assert_eq!(search(json!({"unassigned": true})).await["total"], 2);
    let oldest_first = search(json!({"sort": "created_at"})).await;
    assert_eq!(
        subjects(&oldest_first),
        ["Invoice VAT wrong", "Invoice missing", "Invoice PDF broken"]
    );
    assert_eq!(
        subjects(&search(json!({"sort": "-priority"})).await)[0],
        "Invoice PDF broken"
    );
    assert_eq!(
        search(json!({"category": "nothing-here"})).await["total"],
        0
    );
    assert_eq!(
        search(json!({"team_id": uuid::Uuid::new_v4()})).await["total"],
        0
    );
    let page = search(json!({"page_size": 2, "page": 2})).await;
    assert_eq!(
        (
            page["total"].as_i64(),
            page["items"].as_array().unwrap().len()
        ),
        (Some(3), 1)
    );
    app.post(
        "/api/search/advanced",
        &agent.token,
        json!({"priority": ["urgent"]}),
    )
    .await
    .expect_problem(422, "validation-failed");
    app.post(
        "/api/search/advanced",
        &agent.token,
        json!({"page_size": 1000}),
    )
    .await
    .expect_problem(422, "validation-failed");
    let unsorted = app
        .post(
            "/api/search/advanced",
            &agent.token,
            json!({"sort": "sideways"}),
        )
        .await
        .expect_problem(422, "validation-failed");
    assert_eq!(unsorted.body["field"], "sort", "{}", unsorted.text);
}

#[tokio::test]
async fn suggestions_complete_subjects_the_asker_may_see() {
    let app = spawn_app().await;
    let ann = app.customer().await;
    let bob = app.customer().await;
    let agent = app.user("agent").await;
    open(&app, &ann, "Printer jams", "x", "low", &[]).await;
    open(&app, &ann, "Print queue stuck", "x", "low", &[]).await;
    let (_, token) = open(&app, &bob, "Printing in colour", "x", "low", &[]).await;
    let _ = get_consistent(&app, "/api/tickets", &agent.token, &token).await;
    let staff = app
        .get("/api/search/suggest?q=PRINT", &agent.token)
        .await
        .expect(200);
    assert_eq!(staff.body["suggestions"].as_array().unwrap().len(), 3);
    let ann_sees = app
        .get("/api/search/suggest?q=print", &ann.token)
        .await
        .expect(200);
    let mut mine: Vec<&str> = ann_sees.body["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    mine.sort();
    assert_eq!(mine, ["Print queue stuck", "Printer jams"]);
    let literal = app
        .get("/api/search/suggest?q=%25", &agent.token)
        .await
        .expect(200);
    assert_eq!(literal.body["suggestions"], json!([]));
}

#[tokio::test]
async fn saved_searches_belong_to_whoever_saved_them() {
    let app = spawn_app().await;
    let agent = app.user("agent").await;
    let other = app.user("agent").await;
    let saved = app
        .post(
            "/api/search/saved",
            &agent.token,
            json!({"name": "My VPN queue", "query": {"q": "vpn", "priority": ["critical"]}}),
        )
        .await
        .expect(201);
    let id = saved.body["id"].as_str().unwrap().to_string();
    let token = saved.consistency_token().unwrap();
    let mine = get_consistent(&app, "/api/search/saved", &agent.token, &token).await;
    assert_eq!(mine["items"][0]["name"], "My VPN queue");
    assert_eq!(mine["items"][0]["query"]["priority"], json!(["critical"]));
    let theirs = get_consistent(&app, "/api/search/saved", &other.token, &token).await;
    assert_eq!(theirs["items"], json!([]));
    assert_eq!(theirs["total"], 0);
    app.request(
        Method::DELETE,
        &format!("/api/search/saved/{id}"),
        Some(&other.token),
        None,
        &[],
    )
    .await
    .expect_problem(404, "not-found");
    app.request(
        Method::DELETE,
        &format!("/api/search/saved/{id}"),
        Some(&agent.token),
        None,
        &[],
    )
    .await
    .expect(204);
    app.request(
        Method::DELETE,
        &format!("/api/search/saved/{id}"),
        Some(&agent.token),
        None,
        &[],
    )
    .await
    .expect_problem(404, "not-found");
    let again = app
        .post(
            "/api/search/saved",
            &agent.token,
            json!({"name": "x", "query": {}}),
        )
        .await
        .expect(201)
        .consistency_token()
        .unwrap();
    let mine = get_consistent(&app, "/api/search/saved", &agent.token, &again).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    app.post(
        "/api/search/saved",
        &agent.token,
        json!({"name": " ", "query": {}}),
    )
    .await
    .expect_problem(422, "validation-failed");
}

#[tokio::test]
async fn the_audit_trail_shows_who_did_what_from_where_to_staff_only() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let agent = app.user("agent").await;
    let created = app
        .request(
            Method::POST,
            "/api/tickets",
            Some(&customer.token),
            Some(json!({"subject": "Audit me", "description": "d", "priority": "low"})),
            &[
                ("X-Request-Id", "audit-req-1"),
                ("User-Agent", "audit-test/2.0"),
            ],
        )
        .await
        .expect(201);
    let id = created.body["id"].as_str().unwrap().to_string();
    app.patch(
        &format!("/api/tickets/{id}/status"),
        &agent.token,
        json!({"status": "open"}),
    )
    .await
    .expect(200);
    let mut trail = Value::Null;
    for _ in 0..50 {
        trail = app
            .get(
                &format!("/api/audit?aggregate_id={id}&order=asc"),
                &agent.token,
            )
            .await
            .expect(200)
            .body;
        if trail["items"].as_array().unwrap().len() as i64 == OPENED_VERSION + 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let all_items = trail["items"].as_array().unwrap();
    assert_eq!(all_items.len() as i64, OPENED_VERSION + 1, "{trail}");
    // The SLA bookkeeping the request caused is the system's doing, under the same request id.
    let (sla, items): (Vec<&Value>, Vec<&Value>) = all_items
        .iter()
        .partition(|i| i["type"].as_str().unwrap().starts_with("Sla"));
    for item in &sla {
        assert_eq!(item["actor"]["role"], "system", "{item}");
        assert_eq!(item["correlation_id"], "audit-req-1", "{item}");
    }
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["type"], "TicketCreated");
    assert_eq!(items[0]["actor"]["id"], json!(customer.user_id));
    assert_eq!(items[0]["actor"]["role"], "customer");
    assert_eq!(items[0]["ip"], "127.0.0.1");
    assert_eq!(items[0]["user_agent"], "audit-test/2.0");
    assert_eq!(items[0]["correlation_id"], "audit-req-1");
    assert_eq!(items[0]["data"]["subject"], "Audit me");
    assert_eq!(items[1]["type"], "TicketStatusChanged");

    let by_actor = app
        .get(
            &format!("/api/audit?actor_id={}", agent.user_id),
            &agent.token,
        )
        .await
        .expect(200);
    assert!(
        by_actor.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"]["id"] == json!(agent.user_id))
    );
    let by_type = app
        .get("/api/audit?type=UserRegistered&page_size=2", &agent.token)
        .await
        .expect(200);
    assert_eq!(by_type.body["items"].as_array().unwrap().len(), 2);
    let cursor = by_type.body["next_cursor"].as_i64().expect("more pages");
    let next = app
        .get(
            &format!("/api/audit?type=UserRegistered&page_size=2&cursor={cursor}"),
            &agent.token,
        )
        .await
        .expect(200);
    assert!(
        next.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["position"].as_i64().unwrap() < cursor)
    );
    let future = app
        .get("/api/audit?from=2999-01-01T00:00:00Z", &agent.token)
        .await
        .expect(200);
    assert_eq!(future.body["items"], json!([]));
    app.get("/api/audit", &customer.token)
        .await
        .expect_problem(403, "forbidden");
    app.get("/api/audit?page_size=500", &agent.token)
        .await
        .expect_problem(400, "invalid-parameter");
}

#[tokio::test]
async fn the_timeline_says_how_long_each_status_lasted() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let other = app.customer().await;
    let agent = app.user("agent").await;
    let (id, _) = open(&app, &customer, "Timeline", "d", "low", &[]).await;
    for status in ["in_progress", "pending", "in_progress", "resolved"] {
        app.patch(
            &format!("/api/tickets/{id}/status"),
            &agent.token,
            json!({"status": status}),
        )
        .await
        .expect(200);
    }
    let timeline = app
        .get(&format!("/api/tickets/{id}/timeline"), &customer.token)
        .await
        .expect(200);
    let periods = timeline.body["periods"].as_array().unwrap();
    let statuses: Vec<&str> = periods
        .iter()
        .map(|p| p["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["new", "in_progress", "pending", "in_progress", "resolved"]
    );
    assert!(
        periods[..4]
            .iter()
            .all(|p| p["left_at"].is_string() && p["seconds"].as_i64().unwrap() >= 0)
    );
    assert!(periods[4].get("left_at").is_none_or(Value::is_null));
    assert_eq!(periods[1]["left_at"], periods[2]["entered_at"]);
    app.get(&format!("/api/tickets/{id}/timeline"), &other.token)
        .await
        .expect_problem(404, "not-found");
}

/// The items and total of a search, for comparing two ways of answering it.
fn answer(results: &Value) -> (Value, Value) {
    (results["items"].clone(), results["total"].clone())
}

/// A broad search by staff (by its text alone) has its matches ranked ahead of time; from then
/// on its pages come from those entries, and they must be exactly what ranking every match
/// gives (the same tickets, ranks, order, snippets and total), kept current as tickets change,
/// and forgotten when the tickets projection is rebuilt.
#[tokio::test]
async fn a_broad_search_ranked_ahead_answers_as_ranking_every_match_would() {
    let (_, url) = fresh_database().await;
    let mut settings = test_settings(&url);
    settings.search_rank_ahead_from = 3;
    let app = spawn_with(settings).await;
    let customer = app.customer().await;
    let agent = app.user("agent").await;
    let (offline, _) = open(
        &app,
        &customer,
        "Printer offline",
        "The printer on floor two",
        "high",
        &[],
    )
    .await;
    let (jam, _) = open(
        &app,
        &customer,
        "Paper jam",
        "The printer eats paper",
        "low",
        &[],
    )
    .await;
    let (scanner, _) = open(
        &app,
        &customer,
        "Scanner broken",
        "Nothing scans",
        "medium",
        &[],
    )
    .await;
    let (toner, _) = open(&app, &customer, "Toner empty", "Out of toner", "low", &[]).await;
    let comment = |id: &str, body: &str, internal: bool| {
        let (app, path, token) = (
            &app,
            format!("/api/tickets/{id}/comments"),
            agent.token.clone(),
        );
        let body = json!({"body": body, "internal": internal});
        async move {
            app.post(&path, &token, body)
                .await
                .expect(201)
                .consistency_token()
                .unwrap()
        }
    };
    comment(&scanner, "Same printer model as on floor two", true).await;
    let written = comment(
        &toner,
        "Which printer is it? The printer by the door?",
        false,
    )
    .await;

    // Ranking every match: a filter that admits every ticket keeps a search off the entries.
    let statuses = json!([
        "new",
        "open",
        "in_progress",
        "pending",
        "resolved",
        "closed"
    ]);
    let every_match = |q: &'static str, consistency: String| {
        let (app, token, statuses) = (&app, agent.token.clone(), statuses.clone());
        async move {
            let found = app
                .request(
                    Method::POST,
                    "/api/search/advanced",
                    Some(&token),
                    Some(json!({"q": q, "status": statuses})),
                    &[("X-Consistency-Token", consistency.as_str())],
                )
                .await
                .expect(200);
            answer(&found.body)
        }
    };
    let registered = |term: &'static str| {
        let pool = app.pool.clone();
        async move {
            for _ in 0..100 {
                let count: Option<i64> =
                    sqlx::query_scalar("SELECT tickets FROM search_terms WHERE term = $1")
                        .bind(term)
                        .fetch_optional(&pool)
                        .await
                        .unwrap();
                if count.is_some() {
                    return count;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            None
        }
    };
    // One word, and a query with an operator (three tickets mention printers but not toner).
    let word = "/api/search?q=printer";
    let excluding = "/api/search?q=printer%20-toner";
    let before = get_consistent(&app, word, &agent.token, &written).await;
    assert_eq!(before["total"], 4, "{before}");
    assert_eq!(
        answer(&before),
        every_match("printer", written.clone()).await
    );
    let before_excluding = get_consistent(&app, excluding, &agent.token, &written).await;
    assert_eq!(before_excluding["total"], 3, "{before_excluding}");

    // Both reach the threshold of three: they are registered in the background.
    assert_eq!(registered("'printer'").await, Some(4));
    assert_eq!(registered("'printer' & !'toner'").await, Some(3));
    let ranked = get_consistent(&app, word, &agent.token, &written).await;
    assert_eq!(answer(&ranked), answer(&before));
    let ranked_excluding = get_consistent(&app, excluding, &agent.token, &written).await;
    assert_eq!(answer(&ranked_excluding), answer(&before_excluding));

    // Changes follow the queries: a new match, another mention (a new rank), a lost match.
    let (queue, _) = open(
        &app,
        &customer,
        "Printer queue stuck",
        "Jobs wait",
        "critical",
        &[],
    )
    .await;
    comment(&scanner, "Reset the printer, printer works", false).await;
    let edited = app
        .patch(
            &format!("/api/tickets/{offline}"),
            &agent.token,
            json!({"subject": "Offline on floor two", "description": "Nothing comes out"}),
        )
        .await
        .expect(200)
        .consistency_token()
        .unwrap();
    let after = get_consistent(&app, word, &agent.token, &edited).await;
    assert_eq!(answer(&after), every_match("printer", edited.clone()).await);
    let after_excluding = get_consistent(&app, excluding, &agent.token, &edited).await;
    assert_eq!(
        answer(&after_excluding),
        every_match("printer -toner", edited.clone()).await
    );
    let found: Vec<&str> = after["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["ticket"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(found.len(), 4, "{after}");
    assert!(!found.contains(&offline.as_str()));
    for id in [&jam, &scanner, &toner, &queue] {
        assert!(found.contains(&id.as_str()), "{id} missing from {after}");
    }
    assert_ne!(answer(&after), answer(&ranked), "the ranks moved");
    // Page two of two pages of two, from the entries.
    let second = format!("{word}&page=2&page_size=2");
    let second = get_consistent(&app, &second, &agent.token, &edited).await;
    assert_eq!(second["total"], 4);
    assert_eq!(
        second["items"],
        json!(after["items"].as_array().unwrap()[2..4])
    );

    // A rebuild forgets registered queries; searches answer the same, ranking every match.
    rebuild::rebuild(
        &TicketsProjection,
        &app.pool,
        RebuildSettings::default(),
        |_| {},
    )
    .await
    .unwrap();
    let queries: i64 = sqlx::query_scalar("SELECT count(*) FROM search_terms")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(queries, 0);
    let rebuilt = get_consistent(&app, word, &agent.token, &edited).await;
    assert_eq!(answer(&rebuilt), answer(&after));
}

/// The row version (`xmin`) of a ticket's search vector: it changes exactly when the vector is
/// written again.
async fn vector_row_version(app: &TestApp, ticket: &str) -> String {
    sqlx::query_scalar("SELECT xmin::text FROM ticket_search_vectors WHERE ticket_id = $1::uuid")
        .bind(ticket)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_status_change_leaves_the_search_vector_alone_and_a_comment_rewrites_it() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let agent = app.user("agent").await;
    let (id, token) = open(
        &app,
        &customer,
        "Scanner jams",
        "The scanner jams on every page",
        "high",
        &[],
    )
    .await;
    let found = get_consistent(&app, "/api/search?q=scanner", &agent.token, &token).await;
    assert_eq!(subjects(&found), ["Scanner jams"]);
    let written = vector_row_version(&app, &id).await;

    let token = app
        .patch(
            &format!("/api/tickets/{id}/status"),
            &agent.token,
            json!({"status": "in_progress"}),
        )
        .await
        .expect(200)
        .consistency_token()
        .unwrap();
    // The list narrowed by text and status joins the vectors to the ticket rows.
    let listed = get_consistent(
        &app,
        "/api/tickets?q=scanner&status=in_progress",
        &agent.token,
        &token,
    )
    .await;
    assert_eq!(listed["total"], 1, "{listed}");
    assert_eq!(listed["items"][0]["subject"], "Scanner jams");
    assert_eq!(
        vector_row_version(&app, &id).await,
        written,
        "a status change does not write the vector"
    );

    let token = app
        .post(
            &format!("/api/tickets/{id}/comments"),
            &agent.token,
            json!({"body": "Replaced the roller assembly"}),
        )
        .await
        .expect(201)
        .consistency_token()
        .unwrap();
    let found = get_consistent(&app, "/api/search?q=roller", &agent.token, &token).await;
    assert_eq!(
        subjects(&found),
        ["Scanner jams"],
        "the comment's words are found"
    );
    assert_ne!(
        vector_row_version(&app, &id).await,
        written,
        "a comment writes the vector again"
    );
}
