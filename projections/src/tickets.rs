//! The ticket list and ticket detail read model: `tickets_view` and `ticket_comments_view`.

use chrono::{DateTime, Utc};
use docket_domain::sla::ClockState;
use docket_domain::ticket::{TicketEvent, TicketSla};
use docket_domain::values::TicketNumber;
use docket_domain::{Priority, Role, TicketStatus};
use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgExecutor, Postgres, QueryBuilder};
use uuid::Uuid;

use std::collections::HashMap;

use crate::fold::{self, Decoded, VersionedRow, fold_batch, fold_into};
use crate::log::RecordedEvent;
use crate::rebuild::Copies;
use crate::runtime::{Projection, ProjectionError};

/// One ticket as lists and detail pages show it.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, Serialize)]
pub struct TicketRow {
    pub id: Uuid,
    pub number: i64,
    pub subject: String,
    pub description: String,
    #[sqlx(try_from = "String")]
    pub priority: Priority,
    pub priority_rank: i16,
    #[sqlx(try_from = "String")]
    pub status: TicketStatus,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub customer_id: Uuid,
    pub assignee_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub escalation_level: i32,
    pub comment_count: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The aggregate version (sequence of the last event) this row reflects.
    pub version: i64,
    /// The worst state of the SLA clocks still counting.
    #[sqlx(try_from = "crate::typed::OptionalText")]
    pub sla_state: Option<ClockState>,
    /// The nearest deadline of a running SLA clock.
    pub sla_due_at: Option<DateTime<Utc>>,
    pub sla_breached: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow, Serialize)]
pub struct CommentRow {
    pub id: Uuid,
    pub ticket_id: Uuid,
    pub author_id: Uuid,
    #[sqlx(try_from = "String")]
    pub author_role: Role,
    pub body: String,
    pub internal: bool,
    pub created_at: DateTime<Utc>,
    pub sequence: i64,
}

/// A ticket row as the projection keeps it: what readers see, plus the texts of its comments
/// (public and internal apart) from which the search vectors are generated.
#[derive(Debug, Clone, PartialEq, FromRow, Serialize)]
pub struct StoredTicket {
    #[sqlx(flatten)]
    pub row: TicketRow,
    pub public_comments: String,
    pub internal_comments: String,
    /// The SLA policy and clocks, as the domain keeps them.
    pub sla: Option<sqlx::types::Json<TicketSla>>,
}

impl StoredTicket {
    /// A digest of the texts the search vector is made of: when it has not changed, neither
    /// has the vector, and the write keeps the stored one instead of computing it again.
    fn searchable_text_digest(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (
            &self.row.subject,
            &self.row.description,
            &self.public_comments,
            &self.internal_comments,
        )
            .hash(&mut hasher);
        hasher.finish()
    }
}

/// Separates comment texts on a ticket row.
const COMMENT_SEPARATOR: &str = "\n\n";

fn append(text: &mut String, body: &str) {
    if !text.is_empty() {
        text.push_str(COMMENT_SEPARATOR);
    }
    text.push_str(body);
}

/// Folds one event into a ticket row. Pure, and exhaustive over the events: a new event type
/// does not compile until this read model decides what it means.
pub fn fold(
    stored: &mut Option<StoredTicket>,
    ticket_id: Uuid,
    sequence: i64,
    event: TicketEvent,
) -> Result<Option<CommentRow>, String> {
    if stored
        .as_ref()
        .is_some_and(|existing| sequence <= existing.row.version)
    {
        return Ok(None); // already applied: replaying a batch changes nothing
    }
    let occurred_at = event.occurred_at();
    let Some(ticket) = stored.as_mut() else {
        let TicketEvent::TicketCreated {
            number,
            customer_id,
            subject,
            description,
            priority,
            category,
            tags,
            ..
        } = event
        else {
            return Err(format!("{} before TicketCreated", event.name()));
        };
        *stored = Some(StoredTicket {
            row: TicketRow {
                id: ticket_id,
                number: number.0,
                subject: subject.into_string(),
                description: description.into_string(),
                priority,
                priority_rank: priority.urgency(),
                status: TicketStatus::New,
                category: category.map(|c| c.into_string()),
                tags: tags.to_strings(),
                customer_id: customer_id.0,
                assignee_id: None,
                team_id: None,
                escalation_level: 0,
                comment_count: 0,
                created_at: occurred_at,
                updated_at: occurred_at,
                version: sequence,
                sla_state: None,
                sla_due_at: None,
                sla_breached: false,
            },
            public_comments: String::new(),
            internal_comments: String::new(),
            sla: None,
        });
        return Ok(None);
    };
    if event.is_sla() {
        let sla = ticket.sla.get_or_insert_with(|| {
            sqlx::types::Json(TicketSla::new(
                docket_domain::sla::AppliedPolicy::default_policy(),
            ))
        });
        sla.apply(&event);
        let summary = crate::sla::summary(Some(sla));
        let row = &mut ticket.row;
        row.sla_state = summary.state;
        row.sla_due_at = summary.due_at;
        row.sla_breached = summary.breached;
        // The clocks are not activity: `updated_at` stays.
        row.version = sequence;
        return Ok(None);
    }
    let mut comment = None;
    let row = &mut ticket.row;
    match event {
        TicketEvent::TicketCreated { .. } => {
            return Err("TicketCreated for a ticket that already exists".into());
        }
        TicketEvent::SlaPolicyApplied { .. }
        | TicketEvent::SlaClockStarted { .. }
        | TicketEvent::SlaClockPaused { .. }
        | TicketEvent::SlaClockResumed { .. }
        | TicketEvent::SlaClockRetargeted { .. }
        | TicketEvent::SlaClockStopped { .. }
        | TicketEvent::SlaWarning { .. }
        | TicketEvent::SlaBreached { .. } => {
            return Err("SLA events are folded above".into());
        }
        // Bookkeeping of rules and routing (what they did follows as events of their own), and
        // who follows the ticket (read from its log where it is shown).
        TicketEvent::EscalationRuleTriggered { .. }
        | TicketEvent::AutomationFired { .. }
        | TicketEvent::NotificationRequested { .. }
        | TicketEvent::TicketRouted { .. }
        | TicketEvent::TicketFollowed { .. }
        | TicketEvent::TicketUnfollowed { .. } => {
            ticket.row.version = sequence;
            return Ok(None);
        }
        TicketEvent::TicketTeamAssigned { team_id, .. } => row.team_id = team_id.map(|t| t.0),
        TicketEvent::TicketDetailsUpdated {
            subject,
            description,
            category,
            tags,
            ..
        } => {
            if let Some(subject) = subject {
                row.subject = subject.into_string();
            }
            if let Some(description) = description {
                row.description = description.into_string();
            }
            if let Some(category) = category {
                row.category = category.map(|c| c.into_string());
            }
            if let Some(tags) = tags {
                row.tags = tags.to_strings();
            }
        }
        TicketEvent::TicketPriorityChanged { to, .. } => {
            row.priority = to;
            row.priority_rank = to.urgency();
        }
        TicketEvent::TicketStatusChanged { to, .. } => row.status = to,
        TicketEvent::TicketAssigned { assignee_id, .. } => row.assignee_id = Some(assignee_id.0),
        TicketEvent::TicketUnassigned { .. } => row.assignee_id = None,
        TicketEvent::TicketEscalated { to_level, .. } => {
            row.escalation_level = i32::try_from(to_level).unwrap_or(i32::MAX);
        }
        TicketEvent::CommentAdded {
            comment_id,
            body,
            internal,
            author,
            occurred_at,
            ..
        } => {
            row.comment_count += 1;
            let text = if internal {
                &mut ticket.internal_comments
            } else {
                &mut ticket.public_comments
            };
            append(text, body.as_str());
            comment = Some(CommentRow {
                id: comment_id.0,
                ticket_id,
                author_id: author.user_id.0,
                author_role: author.role,
                body: body.into_string(),
                internal,
                created_at: occurred_at,
                sequence,
            });
        }
    }
    let row = &mut ticket.row;
    row.updated_at = occurred_at;
    row.version = sequence;
    Ok(comment)
}

/// Decodes a stored ticket event.
pub fn decode(event: &RecordedEvent) -> Result<TicketEvent, ProjectionError> {
    fold::decode(event)
}

impl VersionedRow for StoredTicket {
    fn id(&self) -> Uuid {
        self.row.id
    }

    fn version(&self) -> i64 {
        self.row.version
    }
}

