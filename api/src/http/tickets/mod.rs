//! `/api/tickets`: open, list, read, edit, move, assign, escalate, comment, and the history.
//!
//! Each handler turns the request into domain values, calls `app::tickets`, and turns the
//! outcome into a response. Writes answer from the aggregate's new state, reads from the
//! `tickets` projection (after it includes the caller's own writes).

pub mod wire;

use chrono::{DateTime, Utc};
use docket_domain::values::{CommentBody, Reason};
use docket_domain::{Priority, TicketStatus};
use docket_projections::tickets::{TicketFilter, TicketSort};
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use uuid::Uuid;

use crate::app::tickets as service;
use crate::app::{Origin, SharedApp};
use crate::http::json::JsonBody;
use crate::http::principal::BearerAuth;
use crate::http::problem::ApiError;
use crate::http::wire::{default_page, default_page_size};
use crate::http::{ApiTags, comma_list, if_match, invalid};
pub use wire::*;

#[derive(Default)]
pub struct TicketsApi;

#[OpenApi(tag = "ApiTags::Tickets")]
impl TicketsApi {
    /// Open a ticket. Customers open tickets for themselves; agents, managers and admins for
    /// a customer named by `customer_id`.
    #[oai(path = "/api/tickets", method = "post", operation_id = "create_ticket")]
    async fn create(
        &self,
        auth: BearerAuth,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        body: JsonBody<CreateTicketRequest>,
    ) -> Result<TicketCreated, ApiError> {
        let ticket = body.0.ticket()?;
        let written = service::open(&app, &auth.0, &origin, ticket).await?;
        Ok(TicketCreated::created(written))
    }

