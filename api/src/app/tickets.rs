//! Tickets: opening one (with its number, team and routing turn), changing it, its conversation,
//! and reading it back — one at a time, as lists, as its history and as its status timeline.

use chrono::{DateTime, Utc};
use docket_domain::access::Permission;
use docket_domain::ticket::{
    AddComment, AssignTeam, AssignTicket, ChangeTicketStatus, EscalateTicket, FollowTicket,
    OpenTicket, StatusPeriod, Ticket, TicketCommand, TicketDetailsChange, TicketEvent, TicketState,
    UnassignTicket, UnfollowTicket, UpdateTicketDetails, UserStanding, may_open_for,
    status_timeline,
};
use docket_domain::values::{
    Category, CommentBody, CommentId, Description, Reason, SkillId, SkillName, Subject, Tags,
    TeamId, TicketId, TicketNumber, UserId,
};
use docket_domain::workforce::routing::{RoutingDecision, RoutingRequirements};
use docket_domain::{Priority, Role, TicketStatus};
use docket_projections::log::RecordedEvent;
use docket_projections::tickets::{self, CommentRow, TicketFilter, TicketRow};
use docket_projections::{log, registry};
use uuid::Uuid;

use crate::app::bus::{CommandError, Committed};
use crate::app::{App, AppError, Caller, Origin, accounts, router};

/// A ticket as people see it: the read model's row, or the same built from the aggregate a
/// write left (so a write answers with exactly what a read will show).
pub type TicketView = TicketRow;

/// The view of the ticket a command left.
pub fn view_of(state: &TicketState, version: i64) -> TicketView {
    let sla = docket_projections::sla::summary(state.sla.as_ref());
    TicketRow {
        id: state.id.0,
        number: state.number.0,
        subject: state.subject.as_str().to_string(),
        description: state.description.as_str().to_string(),
        priority: state.priority,
        priority_rank: state.priority.urgency(),
        status: state.status,
        category: state.category.as_ref().map(|c| c.as_str().to_string()),
        tags: state.tags.to_strings(),
        customer_id: state.customer_id.0,
        assignee_id: state.assignee_id.map(|a| a.0),
        team_id: state.team_id.map(|t| t.0),
        escalation_level: i32::try_from(state.escalation_level).unwrap_or(i32::MAX),
        comment_count: i32::try_from(state.comment_count).unwrap_or(i32::MAX),
        created_at: state.created_at,
        updated_at: state.updated_at,
        version,
        sla_state: sla.state,
        sla_due_at: sla.due_at,
        sla_breached: sla.breached,
    }
}

/// A ticket after a write: its view and where the write landed.
pub struct Written {
    pub ticket: TicketView,
    pub position: Option<docket_projections::Checkpoint>,
}

fn written(committed: &Committed<Ticket>) -> Result<Written, AppError> {
    let state = committed
        .aggregate
        .state()
        .ok_or_else(|| AppError::internal("a ticket command left no ticket"))?;
    Ok(Written {
        ticket: view_of(state, committed.version),
        position: committed.position,
    })
}

/// A person a command names, as they are now; unknown people are invalid in `field`.
async fn person(app: &App, id: Uuid, field: &str) -> Result<UserStanding, AppError> {
    accounts::standing(app, UserId(id))
        .await?
        .ok_or_else(|| AppError::invalid(field, "no such user"))
}

/// Sends `command` to the ticket on the caller's behalf. (What a customer may not see of
/// someone else's ticket, the ticket's own rules keep from them.)
async fn execute(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    id: Uuid,
    expected: Option<i64>,
    command: TicketCommand,
    person_field: &str,
) -> Result<Committed<Ticket>, AppError> {
    let metadata = origin.metadata(Some(caller.actor()));
    let aggregate_id = id.to_string();
    match app
        .tickets
        .execute(&aggregate_id, expected, command.clone(), metadata.clone())
        .await
    {
        // `If-Match` protects what people edit: when all that happened since the version the
        // caller saw is the server's SLA bookkeeping, the command is theirs to decide now
        // (ADR 0016).
        Err(CommandError::VersionMismatch { current })
            if only_bookkeeping_between(app, id, expected, current).await? =>
        {
            app.tickets
                .execute(&aggregate_id, Some(current), command, metadata)
                .await
                .map_err(|error| error.naming(person_field))
        }
        outcome => outcome.map_err(|error| error.naming(person_field)),
    }
}