/// The projector for `tickets_view` and `ticket_comments_view`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TicketsProjection;

/// What readers select; the comment texts stay out of lists and pages.
const TICKET_COLUMNS: &str = "id, number, subject, description, priority, priority_rank, status, \
     category, tags, customer_id, assignee_id, team_id, escalation_level, comment_count, created_at, \
     updated_at, version, sla_state, sla_due_at, sla_breached";

impl Projection for TicketsProjection {
    const NAME: &'static str = "tickets";
    const METADATA: crate::log::Metadata = crate::log::Metadata::Skip;
    const AGGREGATE_TYPES: &'static [&'static str] = &["ticket"];
    const TABLES: &'static [&'static str] = &[
        "tickets_view",
        "ticket_comments_view",
        "sla_clocks_view",
        "ticket_counts",
        "ticket_search_vectors",
    ];
    type Rebuild = TicketsRebuild;
    // Comments are appended by COPY; tickets and their clocks are held to the end (or written
    // once when memory runs short, then updated once more: still far fewer than per batch).
    const WRITTEN_ONCE_IN_REBUILD: &'static [&'static str] = Self::TABLES;
    // Comments arrive by COPY, in the build and in the catch-up alike.
    const APPENDED_IN_REBUILD: &'static [&'static str] = &["ticket_comments_view"];

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        apply(conn, events).await
    }

    async fn apply_rebuild_batch(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
        state: &mut TicketsRebuild,
    ) -> Result<(), ProjectionError> {
        let decoded = Decoded::<TicketEvent>::new(events)?;
        if state.flushed {
            // Rows written out earlier to bound memory come back from the copy.
            let missing: Vec<Uuid> = decoded
                .ids()
                .into_iter()
                .filter(|id| !state.rows.contains_key(id))
                .collect();
            if !missing.is_empty() {
                let found: Vec<StoredTicket> = sqlx::query_as(&format!(
                    "SELECT {TICKET_COLUMNS}, public_comments, internal_comments, sla
                       FROM tickets_view WHERE id = ANY($1)"
                ))
                .bind(&missing)
                .fetch_all(&mut *conn)
                .await?;
                for row in found {
                    state.rows.insert(row.row.id, Some(row));
                }
            }
        }
        let (changed, comments) = fold_into(&mut state.rows, decoded, fold)?;
        state.note_changed(changed);
        // Each event is applied once in the build, into an empty table: no conflict to handle,
        // so the comments stream in with COPY (about three times the rows per second of an
        // INSERT from arrays), on a connection of their own while the next batch is folded.
        match &mut state.comments {
            Some(writer) if !comments.is_empty() => {
                if let Err(error) = writer.send(comments_as_copy_binary(&comments)?).await {
                    // Its task has been joined: nothing is left to wait for.
                    state.comments = None;
                    return Err(error);
                }
            }
            Some(_) => {}
            None => copy_comments(conn, &comments).await?,
        }
        state.hand_over_settled().await?;
        if state.rows.len() >= TicketsRebuild::MAX_ROWS {
            state.flush_early(conn).await?;
        }
        Ok(())
    }

    fn start_rebuild(&self, copies: Copies) -> TicketsRebuild {
        TicketsRebuild {
            comments: Some(Writer::start(copies.clone(), copy_comment_batch)),
            settled: Some(Writer::start(copies, write_settled_tickets)),
            ..TicketsRebuild::default()
        }
    }

    async fn swapped(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        // The ranked entries of registered searches describe the old vectors.
        crate::search_terms::forget_all(conn).await
    }

    async fn finish_rebuild(
        &self,
        writers: &mut [PgConnection],
        mut state: TicketsRebuild,
    ) -> Result<(), ProjectionError> {
        if let Some(writer) = state.comments.take() {
            writer.finish().await?;
        }
        if let Some(writer) = state.settled.take() {
            writer.finish().await?;
        }
        // What is left: tickets never handed over, and those that changed after they were.
        // Computing the search vectors is most of the work (to_tsvector is 45-60 µs a ticket,
        // nearly all of it PostgreSQL's text parser), so a ticket whose texts are as they were
        // when it was written keeps its vector; the rows are written in as many parts as there
        // are writers, at the same time.
        let mut rows = Vec::new();
        let mut vectors = Vec::new();
        for row in state.rows.drain().filter_map(|(_, row)| row) {
            match state.written.get(&row.row.id) {
                Some((version, _)) if *version == row.row.version => continue,
                Some((_, text)) => vectors.push(*text != row.searchable_text_digest()),
                None => vectors.push(true),
            }
            rows.push(row);
        }
        let part = rows.len().div_ceil(writers.len().max(1)).max(1);
        futures::future::try_join_all(
            writers
                .iter_mut()
                .zip(rows.chunks(part).zip(vectors.chunks(part)))
                .map(|(conn, (part, vectors))| async move {
                    for (chunk, vectors) in part.chunks(10_000).zip(vectors.chunks(10_000)) {
                        let vectors = Vectors::WhereTextChanged(vectors.to_vec());
                        upsert_tickets(conn, chunk, vectors, Slas::All).await?;
                    }
                    Ok::<_, sqlx::Error>(())
                }),
        )
        .await?;
        let Some(conn) = writers.first_mut() else {
            return Ok(());
        };
        if state.flushed_early {
            sqlx::query(
                "INSERT INTO ticket_search_vectors (ticket_id, search_vector)
                 SELECT t.id, docket_ticket_vector(t.subject, t.description,
                                                   t.public_comments, t.internal_comments)
                   FROM tickets_view t
                  WHERE NOT EXISTS (SELECT 1 FROM ticket_search_vectors s
                                     WHERE s.ticket_id = t.id)",
            )
            .execute(&mut *conn)
            .await?;
        }
        // Counted once from the finished rows; the catch-up then adds its batches' changes.
        sqlx::query(
            "INSERT INTO ticket_counts (status, priority, tickets)
             SELECT status, priority, count(*) FROM tickets_view GROUP BY status, priority",
        )
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// Ticket rows a rebuild holds in memory. A ticket that no batch has changed for a while is
/// probably done with (most tickets of a long log were closed long before its end): it is
/// handed to a writer of its own, which computes its search vector and writes it while the
/// replay goes on, on the cores the replay leaves idle. The rest are written at the end (or,
/// when too many are held, earlier without vectors, which the end then fills in). A ticket that
/// changes after it was written is written again at the end, its vector recomputed only if its
/// texts changed.
#[derive(Debug, Default)]
pub struct TicketsRebuild {
    rows: HashMap<Uuid, Option<StoredTicket>>,
    /// Streams the comments into their copy beside the replay (`None`: on the batch's own
    /// connection, as in the catch-up).
    comments: Option<Writer<Vec<u8>>>,
    /// Writes settled tickets beside the replay.
    settled: Option<Writer<Vec<StoredTicket>>>,
    /// The version and text digest each ticket handed to `settled` had, as it is stored now.
    written: HashMap<Uuid, (i64, u64)>,
    /// Batches applied so far.
    batches: u64,
    /// The last batch that changed each ticket not yet handed over since.
    last_changed: HashMap<Uuid, u64>,
    /// The tickets each recent batch changed, oldest first.
    recent: std::collections::VecDeque<(u64, Vec<Uuid>)>,
    /// Rows have been written out and may have to be read back.
    flushed: bool,
    /// Some rows were written without their vectors.
    flushed_early: bool,
}

impl TicketsRebuild {
    /// About 1 KB a ticket: a few hundred megabytes at most.
    const MAX_ROWS: usize = 250_000;
    /// Batches without a change after which a ticket counts as settled (at 10,000 events a
    /// batch, a hundred thousand events). Too few, and a ticket still being worked on is
    /// written again and again; too many, and little is written beside the replay.
    const QUIET_BATCHES: u64 = 10;

    fn note_changed(&mut self, changed: Vec<Uuid>) {
        self.batches += 1;
        for id in &changed {
            self.last_changed.insert(*id, self.batches);
        }
        if !changed.is_empty() {
            self.recent.push_back((self.batches, changed));
        }
    }

    /// Hands the tickets unchanged for [`Self::QUIET_BATCHES`] to the settled writer, unless
    /// it is still busy: the replay never waits for it (the tickets wait for its next turn, or
    /// for the end).
    async fn hand_over_settled(&mut self) -> Result<(), ProjectionError> {
        let Some(writer) = &mut self.settled else {
            return Ok(());
        };
        if !writer.has_room() {
            return Ok(());
        }
        let mut settled = Vec::new();
        while let Some((batch, _)) = self.recent.front() {
            if batch + Self::QUIET_BATCHES > self.batches {
                break;
            }
            let Some((batch, ids)) = self.recent.pop_front() else {
                break;
            };
            for id in ids {
                if self.last_changed.get(&id) != Some(&batch) {
                    continue; // changed again since: a later entry has it
                }
                self.last_changed.remove(&id);
                if let Some(Some(row)) = self.rows.get(&id) {
                    self.written
                        .insert(id, (row.row.version, row.searchable_text_digest()));
                    settled.push(row.clone());
                }
            }
        }
        if settled.is_empty() {
            return Ok(());
        }
        writer.offer(settled).await
    }

    /// Writes the rows held so far, without their search vectors (the end fills them in), so
    /// memory stays bounded however many tickets the log has. A row the settled writer wrote
    /// as it still is stays as written; one whose texts changed since loses its vector.
    async fn flush_early(&mut self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        let mut rows = Vec::new();
        let mut stale = Vec::new();
        for row in self.rows.drain().filter_map(|(_, row)| row) {
            let id = row.row.id;
            if let Some((version, text)) = self.written.get(&id).copied() {
                if version == row.row.version {
                    continue;
                }
                if text == row.searchable_text_digest() {
                    self.written.insert(id, (row.row.version, text));
                } else {
                    self.written.remove(&id);
                    stale.push(id);
                }
            }
            rows.push(row);
        }
        self.last_changed.clear();
        self.recent.clear();
        for chunk in rows.chunks(10_000) {
            upsert_tickets(conn, chunk, Vectors::Defer, Slas::All).await?;
        }
        // The settled writer may still be writing an older version of these: its write then
        // finds a newer row and changes nothing.
        if !stale.is_empty() {
            sqlx::query("DELETE FROM ticket_search_vectors WHERE ticket_id = ANY($1)")
                .bind(&stale)
                .execute(&mut *conn)
                .await?;
        }
        self.flushed_early |= !rows.is_empty();
        self.flushed = true;
        Ok(())
    }
}

/// One writer's work on its own connection.
type WriteBatch<T> =
    for<'c> fn(&'c mut PgConnection, T) -> futures::future::BoxFuture<'c, Result<(), sqlx::Error>>;

