//! One contract, everywhere: every list in the same envelope and paged the same way, every
//! instant in one form, one name for one thing, and the headers a generated client relies on.

use docket_tests::{Session, TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

/// `2026-12-01T09:30:00.123456Z`: RFC 3339, UTC, microseconds, `Z`.
fn is_instant(value: &Value) -> bool {
    let Some(text) = value.as_str() else {
        return false;
    };
    let bytes = text.as_bytes();
    text.len() == 27
        && text.ends_with('Z')
        && bytes[10] == b'T'
        && bytes[19] == b'.'
        && text[20..26].bytes().all(|b| b.is_ascii_digit())
        && chrono::DateTime::parse_from_rfc3339(text).is_ok()
}

/// Every instant anywhere in `value`, by the key it is under (keys ending in `_at`, and the
/// `from`/`to` of reports).
fn instants<'a>(value: &'a Value, found: &mut Vec<(String, &'a Value)>) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields {
                if (key.ends_with("_at") || key == "scheduled_end") && !field.is_null() {
                    found.push((key.clone(), field));
                }
                if key != "data" {
                    instants(field, found);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| instants(item, found)),
        _ => {}
    }
}

struct World {
    admin: Session,
    agent: Session,
    customer: Session,
    ticket: String,
    team: String,
    skill: String,
}

