//! The projection engine: safe ordering, crash safety, stopping on bad events, rebuilds.

use std::time::Duration;

use docket_projections::notify::LogNotifications;
use docket_projections::rebuild::{self, RebuildSettings};
use docket_projections::runtime::{self, RunnerSettings};
use docket_projections::tickets::TicketsProjection;
use docket_tests::{OPENED_VERSION, fresh_database, spawn_app, spawn_app_on, synthetic};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

fn comment_payload(body: &str, author: Uuid) -> Value {
    json!({"CommentAdded": {
        "comment_id": Uuid::new_v4(),
        "body": body,
        "internal": false,
        "author": {"user_id": author, "role": "agent"},
        "occurred_at": "2026-11-23T10:00:00Z"
    }})
}

async fn insert_event(
    conn: &mut PgConnection,
    ticket: &str,
    sequence: i64,
    payload: &Value,
    version: &str,
) -> i64 {
    let event_type = payload.as_object().unwrap().keys().next().unwrap().clone();
    sqlx::query_scalar(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('ticket', $1, $2, $3, $4, $5, '{}') RETURNING global_position",
    )
    .bind(ticket)
    .bind(sequence)
    .bind(event_type)
    .bind(version)
    .bind(payload)
    .fetch_one(&mut *conn)
    .await
    .unwrap()
}

async fn comment_count(pool: &PgPool, ticket: &str) -> (i64, i64, i64) {
    let (count, version): (i32, i64) =
        sqlx::query_as("SELECT comment_count, version FROM tickets_view WHERE id = $1::uuid")
            .bind(ticket)
            .fetch_one(pool)
            .await
            .unwrap();
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM ticket_comments_view WHERE ticket_id = $1::uuid")
            .bind(ticket)
            .fetch_one(pool)
            .await
            .unwrap();
    (i64::from(count), rows, version)
}

#[tokio::test]
async fn an_event_committed_late_with_an_earlier_position_is_applied_once() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let agent = app.user("agent").await;
    let first = app.ticket_for(&customer, "First").await;
    let second = app.ticket_for(&customer, "Second").await;
    let (a_ticket, b_ticket) = (
        first["id"].as_str().unwrap(),
        second["id"].as_str().unwrap(),
    );
    app.read_ticket(&agent.token, a_ticket, OPENED_VERSION)
        .await
        .expect(200);
    app.read_ticket(&agent.token, b_ticket, OPENED_VERSION)
        .await
        .expect(200);
    let next = OPENED_VERSION + 1;

    // A takes a position and stays open; B takes a later position and commits first.
    let mut a = PgConnection::connect(&app.database_url).await.unwrap();
    let mut b = PgConnection::connect(&app.database_url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut a).await.unwrap();
    let a_position = insert_event(
        &mut a,
        a_ticket,
        next,
        &comment_payload("from A", agent.user_id),
        "1",
    )
    .await;
    sqlx::query("BEGIN").execute(&mut b).await.unwrap();
    let b_position = insert_event(
        &mut b,
        b_ticket,
        next,
        &comment_payload("from B", agent.user_id),
        "1",
    )
    .await;
    assert!(a_position < b_position);
    sqlx::query("COMMIT").execute(&mut b).await.unwrap();

    // B is committed, but a reader that moved past it now would never see A: the projector
    // waits for A instead.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        comment_count(&app.pool, b_ticket).await,
        (0, 0, OPENED_VERSION)
    );
    let ready = app.request(Method::GET, "/ready", None, None, &[]).await;
    assert!(ready.text.contains("\"lag\""));

    sqlx::query("COMMIT").execute(&mut a).await.unwrap();
    app.read_ticket(&agent.token, a_ticket, next)
        .await
        .expect(200);
    app.read_ticket(&agent.token, b_ticket, next)
        .await
        .expect(200);
    assert_eq!(comment_count(&app.pool, a_ticket).await, (1, 1, next));
    assert_eq!(comment_count(&app.pool, b_ticket).await, (1, 1, next));

    // And nothing is applied twice however long it keeps running.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(comment_count(&app.pool, a_ticket).await, (1, 1, next));
    let differences = rebuild::verify(
        &TicketsProjection,
        &app.pool,
        RebuildSettings::default(),
        100,
        |_| {},
    )
    .await
    .unwrap();
    assert!(differences.is_empty(), "{differences:?}");
}