fn copy_comment_batch(
    conn: &mut PgConnection,
    data: Vec<u8>,
) -> futures::future::BoxFuture<'_, Result<(), sqlx::Error>> {
    Box::pin(copy_binary(conn, data))
}

fn write_settled_tickets(
    conn: &mut PgConnection,
    rows: Vec<StoredTicket>,
) -> futures::future::BoxFuture<'_, Result<(), sqlx::Error>> {
    Box::pin(async move {
        for chunk in rows.chunks(10_000) {
            upsert_tickets(conn, chunk, Vectors::Compute, Slas::All).await?;
        }
        Ok(())
    })
}

/// Writes into the rebuild's copies on a connection and task of its own, so PostgreSQL stores
/// one batch's rows while the rebuild decodes and folds the next. At most two batches wait in
/// the channel, which bounds the memory; a sender that waits slows the replay if the writer
/// falls behind.
#[derive(Debug)]
struct Writer<T> {
    batches: tokio::sync::mpsc::Sender<T>,
    task: tokio::task::JoinHandle<Result<(), sqlx::Error>>,
}

impl<T: Send + 'static> Writer<T> {
    fn start(copies: Copies, write: WriteBatch<T>) -> Self {
        let (batches, mut received) = tokio::sync::mpsc::channel::<T>(2);
        let task = tokio::spawn(async move {
            let mut conn = copies.connect().await?;
            while let Some(batch) = received.recv().await {
                write(&mut conn, batch).await?;
            }
            let _ = sqlx::Connection::close(conn).await;
            Ok(())
        });
        Self { batches, task }
    }

    /// Queues one batch, waiting for room. If the task has stopped, it failed: its own error
    /// is returned.
    async fn send(&mut self, batch: T) -> Result<(), ProjectionError> {
        if self.batches.send(batch).await.is_err() {
            return Err(self.failure().await);
        }
        Ok(())
    }

    /// Nothing queued: the writer is at most busy with one batch.
    fn has_room(&self) -> bool {
        self.batches.capacity() == self.batches.max_capacity()
    }

    /// Queues one batch without waiting (after [`Self::has_room`], there is room; this task
    /// is the only sender).
    async fn offer(&mut self, batch: T) -> Result<(), ProjectionError> {
        match self.batches.try_send(batch) {
            Ok(()) => Ok(()),
            Err(tokio::sync::mpsc::error::TrySendError::Full(batch)) => self.send(batch).await,
            Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => Err(self.failure().await),
        }
    }

    async fn failure(&mut self) -> ProjectionError {
        Self::outcome((&mut self.task).await)
            .err()
            .unwrap_or_else(|| Self::stopped("a writer stopped early"))
    }

    /// Waits until everything queued is stored.
    async fn finish(self) -> Result<(), ProjectionError> {
        drop(self.batches);
        Self::outcome(self.task.await)
    }

    fn outcome(
        joined: Result<Result<(), sqlx::Error>, tokio::task::JoinError>,
    ) -> Result<(), ProjectionError> {
        match joined {
            Ok(written) => Ok(written?),
            Err(join) => Err(Self::stopped(join)),
        }
    }

    fn stopped(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> ProjectionError {
        ProjectionError::Database(sqlx::Error::Io(std::io::Error::other(cause)))
    }
}

/// Which rows' SLA state (and clocks) an upsert writes. Most events (comments, assignments,
/// edits) leave it as it was, and writing it anyway was much of a row's write: about 1.7 KB of
/// JSON sent, parsed into `jsonb` and compressed again per row per batch, and three clock rows
/// rewritten. Left out (sent as NULL), the stored state is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Slas {
    All,
    /// One flag per row.
    WhereChanged(Vec<bool>),
}

/// Whether an upsert computes the search vectors now or leaves them to the end of a rebuild.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Vectors {
    Compute,
    /// Computed for the rows whose flag is set (one per row); the others keep the stored one.
    /// Most events (status, assignment, SLA) do not touch the text, and `to_tsvector` over a
    /// ticket's whole text grows with every comment. The comment texts are sent, and written,
    /// only with a new vector; otherwise the stored ones stay. (A 64-bit digest decides
    /// "unchanged"; a collision would keep a stale text and vector until the next text change
    /// or a rebuild.)
    WhereTextChanged(Vec<bool>),
    Defer,
}

async fn apply(conn: &mut PgConnection, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
    let decoded = Decoded::<TicketEvent>::new(events)?;
    let existing: Vec<StoredTicket> = sqlx::query_as(&format!(
        "SELECT {TICKET_COLUMNS}, public_comments, internal_comments, sla
           FROM tickets_view WHERE id = ANY($1)"
    ))
    .bind(decoded.ids())
    .fetch_all(&mut *conn)
    .await?;
    // What each stored ticket was: an SLA state that is equal afterwards is not written again
    // (nor are its clocks). Compared as values: serialising it to hash it was 3.5 % of the
    // server's CPU in the command mix.
    let mut before: HashMap<Uuid, (u64, Option<TicketSla>, CountedAs)> = existing
        .iter()
        .map(|t| {
            let counted = CountedAs::of(&t.row);
            let sla = t.sla.as_ref().map(|sla| sla.0.clone());
            (t.row.id, (t.searchable_text_digest(), sla, counted))
        })
        .collect();
    let (changed, comments) = fold_batch(existing, decoded, fold)?;
    let mut counts = CountChanges::default();
    let (texts, slas): (Vec<bool>, Vec<bool>) = changed
        .iter()
        .map(|t| {
            counts.add(CountedAs::of(&t.row));
            match before.remove(&t.row.id) {
                Some((text, sla, counted)) => {
                    counts.remove(counted);
                    (
                        text != t.searchable_text_digest(),
                        sla.as_ref() != t.sla.as_ref().map(|sla| &sla.0),
                    )
                }
                None => (true, true),
            }
        })
        .unzip();
    let retexted: Vec<Uuid> = changed
        .iter()
        .zip(&texts)
        .filter(|(_, changed)| **changed)
        .map(|(t, _)| t.row.id)
        .collect();
    upsert_tickets(
        conn,
        &changed,
        Vectors::WhereTextChanged(texts),
        Slas::WhereChanged(slas),
    )
    .await?;
    crate::search_terms::maintain(conn, &retexted).await?;
    insert_comments(conn, &comments).await?;
    counts.write(conn).await?;
    Ok(())
}

