//! PostgreSQL notifications as in-process wake-ups.
//!
//! One listening connection per process. Notifications are hints: they can be lost when the
//! connection drops, so every waiter also polls.
//!
//! **Why this process notifies after its commits, not inside them.** PostgreSQL serialises the
//! commits of every transaction that has called `NOTIFY` (a cluster-wide lock is taken before
//! the commit record is flushed and released after), so a notifying transaction cannot share
//! a disk flush with others: measured with pgbench at 32 clients, a one-row INSERT commits
//! 9,800/s alone and 1,440/s with a `pg_notify` in the same transaction. So the server's own
//! writers commit without notifying and then call [`LogNotifications::events_committed`] (or
//! [`LogNotifications::projector_committed`]): waiters in this process are woken at once, and
//! one sender task tells the other processes with a single `pg_notify` per burst of commits,
//! committed without waiting for the disk (the commits it announces are already durable).
//! Writers outside the server (tools, `psql`, tests writing the log directly) still notify from
//! the trigger on `events`, which skips only sessions that set `docket.notify_after_commit`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::{Notify, broadcast, watch};

pub const EVENTS_CHANNEL: &str = "docket_events";
pub const PROJECTIONS_CHANNEL: &str = "docket_projections";
/// Messages that pass between clients without being stored (typing, presence).
pub const EPHEMERAL_CHANNEL: &str = "docket_ephemeral";

/// The session setting that tells the trigger on `events` that this session's process notifies
/// after commit (see the module documentation).
pub const NOTIFY_AFTER_COMMIT_SETTING: &str = "docket.notify_after_commit";

/// Connection options for a pool whose writers call [`LogNotifications::events_committed`]
/// after committing events, so the trigger need not notify inside their transactions.
pub fn notifying_after_commit(options: PgConnectOptions) -> PgConnectOptions {
    options.options([(NOTIFY_AFTER_COMMIT_SETTING, "on")])
}

/// Receivers for the wake-ups, and the way this process announces its own commits. Cheap to
/// clone.
#[derive(Clone)]
pub struct LogNotifications {
    events: watch::Receiver<u64>,
    projections: watch::Receiver<u64>,
    ephemeral: broadcast::Sender<String>,
    announcer: Option<Arc<Announcer>>,
}

/// Wake-ups this process owes: to its own waiters at once, to other processes by the sender.
struct Announcer {
    events_tx: watch::Sender<u64>,
    projections_tx: watch::Sender<u64>,
    events_pending: AtomicBool,
    projections_pending: AtomicBool,
    pending: Notify,
}

fn bump(sender: &watch::Sender<u64>) {
    sender.send_modify(|n| *n = n.wrapping_add(1));
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

    /// Ephemeral messages published by any process (payloads of `docket_ephemeral`).
    pub fn ephemeral(&self) -> broadcast::Receiver<String> {
        self.ephemeral.subscribe()
    }

    /// Announces events this process has just committed (call after the commit).
    pub fn events_committed(&self) {
        if let Some(announcer) = &self.announcer {
            bump(&announcer.events_tx);
            announcer.events_pending.store(true, Ordering::Release);
            announcer.pending.notify_one();
        }
    }

    /// Announces a projector batch this process has just committed.
    pub fn projector_committed(&self) {
        if let Some(announcer) = &self.announcer {
            bump(&announcer.projections_tx);
            announcer.projections_pending.store(true, Ordering::Release);
            announcer.pending.notify_one();
        }
    }

    /// Wake-ups that never fire on their own: for tools and tests that only poll.
    pub fn disconnected() -> Self {
        let (_, events) = watch::channel(0);
        let (_, projections) = watch::channel(0);
        let (ephemeral, _) = broadcast::channel(1);
        Self {
            events,
            projections,
            ephemeral,
            announcer: None,
        }
    }
}

