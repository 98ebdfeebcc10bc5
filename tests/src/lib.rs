//! Test helpers: [`spawn_app`] starts the real server (the same builder `docket serve` uses) on a
//! random port against a fresh database, and [`TestApp`] talks to it over HTTP as a user would.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod live;
pub mod python;
pub mod receiver;
pub mod smtp;
pub mod synthetic;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use docket_api::config::{Secret, Settings};
use docket_api::startup::Application;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

pub const ADMIN_EMAIL: &str = "root@docket.test";
pub const ADMIN_PASSWORD: &str = "root-password-1";
/// The version of a freshly opened ticket under the default SLA policy: `TicketCreated`,
/// `SlaPolicyApplied` and one `SlaClockStarted` each for first response, resolution and
/// escalation.
pub const OPENED_VERSION: i64 = 5;
pub const TEST_JWT_SECRET: &str = "docket-test-secret-that-is-long-enough-0123456789";

/// The PostgreSQL server the tests use (the `postgres` maintenance database on it).
pub fn admin_database_url() -> String {
    std::env::var("DOCKET_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

fn database_url(name: &str) -> String {
    let admin = admin_database_url();
    match admin.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => format!("{admin}/{name}"),
    }
}

/// A fresh, empty database name: `docket_test_<unix seconds>_<random>`. Databases of earlier runs
/// older than two hours are dropped on the way, so a machine does not fill up with them.
pub async fn fresh_database() -> (String, String) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let name = format!("docket_test_{now}_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&admin_database_url()).await.unwrap();
    let stale: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname LIKE 'docket\\_test\\_%'",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    for old in stale {
        let created = old
            .split('_')
            .nth(2)
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(now);
        if now.saturating_sub(created) > 2 * 3600 {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{old}\" WITH (FORCE)"))
                .execute(&mut admin)
                .await;
        }
    }
    (name.clone(), database_url(&name))
}

pub fn test_settings(database_url: &str) -> Settings {
    let mut settings = Settings::defaults();
    settings.database_url = database_url.to_string();
    settings.listen = "127.0.0.1:0".to_string();
    settings.jwt_secret = Some(Secret::new(TEST_JWT_SECRET));
    settings.admin_email = Some(ADMIN_EMAIL.to_string());
    settings.admin_password = Some(Secret::new(ADMIN_PASSWORD));
    // Two tests run at once, some with two servers (and schemathesis's server at full tilt):
    // each server's connections (pool, appenders, leaders, listeners) add up against
    // PostgreSQL's 100. Measured: three servers reached 103 with a pool of 10 and 4 appenders.
    settings.db_max_connections = 8;
    settings.append_connections = 2;
    settings.demo = false;
    // Tests act as many users at once from one address; the limits have a test of their own.
    settings.rate_limit_per_address = 0;
    settings.rate_limit_per_user = 0;
    settings.sign_in_limit_per_minute = 0;
    // The tests' webhook receivers listen on loopback, and a retry is not worth minutes here.
    settings.webhook_allow_private = true;
    settings.webhook_retry_schedule = docket_api::config::Schedule(
        ["200ms", "500ms", "1s", "1s", "2s", "2s", "2s"]
            .map(|w| docket_api::config::parse_duration(w).expect("a wait"))
            .to_vec(),
    );
    settings.webhook_timeout_secs = 5;
    settings.mail_retry_schedule = docket_api::config::Schedule(
        [
            "200ms", "300ms", "500ms", "500ms", "1s", "1s", "1s", "1s", "1s", "1s",
        ]
        .map(|w| docket_api::config::parse_duration(w).expect("a wait"))
        .to_vec(),
    );
    settings
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub database_url: String,
    pub client: reqwest::Client,
    pub pool: PgPool,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// A signed-in person.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub refresh_token: String,
    pub user_id: Uuid,
    pub email: String,
    pub role: String,
}

