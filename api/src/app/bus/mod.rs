//! Executing commands against the event store, with optimistic concurrency made explicit
//! (DESIGN.md decision 7).
//!
//! cqrs-es's `CqrsFramework::execute` returns nothing and gives up on the first version
//! conflict. Here the aggregate is loaded, decides, and its events are committed; if another
//! writer got there first (the primary key on `(aggregate_type, aggregate_id, sequence)` refuses
//! the insert) the command is decided again on the fresh state, a bounded number of times, so
//! concurrent writers never lose an update and rarely see a 409. A client that sent `If-Match`
//! gets 412 instead of a silent retry on state it has not seen.

use std::marker::PhantomData;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use docket_projections::log::{Checkpoint, EventMetadata};
use docket_projections::notify::LogNotifications;
use rand::Rng;
use serde_json::value::RawValue;
use sqlx::PgPool;
use sqlx::types::Json;

use crate::app::consistency::OwnWrites;
use crate::app::error::AppError;
use crate::app::metrics::Metrics;

pub mod appenders;

use appenders::{Appended, Appenders, EventRows, insert_events};

/// How many times a command is decided again after losing a race, before answering 409.
pub const MAX_ATTEMPTS: u32 = 12;

/// The result of a command that was accepted.
#[derive(Debug)]
pub struct Committed<A: Aggregate> {
    /// The aggregate's state after the command.
    pub aggregate: A,
    /// Its version: the sequence of its last event (unchanged if the command was a no-op).
    pub version: i64,
    /// Where its last event sits in the log; `None` when nothing was written.
    pub position: Option<Checkpoint>,
    /// The events written.
    pub events: Vec<A::Event>,
}

/// Why a command was not accepted.
#[derive(Debug)]
pub enum CommandError<E> {
    /// The domain refused it.
    Rejected(E),
    /// `If-Match` named a version that is no longer current.
    VersionMismatch { current: i64 },
    /// It lost the race [`MAX_ATTEMPTS`] times.
    Conflict,
    /// The store failed.
    Store(AppError),
}

/// Commands on one aggregate in one process queue behind each other instead of racing: a
/// striped set of locks keyed by aggregate id. Races between processes remain, and are retried.
const LOCK_STRIPES: usize = 1024;

pub struct CommandBus<A: Aggregate> {
    pool: PgPool,
    appenders: std::sync::Arc<Appenders>,
    metrics: Metrics,
    notifications: LogNotifications,
    own_writes: std::sync::Arc<OwnWrites>,
    stripes: Vec<tokio::sync::Mutex<()>>,
    remembered: Remembered<A>,
    _aggregate: PhantomData<A>,
}

/// Aggregates this process has recently loaded or written, with their versions: the most
/// recently used `capacity` of them.
///
/// A command decided on a remembered state cannot lose an update: its events are written after
/// the remembered version, and if anyone (another process, a tool) has written since, the
/// primary key refuses the write and the command is decided again on the state loaded from the
/// log. What the log is not asked for is the state itself, which for a ticket with a long
/// history was most of a command's reading (its every event, on every command). A state that
/// makes the domain refuse the command, or makes it a no-op, or contradicts `If-Match`, is
/// loaded again before that answer is given, since only the log can say it is current.
///
/// Readers that need no write to validate them ([`CommandBus::load_recent`]) say how old a
/// remembered state they accept.
struct Remembered<A> {
    entries: Mutex<hashlink::LruCache<String, Entry<A>>>,
    capacity: usize,
}

#[derive(Clone)]
struct Entry<A> {
    aggregate: A,
    version: i64,
    /// When the log last confirmed this was the aggregate's state (a load or our own write).
    confirmed_at: Instant,
}

impl<A> Remembered<A> {
    fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(hashlink::LruCache::new(capacity.max(1))),
            capacity,
        }
    }
}

impl<A: Clone> Remembered<A> {
    fn get(&self, aggregate_id: &str) -> Option<Entry<A>> {
        if self.capacity == 0 {
            return None;
        }
        let mut entries = self.entries.lock().ok()?;
        entries.get(aggregate_id).cloned()
    }

