//! `/api/tickets`: open, list, read, edit, move, assign, escalate, comment, and the history.
//!
//! Handlers are thin: they build domain values from the request, look up the people a command
//! names, send the command, and turn the outcome into a response. Writes answer from the
//! aggregate's new state; reads come from the `tickets` projection.

use chrono::{DateTime, Utc};
use docket_domain::ticket::{
    AddComment, AssignTeam, AssignTicket, ChangeTicketStatus, EscalateTicket, OpenTicket, Ticket,
    TicketCommand, TicketDetailsChange, TicketError, TicketState, UpdateTicketDetails,
    UserStanding, status_timeline,
};
use docket_domain::values::{
    Category, CommentBody, CommentId, Description, Reason, SkillId, SkillName, Subject, Tags,
    TeamId, TicketId, TicketNumber, UserId, ValidationError,
};
use docket_domain::workforce::routing::{RoutingDecision, RoutingRequirements};
use docket_domain::{Priority, TicketStatus};
use docket_projections::log;
use docket_projections::tickets::{self, CommentRow, TicketFilter, TicketRow, TicketSort};
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;
use uuid::Uuid;

use super::types::{PriorityDto, RoleDto, StatusDto};
use super::users::{default_page, default_page_size};
use super::{ApiTags, consistency_token, etag, parse_consistency_token, parse_if_match};
use crate::accounts;
use crate::auth::{AuthUser, BearerAuth};
use crate::commands::{CommandError, Committed};
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::json::JsonBody;
use crate::state::{AppState, SharedState};

// ---- wire types ------------------------------------------------------------------------------

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct CreateTicketRequest {
    /// One line, at most 200 characters.
    #[oai(validator(min_length = 1, max_length = 200))]
    pub subject: String,
    /// At most 50,000 characters.
    #[oai(validator(min_length = 1, max_length = 50000))]
    pub description: String,
    pub priority: PriorityDto,
    #[oai(validator(max_length = 100))]
    pub category: Option<String>,
    /// At most 20 tags of at most 50 characters.
    #[oai(validator(max_items = 20))]
    pub tags: Option<Vec<String>>,
    /// The customer the ticket is for. Staff must give it; a customer may only name themself.
    pub customer_id: Option<Uuid>,
    /// Route the ticket to the best eligible agent at once; with nobody eligible it waits in
    /// the queue (`GET /api/tickets/queue`) with its requirements.
    pub auto_assign: Option<bool>,
    /// The skill the ticket needs, by name or id (routing considers only agents who hold it).
    #[oai(validator(max_length = 100))]
    pub skill: Option<String>,
    /// The team responsible; routing then considers only its members.
    pub team_id: Option<Uuid>,
}

/// Only the fields present change. `"category": null` clears the category.
#[derive(Debug, Clone, Default, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct UpdateTicketRequest {
    #[oai(validator(min_length = 1, max_length = 200))]
    pub subject: Option<String>,
    #[oai(validator(min_length = 1, max_length = 50000))]
    pub description: Option<String>,
    pub priority: Option<PriorityDto>,
    #[serde(default)]
    #[oai(validator(max_length = 100))]
    pub category: MaybeUndefined<String>,
    #[oai(validator(max_items = 20))]
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct ChangeStatusRequest {
    pub status: StatusDto,
    /// Why, recorded with the change.
    #[oai(validator(max_length = 50000))]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct AssignRequest {
    /// An active agent or manager.
    pub agent_id: Uuid,
    #[oai(validator(max_length = 2000))]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct EscalateRequest {
    #[oai(validator(min_length = 1, max_length = 2000))]
    pub reason: String,
    /// Reassign to this active agent or manager as well.
    pub escalate_to: Option<Uuid>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct CommentRequest {
    /// At most 50,000 characters.
    #[oai(validator(min_length = 1, max_length = 50000))]
    pub body: String,
    /// Internal notes are for staff only; customers can neither post nor see them.
    #[serde(default)]
    #[oai(default)]
    pub internal: bool,
}

#[derive(Debug, Clone, Object)]
pub struct TicketDto {
    pub id: Uuid,
    /// `TKT-000001`, ...
    pub number: String,
    pub subject: String,
    pub description: String,
    pub priority: PriorityDto,
    pub status: StatusDto,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub customer_id: Uuid,
    pub assignee_id: Option<Uuid>,
    /// The team the ticket is assigned to, if any.
    pub team_id: Option<Uuid>,
    pub escalation_level: i64,
    pub comment_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The ticket's version: its number of events. Send it back in `If-Match`.
    pub version: i64,
    /// The worst state of its SLA clocks still counting: `running`, `paused`, `at_risk`,
    /// `breached` or `met`.
    pub sla_state: Option<String>,
    /// The nearest deadline of a running SLA clock.
    pub sla_due_at: Option<DateTime<Utc>>,
    /// Some SLA target of this ticket has been breached.
    pub sla_breached: bool,
}

#[derive(Debug, Clone, Object)]
pub struct CommentDto {
    pub id: Uuid,
    pub ticket_id: Uuid,
    pub author_id: Uuid,
    pub author_role: RoleDto,
    pub body: String,
    pub internal: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Object)]
