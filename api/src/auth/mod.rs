//! Authentication (bearer JWTs) and the signed-in caller.

pub mod passwords;
pub mod tokens;

use docket_domain::values::UserId;
use docket_domain::{Actor, Role};
use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;

use crate::accounts;
use crate::error::ApiError;
use crate::state::SharedState;

/// The signed-in caller, as their account is now (not as it was when the token was issued: a
/// role change or deactivation takes effect on the next request through the process that made
/// it, and within `DOCKET_ACCOUNT_FRESHNESS_MS` on every other).
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: UserId,
    pub role: Role,
    pub email: String,
    pub full_name: String,
}

impl AuthUser {
    pub fn actor(&self) -> Actor {
        Actor::new(self.id, self.role)
    }

    pub fn is_customer(&self) -> bool {
        self.role == Role::Customer
    }

    fn require(&self, allowed: bool, what: &str) -> Result<(), ApiError> {
        if allowed {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!("{} may not {what}", self.role)))
        }
    }

    /// Staff: everyone but customers (viewers are read-only staff).
    pub fn require_staff(&self, what: &str) -> Result<(), ApiError> {
        self.require(self.role.is_staff(), what)
    }

    /// Agents, managers and admins.
    pub fn require_ticket_worker(&self, what: &str) -> Result<(), ApiError> {
        self.require(self.role.works_tickets(), what)
    }

    pub fn require_admin(&self, what: &str) -> Result<(), ApiError> {
        self.require(self.role == Role::Admin, what)
    }

    pub fn require_admin_or_manager(&self, what: &str) -> Result<(), ApiError> {
        self.require(matches!(self.role, Role::Admin | Role::Manager), what)
    }
}

/// `Authorization: Bearer <access token>` from `POST /api/auth/login`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "authenticate")]
pub struct BearerAuth(pub AuthUser);

async fn authenticate(req: &Request, bearer: Bearer) -> poem::Result<AuthUser> {
    authenticate_token(req, &bearer.token).await
}

/// Checks an access token against the application state installed on the request.
pub async fn authenticate_token(req: &Request, token: &str) -> poem::Result<AuthUser> {
    let state = req
        .data::<SharedState>()
        .ok_or_else(|| ApiError::internal("application state is not installed"))?;
    Ok(authenticate_with(state, token).await?)
}

/// The account behind an access token, as it is now; deactivated accounts are refused.
pub async fn authenticate_with(state: &SharedState, token: &str) -> Result<AuthUser, ApiError> {
    let claims = state
        .tokens
        .verify_access(token)
        .map_err(|reason| ApiError::Unauthenticated(reason.to_string()))?;
    let user = accounts::recent_user(state, claims.user_id)
        .await?
        .ok_or_else(|| ApiError::Unauthenticated("the account no longer exists".into()))?;
    if !user.active {
        return Err(ApiError::Unauthenticated(
            "the account is deactivated".into(),
        ));
    }
    Ok(AuthUser {
        id: user.id,
        role: user.role,
        email: user.email,
        full_name: user.full_name,
    })
}
