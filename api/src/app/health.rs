//! How the process is doing: every projector's lag and failure (for `/ready`), and the figures
//! `/metrics` reports beside the ones recorded as things happen.

use docket_projections::registry::{PROJECTORS, Projector};
use docket_projections::{ProjectorStatus, runtime, sla, workforce};

use crate::app::alerts::alerter::ALERTER;
use crate::app::outbound::dispatch::WEBHOOK_DISPATCH;
use crate::app::outbound::notifier::NOTIFIER;
use crate::app::{App, AppError};

/// A projector is "behind" (and the server not ready) past this many unapplied events.
pub const MAX_READY_LAG: i64 = 10_000;

/// Every projector of the build, and every subscriber that runs like one (the outbound
/// dispatcher), with its checkpoint, lag and failure.
pub async fn projectors(app: &App) -> Result<Vec<ProjectorStatus>, AppError> {
    Ok(runtime::statuses(&app.pool, &subscribers()).await?)
}

fn subscribers() -> Vec<&'static Projector> {
    PROJECTORS
        .iter()
        .copied()
        .chain([
            &WEBHOOK_DISPATCH,
            &NOTIFIER,
            &ALERTER,
            &crate::app::automation_engine::AUTOMATION,
        ])
        .collect()
}

/// Ready: no projector is stopped or far behind.
pub fn healthy(statuses: &[ProjectorStatus]) -> bool {
    statuses
        .iter()
        .all(|s| s.failure.is_none() && s.lag <= MAX_READY_LAG)
}

/// The Prometheus text: the projectors, the SLA clocks and the queue as they are now, and
/// everything counted since the process started.
pub async fn metrics(app: &App) -> Result<String, AppError> {
    for (projector, status) in subscribers().iter().zip(projectors(app).await?) {
        app.metrics.projector(
            projector.name,
            status.lag,
            status.failure.is_some(),
            status.events_applied,
        );
    }
    let (running, pending) = sla::clock_counts(&app.pool).await?;
    app.metrics.sla_clocks(running, pending);
    app.metrics
        .routing_queue(workforce::queue_length(&app.pool).await?);
    Ok(app.metrics.render())
}
