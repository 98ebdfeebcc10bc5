//! Reading the event log.
//!
//! Positions (`global_position`) are handed out when a row is inserted, not when its transaction
//! commits, so a reader that simply asks for "positions above the last one I saw" can miss an
//! event whose transaction commits late. Every reader here therefore reads only events whose
//! transaction is older than every transaction still running
//! (`transaction_id < pg_snapshot_xmin(pg_current_snapshot())`), in `(transaction_id,
//! global_position)` order, and remembers that pair as its checkpoint (DESIGN.md decision 2).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::postgres::{PgPoolOptions, PgRow, PgValueFormat, PgValueRef};
use sqlx::{Column, PgExecutor, PgPool, Postgres, QueryBuilder, Row, TypeInfo, ValueRef};

/// A position in the safe read order: everything at or before it has been seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The transaction id (`xid8`) of the last event seen.
    pub txid: i64,
    /// Its global position.
    pub position: i64,
}

impl Checkpoint {
    pub const START: Checkpoint = Checkpoint {
        txid: 0,
        position: 0,
    };
}

/// One row of the log, as stored.
///
/// The payload and metadata stay the JSON text PostgreSQL sent: each reader decodes them
/// straight into the type it needs ([`decode`](Self::decode)), without first building a
/// `serde_json::Value` tree and throwing it away. That tree was a third of a rebuild's time.
#[derive(Debug, Clone)]
pub struct RecordedEvent {
    pub global_position: i64,
    pub txid: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: StoredJson,
    pub metadata: StoredJson,
    pub recorded_at: DateTime<Utc>,
}

/// A `jsonb` value as the text PostgreSQL sends, taken as it comes: PostgreSQL only stores
/// valid JSON, so it is not parsed here (a `RawValue` would scan every payload once more
/// before its reader decodes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredJson(String);

impl StoredJson {
    pub fn get(&self) -> &str {
        &self.0
    }

    /// JSON text as if PostgreSQL had sent it (for events made in memory: tests, previews).
    pub fn from_text(text: String) -> Self {
        Self(text)
    }

    fn from_value(value: PgValueRef<'_>) -> Result<Self, sqlx::Error> {
        let decoding = |e: sqlx::error::BoxDynError| sqlx::Error::Decode(e);
        let mut bytes = value.as_bytes().map_err(decoding)?;
        let jsonb = value.type_info().name() == "JSONB";
        if jsonb && value.format() == PgValueFormat::Binary {
            // The binary form of `jsonb` is a version byte, then the text.
            match bytes.split_first() {
                Some((1, text)) => bytes = text,
                _ => return Err(decoding("an unknown jsonb binary format version".into())),
            }
        }
        let text = std::str::from_utf8(bytes).map_err(|e| decoding(Box::new(e)))?;
        Ok(Self(text.to_string()))
    }
}

/// Where each column of an event row is: looked up by name once a read, not once a row and
/// column (ten hash lookups and type checks per event).
struct EventColumns([usize; 10]);

impl EventColumns {
    const NAMES: [&'static str; 10] = [
        "global_position",
        "txid",
        "aggregate_type",
        "aggregate_id",
        "sequence",
        "event_type",
        "event_version",
        "payload",
        "metadata",
        "recorded_at",
    ];

    fn of(row: &PgRow) -> Result<Self, sqlx::Error> {
        let mut at = [0; 10];
        for (index, name) in Self::NAMES.iter().enumerate() {
            at[index] = row.try_column(*name)?.ordinal();
        }
        Ok(Self(at))
    }

    fn event(&self, row: &PgRow) -> Result<RecordedEvent, sqlx::Error> {
        let [
            position,
            txid,
            aggregate_type,
            aggregate_id,
            sequence,
            event_type,
            version,
            payload,
            metadata,
            recorded_at,
        ] = self.0;
        Ok(RecordedEvent {
            global_position: row.try_get(position)?,
            txid: row.try_get(txid)?,
            aggregate_type: row.try_get(aggregate_type)?,
            aggregate_id: row.try_get(aggregate_id)?,
            sequence: row.try_get(sequence)?,
            event_type: row.try_get(event_type)?,
            event_version: row.try_get(version)?,
            payload: StoredJson::from_value(row.try_get_raw(payload)?)?,
            metadata: StoredJson::from_value(row.try_get_raw(metadata)?)?,
            recorded_at: row.try_get(recorded_at)?,
        })
    }
}