pub struct TicketDetailDto {
    #[oai(flatten)]
    pub ticket: TicketDto,
    /// In the order they were made. Customers never see internal ones.
    pub comments: Vec<CommentDto>,
}

#[derive(Debug, Clone, Object)]
pub struct TicketPage {
    pub items: Vec<TicketDto>,
    pub total: i64,
    pub page: i64,
    pub page_size: i64,
}

#[derive(Debug, Clone, Object)]
pub struct HistoryActor {
    pub id: Option<Uuid>,
    pub role: Option<RoleDto>,
}

#[derive(Debug, Clone, Object)]
pub struct HistoryEntry {
    /// The event's sequence within the ticket: 1, 2, 3, ...
    pub sequence: i64,
    /// The event type, such as `TicketCreated`.
    #[oai(rename = "type")]
    pub event_type: String,
    /// When it happened (business time).
    pub occurred_at: Option<DateTime<Utc>>,
    /// When the log recorded it.
    pub recorded_at: DateTime<Utc>,
    pub actor: HistoryActor,
    /// The event's fields, as stored.
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, Object)]
pub struct TicketHistory {
    pub ticket_id: Uuid,
    pub events: Vec<HistoryEntry>,
}

#[derive(Debug, Clone, Object)]
pub struct StatusPeriodDto {
    pub status: StatusDto,
    pub entered_at: DateTime<Utc>,
    /// Absent while the ticket is still in this status.
    pub left_at: Option<DateTime<Utc>>,
    /// Seconds spent (up to now for the current status).
    pub seconds: i64,
}

#[derive(Debug, Clone, Object)]
pub struct TicketTimeline {
    pub ticket_id: Uuid,
    pub periods: Vec<StatusPeriodDto>,
}

#[derive(ApiResponse)]
pub enum TicketCreated {
    /// The ticket was opened.
    #[oai(status = 201)]
    Created(
        Json<TicketDto>,
        #[oai(header = "Location")] String,
        #[oai(header = "ETag")] String,
        /// Send back as `X-Consistency-Token` to read your own write.
        #[oai(header = "X-Consistency-Token")]
        Option<String>,
    ),
}

#[derive(ApiResponse)]
pub enum TicketWritten {
    /// The ticket after the change.
    #[oai(status = 200)]
    Ok(
        Json<TicketDto>,
        #[oai(header = "ETag")] String,
        #[oai(header = "X-Consistency-Token")] Option<String>,
    ),
}

