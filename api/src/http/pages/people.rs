//! Agents and teams (managers, admins): each agent's skills with proficiency, capacity, status
//! and load; each team with its members; and a capacity form.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{Request, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::{Chrome, PageError, Visitor, html, respond, see_other, signed_in};
use crate::app::workforce::{self, ProfileChange};
use crate::app::{AppError, Origin, SharedApp};

pub struct AgentLine {
    id: Uuid,
    name: String,
    role: &'static str,
    status: &'static str,
    skills: String,
    capacity: i32,
    open: i32,
    on_shift: bool,
}

pub struct TeamLine {
    name: String,
    members: String,
}

#[derive(Template)]
#[template(path = "people.html")]
struct PeoplePage {
    chrome: Chrome,
    agents: Vec<AgentLine>,
    teams: Vec<TeamLine>,
    error: Option<String>,
}

async fn manager(req: &Request, app: &SharedApp) -> Result<Visitor, PageError> {
    let visitor = signed_in(req, app).await?;
    visitor.caller().require(
        docket_domain::access::Permission::Manage,
        "manage agents and teams",
    )?;
    Ok(visitor)
}

async fn people_page(
    app: &SharedApp,
    visitor: &Visitor,
    error: Option<String>,
) -> Result<Response, PageError> {
    let caller = visitor.caller();
    let agents = workforce::agents(app, caller)
        .await?
        .into_iter()
        .map(|agent| {
            let mut skills: Vec<String> = agent
                .row
                .skills
                .iter()
                .map(|(id, level)| {
                    let name = agent.skill_names.get(id).cloned().unwrap_or_default();
                    format!("{name} ({level}/5)")
                })
                .collect();
            skills.sort();
            AgentLine {
                id: agent.row.agent_id,
                name: agent.row.full_name.clone(),
                role: agent.row.role.as_str(),
                status: agent.row.status.as_str(),
                skills: if skills.is_empty() {
                    "none".to_string()
                } else {
                    skills.join(", ")
                },
                capacity: agent.row.capacity,
                open: agent.row.open_tickets,
                on_shift: agent.on_shift,
            }
        })
        .collect();
    let teams = workforce::teams(app, caller)
        .await?
        .into_iter()
        .map(|team| TeamLine {
            name: team.team.name,
            members: if team.members.is_empty() {
                "no members yet".to_string()
            } else {
                team.members
                    .iter()
                    .map(|m| {
                        format!(
                            "{} ({})",
                            m.full_name.clone().unwrap_or_default(),
                            m.team_role.as_str()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
        .collect();
    let page = PeoplePage {
        chrome: visitor.chrome(app, false)?,
        agents,
        teams,
        error,
    };
    Ok(html(StatusCode::OK, page.render()?))
}

#[poem::handler]
pub async fn people(req: &Request, app: Data<&SharedApp>) -> Response {
    respond(
        async {
            let visitor = manager(req, &app).await?;
            people_page(&app, &visitor, None).await
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
pub struct CapacityForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    capacity: String,
}

/// Sets how many open tickets routing gives an agent.
#[poem::handler]
pub async fn set_capacity(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Path(agent): Path<Uuid>,
    Form(form): Form<CapacityForm>,
) -> Response {
    respond(
        async {
            let visitor = manager(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            let Ok(capacity) = form.capacity.trim().parse::<u32>() else {
                let say = "Capacity must be a whole number of tickets.".to_string();
                return people_page(&app, &visitor, Some(say)).await;
            };
            let change = ProfileChange::Capacity(capacity);
            match workforce::change_agent(&app, visitor.caller(), &origin, agent, change).await {
                Ok(_) => Ok(see_other("/people")),
                Err(
                    AppError::Invalid { reason, .. } | AppError::Conflict { detail: reason, .. },
                ) => people_page(&app, &visitor, Some(reason)).await,
                Err(other) => Err(other.into()),
            }
        }
        .await,
    )
}