/// Whether every event of the ticket after version `seen` (up to `current`) is SLA bookkeeping.
async fn only_bookkeeping_between(
    app: &App,
    id: Uuid,
    seen: Option<i64>,
    current: i64,
) -> Result<bool, AppError> {
    let Some(seen) = seen.filter(|seen| *seen < current) else {
        return Ok(false);
    };
    let events = log::events_of_aggregate(&app.pool, "ticket", &id.to_string()).await?;
    let mut since = events.iter().filter(|e| e.sequence > seen).peekable();
    if since.peek().is_none() {
        return Ok(false);
    }
    for event in since {
        let payload = tickets::decode(event).map_err(AppError::internal)?;
        if !payload.is_sla() {
            return Ok(false);
        }
    }
    Ok(true)
}

// ---- opening ---------------------------------------------------------------------------------

/// The skill a ticket needs: by id, or by name.
pub enum SkillNamed {
    Id(Uuid),
    Name(SkillName),
}

/// What opening a ticket asks.
pub struct NewTicket {
    /// Staff must name the customer; a customer may only name themself.
    pub customer_id: Option<Uuid>,
    pub subject: Subject,
    pub description: Description,
    pub priority: Priority,
    pub category: Option<Category>,
    pub tags: Tags,
    /// Route to the best eligible agent at once (or queue it with its requirements).
    pub auto_assign: bool,
    pub skill: Option<SkillNamed>,
    pub team_id: Option<Uuid>,
}

/// The next ticket number (`TKT-000042`): one sequence for every process.
pub async fn allocate_number(app: &App) -> Result<TicketNumber, AppError> {
    let number: i64 = sqlx::query_scalar("SELECT nextval('ticket_number_seq')")
        .fetch_one(&app.pool)
        .await?;
    Ok(TicketNumber(number))
}

/// What a new ticket asks of its agent: a skill and a team, both checked to exist.
async fn requirements(app: &App, ticket: &NewTicket) -> Result<RoutingRequirements, AppError> {
    let skill_id = match &ticket.skill {
        None => None,
        Some(named) => {
            let id = match named {
                SkillNamed::Id(id) => SkillId(*id),
                SkillNamed::Name(name) => SkillId::for_name(name),
            };
            let (skill, _) = app.skills.load(&id.to_string()).await?;
            if skill.id.is_none() {
                return Err(AppError::invalid("skill", "no such skill"));
            }
            Some(id)
        }
    };
    let team_id = match ticket.team_id {
        None => None,
        Some(id) => Some(existing_team(app, id).await?),
    };
    Ok(RoutingRequirements { skill_id, team_id })
}

/// The team of that id, refused as `team_id` when there is none.
async fn existing_team(app: &App, id: Uuid) -> Result<TeamId, AppError> {
    let (team, _) = app.teams.load(&id.to_string()).await?;
    if team.id.is_none() {
        return Err(AppError::invalid("team_id", "no such team"));
    }
    Ok(TeamId(id))
}

