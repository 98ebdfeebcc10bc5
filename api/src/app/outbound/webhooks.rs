//! Webhook endpoints (administrators): add, change, remove, rotate the signing secret, send a
//! test, and see and replay deliveries.
//!
//! The secret lives in `webhook_secrets`, outside the log (DESIGN.md decision 10), and is shown
//! once: when the endpoint is added and when it is rotated. It is written after the event that
//! makes or rotates it, so a crash between leaves an endpoint without a secret (its deliveries
//! wait) or the old secret in force, never a secret the log does not account for.

use chrono::{DateTime, Duration, Utc};
use docket_domain::access::Permission;
use docket_domain::webhook::{
    Webhook, WebhookChange, WebhookCommand, WebhookId, WebhookSettings, WebhookUrl,
};
use docket_projections::registry;
use docket_projections::webhooks::{self, WebhookRow};
use uuid::Uuid;

use super::address;
use super::dispatch::delivery_id;
use super::signing::SigningSecret;
use crate::app::bus::Committed;
use crate::app::error::AppError;
use crate::app::{App, Caller, Origin};

/// How long the secret before a rotation keeps signing beside the new one.
pub const ROTATION_OVERLAP: Duration = Duration::hours(24);

/// An endpoint and how it is doing.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookView {
    pub webhook: WebhookRow,
    /// Deliveries have failed since then without a success.
    pub failing_since: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
}

/// One message to one endpoint, with every attempt.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DeliveryView {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub message_id: String,
    pub event_type: String,
    pub position: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub last_status: Option<i16>,
    pub last_error: Option<String>,
    #[sqlx(skip)]
    pub tries: Vec<AttemptView>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AttemptView {
    pub delivery_id: Uuid,
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i32,
    pub status_code: Option<i16>,
    pub error: Option<String>,
    /// The first KiB of what the receiver answered.
    pub response_excerpt: Option<String>,
}

fn manage(caller: &Caller, action: &'static str) -> Result<(), AppError> {
    caller.require(Permission::ManageIntegrations, action)
}

/// Refuses an address Docket may not post to, naming the field.
async fn check_address(app: &App, url: &WebhookUrl) -> Result<(), AppError> {
    address::check(url.as_str(), app.outbound.settings.allow_private)
        .await
        .map_err(|refusal| AppError::invalid("url", refusal.to_string()))
}

/// Runs `command` on endpoint `id` as the caller, from where the request came.
async fn execute(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    id: Uuid,
    expected: Option<i64>,
    command: WebhookCommand,
) -> Result<Committed<Webhook>, AppError> {
    let metadata = origin.metadata(Some(caller.actor()));
    Ok(app
        .webhooks
        .execute(&id.to_string(), expected, command, metadata)
        .await?)
}

fn view_of(committed: &Committed<Webhook>) -> Result<WebhookRow, AppError> {
    let state = committed
        .aggregate
        .state()
        .ok_or_else(|| AppError::internal("webhook command left no webhook"))?;
    let settings = &state.settings;
    Ok(WebhookRow {
        id: state.id.0,
        url: settings.url.as_str().to_string(),
        events: settings
            .events
            .kinds()
            .iter()
            .map(|k| k.as_str().to_string())
            .collect(),
        description: settings
            .description
            .as_ref()
            .map(|d| d.as_str().to_string()),
        enabled: settings.enabled,
        include_internal: settings.include_internal,
        disabled: state
            .disabled
            .and_then(|reason| serde_json::to_value(reason).ok()),
        created_at: state.created_at,
        updated_at: state.updated_at,
        version: committed.version,
    })
}

#[derive(Default, sqlx::FromRow)]
struct Health {
    failing_since: Option<DateTime<Utc>>,
    last_success_at: Option<DateTime<Utc>>,
}

async fn health(app: &App, row: WebhookRow) -> Result<WebhookView, AppError> {
    let health: Health = sqlx::query_as(
        "SELECT failing_since, last_success_at FROM webhook_health WHERE webhook_id = $1",
    )
    .bind(row.id)
    .fetch_optional(&app.pool)
    .await?
    .unwrap_or_default();
    Ok(WebhookView {
        webhook: row,
        failing_since: health.failing_since,
        last_success_at: health.last_success_at,
    })
}

/// Adds an endpoint; the answer holds its signing secret, which is never shown again.
pub async fn create(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    settings: WebhookSettings,
) -> Result<(WebhookView, SigningSecret), AppError> {
    manage(caller, "configure webhooks")?;
    check_address(app, &settings.url).await?;
    let id = WebhookId(Uuid::now_v7());
    let command = WebhookCommand::Create {
        webhook_id: id,
        settings,
        actor: caller.actor(),
        at: app.time.now(),
    };
    let committed = execute(app, caller, origin, id.0, Some(0), command).await?;
    let secret = SigningSecret::generate();
    sqlx::query(
        "INSERT INTO webhook_secrets (webhook_id, secret, rotated_at) VALUES ($1, $2, now())",
    )
    .bind(id.0)
    .bind(secret.expose())
    .execute(&app.pool)
    .await?;
    let view = WebhookView {
        webhook: view_of(&committed)?,
        failing_since: None,
        last_success_at: None,
    };
    Ok((view, secret))
}

