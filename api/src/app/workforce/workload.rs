//! The workload reports: per agent, per team, across the floor, and the forecast of the hours to
//! come (the forecast itself is `docket_domain::workforce::forecast`, a pure function).

use std::collections::{BTreeMap, HashMap};

use chrono::{Duration, DurationRound};
use docket_domain::access::Permission;
use docket_domain::values::AgentStatus;
use docket_domain::workforce::agent::Agent;
use docket_domain::workforce::forecast::{self, Forecast, ForecastInputs, WEEKS};
use docket_projections::registry;
use docket_projections::workforce::{self, TeamRow};
use uuid::Uuid;

use crate::app::{App, AppError, Caller, router};

const STAFF_ONLY: &str = "see routing and workload";

/// One agent's load.
#[derive(Debug, Clone)]
pub struct AgentWorkload {
    pub agent_id: Uuid,
    pub full_name: String,
    pub status: AgentStatus,
    pub on_shift: bool,
    pub routable: bool,
    pub open_tickets: i32,
    pub critical_tickets: i32,
    /// Held tickets whose SLA is at risk or breached.
    pub sla_at_risk: i64,
    pub capacity: i32,
}

/// One team's load: its members' tickets, and the tickets queued for it.
#[derive(Debug, Clone)]
pub struct TeamWorkload {
    pub team: TeamRow,
    pub members: Vec<AgentWorkload>,
    pub queued: i64,
}

/// The whole floor.
#[derive(Debug, Clone)]
pub struct FloorWorkload {
    pub agents: Vec<AgentWorkload>,
    pub queued: i64,
}

/// `part / whole` to three decimals; absent when `whole` is 0.
pub fn ratio(part: f64, whole: f64) -> Option<f64> {
    (whole > 0.0).then(|| ((part / whole) * 1000.0).round() / 1000.0)
}

async fn read(app: &App, caller: &Caller) -> Result<(), AppError> {
    caller.require(Permission::ReadStaffViews, STAFF_ONLY)?;
    app.consistency
        .include(caller, &[&registry::WORKFORCE, &registry::TICKETS])
        .await
}

async fn agent_workloads(app: &App) -> Result<Vec<AgentWorkload>, AppError> {
    let at_risk = workforce::sla_at_risk_by_agent(&app.pool).await?;
    let now = app.time.now();
    Ok(workforce::agents(&app.pool, None)
        .await?
        .iter()
        .map(|row| {
            let snapshot = router::snapshot(row);
            AgentWorkload {
                agent_id: row.agent_id,
                full_name: row.full_name.clone(),
                status: row.status,
                on_shift: snapshot.on_shift(now),
                routable: snapshot.eligibility(&Default::default(), now).is_ok(),
                open_tickets: row.open_tickets,
                critical_tickets: row.critical_tickets,
                sla_at_risk: at_risk.get(&row.agent_id).copied().unwrap_or(0),
                capacity: row.capacity,
            }
        })
        .collect())
}

/// Open, critical and SLA-at-risk tickets per agent (staff).
pub async fn agents(app: &App, caller: &Caller) -> Result<Vec<AgentWorkload>, AppError> {
    read(app, caller).await?;
    agent_workloads(app).await
}

/// The same per team (staff).
pub async fn teams(app: &App, caller: &Caller) -> Result<Vec<TeamWorkload>, AppError> {
    read(app, caller).await?;
    let agents: HashMap<Uuid, AgentWorkload> = agent_workloads(app)
        .await?
        .into_iter()
        .map(|a| (a.agent_id, a))
        .collect();
    let queued = workforce::queued_per_team(&app.pool).await?;
    let mut by_team: BTreeMap<Uuid, Vec<AgentWorkload>> = BTreeMap::new();
    for member in workforce::members(&app.pool, None).await? {
        if let Some(agent) = agents.get(&member.user_id) {
            by_team
                .entry(member.team_id)
                .or_default()
                .push(agent.clone());
        }
    }
    Ok(workforce::teams(&app.pool)
        .await?
        .into_iter()
        .map(|team| TeamWorkload {
            members: by_team.remove(&team.id).unwrap_or_default(),
            queued: queued.get(&team.id).copied().unwrap_or(0),
            team,
        })
        .collect())
}

/// Totals across the support floor (staff).
pub async fn floor(app: &App, caller: &Caller) -> Result<FloorWorkload, AppError> {
    read(app, caller).await?;
    Ok(FloorWorkload {
        agents: agent_workloads(app).await?,
        queued: workforce::queue_length(&app.pool).await?,
    })
}

/// What the forecast was made from, beside it.
pub struct Predictions {
    pub forecast: Forecast,
    pub weeks_of_history: i64,
    pub mean_resolution_hours: Option<f64>,
    pub resolved_tickets_measured: i64,
    pub mean_capacity: f64,
}

/// Expected incoming tickets per hour for the next `hours`, and the agents needed
/// to hold them (staff).
pub async fn predictions(app: &App, caller: &Caller, hours: i64) -> Result<Predictions, AppError> {
    read(app, caller).await?;
    let now = app.time.now();
    let this_hour = now
        .duration_trunc(Duration::hours(1))
        .map_err(AppError::internal)?;
    // The weeks to forecast from, and one more to test the forecast on.
    let from = this_hour - Duration::weeks(WEEKS + 1);
    let arrivals = workforce::arrivals_per_hour(&app.pool, from)
        .await?
        .into_iter()
        .collect();
    let oldest = workforce::oldest_ticket(&app.pool).await?;
    let weeks_of_history = oldest.map_or(0, |o| (now - o).num_weeks());
    let (mean_resolution_hours, resolved_tickets_measured) =
        workforce::mean_resolution_hours(&app.pool, now - Duration::days(28)).await?;
    let agents = agent_workloads(app).await?;
    let mean_capacity = if agents.is_empty() {
        f64::from(Agent::DEFAULT_CAPACITY)
    } else {
        agents.iter().map(|a| f64::from(a.capacity)).sum::<f64>() / agents.len() as f64
    };
    let forecast = forecast::forecast(&ForecastInputs {
        arrivals,
        this_hour,
        hours,
        weeks_of_history,
        mean_resolution_hours,
        mean_capacity,
    });
    Ok(Predictions {
        forecast,
        weeks_of_history,
        mean_resolution_hours: mean_resolution_hours.map(|h| (h * 100.0).round() / 100.0),
        resolved_tickets_measured,
        mean_capacity,
    })
}
