//! The log itself: append-only, totally ordered, with transaction ids for safe readers.

use cqrs_es::EventStore;
use cqrs_es::persist::PersistedEventStore;
use docket_domain::ticket::Ticket;
use docket_tests::{OPENED_VERSION, spawn_app};
use postgres_es::PostgresEventRepository;
use serde_json::json;

#[tokio::test]
async fn the_log_refuses_updates_deletes_and_truncation() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    app.ticket_for(&customer, "Immutable").await;
    for statement in [
        "UPDATE events SET payload = '{}'::jsonb",
        "DELETE FROM events",
        "TRUNCATE events",
    ] {
        let error = sqlx::query(statement)
            .execute(&app.pool)
            .await
            .expect_err(statement);
        assert!(
            error.to_string().contains("append-only"),
            "{statement}: {error}"
        );
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        count,
        2 + OPENED_VERSION,
        "two user events and the opened ticket's events survive"
    );
}

#[tokio::test]
async fn every_event_has_a_unique_position_a_transaction_and_a_recording_time() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    for n in 0..3 {
        app.ticket_for(&customer, &format!("Ticket {n}")).await;
    }
    let rows: Vec<(i64, String, chrono::DateTime<chrono::Utc>, String)> = sqlx::query_as(
        "SELECT global_position, transaction_id::text, recorded_at, event_version
           FROM events ORDER BY global_position",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(rows.len() >= 4);
    let positions: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let mut unique = positions.clone();
    unique.dedup();
    assert_eq!(positions, unique);
    assert!(
        rows.iter()
            .all(|r| r.1.parse::<u64>().is_ok() && r.3 == "1")
    );
    assert!(rows.windows(2).all(|w| w[0].2 <= w[1].2));
}

/// A notifying transaction cannot share a disk flush with other commits (ADR 0008), so the
/// server commits without notifying and announces its commits afterwards; every other writer
/// is still announced by the trigger.
#[tokio::test]
async fn every_commit_is_announced_but_the_servers_own_not_from_inside_its_transaction() {
    use docket_projections::notify::{EVENTS_CHANNEL, notifying_after_commit};
    use sqlx::Connection;
    use sqlx::postgres::{PgConnectOptions, PgListener};
    use std::time::Duration;

    let app = spawn_app().await;
    let customer = app.customer().await;
    let mut listener = PgListener::connect(&app.database_url).await.unwrap();
    listener.listen(EVENTS_CHANNEL).await.unwrap();
    let insert = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                                      event_version, payload, metadata)
                  VALUES ('probe', $1, 1, 'Probed', '1', '{}', '{}') RETURNING global_position";

    // What the listener hears within `wait` that `wanted` accepts (other announcements, such
    // as the server's for the customer just registered, may arrive in between).
    async fn hear(
        listener: &mut PgListener,
        wait: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> Option<String> {
        tokio::time::timeout(wait, async {
            loop {
                let heard = listener.recv().await.unwrap();
                if wanted(heard.payload()) {
                    return heard.payload().to_string();
                }
            }
        })
        .await
        .ok()
    }
    let is_position = |payload: &str| payload.parse::<i64>().is_ok();

    // A writer outside the server: the trigger announces the event's position at its commit.
    let mut outsider = sqlx::PgConnection::connect(&app.database_url)
        .await
        .unwrap();
    let position: i64 = sqlx::query_scalar(insert)
        .bind("outsider")
        .fetch_one(&mut outsider)
        .await
        .unwrap();
    let heard = hear(&mut listener, Duration::from_secs(5), is_position).await;
    assert_eq!(heard, Some(position.to_string()));

    // A session set up as the server's: the trigger stays silent.
    let options: PgConnectOptions = app.database_url.parse().unwrap();
    let mut server_like = sqlx::PgConnection::connect_with(&notifying_after_commit(options))
        .await
        .unwrap();
    sqlx::query_scalar::<_, i64>(insert)
        .bind("server-like")
        .fetch_one(&mut server_like)
        .await
        .unwrap();
    let heard = hear(&mut listener, Duration::from_millis(500), is_position).await;
    assert_eq!(
        heard, None,
        "the trigger notified inside a session that announces after commit"
    );

    // The server itself announces its commit to the other processes, after it.
    app.ticket_for(&customer, "Announced").await;
    let heard = hear(&mut listener, Duration::from_secs(5), |payload| {
        payload.starts_with("docket-")
    })
    .await;
    assert!(
        heard.is_some(),
        "the server announces its commits to other processes"
    );
}

/// The server writes and loads the log itself (ADR 0001, 0008), but the rows stay postgres-es's:
/// its repository loads what the server wrote to the same state and version the API reports.
#[tokio::test]
async fn postgres_es_loads_what_the_server_wrote() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let ticket = app.ticket_for(&customer, "Written by Docket").await;
    let id = ticket["id"].as_str().unwrap().to_string();
    let commented = app
        .post(
            &format!("/api/tickets/{id}/comments"),
            &customer.token,
            json!({"body": "Read by postgres-es"}),
        )
        .await
        .expect(201);
    // The new version travels in the ETag: `"<version>"`.
    let version: i64 = commented
        .header("etag")
        .unwrap()
        .trim_matches('"')
        .parse()
        .unwrap();
    assert_eq!(version, OPENED_VERSION + 1);

    let store: PersistedEventStore<PostgresEventRepository, Ticket> =
        PersistedEventStore::new_event_store(PostgresEventRepository::new(app.pool.clone()));
    let loaded = store.load_aggregate(&id).await.unwrap();
    assert_eq!(loaded.current_sequence as i64, version);
    let state = loaded.aggregate.state().unwrap();
    assert_eq!(state.subject.as_str(), "Written by Docket");
    assert_eq!(state.comment_count, 1);
}
