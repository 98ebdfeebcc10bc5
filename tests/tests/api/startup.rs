//! Starting the server: database creation, first administrator, production checks, demo data.

use docket_api::config::{Environment, Secret};
use docket_api::startup::Application;
use docket_tests::{ADMIN_EMAIL, fresh_database, spawn_app_on, spawn_with, test_settings};

#[tokio::test]
async fn the_server_creates_its_database_and_the_first_admin_once() {
    let (name, url) = fresh_database().await;
    let app = spawn_app_on(&url).await;
    app.admin().await;
    app.stop().await;
    let again = spawn_app_on(&url).await;
    let admins: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'UserRegistered'
           AND payload -> 'UserRegistered' ->> 'role' = 'admin'",
    )
    .fetch_one(&again.pool)
    .await
    .unwrap();
    assert_eq!(admins, 1, "{name}");
    again.login(ADMIN_EMAIL, docket_tests::ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn production_refuses_to_start_without_a_real_jwt_secret() {
    let (_, url) = fresh_database().await;
    let mut settings = test_settings(&url);
    settings.environment = Environment::Production;
    settings.jwt_secret = None;
    let error = Application::build(settings.clone())
        .await
        .err()
        .expect("refused");
    assert!(error.to_string().contains("DOCKET_JWT_SECRET"), "{error}");
    settings.jwt_secret = Some(Secret::new("short"));
    assert!(Application::build(settings).await.is_err());
}

#[tokio::test]
async fn demo_data_loads_once_with_working_accounts() {
    let (_, url) = fresh_database().await;
    let mut settings = test_settings(&url);
    settings.demo = true;
    settings.admin_email = None;
    settings.admin_password = None;
    let app = spawn_with(settings.clone()).await;
    let admin = app.login("admin@example.com", "admin123").await;
    assert_eq!(admin.role, "admin");
    for n in 1..=3 {
        assert_eq!(
            app.login(&format!("agent{n}@example.com"), "password123")
                .await
                .role,
            "agent"
        );
        let customer = app
            .login(&format!("customer{n}@example.com"), "password123")
            .await;
        assert_eq!(customer.role, "customer");
    }
    let tickets: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'TicketCreated'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(tickets, 50);
    let richer: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT event_type) FROM events WHERE aggregate_type = 'ticket'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(richer >= 5, "histories use {richer} event types");
    // Two example rules; the time-based one acts on the tickets left pending for two days.
    let rules = app.get("/api/automations", &admin.token).await.expect(200);
    assert_eq!(
        rules.item_names(),
        ["Outages are critical", "Nudge after 48 hours pending"]
    );
    // The seeded demo has tickets pending for more than two days: each is nudged, once, and is
    // still pending (the rule only tags and replies).
    let mut nudged: Vec<(String, i64)> = vec![];
    for _ in 0..100 {
        nudged = sqlx::query_as(
            "SELECT aggregate_id, count(*) FROM events WHERE event_type = 'AutomationFired'
              AND payload -> 'AutomationFired' ->> 'cause' = 'time' GROUP BY 1",
        )
        .fetch_all(&app.pool)
        .await
        .unwrap();
        if !nudged.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(!nudged.is_empty(), "no demo ticket was nudged");
    for (ticket, times) in &nudged {
        assert_eq!(*times, 1, "{ticket} nudged {times} times");
        let (status, parked_at, fired_at): (String, String, String) = sqlx::query_as(
            "SELECT (SELECT payload -> 'TicketStatusChanged' ->> 'to' FROM events
                      WHERE aggregate_id = $1 AND event_type = 'TicketStatusChanged'
                      ORDER BY sequence DESC LIMIT 1),
                    (SELECT payload -> 'TicketStatusChanged' ->> 'occurred_at' FROM events
                      WHERE aggregate_id = $1 AND event_type = 'TicketStatusChanged'
                      ORDER BY sequence DESC LIMIT 1),
                    (SELECT payload -> 'AutomationFired' ->> 'occurred_at' FROM events
                      WHERE aggregate_id = $1 AND event_type = 'AutomationFired')",
        )
        .bind(ticket)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!(status, "pending", "{ticket}");
        let parked_at: chrono::DateTime<chrono::Utc> = parked_at.parse().unwrap();
        let fired_at: chrono::DateTime<chrono::Utc> = fired_at.parse().unwrap();
        assert!(
            fired_at - parked_at > chrono::Duration::hours(48),
            "{ticket} parked at {parked_at}, nudged at {fired_at}"
        );
    }
    app.stop().await;
    let again = spawn_with(settings).await;
    let tickets: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'TicketCreated'")
            .fetch_one(&again.pool)
            .await
            .unwrap();
    assert_eq!(tickets, 50, "a second start does not load the demo again");
}
