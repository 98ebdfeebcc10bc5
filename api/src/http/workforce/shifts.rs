//! `/api/shifts`: when agents work, and their breaks.

use docket_domain::workforce::shift::BreakWindow;
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use uuid::Uuid;

use super::{BreakRequest, Created, ShiftDto, StartShiftRequest, Written, note};
use crate::app::workforce::{self, ShiftStart};
use crate::app::{Origin, SharedApp};
use crate::http::ApiTags;
use crate::http::json::JsonBody;
use crate::http::principal::{BearerAuth, consistency_token};
use crate::http::problem::ApiError;

#[derive(Default)]
pub struct ShiftsApi;

#[OpenApi(tag = "ApiTags::Agents")]
impl ShiftsApi {
    /// Start a shift: for yourself, or (managers, admins) for an agent. Starting also makes
    /// the agent `available` unless `set_available` is false. An agent has one shift at a time.
    #[oai(
        path = "/api/shifts/start",
        method = "post",
        operation_id = "start_shift"
    )]
    async fn start(
        &self,
        auth: BearerAuth,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        body: JsonBody<StartShiftRequest>,
    ) -> Result<Created<ShiftDto>, ApiError> {
        let start = ShiftStart {
            agent_id: body.0.agent_id,
            scheduled_end: body.0.scheduled_end,
            set_available: body.0.set_available.unwrap_or(true),
        };
        let started = workforce::start_shift(&app, &auth.0, &origin, start).await?;
        Ok(Created::Created(
            Json(started.value.into()),
            consistency_token(started.position),
        ))
    }

    /// End a running shift (its agent, managers, admins). The agent goes `offline`.
    #[oai(
        path = "/api/shifts/:id/end",
        method = "post",
        operation_id = "end_shift"
    )]
    async fn end(
        &self,
        auth: BearerAuth,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
    ) -> Result<Written<ShiftDto>, ApiError> {
        let ended = workforce::end_shift(&app, &auth.0, &origin, id.0).await?;
        Ok(Written::Ok(
            Json(ended.value.into()),
            consistency_token(ended.position),
        ))
    }

    /// Schedule a break in a running shift; the agent is not routed to during it.
    #[oai(
        path = "/api/shifts/:id/breaks",
        method = "post",
        operation_id = "schedule_break"
    )]
    async fn schedule_break(
        &self,
        auth: BearerAuth,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
        body: JsonBody<BreakRequest>,
    ) -> Result<Created<ShiftDto>, ApiError> {
        let reason = note(body.0.reason.as_deref(), "reason")?;
        let window = BreakWindow {
            starts_at: body.0.starts_at,
            ends_at: body.0.ends_at,
        };
        let scheduled =
            workforce::schedule_break(&app, &auth.0, &origin, id.0, window, reason).await?;
        Ok(Created::Created(
            Json(scheduled.value.into()),
            consistency_token(scheduled.position),
        ))
    }

    /// An agent's shifts, newest first (staff).
    #[oai(
        path = "/api/shifts/agent/:agent_id",
        method = "get",
        operation_id = "list_agent_shifts"
    )]
    async fn of_agent(
        &self,
        auth: BearerAuth,
        app: Data<&SharedApp>,
        agent_id: Path<Uuid>,
        /// At most this many (default 50, at most 500).
        limit: Query<Option<i64>>,
    ) -> Result<Json<Vec<ShiftDto>>, ApiError> {
        let limit = limit.0.unwrap_or(50).clamp(1, 500);
        let shifts = workforce::agent_shifts(&app, &auth.0, agent_id.0, limit).await?;
        Ok(Json(shifts.into_iter().map(ShiftDto::from).collect()))
    }
}
