//! E-mail against a real SMTP server (aiosmtpd, started by each test): who gets which mail, its
//! subject with the ticket number, threading headers and both parts; the outbox; mail queued
//! while the server is down arriving once it is back; templates checked on save, previewed and
//! used; and replies by mail becoming comments from their sender.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use docket_api::config::Secret;
use docket_tests::smtp::{Delivered, SmtpServer};
use docket_tests::{Session, TestApp, fresh_database, spawn_app, spawn_with, test_settings};
use reqwest::Method;
use serde_json::{Value, json};

const PATIENCE: Duration = Duration::from_secs(20);
const FROM: &str = "Acme Support <support@docket.test>";
const INBOUND_TOKEN: &str = "inbound-token-for-tests";

async fn spawn_mailing(smtp: Option<&SmtpServer>) -> TestApp {
    let (_, url) = fresh_database().await;
    let mut settings = test_settings(&url);
    settings.smtp_url = smtp.map(|s| Secret::new(s.url()));
    settings.mail_from = FROM.to_string();
    settings.inbound_token = Some(Secret::new(INBOUND_TOKEN));
    settings.public_url = Some("https://help.docket.test".to_string());
    spawn_with(settings).await
}

/// The outbox once `enough` holds for it (or after the patience runs out).
async fn outbox_when(
    app: &TestApp,
    admin: &Session,
    enough: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    app.items_when("/api/outbox?page_size=100", &admin.token, PATIENCE, enough)
        .await
}

async fn email_of(app: &TestApp, admin: &Session, who: &Session) -> String {
    app.get(&format!("/api/users/{}", who.user_id), &admin.token)
        .await
        .expect(200)
        .body["email"]
        .as_str()
        .unwrap()
        .to_string()
}

fn to_one(message: &Delivered) -> &str {
    assert_eq!(message.envelope_to.len(), 1, "{message:?}");
    &message.envelope_to[0]
}

