//! Accounts: registration, sign-in, tokens and passwords.
//!
//! The User aggregate's events hold who someone is; the `credentials` and `refresh_tokens`
//! tables hold their secrets (DESIGN.md decision 10). Registration reserves the e-mail in
//! `credentials` first and appends `UserRegistered` second; if the append fails the reservation
//! is released, and a reservation left behind by a crash in between is reclaimed by the next
//! registration of that e-mail.

use chrono::{DateTime, Utc};
use docket_domain::access::{self, Permission};
use docket_domain::ticket::UserStanding;
use docket_domain::user::{
    ChangeUserRole, RegisterUser, Registration, SetUserActive, UpdateUserProfile, User,
    UserCommand, UserState,
};
use docket_domain::values::{Email, FullName, UserId};
use docket_domain::{Actor, Role};
use docket_projections::{EventMetadata, users};
use uuid::Uuid;

pub mod passwords;
pub mod sessions;
pub mod tokens;

use passwords::Password;
use tokens::{new_refresh_token, refresh_token_hash};

use crate::app::App;
use crate::app::bus::Committed;
use crate::app::error::{AppError, ConflictKind};

/// An account as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct UserView {
    pub id: UserId,
    pub email: String,
    pub full_name: String,
    pub role: Role,
    pub active: bool,
    /// A service account: no password, acts through API keys.
    pub service: bool,
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
            service: state.service,
            created_at: state.created_at,
            updated_at: state.updated_at,
            version,
        }
    }

    pub fn from_row(row: users::UserRow) -> Self {
        Self {
            id: UserId(row.id),
            role: row.role,
            email: row.email,
            full_name: row.full_name,
            active: row.active,
            service: row.service,
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
        }
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

fn committed_view(committed: &Committed<User>) -> Result<UserView, AppError> {
    committed
        .aggregate
        .state()
        .map(|state| UserView::from_state(state, committed.version))
        .ok_or_else(|| AppError::internal("user command left no user"))
}

/// The account as it is now, from the log itself rather than the read model: sign-in, account
/// changes and reads of one account see a deactivation or a role change the moment it is
/// committed. A user has a handful of events, so this is one indexed read.
pub async fn find_user(app: &App, id: UserId) -> Result<Option<UserView>, AppError> {
    let (user, version) = app.users.load(&id.to_string()).await?;
    Ok(user.state().map(|s| UserView::from_state(s, version)))
}

/// The account as this process last read it from the log, if that was less than
/// `account_freshness` ago (changes made through this process are seen at once); otherwise as
/// [`find_user`]. What every request's token check and the people commands name use: read
/// afresh each time, the account was a read of the log on every request.
pub async fn recent_user(app: &App, id: UserId) -> Result<Option<UserView>, AppError> {
    let (user, version) = app
        .users
        .load_recent(&id.to_string(), app.account_freshness)
        .await?;
    Ok(user.state().map(|s| UserView::from_state(s, version)))
}

/// The account behind an access token, as it is now; deactivated accounts are refused.
pub async fn authenticate(app: &App, token: &str) -> Result<crate::app::Caller, AppError> {
    let claims = app
        .tokens
        .verify_access(token)
        .map_err(|reason| AppError::Unauthenticated(reason.to_string()))?;
    let user = recent_user(app, claims.user_id)
        .await?
        .ok_or_else(|| AppError::Unauthenticated("the account no longer exists".into()))?;
    if !user.active {
        return Err(AppError::Unauthenticated(
            "the account is deactivated".into(),
        ));
    }
    Ok(crate::app::Caller::from(user))
}

/// Accounts matching `filter`, a page of them, and how many match in all (managers, admins).
pub async fn list(
    app: &App,
    caller: &crate::app::Caller,
    filter: &users::UserFilter,
) -> Result<(Vec<UserView>, i64), AppError> {
    caller.require(
        docket_domain::access::Permission::ReadAccounts,
        "list accounts",
    )?;
    app.consistency
        .include(caller, &[&docket_projections::registry::USERS])
        .await?;
    let (rows, total) = users::list(&app.pool, filter).await?;
    Ok((rows.into_iter().map(UserView::from_row).collect(), total))
}

/// One account, from the log (managers, admins).
pub async fn get(app: &App, caller: &crate::app::Caller, id: UserId) -> Result<UserView, AppError> {
    caller.require(
        docket_domain::access::Permission::ReadAccounts,
        "look up accounts",
    )?;
    find_user(app, id).await?.ok_or(AppError::NotFound("user"))
}

/// A person referenced by a request (a customer, an assignee), for the domain to judge.
pub async fn standing(app: &App, id: UserId) -> Result<Option<UserStanding>, AppError> {
    Ok(recent_user(app, id).await?.map(|u| u.standing()))
}

pub struct NewAccount {
    pub email: Email,
    /// `None` only for a service account, which has no password.
    pub password: Option<Password>,
    pub full_name: FullName,
    pub role: Role,
    pub registration: Registration,
    pub service: bool,
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
}

async fn user_has_events(app: &App, user_id: Uuid) -> Result<bool, AppError> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM events WHERE aggregate_type = 'user' AND aggregate_id = $1)",
    )
    .bind(user_id.to_string())
    .fetch_one(&app.pool)
    .await
    .map_err(AppError::database)
}

