//! The log itself: append-only, totally ordered, with transaction ids for safe readers.

use docket_tests::{OPENED_VERSION, spawn_app};

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
