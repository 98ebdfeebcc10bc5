//! `/api/skills`, `/api/teams`, `/api/agents`, `/api/shifts`: who can work what, and when.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use docket_domain::values::{Note, ShiftId, SkillId, SkillName, TeamId, TeamName, UserId};
use docket_domain::workforce::WorkforceError;
use docket_domain::workforce::agent::{AgentCommand, AgentSkill};
use docket_domain::workforce::shift::{BreakWindow, ShiftCommand};
use docket_domain::workforce::skill::SkillCommand;
use docket_domain::workforce::team::TeamCommand;
use docket_projections::workforce::{self, AgentRow, ShiftRow};
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;
use uuid::Uuid;

use super::types::{AgentStatusDto, TeamRoleDto};
use super::{ApiTags, consistency_token, parse_consistency_token, wait_for_projector};
use crate::auth::{AuthUser, BearerAuth};
use crate::commands::CommandError;
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::json::JsonBody;
use crate::state::{AppState, SharedState};

// ---- wire types ------------------------------------------------------------------------------

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct SkillRequest {
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: String,
    #[oai(validator(max_length = 500))]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Object)]
pub struct SkillDto {
    /// Derived from the name: the same name always has the same id.
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct AgentSkillDto {
    pub skill_id: Uuid,
    /// 1 (learning) to 5 (expert).
    #[oai(validator(minimum(value = "1"), maximum(value = "5")))]
    pub proficiency: u8,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct SetSkillsRequest {
    /// Replaces the agent's skills.
    #[oai(validator(max_items = 100))]
    pub skills: Vec<AgentSkillDto>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct SetStatusRequest {
    pub status: AgentStatusDto,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct SetCapacityRequest {
    /// The most open tickets the agent holds at once; routing stops at it.
    #[oai(validator(maximum(value = "1000")))]
    pub capacity: u32,
}

#[derive(Debug, Clone, Object)]
pub struct HeldSkillDto {
    pub skill_id: Uuid,
    pub name: Option<String>,
    pub proficiency: u8,
}

#[derive(Debug, Clone, Object)]
pub struct BreakDto {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Object)]
pub struct CurrentShiftDto {
    pub id: Uuid,
    pub started_at: DateTime<Utc>,
    pub scheduled_end: Option<DateTime<Utc>>,
    pub breaks: Vec<BreakDto>,
    /// On a break at the moment of the response.
    pub on_break: bool,
}

#[derive(Debug, Clone, Object)]
pub struct AgentDto {
    pub id: Uuid,
    pub email: String,
    pub full_name: String,
    /// `agent` or `manager`.
    pub role: String,
    pub active: bool,
    pub status: AgentStatusDto,
    pub status_changed_at: Option<DateTime<Utc>>,
    pub capacity: i32,
    pub skills: Vec<HeldSkillDto>,
    pub team_ids: Vec<Uuid>,
    /// Absent when off shift.
    pub shift: Option<CurrentShiftDto>,
    /// Unresolved tickets held.
    pub open_tickets: i32,
    pub critical_tickets: i32,
    pub last_assigned_at: Option<DateTime<Utc>>,
    /// Routing could give them a ticket now: active, available, on shift, not on a break,
    /// under capacity.
    pub routable: bool,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct TeamRequest {
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: String,
    #[oai(validator(max_length = 500))]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Object)]
pub struct MemberDto {
    pub user_id: Uuid,
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub team_role: String,
    pub added_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Object)]
pub struct TeamDto {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub members: Vec<MemberDto>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct AddMemberRequest {
    pub user_id: Uuid,
    /// Default `member`.
    pub team_role: Option<TeamRoleDto>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct StartShiftRequest {
    /// Whose shift; default yourself. Managers and admins may start anyone's.
    pub agent_id: Option<Uuid>,
    /// When the shift is planned to end (within 24 hours); absent: until ended.
    pub scheduled_end: Option<DateTime<Utc>>,
    /// Also become `available` (default true): starting a shift means taking work.
    pub set_available: Option<bool>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct BreakRequest {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    #[oai(validator(max_length = 500))]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Object)]
pub struct ShiftDto {
    pub id: Uuid,
    pub agent_id: Uuid,
    pub started_at: DateTime<Utc>,
    pub scheduled_end: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub breaks: Vec<BreakDto>,
}

// ---- responses -------------------------------------------------------------------------------

#[derive(ApiResponse)]
pub enum Created<T: poem_openapi::types::ToJSON> {
    /// Send the token back on a read to see the change.
    #[oai(status = 201)]
    Created(
        Json<T>,
        #[oai(header = "X-Consistency-Token")] Option<String>,
    ),
}

#[derive(ApiResponse)]
pub enum Written<T: poem_openapi::types::ToJSON> {
    /// Send the token back on a read to see the change.
    #[oai(status = 200)]
    Ok(
        Json<T>,
        #[oai(header = "X-Consistency-Token")] Option<String>,
    ),
}

#[derive(ApiResponse)]
pub enum Removed {
    #[oai(status = 204)]
    NoContent(#[oai(header = "X-Consistency-Token")] Option<String>),
}

// ---- helpers ---------------------------------------------------------------------------------

pub fn workforce_error<E: Into<WorkforceError>>(error: CommandError<E>) -> ApiError {
    match error {
        CommandError::Rejected(rejection) => {
            let rejection: WorkforceError = rejection.into();
            let detail = rejection.to_string();
            match rejection {
                WorkforceError::NotPermitted { .. } => ApiError::Forbidden(detail),
                WorkforceError::NotFound { what } => ApiError::not_found(what),
                WorkforceError::AlreadyExists { .. } => ApiError::Conflict {
                    kind: "already-exists",
                    title: "It already exists",
                    detail,
                },
                WorkforceError::Invalid(error) => ApiError::validation(error.field, error.reason),
                WorkforceError::Conflict(_) => ApiError::Conflict {
                    kind: "workforce-conflict",
                    title: "That cannot be done now",
                    detail,
                },
            }
        }
        CommandError::VersionMismatch { current } => ApiError::PreconditionFailed {
            current_version: current,
        },
        CommandError::Conflict => ApiError::ConcurrentModification,
        CommandError::Store(error) => error,
    }
}

/// Waits, when the request carries a consistency token, until the workforce model has it.
pub async fn wait_workforce(state: &AppState, token: Option<&str>) -> Result<(), ApiError> {
    if let Some(checkpoint) = parse_consistency_token(token)? {
        wait_for_projector(state, "workforce", checkpoint).await?;
    }
    Ok(())
}

fn valid<T>(result: Result<T, docket_domain::ValidationError>, field: &str) -> Result<T, ApiError> {
    result.map_err(|e| ApiError::validation(field, e.reason))
}

fn note(raw: Option<&str>, field: &str) -> Result<Option<Note>, ApiError> {
    raw.map(str::trim)
        .filter(|text| !text.is_empty())
        .map(|text| valid(Note::parse(text), field))
        .transpose()
}

/// The person behind an agent id, who must exist (404 otherwise).
async fn agent_standing(
    state: &AppState,
    id: Uuid,
) -> Result<docket_domain::ticket::UserStanding, ApiError> {
    crate::accounts::standing(state, UserId(id))
        .await?
        .ok_or_else(|| ApiError::not_found("agent"))
}

fn breaks_of(value: &serde_json::Value) -> Vec<BreakDto> {
    serde_json::from_value::<Vec<BreakWindow>>(value.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|b| BreakDto {
            starts_at: b.starts_at,
            ends_at: b.ends_at,
        })
        .collect()
}

pub fn agent_dto(
    row: &AgentRow,
    skill_names: &BTreeMap<Uuid, String>,
    now: DateTime<Utc>,
) -> AgentDto {
    let snapshot = crate::routing::snapshot(row);
    let skills = serde_json::from_value::<BTreeMap<Uuid, u8>>(row.skills.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(skill_id, proficiency)| HeldSkillDto {
            skill_id,
            name: skill_names.get(&skill_id).cloned(),
            proficiency,
        })
        .collect();
    let shift = match (row.shift_id, row.shift_started_at) {
        (Some(id), Some(started_at)) if snapshot.on_shift(now) => Some(CurrentShiftDto {
            id,
            started_at,
            scheduled_end: row.shift_scheduled_end,
            breaks: breaks_of(&row.breaks),
            on_break: snapshot.on_break(now),
        }),
        _ => None,
    };
    AgentDto {
        id: row.agent_id,
        email: row.email.clone(),
        full_name: row.full_name.clone(),
        role: row.role.clone(),
        active: row.active,
        status: snapshot.status.into(),
        status_changed_at: row.status_changed_at,
        capacity: row.capacity,
        skills,
        team_ids: row.teams.clone(),
        shift,
        open_tickets: row.open_tickets,
        critical_tickets: row.critical_tickets,
        last_assigned_at: row.last_assigned_at,
        routable: snapshot.eligibility(&Default::default(), now).is_ok(),
    }
}

pub async fn skill_names(state: &AppState) -> Result<BTreeMap<Uuid, String>, ApiError> {
    Ok(workforce::skills(&state.pool)
        .await
        .map_err(ApiError::database)?
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect())
}

async fn agents(state: &AppState, only: Option<Uuid>) -> Result<Vec<AgentDto>, ApiError> {
    let names = skill_names(state).await?;
    let now = state.clock.now();
    Ok(workforce::agents(&state.pool, only)
        .await
        .map_err(ApiError::database)?
        .iter()
        .map(|row| agent_dto(row, &names, now))
        .collect())
}

async fn team_dto(state: &AppState, id: Uuid) -> Result<Option<TeamDto>, ApiError> {
    let team = workforce::team(&state.pool, id)
        .await
        .map_err(ApiError::database)?;
    let Some(team) = team else {
        return Ok(None);
    };
    let members = workforce::members(&state.pool, Some(id))
        .await
        .map_err(ApiError::database)?;
    Ok(Some(TeamDto {
        id: team.id,
        name: team.name,
        description: team.description,
        created_at: team.created_at,
        members: members.into_iter().map(member_dto).collect(),
    }))
}

fn member_dto(m: workforce::MemberRow) -> MemberDto {
    MemberDto {
        user_id: m.user_id,
        email: m.email,
        full_name: m.full_name,
        team_role: m.team_role,
        added_at: m.added_at,
    }
}

fn shift_dto(row: ShiftRow) -> ShiftDto {
    ShiftDto {
        id: row.id,
        agent_id: row.agent_id,
        started_at: row.started_at,
        scheduled_end: row.scheduled_end,
        ended_at: row.ended_at,
        breaks: breaks_of(&row.breaks),
    }
}

fn shift_from_aggregate(
    shift: &docket_domain::workforce::shift::Shift,
) -> Result<ShiftDto, ApiError> {
    match (shift.id, shift.agent_id, shift.started_at) {
        (Some(id), Some(agent), Some(started_at)) => Ok(ShiftDto {
            id: id.0,
            agent_id: agent.0,
            started_at,
            scheduled_end: shift.scheduled_end,
            ended_at: shift.ended_at,
            breaks: shift
                .breaks
                .iter()
                .map(|b| BreakDto {
                    starts_at: b.starts_at,
                    ends_at: b.ends_at,
                })
                .collect(),
        }),
        _ => Err(ApiError::not_found("shift")),
    }
}

fn staff(user: &AuthUser) -> Result<(), ApiError> {
    user.require_staff("see agents, teams and skills")
}

// ---- the API ---------------------------------------------------------------------------------

#[derive(Default)]
pub struct WorkforceApi;

#[OpenApi(tag = "ApiTags::Agents")]
impl WorkforceApi {
    /// The skill catalogue (staff).
    #[oai(path = "/api/skills", method = "get", operation_id = "list_skills")]
    async fn skills(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        #[oai(name = "X-Consistency-Token")] consistency: Header<Option<String>>,
    ) -> Result<Json<Vec<SkillDto>>, ApiError> {
        staff(&auth.0)?;
        wait_workforce(&state, consistency.0.as_deref()).await?;
        let rows = workforce::skills(&state.pool)
            .await
            .map_err(ApiError::database)?;
        Ok(Json(
            rows.into_iter()
                .map(|s| SkillDto {
                    id: s.id,
                    name: s.name,
                    description: s.description,
                    created_at: s.created_at,
                })
                .collect(),
        ))
    }

    /// Add a skill to the catalogue (managers, admins). Names are unique, ignoring case.
    #[oai(path = "/api/skills", method = "post", operation_id = "create_skill")]
    async fn create_skill(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        context: Data<&RequestContext>,
        body: JsonBody<SkillRequest>,
    ) -> Result<Created<SkillDto>, ApiError> {
        let me = auth.0;
        let name = valid(SkillName::parse(&body.0.name), "name")?;
        let description = note(body.0.description.as_deref(), "description")?;
        let id = SkillId::for_name(&name);
        let at = state.clock.now();
        let committed = state
            .skills
            .execute(
                &id.to_string(),
                None,
                SkillCommand::Create {
                    name: name.clone(),
                    description: description.clone(),
                    actor: me.actor(),
                    at,
                },
                context.metadata(Some(me.actor())),
            )
            .await
            .map_err(workforce_error)?;
        Ok(Created::Created(
            Json(SkillDto {
                id: id.0,
                name: name.as_str().to_string(),
                description: description.map(|d| d.as_str().to_string()),
                created_at: at,
            }),
            consistency_token(committed.position),
        ))
    }

    /// Replace an agent's skills and proficiencies (managers, admins).
    #[oai(
        path = "/api/agents/:id/skills",
        method = "put",
        operation_id = "set_agent_skills"
    )]
    async fn set_skills(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        context: Data<&RequestContext>,
        id: Path<Uuid>,
        body: JsonBody<SetSkillsRequest>,
    ) -> Result<Written<AgentDto>, ApiError> {
        let me = auth.0;
        let mut skills = Vec::with_capacity(body.0.skills.len());
        for (index, skill) in body.0.skills.iter().enumerate() {
            let (catalogued, _) = state.skills.load(&skill.skill_id.to_string()).await?;
            if catalogued.id.is_none() {
                return Err(ApiError::validation(
                    format!("skills[{index}].skill_id"),
                    "no such skill",
                ));
            }
            skills.push(valid(
                AgentSkill::new(SkillId(skill.skill_id), skill.proficiency),
                &format!("skills[{index}].proficiency"),
            )?);
        }
        change_agent(&state, &context, &me, id.0, |agent, actor, at| {
            AgentCommand::SetSkills {
                agent,
                skills,
                actor,
                at,
            }
        })
        .await
    }

    /// Change an agent's status: the agent themself, or a manager or admin. Only `available`
    /// agents are routed to; the change is broadcast on the live stream as `agent_status`.
    #[oai(
        path = "/api/agents/:id/status",
        method = "put",
        operation_id = "set_agent_status"
    )]
    async fn set_status(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        context: Data<&RequestContext>,
        id: Path<Uuid>,
        body: JsonBody<SetStatusRequest>,
    ) -> Result<Written<AgentDto>, ApiError> {
        let status = body.0.status.into();
        change_agent(&state, &context, &auth.0, id.0, |agent, actor, at| {
            AgentCommand::ChangeStatus {
                agent,
                status,
                actor,
                at,
            }
        })
        .await
    }

    /// Set how many open tickets an agent holds at most (managers, admins; default 10).
    #[oai(
        path = "/api/agents/:id/capacity",
        method = "put",
        operation_id = "set_agent_capacity"
    )]
    async fn set_capacity(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        context: Data<&RequestContext>,
        id: Path<Uuid>,
        body: JsonBody<SetCapacityRequest>,
    ) -> Result<Written<AgentDto>, ApiError> {
        let capacity = body.0.capacity;
        change_agent(&state, &context, &auth.0, id.0, |agent, actor, at| {
            AgentCommand::SetCapacity {
                agent,
                capacity,
                actor,
                at,
            }
        })
        .await
    }

    /// Agents and managers with skills, teams, status, shift, open and critical counts (staff).
    #[oai(path = "/api/agents", method = "get", operation_id = "list_agents")]
    async fn list_agents(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        #[oai(name = "X-Consistency-Token")] consistency: Header<Option<String>>,
    ) -> Result<Json<Vec<AgentDto>>, ApiError> {
        staff(&auth.0)?;
        wait_workforce(&state, consistency.0.as_deref()).await?;
        Ok(Json(agents(&state, None).await?))
    }

    /// The agents routing could give a ticket to right now (staff).
    #[oai(
        path = "/api/agents/available",
        method = "get",
        operation_id = "list_available_agents"
    )]
    async fn available_agents(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        #[oai(name = "X-Consistency-Token")] consistency: Header<Option<String>>,
    ) -> Result<Json<Vec<AgentDto>>, ApiError> {
        staff(&auth.0)?;
        wait_workforce(&state, consistency.0.as_deref()).await?;
        let mut all = agents(&state, None).await?;
        all.retain(|a| a.routable);
        Ok(Json(all))
    }

    /// One agent (staff).
    #[oai(path = "/api/agents/:id", method = "get", operation_id = "get_agent")]
    async fn get_agent(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        id: Path<Uuid>,
        #[oai(name = "X-Consistency-Token")] consistency: Header<Option<String>>,
    ) -> Result<Json<AgentDto>, ApiError> {
        staff(&auth.0)?;
        wait_workforce(&state, consistency.0.as_deref()).await?;
        agents(&state, Some(id.0))
            .await?
            .into_iter()
            .next()
            .map(Json)
            .ok_or_else(|| ApiError::not_found("agent"))
    }

    /// Teams with their members (staff).
    #[oai(path = "/api/teams", method = "get", operation_id = "list_teams")]
    async fn teams(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        #[oai(name = "X-Consistency-Token")] consistency: Header<Option<String>>,
    ) -> Result<Json<Vec<TeamDto>>, ApiError> {
        staff(&auth.0)?;
        wait_workforce(&state, consistency.0.as_deref()).await?;
        let teams = workforce::teams(&state.pool)
            .await
            .map_err(ApiError::database)?;
        let mut members: BTreeMap<Uuid, Vec<MemberDto>> = BTreeMap::new();
        for member in workforce::members(&state.pool, None)
            .await
            .map_err(ApiError::database)?
        {
            members
                .entry(member.team_id)
                .or_default()
                .push(member_dto(member));
        }
        Ok(Json(
            teams
                .into_iter()
                .map(|t| TeamDto {
                    members: members.remove(&t.id).unwrap_or_default(),
                    id: t.id,
                    name: t.name,
                    description: t.description,
                    created_at: t.created_at,
                })
                .collect(),
        ))
    }

    /// Create a team (managers, admins).
    #[oai(path = "/api/teams", method = "post", operation_id = "create_team")]
    async fn create_team(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        context: Data<&RequestContext>,
        body: JsonBody<TeamRequest>,
    ) -> Result<Created<TeamDto>, ApiError> {
        let me = auth.0;
        let name = valid(TeamName::parse(&body.0.name), "name")?;
        let description = note(body.0.description.as_deref(), "description")?;
        let id = TeamId(Uuid::now_v7());
        let at = state.clock.now();
        let committed = state
            .teams
            .execute(
                &id.to_string(),
                Some(0),
                TeamCommand::Create {
                    team_id: id,
                    name: name.clone(),
                    description: description.clone(),
                    actor: me.actor(),
                    at,
                },
                context.metadata(Some(me.actor())),
            )
            .await
            .map_err(workforce_error)?;
        Ok(Created::Created(
            Json(TeamDto {
                id: id.0,
                name: name.as_str().to_string(),
                description: description.map(|d| d.as_str().to_string()),
                created_at: at,
                members: vec![],
            }),
            consistency_token(committed.position),
        ))
    }

    /// A team's members, managers and leads first (staff).
    #[oai(
        path = "/api/teams/:id/members",
        method = "get",
        operation_id = "list_team_members"
    )]
    async fn members(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        id: Path<Uuid>,
        #[oai(name = "X-Consistency-Token")] consistency: Header<Option<String>>,
    ) -> Result<Json<Vec<MemberDto>>, ApiError> {
        staff(&auth.0)?;
        wait_workforce(&state, consistency.0.as_deref()).await?;
        team_dto(&state, id.0)
            .await?
            .map(|t| Json(t.members))
            .ok_or_else(|| ApiError::not_found("team"))
    }

    /// Add an agent or manager to a team, or change their team role (managers, admins).
    #[oai(
        path = "/api/teams/:id/members",
        method = "post",
        operation_id = "add_team_member"
    )]
    async fn add_member(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        context: Data<&RequestContext>,
        id: Path<Uuid>,
        body: JsonBody<AddMemberRequest>,
    ) -> Result<Written<Vec<MemberDto>>, ApiError> {
        let me = auth.0;
        let member = crate::accounts::standing(&state, UserId(body.0.user_id))
            .await?
            .ok_or_else(|| ApiError::validation("user_id", "no such user"))?;
        let committed = state
            .teams
            .execute(
                &id.0.to_string(),
                None,
                TeamCommand::AddMember {
                    member,
                    team_role: body.0.team_role.unwrap_or(TeamRoleDto::Member).into(),
                    actor: me.actor(),
                    at: state.clock.now(),
                },
                context.metadata(Some(me.actor())),
            )
            .await
            .map_err(workforce_error)?;
        members_written(&state, id.0, committed.position).await
    }

    /// Remove a member from a team (managers, admins).
    #[oai(
        path = "/api/teams/:id/members",
        method = "delete",
        operation_id = "remove_team_member"
    )]
    async fn remove_member(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        context: Data<&RequestContext>,
        id: Path<Uuid>,
        user_id: Query<Uuid>,
    ) -> Result<Removed, ApiError> {
        let me = auth.0;
        let committed = state
            .teams
            .execute(
                &id.0.to_string(),
                None,
                TeamCommand::RemoveMember {
                    user_id: UserId(user_id.0),
                    actor: me.actor(),
                    at: state.clock.now(),
                },
                context.metadata(Some(me.actor())),
            )
            .await
            .map_err(workforce_error)?;
        Ok(Removed::NoContent(consistency_token(committed.position)))
    }

    /// Start a shift: for yourself, or (managers, admins) for an agent. Starting also makes
    /// the agent `available` unless `set_available` is false.
    #[oai(
        path = "/api/shifts/start",
        method = "post",
        operation_id = "start_shift"
    )]
    async fn start_shift(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        context: Data<&RequestContext>,
        body: JsonBody<StartShiftRequest>,
    ) -> Result<Created<ShiftDto>, ApiError> {
        let me = auth.0;
        let agent_id = body.0.agent_id.unwrap_or(me.id.0);
        if agent_id != me.id.0 {
            me.require_admin_or_manager("start another agent's shift")?;
        }
        let agent = agent_standing(&state, agent_id).await?;
        // The shifts model must include every shift started before this request.
        crate::routing::wait_for_workforce(&state, &["shift"]).await?;
        let current = workforce::shifts_of(&state.pool, agent_id, 1)
            .await
            .map_err(ApiError::database)?;
        let now = state.clock.now();
        if let Some(open) = current
            .into_iter()
            .find(|s| s.ended_at.is_none() && s.scheduled_end.is_none_or(|end| now < end))
        {
            return Err(ApiError::Conflict {
                kind: "shift-running",
                title: "A shift is already running",
                detail: format!("shift {} is running; end it first", open.id),
            });
        }
        let id = ShiftId(Uuid::now_v7());
        let committed = state
            .shifts
            .execute(
                &id.to_string(),
                Some(0),
                ShiftCommand::Start {
                    shift_id: id,
                    agent,
                    scheduled_end: body.0.scheduled_end,
                    actor: me.actor(),
                    at: now,
                },
                context.metadata(Some(me.actor())),
            )
            .await
            .map_err(workforce_error)?;
        let mut token = committed.position;
        if body.0.set_available.unwrap_or(true) {
            let status = state
                .agents
                .execute(
                    &agent_id.to_string(),
                    None,
                    AgentCommand::ChangeStatus {
                        agent,
                        status: docket_domain::values::AgentStatus::Available,
                        actor: me.actor(),
                        at: now,
                    },
                    context.metadata(Some(me.actor())),
                )
                .await
                .map_err(workforce_error)?;
            token = status.position.or(token);
        }
        Ok(Created::Created(
            Json(shift_from_aggregate(&committed.aggregate)?),
            consistency_token(token),
        ))
    }

    /// End a running shift (its agent, managers, admins). The agent goes `offline`.
    #[oai(
        path = "/api/shifts/:id/end",
        method = "post",
        operation_id = "end_shift"
    )]
    async fn end_shift(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        context: Data<&RequestContext>,
        id: Path<Uuid>,
    ) -> Result<Written<ShiftDto>, ApiError> {
        let me = auth.0;
        let now = state.clock.now();
        let committed = state
            .shifts
            .execute(
                &id.0.to_string(),
                None,
                ShiftCommand::End {
                    actor: me.actor(),
                    at: now,
                },
                context.metadata(Some(me.actor())),
            )
            .await
            .map_err(workforce_error)?;
        let mut token = committed.position;
        if let Some(agent_id) = committed.aggregate.agent_id {
            let agent = agent_standing(&state, agent_id.0).await?;
            if let Ok(status) = state
                .agents
                .execute(
                    &agent_id.to_string(),
                    None,
                    AgentCommand::ChangeStatus {
                        agent,
                        status: docket_domain::values::AgentStatus::Offline,
                        actor: me.actor(),
                        at: now,
                    },
                    context.metadata(Some(me.actor())),
                )
                .await
            {
                token = status.position.or(token);
            }
        }
        Ok(Written::Ok(
            Json(shift_from_aggregate(&committed.aggregate)?),
            consistency_token(token),
        ))
    }

    /// Schedule a break in a running shift; the agent is not routed to during it.
    #[oai(
        path = "/api/shifts/:id/breaks",
        method = "post",
        operation_id = "schedule_break"
    )]
    async fn schedule_break(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        context: Data<&RequestContext>,
        id: Path<Uuid>,
        body: JsonBody<BreakRequest>,
    ) -> Result<Created<ShiftDto>, ApiError> {
        let me = auth.0;
        let reason = note(body.0.reason.as_deref(), "reason")?;
        let committed = state
            .shifts
            .execute(
                &id.0.to_string(),
                None,
                ShiftCommand::ScheduleBreak {
                    window: BreakWindow {
                        starts_at: body.0.starts_at,
                        ends_at: body.0.ends_at,
                    },
                    reason,
                    actor: me.actor(),
                    at: state.clock.now(),
                },
                context.metadata(Some(me.actor())),
            )
            .await
            .map_err(workforce_error)?;
        Ok(Created::Created(
            Json(shift_from_aggregate(&committed.aggregate)?),
            consistency_token(committed.position),
        ))
    }

    /// An agent's shifts, newest first (staff).
    #[oai(
        path = "/api/shifts/agent/:agent_id",
        method = "get",
        operation_id = "list_agent_shifts"
    )]
    async fn agent_shifts(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        agent_id: Path<Uuid>,
        /// At most this many (default 50, at most 500).
        limit: Query<Option<i64>>,
        #[oai(name = "X-Consistency-Token")] consistency: Header<Option<String>>,
    ) -> Result<Json<Vec<ShiftDto>>, ApiError> {
        staff(&auth.0)?;
        wait_workforce(&state, consistency.0.as_deref()).await?;
        let limit = limit.0.unwrap_or(50).clamp(1, 500);
        let rows = workforce::shifts_of(&state.pool, agent_id.0, limit)
            .await
            .map_err(ApiError::database)?;
        Ok(Json(rows.into_iter().map(shift_dto).collect()))
    }
}

