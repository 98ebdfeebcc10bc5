//! The projector runtime: catch-up subscribers to the event log (DESIGN.md decision 3).
//!
//! A projector reads a batch in the safe order, applies it, and writes its rows and its
//! checkpoint in one transaction. A crash before the commit loses the whole batch and the
//! projector reads it again; a crash after it finds the new checkpoint. Either way each event
//! takes effect exactly once.
//!
//! Several processes may run the same projector. The checkpoint row is the arbiter: a batch is
//! committed only if the checkpoint is still the one the batch was read after (the row is locked
//! `FOR UPDATE` and compared), so two runners never both apply a batch; the loser re-reads.
//!
//! An event a projection cannot apply stops the projector at that event, with the reason
//! recorded in its checkpoint row for `/ready` and `/metrics`. It never skips an event.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;
use tracing::Instrument;

use crate::log::{self, Checkpoint, RecordedEvent};
use crate::notify::{LogNotifications, PROJECTIONS_CHANNEL};

/// Why a batch could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The database failed; the batch is retried.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The event itself cannot be applied; the projector stops at it.
    #[error("event at position {position} ({event_type}) cannot be applied: {reason}")]
    Unapplicable {
        position: i64,
        event_type: String,
        reason: String,
    },
}

impl ProjectionError {
    pub fn unapplicable(event: &RecordedEvent, reason: impl std::fmt::Display) -> Self {
        ProjectionError::Unapplicable {
            position: event.global_position,
            event_type: event.event_type.clone(),
            reason: reason.to_string(),
        }
    }
}

/// A read model built from the log.
pub trait Projection: Send + Sync + 'static {
    /// Stable name: the checkpoint's key.
    const NAME: &'static str;
    /// The aggregate types whose events it reads.
    const AGGREGATE_TYPES: &'static [&'static str];
    /// The tables it owns; a rebuild builds fresh copies of exactly these and swaps them in.
    /// Its SQL must name them unqualified, so a rebuild can point it at the copies.
    const TABLES: &'static [&'static str];
    /// Whether its events come with their metadata (who, from where); most projections fold
    /// payloads only, and reading metadata costs PostgreSQL a quarter of each read.
    const METADATA: log::Metadata = log::Metadata::Read;

    /// Applies `events` (in log order) inside the caller's transaction. Must be idempotent per
    /// row: an event at or below a row's recorded version changes nothing.
    fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> impl Future<Output = Result<(), ProjectionError>> + Send;

    /// Tables whose every row a rebuild writes once (appended, or held in memory to the end):
    /// their copies are created logged, so the rows reach the WAL as they are written instead
    /// of in a rewrite of the whole table before the swap. The others are built unlogged, so
    /// the many intermediate versions of their rows never reach the WAL.
    const WRITTEN_ONCE_IN_REBUILD: &'static [&'static str] = &[];

    /// Columns (table, column) that record how a table was built rather than what it means —
    /// a revision drawn from a sequence each time a row changes, which a rebuild draws afresh.
    /// `verify` compares every other column.
    const UNCOMPARED_COLUMNS: &'static [(&'static str, &'static str)] = &[];

    /// Tables a rebuild only ever appends to (COPY, plain INSERT), never upserts into: their
    /// copies get their primary key and unique constraints after the load, built by a sort
    /// with the other indexes instead of maintained row by row.
    const APPENDED_IN_REBUILD: &'static [&'static str] = &[];

    /// What a rebuild may keep between batches, such as rows held in memory so each is written
    /// once instead of once per batch that touches it. `()` for projections that keep nothing.
    type Rebuild: Default + Send;

    /// The state a rebuild starts its build phase with. `copies` opens connections of the
    /// projection's own to the fresh tables, for writes that may run beside the replay.
    fn start_rebuild(&self, _copies: crate::rebuild::Copies) -> Self::Rebuild {
        Self::Rebuild::default()
    }

    /// Applies a batch while a rebuild replays the log into fresh tables. Work that only the
    /// final state needs may be kept in `state` and done by [`Projection::finish_rebuild`].
    fn apply_rebuild_batch(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
        _state: &mut Self::Rebuild,
    ) -> impl Future<Output = Result<(), ProjectionError>> + Send {
        self.apply_batch(conn, events)
    }

    /// Runs in the transaction that swaps rebuilt tables in, after the swap: for what is
    /// derived from the projection's tables without being one of them (a cache), which the
    /// rebuild does not build and must not leave describing the old tables.
    fn swapped(
        &self,
        _conn: &mut PgConnection,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send {
        async { Ok(()) }
    }

    /// Completes what [`Projection::apply_rebuild_batch`] left in `state`, on the fresh tables.
    /// `writers` are connections to those tables (at least one), each committing its own work,
    /// so the work can be spread over the database server's cores: nobody reads the fresh
    /// tables before the swap, and a failed rebuild drops them.
    fn finish_rebuild(
        &self,
        _writers: &mut [PgConnection],
        _state: Self::Rebuild,
    ) -> impl Future<Output = Result<(), ProjectionError>> + Send {
        async { Ok(()) }
    }
}

