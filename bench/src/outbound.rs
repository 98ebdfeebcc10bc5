//! Webhooks: how late a delivery is, from the commit of the event to the receiver having it,
//! with endpoints listening while tickets are opened at a steady rate; beside the same receivers
//! posted to directly by the benchmark at the same rate (what the network and the receiver cost
//! on their own). Measured at the rate and at a quarter of it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use docket_api::startup::Application;
use docket_tests::receiver::Receiver;
use serde_json::json;
use tokio::sync::Mutex;

use crate::{Figure, bench_settings, percentile, serve_in_background};

pub struct OutboundSizes {
    /// Tickets opened per second, one load each.
    pub rates: Vec<u64>,
    pub seconds: u64,
    pub endpoints: usize,
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