/// Runs the tickets projector until it has applied everything in the log.
async fn catch_up_tickets(pool: &PgPool) {
    let settings = RunnerSettings {
        batch_size: 500,
        idle_poll: Duration::from_millis(50),
    };
    runtime::catch_up(&TicketsProjection, pool, settings)
        .await
        .unwrap();
}

/// A migrated database whose log holds a synthetic one of `tickets` tickets with `comments`
/// comments each, which no tickets projector has read yet; and the events written.
async fn synthetic_log_without_projector(tickets: i64, comments: i64) -> (PgPool, i64) {
    let (_, url) = fresh_database().await;
    // Start and stop a server once so the database exists and is migrated.
    spawn_app_on(&url).await.stop().await;
    let pool = PgPool::connect(&url).await.unwrap();
    sqlx::query("DELETE FROM projector_checkpoints WHERE projector = 'tickets'")
        .execute(&pool)
        .await
        .unwrap();
    let written = synthetic::write_log(&pool, Uuid::new_v4(), tickets, comments)
        .await
        .unwrap();
    (pool, written)
}

#[tokio::test]
async fn a_projector_killed_again_and_again_ends_equal_to_a_fresh_rebuild() {
    let (pool, written) = synthetic_log_without_projector(2_000, 3).await;
    assert_eq!(written, 2_000 * 5);

    let settings = RunnerSettings {
        batch_size: 250,
        idle_poll: Duration::from_millis(50),
    };
    let mut kills = 0;
    for round in 0..8u64 {
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let runner = tokio::spawn(runtime::run(
            TicketsProjection,
            pool.clone(),
            LogNotifications::disconnected(),
            settings,
            shutdown,
        ));
        tokio::time::sleep(Duration::from_millis(15 + round * 11)).await;
        // Abort: the task dies wherever it is, mid-batch included.
        runner.abort();
        let _ = runner.await;
        drop(stop);
        kills += 1;
    }
    assert_eq!(kills, 8);
    runtime::catch_up(&TicketsProjection, &pool, settings)
        .await
        .unwrap();

    let tickets: i64 = sqlx::query_scalar("SELECT count(*) FROM tickets_view")
        .fetch_one(&pool)
        .await
        .unwrap();
    let comments: i64 = sqlx::query_scalar("SELECT count(*) FROM ticket_comments_view")
        .fetch_one(&pool)
        .await
        .unwrap();
    let counted: i64 = sqlx::query_scalar("SELECT sum(comment_count) FROM tickets_view")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!((tickets, comments, counted), (2_000, 6_000, 6_000));
    let differences = rebuild::verify(
        &TicketsProjection,
        &pool,
        RebuildSettings::default(),
        100,
        |_| {},
    )
    .await
    .unwrap();
    assert!(differences.is_empty(), "{differences:?}");
}

/// A rebuild writes tickets that no batch changed for a while beside the replay, with their
/// search vectors, and writes them again at the end if they changed after all. The synthetic
/// log comments on every ticket in rounds: with small batches each ticket is quiet long enough
/// to be written, then gets another comment (its texts and vector change), and at last a status
/// change (its texts do not). The rebuilt tables must equal what the live projector built.
#[tokio::test]
async fn a_rebuild_that_writes_quiet_tickets_early_still_equals_the_live_projection() {
    let (pool, _) = synthetic_log_without_projector(300, 12).await;
    catch_up_tickets(&pool).await;
    // 300 events a comment round; 25 a batch: a ticket is quiet for 12 batches between rounds.
    let small_batches = RebuildSettings {
        batch_size: 25,
        ..RebuildSettings::default()
    };
    let differences = rebuild::verify(&TicketsProjection, &pool, small_batches, 100, |_| {})
        .await
        .unwrap();
    assert!(differences.is_empty(), "{differences:?}");
    let report = rebuild::rebuild(&TicketsProjection, &pool, small_batches, |_| {})
        .await
        .unwrap();
    assert_eq!(report.events, 300 * 14);
    let (comments, vectors): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT sum(comment_count)::bigint FROM tickets_view),
                (SELECT count(*) FROM ticket_search_vectors WHERE search_vector @@ 'still'::tsquery)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((comments, vectors), (300 * 12, 300));
}