/// Tuning for one projector.
#[derive(Debug, Clone, Copy)]
pub struct RunnerSettings {
    pub batch_size: i64,
    /// How often an idle projector looks at the log without being woken.
    pub idle_poll: Duration,
}

impl Default for RunnerSettings {
    fn default() -> Self {
        Self {
            batch_size: 500,
            idle_poll: Duration::from_secs(1),
        }
    }
}

/// What a projector is doing, published after every batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectorStatus {
    pub projector: String,
    pub checkpoint: Checkpoint,
    pub events_applied: i64,
    pub failed_position: Option<i64>,
    pub failure: Option<String>,
    /// Events of its aggregate types in the log beyond its checkpoint (capped at 100,000).
    pub lag: i64,
}

pub(crate) struct StoredCheckpoint {
    pub(crate) checkpoint: Checkpoint,
    pub(crate) failed_position: Option<i64>,
    pub(crate) failure: Option<String>,
}

pub(crate) async fn ensure_checkpoint_row(pool: &PgPool, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO projector_checkpoints (projector) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(name)
        .execute(pool)
        .await?;
    Ok(())
}

pub(crate) async fn load_checkpoint(
    conn: &mut PgConnection,
    name: &str,
    for_update: bool,
) -> Result<StoredCheckpoint, sqlx::Error> {
    let sql = if for_update {
        "SELECT last_txid::text::bigint, last_position, failed_position, failure
           FROM projector_checkpoints WHERE projector = $1 FOR UPDATE"
    } else {
        "SELECT last_txid::text::bigint, last_position, failed_position, failure
           FROM projector_checkpoints WHERE projector = $1"
    };
    let row: Option<(i64, i64, Option<i64>, Option<String>)> = sqlx::query_as(sql)
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    let (txid, position, failed_position, failure) = row.unwrap_or((0, 0, None, None));
    Ok(StoredCheckpoint {
        checkpoint: Checkpoint { txid, position },
        failed_position,
        failure,
    })
}

enum BatchOutcome {
    Committed(Checkpoint),
    /// Another runner moved the checkpoint first.
    Superseded(Checkpoint),
    Failed(ProjectionError),
}

async fn commit_batch<P: Projection>(
    projection: &P,
    pool: &PgPool,
    read_after: Checkpoint,
    events: &[RecordedEvent],
    next: Checkpoint,
) -> Result<BatchOutcome, ProjectionError> {
    // A projection is derived from events that are already durable, and its rows commit with
    // its checkpoint: if a crash loses this commit, the batch is simply applied again. So it
    // need not wait for the disk, and does not hold up the commands' flushes. (Said in the
    // BEGIN's own round trip.)
    let mut tx = pool
        .begin_with("BEGIN; SET LOCAL synchronous_commit = off")
        .await?;
    // Moving the checkpoint first, on condition that it is still where the batch was read
    // from, locks it for the rest of the batch (a runner in another process waits here, then
    // finds it moved) and saves a round trip over reading it FOR UPDATE and writing it last.
    let moved = sqlx::query(
        "UPDATE projector_checkpoints
            SET last_txid = $2::text::xid8, last_position = $3,
                events_applied = events_applied + $4, updated_at = now(),
                failed_position = NULL, failure = NULL
          WHERE projector = $1
            AND last_txid = $5::text::xid8 AND last_position = $6",
    )
    .bind(P::NAME)
    .bind(next.txid.to_string())
    .bind(next.position)
    .bind(events.len() as i64)
    .bind(read_after.txid.to_string())
    .bind(read_after.position)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if moved == 0 {
        tx.rollback().await?;
        let stored = load_checkpoint(&mut *pool.acquire().await?, P::NAME, false).await?;
        return Ok(BatchOutcome::Superseded(stored.checkpoint));
    }
    if !events.is_empty() {
        match projection.apply_batch(&mut tx, events).await {
            Ok(()) => {}
            Err(ProjectionError::Database(error)) => return Err(ProjectionError::Database(error)),
            Err(error) => {
                tx.rollback().await?;
                return Ok(BatchOutcome::Failed(error));
            }
        }
    }
    tx.commit().await?;
    Ok(BatchOutcome::Committed(next))
}