    fn put(&self, aggregate_id: &str, aggregate: A, version: i64, confirmed_at: Instant) {
        // An aggregate with no events is not remembered: it is about to be created, perhaps
        // by another process.
        if self.capacity == 0 || version == 0 {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            // A load that began before this process wrote a newer version must not replace it.
            if entries
                .get(aggregate_id)
                .is_some_and(|known| known.version > version)
            {
                return;
            }
            entries.insert(
                aggregate_id.to_string(),
                Entry {
                    aggregate,
                    version,
                    confirmed_at,
                },
            );
        }
    }

    fn forget(&self, aggregate_id: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(aggregate_id);
        }
    }
}

fn stripe_of(aggregate_id: &str) -> usize {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    aggregate_id.hash(&mut hasher);
    (hasher.finish() % LOCK_STRIPES as u64) as usize
}

/// What every bus of a process is made with.
#[derive(Clone)]
pub struct BusParts {
    /// Must be connected with [`docket_projections::notify::notifying_after_commit`]: a bus
    /// announces its commits itself, through `notifications`.
    pub pool: PgPool,
    pub metrics: Metrics,
    pub notifications: LogNotifications,
    /// How many aggregates each bus remembers (0: none; every command loads).
    pub remembered: usize,
    /// The connections every bus appends events on.
    pub appenders: std::sync::Arc<Appenders>,
    /// Where each person's newest writes are recorded, for their reads.
    pub own_writes: std::sync::Arc<OwnWrites>,
}

