//! `/api/shifts`: when agents work, and their breaks.

use docket_domain::workforce::shift::BreakWindow;
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use uuid::Uuid;

use super::{BreakRequest, Created, ShiftDto, StartShiftRequest, Versioned, Written, note};
use crate::app::workforce::{self, ShiftStart};
use crate::app::{Origin, SharedApp};
use crate::http::ApiTags;
use crate::http::etag;
use crate::http::json::JsonBody;
use crate::http::paging::{Page, Paging};
use crate::http::principal::SignedIn;
use crate::http::problem::ApiError;
use crate::http::wire::{default_page, default_page_size};

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
        auth: SignedIn,
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
        let location = format!("/api/shifts/{}", started.value.id);
        Ok(Created::of(started, location))
    }

    /// End a running shift (its agent, managers, admins). The agent goes `offline`.
    #[oai(
        path = "/api/shifts/:id/end",
        method = "post",
        operation_id = "end_shift"
    )]
    async fn end(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
    ) -> Result<Written<ShiftDto>, ApiError> {
        let ended = workforce::end_shift(&app, &auth.0, &origin, id.0).await?;
        Ok(Written::of(ended))
    }

    /// Schedule a break in a running shift; the agent is not routed to during it.
    #[oai(
        path = "/api/shifts/:id/breaks",
        method = "post",
        operation_id = "schedule_break"
    )]
    async fn schedule_break(
        &self,
        auth: SignedIn,
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
        // A break is part of its shift, which is where it is read.
        let location = format!("/api/shifts/{}", scheduled.value.id);
        Ok(Created::of(scheduled, location))
    }

    /// An agent's shifts, newest first (staff).
    #[oai(
        path = "/api/shifts/agent/:agent_id",
        method = "get",
        operation_id = "list_agent_shifts"
    )]
    async fn of_agent(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        agent_id: Path<Uuid>,
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
    ) -> Result<Json<Page<ShiftDto>>, ApiError> {
        let (shifts, total) =
            workforce::agent_shifts(&app, &auth.0, agent_id.0, page.0, page_size.0).await?;
        Ok(Json(Page::read(
            shifts,
            total,
            Paging::new(page.0, page_size.0),
        )))
    }

    /// One shift with its breaks (staff).
    #[oai(path = "/api/shifts/:id", method = "get", operation_id = "get_shift")]
    async fn get(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        id: Path<Uuid>,
    ) -> Result<Versioned<ShiftDto>, ApiError> {
        let (shift, version) = workforce::shift(&app, &auth.0, id.0).await?;
        Ok(Versioned::Ok(Json(shift.into()), etag(version)))
    }
}
