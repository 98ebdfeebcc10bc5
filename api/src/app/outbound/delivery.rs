//! The deliverer: posts what the dispatcher queued, one leader across processes.
//!
//! Each endpoint with deliveries due is drained by a task of its own (a few requests at a time),
//! so a slow or dead receiver holds up only itself. Every attempt is recorded with what the
//! receiver answered; a failure waits the next step of the retry schedule; a 410 disables the
//! endpoint, and so does failing without a success for `DOCKET_WEBHOOK_DISABLE_AFTER`. A crash
//! mid-delivery leaves the delivery due, and it is sent again with the same `webhook-id`: at
//! least once, and a receiver can tell a repeat.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use docket_domain::webhook::{DisableReason, WebhookCommand};
use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinSet;
use uuid::Uuid;

use super::OutboundSettings;
use super::address::{self, PublicOnly};
use super::dispatch::WEBHOOK_DISPATCH;
use super::signing::signature_header;
use super::webhooks::{pause, secrets_in_force};
use crate::app::caller::system_metadata;
use crate::app::{App, AppError, SharedApp, leadership};

/// The deliverer's leadership lock ("docket_4").
const LEADER_KEY: i64 = 0x646f_636b_6574_5f34;
/// At most this many endpoints are drained at once.
const ENDPOINTS_AT_ONCE: usize = 64;
/// Requests in flight to one endpoint at once.
const PER_ENDPOINT: usize = 4;
/// Deliveries an endpoint's task takes at a time.
const BATCH: i64 = 32;
/// How often the deliverer looks for due deliveries without being woken (retries, other
/// processes' requests).
const POLL: Duration = Duration::from_millis(500);
/// How much of a receiver's answer is kept.
const EXCERPT_BYTES: usize = 1024;

pub async fn run(app: SharedApp, mut shutdown: watch::Receiver<bool>) {
    let Some(_leadership) =
        leadership::lead(&app.pool, LEADER_KEY, "webhooks", &mut shutdown).await
    else {
        return;
    };
    let settings = app.outbound.settings.clone();
    let client = match reqwest::Client::builder()
        .timeout(settings.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(PublicOnly {
            allow_private: settings.allow_private,
        }))
        .user_agent(concat!("Docket-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "the webhook client could not be built; no webhooks are sent");
            return;
        }
    };
    let busy: Arc<Mutex<HashSet<Uuid>>> = Arc::default();
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut progress = app.notifications.projections();
    let mut dispatched = app.notifications.projector_known(WEBHOOK_DISPATCH.name);
    loop {
        if *shutdown.borrow() {
            break;
        }
        match due_endpoints(&app, &busy).await {
            Ok(endpoints) => {
                for endpoint in endpoints {
                    if tasks.len() >= ENDPOINTS_AT_ONCE {
                        break;
                    }
                    if let Ok(mut busy) = busy.lock() {
                        busy.insert(endpoint);
                    }
                    let (app, client, busy, settings) =
                        (app.clone(), client.clone(), busy.clone(), settings.clone());
                    tasks.spawn(async move {
                        if let Err(error) = drain(&app, &client, &settings, endpoint).await {
                            tracing::warn!(?error, %endpoint, "webhook deliveries failed");
                        }
                        if let Ok(mut busy) = busy.lock() {
                            busy.remove(&endpoint);
                        }
                    });
                }
            }
            Err(error) => tracing::warn!(?error, "could not look for due webhook deliveries"),
        }
        let poll = tokio::time::sleep(POLL);
        tokio::pin!(poll);
        loop {
            tokio::select! {
                _ = &mut poll => break,
                _ = app.outbound.wake.notified() => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => break,
                _ = shutdown.changed() => break,
                changed = progress.changed() => {
                    if changed.is_err() {
                        (&mut poll).await;
                        break;
                    }
                    // Only the dispatcher's progress can bring new deliveries.
                    let now = app.notifications.projector_known(WEBHOOK_DISPATCH.name);
                    if now != dispatched {
                        dispatched = now;
                        break;
                    }
                }
            }
        }
    }
    // Attempts cut short here are due again, and sent by the next leader.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
}

/// Endpoints that receive events and have deliveries due, but not those being drained.
async fn due_endpoints(app: &App, busy: &Mutex<HashSet<Uuid>>) -> Result<Vec<Uuid>, AppError> {
    let draining: Vec<Uuid> = busy
        .lock()
        .map(|b| b.iter().copied().collect())
        .unwrap_or_default();
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT d.webhook_id FROM webhook_deliveries d
           JOIN webhooks_view w ON w.id = d.webhook_id
          WHERE d.state = 'pending' AND d.next_attempt_at <= now()
            AND w.enabled AND w.disabled IS NULL AND d.webhook_id <> ALL($1)
          LIMIT $2",
    )
    .bind(&draining)
    .bind(ENDPOINTS_AT_ONCE as i64)
    .fetch_all(&app.pool)
    .await?)
}

