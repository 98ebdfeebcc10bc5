//! Agents and teams (managers, admins): each agent's skills with proficiency (editable),
//! capacity, status and load; the skill catalogue; each team with its members, who can be
//! added, given another team role, or removed; and new skills and teams.

use askama::Template;
use docket_domain::values::{Note, SkillName, TeamName, TeamRole};
use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{Request, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::directory::{Choice, agent_choices, assignable};
use super::{Chrome, CsrfForm, PageError, Visitor, html, respond, see_other, signed_in};
use crate::app::workforce::{self, ProfileChange};
use crate::app::{AppError, Origin, SharedApp};

pub struct AgentLine {
    id: Uuid,
    name: String,
    role: &'static str,
    status: &'static str,
    skills: String,
    /// Every catalogue skill with the level the agent holds it at (0: not at all).
    levels: Vec<SkillLevel>,
    capacity: i32,
    open: i32,
    on_shift: bool,
}

pub struct SkillLevel {
    id: Uuid,
    name: String,
    level: u8,
}

pub struct SkillLine {
    name: String,
    description: String,
}

pub struct MemberLine {
    user_id: Uuid,
    name: String,
    team_role: &'static str,
}

pub struct TeamLine {
    id: Uuid,
    name: String,
    description: String,
    members: Vec<MemberLine>,
}

/// What a form that did not go through asked, kept as typed, with what was wrong.
#[derive(Default)]
struct Kept {
    /// Shown at the top (a capacity or skills change, naming the agent).
    error: Option<String>,
    skill_name: String,
    skill_error: Option<String>,
    team_name: String,
    team_description: String,
    team_error: Option<String>,
    /// The team whose add-member form was refused, and why.
    member_error: Option<(Uuid, String)>,
}

#[derive(Template)]
#[template(path = "people.html")]
struct PeoplePage {
    chrome: Chrome,
    agents: Vec<AgentLine>,
    skills: Vec<SkillLine>,
    teams: Vec<TeamLine>,
    /// The agents a team can take in.
    candidates: Vec<Choice>,
    team_roles: Vec<&'static str>,
    kept: Kept,
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
    kept: Kept,
) -> Result<Response, PageError> {
    let caller = visitor.caller();
    let catalogue = workforce::skills(app, caller).await?;
    let views = workforce::agents(app, caller).await?;
    let roster: Vec<_> = views.iter().map(|agent| agent.row.clone()).collect();
    let candidates = agent_choices(&assignable(&roster), None);
    let agents = views
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
                levels: catalogue
                    .iter()
                    .map(|skill| SkillLevel {
                        id: skill.id,
                        name: skill.name.clone(),
                        level: agent.row.skills.get(&skill.id).copied().unwrap_or(0),
                    })
                    .collect(),
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
            id: team.team.id,
            name: team.team.name,
            description: team.team.description.unwrap_or_default(),
            members: team
                .members
                .into_iter()
                .map(|m| MemberLine {
                    user_id: m.user_id,
                    name: m.full_name.unwrap_or_else(|| m.user_id.to_string()),
                    team_role: m.team_role.as_str(),
                })
                .collect(),
        })
        .collect();
    let page = PeoplePage {
        chrome: visitor.chrome(app, false)?,
        agents,
        skills: catalogue
            .into_iter()
            .map(|skill| SkillLine {
                name: skill.name,
                description: skill.description.unwrap_or_default(),
            })
            .collect(),
        teams,
        candidates,
        team_roles: TeamRole::ALL.iter().map(|r| r.as_str()).collect(),
        kept,
    };
    Ok(html(StatusCode::OK, page.render()?))
}

#[poem::handler]
pub async fn people(req: &Request, app: Data<&SharedApp>) -> Response {
    respond(
        async {
            let visitor = manager(req, &app).await?;
            people_page(&app, &visitor, Kept::default()).await
        }
        .await,
    )
}

/// The reason a refused change gives, for the page; other failures stay errors.
fn refusal(error: AppError) -> Result<String, PageError> {
    match error {
        AppError::Invalid { reason, .. } | AppError::Conflict { detail: reason, .. } => Ok(reason),
        AppError::NotPermitted(reason) => Ok(reason),
        other => Err(other.into()),
    }
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
                let kept = Kept {
                    error: Some("Capacity must be a whole number of tickets.".to_string()),
                    ..Kept::default()
                };
                return people_page(&app, &visitor, kept).await;
            };
            let change = ProfileChange::Capacity(capacity);
            match workforce::change_agent(&app, visitor.caller(), &origin, agent, change).await {
                Ok(_) => Ok(see_other("/people")),
                Err(error) => {
                    let kept = Kept {
                        error: Some(refusal(error)?),
                        ..Kept::default()
                    };
                    people_page(&app, &visitor, kept).await
                }
            }
        }
        .await,
    )
}

/// The skills form: `csrf`, and `skill:<id>` = `0` (not held) to `5` for each skill.
fn held_skills(fields: &[(String, String)]) -> Result<Vec<(Uuid, u8)>, String> {
    let mut held = Vec::new();
    for (name, value) in fields {
        let Some(id) = name.strip_prefix("skill:") else {
            continue;
        };
        let id: Uuid = id.parse().map_err(|_| "The form names no such skill.")?;
        let level: u8 = value
            .trim()
            .parse()
            .ok()
            .filter(|level| *level <= 5)
            .ok_or("Proficiency is from 1 to 5, or none.")?;
        if level > 0 {
            held.push((id, level));
        }
    }
    Ok(held)
}

