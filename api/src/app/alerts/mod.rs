//! Alerts: listed, acknowledged and resolved by staff; raised by the alerter (a log subscriber:
//! critical breaches, second escalations, disabled webhooks), by the watch (a queue too long
//! for too long, a stopped projector) and by rules. One unresolved alert per cause.

pub mod alerter;
pub mod watch;

use docket_domain::access::Permission;
use docket_domain::alert::{
    Alert, AlertCommand, AlertError, AlertId, AlertState, AlertSubject, Severity,
};
use docket_domain::values::Note;
use docket_projections::alerts::{self, AlertRow};
use docket_projections::registry;
use uuid::Uuid;

use crate::app::bus::{CommandError, Committed};
use crate::app::caller::system_metadata;
use crate::app::{App, AppError, Caller, Origin};

/// Alert ids derived from their cause and what raised them ("alert" in UUIDv5's namespace).
pub const ALERT_NAMESPACE: Uuid = Uuid::from_u128(0x7a1e_47c3_9d20_4b8e_a5f1_3c6e_d0b2_9a44);

/// Alerts in `state` (all when `None`), newest first, and how many there are.
pub async fn list(
    app: &App,
    caller: &Caller,
    state: Option<AlertState>,
    page: i64,
    page_size: i64,
) -> Result<(Vec<AlertRow>, i64), AppError> {
    caller.require(Permission::ReadStaffViews, "see alerts")?;
    app.consistency
        .include(caller, &[&registry::ALERTS])
        .await?;
    Ok(alerts::list(
        &app.pool,
        state.map(AlertState::as_str),
        page_size,
        (page - 1) * page_size,
    )
    .await?)
}

/// One alert.
pub async fn get(app: &App, caller: &Caller, id: Uuid) -> Result<AlertRow, AppError> {
    caller.require(Permission::ReadStaffViews, "see alerts")?;
    app.consistency
        .include(caller, &[&registry::ALERTS])
        .await?;
    alerts::get(&app.pool, id)
        .await?
        .ok_or(AppError::NotFound("alert"))
}

/// How many alerts nobody has acknowledged yet.
pub async fn unanswered(app: &App) -> Result<i64, AppError> {
    Ok(alerts::open_count(&app.pool).await?)
}

/// Someone is on it.
pub async fn acknowledge(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    id: Uuid,
    note: Option<&str>,
) -> Result<AlertRow, AppError> {
    let command = AlertCommand::Acknowledge {
        note: note_of(note)?,
        actor: caller.actor(),
        at: app.time.now(),
    };
    answer(app, caller, origin, id, command).await
}

/// It is over.
pub async fn resolve(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    id: Uuid,
    note: Option<&str>,
) -> Result<AlertRow, AppError> {
    let command = AlertCommand::Resolve {
        note: note_of(note)?,
        actor: caller.actor(),
        at: app.time.now(),
    };
    answer(app, caller, origin, id, command).await
}

fn note_of(note: Option<&str>) -> Result<Option<Note>, AppError> {
    note.map(str::trim)
        .filter(|n| !n.is_empty())
        .map(Note::parse)
        .transpose()
        .map_err(AppError::from)
}

async fn answer(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    id: Uuid,
    command: AlertCommand,
) -> Result<AlertRow, AppError> {
    caller.require(Permission::WorkTickets, "answer alerts")?;
    let committed = app
        .alerts
        .execute(
            &id.to_string(),
            None,
            command,
            origin.metadata(Some(caller.actor())),
        )
        .await?;
    row_of(&committed)
}

/// The alert as the command left it (what the caller sees at once, whatever the read model).
fn row_of(committed: &Committed<Alert>) -> Result<AlertRow, AppError> {
    let view = committed
        .aggregate
        .view()
        .ok_or_else(|| AppError::internal("alert command left no alert"))?;
    let answered = |a: &Option<(
        docket_domain::Actor,
        chrono::DateTime<chrono::Utc>,
        Option<Note>,
    )>| {
        a.as_ref()
            .map(|(actor, at, note)| (actor.user_id.0, *at, note.clone().map(|n| n.into_string())))
    };
    let acknowledged = answered(&view.acknowledged);
    let resolved = answered(&view.resolved);
    Ok(AlertRow {
        id: view.id.0,
        cause: view.subject.cause.clone(),
        kind: view.subject.kind.as_str().to_string(),
        severity: view.subject.severity.as_str().to_string(),
        title: view.subject.title.clone(),
        detail: view.subject.detail.clone(),
        ticket_id: view.subject.ticket_id,
        state: view.state.as_str().to_string(),
        raised_by: view.raised_by.user_id.0,
        raised_at: view.raised_at,
        acknowledged_by: acknowledged.as_ref().map(|a| a.0),
        acknowledged_at: acknowledged.as_ref().map(|a| a.1),
        acknowledge_note: acknowledged.and_then(|a| a.2),
        resolved_by: resolved.as_ref().map(|a| a.0),
        resolved_at: resolved.as_ref().map(|a| a.1),
        resolve_note: resolved.and_then(|a| a.2),
        version: committed.version,
    })
}

/// Raises the alert `id` by the system, unless it was raised before (then nothing happens).
pub async fn raise_as_system(
    app: &App,
    id: Uuid,
    subject: AlertSubject,
    purpose: &str,
) -> Result<(), AppError> {
    let command = AlertCommand::Raise {
        alert_id: AlertId(id),
        subject,
        actor: docket_domain::Actor::system(),
        at: app.time.now(),
    };
    match app
        .alerts
        .execute(&id.to_string(), None, command, system_metadata(purpose))
        .await
    {
        // Raised before (a replay, another process): what was asked is done.
        Ok(_)
        | Err(CommandError::Rejected(AlertError::AlreadyRaised))
        | Err(CommandError::Conflict) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// Raises an alert for `subject` by the system unless one for its cause is unresolved; the id
/// comes from the cause and `occasion`, so two processes seeing the same occasion raise one.
pub async fn raise_unless_open(
    app: &App,
    subject: AlertSubject,
    occasion: &str,
    purpose: &str,
) -> Result<bool, AppError> {
    if alerts::unresolved_for(&app.pool, &subject.cause)
        .await?
        .is_some()
    {
        return Ok(false);
    }
    let id = Uuid::new_v5(
        &ALERT_NAMESPACE,
        format!("{}@{occasion}", subject.cause).as_bytes(),
    );
    raise_as_system(app, id, subject, purpose).await?;
    Ok(true)
}

/// Severity as people read it, most urgent first.
pub fn rank(severity: &str) -> u8 {
    match severity.parse::<Severity>() {
        Ok(Severity::Critical) => 0,
        Ok(Severity::Warning) => 1,
        _ => 2,
    }
}