async fn world(app: &TestApp) -> World {
    let admin = app.admin().await;
    let agent = app.user("agent").await;
    let customer = app.customer().await;
    let opened = app.ticket_for(&customer, "Contract").await;
    let ticket = opened["id"].as_str().unwrap().to_string();
    // Reads wait for the reader's own writes only: staff wait for the customer's here.
    let version = opened["version"].as_i64().unwrap();
    for staff in [&admin, &agent] {
        app.read_ticket(&staff.token, &ticket, version)
            .await
            .expect(200);
    }
    let skill = app
        .post(
            "/api/skills",
            &admin.token,
            json!({"name": "Networking", "description": "Cables and such"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let team = app
        .post("/api/teams", &admin.token, json!({"name": "Tier 1"}))
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    World {
        admin,
        agent,
        customer,
        ticket,
        team,
        skill,
    }
}

#[tokio::test]
async fn every_list_has_one_envelope_and_pages_the_same_way() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let lists = [
        "/api/tickets".to_string(),
        format!("/api/tickets/{}/comments", w.ticket),
        "/api/tickets/queue".into(),
        "/api/search?q=contract".into(),
        "/api/search/saved".into(),
        "/api/users".into(),
        "/api/agents".into(),
        "/api/agents/available".into(),
        "/api/skills".into(),
        "/api/teams".into(),
        format!("/api/teams/{}/members", w.team),
        format!("/api/shifts/agent/{}", w.agent.user_id),
        "/api/sla/policies".into(),
        "/api/sla/calendars".into(),
        "/api/escalation-rules".into(),
        "/api/workload/agents".into(),
        "/api/workload/teams".into(),
    ];
    for path in &lists {
        let listed = app.get(path, &w.admin.token).await.expect(200);
        let body = &listed.body;
        assert!(body["items"].is_array(), "{path}: {body}");
        assert!(body["total"].is_i64(), "{path}: {body}");
        assert_eq!(body["page"], 1, "{path}");
        assert_eq!(body["page_size"], 20, "{path}");
        let sep = if path.contains('?') { '&' } else { '?' };
        app.get(&format!("{path}{sep}page_size=101"), &w.admin.token)
            .await
            .expect_problem(400, "invalid-parameter");
    }

    // Paging means the same on each: a slice of the whole, the whole counted.
    for name in ["Printers", "Databases"] {
        app.post("/api/skills", &w.admin.token, json!({"name": name}))
            .await
            .expect(201);
    }
    let all = app
        .get("/api/skills", &w.admin.token)
        .await
        .expect(200)
        .body;
    assert_eq!(all["total"], 3);
    let second = app
        .get("/api/skills?page=2&page_size=1", &w.admin.token)
        .await
        .expect(200)
        .body;
    assert_eq!(second["total"], 3);
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert_eq!(second["items"][0], all["items"][1]);
    let past = app
        .get("/api/skills?page=9&page_size=1", &w.admin.token)
        .await
        .expect(200)
        .body;
    assert_eq!(past["items"], json!([]));

    // The cursor list: items and the next cursor, paged by `page_size` too.
    let audit = app
        .get("/api/audit?page_size=2", &w.admin.token)
        .await
        .expect(200)
        .body;
    assert_eq!(audit["items"].as_array().unwrap().len(), 2);
    let cursor = audit["next_cursor"].as_i64().expect("more to read");
    let next = app
        .get(
            &format!("/api/audit?page_size=2&cursor={cursor}"),
            &w.admin.token,
        )
        .await
        .expect(200)
        .body;
    assert_ne!(next["items"][0], audit["items"][0]);
}

#[tokio::test]
async fn every_instant_is_utc_with_microseconds_and_reads_back_as_written() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let created = app.ticket_for(&w.customer, "Times").await;
    let id = created["id"].as_str().unwrap();
    let version = created["version"].as_i64().unwrap();
    let read = app
        .read_ticket(&w.agent.token, id, version)
        .await
        .expect(200)
        .body;
    assert!(
        is_instant(&created["created_at"]),
        "{}",
        created["created_at"]
    );
    assert_eq!(
        read["created_at"], created["created_at"],
        "the same instant"
    );
    assert_eq!(read["updated_at"], created["updated_at"]);

    let comment = app
        .post(
            &format!("/api/tickets/{id}/comments"),
            &w.agent.token,
            json!({"body": "Looking.", "internal": false}),
        )
        .await
        .expect(201)
        .body;
    let comments = app
        .get(&format!("/api/tickets/{id}/comments"), &w.agent.token)
        .await
        .expect(200)
        .body;
    assert_eq!(comments["items"][0]["created_at"], comment["created_at"]);

    let shift = app
        .post("/api/shifts/start", &w.agent.token, json!({}))
        .await
        .expect(201)
        .body;
    let mut seen = Vec::new();
    let bodies = [
        created.clone(),
        read,
        comment,
        comments,
        shift,
        app.get(&format!("/api/sla/check/{id}"), &w.agent.token)
            .await
            .expect(200)
            .body,
        app.get(&format!("/api/tickets/{id}/history"), &w.agent.token)
            .await
            .expect(200)
            .body,
        app.get("/api/agents", &w.admin.token)
            .await
            .expect(200)
            .body,
        app.get("/api/audit?page_size=5", &w.admin.token)
            .await
            .expect(200)
            .body,
        app.get("/api/users", &w.admin.token).await.expect(200).body,
    ];
    for body in &bodies {
        instants(body, &mut seen);
    }
    assert!(seen.len() > 20, "instants were found: {}", seen.len());
    for (key, value) in seen {
        assert!(is_instant(value), "{key}: {value}");
    }
}

#[tokio::test]
async fn one_name_for_one_thing_in_audit_history_and_skills() {
    let app = spawn_app().await;
    let w = world(&app).await;
    // The event type is `type`, in the audit trail as in a ticket's history.
    let audit = app
        .get("/api/audit?type=TicketCreated", &w.admin.token)
        .await
        .expect(200)
        .body;
    let items = audit["items"].as_array().unwrap();
    assert!(!items.is_empty());
    for item in items {
        assert_eq!(item["type"], "TicketCreated");
        assert!(item.get("event_type").is_none(), "{item}");
    }
    let unknown = app
        .get("/api/audit?type=TicketMelted", &w.admin.token)
        .await
        .expect_problem(400, "invalid-parameter");
    assert_eq!(unknown.body["field"], "type");
    assert!(unknown.text.contains("TicketMelted"));

    // A ticket's number has one form, in its history and the audit trail too.
    let ticket = app
        .get(&format!("/api/tickets/{}", w.ticket), &w.admin.token)
        .await
        .expect(200)
        .body;
    let history = app
        .get(
            &format!("/api/tickets/{}/history", w.ticket),
            &w.admin.token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(history["events"][0]["type"], "TicketCreated");
    assert_eq!(history["events"][0]["data"]["number"], ticket["number"]);
    let created = items
        .iter()
        .find(|item| item["aggregate_id"] == w.ticket.as_str())
        .expect("the ticket's creation is audited");
    assert_eq!(created["data"]["number"], ticket["number"]);

    // A skill is named by its id or its name, wherever one is taken. (Read by the admin who
    // created it: reads wait for the reader's own writes, and the agent wrote nothing here.)
    for named in [w.skill.as_str(), "Networking", "networking"] {
        let skill = app
            .get(&format!("/api/skills/{named}"), &w.admin.token)
            .await
            .expect(200)
            .body;
        assert_eq!(skill["id"], w.skill.as_str(), "{named}");
    }
    let held = app
        .request(
            Method::PUT,
            &format!("/api/agents/{}/skills", w.agent.user_id),
            Some(&w.admin.token),
            Some(json!({"skills": [{"skill": "networking", "proficiency": 4}]})),
            &[],
        )
        .await
        .expect(200);
    assert_eq!(held.body["skills"][0]["skill_id"], w.skill.as_str());
    let by_id = app
        .request(
            Method::PUT,
            &format!("/api/agents/{}/skills", w.agent.user_id),
            Some(&w.admin.token),
            Some(json!({"skills": [{"skill_id": w.skill, "proficiency": 2}]})),
            &[],
        )
        .await
        .expect(200);
    assert_eq!(by_id.body["skills"][0]["proficiency"], 2);
    app.request(
        Method::PUT,
        &format!("/api/agents/{}/skills", w.agent.user_id),
        Some(&w.admin.token),
        Some(json!({"skills": [{"skill": "juggling", "proficiency": 2}]})),
        &[],
    )
    .await
    .expect_problem(422, "validation-failed");
    app.get("/api/skills/juggling", &w.agent.token)
        .await
        .expect_problem(404, "not-found");
}

/// Each 201 says where the new thing is, and that place answers; each write of a versioned
/// thing carries its ETag; a 405 says which methods the route takes.
#[tokio::test]
async fn creates_say_where_writes_say_which_version_and_405_says_what_is_allowed() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let manager = app.user("manager").await;
    let now = chrono::Utc::now();
    let shift = app
        .post("/api/shifts/start", &w.agent.token, json!({}))
        .await
        .expect(201);
    let shift_id = shift.body["id"].as_str().unwrap().to_string();
    let creates: Vec<(String, String, Value)> = vec![
        (
            "/api/skills".into(),
            w.admin.token.clone(),
            json!({"name": "Billing"}),
        ),
        (
            "/api/teams".into(),
            w.admin.token.clone(),
            json!({"name": "Tier 2"}),
        ),
        (
            format!("/api/shifts/{shift_id}/breaks"),
            w.agent.token.clone(),
            json!({"starts_at": now + chrono::Duration::minutes(5), "ends_at": now + chrono::Duration::minutes(20)}),
        ),
        (
            "/api/sla/calendars".into(),
            manager.token.clone(),
            json!({"name": "Always", "timezone": "UTC", "always_open": true}),
        ),
        (
            "/api/sla/policies".into(),
            manager.token.clone(),
            json!({"name": "Gold", "position": 1, "targets": {
                "critical": {"first_response": 60, "resolution": 600, "escalation": 300},
                "high": {"first_response": 60, "resolution": 600, "escalation": 300},
                "medium": {"first_response": 60, "resolution": 600, "escalation": 300},
                "low": {"first_response": 60, "resolution": 600, "escalation": 300}}}),
        ),
        (
            "/api/escalation-rules".into(),
            manager.token.clone(),
            json!({"name": "Late", "conditions": [{"type": "breached"}], "actions": [{"type": "raise_priority"}]}),
        ),
        (
            "/api/search/saved".into(),
            w.agent.token.clone(),
            json!({"name": "Mine", "query": {"q": "printer"}}),
        ),
        (
            format!("/api/tickets/{}/comments", w.ticket),
            w.agent.token.clone(),
            json!({"body": "Noted.", "internal": true}),
        ),
        (
            "/api/tickets".into(),
            w.customer.token.clone(),
            json!({"subject": "Another", "description": "d", "priority": "low"}),
        ),
    ];
    let mut located = vec![(shift.header("location"), w.agent.token.clone())];
    for (path, token, body) in creates {
        let created = app.post(&path, &token, body).await.expect(201);
        assert!(created.header("etag").is_some(), "{path} has an ETag");
        located.push((created.header("location"), token));
    }
    for (location, token) in located {
        let location = location.expect("every 201 has a Location");
        assert!(location.starts_with("/api/"), "{location}");
        app.get(&location, &token).await.expect(200);
    }

    // Writes of versioned things carry their version.
    let agent_path = format!("/api/agents/{}", w.agent.user_id);
    let writes = [
        (
            Method::PUT,
            format!("{agent_path}/capacity"),
            json!({"capacity": 5}),
        ),
        (
            Method::PUT,
            format!("{agent_path}/status"),
            json!({"status": "busy"}),
        ),
        (
            Method::POST,
            format!("/api/teams/{}/members", w.team),
            json!({"user_id": w.agent.user_id}),
        ),
        (
            Method::POST,
            format!("/api/shifts/{shift_id}/end"),
            json!({}),
        ),
    ];
    for (method, path, body) in writes {
        let written = app
            .request(method, &path, Some(&w.admin.token), Some(body), &[])
            .await
            .expect(200);
        let tag = written.header("etag").unwrap_or_default();
        assert!(tag.starts_with('"') && tag.len() > 2, "{path}: {tag:?}");
    }

    let refused = app
        .request(
            Method::DELETE,
            "/api/tickets",
            Some(&w.admin.token),
            None,
            &[],
        )
        .await;
    assert_eq!(refused.status.as_u16(), 405);
    assert_eq!(refused.header("allow").as_deref(), Some("GET, POST"));
    let one = app
        .request(
            Method::PUT,
            &format!("/api/tickets/{}", w.ticket),
            Some(&w.admin.token),
            Some(json!({})),
            &[],
        )
        .await;
    assert_eq!(one.status.as_u16(), 405);
    assert_eq!(one.header("allow").as_deref(), Some("GET, PATCH"));
}

/// A policy for some priorities needs targets for those only; the docs say what happens to
/// the rest, and a timeline's current status has `left_at: null`.
#[tokio::test]
async fn documented_shapes_hold_partial_targets_and_null_left_at() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let manager = app.user("manager").await;
    let quick = json!({"first_response": 60, "resolution": 600, "escalation": 300});
    let high_only = app
        .post(
            "/api/sla/policies",
            &manager.token,
            json!({"name": "High only", "position": 1,
                   "conditions": {"priorities": ["high"]}, "targets": {"high": quick}}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(high_only["targets"]["high"]["first_response"], 60);
    // Left out, so never used: the built-in default's (low: 24 h to first response).
    assert_eq!(high_only["targets"]["low"]["first_response"], 86_400);
    let refused = app
        .post(
            "/api/sla/policies",
            &manager.token,
            json!({"name": "Everyone", "position": 2, "targets": {"high": quick}}),
        )
        .await
        .expect_problem(422, "validation-failed");
    assert_eq!(refused.body["field"], "targets.critical");

    let timeline = app
        .get(
            &format!("/api/tickets/{}/timeline", w.ticket),
            &w.agent.token,
        )
        .await
        .expect(200)
        .body;
    let periods = timeline["periods"].as_array().unwrap();
    let current = periods.last().unwrap();
    assert!(current.as_object().unwrap().contains_key("left_at"));
    assert_eq!(current["left_at"], Value::Null);
}
