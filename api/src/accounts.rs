//! Accounts: registration, sign-in, tokens and passwords.
//!
//! The User aggregate's events hold who someone is; the `credentials` and `refresh_tokens`
//! tables hold their secrets (DESIGN.md decision 10). Registration reserves the e-mail in
//! `credentials` first and appends `UserRegistered` second; if the append fails the reservation
//! is released, and a reservation left behind by a crash in between is reclaimed by the next
//! registration of that e-mail.

use chrono::{DateTime, Utc};
use docket_domain::ticket::UserStanding;
use docket_domain::user::{
    ChangeUserRole, RegisterUser, Registration, SetUserActive, UpdateUserProfile, User,
    UserCommand, UserError, UserState,
};
use docket_domain::values::{Email, FullName, UserId};
use docket_domain::{Actor, Role};
use docket_projections::{EventMetadata, users};
use uuid::Uuid;

use crate::auth::passwords::{self, Password};
use crate::auth::tokens::{new_refresh_token, refresh_token_hash};
use crate::commands::{CommandError, Committed};
use crate::error::ApiError;
use crate::state::AppState;

/// An account as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct UserView {
    pub id: UserId,
    pub email: String,
    pub full_name: String,
    pub role: Role,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl UserView {
    fn from_state(state: &UserState, version: i64) -> Self {
        Self {
            id: state.id,
            email: state.email.as_str().to_string(),
            full_name: state.full_name.as_str().to_string(),
            role: state.role,
            active: state.active,
            created_at: state.created_at,
            updated_at: state.updated_at,
            version,
        }
    }

    pub fn from_row(row: users::UserRow) -> Result<Self, ApiError> {
        Ok(Self {
            id: UserId(row.id),
            role: row.role.parse().map_err(ApiError::internal)?,
            email: row.email,
            full_name: row.full_name,
            active: row.active,
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
        })
    }

    pub fn standing(&self) -> UserStanding {
        UserStanding {
            user_id: self.id,
            role: self.role,
            active: self.active,
        }
    }
}

/// Tokens handed out at sign-in and refresh.
#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
}

pub fn user_error(error: UserError) -> ApiError {
    match error {
        UserError::NotFound => ApiError::not_found("user"),
        UserError::AlreadyExists => ApiError::Conflict {
            kind: "user-exists",
            title: "The user already exists",
            detail: error.to_string(),
        },
        UserError::NotPermitted { .. } => ApiError::Forbidden(error.to_string()),
        UserError::SelfRegistrationIsForCustomers => {
            ApiError::validation("role", error.to_string())
        }
        UserError::OwnAccount { .. } => ApiError::Conflict {
            kind: "own-account",
            title: "Administrators cannot do this to their own account",
            detail: error.to_string(),
        },
        UserError::ReservedRole { .. } => ApiError::validation("role", error.to_string()),
        UserError::AlreadyInState { .. } => ApiError::Conflict {
            kind: "already-in-state",
            title: "The account is already in that state",
            detail: error.to_string(),
        },
    }
}

pub fn command_error(error: CommandError<UserError>) -> ApiError {
    match error {
        CommandError::Rejected(e) => user_error(e),
        CommandError::VersionMismatch { current } => ApiError::PreconditionFailed {
            current_version: current,
        },
        CommandError::Conflict => ApiError::ConcurrentModification,
        CommandError::Store(e) => e,
    }
}

fn committed_view(committed: &Committed<User>) -> Result<UserView, ApiError> {
    committed
        .aggregate
        .state()
        .map(|state| UserView::from_state(state, committed.version))
        .ok_or_else(|| ApiError::internal("user command left no user"))
}

/// The account as it is now, from the log itself rather than the read model: sign-in, account
/// changes and reads of one account see a deactivation or a role change the moment it is
/// committed. A user has a handful of events, so this is one indexed read.
pub async fn find_user(state: &AppState, id: UserId) -> Result<Option<UserView>, ApiError> {
    let (user, version) = state.users.load(&id.to_string()).await?;
    Ok(user.state().map(|s| UserView::from_state(s, version)))
}