/// Event rows read with [`EVENT_COLUMNS`] (or its variant without metadata), as events.
fn events_from_rows(rows: &[PgRow]) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let columns = EventColumns::of(first)?;
    rows.iter().map(|row| columns.event(row)).collect()
}

/// Rows are equal when they say the same thing; the JSON is compared as text, as stored.
impl PartialEq for RecordedEvent {
    fn eq(&self, other: &Self) -> bool {
        self.global_position == other.global_position
            && self.txid == other.txid
            && self.aggregate_type == other.aggregate_type
            && self.aggregate_id == other.aggregate_id
            && self.sequence == other.sequence
            && self.event_type == other.event_type
            && self.event_version == other.event_version
            && self.payload == other.payload
            && self.metadata == other.metadata
            && self.recorded_at == other.recorded_at
    }
}

impl RecordedEvent {
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            txid: self.txid,
            position: self.global_position,
        }
    }

    /// The payload decoded into the event type `E` (serde's externally tagged enum).
    pub fn decode<E: DeserializeOwned>(&self) -> Result<E, serde_json::Error> {
        serde_json::from_str(self.payload.get())
    }

    /// The request context stored with the event.
    pub fn metadata(&self) -> EventMetadata {
        serde_json::from_str(self.metadata.get()).unwrap_or_default()
    }

    /// The event's own fields, without the variant wrapper serde puts around them.
    pub fn data(&self) -> Value {
        match serde_json::from_str::<Value>(self.payload.get()) {
            Ok(Value::Object(mut wrapper)) => match wrapper.remove(&self.event_type) {
                Some(fields) => fields,
                None => Value::Object(wrapper),
            },
            Ok(other) => other,
            Err(_) => Value::Null,
        }
    }
}

/// Who caused an event and from where: written by the API with every command (DESIGN.md
/// decision 11). All fields are optional because tools and background services act too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    /// The API key the request was authenticated with, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<String>,
    /// `service` when the actor is a service account; absent for people and the system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_kind: Option<String>,
    /// For events an automation rule caused: how many rule-caused events lead to it (1: caused
    /// by a person's or the system's event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automation_depth: Option<String>,
}

impl EventMetadata {
    /// The form cqrs-es stores: a flat map of strings.
    pub fn into_map(self) -> HashMap<String, String> {
        let mut map = HashMap::new();
        let fields = [
            ("actor_id", self.actor_id),
            ("actor_role", self.actor_role),
            ("ip", self.ip),
            ("user_agent", self.user_agent),
            ("correlation_id", self.correlation_id),
            ("causation_id", self.causation_id),
            ("api_key_id", self.api_key_id),
            ("actor_kind", self.actor_kind),
            ("automation_depth", self.automation_depth),
        ];
        for (key, value) in fields {
            if let Some(value) = value {
                map.insert(key.to_string(), value);
            }
        }
        map
    }
}

const EVENT_COLUMNS: &str = "global_position, transaction_id::text::bigint AS txid, aggregate_type, \
     aggregate_id, sequence, event_type, event_version, payload, metadata, recorded_at";
const EVENT_COLUMNS_WITHOUT_METADATA: &str = "global_position, \
     transaction_id::text::bigint AS txid, aggregate_type, aggregate_id, sequence, event_type, \
     event_version, payload, '{}'::jsonb AS metadata, recorded_at";

/// Whether a read of the log returns each event's metadata (who, from where). Only the audit
/// trail needs it, and it is about a quarter of what PostgreSQL sends per event (reading a
/// million events: 3.3 s with it, 2.5 s without); skipped, it reads as `{}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metadata {
    Read,
    Skip,
}

impl Metadata {
    fn columns(self) -> &'static str {
        match self {
            Metadata::Read => EVENT_COLUMNS,
            Metadata::Skip => EVENT_COLUMNS_WITHOUT_METADATA,
        }
    }
}

