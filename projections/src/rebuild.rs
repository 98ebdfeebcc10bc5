//! Rebuilding a projection from position zero without downtime, and verifying one.
//!
//! A rebuild creates fresh copies of the projection's tables in a scratch schema, points the
//! projection at them (its SQL names tables unqualified; the scratch schema goes first on the
//! `search_path`), and replays the log into them while the live tables keep serving. Then, in
//! one transaction that holds the live projector's checkpoint row (so the live projector pauses),
//! it catches the copies up to exactly the live checkpoint and swaps them in with
//! `ALTER TABLE … SET SCHEMA`. Readers wait for that transaction for milliseconds; nobody sees a
//! half-built table. The live projector then carries on from its unchanged checkpoint.
//!
//! Verification does the same build, catches up to the live checkpoint under the same lock, and
//! compares the two sets of tables row for row instead of swapping.

use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::{Connection, PgConnection, PgPool};

use crate::log::{self, Checkpoint};
use crate::runtime::{self, Projection, ProjectionError};

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
}

/// How far a rebuild has got.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RebuildProgress {
    pub applied: u64,
    /// The events of the projection's types in the log when the rebuild started (more may come).
    pub total: u64,
    pub elapsed: Duration,
}

impl RebuildProgress {
    pub fn events_per_second(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.applied as f64 / seconds
        } else {
            0.0
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RebuildReport {
    pub projector: String,
    pub events: u64,
    pub seconds: f64,
    pub events_per_second: f64,
    pub checkpoint: Checkpoint,
}

/// One row present on one side only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    pub table: String,
    /// `only_in_live` or `only_in_rebuild`.
    pub side: String,
    pub row: serde_json::Value,
}

#[derive(Debug, Clone, Copy)]
pub struct RebuildSettings {
    pub batch_size: i64,
    /// Connections that write the fresh tables at the same time where the work allows it (the
    /// rows held to the end, each table's indexes): about the database server's cores.
    pub writers: usize,
}

impl Default for RebuildSettings {
    fn default() -> Self {
        Self {
            batch_size: 10_000,
            writers: 2,
        }
    }
}

/// Opens connections to the fresh copies a rebuild is building, for a projection's side work.
#[derive(Clone)]
pub struct Copies {
    pool: PgPool,
    schema: String,
}

impl Copies {
    /// A connection of its own that names the copies unqualified and does not wait for the
    /// disk at commit (the copies are private until the swap and dropped if the rebuild fails).
    pub async fn connect(&self) -> Result<PgConnection, sqlx::Error> {
        let mut conn = dedicated_connection(&self.pool).await?;
        sqlx::query(&format!(
            "SET search_path TO {}, public",
            quote(&self.schema)
        ))
        .execute(&mut conn)
        .await?;
        sqlx::query("SET synchronous_commit = off")
            .execute(&mut conn)
            .await?;
        Ok(conn)
    }
}

/// Fresh copies of a projection's tables in a scratch schema.
struct Shadow {
    schema: String,
    tables: Vec<String>,
    /// The copies that are made durable before the swap.
    unlogged: Vec<String>,
    /// Constraints added after the load (`ALTER TABLE … ADD CONSTRAINT …`), with the indexes.
    deferred: Vec<(String, String)>,
}

/// The advisory-lock space of rebuilds (the first key of the two-key form, which never meets
/// the one-key locks such as routing's): the second key is the hash of the copies' schema name.
/// A rebuild holds its schema's lock on its own connection for as long as it runs, so the lock
/// ends with it, however it ends.
const REBUILD_LOCK_SPACE: i32 = 0x646b_7262; // "dkrb"

/// The prefix of every rebuild's scratch schema (and, after `_retired`, of the old tables it
/// swapped out).
const SCHEMA_PREFIX: &str = "docket_rebuild_";

/// Drops the scratch schemas of rebuilds that ended without cleaning up (their process was
/// killed, or lost its connection): those whose lock nobody holds. A running rebuild's copies
/// are left alone. Returns the schemas dropped.
pub async fn drop_abandoned_copies(conn: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
    let schemas: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname, $1) ORDER BY 1",
    )
    .bind(SCHEMA_PREFIX)
    .fetch_all(&mut *conn)
    .await?;
    let mut dropped = Vec::new();
    for schema in schemas {
        let owner = schema.strip_suffix("_retired").unwrap_or(&schema);
        if !schema_lock(conn, TRY_SCHEMA_LOCK, owner).await? {
            continue;
        }
        let outcome = sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", quote(&schema)))
            .execute(&mut *conn)
            .await;
        schema_lock(conn, RELEASE_SCHEMA_LOCK, owner).await?;
        outcome?;
        tracing::warn!(
            schema,
            "dropped the copies of a rebuild that did not finish"
        );
        dropped.push(schema);
    }
    Ok(dropped)
}

