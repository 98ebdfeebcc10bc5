//! `/api/agents`: agents' profiles — skills, status, capacity — as routing sees them.

use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use uuid::Uuid;

use docket_domain::values::{SkillId, SkillName};

use super::{
    AgentDto, AgentSkillDto, SetCapacityRequest, SetSkillsRequest, SetStatusRequest, Written,
};
use crate::app::workforce::{self, Changed, ProfileChange};
use crate::app::{AppError, Origin, SharedApp};
use crate::http::ApiTags;
use crate::http::json::JsonBody;
use crate::http::paging::{Page, Paging};
use crate::http::principal::SignedIn;
use crate::http::problem::ApiError;
use crate::http::wire::{default_page, default_page_size};

fn written(
    changed: Result<Changed<workforce::AgentView>, AppError>,
) -> Result<Written<AgentDto>, ApiError> {
    Ok(Written::of(changed?))
}

/// The skill a held skill names, by `skill_id` or by `skill` (an id or a name).
fn skill_named(held: &AgentSkillDto, index: usize) -> Result<Uuid, ApiError> {
    let field = || format!("skills[{index}].skill");
    match (held.skill_id, held.skill.as_deref()) {
        (Some(id), None) => Ok(id),
        (None, Some(named)) => match Uuid::parse_str(named) {
            Ok(id) => Ok(id),
            Err(_) => SkillName::parse(named)
                .map(|name| SkillId::for_name(&name).0)
                .map_err(|e| ApiError::validation(field(), e.reason)),
        },
        (Some(_), Some(_)) => Err(ApiError::validation(
            field(),
            "give the skill by `skill_id` or by `skill`, not both",
        )),
        (None, None) => Err(ApiError::validation(
            field(),
            "name the skill by `skill` (its id or name) or `skill_id`",
        )),
    }
}

#[derive(Default)]
pub struct AgentsApi;

#[OpenApi(tag = "ApiTags::Agents")]
impl AgentsApi {
    /// Agents and managers with skills, teams, status, shift, open and critical counts (staff).
    #[oai(path = "/api/agents", method = "get", operation_id = "list_agents")]
    async fn list(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        /// 1-based page number.
        #[oai(
            default = "default_page",
            validator(minimum(value = "1"), maximum(value = "1000000"))
        )]
        page: Query<i64>,
        /// Items per page, at most 100.
        #[oai(
            default = "default_page_size",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        page_size: Query<i64>,
    ) -> Result<Json<Page<AgentDto>>, ApiError> {
        let agents = workforce::agents(&app, &auth.0).await?;
        Ok(Json(Page::of(agents, Paging::new(page.0, page_size.0))))
    }

    /// The agents routing could give a ticket to right now (staff).
    #[oai(
        path = "/api/agents/available",
        method = "get",
        operation_id = "list_available_agents"
    )]
    async fn available(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        /// 1-based page number.
        #[oai(
            default = "default_page",
            validator(minimum(value = "1"), maximum(value = "1000000"))
        )]
        page: Query<i64>,
        /// Items per page, at most 100.
        #[oai(
            default = "default_page_size",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        page_size: Query<i64>,
    ) -> Result<Json<Page<AgentDto>>, ApiError> {
        let agents = workforce::available_agents(&app, &auth.0).await?;
        Ok(Json(Page::of(agents, Paging::new(page.0, page_size.0))))
    }

    /// One agent (staff).
    #[oai(path = "/api/agents/:id", method = "get", operation_id = "get_agent")]
    async fn get(
        &self,
        auth: SignedIn,
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
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
        body: JsonBody<SetSkillsRequest>,
    ) -> Result<Written<AgentDto>, ApiError> {
        let held = body
            .0
            .skills
            .iter()
            .enumerate()
            .map(|(index, held)| Ok((skill_named(held, index)?, held.proficiency)))
            .collect::<Result<_, ApiError>>()?;
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
        auth: SignedIn,
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
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
        body: JsonBody<SetCapacityRequest>,
    ) -> Result<Written<AgentDto>, ApiError> {
        let change = ProfileChange::Capacity(body.0.capacity);
        written(workforce::change_agent(&app, &auth.0, &origin, id.0, change).await)
    }
}
