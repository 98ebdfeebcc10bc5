//! The SLA engine from the outside: policies and calendars over the API, clocks that pause and
//! retarget, deadlines that turn into events and live messages on time, across restarts, and
//! escalation rules acting on them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use docket_tests::live::SseClient;
use docket_tests::{Session, TestApp, fresh_database, spawn_app, spawn_app_on};
use reqwest::Method;
use serde_json::{Value, json};

/// The promise: a deadline becomes an event within a second of passing.
const ON_TIME: chrono::Duration = chrono::Duration::milliseconds(1_000);

fn targets(first_response: u64, resolution: u64, escalation: u64) -> Value {
    json!({"first_response": first_response, "resolution": resolution, "escalation": escalation})
}

/// A policy for high-priority tickets with second-scale targets; the others keep hours.
fn fast_policy(name: &str, high: Value, at_risk_percent: u8) -> Value {
    let slow = targets(3_600, 86_400, 7_200);
    json!({
        "name": name,
        "position": 1,
        "conditions": {"priorities": ["high"]},
        "at_risk_percent": at_risk_percent,
        "targets": {"critical": slow, "high": high, "medium": slow, "low": slow}
    })
}

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(
        value
            .as_str()
            .unwrap_or_else(|| panic!("{value} is no time")),
    )
    .unwrap()
    .with_timezone(&Utc)
}

fn metric<'a>(check: &'a Value, name: &str) -> &'a Value {
    check["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == name)
        .unwrap_or_else(|| panic!("no {name} clock in {check}"))
}

async fn check(app: &TestApp, token: &str, id: &str) -> Value {
    app.get(&format!("/api/sla/check/{id}"), token)
        .await
        .expect(200)
        .body
}