#[derive(sqlx::FromRow)]
struct Due {
    id: Uuid,
    message_id: String,
    body: String,
    attempts: i32,
    retries_used: i32,
}

/// Sends an endpoint's due deliveries until none is left (or the endpoint stops receiving).
async fn drain(
    app: &App,
    client: &reqwest::Client,
    settings: &OutboundSettings,
    endpoint: Uuid,
) -> Result<(), AppError> {
    loop {
        let target: Option<(String, bool)> = sqlx::query_as(
            "SELECT url, enabled AND disabled IS NULL FROM webhooks_view WHERE id = $1",
        )
        .bind(endpoint)
        .fetch_optional(&app.pool)
        .await?;
        let Some((url, true)) = target else {
            return Ok(());
        };
        let secrets = secrets_in_force(app, endpoint, app.time.now()).await?;
        if secrets.is_empty() {
            // Made but its secret not yet written (or lost): nothing can be signed.
            return Ok(());
        }
        let due: Vec<Due> = sqlx::query_as(
            "SELECT id, message_id, body, attempts, retries_used FROM webhook_deliveries
              WHERE webhook_id = $1 AND state = 'pending' AND next_attempt_at <= now()
              ORDER BY next_attempt_at, position NULLS FIRST, id LIMIT $2",
        )
        .bind(endpoint)
        .bind(BATCH)
        .fetch_all(&app.pool)
        .await?;
        if due.is_empty() {
            return Ok(());
        }
        let outcomes: Vec<Result<Outcome, AppError>> = futures::stream::iter(due)
            .map(|delivery| {
                let (url, secrets) = (&url, &secrets);
                async move {
                    let attempt =
                        attempt(client, settings.allow_private, url, secrets, &delivery).await;
                    record(app, settings, endpoint, &delivery, attempt).await
                }
            })
            .buffer_unordered(PER_ENDPOINT)
            .collect()
            .await;
        let mut stop = false;
        for outcome in outcomes {
            match outcome? {
                Outcome::Gone => {
                    disable(app, endpoint, DisableReason::Gone).await?;
                    stop = true;
                }
                Outcome::FailingSince(since)
                    if app.time.now() - since
                        >= chrono::Duration::from_std(settings.disable_after)
                            .unwrap_or(chrono::Duration::MAX) =>
                {
                    disable(app, endpoint, DisableReason::Failing { since }).await?;
                    stop = true;
                }
                Outcome::Delivered | Outcome::FailingSince(_) => {}
            }
        }
        if stop {
            return Ok(());
        }
    }
}

/// What one request came to.
struct Attempt {
    started_at: DateTime<Utc>,
    duration: Duration,
    status: Option<u16>,
    excerpt: Option<String>,
    error: Option<String>,
}

impl Attempt {
    fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

async fn attempt(
    client: &reqwest::Client,
    allow_private: bool,
    url: &str,
    secrets: &[super::signing::SigningSecret],
    delivery: &Due,
) -> Attempt {
    let started_at = Utc::now();
    let clock = Instant::now();
    let timestamp = started_at.timestamp();
    let signature = signature_header(
        secrets,
        &delivery.message_id,
        timestamp,
        delivery.body.as_bytes(),
    );
    let refused = match address::check(url, allow_private).await {
        Ok(()) => None,
        // A literal address is not resolved by the client, so it is checked here.
        Err(address::AddressRefusal::Private(ip)) => {
            Some(format!("{ip} is a private or local address"))
        }
        // A name is checked by the client's resolver, on the addresses it connects to.
        Err(address::AddressRefusal::Unresolved(_)) => None,
    };
    if let Some(error) = refused {
        return Attempt {
            started_at,
            duration: clock.elapsed(),
            status: None,
            excerpt: None,
            error: Some(error),
        };
    }
    let sent = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &delivery.message_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(delivery.body.clone())
        .send()
        .await;
    match sent {
        Ok(mut response) => {
            let status = response.status().as_u16();
            let mut excerpt: Vec<u8> = Vec::new();
            while excerpt.len() < EXCERPT_BYTES {
                match response.chunk().await {
                    Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                    Ok(None) | Err(_) => break,
                }
            }
            excerpt.truncate(EXCERPT_BYTES);
            Attempt {
                started_at,
                duration: clock.elapsed(),
                status: Some(status),
                excerpt: Some(String::from_utf8_lossy(&excerpt).into_owned()),
                error: None,
            }
        }
        Err(error) => Attempt {
            started_at,
            duration: clock.elapsed(),
            status: None,
            excerpt: None,
            error: Some(describe(&error)),
        },
    }
}

/// A failed request in words, without the URL (which the delivery log shows already).
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_redirect() {
        "redirected (not followed)"
    } else if error.is_body() || error.is_decode() {
        "broke off the answer"
    } else {
        "failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        cause = inner.to_string();
        source = inner.source();
    }
    if cause.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {cause}")
    }
}

