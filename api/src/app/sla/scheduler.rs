//! The deadline scheduler: turns due instants into events. It sleeps until the next warning or
//! deadline of any running clock (as the tickets projection lists them), or the next instant a
//! time-based automation rule holds on a ticket (as the rule engine lists them), then asks each
//! due ticket to record what has passed, and the rule engine to act. It wakes early whenever a
//! projection commits (a new or moved deadline), and never sleeps more than a few seconds, so a
//! lost notification costs little.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use docket_domain::ticket::{CheckSlaDeadlines, TicketCommand};
use docket_projections::sla as sla_view;
use futures::StreamExt;
use tokio::sync::watch;
use uuid::Uuid;

use crate::app::caller::system_metadata;
use crate::app::{App, automation_engine, leadership};

/// The scheduler's leadership lock ("docket_1").
const LEADER_KEY: i64 = 0x646f_636b_6574_5f31;
/// How many due tickets the scheduler takes at a time, and how many go into one write.
const DUE_BATCH: i64 = 2_000;
pub(crate) const WRITE_BATCH: usize = 250;

pub async fn run(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let Some(_leadership) =
        leadership::lead(&app.pool, LEADER_KEY, "sla-scheduler", &mut shutdown).await
    else {
        return;
    };
    let mut changed = app.notifications.projections();
    // A ticket checked for an instant is not checked again for the same instant until its
    // clock row moves (the projector applies what the check recorded), or a moment passes.
    let mut recently: HashMap<(Uuid, DateTime<Utc>), tokio::time::Instant> = HashMap::new();
    loop {
        if *shutdown.borrow() {
            return;
        }
        recently.retain(|_, when| when.elapsed() < Duration::from_secs(2));
        let exclude: Vec<(Uuid, DateTime<Utc>)> = recently.keys().copied().collect();
        match sla_view::due_clocks(&app.pool, app.time.now(), DUE_BATCH, &exclude).await {
            Ok(due) if !due.is_empty() => {
                let mut seen = HashSet::new();
                let tickets: Vec<Uuid> = due
                    .iter()
                    .map(|(ticket, _)| *ticket)
                    .filter(|ticket| seen.insert(*ticket))
                    .collect();
                check_tickets(&app, &tickets).await;
                let checked = tokio::time::Instant::now();
                recently.extend(due.into_iter().map(|clock| (clock, checked)));
                continue;
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "could not read due SLA clocks"),
        }
        // Time-based automation rules are due on the same clock.
        let next_rule = automation_engine::due::next_due(&app.pool)
            .await
            .ok()
            .flatten();
        if next_rule.is_some_and(|at| at <= app.time.now()) {
            match automation_engine::due::request_due(&app, app.time.now()).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(error) => tracing::warn!(?error, "could not request due automation rules"),
            }
        }
        let next = sla_view::next_check(&app.pool)
            .await
            .ok()
            .flatten()
            .into_iter()
            .chain(next_rule)
            .min();
        let now = app.time.now();
        let wait = next
            .map(|at| (at - now).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(Duration::from_secs(5))
            .clamp(Duration::from_millis(5), Duration::from_secs(5));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = changed.changed() => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Records passed deadlines on `tickets`, a few hundred per write, each batch stamped with the
/// moment it is decided.
async fn check_tickets(app: &Arc<App>, tickets: &[Uuid]) {
    let chunks: Vec<Vec<String>> = tickets
        .chunks(WRITE_BATCH)
        .map(|chunk| chunk.iter().map(Uuid::to_string).collect())
        .collect();
    let batches = futures::stream::iter(chunks.into_iter().map(|ids| {
        let app = app.clone();
        async move {
            let at = app.time.now();
            let command = TicketCommand::CheckSlaDeadlines(CheckSlaDeadlines { at });
            if let Err(error) = app
                .tickets
                .execute_many(&ids, command, system_metadata("sla-scheduler"))
                .await
            {
                tracing::warn!(
                    ?error,
                    tickets = ids.len(),
                    "could not record SLA deadlines"
                );
            }
        }
    }))
    .buffer_unordered(2);
    batches.collect::<Vec<()>>().await;
}