/// Every endpoint, oldest first.
pub async fn list(app: &App, caller: &Caller) -> Result<Vec<WebhookView>, AppError> {
    manage(caller, "see webhooks")?;
    app.consistency
        .include(caller, &[&registry::WEBHOOKS])
        .await?;
    let mut views = Vec::new();
    for row in webhooks::list(&app.pool).await? {
        views.push(health(app, row).await?);
    }
    Ok(views)
}

/// Every endpoint's id and what to call it (its description, or else its address), oldest
/// first: for choosing one, without the health `list` reads for each.
pub async fn names(app: &App, caller: &Caller) -> Result<Vec<(Uuid, String)>, AppError> {
    manage(caller, "see webhooks")?;
    app.consistency
        .include(caller, &[&registry::WEBHOOKS])
        .await?;
    Ok(webhooks::list(&app.pool)
        .await?
        .into_iter()
        .map(|row| {
            let name = row.description.filter(|d| !d.is_empty());
            (row.id, name.unwrap_or(row.url))
        })
        .collect())
}

/// One endpoint.
pub async fn get(app: &App, caller: &Caller, id: Uuid) -> Result<WebhookView, AppError> {
    manage(caller, "see webhooks")?;
    app.consistency
        .include(caller, &[&registry::WEBHOOKS])
        .await?;
    let row = webhooks::get(&app.pool, id)
        .await?
        .ok_or(AppError::NotFound("webhook"))?;
    health(app, row).await
}

/// Changes an endpoint (`expected`: the version the caller saw, for `If-Match`). Switching it
/// off holds its waiting deliveries; switching it on (also after Docket disabled it) sends them.
pub async fn update(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    id: Uuid,
    change: WebhookChange,
    expected: Option<i64>,
) -> Result<WebhookView, AppError> {
    manage(caller, "configure webhooks")?;
    if let Some(url) = &change.url {
        check_address(app, url).await?;
    }
    let enabled = change.enabled;
    let command = WebhookCommand::Update {
        change,
        actor: caller.actor(),
        at: app.time.now(),
    };
    let committed = execute(app, caller, origin, id, expected, command).await?;
    match enabled {
        Some(true) => resume(app, id).await?,
        Some(false) => pause(app, id).await?,
        None => {}
    }
    health(app, view_of(&committed)?).await
}

/// Holds an endpoint's waiting deliveries (it no longer receives).
pub async fn pause(app: &App, id: Uuid) -> Result<(), AppError> {
    sqlx::query(
        "UPDATE webhook_deliveries SET next_attempt_at = NULL
          WHERE webhook_id = $1 AND state = 'pending'",
    )
    .bind(id)
    .execute(&app.pool)
    .await?;
    Ok(())
}

/// Sends an endpoint's held deliveries, each with its retries afresh.
async fn resume(app: &App, id: Uuid) -> Result<(), AppError> {
    sqlx::query(
        "UPDATE webhook_deliveries SET next_attempt_at = now(), retries_used = 0
          WHERE webhook_id = $1 AND state = 'pending' AND next_attempt_at IS NULL",
    )
    .bind(id)
    .execute(&app.pool)
    .await?;
    sqlx::query("UPDATE webhook_health SET failing_since = NULL WHERE webhook_id = $1")
        .bind(id)
        .execute(&app.pool)
        .await?;
    app.outbound.wake.notify_one();
    Ok(())
}

/// Removes an endpoint: nothing more is sent to it, and its secret is forgotten.
pub async fn delete(app: &App, caller: &Caller, origin: &Origin, id: Uuid) -> Result<(), AppError> {
    manage(caller, "delete webhooks")?;
    let command = WebhookCommand::Delete {
        actor: caller.actor(),
        at: app.time.now(),
    };
    execute(app, caller, origin, id, None, command).await?;
    sqlx::query(
        "UPDATE webhook_deliveries
            SET state = 'failed', next_attempt_at = NULL, last_error = 'the endpoint was deleted'
          WHERE webhook_id = $1 AND state = 'pending'",
    )
    .bind(id)
    .execute(&app.pool)
    .await?;
    sqlx::query("DELETE FROM webhook_secrets WHERE webhook_id = $1")
        .bind(id)
        .execute(&app.pool)
        .await?;
    Ok(())
}

