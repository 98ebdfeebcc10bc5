//! Skill-based routing as a service: gathers the agents from the read models, lets the pure
//! router in `docket_domain::workforce::routing` decide, and records the decision on the ticket.
//!
//! Routers in every process take turns: each turn holds a PostgreSQL advisory lock for the length
//! of one transaction, starts by waiting until the workforce projection includes everything
//! committed to the log so far (the previous turn's assignments among it), and within the turn
//! keeps the agents' loads up to date in memory. So two processes routing at once can never both give an agent their last free
//! slot. Assignments people make by hand are not serialised this way; capacity binds routing, not
//! managers.

pub mod queue;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use docket_domain::Priority;
use docket_domain::ticket::{RouteTicket, Ticket, TicketCommand, TicketError, UserStanding};
use docket_domain::values::{AgentStatus, Role, ShiftId, SkillId, TeamId, UserId};
use docket_domain::workforce::routing::{
    AgentSnapshot, RoutingDecision, RoutingRequirements, RoutingWeights, ShiftWindow, route,
};
use docket_projections::EventMetadata;
use docket_projections::log;
use docket_projections::registry::{self, Projector};
use docket_projections::workforce::{self, AgentRow, RoutingTicketRow};
use sqlx::{Postgres, Transaction};
use tokio::sync::watch;
use uuid::Uuid;

use crate::app::bus::{CommandError, Committed};
use crate::app::caller::system_metadata;
use crate::app::{App, AppError};

/// The advisory lock key of a routing turn ("dockrout").
const ROUTING_LOCK: i64 = 0x646f_636b_726f_7574;

/// An agent row as the router needs it.
pub fn snapshot(row: &AgentRow) -> AgentSnapshot {
    let skills: BTreeMap<SkillId, u8> = row
        .skills
        .iter()
        .map(|(id, proficiency)| (SkillId(*id), *proficiency))
        .collect();
    AgentSnapshot {
        agent_id: UserId(row.agent_id),
        role: row.role,
        active: row.active,
        status: row.status,
        shift: match (row.shift_id, row.shift_started_at) {
            (Some(shift_id), Some(started_at)) => Some(ShiftWindow {
                shift_id: ShiftId(shift_id),
                started_at,
                scheduled_end: row.shift_scheduled_end,
                breaks: row.breaks.clone(),
            }),
            _ => None,
        },
        capacity: u32::try_from(row.capacity).unwrap_or(0),
        open_tickets: u32::try_from(row.open_tickets).unwrap_or(0),
        critical_tickets: u32::try_from(row.critical_tickets).unwrap_or(0),
        skills,
        teams: row
            .teams
            .iter()
            .copied()
            .map(TeamId)
            .collect::<BTreeSet<_>>(),
        last_assigned_at: row.last_assigned_at,
    }
}

fn requirements_of(row: &RoutingTicketRow) -> RoutingRequirements {
    RoutingRequirements {
        skill_id: row.skill_id.map(SkillId),
        team_id: row.team_id.map(TeamId),
    }
}

/// A copy of the routable agents that follows the profile rows' revisions: a turn reads one
/// row of figures, and only when profiles changed since, the changed rows (after an assignment,
/// one agent's). Eligibility that depends on the instant — breaks, shift ends — is judged at
/// decision time, not here.
#[derive(Default)]
pub struct AgentCache {
    cached: tokio::sync::Mutex<Option<CachedAgents>>,
}

struct CachedAgents {
    generation: workforce::AgentsGeneration,
    agents: BTreeMap<Uuid, AgentSnapshot>,
}

impl CachedAgents {
    fn same_source(&self, now: &workforce::AgentsGeneration) -> bool {
        self.generation.users_events_applied == now.users_events_applied
            && self.generation.profiles_table == now.profiles_table
    }
}

impl AgentCache {
    /// The agents as the model holds them now.
    async fn current(&self, app: &App) -> Result<Vec<AgentSnapshot>, AppError> {
        let mut cached = self.cached.lock().await;
        let now = workforce::agents_generation(&app.pool)
            .await
            .map_err(AppError::database)?;
        match cached.as_mut() {
            Some(copy) if copy.same_source(&now) => {
                if now.latest_revision > copy.generation.latest_revision {
                    let changed =
                        workforce::agents_changed_since(&app.pool, copy.generation.latest_revision)
                            .await
                            .map_err(AppError::database)?;
                    for row in &changed {
                        if row.routable() {
                            copy.agents.insert(row.agent_id, snapshot(row));
                        } else {
                            copy.agents.remove(&row.agent_id);
                        }
                    }
                    // Rows committed after `now` was read come back again next time; applying
                    // a row twice leaves the same copy.
                    copy.generation.latest_revision = now.latest_revision;
                }
                Ok(copy.agents.values().cloned().collect())
            }
            _ => {
                // Everything after `now.latest_revision` is read again next time, so rows that
                // change while this runs are not missed.
                let agents: BTreeMap<Uuid, AgentSnapshot> = workforce::routable_agents(&app.pool)
                    .await
                    .map_err(AppError::database)?
                    .iter()
                    .map(|row| (row.agent_id, snapshot(row)))
                    .collect();
                let list = agents.values().cloned().collect();
                *cached = Some(CachedAgents {
                    generation: now,
                    agents,
                });
                Ok(list)
            }
        }
    }
}