/// The status and priority pair a ticket is counted under in `ticket_counts`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CountedAs {
    status: TicketStatus,
    priority: Priority,
}

impl CountedAs {
    fn of(ticket: &TicketRow) -> Self {
        Self {
            status: ticket.status,
            priority: ticket.priority,
        }
    }
}

/// How a batch moved the number of tickets of each status and priority (`ticket_counts`): every
/// ticket it changed is taken out of the pair it had (if it existed) and put into its new one,
/// so a ticket that kept both cancels out.
#[derive(Debug, Default)]
struct CountChanges(HashMap<CountedAs, i64>);

impl CountChanges {
    fn remove(&mut self, pair: CountedAs) {
        *self.0.entry(pair).or_default() -= 1;
    }

    fn add(&mut self, pair: CountedAs) {
        *self.0.entry(pair).or_default() += 1;
    }

    /// One statement: a pair that drops to no ticket loses its row (as a rebuild would never
    /// write it), the others are added to. A count driven below zero (or a new pair's count
    /// that is not positive) breaks the row's check and stops the projector there, rather than
    /// showing a wrong total.
    async fn write(self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        let (pairs, changes): (Vec<CountedAs>, Vec<i64>) =
            self.0.into_iter().filter(|(_, by)| *by != 0).unzip();
        if pairs.is_empty() {
            return Ok(());
        }
        let (statuses, priorities): (Vec<&str>, Vec<&str>) = pairs
            .into_iter()
            .map(|pair| (pair.status.as_str(), pair.priority.as_str()))
            .unzip();
        sqlx::query(
            // A CHECK is tested on the row an INSERT proposes, before ON CONFLICT could turn
            // it into an update: pairs that have a row are updated (or deleted), only new ones
            // inserted. The batch holds the projector's checkpoint row, so no other batch
            // inserts a pair meanwhile.
            "WITH change AS (
                 SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
                     AS c(status, priority, tickets)),
             updated AS (
                 UPDATE ticket_counts t SET tickets = t.tickets + c.tickets FROM change c
                  WHERE t.status = c.status AND t.priority = c.priority
                    AND t.tickets + c.tickets <> 0),
             emptied AS (
                 DELETE FROM ticket_counts t USING change c
                  WHERE t.status = c.status AND t.priority = c.priority
                    AND t.tickets + c.tickets = 0)
             INSERT INTO ticket_counts (status, priority, tickets)
             SELECT c.status, c.priority, c.tickets FROM change c
              WHERE NOT EXISTS (SELECT 1 FROM ticket_counts t
                                 WHERE t.status = c.status AND t.priority = c.priority)",
        )
        .bind(&statuses)
        .bind(&priorities)
        .bind(&changes)
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// One statement for the whole batch: arrays unnested server-side, so the statement has 18
/// parameters however many rows it writes, and PostgreSQL plans it once.
async fn upsert_tickets(
    conn: &mut PgConnection,
    tickets: &[StoredTicket],
    vectors: Vectors,
    slas: Slas,
) -> Result<(), sqlx::Error> {
    if tickets.is_empty() {
        return Ok(());
    }
    let all: Vec<&TicketRow> = tickets.iter().map(|t| &t.row).collect();
    let rows = || all.iter().copied();
    let ids: Vec<Uuid> = rows().map(|r| r.id).collect();
    let numbers: Vec<i64> = rows().map(|r| r.number).collect();
    let subjects: Vec<&str> = rows().map(|r| r.subject.as_str()).collect();
    let descriptions: Vec<&str> = rows().map(|r| r.description.as_str()).collect();
    let priorities: Vec<&str> = rows().map(|r| r.priority.as_str()).collect();
    let ranks: Vec<i16> = rows().map(|r| r.priority_rank).collect();
    let statuses: Vec<&str> = rows().map(|r| r.status.as_str()).collect();
    let categories: Vec<Option<&str>> = rows().map(|r| r.category.as_deref()).collect();
    // Arrays of arrays cannot be unnested row by row; each row's tags travel as JSON.
    let tags: Vec<serde_json::Value> = rows().map(|r| serde_json::json!(r.tags)).collect();
    let customers: Vec<Uuid> = rows().map(|r| r.customer_id).collect();
    let assignees: Vec<Option<Uuid>> = rows().map(|r| r.assignee_id).collect();
    let teams: Vec<Option<Uuid>> = rows().map(|r| r.team_id).collect();
    let levels: Vec<i32> = rows().map(|r| r.escalation_level).collect();
    let counts: Vec<i32> = rows().map(|r| r.comment_count).collect();
    let created: Vec<DateTime<Utc>> = rows().map(|r| r.created_at).collect();
    let updated: Vec<DateTime<Utc>> = rows().map(|r| r.updated_at).collect();
    let versions: Vec<i64> = rows().map(|r| r.version).collect();
    // The search vector comes from one SQL function (see migration 0006); a rebuild that has
    // to write rows before it is done leaves it NULL and fills it in at the end. A NULL vector,
    // comment text or SLA state in the new row keeps the stored one (see the conflict clause;
    // a ticket's SLA state, once it has one, never goes back to none).
    let (text_changed, write_text): (Vec<bool>, Vec<bool>) = match vectors {
        Vectors::Compute => (vec![true; tickets.len()], vec![true; tickets.len()]),
        Vectors::WhereTextChanged(flags) => (flags.clone(), flags),
        Vectors::Defer => (vec![false; tickets.len()], vec![true; tickets.len()]),
    };
    let write_sla = match slas {
        Slas::All => vec![true; tickets.len()],
        Slas::WhereChanged(flags) => flags,
    };
    let public: Vec<Option<&str>> = tickets
        .iter()
        .zip(&write_text)
        .map(|(t, write)| write.then_some(t.public_comments.as_str()))
        .collect();
    let internal: Vec<Option<&str>> = tickets
        .iter()
        .zip(&write_text)
        .map(|(t, write)| write.then_some(t.internal_comments.as_str()))
        .collect();
    let slas: Vec<Option<&sqlx::types::Json<TicketSla>>> = tickets
        .iter()
        .zip(&write_sla)
        .map(|(t, write)| t.sla.as_ref().filter(|_| *write))
        .collect();
    let sla_states: Vec<Option<&str>> = rows()
        .map(|r| r.sla_state.map(ClockState::as_str))
        .collect();
    let sla_due: Vec<Option<DateTime<Utc>>> = rows().map(|r| r.sla_due_at).collect();
    let sla_breached: Vec<bool> = rows().map(|r| r.sla_breached).collect();
    // The vector goes to its own table (migration 0018), and only for a row this statement
    // did write: an older version of a ticket (a rebuild's writer behind the replay) finds the
    // newer row, is not returned by the upsert, and so writes no vector either.
    sqlx::query(
        "WITH u AS (
             SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::text[],
                       $6::smallint[], $7::text[], $8::text[], $9::jsonb[], $10::uuid[],
                       $11::uuid[], $12::int[], $13::int[], $14::timestamptz[],
                       $15::timestamptz[], $16::bigint[], $17::text[], $18::text[],
                       $19::jsonb[], $20::text[], $21::timestamptz[], $22::bool[],
                       $23::uuid[], $24::bool[])
               AS u(id, number, subject, description, priority, priority_rank, status, category,
                    tags, customer_id, assignee_id, escalation_level, comment_count, created_at,
                    updated_at, version, public_comments, internal_comments, sla, sla_state,
                    sla_due_at, sla_breached, team_id, text_changed)),
         written AS (
         INSERT INTO tickets_view (id, number, subject, description, priority, priority_rank,
                status, category, tags, customer_id, assignee_id, escalation_level, comment_count,
                created_at, updated_at, version, public_comments, internal_comments,
                sla, sla_state, sla_due_at, sla_breached, team_id)
         SELECT u.id, u.number, u.subject, u.description, u.priority, u.priority_rank, u.status,
                u.category, ARRAY(SELECT jsonb_array_elements_text(u.tags)), u.customer_id,
                u.assignee_id, u.escalation_level, u.comment_count, u.created_at, u.updated_at,
                u.version, u.public_comments, u.internal_comments,
                u.sla, u.sla_state,
                u.sla_due_at, u.sla_breached, u.team_id
           FROM u
         ON CONFLICT (id) DO UPDATE SET
                subject = EXCLUDED.subject, description = EXCLUDED.description,
                priority = EXCLUDED.priority, priority_rank = EXCLUDED.priority_rank,
                status = EXCLUDED.status, category = EXCLUDED.category, tags = EXCLUDED.tags,
                assignee_id = EXCLUDED.assignee_id, escalation_level = EXCLUDED.escalation_level,
                comment_count = EXCLUDED.comment_count, updated_at = EXCLUDED.updated_at,
                version = EXCLUDED.version,
                public_comments = COALESCE(EXCLUDED.public_comments, tickets_view.public_comments),
                internal_comments = COALESCE(EXCLUDED.internal_comments,
                                             tickets_view.internal_comments),
                sla = COALESCE(EXCLUDED.sla, tickets_view.sla),
                sla_state = EXCLUDED.sla_state, sla_due_at = EXCLUDED.sla_due_at,
                sla_breached = EXCLUDED.sla_breached, team_id = EXCLUDED.team_id
          WHERE tickets_view.version < EXCLUDED.version
         RETURNING id)
         INSERT INTO ticket_search_vectors (ticket_id, search_vector)
         SELECT u.id, docket_ticket_vector(u.subject, u.description,
                                           u.public_comments, u.internal_comments)
           FROM u JOIN written w ON w.id = u.id
          WHERE u.text_changed
         ON CONFLICT (ticket_id) DO UPDATE SET search_vector = EXCLUDED.search_vector",
    )
    .bind(&ids)
    .bind(&numbers)
    .bind(&subjects)
    .bind(&descriptions)
    .bind(&priorities)
    .bind(&ranks)
    .bind(&statuses)
    .bind(&categories)
    .bind(&tags)
    .bind(&customers)
    .bind(&assignees)
    .bind(&levels)
    .bind(&counts)
    .bind(&created)
    .bind(&updated)
    .bind(&versions)
    .bind(&public)
    .bind(&internal)
    .bind(&slas)
    .bind(&sla_states)
    .bind(&sla_due)
    .bind(&sla_breached)
    .bind(&teams)
    .bind(&text_changed)
    .execute(&mut *conn)
    .await?;
    let clocks: Vec<crate::sla::ClockRow> = tickets
        .iter()
        .zip(&write_sla)
        .filter(|(_, write)| **write)
        .filter_map(|(t, _)| {
            t.sla
                .as_ref()
                .map(|sla| crate::sla::clock_rows(t.row.id, sla))
        })
        .flatten()
        .collect();
    crate::sla::upsert_clocks(conn, &clocks).await?;
    Ok(())
}

