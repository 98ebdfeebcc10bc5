//! `/api/tickets/queue`, `/api/tickets/process-queue`, `/api/workload/rebalance`,
//! `/api/tickets/{id}/routing`, `/api/agents/{agent_id}/claim/{ticket_id}`: the queue, how
//! tickets are routed, and claims.

use docket_domain::values::TicketNumber;
use docket_domain::workforce::routing::RoutingDecision;
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use uuid::Uuid;

use super::{
    CandidateDto, DecisionDto, ExclusionDto, MoveDto, MovesDto, QueueDto, QueuedTicketDto,
    RebalanceRequest, RoutingExplanation, WeightsDto,
};
use crate::app::router::{Move, queue};
use crate::app::{Origin, SharedApp, tickets};
use crate::http::ApiTags;
use crate::http::json::JsonBody;
use crate::http::principal::SignedIn;
use crate::http::problem::ApiError;
use crate::http::tickets::TicketWritten;
use crate::http::wire::{default_page, default_page_size};

impl From<Move> for MoveDto {
    fn from(m: Move) -> Self {
        MoveDto {
            ticket_id: m.ticket_id,
            from_agent_id: m.from_agent_id,
            to_agent_id: m.to_agent_id,
            score: m.score,
            priority: m.priority.into(),
        }
    }
}

fn moves(dry_run: bool, moves: Vec<Move>) -> Json<MovesDto> {
    Json(MovesDto {
        dry_run,
        moves: moves.into_iter().map(MoveDto::from).collect(),
    })
}

impl From<queue::RecordedDecision> for DecisionDto {
    fn from(recorded: queue::RecordedDecision) -> Self {
        let d: RoutingDecision = recorded.decision;
        DecisionDto {
            version: recorded.version,
            decided_at: recorded.decided_at.into(),
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
                    last_assigned_at: c.last_assigned_at.map(Into::into),
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
}

#[derive(Default)]
pub struct QueueApi;

#[OpenApi(tag = "ApiTags::Agents")]
impl QueueApi {
    /// Unassigned tickets in the order they will be served: most urgent, then oldest (staff).
    #[oai(
        path = "/api/tickets/queue",
        method = "get",
        operation_id = "ticket_queue"
    )]
    async fn queue(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
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
    ) -> Result<Json<QueueDto>, ApiError> {
        let found = queue::queue(&app, &auth.0, page.0, page_size.0).await?;
        Ok(Json(QueueDto {
            total: found.total,
            page: page.0,
            page_size: page_size.0,
            items: found
                .first
                .into_iter()
                .zip(found.skipped + 1..)
                .map(|(r, position)| QueuedTicketDto {
                    position,
                    ticket_id: r.ticket_id,
                    number: r.number.map(|n| TicketNumber(n).to_string()),
                    subject: r.subject,
                    priority: r.priority.into(),
                    status: r.status.into(),
                    team_id: r.team_id,
                    skill_id: r.skill_id,
                    created_at: r.created_at.into(),
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
    async fn process(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
    ) -> Result<Json<MovesDto>, ApiError> {
        Ok(moves(false, queue::drain(&app, &auth.0).await?))
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
        auth: SignedIn,
        app: Data<&SharedApp>,
        body: JsonBody<RebalanceRequest>,
    ) -> Result<Json<MovesDto>, ApiError> {
        let dry_run = body.0.dry_run.unwrap_or(false);
        Ok(moves(
            dry_run,
            queue::rebalance(&app, &auth.0, dry_run).await?,
        ))
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
        auth: SignedIn,
        app: Data<&SharedApp>,
        id: Path<Uuid>,
    ) -> Result<Json<RoutingExplanation>, ApiError> {
        let explained = queue::explain(&app, &auth.0, id.0).await?;
        Ok(Json(RoutingExplanation {
            ticket_id: explained.ticket_id,
            assignee_id: explained.assignee_id,
            team_id: explained.team_id,
            decisions: explained
                .decisions
                .into_iter()
                .map(DecisionDto::from)
                .collect(),
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
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        agent_id: Path<Uuid>,
        ticket_id: Path<Uuid>,
    ) -> Result<TicketWritten, ApiError> {
        let written = tickets::claim(&app, &auth.0, &origin, agent_id.0, ticket_id.0).await?;
        Ok(TicketWritten::ok(written))
    }
}