#[derive(ApiResponse)]
pub enum TicketRead {
    #[oai(status = 200)]
    Ok(Json<TicketDetailDto>, #[oai(header = "ETag")] String),
}

#[derive(ApiResponse)]
pub enum CommentCreated {
    /// The comment was added. The ETag is the ticket's new version.
    #[oai(status = 201)]
    Created(
        Json<CommentDto>,
        #[oai(header = "ETag")] String,
        #[oai(header = "X-Consistency-Token")] Option<String>,
    ),
}

// ---- conversions -----------------------------------------------------------------------------

fn number(n: i64) -> String {
    TicketNumber(n).to_string()
}

fn ticket_from_state(state: &TicketState, version: i64) -> TicketDto {
    let sla = docket_projections::sla::summary(state.sla.as_ref());
    TicketDto {
        id: state.id.0,
        number: state.number.to_string(),
        subject: state.subject.as_str().to_string(),
        description: state.description.as_str().to_string(),
        priority: state.priority.into(),
        status: state.status.into(),
        category: state.category.as_ref().map(|c| c.as_str().to_string()),
        tags: state.tags.to_strings(),
        customer_id: state.customer_id.0,
        assignee_id: state.assignee_id.map(|a| a.0),
        team_id: state.team_id.map(|t| t.0),
        escalation_level: i64::from(state.escalation_level),
        comment_count: i64::from(state.comment_count),
        created_at: state.created_at,
        updated_at: state.updated_at,
        version,
        sla_state: sla.state,
        sla_due_at: sla.due_at,
        sla_breached: sla.breached,
    }
}

pub(crate) fn ticket_from_row(row: TicketRow) -> Result<TicketDto, ApiError> {
    let priority: Priority = row.priority.parse().map_err(ApiError::internal)?;
    let status: TicketStatus = row.status.parse().map_err(ApiError::internal)?;
    Ok(TicketDto {
        id: row.id,
        number: number(row.number),
        subject: row.subject,
        description: row.description,
        priority: priority.into(),
        status: status.into(),
        category: row.category,
        tags: row.tags,
        customer_id: row.customer_id,
        assignee_id: row.assignee_id,
        team_id: row.team_id,
        escalation_level: i64::from(row.escalation_level),
        comment_count: i64::from(row.comment_count),
        created_at: row.created_at,
        updated_at: row.updated_at,
        version: row.version,
        sla_state: row.sla_state,
        sla_due_at: row.sla_due_at,
        sla_breached: row.sla_breached,
    })
}

fn comment_from_row(row: CommentRow) -> Result<CommentDto, ApiError> {
    let role: docket_domain::Role = row.author_role.parse().map_err(ApiError::internal)?;
    Ok(CommentDto {
        id: row.id,
        ticket_id: row.ticket_id,
        author_id: row.author_id,
        author_role: role.into(),
        body: row.body,
        internal: row.internal,
        created_at: row.created_at,
    })
}

fn invalid(error: ValidationError) -> ApiError {
    ApiError::validation(error.field, error.reason)
}

/// Maps a refusal to HTTP. `person_field` names the request field that named the person whose
/// standing was judged (`agent_id`, `escalate_to`, `customer_id`).
pub(crate) fn ticket_error(error: CommandError<TicketError>, person_field: &str) -> ApiError {
    match error {
        CommandError::Rejected(rejection) => {
            let detail = rejection.to_string();
            match rejection {
                TicketError::NotFound => ApiError::not_found("ticket"),
                TicketError::AlreadyExists => ApiError::Conflict {
                    kind: "ticket-exists",
                    title: "The ticket already exists",
                    detail,
                },
                TicketError::NotPermitted { .. } => ApiError::Forbidden(detail),
                TicketError::InvalidTransition { .. } => ApiError::Conflict {
                    kind: "invalid-transition",
                    title: "The ticket cannot move to that status",
                    detail,
                },
                TicketError::Closed => ApiError::Conflict {
                    kind: "ticket-closed",
                    title: "The ticket is closed",
                    detail,
                },
                TicketError::Finished { .. } => ApiError::Conflict {
                    kind: "ticket-finished",
                    title: "The ticket is resolved or closed",
                    detail,
                },
                TicketError::AlreadyAssigned => ApiError::Conflict {
                    kind: "already-assigned",
                    title: "The ticket is already assigned to that person",
                    detail,
                },
                TicketError::InvalidAssignee | TicketError::InvalidCustomer => {
                    ApiError::validation(person_field, detail)
                }
                TicketError::NotRoutable { .. } | TicketError::AssigneeChanged => {
                    ApiError::Conflict {
                        kind: "not-routable",
                        title: "The ticket cannot be routed now",
                        detail,
                    }
                }
            }
        }
        CommandError::VersionMismatch { current } => ApiError::PreconditionFailed {
            current_version: current,
        },
        CommandError::Conflict => ApiError::ConcurrentModification,
        CommandError::Store(error) => error,
    }
}

fn committed_ticket(committed: &Committed<Ticket>) -> Result<TicketDto, ApiError> {
    committed
        .aggregate
        .state()
        .map(|state| ticket_from_state(state, committed.version))
        .ok_or_else(|| ApiError::internal("ticket command left no ticket"))
}

pub(crate) fn written(committed: Committed<Ticket>) -> Result<TicketWritten, ApiError> {
    let dto = committed_ticket(&committed)?;
    Ok(TicketWritten::Ok(
        Json(dto),
        etag(committed.version),
        consistency_token(committed.position),
    ))
}

/// Parses a comma list (`open,pending`) of wire strings into their canonical form.
fn comma_list<T: std::str::FromStr<Err = ValidationError> + std::fmt::Display>(
    field: &str,
    raw: Option<&str>,
) -> Result<Vec<String>, ApiError> {
    let Some(raw) = raw else {
        return Ok(vec![]);
    };
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<T>()
                .map(|v| v.to_string())
                .map_err(|e| ApiError::InvalidParameter {
                    field: field.to_string(),
                    detail: e.reason,
                })
        })
        .collect()
}

