//! Faults from outside: the server process killed with SIGKILL while clients write, and the
//! database connection cut under load. Nothing acknowledged may be lost or doubled, nothing may
//! hang, and the server must recover on its own.

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use docket_projections::rebuild::{self, RebuildSettings};
use docket_projections::tickets::TicketsProjection;
use docket_tests::{Session, TestApp, fresh_database, spawn_app_on, spawn_with, test_settings};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

/// The server as a child process on `url`; returns it and its address once it listens.
async fn server_process(url: &str) -> (tokio::process::Child, String) {
    server_process_logging(url, Stdio::null(), "warn").await
}

/// The same, its JSON log lines (filtered by `rust_log`) going to `stderr`.
pub(crate) async fn server_process_logging(
    url: &str,
    stderr: Stdio,
    rust_log: &str,
) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_docket-test-server"))
        .arg(url)
        .env("RUST_LOG", rust_log)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let port = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(port) = line.strip_prefix("listening ") {
                return port.trim().to_string();
            }
        }
        panic!("the server exited before listening")
    })
    .await
    .expect("the server starts within a minute");
    (child, format!("http://127.0.0.1:{port}"))
}

#[tokio::test]
async fn a_server_killed_under_load_loses_no_acknowledged_write_and_doubles_none() {
    let (_, url) = fresh_database().await;
    let (mut child, address) = server_process(&url).await;
    // A client of the child process (TestApp's helpers, pointed at it).
    let probe = spawn_app_on(&url).await;
    let admin = probe.admin().await;
    let customer = probe.customer().await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut tickets = Vec::new();
    for n in 0..4 {
        let created: Value = client
            .post(format!("{address}/api/tickets"))
            .bearer_auth(&admin.token)
            .json(&json!({"subject": format!("Crash {n}"), "description": "Load.", "priority": "low", "customer_id": customer.user_id}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tickets.push(created["id"].as_str().unwrap().to_string());
    }

    // 32 writers comment as fast as they can; each remembers the comments acknowledged (2xx).
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..32)
        .map(|w| {
            let (client, address, token) = (client.clone(), address.clone(), admin.token.clone());
            let (tickets, acknowledged, stop) =
                (tickets.clone(), acknowledged.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let ticket = &tickets[(w + n) % tickets.len()];
                    n += 1;
                    let response = client
                        .post(format!("{address}/api/tickets/{ticket}/comments"))
                        .bearer_auth(&token)
                        .json(
                            &json!({"body": format!("writer {w} comment {n}"), "internal": false}),
                        )
                        .send()
                        .await;
                    let Ok(response) = response else {
                        // The server is gone: nothing more to acknowledge.
                        return;
                    };
                    if response.status().is_success()
                        && let Ok(body) = response.json::<Value>().await
                        && let Some(id) = body["id"].as_str()
                    {
                        acknowledged.lock().await.push(id.to_string());
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    child.start_kill().unwrap(); // SIGKILL: no shutdown, no flush, mid-request
    child.wait().await.unwrap();
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        let _ = writer.await;
    }
    let acknowledged = acknowledged.lock().await.clone();
    assert!(
        acknowledged.len() > 32,
        "the load ran: {}",
        acknowledged.len()
    );

    // Every acknowledged comment is in the log exactly once; no comment is there twice.
    let logged: Vec<String> = sqlx::query_scalar(
        "SELECT payload -> 'CommentAdded' ->> 'comment_id' FROM events WHERE event_type = 'CommentAdded'",
    )
    .fetch_all(&probe.pool)
    .await
    .unwrap();
    let distinct: HashSet<&String> = logged.iter().collect();
    assert_eq!(distinct.len(), logged.len(), "a comment was written twice");
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !distinct.contains(id))
        .collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");

    // After a restart the projections catch up and equal a fresh rebuild.
    let restarted = spawn_app_on(&url).await;
    let head: i64 = sqlx::query_scalar(
        "SELECT max(sequence) FROM events WHERE aggregate_type = 'ticket' AND aggregate_id = $1",
    )
    .bind(&tickets[0])
    .fetch_one(&restarted.pool)
    .await
    .unwrap();
    restarted
        .read_ticket(&admin.token, &tickets[0], head)
        .await
        .expect(200);
    let differences = rebuild::verify(
        &TicketsProjection,
        &restarted.pool,
        RebuildSettings::default(),
        100,
        |_| {},
    )
    .await
    .unwrap();
    assert!(differences.is_empty(), "{differences:?}");
    restarted.stop().await;
    probe.stop().await;
}

/// A TCP proxy to PostgreSQL that a test can cut (dropping every connection and refusing new
/// ones) and restore.
struct Cable {
    address: String,
    cut: Arc<AtomicBool>,
    generation: Arc<std::sync::atomic::AtomicU64>,
}

impl Cable {
    async fn to(upstream: String) -> Cable {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let cut = Arc::new(AtomicBool::new(false));
        let generation = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (cut2, generation2) = (cut.clone(), generation.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if cut2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let upstream = upstream.clone();
                let (cut, generation) = (cut2.clone(), generation2.clone());
                let born = generation.load(Ordering::SeqCst);
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let pipe = tokio::io::copy_bidirectional(&mut inbound, &mut outbound);
                    let watch = async {
                        while !cut.load(Ordering::SeqCst)
                            && generation.load(Ordering::SeqCst) == born
                        {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! {
                        _ = pipe => {}
                        _ = watch => {} // cut: both ends are dropped here
                    }
                });
            }
        });
        Cable {
            address,
            cut,
            generation,
        }
    }

    fn cut(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.cut.store(true, Ordering::SeqCst);
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// `postgres://user@host:port/db` with `host:port` replaced.
fn through(url: &str, address: &str) -> (String, String) {
    let (scheme_user, rest) = url.split_once('@').unwrap();
    let (host, database) = rest.split_once('/').unwrap();
    (
        format!("{scheme_user}@{address}/{database}"),
        host.to_string(),
    )
}

async fn write(app: &TestApp, admin: &Session, customer: &Session) -> reqwest::StatusCode {
    app.request(
        Method::POST,
        "/api/tickets",
        Some(&admin.token),
        Some(json!({"subject": "During the outage", "description": "?", "priority": "low", "customer_id": customer.user_id})),
        &[],
    )
    .await
    .status
}

#[tokio::test]
async fn a_database_outage_gets_quick_503s_and_the_server_recovers_on_its_own() {
    let (_, direct) = fresh_database().await;
    let upstream = through(&direct, "unused").1;
    let cable = Cable::to(upstream).await;
    let (url, _) = through(&direct, &cable.address);
    let mut settings = test_settings(&url);
    settings.db_acquire_timeout_ms = 1_000;
    let app = spawn_with(settings).await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    assert_eq!(write(&app, &admin, &customer).await, 201);

    cable.cut();
    // The proxy drops its open connections within a few tens of milliseconds.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut outage = Vec::new();
    for _ in 0..6 {
        let started = Instant::now();
        let response = app
            .request(Method::GET, "/api/tickets", Some(&admin.token), None, &[])
            .await;
        let took = started.elapsed();
        assert!(took < Duration::from_secs(8), "a request hung for {took:?}");
        outage.push(response.status.as_u16());
        if response.status == 503 {
            assert_eq!(
                response.header("content-type").as_deref(),
                Some("application/problem+json"),
                "{}",
                response.text
            );
            assert!(response.header("retry-after").is_some());
        }
        let started = Instant::now();
        let status = write(&app, &admin, &customer).await;
        assert!(started.elapsed() < Duration::from_secs(8), "a write hung");
        outage.push(status.as_u16());
    }
    assert!(
        outage.iter().all(|s| *s == 503),
        "during the outage: {outage:?}"
    );

    cable.restore();
    // Recovered without a restart: writes succeed again and reads see them.
    let deadline = Instant::now() + Duration::from_secs(30);
    let created = loop {
        let response = app
            .request(
                Method::POST,
                "/api/tickets",
                Some(&admin.token),
                Some(json!({"subject": "After the outage", "description": "!", "priority": "low", "customer_id": customer.user_id})),
                &[],
            )
            .await;
        if response.status == 201 {
            break response.body;
        }
        assert!(Instant::now() < deadline, "no recovery: {}", response.text);
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let id = created["id"].as_str().unwrap();
    let version = created["version"].as_i64().unwrap();
    let read = app.read_ticket(&admin.token, id, version).await.expect(200);
    assert_eq!(read.body["subject"], json!("After the outage"));
    // And the projectors resumed from their checkpoints: the list has both tickets.
    let list = app.get("/api/tickets", &admin.token).await.expect(200).body;
    assert_eq!(list["total"], json!(2), "{list}");
    app.stop().await;
}

/// Appends run on connections the server keeps itself (sqlx's pool pings each returned
/// connection). One that PostgreSQL answered, even with a refusal, is kept; one that broke on
/// the way is dropped, never lent again; the next append connects afresh.
#[tokio::test]
async fn an_append_connection_that_broke_is_never_lent_again() {
    use docket_api::app::bus::appenders::Appenders;
    let (_, url) = fresh_database().await;
    docket_projections::db::ensure_database(&url).await.unwrap();
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    let appenders = std::sync::Arc::new(Appenders::new(
        url.parse().unwrap(),
        2,
        Duration::from_secs(2),
    ));
    async fn pid(appenders: &std::sync::Arc<Appenders>) -> i32 {
        let mut lease = appenders.lease().await.unwrap();
        let pid: Result<i32, sqlx::Error> = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(lease.conn().unwrap())
            .await;
        lease.answered(&pid);
        pid.unwrap()
    }
    let first = pid(&appenders).await;
    assert_eq!(appenders.idle(), 1);
    // A refusal is an answer: the connection stays.
    {
        let mut lease = appenders.lease().await.unwrap();
        let refused = sqlx::query("SELECT 1 / 0")
            .execute(lease.conn().unwrap())
            .await;
        assert!(matches!(refused, Err(sqlx::Error::Database(_))));
        lease.answered(&refused);
    }
    assert_eq!(appenders.idle(), 1);
    assert_eq!(pid(&appenders).await, first, "the same connection again");

    // The server end goes away: the next statement fails on the way, and the connection is gone.
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(first)
        .execute(&admin)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    {
        let mut lease = appenders.lease().await.unwrap();
        let broken = sqlx::query("SELECT 1").execute(lease.conn().unwrap()).await;
        // PostgreSQL's last word is a FATAL 57P01, or the socket is simply closed.
        assert!(broken.is_err());
        lease.answered(&broken);
    }
    assert_eq!(appenders.idle(), 0);
    let next = pid(&appenders).await;
    assert_ne!(next, first);
    // A lease abandoned before its statement's answer (a request dropped mid-way) keeps nothing.
    drop(appenders.lease().await.unwrap());
    assert_eq!(appenders.idle(), 0);
}

/// Commands that wait for an append connection together are written in one commit; a batch in
/// which one command lost its race writes each of the others once, on its own, and tells only
/// the loser. Every command stays whole: all its events or none.
#[tokio::test]
async fn commands_waiting_together_commit_together_and_a_lost_race_refuses_only_its_own() {
    use docket_api::app::bus::appenders::{Appended, Appenders, EventRows};
    use docket_domain::ticket::TicketEvent;
    use docket_domain::{Actor, Priority};
    let (_, url) = fresh_database().await;
    docket_projections::db::ensure_database(&url).await.unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    docket_projections::db::migrate(&pool).await.unwrap();
    let appenders = std::sync::Arc::new(Appenders::new(
        url.parse().unwrap(),
        1,
        Duration::from_secs(5),
    ));
    let events = |n: usize| -> Vec<TicketEvent> {
        (0..n)
            .map(|i| TicketEvent::TicketPriorityChanged {
                from: Priority::Low,
                to: if i % 2 == 0 {
                    Priority::High
                } else {
                    Priority::Low
                },
                changed_by: Actor::system(),
                occurred_at: chrono::Utc::now(),
            })
            .collect()
    };
    let rows = |id: &str, after: i64, n: usize| {
        EventRows::new("ticket", id, after, &events(n), json!({"test": true})).unwrap()
    };
    // Holds the only connection until every command below is queued behind it.
    async fn queued_behind_one_lease(
        appenders: &std::sync::Arc<Appenders>,
        commands: Vec<EventRows>,
    ) -> Vec<Appended> {
        let held = appenders.lease().await.unwrap();
        let count = commands.len();
        let waiting: Vec<_> = commands
            .into_iter()
            .map(|rows| {
                let appenders = appenders.clone();
                tokio::spawn(async move { appenders.append(rows).await })
            })
            .collect();
        while appenders.queued() < count {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(held);
        let mut answers = Vec::new();
        for waiter in waiting {
            answers.push(waiter.await.unwrap().unwrap());
        }
        answers
    }

    let first: Vec<String> = (0..10).map(|i| format!("first-{i}")).collect();
    let answers =
        queued_behind_one_lease(&appenders, first.iter().map(|id| rows(id, 0, 2)).collect()).await;
    assert!(answers.iter().all(|a| matches!(a, Appended::Committed(_))));
    let (transactions, events_written): (i64, i64) = sqlx::query_as(
        "SELECT count(DISTINCT transaction_id), count(*) FROM events WHERE aggregate_id LIKE 'first-%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (transactions, events_written),
        (1, 20),
        "one commit for the ten"
    );
    // Each answer is where that command's own last event landed.
    for (id, answer) in first.iter().zip(&answers) {
        let last: i64 =
            sqlx::query_scalar("SELECT max(global_position) FROM events WHERE aggregate_id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(
            *answer,
            Appended::Committed(docket_projections::log::Checkpoint {
                txid: match answer {
                    Appended::Committed(at) => at.txid,
                    Appended::Conflict => unreachable!(),
                },
                position: last,
            })
        );
    }

    // first-3 is at version 2: a command decided on version 1 lost its race.
    let mut second: Vec<EventRows> = (0..6).map(|i| rows(&format!("second-{i}"), 0, 3)).collect();
    second.insert(3, rows("first-3", 1, 2));
    let answers = queued_behind_one_lease(&appenders, second).await;
    assert_eq!(answers[3], Appended::Conflict);
    assert_eq!(
        answers
            .iter()
            .filter(|a| matches!(a, Appended::Committed(_)))
            .count(),
        6
    );
    let per_aggregate: Vec<(String, i64)> = sqlx::query_as(
        "SELECT aggregate_id, count(*) FROM events
          WHERE aggregate_id LIKE 'second-%' OR aggregate_id = 'first-3'
          GROUP BY aggregate_id ORDER BY aggregate_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut expected = vec![("first-3".to_string(), 2)];
    expected.extend((0..6).map(|i| (format!("second-{i}"), 3)));
    assert_eq!(
        per_aggregate, expected,
        "the loser wrote nothing, the others all theirs"
    );
}

#[tokio::test]
async fn a_server_killed_mid_delivery_sends_every_webhook_at_least_once_under_one_id() {
    use docket_tests::receiver::Receiver;

    let (_, url) = fresh_database().await;
    let (mut first, address) = server_process(&url).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let token = |email: &str, password: &str| {
        let (client, address) = (client.clone(), address.clone());
        let body = json!({"email": email, "password": password});
        async move {
            let signed_in: Value = client
                .post(format!("{address}/api/auth/login"))
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            signed_in["access_token"].as_str().unwrap().to_string()
        }
    };
    let admin = token(docket_tests::ADMIN_EMAIL, docket_tests::ADMIN_PASSWORD).await;
    let customer_email = format!("c-{}@docket.test", uuid::Uuid::new_v4().simple());
    client
        .post(format!("{address}/api/auth/register"))
        .json(&json!({"email": customer_email, "password": "password123", "full_name": "C"}))
        .send()
        .await
        .unwrap();
    let customer = token(&customer_email, "password123").await;
    // A receiver slow enough that the kill falls while requests are in flight.
    let receiver = Receiver::start().await;
    receiver.take_time(Duration::from_millis(150));
    let made: Value = client
        .post(format!("{address}/api/webhooks"))
        .bearer_auth(&admin)
        .json(&json!({"url": receiver.url(), "events": ["ticket.created"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    receiver.trust(made["secret"].as_str().unwrap());
    let mut opened = HashSet::new();
    for n in 0..30 {
        let ticket: Value = client
            .post(format!("{address}/api/tickets"))
            .bearer_auth(&customer)
            .json(&json!({"subject": format!("Kill {n}"), "description": "d", "priority": "low"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        opened.insert(ticket["id"].as_str().unwrap().to_string());
    }
    receiver
        .wait_for(Duration::from_secs(20), |r| r.len() >= 5)
        .await;
    first.start_kill().unwrap(); // SIGKILL, mid-delivery
    first.wait().await.unwrap();
    let halfway = receiver.received().len();
    assert!(
        halfway < 30,
        "the kill fell before everything was sent ({halfway})"
    );

    let (_second, _) = server_process(&url).await;
    let received = receiver
        .wait_for(Duration::from_secs(60), |r| {
            r.iter().filter(|d| d.applied).count() >= opened.len()
        })
        .await;
    let arrived: HashSet<String> = received
        .iter()
        .filter(|d| d.applied)
        .filter_map(|d| d.body["data"]["ticket_id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(arrived, opened, "every event arrived at least once");
    assert!(received.iter().all(|d| d.verified));
    // A repeat carries the id of the first: the receiver applied each message once.
    let ids: HashSet<&str> = received.iter().map(|d| d.webhook_id.as_str()).collect();
    assert_eq!(ids.len(), opened.len(), "one webhook-id per event");
    assert_eq!(received.iter().filter(|d| d.applied).count(), opened.len());
}
