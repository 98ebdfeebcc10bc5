//! `/api/webhooks`: endpoints that receive ticket events, signed as Standard Webhooks
//! (administrators).

use docket_domain::values::{EventKind, Note};
use docket_domain::webhook::{Subscriptions, WebhookChange, WebhookSettings, WebhookUrl};
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;
use uuid::Uuid;

use crate::app::outbound::webhooks::{self, AttemptView, DeliveryView, WebhookView};
use crate::app::{Origin, SharedApp};
use crate::http::json::JsonBody;
use crate::http::paging::{Page, Paging};
use crate::http::principal::SignedIn;
use crate::http::problem::ApiError;
use crate::http::wire::{Timestamp, default_page, default_page_size};
use crate::http::{ApiTags, etag, if_match, invalid};

/// An endpoint and how it is doing.
#[derive(Debug, Clone, Object)]
pub struct WebhookDto {
    pub id: Uuid,
    pub url: String,
    /// What it receives: `ticket.created`, `ticket.updated`, `ticket.status_changed`,
    /// `ticket.priority_changed`, `ticket.assigned`, `ticket.escalated`, `ticket.resolved`,
    /// `comment.added`, `sla.warning`, `sla.breached`.
    pub events: Vec<String>,
    pub description: Option<String>,
    /// Switched on by whoever configures it.
    pub enabled: bool,
    /// Internal comments are sent too (`comment.added`); otherwise left out.
    pub include_internal: bool,
    /// `active`; `paused` (switched off); or `disabled` (Docket stopped on its own: see
    /// `disabled_reason`; enable it again with `PATCH … {"enabled": true}`).
    pub state: String,
    /// `gone` (it answered 410) or `failing` (no success for `DOCKET_WEBHOOK_DISABLE_AFTER`).
    pub disabled_reason: Option<String>,
    /// Deliveries have failed since then, with no success.
    pub failing_since: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// For `If-Match`.
    pub version: i64,
}

impl From<WebhookView> for WebhookDto {
    fn from(view: WebhookView) -> Self {
        let w = view.webhook;
        let disabled_reason = w
            .disabled
            .as_ref()
            .and_then(|d| d["reason"].as_str())
            .map(str::to_string);
        let state = if disabled_reason.is_some() {
            "disabled"
        } else if w.enabled {
            "active"
        } else {
            "paused"
        };
        Self {
            id: w.id,
            url: w.url,
            events: w.events,
            description: w.description,
            enabled: w.enabled,
            include_internal: w.include_internal,
            state: state.to_string(),
            disabled_reason,
            failing_since: view.failing_since.map(Timestamp),
            last_success_at: view.last_success_at.map(Timestamp),
            created_at: w.created_at.into(),
            updated_at: w.updated_at.into(),
            version: w.version,
        }
    }
}

/// An endpoint just added, with its signing secret (shown this once).
#[derive(Debug, Clone, Object)]
pub struct NewWebhookDto {
    /// `whsec_…`: verify every delivery's `webhook-signature` with it. Never shown again;
    /// `POST /api/webhooks/{id}/rotate-secret` makes a new one.
    pub secret: String,
    #[oai(flatten)]
    pub webhook: WebhookDto,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// Where to post: an `https://` (or `http://`) address. Private and local addresses are
    /// refused unless the server allows them.
    #[oai(validator(max_length = 2000))]
    pub url: String,
    /// What to send (see `WebhookDto.events`); at least one.
    pub events: Vec<String>,
    #[oai(validator(max_length = 500))]
    pub description: Option<String>,
    /// Default `true`.
    pub enabled: Option<bool>,
    /// Send internal comments too. Default `false`.
    pub include_internal: Option<bool>,
}

/// Only the fields present change; `description: null` clears it.
#[derive(Debug, Clone, Default, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhookRequest {
    #[oai(validator(max_length = 2000))]
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    #[serde(default)]
    pub description: MaybeUndefined<String>,
    /// `true` also brings back an endpoint Docket disabled, and sends what waited for it.
    pub enabled: Option<bool>,
    pub include_internal: Option<bool>,
}

#[derive(Debug, Clone, Object)]
pub struct RotatedSecretDto {
    /// The new `whsec_…` secret, shown this once.
    pub secret: String,
    /// Until then the previous secret signs beside the new one (two signatures in
    /// `webhook-signature`), so receivers can switch without missing a delivery.
    pub previous_valid_until: Timestamp,
}

#[derive(Debug, Clone, Object)]
pub struct AttemptDto {
    pub attempt: i32,
    pub started_at: Timestamp,
    pub duration_ms: i32,
    /// The receiver's status; absent when it could not be reached.
    pub status_code: Option<i32>,
    pub error: Option<String>,
    /// The first KiB of the receiver's answer.
    pub response: Option<String>,
}