/// Makes a new signing secret; for a day the old one signs beside it, so receivers can switch.
pub async fn rotate_secret(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    id: Uuid,
) -> Result<SigningSecret, AppError> {
    manage(caller, "rotate webhook secrets")?;
    let command = WebhookCommand::RotateSecret {
        actor: caller.actor(),
        at: app.time.now(),
    };
    execute(app, caller, origin, id, None, command).await?;
    let secret = SigningSecret::generate();
    let until = app.time.now() + ROTATION_OVERLAP;
    sqlx::query(
        "INSERT INTO webhook_secrets (webhook_id, secret, rotated_at) VALUES ($1, $2, now())
         ON CONFLICT (webhook_id) DO UPDATE
            SET previous_secret = webhook_secrets.secret, previous_until = $3,
                secret = EXCLUDED.secret, rotated_at = now()",
    )
    .bind(id)
    .bind(secret.expose())
    .bind(until)
    .execute(&app.pool)
    .await?;
    Ok(secret)
}

/// The secrets signing an endpoint's messages now: the current one, and the one before it
/// during the day after a rotation.
pub async fn secrets_in_force(
    app: &App,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<SigningSecret>, AppError> {
    let stored: Option<(String, Option<String>, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT secret, previous_secret, previous_until FROM webhook_secrets WHERE webhook_id = $1",
    )
    .bind(id)
    .fetch_optional(&app.pool)
    .await?;
    let Some((current, previous, until)) = stored else {
        return Ok(vec![]);
    };
    let mut secrets: Vec<SigningSecret> =
        SigningSecret::from_stored(&current).into_iter().collect();
    if let (Some(previous), Some(until)) = (previous, until)
        && until > now
    {
        secrets.extend(SigningSecret::from_stored(&previous));
    }
    Ok(secrets)
}

/// Queues a `webhook.ping` to the endpoint; the answer is its delivery's id.
pub async fn send_test(app: &App, caller: &Caller, id: Uuid) -> Result<Uuid, AppError> {
    let endpoint = get(app, caller, id).await?;
    let message_id = format!("msg_{}", Uuid::now_v7().simple());
    let delivery = delivery_id(endpoint.webhook.id, &message_id);
    let body = serde_json::json!({
        "type": "webhook.ping",
        "timestamp": app.time.now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "data": {"webhook_id": endpoint.webhook.id, "message": "A test from Docket."},
    });
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, webhook_id, message_id, event_type, body, created_at,
                                         next_attempt_at)
         VALUES ($1, $2, $3, 'webhook.ping', $4, now(), now())",
    )
    .bind(delivery)
    .bind(endpoint.webhook.id)
    .bind(&message_id)
    .bind(body.to_string())
    .execute(&app.pool)
    .await?;
    app.outbound.wake.notify_one();
    Ok(delivery)
}

const DELIVERY_COLUMNS: &str = "id, webhook_id, message_id, event_type, position, created_at, \
     state, attempts, next_attempt_at, delivered_at, last_status, last_error";

/// An endpoint's deliveries, newest first, each with every attempt; and how many there are.
pub async fn deliveries(
    app: &App,
    caller: &Caller,
    id: Uuid,
    page: i64,
    page_size: i64,
) -> Result<(Vec<DeliveryView>, i64), AppError> {
    get(app, caller, id).await?;
    let total: i64 =
        sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE webhook_id = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await?;
    let mut found: Vec<DeliveryView> = sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = $1
          ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(id)
    .bind(page_size)
    .bind((page.max(1) - 1).saturating_mul(page_size))
    .fetch_all(&app.pool)
    .await?;
    let ids: Vec<Uuid> = found.iter().map(|d| d.id).collect();
    let tries: Vec<AttemptView> = sqlx::query_as(
        "SELECT delivery_id, attempt, started_at, duration_ms, status_code, error,
                response_excerpt
           FROM webhook_attempts WHERE delivery_id = ANY($1) ORDER BY attempt",
    )
    .bind(&ids)
    .fetch_all(&app.pool)
    .await?;
    for delivery in &mut found {
        delivery.tries = tries
            .iter()
            .filter(|t| t.delivery_id == delivery.id)
            .cloned()
            .collect();
    }
    Ok((found, total))
}

/// Sends a delivery again (with the same `webhook-id`, so a receiver that has it already can
/// tell), with its retries afresh.
pub async fn redeliver(
    app: &App,
    caller: &Caller,
    id: Uuid,
    delivery: Uuid,
) -> Result<(), AppError> {
    get(app, caller, id).await?;
    let queued = sqlx::query(
        "UPDATE webhook_deliveries
            SET state = 'pending', next_attempt_at = now(), retries_used = 0
          WHERE id = $1 AND webhook_id = $2",
    )
    .bind(delivery)
    .bind(id)
    .execute(&app.pool)
    .await?;
    if queued.rows_affected() == 0 {
        return Err(AppError::NotFound("delivery"));
    }
    app.outbound.wake.notify_one();
    Ok(())
}