/// A response: status, headers and JSON body (`Value::Null` when the body is empty or not JSON).
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl TestResponse {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// Asserts the status, printing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "expected {status}, got {}: {}",
            self.status,
            self.text
        );
        self
    }

    /// Asserts a problem+json error of this status and `type` slug.
    #[track_caller]
    pub fn expect_problem(self, status: u16, slug: &str) -> Self {
        let response = self.expect(status);
        assert_eq!(
            response.header("content-type").as_deref(),
            Some("application/problem+json"),
            "{}",
            response.text
        );
        assert_eq!(
            response.body["type"],
            json!(format!("https://docket.dev/problems/{slug}")),
            "{}",
            response.text
        );
        assert_eq!(response.body["status"], json!(status));
        response
    }

    pub fn consistency_token(&self) -> Option<String> {
        self.header("x-consistency-token")
    }

    /// The `name` of each of a list's `items`, in order (a missing one as "").
    pub fn item_names(&self) -> Vec<&str> {
        self.body["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|item| item["name"].as_str().unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub async fn spawn_app() -> TestApp {
    let (_, url) = fresh_database().await;
    spawn_app_on(&url).await
}

/// Starts a server on an existing database (a second process on the same log, a restart).
pub async fn spawn_app_on(database_url: &str) -> TestApp {
    spawn_with(test_settings(database_url)).await
}

pub async fn spawn_with(settings: Settings) -> TestApp {
    let database_url = settings.database_url.clone();
    let app = Application::build(settings)
        .await
        .expect("the server starts");
    let port = app.port();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let _ = app
            .run_until_stopped(async move {
                let _ = rx.await;
            })
            .await;
    });
    // The test's own reads of the database: a few connections are plenty (see test_settings).
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(3)
        .connect(&database_url)
        .await
        .unwrap();
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        database_url,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        pool,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(20), server).await;
        }
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("the request is sent");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        TestResponse {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> TestResponse {
        self.request(Method::GET, path, Some(token), None, &[])
            .await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> TestResponse {
        self.request(Method::POST, path, Some(token), Some(body), &[])
            .await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> TestResponse {
        self.request(Method::PATCH, path, Some(token), Some(body), &[])
            .await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> TestResponse {
        self.request(Method::PUT, path, Some(token), Some(body), &[])
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> TestResponse {
        self.request(Method::DELETE, path, Some(token), None, &[])
            .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Session {
        let response = self
            .request(
                Method::POST,
                "/api/auth/login",
                None,
                Some(json!({"email": email, "password": password})),
                &[],
            )
            .await
            .expect(200);
        Session {
            token: response.body["access_token"].as_str().unwrap().to_string(),
            refresh_token: response.body["refresh_token"].as_str().unwrap().to_string(),
            user_id: response.body["user"]["id"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
            email: email.to_string(),
            role: response.body["user"]["role"].as_str().unwrap().to_string(),
        }
    }

    pub async fn admin(&self) -> Session {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// Creates an account with `role` (through the admin API) and signs in as it.
    pub async fn user(&self, role: &str) -> Session {
        let admin = self.admin().await;
        let email = format!("{role}-{}@docket.test", Uuid::new_v4().simple());
        self.post(
            "/api/users",
            &admin.token,
            json!({"email": email, "password": "password123", "full_name": format!("A {role}"), "role": role}),
        )
        .await
        .expect(201);
        self.login(&email, "password123").await
    }

    /// Creates a service account with `role` (through the admin API); its id.
    pub async fn service_account(&self, role: &str) -> Uuid {
        let admin = self.admin().await;
        let email = format!("svc-{role}-{}@docket.test", Uuid::new_v4().simple());
        let made = self
            .post(
                "/api/users",
                &admin.token,
                json!({"email": email, "full_name": format!("Integration {role}"), "role": role,
                       "service": true}),
            )
            .await
            .expect(201);
        made.body["id"].as_str().unwrap().parse().unwrap()
    }

    /// Makes an API key as `token` with `request` (`{name, role, …}`): the whole key and the
    /// answer.
    pub async fn api_key(&self, token: &str, request: Value) -> (String, Value) {
        let made = self.post("/api/api-keys", token, request).await.expect(201);
        let key = made.body["key"].as_str().unwrap().to_string();
        (key, made.body)
    }

    /// Signs up a customer through public registration and signs in.
    pub async fn customer(&self) -> Session {
        let email = format!("customer-{}@docket.test", Uuid::new_v4().simple());
        self.request(
            Method::POST,
            "/api/auth/register",
            None,
            Some(json!({"email": email, "password": "password123", "full_name": "Carla Customer"})),
            &[],
        )
        .await
        .expect(201);
        self.login(&email, "password123").await
    }

    /// Opens a ticket as `customer` and returns the response body.
    pub async fn ticket_for(&self, customer: &Session, subject: &str) -> Value {
        self.post(
            "/api/tickets",
            &customer.token,
            json!({"subject": subject, "description": "Something is broken.", "priority": "high"}),
        )
        .await
        .expect(201)
        .body
    }

    /// The `items` of the page at `path` once `enough` holds for them, or as they are when
    /// `patience` runs out (for what a subscriber of the log does a moment after a write).
    pub async fn items_when(
        &self,
        path: &str,
        token: &str,
        patience: std::time::Duration,
        enough: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let started = std::time::Instant::now();
        loop {
            let page = self.get(path, token).await.expect(200);
            let items = page.body["items"].as_array().cloned().unwrap_or_default();
            if enough(&items) || started.elapsed() > patience {
                return items;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Reads a ticket once the projection has at least `version` (read-your-writes).
    pub async fn read_ticket(&self, token: &str, id: &str, version: i64) -> TestResponse {
        self.get(&format!("/api/tickets/{id}?min_version={version}"), token)
            .await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