impl From<AttemptView> for AttemptDto {
    fn from(a: AttemptView) -> Self {
        Self {
            attempt: a.attempt,
            started_at: a.started_at.into(),
            duration_ms: a.duration_ms,
            status_code: a.status_code.map(i32::from),
            error: a.error,
            response: a.response_excerpt,
        }
    }
}

/// One message to the endpoint, with every attempt.
#[derive(Debug, Clone, Object)]
pub struct DeliveryDto {
    pub id: Uuid,
    /// The `webhook-id` header: the same on every attempt and redelivery.
    pub message_id: String,
    /// `ticket.created`, …, or `webhook.ping`.
    #[oai(rename = "type")]
    pub event_type: String,
    /// The log position of the event it tells of.
    pub position: Option<i64>,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: Vec<AttemptDto>,
    pub next_attempt_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

impl From<DeliveryView> for DeliveryDto {
    fn from(d: DeliveryView) -> Self {
        Self {
            id: d.id,
            message_id: d.message_id,
            event_type: d.event_type,
            position: d.position,
            state: d.state,
            attempts: d.tries.into_iter().map(AttemptDto::from).collect(),
            next_attempt_at: d.next_attempt_at.map(Timestamp),
            delivered_at: d.delivered_at.map(Timestamp),
            created_at: d.created_at.into(),
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct QueuedDto {
    pub delivery_id: Uuid,
}

#[derive(ApiResponse)]
pub enum WebhookCreated {
    /// Added; `secret` is shown only now.
    #[oai(status = 201)]
    Created(
        Json<NewWebhookDto>,
        #[oai(header = "Location")] String,
        #[oai(header = "ETag")] String,
    ),
}

#[derive(ApiResponse)]
pub enum WebhookFound {
    #[oai(status = 200)]
    Ok(Json<WebhookDto>, #[oai(header = "ETag")] String),
}

#[derive(ApiResponse)]
pub enum WebhookDeleted {
    /// Removed: nothing more is sent to it.
    #[oai(status = 204)]
    NoContent,
}

#[derive(ApiResponse)]
pub enum Queued {
    /// Queued: the deliverer sends it in a moment; see the endpoint's deliveries.
    #[oai(status = 202)]
    Accepted(Json<QueuedDto>, #[oai(header = "Location")] String),
}

fn found(view: WebhookView) -> WebhookFound {
    let tag = etag(view.webhook.version);
    WebhookFound::Ok(Json(view.into()), tag)
}

fn kinds(raw: &[String]) -> Result<Subscriptions, ApiError> {
    let kinds = raw
        .iter()
        .enumerate()
        .map(|(index, text)| {
            text.parse::<EventKind>()
                .map_err(|e| ApiError::validation(format!("events[{index}]"), e.reason))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Subscriptions::new(&kinds).map_err(invalid)
}

fn description(raw: Option<&str>) -> Result<Option<Note>, ApiError> {
    raw.map(|text| Note::parse_field("description", text))
        .transpose()
        .map_err(invalid)
}

#[derive(Default)]
pub struct WebhooksApi;

#[OpenApi(tag = "ApiTags::Webhooks")]
impl WebhooksApi {
    /// Add an endpoint (administrators). Its signing secret is in the answer, once.
    #[oai(
        path = "/api/webhooks",
        method = "post",
        operation_id = "create_webhook"
    )]
    async fn create(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        body: JsonBody<CreateWebhookRequest>,
    ) -> Result<WebhookCreated, ApiError> {
        let request = body.0;
        let settings = WebhookSettings {
            url: WebhookUrl::parse(&request.url).map_err(invalid)?,
            events: kinds(&request.events)?,
            description: description(request.description.as_deref())?,
            enabled: request.enabled.unwrap_or(true),
            include_internal: request.include_internal.unwrap_or(false),
        };
        let (view, secret) = webhooks::create(&app, &auth.0, &origin, settings).await?;
        let location = format!("/api/webhooks/{}", view.webhook.id);
        let tag = etag(view.webhook.version);
        Ok(WebhookCreated::Created(
            Json(NewWebhookDto {
                secret: secret.expose().to_string(),
                webhook: view.into(),
            }),
            location,
            tag,
        ))
    }

    /// Every endpoint (administrators).
    #[oai(path = "/api/webhooks", method = "get", operation_id = "list_webhooks")]
    async fn list(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        /// 1-based page number.
        #[oai(
            default = "default_page",
            validator(minimum(value = "1"), maximum(value = "1000000"))
        )]
        page: Query<i64>,
        /// Items per page, at most 100.
        #[oai(
            default = "default_page_size",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        page_size: Query<i64>,
    ) -> Result<Json<Page<WebhookDto>>, ApiError> {
        let all = webhooks::list(&app, &auth.0).await?;
        Ok(Json(Page::of(all, Paging::new(page.0, page_size.0))))
    }

    /// One endpoint (administrators).
    #[oai(
        path = "/api/webhooks/:id",
        method = "get",
        operation_id = "get_webhook"
    )]
    async fn get(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        id: Path<Uuid>,
    ) -> Result<WebhookFound, ApiError> {
        Ok(found(webhooks::get(&app, &auth.0, id.0).await?))
    }

    /// Change an endpoint (administrators); only the fields sent change.
    #[oai(
        path = "/api/webhooks/:id",
        method = "patch",
        operation_id = "update_webhook"
    )]
    async fn update(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
        /// The version you read (`ETag`); a changed endpoint answers 412.
        #[oai(name = "If-Match")]
        expected: Header<Option<String>>,
        body: JsonBody<UpdateWebhookRequest>,
    ) -> Result<WebhookFound, ApiError> {
        let expected = if_match(expected.0.as_deref())?;
        let request = body.0;
        let change = WebhookChange {
            url: request
                .url
                .as_deref()
                .map(WebhookUrl::parse)
                .transpose()
                .map_err(invalid)?,
            events: request.events.as_deref().map(kinds).transpose()?,
            description: match request.description {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(text) => Some(description(Some(&text))?),
            },
            enabled: request.enabled,
            include_internal: request.include_internal,
        };
        let view = webhooks::update(&app, &auth.0, &origin, id.0, change, expected).await?;
        Ok(found(view))
    }

