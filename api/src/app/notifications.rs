//! In-app notifications (each person's own), and what each person wants to be told of.
//!
//! The notifier (`outbound::notifier`) writes them from the log; here they are read and marked
//! read. Preferences are events of the person's account, so the notifier applies them at their
//! place in the log.

use chrono::{DateTime, Utc};
use docket_domain::notice::NotificationPreferences;
use docket_domain::user::UserCommand;
use uuid::Uuid;

use crate::app::{App, AppError, Caller, Origin};

/// One notification as its recipient sees it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct NotificationView {
    pub id: Uuid,
    pub kind: String,
    pub ticket_id: Option<Uuid>,
    pub ticket_number: Option<i64>,
    pub title: String,
    pub body: Option<String>,
    pub actor_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

/// The caller's notifications, newest first (only unread ones if asked), and how many there are.
pub async fn list(
    app: &App,
    caller: &Caller,
    unread_only: bool,
    page: i64,
    page_size: i64,
) -> Result<(Vec<NotificationView>, i64), AppError> {
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notifications WHERE user_id = $1 AND (NOT $2 OR read_at IS NULL)",
    )
    .bind(caller.id.0)
    .bind(unread_only)
    .fetch_one(&app.pool)
    .await?;
    let items = sqlx::query_as(
        "SELECT id, kind, ticket_id, ticket_number, title, body, actor_id, created_at, read_at
           FROM notifications WHERE user_id = $1 AND (NOT $2 OR read_at IS NULL)
          ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4",
    )
    .bind(caller.id.0)
    .bind(unread_only)
    .bind(page_size)
    .bind((page.max(1) - 1).saturating_mul(page_size))
    .fetch_all(&app.pool)
    .await?;
    Ok((items, total))
}

/// How many of the caller's notifications are unread.
pub async fn unread_count(app: &App, caller: &Caller) -> Result<i64, AppError> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL",
    )
    .bind(caller.id.0)
    .fetch_one(&app.pool)
    .await?)
}

/// Marks one of the caller's notifications read (again is fine); someone else's is not found.
pub async fn mark_read(app: &App, caller: &Caller, id: Uuid) -> Result<(), AppError> {
    let found = sqlx::query(
        "UPDATE notifications SET read_at = COALESCE(read_at, $3) WHERE id = $1 AND user_id = $2",
    )
    .bind(id)
    .bind(caller.id.0)
    .bind(app.time.now())
    .execute(&app.pool)
    .await?;
    if found.rows_affected() == 0 {
        return Err(AppError::NotFound("notification"));
    }
    Ok(())
}

/// Marks every notification of the caller read; how many were unread.
pub async fn mark_all_read(app: &App, caller: &Caller) -> Result<u64, AppError> {
    Ok(
        sqlx::query("UPDATE notifications SET read_at = $2 WHERE user_id = $1 AND read_at IS NULL")
            .bind(caller.id.0)
            .bind(app.time.now())
            .execute(&app.pool)
            .await?
            .rows_affected(),
    )
}

/// What the caller switched off.
pub async fn preferences(app: &App, caller: &Caller) -> Result<NotificationPreferences, AppError> {
    let (user, _) = app.users.load(&caller.id.to_string()).await?;
    Ok(user
        .state()
        .map(|u| u.notification_preferences.clone())
        .unwrap_or_default())
}

/// Sets what the caller wants to be told of (recorded in their account's log).
pub async fn set_preferences(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    chosen: NotificationPreferences,
) -> Result<NotificationPreferences, AppError> {
    let command = UserCommand::SetNotificationPreferences {
        preferences: chosen,
        actor: caller.actor(),
        at: app.time.now(),
    };
    app.users
        .execute(
            &caller.id.to_string(),
            None,
            command,
            origin.metadata(Some(caller.actor())),
        )
        .await?;
    preferences(app, caller).await
}
