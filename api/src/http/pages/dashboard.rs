//! The manager's dashboard: what is open by status and priority, SLA compliance over the last
//! 30 days, what is at risk or breached now, the backlog and created-vs-resolved over 30 days,
//! each agent's and team's load, and a rebalance shown as a dry run before it is made. It
//! refreshes itself when the log moves.

use askama::Template;
use chrono::Duration;
use docket_domain::sla::ClockState;
use docket_domain::{Priority, TicketStatus};
use docket_projections::sla::ComplianceGroup;
use docket_projections::tickets::TicketFilter;
use poem::http::StatusCode;
use poem::web::{Data, Form};
use poem::{Request, Response};
use serde::Deserialize;

use super::directory::Directory;
use super::{Chrome, PageError, Visitor, charts, html, respond, see_other, signed_in};
use crate::app::sla;
use crate::app::tickets as service;
use crate::app::workforce::workload;
use crate::app::{SharedApp, flow, router};

pub struct Count {
    label: &'static str,
    count: i64,
    /// The largest count beside it, the bar's full length (a `<meter>`: the CSP allows no
    /// inline style).
    most: i64,
}

pub struct AgentLoad {
    name: String,
    status: &'static str,
    open: i32,
    capacity: i32,
    critical: i32,
    at_risk: i64,
}

pub struct TeamLoad {
    name: String,
    members: usize,
    open: i32,
    capacity: i32,
    queued: i64,
}

/// One day of the flow, for the charts' text alternative.
pub struct FlowLine {
    day: String,
    opened: i64,
    finished: i64,
    backlog: i64,
}

pub struct Numbers {
    /// The backlog at the end of each of the last 30 days (SVG).
    backlog_chart: String,
    /// Created and resolved on each of the last 30 days (SVG).
    flow_chart: String,
    flow: Vec<FlowLine>,
    created_30: i64,
    resolved_30: i64,
    teams: Vec<TeamLoad>,
    by_status: Vec<Count>,
    by_priority: Vec<Count>,
    open_total: i64,
    at_risk_now: usize,
    breached_now: usize,
    compliance: String,
    met: i64,
    breached: i64,
    agents: Vec<AgentLoad>,
    queued: i64,
}

/// A rebalance, proposed (a dry run) or made.
pub struct Rebalance {
    made: bool,
    moves: Vec<MoveLine>,
}

pub struct MoveLine {
    href: String,
    ticket: String,
    priority: &'static str,
    from: String,
    to: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    numbers: Numbers,
    rebalance: Option<Rebalance>,
}

#[derive(Template)]
#[template(path = "dashboard_numbers.html")]
struct NumbersPart {
    numbers: Numbers,
}

