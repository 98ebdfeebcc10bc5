//! The ticket list and ticket detail read model: `tickets_view` and `ticket_comments_view`.

use chrono::{DateTime, Utc};
use docket_domain::ticket::TicketEvent;
use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgExecutor, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::fold::{self, Decoded, VersionedRow, fold_batch};
use crate::log::RecordedEvent;
use crate::runtime::{Projection, ProjectionError};

/// One ticket as lists and detail pages show it.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, Serialize)]
pub struct TicketRow {
    pub id: Uuid,
    pub number: i64,
    pub subject: String,
    pub description: String,
    pub priority: String,
    pub priority_rank: i16,
    pub status: String,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub customer_id: Uuid,
    pub assignee_id: Option<Uuid>,
    pub escalation_level: i32,
    pub comment_count: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The aggregate version (sequence of the last event) this row reflects.
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow, Serialize)]
pub struct CommentRow {
    pub id: Uuid,
    pub ticket_id: Uuid,
    pub author_id: Uuid,
    pub author_role: String,
    pub body: String,
    pub internal: bool,
    pub created_at: DateTime<Utc>,
    pub sequence: i64,
}

/// Folds one event into a ticket row. Pure, and exhaustive over the events: a new event type
/// does not compile until this read model decides what it means.
pub fn fold(
    row: &mut Option<TicketRow>,
    ticket_id: Uuid,
    sequence: i64,
    event: TicketEvent,
) -> Result<Option<CommentRow>, String> {
    if row
        .as_ref()
        .is_some_and(|existing| sequence <= existing.version)
    {
        return Ok(None); // already applied: replaying a batch changes nothing
    }
    let occurred_at = event.occurred_at();
    let Some(ticket) = row.as_mut() else {
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
        *row = Some(TicketRow {
            id: ticket_id,
            number: number.0,
            subject: subject.into_string(),
            description: description.into_string(),
            priority: priority.as_str().to_string(),
            priority_rank: priority.urgency(),
            status: "new".to_string(),
            category: category.map(|c| c.into_string()),
            tags: tags.to_strings(),
            customer_id: customer_id.0,
            assignee_id: None,
            escalation_level: 0,
            comment_count: 0,
            created_at: occurred_at,
            updated_at: occurred_at,
            version: sequence,
        });
        return Ok(None);
    };
    let mut comment = None;
    match event {
        TicketEvent::TicketCreated { .. } => {
            return Err("TicketCreated for a ticket that already exists".into());
        }
        TicketEvent::TicketDetailsUpdated {
            subject,
            description,
            category,
            tags,
            ..
        } => {
            if let Some(subject) = subject {
                ticket.subject = subject.into_string();
            }
            if let Some(description) = description {
                ticket.description = description.into_string();
            }
            if let Some(category) = category {
                ticket.category = category.map(|c| c.into_string());
            }
            if let Some(tags) = tags {
                ticket.tags = tags.to_strings();
            }
        }
        TicketEvent::TicketPriorityChanged { to, .. } => {
            ticket.priority = to.as_str().to_string();
            ticket.priority_rank = to.urgency();
        }
        TicketEvent::TicketStatusChanged { to, .. } => ticket.status = to.as_str().to_string(),
        TicketEvent::TicketAssigned { assignee_id, .. } => ticket.assignee_id = Some(assignee_id.0),
        TicketEvent::TicketEscalated { to_level, .. } => {
            ticket.escalation_level = i32::try_from(to_level).unwrap_or(i32::MAX);
        }
        TicketEvent::CommentAdded {
            comment_id,
            body,
            internal,
            author,
            occurred_at,
        } => {
            ticket.comment_count += 1;
            comment = Some(CommentRow {
                id: comment_id.0,
                ticket_id,
                author_id: author.user_id.0,
                author_role: author.role.as_str().to_string(),
                body: body.into_string(),
                internal,
                created_at: occurred_at,
                sequence,
            });
        }
    }
    ticket.updated_at = occurred_at;
    ticket.version = sequence;
    Ok(comment)
}

/// Decodes a stored ticket event.
pub fn decode(event: &RecordedEvent) -> Result<TicketEvent, ProjectionError> {
    fold::decode(event)
}

impl VersionedRow for TicketRow {
    fn id(&self) -> Uuid {
        self.id
    }

    fn version(&self) -> i64 {
        self.version
    }
}

/// The projector for `tickets_view` and `ticket_comments_view`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TicketsProjection;

const TICKET_COLUMNS: &str = "id, number, subject, description, priority, priority_rank, status, \
     category, tags, customer_id, assignee_id, escalation_level, comment_count, created_at, \
     updated_at, version";