async fn insert_comments(conn: &mut PgConnection, rows: &[CommentRow]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let tickets: Vec<Uuid> = rows.iter().map(|r| r.ticket_id).collect();
    let authors: Vec<Uuid> = rows.iter().map(|r| r.author_id).collect();
    let roles: Vec<&str> = rows.iter().map(|r| r.author_role.as_str()).collect();
    let bodies: Vec<&str> = rows.iter().map(|r| r.body.as_str()).collect();
    let internal: Vec<bool> = rows.iter().map(|r| r.internal).collect();
    let created: Vec<DateTime<Utc>> = rows.iter().map(|r| r.created_at).collect();
    let sequences: Vec<i64> = rows.iter().map(|r| r.sequence).collect();
    sqlx::query(
        "INSERT INTO ticket_comments_view
                (id, ticket_id, author_id, author_role, body, internal, created_at, sequence)
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[],
                              $6::bool[], $7::timestamptz[], $8::bigint[])
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&ids)
    .bind(&tickets)
    .bind(&authors)
    .bind(&roles)
    .bind(&bodies)
    .bind(&internal)
    .bind(&created)
    .bind(&sequences)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The comments as `COPY … FROM STDIN (FORMAT binary)`: each value as PostgreSQL's binary
/// protocol sends it. The text format made PostgreSQL parse every value back: three UUIDs a
/// comment at sixteen `strtoul` calls each, and a timestamp, were a fifth of its COPY time.
fn comments_as_copy_binary(rows: &[CommentRow]) -> Result<Vec<u8>, sqlx::Error> {
    // Microseconds since 2000-01-01 UTC, truncated as sqlx encodes a bound timestamp, so a
    // row COPYed here equals the one the live projector inserts.
    let postgres_epoch = DateTime::<Utc>::from_timestamp(946_684_800, 0).unwrap_or_default();
    let mut out = Vec::with_capacity(19 + rows.len() * 200);
    out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    out.extend_from_slice(&0i32.to_be_bytes()); // flags: no OIDs
    out.extend_from_slice(&0i32.to_be_bytes()); // no header extension
    let field = |out: &mut Vec<u8>, bytes: &[u8]| -> Result<(), sqlx::Error> {
        let length = i32::try_from(bytes.len())
            .map_err(|_| sqlx::Error::Protocol("a comment field over 2 GiB".into()))?;
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(bytes);
        Ok(())
    };
    for row in rows {
        let created = (row.created_at - postgres_epoch)
            .num_microseconds()
            .ok_or_else(|| sqlx::Error::Protocol("a comment time out of range".into()))?;
        out.extend_from_slice(&8i16.to_be_bytes());
        field(&mut out, row.id.as_bytes())?;
        field(&mut out, row.ticket_id.as_bytes())?;
        field(&mut out, row.author_id.as_bytes())?;
        field(&mut out, row.author_role.as_str().as_bytes())?;
        field(&mut out, row.body.as_bytes())?;
        field(&mut out, &[u8::from(row.internal)])?;
        field(&mut out, &created.to_be_bytes())?;
        field(&mut out, &row.sequence.to_be_bytes())?;
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    Ok(out)
}

async fn copy_comments(conn: &mut PgConnection, rows: &[CommentRow]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    copy_binary(conn, comments_as_copy_binary(rows)?).await
}

async fn copy_binary(conn: &mut PgConnection, data: Vec<u8>) -> Result<(), sqlx::Error> {
    let mut copy = conn
        .copy_in_raw(
            "COPY ticket_comments_view
                 (id, ticket_id, author_id, author_role, body, internal, created_at, sequence)
             FROM STDIN (FORMAT binary)",
        )
        .await?;
    if let Err(error) = copy.send(data).await {
        let _ = copy.abort("sending the comments failed").await;
        return Err(error);
    }
    copy.finish().await?;
    Ok(())
}

// ---- queries ---------------------------------------------------------------------------------

pub async fn get<'e, E: PgExecutor<'e>>(
    executor: E,
    id: Uuid,
) -> Result<Option<TicketRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {TICKET_COLUMNS} FROM tickets_view WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(executor)
    .await
}

/// The ticket numbered `number`.
pub async fn get_by_number<'e, E: PgExecutor<'e>>(
    executor: E,
    number: i64,
) -> Result<Option<TicketRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {TICKET_COLUMNS} FROM tickets_view WHERE number = $1"
    ))
    .bind(number)
    .fetch_optional(executor)
    .await
}

/// The tickets not yet resolved or closed, oldest first.
pub async fn unfinished_ids<'e, E: PgExecutor<'e>>(executor: E) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM tickets_view WHERE status NOT IN ('resolved', 'closed') ORDER BY created_at",
    )
    .fetch_all(executor)
    .await
}

/// The version of a ticket's row, for read-your-writes waits.
pub async fn version<'e, E: PgExecutor<'e>>(
    executor: E,
    id: Uuid,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT version FROM tickets_view WHERE id = $1")
        .bind(id)
        .fetch_optional(executor)
        .await
}

/// A ticket's comments in the order they were made; internal ones only for staff.
pub async fn comments<'e, E: PgExecutor<'e>>(
    executor: E,
    ticket_id: Uuid,
    include_internal: bool,
) -> Result<Vec<CommentRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, ticket_id, author_id, author_role, body, internal, created_at, sequence
           FROM ticket_comments_view
          WHERE ticket_id = $1 AND ($2 OR NOT internal)
          ORDER BY sequence",
    )
    .bind(ticket_id)
    .bind(include_internal)
    .fetch_all(executor)
    .await
}

/// Sort orders for the ticket list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TicketSort {
    #[default]
    CreatedDesc,
    CreatedAsc,
    UpdatedDesc,
    UpdatedAsc,
    PriorityDesc,
    PriorityAsc,
    NumberDesc,
    NumberAsc,
    SlaDueDesc,
    SlaDueAsc,
}

