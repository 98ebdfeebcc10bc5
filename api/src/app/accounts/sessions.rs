//! Sessions of the web app. The browser keeps a random token (in an HttpOnly cookie); the server
//! keeps its SHA-256 in `web_sessions`, with the CSRF token every form of the session carries.
//! Each request resolves the session to the account as it stands now, so a deactivated account
//! stops working within the account-freshness window, on every process.

use chrono::Duration;

use super::tokens::{new_refresh_token, refresh_token_hash};
use super::{UserView, check_credentials, recent_user};
use crate::app::{App, AppError, Caller};

/// How long a session lasts without signing in again.
pub const SESSION_LIFETIME: Duration = Duration::hours(12);

/// A session just opened: the cookie's token, and who it is for.
pub struct Opened {
    pub token: String,
    pub user: UserView,
}

/// A session found for a request.
pub struct Session {
    pub caller: Caller,
    /// What every form of the session must carry.
    pub csrf_token: String,
}

/// Signs in with e-mail and password and opens a session.
pub async fn sign_in(app: &App, email: &str, password: String) -> Result<Opened, AppError> {
    let user = check_credentials(app, email, password).await?;
    let token = new_refresh_token();
    let now = app.time.now();
    sqlx::query(
        "INSERT INTO web_sessions (token_hash, user_id, csrf_token, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(refresh_token_hash(&token))
    .bind(user.id.0)
    .bind(new_refresh_token())
    .bind(now)
    .bind(now + SESSION_LIFETIME)
    .execute(&app.pool)
    .await
    .map_err(AppError::database)?;
    Ok(Opened { token, user })
}

/// The session a cookie's token names, if it is open and its account active.
pub async fn find(app: &App, token: &str) -> Result<Option<Session>, AppError> {
    let row: Option<(uuid::Uuid, String)> = sqlx::query_as(
        "SELECT user_id, csrf_token FROM web_sessions
          WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2",
    )
    .bind(refresh_token_hash(token))
    .bind(app.time.now())
    .fetch_optional(&app.pool)
    .await
    .map_err(AppError::database)?;
    let Some((user_id, csrf_token)) = row else {
        return Ok(None);
    };
    let Some(user) = recent_user(app, docket_domain::UserId(user_id)).await? else {
        return Ok(None);
    };
    if !user.active {
        return Ok(None);
    }
    Ok(Some(Session {
        caller: Caller::from(user),
        csrf_token,
    }))
}

/// Ends the session (signing out).
pub async fn sign_out(app: &App, token: &str) -> Result<(), AppError> {
    sqlx::query(
        "UPDATE web_sessions SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL",
    )
    .bind(refresh_token_hash(token))
    .bind(app.time.now())
    .execute(&app.pool)
    .await
    .map_err(AppError::database)?;
    Ok(())
}

/// A short-lived access token for the session's live stream (`EventSource` cannot send a
/// cookie-less `Authorization` header, and the stream authenticates like the API).
pub fn stream_token(app: &App, caller: &Caller) -> Result<String, AppError> {
    app.tokens
        .issue_access(caller.id, caller.role.as_str(), app.time.now())
        .map_err(AppError::internal)
}
