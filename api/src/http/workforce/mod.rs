//! `/api/skills`, `/api/agents`, `/api/teams`, `/api/shifts`: who can work what, and when;
//! `/api/tickets/queue`, routing explanations and claims ([`queue`]); `/api/workload/…`.

pub mod agents;
pub mod queue;
pub mod shifts;
pub mod skills;
pub mod teams;
pub mod workload;

use chrono::{DateTime, Utc};
use docket_domain::workforce::shift::BreakWindow;
use docket_projections::workforce::{MemberRow, ShiftRow, SkillRow};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};
use serde::Deserialize;
use uuid::Uuid;

use crate::app::workforce::{AgentView, Changed, TeamView};
use crate::http::etag;
use crate::http::principal::consistency_token;
use crate::http::wire::Timestamp;
use crate::http::wire::{AgentStatusDto, PriorityDto, RoleDto, StatusDto, TeamRoleDto};

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
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct AgentSkillDto {
    /// The skill by its id; or give `skill`.
    #[serde(default)]
    pub skill_id: Option<Uuid>,
    /// The skill by its id or its name; or give `skill_id`.
    #[oai(validator(max_length = 100))]
    #[serde(default)]
    pub skill: Option<String>,
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
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
}

#[derive(Debug, Clone, Object)]
pub struct CurrentShiftDto {
    pub id: Uuid,
    pub started_at: Timestamp,
    pub scheduled_end: Option<Timestamp>,
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
    pub role: RoleDto,
    pub active: bool,
    pub status: AgentStatusDto,
    pub status_changed_at: Option<Timestamp>,
    pub capacity: i32,
    pub skills: Vec<HeldSkillDto>,
    pub team_ids: Vec<Uuid>,
    /// Absent when off shift.
    pub shift: Option<CurrentShiftDto>,
    /// Unresolved tickets held.
    pub open_tickets: i32,
    pub critical_tickets: i32,
    pub last_assigned_at: Option<Timestamp>,
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
    pub team_role: TeamRoleDto,
    pub added_at: Timestamp,
}

#[derive(Debug, Clone, Object)]
pub struct TeamDto {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub created_at: Timestamp,
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
    pub started_at: Timestamp,
    pub scheduled_end: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub breaks: Vec<BreakDto>,
}

#[derive(ApiResponse)]
pub enum Created<T: poem_openapi::types::ToJSON> {
    /// Created, at `Location`. Send the token back on a read to see the change.
    #[oai(status = 201)]
    Created(
        Json<T>,
        #[oai(header = "Location")] String,
        /// The version of what was written: send it back in `If-Match`.
        #[oai(header = "ETag")]
        String,
        #[oai(header = "X-Consistency-Token")] Option<String>,
    ),
}

impl<T: poem_openapi::types::ToJSON> Created<T> {
    /// The response for `changed`, shown as `T`, found at `location`.
    pub fn of<V: Into<T>>(changed: Changed<V>, location: String) -> Self {
        Created::Created(
            Json(changed.value.into()),
            location,
            etag(changed.version),
            consistency_token(changed.position),
        )
    }
}

#[derive(ApiResponse)]
pub enum Written<T: poem_openapi::types::ToJSON> {
    /// Send the token back on a read to see the change.
    #[oai(status = 200)]
    Ok(
        Json<T>,
        /// The version of what was written: send it back in `If-Match`.
        #[oai(header = "ETag")]
        String,
        #[oai(header = "X-Consistency-Token")] Option<String>,
    ),
}

impl<T: poem_openapi::types::ToJSON> Written<T> {
    /// The response for `changed`, shown as `T`.
    pub fn of<V: Into<T>>(changed: Changed<V>) -> Self {
        Written::Ok(
            Json(changed.value.into()),
            etag(changed.version),
            consistency_token(changed.position),
        )
    }
}

