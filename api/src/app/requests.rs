//! Carrying out what a log subscriber decided: subscribers that must act outside their own
//! transaction (raise an alert, run a rule's actions) write requests with their checkpoint, and
//! a loop in every process drains them. The loop reads its table when its subscriber moved in
//! this process, when its bell rings (another writer of requests in this process), and every
//! `poll` for what other processes wrote.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use docket_projections::registry::Projector;
use tokio::sync::{Notify, watch};

use crate::app::{App, AppError};

/// Runs `drain` until `shutdown`, as the module says; a failed pass is logged as `what`.
pub async fn follow<F, Fut>(
    app: Arc<App>,
    subscriber: &'static Projector,
    bell: Option<fn(&App) -> &Notify>,
    poll: Duration,
    what: &'static str,
    mut shutdown: watch::Receiver<bool>,
    drain: F,
) where
    F: Fn(Arc<App>) -> Fut,
    Fut: Future<Output = Result<(), AppError>>,
{
    // Woken by any projector's progress; most wake-ups are other projectors' and read nothing.
    let mut progress = app.notifications.projections();
    let mut seen = None;
    let mut polled: Option<Instant> = None;
    let mut rung = false;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let known = app.notifications.projector_known(subscriber.name);
        if rung || polled.is_none_or(|at| known != seen || at.elapsed() >= poll) {
            seen = known;
            rung = false;
            polled = Some(Instant::now());
            if let Err(error) = drain(app.clone()).await {
                tracing::warn!(?error, "could not {what}");
            }
        }
        let rang = async {
            match bell {
                Some(bell) => bell(&app).notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = rang => rung = true,
            _ = tokio::time::sleep(poll) => {}
            _ = progress.changed() => {}
            _ = shutdown.changed() => {}
        }
    }
}