/// The account as this process last read it from the log, if that was less than
/// `account_freshness` ago (changes made through this process are seen at once); otherwise as
/// [`find_user`]. What every request's token check and the people commands name use: read
/// afresh each time, the account was a read of the log on every request.
pub async fn recent_user(state: &AppState, id: UserId) -> Result<Option<UserView>, ApiError> {
    let (user, version) = state
        .users
        .load_recent(&id.to_string(), state.account_freshness)
        .await?;
    Ok(user.state().map(|s| UserView::from_state(s, version)))
}

/// A person referenced by a request (a customer, an assignee), for the domain to judge.
pub async fn standing(state: &AppState, id: UserId) -> Result<Option<UserStanding>, ApiError> {
    Ok(recent_user(state, id).await?.map(|u| u.standing()))
}

pub struct NewAccount {
    pub email: Email,
    pub password: Password,
    pub full_name: FullName,
    pub role: Role,
    pub registration: Registration,
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
}

async fn user_has_events(state: &AppState, user_id: Uuid) -> Result<bool, ApiError> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM events WHERE aggregate_type = 'user' AND aggregate_id = $1)",
    )
    .bind(user_id.to_string())
    .fetch_one(&state.pool)
    .await
    .map_err(ApiError::database)
}

/// Reserves `email` for `user_id`, reclaiming a reservation orphaned by a crash.
async fn reserve_email(
    state: &AppState,
    user_id: UserId,
    email: &Email,
    password_hash: &str,
) -> Result<(), ApiError> {
    for _ in 0..2 {
        let inserted = sqlx::query(
            "INSERT INTO credentials (user_id, email, password_hash) VALUES ($1, $2, $3)",
        )
        .bind(user_id.0)
        .bind(email.as_str())
        .bind(password_hash)
        .execute(&state.pool)
        .await;
        match inserted {
            Ok(_) => return Ok(()),
            Err(e) if is_unique_violation(&e) => {
                let holder: Option<Uuid> =
                    sqlx::query_scalar("SELECT user_id FROM credentials WHERE email = $1")
                        .bind(email.as_str())
                        .fetch_optional(&state.pool)
                        .await
                        .map_err(ApiError::database)?;
                match holder {
                    Some(holder) if !user_has_events(state, holder).await? => {
                        sqlx::query("DELETE FROM credentials WHERE user_id = $1")
                            .bind(holder)
                            .execute(&state.pool)
                            .await
                            .map_err(ApiError::database)?;
                    }
                    Some(_) => return Err(email_taken()),
                    None => {} // released meanwhile; try again
                }
            }
            Err(e) => return Err(ApiError::database(e)),
        }
    }
    Err(email_taken())
}

fn email_taken() -> ApiError {
    ApiError::Conflict {
        kind: "email-taken",
        title: "An account with this e-mail already exists",
        detail: "an account with this e-mail already exists".into(),
    }
}

pub async fn register(
    state: &AppState,
    account: NewAccount,
    metadata: EventMetadata,
) -> Result<UserView, ApiError> {
    let user_id = UserId(Uuid::now_v7());
    let password_hash = passwords::hash(account.password).await?;
    reserve_email(state, user_id, &account.email, &password_hash).await?;
    let command = UserCommand::Register(RegisterUser {
        user_id,
        email: account.email,
        full_name: account.full_name,
        role: account.role,
        registration: account.registration,
        at: state.clock.now(),
    });
    match state
        .users
        .execute(&user_id.to_string(), Some(0), command, metadata)
        .await
    {
        Ok(committed) => committed_view(&committed),
        Err(error) => {
            let _ = sqlx::query("DELETE FROM credentials WHERE user_id = $1")
                .bind(user_id.0)
                .execute(&state.pool)
                .await;
            Err(command_error(error))
        }
    }
}

fn bad_credentials() -> ApiError {
    ApiError::Unauthenticated("e-mail or password is wrong".into())
}

async fn issue_tokens(
    state: &AppState,
    user: &UserView,
    family: Uuid,
) -> Result<TokenPair, ApiError> {
    let now = state.clock.now();
    let access_token = state
        .tokens
        .issue_access(user.id, user.role.as_str(), now)
        .map_err(ApiError::internal)?;
    let refresh_token = new_refresh_token();
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, user_id, family_id, issued_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(refresh_token_hash(&refresh_token))
    .bind(user.id.0)
    .bind(family)
    .bind(now)
    .bind(now + state.tokens.refresh_ttl)
    .execute(&state.pool)
    .await
    .map_err(ApiError::database)?;
    Ok(TokenPair {
        access_token,
        refresh_token,
        expires_in: state.tokens.access_ttl.num_seconds(),
    })
}