impl TicketSort {
    /// Parses `created_at`, `-updated_at`, ... (`-` for descending).
    pub fn parse(text: &str) -> Option<Self> {
        let (descending, key) = match text.strip_prefix('-') {
            Some(key) => (true, key),
            None => (false, text),
        };
        Some(match (key, descending) {
            ("created_at", true) => TicketSort::CreatedDesc,
            ("created_at", false) => TicketSort::CreatedAsc,
            ("updated_at", true) => TicketSort::UpdatedDesc,
            ("updated_at", false) => TicketSort::UpdatedAsc,
            ("priority", true) => TicketSort::PriorityDesc,
            ("priority", false) => TicketSort::PriorityAsc,
            ("number", true) => TicketSort::NumberDesc,
            ("number", false) => TicketSort::NumberAsc,
            ("sla_due_at", true) => TicketSort::SlaDueDesc,
            ("sla_due_at", false) => TicketSort::SlaDueAsc,
            _ => return None,
        })
    }

    fn order_by(self) -> &'static str {
        match self {
            TicketSort::CreatedDesc => "created_at DESC, id DESC",
            TicketSort::CreatedAsc => "created_at ASC, id ASC",
            TicketSort::UpdatedDesc => "updated_at DESC, id DESC",
            TicketSort::UpdatedAsc => "updated_at ASC, id ASC",
            // "priority" sorts by urgency: critical first when descending.
            TicketSort::PriorityDesc => "priority_rank DESC, created_at ASC, id ASC",
            TicketSort::PriorityAsc => "priority_rank ASC, created_at ASC, id ASC",
            TicketSort::NumberDesc => "number DESC",
            TicketSort::NumberAsc => "number ASC",
            // Tickets without a running clock come last either way.
            TicketSort::SlaDueAsc => "sla_due_at ASC NULLS LAST, id ASC",
            TicketSort::SlaDueDesc => "sla_due_at DESC NULLS LAST, id DESC",
        }
    }
}

/// Filters for the ticket list and search; empty means "any".
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub statuses: Vec<TicketStatus>,
    pub priorities: Vec<Priority>,
    pub assignee_id: Option<Uuid>,
    /// Assigned to this team.
    pub team_id: Option<Uuid>,
    pub customer_id: Option<Uuid>,
    pub category: Option<String>,
    /// Has this tag.
    pub tag: Option<String>,
    /// Has any of these tags.
    pub tags_any: Vec<String>,
    /// Full text (web search syntax) over subject, description and comments.
    pub text: Option<String>,
    /// Whether `text` may match internal comments (staff only).
    pub include_internal: bool,
    /// Whether `text` written as a ticket number (`TKT-000051`, `#51`, `51`) also matches
    /// that ticket. The ranked search puts such a ticket first itself, so only lists ask.
    pub text_names_number: bool,
    /// The subject contains this, case-insensitively, taken literally.
    pub subject_contains: Option<String>,
    /// The ticket's SLA state is one of these.
    pub sla_states: Vec<ClockState>,
    pub sla_breached: Option<bool>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    /// Last changed at or after this instant.
    pub updated_from: Option<DateTime<Utc>>,
    /// Last changed before this instant.
    pub updated_to: Option<DateTime<Utc>>,
    /// Held by nobody (`assignee_id` then names no one).
    pub unassigned: bool,
    /// The ticket with this number.
    pub number: Option<i64>,
    pub sort: TicketSort,
    /// 1-based.
    pub page: i64,
    pub page_size: i64,
}

impl TicketFilter {
    /// Nothing but the text (and the page) narrows the search.
    pub fn is_text_only(&self) -> bool {
        self.statuses.is_empty() && self.priorities.is_empty() && !self.narrows_otherwise()
    }

    /// Nothing but statuses and priorities (or nothing at all) narrows the list: its total is
    /// kept in `ticket_counts`.
    fn is_counted_ahead(&self) -> bool {
        self.text.is_none() && !self.narrows_otherwise()
    }

    /// Something other than the text, statuses and priorities narrows.
    fn narrows_otherwise(&self) -> bool {
        // Every field named, so that a new filter must say whether it narrows.
        let TicketFilter {
            statuses: _,
            priorities: _,
            assignee_id,
            team_id,
            customer_id,
            category,
            tag,
            tags_any,
            text: _,
            include_internal: _,
            text_names_number: _,
            subject_contains,
            sla_states,
            sla_breached,
            created_from,
            created_to,
            updated_from,
            updated_to,
            unassigned,
            number,
            sort: _,
            page: _,
            page_size: _,
        } = self;
        assignee_id.is_some()
            || team_id.is_some()
            || customer_id.is_some()
            || category.is_some()
            || tag.is_some()
            || !tags_any.is_empty()
            || subject_contains.is_some()
            || !sla_states.is_empty()
            || sla_breached.is_some()
            || created_from.is_some()
            || created_to.is_some()
            || updated_from.is_some()
            || updated_to.is_some()
            || *unassigned
            || number.is_some()
    }
}

pub struct TicketPage {
    pub items: Vec<TicketRow>,
    pub total: i64,
}

/// `text` as a LIKE pattern that matches itself only: `%`, `_` and `\` lose their meaning.
pub fn like_literal(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

const SEARCH_CONFIG: &str = "'english'";

/// `ts_rank` weights for D, C, B, A: customers' ranks ignore internal comments.
fn rank_weights(filter: &TicketFilter) -> &'static str {
    if filter.include_internal {
        "'{0.1, 0.2, 0.4, 1.0}'"
    } else {
        "'{0, 0.2, 0.4, 1.0}'"
    }
}

/// `column` is one of `values`. A single value is written as `=`, so an index on the column can
/// also deliver rows in order (`= ANY` of one element does not).
/// Values a text column is matched against: the domain's enums, stored as their wire text.
trait StoredAs: Copy {
    fn stored(self) -> &'static str;
}

impl StoredAs for TicketStatus {
    fn stored(self) -> &'static str {
        self.as_str()
    }
}

impl StoredAs for Priority {
    fn stored(self) -> &'static str {
        self.as_str()
    }
}

impl StoredAs for ClockState {
    fn stored(self) -> &'static str {
        self.as_str()
    }
}

fn push_one_of<T: StoredAs>(query: &mut QueryBuilder<'_, Postgres>, column: &str, values: &[T]) {
    match values {
        [] => {}
        [one] => {
            query
                .push(format!(" AND {column} = "))
                .push_bind(one.stored());
        }
        many => {
            query
                .push(format!(" AND {column} = ANY("))
                .push_bind(many.iter().map(|v| v.stored()).collect::<Vec<_>>())
                .push(")");
        }
    }
}

/// The tickets, as `t`, joined to their search vectors, as `s` (kept apart: migration 0018).
const TICKETS_WITH_VECTORS: &str =
    "tickets_view t JOIN ticket_search_vectors s ON s.ticket_id = t.id";

/// What [`push_filters`] filters: the tickets, with their vectors when the text narrows.
fn tickets_for(filter: &TicketFilter) -> &'static str {
    if filter.text.is_some() {
        TICKETS_WITH_VECTORS
    } else {
        "tickets_view t"
    }
}

