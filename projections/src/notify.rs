//! PostgreSQL notifications as in-process wake-ups.
//!
//! One listening connection per process. The trigger on `events` notifies `docket_events` at
//! every commit; projectors notify `docket_projections` when they commit a batch. Notifications
//! are hints: they can be lost when the connection drops, so every waiter also polls.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{broadcast, watch};

pub const EVENTS_CHANNEL: &str = "docket_events";
pub const PROJECTIONS_CHANNEL: &str = "docket_projections";
/// Messages that pass between clients without being stored (typing, presence).
pub const EPHEMERAL_CHANNEL: &str = "docket_ephemeral";

/// Receivers for the wake-ups. Cheap to clone.
#[derive(Clone)]
pub struct LogNotifications {
    events: watch::Receiver<u64>,
    projections: watch::Receiver<u64>,
    positions: broadcast::Sender<i64>,
    ephemeral: broadcast::Sender<String>,
}

impl LogNotifications {
    /// Changes whenever new events may have been committed.
    pub fn events(&self) -> watch::Receiver<u64> {
        self.events.clone()
    }

    /// Changes whenever a projector (in any process) may have committed a batch.
    pub fn projections(&self) -> watch::Receiver<u64> {
        self.projections.clone()
    }

    /// The global position of each committed event, as notified (best effort).
    pub fn positions(&self) -> broadcast::Receiver<i64> {
        self.positions.subscribe()
    }

    /// Ephemeral messages published by any process (payloads of `docket_ephemeral`).
    pub fn ephemeral(&self) -> broadcast::Receiver<String> {
        self.ephemeral.subscribe()
    }

    /// Wake-ups that never fire on their own: for tools and tests that only poll.
    pub fn disconnected() -> Self {
        let (_, events) = watch::channel(0);
        let (_, projections) = watch::channel(0);
        let (positions, _) = broadcast::channel(1);
        let (ephemeral, _) = broadcast::channel(1);
        Self {
            events,
            projections,
            positions,
            ephemeral,
        }
    }
}

/// Starts listening; the task ends when `shutdown` changes to `true`.
pub async fn listen(
    pool: &PgPool,
    mut shutdown: watch::Receiver<bool>,
) -> Result<LogNotifications, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener
        .listen_all([EVENTS_CHANNEL, PROJECTIONS_CHANNEL, EPHEMERAL_CHANNEL])
        .await?;
    let (events_tx, events) = watch::channel(0u64);
    let (projections_tx, projections) = watch::channel(0u64);
    let (positions, _) = broadcast::channel(4096);
    let positions_tx = positions.clone();
    let (ephemeral, _) = broadcast::channel(1024);
    let ephemeral_tx = ephemeral.clone();
    tokio::spawn(async move {
        let bump = |sender: &watch::Sender<u64>| sender.send_modify(|n| *n = n.wrapping_add(1));
        loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    if *shutdown.borrow() { break; }
                }
                received = listener.try_recv() => match received {
                    Ok(Some(notification)) => {
                        if notification.channel() == EVENTS_CHANNEL {
                            if let Ok(position) = notification.payload().parse::<i64>() {
                                let _ = positions_tx.send(position);
                            }
                            bump(&events_tx);
                        } else if notification.channel() == EPHEMERAL_CHANNEL {
                            let _ = ephemeral_tx.send(notification.payload().to_string());
                        } else {
                            bump(&projections_tx);
                        }
                    }
                    Ok(None) => {
                        // The connection dropped and notifications may have been lost: wake
                        // everyone so they look for themselves. `try_recv` reconnects next time.
                        tracing::warn!("notification connection lost; reconnecting");
                        bump(&events_tx);
                        bump(&projections_tx);
                    }
                    Err(error) => {
                        tracing::warn!(%error, "notification listener failed; retrying");
                        bump(&events_tx);
                        bump(&projections_tx);
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        }
    });
    Ok(LogNotifications {
        events,
        projections,
        positions,
        ephemeral,
    })
}
