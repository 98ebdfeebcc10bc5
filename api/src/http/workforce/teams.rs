//! `/api/teams`: teams and their members.

use docket_domain::values::TeamName;
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use uuid::Uuid;

use super::{AddMemberRequest, Created, MemberDto, Removed, TeamDto, TeamRequest, Written, note};
use crate::app::{Origin, SharedApp, workforce};
use crate::http::json::JsonBody;
use crate::http::paging::{Page, Paging};
use crate::http::principal::{SignedIn, consistency_token};
use crate::http::problem::ApiError;
use crate::http::wire::TeamRoleDto;
use crate::http::wire::{default_page, default_page_size};
use crate::http::{ApiTags, invalid};

#[derive(Default)]
pub struct TeamsApi;

#[OpenApi(tag = "ApiTags::Agents")]
impl TeamsApi {
    /// Teams with their members (staff).
    #[oai(path = "/api/teams", method = "get", operation_id = "list_teams")]
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
    ) -> Result<Json<Page<TeamDto>>, ApiError> {
        let teams = workforce::teams(&app, &auth.0).await?;
        Ok(Json(Page::of(teams, Paging::new(page.0, page_size.0))))
    }

    /// Create a team (managers, admins).
    #[oai(path = "/api/teams", method = "post", operation_id = "create_team")]
    async fn create(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        body: JsonBody<TeamRequest>,
    ) -> Result<Created<TeamDto>, ApiError> {
        let name = TeamName::parse(&body.0.name).map_err(invalid)?;
        let description = note(body.0.description.as_deref(), "description")?;
        let created = workforce::create_team(&app, &auth.0, &origin, name, description).await?;
        let location = format!("/api/teams/{}", created.value.team.id);
        Ok(Created::of(created, location))
    }

    /// One team with its members (staff).
    #[oai(path = "/api/teams/:id", method = "get", operation_id = "get_team")]
    async fn get(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        id: Path<Uuid>,
    ) -> Result<Json<TeamDto>, ApiError> {
        Ok(Json(workforce::team(&app, &auth.0, id.0).await?.into()))
    }

    /// A team's members, managers and leads first (staff).
    #[oai(
        path = "/api/teams/:id/members",
        method = "get",
        operation_id = "list_team_members"
    )]
    async fn members(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        id: Path<Uuid>,
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
    ) -> Result<Json<Page<MemberDto>>, ApiError> {
        let members = workforce::team_members(&app, &auth.0, id.0).await?;
        Ok(Json(Page::of(members, Paging::new(page.0, page_size.0))))
    }

    /// Add an agent or manager to a team, or change their team role (managers, admins).
    #[oai(
        path = "/api/teams/:id/members",
        method = "post",
        operation_id = "add_team_member"
    )]
    async fn add_member(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
        body: JsonBody<AddMemberRequest>,
    ) -> Result<Written<Vec<MemberDto>>, ApiError> {
        let role = body.0.team_role.unwrap_or(TeamRoleDto::Member).into();
        let changed =
            workforce::add_member(&app, &auth.0, &origin, id.0, body.0.user_id, role).await?;
        Ok(Written::of(changed.map(|members| {
            members.into_iter().map(MemberDto::from).collect::<Vec<_>>()
        })))
    }

    /// Remove a member from a team (managers, admins).
    #[oai(
        path = "/api/teams/:id/members",
        method = "delete",
        operation_id = "remove_team_member"
    )]
    async fn remove_member(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
        user_id: Query<Uuid>,
    ) -> Result<Removed, ApiError> {
        let position = workforce::remove_member(&app, &auth.0, &origin, id.0, user_id.0).await?;
        Ok(Removed::NoContent(consistency_token(position)))
    }
}