/// Runs a command on an agent's profile and answers with the agent as the models then show them.
async fn change_agent(
    state: &AppState,
    context: &RequestContext,
    me: &AuthUser,
    id: Uuid,
    command: impl FnOnce(
        docket_domain::ticket::UserStanding,
        docket_domain::Actor,
        DateTime<Utc>,
    ) -> AgentCommand,
) -> Result<Written<AgentDto>, ApiError> {
    let agent = agent_standing(state, id).await?;
    let committed = state
        .agents
        .execute(
            &id.to_string(),
            None,
            command(agent, me.actor(), state.clock.now()),
            context.metadata(Some(me.actor())),
        )
        .await
        .map_err(workforce_error)?;
    agent_written(state, id, committed.position).await
}

async fn agent_written(
    state: &AppState,
    id: Uuid,
    position: Option<docket_projections::Checkpoint>,
) -> Result<Written<AgentDto>, ApiError> {
    if let Some(checkpoint) = position {
        wait_for_projector(state, "workforce", checkpoint).await?;
    }
    let agent = agents(state, Some(id))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found("agent"))?;
    Ok(Written::Ok(Json(agent), consistency_token(position)))
}

async fn members_written(
    state: &AppState,
    id: Uuid,
    position: Option<docket_projections::Checkpoint>,
) -> Result<Written<Vec<MemberDto>>, ApiError> {
    if let Some(checkpoint) = position {
        wait_for_projector(state, "workforce", checkpoint).await?;
    }
    let team = team_dto(state, id)
        .await?
        .ok_or_else(|| ApiError::not_found("team"))?;
    Ok(Written::Ok(Json(team.members), consistency_token(position)))
}
