//! `/api/skills`: the skill catalogue.

use docket_domain::values::SkillName;
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::payload::Json;

use super::{Created, SkillDto, SkillRequest, note};
use crate::app::{Origin, SharedApp, workforce};
use crate::http::json::JsonBody;
use crate::http::principal::{BearerAuth, consistency_token};
use crate::http::problem::ApiError;
use crate::http::{ApiTags, invalid};

#[derive(Default)]
pub struct SkillsApi;

#[OpenApi(tag = "ApiTags::Agents")]
impl SkillsApi {
    /// The skill catalogue (staff).
    #[oai(path = "/api/skills", method = "get", operation_id = "list_skills")]
    async fn list(
        &self,
        auth: BearerAuth,
        app: Data<&SharedApp>,
    ) -> Result<Json<Vec<SkillDto>>, ApiError> {
        let skills = workforce::skills(&app, &auth.0).await?;
        Ok(Json(skills.into_iter().map(SkillDto::from).collect()))
    }

    /// Add a skill to the catalogue (managers, admins). Names are unique, ignoring case.
    #[oai(path = "/api/skills", method = "post", operation_id = "create_skill")]
    async fn create(
        &self,
        auth: BearerAuth,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        body: JsonBody<SkillRequest>,
    ) -> Result<Created<SkillDto>, ApiError> {
        let name = SkillName::parse(&body.0.name).map_err(invalid)?;
        let description = note(body.0.description.as_deref(), "description")?;
        let created = workforce::create_skill(&app, &auth.0, &origin, name, description).await?;
        Ok(Created::Created(
            Json(created.value.into()),
            consistency_token(created.position),
        ))
    }
}
