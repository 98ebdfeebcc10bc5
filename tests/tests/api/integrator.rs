//! What a new integrator tripped over, done with plain HTTP as they did it: ETags that moved
//! under SLA bookkeeping, conditional reads, tickets found by number, the filters everyone
//! needs, assign-to-me and unassign, and query parameters that were silently ignored.

use std::time::Duration;

use docket_tests::{Session, TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

fn targets(first_response: u64) -> Value {
    json!({"first_response": first_response, "resolution": 86_400, "escalation": 7_200})
}

fn policy(first_response: u64) -> Value {
    let slow = json!({"first_response": 3_600, "resolution": 86_400, "escalation": 7_200});
    json!({
        "name": "Gold",
        "position": 1,
        "conditions": {"priorities": ["high"]},
        "at_risk_percent": 80,
        "targets": {"critical": slow, "high": targets(first_response), "medium": slow, "low": slow}
    })
}

async fn sla_policy_version(app: &TestApp, token: &str, id: &str) -> Value {
    app.get(&format!("/api/sla/check/{id}"), token)
        .await
        .expect(200)
        .body["policy"]["version"]
        .clone()
}

/// Polls until `probe` holds, for at most ten seconds.
async fn eventually<F, Fut>(mut probe: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if probe().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Opens a ticket as `customer` and waits until `staff` can read it: reads wait only for the
/// reader's own writes, and this one is the customer's.
async fn opened(app: &TestApp, customer: &Session, staff: &Session, subject: &str) -> Value {
    let ticket = app.ticket_for(customer, subject).await;
    let version = ticket["version"].as_i64().unwrap();
    app.read_ticket(&staff.token, &id_of(&ticket), version)
        .await
        .expect(200);
    ticket
}

fn id_of(ticket: &Value) -> String {
    ticket["id"].as_str().unwrap().to_string()
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {page}"))
        .iter()
        .map(|item| {
            let ticket = if item["ticket"].is_object() {
                &item["ticket"]
            } else {
                item
            };
            id_of(ticket)
        })
        .collect()
}

async fn patch_if_match(app: &TestApp, who: &Session, id: &str, tag: &str, body: Value) -> Value {
    let answer = app
        .request(
            Method::PATCH,
            &format!("/api/tickets/{id}"),
            Some(&who.token),
            Some(body),
            &[("If-Match", tag)],
        )
        .await;
    json!({"status": answer.status.as_u16(), "body": answer.body, "etag": answer.header("etag")})
}

/// A policy edit writes SLA bookkeeping onto every open ticket; a user who read the ticket
/// before it and changed nothing still edits with the ETag they hold. A real change by someone
/// else still fails the precondition.
#[tokio::test]
async fn if_match_protects_what_people_edit_not_the_sla_bookkeeping() {
    let app = spawn_app().await;
    let manager = app.user("manager").await;
    let agent = app.user("agent").await;
    let other = app.user("agent").await;
    let customer = app.customer().await;
    let created = app
        .post("/api/sla/policies", &manager.token, policy(600))
        .await
        .expect(201);
    let policy_id = created.body["id"].as_str().unwrap().to_string();
    let id = id_of(&opened(&app, &customer, &agent, "VPN drops").await);
    let read = app
        .get(&format!("/api/tickets/{id}"), &agent.token)
        .await
        .expect(200);
    let held = read.header("etag").unwrap();

    app.request(
        Method::PUT,
        &format!("/api/sla/policies/{policy_id}"),
        Some(&manager.token),
        Some(policy(300)),
        &[("If-Match", "\"1\"")],
    )
    .await
    .expect(200);
    assert!(
        eventually(|| async { sla_policy_version(&app, &agent.token, &id).await == 2 }).await,
        "the edit reaches the open ticket"
    );
    // The SLA check reads the ticket's log; the ticket read, its projection, which follows a
    // moment later (the bookkeeping is the system's write, not the agent's own).
    let path = format!("/api/tickets/{id}");
    eventually(|| async {
        app.get(&path, &agent.token).await.header("etag").as_ref() != Some(&held)
    })
    .await;
    let moved = app.get(&path, &agent.token).await.expect(200);
    assert_ne!(
        moved.header("etag").unwrap(),
        held,
        "the bookkeeping is in the log"
    );

    let edited = patch_if_match(&app, &agent, &id, &held, json!({"category": "network"})).await;
    assert_eq!(edited["status"], 200, "{edited}");
    assert_eq!(edited["body"]["category"], "network");

    // Someone else's edit is a change the agent has not seen.
    let now = edited["etag"].as_str().unwrap().to_string();
    let theirs = patch_if_match(&app, &other, &id, &now, json!({"priority": "critical"})).await;
    assert_eq!(theirs["status"], 200, "{theirs}");
    let stale = patch_if_match(&app, &agent, &id, &now, json!({"category": "vpn"})).await;
    assert_eq!(stale["status"], 412, "{stale}");
    assert_eq!(
        stale["body"]["type"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap(),
        "version-mismatch"
    );
}

/// `If-None-Match` with the ETag of an earlier read answers 304 while nothing changed, on a
/// ticket and on a page of the list; a change gives 200 with the new content.
#[tokio::test]
async fn if_none_match_answers_304_until_something_changes() {
    let app = spawn_app().await;
    let agent = app.user("agent").await;
    let customer = app.customer().await;
    let id = id_of(&opened(&app, &customer, &agent, "Printer on fire").await);
    let path = format!("/api/tickets/{id}");
    let first = app.get(&path, &agent.token).await.expect(200);
    let tag = first.header("etag").unwrap();
    let again = app
        .request(
            Method::GET,
            &path,
            Some(&agent.token),
            None,
            &[("If-None-Match", &tag)],
        )
        .await;
    assert_eq!(again.status.as_u16(), 304);
    assert!(again.text.is_empty(), "a 304 has no body");
    assert_eq!(again.header("etag"), Some(tag.clone()));

    let list = app.get("/api/tickets", &agent.token).await.expect(200);
    let page_tag = list.header("etag").expect("a page carries an ETag");
    let unchanged = app
        .request(
            Method::GET,
            "/api/tickets",
            Some(&agent.token),
            None,
            &[("If-None-Match", &page_tag)],
        )
        .await;
    assert_eq!(unchanged.status.as_u16(), 304);

    app.post(
        &format!("/api/tickets/{id}/comments"),
        &agent.token,
        json!({"body": "On it.", "internal": false}),
    )
    .await
    .expect(201);
    let changed = app
        .request(
            Method::GET,
            &path,
            Some(&agent.token),
            None,
            &[("If-None-Match", &tag)],
        )
        .await
        .expect(200);
    assert_ne!(changed.header("etag"), Some(tag));
    let page_changed = app
        .request(
            Method::GET,
            "/api/tickets",
            Some(&agent.token),
            None,
            &[("If-None-Match", &page_tag)],
        )
        .await
        .expect(200);
    assert_ne!(page_changed.header("etag"), Some(page_tag));
}

/// A ticket is found by the number people say out loud: as the path, in search, in the list's
/// text and as a filter. A customer does not find someone else's ticket that way.
#[tokio::test]
async fn a_ticket_is_found_by_its_number() {
    let app = spawn_app().await;
    let agent = app.user("agent").await;
    let customer = app.customer().await;
    let stranger = app.customer().await;
    opened(&app, &customer, &agent, "First").await;
    let ticket = opened(&app, &customer, &agent, "Second").await;
    let id = id_of(&ticket);
    let number = ticket["number"].as_str().unwrap().to_string();
    let digits = number.trim_start_matches("TKT-").trim_start_matches('0');
    assert!(number.starts_with("TKT-"), "{number}");

    for written in [number.as_str(), digits] {
        let read = app
            .get(&format!("/api/tickets/{written}"), &agent.token)
            .await
            .expect(200);
        assert_eq!(read.body["id"], id, "{written}");
        let searched = app
            .get(&format!("/api/search?q={written}"), &agent.token)
            .await
            .expect(200);
        assert_eq!(ids(&searched.body).first(), Some(&id), "search {written}");
        let listed = app
            .get(&format!("/api/tickets?q={written}"), &agent.token)
            .await
            .expect(200);
        assert!(ids(&listed.body).contains(&id), "list q={written}");
        let filtered = app
            .get(&format!("/api/tickets?number={written}"), &agent.token)
            .await
            .expect(200);
        assert_eq!(ids(&filtered.body), vec![id.clone()], "number={written}");
    }
    app.get(&format!("/api/tickets/{number}"), &stranger.token)
        .await
        .expect_problem(404, "not-found");
    let theirs = app
        .get(&format!("/api/search?q={number}"), &stranger.token)
        .await
        .expect(200);
    assert!(!ids(&theirs.body).contains(&id));
    app.get("/api/tickets/TKT-999999", &agent.token)
        .await
        .expect_problem(404, "not-found");
    app.get("/api/tickets/not-a-ticket", &agent.token)
        .await
        .expect_problem(400, "invalid-parameter");
    app.get("/api/tickets?number=vpn", &agent.token)
        .await
        .expect_problem(400, "invalid-parameter");
}

/// `assignee_id=me` and `=none`, `updated_from`/`updated_to`: the filters everyone needs.
#[tokio::test]
async fn lists_filter_by_me_by_nobody_and_by_when_last_changed() {
    let app = spawn_app().await;
    let agent = app.user("agent").await;
    let customer = app.customer().await;
    let mine = id_of(&opened(&app, &customer, &agent, "Mine").await);
    let nobodys = id_of(&opened(&app, &customer, &agent, "Nobody's").await);
    app.post(
        &format!("/api/tickets/{mine}/assign"),
        &agent.token,
        json!({}),
    )
    .await
    .expect(200);

    let me = app
        .get("/api/tickets?assignee_id=me", &agent.token)
        .await
        .expect(200);
    assert_eq!(ids(&me.body), vec![mine.clone()]);
    let none = app
        .get("/api/tickets?assignee_id=none", &agent.token)
        .await
        .expect(200);
    assert_eq!(ids(&none.body), vec![nobodys.clone()]);
    app.get("/api/tickets?assignee_id=someone", &agent.token)
        .await
        .expect_problem(400, "invalid-parameter");

    let changed = app
        .get(&format!("/api/tickets/{mine}"), &agent.token)
        .await
        .expect(200)
        .body["updated_at"]
        .as_str()
        .unwrap()
        .to_string();
    let encoded = changed.replace('+', "%2B");
    let since = app
        .get(
            &format!("/api/tickets?updated_from={encoded}"),
            &agent.token,
        )
        .await
        .expect(200);
    assert_eq!(ids(&since.body), vec![mine.clone()], "changed at or after");
    let before = app
        .get(&format!("/api/tickets?updated_to={encoded}"), &agent.token)
        .await
        .expect(200);
    assert_eq!(ids(&before.body), vec![nobodys], "changed before");
    app.get("/api/tickets?updated_from=yesterday", &agent.token)
        .await
        .expect_problem(400, "invalid-parameter");
}

/// Assign with no agent takes the ticket for the caller; `agent_id: null` or `DELETE` hands it
/// back to the queue; unassigning a ticket nobody holds is a conflict.
#[tokio::test]
async fn assign_to_me_and_unassign() {
    let app = spawn_app().await;
    let agent = app.user("agent").await;
    let customer = app.customer().await;
    let id = id_of(&opened(&app, &customer, &agent, "Take me").await);
    let assign = format!("/api/tickets/{id}/assign");

    let taken = app.post(&assign, &agent.token, json!({})).await.expect(200);
    assert_eq!(taken.body["assignee_id"], json!(agent.user_id));
    let version = taken.body["version"].as_i64().unwrap();

    let released = app
        .post(&assign, &agent.token, json!({"agent_id": null}))
        .await
        .expect(200);
    assert_eq!(released.body["assignee_id"], Value::Null);
    assert_eq!(released.body["version"].as_i64().unwrap(), version + 1);
    app.request(Method::DELETE, &assign, Some(&agent.token), None, &[])
        .await
        .expect_problem(409, "not-assigned");

    app.post(&assign, &agent.token, json!({})).await.expect(200);
    let deleted = app
        .request(Method::DELETE, &assign, Some(&agent.token), None, &[])
        .await
        .expect(200);
    assert_eq!(deleted.body["assignee_id"], Value::Null);
    let read = app
        .get(&format!("/api/tickets/{id}"), &agent.token)
        .await
        .expect(200);
    assert_eq!(read.body["assignee_id"], Value::Null);
    let history = app
        .get(&format!("/api/tickets/{id}/history"), &agent.token)
        .await
        .expect(200);
    assert!(
        history.text.contains("TicketUnassigned"),
        "the log says it was unassigned: {}",
        history.text
    );
    // A customer may not do either.
    app.post(&assign, &customer.token, json!({}))
        .await
        .expect_problem(403, "forbidden");
}

/// `?priorty=high` used to answer every ticket as if it had filtered; now it names the
/// parameter it does not know, and what the operation takes.
#[tokio::test]
async fn an_unknown_query_parameter_is_refused_by_name() {
    let app = spawn_app().await;
    let agent = app.user("agent").await;
    let refused = app
        .get("/api/tickets?priorty=high", &agent.token)
        .await
        .expect_problem(400, "invalid-parameter");
    assert!(refused.text.contains("priorty"), "{}", refused.text);
    assert!(refused.text.contains("priority"), "{}", refused.text);
    // Known parameters still work, on other routes too.
    app.get("/api/tickets?priority=high", &agent.token)
        .await
        .expect(200);
    app.get("/api/search?q=vpn&page=1", &agent.token)
        .await
        .expect(200);
    app.get("/api/search?query=vpn", &agent.token)
        .await
        .expect_problem(400, "invalid-parameter");
}

/// A refused query parameter is a 400 in the user's words, never the framework's; a
/// `min_version` the ticket has not reached is refused at once rather than waited for.
#[tokio::test]
async fn query_parameter_errors_speak_the_users_language() {
    let app = spawn_app().await;
    let agent = app.user("agent").await;
    let customer = app.customer().await;
    let cases = [
        (
            "/api/tickets?page_size=500",
            "page_size must be at most 100",
        ),
        ("/api/tickets?page=0", "page must be at least 1"),
        (
            "/api/tickets?created_from=yesterday",
            "created_from must be an RFC 3339 date-time such as 2026-12-01T00:00:00Z",
        ),
        ("/api/tickets?team_id=sales", "team_id must be a UUID"),
        (
            "/api/tickets?sla_breached=maybe",
            "sla_breached must be true or false",
        ),
        (
            "/api/search?q=vpn&page=first",
            "page must be a whole number",
        ),
    ];
    for (path, said) in cases {
        let refused = app
            .get(path, &agent.token)
            .await
            .expect_problem(400, "invalid-parameter");
        assert_eq!(refused.body["detail"], said, "{path}");
        assert!(!refused.text.contains("verification failed"), "{path}");
    }

    let ticket = opened(&app, &customer, &agent, "Versions").await;
    let (id, version) = (id_of(&ticket), ticket["version"].as_i64().unwrap());
    let ahead = app
        .get(
            &format!("/api/tickets/{id}?min_version={}", version + 5),
            &agent.token,
        )
        .await
        .expect_problem(400, "invalid-parameter");
    assert_eq!(ahead.body["field"], "min_version");
    assert!(
        ahead.body["detail"]
            .as_str()
            .unwrap()
            .contains(&version.to_string()),
        "{}",
        ahead.text
    );
    app.get(
        &format!("/api/tickets/{id}?min_version={version}"),
        &agent.token,
    )
    .await
    .expect(200);
}

/// A client's mistake (412, 404, 409, 422, 400) is the client's: the server serves it without
/// logging an error. The server runs as its own process here, its JSON log read back.
#[tokio::test]
async fn client_errors_are_not_logged_as_errors() {
    let (_, url) = docket_tests::fresh_database().await;
    let (mut child, address) = crate::faults::server_process_logging(
        &url,
        std::process::Stdio::piped(),
        "info,docket_api=debug",
    )
    .await;
    let probe = docket_tests::spawn_app_on(&url).await;
    let agent = probe.user("agent").await;
    let customer = probe.customer().await;
    let ticket = opened(&probe, &customer, &agent, "Logged").await;
    let id = id_of(&ticket);
    let client = reqwest::Client::new();
    let send = |method: Method, path: String, body: Option<Value>, header: Option<(&str, &str)>| {
        let mut request = client
            .request(method, format!("{address}{path}"))
            .bearer_auth(&agent.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let ticket_path = format!("/api/tickets/{id}");
    let statuses = vec![
        send(
            Method::PATCH,
            ticket_path.clone(),
            Some(json!({"category": "x"})),
            Some(("If-Match", "\"99\"")),
        )
        .await,
        send(
            Method::GET,
            format!("/api/tickets/{}", uuid::Uuid::new_v4()),
            None,
            None,
        )
        .await,
        send(Method::DELETE, format!("{ticket_path}/assign"), None, None).await,
        send(
            Method::PATCH,
            ticket_path,
            Some(json!({"subject": ""})),
            None,
        )
        .await,
        send(Method::GET, "/api/tickets?priorty=high".into(), None, None).await,
    ];
    assert_eq!(statuses, vec![412, 404, 409, 422, 400]);
    child.start_kill().unwrap();
    let output = child.wait_with_output().await.unwrap();
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let served: Vec<u64> = lines
        .iter()
        .filter(|line| line["fields"]["message"] == "request served")
        .filter_map(|line| line["fields"]["status"].as_u64())
        .collect();
    for status in [412, 404, 409, 422, 400] {
        assert!(served.contains(&status), "{status} was served and logged");
    }
    let errors: Vec<&Value> = lines.iter().filter(|l| l["level"] == "ERROR").collect();
    assert!(errors.is_empty(), "logged as errors: {errors:?}");
}