/// Opens a ticket: for the customer it names, numbered, with its SLA clocks started, given to
/// its team, and routed (or queued with what it needs).
pub async fn open(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    ticket: NewTicket,
) -> Result<Written, AppError> {
    let customer_id = match (caller.is_customer(), ticket.customer_id) {
        (true, named) => named.unwrap_or(caller.id.0),
        (false, Some(id)) => id,
        (false, None) if caller.role.may(Permission::WorkTickets) => {
            return Err(AppError::invalid(
                "customer_id",
                "staff must name the customer the ticket is for",
            ));
        }
        (false, None) => caller.id.0,
    };
    // Who may open for whom is the domain's rule; asked first, so that a refusal does not
    // depend on whether the person named exists.
    may_open_for(&caller.actor(), UserId(customer_id))
        .map_err(|refusal| CommandError::Rejected(refusal).naming("customer_id"))?;
    let customer = person(app, customer_id, "customer_id").await?;
    let requirements = requirements(app, &ticket).await?;
    // Routing takes its turn before the ticket exists, so no router (in any process) can pick
    // the ticket from the queue before its requirements are recorded.
    let turn = if ticket.auto_assign || requirements != RoutingRequirements::default() {
        Some(router::Turn::begin(app).await?)
    } else {
        None
    };
    let number = allocate_number(app).await?;
    let id = TicketId(Uuid::now_v7());
    let catalog = app.sla_catalog.current(&app.pool).await?;
    let metadata = origin.metadata(Some(caller.actor()));
    let command = TicketCommand::Open(OpenTicket {
        ticket_id: id,
        number,
        customer,
        subject: ticket.subject,
        description: ticket.description,
        priority: ticket.priority,
        category: ticket.category,
        tags: ticket.tags,
        sla: (*catalog).clone(),
        actor: caller.actor(),
        at: app.time.now(),
    });
    let mut committed = app
        .tickets
        .execute(&id.to_string(), Some(0), command, metadata.clone())
        .await
        .map_err(|e| e.naming("customer_id"))?;
    if let Some(team) = requirements.team_id {
        let command = TicketCommand::AssignTeam(AssignTeam {
            team_id: Some(team),
            actor: caller.actor(),
            at: app.time.now(),
        });
        committed = app
            .tickets
            .execute(&id.to_string(), None, command, metadata.clone())
            .await
            .map_err(|e| e.naming("team_id"))?;
    }
    if let Some(mut turn) = turn {
        // Routed now, or (without `auto_assign`, or with nobody eligible) queued with what it
        // needs; either way the decision is on the ticket before any router sees it.
        let at = app.time.now();
        let decision = if ticket.auto_assign {
            turn.decide(requirements, app.routing_weights, at, None)
        } else {
            RoutingDecision::waiting(requirements, app.routing_weights)
        };
        let recorded = turn.record(app, id.0, decision, None, metadata, at).await;
        turn.finish().await?;
        committed = recorded.map_err(|e| e.naming("auto_assign"))?;
    }
    written(&committed)
}

// ---- changing --------------------------------------------------------------------------------

/// Edits subject, description, priority, category or tags (agents, managers, admins).
pub async fn update(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    id: Uuid,
    expected: Option<i64>,
    change: TicketDetailsChange,
) -> Result<Written, AppError> {
    if change == TicketDetailsChange::default() {
        return Err(AppError::invalid(
            "body",
            "name at least one field to change",
        ));
    }
    let catalog = app.sla_catalog.current(&app.pool).await?;
    let command = TicketCommand::UpdateDetails(UpdateTicketDetails {
        change,
        sla: (*catalog).clone(),
        actor: caller.actor(),
        at: app.time.now(),
    });
    written(&execute(app, caller, origin, id, expected, command, "body").await?)
}

/// Moves a ticket to another status; `comment` says why.
pub async fn change_status(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    id: Uuid,
    expected: Option<i64>,
    to: TicketStatus,
    comment: Option<CommentBody>,
) -> Result<Written, AppError> {
    let command = TicketCommand::ChangeStatus(ChangeTicketStatus {
        to,
        comment,
        actor: caller.actor(),
        at: app.time.now(),
    });
    written(&execute(app, caller, origin, id, expected, command, "status").await?)
}