/// Replaces the skills an agent holds, each with its proficiency.
#[poem::handler]
pub async fn set_skills(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Path(agent): Path<Uuid>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    respond(
        async {
            let visitor = manager(req, &app).await?;
            let csrf = fields
                .iter()
                .find(|(name, _)| name == "csrf")
                .map(|(_, value)| value.as_str())
                .unwrap_or_default();
            visitor.check_csrf(csrf)?;
            let reason = match held_skills(&fields) {
                Err(reason) => reason,
                Ok(held) => {
                    let change = ProfileChange::Skills(held);
                    match workforce::change_agent(&app, visitor.caller(), &origin, agent, change)
                        .await
                    {
                        Ok(_) => return Ok(see_other("/people")),
                        Err(error) => refusal(error)?,
                    }
                }
            };
            let kept = Kept {
                error: Some(reason),
                ..Kept::default()
            };
            people_page(&app, &visitor, kept).await
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
pub struct NamedForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
}

impl NamedForm {
    /// The name (parsed by `parse`; `unnamed` when empty) and the optional description, or
    /// why one of them is refused.
    fn parts<N>(
        &self,
        parse: impl FnOnce(&str) -> Result<N, docket_domain::ValidationError>,
        unnamed: &str,
    ) -> Result<(N, Option<Note>), String> {
        if self.name.trim().is_empty() {
            return Err(unnamed.to_string());
        }
        let name = parse(&self.name).map_err(|e| e.reason)?;
        let description = match self.description.trim() {
            "" => None,
            typed => Some(Note::parse(typed).map_err(|e| e.reason)?),
        };
        Ok((name, description))
    }
}

/// Adds a skill to the catalogue.
#[poem::handler]
pub async fn create_skill(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Form(form): Form<NamedForm>,
) -> Response {
    respond(
        async {
            let visitor = manager(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            let refused = |reason: String| Kept {
                skill_name: form.name.clone(),
                skill_error: Some(reason),
                ..Kept::default()
            };
            let (name, description) = match form.parts(SkillName::parse, "Name the skill.") {
                Ok(parts) => parts,
                Err(reason) => return people_page(&app, &visitor, refused(reason)).await,
            };
            match workforce::create_skill(&app, visitor.caller(), &origin, name, description).await
            {
                Ok(_) => Ok(see_other("/people")),
                Err(error) => people_page(&app, &visitor, refused(refusal(error)?)).await,
            }
        }
        .await,
    )
}

/// Creates a team.
#[poem::handler]
pub async fn create_team(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Form(form): Form<NamedForm>,
) -> Response {
    respond(
        async {
            let visitor = manager(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            let refused = |reason: String| Kept {
                team_name: form.name.clone(),
                team_description: form.description.clone(),
                team_error: Some(reason),
                ..Kept::default()
            };
            let (name, description) = match form.parts(TeamName::parse, "Name the team.") {
                Ok(parts) => parts,
                Err(reason) => return people_page(&app, &visitor, refused(reason)).await,
            };
            match workforce::create_team(&app, visitor.caller(), &origin, name, description).await {
                Ok(_) => Ok(see_other("/people")),
                Err(error) => people_page(&app, &visitor, refused(refusal(error)?)).await,
            }
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
pub struct MemberForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    team_role: String,
}

/// Adds an agent to a team, or gives a member another team role.
#[poem::handler]
pub async fn add_member(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Path(team): Path<Uuid>,
    Form(form): Form<MemberForm>,
) -> Response {
    respond(
        async {
            let visitor = manager(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            let refused = |reason: String| Kept {
                member_error: Some((team, reason)),
                ..Kept::default()
            };
            let (Ok(user), Ok(role)) = (
                form.user.trim().parse::<Uuid>(),
                form.team_role.parse::<TeamRole>(),
            ) else {
                let kept = refused("Choose an agent and their role in the team.".to_string());
                return people_page(&app, &visitor, kept).await;
            };
            match workforce::add_member(&app, visitor.caller(), &origin, team, user, role).await {
                Ok(_) => Ok(see_other("/people")),
                Err(error) => people_page(&app, &visitor, refused(refusal(error)?)).await,
            }
        }
        .await,
    )
}

/// Takes a member out of a team.
#[poem::handler]
pub async fn remove_member(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Path((team, user)): Path<(Uuid, Uuid)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    respond(
        async {
            let visitor = manager(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            match workforce::remove_member(&app, visitor.caller(), &origin, team, user).await {
                Ok(_) => Ok(see_other("/people")),
                Err(error) => {
                    let kept = Kept {
                        member_error: Some((team, refusal(error)?)),
                        ..Kept::default()
                    };
                    people_page(&app, &visitor, kept).await
                }
            }
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_skills_form_holds_the_skills_given_a_level_and_drops_the_rest() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let form = fields(&[
            ("csrf", "t"),
            (&format!("skill:{a}"), "4"),
            (&format!("skill:{b}"), "0"),
        ]);
        assert_eq!(held_skills(&form), Ok(vec![(a, 4)]));
    }

    #[test]
    fn the_skills_form_refuses_a_level_out_of_range_or_a_skill_it_cannot_name() {
        let a = Uuid::new_v4();
        assert!(held_skills(&fields(&[(&format!("skill:{a}"), "6")])).is_err());
        assert!(held_skills(&fields(&[(&format!("skill:{a}"), "much")])).is_err());
        assert!(held_skills(&fields(&[("skill:billing", "3")])).is_err());
    }
}
