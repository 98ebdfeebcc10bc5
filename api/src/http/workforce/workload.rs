//! `/api/workload/…`: who holds how much, per agent, per team and across the floor, and the
//! forecast.

use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;

use super::{AgentWorkloadDto, HourForecast, Predictions, TeamWorkloadDto, WorkloadMetrics};
use crate::app::SharedApp;
use crate::app::workforce::workload::{self, AgentWorkload, ratio};
use crate::http::ApiTags;
use crate::http::paging::{Page, Paging};
use crate::http::principal::SignedIn;
use crate::http::problem::ApiError;
use crate::http::wire::{default_page, default_page_size};

impl From<AgentWorkload> for AgentWorkloadDto {
    fn from(a: AgentWorkload) -> Self {
        AgentWorkloadDto {
            agent_id: a.agent_id,
            full_name: a.full_name,
            status: a.status.into(),
            on_shift: a.on_shift,
            routable: a.routable,
            open_tickets: a.open_tickets,
            critical_tickets: a.critical_tickets,
            sla_at_risk: a.sla_at_risk,
            capacity: a.capacity,
            utilisation: ratio(f64::from(a.open_tickets), f64::from(a.capacity)),
        }
    }
}

fn total(agents: &[AgentWorkload], of: impl Fn(&AgentWorkload) -> i64) -> i64 {
    agents.iter().map(of).sum()
}

#[derive(Default)]
pub struct WorkloadApi;

#[OpenApi(tag = "ApiTags::Agents")]
impl WorkloadApi {
    /// Open, critical and SLA-at-risk tickets per agent, and utilisation against capacity
    /// (staff).
    #[oai(
        path = "/api/workload/agents",
        method = "get",
        operation_id = "workload_agents"
    )]
    async fn agents(
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
    ) -> Result<Json<Page<AgentWorkloadDto>>, ApiError> {
        let agents = workload::agents(&app, &auth.0).await?;
        Ok(Json(Page::of(agents, Paging::new(page.0, page_size.0))))
    }

    /// The same per team: its members' tickets, and the tickets queued for it (staff).
    #[oai(
        path = "/api/workload/teams",
        method = "get",
        operation_id = "workload_teams"
    )]
    async fn teams(
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
    ) -> Result<Json<Page<TeamWorkloadDto>>, ApiError> {
        let teams = workload::teams(&app, &auth.0).await?;
        let teams: Vec<TeamWorkloadDto> = teams
            .into_iter()
            .map(|team| {
                let open = total(&team.members, |a| i64::from(a.open_tickets));
                let capacity = total(&team.members, |a| i64::from(a.capacity));
                TeamWorkloadDto {
                    team_id: team.team.id,
                    name: team.team.name,
                    members: team.members.len() as i64,
                    members_routable: team.members.iter().filter(|a| a.routable).count() as i64,
                    open_tickets: open,
                    critical_tickets: total(&team.members, |a| i64::from(a.critical_tickets)),
                    sla_at_risk: total(&team.members, |a| a.sla_at_risk),
                    queued: team.queued,
                    capacity,
                    utilisation: ratio(open as f64, capacity as f64),
                }
            })
            .collect();
        Ok(Json(Page::of(teams, Paging::new(page.0, page_size.0))))
    }

    /// Totals across the support floor (staff).
    #[oai(
        path = "/api/workload/metrics",
        method = "get",
        operation_id = "workload_metrics"
    )]
    async fn metrics(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
    ) -> Result<Json<WorkloadMetrics>, ApiError> {
        let floor = workload::floor(&app, &auth.0).await?;
        let agents = &floor.agents;
        let on_shift: Vec<AgentWorkload> = agents.iter().filter(|a| a.on_shift).cloned().collect();
        let shift_load = total(&on_shift, |a| i64::from(a.open_tickets));
        let shift_capacity = total(&on_shift, |a| i64::from(a.capacity));
        Ok(Json(WorkloadMetrics {
            agents: agents.len() as i64,
            agents_on_shift: on_shift.len() as i64,
            agents_routable: agents.iter().filter(|a| a.routable).count() as i64,
            assigned_tickets: total(agents, |a| i64::from(a.open_tickets)),
            queued_tickets: floor.queued,
            critical_tickets: total(agents, |a| i64::from(a.critical_tickets)),
            sla_at_risk: total(agents, |a| a.sla_at_risk),
            capacity: total(agents, |a| i64::from(a.capacity)),
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
        auth: SignedIn,
        app: Data<&SharedApp>,
        hours: Query<Option<i64>>,
    ) -> Result<Json<Predictions>, ApiError> {
        let hours = hours.0.unwrap_or(24);
        if !(1..=168).contains(&hours) {
            return Err(ApiError::InvalidParameter {
                field: "hours".into(),
                detail: "must be between 1 and 168".into(),
            });
        }
        let predicted = workload::predictions(&app, &auth.0, hours).await?;
        Ok(Json(Predictions {
            method: docket_domain::workforce::forecast::method(),
            weeks_of_history: predicted.weeks_of_history,
            holdout_mean_absolute_error: predicted.forecast.holdout_mean_absolute_error,
            holdout_mean_actual: predicted.forecast.holdout_mean_actual,
            mean_resolution_hours: predicted.mean_resolution_hours,
            resolved_tickets_measured: predicted.resolved_tickets_measured,
            mean_capacity: predicted.mean_capacity,
            hours: predicted
                .forecast
                .hours
                .into_iter()
                .map(|h| HourForecast {
                    hour_start: h.hour_start.into(),
                    expected_tickets: h.expected_tickets,
                    agents_needed: h.agents_needed,
                })
                .collect(),
        }))
    }
}
