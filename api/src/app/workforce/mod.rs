//! Who can work what, and when: the skill catalogue, agents' profiles, teams, shifts; and the
//! workload reports ([`workload`]).
//!
//! Writes go through the aggregates, which hold every rule (who may, what is valid, one running
//! shift per agent). Reads come from the workforce read model, after it includes the caller's
//! own writes.

pub mod workload;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use docket_domain::Actor;
use docket_domain::access::Permission;
use docket_domain::ticket::UserStanding;
use docket_domain::values::{
    AgentStatus, Note, ShiftId, SkillId, SkillName, TeamId, TeamName, TeamRole, UserId,
};
use docket_domain::workforce::agent::{AgentCommand, AgentSkill};
use docket_domain::workforce::shift::{BreakWindow, Shift, ShiftCommand};
use docket_domain::workforce::skill::SkillCommand;
use docket_domain::workforce::team::TeamCommand;
use docket_projections::Checkpoint;
use docket_projections::registry;
use docket_projections::workforce::{self, AgentRow, MemberRow, ShiftRow, SkillRow, TeamRow};
use uuid::Uuid;

use crate::app::{App, AppError, Caller, Origin, accounts, router};

const STAFF_ONLY: &str = "see agents, teams and skills";

/// An agent as the workforce model holds them, judged at an instant.
#[derive(Debug, Clone)]
pub struct AgentView {
    pub row: AgentRow,
    /// The names of the skills they hold, where the catalogue has them.
    pub skill_names: BTreeMap<Uuid, String>,
    /// On a shift at the instant judged.
    pub on_shift: bool,
    pub on_break: bool,
    /// Routing could give them a ticket now: active, available, on shift, not on a break,
    /// under capacity.
    pub routable: bool,
}

/// A team with its members, managers and leads first.
#[derive(Debug, Clone)]
pub struct TeamView {
    pub team: TeamRow,
    pub members: Vec<MemberRow>,
}

/// A write, the version it left its aggregate at (for an ETag), and where its last event
/// landed (for a consistency token).
#[derive(Debug, Clone)]
pub struct Changed<T> {
    pub value: T,
    pub version: i64,
    pub position: Option<Checkpoint>,
}

impl<T> Changed<T> {
    /// The same write, its value shown otherwise.
    pub fn map<U>(self, show: impl FnOnce(T) -> U) -> Changed<U> {
        Changed {
            value: show(self.value),
            version: self.version,
            position: self.position,
        }
    }
}

/// A person a workforce command names, who must exist.
async fn agent_standing(app: &App, id: Uuid) -> Result<UserStanding, AppError> {
    accounts::standing(app, UserId(id))
        .await?
        .ok_or(AppError::NotFound("agent"))
}

async fn skill_names(app: &App) -> Result<BTreeMap<Uuid, String>, AppError> {
    Ok(workforce::skills(&app.pool)
        .await?
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect())
}

/// The agents (or one) as the model holds them now.
async fn agent_views(app: &App, only: Option<Uuid>) -> Result<Vec<AgentView>, AppError> {
    let names = skill_names(app).await?;
    let now = app.time.now();
    Ok(workforce::agents(&app.pool, only)
        .await?
        .into_iter()
        .map(|row| {
            let snapshot = router::snapshot(&row);
            AgentView {
                skill_names: row
                    .skills
                    .keys()
                    .filter_map(|id| names.get(id).map(|name| (*id, name.clone())))
                    .collect(),
                on_shift: snapshot.on_shift(now),
                on_break: snapshot.on_break(now),
                routable: snapshot.eligibility(&Default::default(), now).is_ok(),
                row,
            }
        })
        .collect())
}

async fn read_workforce(app: &App, caller: &Caller) -> Result<(), AppError> {
    caller.require(Permission::ReadStaffViews, STAFF_ONLY)?;
    app.consistency
        .include(caller, &[&registry::WORKFORCE])
        .await
}

// ---- skills ----------------------------------------------------------------------------------

/// The skill catalogue (staff).
pub async fn skills(app: &App, caller: &Caller) -> Result<Vec<SkillRow>, AppError> {
    read_workforce(app, caller).await?;
    Ok(workforce::skills(&app.pool).await?)
}

/// Adds a skill to the catalogue (managers, admins). Its id is derived from its name.
pub async fn create_skill(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    name: SkillName,
    description: Option<Note>,
) -> Result<Changed<SkillRow>, AppError> {
    let id = SkillId::for_name(&name);
    let at = app.time.now();
    let command = SkillCommand::Create {
        name: name.clone(),
        description: description.clone(),
        actor: caller.actor(),
        at,
    };
    let committed = app
        .skills
        .execute(
            &id.to_string(),
            None,
            command,
            origin.metadata(Some(caller.actor())),
        )
        .await?;
    Ok(Changed {
        value: SkillRow {
            id: id.0,
            name: name.as_str().to_string(),
            description: description.map(|d| d.as_str().to_string()),
            created_at: at,
        },
        version: committed.version,
        position: committed.position,
    })
}