/// Starts listening, and the task that announces this process's commits to the others. Both
/// end when `shutdown` changes to `true`.
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
    let (ephemeral, _) = broadcast::channel(1024);
    let ephemeral_tx = ephemeral.clone();
    let announcer = Arc::new(Announcer {
        events_tx,
        projections_tx,
        events_pending: AtomicBool::new(false),
        projections_pending: AtomicBool::new(false),
        pending: Notify::new(),
    });
    // The payload that marks this process's own announcements: its waiters were woken when
    // the commit was made, so hearing it again would only cost every waiter an empty pass.
    let origin = format!("docket-{}", uuid::Uuid::now_v7());
    tokio::spawn(announce(
        (*pool.connect_options()).clone(),
        announcer.clone(),
        origin.clone(),
        shutdown.clone(),
    ));
    let listening = announcer.clone();
    tokio::spawn(async move {
        let announcer = listening;
        loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    if *shutdown.borrow() { break; }
                }
                received = listener.try_recv() => match received {
                    Ok(Some(notification)) => {
                        let channel = notification.channel();
                        if channel == EPHEMERAL_CHANNEL {
                            let _ = ephemeral_tx.send(notification.payload().to_string());
                        } else if notification.payload() == origin {
                            // Our own announcement.
                        } else if channel == EVENTS_CHANNEL {
                            bump(&announcer.events_tx);
                        } else {
                            bump(&announcer.projections_tx);
                        }
                    }
                    Ok(None) => {
                        // The connection dropped and notifications may have been lost: wake
                        // everyone so they look for themselves. `try_recv` reconnects next time.
                        tracing::warn!("notification connection lost; reconnecting");
                        bump(&announcer.events_tx);
                        bump(&announcer.projections_tx);
                    }
                    Err(error) => {
                        tracing::warn!(%error, "notification listener failed; retrying");
                        bump(&announcer.events_tx);
                        bump(&announcer.projections_tx);
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        }
    });
    Ok(LogNotifications {
        events,
        projections,
        ephemeral,
        announcer: Some(announcer),
    })
}

/// How long one announcement (with its connection, if it needs a new one) may take.
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(5);

/// Tells other processes about this one's commits: one `pg_notify` statement per burst (what
/// piles up while the previous statement is on its way is sent together), on a connection of
/// its own whose commits do not wait for the disk.
async fn announce(
    options: PgConnectOptions,
    announcer: Arc<Announcer>,
    origin: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let options = options.options([("synchronous_commit", "off")]);
    let mut connection: Option<PgConnection> = None;
    loop {
        tokio::select! {
            _ = announcer.pending.notified() => {}
            _ = shutdown.changed() => {
                if *shutdown.borrow() { break; }
                continue;
            }
        }
        let events = announcer.events_pending.swap(false, Ordering::AcqRel);
        let projections = announcer.projections_pending.swap(false, Ordering::AcqRel);
        if !events && !projections {
            continue;
        }
        // Bounded, so a connection that hangs rather than fails cannot stall the announcements.
        let sent = tokio::time::timeout(ANNOUNCE_TIMEOUT, async {
            let mut conn = match connection.take() {
                Some(conn) => conn,
                None => PgConnection::connect_with(&options).await?,
            };
            sqlx::query(
                "SELECT CASE WHEN $1 THEN pg_notify($3, $5) END,
                        CASE WHEN $2 THEN pg_notify($4, $5) END",
            )
            .bind(events)
            .bind(projections)
            .bind(EVENTS_CHANNEL)
            .bind(PROJECTIONS_CHANNEL)
            .bind(&origin)
            .execute(&mut conn)
            .await?;
            Ok::<_, sqlx::Error>(conn)
        })
        .await
        .unwrap_or_else(|_| {
            Err(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no answer within the announcement timeout",
            )))
        });
        match sent {
            Ok(conn) => connection = Some(conn),
            Err(error) => {
                // Other processes will find the commits by polling; try again with the next burst,
                // on a fresh connection, and keep what was owed.
                tracing::warn!(%error, "announcing commits to other processes failed");
                if events {
                    announcer.events_pending.store(true, Ordering::Release);
                }
                if projections {
                    announcer.projections_pending.store(true, Ordering::Release);
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = shutdown.changed() => {}
                }
                announcer.pending.notify_one();
            }
        }
    }
}