const SLA_STATES: [&str; 5] = ["running", "paused", "at_risk", "breached", "met"];

fn sla_states(raw: Option<&str>) -> Result<Vec<String>, ApiError> {
    raw.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            if SLA_STATES.contains(&s) {
                Ok(s.to_string())
            } else {
                Err(ApiError::InvalidParameter {
                    field: "sla_state".into(),
                    detail: format!("`{s}` is not one of {}", SLA_STATES.join(", ")),
                })
            }
        })
        .collect()
}

/// What a new ticket asks of its agent: a skill (by name or id) and a team, both checked.
async fn routing_requirements(
    state: &AppState,
    request: &CreateTicketRequest,
) -> Result<RoutingRequirements, ApiError> {
    let skill_id = match request.skill.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => {
            let id = match Uuid::parse_str(raw) {
                Ok(id) => SkillId(id),
                Err(_) => SkillId::for_name(
                    &SkillName::parse(raw).map_err(|e| ApiError::validation("skill", e.reason))?,
                ),
            };
            let (skill, _) = state.skills.load(&id.to_string()).await?;
            if skill.id.is_none() {
                return Err(ApiError::validation("skill", "no such skill"));
            }
            Some(id)
        }
    };
    let team_id = match request.team_id {
        None => None,
        Some(id) => {
            let (team, _) = state.teams.load(&id.to_string()).await?;
            if team.id.is_none() {
                return Err(ApiError::validation("team_id", "no such team"));
            }
            Some(TeamId(id))
        }
    };
    Ok(RoutingRequirements { skill_id, team_id })
}

/// A person a command names, as they are now; unknown people are a 422 on `field`.
async fn person(state: &AppState, id: Uuid, field: &str) -> Result<UserStanding, ApiError> {
    accounts::standing(state, UserId(id))
        .await?
        .ok_or_else(|| ApiError::validation(field, "no such user"))
}

/// Customers may act only on their own tickets, and may not learn that others exist: for them
/// someone else's ticket is a 404, exactly like a ticket that does not exist.
async fn ensure_visible(state: &AppState, me: &AuthUser, id: TicketId) -> Result<(), ApiError> {
    if !me.is_customer() {
        return Ok(());
    }
    // Whose ticket it is never changes, so any remembered state of it will do.
    let (ticket, _) = state
        .tickets
        .load_recent(&id.to_string(), std::time::Duration::MAX)
        .await?;
    match ticket.state() {
        Some(t) if t.customer_id == me.id => Ok(()),
        _ => Err(ApiError::not_found("ticket")),
    }
}

async fn execute(
    state: &AppState,
    me: &AuthUser,
    context: &RequestContext,
    id: TicketId,
    if_match: Option<&str>,
    command: TicketCommand,
    person_field: &str,
) -> Result<Committed<Ticket>, ApiError> {
    let expected = parse_if_match(if_match)?;
    ensure_visible(state, me, id).await?;
    state
        .tickets
        .execute(
            &id.to_string(),
            expected,
            command,
            context.metadata(Some(me.actor())),
        )
        .await
        .map_err(|e| ticket_error(e, person_field))
}