#[tokio::test]
async fn each_person_gets_their_mail_in_one_thread_per_ticket_with_both_parts() {
    let smtp = SmtpServer::start().await;
    let app = spawn_mailing(Some(&smtp)).await;
    let admin = app.admin().await;
    let manager = app.user("manager").await;
    let agent = app.user("agent").await;
    let customer = app.customer().await;
    let customer_email = email_of(&app, &admin, &customer).await;
    let agent_email = email_of(&app, &admin, &agent).await;

    let ticket = app
        .post(
            "/api/tickets",
            &customer.token,
            json!({"subject": "Printer <jams> & stalls", "description": "On page two.",
                   "priority": "high"}),
        )
        .await
        .expect(201)
        .body;
    let id = ticket["id"].as_str().unwrap();
    let number = ticket["number"].as_str().unwrap();
    app.request(
        Method::POST,
        &format!("/api/tickets/{id}/assign"),
        Some(&manager.token),
        Some(json!({"agent_id": agent.user_id})),
        &[],
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/tickets/{id}/comments"),
        &agent.token,
        json!({"body": "Only staff may read this: the roller is worn.", "internal": true}),
    )
    .await
    .expect(201);
    app.post(
        &format!("/api/tickets/{id}/comments"),
        &agent.token,
        json!({"body": "A new roller is on its way."}),
    )
    .await
    .expect(201);
    app.patch(
        &format!("/api/tickets/{id}/status"),
        &agent.token,
        json!({"status": "resolved"}),
    )
    .await
    .expect(200);

    let messages = smtp.wait_for(4, PATIENCE).await;
    // Let anything that should not have been sent show itself.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let messages = if smtp.messages().len() > messages.len() {
        smtp.messages()
    } else {
        messages
    };
    let mut by_recipient: HashMap<String, Vec<&Delivered>> = HashMap::new();
    for message in &messages {
        by_recipient
            .entry(to_one(message).to_string())
            .or_default()
            .push(message);
    }
    let subjects = |who: &str| -> BTreeSet<String> {
        by_recipient
            .get(who)
            .map(|m| m.iter().map(|m| m.subject.clone()).collect())
            .unwrap_or_default()
    };
    assert_eq!(
        subjects(&customer_email),
        BTreeSet::from([
            format!("[{number}] We received your request: Printer <jams> & stalls"),
            format!("[{number}] Printer <jams> & stalls"),
            format!("[{number}] Now resolved: Printer <jams> & stalls"),
        ]),
        "{messages:#?}"
    );
    assert_eq!(
        subjects(&agent_email),
        BTreeSet::from([format!(
            "[{number}] Assigned to you: Printer <jams> & stalls"
        )])
    );
    assert_eq!(messages.len(), 4, "nobody else gets mail: {messages:#?}");

    let thread = format!("<ticket-{id}@docket.test>");
    let mut message_ids = BTreeSet::new();
    for message in &messages {
        assert_eq!(message.from, "support@docket.test");
        assert_eq!(message.to, vec![to_one(message).to_string()]);
        assert_eq!(message.in_reply_to, vec![thread.clone()], "{message:?}");
        assert_eq!(message.references, vec![thread.clone()]);
        assert_eq!(message.header("X-Docket-Ticket"), Some(number));
        assert_eq!(message.header("Auto-Submitted"), Some("auto-generated"));
        assert!(message.message_id.ends_with("@docket.test>"));
        message_ids.insert(message.message_id.clone());
        let text = message.text.as_deref().expect("a plain-text part");
        let html = message.html.as_deref().expect("an HTML part");
        assert!(!text.contains("roller is worn") && !html.contains("roller is worn"));
        assert!(!html.contains("<jams>"), "the HTML part escapes: {html}");
    }
    assert_eq!(message_ids.len(), 4, "each mail has its own Message-ID");

    let reply = by_recipient[&customer_email]
        .iter()
        .find(|m| m.subject == format!("[{number}] Printer <jams> & stalls"))
        .unwrap();
    let text = reply.text.as_deref().unwrap();
    assert!(text.contains("A new roller is on its way."), "{text}");
    assert!(
        text.contains(&format!("https://help.docket.test/portal/tickets/{id}")),
        "the customer's link opens the portal: {text}"
    );
    let html = reply.html.as_deref().unwrap();
    assert!(html.contains("A new roller is on its way."));
    assert!(html.contains("&lt;jams&gt;") || !html.contains("jams"));
    let assigned = by_recipient[&agent_email][0];
    assert!(
        assigned
            .text
            .as_deref()
            .unwrap()
            .contains(&format!("https://help.docket.test/tickets/{id}")),
        "staff links open the agent's page"
    );

    // The outbox shows each mail as sent, under the Message-ID the server received.
    let outbox = outbox_when(&app, &admin, |items| {
        items.len() >= 4 && items.iter().all(|m| m["state"] == "sent")
    })
    .await;
    assert_eq!(outbox.len(), 4);
    let outbox_ids: BTreeSet<String> = outbox
        .iter()
        .map(|m| m["message_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(outbox_ids, message_ids);
    for mail in &outbox {
        assert_eq!(mail["attempts"], 1);
        assert_eq!(mail["ticket_id"], json!(id));
        assert!(mail["sent_at"].is_string());
        assert!(mail["last_error"].is_null());
    }
    let kinds: BTreeSet<&str> = outbox.iter().map(|m| m["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "public_reply",
            "status_changed",
            "ticket_assigned",
            "ticket_created"
        ])
    );
    // One mail read back whole: what went out.
    let one = outbox.iter().find(|m| m["kind"] == "public_reply").unwrap();
    let read = app
        .get(
            &format!("/api/outbox/{}", one["id"].as_str().unwrap()),
            &admin.token,
        )
        .await
        .expect(200);
    assert_eq!(read.body["thread"], json!(thread));
    assert!(
        read.body["text"]
            .as_str()
            .unwrap()
            .contains("A new roller is on its way.")
    );
    assert_eq!(read.body["subject"], json!(reply.subject));

    // The outbox is the administrators'.
    app.get("/api/outbox", &agent.token)
        .await
        .expect_problem(403, "forbidden");
    app.get("/api/outbox?state=lost", &admin.token)
        .await
        .expect_problem(400, "invalid-parameter");
}

