//! Connections that append commands' events, and do nothing else.
//!
//! sqlx's pool pings every connection as it comes back (a round trip of its own, unconditional
//! in sqlx 0.8 and 0.9), so a command's one INSERT cost two round trips, and the ping's
//! syscalls and wake-ups at both ends were a measurable part of the command load. Appends are
//! one statement each, on connections this module keeps: a connection goes back to the idle
//! list after a statement that PostgreSQL answered (a refused insert included), and is dropped
//! after one that failed on the way (I/O, protocol) or that the server answered by ending the
//! session, so a broken connection is never reused.
//! Waiting for a connection is bounded like the pool's, and answers the same way when the
//! database is gone.
//!
//! Commands that wait for a connection at the same moment are written by one statement in one
//! transaction (group commit, [`Appenders::append`]): a commit's fixed cost — the statement's
//! round trip, executor start-up, transaction bookkeeping, the WAL flush — is paid once per
//! batch, and batches grow by themselves exactly when connections are the bottleneck.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use docket_projections::log::Checkpoint;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// Up to `max` connections for appends, and the commands waiting for one.
pub struct Appenders {
    options: PgConnectOptions,
    idle: Mutex<Vec<PgConnection>>,
    permits: Arc<Semaphore>,
    acquire_timeout: Duration,
    queue: Mutex<Queue>,
}

impl Appenders {
    pub fn new(options: PgConnectOptions, max: usize, acquire_timeout: Duration) -> Self {
        Self {
            options,
            idle: Mutex::new(Vec::with_capacity(max)),
            permits: Arc::new(Semaphore::new(max.max(1))),
            acquire_timeout,
            queue: Mutex::new(Queue::default()),
        }
    }

    /// Commands waiting for a connection.
    pub fn queued(&self) -> usize {
        self.queue().pending.len()
    }

    /// Connections waiting for a statement.
    pub fn idle(&self) -> usize {
        self.idle.lock().map(|idle| idle.len()).unwrap_or_default()
    }

    /// A connection for one statement. Give the statement's outcome to
    /// [`Lease::answered`]; a lease dropped without it (the request was abandoned mid-way)
    /// drops its connection instead of returning it.
    pub async fn lease(self: &Arc<Self>) -> Result<Lease, sqlx::Error> {
        let permit = self.permit().await?;
        self.connect(permit).await
    }

    /// A turn to use a connection, bounded like the pool's wait.
    async fn permit(&self) -> Result<OwnedSemaphorePermit, sqlx::Error> {
        tokio::time::timeout(self.acquire_timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)
    }

    /// An idle connection for the turn, or a new one.
    async fn connect(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> Result<Lease, sqlx::Error> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match idle {
            Some(conn) => conn,
            None => tokio::time::timeout(
                self.acquire_timeout,
                PgConnection::connect_with(&self.options),
            )
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??,
        };
        Ok(Lease {
            owner: self.clone(),
            conn: Some(conn),
            reusable: false,
            _permit: permit,
        })
    }
}

/// One append connection, lent for one statement (or one batch's statements).
pub struct Lease {
    owner: Arc<Appenders>,
    conn: Option<PgConnection>,
    reusable: bool,
    _permit: OwnedSemaphorePermit,
}

impl Lease {
    pub fn conn(&mut self) -> Result<&mut PgConnection, sqlx::Error> {
        self.conn.as_mut().ok_or(sqlx::Error::PoolClosed)
    }

    /// The statement's outcome: the connection is kept if PostgreSQL answered (a refusal is an
    /// answer), dropped if the statement failed on the way or the server is ending the session
    /// (a terminated backend answers with a FATAL error of class 57 before it closes).
    pub fn answered<T>(&mut self, outcome: &Result<T, sqlx::Error>) {
        self.reusable = match outcome {
            Ok(_) => true,
            Err(sqlx::Error::Database(error)) => !error
                .code()
                .is_some_and(|code| code.starts_with("57") || code.starts_with("08")),
            Err(_) => false,
        };
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && self.reusable
            && let Ok(mut idle) = self.owner.idle.lock()
        {
            idle.push(conn);
        }
    }
}

/// One command's events, numbered on from the aggregate's version: written all or none.
pub struct EventRows {
    aggregate_type: &'static str,
    aggregate_id: String,
    sequences: Vec<i64>,
    event_types: Vec<String>,
    event_versions: Vec<String>,
    payloads: Vec<serde_json::Value>,
    metadata: serde_json::Value,
}