#[tokio::test]
async fn an_event_that_cannot_be_applied_stops_the_projector_visibly() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let agent = app.user("agent").await;
    let ticket = app.ticket_for(&customer, "Poisoned").await;
    let id = ticket["id"].as_str().unwrap();
    app.read_ticket(&agent.token, id, OPENED_VERSION)
        .await
        .expect(200);

    let mut conn = PgConnection::connect(&app.database_url).await.unwrap();
    let bad = insert_event(
        &mut conn,
        id,
        OPENED_VERSION + 1,
        &comment_payload("from the future", agent.user_id),
        "99",
    )
    .await;
    let after = app
        .post(
            &format!("/api/tickets/{id}/comments"),
            &agent.token,
            json!({"body": "after the bad one"}),
        )
        .await
        .expect(201);
    assert_eq!(after.body["internal"], false);

    // Every projector of ticket events stops there; wait for the tickets projector itself (the
    // flow projector, which decodes less, may get there first and turn /ready 503 alone).
    let mut ready = app.request(Method::GET, "/ready", None, None, &[]).await;
    for _ in 0..100 {
        let stopped = ready.body["projectors"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["name"] == "tickets" && p["failed_position"] == bad);
        if stopped {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        ready = app.request(Method::GET, "/ready", None, None, &[]).await;
    }
    assert_eq!(ready.status, 503, "{}", ready.text);
    let tickets = ready.body["projectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "tickets")
        .unwrap()
        .clone();
    assert_eq!(tickets["failed_position"], bad);
    assert!(
        tickets["failure"]
            .as_str()
            .unwrap()
            .contains("event_version 99")
    );
    let metrics = app
        .request(Method::GET, "/metrics", None, None, &[])
        .await
        .expect(200);
    assert!(
        metrics
            .text
            .contains("docket_projector_failed{projector=\"tickets\"} 1"),
        "{}",
        metrics.text
    );

    // It never skips: the comment after the bad event is not applied either.
    assert_eq!(comment_count(&app.pool, id).await, (0, 0, OPENED_VERSION));
    // Other projectors are unaffected.
    let audit = app
        .get(
            &format!("/api/audit?aggregate_id={id}&order=asc"),
            &agent.token,
        )
        .await
        .expect(200);
    let _ = audit;
    // Staff get an alert, critical, naming the event it stopped at.
    let alerts = app
        .items_when(
            "/api/alerts?state=active",
            &agent.token,
            Duration::from_secs(15),
            |items| items.iter().any(|a| a["cause"] == "projector:tickets"),
        )
        .await;
    let stopped = alerts
        .iter()
        .find(|a| a["cause"] == "projector:tickets")
        .unwrap_or_else(|| panic!("no alert for the stopped projector: {alerts:#?}"));
    assert_eq!(stopped["kind"], "projector_stopped");
    assert_eq!(stopped["severity"], "critical");
    assert!(
        stopped["detail"]
            .as_str()
            .unwrap()
            .starts_with(&format!("At event {bad}:")),
        "{stopped}"
    );
}

#[tokio::test]
async fn a_rebuild_under_live_traffic_swaps_in_an_identical_projection() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let agent = app.user("agent").await;
    let pool = app.pool.clone();
    synthetic::write_log(&pool, customer.user_id, 1_500, 2)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            app.ticket_for(&customer, &format!("Live {n}")).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let writer = {
        let (address, token, ids) = (app.address.clone(), agent.token.clone(), ids.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut statuses = Vec::new();
            for round in 0..40 {
                let id = &ids[round % ids.len()];
                let response = client
                    .post(format!("{address}/api/tickets/{id}/comments"))
                    .bearer_auth(&token)
                    // Tabs, line breaks and backslashes: a rebuild streams comments in with
                    // COPY, whose text format must escape them.
                    .json(&json!({
                        "body": format!("during rebuild {round}:\tTAB\r\nline \\N \\\\ été")
                    }))
                    .send()
                    .await
                    .unwrap();
                statuses.push(response.status().as_u16());
                let list = client
                    .get(format!("{address}/api/tickets?page_size=5"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                statuses.push(list.status().as_u16());
            }
            statuses
        })
    };
    let mut reports = Vec::new();
    let report = rebuild::rebuild(
        &TicketsProjection,
        &pool,
        RebuildSettings {
            batch_size: 1_000,
            ..RebuildSettings::default()
        },
        |p| reports.push(p),
    )
    .await
    .unwrap();
    let statuses = writer.await.unwrap();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 201),
        "{statuses:?}"
    );
    // The copy is built up to wherever the live projector stood when it was swapped in (the live
    // projector carries on from there), so it holds at least the events written before the
    // rebuild started that the live projector had reached; all of them, eventually, below.
    assert!(report.events > 0, "{report:?}");
    assert!(reports.len() >= 2 && reports.last().unwrap().applied == report.events);
    assert!(report.events_per_second > 0.0);

    // Wait until the live projector has everything, then compare with yet another rebuild.
    let last = app
        .post(
            &format!("/api/tickets/{}/comments", ids[0]),
            &agent.token,
            json!({"body": "last"}),
        )
        .await
        .expect(201);
    let version: i64 = last
        .header("etag")
        .unwrap()
        .trim_matches('"')
        .parse()
        .unwrap();
    app.read_ticket(&agent.token, &ids[0], version)
        .await
        .expect(200);
    let differences = rebuild::verify(
        &TicketsProjection,
        &pool,
        RebuildSettings::default(),
        100,
        |_| {},
    )
    .await
    .unwrap();
    assert!(differences.is_empty(), "{differences:?}");
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM tickets_view")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(total, 1_505);
}