/// Planner settings for connections that read the log. Every read here is a range of an index
/// in the order the reader wants, cut at a limit; with the planner free to choose, a log whose
/// statistics are missing or stale (a young database, no ANALYZE since it grew) got a bitmap
/// scan of everything past the cursor and a sort of it for every batch: 62 ms a batch for a
/// projector catching up on 200,000 events, the whole backlog re-read per batch. These
/// settings leave the planner only the ordered index scans, whatever the statistics say. And no
/// JIT: a plan that still needs a node switched off is costed past `jit_above_cost`, and
/// compiling it took longer (0.3–1.3 s a read, seen once) than any read here runs.
pub const READER_SETTINGS: [(&str, &str); 4] = [
    ("enable_seqscan", "off"),
    ("enable_bitmapscan", "off"),
    ("enable_sort", "off"),
    ("jit", "off"),
];

/// The same settings for one transaction that reads the log (`SET LOCAL`).
pub const READER_SETTINGS_LOCAL: &str = "SET LOCAL enable_seqscan = off; \
     SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off; SET LOCAL jit = off";

/// A pool of up to `max_connections` connections like `pool`'s, with [`READER_SETTINGS`], for
/// reading the log and nothing else. Connects lazily.
pub fn reader_pool(pool: &PgPool, max_connections: u32) -> PgPool {
    let options = (*pool.connect_options()).clone().options(READER_SETTINGS);
    PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(0)
        .acquire_timeout(pool.options().get_acquire_timeout())
        .idle_timeout(Some(std::time::Duration::from_secs(300)))
        // Pinged on the way back into the pool already; see `db::connect_with`.
        .test_before_acquire(false)
        .connect_lazy_with(options)
}

/// One batch in the safe order.
#[derive(Debug, Clone)]
pub struct Batch {
    pub events: Vec<RecordedEvent>,
    /// Where a reader may move its checkpoint after this batch. When the batch is not full this
    /// is past every transaction older than the snapshot horizon, not just past the last event
    /// returned, so a reader filtering by aggregate type still advances through events it skips.
    pub next: Checkpoint,
    /// Events are committed but not yet readable because an older transaction is still open.
    /// The reader should look again shortly rather than wait for the next notification.
    pub held_back: bool,
}

/// Where the newest committed event of any of `aggregate_types` sits (by the safe order's
/// key), if there is one: a projector of those types that has passed it has applied every such
/// event committed before the call.
pub async fn newest_of_types<'e, E: PgExecutor<'e>>(
    executor: E,
    aggregate_types: &[&str],
) -> Result<Option<Checkpoint>, sqlx::Error> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT newest.transaction_id::text::bigint, newest.global_position
           FROM unnest($1::text[]) AS wanted(aggregate_type)
           CROSS JOIN LATERAL (
                SELECT transaction_id, global_position FROM events e
                 WHERE e.aggregate_type = wanted.aggregate_type
                 ORDER BY transaction_id DESC, global_position DESC LIMIT 1) newest
          ORDER BY newest.transaction_id DESC, newest.global_position DESC LIMIT 1",
    )
    .bind(aggregate_types)
    .fetch_optional(executor)
    .await?;
    Ok(row.map(|(txid, position)| Checkpoint { txid, position }))
}

/// Whether some committed event of `aggregate_types` (any, when empty) has a transaction id at
/// or above the horizon `x.horizon` of the statement it is pushed into: it exists, but a reader
/// may not pass it until the older transactions still running have finished. Only the reader's
/// own types count: under a stream of ticket commands some ticket event is nearly always
/// waiting behind an open transaction, and a reader of accounts that took that for its own
/// would poll the log every few milliseconds for nothing.
fn push_held_back<'q>(query: &mut QueryBuilder<'q, Postgres>, aggregate_types: &[&'q str]) {
    query.push("(");
    if aggregate_types.is_empty() {
        query.push("EXISTS (SELECT 1 FROM events WHERE transaction_id >= x.horizon)");
    }
    for (index, aggregate_type) in aggregate_types.iter().enumerate() {
        if index > 0 {
            query.push(" OR ");
        }
        // One probe of the (aggregate_type, transaction_id, …) index per type.
        query
            .push("EXISTS (SELECT 1 FROM events WHERE aggregate_type = ")
            .push_bind(*aggregate_type)
            .push(" AND transaction_id >= x.horizon)");
    }
    query.push(")");
}