/// Statements on a scratch schema's lock (`$1` the space, `$2` the schema), each answering a
/// boolean: whether the lock is now held (taking waits, so it always is), or was released.
const TAKE_SCHEMA_LOCK: &str = "SELECT true FROM (SELECT pg_advisory_lock($1, hashtext($2))) taken";
const TRY_SCHEMA_LOCK: &str = "SELECT pg_try_advisory_lock($1, hashtext($2))";
const RELEASE_SCHEMA_LOCK: &str = "SELECT pg_advisory_unlock($1, hashtext($2))";

async fn schema_lock(
    conn: &mut PgConnection,
    statement: &'static str,
    schema: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(statement)
        .bind(REBUILD_LOCK_SPACE)
        .bind(schema)
        .fetch_one(&mut *conn)
        .await
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

impl Shadow {
    /// Copies the tables' columns, defaults, generated columns, checks and unique constraints
    /// (upserts need those); other indexes are built after the load, which is much faster.
    async fn create(
        conn: &mut PgConnection,
        name: &str,
        tables: &[&str],
        written_once: &[&str],
        appended: &[&str],
    ) -> Result<Self, sqlx::Error> {
        let schema = format!(
            "{SCHEMA_PREFIX}{}_{}",
            name,
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        // Held until this connection ends: while it is, nobody takes the copies for abandoned.
        schema_lock(conn, TAKE_SCHEMA_LOCK, &schema).await?;
        sqlx::query(&format!("CREATE SCHEMA {}", quote(&schema)))
            .execute(&mut *conn)
            .await?;
        let mut unlogged = Vec::new();
        let mut deferred = Vec::new();
        for table in tables {
            // Unlogged while it is built, unless each row is written once: the many
            // intermediate versions of each row are never written to the WAL; the finished
            // table is made durable once, before the swap.
            let logged = written_once.contains(table);
            if !logged {
                unlogged.push(table.to_string());
            }
            sqlx::query(&format!(
                "CREATE {} TABLE {}.{} (LIKE public.{} INCLUDING ALL EXCLUDING INDEXES)",
                if logged { "" } else { "UNLOGGED" },
                quote(&schema),
                quote(table),
                quote(table)
            ))
            .execute(&mut *conn)
            .await?;
            let constraints: Vec<(String, String)> = sqlx::query_as(
                "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint
                  WHERE conrelid = ('public.' || quote_ident($1))::regclass AND contype IN ('p', 'u')",
            )
            .bind(table)
            .fetch_all(&mut *conn)
            .await?;
            for (constraint, definition) in constraints {
                let statement = format!(
                    "ALTER TABLE {}.{} ADD CONSTRAINT {} {definition}",
                    quote(&schema),
                    quote(table),
                    quote(&constraint)
                );
                if appended.contains(table) {
                    deferred.push((table.to_string(), statement));
                } else {
                    sqlx::query(&statement).execute(&mut *conn).await?;
                }
            }
        }
        sqlx::query(&format!("SET search_path TO {}, public", quote(&schema)))
            .execute(&mut *conn)
            .await?;
        Ok(Self {
            schema,
            tables: tables.iter().map(|t| t.to_string()).collect(),
            unlogged,
            deferred,
        })
    }

    /// Opens connections that name the copies unqualified.
    fn copies(&self, pool: &PgPool) -> Copies {
        Copies {
            pool: pool.clone(),
            schema: self.schema.clone(),
        }
    }

    /// Compacts the copies, makes them durable, recreates the live tables' other indexes and
    /// gathers statistics. One backend does one statement's work on one core, so the work is
    /// spread: each table is compacted and made durable on a connection of its own, then the
    /// index builds of all tables — most of the time, and one table has most of the indexes —
    /// are shared by `writers` connections (two sessions may build indexes on the same table at
    /// once: both take SHARE locks), then each table is analyzed on its own connection.
    async fn finish(&self, pool: &PgPool, writers: usize) -> Result<(), sqlx::Error> {
        let mut conns = futures::future::try_join_all(self.tables.iter().map(|table| async move {
            let mut conn = dedicated_connection(pool).await?;
            self.make_durable(&mut conn, table).await?;
            Ok::<_, sqlx::Error>(conn)
        }))
        .await?;
        let mut definitions = Vec::new();
        if let Some(conn) = conns.first_mut() {
            for table in &self.tables {
                let size: i64 = sqlx::query_scalar("SELECT pg_relation_size($1::regclass)")
                    .bind(self.qualified(table))
                    .fetch_one(&mut *conn)
                    .await?;
                for definition in self.index_definitions(conn, table).await? {
                    definitions.push((definition, size));
                }
                for (_, constraint) in self.deferred.iter().filter(|(t, _)| t == table) {
                    definitions.push((constraint.clone(), size));
                }
            }
        }
        // The longest builds first, so the last one to finish is a short one: GIN indexes
        // (search vectors) take several times a B-tree's time, then the larger tables'.
        definitions.sort_by_key(|(definition, size)| {
            (
                !definition.contains(" USING gin "),
                std::cmp::Reverse(*size),
            )
        });
        let queue = std::sync::Mutex::new(
            definitions
                .into_iter()
                .map(|(definition, _)| definition)
                .collect::<std::collections::VecDeque<_>>(),
        );
        let next = || queue.lock().ok().and_then(|mut queue| queue.pop_front());
        let builders = writers.clamp(1, conns.len().max(1));
        futures::future::try_join_all(conns.iter_mut().take(builders).map(|conn| async {
            while let Some(definition) = next() {
                sqlx::query(&definition).execute(&mut *conn).await?;
            }
            Ok::<_, sqlx::Error>(())
        }))
        .await?;
        futures::future::try_join_all(self.tables.iter().zip(conns.iter_mut()).map(
            |(table, conn)| async move {
                sqlx::query(&format!("ANALYZE {}", self.qualified(table)))
                    .execute(&mut *conn)
                    .await
            },
        ))
        .await?;
        for conn in conns {
            let _ = conn.close().await;
        }
        Ok(())
    }

    fn qualified(&self, table: &str) -> String {
        format!("{}.{}", quote(&self.schema), quote(table))
    }

    async fn make_durable(&self, conn: &mut PgConnection, table: &str) -> Result<(), sqlx::Error> {
        let qualified = self.qualified(table);
        // The build updated rows many times over; leave a compact table behind.
        sqlx::query(&format!("VACUUM {qualified}"))
            .execute(&mut *conn)
            .await?;
        if self.unlogged.iter().any(|t| t == table) {
            sqlx::query(&format!("ALTER TABLE {qualified} SET LOGGED"))
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// The live table's indexes other than its constraints', as statements on the copy.
    async fn index_definitions(
        &self,
        conn: &mut PgConnection,
        table: &str,
    ) -> Result<Vec<String>, sqlx::Error> {
        let definitions: Vec<String> = sqlx::query_scalar(
            "SELECT i.indexdef FROM pg_indexes i
              WHERE i.schemaname = 'public' AND i.tablename = $1
                AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                                 WHERE c.conname = i.indexname
                                   AND c.conrelid = ('public.' || quote_ident($1))::regclass)",
        )
        .bind(table)
        .fetch_all(&mut *conn)
        .await?;
        let qualified = self.qualified(table);
        Ok(definitions
            .into_iter()
            .map(|definition| {
                definition.replacen(
                    &format!(" ON public.{table} "),
                    &format!(" ON {qualified} "),
                    1,
                )
            })
            .collect())
    }

    async fn drop(self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query(&format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            quote(&self.schema)
        ))
        .execute(&mut *conn)
        .await?;
        schema_lock(conn, RELEASE_SCHEMA_LOCK, &self.schema).await?;
        Ok(())
    }
}

/// The events of `types` (all when empty) in the log: the progress bar's total. A plain type
/// filter, which the type index answers for rare types; the former `cardinality($1) = 0 OR …`
/// form hid it from the planner, so every rebuild, even of a projection of a handful of user
/// events, first read the whole log (2.4 s at 1.4 M events).
async fn count_events(conn: &mut PgConnection, types: &[&str]) -> Result<u64, sqlx::Error> {
    let count: i64 = if types.is_empty() {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&mut *conn)
            .await?
    } else {
        let types: Vec<String> = types.iter().map(|t| t.to_string()).collect();
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = ANY($1)")
            .bind(&types)
            .fetch_one(&mut *conn)
            .await?
    };
    Ok(count.max(0) as u64)
}

/// In the long build phase a projection may defer work to its `finish_rebuild`; the final
/// catch-up, after that has run, applies events in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Build,
    CatchUp,
}

