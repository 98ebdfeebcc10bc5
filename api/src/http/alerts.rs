//! `/api/alerts`: what needs a person's attention now, and who is on it (staff).

use docket_domain::alert::AlertState;
use docket_projections::alerts::AlertRow;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;
use uuid::Uuid;

use crate::app::{Origin, SharedApp, alerts};
use crate::http::json::JsonBody;
use crate::http::paging::{Page, Paging};
use crate::http::principal::SignedIn;
use crate::http::problem::ApiError;
use crate::http::wire::{Timestamp, default_page, default_page_size};
use crate::http::{ApiTags, etag};

#[derive(Debug, Clone, Object)]
pub struct AlertDto {
    pub id: Uuid,
    /// What it is about; at most one alert per cause is unresolved (`sla_breach:<ticket>`,
    /// `escalation:<ticket>`, `queue_length`, `webhook:<endpoint>`, `projector:<name>`,
    /// `rule:…`).
    pub cause: String,
    /// `sla_breach`, `escalation`, `queue_length`, `webhook_failing`, `projector_stopped` or
    /// `rule`.
    pub kind: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    pub title: String,
    pub detail: Option<String>,
    pub ticket_id: Option<Uuid>,
    /// `active` (nobody answered yet), `acknowledged` or `resolved`.
    pub state: String,
    /// Who raised it (the nil UUID: Docket itself).
    pub raised_by: Uuid,
    pub raised_at: Timestamp,
    pub acknowledged_by: Option<Uuid>,
    pub acknowledged_at: Option<Timestamp>,
    pub acknowledge_note: Option<String>,
    pub resolved_by: Option<Uuid>,
    pub resolved_at: Option<Timestamp>,
    pub resolve_note: Option<String>,
    pub version: i64,
}

impl From<AlertRow> for AlertDto {
    fn from(a: AlertRow) -> Self {
        Self {
            id: a.id,
            cause: a.cause,
            kind: a.kind,
            severity: a.severity,
            title: a.title,
            detail: a.detail,
            ticket_id: a.ticket_id,
            state: a.state,
            raised_by: a.raised_by,
            raised_at: a.raised_at.into(),
            acknowledged_by: a.acknowledged_by,
            acknowledged_at: a.acknowledged_at.map(Timestamp),
            acknowledge_note: a.acknowledge_note,
            resolved_by: a.resolved_by,
            resolved_at: a.resolved_at.map(Timestamp),
            resolve_note: a.resolve_note,
            version: a.version,
        }
    }
}

#[derive(Debug, Clone, Default, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct AnswerRequest {
    /// Why, or what was done (at most 500 characters).
    pub note: Option<String>,
}

#[derive(ApiResponse)]
pub enum Answered {
    /// The alert as it is now; the `ETag` is its version.
    #[oai(status = 200)]
    Ok(Json<AlertDto>, #[oai(header = "ETag")] String),
}

#[derive(Default)]
pub struct AlertsApi;

#[OpenApi(tag = "ApiTags::Alerts")]
impl AlertsApi {
    /// Alerts, newest first (staff).
    #[oai(path = "/api/alerts", method = "get", operation_id = "list_alerts")]
    async fn list(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        /// Only `active`, `acknowledged` or `resolved` alerts.
        state: Query<Option<String>>,
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
    ) -> Result<Json<Page<AlertDto>>, ApiError> {
        let state = state
            .0
            .as_deref()
            .map(|s| {
                s.parse::<AlertState>()
                    .map_err(|_| ApiError::InvalidParameter {
                        field: "state".into(),
                        detail: "must be active, acknowledged or resolved".into(),
                    })
            })
            .transpose()?;
        let (found, total) = alerts::list(&app, &auth.0, state, page.0, page_size.0).await?;
        Ok(Json(Page::read(
            found,
            total,
            Paging::new(page.0, page_size.0),
        )))
    }

    /// One alert (staff).
    #[oai(path = "/api/alerts/:id", method = "get", operation_id = "get_alert")]
    async fn get(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        id: Path<Uuid>,
    ) -> Result<Answered, ApiError> {
        let alert = alerts::get(&app, &auth.0, id.0).await?;
        let tag = etag(alert.version);
        Ok(Answered::Ok(Json(alert.into()), tag))
    }

    /// Say someone is on it (staff who work tickets); an alert already acknowledged or
    /// resolved is 409.
    #[oai(
        path = "/api/alerts/:id/acknowledge",
        method = "post",
        operation_id = "acknowledge_alert"
    )]
    async fn acknowledge(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
        /// `{}` or `{"note": …}`.
        body: JsonBody<AnswerRequest>,
    ) -> Result<Answered, ApiError> {
        let note = body.0.note;
        let alert = alerts::acknowledge(&app, &auth.0, &origin, id.0, note.as_deref()).await?;
        let tag = etag(alert.version);
        Ok(Answered::Ok(Json(alert.into()), tag))
    }

    /// Say it is over (staff who work tickets); an alert already resolved is 409. A new alert
    /// for the same cause may be raised after.
    #[oai(
        path = "/api/alerts/:id/resolve",
        method = "post",
        operation_id = "resolve_alert"
    )]
    async fn resolve(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
        /// `{}` or `{"note": …}`.
        body: JsonBody<AnswerRequest>,
    ) -> Result<Answered, ApiError> {
        let note = body.0.note;
        let alert = alerts::resolve(&app, &auth.0, &origin, id.0, note.as_deref()).await?;
        let tag = etag(alert.version);
        Ok(Answered::Ok(Json(alert.into()), tag))
    }
}