/// Reserves `email` for `user_id`, reclaiming a reservation orphaned by a crash.
async fn reserve_email(
    app: &App,
    user_id: UserId,
    email: &Email,
    password_hash: Option<&str>,
) -> Result<(), AppError> {
    for _ in 0..2 {
        let inserted = sqlx::query(
            "INSERT INTO credentials (user_id, email, password_hash) VALUES ($1, $2, $3)",
        )
        .bind(user_id.0)
        .bind(email.as_str())
        .bind(password_hash)
        .execute(&app.pool)
        .await;
        match inserted {
            Ok(_) => return Ok(()),
            Err(e) if is_unique_violation(&e) => {
                let holder: Option<Uuid> =
                    sqlx::query_scalar("SELECT user_id FROM credentials WHERE email = $1")
                        .bind(email.as_str())
                        .fetch_optional(&app.pool)
                        .await
                        .map_err(AppError::database)?;
                match holder {
                    Some(holder) if !user_has_events(app, holder).await? => {
                        sqlx::query("DELETE FROM credentials WHERE user_id = $1")
                            .bind(holder)
                            .execute(&app.pool)
                            .await
                            .map_err(AppError::database)?;
                    }
                    Some(_) => return Err(email_taken()),
                    None => {} // released meanwhile; try again
                }
            }
            Err(e) => return Err(AppError::database(e)),
        }
    }
    Err(email_taken())
}

fn email_taken() -> AppError {
    AppError::conflict(
        ConflictKind::EmailTaken,
        "an account with this e-mail already exists",
    )
}

pub async fn register(
    app: &App,
    account: NewAccount,
    metadata: EventMetadata,
) -> Result<UserView, AppError> {
    // The e-mail is reserved before the account is recorded: who may create accounts is asked
    // of the domain first, so a refused request never holds someone's address, even briefly.
    if let Registration::ByAdmin(actor) = &account.registration {
        access::require_actor(actor, Permission::AdministerAccounts, "create accounts")?;
    }
    let user_id = UserId(Uuid::now_v7());
    let password_hash = match (account.password, account.service) {
        (Some(password), false) => Some(passwords::hash(password).await?),
        (None, true) => None,
        (Some(_), true) => {
            return Err(AppError::invalid(
                "password",
                "a service account has no password; it signs in with API keys",
            ));
        }
        (None, false) => return Err(AppError::invalid("password", "must not be empty")),
    };
    reserve_email(app, user_id, &account.email, password_hash.as_deref()).await?;
    let command = UserCommand::Register(RegisterUser {
        user_id,
        email: account.email,
        full_name: account.full_name,
        role: account.role,
        registration: account.registration,
        service: account.service,
        at: app.time.now(),
    });
    match app
        .users
        .execute(&user_id.to_string(), Some(0), command, metadata)
        .await
    {
        Ok(committed) => committed_view(&committed),
        Err(error) => {
            let _ = sqlx::query("DELETE FROM credentials WHERE user_id = $1")
                .bind(user_id.0)
                .execute(&app.pool)
                .await;
            Err(AppError::from(error))
        }
    }
}

fn bad_credentials() -> AppError {
    AppError::Unauthenticated("e-mail or password is wrong".into())
}

async fn issue_tokens(app: &App, user: &UserView, family: Uuid) -> Result<TokenPair, AppError> {
    let now = app.time.now();
    let access_token = app
        .tokens
        .issue_access(user.id, user.role.as_str(), now)
        .map_err(AppError::internal)?;
    let refresh_token = new_refresh_token();
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, user_id, family_id, issued_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(refresh_token_hash(&refresh_token))
    .bind(user.id.0)
    .bind(family)
    .bind(now)
    .bind(now + app.tokens.refresh_ttl)
    .execute(&app.pool)
    .await
    .map_err(AppError::database)?;
    Ok(TokenPair {
        access_token,
        refresh_token,
        expires_in: app.tokens.access_ttl.num_seconds(),
    })
}

