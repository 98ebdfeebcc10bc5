//! `/api/users`: accounts and roles, for administrators (managers may look).

use docket_domain::user::Registration;
use docket_domain::values::{Email, FullName, UserId};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;
use uuid::Uuid;

use crate::app::accounts::passwords::Password;
use crate::app::accounts::{self, AccountChange, NewAccount, UserView};
use crate::app::{Origin, SharedApp};
use crate::http::json::JsonBody;
use crate::http::principal::SignedIn;
use crate::http::problem::ApiError;
use crate::http::wire::Timestamp;
use crate::http::wire::{RoleDto, default_page, default_page_size};
use crate::http::{ApiTags, etag, invalid};

/// An account.
#[derive(Debug, Clone, Object)]
pub struct UserDto {
    pub id: Uuid,
    pub email: String,
    pub full_name: String,
    pub role: RoleDto,
    /// Deactivated accounts cannot sign in.
    pub active: bool,
    /// A service account: no password, acts only through API keys.
    pub service: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
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
            service: user.service,
            created_at: user.created_at.into(),
            updated_at: user.updated_at.into(),
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
    /// 8 to 128 characters. Required for people; a service account has none.
    #[oai(validator(min_length = 8, max_length = 128))]
    pub password: Option<String>,
    #[oai(validator(min_length = 1, max_length = 200))]
    pub full_name: String,
    pub role: RoleDto,
    /// A service account for an integration: it cannot sign in with a password and acts only
    /// through API keys an administrator makes for it (`POST /api/api-keys` with `user_id`).
    #[oai(default)]
    #[serde(default)]
    pub service: bool,
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
    Email::parse(raw).map_err(invalid)
}

pub fn full_name(raw: &str) -> Result<FullName, ApiError> {
    FullName::parse(raw).map_err(invalid)
}

pub fn password(field: &str, raw: &str) -> Result<Password, ApiError> {
    Ok(Password::parse(field, raw)?)
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
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        body: JsonBody<CreateUserRequest>,
    ) -> Result<UserCreated, ApiError> {
        let me = auth.0;
        let request = body.0;
        let account = NewAccount {
            email: email(&request.email)?,
            password: request
                .password
                .as_deref()
                .map(|raw| password("password", raw))
                .transpose()?,
            full_name: full_name(&request.full_name)?,
            role: request.role.into(),
            registration: Registration::ByAdmin(me.actor()),
            service: request.service,
        };
        let user = accounts::register(&app, account, origin.metadata(Some(me.actor()))).await?;
        let location = format!("/api/users/{}", user.id);
        let tag = etag(user.version);
        Ok(UserCreated::Created(Json(user.into()), location, tag))
    }

    /// List accounts (administrators and managers).
    #[oai(path = "/api/users", method = "get", operation_id = "list_users")]
    #[allow(clippy::too_many_arguments)] // one per documented query parameter
    async fn list(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        /// Only accounts with this role.
        role: Query<Option<RoleDto>>,
        /// Only active (`true`) or deactivated (`false`) accounts.
        active: Query<Option<bool>>,
        /// Only service accounts (`true`) or only people (`false`).
        service: Query<Option<bool>>,
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
        let filter = docket_projections::users::UserFilter {
            role: role.0.map(Into::into),
            active: active.0,
            service: service.0,
            page: page.0,
            page_size: page_size.0,
        };
        let (users, total) = accounts::list(&app, &auth.0, &filter).await?;
        Ok(Json(UserPage {
            items: users.into_iter().map(UserDto::from).collect(),
            total,
            page: page.0,
            page_size: page_size.0,
        }))
    }

    /// One account (administrators and managers).
    #[oai(path = "/api/users/:id", method = "get", operation_id = "get_user")]
    async fn get(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        id: Path<Uuid>,
    ) -> Result<UserFound, ApiError> {
        Ok(user_found(
            accounts::get(&app, &auth.0, UserId(id.0)).await?,
        ))
    }

    /// Change an account's name, e-mail, role, password, or deactivate it (administrators).
    #[oai(
        path = "/api/users/:id",
        method = "patch",
        operation_id = "update_user"
    )]
    async fn update(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
        body: JsonBody<UpdateUserRequest>,
    ) -> Result<UserFound, ApiError> {
        let me = auth.0;
        let request = body.0;
        let change = AccountChange {
            full_name: request.full_name.as_deref().map(full_name).transpose()?,
            email: request.email.as_deref().map(email).transpose()?,
            role: request.role.map(Into::into),
            active: request.active,
            password: request
                .password
                .as_deref()
                .map(|p| password("password", p))
                .transpose()?,
        };
        let user = accounts::update_account(
            &app,
            me.actor(),
            UserId(id.0),
            change,
            origin.metadata(Some(me.actor())),
        )
        .await?;
        Ok(user_found(user))
    }
}