    /// List tickets, newest first unless sorted otherwise. Customers see only their own.
    #[oai(path = "/api/tickets", method = "get", operation_id = "list_tickets")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        auth: BearerAuth,
        app: Data<&SharedApp>,
        /// Comma list of statuses, e.g. `open,pending`.
        status: Query<Option<String>>,
        /// Comma list of priorities, e.g. `critical,high`.
        priority: Query<Option<String>>,
        assignee_id: Query<Option<Uuid>>,
        /// Assigned to this team.
        team_id: Query<Option<Uuid>>,
        customer_id: Query<Option<Uuid>>,
        #[oai(validator(max_length = 100))] category: Query<Option<String>>,
        #[oai(validator(max_length = 50))] tag: Query<Option<String>>,
        /// Full text over subject, description and comments (web-search syntax).
        #[oai(validator(max_length = 500))]
        q: Query<Option<String>>,
        /// Created at or after this instant.
        created_from: Query<Option<DateTime<Utc>>>,
        /// Created before this instant.
        created_to: Query<Option<DateTime<Utc>>>,
        /// Comma list of SLA states: `running`, `paused`, `at_risk`, `breached`, `met`.
        #[oai(validator(max_length = 60))]
        sla_state: Query<Option<String>>,
        /// Only tickets that have (`true`) or have not (`false`) breached an SLA target.
        sla_breached: Query<Option<bool>>,
        /// `created_at`, `updated_at`, `priority`, `number` or `sla_due_at`; prefix `-` for
        /// descending. Default `-created_at`.
        #[oai(validator(max_length = 20))]
        sort: Query<Option<String>>,
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
    ) -> Result<Json<TicketPage>, ApiError> {
        let filter = TicketFilter {
            statuses: comma_list::<TicketStatus>("status", status.0.as_deref())?,
            priorities: comma_list::<Priority>("priority", priority.0.as_deref())?,
            assignee_id: assignee_id.0,
            team_id: team_id.0,
            customer_id: customer_id.0,
            category: category.0,
            tag: tag.0,
            text: q.0.filter(|q| !q.trim().is_empty()),
            sla_states: comma_list("sla_state", sla_state.0.as_deref())?,
            sla_breached: sla_breached.0,
            created_from: created_from.0,
            created_to: created_to.0,
            sort: ticket_sort(sort.0.as_deref())?,
            page: page.0,
            page_size: page_size.0,
            ..TicketFilter::default()
        };
        let found = service::list(&app, &auth.0, filter).await?;
        Ok(Json(TicketPage {
            items: found.items.into_iter().map(TicketDto::from).collect(),
            total: found.total,
            page: page.0,
            page_size: page_size.0,
        }))
    }

    /// One ticket with its comments.
    #[oai(path = "/api/tickets/:id", method = "get", operation_id = "get_ticket")]
    async fn get(
        &self,
        auth: BearerAuth,
        app: Data<&SharedApp>,
        id: Path<Uuid>,
        /// Wait (briefly) until the ticket is at least at this version.
        #[oai(validator(minimum(value = "0")))]
        min_version: Query<Option<i64>>,
    ) -> Result<TicketRead, ApiError> {
        let detail = service::get(&app, &auth.0, id.0, min_version.0).await?;
        Ok(TicketRead::of(detail))
    }

    /// Edit subject, description, priority, category or tags (agents, managers, admins).
    #[oai(
        path = "/api/tickets/:id",
        method = "patch",
        operation_id = "update_ticket"
    )]
    async fn update(
        &self,
        auth: BearerAuth,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
        /// Refuse (412) unless the ticket is still at this ETag.
        #[oai(name = "If-Match")]
        expected: Header<Option<String>>,
        body: JsonBody<UpdateTicketRequest>,
    ) -> Result<TicketWritten, ApiError> {
        let change = body.0.change()?;
        let expected = if_match(expected.0.as_deref())?;
        let written = service::update(&app, &auth.0, &origin, id.0, expected, change).await?;
        Ok(TicketWritten::ok(written))
    }

    /// Move a ticket to another status. Customers may only reopen (`open`) their own resolved
    /// or closed tickets.
    #[oai(
        path = "/api/tickets/:id/status",
        method = "patch",
        operation_id = "change_ticket_status"
    )]
    async fn change_status(
        &self,
        auth: BearerAuth,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
        #[oai(name = "If-Match")] expected: Header<Option<String>>,
        body: JsonBody<ChangeStatusRequest>,
    ) -> Result<TicketWritten, ApiError> {
        let request = body.0;
        let comment = request
            .comment
            .as_deref()
            .map(|c| CommentBody::parse_field("comment", c))
            .transpose()
            .map_err(invalid)?;
        let expected = if_match(expected.0.as_deref())?;
        let to = request.status.into();
        let written =
            service::change_status(&app, &auth.0, &origin, id.0, expected, to, comment).await?;
        Ok(TicketWritten::ok(written))
    }

    /// Assign a ticket to an active agent or manager.
    #[oai(
        path = "/api/tickets/:id/assign",
        method = "post",
        operation_id = "assign_ticket"
    )]
    async fn assign(
        &self,
        auth: BearerAuth,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
        #[oai(name = "If-Match")] expected: Header<Option<String>>,
        body: JsonBody<AssignRequest>,
    ) -> Result<TicketWritten, ApiError> {
        let request = body.0;
        let reason = request
            .reason
            .as_deref()
            .map(Reason::parse)
            .transpose()
            .map_err(invalid)?;
        let expected = if_match(expected.0.as_deref())?;
        let written = service::assign(
            &app,
            &auth.0,
            &origin,
            id.0,
            expected,
            request.agent_id,
            reason,
        )
        .await?;
        Ok(TicketWritten::ok(written))
    }

    /// Escalate: raises `escalation_level` by one and, with `escalate_to`, reassigns.
    #[oai(
        path = "/api/tickets/:id/escalate",
        method = "post",
        operation_id = "escalate_ticket"
    )]
    async fn escalate(
        &self,
        auth: BearerAuth,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
        #[oai(name = "If-Match")] expected: Header<Option<String>>,
        body: JsonBody<EscalateRequest>,
    ) -> Result<TicketWritten, ApiError> {
        let request = body.0;
        let reason = Reason::parse(&request.reason).map_err(invalid)?;
        let expected = if_match(expected.0.as_deref())?;
        let written = service::escalate(
            &app,
            &auth.0,
            &origin,
            id.0,
            expected,
            reason,
            request.escalate_to,
        )
        .await?;
        Ok(TicketWritten::ok(written))
    }

    /// Add a comment. Customers comment on their own tickets and never internally.
    #[oai(
        path = "/api/tickets/:id/comments",
        method = "post",
        operation_id = "add_comment"
    )]
    async fn comment(
        &self,
        auth: BearerAuth,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
        #[oai(name = "If-Match")] expected: Header<Option<String>>,
        body: JsonBody<CommentRequest>,
    ) -> Result<CommentCreated, ApiError> {
        let request = body.0;
        let text = CommentBody::parse(&request.body).map_err(invalid)?;
        let expected = if_match(expected.0.as_deref())?;
        let added = service::comment(
            &app,
            &auth.0,
            &origin,
            id.0,
            expected,
            text,
            request.internal,
        )
        .await?;
        Ok(CommentCreated::created(added))
    }

    /// A ticket's comments, in order. Customers never see internal ones.
    #[oai(
        path = "/api/tickets/:id/comments",
        method = "get",
        operation_id = "list_comments"
    )]
    async fn comments(
        &self,
        auth: BearerAuth,
        app: Data<&SharedApp>,
        id: Path<Uuid>,
        #[oai(validator(minimum(value = "0")))] min_version: Query<Option<i64>>,
    ) -> Result<Json<Vec<CommentDto>>, ApiError> {
        let comments = service::comments(&app, &auth.0, id.0, min_version.0).await?;
        Ok(Json(comments.into_iter().map(CommentDto::from).collect()))
    }

    /// Everything that happened to the ticket, in order, straight from the event log.
    /// The ticket's customer sees it without internal events.
    #[oai(
        path = "/api/tickets/:id/history",
        method = "get",
        operation_id = "ticket_history"
    )]
    async fn history(
        &self,
        auth: BearerAuth,
        app: Data<&SharedApp>,
        id: Path<Uuid>,
    ) -> Result<Json<TicketHistory>, ApiError> {
        let events = service::history(&app, &auth.0, id.0).await?;
        Ok(Json(TicketHistory {
            ticket_id: id.0,
            events: events
                .iter()
                .map(|(event, payload)| HistoryEntry::of(event, payload))
                .collect(),
        }))
    }

    /// How long the ticket spent in each status, from its events.
    #[oai(
        path = "/api/tickets/:id/timeline",
        method = "get",
        operation_id = "ticket_timeline"
    )]
    async fn timeline(
        &self,
        auth: BearerAuth,
        app: Data<&SharedApp>,
        id: Path<Uuid>,
    ) -> Result<Json<TicketTimeline>, ApiError> {
        let periods = service::timeline(&app, &auth.0, id.0).await?;
        Ok(Json(TicketTimeline {
            ticket_id: id.0,
            periods: periods.into_iter().map(StatusPeriodDto::from).collect(),
        }))
    }
}

/// `-created_at` unless asked otherwise.
fn ticket_sort(raw: Option<&str>) -> Result<TicketSort, ApiError> {
    match raw {
        None => Ok(TicketSort::CreatedDesc),
        Some(text) => TicketSort::parse(text).ok_or_else(|| ApiError::InvalidParameter {
            field: "sort".into(),
            detail:
                "use created_at, updated_at, priority, number or sla_due_at, with - for descending"
                    .into(),
        }),
    }
}