pub async fn login(
    app: &App,
    email: &str,
    password: String,
) -> Result<(TokenPair, UserView), AppError> {
    let user = check_credentials(app, email, password).await?;
    let tokens = issue_tokens(app, &user, Uuid::now_v7()).await?;
    Ok((tokens, user))
}

/// The active account with this e-mail and password; one answer for every wrong guess.
pub async fn check_credentials(
    app: &App,
    email: &str,
    password: String,
) -> Result<UserView, AppError> {
    let email = email.trim().to_lowercase();
    // A service account's hash is NULL: no password matches it.
    let stored: Option<(Uuid, Option<String>)> =
        sqlx::query_as("SELECT user_id, password_hash FROM credentials WHERE email = $1")
            .bind(&email)
            .fetch_optional(&app.pool)
            .await
            .map_err(AppError::database)?;
    let (user_id, hash) = match stored {
        Some((id, hash)) => (Some(id), hash),
        None => (None, None),
    };
    if !passwords::verify(password, hash).await? {
        return Err(bad_credentials());
    }
    let user = match user_id {
        Some(id) => find_user(app, UserId(id)).await?,
        None => None,
    }
    .ok_or_else(bad_credentials)?;
    if !user.active {
        return Err(AppError::Unauthenticated(
            "the account is deactivated".into(),
        ));
    }
    Ok(user)
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
pub async fn refresh(app: &App, token: &str) -> Result<(TokenPair, UserView), AppError> {
    let hash = refresh_token_hash(token);
    let mut tx = app.pool.begin().await.map_err(AppError::database)?;
    let row: Option<RefreshRow> = sqlx::query_as(
        "SELECT user_id, family_id, expires_at, revoked_at FROM refresh_tokens
          WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(&hash)
    .fetch_optional(&mut *tx)
    .await
    .map_err(AppError::database)?;
    let invalid = || AppError::Unauthenticated("the refresh token is invalid or expired".into());
    let Some(RefreshRow {
        user_id,
        family_id: family,
        expires_at,
        revoked_at,
    }) = row
    else {
        return Err(invalid());
    };
    let now = app.time.now();
    if revoked_at.is_some() {
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
        )
        .bind(family)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(AppError::database)?;
        tx.commit().await.map_err(AppError::database)?;
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
        .map_err(AppError::database)?;
    tx.commit().await.map_err(AppError::database)?;
    let user = find_user(app, UserId(user_id))
        .await?
        .filter(|u| u.active)
        .ok_or_else(invalid)?;
    let tokens = issue_tokens(app, &user, family).await?;
    Ok((tokens, user))
}

/// Revokes the refresh token's family (sign out on that device).
pub async fn logout(app: &App, user: UserId, token: &str) -> Result<(), AppError> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $3
          WHERE family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1 AND user_id = $2)
            AND revoked_at IS NULL",
    )
    .bind(refresh_token_hash(token))
    .bind(user.0)
    .bind(app.time.now())
    .execute(&app.pool)
    .await
    .map_err(AppError::database)?;
    Ok(())
}

async fn set_password(
    app: &App,
    target: UserId,
    actor: Actor,
    password: Password,
    metadata: EventMetadata,
) -> Result<(), AppError> {
    let hash = passwords::hash(password).await?;
    // Record first: if the domain refuses, the hash must not change.
    let command = UserCommand::RecordPasswordChange {
        actor,
        at: app.time.now(),
    };
    app.users
        .execute(&target.to_string(), None, command, metadata)
        .await
        .map_err(AppError::from)?;
    sqlx::query("UPDATE credentials SET password_hash = $2, updated_at = now() WHERE user_id = $1")
        .bind(target.0)
        .bind(hash)
        .execute(&app.pool)
        .await
        .map_err(AppError::database)?;
    // Every session of the account ends with the old password.
    end_sessions(app, target).await
}

/// Revokes every refresh token and web session of the account.
async fn end_sessions(app: &App, user: UserId) -> Result<(), AppError> {
    for table in ["refresh_tokens", "web_sessions"] {
        sqlx::query(&format!(
            "UPDATE {table} SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL"
        ))
        .bind(user.0)
        .execute(&app.pool)
        .await
        .map_err(AppError::database)?;
    }
    Ok(())
}