/// The filter's conditions, over [`tickets_for`] the same filter.
fn push_filters(query: &mut QueryBuilder<'_, Postgres>, filter: &TicketFilter) {
    query.push(" WHERE TRUE");
    if let Some(text) = &filter.text {
        // Text written as a ticket number (`TKT-000051`, `#51`, `51`) also finds that ticket.
        let number = TicketNumber::recognise(text).filter(|_| filter.text_names_number);
        query.push(" AND ((");
        // Written out (not in a subquery) so the planner uses the GIN index.
        query
            .push(format!(
                "s.search_vector @@ websearch_to_tsquery({SEARCH_CONFIG}, "
            ))
            .push_bind(text.clone())
            .push(")");
        if !filter.include_internal {
            // Customers never match on internal comments (weight D), which the index alone
            // cannot exclude: their candidates are checked again without them.
            query
                .push(format!(
                    " AND ts_filter(s.search_vector, '{{a,b,c}}') @@ websearch_to_tsquery({SEARCH_CONFIG}, "
                ))
                .push_bind(text.clone())
                .push(")");
        }
        query.push(")");
        if let Some(number) = number {
            query.push(" OR t.number = ").push_bind(number.0);
        }
        query.push(")");
    }
    if let Some(subject) = &filter.subject_contains {
        query
            .push(" AND t.subject ILIKE '%' || ")
            .push_bind(like_literal(subject))
            .push(" || '%' ESCAPE '\\'");
    }
    if !filter.tags_any.is_empty() {
        query
            .push(" AND t.tags && ")
            .push_bind(filter.tags_any.clone());
    }
    push_one_of(query, "t.status", &filter.statuses);
    push_one_of(query, "t.sla_state", &filter.sla_states);
    if let Some(breached) = filter.sla_breached {
        query.push(" AND t.sla_breached = ").push_bind(breached);
    }
    push_one_of(query, "t.priority", &filter.priorities);
    if let Some(assignee) = filter.assignee_id {
        query.push(" AND t.assignee_id = ").push_bind(assignee);
    }
    if let Some(team) = filter.team_id {
        query.push(" AND t.team_id = ").push_bind(team);
    }
    if let Some(customer) = filter.customer_id {
        query.push(" AND t.customer_id = ").push_bind(customer);
    }
    if let Some(category) = &filter.category {
        query.push(" AND t.category = ").push_bind(category.clone());
    }
    if let Some(tag) = &filter.tag {
        query
            .push(" AND t.tags @> ARRAY[")
            .push_bind(tag.clone())
            .push("]::text[]");
    }
    if let Some(from) = filter.created_from {
        query.push(" AND t.created_at >= ").push_bind(from);
    }
    if let Some(to) = filter.created_to {
        query.push(" AND t.created_at < ").push_bind(to);
    }
    if let Some(from) = filter.updated_from {
        query.push(" AND t.updated_at >= ").push_bind(from);
    }
    if let Some(to) = filter.updated_to {
        query.push(" AND t.updated_at < ").push_bind(to);
    }
    if filter.unassigned {
        query.push(" AND t.assignee_id IS NULL");
    }
    if let Some(number) = filter.number {
        query.push(" AND t.number = ").push_bind(number);
    }
}

/// How many tickets match the filter.
async fn count_matching(pool: &sqlx::PgPool, filter: &TicketFilter) -> Result<i64, sqlx::Error> {
    let mut count: QueryBuilder<Postgres> = if filter.is_counted_ahead() {
        let mut sum = QueryBuilder::new(
            "SELECT coalesce(sum(t.tickets), 0)::bigint FROM ticket_counts t WHERE TRUE",
        );
        push_one_of(&mut sum, "t.status", &filter.statuses);
        push_one_of(&mut sum, "t.priority", &filter.priorities);
        sum
    } else {
        let mut count = QueryBuilder::new(format!("SELECT count(*) FROM {}", tickets_for(filter)));
        push_filters(&mut count, filter);
        count
    };
    count.build_query_scalar().fetch_one(pool).await
}

/// One page of tickets and the total matching the filter.
pub async fn list(pool: &sqlx::PgPool, filter: &TicketFilter) -> Result<TicketPage, sqlx::Error> {
    // Counted apart: the count is an index-only scan, and the page an index scan that stops
    // after the page (counting in the same statement would fetch every matching row).
    let total = count_matching(pool, filter).await?;

    let mut query: QueryBuilder<Postgres> = QueryBuilder::new(format!(
        "SELECT {TICKET_COLUMNS} FROM {}",
        tickets_for(filter)
    ));
    push_filters(&mut query, filter);
    query
        .push(" ORDER BY ")
        .push(filter.sort.order_by())
        .push(" LIMIT ")
        .push_bind(filter.page_size)
        .push(" OFFSET ")
        .push_bind((filter.page.max(1) - 1).saturating_mul(filter.page_size));
    let items = query.build_query_as().fetch_all(pool).await?;
    Ok(TicketPage { items, total })
}

/// One search result: the ticket, how well it matched, and where, with the matching words
/// wrapped in `<mark>`…`</mark>` (the surrounding text is HTML-escaped, so a snippet is safe to
/// render as HTML).
#[derive(Debug, Clone, FromRow)]
pub struct SearchHit {
    #[sqlx(flatten)]
    pub ticket: TicketRow,
    pub rank: f32,
    /// `ticket` (subject or description) or `comment`.
    pub matched_in: String,
    pub subject_highlight: String,
    pub snippet: String,
    /// How many tickets match in all (the same on every hit).
    pub total: i64,
}

pub struct SearchPage {
    pub hits: Vec<SearchHit>,
    pub total: i64,
    /// The search was by staff, by its text alone, and its query is not registered: if it
    /// matched many tickets, registering it would make it quick.
    pub worth_registering: bool,
}

/// HTML-escapes a column inside SQL, before `ts_headline` adds its own markup.
fn escaped(column: &str) -> String {
    format!("replace(replace(replace({column}, '&', '&amp;'), '<', '&lt;'), '>', '&gt;')")
}

const HEADLINE_OPTIONS: &str = "'StartSel=<mark>, StopSel=</mark>, MaxWords=30, MinWords=10, MaxFragments=2, FragmentDelimiter=\" … \"'";

/// Full-text search, best matches first. `filter.text` is required; the other filters narrow.
/// One GIN index scan finds the matches; one pass over them ranks and counts them, holding only
/// ids, ranks and the count (a separate count visited every match's row a second time: half
/// the time of a broad search); the page's rows are then fetched by key, and snippets made for
/// them only.
pub async fn search(pool: &sqlx::PgPool, filter: &TicketFilter) -> Result<SearchPage, sqlx::Error> {
    let text = filter.text.clone().unwrap_or_default();
    // A staff search by its text alone may find its matches ranked ahead of time.
    let term = if filter.include_internal && filter.is_text_only() {
        crate::search_terms::lookup(pool, &text).await?
    } else {
        crate::search_terms::Term::Empty
    };
    if let crate::search_terms::Term::Registered { term, tickets } = &term {
        let hits = search_page(pool, filter, Some((term, *tickets))).await?;
        return Ok(SearchPage {
            hits,
            total: *tickets,
            worth_registering: false,
        });
    }
    let hits = search_page(pool, filter, None).await?;
    let total = match hits.first() {
        Some(hit) => hit.total,
        // A page past the last match has no row to carry the count.
        None if filter.page > 1 => count_matching(pool, filter).await?,
        None => 0,
    };
    Ok(SearchPage {
        hits,
        total,
        worth_registering: term == crate::search_terms::Term::Unregistered,
    })
}

