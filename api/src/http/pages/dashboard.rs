//! The manager's dashboard: what is open by status and priority, SLA compliance over the last
//! 30 days, what is at risk or breached now, and each agent's load. It refreshes itself when
//! the log moves.

use askama::Template;
use chrono::Duration;
use docket_domain::sla::ClockState;
use docket_domain::{Priority, TicketStatus};
use docket_projections::sla::ComplianceGroup;
use docket_projections::tickets::TicketFilter;
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Request, Response};

use super::{Chrome, PageError, Visitor, html, respond, see_other, signed_in};
use crate::app::SharedApp;
use crate::app::sla;
use crate::app::tickets as service;
use crate::app::workforce::workload;

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

pub struct Numbers {
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

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    numbers: Numbers,
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
    Ok(Numbers {
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
            let page = DashboardPage {
                chrome: visitor.chrome(&app, true)?,
                numbers: numbers(&app, &visitor).await?,
            };
            Ok(html(StatusCode::OK, page.render()?))
        }
        .await,
    )
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