/// Assigns a ticket to an active agent or manager.
pub async fn assign(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    id: Uuid,
    expected: Option<i64>,
    agent_id: Uuid,
    reason: Option<Reason>,
) -> Result<Written, AppError> {
    let assignee = person(app, agent_id, "agent_id").await?;
    let command = TicketCommand::Assign(AssignTicket {
        assignee,
        reason,
        actor: caller.actor(),
        at: app.time.now(),
    });
    written(&execute(app, caller, origin, id, expected, command, "agent_id").await?)
}

/// Adds a follower (the caller, when `follower` is `None`): they are told of what happens on
/// the ticket. Following again changes nothing.
pub async fn follow(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    id: Uuid,
    follower: Option<Uuid>,
) -> Result<Written, AppError> {
    let follower = person(app, follower.unwrap_or(caller.id.0), "user_id").await?;
    let command = TicketCommand::Follow(FollowTicket {
        follower,
        actor: caller.actor(),
        at: app.time.now(),
    });
    written(&execute(app, caller, origin, id, None, command, "user_id").await?)
}

/// Removes a follower (the caller, when `follower` is `None`).
pub async fn unfollow(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    id: Uuid,
    follower: Option<Uuid>,
) -> Result<Written, AppError> {
    let command = TicketCommand::Unfollow(UnfollowTicket {
        follower: UserId(follower.unwrap_or(caller.id.0)),
        actor: caller.actor(),
        at: app.time.now(),
    });
    written(&execute(app, caller, origin, id, None, command, "user_id").await?)
}

/// Who follows the ticket, from its log (staff).
pub async fn followers(app: &App, caller: &Caller, id: Uuid) -> Result<Vec<UserId>, AppError> {
    caller.require(Permission::ReadStaffViews, "see who follows tickets")?;
    let (ticket, _) = app
        .tickets
        .load_recent(&id.to_string(), app.account_freshness)
        .await?;
    let state = ticket.state().ok_or(AppError::NotFound("ticket"))?;
    Ok(state.followers.iter().copied().collect())
}

/// Takes the ticket out of its assignee's hands; it waits in the queue.
pub async fn unassign(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    id: Uuid,
    expected: Option<i64>,
) -> Result<Written, AppError> {
    let command = TicketCommand::Unassign(UnassignTicket {
        actor: caller.actor(),
        at: app.time.now(),
    });
    written(&execute(app, caller, origin, id, expected, command, "agent_id").await?)
}

/// Puts the ticket in a team's hands, or (with `None`) takes it out of any team's.
pub async fn assign_team(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    id: Uuid,
    expected: Option<i64>,
    team_id: Option<Uuid>,
) -> Result<Written, AppError> {
    let team_id = match team_id {
        None => None,
        Some(team) => Some(existing_team(app, team).await?),
    };
    let command = TicketCommand::AssignTeam(AssignTeam {
        team_id,
        actor: caller.actor(),
        at: app.time.now(),
    });
    written(&execute(app, caller, origin, id, expected, command, "team_id").await?)
}

/// Escalates: one level up, and to `escalate_to` when given.
pub async fn escalate(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    id: Uuid,
    expected: Option<i64>,
    reason: Reason,
    escalate_to: Option<Uuid>,
) -> Result<Written, AppError> {
    let escalate_to = match escalate_to {
        Some(target) => Some(person(app, target, "escalate_to").await?),
        None => None,
    };
    let command = TicketCommand::Escalate(EscalateTicket {
        reason,
        escalate_to,
        actor: caller.actor(),
        at: app.time.now(),
    });
    written(&execute(app, caller, origin, id, expected, command, "escalate_to").await?)
}

/// A claim of a queued ticket, as a written ticket.
pub async fn claim(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    agent_id: Uuid,
    ticket_id: Uuid,
) -> Result<Written, AppError> {
    written(&router::queue::claim(app, caller, origin, agent_id, ticket_id).await?)
}

/// A comment as people see it.
pub type CommentView = CommentRow;

