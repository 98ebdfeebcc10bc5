//! The web app in a real browser: `tests/browser/scenarios.mjs` drives Debian's Chromium with
//! playwright-core against a server started here. What the browser needs is installed on first
//! use: Chromium from Debian's packages, playwright-core (pinned in `package-lock.json`) from npm.

use std::path::{Path, PathBuf};
use std::process::Command;

use docket_tests::spawn_app;
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";

fn browser_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/browser"))
}

/// Chromium and the pinned npm packages, installed when missing.
fn ensure_browser() {
    if !Path::new(CHROMIUM).exists() {
        let install = || {
            Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends", "chromium"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|status| status.success())
        };
        // Package lists may be missing or stale on a fresh machine.
        let installed = install()
            || (Command::new("apt-get")
                .arg("update")
                .status()
                .is_ok_and(|s| s.success())
                && install());
        assert!(installed, "apt-get install chromium failed");
    }
    let dir = browser_dir();
    if !dir.join("node_modules/playwright-core").is_dir() {
        let installed = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm runs");
        assert!(installed.success(), "npm ci in tests/browser failed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_work_tickets_in_the_browser_live_and_see_only_what_is_theirs() {
    tokio::task::spawn_blocking(ensure_browser)
        .await
        .expect("installing the browser");
    let app = spawn_app().await;
    let agent = app.user("agent").await;
    let manager = app.user("manager").await;
    // A team, and a ticket routed to it while nobody in it could take it: the ticket page
    // explains that decision.
    let admin = app.admin().await;
    let team = app
        .post("/api/teams", &admin.token, json!({"name": "Hardware"}))
        .await
        .expect(201)
        .body;
    let requester = app.customer().await;
    let routed = app
        .post(
            "/api/tickets",
            &admin.token,
            json!({"customer_id": requester.user_id, "subject": "Routed to hardware", "description": "Needs a technician.", "priority": "medium", "team_id": team["id"], "auto_assign": true}),
        )
        .await
        .expect(201)
        .body;
    let routed = routed["id"].as_str().unwrap_or_default().to_string();
    let screenshots = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/screenshots"));
    let address = app.address.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("scenarios.mjs")
            .current_dir(browser_dir())
            .env("DOCKET_URL", address)
            .env("DOCKET_AGENT_EMAIL", &agent.email)
            .env("DOCKET_MANAGER_EMAIL", &manager.email)
            .env("DOCKET_ADMIN_EMAIL", docket_tests::ADMIN_EMAIL)
            .env("DOCKET_ADMIN_PASSWORD", docket_tests::ADMIN_PASSWORD)
            .env("DOCKET_PASSWORD", "password123")
            .env("DOCKET_ROUTED_TICKET", &routed)
            .env("DOCKET_SCREENSHOTS", &screenshots)
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let said = String::from_utf8_lossy(&output.stdout);
    let complained = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser scenarios failed:\n{said}\n{complained}"
    );
    let checks = said.lines().filter(|line| line.starts_with("ok ")).count();
    assert!(checks >= 20, "the scenarios ran their checks:\n{said}");
    assert!(!said.contains("FAIL"), "{said}");
}

/// A browser as plain HTTP: a cookie kept by hand, no redirects followed.
struct Browser {
    client: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

impl Browser {
    fn new(app: &docket_tests::TestApp) -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.address.clone(),
            cookie: None,
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        request.send().await.unwrap()
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.client.post(format!("{}{path}", self.base)).form(form);
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        request.send().await.unwrap()
    }

    /// Signs in through the page, keeping the session cookie; returns the `Set-Cookie` line.
    async fn sign_in(&mut self, email: &str, password: &str) -> String {
        let answer = self
            .post("/login", &[("email", email), ("password", password)])
            .await;
        assert_eq!(answer.status().as_u16(), 303);
        let set = answer.headers()["set-cookie"].to_str().unwrap().to_string();
        self.cookie = set.split(';').next().map(str::to_string);
        set
    }

    /// The CSRF token of the forms on `path`.
    async fn csrf(&self, path: &str) -> String {
        let page = self.get(path).await.text().await.unwrap();
        let marker = "name=\"csrf\" value=\"";
        let start = page.find(marker).expect("a form with a CSRF token") + marker.len();
        page[start..].split('"').next().unwrap().to_string()
    }
}

#[tokio::test]
async fn pages_carry_strict_headers_and_sessions_are_cookies_that_end() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let agent = app.user("agent").await;
    let mut browser = Browser::new(&app);

    let login = browser.get("/login").await;
    assert_eq!(login.status().as_u16(), 200);
    let csp = login.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(login.headers()["x-content-type-options"], "nosniff");
    assert!(login.headers().contains_key("referrer-policy"));
    let asset = browser.get("/assets/htmx-2.0.4.min.js").await;
    assert_eq!(asset.status().as_u16(), 200);
    assert!(
        asset.text().await.unwrap().contains("htmx"),
        "htmx is embedded"
    );

    // Not signed in: the pages send you to sign in.
    let away = browser.get("/tickets").await;
    assert_eq!(away.status().as_u16(), 303);
    assert_eq!(away.headers()["location"], "/login");

    let set_cookie = browser.sign_in(&agent.email, "password123").await;
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    assert_eq!(browser.get("/tickets").await.status().as_u16(), 200);

    // A form without the session's CSRF token changes nothing.
    let customer = app.customer().await;
    let ticket = app.ticket_for(&customer, "Forged").await;
    let id = ticket["id"].as_str().unwrap();
    app.read_ticket(&agent.token, id, ticket["version"].as_i64().unwrap())
        .await
        .expect(200);
    let forged = browser
        .post(
            &format!("/tickets/{id}/comments"),
            &[("body", "Forged reply"), ("csrf", "guess")],
        )
        .await;
    assert_eq!(forged.status().as_u16(), 403);
    let comments = app
        .get(&format!("/api/tickets/{id}/comments"), &agent.token)
        .await
        .expect(200);
    assert_eq!(
        comments.body["total"], 0,
        "the forged reply was not written"
    );
    let csrf = browser.csrf(&format!("/tickets/{id}")).await;
    let sent = browser
        .post(
            &format!("/tickets/{id}/comments"),
            &[("body", "A real reply"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(sent.status().as_u16(), 303);
    let comments = app
        .get(&format!("/api/tickets/{id}/comments"), &agent.token)
        .await
        .expect(200);
    assert_eq!(comments.body["items"][0]["body"], "A real reply");
    assert_eq!(comments.body["items"][0]["internal"], false);

    // Signing out revokes the session on the server: the old cookie no longer opens pages.
    let kept = browser.cookie.clone();
    let out = browser.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status().as_u16(), 303);
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    browser.cookie = kept;
    assert_eq!(browser.get("/tickets").await.status().as_u16(), 303);

    // A deactivated account's session stops working (here at once: the change is this process's).
    browser.sign_in(&agent.email, "password123").await;
    assert_eq!(browser.get("/tickets").await.status().as_u16(), 200);
    app.patch(
        &format!("/api/users/{}", agent.user_id),
        &admin.token,
        serde_json::json!({"active": false}),
    )
    .await
    .expect(200);
    let after = browser.get("/tickets").await;
    assert_eq!(after.status().as_u16(), 303);
    assert_eq!(after.headers()["location"], "/login");
}

#[tokio::test]
async fn a_changed_password_ends_the_session_and_a_wrong_one_is_said_beside_the_field() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&customer.email, "password123").await;
    let csrf = browser.csrf("/account/password").await;
    let wrong = browser
        .post(
            "/account/password",
            &[
                ("csrf", csrf.as_str()),
                ("current_password", "not-it"),
                ("new_password", "a-new-password"),
            ],
        )
        .await;
    assert_eq!(wrong.status().as_u16(), 200);
    let page = wrong.text().await.unwrap();
    assert!(page.contains("id=\"current-error\""), "{page}");
    assert!(page.contains("is wrong"), "{page}");

    let changed = browser
        .post(
            "/account/password",
            &[
                ("csrf", csrf.as_str()),
                ("current_password", "password123"),
                ("new_password", "a-new-password"),
            ],
        )
        .await;
    assert_eq!(changed.status().as_u16(), 303);
    assert_eq!(changed.headers()["location"], "/login");
    // The session ended with the old password.
    assert_eq!(browser.get("/portal").await.status().as_u16(), 303);
    browser.sign_in(&customer.email, "a-new-password").await;
    assert_eq!(browser.get("/portal").await.status().as_u16(), 200);
}

