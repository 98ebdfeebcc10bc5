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
//!
//! **Wake-ups say which aggregate types were written.** Most followers of the log read a few
//! rare types (accounts, saved searches, SLA configuration); woken by every ticket command, each
//! of them asked the log three questions per commit burst to find nothing, which under the
//! command load was as many round trips as the commands' own. A follower subscribes to its
//! types ([`LogNotifications::events_of`]) and is woken only when one of them is committed here,
//! or announced by another process (whose announcement lists the types), or when the origin of a
//! commit is unknown (the trigger's notifications, a lost connection): then everyone wakes.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::{Notify, broadcast, watch};

use crate::log::Checkpoint;

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
    by_type: Arc<TypedWakes>,
    announcer: Option<Arc<Announcer>>,
    progress: Arc<KnownProgress>,
}

/// How far this process knows each projector to be: the checkpoint its runner here last
/// committed or found stored. A read that waits for its own writes asks this first, and the
/// database only when it is not far enough (another process may have moved the projector).
#[derive(Default)]
struct KnownProgress {
    reached: Mutex<HashMap<&'static str, Checkpoint>>,
}

impl KnownProgress {
    fn record(&self, projector: &'static str, checkpoint: Checkpoint) {
        if let Ok(mut reached) = self.reached.lock() {
            let known = reached.entry(projector).or_insert(checkpoint);
            if *known < checkpoint {
                *known = checkpoint;
            }
        }
    }

    fn get(&self, projector: &str) -> Option<Checkpoint> {
        self.reached.lock().ok()?.get(projector).copied()
    }
}

/// Wake-ups this process owes: to its own waiters at once, to other processes by the sender.
struct Announcer {
    events_tx: watch::Sender<u64>,
    projections_tx: watch::Sender<u64>,
    events_pending: AtomicBool,
    /// The aggregate types committed since the last announcement.
    types_pending: Mutex<BTreeSet<String>>,
    projections_pending: AtomicBool,
    pending: Notify,
}

impl Announcer {
    fn new(events_tx: watch::Sender<u64>, projections_tx: watch::Sender<u64>) -> Self {
        Self {
            events_tx,
            projections_tx,
            events_pending: AtomicBool::new(false),
            types_pending: Mutex::default(),
            projections_pending: AtomicBool::new(false),
            pending: Notify::new(),
        }
    }
}

/// One wake-up per aggregate type, made when first asked for.
#[derive(Default)]
struct TypedWakes {
    senders: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl TypedWakes {
    fn subscribe(&self, aggregate_type: &str) -> Option<watch::Receiver<u64>> {
        let mut senders = self.senders.lock().ok()?;
        Some(
            senders
                .entry(aggregate_type.to_string())
                .or_insert_with(|| watch::channel(0).0)
                .subscribe(),
        )
    }

    fn wake(&self, aggregate_type: &str) {
        if let Ok(senders) = self.senders.lock()
            && let Some(sender) = senders.get(aggregate_type)
        {
            bump(sender);
        }
    }

    fn wake_all(&self) {
        if let Ok(senders) = self.senders.lock() {
            senders.values().for_each(bump);
        }
    }
}

fn bump(sender: &watch::Sender<u64>) {
    sender.send_modify(|n| *n = n.wrapping_add(1));
}

/// Wakes when events of some aggregate types may have been committed.
pub struct EventWake {
    /// Empty: every commit wakes (see `all`).
    typed: Vec<watch::Receiver<u64>>,
    all: watch::Receiver<u64>,
}

impl EventWake {
    /// Resolves at the next wake-up (at once if one came since the last call).
    pub async fn changed(&mut self) {
        if self.typed.is_empty() {
            if self.all.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
            return;
        }
        let waits = self.typed.iter_mut().map(|receiver| {
            Box::pin(async move {
                if receiver.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            })
        });
        futures::future::select_all(waits).await;
    }
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

    /// Wakes when events of one of `aggregate_types` may have been committed (of any type
    /// when the list is empty).
    pub fn events_of(&self, aggregate_types: &[&str]) -> EventWake {
        EventWake {
            typed: aggregate_types
                .iter()
                .filter_map(|t| self.by_type.subscribe(t))
                .collect(),
            all: self.events.clone(),
        }
    }