pub async fn login(
    state: &AppState,
    email: &str,
    password: String,
) -> Result<(TokenPair, UserView), ApiError> {
    let email = email.trim().to_lowercase();
    let stored: Option<(Uuid, String)> =
        sqlx::query_as("SELECT user_id, password_hash FROM credentials WHERE email = $1")
            .bind(&email)
            .fetch_optional(&state.pool)
            .await
            .map_err(ApiError::database)?;
    let (user_id, hash) = match stored {
        Some((id, hash)) => (Some(id), Some(hash)),
        None => (None, None),
    };
    if !passwords::verify(password, hash).await? {
        return Err(bad_credentials());
    }
    let user = match user_id {
        Some(id) => find_user(state, UserId(id)).await?,
        None => None,
    }
    .ok_or_else(bad_credentials)?;
    if !user.active {
        return Err(ApiError::Unauthenticated(
            "the account is deactivated".into(),
        ));
    }
    let tokens = issue_tokens(state, &user, Uuid::now_v7()).await?;
    Ok((tokens, user))
}

#[derive(sqlx::FromRow)]
struct RefreshRow {
    user_id: Uuid,
    family_id: Uuid,
    expires_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

/// Exchanges a refresh token for a new pair. Each refresh token works once; presenting one
/// that was already used revokes its whole family, since someone else may hold a copy.
pub async fn refresh(state: &AppState, token: &str) -> Result<(TokenPair, UserView), ApiError> {
    let hash = refresh_token_hash(token);
    let mut tx = state.pool.begin().await.map_err(ApiError::database)?;
    let row: Option<RefreshRow> = sqlx::query_as(
        "SELECT user_id, family_id, expires_at, revoked_at FROM refresh_tokens
          WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(&hash)
    .fetch_optional(&mut *tx)
    .await
    .map_err(ApiError::database)?;
    let invalid = || ApiError::Unauthenticated("the refresh token is invalid or expired".into());
    let Some(RefreshRow {
        user_id,
        family_id: family,
        expires_at,
        revoked_at,
    }) = row
    else {
        return Err(invalid());
    };
    let now = state.clock.now();
    if revoked_at.is_some() {
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
        )
        .bind(family)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(ApiError::database)?;
        tx.commit().await.map_err(ApiError::database)?;
        tracing::warn!(%user_id, "refresh token reused; its family is revoked");
        return Err(invalid());
    }
    if expires_at <= now {
        return Err(invalid());
    }
    sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE token_hash = $1")
        .bind(&hash)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(ApiError::database)?;
    tx.commit().await.map_err(ApiError::database)?;
    let user = find_user(state, UserId(user_id))
        .await?
        .filter(|u| u.active)
        .ok_or_else(invalid)?;
    let tokens = issue_tokens(state, &user, family).await?;
    Ok((tokens, user))
}

/// Revokes the refresh token's family (sign out on that device).
pub async fn logout(state: &AppState, user: UserId, token: &str) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $3
          WHERE family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1 AND user_id = $2)
            AND revoked_at IS NULL",
    )
    .bind(refresh_token_hash(token))
    .bind(user.0)
    .bind(state.clock.now())
    .execute(&state.pool)
    .await
    .map_err(ApiError::database)?;
    Ok(())
}

async fn set_password(
    state: &AppState,
    target: UserId,
    actor: Actor,
    password: Password,
    metadata: EventMetadata,
) -> Result<(), ApiError> {
    let hash = passwords::hash(password).await?;
    // Record first: if the domain refuses, the hash must not change.
    let command = UserCommand::RecordPasswordChange {
        actor,
        at: state.clock.now(),
    };
    state
        .users
        .execute(&target.to_string(), None, command, metadata)
        .await
        .map_err(command_error)?;
    sqlx::query("UPDATE credentials SET password_hash = $2, updated_at = now() WHERE user_id = $1")
        .bind(target.0)
        .bind(hash)
        .execute(&state.pool)
        .await
        .map_err(ApiError::database)?;
    // Every session of the account ends with the old password.
    end_sessions(state, target).await
}

/// Revokes every refresh token of the account.
async fn end_sessions(state: &AppState, user: UserId) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user.0)
    .execute(&state.pool)
    .await
    .map_err(ApiError::database)?;
    Ok(())
}