/// Where a read of the log stops.
#[derive(Debug, Clone, Copy)]
enum UpperBound {
    /// Before the horizon of the reading statement's own snapshot, which the read reports.
    Horizon,
    /// At this checkpoint, inclusive.
    Until(Checkpoint),
}

/// What a read returned: the events, and with [`UpperBound::Horizon`] the horizon it read to
/// and whether events of the types read wait behind it.
struct Read {
    events: Vec<RecordedEvent>,
    horizon: Option<(i64, bool)>,
}

/// Up to `limit` events after `after` and within `bound`, of the given aggregate types (all when
/// empty), in safe order.
///
/// Every statement is a range scan of an index that delivers its rows in order, positioned at
/// the cursor, so no plan has to sort the log:
/// * all types: `(transaction_id, global_position)`;
/// * one type: `aggregate_type = $t` with the bounds on `(transaction_id, global_position)`,
///   which either index answers in order, the planner picking by how common the type is.
///   (The type used to be filtered as `aggregate_type || '' = ANY($types)`, whose selectivity
///   the planner cannot estimate: once its row estimate fell below the limit it seq-scanned
///   and sorted the whole log for every batch of a rebuild — 2.5 s a batch at 1.4 M events —
///   and rare types walked every other type's events);
/// * several types: one such scan per type, each cut at `limit`, merged in one statement
///   (a Merge Append) and cut at `limit` again. An event among the first `limit` of the merge
///   is among the first `limit` of its own type, so the merge misses nothing.
async fn read_events(
    conn: &mut sqlx::PgConnection,
    after: Checkpoint,
    bound: UpperBound,
    aggregate_types: &[&str],
    metadata: Metadata,
    limit: i64,
) -> Result<Read, sqlx::Error> {
    let columns = metadata.columns();
    // `None`: every type.
    let scans: Vec<Option<&str>> = if aggregate_types.is_empty() {
        vec![None]
    } else {
        aggregate_types.iter().copied().map(Some).collect()
    };
    let mut query: QueryBuilder<Postgres> = QueryBuilder::new("");
    if let UpperBound::Horizon = bound {
        // The horizon, whether anything waits behind it, and the rows, in one statement and so
        // one round trip: `pg_current_snapshot()` is the statement's own snapshot, the one that
        // reads the rows, so every transaction below its horizon had finished and all of its
        // events are among what is read. The outer join hands out the horizon when no event is
        // there. (`OFFSET 0` keeps each subquery a node of its own, evaluated once: pulled up,
        // the snapshot was taken again for every row an index scan rechecked, and the
        // held-back probes ran for every row returned.)
        query.push(
            "SELECT h.horizon::text::bigint AS horizon, h.held_back, e.* \
               FROM (SELECT x.horizon, ",
        );
        push_held_back(&mut query, aggregate_types);
        query.push(
            " AS held_back \
               FROM (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS horizon OFFSET 0) x \
               OFFSET 0) h \
               LEFT JOIN LATERAL (",
        );
    }
    for (index, aggregate_type) in scans.iter().enumerate() {
        if index > 0 {
            query.push(" UNION ALL ");
        }
        // With several branches each also hands out its raw transaction id, so the merge below
        // sorts by the very key the branches' index scans deliver (a Merge Append, no sort).
        let merge_key = if scans.len() > 1 {
            ", transaction_id AS merge_txid"
        } else {
            ""
        };
        query.push(format!("(SELECT {columns}{merge_key} FROM events WHERE "));
        match aggregate_type {
            None => query.push("(transaction_id, global_position) > ("),
            Some(aggregate_type) => query
                .push("aggregate_type = ")
                .push_bind(*aggregate_type)
                .push(" AND (transaction_id, global_position) > ("),
        };
        query
            .push_bind(after.txid.to_string())
            .push("::xid8, ")
            .push_bind(after.position)
            .push(")");
        match bound {
            UpperBound::Horizon => query.push(" AND transaction_id < h.horizon"),
            UpperBound::Until(until) => query
                .push(" AND (transaction_id, global_position) <= (")
                .push_bind(until.txid.to_string())
                .push("::xid8, ")
                .push_bind(until.position)
                .push(")"),
        };
        query
            .push(" ORDER BY transaction_id, global_position LIMIT ")
            .push_bind(limit)
            .push(")");
    }
    if scans.len() > 1 {
        // Each branch is already in order: a merge of them, cut at the limit.
        query
            .push(" ORDER BY merge_txid, global_position LIMIT ")
            .push_bind(limit);
    }
    if let UpperBound::Horizon = bound {
        // No ORDER BY out here: a sort would undo the point of the ordered scans; the join of
        // one row to them hands their rows out in their order, checked below.
        query.push(") e ON true");
    }
    // Planned afresh with the actual values every time (an unnamed statement): a generic plan
    // cannot tell a rare type from a common one.
    let rows = query
        .build()
        .persistent(false)
        .fetch_all(&mut *conn)
        .await?;
    match bound {
        UpperBound::Until(_) => Ok(Read {
            events: events_from_rows(&rows)?,
            horizon: None,
        }),
        UpperBound::Horizon => {
            let Some(first) = rows.first() else {
                return Err(sqlx::Error::RowNotFound);
            };
            let horizon = (first.try_get("horizon")?, first.try_get("held_back")?);
            // No event: the one row the outer join made, its event columns empty.
            let found: Option<i64> = first.try_get("global_position")?;
            let mut events = match found {
                Some(_) => events_from_rows(&rows)?,
                None => Vec::new(),
            };
            // The safe order whatever the join did (a pass over rows already in order).
            events.sort_by_key(RecordedEvent::checkpoint);
            Ok(Read {
                events,
                horizon: Some(horizon),
            })
        }
    }
}