async fn apply<P: Projection>(
    projection: &P,
    conn: &mut PgConnection,
    events: &[log::RecordedEvent],
    phase: Phase,
    state: &mut P::Rebuild,
) -> Result<(), RebuildError> {
    // The copies are private until the swap and dropped if the rebuild fails, so a build
    // batch need not wait for the disk; the catch-up runs inside the swap's transaction.
    let mut tx = match phase {
        Phase::Build => {
            conn.begin_with("BEGIN; SET LOCAL synchronous_commit = off")
                .await?
        }
        Phase::CatchUp => conn.begin().await?,
    };
    let applied = match phase {
        Phase::Build => projection.apply_rebuild_batch(&mut tx, events, state).await,
        Phase::CatchUp => projection.apply_batch(&mut tx, events).await,
    };
    match applied {
        Ok(()) => {}
        Err(ProjectionError::Database(e)) => return Err(RebuildError::Database(e)),
        Err(other) => return Err(RebuildError::Projection(other)),
    }
    tx.commit().await?;
    Ok(())
}

/// Where the live projector stands; `None` when it has never run or is stopped at a failure,
/// in which case a rebuild goes to the head of the log instead.
async fn live_target(
    conn: &mut PgConnection,
    name: &str,
) -> Result<Option<Checkpoint>, sqlx::Error> {
    let stored = runtime::load_checkpoint(conn, name, false).await?;
    Ok(
        (stored.failure.is_none() && stored.checkpoint != Checkpoint::START)
            .then_some(stored.checkpoint),
    )
}