/// A read of one versioned item, with its `ETag`.
#[derive(ApiResponse)]
pub enum Versioned<T: poem_openapi::types::ToJSON> {
    #[oai(status = 200)]
    Ok(Json<T>, #[oai(header = "ETag")] String),
}

#[derive(ApiResponse)]
pub enum Removed {
    #[oai(status = 204)]
    NoContent(#[oai(header = "X-Consistency-Token")] Option<String>),
}

#[derive(Debug, Clone, Object)]
pub struct QueuedTicketDto {
    /// 1 is served first.
    pub position: i64,
    pub ticket_id: Uuid,
    pub number: Option<String>,
    pub subject: Option<String>,
    pub priority: PriorityDto,
    pub status: StatusDto,
    pub team_id: Option<Uuid>,
    pub skill_id: Option<Uuid>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Object)]
pub struct QueueDto {
    /// This page of the queue, in the order they will be served.
    pub items: Vec<QueuedTicketDto>,
    /// Unassigned unfinished tickets in all.
    pub total: i64,
    pub page: i64,
    pub page_size: i64,
}

#[derive(Debug, Clone, Object)]
pub struct MoveDto {
    pub ticket_id: Uuid,
    /// Absent for a ticket from the queue.
    pub from_agent_id: Option<Uuid>,
    pub to_agent_id: Uuid,
    /// The winning score (lower wins).
    pub score: f64,
    pub priority: PriorityDto,
}

#[derive(Debug, Clone, Object)]
pub struct MovesDto {
    pub dry_run: bool,
    pub moves: Vec<MoveDto>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct RebalanceRequest {
    /// List the moves without making them (default false).
    pub dry_run: Option<bool>,
}

#[derive(Debug, Clone, Object)]
pub struct WeightsDto {
    pub active_tickets: f64,
    pub critical_tickets: f64,
    pub proficiency: f64,
}

#[derive(Debug, Clone, Object)]
pub struct CandidateDto {
    pub agent_id: Uuid,
    /// `active_tickets × w1 + critical_tickets × w2 − proficiency × w3`; lower wins.
    pub score: f64,
    pub open_tickets: u32,
    pub critical_tickets: u32,
    pub proficiency: u8,
    pub last_assigned_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Object)]
pub struct ExclusionDto {
    /// `inactive`, `not_in_team`, `lacks_skill`, `not_available`, `off_shift`, `on_break`,
    /// `at_capacity` or `current_assignee`.
    pub reason: String,
    pub agents: u32,
}

#[derive(Debug, Clone, Object)]
pub struct DecisionDto {
    /// The ticket version that recorded it.
    pub version: i64,
    pub decided_at: Timestamp,
    /// Absent: nobody was eligible; the ticket waited in the queue.
    pub chosen_agent_id: Option<Uuid>,
    pub skill_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub weights: WeightsDto,
    /// How many agents were eligible.
    pub eligible: u32,
    /// The best candidates, best first (at most ten).
    pub candidates: Vec<CandidateDto>,
    pub excluded: Vec<ExclusionDto>,
}

#[derive(Debug, Clone, Object)]
pub struct RoutingExplanation {
    pub ticket_id: Uuid,
    pub assignee_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    /// Every routing decision on the ticket, oldest first, straight from its log.
    pub decisions: Vec<DecisionDto>,
}

#[derive(Debug, Clone, Object)]
pub struct AgentWorkloadDto {
    pub agent_id: Uuid,
    pub full_name: String,
    pub status: AgentStatusDto,
    pub on_shift: bool,
    pub routable: bool,
    pub open_tickets: i32,
    pub critical_tickets: i32,
    /// Held tickets whose SLA is at risk or breached.
    pub sla_at_risk: i64,
    pub capacity: i32,
    /// open / capacity (absent when capacity is 0).
    pub utilisation: Option<f64>,
}

#[derive(Debug, Clone, Object)]
pub struct TeamWorkloadDto {
    pub team_id: Uuid,
    pub name: String,
    pub members: i64,
    pub members_routable: i64,
    pub open_tickets: i64,
    pub critical_tickets: i64,
    pub sla_at_risk: i64,
    /// Unassigned tickets waiting for this team.
    pub queued: i64,
    pub capacity: i64,
    pub utilisation: Option<f64>,
}

#[derive(Debug, Clone, Object)]
pub struct WorkloadMetrics {
    pub agents: i64,
    pub agents_on_shift: i64,
    pub agents_routable: i64,
    pub assigned_tickets: i64,
    pub queued_tickets: i64,
    pub critical_tickets: i64,
    pub sla_at_risk: i64,
    pub capacity: i64,
    /// assigned / capacity of agents on shift (absent when nobody is on shift).
    pub utilisation: Option<f64>,
}

#[derive(Debug, Clone, Object)]
pub struct HourForecast {
    pub hour_start: Timestamp,
    pub expected_tickets: f64,
    /// Agents needed to hold the expected load at current handling times and capacities.
    pub agents_needed: i64,
}

#[derive(Debug, Clone, Object)]
pub struct Predictions {
    /// How the forecast is made.
    pub method: String,
    pub weeks_of_history: i64,
    /// Mean absolute error per hour when the last week is forecast from the weeks before it.
    pub holdout_mean_absolute_error: Option<f64>,
    /// The last week's actual mean tickets per hour, to read the error against.
    pub holdout_mean_actual: Option<f64>,
    /// Mean business hours a resolved ticket stayed open over the last 28 days.
    pub mean_resolution_hours: Option<f64>,
    pub resolved_tickets_measured: i64,
    /// Mean capacity of the agents (tickets held at once).
    pub mean_capacity: f64,
    pub hours: Vec<HourForecast>,
}

// ---- conversions -----------------------------------------------------------------------------

impl From<SkillRow> for SkillDto {
    fn from(row: SkillRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            description: row.description,
            created_at: row.created_at.into(),
        }
    }
}

