//! A policy or calendar edit applies to open tickets from the moment it is made: after every
//! configuration change (and once at start-up, for tickets that predate SLA tracking), each
//! open ticket is asked to re-select its policy. Tickets whose policy is unchanged record
//! nothing.

use std::sync::Arc;
use std::time::Duration;

use docket_domain::ticket::{ApplySlaPolicy, TicketCommand};
use docket_projections::log::{self, Checkpoint};
use docket_projections::sla_config::CATALOG_TYPES;
use docket_projections::tickets;
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

use super::scheduler::WRITE_BATCH;
use crate::app::caller::system_metadata;
use crate::app::{App, AppError, leadership};

/// The propagator's leadership lock ("docket_2").
const LEADER_KEY: i64 = 0x646f_636b_6574_5f32;

pub async fn run(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let Some(_leadership) =
        leadership::lead(&app.pool, LEADER_KEY, "sla-propagator", &mut shutdown).await
    else {
        return;
    };
    let mut wake = app.notifications.events_of(CATALOG_TYPES);
    let reader = log::reader_pool(&app.pool, 1);
    let mut seen: Option<Checkpoint> = None;
    loop {
        if *shutdown.borrow() {
            return;
        }
        match config_changed(&reader, &mut seen).await {
            Ok(true) => {
                if let Err(error) = propagate(&app).await {
                    tracing::warn!(?error, "could not apply SLA policies to open tickets");
                    seen = None;
                }
            }
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "could not read configuration changes"),
        }
        tokio::select! {
            _ = wake.changed() => {}
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Whether configuration changed since `seen` (always true the first time).
async fn config_changed(pool: &PgPool, seen: &mut Option<Checkpoint>) -> Result<bool, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let first = seen.is_none();
    let from = seen.unwrap_or(Checkpoint::START);
    let batch =
        log::read_batch(&mut conn, from, CATALOG_TYPES, log::Metadata::Skip, 10_000).await?;
    *seen = Some(batch.next);
    Ok(first || !batch.events.is_empty())
}

async fn propagate(app: &Arc<App>) -> Result<(), AppError> {
    let catalog = app.sla_catalog.current(&app.pool).await?;
    let open = tickets::unfinished_ids(&app.pool).await?;
    let mut applied = 0;
    for chunk in open.chunks(WRITE_BATCH) {
        let ids: Vec<String> = chunk.iter().map(Uuid::to_string).collect();
        let command = TicketCommand::ApplySlaPolicy(ApplySlaPolicy {
            sla: (*catalog).clone(),
            at: app.time.now(),
        });
        applied += app
            .tickets
            .execute_many(&ids, command, system_metadata("sla-policy"))
            .await?
            .changed;
    }
    if applied > 0 {
        tracing::info!(
            tickets = applied,
            "applied changed SLA policies to open tickets"
        );
    }
    Ok(())
}