/// Counts what a rebuild has applied and tells its caller.
struct Tracker<'a> {
    progress: RebuildProgress,
    started: Instant,
    report: &'a mut dyn FnMut(RebuildProgress),
}

impl Tracker<'_> {
    fn advance(&mut self, events: usize) {
        self.progress.applied += events as u64;
        self.progress.elapsed = self.started.elapsed();
        (self.report)(self.progress);
    }
}

/// One batch read, and where the cursor goes after it.
async fn read_next(
    conn: &mut PgConnection,
    cursor: Checkpoint,
    until: Option<Checkpoint>,
    types: &[&str],
    metadata: log::Metadata,
    limit: i64,
) -> Result<(Vec<log::RecordedEvent>, Checkpoint), sqlx::Error> {
    match until {
        Some(until) => {
            let events = log::read_range(&mut *conn, cursor, until, types, metadata, limit).await?;
            let next = match events.last() {
                Some(last) if events.len() as i64 >= limit => last.checkpoint(),
                _ => until.max(cursor),
            };
            Ok((events, next))
        }
        None => {
            let batch = log::read_batch(&mut *conn, cursor, types, metadata, limit).await?;
            Ok((batch.events, batch.next))
        }
    }
}

/// Replays `(cursor, until]` (or to the head when `until` is `None`) into the copies.
///
/// With a `reader` pool the next batch is read on another connection while this one is
/// applied, so PostgreSQL reads and writes at the same time (the build phase); without one
/// everything happens on `conn` (the catch-up inside the swap transaction).
#[allow(clippy::too_many_arguments)]
async fn replay<P: Projection>(
    projection: &P,
    conn: &mut PgConnection,
    reader: Option<&PgPool>,
    cursor: &mut Checkpoint,
    until: Option<Checkpoint>,
    settings: RebuildSettings,
    tracker: &mut Tracker<'_>,
    phase: Phase,
    state: &mut P::Rebuild,
) -> Result<(), RebuildError> {
    let limit = settings.batch_size;
    let read_ahead = |pool: PgPool, from: Checkpoint| {
        tokio::spawn(async move {
            let mut conn = pool.acquire().await?;
            read_next(
                &mut conn,
                from,
                until,
                P::AGGREGATE_TYPES,
                P::METADATA,
                limit,
            )
            .await
        })
    };
    let mut pending = reader.map(|pool| read_ahead(pool.clone(), *cursor));
    loop {
        let (events, next) = match pending.take() {
            Some(task) => task
                .await
                .map_err(|e| RebuildError::Database(sqlx::Error::Io(std::io::Error::other(e))))??,
            None => {
                read_next(
                    &mut *conn,
                    *cursor,
                    until,
                    P::AGGREGATE_TYPES,
                    P::METADATA,
                    limit,
                )
                .await?
            }
        };
        let done = (events.len() as i64) < limit;
        if !done {
            pending = reader.map(|pool| read_ahead(pool.clone(), next));
        }
        if !events.is_empty() {
            apply(projection, conn, &events, phase, state).await?;
            tracker.advance(events.len());
        }
        *cursor = next;
        if done {
            return Ok(());
        }
    }
}