fn breaks(windows: &[BreakWindow]) -> Vec<BreakDto> {
    windows
        .iter()
        .map(|b| BreakDto {
            starts_at: b.starts_at.into(),
            ends_at: b.ends_at.into(),
        })
        .collect()
}

impl From<AgentView> for AgentDto {
    fn from(view: AgentView) -> Self {
        let row = view.row;
        let shift = match (row.shift_id, row.shift_started_at) {
            (Some(id), Some(started_at)) if view.on_shift => Some(CurrentShiftDto {
                id,
                started_at: started_at.into(),
                scheduled_end: row.shift_scheduled_end.map(Timestamp),
                breaks: breaks(&row.breaks),
                on_break: view.on_break,
            }),
            _ => None,
        };
        AgentDto {
            id: row.agent_id,
            email: row.email,
            full_name: row.full_name,
            role: row.role.into(),
            active: row.active,
            status: row.status.into(),
            status_changed_at: row.status_changed_at.map(Timestamp),
            capacity: row.capacity,
            skills: row
                .skills
                .iter()
                .map(|(skill_id, proficiency)| HeldSkillDto {
                    skill_id: *skill_id,
                    name: view.skill_names.get(skill_id).cloned(),
                    proficiency: *proficiency,
                })
                .collect(),
            team_ids: row.teams,
            shift,
            open_tickets: row.open_tickets,
            critical_tickets: row.critical_tickets,
            last_assigned_at: row.last_assigned_at.map(Timestamp),
            routable: view.routable,
        }
    }
}

impl From<MemberRow> for MemberDto {
    fn from(m: MemberRow) -> Self {
        Self {
            user_id: m.user_id,
            email: m.email,
            full_name: m.full_name,
            team_role: m.team_role.into(),
            added_at: m.added_at.into(),
        }
    }
}

impl From<TeamView> for TeamDto {
    fn from(view: TeamView) -> Self {
        Self {
            id: view.team.id,
            name: view.team.name,
            description: view.team.description,
            created_at: view.team.created_at.into(),
            members: view.members.into_iter().map(MemberDto::from).collect(),
        }
    }
}

impl From<ShiftRow> for ShiftDto {
    fn from(row: ShiftRow) -> Self {
        Self {
            id: row.id,
            agent_id: row.agent_id,
            started_at: row.started_at.into(),
            scheduled_end: row.scheduled_end.map(Timestamp),
            ended_at: row.ended_at.map(Timestamp),
            breaks: breaks(&row.breaks),
        }
    }
}

/// A text field that may be left blank, as the domain's note.
fn note(
    raw: Option<&str>,
    field: &str,
) -> Result<Option<docket_domain::values::Note>, crate::http::problem::ApiError> {
    raw.map(str::trim)
        .filter(|text| !text.is_empty())
        .map(|text| {
            docket_domain::values::Note::parse(text)
                .map_err(|e| crate::http::problem::ApiError::validation(field, e.reason))
        })
        .transpose()
}