#[tokio::test]
async fn mail_queued_while_the_smtp_server_is_down_all_arrives_when_it_is_back() {
    let mut smtp = SmtpServer::start().await;
    let app = spawn_mailing(Some(&smtp)).await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    app.ticket_for(&customer, "Before the outage").await;
    assert_eq!(smtp.wait_for(1, PATIENCE).await.len(), 1);

    smtp.stop().await;
    let mut numbers = vec![];
    for n in 0..5 {
        let ticket = app
            .ticket_for(&customer, &format!("During the outage {n}"))
            .await;
        numbers.push(ticket["number"].as_str().unwrap().to_string());
    }
    // While it is down each mail is tried, kept queued, and says why.
    let waiting = outbox_when(&app, &admin, |items| {
        items.len() == 6
            && items
                .iter()
                .filter(|m| m["state"] == "queued")
                .all(|m| m["attempts"].as_i64().unwrap_or(0) >= 1)
            && items.iter().filter(|m| m["state"] == "queued").count() == 5
    })
    .await;
    let queued: Vec<&Value> = waiting.iter().filter(|m| m["state"] == "queued").collect();
    assert_eq!(queued.len(), 5, "{waiting:#?}");
    for mail in &queued {
        assert!(mail["attempts"].as_i64().unwrap() >= 1, "{mail}");
        assert!(mail["last_error"].is_string(), "{mail}");
    }

    smtp.resume().await;
    let messages = smtp.wait_for(6, PATIENCE).await;
    assert_eq!(messages.len(), 6, "every mail arrives once: {messages:#?}");
    for number in &numbers {
        assert_eq!(
            messages
                .iter()
                .filter(|m| m.subject.starts_with(&format!("[{number}]")))
                .count(),
            1,
            "{number}"
        );
    }
    let sent = outbox_when(&app, &admin, |items| {
        items.iter().all(|m| m["state"] == "sent")
    })
    .await;
    assert!(sent.iter().all(|m| m["state"] == "sent"), "{sent:#?}");
    assert!(
        sent.iter()
            .filter(|m| m["attempts"].as_i64().unwrap() > 1)
            .count()
            >= 5
    );
    let received: BTreeSet<&str> = messages.iter().map(|m| m.message_id.as_str()).collect();
    let listed: BTreeSet<&str> = sent
        .iter()
        .map(|m| m["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(received, listed);
}

#[tokio::test]
async fn without_an_smtp_server_mail_waits_in_the_outbox_where_it_can_be_read() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let customer = app.customer().await;
    let ticket = app.ticket_for(&customer, "Where is my invoice?").await;
    let number = ticket["number"].as_str().unwrap();

    let outbox = outbox_when(&app, &admin, |items| !items.is_empty()).await;
    assert_eq!(outbox.len(), 1);
    let mail = &outbox[0];
    assert_eq!(mail["state"], "queued");
    assert_eq!(mail["attempts"], 0);
    assert_eq!(mail["kind"], "ticket_created");
    assert_eq!(
        mail["subject"],
        json!(format!(
            "[{number}] We received your request: Where is my invoice?"
        ))
    );
    let id = mail["id"].as_str().unwrap();
    let read = app
        .get(&format!("/api/outbox/{id}"), &admin.token)
        .await
        .expect(200);
    assert!(
        read.body["text"]
            .as_str()
            .unwrap()
            .contains("Where is my invoice?")
    );
    assert!(read.body["html"].as_str().unwrap().contains("<p>"));
    let queued = app
        .get("/api/outbox?state=queued", &admin.token)
        .await
        .expect(200);
    assert_eq!(queued.body["total"], 1);
    let sent = app
        .get("/api/outbox?state=sent", &admin.token)
        .await
        .expect(200);
    assert_eq!(sent.body["total"], 0);

    app.get(
        &format!("/api/outbox/{}", uuid::Uuid::new_v4()),
        &admin.token,
    )
    .await
    .expect_problem(404, "not-found");

    // Without DOCKET_INBOUND_TOKEN nothing comes in by mail.
    app.request(
        Method::POST,
        "/api/inbound/email",
        None,
        None,
        &[
            ("x-inbound-token", "anything"),
            ("content-type", "message/rfc822"),
        ],
    )
    .await
    .expect_problem(403, "forbidden");
}

#[tokio::test]
async fn templates_are_checked_on_save_previewed_and_used_for_the_next_mail() {
    let smtp = SmtpServer::start().await;
    let app = spawn_mailing(Some(&smtp)).await;
    let admin = app.admin().await;
    let agent = app.user("agent").await;
    let customer = app.customer().await;

    let all = app
        .get("/api/email-templates", &admin.token)
        .await
        .expect(200);
    let kinds: Vec<&str> = all
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "ticket_created",
            "ticket_assigned",
            "public_reply",
            "status_changed",
            "sla_warning",
            "sla_breached",
            "escalated",
            "report"
        ]
    );
    let path = "/api/email-templates/ticket_created";
    let shipped = app.get(path, &admin.token).await.expect(200);
    assert_eq!(shipped.body["custom"], false);
    let variables: Vec<&str> = shipped.body["variables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(variables.contains(&"ticket.number"), "{variables:?}");

    app.get(path, &agent.token)
        .await
        .expect_problem(403, "forbidden");
    app.get("/api/email-templates/newsletter", &admin.token)
        .await
        .expect_problem(404, "not-found");

    // An unknown variable is refused on save, naming the part, rather than mailed as nothing.
    let refused = app
        .put(
            path,
            &admin.token,
            json!({"subject": "[{{ ticket.number }}] Hello",
                   "text": "Dear {{ customer.first_name }}", "html": "<p>Hi</p>"}),
        )
        .await
        .expect_problem(422, "validation-failed");
    assert_eq!(refused.body["field"], "text");
    assert!(
        refused.text.contains("customer.first_name"),
        "{}",
        refused.text
    );
    let refused = app
        .put(
            path,
            &admin.token,
            json!({"subject": "Hi", "text": "Hi", "html": "<p>{% if ticket.number %}</p>"}),
        )
        .await
        .expect_problem(422, "validation-failed");
    assert_eq!(refused.body["field"], "html");
    let refused = app
        .put(
            path,
            &admin.token,
            json!({"subject": "Hi", "text": "x".repeat(30_000), "html": "<p>Hi</p>"}),
        )
        .await
        .expect_problem(422, "validation-failed");
    assert_eq!(refused.body["field"], "text");
    let refused = app
        .put(
            path,
            &admin.token,
            json!({"subject": "Hi", "html": "<p>Hi</p>"}),
        )
        .await;
    assert_eq!(refused.status.as_u16(), 422, "{}", refused.text);
    // Nothing refused was kept.
    let unchanged = app.get(path, &admin.token).await.expect(200);
    assert_eq!(unchanged.body, shipped.body);

    let saved = app
        .put(
            path,
            &admin.token,
            json!({"subject": "Ticket {{ ticket.number }} is open",
                   "text": "We have it, {{ recipient.name }}: {{ ticket.subject }}",
                   "html": "<p>We have it: <b>{{ ticket.subject }}</b></p>"}),
        )
        .await
        .expect(200);
    assert_eq!(saved.body["custom"], true);
    assert_eq!(saved.body["version"], 1);
    assert_eq!(saved.header("etag").as_deref(), Some("\"1\""));

    // The preview renders it for a ticket as it is now, escaping the HTML part; nothing is sent.
    let ticket = app.ticket_for(&customer, "Screen <flickers>").await;
    let number = ticket["number"].as_str().unwrap();
    let preview = app
        .post(
            &format!("{path}/preview"),
            &admin.token,
            json!({"ticket_id": ticket["id"]}),
        )
        .await
        .expect(200);
    assert_eq!(
        preview.body["subject"],
        json!(format!("Ticket {number} is open"))
    );
    assert_eq!(
        preview.body["html"],
        "<p>We have it: <b>Screen &lt;flickers&gt;</b></p>"
    );
    assert!(
        preview.body["text"]
            .as_str()
            .unwrap()
            .ends_with("Screen <flickers>")
    );
    app.post(
        &format!("{path}/preview"),
        &admin.token,
        json!({"ticket_id": uuid::Uuid::new_v4()}),
    )
    .await
    .expect_problem(422, "validation-failed");
    // A draft is previewed before it is saved: its parts replace those in force, an unknown
    // variable in it is refused naming the part, and nothing of it is kept.
    let draft = app
        .post(
            &format!("{path}/preview"),
            &admin.token,
            json!({"ticket_id": ticket["id"], "subject": "Draft for {{ ticket.number }}"}),
        )
        .await
        .expect(200);
    assert_eq!(draft.body["subject"], json!(format!("Draft for {number}")));
    assert_eq!(draft.body["html"], preview.body["html"]);
    let refused = app
        .post(
            &format!("{path}/preview"),
            &admin.token,
            json!({"ticket_id": ticket["id"], "text": "Hi {{ ticket.nonsense }}"}),
        )
        .await
        .expect_problem(422, "validation-failed");
    assert_eq!(refused.body["field"], "text");
    let kept = app.get(path, &admin.token).await.expect(200);
    assert_eq!(kept.body["version"], 1);
    assert_eq!(kept.body["subject"], saved.body["subject"]);

    // The ticket's own mail went out with the edited template.
    let messages = smtp.wait_for(1, PATIENCE).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].subject, format!("Ticket {number} is open"));
    assert_eq!(
        messages[0].html.as_deref().map(str::trim),
        Some("<p>We have it: <b>Screen &lt;flickers&gt;</b></p>")
    );

    // Reset: Docket's own template is back, and the change is in the log as a new version.
    let reset = app.delete(path, &admin.token).await.expect(200);
    assert_eq!(reset.body["custom"], false);
    assert_eq!(reset.body["version"], 2);
    assert_eq!(reset.body["subject"], shipped.body["subject"]);
    app.ticket_for(&customer, "After the reset").await;
    let messages = smtp.wait_for(2, PATIENCE).await;
    assert!(
        messages[1]
            .subject
            .contains("We received your request: After the reset"),
        "{:?}",
        messages[1].subject
    );
}