/// One skill by its id or its name (staff).
pub async fn skill(app: &App, caller: &Caller, id_or_name: &str) -> Result<SkillRow, AppError> {
    let skills = skills(app, caller).await?;
    let wanted = match Uuid::parse_str(id_or_name) {
        Ok(id) => Some(id),
        Err(_) => SkillName::parse(id_or_name)
            .ok()
            .map(|name| SkillId::for_name(&name).0),
    };
    skills
        .into_iter()
        .find(|skill| Some(skill.id) == wanted)
        .ok_or(AppError::NotFound("skill"))
}

// ---- agents ----------------------------------------------------------------------------------

/// Every agent and manager (staff).
pub async fn agents(app: &App, caller: &Caller) -> Result<Vec<AgentView>, AppError> {
    read_workforce(app, caller).await?;
    agent_views(app, None).await
}

/// Every agent and manager as the workforce model holds them, without the views' skill names
/// and shift judgements: enough to name them and show their load (staff).
pub async fn roster(app: &App, caller: &Caller) -> Result<Vec<AgentRow>, AppError> {
    read_workforce(app, caller).await?;
    Ok(workforce::agents(&app.pool, None).await?)
}

/// The agents routing could give a ticket to right now (staff).
pub async fn available_agents(app: &App, caller: &Caller) -> Result<Vec<AgentView>, AppError> {
    let mut all = agents(app, caller).await?;
    all.retain(|a| a.routable);
    Ok(all)
}

/// One agent (staff).
pub async fn agent(app: &App, caller: &Caller, id: Uuid) -> Result<AgentView, AppError> {
    read_workforce(app, caller).await?;
    agent_views(app, Some(id))
        .await?
        .into_iter()
        .next()
        .ok_or(AppError::NotFound("agent"))
}

/// A change to an agent's profile: what it sets.
pub enum ProfileChange {
    /// Replaces their skills: `(skill, proficiency)`, each skill once.
    Skills(Vec<(Uuid, u8)>),
    Status(AgentStatus),
    Capacity(u32),
}

/// Changes an agent's profile and answers with the agent as the model then shows them.
pub async fn change_agent(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    id: Uuid,
    change: ProfileChange,
) -> Result<Changed<AgentView>, AppError> {
    let agent = agent_standing(app, id).await?;
    let (actor, at) = (caller.actor(), app.time.now());
    let command = match change {
        ProfileChange::Skills(held) => {
            let mut skills = Vec::with_capacity(held.len());
            for (index, (skill, proficiency)) in held.into_iter().enumerate() {
                let (catalogued, _) = app.skills.load(&skill.to_string()).await?;
                if catalogued.id.is_none() {
                    return Err(AppError::invalid(
                        format!("skills[{index}].skill_id"),
                        "no such skill",
                    ));
                }
                skills.push(AgentSkill::new(SkillId(skill), proficiency).map_err(|e| {
                    AppError::invalid(format!("skills[{index}].proficiency"), e.reason)
                })?);
            }
            AgentCommand::SetSkills {
                agent,
                skills,
                actor,
                at,
            }
        }
        ProfileChange::Status(status) => AgentCommand::ChangeStatus {
            agent,
            status,
            actor,
            at,
        },
        ProfileChange::Capacity(capacity) => AgentCommand::SetCapacity {
            agent,
            capacity,
            actor,
            at,
        },
    };
    let committed = app
        .agents
        .execute(&id.to_string(), None, command, origin.metadata(Some(actor)))
        .await?;
    let value = self::agent(app, caller, id).await?;
    Ok(Changed {
        value,
        version: committed.version,
        position: committed.position,
    })
}

// ---- teams -----------------------------------------------------------------------------------

/// Teams with their members (staff).
pub async fn teams(app: &App, caller: &Caller) -> Result<Vec<TeamView>, AppError> {
    read_workforce(app, caller).await?;
    let teams = workforce::teams(&app.pool).await?;
    let mut members: BTreeMap<Uuid, Vec<MemberRow>> = BTreeMap::new();
    for member in workforce::members(&app.pool, None).await? {
        members.entry(member.team_id).or_default().push(member);
    }
    Ok(teams
        .into_iter()
        .map(|team| TeamView {
            members: members.remove(&team.id).unwrap_or_default(),
            team,
        })
        .collect())
}

/// The teams without their members (staff).
pub async fn team_rows(app: &App, caller: &Caller) -> Result<Vec<TeamRow>, AppError> {
    read_workforce(app, caller).await?;
    Ok(workforce::teams(&app.pool).await?)
}

