//! `/api/audit`: the audit trail across all aggregates (staff).

use chrono::{DateTime, Utc};
use docket_projections::audit::{AuditEntry, AuditFilter};
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};
use uuid::Uuid;

use crate::app::{SharedApp, audit as service};
use crate::http::ApiTags;
use crate::http::principal::SignedIn;
use crate::http::problem::ApiError;
use crate::http::tickets::event_data;
use crate::http::wire::Timestamp;

#[derive(Debug, Clone, Object)]
pub struct AuditActor {
    pub id: Option<Uuid>,
    pub role: Option<String>,
    /// The actor is a service account (an integration), not a person.
    pub service: bool,
    /// The API key the change was made with, if it was.
    pub api_key_id: Option<Uuid>,
}

#[derive(Debug, Clone, Object)]
pub struct AuditEntryDto {
    /// The event's global position in the log; also the pagination cursor.
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    /// The event type, such as `TicketCreated` (see `docs/events.md`).
    #[oai(rename = "type")]
    pub event_type: String,
    pub event_version: String,
    pub actor: AuditActor,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub correlation_id: Option<String>,
    /// Business time of the event.
    pub occurred_at: Option<Timestamp>,
    /// When the log recorded it.
    pub recorded_at: Timestamp,
    pub data: serde_json::Value,
}

impl From<AuditEntry> for AuditEntryDto {
    fn from(entry: AuditEntry) -> Self {
        let data = event_data(&entry.aggregate_type, entry.data);
        Self {
            position: entry.position,
            aggregate_type: entry.aggregate_type,
            aggregate_id: entry.aggregate_id,
            sequence: entry.sequence,
            data,
            event_type: entry.event_type,
            event_version: entry.event_version,
            actor: AuditActor {
                id: entry.actor_id,
                role: entry.actor_role,
                service: entry.actor_kind.as_deref() == Some("service"),
                api_key_id: entry.api_key_id,
            },
            ip: entry.ip,
            user_agent: entry.user_agent,
            correlation_id: entry.correlation_id,
            occurred_at: entry.occurred_at.map(Timestamp),
            recorded_at: entry.recorded_at.into(),
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct AuditPage {
    pub items: Vec<AuditEntryDto>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum AuditOrder {
    Asc,
    Desc,
}

#[derive(Default)]
pub struct AuditApi;

#[OpenApi(tag = "ApiTags::Audit")]
impl AuditApi {
    /// Every change to every ticket, account and setting, with who made it, from where, and
    /// the request it came from (staff only). Newest first unless `order=asc`.
    #[oai(path = "/api/audit", method = "get", operation_id = "audit_trail")]
    #[allow(clippy::too_many_arguments)]
    async fn audit(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        actor_id: Query<Option<Uuid>>,
        #[oai(validator(max_length = 100))] aggregate_id: Query<Option<String>>,
        /// Events of this type only, such as `TicketStatusChanged` (the types are listed in
        /// `docs/events.md`).
        #[oai(name = "type", validator(max_length = 100))]
        event_type: Query<Option<String>>,
        /// Occurred at or after.
        from: Query<Option<DateTime<Utc>>>,
        /// Occurred before.
        to: Query<Option<DateTime<Utc>>>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<i64>>,
        order: Query<Option<AuditOrder>>,
        /// Entries per page, at most 200.
        #[oai(
            default = "default_page_size",
            validator(minimum(value = "1"), maximum(value = "200"))
        )]
        page_size: Query<i64>,
    ) -> Result<Json<AuditPage>, ApiError> {
        if let Some(named) = event_type.0.as_deref()
            && !docket_domain::event_type_names().any(|known| known == named)
        {
            return Err(ApiError::InvalidParameter {
                field: "type".into(),
                detail: format!(
                    "`{named}` is no event type; see docs/events.md for the list, such as \
                     TicketCreated or TicketStatusChanged"
                ),
            });
        }
        let filter = AuditFilter {
            actor_id: actor_id.0,
            aggregate_id: aggregate_id.0,
            event_type: event_type.0,
            from: from.0,
            to: to.0,
            cursor: cursor.0,
            newest_first: order.0 != Some(AuditOrder::Asc),
            limit: page_size.0,
        };
        let (entries, next_cursor) = service::page(&app, &auth.0, &filter).await?;
        Ok(Json(AuditPage {
            items: entries.into_iter().map(Into::into).collect(),
            next_cursor,
        }))
    }
}

fn default_page_size() -> i64 {
    50
}