/// A page open longer than its stream token lasts asks for a fresh stream address; what it
/// tells others (viewing, typing) needs its session and form token, and is never stored.
#[tokio::test]
async fn an_open_page_renews_its_stream_and_tells_others_without_storing_anything() {
    let app = spawn_app().await;
    let agent = app.user("agent").await;
    let customer = app.customer().await;
    let ticket = app.ticket_for(&customer, "Presence").await;
    let id = ticket["id"].as_str().unwrap().to_string();
    let mut browser = Browser::new(&app);

    let signed_out = browser.get("/live/stream").await;
    assert_eq!(signed_out.status().as_u16(), 303, "no session, no stream");

    browser.sign_in(&agent.email, "password123").await;
    let address = browser.get("/live/stream").await.text().await.unwrap();
    assert!(
        address.starts_with("/api/events/stream?access_token="),
        "{address}"
    );
    let stream = browser
        .client
        .get(format!("{}{address}", browser.base))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    drop(stream);

    let events_before: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let page = format!("/tickets/{id}");
    let csrf = browser.csrf(&page).await;
    for (path, field, value) in [("here", "status", "here"), ("typing", "internal", "false")] {
        let told = browser
            .post(
                &format!("{page}/{path}"),
                &[("csrf", &csrf), (field, value)],
            )
            .await;
        assert_eq!(told.status().as_u16(), 204, "{path}");
        let forged = browser
            .post(
                &format!("{page}/{path}"),
                &[("csrf", "forged"), (field, value)],
            )
            .await;
        assert_eq!(forged.status().as_u16(), 403, "{path} needs the form token");
    }
    let elsewhere = browser
        .post(
            &format!("/tickets/{}/here", uuid::Uuid::new_v4()),
            &[("csrf", &csrf), ("status", "here")],
        )
        .await;
    assert_eq!(
        elsewhere.status().as_u16(),
        404,
        "there is no such ticket to be on"
    );
    let events_after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(events_before, events_after, "nothing told is stored");

    // The ticket's record (timeline, routing, history) is a page of its own without
    // JavaScript, and a part for htmx; staff only.
    let record = browser.get(&format!("{page}/record")).await;
    assert_eq!(record.status().as_u16(), 200);
    let record = record.text().await.unwrap();
    assert!(
        record.contains("<!doctype html>") && record.contains("TicketCreated"),
        "{record}"
    );
    let part = browser
        .client
        .get(format!("{}{page}/record", browser.base))
        .header("cookie", browser.cookie.clone().unwrap_or_default())
        .header("hx-request", "true")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        part.starts_with("<div id=\"ticket-record\"") && part.contains("TicketCreated"),
        "{part}"
    );
    let mut owner = Browser::new(&app);
    owner.sign_in(&customer.email, "password123").await;
    let refused = owner.get(&format!("/portal/tickets/{id}/record")).await;
    assert_eq!(refused.status().as_u16(), 404, "no such page for customers");
    let refused = owner.get(&format!("/tickets/{id}/record")).await;
    assert_eq!(refused.status().as_u16(), 403, "a customer sees no record");
}