/// One team with its members (staff).
pub async fn team(app: &App, caller: &Caller, id: Uuid) -> Result<TeamView, AppError> {
    read_workforce(app, caller).await?;
    let team = workforce::team(&app.pool, id)
        .await?
        .ok_or(AppError::NotFound("team"))?;
    Ok(TeamView {
        members: workforce::members(&app.pool, Some(id)).await?,
        team,
    })
}

/// One team's members, managers and leads first (staff).
pub async fn team_members(
    app: &App,
    caller: &Caller,
    id: Uuid,
) -> Result<Vec<MemberRow>, AppError> {
    read_workforce(app, caller).await?;
    if workforce::team(&app.pool, id).await?.is_none() {
        return Err(AppError::NotFound("team"));
    }
    Ok(workforce::members(&app.pool, Some(id)).await?)
}

/// Creates a team (managers, admins).
pub async fn create_team(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    name: TeamName,
    description: Option<Note>,
) -> Result<Changed<TeamView>, AppError> {
    let id = TeamId(Uuid::now_v7());
    let at = app.time.now();
    let command = TeamCommand::Create {
        team_id: id,
        name: name.clone(),
        description: description.clone(),
        actor: caller.actor(),
        at,
    };
    let committed = app
        .teams
        .execute(
            &id.to_string(),
            Some(0),
            command,
            origin.metadata(Some(caller.actor())),
        )
        .await?;
    Ok(Changed {
        value: TeamView {
            team: TeamRow {
                id: id.0,
                name: name.as_str().to_string(),
                description: description.map(|d| d.as_str().to_string()),
                created_at: at,
            },
            members: vec![],
        },
        version: committed.version,
        position: committed.position,
    })
}

/// Adds an agent or manager to a team, or changes their team role (managers, admins); answers
/// with the team's members then.
pub async fn add_member(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    team: Uuid,
    user: Uuid,
    team_role: TeamRole,
) -> Result<Changed<Vec<MemberRow>>, AppError> {
    let member = accounts::standing(app, UserId(user))
        .await?
        .ok_or_else(|| AppError::invalid("user_id", "no such user"))?;
    let command = TeamCommand::AddMember {
        member,
        team_role,
        actor: caller.actor(),
        at: app.time.now(),
    };
    let committed = app
        .teams
        .execute(
            &team.to_string(),
            None,
            command,
            origin.metadata(Some(caller.actor())),
        )
        .await?;
    Ok(Changed {
        value: team_members(app, caller, team).await?,
        version: committed.version,
        position: committed.position,
    })
}

/// Removes a member from a team (managers, admins).
pub async fn remove_member(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    team: Uuid,
    user: Uuid,
) -> Result<Option<Checkpoint>, AppError> {
    let command = TeamCommand::RemoveMember {
        user_id: UserId(user),
        actor: caller.actor(),
        at: app.time.now(),
    };
    let committed = app
        .teams
        .execute(
            &team.to_string(),
            None,
            command,
            origin.metadata(Some(caller.actor())),
        )
        .await?;
    Ok(committed.position)
}

// ---- shifts ----------------------------------------------------------------------------------

/// A shift as its aggregate holds it.
fn shift_row(shift: &Shift) -> Result<ShiftRow, AppError> {
    match (shift.id, shift.agent_id, shift.started_at) {
        (Some(id), Some(agent), Some(started_at)) => Ok(ShiftRow {
            id: id.0,
            agent_id: agent.0,
            started_at,
            scheduled_end: shift.scheduled_end,
            ended_at: shift.ended_at,
            breaks: shift.breaks.clone(),
        }),
        _ => Err(AppError::NotFound("shift")),
    }
}

/// What starting a shift asks.
pub struct ShiftStart {
    /// Whose shift; the caller's own when `None`.
    pub agent_id: Option<Uuid>,
    pub scheduled_end: Option<DateTime<Utc>>,
    /// Also become `available`: starting a shift means taking work.
    pub set_available: bool,
}