/// A rebuild whose process was killed leaves its scratch schema (a copy of every table) behind.
/// The next rebuild drops those whose rebuild no longer runs — it held the schema's advisory
/// lock on its own connection, which ended with it — and leaves a running one's alone.
#[tokio::test]
async fn a_rebuild_drops_the_copies_of_rebuilds_that_did_not_finish_and_no_others() {
    let (pool, _) = synthetic_log_without_projector(50, 1).await;
    // The rebuild then goes to the live checkpoint: all of the log, even while another test's
    // open transaction holds the horizon back.
    catch_up_tickets(&pool).await;
    for statement in [
        "CREATE SCHEMA docket_rebuild_tickets_0badc0de",
        "CREATE TABLE docket_rebuild_tickets_0badc0de.tickets_view (LIKE public.tickets_view)",
        "CREATE SCHEMA docket_rebuild_tickets_0badc0de_retired",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    // A rebuild still running elsewhere: its lock (space "dkrb") held by its own connection.
    let mut running = PgConnection::connect_with(&pool.connect_options())
        .await
        .unwrap();
    sqlx::query("SELECT pg_advisory_lock(1684763234, hashtext('docket_rebuild_audit_00c0ffee'))")
        .execute(&mut running)
        .await
        .unwrap();
    sqlx::query("CREATE SCHEMA docket_rebuild_audit_00c0ffee")
        .execute(&mut running)
        .await
        .unwrap();

    let report = rebuild::rebuild(
        &TicketsProjection,
        &pool,
        RebuildSettings::default(),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(report.events, 50 * 3);
    let left: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'docket\\_rebuild\\_%' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(left, ["docket_rebuild_audit_00c0ffee"]);
    let tickets: i64 = sqlx::query_scalar("SELECT count(*) FROM tickets_view")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(tickets, 50);
}

/// An event of `aggregate_type` that no projector of that type can apply: its payload is not
/// the envelope its type names, under a version no build knows.
async fn poison(app: &docket_tests::TestApp, aggregate_type: &str) -> i64 {
    let mut conn = PgConnection::connect(&app.database_url).await.unwrap();
    sqlx::query_scalar(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ($1, $2, 1, 'Poisoned', '99', '{\"Unexpected\": {}}', '{}') RETURNING global_position",
    )
    .bind(aggregate_type)
    .bind(Uuid::new_v4().to_string())
    .fetch_one(&mut conn)
    .await
    .unwrap()
}

/// Every projector the build runs is in `/ready` and `/metrics`, and each one stopped at an
/// event it cannot apply shows there as stopped, at that event.
#[tokio::test]
async fn each_projector_stopped_at_a_poisoned_event_shows_in_ready_and_metrics() {
    let cases = [
        ("tickets", "ticket"),
        ("users", "user"),
        ("audit", "team"),
        ("saved_searches", "saved_search"),
        ("sla_config", "escalation_rule"),
        ("workforce", "skill"),
        ("ticket_flow", "ticket"),
        ("webhooks", "webhook"),
        ("alerts", "alert"),
        ("automations", "automation_rule"),
    ];
    assert_eq!(
        docket_projections::registry::names().len(),
        cases.len(),
        "every projector has a case"
    );
    for (projector, aggregate_type) in cases {
        let app = spawn_app().await;
        let healthy = app.request(Method::GET, "/ready", None, None, &[]).await;
        let listed: Vec<&str> = healthy.body["projectors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        for name in docket_projections::registry::names() {
            assert!(
                listed.contains(&name),
                "{name} missing from /ready: {listed:?}"
            );
        }
        let bad = poison(&app, aggregate_type).await;
        let mut ready = app.request(Method::GET, "/ready", None, None, &[]).await;
        for _ in 0..100 {
            let stopped = ready.body["projectors"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["name"] == projector && p["failed_position"] == bad);
            if stopped {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            ready = app.request(Method::GET, "/ready", None, None, &[]).await;
        }
        assert_eq!(ready.status, 503, "{projector}: {}", ready.text);
        let report = ready.body["projectors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == projector)
            .unwrap()
            .clone();
        assert_eq!(report["failed_position"], bad, "{projector}: {report}");
        assert!(
            report["failure"].as_str().is_some(),
            "{projector}: {report}"
        );
        let metrics = app
            .request(Method::GET, "/metrics", None, None, &[])
            .await
            .expect(200);
        assert!(
            metrics.text.contains(&format!(
                "docket_projector_failed{{projector=\"{projector}\"}} 1"
            )),
            "{projector}: {}",
            metrics.text
        );
        for name in docket_projections::registry::names() {
            assert!(
                metrics.text.contains(&format!(
                    "docket_projector_lag_events{{projector=\"{name}\"}}"
                )),
                "{name} missing from /metrics"
            );
        }
        app.stop().await;
    }
}

/// `/metrics` counts requests by route template (not by path), method and status, with their
/// latency, commands by aggregate type, and reports the SLA clocks and the routing queue.
#[tokio::test]
async fn metrics_count_requests_by_route_template_and_commands_by_aggregate() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    for n in 0..3 {
        let ticket = app.ticket_for(&customer, &format!("Counted {n}")).await;
        let id = ticket["id"].as_str().unwrap();
        app.get(&format!("/api/tickets/{id}"), &customer.token)
            .await
            .expect(200);
    }
    app.get(&format!("/api/tickets/{}", Uuid::new_v4()), &customer.token)
        .await
        .expect(404);
    let metrics = app
        .request(Method::GET, "/metrics", None, None, &[])
        .await
        .expect(200);
    let text = &metrics.text;
    for expected in [
        "docket_http_requests_total{route=\"/api/tickets/{id}\",method=\"GET\",status=\"200\"} 3",
        "docket_http_requests_total{route=\"/api/tickets/{id}\",method=\"GET\",status=\"404\"} 1",
        "docket_http_requests_total{route=\"/api/tickets\",method=\"POST\",status=\"201\"} 3",
        "docket_http_request_duration_seconds_count{route=\"/api/tickets/{id}\",method=\"GET\"} 4",
        "docket_sla_clocks_running 9",
        // Three tickets nobody holds: the queue.
        "docket_routing_queue_length 3",
    ] {
        assert!(text.contains(expected), "{expected}\n{text}");
    }
    let tickets_committed: f64 = text
        .lines()
        .find_map(|line| line.strip_prefix("docket_commands_total{aggregate=\"ticket\"} "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_default();
    assert_eq!(tickets_committed, 3.0, "{text}");
    assert!(
        !text.contains(&customer.user_id.to_string()),
        "no ids in labels"
    );
}