async fn record_failure(
    pool: &PgPool,
    name: &str,
    error: &ProjectionError,
) -> Result<(), sqlx::Error> {
    let position = match error {
        ProjectionError::Unapplicable { position, .. } => Some(*position),
        ProjectionError::Database(_) => None,
    };
    sqlx::query(
        "UPDATE projector_checkpoints SET failed_position = $2, failure = $3, updated_at = now()
          WHERE projector = $1",
    )
    .bind(name)
    .bind(position)
    .bind(error.to_string())
    .execute(pool)
    .await?;
    Ok(())
}

/// Applies everything currently readable, then returns the checkpoint reached. Used by the
/// runner, by tools and by tests that want a projection up to date now.
pub async fn catch_up<P: Projection>(
    projection: &P,
    pool: &PgPool,
    settings: RunnerSettings,
) -> Result<Checkpoint, ProjectionError> {
    ensure_checkpoint_row(pool, P::NAME).await?;
    let mut conn = pool.acquire().await?;
    let stored = load_checkpoint(&mut conn, P::NAME, false).await?;
    drop(conn);
    if let Some(failure) = stored.failure {
        return Err(ProjectionError::Unapplicable {
            position: stored.failed_position.unwrap_or_default(),
            event_type: String::new(),
            reason: failure,
        });
    }
    let mut cursor = stored.checkpoint;
    let reader = log::reader_pool(pool, 1);
    loop {
        let mut conn = reader.acquire().await?;
        let batch = log::read_batch(
            &mut conn,
            cursor,
            P::AGGREGATE_TYPES,
            P::METADATA,
            settings.batch_size,
        )
        .await?;
        drop(conn);
        if batch.events.is_empty() && batch.held_back {
            // Committed events wait behind an older transaction still open (of any database:
            // transaction ids are the cluster's): they are part of what to catch up on.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        }
        // Nothing left to read: the checkpoint moves past the horizon once more and the catch-up
        // ends. Waiting for the horizon to stand still never ended on an idle cluster: this
        // loop's own commits (the checkpoint, the announcement) move it on every round.
        let exhausted = batch.events.is_empty();
        if exhausted && batch.next == cursor {
            return Ok(cursor);
        }
        match step(projection, pool, cursor, batch.events, batch.next).await? {
            StepOutcome::Advanced(next) => {
                announce_progress(pool).await?;
                cursor = next;
            }
            StepOutcome::Superseded(next) => cursor = next,
            StepOutcome::Stopped(error) => return Err(error),
        }
        if exhausted {
            return Ok(cursor);
        }
    }
}

/// Wakes read-your-writes waiters in every process after a batch committed outside a running
/// projector (a tool, a test): one notification in a transaction of its own.
async fn announce_progress(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(PROJECTIONS_CHANNEL)
        .execute(pool)
        .await?;
    Ok(())
}

enum StepOutcome {
    Advanced(Checkpoint),
    Superseded(Checkpoint),
    Stopped(ProjectionError),
}

/// Commits one batch. When an event cannot be applied, commits the events before it and
/// records the failure at it.
async fn step<P: Projection>(
    projection: &P,
    pool: &PgPool,
    cursor: Checkpoint,
    events: Vec<RecordedEvent>,
    next: Checkpoint,
) -> Result<StepOutcome, ProjectionError> {
    match commit_batch(projection, pool, cursor, &events, next).await? {
        BatchOutcome::Committed(next) => Ok(StepOutcome::Advanced(next)),
        BatchOutcome::Superseded(theirs) => Ok(StepOutcome::Superseded(theirs)),
        BatchOutcome::Failed(error) => {
            let failed_at = match &error {
                ProjectionError::Unapplicable { position, .. } => *position,
                ProjectionError::Database(_) => i64::MIN,
            };
            let good: Vec<RecordedEvent> = events
                .iter()
                .take_while(|e| e.global_position != failed_at)
                .cloned()
                .collect();
            let mut reached = cursor;
            if let Some(last) = good.last() {
                let last_checkpoint = last.checkpoint();
                if let BatchOutcome::Committed(next) =
                    commit_batch(projection, pool, cursor, &good, last_checkpoint).await?
                {
                    reached = next;
                }
            }
            tracing::error!(projector = P::NAME, %error, checkpoint = ?reached, "projector stopped");
            record_failure(pool, P::NAME, &error).await?;
            Ok(StepOutcome::Stopped(error))
        }
    }
}

/// Runs a projector until `shutdown` becomes `true`: catches up, then follows the log.
pub async fn run<P: Projection>(
    projection: P,
    pool: PgPool,
    notifications: LogNotifications,
    settings: RunnerSettings,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut wake = notifications.events_of(P::AGGREGATE_TYPES);
    let mut released = notifications.projections();
    let mut retry_delay = Duration::from_millis(100);
    // `cursor` is the checkpoint as stored (a batch commits only if it still is); `read_from`
    // is how far the log has been read, which runs ahead of it while no event of this
    // projector's aggregate types arrives. Reading from the stored checkpoint every time would
    // rescan every other aggregate's events since this projector's last one, on every wake.
    let mut cursor: Option<Checkpoint> = None;
    let mut read_from: Option<Checkpoint> = None;
    let mut held_back_delay = Duration::from_millis(2);
    let reader = log::reader_pool(&pool, 1);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let pass = async {
            let from = match cursor {
                Some(c) => c,
                None => {
                    ensure_checkpoint_row(&pool, P::NAME).await?;
                    let mut conn = pool.acquire().await?;
                    let stored = load_checkpoint(&mut conn, P::NAME, false).await?;
                    if let Some(failure) = stored.failure {
                        return Ok::<_, ProjectionError>(Pass::Stopped(failure));
                    }
                    stored.checkpoint
                }
            };
            let read_after = read_from.map_or(from, |read| read.max(from));
            let batch = log::read_batch(
                &mut *reader.acquire().await?,
                read_after,
                P::AGGREGATE_TYPES,
                P::METADATA,
                settings.batch_size,
            )
            .await?;
            if batch.events.is_empty() {
                // Nothing to apply; remember the advanced horizon without writing it.
                return Ok(Pass::Idle {
                    stored: from,
                    read: batch.next,
                    held_back: batch.held_back,
                });
            }
            let span = tracing::debug_span!(
                "projector_batch",
                projector = P::NAME,
                events = batch.events.len()
            );
            let stepped = step(&projection, &pool, from, batch.events, batch.next)
                .instrument(span)
                .await?;
            Ok(match stepped {
                StepOutcome::Advanced(next) => Pass::Advanced(next),
                StepOutcome::Superseded(next) => Pass::Superseded(next),
                StepOutcome::Stopped(error) => Pass::Stopped(error.to_string()),
            })
        }
        .await;
        match pass {
            Ok(Pass::Advanced(next)) => {
                notifications.projector_reached(P::NAME, next);
                cursor = Some(next);
                read_from = Some(next);
                retry_delay = Duration::from_millis(100);
                held_back_delay = Duration::from_millis(2);
            }
            Ok(Pass::Superseded(theirs)) => {
                // Another process is running this projector: let it, and look again later.
                notifications.projector_seen(P::NAME, theirs);
                cursor = Some(theirs);
                read_from = Some(theirs);
                sleep_or_shutdown(settings.idle_poll, &mut shutdown).await;
            }
            Ok(Pass::Idle {
                stored,
                read,
                held_back,
            }) => {
                cursor = Some(stored);
                read_from = Some(read);
                retry_delay = Duration::from_millis(100);
                if held_back {
                    // Committed events wait behind an older open transaction (often another
                    // projector's batch, whose commit notifies): look again soon.
                    tokio::select! {
                        _ = tokio::time::sleep(held_back_delay) => {}
                        _ = wake.changed() => {}
                        _ = released.changed() => {}
                        _ = shutdown.changed() => {}
                    }
                    held_back_delay = (held_back_delay * 2).min(Duration::from_millis(20));
                } else {
                    held_back_delay = Duration::from_millis(2);
                    tokio::select! {
                        _ = wake.changed() => {}
                        _ = tokio::time::sleep(settings.idle_poll) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
            Ok(Pass::Stopped(reason)) => {
                // The events before the failing one may have been committed.
                notifications.projector_committed();
                // Stay stopped until the failure is cleared (by a rebuild or an operator).
                tracing::error!(projector = P::NAME, reason, "projector is stopped");
                cursor = None;
                read_from = None;
                sleep_or_shutdown(Duration::from_secs(5), &mut shutdown).await;
            }
            Err(error) => {
                tracing::warn!(projector = P::NAME, %error, ?retry_delay, "projector batch failed; retrying");
                cursor = None;
                read_from = None;
                sleep_or_shutdown(retry_delay, &mut shutdown).await;
                retry_delay = (retry_delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

enum Pass {
    Advanced(Checkpoint),
    Superseded(Checkpoint),
    Idle {
        stored: Checkpoint,
        read: Checkpoint,
        held_back: bool,
    },
    Stopped(String),
}

async fn sleep_or_shutdown(duration: Duration, shutdown: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(duration) => {}
        _ = shutdown.changed() => {}
    }
}

#[derive(sqlx::FromRow)]
struct StatusRow {
    txid: i64,
    position: i64,
    events_applied: i64,
    failed_position: Option<i64>,
    failure: Option<String>,
    lag: i64,
}

/// The checkpoint `projector` has stored (`None` before it first ran).
pub async fn stored_checkpoint(
    pool: &PgPool,
    projector: &str,
) -> Result<Option<Checkpoint>, sqlx::Error> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT last_txid::text::bigint, last_position FROM projector_checkpoints
          WHERE projector = $1",
    )
    .bind(projector)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(txid, position)| Checkpoint { txid, position }))
}

/// Every projector's checkpoint, failure and lag: for `/ready`, `/metrics` and the tools.
pub async fn statuses(
    pool: &PgPool,
    projectors: &[&crate::registry::Projector],
) -> Result<Vec<ProjectorStatus>, sqlx::Error> {
    let mut statuses = Vec::with_capacity(projectors.len());
    for projector in projectors {
        let name = projector.name;
        let types: Vec<String> = projector
            .aggregate_types
            .iter()
            .map(|t| t.to_string())
            .collect();
        let row: Option<StatusRow> = sqlx::query_as(
            "SELECT c.last_txid::text::bigint AS txid, c.last_position AS position,
                    c.events_applied, c.failed_position, c.failure,
                    (SELECT count(*) FROM (
                        SELECT 1 FROM events e
                         WHERE (e.transaction_id, e.global_position) > (c.last_txid, c.last_position)
                           AND (cardinality($2::text[]) = 0 OR e.aggregate_type = ANY($2))
                         LIMIT 100000) pending) AS lag
               FROM projector_checkpoints c WHERE c.projector = $1",
        )
        .bind(name)
        .bind(&types)
        .fetch_optional(pool)
        .await?;
        let status = match row {
            Some(row) => ProjectorStatus {
                projector: name.to_string(),
                checkpoint: Checkpoint {
                    txid: row.txid,
                    position: row.position,
                },
                events_applied: row.events_applied,
                failed_position: row.failed_position,
                failure: row.failure,
                lag: row.lag,
            },
            None => {
                let lag: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM (SELECT 1 FROM events
                      WHERE cardinality($1::text[]) = 0 OR aggregate_type = ANY($1) LIMIT 100000) e",
                )
                .bind(&types)
                .fetch_one(pool)
                .await?;
                ProjectorStatus {
                    projector: name.to_string(),
                    checkpoint: Checkpoint::START,
                    events_applied: 0,
                    failed_position: None,
                    failure: None,
                    lag,
                }
            }
        };
        statuses.push(status);
    }
    Ok(statuses)
}

/// Waits until `ready` says yes, re-checking whenever a projector commits anywhere (and every
/// 50 ms regardless). Returns whether it became ready before `timeout`.
pub async fn wait_until<F, Fut>(
    notifications: &LogNotifications,
    timeout: Duration,
    mut ready: F,
) -> Result<bool, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, sqlx::Error>>,
{
    let mut progress = notifications.projections();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if ready().await? {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::select! {
            _ = progress.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}
