//! `/api/skills`: the skill catalogue.

use docket_domain::values::SkillName;
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;

use super::{Created, SkillDto, SkillRequest, note};
use crate::app::{Origin, SharedApp, workforce};
use crate::http::json::JsonBody;
use crate::http::paging::{Page, Paging};
use crate::http::principal::SignedIn;
use crate::http::problem::ApiError;
use crate::http::wire::{default_page, default_page_size};
use crate::http::{ApiTags, invalid};

#[derive(Default)]
pub struct SkillsApi;

#[OpenApi(tag = "ApiTags::Agents")]
impl SkillsApi {
    /// The skill catalogue (staff).
    #[oai(path = "/api/skills", method = "get", operation_id = "list_skills")]
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
    ) -> Result<Json<Page<SkillDto>>, ApiError> {
        let skills = workforce::skills(&app, &auth.0).await?;
        Ok(Json(Page::of(skills, Paging::new(page.0, page_size.0))))
    }

    /// Add a skill to the catalogue (managers, admins). Names are unique, ignoring case.
    #[oai(path = "/api/skills", method = "post", operation_id = "create_skill")]
    async fn create(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        body: JsonBody<SkillRequest>,
    ) -> Result<Created<SkillDto>, ApiError> {
        let name = SkillName::parse(&body.0.name).map_err(invalid)?;
        let description = note(body.0.description.as_deref(), "description")?;
        let created = workforce::create_skill(&app, &auth.0, &origin, name, description).await?;
        let location = format!("/api/skills/{}", created.value.id);
        Ok(Created::of(created, location))
    }

    /// One skill, by its id or its name (staff).
    #[oai(
        path = "/api/skills/:skill",
        method = "get",
        operation_id = "get_skill"
    )]
    async fn get(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        /// The skill's id or its name.
        skill: Path<String>,
    ) -> Result<Json<SkillDto>, ApiError> {
        Ok(Json(
            workforce::skill(&app, &auth.0, &skill.0).await?.into(),
        ))
    }
}
