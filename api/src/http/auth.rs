//! `/api/auth`: sign-up, sign-in, tokens and passwords.

use docket_domain::Role;
use docket_domain::user::Registration;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;
use uuid::Uuid;

use crate::app::accounts::{self, NewAccount, TokenPair, UserView};
use crate::app::{Origin, SharedApp};
use crate::http::json::JsonBody;
use crate::http::principal::SignedIn;
use crate::http::problem::ApiError;
use crate::http::users::{UserDto, UserFound, email, full_name, password, user_found};
use crate::http::wire::RoleDto;
use crate::http::{ApiTags, etag};

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[oai(validator(max_length = 254))]
    pub email: String,
    /// 8 to 128 characters.
    #[oai(validator(min_length = 8, max_length = 128))]
    pub password: String,
    #[oai(validator(min_length = 1, max_length = 200))]
    pub full_name: String,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[oai(validator(max_length = 254))]
    pub email: String,
    #[oai(validator(max_length = 1024))]
    pub password: String,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    #[oai(validator(max_length = 1024))]
    pub refresh_token: String,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[oai(validator(max_length = 1024))]
    pub current_password: String,
    /// 8 to 128 characters.
    #[oai(validator(min_length = 8, max_length = 128))]
    pub new_password: String,
}

/// Who signed in.
#[derive(Debug, Clone, Object)]
pub struct SignedInUser {
    pub id: Uuid,
    pub email: String,
    pub full_name: String,
    pub role: RoleDto,
}

#[derive(Debug, Clone, Object)]
pub struct TokenResponse {
    /// Send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Exchange at `POST /api/auth/refresh` for a new pair; each works once.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub user: SignedInUser,
}

fn token_response(tokens: TokenPair, user: UserView) -> TokenResponse {
    TokenResponse {
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        token_type: "Bearer".to_string(),
        expires_in: tokens.expires_in,
        user: SignedInUser {
            id: user.id.0,
            email: user.email,
            full_name: user.full_name,
            role: user.role.into(),
        },
    }
}

#[derive(ApiResponse)]
pub enum Registered {
    /// The customer account was created; sign in with `POST /api/auth/login`.
    #[oai(status = 201)]
    Created(
        Json<UserDto>,
        #[oai(header = "Location")] String,
        #[oai(header = "ETag")] String,
    ),
}

#[derive(ApiResponse)]
pub enum Done {
    /// Done.
    #[oai(status = 204)]
    NoContent,
}

#[derive(Default)]
pub struct AuthApi;

#[OpenApi(tag = "ApiTags::Auth")]
impl AuthApi {
    /// Sign up as a customer. Staff accounts are created by administrators.
    #[oai(
        path = "/api/auth/register",
        method = "post",
        operation_id = "register"
    )]
    async fn register(
        &self,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        body: JsonBody<RegisterRequest>,
    ) -> Result<Registered, ApiError> {
        let request = body.0;
        let account = NewAccount {
            email: email(&request.email)?,
            password: Some(password("password", &request.password)?),
            full_name: full_name(&request.full_name)?,
            role: Role::Customer,
            registration: Registration::SelfService,
            service: false,
        };
        let user = accounts::register(&app, account, origin.metadata(None)).await?;
        let location = format!("/api/users/{}", user.id);
        let tag = etag(user.version);
        Ok(Registered::Created(Json(user.into()), location, tag))
    }

    /// Sign in with e-mail and password.
    #[oai(path = "/api/auth/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        app: Data<&SharedApp>,
        body: JsonBody<LoginRequest>,
    ) -> Result<Json<TokenResponse>, ApiError> {
        let request = body.0;
        let (tokens, user) = accounts::login(&app, &request.email, request.password).await?;
        Ok(Json(token_response(tokens, user)))
    }

    /// Exchange a refresh token for a new access token and refresh token.
    #[oai(
        path = "/api/auth/refresh",
        method = "post",
        operation_id = "refresh_token"
    )]
    async fn refresh(
        &self,
        app: Data<&SharedApp>,
        body: JsonBody<RefreshRequest>,
    ) -> Result<Json<TokenResponse>, ApiError> {
        let (tokens, user) = accounts::refresh(&app, &body.0.refresh_token).await?;
        Ok(Json(token_response(tokens, user)))
    }

    /// Sign out: the refresh token (and every token rotated from it) stops working.
    #[oai(path = "/api/auth/logout", method = "post", operation_id = "logout")]
    async fn logout(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        body: JsonBody<RefreshRequest>,
    ) -> Result<Done, ApiError> {
        accounts::logout(&app, auth.0.id, &body.0.refresh_token).await?;
        Ok(Done::NoContent)
    }

    /// The signed-in account.
    #[oai(path = "/api/auth/me", method = "get", operation_id = "me")]
    async fn me(&self, auth: SignedIn, app: Data<&SharedApp>) -> Result<UserFound, ApiError> {
        let user = accounts::find_user(&app, auth.0.id)
            .await?
            .ok_or_else(|| ApiError::not_found("user"))?;
        Ok(user_found(user))
    }

    /// Change your own password. Every session of the account ends; sign in again.
    #[oai(
        path = "/api/auth/change-password",
        method = "put",
        operation_id = "change_password"
    )]
    async fn change_password(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        body: JsonBody<ChangePasswordRequest>,
    ) -> Result<Done, ApiError> {
        let me = auth.0;
        let request = body.0;
        let new = password("new_password", &request.new_password)?;
        accounts::change_password(
            &app,
            me.actor(),
            request.current_password,
            new,
            origin.metadata(Some(me.actor())),
        )
        .await?;
        Ok(Done::NoContent)
    }
}
