//! What people do with routing: look at the queue, ask why a ticket went where it did, claim a
//! queued ticket, drain the queue now, rebalance.

use chrono::{DateTime, Utc};
use docket_domain::access::Permission;
use docket_domain::ticket::{AssignTicket, Ticket, TicketCommand, TicketEvent};
use docket_domain::values::{Reason, UserId};
use docket_domain::workforce::routing::RoutingDecision;
use docket_projections::log::RecordedEvent;
use docket_projections::workforce::{self, QueuedTicket};
use docket_projections::{fold, log, registry};
use uuid::Uuid;

use super::Move;
use crate::app::bus::{CommandError, Committed};
use crate::app::error::ConflictKind;
use crate::app::{App, AppError, Caller, Origin, accounts};

const STAFF_ONLY: &str = "see routing and workload";

/// The first `limit` queued tickets in the order they will be served, and how many wait in all.
pub struct Queue {
    pub total: i64,
    /// How many are served before the first of this page.
    pub skipped: i64,
    pub first: Vec<QueuedTicket>,
}

/// Unassigned tickets in the order they will be served: most urgent, then oldest (staff).
/// A page of the queue (`page` 1-based): the tickets and the place of the first in the queue.
pub async fn queue(
    app: &App,
    caller: &Caller,
    page: i64,
    page_size: i64,
) -> Result<Queue, AppError> {
    caller.require(Permission::ReadStaffViews, STAFF_ONLY)?;
    app.consistency
        .include(caller, &[&registry::WORKFORCE, &registry::TICKETS])
        .await?;
    Ok(Queue {
        skipped: (page - 1).saturating_mul(page_size),
        first: workforce::queue(&app.pool, (page - 1).saturating_mul(page_size), page_size).await?,
        total: workforce::queue_length(&app.pool).await?,
    })
}

/// Assigns queued tickets now, as the background router does (agents, managers, admins).
pub async fn drain(app: &App, caller: &Caller) -> Result<Vec<Move>, AppError> {
    caller.require(Permission::WorkTickets, "process the queue")?;
    super::process_queue(app, 500).await
}

/// Moves tickets from agents who cannot hold them to eligible agents (managers, admins).
pub async fn rebalance(app: &App, caller: &Caller, dry_run: bool) -> Result<Vec<Move>, AppError> {
    caller.require(Permission::Manage, "rebalance workload")?;
    super::rebalance(app, dry_run).await
}

/// One routing decision, as the ticket's log recorded it.
pub struct RecordedDecision {
    /// The ticket version that recorded it.
    pub version: i64,
    pub decided_at: DateTime<Utc>,
    pub decision: RoutingDecision,
}

/// Why the ticket went where it did, from its log.
pub struct Explanation {
    pub ticket_id: Uuid,
    pub assignee_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub decisions: Vec<RecordedDecision>,
}

/// The routing decisions among a ticket's events (as its history reads them), oldest first.
pub fn decisions_in<'a>(
    events: impl IntoIterator<Item = (&'a RecordedEvent, &'a TicketEvent)>,
) -> Vec<RecordedDecision> {
    events
        .into_iter()
        .filter_map(|(event, decoded)| match decoded {
            TicketEvent::TicketRouted {
                decision,
                occurred_at,
            } => Some(RecordedDecision {
                version: event.sequence,
                decided_at: *occurred_at,
                decision: (**decision).clone(),
            }),
            _ => None,
        })
        .collect()
}

/// Every routing decision on the ticket, oldest first, with the candidates' scores (staff).
pub async fn explain(app: &App, caller: &Caller, id: Uuid) -> Result<Explanation, AppError> {
    caller.require(Permission::ReadStaffViews, STAFF_ONLY)?;
    let (ticket, _) = app.tickets.load(&id.to_string()).await?;
    let current = ticket.state().ok_or(AppError::NotFound("ticket"))?;
    let events = log::events_of_aggregate(&app.pool, "ticket", &id.to_string()).await?;
    let mut routed = Vec::new();
    for event in events.iter().filter(|e| e.event_type == "TicketRouted") {
        let decoded: TicketEvent = fold::decode(event).map_err(AppError::internal)?;
        routed.push((event, decoded));
    }
    let decisions = decisions_in(routed.iter().map(|(event, decoded)| (*event, decoded)));
    Ok(Explanation {
        ticket_id: id,
        assignee_id: current.assignee_id.map(|a| a.0),
        team_id: current.team_id.map(|t| t.0),
        decisions,
    })
}

/// An agent takes a queued ticket: the agent themself, or a manager or admin for them. Refused
/// when the ticket is already assigned or the agent is at capacity.
pub async fn claim(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    agent_id: Uuid,
    ticket_id: Uuid,
) -> Result<Committed<Ticket>, AppError> {
    caller.require(Permission::WorkTickets, "claim tickets")?;
    if caller.id.0 != agent_id {
        caller.require(Permission::Manage, "claim tickets for someone else")?;
    }
    let assignee = accounts::standing(app, UserId(agent_id))
        .await?
        .ok_or(AppError::NotFound("agent"))?;
    let (ticket, version) = app.tickets.load(&ticket_id.to_string()).await?;
    let current = ticket.state().ok_or(AppError::NotFound("ticket"))?;
    let already = || {
        AppError::conflict(
            ConflictKind::AlreadyClaimed,
            "the ticket is already assigned",
        )
    };
    if current.assignee_id.is_some() {
        return Err(already());
    }
    if let Some(row) = workforce::agents(&app.pool, Some(agent_id)).await?.first()
        && row.open_tickets >= row.capacity
    {
        return Err(AppError::conflict(
            ConflictKind::AtCapacity,
            format!(
                "the agent holds {} open tickets; their capacity is {}",
                row.open_tickets, row.capacity
            ),
        ));
    }
    let command = TicketCommand::Assign(AssignTicket {
        assignee,
        reason: Reason::parse("claimed from the queue").ok(),
        actor: caller.actor(),
        at: app.time.now(),
    });
    app.tickets
        // Exactly the state seen: if anyone else claimed it meanwhile, this is refused.
        .execute(
            &ticket_id.to_string(),
            Some(version),
            command,
            origin.metadata(Some(caller.actor())),
        )
        .await
        .map_err(|error| match error {
            CommandError::VersionMismatch { .. } => already(),
            other => other.naming("agent_id"),
        })
}