/// A comment just added, and the ticket's version after it.
pub struct CommentAdded {
    pub comment: CommentView,
    pub ticket_version: i64,
    pub position: Option<docket_projections::Checkpoint>,
}

/// Adds a comment. Customers comment on their own tickets and never internally.
pub async fn comment(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    id: Uuid,
    expected: Option<i64>,
    body: CommentBody,
    internal: bool,
) -> Result<CommentAdded, AppError> {
    let comment_id = CommentId(Uuid::now_v7());
    let now = app.time.now();
    let command = TicketCommand::AddComment(AddComment {
        comment_id,
        body: body.clone(),
        internal,
        automated: false,
        actor: caller.actor(),
        at: now,
    });
    let committed = execute(app, caller, origin, id, expected, command, "body").await?;
    Ok(CommentAdded {
        comment: CommentRow {
            id: comment_id.0,
            ticket_id: id,
            author_id: caller.id.0,
            author_role: caller.role,
            body: body.into_string(),
            internal,
            created_at: now,
            sequence: committed.version,
        },
        ticket_version: committed.version,
        position: committed.position,
    })
}

// ---- reading ---------------------------------------------------------------------------------

/// Reads a ticket row the caller may see, waiting (bounded) for `min_version` when asked.
async fn visible_row(
    app: &App,
    caller: &Caller,
    id: Uuid,
    min_version: Option<i64>,
) -> Result<TicketRow, AppError> {
    app.consistency
        .include(caller, &[&registry::TICKETS])
        .await?;
    let row = match min_version {
        Some(min_version) => at_least(app, id, min_version).await?,
        None => tickets::get(&app.pool, id).await?,
    };
    row.filter(|row| !caller.is_customer() || row.customer_id == caller.id.0)
        .ok_or(AppError::NotFound("ticket"))
}

/// The ticket's row once it is at `min_version`; `None` when there is no such ticket. A version
/// the log has not reached is refused at once rather than waited for.
async fn at_least(app: &App, id: Uuid, min_version: i64) -> Result<Option<TicketRow>, AppError> {
    if tickets::version(&app.pool, id)
        .await?
        .is_none_or(|v| v < min_version)
    {
        let (ticket, version) = app.tickets.load(&id.to_string()).await?;
        if ticket.state().is_none() {
            return Ok(None);
        }
        if version < min_version {
            return Err(AppError::InvalidParameter {
                name: "min_version".into(),
                reason: format!("min_version must be at most the ticket's version, {version}"),
            });
        }
    }
    let pool = app.pool.clone();
    let reached =
        docket_projections::runtime::wait_until(&app.notifications, app.consistency.wait(), || {
            let pool = pool.clone();
            async move {
                Ok(tickets::version(&pool, id)
                    .await?
                    .is_some_and(|v| v >= min_version))
            }
        })
        .await?;
    if !reached {
        return Err(AppError::ProjectionBehind);
    }
    Ok(tickets::get(&app.pool, id).await?)
}

/// How a request names a ticket: by its id, or by its number (`TKT-000051`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketRef {
    Id(Uuid),
    Number(TicketNumber),
}

impl TicketRef {
    /// A UUID, or a number as people write it; `None` for anything else.
    pub fn recognise(text: &str) -> Option<Self> {
        match Uuid::parse_str(text.trim()) {
            Ok(id) => Some(TicketRef::Id(id)),
            Err(_) => TicketNumber::recognise(text).map(TicketRef::Number),
        }
    }
}

/// The id of the ticket `reference` names (for a number, as the read model knows it, after
/// it includes the caller's own writes). `None` when no ticket has that number.
async fn resolve(
    app: &App,
    caller: &Caller,
    reference: TicketRef,
) -> Result<Option<Uuid>, AppError> {
    match reference {
        TicketRef::Id(id) => Ok(Some(id)),
        TicketRef::Number(number) => {
            app.consistency
                .include(caller, &[&registry::TICKETS])
                .await?;
            Ok(tickets::get_by_number(&app.pool, number.0)
                .await?
                .map(|row| row.id))
        }
    }
}

