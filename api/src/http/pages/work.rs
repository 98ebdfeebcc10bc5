//! "My work": an agent's open tickets by SLA urgency, the queue with claim, their status, and
//! their shift. Every control calls the same services as the API.

use askama::Template;
use docket_domain::values::{AgentStatus, TicketNumber};
use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{Request, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::tickets::{Rows, my_open};
use super::{Chrome, PageError, Visitor, html, respond, see_other, signed_in};
use crate::app::router::queue;
use crate::app::tickets as service;
use crate::app::workforce::{self, ProfileChange, ShiftStart};
use crate::app::{AppError, Origin, SharedApp};

pub struct QueuedLine {
    ticket_id: Uuid,
    number: String,
    subject: String,
    priority: &'static str,
}

pub struct Me {
    status: &'static str,
    statuses: Vec<(&'static str, bool)>,
    shift_id: Option<Uuid>,
    shift_label: String,
    /// On a break now: no other break is offered until it ends.
    on_break: bool,
    /// The shift's breaks, as `HH:MM–HH:MM UTC`, and whether each is under way.
    breaks: Vec<(String, bool)>,
    open: i32,
    capacity: i32,
}

#[derive(Template)]
#[template(path = "work.html")]
struct WorkPage {
    chrome: Chrome,
    me: Me,
    list: Rows,
    queue: Vec<QueuedLine>,
    queued: i64,
    error: Option<String>,
}

async fn work_page(
    app: &SharedApp,
    visitor: &Visitor,
    error: Option<String>,
) -> Result<Response, PageError> {
    let caller = visitor.caller();
    let agent = workforce::agent(app, caller, caller.id.0).await?;
    let choosable = [AgentStatus::Available, AgentStatus::Busy, AgentStatus::Away];
    let me = Me {
        status: agent.row.status.as_str(),
        statuses: choosable
            .iter()
            .map(|s| (s.as_str(), *s == agent.row.status))
            .collect(),
        shift_id: agent.row.shift_id,
        on_break: agent.on_break,
        shift_label: match (agent.row.shift_started_at, agent.on_break) {
            (Some(started), false) => format!("On shift since {}", started.format("%H:%M UTC")),
            (Some(_), true) => "On a break".to_string(),
            (None, _) => "Off shift".to_string(),
        },
        breaks: {
            let now = app.time.now();
            agent
                .row
                .breaks
                .iter()
                .filter(|b| b.ends_at > now)
                .map(|b| {
                    let label = format!(
                        "{}–{} UTC",
                        b.starts_at.format("%H:%M"),
                        b.ends_at.format("%H:%M")
                    );
                    (label, b.contains(now))
                })
                .collect()
        },
        open: agent.row.open_tickets,
        capacity: agent.row.capacity,
    };
    let list = my_open(app, visitor).await?;
    let waiting = queue::queue(app, caller, 1, 20).await?;
    let page = WorkPage {
        chrome: visitor.chrome(app, true)?,
        me,
        list,
        queue: waiting
            .first
            .into_iter()
            .map(|q| QueuedLine {
                ticket_id: q.ticket_id,
                number: q
                    .number
                    .map(|n| TicketNumber(n).to_string())
                    .unwrap_or_default(),
                subject: q.subject.unwrap_or_default(),
                priority: q.priority.as_str(),
            })
            .collect(),
        queued: waiting.total,
        error,
    };
    Ok(html(StatusCode::OK, page.render()?))
}

async fn agent(req: &Request, app: &SharedApp) -> Result<Visitor, PageError> {
    let visitor = signed_in(req, app).await?;
    visitor.caller().require(
        docket_domain::access::Permission::WorkTickets,
        "have a work queue",
    )?;
    Ok(visitor)
}

#[poem::handler]
pub async fn work(req: &Request, app: Data<&SharedApp>) -> Response {
    respond(
        async {
            let visitor = agent(req, &app).await?;
            work_page(&app, &visitor, None).await
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
pub struct WorkForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    status: String,
}

/// A refusal shown on the page (a claim someone beat you to, a shift already running); any
/// other failure is the error page.
async fn after(
    app: &SharedApp,
    visitor: &Visitor,
    done: Result<(), AppError>,
) -> Result<Response, PageError> {
    match done {
        Ok(()) => Ok(see_other("/work")),
        Err(AppError::Conflict { detail, .. } | AppError::Invalid { reason: detail, .. }) => {
            work_page(app, visitor, Some(detail)).await
        }
        Err(other) => Err(other.into()),
    }
}

#[poem::handler]
pub async fn claim(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Path(ticket): Path<Uuid>,
    Form(form): Form<WorkForm>,
) -> Response {
    respond(
        async {
            let visitor = agent(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            let me = visitor.caller().id.0;
            let done = service::claim(&app, visitor.caller(), &origin, me, ticket)
                .await
                .map(|_| ());
            after(&app, &visitor, done).await
        }
        .await,
    )
}

#[poem::handler]
pub async fn set_status(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Form(form): Form<WorkForm>,
) -> Response {
    respond(
        async {
            let visitor = agent(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            let Ok(status) = form.status.parse::<AgentStatus>() else {
                return work_page(
                    &app,
                    &visitor,
                    Some("Choose a status from the list.".into()),
                )
                .await;
            };
            let me = visitor.caller().id.0;
            let change = ProfileChange::Status(status);
            let done = workforce::change_agent(&app, visitor.caller(), &origin, me, change)
                .await
                .map(|_| ());
            after(&app, &visitor, done).await
        }
        .await,
    )
}

#[poem::handler]
pub async fn start_shift(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Form(form): Form<WorkForm>,
) -> Response {
    respond(
        async {
            let visitor = agent(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            let start = ShiftStart {
                agent_id: None,
                scheduled_end: None,
                set_available: true,
            };
            let done = workforce::start_shift(&app, visitor.caller(), &origin, start)
                .await
                .map(|_| ());
            after(&app, &visitor, done).await
        }
        .await,
    )
}

#[poem::handler]
pub async fn end_shift(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Path(shift): Path<Uuid>,
    Form(form): Form<WorkForm>,
) -> Response {
    respond(
        async {
            let visitor = agent(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            let done = workforce::end_shift(&app, visitor.caller(), &origin, shift)
                .await
                .map(|_| ());
            after(&app, &visitor, done).await
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
pub struct BreakForm {
    #[serde(default)]
    csrf: String,
    /// How long, from now.
    #[serde(default)]
    minutes: String,
    #[serde(default)]
    reason: String,
}

/// The break lengths the page offers, in minutes.
const BREAKS: [i64; 4] = [10, 15, 30, 60];

/// A break from now in the running shift: routing gives the agent nothing during it.
#[poem::handler]
pub async fn take_break(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Path(shift): Path<Uuid>,
    Form(form): Form<BreakForm>,
) -> Response {
    respond(
        async {
            let visitor = agent(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            let Some(minutes) = form
                .minutes
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|m| BREAKS.contains(m))
            else {
                let say = "Choose how long the break is.".to_string();
                return work_page(&app, &visitor, Some(say)).await;
            };
            let reason = match form.reason.trim() {
                "" => None,
                typed => match docket_domain::values::Note::parse(typed) {
                    Ok(note) => Some(note),
                    Err(e) => return work_page(&app, &visitor, Some(e.reason)).await,
                },
            };
            let now = app.time.now();
            let window = docket_domain::workforce::shift::BreakWindow {
                starts_at: now,
                ends_at: now + chrono::Duration::minutes(minutes),
            };
            let done =
                workforce::schedule_break(&app, visitor.caller(), &origin, shift, window, reason)
                    .await
                    .map(|_| ());
            after(&app, &visitor, done).await
        }
        .await,
    )
}