/// One routing turn: the lock, and the agents as they are at its start.
pub struct Turn {
    /// Holds the advisory lock until it ends.
    tx: Transaction<'static, Postgres>,
    pub agents: Vec<AgentSnapshot>,
}

impl Turn {
    /// Waits for the turn (bounded by the pool's acquire timeout and the consistency wait).
    pub async fn begin(app: &App) -> Result<Self, AppError> {
        // The lock is taken in the BEGIN's own round trip.
        let tx = app
            .pool
            .begin_with(format!(
                "BEGIN; SELECT pg_advisory_xact_lock({ROUTING_LOCK})"
            ))
            .await
            .map_err(AppError::database)?;
        // Everything committed before the turn (shift starts, status changes, assignments by
        // hand or by the previous turn) must be in the loads the decision is made on.
        wait_for_workforce(app, registry::WORKFORCE.aggregate_types).await?;
        let agents = app.routable_agents.current(app).await?;
        Ok(Self { tx, agents })
    }

    /// Decides for a ticket with `requirements`, never choosing `away_from`.
    pub fn decide(
        &self,
        requirements: RoutingRequirements,
        weights: RoutingWeights,
        at: DateTime<Utc>,
        away_from: Option<UserId>,
    ) -> RoutingDecision {
        route(requirements, &self.agents, weights, at, away_from)
    }

    /// Records `decision` on the ticket; on success the chosen agent's load grows (and
    /// `away_from`'s shrinks) for the rest of the turn.
    pub async fn record(
        &mut self,
        app: &App,
        ticket_id: Uuid,
        decision: RoutingDecision,
        expected_assignee: Option<UserId>,
        metadata: EventMetadata,
        at: DateTime<Utc>,
    ) -> Result<Committed<Ticket>, CommandError<TicketError>> {
        let assignee = match decision.chosen {
            Some(agent) => Some(
                crate::app::accounts::standing(app, agent)
                    .await
                    .map_err(CommandError::Store)?
                    .unwrap_or(UserStanding {
                        user_id: agent,
                        role: Role::Viewer,
                        active: false,
                    }),
            ),
            None => None,
        };
        let chosen = decision.chosen;
        let committed = app
            .tickets
            .execute(
                &ticket_id.to_string(),
                None,
                TicketCommand::Route(RouteTicket {
                    decision,
                    assignee,
                    expected_assignee,
                    at,
                }),
                metadata,
            )
            .await?;
        if let Some(priority) = committed.aggregate.state().map(|t| t.priority) {
            if let Some(agent) = self.agents.iter_mut().find(|a| Some(a.agent_id) == chosen) {
                agent.take(priority, at);
            }
            if let Some(from) = expected_assignee.filter(|_| chosen.is_some())
                && let Some(agent) = self.agents.iter_mut().find(|a| a.agent_id == from)
            {
                agent.release(priority);
            }
        }
        Ok(committed)
    }

    /// Ends the turn; the next one starts from the log as this one left it.
    pub async fn finish(self) -> Result<(), AppError> {
        self.tx.commit().await.map_err(AppError::database)
    }
}

/// Waits until the workforce model has applied the newest event of `types` in the log: a read
/// after it sees every such change committed before the call. (Not the log's head itself: the
/// projector records no progress past events of other aggregates until it applies one of its
/// own.)
pub async fn wait_for_workforce(app: &App, types: &[&str]) -> Result<(), AppError> {
    wait_for_newest(app, &registry::WORKFORCE, types).await
}

/// Waits until `projector` has applied the newest event of `types` committed so far.
pub async fn wait_for_newest(
    app: &App,
    projector: &'static Projector,
    types: &[&str],
) -> Result<(), AppError> {
    if let Some(newest) = log::newest_of_types(&app.pool, types).await? {
        app.consistency.reach(projector, newest).await?;
    }
    Ok(())
}

/// One assignment made (or, in a dry run, proposed) by the queue or a rebalance.
#[derive(Debug, Clone)]
pub struct Move {
    pub ticket_id: Uuid,
    pub from_agent_id: Option<Uuid>,
    pub to_agent_id: Uuid,
    pub score: f64,
    pub priority: Priority,
}

