//! The queue, routing decisions and their explanations, claims, rebalancing, and the workload
//! reports (`/api/tickets/queue`, `/api/tickets/{id}/routing`, `/api/agents/{id}/claim/…`,
//! `/api/workload/…`).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, DurationRound, Utc};
use docket_domain::ticket::{AssignTicket, TicketCommand, TicketEvent};
use docket_domain::values::{Reason, UserId};
use docket_domain::workforce::routing::RoutingDecision;
use docket_projections::workforce;
use docket_projections::{fold, log};
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde::Deserialize;
use uuid::Uuid;

use super::ApiTags;
use super::tickets::{TicketWritten, ticket_error, written};
use super::workforce::wait_workforce;
use crate::auth::{AuthUser, BearerAuth};
use crate::commands::CommandError;
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::json::JsonBody;
use crate::routing::{self, Move};
use crate::state::{AppState, SharedState};

// ---- wire types ------------------------------------------------------------------------------

#[derive(Debug, Clone, Object)]
pub struct QueuedTicketDto {
    /// 1 is served first.
    pub position: i64,
    pub ticket_id: Uuid,
    pub number: Option<String>,
    pub subject: Option<String>,
    pub priority: String,
    pub status: String,
    pub team_id: Option<Uuid>,
    pub skill_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Object)]
pub struct QueueDto {
    /// Unassigned unfinished tickets in all.
    pub total: i64,
    /// The first ones, in the order they will be served.
    pub items: Vec<QueuedTicketDto>,
}

#[derive(Debug, Clone, Object)]
pub struct MoveDto {
    pub ticket_id: Uuid,
    /// Absent for a ticket from the queue.
    pub from_agent_id: Option<Uuid>,
    pub to_agent_id: Uuid,
    /// The winning score (lower wins).
    pub score: f64,
    pub priority: String,
}

#[derive(Debug, Clone, Object)]
pub struct MovesDto {
    pub dry_run: bool,
    pub moves: Vec<MoveDto>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct RebalanceRequest {
    /// List the moves without making them (default false).
    pub dry_run: Option<bool>,
}

#[derive(Debug, Clone, Object)]
pub struct WeightsDto {
    pub active_tickets: f64,
    pub critical_tickets: f64,
    pub proficiency: f64,
}

#[derive(Debug, Clone, Object)]
pub struct CandidateDto {
    pub agent_id: Uuid,
    /// `active_tickets × w1 + critical_tickets × w2 − proficiency × w3`; lower wins.
    pub score: f64,
    pub open_tickets: u32,
    pub critical_tickets: u32,
    pub proficiency: u8,
    pub last_assigned_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Object)]
pub struct ExclusionDto {
    /// `inactive`, `not_in_team`, `lacks_skill`, `not_available`, `off_shift`, `on_break`,
    /// `at_capacity` or `current_assignee`.
    pub reason: String,
    pub agents: u32,
}

#[derive(Debug, Clone, Object)]
pub struct DecisionDto {
    /// The ticket version that recorded it.
    pub version: i64,
    pub decided_at: DateTime<Utc>,
    /// Absent: nobody was eligible; the ticket waited in the queue.
    pub chosen_agent_id: Option<Uuid>,
    pub skill_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub weights: WeightsDto,
    /// How many agents were eligible.
    pub eligible: u32,
    /// The best candidates, best first (at most ten).
    pub candidates: Vec<CandidateDto>,
    pub excluded: Vec<ExclusionDto>,
}

#[derive(Debug, Clone, Object)]
pub struct RoutingExplanation {
    pub ticket_id: Uuid,
    pub assignee_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    /// Every routing decision on the ticket, oldest first, straight from its log.
    pub decisions: Vec<DecisionDto>,
}

#[derive(Debug, Clone, Object)]
pub struct AgentWorkloadDto {
    pub agent_id: Uuid,
    pub full_name: String,
    pub status: String,
    pub on_shift: bool,
    pub routable: bool,
    pub open_tickets: i32,
    pub critical_tickets: i32,
    /// Held tickets whose SLA is at risk or breached.
    pub sla_at_risk: i64,
    pub capacity: i32,
    /// open / capacity (absent when capacity is 0).
    pub utilisation: Option<f64>,
}