/// A reply as a mail client would send it.
fn reply(from: &str, subject: &str, in_reply_to: Option<&str>, body: &str) -> String {
    let threading = in_reply_to
        .map(|id| format!("In-Reply-To: {id}\r\nReferences: {id}\r\n"))
        .unwrap_or_default();
    format!(
        "From: Someone <{from}>\r\nTo: support@docket.test\r\nSubject: {subject}\r\n\
         Message-ID: <{}@mail.example>\r\n{threading}Date: Mon, 7 Dec 2026 10:00:00 +0000\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}",
        uuid::Uuid::new_v4()
    )
}

async fn send_inbound(app: &TestApp, raw: &str, token: Option<&str>) -> docket_tests::TestResponse {
    let mut request = app
        .client
        .post(format!("{}/api/inbound/email", app.address))
        .header("content-type", "message/rfc822")
        .body(raw.to_string());
    if let Some(token) = token {
        request = request.header("x-inbound-token", token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    docket_tests::TestResponse {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

#[tokio::test]
async fn replies_by_mail_become_public_comments_from_their_sender() {
    let app = spawn_mailing(None).await;
    let admin = app.admin().await;
    let agent = app.user("agent").await;
    let customer = app.customer().await;
    let stranger = app.customer().await;
    let customer_email = email_of(&app, &admin, &customer).await;
    let agent_email = email_of(&app, &admin, &agent).await;
    let stranger_email = email_of(&app, &admin, &stranger).await;
    let ticket = app.ticket_for(&customer, "VPN drops at noon").await;
    let id = ticket["id"].as_str().unwrap();
    let number = ticket["number"].as_str().unwrap();
    let thread = format!("<ticket-{id}@docket.test>");

    // The customer answers a mail of the thread; the quoted mail is left out.
    let raw = reply(
        &customer_email.to_uppercase(),
        &format!("Re: [{number}] VPN drops at noon"),
        Some(&thread),
        "It dropped again at 12:01.\r\n\r\nOn Mon, 7 Dec 2026, Acme Support wrote:\r\n> We are looking into it.\r\n",
    );
    let commented = send_inbound(&app, &raw, Some(INBOUND_TOKEN))
        .await
        .expect(201);
    assert_eq!(commented.body["outcome"], "commented");
    assert_eq!(commented.body["ticket_id"], json!(id));
    let comment_id = commented.body["comment_id"].clone();
    // The gateway delivers the same message again: one comment, the same answer.
    let again = send_inbound(&app, &raw, Some(INBOUND_TOKEN))
        .await
        .expect(201);
    assert_eq!(again.body["comment_id"], comment_id);

    // Staff answer with only the number in the subject, the token as a bearer token.
    let staff = reply(
        &agent_email,
        &format!("RE: [{number}] VPN drops at noon"),
        None,
        "Please send us the client log.\r\n-- \r\nAnn, Acme Support\r\n",
    );
    let response = app
        .client
        .post(format!("{}/api/inbound/email", app.address))
        .header("content-type", "message/rfc822")
        .bearer_auth(INBOUND_TOKEN)
        .body(staff)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let staff_commented: Value = response.json().await.unwrap();

    let version = staff_commented["ticket_version"].as_i64().unwrap();
    let read = app
        .read_ticket(&customer.token, id, version)
        .await
        .expect(200);
    let comments: Vec<(String, String, bool)> = read.body["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["author_id"].as_str().unwrap().to_string(),
                c["body"].as_str().unwrap().to_string(),
                c["internal"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        comments,
        vec![
            (
                customer.user_id.to_string(),
                "It dropped again at 12:01.".to_string(),
                false
            ),
            (
                agent.user_id.to_string(),
                "Please send us the client log.".to_string(),
                false
            ),
        ]
    );

    // Someone else's mail, a mail naming no ticket, and an out-of-office answer are refused.
    let refused = send_inbound(
        &app,
        &reply(
            &stranger_email,
            &format!("Re: [{number}] VPN drops at noon"),
            Some(&thread),
            "Me too!",
        ),
        Some(INBOUND_TOKEN),
    )
    .await
    .expect_problem(422, "validation-failed");
    assert!(
        refused.text.contains("neither the ticket's customer"),
        "{}",
        refused.text
    );
    send_inbound(
        &app,
        &reply(&customer_email, "Hello there", None, "Any news?"),
        Some(INBOUND_TOKEN),
    )
    .await
    .expect_problem(422, "validation-failed");
    let out_of_office = reply(
        &customer_email,
        &format!("Out of office: [{number}] VPN drops at noon"),
        Some(&thread),
        "I am away until Monday.",
    )
    .replacen("Date:", "Auto-Submitted: auto-replied\r\nDate:", 1);
    send_inbound(&app, &out_of_office, Some(INBOUND_TOKEN))
        .await
        .expect_problem(422, "validation-failed");
    let vacation = reply(
        &customer_email,
        &format!("Re: [{number}] VPN drops at noon"),
        Some(&thread),
        "On holiday.",
    )
    .replacen("Date:", "Precedence: bulk\r\nDate:", 1);
    send_inbound(&app, &vacation, Some(INBOUND_TOKEN))
        .await
        .expect_problem(422, "validation-failed");
    let strangers = reply("nobody@elsewhere.test", &format!("[{number}]"), None, "hi");
    send_inbound(&app, &strangers, Some(INBOUND_TOKEN))
        .await
        .expect_problem(422, "validation-failed");

    // Without the token, or with another, nothing is taken or recorded.
    send_inbound(&app, &raw, None)
        .await
        .expect_problem(401, "unauthenticated");
    send_inbound(&app, &raw, Some("guess"))
        .await
        .expect_problem(401, "unauthenticated");

    // Every message that came in is recorded with what became of it.
    let log = app
        .get("/api/inbound/email?page_size=100", &admin.token)
        .await
        .expect(200);
    let outcomes: Vec<(&str, Option<&str>)> = log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|m| (m["outcome"].as_str().unwrap(), m["reason"].as_str()))
        .collect();
    assert_eq!(outcomes.len(), 7, "{:#?}", log.body);
    assert_eq!(outcomes[0], ("commented", None));
    assert_eq!(outcomes[1].0, "commented");
    assert!(
        outcomes[2]
            .1
            .unwrap()
            .contains("neither the ticket's customer")
    );
    assert!(outcomes[3].1.unwrap().contains("names no ticket"));
    assert!(outcomes[4].1.unwrap().contains("automatic"));
    assert!(outcomes[5].1.unwrap().contains("Precedence"));
    assert!(outcomes[6].1.unwrap().contains("no account"));
    app.get("/api/inbound/email", &agent.token)
        .await
        .expect_problem(403, "forbidden");
}