/// One page of a search: ranked over every match, or read in rank order from the entries of a
/// registered query (`registered`: the query and its count).
async fn search_page(
    pool: &sqlx::PgPool,
    filter: &TicketFilter,
    registered: Option<(&String, i64)>,
) -> Result<Vec<SearchHit>, sqlx::Error> {
    let text = filter.text.clone().unwrap_or_default();
    let weights = rank_weights(filter);
    let comments = if filter.include_internal {
        "t.public_comments || E'\\n\\n' || t.internal_comments"
    } else {
        "t.public_comments"
    };
    let columns = TICKET_COLUMNS
        .split(", ")
        .map(|c| format!("t.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let mut query: QueryBuilder<Postgres> =
        QueryBuilder::new("WITH query AS (SELECT websearch_to_tsquery(");
    query
        .push(SEARCH_CONFIG)
        .push(", ")
        .push_bind(text)
        .push(") AS q), ");
    match registered {
        // The page straight from the query's entries, in the index's order (the same order as
        // below, and the same ranks: `ts_rank` of the same vectors with the same weights).
        Some((term, tickets)) => {
            query
                .push("page AS (SELECT e.ticket_id AS id, e.created_at, e.rank, ")
                .push_bind(tickets)
                .push("::bigint AS total FROM ticket_terms e WHERE e.term = ")
                .push_bind(term.clone())
                .push(" ORDER BY e.rank DESC, e.created_at DESC, e.ticket_id LIMIT ");
        }
        None => {
            // The rank is computed below the window (`OFFSET 0` keeps the subquery apart):
            // above it, the window would have to hold every match's search vector to rank it
            // afterwards, and a broad query's spilled to temporary files.
            query.push(format!(
                "page AS (SELECT m.id, m.created_at, m.rank, count(*) OVER () AS total
                            FROM (SELECT t.id, t.created_at,
                                         ts_rank({weights}, s.search_vector, query.q) AS rank
                                    FROM {TICKETS_WITH_VECTORS}, query"
            ));
            push_filters(&mut query, filter);
            query.push(" OFFSET 0) m ORDER BY m.rank DESC, m.created_at DESC, m.id LIMIT ");
        }
    }
    query
        .push_bind(filter.page_size)
        .push(" OFFSET ")
        .push_bind((filter.page.max(1) - 1).saturating_mul(filter.page_size));
    let own = format!(
        "(setweight(to_tsvector({SEARCH_CONFIG}, t.subject), 'A') || \
          to_tsvector({SEARCH_CONFIG}, t.description))"
    );
    query.push(format!(
        ") SELECT {columns}, p.rank::real AS rank, p.total,
                CASE WHEN {own} @@ query.q THEN 'ticket' ELSE 'comment' END AS matched_in,
                ts_headline({SEARCH_CONFIG}, {subject}, query.q,
                            'StartSel=<mark>, StopSel=</mark>, HighlightAll=true') AS subject_highlight,
                CASE WHEN {own} @@ query.q
                     THEN ts_headline({SEARCH_CONFIG}, {description}, query.q, {HEADLINE_OPTIONS})
                     ELSE ts_headline({SEARCH_CONFIG}, {comment_text}, query.q, {HEADLINE_OPTIONS})
                END AS snippet
           FROM page p JOIN tickets_view t ON t.id = p.id, query
          ORDER BY p.rank DESC, p.created_at DESC, p.id",
        subject = escaped("t.subject"),
        description = escaped("t.description"),
        comment_text = escaped(&format!("left({comments}, 20000)")),
    ));
    query.build_query_as().fetch_all(pool).await
}

/// Up to `limit` subjects starting with `prefix` (case-insensitively), most recently active
/// first; for a customer, only from their own tickets.
pub async fn suggest(
    pool: &sqlx::PgPool,
    prefix: &str,
    customer: Option<Uuid>,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT subject FROM tickets_view
          WHERE lower(subject) LIKE lower($1) || '%' ESCAPE '\\'
            AND ($2::uuid IS NULL OR customer_id = $2)
          GROUP BY subject
          ORDER BY max(updated_at) DESC, subject
          LIMIT $3",
    )
    .bind(like_literal(prefix))
    .bind(customer)
    .bind(limit)
    .fetch_all(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use docket_domain::Role;
    use docket_domain::values::{
        Actor, CommentBody, CommentId, Description, Priority, Subject, Tags, TicketId,
        TicketNumber, TicketStatus, UserId,
    };

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, 9, minute, 0)
            .single()
            .unwrap_or_default()
    }

    fn agent() -> Actor {
        Actor::new(UserId(Uuid::from_u128(2)), Role::Agent)
    }

    fn created(id: Uuid) -> TicketEvent {
        TicketEvent::TicketCreated {
            ticket_id: TicketId(id),
            number: TicketNumber(7),
            customer_id: UserId(Uuid::from_u128(1)),
            subject: Subject::parse("Printer").unwrap_or_else(|e| panic!("{e}")),
            description: Description::parse("It jams").unwrap_or_else(|e| panic!("{e}")),
            priority: Priority::Low,
            category: None,
            tags: Tags::default(),
            created_by: agent(),
            occurred_at: at(0),
        }
    }

    #[test]
    fn folding_a_ticket_history_gives_the_row_and_its_comments() {
        let id = Uuid::from_u128(9);
        let mut row = None;
        let mut comments = Vec::new();
        let history = vec![
            created(id),
            TicketEvent::TicketPriorityChanged {
                from: Priority::Low,
                to: Priority::Critical,
                changed_by: agent(),
                occurred_at: at(1),
            },
            TicketEvent::CommentAdded {
                comment_id: CommentId(Uuid::from_u128(5)),
                body: CommentBody::parse("On it").unwrap_or_else(|e| panic!("{e}")),
                internal: true,
                automated: false,
                author: agent(),
                occurred_at: at(2),
            },
            TicketEvent::TicketStatusChanged {
                from: TicketStatus::New,
                to: TicketStatus::InProgress,
                comment: None,
                changed_by: agent(),
                occurred_at: at(3),
            },
        ];
        for (index, event) in history.into_iter().enumerate() {
            if let Ok(Some(comment)) = fold(&mut row, id, index as i64 + 1, event) {
                comments.push(comment);
            }
        }
        let stored = row.unwrap_or_else(|| panic!("no row"));
        assert_eq!(stored.internal_comments, "On it");
        assert_eq!(stored.public_comments, "");
        let row = stored.row;
        assert_eq!(row.priority, Priority::Critical);
        assert_eq!(row.priority_rank, 4);
        assert_eq!(row.status, TicketStatus::InProgress);
        assert_eq!(row.comment_count, 1);
        assert_eq!(row.version, 4);
        assert_eq!(row.updated_at, at(3));
        assert_eq!(comments.len(), 1);
        assert!(comments[0].internal);
    }

    #[test]
    fn applying_an_event_twice_changes_nothing() {
        let id = Uuid::from_u128(9);
        let mut row = None;
        assert!(fold(&mut row, id, 1, created(id)).is_ok());
        let comment = TicketEvent::CommentAdded {
            comment_id: CommentId(Uuid::from_u128(5)),
            body: CommentBody::parse("Hi").unwrap_or_else(|e| panic!("{e}")),
            internal: false,
            automated: false,
            author: agent(),
            occurred_at: at(2),
        };
        assert!(matches!(
            fold(&mut row, id, 2, comment.clone()),
            Ok(Some(_))
        ));
        let once = row.clone();
        assert_eq!(fold(&mut row, id, 2, comment), Ok(None));
        assert_eq!(row, once);
    }

    #[test]
    fn an_event_before_creation_is_refused_not_skipped() {
        let id = Uuid::from_u128(9);
        let mut row = None;
        let result = fold(
            &mut row,
            id,
            1,
            TicketEvent::TicketEscalated {
                from_level: 0,
                to_level: 1,
                reason: docket_domain::values::Reason::parse("x").unwrap_or_else(|e| panic!("{e}")),
                escalated_to: None,
                escalated_by: agent(),
                occurred_at: at(0),
            },
        );
        assert_eq!(
            result,
            Err("TicketEscalated before TicketCreated".to_string())
        );
    }

    #[test]
    fn comments_stream_as_binary_copy_with_their_texts_verbatim() {
        let comment = CommentRow {
            id: Uuid::from_u128(1),
            ticket_id: Uuid::from_u128(2),
            author_id: Uuid::from_u128(3),
            author_role: Role::Agent,
            body: "a\tb\r\nc \\N".into(),
            internal: true,
            created_at: at(4) + chrono::Duration::nanoseconds(1_999),
            sequence: 5,
        };
        let data = comments_as_copy_binary(std::slice::from_ref(&comment)).expect("encodes");
        assert_eq!(&data[..11], b"PGCOPY\n\xff\r\n\0");
        assert_eq!(&data[11..19], &[0; 8]);
        let mut rest = &data[19..];
        let mut take = |n: usize| {
            let (head, tail) = rest.split_at(n);
            rest = tail;
            head.to_vec()
        };
        assert_eq!(take(2), 8i16.to_be_bytes());
        let mut fields = Vec::new();
        for _ in 0..8 {
            let length = i32::from_be_bytes(take(4).try_into().expect("4 bytes"));
            fields.push(take(usize::try_from(length).expect("not NULL")));
        }
        assert_eq!(take(2), (-1i16).to_be_bytes());
        assert!(rest.is_empty());
        assert_eq!(fields[0], Uuid::from_u128(1).as_bytes());
        assert_eq!(fields[2], Uuid::from_u128(3).as_bytes());
        assert_eq!(fields[3], b"agent");
        // Tabs, newlines and backslashes need no escaping in the binary format.
        assert_eq!(fields[4], "a\tb\r\nc \\N".as_bytes());
        assert_eq!(fields[5], [1]);
        // Microseconds since 2000-01-01, truncated as the binary protocol sends a bound
        // timestamp, never rounded.
        let micros = (at(4).timestamp() - 946_684_800) * 1_000_000 + 1;
        assert_eq!(fields[6], micros.to_be_bytes());
        assert_eq!(fields[7], 5i64.to_be_bytes());
    }

    #[test]
    fn sort_keys_parse_with_a_minus_for_descending() {
        assert_eq!(
            TicketSort::parse("-priority"),
            Some(TicketSort::PriorityDesc)
        );
        assert_eq!(TicketSort::parse("number"), Some(TicketSort::NumberAsc));
        assert_eq!(TicketSort::parse("colour"), None);
    }
}