enum Outcome {
    Delivered,
    /// Failed; the endpoint has had no success since then.
    FailingSince(DateTime<Utc>),
    /// The receiver answered 410 Gone.
    Gone,
}

/// Records an attempt and what it means for its delivery and its endpoint, in one transaction.
async fn record(
    app: &App,
    settings: &OutboundSettings,
    endpoint: Uuid,
    delivery: &Due,
    attempt: Attempt,
) -> Result<Outcome, AppError> {
    let succeeded = attempt.succeeded();
    let gone = attempt.status == Some(410);
    let retry_after = (!succeeded && !gone)
        .then(|| {
            settings
                .retry_schedule
                .get(usize::try_from(delivery.retries_used).unwrap_or(usize::MAX))
        })
        .flatten()
        .and_then(|wait| chrono::Duration::from_std(*wait).ok());
    let state = match (succeeded, retry_after) {
        (true, _) => "delivered",
        (false, Some(_)) => "pending",
        (false, None) => "failed",
    };
    let next_attempt_at = retry_after.map(|wait| attempt.started_at + wait);
    let mut tx = app.pool.begin().await?;
    sqlx::query(
        "INSERT INTO webhook_attempts (delivery_id, attempt, started_at, duration_ms, status_code,
                                       error, response_excerpt)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (delivery_id, attempt) DO NOTHING",
    )
    .bind(delivery.id)
    .bind(delivery.attempts + 1)
    .bind(attempt.started_at)
    .bind(i32::try_from(attempt.duration.as_millis()).unwrap_or(i32::MAX))
    .bind(attempt.status.map(|s| s as i16))
    .bind(&attempt.error)
    .bind(&attempt.excerpt)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE webhook_deliveries
            SET attempts = attempts + 1, state = $2, next_attempt_at = $3,
                retries_used = CASE WHEN $4 THEN retries_used + 1 ELSE retries_used END,
                delivered_at = CASE WHEN $5 THEN $6 ELSE delivered_at END,
                last_status = $7, last_error = $8
          WHERE id = $1",
    )
    .bind(delivery.id)
    .bind(state)
    .bind(next_attempt_at)
    .bind(!succeeded)
    .bind(succeeded)
    .bind(attempt.started_at)
    .bind(attempt.status.map(|s| s as i16))
    .bind(&attempt.error)
    .execute(&mut *tx)
    .await?;
    let failing_since: Option<DateTime<Utc>> = if succeeded {
        sqlx::query(
            "INSERT INTO webhook_health (webhook_id, last_success_at) VALUES ($1, $2)
             ON CONFLICT (webhook_id) DO UPDATE
                SET failing_since = NULL, last_success_at = EXCLUDED.last_success_at",
        )
        .bind(endpoint)
        .bind(attempt.started_at)
        .execute(&mut *tx)
        .await?;
        None
    } else {
        sqlx::query_scalar(
            "INSERT INTO webhook_health (webhook_id, failing_since, last_failure_at)
             VALUES ($1, $2, $2)
             ON CONFLICT (webhook_id) DO UPDATE
                SET failing_since = COALESCE(webhook_health.failing_since, EXCLUDED.failing_since),
                    last_failure_at = EXCLUDED.last_failure_at
             RETURNING failing_since",
        )
        .bind(endpoint)
        .bind(attempt.started_at)
        .fetch_one(&mut *tx)
        .await?
    };
    tx.commit().await?;
    app.metrics.webhook_attempt(if succeeded {
        "delivered"
    } else if gone {
        "gone"
    } else {
        "failed"
    });
    Ok(match (succeeded, gone, failing_since) {
        (true, _, _) => Outcome::Delivered,
        (false, true, _) => Outcome::Gone,
        (false, false, since) => Outcome::FailingSince(since.unwrap_or(attempt.started_at)),
    })
}

/// Docket stops posting to an endpoint on its own: recorded in the log (where the people who
/// look after it are told from), and its waiting deliveries held until it is enabled again.
async fn disable(app: &App, endpoint: Uuid, reason: DisableReason) -> Result<(), AppError> {
    let command = WebhookCommand::Disable {
        reason,
        at: app.time.now(),
    };
    app.webhooks
        .execute(
            &endpoint.to_string(),
            None,
            command,
            system_metadata("webhooks"),
        )
        .await?;
    tracing::warn!(%endpoint, ?reason, "webhook endpoint disabled");
    pause(app, endpoint).await
}