impl Projection for TicketsProjection {
    const NAME: &'static str = "tickets";
    const AGGREGATE_TYPES: &'static [&'static str] = &["ticket"];
    const TABLES: &'static [&'static str] = &["tickets_view", "ticket_comments_view"];

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let decoded = Decoded::<TicketEvent>::new(events)?;
        let existing: Vec<TicketRow> = sqlx::query_as(&format!(
            "SELECT {TICKET_COLUMNS} FROM tickets_view WHERE id = ANY($1)"
        ))
        .bind(decoded.ids())
        .fetch_all(&mut *conn)
        .await?;
        let (changed, comments) = fold_batch(existing, decoded, fold)?;
        let to_write: Vec<&TicketRow> = changed.iter().collect();
        upsert_tickets(conn, &to_write).await?;
        insert_comments(conn, &comments).await?;
        Ok(())
    }
}

/// Rows per statement: well under PostgreSQL's 65,535 bind parameters.
const ROWS_PER_STATEMENT: usize = 1_000;

async fn upsert_tickets(conn: &mut PgConnection, rows: &[&TicketRow]) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut query: QueryBuilder<Postgres> =
            QueryBuilder::new(format!("INSERT INTO tickets_view ({TICKET_COLUMNS}) "));
        query.push_values(chunk.iter(), |mut b, row| {
            b.push_bind(row.id)
                .push_bind(row.number)
                .push_bind(&row.subject)
                .push_bind(&row.description)
                .push_bind(&row.priority)
                .push_bind(row.priority_rank)
                .push_bind(&row.status)
                .push_bind(&row.category)
                .push_bind(&row.tags)
                .push_bind(row.customer_id)
                .push_bind(row.assignee_id)
                .push_bind(row.escalation_level)
                .push_bind(row.comment_count)
                .push_bind(row.created_at)
                .push_bind(row.updated_at)
                .push_bind(row.version);
        });
        query.push(
            " ON CONFLICT (id) DO UPDATE SET
                subject = EXCLUDED.subject, description = EXCLUDED.description,
                priority = EXCLUDED.priority, priority_rank = EXCLUDED.priority_rank,
                status = EXCLUDED.status, category = EXCLUDED.category, tags = EXCLUDED.tags,
                assignee_id = EXCLUDED.assignee_id, escalation_level = EXCLUDED.escalation_level,
                comment_count = EXCLUDED.comment_count, updated_at = EXCLUDED.updated_at,
                version = EXCLUDED.version
              WHERE tickets_view.version < EXCLUDED.version",
        );
        query.build().persistent(false).execute(&mut *conn).await?;
    }
    Ok(())
}

async fn insert_comments(conn: &mut PgConnection, rows: &[CommentRow]) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut query: QueryBuilder<Postgres> = QueryBuilder::new(
            "INSERT INTO ticket_comments_view
               (id, ticket_id, author_id, author_role, body, internal, created_at, sequence) ",
        );
        query.push_values(chunk.iter(), |mut b, row| {
            b.push_bind(row.id)
                .push_bind(row.ticket_id)
                .push_bind(row.author_id)
                .push_bind(&row.author_role)
                .push_bind(&row.body)
                .push_bind(row.internal)
                .push_bind(row.created_at)
                .push_bind(row.sequence);
        });
        query.push(" ON CONFLICT (id) DO NOTHING");
        query.build().persistent(false).execute(&mut *conn).await?;
    }
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
        }
    }
}

/// Filters for the ticket list and search; empty means "any".
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub statuses: Vec<String>,
    pub priorities: Vec<String>,
    pub assignee_id: Option<Uuid>,
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
    /// The subject contains this, case-insensitively, taken literally.
    pub subject_contains: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    pub sort: TicketSort,
    /// 1-based.
    pub page: i64,
    pub page_size: i64,
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