impl BusParts {
    pub fn bus<A: Aggregate>(&self) -> CommandBus<A> {
        CommandBus {
            pool: self.pool.clone(),
            appenders: self.appenders.clone(),
            metrics: self.metrics.clone(),
            notifications: self.notifications.clone(),
            own_writes: self.own_writes.clone(),
            stripes: (0..LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            remembered: Remembered::new(self.remembered),
            _aggregate: PhantomData,
        }
    }
}

impl<A> CommandBus<A>
where
    A: Aggregate<Services = ()> + Clone,
    A::Command: Clone,
{
    /// The aggregate's state as this process last saw it, if the log confirmed it less than
    /// `max_age` ago; otherwise as the log has it now.
    pub async fn load_recent(
        &self,
        aggregate_id: &str,
        max_age: Duration,
    ) -> Result<(A, i64), AppError> {
        if let Some(entry) = self.remembered.get(aggregate_id)
            && entry.confirmed_at.elapsed() < max_age
        {
            return Ok((entry.aggregate, entry.version));
        }
        self.load(aggregate_id).await
    }

    /// The current state and version of an aggregate, straight from the log.
    ///
    /// The same rows and fold as postgres-es's `load_aggregate`, but each payload is decoded
    /// from its JSON text straight into the event, not through a `serde_json::Value` per event.
    pub async fn load(&self, aggregate_id: &str) -> Result<(A, i64), AppError> {
        let asked_at = Instant::now();
        let rows: Vec<(i64, Json<Box<RawValue>>)> = sqlx::query_as(
            "SELECT sequence, payload FROM events
              WHERE aggregate_type = $1 AND aggregate_id = $2
              ORDER BY sequence",
        )
        .bind(A::TYPE)
        .bind(aggregate_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| AppError::from_database(&error))?;
        let mut aggregate = A::default();
        let mut version = 0;
        for (sequence, Json(payload)) in rows {
            let event: A::Event =
                serde_json::from_str(payload.get()).map_err(AppError::internal)?;
            aggregate.apply(event);
            version = sequence;
        }
        self.remembered
            .put(aggregate_id, aggregate.clone(), version, asked_at);
        Ok((aggregate, version))
    }

    /// Decides and commits `command`, retrying lost races.
    ///
    /// Its errors are the caller's (a refusal, a stale `If-Match`) or were logged where they
    /// arose (a store failure, by [`AppError::internal`]), so the span records them at debug.
    #[tracing::instrument(
        skip_all,
        fields(aggregate = A::TYPE, aggregate_id, attempts),
        err(Debug, level = "debug")
    )]
    pub async fn execute(
        &self,
        aggregate_id: &str,
        expected_version: Option<i64>,
        command: A::Command,
        metadata: EventMetadata,
    ) -> Result<Committed<A>, CommandError<A::Error>>
    where
        A::Error: std::fmt::Debug,
    {
        tracing::Span::current().record("aggregate_id", aggregate_id);
        // Whose write this is: their next reads wait until the read models include it.
        let writer = metadata
            .actor_id
            .as_deref()
            .and_then(|id| uuid::Uuid::parse_str(id).ok());
        let metadata = metadata.into_map();
        let _turn = self.stripes[stripe_of(aggregate_id)].lock().await;
        // The first attempt may decide on the remembered state; any answer that state alone
        // cannot justify is decided again on the state loaded from the log.
        let mut may_remember = true;
        for attempt in 1..=MAX_ATTEMPTS {
            // A command that expects no events yet (a create, whose id was just made) is decided
            // on the empty aggregate without reading the log: if it does exist, the append
            // conflicts, and the next attempt loads it, as for any remembered state.
            let remembered = may_remember
                .then(|| {
                    self.remembered.get(aggregate_id).or_else(|| {
                        (expected_version == Some(0)).then(|| Entry {
                            aggregate: A::default(),
                            version: 0,
                            confirmed_at: Instant::now(),
                        })
                    })
                })
                .flatten();
            may_remember = false;
            let from_memory = remembered.is_some();
            let (mut aggregate, current) = match remembered {
                Some(entry) => (entry.aggregate, entry.version),
                None => self.load(aggregate_id).await.map_err(CommandError::Store)?,
            };
            if expected_version.is_some_and(|expected| expected != current) {
                if from_memory {
                    continue;
                }
                return Err(CommandError::VersionMismatch { current });
            }
            let sink: EventSink<A> = EventSink::default();
            let decided = aggregate.handle(command.clone(), &(), &sink).await;
            if let Err(rejection) = decided {
                if from_memory {
                    continue;
                }
                return Err(CommandError::Rejected(rejection));
            }
            let events = sink.collect().await;
            let after = aggregate.clone();
            if events.is_empty() {
                if from_memory {
                    continue;
                }
                return Ok(Committed {
                    aggregate: after,
                    version: current,
                    position: None,
                    events,
                });
            }
            let written_at = Instant::now();
            match self.append(aggregate_id, current, &events, &metadata).await {
                Ok(Appended::Committed(position)) => {
                    self.notifications.events_committed(A::TYPE);
                    self.metrics.command_committed(A::TYPE);
                    if let Some(writer) = writer {
                        self.own_writes.record(writer, A::TYPE, position);
                    }
                    tracing::Span::current().record("attempts", attempt);
                    let version = current + events.len() as i64;
                    self.remembered
                        .put(aggregate_id, after.clone(), version, written_at);
                    return Ok(Committed {
                        aggregate: after,
                        version,
                        position: Some(position),
                        events,
                    });
                }
                Ok(Appended::Conflict) => {
                    self.remembered.forget(aggregate_id);
                    self.metrics.command_conflicted(A::TYPE);
                    if from_memory {
                        // Someone else wrote since this process last looked: load and decide
                        // again at once; there is no race to back off from.
                        continue;
                    }
                    // Back off a little, with jitter, so racing writers spread out.
                    let ceiling = 2u64.saturating_pow(attempt.min(6)).max(2);
                    let pause = rand::thread_rng().gen_range(1..=ceiling);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                Err(error) => {
                    // The write may or may not have happened: trust only the log next time.
                    self.remembered.forget(aggregate_id);
                    return Err(CommandError::Store(error));
                }
            }
        }
        self.metrics.command_gave_up(A::TYPE);
        Err(CommandError::Conflict)
    }
}

impl<A> CommandBus<A>
where
    A: Aggregate,
{
    /// Writes a command's events after version `current`, in one statement (atomic without a
    /// transaction around it) that also returns where they landed. The primary key on
    /// `(aggregate_type, aggregate_id, sequence)` refuses the write if the aggregate moved.
    async fn append(
        &self,
        aggregate_id: &str,
        current: i64,
        events: &[A::Event],
        metadata: &std::collections::HashMap<String, String>,
    ) -> Result<Appended, AppError> {
        let stored_metadata = serde_json::to_value(metadata).map_err(AppError::internal)?;
        let rows = EventRows::new(A::TYPE, aggregate_id, current, events, stored_metadata)
            .map_err(AppError::internal)?;
        // On a connection of the appenders', which is not pinged on its way back, together
        // with whatever other commands are waiting for one.
        self.appenders
            .append(rows)
            .await
            .map_err(|failure| AppError::from_database(&failure))
    }
}