impl EventRows {
    /// `events` of one aggregate, numbered on from its version `after`.
    pub fn new<E: cqrs_es::DomainEvent>(
        aggregate_type: &'static str,
        aggregate_id: &str,
        after: i64,
        events: &[E],
        metadata: serde_json::Value,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self {
            aggregate_type,
            aggregate_id: aggregate_id.to_string(),
            sequences: (1..=events.len() as i64).map(|n| after + n).collect(),
            event_types: events.iter().map(|e| e.event_type()).collect(),
            event_versions: events.iter().map(|e| e.event_version()).collect(),
            payloads: events
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<_, _>>()?,
            metadata,
        })
    }

    fn len(&self) -> usize {
        self.sequences.len()
    }
}

/// How an append went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Written; where the command's last event sits in the log.
    Committed(Checkpoint),
    /// Another writer took one of the sequence numbers first; nothing was written.
    Conflict,
}

/// Why an append has no answer. Shared by every command of a batch the failure hit, so that
/// each can answer from it; the write may or may not have happened.
pub type AppendFailure = Arc<sqlx::Error>;

type Reply = oneshot::Sender<Result<Appended, AppendFailure>>;

struct Pending {
    ticket: u64,
    rows: EventRows,
    reply: Reply,
}

/// The commands waiting for a connection, in arrival order.
#[derive(Default)]
struct Queue {
    pending: Vec<Pending>,
    next_ticket: u64,
}

/// Rows one statement writes at most; a larger queue is written by several.
const BATCH_ROWS: usize = 512;

impl Appenders {
    /// Writes one command's events and says where they landed, or that the aggregate moved.
    ///
    /// Commands that wait for a connection at the same time are written together, in one
    /// statement and one commit (group commit): whoever gets a connection takes everything
    /// queued. Each command stays all or nothing: if any of a batch's rows is refused, the
    /// batch writes nothing and each of its commands is written again by a statement of its
    /// own, so only the command that lost its race hears of it. The statement runs in a task
    /// of its own, so a request dropped mid-way (its client went away) cannot leave the other
    /// commands of its batch without an answer.
    pub async fn append(self: &Arc<Self>, rows: EventRows) -> Result<Appended, AppendFailure> {
        let (reply, mut answer) = oneshot::channel();
        let ticket = self.enqueue(rows, reply);
        // A request dropped while its rows wait (its client went away) takes them back: left
        // queued, they would be written whenever the next command came, long after the state
        // they were decided on.
        let _withdraw_if_dropped = WithdrawOnDrop {
            appenders: self,
            ticket,
        };
        loop {
            tokio::select! {
                biased;
                answered = &mut answer => return settled(answered),
                permit = self.permit() => {
                    // No turn in time: if this command is still queued, no statement will
                    // write it and it can answer so; if it is not, one has taken it.
                    let permit = match permit {
                        Ok(permit) => permit,
                        Err(error) if self.withdraw(ticket) => return Err(Arc::new(error)),
                        Err(_) => return settled(answer.await),
                    };
                    let batch = self.take_batch();
                    if batch.is_empty() {
                        // Another command's turn took this one's rows.
                        drop(permit);
                        return settled(answer.await);
                    }
                    match self.connect(permit).await {
                        Ok(lease) => {
                            tokio::spawn(write_batch(lease, batch));
                        }
                        // No connection: the batch (this command's rows among them, or not)
                        // gets the failure; nothing of it was written.
                        Err(error) => {
                            let error = Arc::new(error);
                            for pending in batch {
                                let _ = pending.reply.send(Err(error.clone()));
                            }
                        }
                    }
                }
            }
        }
    }

    /// The queue, even if a thread panicked holding it: its entries stay whole either way.
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn enqueue(&self, rows: EventRows, reply: Reply) -> u64 {
        let mut queue = self.queue();
        let ticket = queue.next_ticket;
        queue.next_ticket += 1;
        queue.pending.push(Pending {
            ticket,
            rows,
            reply,
        });
        ticket
    }

    /// Takes a command out of the queue; false if a statement has already taken it.
    fn withdraw(&self, ticket: u64) -> bool {
        let mut queue = self.queue();
        let before = queue.pending.len();
        queue.pending.retain(|pending| pending.ticket != ticket);
        queue.pending.len() < before
    }

    /// The oldest queued commands, up to [`BATCH_ROWS`] rows (at least one command).
    fn take_batch(&self) -> Vec<Pending> {
        let mut queue = self.queue();
        let mut rows = 0;
        let count = queue
            .pending
            .iter()
            .take_while(|pending| {
                let take = rows == 0 || rows + pending.rows.len() <= BATCH_ROWS;
                rows += pending.rows.len();
                take
            })
            .count();
        queue.pending.drain(..count).collect()
    }
}