/// A ticket and the comments the caller may see.
pub struct TicketDetail {
    pub ticket: TicketView,
    pub comments: Vec<CommentView>,
}

/// One ticket with its comments. Customers see only their own, without internal comments.
pub async fn get(
    app: &App,
    caller: &Caller,
    reference: TicketRef,
    min_version: Option<i64>,
) -> Result<TicketDetail, AppError> {
    let id = resolve(app, caller, reference)
        .await?
        .ok_or(AppError::NotFound("ticket"))?;
    let ticket = visible_row(app, caller, id, min_version).await?;
    let comments = tickets::comments(&app.pool, id, caller.is_staff()).await?;
    Ok(TicketDetail { ticket, comments })
}

/// A ticket's comments, in order.
pub async fn comments(
    app: &App,
    caller: &Caller,
    id: Uuid,
    min_version: Option<i64>,
) -> Result<Vec<CommentView>, AppError> {
    visible_row(app, caller, id, min_version).await?;
    Ok(tickets::comments(&app.pool, id, caller.is_staff()).await?)
}

/// One page of tickets matching `filter`. Customers see only their own.
pub async fn list(
    app: &App,
    caller: &Caller,
    mut filter: TicketFilter,
) -> Result<tickets::TicketPage, AppError> {
    filter.include_internal = caller.is_staff();
    if caller.is_customer() {
        if filter.customer_id.is_some_and(|c| c != caller.id.0) {
            return Ok(tickets::TicketPage {
                items: vec![],
                total: 0,
            });
        }
        filter.customer_id = Some(caller.id.0);
    }
    app.consistency
        .include(caller, &[&registry::TICKETS])
        .await?;
    Ok(tickets::list(&app.pool, &filter).await?)
}

/// The ticket's events the caller may see, in order, straight from the log.
async fn visible_events(
    app: &App,
    caller: &Caller,
    id: Uuid,
) -> Result<Vec<(RecordedEvent, TicketEvent)>, AppError> {
    let events = log::events_of_aggregate(&app.pool, "ticket", &id.to_string()).await?;
    let mut decoded = Vec::with_capacity(events.len());
    for event in events {
        let payload = tickets::decode(&event).map_err(AppError::internal)?;
        decoded.push((event, payload));
    }
    let owner = match decoded.first() {
        Some((_, TicketEvent::TicketCreated { customer_id, .. })) => *customer_id,
        _ => return Err(AppError::NotFound("ticket")),
    };
    if caller.is_customer() && owner != caller.id {
        return Err(AppError::NotFound("ticket"));
    }
    Ok(decoded)
}

/// Everything that happened to the ticket, in order, from the log. The ticket's customer sees
/// it without internal events.
pub async fn history(
    app: &App,
    caller: &Caller,
    id: Uuid,
) -> Result<Vec<(RecordedEvent, TicketEvent)>, AppError> {
    let mut events = visible_events(app, caller, id).await?;
    if !caller.is_staff() {
        events.retain(|(_, payload)| !payload.is_internal());
    }
    Ok(events)
}

/// How long the ticket spent in each status, up to now.
pub async fn timeline(app: &App, caller: &Caller, id: Uuid) -> Result<Vec<StatusPeriod>, AppError> {
    let events: Vec<TicketEvent> = visible_events(app, caller, id)
        .await?
        .into_iter()
        .map(|(_, payload)| payload)
        .collect();
    Ok(status_timeline(&events, app.time.now()))
}

/// Who acted in a history entry: the actor the event records.
pub fn actor_of(event: &TicketEvent) -> (Uuid, Role) {
    let actor = event.actor();
    (actor.user_id.0, actor.role)
}

/// When a history entry happened (business time).
pub fn occurred_at(event: &TicketEvent) -> DateTime<Utc> {
    event.occurred_at()
}