/// Starts a shift for the caller or (managers, admins) for an agent.
///
/// The agent's profile takes the shift first: its stream is what keeps two concurrent starts
/// from both succeeding (the second decides on a profile that has a running shift, and is
/// refused). A shift that then cannot be recorded gives the profile's claim back.
pub async fn start_shift(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    start: ShiftStart,
) -> Result<Changed<ShiftRow>, AppError> {
    let agent_id = start.agent_id.unwrap_or(caller.id.0);
    let agent = agent_standing(app, agent_id).await?;
    let (actor, now) = (caller.actor(), app.time.now());
    let metadata = origin.metadata(Some(actor));
    let shift_id = ShiftId(Uuid::now_v7());
    let begin = ShiftCommand::Start {
        shift_id,
        agent,
        scheduled_end: start.scheduled_end,
        actor,
        at: now,
    };
    // Whether the shift itself would be refused (a bad end, a role that holds no shifts), before
    // the profile records anything.
    Shift::default()
        .decide(&begin)
        .map_err(|refusal| crate::app::bus::CommandError::Rejected(refusal).naming("body"))?;
    let open = AgentCommand::OpenShift {
        agent,
        shift_id,
        scheduled_end: start.scheduled_end,
        actor,
        at: now,
    };
    app.agents
        .execute(&agent_id.to_string(), None, open, metadata.clone())
        .await?;
    let committed = match app
        .shifts
        .execute(&shift_id.to_string(), Some(0), begin, metadata.clone())
        .await
    {
        Ok(committed) => committed,
        Err(error) => {
            release_shift(app, agent, shift_id, actor, metadata).await;
            return Err(error.into());
        }
    };
    let mut position = committed.position;
    if start.set_available {
        let available = AgentCommand::ChangeStatus {
            agent,
            status: AgentStatus::Available,
            actor,
            at: now,
        };
        let status = app
            .agents
            .execute(&agent_id.to_string(), None, available, metadata)
            .await?;
        position = status.position.or(position);
    }
    Ok(Changed {
        value: shift_row(&committed.aggregate)?,
        version: committed.version,
        position,
    })
}

/// Gives an agent's claim on `shift_id` back, logging (not answering) a failure: the claim
/// lapses by itself at the shift's scheduled end, and the next start looks again.
async fn release_shift(
    app: &App,
    agent: UserStanding,
    shift_id: ShiftId,
    actor: Actor,
    metadata: docket_projections::EventMetadata,
) {
    let close = AgentCommand::CloseShift {
        agent,
        shift_id,
        actor,
        at: app.time.now(),
    };
    if let Err(error) = app
        .agents
        .execute(&agent.user_id.to_string(), None, close, metadata)
        .await
    {
        tracing::warn!(%shift_id, ?error, "could not release the agent's shift");
    }
}

/// Ends a running shift (its agent, managers, admins). The agent goes `offline`.
pub async fn end_shift(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    id: Uuid,
) -> Result<Changed<ShiftRow>, AppError> {
    let (actor, now) = (caller.actor(), app.time.now());
    let metadata = origin.metadata(Some(actor));
    let command = ShiftCommand::End { actor, at: now };
    let committed = app
        .shifts
        .execute(&id.to_string(), None, command, metadata.clone())
        .await?;
    let mut position = committed.position;
    if let Some(agent_id) = committed.aggregate.agent_id {
        let agent = agent_standing(app, agent_id.0).await?;
        release_shift(app, agent, ShiftId(id), actor, metadata.clone()).await;
        let offline = AgentCommand::ChangeStatus {
            agent,
            status: AgentStatus::Offline,
            actor,
            at: now,
        };
        match app
            .agents
            .execute(&agent_id.to_string(), None, offline, metadata)
            .await
        {
            Ok(status) => position = status.position.or(position),
            Err(error) => tracing::warn!(%agent_id, ?error, "could not set the agent offline"),
        }
    }
    Ok(Changed {
        value: shift_row(&committed.aggregate)?,
        version: committed.version,
        position,
    })
}

/// Schedules a break in a running shift; the agent is not routed to during it.
pub async fn schedule_break(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    id: Uuid,
    window: BreakWindow,
    reason: Option<Note>,
) -> Result<Changed<ShiftRow>, AppError> {
    let command = ShiftCommand::ScheduleBreak {
        window,
        reason,
        actor: caller.actor(),
        at: app.time.now(),
    };
    let committed = app
        .shifts
        .execute(
            &id.to_string(),
            None,
            command,
            origin.metadata(Some(caller.actor())),
        )
        .await?;
    Ok(Changed {
        value: shift_row(&committed.aggregate)?,
        version: committed.version,
        position: committed.position,
    })
}

/// One shift with its breaks, and its version (staff).
pub async fn shift(app: &App, caller: &Caller, id: Uuid) -> Result<(ShiftRow, i64), AppError> {
    caller.require(Permission::ReadStaffViews, STAFF_ONLY)?;
    let (shift, version) = app.shifts.load(&id.to_string()).await?;
    Ok((shift_row(&shift)?, version))
}

/// A page of an agent's shifts, newest first, and how many they have (staff).
pub async fn agent_shifts(
    app: &App,
    caller: &Caller,
    agent: Uuid,
    page: i64,
    page_size: i64,
) -> Result<(Vec<ShiftRow>, i64), AppError> {
    read_workforce(app, caller).await?;
    Ok(workforce::shifts_of(&app.pool, agent, page, page_size).await?)
}