/// Reads up to `limit` events after `after`, of the given aggregate types (all when empty).
///
/// The horizon is that of the very snapshot that reads the rows: every transaction below it had
/// finished, so all of their events are among the rows, and the reader may move past them.
pub async fn read_batch(
    conn: &mut sqlx::PgConnection,
    after: Checkpoint,
    aggregate_types: &[&str],
    metadata: Metadata,
    limit: i64,
) -> Result<Batch, sqlx::Error> {
    let Read { events, horizon } = read_events(
        &mut *conn,
        after,
        UpperBound::Horizon,
        aggregate_types,
        metadata,
        limit,
    )
    .await?;
    let (xmin, held_back) = horizon.ok_or(sqlx::Error::RowNotFound)?;
    let full = events.len() as i64 >= limit;
    let next = match events.last() {
        Some(last) if full => last.checkpoint(),
        // Not full: every event of a transaction older than the horizon has been seen.
        last => {
            let past_horizon = Checkpoint {
                txid: xmin - 1,
                position: i64::MAX,
            };
            last.map(|e| e.checkpoint())
                .unwrap_or(after)
                .max(past_horizon)
                .max(after)
        }
    };
    let held_back = !full && held_back;
    Ok(Batch {
        events,
        next,
        held_back,
    })
}

/// Reads up to `limit` events in `(after, until]` in the safe order. Everything at or before a
/// checkpoint some reader reached is committed and visible, so no horizon is needed: this is how
/// a rebuild catches up to exactly where the live projector stands.
pub async fn read_range(
    conn: &mut sqlx::PgConnection,
    after: Checkpoint,
    until: Checkpoint,
    aggregate_types: &[&str],
    metadata: Metadata,
    limit: i64,
) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    Ok(read_events(
        conn,
        after,
        UpperBound::Until(until),
        aggregate_types,
        metadata,
        limit,
    )
    .await?
    .events)
}

/// Every event of one aggregate, in its own order: histories and state-at-an-instant.
pub async fn events_of_aggregate<'e, E: PgExecutor<'e>>(
    executor: E,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events
          WHERE aggregate_type = $1 AND aggregate_id = $2
          ORDER BY sequence"
    );
    let rows = sqlx::query(&sql)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_all(executor)
        .await?;
    events_from_rows(&rows)
}