/// Reads a ticket row, waiting (bounded) for `min_version` when asked.
async fn read_row(
    state: &AppState,
    id: Uuid,
    min_version: Option<i64>,
) -> Result<Option<TicketRow>, ApiError> {
    if let Some(min_version) = min_version {
        let pool = state.pool.clone();
        let reached = docket_projections::runtime::wait_until(
            &state.notifications,
            state.consistency_wait,
            || {
                let pool = pool.clone();
                async move {
                    Ok(tickets::version(&pool, id)
                        .await?
                        .is_some_and(|v| v >= min_version))
                }
            },
        )
        .await
        .map_err(ApiError::database)?;
        if !reached {
            // It may simply not exist; answer 404 rather than make the client wait again.
            let (ticket, version) = state.tickets.load(&id.to_string()).await?;
            if ticket.state().is_none() {
                return Ok(None);
            }
            if version < min_version {
                return Err(ApiError::validation(
                    "min_version",
                    format!("the ticket is at version {version}"),
                ));
            }
            return Err(ApiError::ProjectionBehind);
        }
    }
    tickets::get(&state.pool, id)
        .await
        .map_err(ApiError::database)
}

async fn wait_for_token(state: &AppState, token: Option<&str>) -> Result<(), ApiError> {
    if let Some(checkpoint) = parse_consistency_token(token)? {
        super::wait_for_projector(state, "tickets", checkpoint).await?;
    }
    Ok(())
}