/// What [`CommandBus::execute_many`] did.
#[derive(Debug, Default)]
pub struct BulkOutcome {
    /// Aggregates that recorded events.
    pub changed: usize,
    /// Events written.
    pub events: usize,
}

impl<A> CommandBus<A>
where
    A: Aggregate<Services = ()> + Clone + Default,
    A::Command: Clone,
    A::Error: std::fmt::Debug,
{
    /// Decides the same command for each of many aggregates and commits all their events in one
    /// statement: the background services (deadlines, policy changes) act on thousands of
    /// tickets at once, and one round trip per ticket would make them late. If any aggregate
    /// moved meanwhile (the primary key refuses the insert), nothing of the batch is written
    /// and each aggregate goes through [`execute`](Self::execute) with its retries instead.
    /// Aggregates that refuse the command are skipped and logged.
    pub async fn execute_many(
        &self,
        aggregate_ids: &[String],
        command: A::Command,
        metadata: EventMetadata,
    ) -> Result<BulkOutcome, AppError> {
        if aggregate_ids.is_empty() {
            return Ok(BulkOutcome::default());
        }
        let rows: Vec<(String, i64, Json<Box<RawValue>>)> = sqlx::query_as(
            "SELECT aggregate_id, sequence, payload FROM events
              WHERE aggregate_type = $1 AND aggregate_id = ANY($2)
              ORDER BY aggregate_id, sequence",
        )
        .bind(A::TYPE)
        .bind(aggregate_ids)
        .fetch_all(&self.pool)
        .await
        .map_err(AppError::database)?;
        let mut loaded: std::collections::HashMap<String, (A, i64)> =
            std::collections::HashMap::with_capacity(aggregate_ids.len());
        for (aggregate_id, sequence, Json(payload)) in rows {
            let event: A::Event =
                serde_json::from_str(payload.get()).map_err(AppError::internal)?;
            let (aggregate, version) = loaded.entry(aggregate_id).or_default();
            aggregate.apply(event);
            *version = sequence;
        }
        let stored_metadata =
            serde_json::to_value(metadata.clone().into_map()).map_err(AppError::internal)?;
        let mut commands: Vec<EventRows> = Vec::new();
        let mut outcome = BulkOutcome::default();
        for aggregate_id in aggregate_ids {
            let Some((aggregate, version)) = loaded.get(aggregate_id) else {
                continue; // no such aggregate
            };
            let sink: EventSink<A> = EventSink::default();
            if let Err(error) = aggregate.clone().handle(command.clone(), &(), &sink).await {
                tracing::debug!(aggregate_id, ?error, "refused in a bulk command");
                continue;
            }
            let events = sink.collect().await;
            if events.is_empty() {
                continue;
            }
            outcome.changed += 1;
            outcome.events += events.len();
            commands.push(
                EventRows::new(
                    A::TYPE,
                    aggregate_id,
                    *version,
                    &events,
                    stored_metadata.clone(),
                )
                .map_err(AppError::internal)?,
            );
        }
        if outcome.events == 0 {
            return Ok(outcome);
        }
        let mut conn = self.pool.acquire().await.map_err(AppError::database)?;
        let written = insert_events(&mut conn, commands.iter()).await;
        drop(conn);
        match written {
            Ok(_) => {
                self.notifications.events_committed(A::TYPE);
                for aggregate_id in aggregate_ids {
                    self.remembered.forget(aggregate_id);
                }
                for _ in 0..outcome.changed {
                    self.metrics.command_committed(A::TYPE);
                }
                Ok(outcome)
            }
            Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("23505") => {
                self.metrics.command_conflicted(A::TYPE);
                let mut outcome = BulkOutcome::default();
                for aggregate_id in aggregate_ids {
                    match self
                        .execute(aggregate_id, None, command.clone(), metadata.clone())
                        .await
                    {
                        Ok(committed) if !committed.events.is_empty() => {
                            outcome.changed += 1;
                            outcome.events += committed.events.len();
                        }
                        Ok(_) => {}
                        Err(error) => {
                            tracing::warn!(aggregate_id, ?error, "bulk command fell through");
                        }
                    }
                }
                Ok(outcome)
            }
            Err(error) => Err(AppError::database(error)),
        }
    }
}