/// Builds the copies up to the live checkpoint as it was when the build started.
async fn build<P: Projection>(
    projection: &P,
    conn: &mut PgConnection,
    reader: &PgPool,
    settings: RebuildSettings,
    tracker: &mut Tracker<'_>,
) -> Result<(Shadow, Checkpoint), RebuildError> {
    drop_abandoned_copies(conn).await?;
    let shadow = Shadow::create(
        conn,
        P::NAME,
        P::TABLES,
        P::WRITTEN_ONCE_IN_REBUILD,
        P::APPENDED_IN_REBUILD,
    )
    .await?;
    tracker.progress.total = count_events(conn, P::AGGREGATE_TYPES).await?;
    tracker.advance(0);
    let mut cursor = Checkpoint::START;
    let target = live_target(conn, P::NAME).await?;
    let built = async {
        let copies = shadow.copies(reader);
        let mut state = projection.start_rebuild(copies.clone());
        let log_reader = log::reader_pool(reader, 2);
        replay(
            projection,
            conn,
            Some(&log_reader),
            &mut cursor,
            target,
            settings,
            tracker,
            Phase::Build,
            &mut state,
        )
        .await?;
        tracing::info!(projector = P::NAME, events = tracker.progress.applied, elapsed = ?tracker.started.elapsed(), "rebuild: replayed");
        let mut writers = Vec::with_capacity(settings.writers.max(1));
        for _ in 0..settings.writers.max(1) {
            writers.push(copies.connect().await?);
        }
        let finished = projection.finish_rebuild(&mut writers, state).await;
        for writer in writers {
            let _ = writer.close().await;
        }
        finished?;
        tracing::info!(projector = P::NAME, elapsed = ?tracker.started.elapsed(), "rebuild: finished rows");
        Ok::<_, RebuildError>(())
    }
    .await;
    if let Err(error) = built {
        let _ = shadow.drop(conn).await;
        return Err(error);
    }
    if let Err(error) = shadow.finish(reader, settings.writers).await {
        let _ = shadow.drop(conn).await;
        return Err(error.into());
    }
    tracing::info!(projector = P::NAME, elapsed = ?tracker.started.elapsed(), "rebuild: vacuumed, logged and indexed");
    Ok((shadow, cursor))
}