/// Assigns queued tickets, most urgent and oldest first, until the queue or the agents run out.
pub async fn process_queue(app: &App, limit: i64) -> Result<Vec<Move>, AppError> {
    let mut turn = Turn::begin(app).await?;
    // Read inside the turn: the previous turn's decisions (requirements included) are in.
    let queue = workforce::queued_tickets(&app.pool, limit)
        .await
        .map_err(AppError::database)?;
    let mut moves = Vec::new();
    let at = app.time.now();
    for ticket in queue {
        if turn.agents.is_empty() {
            break;
        }
        let decision = turn.decide(requirements_of(&ticket), app.routing_weights, at, None);
        let (Some(agent), Some(best)) = (decision.chosen, decision.candidates.first().cloned())
        else {
            continue;
        };
        match turn
            .record(
                app,
                ticket.ticket_id,
                decision,
                None,
                system_metadata("routing"),
                at,
            )
            .await
        {
            Ok(_) => moves.push(Move {
                ticket_id: ticket.ticket_id,
                from_agent_id: None,
                to_agent_id: agent.0,
                score: best.score,
                priority: ticket.priority,
            }),
            // Someone took it, or it was resolved, since the queue was read.
            Err(CommandError::Rejected(_)) => {}
            Err(CommandError::Store(error)) => return Err(error),
            Err(other) => tracing::warn!(ticket = %ticket.ticket_id, ?other, "could not route"),
        }
    }
    turn.finish().await?;
    Ok(moves)
}

/// Moves tickets away from agents who are over capacity or cannot work them (off shift, not
/// available, deactivated) to eligible agents, by the same scores. A dry run only lists them.
pub async fn rebalance(app: &App, dry_run: bool) -> Result<Vec<Move>, AppError> {
    let mut turn = Turn::begin(app).await?;
    let at = app.time.now();
    let holders = workforce::agents_with_tickets(&app.pool)
        .await
        .map_err(AppError::database)?;
    let mut moves = Vec::new();
    for holder in holders.iter().map(snapshot) {
        let working = holder.active
            && holder.status == AgentStatus::Available
            && holder.on_shift(at)
            && !holder.on_break(at);
        let excess = if working {
            holder.open_tickets.saturating_sub(holder.capacity) as usize
        } else {
            holder.open_tickets as usize
        };
        if excess == 0 {
            continue;
        }
        let tickets = workforce::tickets_of(&app.pool, holder.agent_id.0)
            .await
            .map_err(AppError::database)?;
        // Work in progress stays where it is when the agent is over capacity: the newest
        // tickets move first.
        for ticket in tickets.iter().rev().take(excess) {
            let decision = turn.decide(
                requirements_of(ticket),
                app.routing_weights,
                at,
                Some(holder.agent_id),
            );
            let (Some(agent), Some(best)) = (decision.chosen, decision.candidates.first().cloned())
            else {
                continue;
            };
            let priority = ticket.priority;
            let planned = Move {
                ticket_id: ticket.ticket_id,
                from_agent_id: Some(holder.agent_id.0),
                to_agent_id: agent.0,
                score: best.score,
                priority,
            };
            if dry_run {
                if let Some(target) = turn.agents.iter_mut().find(|a| a.agent_id == agent) {
                    target.take(priority, at);
                }
                moves.push(planned);
                continue;
            }
            match turn
                .record(
                    app,
                    ticket.ticket_id,
                    decision,
                    Some(holder.agent_id),
                    system_metadata("rebalance"),
                    at,
                )
                .await
            {
                Ok(_) => moves.push(planned),
                Err(CommandError::Rejected(_)) => {}
                Err(CommandError::Store(error)) => return Err(error),
                Err(other) => tracing::warn!(ticket = %ticket.ticket_id, ?other, "could not move"),
            }
        }
    }
    turn.finish().await?;
    Ok(moves)
}

/// The background router: whenever the log moves (an agent freed up, came on shift, a ticket
/// arrived) and every few seconds (breaks end without an event), assigns what it can.
pub async fn run_router(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let mut projections = app.notifications.projections();
    loop {
        if *shutdown.borrow() {
            return;
        }
        match pending_work(&app).await {
            Ok(true) => match process_queue(&app, 500).await {
                Ok(moves) if !moves.is_empty() => {
                    tracing::info!(assigned = moves.len(), "routed queued tickets");
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(?error, "could not route the queue"),
            },
            Ok(false) => {}
            Err(error) => tracing::warn!(?error, "could not look at the queue"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = projections.changed() => {
                // Let a burst of commits settle into one pass.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ = shutdown.changed() => {}
        }
    }
}

/// Whether a queued ticket and a routable agent both exist.
async fn pending_work(app: &App) -> Result<bool, AppError> {
    Ok(workforce::routing_pending(&app.pool).await?)
}