/// The ticket's events of `event_type`, payloads only, from the log.
async fn events_of(app: &TestApp, id: &str, event_type: &str) -> Vec<(Value, DateTime<Utc>)> {
    sqlx::query_as::<_, (Value, DateTime<Utc>)>(
        "SELECT payload -> event_type, recorded_at FROM events
          WHERE aggregate_type = 'ticket' AND aggregate_id = $1 AND event_type = $2
          ORDER BY sequence",
    )
    .bind(id)
    .bind(event_type)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

/// Polls until `probe` returns something, for at most `wait`.
async fn eventually<T, F, Fut>(wait: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Some(found) = probe().await {
            return Some(found);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn open_high(app: &TestApp, customer: &Session, subject: &str) -> String {
    app.ticket_for(customer, subject).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_ticket_left_alone_breaches_within_a_second_and_staff_hear_it_live() {
    let app = spawn_app().await;
    let manager = app.user("manager").await;
    let customer = app.customer().await;
    app.post(
        "/api/sla/policies",
        &manager.token,
        fast_policy("Fast lane", targets(3, 600, 900), 50),
    )
    .await
    .expect(201);
    let mut staff_stream = SseClient::connect(&app.address, &manager.token, None, "").await;
    let mut customer_stream = SseClient::connect(&app.address, &customer.token, None, "").await;

    let id = open_high(&app, &customer, "Nobody answers").await;
    let before = check(&app, &manager.token, &id).await;
    assert_eq!(before["policy"]["name"], "Fast lane");
    assert_eq!(before["policy"]["version"], 1);
    let first = metric(&before, "first_response");
    assert_eq!(first["target_seconds"], 3);
    assert_eq!(first["state"], "running");
    let due_at = time(&first["due_at"]);
    assert_eq!(
        due_at - time(&first["started_at"]),
        chrono::Duration::seconds(3)
    );

    let mut warning = None;
    let mut breach = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while breach.is_none() && tokio::time::Instant::now() < deadline {
        let Some(message) = staff_stream.next(Duration::from_secs(1)).await else {
            continue;
        };
        match message.event.as_deref() {
            Some("sla_warning") => warning = Some((message.data, Utc::now())),
            Some("sla_breach") => breach = Some((message.data, Utc::now())),
            _ => {}
        }
    }
    let (warning, warned_at) = warning.expect("an sla_warning message at 50 %");
    let (breach, heard_at) = breach.expect("an sla_breach message");
    assert_eq!(warning["data"]["metric"], "first_response");
    assert!(warned_at < due_at, "warned at {warned_at}, due {due_at}");
    assert_eq!(breach["ticket_id"], json!(id));
    assert_eq!(breach["data"]["metric"], "first_response");
    assert_eq!(time(&breach["data"]["due_at"]), due_at);
    let breached_at = time(&breach["data"]["breached_at"]);
    assert!(
        breached_at >= due_at && breached_at - due_at <= ON_TIME,
        "recorded {breached_at} for a deadline at {due_at}"
    );
    assert!(
        heard_at - due_at <= ON_TIME,
        "heard at {heard_at} for a deadline at {due_at}"
    );

    // In the log exactly once, recorded on time.
    let breaches = events_of(&app, &id, "SlaBreached").await;
    assert_eq!(breaches.len(), 1, "{breaches:?}");
    assert!(breaches[0].1 - due_at <= ON_TIME);
    assert_eq!(events_of(&app, &id, "SlaWarning").await.len(), 1);

    let after = check(&app, &manager.token, &id).await;
    let first = metric(&after, "first_response");
    assert_eq!(first["state"], "breached");
    assert!(first["remaining_seconds"].as_i64().unwrap() <= 0);
    // The customer's stream carried neither.
    while let Some(message) = customer_stream.next(Duration::from_millis(300)).await {
        let kind = message.event.unwrap_or_default();
        assert!(!kind.starts_with("sla_"), "the customer heard {kind}");
    }
    // Nor may they ask.
    app.get(&format!("/api/sla/check/{id}"), &customer.token)
        .await
        .expect_problem(403, "forbidden");
}

#[tokio::test]
async fn two_servers_on_one_log_record_each_deadline_once() {
    let (_, url) = fresh_database().await;
    let first = spawn_app_on(&url).await;
    let second = spawn_app_on(&url).await;
    let manager = first.user("manager").await;
    let customer = first.customer().await;
    first
        .post(
            "/api/sla/policies",
            &manager.token,
            fast_policy("Fast", targets(1, 2, 600), 50),
        )
        .await
        .expect(201);
    let mut ids = Vec::new();
    for n in 0..5 {
        let server = if n % 2 == 0 { &first } else { &second };
        ids.push(open_high(server, &customer, &format!("Twice {n}")).await);
    }
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    for id in &ids {
        let breaches: Vec<String> = events_of(&first, id, "SlaBreached")
            .await
            .into_iter()
            .map(|(payload, _)| payload["metric"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(breaches, ["first_response", "resolution"], "{id}");
        assert_eq!(events_of(&first, id, "SlaWarning").await.len(), 2, "{id}");
    }
    second.stop().await;
    first.stop().await;
}

#[tokio::test]
async fn a_restart_between_warning_and_breach_loses_neither() {
    let (_, url) = fresh_database().await;
    let app = spawn_app_on(&url).await;
    let manager = app.user("manager").await;
    let customer = app.customer().await;
    app.post(
        "/api/sla/policies",
        &manager.token,
        fast_policy("Restartable", targets(4, 600, 900), 25),
    )
    .await
    .expect(201);
    let id = open_high(&app, &customer, "Across a restart").await;
    let due_at = time(&metric(&check(&app, &manager.token, &id).await, "first_response")["due_at"]);
    let warned = eventually(Duration::from_secs(4), || async {
        let warnings = events_of(&app, &id, "SlaWarning").await;
        (!warnings.is_empty()).then_some(warnings)
    })
    .await
    .expect("warned at 25 % (one second) before the restart");
    assert_eq!(warned.len(), 1);
    assert!(warned[0].1 < due_at);
    let pool = app.pool.clone();
    app.stop().await;

    // Down while the deadline passes.
    let remaining = (due_at - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(remaining + Duration::from_millis(300)).await;
    assert!(
        events_of_pool(&pool, &id, "SlaBreached").await.is_empty(),
        "nothing records a breach while no server runs"
    );

    let restarted = spawn_app_on(&url).await;
    let started = Utc::now();
    let breaches = eventually(Duration::from_secs(5), || async {
        let breaches = events_of(&restarted, &id, "SlaBreached").await;
        (!breaches.is_empty()).then_some(breaches)
    })
    .await
    .expect("the breach is recorded after the restart");
    // Recorded promptly after start-up, naming the deadline that passed while it was down.
    assert!(breaches[0].1 - started <= ON_TIME + ON_TIME, "{breaches:?}");
    assert_eq!(time(&breaches[0].0["due_at"]), due_at);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(events_of(&restarted, &id, "SlaBreached").await.len(), 1);
    assert_eq!(events_of(&restarted, &id, "SlaWarning").await.len(), 1);
    restarted.stop().await;
}

async fn events_of_pool(pool: &sqlx::PgPool, id: &str, event_type: &str) -> Vec<Value> {
    sqlx::query_scalar(
        "SELECT payload FROM events WHERE aggregate_type = 'ticket' AND aggregate_id = $1 AND event_type = $2",
    )
    .bind(id)
    .bind(event_type)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn pausing_shifts_the_resolution_deadline_by_the_paused_time() {
    let app = spawn_app().await;
    let manager = app.user("manager").await;
    let agent = app.user("agent").await;
    let customer = app.customer().await;
    app.post(
        "/api/sla/policies",
        &manager.token,
        fast_policy("Pausable", targets(600, 120, 900), 75),
    )
    .await
    .expect(201);
    let id = open_high(&app, &customer, "Waiting on the customer").await;
    let status = format!("/api/tickets/{id}/status");
    let before = check(&app, &agent.token, &id).await;
    let due_before = time(&metric(&before, "resolution")["due_at"]);

    app.patch(&status, &agent.token, json!({"status": "pending"}))
        .await
        .expect(200);
    let paused = check(&app, &agent.token, &id).await;
    let resolution = metric(&paused, "resolution");
    assert_eq!(resolution["state"], "paused");
    assert_eq!(resolution["due_at"], Value::Null);
    // Response clocks do not pause: waiting on the customer does not excuse silence.
    assert_eq!(metric(&paused, "first_response")["state"], "running");
    let frozen = resolution["remaining_seconds"].as_i64().unwrap();
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let still = check(&app, &agent.token, &id).await;
    assert_eq!(metric(&still, "resolution")["remaining_seconds"], frozen);

    app.patch(&status, &agent.token, json!({"status": "open"}))
        .await
        .expect(200);
    let after = check(&app, &agent.token, &id).await;
    let resolution = metric(&after, "resolution");
    assert_eq!(resolution["state"], "running");
    let due_after = time(&resolution["due_at"]);
    let paused_at = time(&events_of(&app, &id, "SlaClockPaused").await[0].0["occurred_at"]);
    let resumed_at = time(&events_of(&app, &id, "SlaClockResumed").await[0].0["occurred_at"]);
    assert!(resumed_at - paused_at >= chrono::Duration::milliseconds(1_600));
    // Clocks keep elapsed business time in whole milliseconds.
    let drift = (due_after - due_before) - (resumed_at - paused_at);
    assert!(
        drift.abs() <= chrono::Duration::milliseconds(1),
        "moved by {}, paused for {}",
        due_after - due_before,
        resumed_at - paused_at
    );
    // The escalation clock paused and moved the same way; first response never stopped.
    assert_eq!(
        events_of(&app, &id, "SlaClockPaused")
            .await
            .iter()
            .map(|(p, _)| p["metric"].as_str().unwrap().to_string())
            .collect::<Vec<_>>(),
        ["resolution", "escalation"]
    );
}

#[tokio::test]
async fn a_priority_change_recomputes_running_clocks_from_their_start() {
    let app = spawn_app().await;
    let agent = app.user("agent").await;
    let customer = app.customer().await;
    // No policy configured: the default table applies (high 4 h / 24 h / 8 h).
    let id = open_high(&app, &customer, "Getting worse").await;
    let before = check(&app, &agent.token, &id).await;
    assert_eq!(before["policy"]["name"], "Default (all hours)");
    let first = metric(&before, "first_response");
    assert_eq!(first["target_seconds"], 4 * 3600);
    assert_eq!(metric(&before, "resolution")["target_seconds"], 24 * 3600);
    assert_eq!(metric(&before, "escalation")["target_seconds"], 8 * 3600);
    let started_at = time(&first["started_at"]);

    let patched = app
        .patch(
            &format!("/api/tickets/{id}"),
            &agent.token,
            json!({"priority": "critical"}),
        )
        .await
        .expect(200);
    let after = check(&app, &agent.token, &id).await;
    for (name, target) in [
        ("first_response", 3600),
        ("resolution", 4 * 3600),
        ("escalation", 2 * 3600),
    ] {
        let clock = metric(&after, name);
        assert_eq!(clock["target_seconds"], target, "{name}");
        assert_eq!(time(&clock["started_at"]), started_at, "{name}");
        assert_eq!(
            time(&clock["due_at"]) - started_at,
            chrono::Duration::seconds(target),
            "{name}"
        );
    }
    let retargets = events_of(&app, &id, "SlaClockRetargeted").await;
    assert_eq!(retargets.len(), 3, "{retargets:?}");

    // The ticket carries its nearest deadline: the first response, an hour from creation.
    let nearest = (started_at + chrono::Duration::hours(1)).timestamp_millis();
    assert_eq!(
        time(&patched.body["sla_due_at"]).timestamp_millis(),
        nearest
    );
    let version = patched.body["version"].as_i64().unwrap();
    let read = app
        .read_ticket(&agent.token, &id, version)
        .await
        .expect(200);
    assert_eq!(time(&read.body["sla_due_at"]).timestamp_millis(), nearest);
}

#[tokio::test]
async fn replies_by_staff_meet_response_targets_and_customer_replies_start_the_next() {
    let app = spawn_app().await;
    let agent = app.user("agent").await;
    let customer = app.customer().await;
    let id = open_high(&app, &customer, "Conversation").await;
    let comments = format!("/api/tickets/{id}/comments");
    // An internal note is not a reply.
    app.post(
        &comments,
        &agent.token,
        json!({"body": "Looking", "internal": true}),
    )
    .await
    .expect(201);
    assert_eq!(
        metric(&check(&app, &agent.token, &id).await, "first_response")["state"],
        "running"
    );
    app.post(&comments, &agent.token, json!({"body": "Hello!"}))
        .await
        .expect(201);
    let replied = check(&app, &agent.token, &id).await;
    assert_eq!(metric(&replied, "first_response")["state"], "met");
    assert!(
        replied["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["metric"] != "next_response"),
        "{replied}"
    );

    // The customer answers twice; the clock runs from the older, unanswered message.
    app.post(&comments, &customer.token, json!({"body": "Still broken"}))
        .await
        .expect(201);
    let waiting = check(&app, &agent.token, &id).await;
    let next = metric(&waiting, "next_response");
    assert_eq!(next["state"], "running");
    assert_eq!(next["cycle"], 1);
    let started = time(&next["started_at"]);
    tokio::time::sleep(Duration::from_millis(50)).await;
    app.post(&comments, &customer.token, json!({"body": "Hello?"}))
        .await
        .expect(201);
    let again = check(&app, &agent.token, &id).await;
    assert_eq!(
        time(&metric(&again, "next_response")["started_at"]),
        started
    );

    app.post(&comments, &agent.token, json!({"body": "Fixed now"}))
        .await
        .expect(201);
    let answered = check(&app, &agent.token, &id).await;
    assert_eq!(metric(&answered, "next_response")["state"], "met");
    app.post(&comments, &customer.token, json!({"body": "No it is not"}))
        .await
        .expect(201);
    let second_cycle = check(&app, &agent.token, &id).await;
    assert_eq!(metric(&second_cycle, "next_response")["cycle"], 2);
    assert_eq!(metric(&second_cycle, "next_response")["state"], "running");
}

#[tokio::test]
async fn managers_version_policies_and_edits_reach_open_tickets() {
    let app = spawn_app().await;
    let manager = app.user("manager").await;
    let agent = app.user("agent").await;
    let customer = app.customer().await;
    let created = app
        .post(
            "/api/sla/policies",
            &manager.token,
            fast_policy("Gold", targets(600, 3600, 7200), 80),
        )
        .await
        .expect(201);
    let policy = created.body.clone();
    let policy_id = policy["id"].as_str().unwrap().to_string();
    assert_eq!(policy["version"], 1);
    assert_eq!(policy["at_risk_percent"], 80);
    assert_eq!(policy["pause_statuses"], json!(["pending", "on_hold"]));
    assert_eq!(policy["targets"]["high"]["next_response"], 600);
    assert_eq!(created.header("etag").as_deref(), Some("\"1\""));
    let path = format!("/api/sla/policies/{policy_id}");

    let id = open_high(&app, &customer, "Gold customer").await;
    let applied = check(&app, &agent.token, &id).await;
    assert_eq!(applied["policy"]["id"], json!(policy_id));
    assert_eq!(metric(&applied, "first_response")["target_seconds"], 600);
    // Medium tickets do not match the policy's conditions: the default applies.
    let medium = app
        .post(
            "/api/tickets",
            &customer.token,
            json!({"subject": "Medium", "description": "d", "priority": "medium"}),
        )
        .await
        .expect(201);
    let medium_check = check(&app, &agent.token, medium.body["id"].as_str().unwrap()).await;
    assert_eq!(medium_check["policy"]["name"], "Default (all hours)");

    // A new version, applied to the open ticket from now on.
    let mut edited = fast_policy("Gold", targets(300, 3600, 7200), 80);
    edited["pause_statuses"] = json!(["on_hold"]);
    let updated = app
        .request(
            Method::PUT,
            &path,
            Some(&manager.token),
            Some(edited.clone()),
            &[("If-Match", "\"1\"")],
        )
        .await
        .expect(200);
    assert_eq!(updated.body["version"], 2);
    assert_eq!(updated.body["pause_statuses"], json!(["on_hold"]));
    app.request(
        Method::PUT,
        &path,
        Some(&manager.token),
        Some(edited),
        &[("If-Match", "\"1\"")],
    )
    .await
    .expect_problem(412, "version-mismatch");
    let propagated = eventually(Duration::from_secs(8), || async {
        let now = check(&app, &agent.token, &id).await;
        (now["policy"]["version"] == 2).then_some(now)
    })
    .await
    .expect("the edit reaches the open ticket");
    let first = metric(&propagated, "first_response");
    assert_eq!(first["target_seconds"], 300);
    // Recomputed from the clock's start, not from the moment of the edit.
    assert_eq!(
        time(&first["due_at"]) - time(&first["started_at"]),
        chrono::Duration::seconds(300)
    );
    let applications = events_of(&app, &id, "SlaPolicyApplied").await;
    assert_eq!(applications.len(), 2);
    assert_eq!(applications[1].0["policy"]["version"], 2);
    assert_eq!(applications[1].0["reason"], "policy_changed");

    let token = updated.consistency_token().unwrap();
    let listed = app
        .request(
            Method::GET,
            "/api/sla/policies",
            Some(&agent.token),
            None,
            &[("X-Consistency-Token", &token)],
        )
        .await
        .expect(200);
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed.body["total"], 1);
    assert_eq!(listed.body["items"][0]["version"], 2);
    assert_eq!(
        app.get(&path, &agent.token).await.expect(200).body["version"],
        2
    );

    // Who may do what, and what is refused.
    app.post(
        "/api/sla/policies",
        &agent.token,
        fast_policy("Mine", targets(1, 2, 3), 50),
    )
    .await
    .expect_problem(403, "forbidden");
    app.get("/api/sla/policies", &customer.token)
        .await
        .expect_problem(403, "forbidden");
    let mut unknown_calendar = fast_policy("Cal", targets(1, 2, 3), 50);
    unknown_calendar["calendar_id"] = json!(uuid::Uuid::now_v7());
    let problem = app
        .post("/api/sla/policies", &manager.token, unknown_calendar)
        .await
        .expect_problem(422, "validation-failed");
    assert_eq!(problem.body["field"], "calendar_id");
    let mut zero = fast_policy("Zero", targets(1, 2, 3), 50);
    zero["targets"]["low"]["resolution"] = json!(0);
    let problem = app
        .post("/api/sla/policies", &manager.token, zero)
        .await
        .expect_problem(422, "validation-failed");
    assert_eq!(problem.body["field"], "targets.low.resolution");
    let mut extra = fast_policy("Extra", targets(1, 2, 3), 50);
    extra["colour"] = json!("gold");
    let problem = app
        .post("/api/sla/policies", &manager.token, extra)
        .await
        .expect_problem(422, "validation-failed");
    assert_eq!(problem.body["field"], "colour");

    // Deleted: open tickets fall back to the default.
    app.request(Method::DELETE, &path, Some(&manager.token), None, &[])
        .await
        .expect(204);
    app.get(&path, &agent.token)
        .await
        .expect_problem(404, "not-found");
    let fallen_back = eventually(Duration::from_secs(8), || async {
        let now = check(&app, &agent.token, &id).await;
        (now["policy"]["name"] == "Default (all hours)").then_some(now)
    })
    .await
    .expect("the open ticket falls back to the default policy");
    assert_eq!(
        metric(&fallen_back, "first_response")["target_seconds"],
        4 * 3600
    );
}

#[tokio::test]
async fn calendars_are_validated_versioned_and_count_only_business_time() {
    let app = spawn_app().await;
    let manager = app.user("manager").await;
    let agent = app.user("agent").await;
    let customer = app.customer().await;
    let week = json!([{"start": "09:00", "end": "17:00"}]);
    let created = app
        .post(
            "/api/sla/calendars",
            &manager.token,
            json!({"name": "Berlin office", "timezone": "Europe/Berlin",
                   "hours": {"monday": week, "tuesday": week, "wednesday": week,
                             "thursday": week, "friday": week},
                   "holidays": ["2026-12-24", "2026-12-25"]}),
        )
        .await
        .expect(201);
    let calendar_id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(created.body["version"], 1);
    assert_eq!(created.body["timezone"], "Europe/Berlin");
    assert_eq!(created.body["always_open"], false);
    assert_eq!(created.body["hours"]["monday"], week);
    assert_eq!(created.body["hours"]["saturday"], json!([]));
    assert_eq!(
        created.body["holidays"],
        json!(["2026-12-24", "2026-12-25"])
    );

    // A night shift running past midnight, and a new version.
    let night = json!([{"start": "22:00", "end": "06:00"}]);
    let updated = app
        .put(
            &format!("/api/sla/calendars/{calendar_id}"),
            &manager.token,
            json!({"name": "Night desk", "timezone": "America/New_York",
                   "hours": {"monday": night, "saturday": night}}),
        )
        .await
        .expect(200);
    assert_eq!(updated.body["version"], 2);
    assert_eq!(updated.body["hours"]["monday"], night);
    let token = updated.consistency_token().unwrap();
    let listed = app
        .request(
            Method::GET,
            "/api/sla/calendars",
            Some(&agent.token),
            None,
            &[("X-Consistency-Token", &token)],
        )
        .await
        .expect(200);
    assert_eq!(listed.body["items"][0]["name"], "Night desk");

    for (body, field) in [
        (
            json!({"name": "Mars", "timezone": "Mars/Olympus", "always_open": true}),
            "timezone",
        ),
        (
            json!({"name": "Bad", "timezone": "UTC", "hours": {"monday": [{"start": "25:00", "end": "26:00"}]}}),
            "hours.monday[0].start",
        ),
        (
            json!({"name": "Empty", "timezone": "UTC", "hours": {}}),
            "hours",
        ),
    ] {
        let problem = app
            .post("/api/sla/calendars", &manager.token, body)
            .await
            .expect_problem(422, "validation-failed");
        assert_eq!(problem.body["field"], field, "{}", problem.text);
    }
    app.post(
        "/api/sla/calendars",
        &agent.token,
        json!({"name": "x", "timezone": "UTC", "always_open": true}),
    )
    .await
    .expect_problem(403, "forbidden");

    // A policy on a calendar that is closed right now: the clock waits for opening hours.
    let closed_now = app
        .post(
            "/api/sla/calendars",
            &manager.token,
            json!({"name": "Never today", "timezone": "UTC",
                   "hours": {"monday": [{"start": "00:00", "end": "00:01"}]},
                   // Today and the next two days: whatever today is, the next Monday
                   // that is not a holiday is more than two days away.
                   "holidays": (0..3).map(|d| Utc::now().date_naive() + chrono::Days::new(d))
                       .collect::<Vec<_>>()}),
        )
        .await
        .expect(201);
    let mut policy = fast_policy("Office hours", targets(30, 60, 90), 75);
    policy["calendar_id"] = closed_now.body["id"].clone();
    app.post("/api/sla/policies", &manager.token, policy)
        .await
        .expect(201);
    let id = open_high(&app, &customer, "After hours").await;
    let clocks = check(&app, &agent.token, &id).await;
    let first = metric(&clocks, "first_response");
    assert_eq!(first["elapsed_business_seconds"], 0);
    // Thirty business seconds from now are at least a day away.
    assert!(time(&first["due_at"]) - Utc::now() > chrono::Duration::hours(20));
}

#[tokio::test]
async fn escalation_rules_act_once_and_name_themselves_in_the_log() {
    let app = spawn_app().await;
    let manager = app.user("manager").await;
    let agent = app.user("agent").await;
    let customer = app.customer().await;
    app.post(
        "/api/sla/policies",
        &manager.token,
        fast_policy("Rules", targets(1, 600, 900), 50),
    )
    .await
    .expect(201);
    let rule = app
        .post(
            "/api/escalation-rules",
            &manager.token,
            json!({"name": "Overdue first answer", "priorities": ["high"],
            "conditions": [{"type": "response_overdue"}],
            "actions": [
                {"type": "escalate", "parameters": {"escalate_to": manager.user_id}},
                {"type": "raise_priority"},
                {"type": "notify", "parameters": {"recipients": [manager.user_id]}}
            ]}),
        )
        .await
        .expect(201);
    let rule_id = rule.body["id"].as_str().unwrap().to_string();
    assert_eq!(rule.body["version"], 1);
    assert_eq!(rule.body["enabled"], true);
    let mut stream = SseClient::connect(&app.address, &agent.token, None, "").await;

    let id = open_high(&app, &customer, "Rule me").await;
    let mut escalated = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while escalated.is_none() && tokio::time::Instant::now() < deadline {
        if let Some(message) = stream.next(Duration::from_secs(1)).await
            && message.event.as_deref() == Some("ticket_escalated")
        {
            escalated = Some(message.data);
        }
    }
    let escalated = escalated.expect("a live ticket_escalated message");
    assert_eq!(escalated["ticket_id"], json!(id));
    assert_eq!(escalated["actor"]["role"], "system");

    let ticket = eventually(Duration::from_secs(5), || async {
        let ticket = app
            .get(&format!("/api/tickets/{id}"), &agent.token)
            .await
            .body;
        (ticket["priority"] == "critical").then_some(ticket)
    })
    .await
    .expect("the rule raised the priority");
    assert_eq!(ticket["escalation_level"], 1);
    assert_eq!(ticket["assignee_id"], json!(manager.user_id));
    let triggered = events_of(&app, &id, "EscalationRuleTriggered").await;
    assert_eq!(triggered.len(), 1);
    assert_eq!(triggered[0].0["rule_id"], json!(rule_id));
    assert_eq!(triggered[0].0["rule_name"], "Overdue first answer");
    let notified = events_of(&app, &id, "NotificationRequested").await;
    assert_eq!(notified.len(), 1);
    assert_eq!(notified[0].0["recipients"], json!([manager.user_id]));
    let escalations = events_of(&app, &id, "TicketEscalated").await;
    assert!(
        escalations[0].0["reason"]
            .as_str()
            .unwrap()
            .contains("Overdue first answer")
    );

    // It stays at once, however long the condition holds.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        events_of(&app, &id, "EscalationRuleTriggered").await.len(),
        1
    );

    // Rules are managed like policies.
    let listed = app
        .get("/api/escalation-rules", &agent.token)
        .await
        .expect(200);
    assert_eq!(
        listed.body["items"][0]["conditions"][0]["type"],
        "response_overdue"
    );
    let path = format!("/api/escalation-rules/{rule_id}");
    let disabled = app
        .put(
            &path,
            &manager.token,
            json!({"name": "Overdue first answer", "conditions": [{"type": "no_update_for", "minutes": 30}],
                   "actions": [{"type": "raise_priority"}], "enabled": false}),
        )
        .await
        .expect(200);
    assert_eq!(disabled.body["version"], 2);
    assert_eq!(disabled.body["enabled"], false);
    let problem = app
        .post(
            "/api/escalation-rules",
            &manager.token,
            json!({"name": "Vague", "conditions": [{"type": "unassigned_for"}], "actions": [{"type": "raise_priority"}]}),
        )
        .await
        .expect_problem(422, "validation-failed");
    assert_eq!(problem.body["field"], "conditions[0].minutes");
    app.post(
        "/api/escalation-rules",
        &manager.token,
        json!({"name": "Nothing", "conditions": [{"type": "at_risk"}], "actions": []}),
    )
    .await
    .expect_problem(422, "validation-failed");
    app.post(
        "/api/escalation-rules",
        &agent.token,
        json!({"name": "Agent's", "conditions": [{"type": "at_risk"}], "actions": [{"type": "raise_priority"}]}),
    )
    .await
    .expect_problem(403, "forbidden");
    let deleted = app
        .request(Method::DELETE, &path, Some(&manager.token), None, &[])
        .await
        .expect(204);
    let token = deleted.consistency_token().unwrap();
    let after_delete = app
        .request(
            Method::GET,
            "/api/escalation-rules",
            Some(&agent.token),
            None,
            &[("X-Consistency-Token", &token)],
        )
        .await
        .expect(200);
    assert_eq!(after_delete.body["items"], json!([]));
    assert_eq!(after_delete.body["total"], 0);
}

#[tokio::test]
async fn the_escalation_target_passing_escalates_the_ticket_by_itself() {
    let app = spawn_app().await;
    let manager = app.user("manager").await;
    let customer = app.customer().await;
    app.post(
        "/api/sla/policies",
        &manager.token,
        fast_policy("Escalating", targets(600, 600, 2), 50),
    )
    .await
    .expect(201);
    let id = open_high(&app, &customer, "Escalate me").await;
    let due_at = time(&metric(&check(&app, &manager.token, &id).await, "escalation")["due_at"]);
    let escalations = eventually(Duration::from_secs(6), || async {
        let escalations = events_of(&app, &id, "TicketEscalated").await;
        (!escalations.is_empty()).then_some(escalations)
    })
    .await
    .expect("escalated automatically");
    assert_eq!(escalations.len(), 1);
    assert_eq!(escalations[0].0["to_level"], 1);
    assert!(escalations[0].1 - due_at <= ON_TIME);
    let clocks = check(&app, &manager.token, &id).await;
    assert_eq!(metric(&clocks, "escalation")["state"], "breached");
    assert_eq!(metric(&clocks, "resolution")["state"], "running");
}

#[tokio::test]
async fn violations_metrics_and_list_filters_show_what_is_late() {
    let app = spawn_app().await;
    let manager = app.user("manager").await;
    let agent = app.user("agent").await;
    let customer = app.customer().await;
    app.post(
        "/api/sla/policies",
        &manager.token,
        fast_policy("Report", targets(2, 600, 900), 10),
    )
    .await
    .expect(201);
    let late = open_high(&app, &customer, "Late one").await;
    let answered = open_high(&app, &customer, "Answered one").await;
    app.post(
        &format!("/api/tickets/{answered}/comments"),
        &agent.token,
        json!({"body": "On it"}),
    )
    .await
    .expect(201);
    let relaxed = app
        .post(
            "/api/tickets",
            &customer.token,
            json!({"subject": "Relaxed", "description": "d", "priority": "low"}),
        )
        .await
        .expect(201);
    let relaxed = relaxed.body["id"].as_str().unwrap().to_string();

    let report = eventually(Duration::from_secs(6), || async {
        let report = app
            .get("/api/sla/violations", &agent.token)
            .await
            .expect(200)
            .body;
        (!report["breached"].as_array().unwrap().is_empty()).then_some(report)
    })
    .await
    .expect("the late ticket is reported");
    let breached = report["breached"].as_array().unwrap();
    assert_eq!(breached.len(), 1, "{report}");
    assert_eq!(breached[0]["ticket_id"], json!(late));
    assert_eq!(breached[0]["number"], "TKT-000001");
    assert_eq!(breached[0]["subject"], "Late one");
    assert_eq!(breached[0]["priority"], "high");
    assert_eq!(breached[0]["metric"], "first_response");
    assert!(breached[0]["remaining_seconds"].as_i64().unwrap() <= 0);
    // At 10 % the answered ticket's resolution clock is at risk after a minute; not yet.
    assert!(
        report["at_risk"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["ticket_id"] != json!(relaxed))
    );

    let listed = app
        .get("/api/tickets?sla_breached=true", &agent.token)
        .await
        .expect(200);
    let ids: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [late.as_str()]);
    let by_state = app
        .get("/api/tickets?sla_state=breached", &agent.token)
        .await
        .expect(200);
    assert_eq!(by_state.body["total"], 1);
    let sorted = app
        .get("/api/tickets?sort=sla_due_at", &agent.token)
        .await
        .expect(200);
    let dues: Vec<DateTime<Utc>> = sorted.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| !t["sla_due_at"].is_null())
        .map(|t| time(&t["sla_due_at"]))
        .collect();
    assert_eq!(dues.len(), 3);
    assert!(dues.windows(2).all(|w| w[0] <= w[1]), "{dues:?}");
    app.get("/api/tickets?sla_state=late", &agent.token)
        .await
        .expect_problem(400, "invalid-parameter");

    let metrics = app
        .get("/api/sla/metrics?group_by=priority", &manager.token)
        .await
        .expect(200);
    assert_eq!(metrics.body["group_by"], "priority");
    let high = metrics.body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"] == "high")
        .unwrap_or_else(|| panic!("{}", metrics.text));
    let first = high["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == "first_response")
        .unwrap();
    assert_eq!(first["met"], 1);
    assert_eq!(first["breached"], 1);
    assert_eq!(first["compliance_rate"], 0.5);
    assert!(first["mean_business_seconds"].as_f64().unwrap() >= 0.0);
    // No ticket here has a team: one group without a key, counting every clock.
    let by_team = app
        .get("/api/sla/metrics?group_by=team", &manager.token)
        .await
        .expect(200);
    let finished = |report: &Value| -> i64 {
        report["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["metrics"].as_array().unwrap().iter())
            .map(|m| m["met"].as_i64().unwrap() + m["breached"].as_i64().unwrap())
            .sum()
    };
    assert_eq!(by_team.body["group_by"], "team");
    assert_eq!(
        by_team.body["groups"].as_array().unwrap().len(),
        1,
        "{}",
        by_team.text
    );
    assert_eq!(by_team.body["groups"][0]["key"], Value::Null);
    assert_eq!(finished(&by_team.body), finished(&metrics.body));
    app.get(
        "/api/sla/metrics?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
        &manager.token,
    )
    .await
    .expect_problem(400, "invalid-parameter");
    app.get("/api/sla/violations", &customer.token)
        .await
        .expect_problem(403, "forbidden");
}

/// The catalog's signature is kept by a trigger beside the log (migration 0013); it must count
/// exactly the events the catalog is folded from, or a saved policy would not reach new tickets.
#[tokio::test]
async fn the_catalog_signature_counts_exactly_the_catalogs_events() {
    let app = spawn_app().await;
    let manager = app.user("manager").await;
    let customer = app.customer().await;
    let week = json!([{"start": "09:00", "end": "17:00"}]);
    app.post(
        "/api/sla/calendars",
        &manager.token,
        json!({"name": "Office", "timezone": "Europe/Berlin", "hours": {"monday": week}}),
    )
    .await
    .expect(201);
    app.post(
        "/api/sla/policies",
        &manager.token,
        fast_policy("Counted", targets(60, 600, 900), 50),
    )
    .await
    .expect(201);
    open_high(&app, &customer, "Not configuration").await;
    let types: Vec<String> = docket_projections::sla_config::CATALOG_TYPES
        .iter()
        .map(|t| t.to_string())
        .collect();
    let from_log: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT aggregate_type, count(*), max(global_position) FROM events
          WHERE aggregate_type = ANY($1) GROUP BY 1 ORDER BY 1",
    )
    .bind(&types)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let kept: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT aggregate_type, events, newest_position FROM catalog_signature ORDER BY 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(from_log.len(), types.len(), "both types were written");
    assert_eq!(kept, from_log);
}

/// Preview a rule as a manager: the tickets it would act on now.
async fn preview(app: &TestApp, manager: &Session, rule: Value) -> Vec<String> {
    let previewed = app
        .post("/api/escalation-rules/preview", &manager.token, rule)
        .await
        .expect(200);
    previewed.body["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["ticket_id"].as_str().unwrap().to_string())
        .collect()
}

fn raise_when(condition: Value, apply_to_existing: bool) -> Value {
    json!({"name": "Raise", "conditions": [condition], "apply_to_existing": apply_to_existing,
           "actions": [{"type": "raise_priority"}]})
}

/// `at_risk` is warned and not yet breached, `breached` is breached, each of the clock the
/// condition names; a preview says which tickets match and writes nothing.
#[tokio::test]
async fn at_risk_and_breached_mean_what_they_say_for_the_clock_they_name() {
    let app = spawn_app().await;
    let manager = app.user("manager").await;
    let customer = app.customer().await;
    // First response warned after 1 s and breached after 3 s; resolution after an hour.
    app.post(
        "/api/sla/policies",
        &manager.token,
        fast_policy("Quick answer", targets(3, 3_600, 7_200), 34),
    )
    .await
    .expect(201);
    let id = open_high(&app, &customer, "Watch my clocks").await;
    let at_risk = |metric: &str| json!({"type": "at_risk", "metric": metric});
    let breached = |metric: &str| json!({"type": "breached", "metric": metric});
    let events_before = events_of(&app, &id, "TicketPriorityChanged").await.len();

    // Warned, not breached: at risk (of the first response, not of the resolution).
    let warned = eventually(Duration::from_secs(10), || async {
        let found = preview(&app, &manager, raise_when(at_risk("first_response"), true)).await;
        found.contains(&id).then_some(())
    })
    .await;
    assert!(warned.is_some(), "the warned ticket is at risk");
    let breached_now = preview(&app, &manager, raise_when(breached("first_response"), true)).await;
    let first_state =
        metric(&check(&app, &manager.token, &id).await, "first_response")["state"].clone();
    if first_state == "at_risk" {
        assert!(!breached_now.contains(&id), "at risk is not breached");
    }
    assert!(
        !preview(&app, &manager, raise_when(at_risk("resolution"), true))
            .await
            .contains(&id),
        "the resolution clock is not at risk"
    );

    // Breached: breached, and no longer at risk.
    let late = eventually(Duration::from_secs(10), || async {
        let found = preview(&app, &manager, raise_when(breached("first_response"), true)).await;
        found.contains(&id).then_some(())
    })
    .await;
    assert!(late.is_some(), "the breached ticket is breached");
    assert!(
        !preview(&app, &manager, raise_when(at_risk("first_response"), true))
            .await
            .contains(&id),
        "a breached clock is no longer at risk"
    );
    assert!(
        preview(
            &app,
            &manager,
            raise_when(json!({"type": "breached"}), true)
        )
        .await
        .contains(&id),
        "breached of any clock"
    );
    // Without `apply_to_existing`, nothing already so would be touched.
    assert!(
        preview(
            &app,
            &manager,
            raise_when(breached("first_response"), false)
        )
        .await
        .is_empty()
    );
    // Previews wrote nothing.
    assert_eq!(
        events_of(&app, &id, "TicketPriorityChanged").await.len(),
        events_before
    );
    assert!(
        events_of(&app, &id, "EscalationRuleTriggered")
            .await
            .is_empty()
    );

    // A condition names its clock, and reads back the same.
    let saved = app
        .post(
            "/api/escalation-rules",
            &manager.token,
            raise_when(at_risk("resolution"), false),
        )
        .await
        .expect(201);
    assert_eq!(saved.body["conditions"][0]["metric"], "resolution");
    assert_eq!(saved.body["apply_to_existing"], false);
    assert_eq!(saved.body["acting_on_now"], 0);
    app.post(
        "/api/escalation-rules",
        &manager.token,
        raise_when(json!({"type": "at_risk", "metric": "soon"}), false),
    )
    .await
    .expect_problem(422, "validation-failed");
}

/// A new rule acts on what happens after it is saved; tickets already in its state are left
/// alone unless it is told to apply to them, and then its answer says how many it takes.
#[tokio::test]
async fn a_new_rule_acts_on_what_happens_after_it_unless_told_to_apply_to_existing() {
    let app = spawn_app().await;
    let manager = app.user("manager").await;
    let customer = app.customer().await;
    // First response breached after 1 s.
    app.post(
        "/api/sla/policies",
        &manager.token,
        fast_policy("Breach fast", targets(1, 3_600, 7_200), 50),
    )
    .await
    .expect(201);
    let old = open_high(&app, &customer, "Breached before the rule").await;
    let breached_fr = json!({"type": "breached", "metric": "first_response"});
    let already = eventually(Duration::from_secs(10), || async {
        let found = preview(&app, &manager, raise_when(breached_fr.clone(), true)).await;
        found.contains(&old).then_some(())
    })
    .await;
    assert!(already.is_some(), "the old ticket breached");

    let rule = app
        .post(
            "/api/escalation-rules",
            &manager.token,
            raise_when(breached_fr.clone(), false),
        )
        .await
        .expect(201);
    assert_eq!(rule.body["acting_on_now"], 0);
    // A ticket that breaches after the rule was saved is acted on…
    let new = open_high(&app, &customer, "Breached after the rule").await;
    let raised = eventually(Duration::from_secs(10), || async {
        let ticket = app
            .get(&format!("/api/tickets/{new}"), &manager.token)
            .await
            .body;
        (ticket["priority"] == "critical").then_some(())
    })
    .await;
    assert!(raised.is_some(), "the rule acted on the new breach");
    // …the old one is not, however long it waits.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        events_of(&app, &old, "EscalationRuleTriggered")
            .await
            .is_empty()
    );
    let still = app
        .get(&format!("/api/tickets/{old}"), &manager.token)
        .await
        .body;
    assert_eq!(still["priority"], "high");

    // Told to apply to existing tickets, a rule says how many it takes at once, and takes them.
    let existing = app
        .post(
            "/api/escalation-rules",
            &manager.token,
            json!({"name": "Everyone late", "conditions": [breached_fr], "apply_to_existing": true,
                   "actions": [{"type": "notify", "parameters": {"recipients": [manager.user_id]}}]}),
        )
        .await
        .expect(201);
    assert_eq!(existing.body["acting_on_now"], 2, "{}", existing.text);
    let notified = eventually(Duration::from_secs(10), || async {
        let old_notes = events_of(&app, &old, "NotificationRequested").await.len();
        let new_notes = events_of(&app, &new, "NotificationRequested").await.len();
        (old_notes == 1 && new_notes == 1).then_some(())
    })
    .await;
    assert!(notified.is_some(), "both breached tickets were acted on");
}