fn tracker(report: &mut dyn FnMut(RebuildProgress)) -> Tracker<'_> {
    Tracker {
        progress: RebuildProgress {
            applied: 0,
            total: 0,
            elapsed: Duration::ZERO,
        },
        started: Instant::now(),
        report,
    }
}

async fn dedicated_connection(pool: &PgPool) -> Result<PgConnection, sqlx::Error> {
    let mut conn = PgConnection::connect_with(&pool.connect_options()).await?;
    // Index builds at the end of a rebuild (GIN over search vectors above all) are much faster
    // with room to sort in memory.
    sqlx::query("SET maintenance_work_mem = '256MB'")
        .execute(&mut conn)
        .await?;
    Ok(conn)
}

/// Rebuilds `projection` from position zero and swaps the result in.
pub async fn rebuild<P: Projection>(
    projection: &P,
    pool: &PgPool,
    settings: RebuildSettings,
    mut report: impl FnMut(RebuildProgress),
) -> Result<RebuildReport, RebuildError> {
    runtime::ensure_checkpoint_row(pool, P::NAME).await?;
    let mut conn = dedicated_connection(pool).await?;
    let mut tracker = tracker(&mut report);
    let (shadow, mut cursor) = build(projection, &mut conn, pool, settings, &mut tracker).await?;

    let swapped = async {
        let mut tx = conn.begin().await?;
        let live = runtime::load_checkpoint(&mut tx, P::NAME, true).await?;
        // The live projector is paused on its checkpoint row now; reach exactly where it is
        // (or, if it is stopped at a failure, the head of the log).
        let until = (live.failure.is_none()).then_some(live.checkpoint.max(cursor));
        replay(
            projection,
            &mut tx,
            None,
            &mut cursor,
            until,
            settings,
            &mut tracker,
            Phase::CatchUp,
            &mut P::Rebuild::default(),
        )
        .await?;
        let retired = format!("{}_retired", shadow.schema);
        sqlx::query(&format!("CREATE SCHEMA {}", quote(&retired)))
            .execute(&mut *tx)
            .await?;
        for table in &shadow.tables {
            sqlx::query(&format!(
                "ALTER TABLE public.{} SET SCHEMA {}",
                quote(table),
                quote(&retired)
            ))
            .execute(&mut *tx)
            .await?;
            sqlx::query(&format!(
                "ALTER TABLE {}.{} SET SCHEMA public",
                quote(&shadow.schema),
                quote(table)
            ))
            .execute(&mut *tx)
            .await?;
        }
        projection.swapped(&mut tx).await?;
        sqlx::query(
            "UPDATE projector_checkpoints
                SET last_txid = $2::text::xid8, last_position = $3, events_applied = $4,
                    failed_position = NULL, failure = NULL, updated_at = now()
              WHERE projector = $1",
        )
        .bind(P::NAME)
        .bind(cursor.txid.to_string())
        .bind(cursor.position)
        .bind(tracker.progress.applied as i64)
        .execute(&mut *tx)
        .await?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(crate::notify::PROJECTIONS_CHANNEL)
            .bind(P::NAME)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        sqlx::query(&format!("DROP SCHEMA {} CASCADE", quote(&retired)))
            .execute(&mut conn)
            .await?;
        Ok::<_, RebuildError>(())
    }
    .await;
    let _ = shadow.drop(&mut conn).await;
    swapped?;
    let elapsed = tracker.started.elapsed();
    let applied = tracker.progress.applied;
    tracing::info!(
        projector = P::NAME,
        events = applied,
        ?elapsed,
        "rebuilt and swapped in"
    );
    Ok(RebuildReport {
        projector: P::NAME.to_string(),
        events: applied,
        seconds: elapsed.as_secs_f64(),
        events_per_second: if elapsed.as_secs_f64() > 0.0 {
            applied as f64 / elapsed.as_secs_f64()
        } else {
            0.0
        },
        checkpoint: cursor,
    })
}