fn bars(counts: Vec<(&'static str, i64)>) -> Vec<Count> {
    let most = counts.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    counts
        .into_iter()
        .map(|(label, count)| Count { label, count, most })
        .collect()
}

async fn count(app: &SharedApp, visitor: &Visitor, filter: TicketFilter) -> Result<i64, PageError> {
    let filter = TicketFilter {
        page: 1,
        page_size: 1,
        ..filter
    };
    Ok(service::list(app, visitor.caller(), filter).await?.total)
}

async fn numbers(app: &SharedApp, visitor: &Visitor) -> Result<Numbers, PageError> {
    let caller = visitor.caller();
    let mut by_status = Vec::new();
    for status in TicketStatus::ALL {
        let filter = TicketFilter {
            statuses: vec![*status],
            ..TicketFilter::default()
        };
        by_status.push((status.as_str(), count(app, visitor, filter).await?));
    }
    let unfinished: Vec<TicketStatus> = TicketStatus::unfinished().collect();
    let mut by_priority = Vec::new();
    for priority in Priority::ALL {
        let filter = TicketFilter {
            statuses: unfinished.clone(),
            priorities: vec![*priority],
            ..TicketFilter::default()
        };
        by_priority.push((priority.as_str(), count(app, visitor, filter).await?));
    }
    let open_total = by_priority.iter().map(|(_, n)| n).sum();
    let violations = sla::violations(app, caller).await?;
    let now = app.time.now();
    let decided = sla::compliance(
        app,
        caller,
        ComplianceGroup::Priority,
        now - Duration::days(30),
        now,
    )
    .await?;
    let (met, breached) = decided
        .iter()
        .fold((0, 0), |(m, b), row| (m + row.met, b + row.breached));
    let compliance = if met + breached == 0 {
        "no clock decided yet".to_string()
    } else {
        format!("{:.1} %", met as f64 * 100.0 / (met + breached) as f64)
    };
    let floor = workload::floor(app, caller).await?;
    let days = flow::recent_days(app, caller, 30).await?;
    let teams = workload::teams(app, caller)
        .await?
        .into_iter()
        .map(|team| TeamLoad {
            name: team.team.name,
            members: team.members.len(),
            open: team.members.iter().map(|m| m.open_tickets).sum(),
            capacity: team.members.iter().map(|m| m.capacity).sum(),
            queued: team.queued,
        })
        .collect();
    Ok(Numbers {
        backlog_chart: charts::backlog(&days),
        flow_chart: charts::created_and_resolved(&days),
        created_30: days.iter().map(|d| d.opened).sum(),
        resolved_30: days.iter().map(|d| d.finished).sum(),
        flow: days
            .iter()
            .map(|d| FlowLine {
                day: d.day.format("%Y-%m-%d").to_string(),
                opened: d.opened,
                finished: d.finished,
                backlog: d.backlog,
            })
            .collect(),
        teams,
        by_status: bars(by_status),
        by_priority: bars(by_priority),
        open_total,
        at_risk_now: violations
            .iter()
            .filter(|v| v.state == ClockState::AtRisk)
            .count(),
        breached_now: violations
            .iter()
            .filter(|v| v.state == ClockState::Breached)
            .count(),
        compliance,
        met,
        breached,
        agents: floor
            .agents
            .into_iter()
            .map(|a| AgentLoad {
                name: a.full_name,
                status: a.status.as_str(),
                open: a.open_tickets,
                capacity: a.capacity,
                critical: a.critical_tickets,
                at_risk: a.sla_at_risk,
            })
            .collect(),
        queued: floor.queued,
    })
}

async fn manager(req: &Request, app: &SharedApp) -> Result<Visitor, PageError> {
    may_see(signed_in(req, app).await?)
}

fn may_see(visitor: Visitor) -> Result<Visitor, PageError> {
    visitor.caller().require(
        docket_domain::access::Permission::Manage,
        "see the dashboard",
    )?;
    Ok(visitor)
}

#[poem::handler]
pub async fn dashboard(req: &Request, app: Data<&SharedApp>) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            if !visitor.caller().is_staff() {
                return Ok(see_other("/portal"));
            }
            let visitor = may_see(visitor)?;
            dashboard_page(&app, &visitor, None).await
        }
        .await,
    )
}

async fn dashboard_page(
    app: &SharedApp,
    visitor: &Visitor,
    rebalance: Option<Rebalance>,
) -> Result<Response, PageError> {
    let page = DashboardPage {
        chrome: visitor.chrome(app, true)?,
        numbers: numbers(app, visitor).await?,
        rebalance,
    };
    Ok(html(StatusCode::OK, page.render()?))
}

#[derive(Debug, Deserialize)]
pub struct RebalanceForm {
    #[serde(default)]
    csrf: String,
    /// `apply` makes the moves; anything else is a dry run.
    #[serde(default)]
    mode: String,
}

/// The moves a rebalance would make, shown first as a dry run; "Rebalance now" makes them
/// (computed again at that moment, as the floor may have changed since).
#[poem::handler]
pub async fn run_rebalance(
    req: &Request,
    app: Data<&SharedApp>,
    Form(form): Form<RebalanceForm>,
) -> Response {
    respond(
        async {
            let visitor = manager(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            let made = form.mode == "apply";
            let moves = router::queue::rebalance(&app, visitor.caller(), !made).await?;
            let names = Directory::load(&app, &visitor).await?;
            let mut lines = Vec::new();
            for found in moves.iter().take(MOVES_SHOWN) {
                lines.push(move_line(&app, &visitor, &names, found).await?);
            }
            dashboard_page(&app, &visitor, Some(Rebalance { made, moves: lines })).await
        }
        .await,
    )
}

/// A rebalance can move many tickets; the page lists this many.
const MOVES_SHOWN: usize = 50;

async fn move_line(
    app: &SharedApp,
    visitor: &Visitor,
    names: &Directory,
    found: &router::Move,
) -> Result<MoveLine, PageError> {
    let ticket = service::get(
        app,
        visitor.caller(),
        service::TicketRef::Id(found.ticket_id),
        None,
    )
    .await?
    .ticket;
    Ok(MoveLine {
        href: format!("/tickets/{}", found.ticket_id),
        ticket: format!(
            "{} {}",
            docket_domain::values::TicketNumber(ticket.number),
            ticket.subject
        ),
        priority: found.priority.as_str(),
        from: names.person(found.from_agent_id),
        to: names.person(Some(found.to_agent_id)),
    })
}

#[poem::handler]
pub async fn dashboard_numbers(req: &Request, app: Data<&SharedApp>) -> Response {
    respond(
        async {
            let visitor = manager(req, &app).await?;
            let part = NumbersPart {
                numbers: numbers(&app, &visitor).await?,
            };
            Ok(html(StatusCode::OK, part.render()?))
        }
        .await,
    )
}
