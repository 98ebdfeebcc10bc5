//! The deliverer: posts what the dispatcher queued, one leader across processes.
//!
//! Each endpoint with deliveries due is drained by a task of its own (a few requests at a time),
//! so a slow or dead receiver holds up only itself. An endpoint is free for its next batch as soon
//! as its posts are answered with success: the attempts are recorded meanwhile, and the
//! deliveries being recorded are kept out of the next look for due ones (so none is sent twice
//! for that). Every attempt is recorded with what the receiver answered; a failure waits the
//! next step of the retry schedule; a 410 disables the endpoint, and so does failing without a
//! success for `DOCKET_WEBHOOK_DISABLE_AFTER`. A crash mid-delivery leaves the delivery due, and
//! it is sent again with the same `webhook-id`: at least once, and a receiver can tell a repeat.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use docket_domain::webhook::{DisableReason, WebhookCommand};
use futures::StreamExt;
use tokio::sync::{Notify, mpsc, oneshot, watch};
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
    let claims = Arc::new(Claims::default());
    let mut targets: HashMap<Uuid, Target> = HashMap::new();
    let (recorder, recordings) = mpsc::channel::<Recording>(ENDPOINTS_AT_ONCE);
    let recording = tokio::spawn(record_as_they_come(
        app.clone(),
        settings.clone(),
        recordings,
    ));
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut progress = app.notifications.projections();
    let mut dispatched = app.notifications.projector_known(WEBHOOK_DISPATCH.name);
    loop {
        if *shutdown.borrow() {
            break;
        }
        match due_deliveries(&app, &claims).await {
            Ok(due) => {
                for (endpoint, deliveries) in due {
                    if tasks.len() >= ENDPOINTS_AT_ONCE {
                        break;
                    }
                    let target = match target_of(&app, &mut targets, endpoint).await {
                        Ok(Some(target)) => target,
                        Ok(None) => continue,
                        Err(error) => {
                            tracing::warn!(?error, %endpoint, "could not read a webhook endpoint");
                            continue;
                        }
                    };
                    let claim = Claims::take(&claims, endpoint, &deliveries);
                    let (app, client, settings, recorder) = (
                        app.clone(),
                        client.clone(),
                        settings.clone(),
                        recorder.clone(),
                    );
                    tasks.spawn(async move {
                        let sending = Sending {
                            app: &app,
                            client: &client,
                            settings: &settings,
                            recorder: &recorder,
                            claim,
                            endpoint,
                            target: &target,
                        };
                        if let Err(error) = sending.run(deliveries).await {
                            tracing::warn!(?error, %endpoint, "webhook deliveries failed");
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
                _ = claims.freed.notified() => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
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
    drop(recorder);
    let _ = tokio::time::timeout(Duration::from_secs(5), recording).await;
}

/// What the deliverer holds and must not look for again: endpoints whose posts are under way
/// (one batch at a time each) and deliveries sent whose attempts are not yet recorded.
#[derive(Default)]
struct Claims {
    held: Mutex<Held>,
    /// Told when an endpoint is free for its next batch.
    freed: Notify,
}

#[derive(Default)]
struct Held {
    endpoints: HashSet<Uuid>,
    deliveries: HashSet<Uuid>,
}

impl Claims {
    /// Holds the endpoint and its batch until the returned claim lets them go.
    fn take(claims: &Arc<Self>, endpoint: Uuid, deliveries: &[Due]) -> Claim {
        let ids: Vec<Uuid> = deliveries.iter().map(|d| d.id).collect();
        if let Ok(mut held) = claims.held.lock() {
            held.endpoints.insert(endpoint);
            held.deliveries.extend(&ids);
        }
        Claim {
            claims: claims.clone(),
            endpoint: Some(endpoint),
            deliveries: ids,
        }
    }

    /// The endpoint may be sent its next batch (its last one's posts are answered).
    fn release_endpoint(&self, endpoint: Uuid) {
        let released = self
            .held
            .lock()
            .map(|mut held| held.endpoints.remove(&endpoint))
            .unwrap_or(false);
        if released {
            self.freed.notify_one();
        }
    }

    fn release_deliveries(&self, deliveries: &[Uuid]) {
        if let Ok(mut held) = self.held.lock() {
            for id in deliveries {
                held.deliveries.remove(id);
            }
        }
    }

    fn snapshot(&self) -> (Vec<Uuid>, Vec<Uuid>) {
        self.held
            .lock()
            .map(|held| {
                (
                    held.endpoints.iter().copied().collect(),
                    held.deliveries.iter().copied().collect(),
                )
            })
            .unwrap_or_default()
    }
}

/// One batch's hold on its endpoint and its deliveries: the endpoint is let go once (early, by
/// [`Claim::free_endpoint`], or when the claim ends), the deliveries when the claim ends, after
/// their attempts were recorded (or could not be, and they are due again).
struct Claim {
    claims: Arc<Claims>,
    endpoint: Option<Uuid>,
    deliveries: Vec<Uuid>,
}

impl Claim {
    /// The endpoint may be sent its next batch; this batch's deliveries stay held.
    fn free_endpoint(&mut self) {
        if let Some(endpoint) = self.endpoint.take() {
            self.claims.release_endpoint(endpoint);
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.free_endpoint();
        self.claims.release_deliveries(&self.deliveries);
    }
}

/// Where an endpoint's deliveries go and what they are signed with, as read at `read`.
#[derive(Clone)]
struct Target {
    read: Instant,
    url: String,
    secrets: Vec<SigningSecret>,
}

/// The endpoint's target, read again when older than [`TARGET_FRESHNESS`] (a change of address,
/// a rotation or a switch-off applies within that); `None` when it receives nothing now.
async fn target_of(
    app: &App,
    targets: &mut HashMap<Uuid, Target>,
    endpoint: Uuid,
) -> Result<Option<Target>, AppError> {
    if let Some(target) = targets.get(&endpoint)
        && target.read.elapsed() < TARGET_FRESHNESS
    {
        return Ok(Some(target.clone()));
    }
    targets.remove(&endpoint);
    let found: Option<(String, bool)> =
        sqlx::query_as("SELECT url, enabled AND disabled IS NULL FROM webhooks_view WHERE id = $1")
            .bind(endpoint)
            .fetch_optional(&app.pool)
            .await?;
    let Some((url, true)) = found else {
        return Ok(None);
    };
    let secrets = secrets_in_force(app, endpoint, app.time.now()).await?;
    if secrets.is_empty() {
        // Made but its secret not yet written (or lost): nothing can be signed.
        return Ok(None);
    }
    let target = Target {
        read: Instant::now(),
        url,
        secrets,
    };
    targets.insert(endpoint, target.clone());
    Ok(Some(target))
}

#[derive(sqlx::FromRow)]
struct Due {
    id: Uuid,
    webhook_id: Uuid,
    message_id: String,
    body: String,
    attempts: i32,
    retries_used: i32,
}

/// The due deliveries of every endpoint that receives events and is not being sent to, a batch
/// of each, oldest first, leaving out those being recorded: one query (an index probe per
/// endpoint), however many endpoints wait.
async fn due_deliveries(app: &App, claims: &Claims) -> Result<Vec<(Uuid, Vec<Due>)>, AppError> {
    let (sending, recording) = claims.snapshot();
    let rows: Vec<Due> = sqlx::query_as(
        "SELECT d.id, d.webhook_id, d.message_id, COALESCE(d.body, m.body, '') AS body, d.attempts,
                d.retries_used
           FROM (SELECT w.id FROM webhooks_view w
                  WHERE w.enabled AND w.disabled IS NULL AND w.id <> ALL($1)
                    AND EXISTS (SELECT 1 FROM webhook_deliveries x
                                 WHERE x.webhook_id = w.id AND x.state = 'pending'
                                   AND x.next_attempt_at <= now() AND x.id <> ALL($4))
                  LIMIT $2) w
           CROSS JOIN LATERAL (
                 SELECT * FROM webhook_deliveries d
                  WHERE d.webhook_id = w.id AND d.state = 'pending'
                    AND d.next_attempt_at <= now() AND d.id <> ALL($4)
                  ORDER BY d.next_attempt_at, d.position NULLS FIRST, d.id
                  LIMIT $3) d
           LEFT JOIN webhook_messages m ON m.id = d.message_id AND d.body IS NULL
          ORDER BY d.webhook_id, d.next_attempt_at, d.position NULLS FIRST, d.id",
    )
    .bind(&sending)
    .bind(ENDPOINTS_AT_ONCE as i64)
    .bind(BATCH)
    .bind(&recording)
    .fetch_all(&app.pool)
    .await?;
    let mut due: Vec<(Uuid, Vec<Due>)> = Vec::new();
    for row in rows {
        match due.last_mut() {
            Some((endpoint, rows)) if *endpoint == row.webhook_id => rows.push(row),
            _ => due.push((row.webhook_id, vec![row])),
        }
    }
    Ok(due)
}

/// One endpoint's batch being sent.
struct Sending<'a> {
    app: &'a App,
    client: &'a reqwest::Client,
    settings: &'a OutboundSettings,
    recorder: &'a mpsc::Sender<Recording>,
    claim: Claim,
    endpoint: Uuid,
    target: &'a Target,
}

impl Sending<'_> {
    /// Posts the batch (a few at a time), has it recorded (freeing the endpoint for its next
    /// batch once handed over, when all were delivered), and disables the endpoint when its
    /// answers say so.
    async fn run(mut self, due: Vec<Due>) -> Result<(), AppError> {
        let (url, secrets) = (&self.target.url, &self.target.secrets);
        let allow_private = self.settings.allow_private;
        let client = self.client;
        let attempts: Vec<(Due, Attempt)> = futures::stream::iter(due)
            .map(|delivery| async move {
                let attempt = attempt(client, allow_private, url, secrets, &delivery).await;
                (delivery, attempt)
            })
            .buffer_unordered(PER_ENDPOINT)
            .collect()
            .await;
        let all_delivered = attempts.iter().all(|(_, attempt)| attempt.succeeded());
        let (done, outcome) = oneshot::channel();
        let recording = Recording {
            endpoint: self.endpoint,
            attempts,
            done,
        };
        if self.recorder.send(recording).await.is_err() {
            return Ok(());
        }
        // All delivered: the endpoint's next batch need not wait for these to be recorded. After
        // a failure it does, so what the failure means (a 410, five days failing) is settled
        // before the endpoint is posted to again.
        if all_delivered {
            self.claim.free_endpoint();
        }
        // Not recorded (the recorder said why): the deliveries stay due, and go again.
        let Ok(Some(outcome)) = outcome.await else {
            return Ok(());
        };
        match outcome {
            Outcome::Gone => disable(self.app, self.endpoint, DisableReason::Gone).await,
            Outcome::FailingSince(since)
                if self.app.time.now() - since
                    >= chrono::Duration::from_std(self.settings.disable_after)
                        .unwrap_or(chrono::Duration::MAX) =>
            {
                disable(self.app, self.endpoint, DisableReason::Failing { since }).await
            }
            Outcome::Delivered | Outcome::FailingSince(_) => Ok(()),
        }
    }
}

/// One endpoint's attempts, to be recorded; `done` is told what they came to (`None`: they
/// could not be recorded).
struct Recording {
    endpoint: Uuid,
    attempts: Vec<(Due, Attempt)>,
    done: oneshot::Sender<Option<Outcome>>,
}

/// Records attempts as endpoints finish them: whatever has arrived meanwhile goes into one
/// statement, so endpoints answering at the same moment share one write instead of one each.
async fn record_as_they_come(
    app: SharedApp,
    settings: OutboundSettings,
    mut recordings: mpsc::Receiver<Recording>,
) {
    // One recording per endpoint in a statement (an endpoint's health is one row); a second
    // one waits for the next.
    let mut held: Option<Recording> = None;
    loop {
        let first = match held.take() {
            Some(first) => first,
            None => match recordings.recv().await {
                Some(first) => first,
                None => return,
            },
        };
        let mut batch = vec![first];
        while batch.len() < ENDPOINTS_AT_ONCE {
            match recordings.try_recv() {
                Ok(more) if batch.iter().any(|r| r.endpoint == more.endpoint) => {
                    held = Some(more);
                    break;
                }
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        match record(&app, &settings, &batch).await {
            Ok(outcomes) => {
                for (recording, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = recording.done.send(Some(outcome));
                }
            }
            Err(error) => {
                tracing::warn!(
                    ?error,
                    "could not record webhook attempts; they will be sent again"
                );
                for recording in batch {
                    let _ = recording.done.send(None);
                }
            }
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

/// Records the attempts of a few endpoints and what they mean for their deliveries and each
/// endpoint's health, in one statement (one commit, not one per delivery or per endpoint); what
/// each endpoint's attempts came to, in order.
async fn record(
    app: &App,
    settings: &OutboundSettings,
    recordings: &[Recording],
) -> Result<Vec<Outcome>, AppError> {
    let count: usize = recordings.iter().map(|r| r.attempts.len()).sum();
    let mut ids = Vec::with_capacity(count);
    let mut numbers = Vec::with_capacity(count);
    let mut started = Vec::with_capacity(count);
    let mut durations = Vec::with_capacity(count);
    let mut statuses: Vec<Option<i16>> = Vec::with_capacity(count);
    let mut errors: Vec<Option<String>> = Vec::with_capacity(count);
    let mut excerpts: Vec<Option<String>> = Vec::with_capacity(count);
    let mut states = Vec::with_capacity(count);
    let mut nexts: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(count);
    let mut retried = Vec::with_capacity(count);
    let mut delivered: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(count);
    // Per endpoint: its last success and first failure in these attempts.
    let mut endpoints = Vec::with_capacity(recordings.len());
    let mut successes: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(recordings.len());
    let mut failures: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(recordings.len());
    for recording in recordings {
        let attempts = &recording.attempts;
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
        endpoints.push(recording.endpoint);
        successes.push(
            attempts
                .iter()
                .filter(|(_, a)| a.succeeded())
                .map(|(_, a)| a.started_at)
                .max(),
        );
        failures.push(
            attempts
                .iter()
                .filter(|(_, a)| !a.succeeded())
                .map(|(_, a)| a.started_at)
                .min(),
        );
    }
    // One statement, so one round trip and its own transaction: the attempts, what they mean
    // for their deliveries, and each endpoint's health (a success clears `failing_since`; a
    // failure starts it unless it has already started). Not waiting for the WAL flush
    // (`set_config(…, true)` is `SET LOCAL`): should the database itself crash, an outcome
    // recorded here may be lost, and that delivery is sent again under the same `webhook-id`,
    // which is what at-least-once promises anyway.
    let health: Vec<(Uuid, Option<DateTime<Utc>>)> = sqlx::query_as(
        "WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true)),
              tried AS (
                INSERT INTO webhook_attempts (delivery_id, attempt, started_at, duration_ms,
                                              status_code, error, response_excerpt)
                SELECT * FROM UNNEST($1::uuid[], $2::int[], $3::timestamptz[], $4::int[],
                                     $5::smallint[], $6::text[], $7::text[])
                ON CONFLICT (delivery_id, attempt) DO NOTHING
                RETURNING 1),
              moved AS (
                UPDATE webhook_deliveries d
                   SET attempts = d.attempts + 1, state = a.state, next_attempt_at = a.next,
                       retries_used = CASE WHEN a.retried THEN d.retries_used + 1
                                           ELSE d.retries_used END,
                       delivered_at = COALESCE(a.delivered, d.delivered_at),
                       last_status = a.status, last_error = a.error
                  FROM UNNEST($1::uuid[], $8::text[], $9::timestamptz[], $10::bool[],
                              $11::timestamptz[], $5::smallint[], $6::text[])
                       AS a(id, state, next, retried, delivered, status, error)
                 WHERE d.id = a.id
                RETURNING 1),
              health AS (
                INSERT INTO webhook_health (webhook_id, failing_since, last_success_at,
                                            last_failure_at)
                SELECT e.id, CASE WHEN e.success IS NULL THEN e.failure END, e.success,
                       e.failure
                  FROM UNNEST($12::uuid[], $13::timestamptz[], $14::timestamptz[])
                       AS e(id, success, failure)
                 WHERE e.success IS NOT NULL OR e.failure IS NOT NULL
                ON CONFLICT (webhook_id) DO UPDATE
                   SET failing_since = CASE
                         WHEN EXCLUDED.last_success_at IS NOT NULL THEN NULL
                         ELSE COALESCE(webhook_health.failing_since, EXCLUDED.failing_since) END,
                       last_success_at = COALESCE(EXCLUDED.last_success_at,
                                                  webhook_health.last_success_at),
                       last_failure_at = COALESCE(EXCLUDED.last_failure_at,
                                                  webhook_health.last_failure_at)
                RETURNING webhook_id, failing_since)
         -- Data-modifying parts run whatever is read of them; the setting only when read.
         SELECT webhook_id, failing_since FROM health WHERE (SELECT count(*) FROM relaxed) = 1",
    )
    .bind(&ids)
    .bind(&numbers)
    .bind(&started)
    .bind(&durations)
    .bind(&statuses)
    .bind(&errors)
    .bind(&excerpts)
    .bind(&states)
    .bind(&nexts)
    .bind(&retried)
    .bind(&delivered)
    .bind(&endpoints)
    .bind(&successes)
    .bind(&failures)
    .fetch_all(&app.pool)
    .await?;
    let failing: HashMap<Uuid, Option<DateTime<Utc>>> = health.into_iter().collect();
    Ok(recordings
        .iter()
        .zip(&successes)
        .map(|(recording, success)| {
            let gone = recording
                .attempts
                .iter()
                .any(|(_, a)| a.status == Some(410));
            let since = failing.get(&recording.endpoint).copied().flatten();
            match (gone, success, since) {
                (true, _, _) => Outcome::Gone,
                (false, Some(_), _) => Outcome::Delivered,
                (false, None, Some(since)) => Outcome::FailingSince(since),
                (false, None, None) => Outcome::Delivered,
            }
        })
        .collect())
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
