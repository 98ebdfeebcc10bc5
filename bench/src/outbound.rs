//! Webhooks: how late a delivery is, from the commit of the event to the receiver having it,
//! with endpoints listening while tickets are opened at a steady rate; beside the same receivers
//! posted to directly by the benchmark at the same rate (what the network and the receiver cost
//! on their own). Measured at the rate and at a quarter of it.
//!
//! Mail: how many messages a second the sender hands to aiosmtpd, draining an outbox filled while
//! no SMTP server was set; beside lettre sending the same number of messages to the same server
//! directly, as many at once as the sender does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use docket_api::startup::Application;
use docket_tests::receiver::Receiver;
use docket_tests::smtp::SmtpServer;
use futures::StreamExt;
use serde_json::json;
use tokio::sync::Mutex;

use crate::{Figure, bench_settings, percentile, serve_in_background};

pub struct OutboundSizes {
    /// Tickets opened per second, one load each.
    pub rates: Vec<u64>,
    pub seconds: u64,
    pub endpoints: usize,
    /// Mails queued for the SMTP throughput (one per ticket opened).
    pub mails: usize,
}

struct Target {
    client: reqwest::Client,
    address: String,
    customer: String,
}

pub async fn webhooks(
    url: &str,
    sizes: &OutboundSizes,
    figures: &mut Vec<Figure>,
) -> anyhow::Result<()> {
    let mut settings = bench_settings(url);
    settings.webhook_allow_private = true;
    let app = Application::build(settings).await?;
    let address = format!("http://127.0.0.1:{}", app.port());
    let (stop, server) = serve_in_background(app);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let token = |email: &str, password: &str| {
        let (client, address) = (client.clone(), address.clone());
        let body = json!({"email": email, "password": password});
        async move {
            let answer: serde_json::Value = client
                .post(format!("{address}/api/auth/login"))
                .json(&body)
                .send()
                .await?
                .json()
                .await?;
            anyhow::Ok(
                answer["access_token"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        }
    };
    let admin = token("bench@docket.test", "bench-password").await?;
    client
        .post(format!("{address}/api/auth/register"))
        .json(&json!({"email": "hooks@docket.test", "password": "password123", "full_name": "C"}))
        .send()
        .await?;
    let target = Target {
        customer: token("hooks@docket.test", "password123").await?,
        client: client.clone(),
        address: address.clone(),
    };
    let mut receivers = Vec::with_capacity(sizes.endpoints);
    for _ in 0..sizes.endpoints {
        let receiver = Receiver::start().await;
        let made: serde_json::Value = client
            .post(format!("{address}/api/webhooks"))
            .bearer_auth(&admin)
            .json(&json!({"url": receiver.url(), "events": ["ticket.created"]}))
            .send()
            .await?
            .json()
            .await?;
        receiver.trust(made["secret"].as_str().unwrap_or_default());
        receivers.push(receiver);
    }
    let mut measured = Vec::new();
    for rate in &sizes.rates {
        eprintln!(
            "webhooks: {rate} tickets/s for {} s to {} endpoints…",
            sizes.seconds, sizes.endpoints
        );
        let lateness = deliveries(&target, &receivers, *rate, sizes.seconds).await?;
        measured.push((*rate, lateness));
    }
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(20), server).await;

    for (rate, lateness) in measured {
        eprintln!("baseline: posting to the receivers directly at {rate}/s…");
        let direct = direct_posts(&client, &receivers, rate, sizes.seconds).await?;
        let label = format!(
            "webhook delivery: event committed → receiver has it ({rate} events/s to {} endpoints)",
            sizes.endpoints
        );
        let baseline = format!("the same receivers posted to directly at {rate}/s");
        figures.push(
            Figure::new(&label, "p50 lateness", percentile(&lateness, 50.0), "ms")
                .baseline(&format!("{baseline}, p50"), percentile(&direct, 50.0)),
        );
        let p99 = percentile(&lateness, 99.0);
        let p99_figure = Figure::new(&label, "p99 lateness", p99, "ms")
            .baseline(&format!("{baseline}, p99"), percentile(&direct, 99.0));
        figures.push(if rate >= 200 {
            p99_figure.target("<= 100 ms", p99 <= 100.0)
        } else {
            p99_figure
        });
        figures.push(Figure::new(
            &label,
            "deliveries measured",
            lateness.len() as f64,
            "deliveries",
        ));
    }
    Ok(())
}

/// Opens `rate` tickets a second for `seconds`; how late each one's delivery to each receiver
/// was, from the commit's acknowledgement to the receiver having it.
async fn deliveries(
    target: &Target,
    receivers: &[Receiver],
    rate: u64,
    seconds: u64,
) -> anyhow::Result<Vec<f64>> {
    let committed: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let total = rate * seconds;
    let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    let mut opening = Vec::with_capacity(total as usize);
    for n in 0..total {
        pace.tick().await;
        let (client, address, customer, committed) = (
            target.client.clone(),
            target.address.clone(),
            target.customer.clone(),
            committed.clone(),
        );
        opening.push(tokio::spawn(async move {
            let response = client
                .post(format!("{address}/api/tickets"))
                .bearer_auth(&customer)
                .json(
                    &json!({"subject": format!("Hook {n}"), "description": "d", "priority": "low"}),
                )
                .send()
                .await?;
            let done = Instant::now();
            let ticket: serde_json::Value = response.json().await?;
            if let Some(id) = ticket["id"].as_str() {
                committed.lock().await.push((id.to_string(), done));
            }
            anyhow::Ok(())
        }));
    }
    for task in opening {
        task.await??;
    }
    let committed = committed.lock().await.clone();
    let mut lateness = Vec::with_capacity(committed.len() * receivers.len());
    for receiver in receivers {
        let ours = |received: &[docket_tests::receiver::Received]| {
            let arrived: HashMap<&str, Instant> = received
                .iter()
                .filter(|d| d.applied)
                .filter_map(|d| d.body["data"]["ticket_id"].as_str().map(|t| (t, d.at)))
                .collect();
            committed
                .iter()
                .filter_map(|(ticket, at)| arrived.get(ticket.as_str()).map(|got| (*at, *got)))
                .collect::<Vec<_>>()
        };
        let got = receiver
            .wait_for(Duration::from_secs(120), |r| {
                ours(r).len() >= committed.len()
            })
            .await;
        anyhow::ensure!(
            got.iter().all(|d| d.verified),
            "a delivery failed verification"
        );
        lateness.extend(
            ours(&got)
                .into_iter()
                .map(|(at, arrived)| arrived.saturating_duration_since(at).as_secs_f64() * 1000.0),
        );
    }
    anyhow::ensure!(
        lateness.len() == committed.len() * receivers.len(),
        "{} of {} deliveries arrived",
        lateness.len(),
        committed.len() * receivers.len()
    );
    lateness.sort_by(f64::total_cmp);
    Ok(lateness)
}

/// The baseline: the benchmark posts a message of the same size to the same receivers at the
/// same rate, straight away; how late each arrived (by the receiver's clock, as deliveries).
async fn direct_posts(
    client: &reqwest::Client,
    receivers: &[Receiver],
    rate: u64,
    seconds: u64,
) -> anyhow::Result<Vec<f64>> {
    let body = receivers[0]
        .received()
        .first()
        .map(|d| d.raw.clone())
        .unwrap_or_default();
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut sending = Vec::new();
    let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    for n in 0..rate * seconds {
        pace.tick().await;
        for (r, receiver) in receivers.iter().enumerate() {
            let (client, url, body, sent) =
                (client.clone(), receiver.url(), body.clone(), sent.clone());
            sending.push(tokio::spawn(async move {
                let id = format!("direct_{rate}_{n}_{r}");
                sent.lock().await.insert(id.clone(), Instant::now());
                client
                    .post(url)
                    .header("content-type", "application/json")
                    .header("webhook-id", id)
                    .body(body)
                    .send()
                    .await?;
                anyhow::Ok(())
            }));
        }
    }
    for task in sending {
        task.await??;
    }
    let sent = sent.lock().await.clone();
    let mut direct: Vec<f64> = receivers
        .iter()
        .flat_map(|r| r.received())
        .filter_map(|d| {
            sent.get(&d.webhook_id)
                .map(|at| d.at.saturating_duration_since(*at).as_secs_f64() * 1000.0)
        })
        .collect();
    direct.sort_by(f64::total_cmp);
    Ok(direct)
}

/// Fills the outbox with no SMTP server set, then starts a server that has one and times how
/// long the sender takes to hand every queued mail to aiosmtpd.
pub async fn mail(
    url: &str,
    sizes: &OutboundSizes,
    figures: &mut Vec<Figure>,
) -> anyhow::Result<()> {
    let pool = docket_projections::db::connect(url, 2, Duration::from_secs(30)).await?;
    let app = Application::build(bench_settings(url)).await?;
    let address = format!("http://127.0.0.1:{}", app.port());
    let (stop, server) = serve_in_background(app);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    client
        .post(format!("{address}/api/auth/register"))
        .json(&json!({"email": "mail@docket.test", "password": "password123", "full_name": "M"}))
        .send()
        .await?;
    let answer: serde_json::Value = client
        .post(format!("{address}/api/auth/login"))
        .json(&json!({"email": "mail@docket.test", "password": "password123"}))
        .send()
        .await?
        .json()
        .await?;
    let customer = answer["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    eprintln!(
        "mail: queueing {} mails with no SMTP server set…",
        sizes.mails
    );
    let opened: Vec<anyhow::Result<()>> = futures::stream::iter(0..sizes.mails)
        .map(|n| {
            let (client, address, customer) = (client.clone(), address.clone(), customer.clone());
            async move {
                client
                    .post(format!("{address}/api/tickets"))
                    .bearer_auth(&customer)
                    .json(&json!({"subject": format!("Mail {n}"), "description": "d", "priority": "low"}))
                    .send()
                    .await?
                    .error_for_status()?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for outcome in opened {
        outcome?;
    }
    // Each ticket's mail to its customer is queued by the notifier, behind the commit.
    let ours = "SELECT count(*) FROM mail_outbox WHERE to_address = 'mail@docket.test'";
    let mut queued_ours = 0_i64;
    for _ in 0..1200 {
        queued_ours = sqlx::query_scalar(ours).fetch_one(&pool).await?;
        if queued_ours >= sizes.mails as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::ensure!(
        queued_ours >= sizes.mails as i64,
        "only {queued_ours} of {} mails were queued",
        sizes.mails
    );
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(20), server).await;
    // Everything queued goes out, whoever it is for (earlier loads queue mail too).
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM mail_outbox WHERE state = 'queued'")
        .fetch_one(&pool)
        .await?;
    let queued = queued as usize;

    let smtp = SmtpServer::start().await;
    let mut settings = bench_settings(url);
    settings.smtp_url = Some(docket_api::config::Secret::new(smtp.url()));
    eprintln!("mail: sending {queued} queued mails to aiosmtpd…");
    let app = Application::build(settings).await?;
    let started = Instant::now();
    let (stop, server) = serve_in_background(app);
    let within = Instant::now() + Duration::from_secs(600);
    while smtp.count() < queued && Instant::now() < within {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let docket_took = started.elapsed();
    let arrived = smtp.count();
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(20), server).await;
    anyhow::ensure!(
        arrived >= queued,
        "only {arrived} of {queued} mails arrived"
    );
    let sent: i64 = sqlx::query_scalar("SELECT count(*) FROM mail_outbox WHERE state = 'sent'")
        .fetch_one(&pool)
        .await?;
    anyhow::ensure!(sent as usize >= queued, "{sent} of {queued} marked sent");
    pool.close().await;

    eprintln!("baseline: lettre sending {queued} mails to the same server…");
    let direct = SmtpServer::start().await;
    let direct_took = lettre_directly(&direct, queued).await?;
    let label = format!("mail: the outbox drained into aiosmtpd ({queued} mails)");
    figures.push(
        Figure::new(
            &label,
            "throughput",
            queued as f64 / docket_took.as_secs_f64(),
            "messages/s",
        )
        .baseline(
            "lettre sending to the same server directly, 4 at once",
            queued as f64 / direct_took.as_secs_f64(),
        ),
    );
    Ok(())
}

/// Sends `count` small mails through one pooled lettre transport, four at once (as the sender
/// does), and waits until the server has them all.
async fn lettre_directly(smtp: &SmtpServer, count: usize) -> anyhow::Result<Duration> {
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&smtp.url())?.build();
    let started = Instant::now();
    let sent: Vec<anyhow::Result<()>> = futures::stream::iter(0..count)
        .map(|n| {
            let transport = transport.clone();
            async move {
                let message = Message::builder()
                    .from("Docket <docket@localhost>".parse()?)
                    .to("mail@docket.test".parse()?)
                    .subject(format!("[TKT-{n:06}] We received your request: Mail {n}"))
                    .multipart(lettre::message::MultiPart::alternative_plain_html(
                        format!("Hello M,\n\nWe received your request \"Mail {n}\".\n"),
                        format!("<p>Hello M,</p><p>We received your request “Mail {n}”.</p>"),
                    ))?;
                transport.send(message).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    for outcome in sent {
        outcome?;
    }
    let within = Instant::now() + Duration::from_secs(120);
    while smtp.count() < count && Instant::now() < within {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(started.elapsed())
}