    /// Announces events of `aggregate_type` this process has just committed (call after the
    /// commit).
    pub fn events_committed(&self, aggregate_type: &str) {
        if let Some(announcer) = &self.announcer {
            bump(&announcer.events_tx);
            self.by_type.wake(aggregate_type);
            if let Ok(mut types) = announcer.types_pending.lock()
                && !types.contains(aggregate_type)
            {
                types.insert(aggregate_type.to_string());
            }
            announcer.events_pending.store(true, Ordering::Release);
            announcer.pending.notify_one();
        }
    }

    /// Announces a projector batch this process has just committed, up to `checkpoint`.
    pub fn projector_reached(&self, projector: &'static str, checkpoint: Checkpoint) {
        self.progress.record(projector, checkpoint);
        self.projector_committed();
    }

    /// Records where `projector` was found to be (its stored checkpoint), without announcing.
    pub fn projector_seen(&self, projector: &'static str, checkpoint: Checkpoint) {
        self.progress.record(projector, checkpoint);
    }

    /// The furthest checkpoint of `projector` this process knows of.
    pub fn projector_known(&self, projector: &str) -> Option<Checkpoint> {
        self.progress.get(projector)
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
            by_type: Arc::default(),
            announcer: None,
            progress: Arc::default(),
        }
    }
}

/// What an announcement from another process says: `<origin> <type>,<type>…`, where the types
/// are those committed since its previous announcement (none for a projector's batch).
fn announcement(origin: &str, types: &BTreeSet<String>) -> String {
    let mut payload = origin.to_string();
    payload.push(' ');
    payload.push_str(&types.iter().cloned().collect::<Vec<_>>().join(","));
    payload
}

/// Whom a notification on the events channel wakes.
#[derive(Debug, PartialEq, Eq)]
enum Heard<'a> {
    /// This process's own announcement: its waiters were woken at the commit.
    Own,
    /// Another process announced commits of these types.
    Types(Vec<&'a str>),
    /// A commit of unknown types (the trigger's notification carries a position).
    Unknown,
}

fn heard<'a>(payload: &'a str, origin: &str) -> Heard<'a> {
    match payload.split_once(' ') {
        Some((sender, _)) if sender == origin => Heard::Own,
        None if payload == origin => Heard::Own,
        Some((sender, types)) if sender.starts_with(ORIGIN_PREFIX) && !types.is_empty() => {
            Heard::Types(types.split(',').collect())
        }
        _ => Heard::Unknown,
    }
}

