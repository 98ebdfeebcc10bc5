//! The watch: what no single event says — the queue has been longer than
//! `DOCKET_ALERT_QUEUE_LENGTH` for `DOCKET_ALERT_QUEUE_FOR`, a projector (or subscriber) stopped
//! at an event it cannot apply. One server at a time looks, every two seconds; the alert it
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
use crate::app::{App, AppError};

/// The watch's leadership lock ("docket_6").
const LEADER_KEY: i64 = 0x646f_636b_6574_5f36;
/// How often it looks.
const EVERY: Duration = Duration::from_secs(2);

pub const QUEUE_CAUSE: &str = "queue_length";

pub async fn run(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let mut over_since: Option<DateTime<Utc>> = None;
    loop {
        if *shutdown.borrow() {
            return;
        }
        if let Err(error) = pass(&app, &mut over_since).await {
            tracing::warn!(?error, "could not look for alerts");
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// One look, by whichever server takes the lock for it (held by a pooled connection for the
/// length of the pass, not by a connection of its own for the life of the process).
async fn pass(app: &App, over_since: &mut Option<DateTime<Utc>>) -> Result<(), AppError> {
    let mut turn = app.pool.begin().await?;
    let mine: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(LEADER_KEY)
        .fetch_one(&mut *turn)
        .await?;
    if !mine {
        // Another server looks; what this one saw of the queue is stale.
        *over_since = None;
        return Ok(());
    }
    let looked = look(app, over_since).await;
    turn.commit().await?;
    looked
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
    // One cheap read of every checkpoint (not the lag `/ready` computes).
    let stopped: Vec<(String, Option<i64>, Option<String>, i64)> = sqlx::query_as(
        "SELECT projector, failed_position, failure, last_position FROM projector_checkpoints",
    )
    .fetch_all(&app.pool)
    .await?;
    let open: Vec<String> = sqlx::query_scalar(
        "SELECT cause FROM alerts_view WHERE state <> 'resolved' AND cause LIKE 'projector:%'",
    )
    .fetch_all(&app.pool)
    .await?;
    for (projector, failed_position, failure, position) in stopped {
        let cause = format!("projector:{projector}");
        match failure {
            Some(failure) => {
                let subject = AlertSubject::new(
                    &cause,
                    AlertKind::ProjectorStopped,
                    Severity::Critical,
                    format!("The {projector} projector stopped"),
                    Some(format!(
                        "At event {}: {}",
                        failed_position.unwrap_or(position),
                        failure.chars().take(1_500).collect::<String>()
                    )),
                    None,
                )?;
                let occasion = failed_position.unwrap_or_default().to_string();
                raise_unless_open(app, subject, &occasion, "alert-watch").await?;
            }
            None if open.contains(&cause) => {
                resolve_if_open(app, &cause, "It runs again.").await?;
            }
            None => {}
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
