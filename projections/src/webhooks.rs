//! Webhook endpoints as the API lists them: `webhooks_view`.
//!
//! The same fold keeps the outbound dispatcher's own copy (`webhook_subscriptions`, which it
//! writes with its checkpoint), so that an event is posted to the endpoints subscribed at the
//! moment the event happened in the log, whatever the API's view says by the time it is read.

use chrono::{DateTime, Utc};
use docket_domain::webhook::WebhookEvent;
use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgExecutor};
use uuid::Uuid;

use crate::fold::{Decoded, VersionedRow, fold_batch};
use crate::log::RecordedEvent;
use crate::runtime::{Projection, ProjectionError};

#[derive(Debug, Clone, PartialEq, FromRow, Serialize)]
pub struct WebhookRow {
    pub id: Uuid,
    pub url: String,
    /// The kinds of events it receives (`ticket.created`, …).
    pub events: Vec<String>,
    pub description: Option<String>,
    /// Whoever configured it wants it to receive events.
    pub enabled: bool,
    pub include_internal: bool,
    /// Why Docket stopped posting to it on its own (`{"reason": "gone"}`), until it is
    /// enabled again.
    pub disabled: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl WebhookRow {
    /// Whether events are posted to it now.
    pub fn receives(&self) -> bool {
        self.enabled && self.disabled.is_none()
    }

    pub fn subscribed_to(&self, kind: &str) -> bool {
        self.events.iter().any(|e| e == kind)
    }
}

impl VersionedRow for WebhookRow {
    fn id(&self) -> Uuid {
        self.id
    }

    fn version(&self) -> i64 {
        self.version
    }
}

/// What became of an endpoint after one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Kept,
    Deleted(Uuid),
}

/// Folds one event into an endpoint's row; exhaustive over the webhook events.
pub fn fold(
    row: &mut Option<WebhookRow>,
    id: Uuid,
    sequence: i64,
    event: WebhookEvent,
) -> Result<Option<Outcome>, String> {
    if row.as_ref().is_some_and(|r| sequence <= r.version) {
        return Ok(None);
    }
    let occurred_at = event.occurred_at();
    if let WebhookEvent::WebhookCreated {
        url,
        events,
        description,
        enabled,
        include_internal,
        ..
    } = event
    {
        *row = Some(WebhookRow {
            id,
            url: url.as_str().to_string(),
            events: events
                .kinds()
                .iter()
                .map(|k| k.as_str().to_string())
                .collect(),
            description: description.map(|d| d.into_string()),
            enabled,
            include_internal,
            disabled: None,
            created_at: occurred_at,
            updated_at: occurred_at,
            version: sequence,
        });
        return Ok(Some(Outcome::Kept));
    }
    let Some(webhook) = row.as_mut() else {
        return Err(format!("{} before WebhookCreated", event.name()));
    };
    webhook.version = sequence;
    webhook.updated_at = occurred_at;
    match event {
        WebhookEvent::WebhookCreated { .. } => {
            return Err("WebhookCreated for an endpoint that already exists".into());
        }
        WebhookEvent::WebhookUpdated {
            url,
            events,
            description,
            enabled,
            include_internal,
            ..
        } => {
            if let Some(url) = url {
                webhook.url = url.as_str().to_string();
            }
            if let Some(events) = events {
                webhook.events = events
                    .kinds()
                    .iter()
                    .map(|k| k.as_str().to_string())
                    .collect();
            }
            if let Some(description) = description {
                webhook.description = description.map(|d| d.into_string());
            }
            if let Some(enabled) = enabled {
                webhook.enabled = enabled;
                webhook.disabled = None;
            }
            if let Some(include_internal) = include_internal {
                webhook.include_internal = include_internal;
            }
        }
        WebhookEvent::WebhookSecretRotated { .. } => {}
        WebhookEvent::WebhookDisabled { reason, .. } => {
            webhook.disabled = Some(serde_json::to_value(reason).map_err(|e| e.to_string())?);
        }
        WebhookEvent::WebhookDeleted { .. } => return Ok(Some(Outcome::Deleted(id))),
    }
    Ok(Some(Outcome::Kept))
}

const COLUMNS: &str = "id, url, events, description, enabled, include_internal, disabled, \
     created_at, updated_at, version";

/// Folds a batch's webhook events into `table` (`webhooks_view` or the dispatcher's
/// `webhook_subscriptions`, which have the same columns).
pub async fn apply(
    conn: &mut PgConnection,
    table: &str,
    decoded: Decoded<'_, WebhookEvent>,
) -> Result<(), ProjectionError> {
    if decoded.events.is_empty() {
        return Ok(());
    }
    let existing: Vec<WebhookRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM {table} WHERE id = ANY($1)"))
            .bind(decoded.ids())
            .fetch_all(&mut *conn)
            .await?;
    let (rows, outcomes) = fold_batch(existing, decoded, fold)?;
    let deleted: Vec<Uuid> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Deleted(id) => Some(*id),
            Outcome::Kept => None,
        })
        .collect();
    persist(conn, table, &rows, &deleted).await
}

/// Writes endpoints' rows into `table` (unless newer ones are there) and removes the deleted.
pub async fn persist(
    conn: &mut PgConnection,
    table: &str,
    rows: &[WebhookRow],
    deleted: &[Uuid],
) -> Result<(), ProjectionError> {
    for row in rows.iter().filter(|r| !deleted.contains(&r.id)) {
        sqlx::query(&format!(
            "INSERT INTO {table} ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (id) DO UPDATE SET url = EXCLUDED.url, events = EXCLUDED.events,
                    description = EXCLUDED.description, enabled = EXCLUDED.enabled,
                    include_internal = EXCLUDED.include_internal, disabled = EXCLUDED.disabled,
                    updated_at = EXCLUDED.updated_at, version = EXCLUDED.version
              WHERE {table}.version < EXCLUDED.version"
        ))
        .bind(row.id)
        .bind(&row.url)
        .bind(&row.events)
        .bind(&row.description)
        .bind(row.enabled)
        .bind(row.include_internal)
        .bind(&row.disabled)
        .bind(row.created_at)
        .bind(row.updated_at)
        .bind(row.version)
        .execute(&mut *conn)
        .await?;
    }
    if !deleted.is_empty() {
        sqlx::query(&format!("DELETE FROM {table} WHERE id = ANY($1)"))
            .bind(deleted)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The projector for `webhooks_view`.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebhooksProjection;

impl Projection for WebhooksProjection {
    const NAME: &'static str = "webhooks";
    const METADATA: crate::log::Metadata = crate::log::Metadata::Skip;
    const AGGREGATE_TYPES: &'static [&'static str] = &["webhook"];
    type Rebuild = ();
    const TABLES: &'static [&'static str] = &["webhooks_view"];

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        apply(conn, "webhooks_view", Decoded::<WebhookEvent>::new(events)?).await
    }
}

/// Every endpoint, oldest first.
pub async fn list<'e, E: PgExecutor<'e>>(executor: E) -> Result<Vec<WebhookRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM webhooks_view ORDER BY created_at, id"
    ))
    .fetch_all(executor)
    .await
}

/// One endpoint.
pub async fn get<'e, E: PgExecutor<'e>>(
    executor: E,
    id: Uuid,
) -> Result<Option<WebhookRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM webhooks_view WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(executor)
    .await
}

/// The dispatcher's copy of every endpoint, as of its checkpoint (read inside its batch).
pub async fn subscriptions(conn: &mut PgConnection) -> Result<Vec<WebhookRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM webhook_subscriptions ORDER BY id"
    ))
    .fetch_all(&mut *conn)
    .await
}