const ORIGIN_PREFIX: &str = "docket-";

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
    let announcer = Arc::new(Announcer::new(events_tx, projections_tx));
    let by_type = Arc::new(TypedWakes::default());
    // The payload that marks this process's own announcements: its waiters were woken when
    // the commit was made, so hearing it again would only cost every waiter an empty pass.
    let origin = format!("{ORIGIN_PREFIX}{}", uuid::Uuid::now_v7());
    tokio::spawn(announce(
        (*pool.connect_options()).clone(),
        announcer.clone(),
        origin.clone(),
        shutdown.clone(),
    ));
    let listening = announcer.clone();
    let typed = by_type.clone();
    tokio::spawn(async move {
        let announcer = listening;
        let wake_everyone = || {
            bump(&announcer.events_tx);
            typed.wake_all();
            bump(&announcer.projections_tx);
        };
        loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    if *shutdown.borrow() { break; }
                }
                received = listener.try_recv() => match received {
                    Ok(Some(notification)) => {
                        let channel = notification.channel();
                        let payload = notification.payload();
                        if channel == EPHEMERAL_CHANNEL {
                            let _ = ephemeral_tx.send(payload.to_string());
                        } else if channel == EVENTS_CHANNEL {
                            match heard(payload, &origin) {
                                Heard::Own => {}
                                Heard::Types(types) => {
                                    bump(&announcer.events_tx);
                                    types.into_iter().for_each(|t| typed.wake(t));
                                }
                                Heard::Unknown => {
                                    bump(&announcer.events_tx);
                                    typed.wake_all();
                                }
                            }
                        } else if heard(payload, &origin) != Heard::Own {
                            bump(&announcer.projections_tx);
                        }
                    }
                    Ok(None) => {
                        // The connection dropped and notifications may have been lost: wake
                        // everyone so they look for themselves. `try_recv` reconnects next time.
                        tracing::warn!("notification connection lost; reconnecting");
                        wake_everyone();
                    }
                    Err(error) => {
                        tracing::warn!(%error, "notification listener failed; retrying");
                        wake_everyone();
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
        by_type,
        announcer: Some(announcer),
        progress: Arc::default(),
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
        let types = announcer
            .types_pending
            .lock()
            .map(|mut types| std::mem::take(&mut *types))
            .unwrap_or_default();
        let events_payload = announcement(&origin, &types);
        // Bounded, so a connection that hangs rather than fails cannot stall the announcements.
        let sent = tokio::time::timeout(ANNOUNCE_TIMEOUT, async {
            let mut conn = match connection.take() {
                Some(conn) => conn,
                None => PgConnection::connect_with(&options).await?,
            };
            sqlx::query(
                "SELECT CASE WHEN $1 THEN pg_notify($3, $6) END,
                        CASE WHEN $2 THEN pg_notify($4, $5) END",
            )
            .bind(events)
            .bind(projections)
            .bind(EVENTS_CHANNEL)
            .bind(PROJECTIONS_CHANNEL)
            .bind(&origin)
            .bind(&events_payload)
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
                    if let Ok(mut pending) = announcer.types_pending.lock() {
                        pending.extend(types);
                    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "docket-0190";

    #[test]
    fn an_announcement_names_its_sender_and_the_types_it_committed() {
        let types: BTreeSet<String> = ["user".to_string(), "ticket".to_string()].into();
        let payload = announcement(ORIGIN, &types);
        assert_eq!(payload, "docket-0190 ticket,user");
        assert_eq!(heard(&payload, ORIGIN), Heard::Own);
        assert_eq!(
            heard(&payload, "docket-other"),
            Heard::Types(vec!["ticket", "user"])
        );
    }

    #[test]
    fn a_commit_of_unknown_types_wakes_everyone() {
        // The trigger's payload is the event's position; an announcement with no types is a
        // projector's, or from a build that did not list them.
        assert_eq!(heard("1234", ORIGIN), Heard::Unknown);
        assert_eq!(heard("docket-other", ORIGIN), Heard::Unknown);
        assert_eq!(heard("docket-other ", ORIGIN), Heard::Unknown);
        assert_eq!(heard(ORIGIN, ORIGIN), Heard::Own);
    }

    #[test]
    fn known_progress_only_moves_forward() {
        let notifications = LogNotifications::disconnected();
        let at = |position| Checkpoint {
            txid: position,
            position,
        };
        assert_eq!(notifications.projector_known("tickets"), None);
        notifications.projector_seen("tickets", at(5));
        notifications.projector_reached("tickets", at(3));
        assert_eq!(notifications.projector_known("tickets"), Some(at(5)));
        notifications.projector_reached("tickets", at(8));
        assert_eq!(notifications.projector_known("tickets"), Some(at(8)));
        assert_eq!(notifications.projector_known("users"), None);
    }

    #[tokio::test]
    async fn a_follower_of_some_types_sleeps_through_commits_of_others() {
        let (events_tx, events) = watch::channel(0);
        let (projections_tx, projections) = watch::channel(0);
        let notifications = LogNotifications {
            events,
            projections,
            ephemeral: broadcast::channel(1).0,
            by_type: Arc::default(),
            announcer: Some(Arc::new(Announcer::new(events_tx, projections_tx))),
            progress: Arc::default(),
        };
        let mut users = notifications.events_of(&["user"]);
        let mut everything = notifications.events_of(&[]);
        notifications.events_committed("ticket");
        let quick = Duration::from_millis(50);
        assert!(
            tokio::time::timeout(quick, users.changed()).await.is_err(),
            "a ticket woke the follower of users"
        );
        assert!(
            tokio::time::timeout(quick, everything.changed())
                .await
                .is_ok()
        );
        notifications.events_committed("user");
        assert!(tokio::time::timeout(quick, users.changed()).await.is_ok());
    }
}
