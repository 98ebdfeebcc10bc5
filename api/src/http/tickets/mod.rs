//! `/api/tickets`: open, list, read, edit, move, assign, escalate, comment, and the history.
//!
//! Each handler turns the request into domain values, calls `app::tickets`, and turns the
//! outcome into a response. Writes answer from the aggregate's new state, reads from the
//! `tickets` projection (after it includes the caller's own writes).

pub mod wire;

use chrono::{DateTime, Utc};
use docket_domain::values::{CommentBody, Reason, TicketNumber};
use docket_domain::{Priority, TicketStatus};
use docket_projections::tickets::{TicketFilter, TicketSort};
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use uuid::Uuid;

use crate::app::tickets as service;
use crate::app::{Origin, SharedApp};
use crate::http::json::JsonBody;
use crate::http::paging::{Page, Paging};
use crate::http::principal::SignedIn;
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
        auth: SignedIn,
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
        auth: SignedIn,
        app: Data<&SharedApp>,
        /// Comma list of statuses, e.g. `open,pending`.
        status: Query<Option<String>>,
        /// Comma list of priorities, e.g. `critical,high`.
        priority: Query<Option<String>>,
        /// Held by this agent; `me` for the caller, `none` for tickets nobody holds.
        #[oai(validator(max_length = 40))]
        assignee_id: Query<Option<String>>,
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
        /// Last changed at or after this instant.
        updated_from: Query<Option<DateTime<Utc>>>,
        /// Last changed before this instant.
        updated_to: Query<Option<DateTime<Utc>>>,
        /// The ticket with this number (`TKT-000051` or `51`).
        #[oai(validator(max_length = 20))]
        number: Query<Option<String>>,
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
        /// The page's ETag from an earlier read: 304 if nothing on it changed.
        #[oai(name = "If-None-Match")]
        if_none_match: Header<Option<String>>,
    ) -> Result<TicketList, ApiError> {
        let assignee = AssigneeFilter::parse(assignee_id.0.as_deref(), auth.0.id.0)?;
        let filter = TicketFilter {
            statuses: comma_list::<TicketStatus>("status", status.0.as_deref())?,
            priorities: comma_list::<Priority>("priority", priority.0.as_deref())?,
            assignee_id: assignee.held_by,
            unassigned: assignee.nobody,
            team_id: team_id.0,
            customer_id: customer_id.0,
            category: category.0,
            tag: tag.0,
            text: q.0.filter(|q| !q.trim().is_empty()),
            text_names_number: true,
            sla_states: comma_list("sla_state", sla_state.0.as_deref())?,
            sla_breached: sla_breached.0,
            created_from: created_from.0,
            created_to: created_to.0,
            updated_from: updated_from.0,
            updated_to: updated_to.0,
            number: ticket_number(number.0.as_deref())?,
            sort: ticket_sort(sort.0.as_deref())?,
            page: page.0,
            page_size: page_size.0,
            ..TicketFilter::default()
        };
        let found = service::list(&app, &auth.0, filter).await?;
        let page = TicketPage {
            items: found.items.into_iter().map(TicketDto::from).collect(),
            total: found.total,
            page: page.0,
            page_size: page_size.0,
        };
        Ok(TicketList::of(page, if_none_match.0.as_deref()))
    }

    /// One ticket with its comments.
    #[oai(path = "/api/tickets/:id", method = "get", operation_id = "get_ticket")]
    async fn get(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        /// The ticket's id, or its number (`TKT-000051`, `51`).
        id: Path<String>,
        /// Wait (briefly) until the ticket is at least at this version.
        #[oai(validator(minimum(value = "0")))]
        min_version: Query<Option<i64>>,
        /// The ETag of an earlier read: 304 if the ticket is still at that version.
        #[oai(name = "If-None-Match")]
        if_none_match: Header<Option<String>>,
    ) -> Result<TicketRead, ApiError> {
        let reference =
            service::TicketRef::recognise(&id.0).ok_or_else(|| ApiError::InvalidParameter {
                field: "id".into(),
                detail: "must be a ticket id (a UUID) or number (such as TKT-000051)".into(),
            })?;
        let detail = service::get(&app, &auth.0, reference, min_version.0).await?;
        Ok(TicketRead::of(detail, if_none_match.0.as_deref()))
    }

    /// Edit subject, description, priority, category or tags (agents, managers, admins).
    #[oai(
        path = "/api/tickets/:id",
        method = "patch",
        operation_id = "update_ticket"
    )]
    async fn update(
        &self,
        auth: SignedIn,
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
        auth: SignedIn,
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
        auth: SignedIn,
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
        let (caller, ticket) = (&auth.0, id.0);
        let written = match request.agent_id {
            MaybeUndefined::Value(agent) => {
                service::assign(&app, caller, &origin, ticket, expected, agent, reason).await?
            }
            MaybeUndefined::Undefined => {
                let me = caller.id.0;
                service::assign(&app, caller, &origin, ticket, expected, me, reason).await?
            }
            MaybeUndefined::Null => {
                service::unassign(&app, caller, &origin, ticket, expected).await?
            }
        };
        Ok(TicketWritten::ok(written))
    }

    /// Take the ticket out of its assignee's hands; it waits in the queue.
    #[oai(
        path = "/api/tickets/:id/assign",
        method = "delete",
        operation_id = "unassign_ticket"
    )]
    async fn unassign(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
        #[oai(name = "If-Match")] expected: Header<Option<String>>,
    ) -> Result<TicketWritten, ApiError> {
        let expected = if_match(expected.0.as_deref())?;
        let written = service::unassign(&app, &auth.0, &origin, id.0, expected).await?;
        Ok(TicketWritten::ok(written))
    }

    /// Put the ticket in a team's hands (`team_id`), or take it out of any team's (`null`).
    #[oai(
        path = "/api/tickets/:id/team",
        method = "put",
        operation_id = "set_ticket_team"
    )]
    async fn set_team(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
        #[oai(name = "If-Match")] expected: Header<Option<String>>,
        body: JsonBody<TicketTeamRequest>,
    ) -> Result<TicketWritten, ApiError> {
        let expected = if_match(expected.0.as_deref())?;
        let written =
            service::assign_team(&app, &auth.0, &origin, id.0, expected, body.0.team_id).await?;
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
        auth: SignedIn,
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
        auth: SignedIn,
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
        auth: SignedIn,
        app: Data<&SharedApp>,
        id: Path<Uuid>,
        #[oai(validator(minimum(value = "0")))] min_version: Query<Option<i64>>,
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
    ) -> Result<Json<Page<CommentDto>>, ApiError> {
        let comments = service::comments(&app, &auth.0, id.0, min_version.0).await?;
        Ok(Json(Page::of(comments, Paging::new(page.0, page_size.0))))
    }

    /// One comment of a ticket. Customers never see internal ones.
    #[oai(
        path = "/api/tickets/:id/comments/:comment_id",
        method = "get",
        operation_id = "get_comment"
    )]
    async fn comment_one(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        id: Path<Uuid>,
        comment_id: Path<Uuid>,
    ) -> Result<Json<CommentDto>, ApiError> {
        let comments = service::comments(&app, &auth.0, id.0, None).await?;
        let comment = comments
            .into_iter()
            .find(|comment| comment.id == comment_id.0)
            .ok_or_else(|| ApiError::not_found("comment"))?;
        Ok(Json(comment.into()))
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
        auth: SignedIn,
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
        auth: SignedIn,
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

/// `assignee_id=<uuid>`, `=me` or `=none`.
struct AssigneeFilter {
    held_by: Option<Uuid>,
    nobody: bool,
}

impl AssigneeFilter {
    fn parse(raw: Option<&str>, me: Uuid) -> Result<Self, ApiError> {
        let (held_by, nobody) = match raw.map(str::trim) {
            None | Some("") => (None, false),
            Some(me_) if me_.eq_ignore_ascii_case("me") => (Some(me), false),
            Some(none) if none.eq_ignore_ascii_case("none") => (None, true),
            Some(id) => (
                Some(Uuid::parse_str(id).map_err(|_| ApiError::InvalidParameter {
                    field: "assignee_id".into(),
                    detail: "must be a user id, `me` or `none`".into(),
                })?),
                false,
            ),
        };
        Ok(Self { held_by, nobody })
    }
}

/// `number=TKT-000051` or `number=51`.
fn ticket_number(raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    raw.map(|text| {
        TicketNumber::recognise(text)
            .map(|n| n.0)
            .ok_or_else(|| ApiError::InvalidParameter {
                field: "number".into(),
                detail: "must be a ticket number such as TKT-000051 or 51".into(),
            })
    })
    .transpose()
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
