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
use std::time::Duration;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateError, EventStore};
use docket_projections::log::{self, Checkpoint, EventMetadata};
use postgres_es::PostgresEventRepository;
use rand::Rng;
use sqlx::PgPool;

use crate::error::{ApiError, is_unavailable};
use crate::metrics::Metrics;

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
    Store(ApiError),
}

/// Commands on one aggregate in one process queue behind each other instead of racing: a
/// striped set of locks keyed by aggregate id. Races between processes remain, and are retried.
const LOCK_STRIPES: usize = 1024;

pub struct CommandBus<A: Aggregate> {
    store: PersistedEventStore<PostgresEventRepository, A>,
    pool: PgPool,
    metrics: Metrics,
    stripes: Vec<tokio::sync::Mutex<()>>,
    _aggregate: PhantomData<A>,
}

fn stripe_of(aggregate_id: &str) -> usize {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    aggregate_id.hash(&mut hasher);
    (hasher.finish() % LOCK_STRIPES as u64) as usize
}

impl<A> CommandBus<A>
where
    A: Aggregate<Services = ()> + Clone,
    A::Command: Clone,
{
    pub fn new(pool: PgPool, metrics: Metrics) -> Self {
        let repository = PostgresEventRepository::new(pool.clone());
        Self {
            store: PersistedEventStore::new_event_store(repository),
            pool,
            metrics,
            stripes: (0..LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            _aggregate: PhantomData,
        }
    }

    /// The current state and version of an aggregate, straight from the log.
    pub async fn load(&self, aggregate_id: &str) -> Result<(A, i64), ApiError> {
        let context = self
            .store
            .load_aggregate(aggregate_id)
            .await
            .map_err(store_error::<A::Error>)?;
        Ok((context.aggregate, context.current_sequence as i64))
    }

    /// Decides and commits `command`, retrying lost races.
    #[tracing::instrument(skip_all, fields(aggregate = A::TYPE, aggregate_id, attempts), err(Debug))]
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
        let metadata = metadata.into_map();
        let _turn = self.stripes[stripe_of(aggregate_id)].lock().await;
        for attempt in 1..=MAX_ATTEMPTS {
            let mut context = self
                .store
                .load_aggregate(aggregate_id)
                .await
                .map_err(|e| CommandError::Store(store_error(e)))?;
            let current = context.current_sequence as i64;
            if expected_version.is_some_and(|expected| expected != current) {
                return Err(CommandError::VersionMismatch { current });
            }
            let sink: EventSink<A> = EventSink::default();
            context
                .aggregate
                .handle(command.clone(), &(), &sink)
                .await
                .map_err(CommandError::Rejected)?;
            let events = sink.collect().await;
            let after = context.aggregate.clone();
            if events.is_empty() {
                return Ok(Committed {
                    aggregate: after,
                    version: current,
                    position: None,
                    events,
                });
            }
            match self
                .store
                .commit(events.clone(), context, metadata.clone())
                .await
            {
                Ok(committed) => {
                    let version = committed
                        .last()
                        .map_or(current, |envelope| envelope.sequence as i64);
                    self.metrics.command_committed(A::TYPE);
                    tracing::Span::current().record("attempts", attempt);
                    let position = log::position_of(&self.pool, A::TYPE, aggregate_id, version)
                        .await
                        .map_err(|e| CommandError::Store(ApiError::database(e)))?;
                    return Ok(Committed {
                        aggregate: after,
                        version,
                        position,
                        events,
                    });
                }
                Err(AggregateError::AggregateConflict) => {
                    self.metrics.command_conflicted(A::TYPE);
                    // Back off a little, with jitter, so racing writers spread out.
                    let ceiling = 2u64.saturating_pow(attempt.min(6)).max(2);
                    let pause = rand::thread_rng().gen_range(1..=ceiling);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                Err(other) => return Err(CommandError::Store(store_error(other))),
            }
        }
        self.metrics.command_gave_up(A::TYPE);
        Err(CommandError::Conflict)
    }
}

/// A store failure as the HTTP edge sees it: an outage is a 503, anything else a logged 500.
fn store_error<E: std::error::Error>(error: AggregateError<E>) -> ApiError {
    match error {
        AggregateError::DatabaseConnectionError(cause) => {
            tracing::warn!(error = %cause, "event store unavailable");
            ApiError::Unavailable
        }
        AggregateError::UnexpectedError(cause) => match cause.downcast_ref::<sqlx::Error>() {
            Some(sql) if is_unavailable(sql) => {
                tracing::warn!(error = %sql, "event store unavailable");
                ApiError::Unavailable
            }
            _ => ApiError::internal(cause),
        },
        AggregateError::AggregateConflict => ApiError::ConcurrentModification,
        AggregateError::DeserializationError(cause) => ApiError::internal(cause),
        AggregateError::UserError(cause) => ApiError::internal(cause),
    }
}
