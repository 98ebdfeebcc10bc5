//! `/api/users`: accounts and roles, for administrators (managers may look).

use chrono::{DateTime, Utc};
use docket_domain::user::Registration;
use docket_domain::values::{Email, FullName, UserId};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;
use uuid::Uuid;

use super::types::RoleDto;
use super::{ApiTags, etag};
use crate::accounts::{self, AccountChange, NewAccount, UserView};
use crate::auth::BearerAuth;
use crate::auth::passwords::Password;
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::json::JsonBody;
use crate::state::SharedState;

/// An account.
#[derive(Debug, Clone, Object)]
pub struct UserDto {
    pub id: Uuid,
    pub email: String,
    pub full_name: String,
    pub role: RoleDto,
    /// Deactivated accounts cannot sign in.
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The account's version, for `If-Match`.
    pub version: i64,
}

impl From<UserView> for UserDto {
    fn from(user: UserView) -> Self {
        Self {
            id: user.id.0,
            email: user.email,
            full_name: user.full_name,
            role: user.role.into(),
            active: user.active,
            created_at: user.created_at,
            updated_at: user.updated_at,
            version: user.version,
        }
    }
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    #[oai(validator(max_length = 254))]
    pub email: String,
    /// 8 to 128 characters.
    #[oai(validator(min_length = 8, max_length = 128))]
    pub password: String,
    #[oai(validator(min_length = 1, max_length = 200))]
    pub full_name: String,
    pub role: RoleDto,
}

/// Only the fields present change.
#[derive(Debug, Clone, Default, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    #[oai(validator(min_length = 1, max_length = 200))]
    pub full_name: Option<String>,
    #[oai(validator(max_length = 254))]
    pub email: Option<String>,
    pub role: Option<RoleDto>,
    /// `false` deactivates the account (and ends its sessions); `true` reactivates it.
    pub active: Option<bool>,
    /// Sets a new password (and ends the account's sessions).
    #[oai(validator(min_length = 8, max_length = 128))]
    pub password: Option<String>,
}

#[derive(Debug, Clone, Object)]
pub struct UserPage {
    pub items: Vec<UserDto>,
    pub total: i64,
    pub page: i64,
    pub page_size: i64,
}

#[derive(ApiResponse)]
pub enum UserCreated {
    /// The account was created.
    #[oai(status = 201)]
    Created(
        Json<UserDto>,
        #[oai(header = "Location")] String,
        #[oai(header = "ETag")] String,
    ),
}

#[derive(ApiResponse)]
pub enum UserFound {
    #[oai(status = 200)]
    Ok(Json<UserDto>, #[oai(header = "ETag")] String),
}

pub fn email(raw: &str) -> Result<Email, ApiError> {
    Email::parse(raw).map_err(|e| ApiError::validation(e.field, e.reason))
}

pub fn full_name(raw: &str) -> Result<FullName, ApiError> {
    FullName::parse(raw).map_err(|e| ApiError::validation(e.field, e.reason))
}

pub fn user_found(user: UserView) -> UserFound {
    let tag = etag(user.version);
    UserFound::Ok(Json(user.into()), tag)
}

#[derive(Default)]
pub struct UsersApi;

#[OpenApi(tag = "ApiTags::Users")]
impl UsersApi {
    /// Create an account with any role (administrators).
    #[oai(path = "/api/users", method = "post", operation_id = "create_user")]
    async fn create(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        context: Data<&RequestContext>,
        body: JsonBody<CreateUserRequest>,
    ) -> Result<UserCreated, ApiError> {
        let me = auth.0;
        me.require_admin("create accounts")?;
        let request = body.0;
        let account = NewAccount {
            email: email(&request.email)?,
            password: Password::parse("password", &request.password)?,
            full_name: full_name(&request.full_name)?,
            role: request.role.into(),
            registration: Registration::ByAdmin(me.actor()),
        };
        let user = accounts::register(&state, account, context.metadata(Some(me.actor()))).await?;
        let location = format!("/api/users/{}", user.id);
        let tag = etag(user.version);
        Ok(UserCreated::Created(Json(user.into()), location, tag))
    }

    /// List accounts (administrators and managers).
    #[oai(path = "/api/users", method = "get", operation_id = "list_users")]
    async fn list(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        /// Only accounts with this role.
        role: Query<Option<RoleDto>>,
        /// Only active (`true`) or deactivated (`false`) accounts.
        active: Query<Option<bool>>,
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
    ) -> Result<Json<UserPage>, ApiError> {
        auth.0.require_admin_or_manager("list accounts")?;
        let filter = docket_projections::users::UserFilter {
            role: role
                .0
                .map(|r| docket_domain::Role::from(r).as_str().to_string()),
            active: active.0,
            page: page.0,
            page_size: page_size.0,
        };
        let (rows, total) = docket_projections::users::list(&state.pool, &filter)
            .await
            .map_err(ApiError::database)?;
        let items = rows
            .into_iter()
            .map(|row| UserView::from_row(row).map(UserDto::from))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Json(UserPage {
            items,
            total,
            page: page.0,
            page_size: page_size.0,
        }))
    }

    /// One account (administrators and managers).
    #[oai(path = "/api/users/:id", method = "get", operation_id = "get_user")]
    async fn get(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        id: Path<Uuid>,
    ) -> Result<UserFound, ApiError> {
        auth.0.require_admin_or_manager("look up accounts")?;
        let user = accounts::find_user(&state, UserId(id.0))
            .await?
            .ok_or_else(|| ApiError::not_found("user"))?;
        Ok(user_found(user))
    }

    /// Change an account's name, e-mail, role, password, or deactivate it (administrators).
    #[oai(
        path = "/api/users/:id",
        method = "patch",
        operation_id = "update_user"
    )]
    async fn update(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        context: Data<&RequestContext>,
        id: Path<Uuid>,
        body: JsonBody<UpdateUserRequest>,
    ) -> Result<UserFound, ApiError> {
        let me = auth.0;
        me.require_admin("edit accounts")?;
        let request = body.0;
        let change = AccountChange {
            full_name: request.full_name.as_deref().map(full_name).transpose()?,
            email: request.email.as_deref().map(email).transpose()?,
            role: request.role.map(Into::into),
            active: request.active,
            password: request
                .password
                .as_deref()
                .map(|p| Password::parse("password", p))
                .transpose()?,
        };
        let user = accounts::update_account(
            &state,
            me.actor(),
            UserId(id.0),
            change,
            context.metadata(Some(me.actor())),
        )
        .await?;
        Ok(user_found(user))
    }
}

pub fn default_page() -> i64 {
    1
}

pub fn default_page_size() -> i64 {
    20
}
