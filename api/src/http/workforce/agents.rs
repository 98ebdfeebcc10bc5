//! `/api/agents`: agents' profiles — skills, status, capacity — as routing sees them.

use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use uuid::Uuid;

use super::{AgentDto, SetCapacityRequest, SetSkillsRequest, SetStatusRequest, Written};
use crate::app::workforce::{self, Changed, ProfileChange};
use crate::app::{AppError, Origin, SharedApp};
use crate::http::ApiTags;
use crate::http::json::JsonBody;
use crate::http::principal::{BearerAuth, consistency_token};
use crate::http::problem::ApiError;

fn written(
    changed: Result<Changed<workforce::AgentView>, AppError>,
) -> Result<Written<AgentDto>, ApiError> {
    let changed = changed?;
    Ok(Written::Ok(
        Json(changed.value.into()),
        consistency_token(changed.position),
    ))
}

#[derive(Default)]
pub struct AgentsApi;

#[OpenApi(tag = "ApiTags::Agents")]
impl AgentsApi {
    /// Agents and managers with skills, teams, status, shift, open and critical counts (staff).
    #[oai(path = "/api/agents", method = "get", operation_id = "list_agents")]
    async fn list(
        &self,
        auth: BearerAuth,
        app: Data<&SharedApp>,
    ) -> Result<Json<Vec<AgentDto>>, ApiError> {
        let agents = workforce::agents(&app, &auth.0).await?;
        Ok(Json(agents.into_iter().map(AgentDto::from).collect()))
    }

    /// The agents routing could give a ticket to right now (staff).
    #[oai(
        path = "/api/agents/available",
        method = "get",
        operation_id = "list_available_agents"
    )]
    async fn available(
        &self,
        auth: BearerAuth,
        app: Data<&SharedApp>,
    ) -> Result<Json<Vec<AgentDto>>, ApiError> {
        let agents = workforce::available_agents(&app, &auth.0).await?;
        Ok(Json(agents.into_iter().map(AgentDto::from).collect()))
    }

    /// One agent (staff).
    #[oai(path = "/api/agents/:id", method = "get", operation_id = "get_agent")]
    async fn get(
        &self,
        auth: BearerAuth,
        app: Data<&SharedApp>,
        id: Path<Uuid>,
    ) -> Result<Json<AgentDto>, ApiError> {
        Ok(Json(workforce::agent(&app, &auth.0, id.0).await?.into()))
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
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
        body: JsonBody<SetSkillsRequest>,
    ) -> Result<Written<AgentDto>, ApiError> {
        let held = body
            .0
            .skills
            .iter()
            .map(|s| (s.skill_id, s.proficiency))
            .collect();
        written(
            workforce::change_agent(&app, &auth.0, &origin, id.0, ProfileChange::Skills(held))
                .await,
        )
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
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
        body: JsonBody<SetStatusRequest>,
    ) -> Result<Written<AgentDto>, ApiError> {
        let change = ProfileChange::Status(body.0.status.into());
        written(workforce::change_agent(&app, &auth.0, &origin, id.0, change).await)
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
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
        body: JsonBody<SetCapacityRequest>,
    ) -> Result<Written<AgentDto>, ApiError> {
        let change = ProfileChange::Capacity(body.0.capacity);
        written(workforce::change_agent(&app, &auth.0, &origin, id.0, change).await)
    }
}