#[derive(Debug, Clone, Object)]
pub struct TeamWorkloadDto {
    pub team_id: Uuid,
    pub name: String,
    pub members: i64,
    pub members_routable: i64,
    pub open_tickets: i64,
    pub critical_tickets: i64,
    pub sla_at_risk: i64,
    /// Unassigned tickets waiting for this team.
    pub queued: i64,
    pub capacity: i64,
    pub utilisation: Option<f64>,
}

#[derive(Debug, Clone, Object)]
pub struct WorkloadMetrics {
    pub agents: i64,
    pub agents_on_shift: i64,
    pub agents_routable: i64,
    pub assigned_tickets: i64,
    pub queued_tickets: i64,
    pub critical_tickets: i64,
    pub sla_at_risk: i64,
    pub capacity: i64,
    /// assigned / capacity of agents on shift (absent when nobody is on shift).
    pub utilisation: Option<f64>,
}

#[derive(Debug, Clone, Object)]
pub struct HourForecast {
    pub hour_start: DateTime<Utc>,
    pub expected_tickets: f64,
    /// Agents needed to hold the expected load at current handling times and capacities.
    pub agents_needed: i64,
}

#[derive(Debug, Clone, Object)]
pub struct Predictions {
    /// How the forecast is made.
    pub method: String,
    pub weeks_of_history: i64,
    /// Mean absolute error per hour when the last week is forecast from the weeks before it.
    pub holdout_mean_absolute_error: Option<f64>,
    /// The last week's actual mean tickets per hour, to read the error against.
    pub holdout_mean_actual: Option<f64>,
    /// Mean business hours a resolved ticket stayed open over the last 28 days.
    pub mean_resolution_hours: Option<f64>,
    pub resolved_tickets_measured: i64,
    /// Mean capacity of the agents (tickets held at once).
    pub mean_capacity: f64,
    pub hours: Vec<HourForecast>,
}

// ---- helpers ---------------------------------------------------------------------------------

fn move_dto(m: Move) -> MoveDto {
    MoveDto {
        ticket_id: m.ticket_id,
        from_agent_id: m.from_agent_id,
        to_agent_id: m.to_agent_id,
        score: m.score,
        priority: m.priority,
    }
}

fn decision_dto(version: i64, at: DateTime<Utc>, d: RoutingDecision) -> DecisionDto {
    DecisionDto {
        version,
        decided_at: at,
        chosen_agent_id: d.chosen.map(|a| a.0),
        skill_id: d.requirements.skill_id.map(|s| s.0),
        team_id: d.requirements.team_id.map(|t| t.0),
        weights: WeightsDto {
            active_tickets: d.weights.active_tickets,
            critical_tickets: d.weights.critical_tickets,
            proficiency: d.weights.proficiency,
        },
        eligible: d.eligible,
        candidates: d
            .candidates
            .into_iter()
            .map(|c| CandidateDto {
                agent_id: c.agent_id.0,
                score: c.score,
                open_tickets: c.open_tickets,
                critical_tickets: c.critical_tickets,
                proficiency: c.proficiency,
                last_assigned_at: c.last_assigned_at,
            })
            .collect(),
        excluded: d
            .excluded
            .into_iter()
            .map(|e| ExclusionDto {
                reason: e.reason.as_str().to_string(),
                agents: e.agents,
            })
            .collect(),
    }
}

fn ratio(part: f64, whole: f64) -> Option<f64> {
    (whole > 0.0).then(|| ((part / whole) * 1000.0).round() / 1000.0)
}

fn staff(user: &AuthUser) -> Result<(), ApiError> {
    user.require_staff("see routing and workload")
}

/// The seasonal forecast: for each hour, the mean of the same weekday-and-hour over the
/// previous `weeks` weeks.
fn seasonal(counts: &HashMap<DateTime<Utc>, i64>, hour: DateTime<Utc>, weeks: i64) -> f64 {
    let total: i64 = (1..=weeks)
        .map(|w| {
            counts
                .get(&(hour - Duration::weeks(w)))
                .copied()
                .unwrap_or(0)
        })
        .sum();
    total as f64 / weeks as f64
}