// ---- the API ---------------------------------------------------------------------------------

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
        state: Data<&SharedState>,
        context: Data<&RequestContext>,
        body: JsonBody<CreateTicketRequest>,
    ) -> Result<TicketCreated, ApiError> {
        let me = auth.0;
        let request = body.0;
        let customer_id = match (me.is_customer(), request.customer_id) {
            (true, None) => me.id.0,
            (true, Some(id)) if id == me.id.0 => id,
            (true, Some(_)) => {
                return Err(ApiError::Forbidden(
                    "customers may only open tickets for themselves".into(),
                ));
            }
            (false, _) if !me.role.works_tickets() => {
                return Err(ApiError::Forbidden(format!(
                    "{} may not open tickets",
                    me.role
                )));
            }
            (false, Some(id)) => id,
            (false, None) => {
                return Err(ApiError::validation(
                    "customer_id",
                    "staff must name the customer the ticket is for",
                ));
            }
        };
        let subject = Subject::parse(&request.subject).map_err(invalid)?;
        let description = Description::parse(&request.description).map_err(invalid)?;
        let category = request
            .category
            .as_deref()
            .map(Category::parse)
            .transpose()
            .map_err(invalid)?;
        let tags = Tags::parse(request.tags.as_deref().unwrap_or_default()).map_err(invalid)?;
        let customer = person(&state, customer_id, "customer_id").await?;
        let requirements = routing_requirements(&state, &request).await?;
        let auto_assign = request.auto_assign.unwrap_or(false);
        // Routing takes its turn before the ticket exists, so no router (in any process) can
        // pick the ticket from the queue before its requirements are recorded.
        let turn = if auto_assign || requirements != RoutingRequirements::default() {
            Some(crate::routing::Turn::begin(&state).await?)
        } else {
            None
        };
        let number: i64 = sqlx::query_scalar("SELECT nextval('ticket_number_seq')")
            .fetch_one(&state.pool)
            .await
            .map_err(ApiError::database)?;
        let id = TicketId(Uuid::now_v7());
        let catalog = state.sla_catalog.current(&state.pool).await?;
        let command = TicketCommand::Open(OpenTicket {
            ticket_id: id,
            number: TicketNumber(number),
            customer,
            subject,
            description,
            priority: request.priority.into(),
            category,
            tags,
            sla: (*catalog).clone(),
            actor: me.actor(),
            at: state.clock.now(),
        });
        let committed = state
            .tickets
            .execute(
                &id.to_string(),
                Some(0),
                command,
                context.metadata(Some(me.actor())),
            )
            .await
            .map_err(|e| ticket_error(e, "customer_id"))?;
        let mut committed = committed;
        if let Some(team) = requirements.team_id {
            committed = state
                .tickets
                .execute(
                    &id.to_string(),
                    None,
                    TicketCommand::AssignTeam(AssignTeam {
                        team_id: Some(team),
                        actor: me.actor(),
                        at: state.clock.now(),
                    }),
                    context.metadata(Some(me.actor())),
                )
                .await
                .map_err(|e| ticket_error(e, "team_id"))?;
        }
        if let Some(mut turn) = turn {
            // Routed now, or (without `auto_assign`, or with nobody eligible) queued with what
            // it needs; either way the decision is on the ticket before any router sees it.
            let at = state.clock.now();
            let decision = if auto_assign {
                turn.decide(requirements, state.routing_weights, at, None)
            } else {
                RoutingDecision::waiting(requirements, state.routing_weights)
            };
            let recorded = turn
                .record(
                    &state,
                    id.0,
                    decision,
                    None,
                    context.metadata(Some(me.actor())),
                    at,
                )
                .await;
            turn.finish().await?;
            committed = recorded.map_err(|e| ticket_error(e, "auto_assign"))?;
        }
        let dto = committed_ticket(&committed)?;
        Ok(TicketCreated::Created(
            Json(dto),
            format!("/api/tickets/{id}"),
            etag(committed.version),
            consistency_token(committed.position),
        ))
    }

    /// List tickets, newest first unless sorted otherwise. Customers see only their own.
    #[oai(path = "/api/tickets", method = "get", operation_id = "list_tickets")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
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
        /// Wait until the list reflects the write that returned this token.
        #[oai(name = "X-Consistency-Token")]
        consistency: Header<Option<String>>,
    ) -> Result<Json<TicketPage>, ApiError> {
        let me = auth.0;
        wait_for_token(&state, consistency.0.as_deref()).await?;
        let sort = match sort.0.as_deref() {
            None => TicketSort::CreatedDesc,
            Some(text) => TicketSort::parse(text).ok_or_else(|| ApiError::InvalidParameter {
                field: "sort".into(),
                detail: "use created_at, updated_at, priority, number or sla_due_at, with - for descending"
                    .into(),
            })?,
        };
        let mut filter = TicketFilter {
            statuses: comma_list::<TicketStatus>("status", status.0.as_deref())?,
            priorities: comma_list::<Priority>("priority", priority.0.as_deref())?,
            assignee_id: assignee_id.0,
            team_id: team_id.0,
            customer_id: customer_id.0,
            category: category.0,
            tag: tag.0,
            text: q.0.filter(|q| !q.trim().is_empty()),
            sla_states: sla_states(sla_state.0.as_deref())?,
            sla_breached: sla_breached.0,
            include_internal: me.role.is_staff(),
            created_from: created_from.0,
            created_to: created_to.0,
            sort,
            page: page.0,
            page_size: page_size.0,
            ..TicketFilter::default()
        };
        if me.is_customer() {
            if filter.customer_id.is_some_and(|c| c != me.id.0) {
                return Ok(Json(TicketPage {
                    items: vec![],
                    total: 0,
                    page: page.0,
                    page_size: page_size.0,
                }));
            }
            filter.customer_id = Some(me.id.0);
        }
        let found = tickets::list(&state.pool, &filter)
            .await
            .map_err(ApiError::database)?;
        let items = found
            .items
            .into_iter()
            .map(ticket_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Json(TicketPage {
            items,
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
        state: Data<&SharedState>,
        id: Path<Uuid>,
        /// Wait (briefly) until the ticket is at least at this version: read your own write.
        #[oai(validator(minimum(value = "0")))]
        min_version: Query<Option<i64>>,
    ) -> Result<TicketRead, ApiError> {
        let me = auth.0;
        let row = read_row(&state, id.0, min_version.0)
            .await?
            .filter(|row| !me.is_customer() || row.customer_id == me.id.0)
            .ok_or_else(|| ApiError::not_found("ticket"))?;
        let comments = tickets::comments(&state.pool, id.0, me.role.is_staff())
            .await
            .map_err(ApiError::database)?
            .into_iter()
            .map(comment_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let version = row.version;
        Ok(TicketRead::Ok(
            Json(TicketDetailDto {
                ticket: ticket_from_row(row)?,
                comments,
            }),
            etag(version),
        ))
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
        state: Data<&SharedState>,
        context: Data<&RequestContext>,
        id: Path<Uuid>,
        /// Refuse (412) unless the ticket is still at this ETag.
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
        body: JsonBody<UpdateTicketRequest>,
    ) -> Result<TicketWritten, ApiError> {
        let me = auth.0;
        me.require_ticket_worker("edit tickets")?;
        let request = body.0;
        let change = TicketDetailsChange {
            subject: request
                .subject
                .as_deref()
                .map(Subject::parse)
                .transpose()
                .map_err(invalid)?,
            description: request
                .description
                .as_deref()
                .map(Description::parse)
                .transpose()
                .map_err(invalid)?,
            priority: request.priority.map(Into::into),
            category: match request.category {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(text) => Some(Some(Category::parse(&text).map_err(invalid)?)),
            },
            tags: request
                .tags
                .as_deref()
                .map(Tags::parse)
                .transpose()
                .map_err(invalid)?,
        };
        if change == TicketDetailsChange::default() {
            return Err(ApiError::validation(
                "body",
                "name at least one field to change",
            ));
        }
        let catalog = state.sla_catalog.current(&state.pool).await?;
        let command = TicketCommand::UpdateDetails(UpdateTicketDetails {
            change,
            sla: (*catalog).clone(),
            actor: me.actor(),
            at: state.clock.now(),
        });
        let committed = execute(
            &state,
            &me,
            &context,
            TicketId(id.0),
            if_match.0.as_deref(),
            command,
            "body",
        )
        .await?;
        written(committed)
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
        state: Data<&SharedState>,
        context: Data<&RequestContext>,
        id: Path<Uuid>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
        body: JsonBody<ChangeStatusRequest>,
    ) -> Result<TicketWritten, ApiError> {
        let me = auth.0;
        let request = body.0;
        let comment = request
            .comment
            .as_deref()
            .map(|c| CommentBody::parse_field("comment", c))
            .transpose()
            .map_err(invalid)?;
        let command = TicketCommand::ChangeStatus(ChangeTicketStatus {
            to: request.status.into(),
            comment,
            actor: me.actor(),
            at: state.clock.now(),
        });
        let committed = execute(
            &state,
            &me,
            &context,
            TicketId(id.0),
            if_match.0.as_deref(),
            command,
            "status",
        )
        .await?;
        written(committed)
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
        state: Data<&SharedState>,
        context: Data<&RequestContext>,
        id: Path<Uuid>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
        body: JsonBody<AssignRequest>,
    ) -> Result<TicketWritten, ApiError> {
        let me = auth.0;
        me.require_ticket_worker("assign tickets")?;
        let request = body.0;
        let reason = request
            .reason
            .as_deref()
            .map(Reason::parse)
            .transpose()
            .map_err(invalid)?;
        let assignee = person(&state, request.agent_id, "agent_id").await?;
        let command = TicketCommand::Assign(AssignTicket {
            assignee,
            reason,
            actor: me.actor(),
            at: state.clock.now(),
        });
        let committed = execute(
            &state,
            &me,
            &context,
            TicketId(id.0),
            if_match.0.as_deref(),
            command,
            "agent_id",
        )
        .await?;
        written(committed)
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
        state: Data<&SharedState>,
        context: Data<&RequestContext>,
        id: Path<Uuid>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
        body: JsonBody<EscalateRequest>,
    ) -> Result<TicketWritten, ApiError> {
        let me = auth.0;
        me.require_ticket_worker("escalate tickets")?;
        let request = body.0;
        let reason = Reason::parse(&request.reason).map_err(invalid)?;
        let escalate_to = match request.escalate_to {
            Some(target) => Some(person(&state, target, "escalate_to").await?),
            None => None,
        };
        let command = TicketCommand::Escalate(EscalateTicket {
            reason,
            escalate_to,
            actor: me.actor(),
            at: state.clock.now(),
        });
        let committed = execute(
            &state,
            &me,
            &context,
            TicketId(id.0),
            if_match.0.as_deref(),
            command,
            "escalate_to",
        )
        .await?;
        written(committed)
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
        state: Data<&SharedState>,
        context: Data<&RequestContext>,
        id: Path<Uuid>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
        body: JsonBody<CommentRequest>,
    ) -> Result<CommentCreated, ApiError> {
        let me = auth.0;
        let request = body.0;
        let body = CommentBody::parse(&request.body).map_err(invalid)?;
        let comment_id = CommentId(Uuid::now_v7());
        let now = state.clock.now();
        let command = TicketCommand::AddComment(AddComment {
            comment_id,
            body: body.clone(),
            internal: request.internal,
            automated: false,
            actor: me.actor(),
            at: now,
        });
        let committed = execute(
            &state,
            &me,
            &context,
            TicketId(id.0),
            if_match.0.as_deref(),
            command,
            "body",
        )
        .await?;
        Ok(CommentCreated::Created(
            Json(CommentDto {
                id: comment_id.0,
                ticket_id: id.0,
                author_id: me.id.0,
                author_role: me.role.into(),
                body: body.into_string(),
                internal: request.internal,
                created_at: now,
            }),
            etag(committed.version),
            consistency_token(committed.position),
        ))
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
        state: Data<&SharedState>,
        id: Path<Uuid>,
        #[oai(validator(minimum(value = "0")))] min_version: Query<Option<i64>>,
    ) -> Result<Json<Vec<CommentDto>>, ApiError> {
        let me = auth.0;
        read_row(&state, id.0, min_version.0)
            .await?
            .filter(|row| !me.is_customer() || row.customer_id == me.id.0)
            .ok_or_else(|| ApiError::not_found("ticket"))?;
        let comments = tickets::comments(&state.pool, id.0, me.role.is_staff())
            .await
            .map_err(ApiError::database)?
            .into_iter()
            .map(comment_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Json(comments))
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
        state: Data<&SharedState>,
        id: Path<Uuid>,
    ) -> Result<Json<TicketHistory>, ApiError> {
        let me = auth.0;
        let events = log::events_of_aggregate(&state.pool, "ticket", &id.0.to_string())
            .await
            .map_err(ApiError::database)?;
        let mut decoded = Vec::with_capacity(events.len());
        for event in &events {
            let payload = tickets::decode(event).map_err(ApiError::internal)?;
            decoded.push((event, payload));
        }
        let owner = decoded.first().and_then(|(_, first)| match first {
            docket_domain::ticket::TicketEvent::TicketCreated { customer_id, .. } => {
                Some(*customer_id)
            }
            _ => None,
        });
        let Some(owner) = owner else {
            return Err(ApiError::not_found("ticket"));
        };
        if me.is_customer() && owner != me.id {
            return Err(ApiError::not_found("ticket"));
        }
        let entries = decoded
            .into_iter()
            .filter(|(_, payload)| me.role.is_staff() || !payload.is_internal())
            .map(|(event, payload)| {
                let actor = payload.actor();
                HistoryEntry {
                    sequence: event.sequence,
                    event_type: event.event_type.clone(),
                    occurred_at: Some(payload.occurred_at()),
                    recorded_at: event.recorded_at,
                    actor: HistoryActor {
                        id: Some(actor.user_id.0),
                        role: Some(actor.role.into()),
                    },
                    data: event.data(),
                }
            })
            .collect();
        Ok(Json(TicketHistory {
            ticket_id: id.0,
            events: entries,
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
        state: Data<&SharedState>,
        id: Path<Uuid>,
    ) -> Result<Json<TicketTimeline>, ApiError> {
        let me = auth.0;
        let events = log::events_of_aggregate(&state.pool, "ticket", &id.0.to_string())
            .await
            .map_err(ApiError::database)?;
        let decoded = events
            .iter()
            .map(tickets::decode)
            .collect::<Result<Vec<_>, _>>()
            .map_err(ApiError::internal)?;
        let owner = match decoded.first() {
            Some(docket_domain::ticket::TicketEvent::TicketCreated { customer_id, .. }) => {
                *customer_id
            }
            _ => return Err(ApiError::not_found("ticket")),
        };
        if me.is_customer() && owner != me.id {
            return Err(ApiError::not_found("ticket"));
        }
        let periods = status_timeline(&decoded, state.clock.now())
            .into_iter()
            .map(|period| StatusPeriodDto {
                status: period.status.into(),
                entered_at: period.entered_at,
                left_at: period.left_at,
                seconds: period.seconds,
            })
            .collect();
        Ok(Json(TicketTimeline {
            ticket_id: id.0,
            periods,
        }))
    }
}
