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
use super::signing::{SigningSecret, signature_header};
use super::webhooks::{pause, secrets_in_force};
use crate::app::caller::system_metadata;
use crate::app::{App, AppError, SharedApp, leadership};

/// The deliverer's leadership lock ("docket_4").
const LEADER_KEY: i64 = 0x646f_636b_6574_5f34;
/// At most this many endpoints are drained at once.
const ENDPOINTS_AT_ONCE: usize = 64;
/// Requests in flight to one endpoint at once.
const PER_ENDPOINT: usize = 8;
/// Deliveries an endpoint's task takes at a time.
const BATCH: i64 = 32;
/// How often the deliverer looks for due deliveries without being woken (retries, other
/// processes' requests).
const POLL: Duration = Duration::from_millis(500);
/// How long a drain trusts what it read of its endpoint (address, secrets, switched on).
const TARGET_FRESHNESS: Duration = Duration::from_secs(1);
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
    // One index probe per endpoint (there are few), however many deliveries wait.
    Ok(sqlx::query_scalar(
        "SELECT w.id FROM webhooks_view w
          WHERE w.enabled AND w.disabled IS NULL AND w.id <> ALL($1)
            AND EXISTS (SELECT 1 FROM webhook_deliveries d
                         WHERE d.webhook_id = w.id AND d.state = 'pending'
                           AND d.next_attempt_at <= now())
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
    let mut target: Option<(Instant, String, Vec<SigningSecret>)> = None;
    loop {
        // Where to post and what to sign with, read again every second (a change of address,
        // a rotation, a switch-off apply within that).
        if target
            .as_ref()
            .is_none_or(|(read, ..)| read.elapsed() >= TARGET_FRESHNESS)
        {
            let found: Option<(String, bool)> = sqlx::query_as(
                "SELECT url, enabled AND disabled IS NULL FROM webhooks_view WHERE id = $1",
            )
            .bind(endpoint)
            .fetch_optional(&app.pool)
            .await?;
            let Some((url, true)) = found else {
                return Ok(());
            };
            let secrets = secrets_in_force(app, endpoint, app.time.now()).await?;
            if secrets.is_empty() {
                // Made but its secret not yet written (or lost): nothing can be signed.
                return Ok(());
            }
            target = Some((Instant::now(), url, secrets));
        }
        let Some((_, url, secrets)) = &target else {
            return Ok(());
        };
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
        let attempts: Vec<(Due, Attempt)> = futures::stream::iter(due)
            .map(|delivery| async move {
                let attempt =
                    attempt(client, settings.allow_private, url, secrets, &delivery).await;
                (delivery, attempt)
            })
            .buffer_unordered(PER_ENDPOINT)
            .collect()
            .await;
        match record(app, settings, endpoint, &attempts).await? {
            Outcome::Gone => {
                disable(app, endpoint, DisableReason::Gone).await?;
                return Ok(());
            }
            Outcome::FailingSince(since)
                if app.time.now() - since
                    >= chrono::Duration::from_std(settings.disable_after)
                        .unwrap_or(chrono::Duration::MAX) =>
            {
                disable(app, endpoint, DisableReason::Failing { since }).await?;
                return Ok(());
            }
            Outcome::Delivered | Outcome::FailingSince(_) => {}
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
    // A literal address is not resolved by the client, so it is checked here; a name is
    // checked by the client's resolver, on the addresses it connects to.
    let refused = address::private_literal(url, allow_private)
        .map(|ip| format!("{ip} is a private or local address"));
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

/// What a batch of attempts to one endpoint came to.
enum Outcome {
    /// At least one was delivered.
    Delivered,
    /// None was; the endpoint has had no success since then.
    FailingSince(DateTime<Utc>),
    /// The receiver answered 410 Gone.
    Gone,
}

/// Where a delivery goes after an attempt: its state, when it is tried next, whether the attempt
/// used up a retry.
fn next_step(
    settings: &OutboundSettings,
    delivery: &Due,
    attempt: &Attempt,
) -> (&'static str, Option<DateTime<Utc>>) {
    let gone = attempt.status == Some(410);
    if attempt.succeeded() {
        return ("delivered", None);
    }
    let wait = (!gone)
        .then(|| {
            settings
                .retry_schedule
                .get(usize::try_from(delivery.retries_used).unwrap_or(usize::MAX))
        })
        .flatten()
        .and_then(|wait| chrono::Duration::from_std(*wait).ok());
    match wait {
        Some(wait) => ("pending", Some(attempt.started_at + wait)),
        None => ("failed", None),
    }
}

/// Records a batch of attempts to one endpoint and what they mean for their deliveries and the
/// endpoint's health, in one transaction (one commit for the batch, not one per delivery).
async fn record(
    app: &App,
    settings: &OutboundSettings,
    endpoint: Uuid,
    attempts: &[(Due, Attempt)],
) -> Result<Outcome, AppError> {
    let mut ids = Vec::with_capacity(attempts.len());
    let mut numbers = Vec::with_capacity(attempts.len());
    let mut started = Vec::with_capacity(attempts.len());
    let mut durations = Vec::with_capacity(attempts.len());
    let mut statuses: Vec<Option<i16>> = Vec::with_capacity(attempts.len());
    let mut errors: Vec<Option<String>> = Vec::with_capacity(attempts.len());
    let mut excerpts: Vec<Option<String>> = Vec::with_capacity(attempts.len());
    let mut states = Vec::with_capacity(attempts.len());
    let mut nexts: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(attempts.len());
    let mut retried = Vec::with_capacity(attempts.len());
    let mut delivered: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(attempts.len());
    for (delivery, attempt) in attempts {
        let (state, next) = next_step(settings, delivery, attempt);
        ids.push(delivery.id);
        numbers.push(delivery.attempts + 1);
        started.push(attempt.started_at);
        durations.push(i32::try_from(attempt.duration.as_millis()).unwrap_or(i32::MAX));
        statuses.push(attempt.status.map(|s| s as i16));
        errors.push(attempt.error.clone());
        excerpts.push(attempt.excerpt.clone());
        states.push(state);
        nexts.push(next);
        retried.push(!attempt.succeeded());
        delivered.push(attempt.succeeded().then_some(attempt.started_at));
        app.metrics
            .webhook_attempt(match (attempt.succeeded(), attempt.status) {
                (true, _) => "delivered",
                (false, Some(410)) => "gone",
                (false, _) => "failed",
            });
    }
    let mut tx = app.pool.begin().await?;
    // Not waiting for the WAL flush: should the database itself crash, an outcome recorded here
    // may be lost, and that delivery is sent again under the same `webhook-id`, which is what
    // at-least-once promises anyway. The flush was most of a batch's time under load.
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO webhook_attempts (delivery_id, attempt, started_at, duration_ms, status_code,
                                       error, response_excerpt)
         SELECT * FROM UNNEST($1::uuid[], $2::int[], $3::timestamptz[], $4::int[],
                              $5::smallint[], $6::text[], $7::text[])
         ON CONFLICT (delivery_id, attempt) DO NOTHING",
    )
    .bind(&ids)
    .bind(&numbers)
    .bind(&started)
    .bind(&durations)
    .bind(&statuses)
    .bind(&errors)
    .bind(&excerpts)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE webhook_deliveries d
            SET attempts = d.attempts + 1, state = a.state, next_attempt_at = a.next,
                retries_used = CASE WHEN a.retried THEN d.retries_used + 1 ELSE d.retries_used END,
                delivered_at = COALESCE(a.delivered, d.delivered_at),
                last_status = a.status, last_error = a.error
           FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[], $4::bool[],
                       $5::timestamptz[], $6::smallint[], $7::text[])
                AS a(id, state, next, retried, delivered, status, error)
          WHERE d.id = a.id",
    )
    .bind(&ids)
    .bind(&states)
    .bind(&nexts)
    .bind(&retried)
    .bind(&delivered)
    .bind(&statuses)
    .bind(&errors)
    .execute(&mut *tx)
    .await?;
    let last_success = delivered.iter().flatten().max().copied();
    let first_failure = attempts
        .iter()
        .filter(|(_, a)| !a.succeeded())
        .map(|(_, a)| a.started_at)
        .min();
    let failing_since: Option<DateTime<Utc>> = match (last_success, first_failure) {
        (Some(success), _) => {
            sqlx::query(
                "INSERT INTO webhook_health (webhook_id, last_success_at) VALUES ($1, $2)
                 ON CONFLICT (webhook_id) DO UPDATE
                    SET failing_since = NULL, last_success_at = EXCLUDED.last_success_at",
            )
            .bind(endpoint)
            .bind(success)
            .execute(&mut *tx)
            .await?;
            None
        }
        (None, Some(failure)) => {
            sqlx::query_scalar(
                "INSERT INTO webhook_health (webhook_id, failing_since, last_failure_at)
             VALUES ($1, $2, $2)
             ON CONFLICT (webhook_id) DO UPDATE
                SET failing_since = COALESCE(webhook_health.failing_since, EXCLUDED.failing_since),
                    last_failure_at = EXCLUDED.last_failure_at
             RETURNING failing_since",
            )
            .bind(endpoint)
            .bind(failure)
            .fetch_one(&mut *tx)
            .await?
        }
        (None, None) => None,
    };
    tx.commit().await?;
    let gone = attempts.iter().any(|(_, a)| a.status == Some(410));
    Ok(match (gone, last_success, failing_since) {
        (true, _, _) => Outcome::Gone,
        (false, Some(_), _) => Outcome::Delivered,
        (false, None, Some(since)) => Outcome::FailingSince(since),
        (false, None, None) => Outcome::Delivered,
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