pub async fn change_password(
    state: &AppState,
    actor: Actor,
    current: String,
    new: Password,
    metadata: EventMetadata,
) -> Result<(), ApiError> {
    let stored: Option<String> =
        sqlx::query_scalar("SELECT password_hash FROM credentials WHERE user_id = $1")
            .bind(actor.user_id.0)
            .fetch_optional(&state.pool)
            .await
            .map_err(ApiError::database)?;
    if !passwords::verify(current, stored).await? {
        return Err(ApiError::validation("current_password", "is wrong"));
    }
    set_password(state, actor.user_id, actor, new, metadata).await
}

/// An administrator's edit of an account; `None` leaves a field alone.
#[derive(Default)]
pub struct AccountChange {
    pub full_name: Option<FullName>,
    pub email: Option<Email>,
    pub role: Option<Role>,
    pub active: Option<bool>,
    pub password: Option<Password>,
}

pub async fn update_account(
    state: &AppState,
    actor: Actor,
    target: UserId,
    change: AccountChange,
    metadata: EventMetadata,
) -> Result<UserView, ApiError> {
    let id = target.to_string();
    let current = find_user(state, target)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let now = state.clock.now();
    let new_email = change.email.filter(|e| e.as_str() != current.email);
    if let Some(email) = &new_email {
        let moved =
            sqlx::query("UPDATE credentials SET email = $2, updated_at = now() WHERE user_id = $1")
                .bind(target.0)
                .bind(email.as_str())
                .execute(&state.pool)
                .await;
        match moved {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Err(email_taken()),
            Err(e) => return Err(ApiError::database(e)),
        }
    }
    if change.full_name.is_some() || new_email.is_some() {
        let command = UserCommand::UpdateProfile(UpdateUserProfile {
            full_name: change.full_name,
            email: new_email.clone(),
            actor,
            at: now,
        });
        if let Err(error) = state
            .users
            .execute(&id, None, command, metadata.clone())
            .await
        {
            if new_email.is_some() {
                let _ = sqlx::query("UPDATE credentials SET email = $2 WHERE user_id = $1")
                    .bind(target.0)
                    .bind(&current.email)
                    .execute(&state.pool)
                    .await;
            }
            return Err(command_error(error));
        }
    }
    if let Some(role) = change.role {
        let command = UserCommand::ChangeRole(ChangeUserRole {
            role,
            actor,
            at: now,
        });
        state
            .users
            .execute(&id, None, command, metadata.clone())
            .await
            .map_err(command_error)?;
    }
    if let Some(active) = change.active.filter(|a| *a != current.active) {
        let command = UserCommand::SetActive(SetUserActive {
            active,
            actor,
            at: now,
        });
        state
            .users
            .execute(&id, None, command, metadata.clone())
            .await
            .map_err(command_error)?;
        if !active {
            end_sessions(state, target).await?;
        }
    }
    if let Some(password) = change.password {
        set_password(state, target, actor, password, metadata).await?;
    }
    let (user, version) = state.users.load(&id).await?;
    user.state()
        .map(|s| UserView::from_state(s, version))
        .ok_or_else(|| ApiError::not_found("user"))
}

/// Creates the configured administrator unless an administrator already exists.
pub async fn ensure_admin(
    state: &AppState,
    email: &str,
    password: &str,
    full_name: &str,
    metadata: EventMetadata,
) -> Result<bool, ApiError> {
    let existing: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM events
          WHERE aggregate_type = 'user' AND event_type = 'UserRegistered'
            AND payload -> 'UserRegistered' ->> 'role' = 'admin')",
    )
    .fetch_one(&state.pool)
    .await
    .map_err(ApiError::database)?;
    if existing {
        return Ok(false);
    }
    let account = NewAccount {
        email: Email::parse(email)
            .map_err(|e| ApiError::validation("DOCKET_ADMIN_EMAIL", e.reason))?,
        password: Password::parse("DOCKET_ADMIN_PASSWORD", password)?,
        full_name: FullName::parse(full_name)
            .map_err(|e| ApiError::validation("full_name", e.reason))?,
        role: Role::Admin,
        registration: Registration::Bootstrap,
    };
    register(state, account, metadata).await?;
    Ok(true)
}
