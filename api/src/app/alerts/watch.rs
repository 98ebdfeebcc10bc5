//! The watch: what no single event says — the queue has been longer than
//! `DOCKET_ALERT_QUEUE_LENGTH` for `DOCKET_ALERT_QUEUE_FOR`, a projector (or subscriber) stopped
//! at an event it cannot apply. One server at a time looks, every few seconds; the alert it
//! raises is resolved by the system when the condition is over.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use docket_domain::Actor;
use docket_domain::alert::{AlertCommand, AlertKind, AlertSubject, Severity};
use docket_domain::values::Note;
use docket_projections::{alerts, workforce};
use tokio::sync::watch;
use uuid::Uuid;

use super::raise_unless_open;
use crate::app::caller::system_metadata;
use crate::app::{App, AppError, health, leadership};

/// The watch's leadership lock ("docket_6").
const LEADER_KEY: i64 = 0x646f_636b_6574_5f36;
/// How often it looks.
const EVERY: Duration = Duration::from_secs(2);

pub const QUEUE_CAUSE: &str = "queue_length";

pub async fn run(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let Some(_leadership) = leadership::lead(&app.pool, LEADER_KEY, "alerts", &mut shutdown).await
    else {
        return;
    };
    let mut over_since: Option<DateTime<Utc>> = None;
    loop {
        if *shutdown.borrow() {
            return;
        }
        if let Err(error) = look(&app, &mut over_since).await {
            tracing::warn!(?error, "could not look for alerts");
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = shutdown.changed() => {}
        }
    }
}

async fn look(app: &App, over_since: &mut Option<DateTime<Utc>>) -> Result<(), AppError> {
    let settings = &app.outbound.settings;
    let now = app.time.now();
    if settings.alert_queue_length > 0 {
        let queued = workforce::queue_length(&app.pool).await?;
        if queued > settings.alert_queue_length {
            let since = *over_since.get_or_insert(now);
            let window = chrono::Duration::from_std(settings.alert_queue_for)
                .unwrap_or(chrono::Duration::MAX);
            if now - since >= window {
                let subject = AlertSubject::new(
                    QUEUE_CAUSE,
                    AlertKind::QueueLength,
                    Severity::Warning,
                    format!("{queued} tickets wait in the queue"),
                    Some(format!(
                        "More than {} tickets have waited for an agent since {}.",
                        settings.alert_queue_length,
                        since.format("%Y-%m-%d %H:%M:%S UTC")
                    )),
                    None,
                )?;
                raise_unless_open(app, subject, &since.to_rfc3339(), "alert-watch").await?;
            }
        } else {
            *over_since = None;
            resolve_if_open(app, QUEUE_CAUSE, &format!("The queue is back to {queued}.")).await?;
        }
    }
    for status in health::projectors(app).await? {
        let cause = format!("projector:{}", status.projector);
        match (&status.failure, status.failed_position) {
            (Some(failure), position) => {
                let subject = AlertSubject::new(
                    &cause,
                    AlertKind::ProjectorStopped,
                    Severity::Critical,
                    format!("The {} projector stopped", status.projector),
                    Some(format!(
                        "At event {}: {}",
                        position.unwrap_or(status.checkpoint.position),
                        failure.chars().take(1_500).collect::<String>()
                    )),
                    None,
                )?;
                let occasion = position.unwrap_or_default().to_string();
                raise_unless_open(app, subject, &occasion, "alert-watch").await?;
            }
            (None, _) => {
                resolve_if_open(app, &cause, "It runs again.").await?;
            }
        }
    }
    Ok(())
}

/// Resolves the unresolved alert of `cause` by the system, saying why.
async fn resolve_if_open(app: &App, cause: &str, why: &str) -> Result<(), AppError> {
    let Some(open) = alerts::unresolved_for(&app.pool, cause).await? else {
        return Ok(());
    };
    let command = AlertCommand::Resolve {
        note: Note::parse(why).ok(),
        actor: Actor::system(),
        at: app.time.now(),
    };
    let id: Uuid = open.id;
    // Someone resolving it at the same moment is as good.
    let _ = app
        .alerts
        .execute(
            &id.to_string(),
            None,
            command,
            system_metadata("alert-watch"),
        )
        .await;
    Ok(())
}