fn push_filters(query: &mut QueryBuilder<'_, Postgres>, filter: &TicketFilter) {
    query.push(" WHERE TRUE");
    if let Some(text) = &filter.text {
        query
            .push(format!(
                " AND (t.search @@ websearch_to_tsquery({SEARCH_CONFIG}, "
            ))
            .push_bind(text.clone())
            .push(format!(
                ") OR EXISTS (SELECT 1 FROM ticket_comments_view c WHERE c.ticket_id = t.id \
                   AND c.search @@ websearch_to_tsquery({SEARCH_CONFIG}, "
            ))
            .push_bind(text.clone())
            .push(") AND (")
            .push_bind(filter.include_internal)
            .push(" OR NOT c.internal)))");
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
    if !filter.statuses.is_empty() {
        query
            .push(" AND t.status = ANY(")
            .push_bind(filter.statuses.clone())
            .push(")");
    }
    if !filter.priorities.is_empty() {
        query
            .push(" AND t.priority = ANY(")
            .push_bind(filter.priorities.clone())
            .push(")");
    }
    if let Some(assignee) = filter.assignee_id {
        query.push(" AND t.assignee_id = ").push_bind(assignee);
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
}

/// One page of tickets and the total matching the filter.
pub async fn list(pool: &sqlx::PgPool, filter: &TicketFilter) -> Result<TicketPage, sqlx::Error> {
    let mut count: QueryBuilder<Postgres> =
        QueryBuilder::new("SELECT count(*) FROM tickets_view t");
    push_filters(&mut count, filter);
    let total: i64 = count.build_query_scalar().fetch_one(pool).await?;

    let mut query: QueryBuilder<Postgres> =
        QueryBuilder::new(format!("SELECT {TICKET_COLUMNS} FROM tickets_view t"));
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
}

pub struct SearchPage {
    pub hits: Vec<SearchHit>,
    pub total: i64,
}

/// HTML-escapes a column inside SQL, before `ts_headline` adds its own markup.
fn escaped(column: &str) -> String {
    format!("replace(replace(replace({column}, '&', '&amp;'), '<', '&lt;'), '>', '&gt;')")
}

const HEADLINE_OPTIONS: &str = "'StartSel=<mark>, StopSel=</mark>, MaxWords=30, MinWords=10, MaxFragments=2, FragmentDelimiter=\" … \"'";

/// Full-text search, best matches first. `filter.text` is required; the other filters narrow.
pub async fn search(pool: &sqlx::PgPool, filter: &TicketFilter) -> Result<SearchPage, sqlx::Error> {
    let text = filter.text.clone().unwrap_or_default();
    let mut count: QueryBuilder<Postgres> =
        QueryBuilder::new("SELECT count(*) FROM tickets_view t");
    push_filters(&mut count, filter);
    let total: i64 = count.build_query_scalar().fetch_one(pool).await?;

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
        .push(") AS q) ");
    query.push(format!(
        "SELECT {columns},
                greatest(ts_rank(t.search, query.q),
                         coalesce((SELECT max(ts_rank(c.search, query.q)) * 0.8 FROM ticket_comments_view c
                                    WHERE c.ticket_id = t.id AND c.search @@ query.q
                                      AND ("
    ));
    query.push_bind(filter.include_internal);
    query.push(format!(
        " OR NOT c.internal)), 0))::real AS rank,
                CASE WHEN t.search @@ query.q THEN 'ticket' ELSE 'comment' END AS matched_in,
                ts_headline({SEARCH_CONFIG}, {subject}, query.q,
                            'StartSel=<mark>, StopSel=</mark>, HighlightAll=true') AS subject_highlight,
                CASE WHEN t.search @@ query.q
                     THEN ts_headline({SEARCH_CONFIG}, {description}, query.q, {HEADLINE_OPTIONS})
                     ELSE coalesce((SELECT ts_headline({SEARCH_CONFIG}, {body}, query.q, {HEADLINE_OPTIONS})
                                      FROM ticket_comments_view c
                                     WHERE c.ticket_id = t.id AND c.search @@ query.q AND (",
        subject = escaped("t.subject"),
        description = escaped("t.description"),
        body = escaped("c.body"),
    ));
    query.push_bind(filter.include_internal);
    query.push(
        " OR NOT c.internal)
                                     ORDER BY ts_rank(c.search, query.q) DESC, c.sequence LIMIT 1), '')
                END AS snippet
           FROM tickets_view t, query",
    );
    push_filters(&mut query, filter);
    query
        .push(" ORDER BY rank DESC, t.created_at DESC, t.id LIMIT ")
        .push_bind(filter.page_size)
        .push(" OFFSET ")
        .push_bind((filter.page.max(1) - 1).saturating_mul(filter.page_size));
    let hits = query.build_query_as().fetch_all(pool).await?;
    Ok(SearchPage { hits, total })
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
        let row = row.unwrap_or_else(|| panic!("no row"));
        assert_eq!(row.priority, "critical");
        assert_eq!(row.priority_rank, 4);
        assert_eq!(row.status, "in_progress");
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
    fn sort_keys_parse_with_a_minus_for_descending() {
        assert_eq!(
            TicketSort::parse("-priority"),
            Some(TicketSort::PriorityDesc)
        );
        assert_eq!(TicketSort::parse("number"), Some(TicketSort::NumberAsc));
        assert_eq!(TicketSort::parse("colour"), None);
    }
}
