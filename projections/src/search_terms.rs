//! Searches that match many tickets, ranked ahead of time (migration 0016, ADR 0004).
//!
//! A search ranks its matches with `ts_rank` over each match's vector, so a query found in a
//! fifth of 100,000 tickets costs 20,000 vectors read and ranked for every page of it. But the
//! rank of a ticket for a query depends on nothing but the ticket's vector and the query, so it
//! can be computed ahead: once a search by staff (with no filter but its text) finds many
//! tickets, its query is *registered* and every match's rank stored ([`register`]), and the
//! tickets projection keeps the entries current in the same transaction as the vectors they
//! come from ([`maintain`]). A search for a registered query reads its page in rank order from
//! an index and its total from a counter: the same tickets, ranks and order as ranking every
//! match, at the cost of the page.
//!
//! A query is registered by its parsed form (`websearch_to_tsquery`), so `Printers` and
//! `printer` are one entry. The entries are a cache of the tickets projection's vectors, not a
//! projection of the log: a rebuild of the tickets projection empties them ([`forget_all`]) and
//! the queries register again as they are searched.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The `ts_rank` weights (D, C, B, A) of staff searches, which match internal comments too.
/// Customers' searches weigh internal comments 0 and only ever cover their own tickets, which
/// are few: they never use the entries.
pub const STAFF_WEIGHTS: &str = "'{0.1, 0.2, 0.4, 1.0}'";

/// What the index knows of a search's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// The query is registered: its matches are ranked in `ticket_terms`.
    Registered { term: String, tickets: i64 },
    /// Not registered (yet).
    Unregistered,
    /// Nothing searchable in it (only stop words): it matches nothing.
    Empty,
}

/// Looks the text of a search up (web-search syntax, as the search parses it).
pub async fn lookup(pool: &PgPool, text: &str) -> Result<Term, sqlx::Error> {
    let row: Option<(bool, Option<String>, Option<i64>)> = sqlx::query_as(
        "SELECT numnode(q.query) > 0, s.term, s.tickets
           FROM (SELECT websearch_to_tsquery('english', $1) AS query) q
           LEFT JOIN search_terms s ON s.term = q.query::text",
    )
    .bind(text)
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        Some((true, Some(term), Some(tickets))) => Term::Registered { term, tickets },
        Some((true, _, _)) => Term::Unregistered,
        _ => Term::Empty,
    })
}

/// Registers the query `text` and ranks its matches, unless it is registered already, matches
/// nothing, or `max_terms` are registered. Says whether it registered it.
///
/// Runs with the tickets projector's checkpoint row locked, as every batch of that projector
/// does: no batch can change a vector between the ranking here and the registration that
/// makes the projector keep the entries current.
pub async fn register(pool: &PgPool, text: &str, max_terms: i64) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT 1 FROM projector_checkpoints WHERE projector = 'tickets' FOR UPDATE")
        .execute(&mut *tx)
        .await?;
    let registered = sqlx::query(&format!(
        "WITH fresh AS (
             SELECT q.query::text AS term, q.query
               FROM (SELECT websearch_to_tsquery('english', $1) AS query) q
              WHERE numnode(q.query) > 0
                AND NOT EXISTS (SELECT 1 FROM search_terms s WHERE s.term = q.query::text)
                AND (SELECT count(*) FROM search_terms) < $2),
         ranked AS (
             INSERT INTO ticket_terms (term, ticket_id, rank, created_at)
             SELECT f.term, t.id, ts_rank({STAFF_WEIGHTS}, s.search_vector, f.query), t.created_at
               FROM fresh f JOIN ticket_search_vectors s ON s.search_vector @@ f.query
               JOIN tickets_view t ON t.id = s.ticket_id
             RETURNING term)
         INSERT INTO search_terms (term, query, tickets)
         SELECT f.term, f.query, (SELECT count(*) FROM ranked) FROM fresh f"
    ))
    .bind(text)
    .bind(max_terms)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(registered == 1)
}

/// Brings the entries of the tickets in `ids` up to date with their vectors, inside the
/// projector's batch: their ranks for the registered queries they match, entries for queries
/// they newly match, none for queries they no longer match, and every query's count. One
/// statement, which does nothing when no query is registered. Each registered query is tested
/// against each changed ticket, which is why their number is bounded.
pub(crate) async fn maintain(conn: &mut PgConnection, ids: &[Uuid]) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(&format!(
        "WITH changed AS (
             SELECT t.id, v.search_vector, t.created_at
               FROM tickets_view t JOIN ticket_search_vectors v ON v.ticket_id = t.id
              WHERE t.id = ANY($1) AND EXISTS (SELECT 1 FROM search_terms)),
         matching AS (
             SELECT s.term, c.id, ts_rank({STAFF_WEIGHTS}, c.search_vector, s.query) AS rank,
                    c.created_at
               FROM changed c JOIN search_terms s ON c.search_vector @@ s.query),
         removed AS (
             DELETE FROM ticket_terms p
              WHERE p.ticket_id = ANY($1)
                AND NOT EXISTS (SELECT 1 FROM matching m
                                 WHERE m.term = p.term AND m.id = p.ticket_id)
             RETURNING p.term),
         written AS (
             INSERT INTO ticket_terms (term, ticket_id, rank, created_at)
             SELECT term, id, rank, created_at FROM matching
             ON CONFLICT (term, ticket_id) DO UPDATE SET rank = EXCLUDED.rank
              WHERE ticket_terms.rank IS DISTINCT FROM EXCLUDED.rank
             RETURNING term, xmax = 0 AS added),
         counted AS (
             SELECT term, sum(delta)::bigint AS delta
               FROM (SELECT term, -1 AS delta FROM removed
                     UNION ALL SELECT term, 1 FROM written WHERE added) d
              GROUP BY term)
         UPDATE search_terms s SET tickets = s.tickets + c.delta
           FROM counted c WHERE s.term = c.term AND c.delta <> 0"
    ))
    .bind(ids)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Forgets every registered query: for the swap of a rebuilt tickets projection, whose vectors
/// the entries no longer describe.
pub(crate) async fn forget_all(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("TRUNCATE search_terms, ticket_terms")
        .execute(&mut *conn)
        .await?;
    Ok(())
}