// ---- the API ---------------------------------------------------------------------------------

#[derive(Default)]
pub struct RoutingApi;

#[OpenApi(tag = "ApiTags::Agents")]
impl RoutingApi {
    /// Unassigned tickets in the order they will be served: most urgent, then oldest (staff).
    #[oai(
        path = "/api/tickets/queue",
        method = "get",
        operation_id = "ticket_queue"
    )]
    async fn queue(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        /// At most this many (default 50, at most 500).
        limit: Query<Option<i64>>,
        #[oai(name = "X-Consistency-Token")] consistency: Header<Option<String>>,
    ) -> Result<Json<QueueDto>, ApiError> {
        staff(&auth.0)?;
        wait_workforce(&state, consistency.0.as_deref()).await?;
        let limit = limit.0.unwrap_or(50).clamp(1, 500);
        let rows = workforce::queue(&state.pool, limit)
            .await
            .map_err(ApiError::database)?;
        let total = workforce::queue_length(&state.pool)
            .await
            .map_err(ApiError::database)?;
        Ok(Json(QueueDto {
            total,
            items: rows
                .into_iter()
                .zip(1..)
                .map(|(r, position)| QueuedTicketDto {
                    position,
                    ticket_id: r.ticket_id,
                    number: r
                        .number
                        .map(|n| docket_domain::values::TicketNumber(n).to_string()),
                    subject: r.subject,
                    priority: r.priority,
                    status: r.status,
                    team_id: r.team_id,
                    skill_id: r.skill_id,
                    created_at: r.created_at,
                })
                .collect(),
        }))
    }

    /// Assign queued tickets now, as the background router does whenever an agent frees up
    /// (agents, managers, admins).
    #[oai(
        path = "/api/tickets/process-queue",
        method = "post",
        operation_id = "process_queue"
    )]
    async fn process_queue(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
    ) -> Result<Json<MovesDto>, ApiError> {
        auth.0.require_ticket_worker("process the queue")?;
        let moves = routing::process_queue(&state, 500).await?;
        Ok(Json(MovesDto {
            dry_run: false,
            moves: moves.into_iter().map(move_dto).collect(),
        }))
    }

    /// Move tickets from agents over capacity or unable to work them (off shift, not
    /// available, on a break) to eligible agents, by the routing scores (managers, admins).
    #[oai(
        path = "/api/workload/rebalance",
        method = "post",
        operation_id = "rebalance"
    )]
    async fn rebalance(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        body: JsonBody<RebalanceRequest>,
    ) -> Result<Json<MovesDto>, ApiError> {
        auth.0.require_admin_or_manager("rebalance workload")?;
        let dry_run = body.0.dry_run.unwrap_or(false);
        let moves = routing::rebalance(&state, dry_run).await?;
        Ok(Json(MovesDto {
            dry_run,
            moves: moves.into_iter().map(move_dto).collect(),
        }))
    }

    /// Why the ticket went where it did: every routing decision, with the candidates' scores
    /// and why the others were left out (staff).
    #[oai(
        path = "/api/tickets/:id/routing",
        method = "get",
        operation_id = "ticket_routing"
    )]
    async fn explain(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        id: Path<Uuid>,
    ) -> Result<Json<RoutingExplanation>, ApiError> {
        staff(&auth.0)?;
        let (ticket, _) = state.tickets.load(&id.0.to_string()).await?;
        let Some(current) = ticket.state() else {
            return Err(ApiError::not_found("ticket"));
        };
        let events = log::events_of_aggregate(&state.pool, "ticket", &id.0.to_string())
            .await
            .map_err(ApiError::database)?;
        let mut decisions = Vec::new();
        for event in events.iter().filter(|e| e.event_type == "TicketRouted") {
            let decoded: TicketEvent = fold::decode(event).map_err(ApiError::internal)?;
            if let TicketEvent::TicketRouted {
                decision,
                occurred_at,
            } = decoded
            {
                decisions.push(decision_dto(event.sequence, occurred_at, *decision));
            }
        }
        Ok(Json(RoutingExplanation {
            ticket_id: id.0,
            assignee_id: current.assignee_id.map(|a| a.0),
            team_id: current.team_id.map(|t| t.0),
            decisions,
        }))
    }

    /// An agent takes a queued ticket: the agent themself, or a manager or admin for them.
    /// Refused when the ticket is already assigned or the agent is at capacity.
    #[oai(
        path = "/api/agents/:agent_id/claim/:ticket_id",
        method = "post",
        operation_id = "claim_ticket"
    )]
    async fn claim(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        context: Data<&RequestContext>,
        agent_id: Path<Uuid>,
        ticket_id: Path<Uuid>,
    ) -> Result<TicketWritten, ApiError> {
        let me = auth.0;
        me.require_ticket_worker("claim tickets")?;
        if me.id.0 != agent_id.0 {
            me.require_admin_or_manager("claim tickets for someone else")?;
        }
        let assignee = crate::accounts::standing(&state, UserId(agent_id.0))
            .await?
            .ok_or_else(|| ApiError::not_found("agent"))?;
        let (ticket, version) = state.tickets.load(&ticket_id.0.to_string()).await?;
        let Some(current) = ticket.state() else {
            return Err(ApiError::not_found("ticket"));
        };
        let already = || ApiError::Conflict {
            kind: "already-claimed",
            title: "The ticket is not in the queue",
            detail: "the ticket is already assigned".into(),
        };
        if current.assignee_id.is_some() {
            return Err(already());
        }
        if let Some(row) = workforce::agents(&state.pool, Some(agent_id.0))
            .await
            .map_err(ApiError::database)?
            .first()
            && row.open_tickets >= row.capacity
        {
            return Err(ApiError::Conflict {
                kind: "at-capacity",
                title: "The agent is at capacity",
                detail: format!(
                    "the agent holds {} open tickets; their capacity is {}",
                    row.open_tickets, row.capacity
                ),
            });
        }
        let committed = state
            .tickets
            .execute(
                &ticket_id.0.to_string(),
                // Exactly the state seen: if anyone else claimed it meanwhile, this is refused.
                Some(version),
                TicketCommand::Assign(AssignTicket {
                    assignee,
                    reason: Reason::parse("claimed from the queue").ok(),
                    actor: me.actor(),
                    at: state.clock.now(),
                }),
                context.metadata(Some(me.actor())),
            )
            .await
            .map_err(|error| match error {
                CommandError::VersionMismatch { .. } => already(),
                other => ticket_error(other, "agent_id"),
            })?;
        written(committed)
    }

    /// Open, critical and SLA-at-risk tickets per agent, and utilisation against capacity
    /// (staff).
    #[oai(
        path = "/api/workload/agents",
        method = "get",
        operation_id = "workload_agents"
    )]
    async fn agents(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        #[oai(name = "X-Consistency-Token")] consistency: Header<Option<String>>,
    ) -> Result<Json<Vec<AgentWorkloadDto>>, ApiError> {
        staff(&auth.0)?;
        wait_workforce(&state, consistency.0.as_deref()).await?;
        Ok(Json(agent_workloads(&state).await?))
    }

    /// The same per team: its members' tickets, and the tickets queued for it (staff).
    #[oai(
        path = "/api/workload/teams",
        method = "get",
        operation_id = "workload_teams"
    )]
    async fn teams(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        #[oai(name = "X-Consistency-Token")] consistency: Header<Option<String>>,
    ) -> Result<Json<Vec<TeamWorkloadDto>>, ApiError> {
        staff(&auth.0)?;
        wait_workforce(&state, consistency.0.as_deref()).await?;
        let agents: HashMap<Uuid, AgentWorkloadDto> = agent_workloads(&state)
            .await?
            .into_iter()
            .map(|a| (a.agent_id, a))
            .collect();
        let teams = workforce::teams(&state.pool)
            .await
            .map_err(ApiError::database)?;
        let members = workforce::members(&state.pool, None)
            .await
            .map_err(ApiError::database)?;
        let queued: HashMap<Uuid, i64> = sqlx::query_as::<_, (Uuid, i64)>(
            "SELECT team_id, count(*) FROM routing_tickets_view
              WHERE assignee_id IS NULL AND team_id IS NOT NULL
                AND status NOT IN ('resolved', 'closed')
              GROUP BY team_id",
        )
        .fetch_all(&state.pool)
        .await
        .map_err(ApiError::database)?
        .into_iter()
        .collect();
        let mut by_team: BTreeMap<Uuid, Vec<&AgentWorkloadDto>> = BTreeMap::new();
        for member in &members {
            if let Some(agent) = agents.get(&member.user_id) {
                by_team.entry(member.team_id).or_default().push(agent);
            }
        }
        Ok(Json(
            teams
                .into_iter()
                .map(|team| {
                    let list = by_team.get(&team.id).cloned().unwrap_or_default();
                    let open: i64 = list.iter().map(|a| i64::from(a.open_tickets)).sum();
                    let capacity: i64 = list.iter().map(|a| i64::from(a.capacity)).sum();
                    TeamWorkloadDto {
                        team_id: team.id,
                        name: team.name,
                        members: list.len() as i64,
                        members_routable: list.iter().filter(|a| a.routable).count() as i64,
                        open_tickets: open,
                        critical_tickets: list.iter().map(|a| i64::from(a.critical_tickets)).sum(),
                        sla_at_risk: list.iter().map(|a| a.sla_at_risk).sum(),
                        queued: queued.get(&team.id).copied().unwrap_or(0),
                        capacity,
                        utilisation: ratio(open as f64, capacity as f64),
                    }
                })
                .collect(),
        ))
    }

    /// Totals across the support floor (staff).
    #[oai(
        path = "/api/workload/metrics",
        method = "get",
        operation_id = "workload_metrics"
    )]
    async fn metrics(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        #[oai(name = "X-Consistency-Token")] consistency: Header<Option<String>>,
    ) -> Result<Json<WorkloadMetrics>, ApiError> {
        staff(&auth.0)?;
        wait_workforce(&state, consistency.0.as_deref()).await?;
        let agents = agent_workloads(&state).await?;
        let queued = workforce::queue_length(&state.pool)
            .await
            .map_err(ApiError::database)?;
        let on_shift: Vec<&AgentWorkloadDto> = agents.iter().filter(|a| a.on_shift).collect();
        let assigned: i64 = agents.iter().map(|a| i64::from(a.open_tickets)).sum();
        let shift_capacity: i64 = on_shift.iter().map(|a| i64::from(a.capacity)).sum();
        let shift_load: i64 = on_shift.iter().map(|a| i64::from(a.open_tickets)).sum();
        Ok(Json(WorkloadMetrics {
            agents: agents.len() as i64,
            agents_on_shift: on_shift.len() as i64,
            agents_routable: agents.iter().filter(|a| a.routable).count() as i64,
            assigned_tickets: assigned,
            queued_tickets: queued,
            critical_tickets: agents.iter().map(|a| i64::from(a.critical_tickets)).sum(),
            sla_at_risk: agents.iter().map(|a| a.sla_at_risk).sum(),
            capacity: agents.iter().map(|a| i64::from(a.capacity)).sum(),
            utilisation: ratio(shift_load as f64, shift_capacity as f64),
        }))
    }

    /// Expected incoming tickets per hour for the next `hours` (default 24, at most 168), and
    /// the agents needed to hold them (staff).
    #[oai(
        path = "/api/workload/predictions",
        method = "get",
        operation_id = "workload_predictions"
    )]
    async fn predictions(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        hours: Query<Option<i64>>,
    ) -> Result<Json<Predictions>, ApiError> {
        staff(&auth.0)?;
        let hours = hours.0.unwrap_or(24);
        if !(1..=168).contains(&hours) {
            return Err(ApiError::InvalidParameter {
                field: "hours".into(),
                detail: "must be between 1 and 168".into(),
            });
        }
        const WEEKS: i64 = 4;
        let now = state.clock.now();
        let this_hour = now
            .duration_trunc(Duration::hours(1))
            .map_err(ApiError::internal)?;
        // Four weeks to forecast from, and one more to test the forecast on.
        let from = this_hour - Duration::weeks(WEEKS + 1);
        let counts: HashMap<DateTime<Utc>, i64> = workforce::arrivals_per_hour(&state.pool, from)
            .await
            .map_err(ApiError::database)?
            .into_iter()
            .collect();
        let oldest: Option<DateTime<Utc>> =
            sqlx::query_scalar("SELECT min(created_at) FROM routing_tickets_view")
                .fetch_one(&state.pool)
                .await
                .map_err(ApiError::database)?;
        let weeks_of_history = oldest.map_or(0, |o| (now - o).num_weeks());
        // Hold-out: forecast each hour of the last week from the four weeks before it.
        let (holdout_mae, holdout_actual) = if weeks_of_history > WEEKS {
            let hours_back: Vec<DateTime<Utc>> =
                (1..=168).map(|h| this_hour - Duration::hours(h)).collect();
            let errors: f64 = hours_back
                .iter()
                .map(|h| (seasonal(&counts, *h, WEEKS) - *counts.get(h).unwrap_or(&0) as f64).abs())
                .sum();
            let actual: i64 = hours_back.iter().map(|h| counts.get(h).unwrap_or(&0)).sum();
            (Some(errors / 168.0), Some(actual as f64 / 168.0))
        } else {
            (None, None)
        };
        let (resolution_hours, measured) =
            workforce::mean_resolution_hours(&state.pool, now - Duration::days(28))
                .await
                .map_err(ApiError::database)?;
        let agents = agent_workloads(&state).await?;
        let mean_capacity = if agents.is_empty() {
            f64::from(docket_domain::workforce::agent::Agent::DEFAULT_CAPACITY)
        } else {
            agents.iter().map(|a| f64::from(a.capacity)).sum::<f64>() / agents.len() as f64
        };
        let forecast = (0..hours)
            .map(|h| {
                let hour_start = this_hour + Duration::hours(h);
                let expected = seasonal(&counts, hour_start, WEEKS);
                // Little's law: tickets held at once = arrival rate × time held.
                let held = expected * resolution_hours.unwrap_or(0.0);
                let agents_needed = if mean_capacity > 0.0 {
                    (held / mean_capacity).ceil() as i64
                } else {
                    0
                };
                HourForecast {
                    hour_start,
                    expected_tickets: (expected * 100.0).round() / 100.0,
                    agents_needed,
                }
            })
            .collect();
        Ok(Json(Predictions {
            method: format!(
                "seasonal average: each hour forecast as the mean count of tickets created in \
                 the same weekday and UTC hour over the previous {WEEKS} weeks; agents needed by \
                 Little's law (expected arrivals per hour × mean business hours to resolution ÷ \
                 mean agent capacity)"
            ),
            weeks_of_history,
            holdout_mean_absolute_error: holdout_mae.map(|e| (e * 1000.0).round() / 1000.0),
            holdout_mean_actual: holdout_actual.map(|a| (a * 1000.0).round() / 1000.0),
            mean_resolution_hours: resolution_hours.map(|h| (h * 100.0).round() / 100.0),
            resolved_tickets_measured: measured,
            mean_capacity,
            hours: forecast,
        }))
    }
}

async fn agent_workloads(state: &AppState) -> Result<Vec<AgentWorkloadDto>, ApiError> {
    let at_risk = workforce::sla_at_risk_by_agent(&state.pool)
        .await
        .map_err(ApiError::database)?;
    let now = state.clock.now();
    Ok(workforce::agents(&state.pool, None)
        .await
        .map_err(ApiError::database)?
        .iter()
        .map(|row| {
            let snapshot = routing::snapshot(row);
            AgentWorkloadDto {
                agent_id: row.agent_id,
                full_name: row.full_name.clone(),
                status: row.status.clone(),
                on_shift: snapshot.on_shift(now),
                routable: snapshot.eligibility(&Default::default(), now).is_ok(),
                open_tickets: row.open_tickets,
                critical_tickets: row.critical_tickets,
                sla_at_risk: at_risk.get(&row.agent_id).copied().unwrap_or(0),
                capacity: row.capacity,
                utilisation: ratio(f64::from(row.open_tickets), f64::from(row.capacity)),
            }
        })
        .collect())
}