/// The columns of live `table` that say what the projection means: all but the projection's
/// [`Projection::UNCOMPARED_COLUMNS`], quoted and comma-separated, in table order.
async fn compared_columns<P: Projection>(
    conn: &mut PgConnection,
    table: &str,
) -> Result<String, sqlx::Error> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns
          WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    Ok(names
        .iter()
        .filter(|name| !P::UNCOMPARED_COLUMNS.contains(&(table, name.as_str())))
        .map(|name| quote(name))
        .collect::<Vec<_>>()
        .join(", "))
}

/// Builds `projection` afresh and lists every row where it differs from the live tables (at
/// most `limit` per table), in every column but those that record how it was built. Empty on
/// a healthy system. Changes nothing.
pub async fn verify<P: Projection>(
    projection: &P,
    pool: &PgPool,
    settings: RebuildSettings,
    limit: i64,
    mut report: impl FnMut(RebuildProgress),
) -> Result<Vec<Difference>, RebuildError> {
    runtime::ensure_checkpoint_row(pool, P::NAME).await?;
    let mut conn = dedicated_connection(pool).await?;
    let mut tracker = tracker(&mut report);
    let (shadow, mut cursor) = build(projection, &mut conn, pool, settings, &mut tracker).await?;
    let compared = async {
        let mut tx = conn.begin().await?;
        let live = runtime::load_checkpoint(&mut tx, P::NAME, true).await?;
        replay(
            projection,
            &mut tx,
            None,
            &mut cursor,
            Some(live.checkpoint),
            settings,
            &mut tracker,
            Phase::CatchUp,
            &mut P::Rebuild::default(),
        )
        .await?;
        let mut differences = Vec::new();
        for table in &shadow.tables {
            let columns = compared_columns::<P>(&mut tx, table).await?;
            let rows: Vec<(String, serde_json::Value)> = sqlx::query_as(&format!(
                "(SELECT 'only_in_live', to_jsonb(l) FROM
                    (SELECT {c} FROM public.{t} EXCEPT ALL SELECT {c} FROM {s}.{t}) l LIMIT $1)
                 UNION ALL
                 (SELECT 'only_in_rebuild', to_jsonb(r) FROM
                    (SELECT {c} FROM {s}.{t} EXCEPT ALL SELECT {c} FROM public.{t}) r LIMIT $1)",
                c = columns,
                t = quote(table),
                s = quote(&shadow.schema)
            ))
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
            differences.extend(rows.into_iter().map(|(side, row)| Difference {
                table: table.clone(),
                side,
                row,
            }));
        }
        tx.rollback().await?;
        Ok::<_, RebuildError>(differences)
    }
    .await;
    let _ = shadow.drop(&mut conn).await;
    compared
}