pub async fn change_password(
    app: &App,
    actor: Actor,
    current: String,
    new: Password,
    metadata: EventMetadata,
) -> Result<(), AppError> {
    let stored: Option<String> =
        sqlx::query_scalar("SELECT password_hash FROM credentials WHERE user_id = $1")
            .bind(actor.user_id.0)
            .fetch_optional(&app.pool)
            .await
            .map_err(AppError::database)?
            .flatten();
    if !passwords::verify(current, stored).await? {
        return Err(AppError::invalid("current_password", "is wrong"));
    }
    set_password(app, actor.user_id, actor, new, metadata).await
}

/// Every change of an account, oldest first, from its log (managers, admins).
pub async fn history(
    app: &App,
    caller: &crate::app::Caller,
    id: UserId,
) -> Result<Vec<crate::app::audit::Change>, AppError> {
    caller.require(
        docket_domain::access::Permission::ReadAccounts,
        "see accounts",
    )?;
    crate::app::audit::changes(app, "user", id.0).await
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
    app: &App,
    actor: Actor,
    target: UserId,
    change: AccountChange,
    metadata: EventMetadata,
) -> Result<UserView, AppError> {
    // The login e-mail changes before the events are recorded (and back if they are refused):
    // who may edit accounts is asked of the domain first.
    access::require_actor(&actor, Permission::AdministerAccounts, "edit accounts")?;
    let id = target.to_string();
    let current = find_user(app, target)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    let now = app.time.now();
    let new_email = change.email.filter(|e| e.as_str() != current.email);
    if let Some(email) = &new_email {
        let moved =
            sqlx::query("UPDATE credentials SET email = $2, updated_at = now() WHERE user_id = $1")
                .bind(target.0)
                .bind(email.as_str())
                .execute(&app.pool)
                .await;
        match moved {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Err(email_taken()),
            Err(e) => return Err(AppError::database(e)),
        }
    }
    if change.full_name.is_some() || new_email.is_some() {
        let command = UserCommand::UpdateProfile(UpdateUserProfile {
            full_name: change.full_name,
            email: new_email.clone(),
            actor,
            at: now,
        });
        if let Err(error) = app
            .users
            .execute(&id, None, command, metadata.clone())
            .await
        {
            if new_email.is_some() {
                let _ = sqlx::query("UPDATE credentials SET email = $2 WHERE user_id = $1")
                    .bind(target.0)
                    .bind(&current.email)
                    .execute(&app.pool)
                    .await;
            }
            return Err(AppError::from(error));
        }
    }
    if let Some(role) = change.role {
        let command = UserCommand::ChangeRole(ChangeUserRole {
            role,
            actor,
            at: now,
        });
        app.users
            .execute(&id, None, command, metadata.clone())
            .await
            .map_err(AppError::from)?;
    }
    if let Some(active) = change.active.filter(|a| *a != current.active) {
        let command = UserCommand::SetActive(SetUserActive {
            active,
            actor,
            at: now,
        });
        app.users
            .execute(&id, None, command, metadata.clone())
            .await
            .map_err(AppError::from)?;
        if !active {
            end_sessions(app, target).await?;
        }
    }
    if let Some(password) = change.password {
        set_password(app, target, actor, password, metadata).await?;
    }
    let (user, version) = app.users.load(&id).await?;
    user.state()
        .map(|s| UserView::from_state(s, version))
        .ok_or(AppError::NotFound("user"))
}

/// Creates the configured administrator unless an administrator already exists.
pub async fn ensure_admin(
    app: &App,
    email: &str,
    password: &str,
    full_name: &str,
    metadata: EventMetadata,
) -> Result<bool, AppError> {
    let existing: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM events
          WHERE aggregate_type = 'user' AND event_type = 'UserRegistered'
            AND payload -> 'UserRegistered' ->> 'role' = 'admin')",
    )
    .fetch_one(&app.pool)
    .await
    .map_err(AppError::database)?;
    if existing {
        return Ok(false);
    }
    let account = NewAccount {
        email: Email::parse(email)
            .map_err(|e| AppError::invalid("DOCKET_ADMIN_EMAIL", e.reason))?,
        password: Some(Password::parse("DOCKET_ADMIN_PASSWORD", password)?),
        full_name: FullName::parse(full_name)
            .map_err(|e| AppError::invalid("full_name", e.reason))?,
        role: Role::Admin,
        registration: Registration::Bootstrap,
        service: false,
    };
    register(app, account, metadata).await?;
    Ok(true)
}