struct WithdrawOnDrop<'a> {
    appenders: &'a Appenders,
    ticket: u64,
}

impl Drop for WithdrawOnDrop<'_> {
    fn drop(&mut self) {
        // A no-op once a statement has taken the rows (always so after an answer).
        self.appenders.withdraw(self.ticket);
    }
}

/// A command's answer; a reply dropped unsent (its statement's task died) is a failure.
fn settled(
    answered: Result<Result<Appended, AppendFailure>, oneshot::error::RecvError>,
) -> Result<Appended, AppendFailure> {
    answered.unwrap_or_else(|_| Err(Arc::new(sqlx::Error::WorkerCrashed)))
}

async fn write_batch(mut lease: Lease, batch: Vec<Pending>) {
    let written = match lease.conn() {
        Ok(conn) => insert_events(conn, batch.iter().map(|pending| &pending.rows)).await,
        Err(error) => Err(error),
    };
    lease.answered(&written);
    match written {
        Ok(mut positions) => {
            for pending in batch {
                let key = (
                    pending.rows.aggregate_type.to_string(),
                    pending.rows.aggregate_id.clone(),
                );
                let _ = pending.reply.send(outcome(Ok(positions.remove(&key))));
            }
        }
        // Refused rows (a lost race, or a row the table's checks reject) fail the whole
        // statement: each command is written on its own, to answer for itself.
        Err(sqlx::Error::Database(_)) if batch.len() > 1 && lease.reusable => {
            for pending in batch {
                let alone = match lease.conn() {
                    Ok(conn) => insert_events(conn, std::iter::once(&pending.rows)).await,
                    Err(error) => Err(error),
                };
                lease.answered(&alone);
                let last = alone.map(|positions| positions.into_values().next());
                let _ = pending.reply.send(outcome(last.map_err(Arc::new)));
            }
        }
        Err(error) => {
            let error = Arc::new(error);
            for pending in batch {
                let _ = pending.reply.send(outcome(Err(error.clone())));
            }
        }
    }
}

/// A command's answer from its statement's: where its last event landed, a lost race (the
/// primary key refused a row: 23505), or the failure.
fn outcome(written: Result<Option<Checkpoint>, AppendFailure>) -> Result<Appended, AppendFailure> {
    match written {
        Ok(Some(position)) => Ok(Appended::Committed(position)),
        Ok(None) => Err(Arc::new(sqlx::Error::Protocol(
            "an append wrote no events".into(),
        ))),
        Err(error) => match &*error {
            sqlx::Error::Database(refusal) if refusal.code().as_deref() == Some("23505") => {
                Ok(Appended::Conflict)
            }
            _ => Err(error),
        },
    }
}

/// One statement writing every row of `commands` (all or none); for each aggregate, where its
/// last event landed.
pub(crate) async fn insert_events<'r>(
    conn: &mut PgConnection,
    commands: impl Iterator<Item = &'r EventRows>,
) -> Result<HashMap<(String, String), Checkpoint>, sqlx::Error> {
    let mut types: Vec<&str> = Vec::new();
    let mut ids: Vec<&str> = Vec::new();
    let mut sequences: Vec<i64> = Vec::new();
    let mut event_types: Vec<&str> = Vec::new();
    let mut versions: Vec<&str> = Vec::new();
    let mut payloads: Vec<&serde_json::Value> = Vec::new();
    let mut metadata: Vec<&serde_json::Value> = Vec::new();
    for rows in commands {
        for n in 0..rows.len() {
            types.push(rows.aggregate_type);
            ids.push(&rows.aggregate_id);
            sequences.push(rows.sequences[n]);
            event_types.push(&rows.event_types[n]);
            versions.push(&rows.event_versions[n]);
            payloads.push(&rows.payloads[n]);
            metadata.push(&rows.metadata);
        }
    }
    let written: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[],
                              $6::jsonb[], $7::jsonb[])
         RETURNING aggregate_type, aggregate_id, transaction_id::text::bigint, global_position",
    )
    .bind(&types)
    .bind(&ids)
    .bind(&sequences)
    .bind(&event_types)
    .bind(&versions)
    .bind(&payloads)
    .bind(&metadata)
    .fetch_all(conn)
    .await?;
    let mut positions: HashMap<(String, String), Checkpoint> = HashMap::new();
    for (aggregate_type, aggregate_id, txid, position) in written {
        let checkpoint = Checkpoint { txid, position };
        positions
            .entry((aggregate_type, aggregate_id))
            .and_modify(|last| {
                if last.position < position {
                    *last = checkpoint;
                }
            })
            .or_insert(checkpoint);
    }
    Ok(positions)
}