    /// Remove an endpoint (administrators).
    #[oai(
        path = "/api/webhooks/:id",
        method = "delete",
        operation_id = "delete_webhook"
    )]
    async fn delete(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
    ) -> Result<WebhookDeleted, ApiError> {
        webhooks::delete(&app, &auth.0, &origin, id.0).await?;
        Ok(WebhookDeleted::NoContent)
    }

    /// Make a new signing secret (administrators). For 24 hours deliveries carry signatures by
    /// both the new and the previous secret.
    #[oai(
        path = "/api/webhooks/:id/rotate-secret",
        method = "post",
        operation_id = "rotate_webhook_secret"
    )]
    async fn rotate(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
    ) -> Result<Json<RotatedSecretDto>, ApiError> {
        let secret = webhooks::rotate_secret(&app, &auth.0, &origin, id.0).await?;
        Ok(Json(RotatedSecretDto {
            secret: secret.expose().to_string(),
            previous_valid_until: (app.time.now() + webhooks::ROTATION_OVERLAP).into(),
        }))
    }

    /// Send a `webhook.ping` to the endpoint (administrators).
    #[oai(
        path = "/api/webhooks/:id/test",
        method = "post",
        operation_id = "test_webhook"
    )]
    async fn test(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        id: Path<Uuid>,
    ) -> Result<Queued, ApiError> {
        let delivery = webhooks::send_test(&app, &auth.0, id.0).await?;
        Ok(Queued::Accepted(
            Json(QueuedDto {
                delivery_id: delivery,
            }),
            format!("/api/webhooks/{}/deliveries", id.0),
        ))
    }

    /// The endpoint's deliveries, newest first, each with every attempt (administrators).
    #[oai(
        path = "/api/webhooks/:id/deliveries",
        method = "get",
        operation_id = "list_webhook_deliveries"
    )]
    async fn deliveries(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        id: Path<Uuid>,
        /// 1-based page number.
        #[oai(
            default = "default_page",
            validator(minimum(value = "1"), maximum(value = "1000000"))
        )]
        page: Query<i64>,
        /// Items per page, at most 100.
        #[oai(
            default = "default_page_size",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        page_size: Query<i64>,
    ) -> Result<Json<Page<DeliveryDto>>, ApiError> {
        let (found, total) = webhooks::deliveries(&app, &auth.0, id.0, page.0, page_size.0).await?;
        Ok(Json(Page::read(
            found,
            total,
            Paging::new(page.0, page_size.0),
        )))
    }

    /// Send a delivery again, with the same `webhook-id` (administrators).
    #[oai(
        path = "/api/webhooks/:id/deliveries/:delivery_id/redeliver",
        method = "post",
        operation_id = "redeliver_webhook"
    )]
    async fn redeliver(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        id: Path<Uuid>,
        delivery_id: Path<Uuid>,
    ) -> Result<Queued, ApiError> {
        webhooks::redeliver(&app, &auth.0, id.0, delivery_id.0).await?;
        Ok(Queued::Accepted(
            Json(QueuedDto {
                delivery_id: delivery_id.0,
            }),
            format!("/api/webhooks/{}/deliveries", id.0),
        ))
    }
}
