//! Time-based rules: when each is due on each ticket, and turning what is due into requests.
//!
//! The engine, in its own transaction, reckons for every ticket an event touched (and for every
//! ticket when the time-based rules change) the first instant each enabled time-based rule holds
//! if nothing else happens to the ticket ([`due_at`]). The deadline scheduler sleeps until the
//! earliest of those instants and then [requests](request_due) what is due: it looks again at
//! the ticket as the engine keeps it, and either queues a request for the executor, caused by the
//! ticket's version (so a rule acts once per version, and not at all if the ticket moved on), or
//! moves the instant on when the rule no longer holds.

use chrono::{DateTime, Utc};
use docket_domain::automation::RuleDefinition;
use docket_domain::automation::eval::{Snapshot, due_at};
use futures::TryStreamExt;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{KnownRule, KnownTicket, REQUEST_NAMESPACE, RuleRequest, queue_request};
use crate::app::{App, AppError};

/// What a request caused by time says its cause was.
pub const CAUSE: &str = "time";
/// How many due rows one pass takes.
const DUE_BATCH: i64 = 500;
/// How many rows go into one insert.
const WRITE_BATCH: usize = 5_000;

/// One rule due on one ticket.
struct Due {
    ticket_id: Uuid,
    rule_id: Uuid,
    at: DateTime<Utc>,
    version: i64,
    depth: i32,
}

/// When each of `rules` is due on the ticket, reckoned from its `at` on.
fn due_on(rules: &[&KnownRule], id: Uuid, ticket: &KnownTicket) -> Vec<Due> {
    rules
        .iter()
        .filter_map(|rule| {
            due_at(&rule.definition.conditions, &ticket.snapshot, ticket.at).map(|at| Due {
                ticket_id: id,
                rule_id: rule.id,
                at,
                version: ticket.version,
                depth: ticket.depth,
            })
        })
        .collect()
}

async fn insert(conn: &mut PgConnection, due: &[Due]) -> Result<(), sqlx::Error> {
    for chunk in due.chunks(WRITE_BATCH) {
        sqlx::query(
            "INSERT INTO automation_due (ticket_id, rule_id, due_at, version, depth)
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::timestamptz[], $4::bigint[],
                                  $5::int[])
             ON CONFLICT (ticket_id, rule_id) DO UPDATE
                SET due_at = EXCLUDED.due_at, version = EXCLUDED.version, depth = EXCLUDED.depth",
        )
        .bind(chunk.iter().map(|d| d.ticket_id).collect::<Vec<_>>())
        .bind(chunk.iter().map(|d| d.rule_id).collect::<Vec<_>>())
        .bind(chunk.iter().map(|d| d.at).collect::<Vec<_>>())
        .bind(chunk.iter().map(|d| d.version).collect::<Vec<_>>())
        .bind(chunk.iter().map(|d| d.depth).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Reckons again the time-based `rules` on the `tickets` a batch touched, each from its last
/// event on.
pub(super) async fn reckon(
    conn: &mut PgConnection,
    rules: &[&KnownRule],
    tickets: &[(Uuid, &KnownTicket)],
) -> Result<(), sqlx::Error> {
    let ids: Vec<Uuid> = tickets.iter().map(|(id, _)| *id).collect();
    sqlx::query("DELETE FROM automation_due WHERE ticket_id = ANY($1)")
        .bind(&ids)
        .execute(&mut *conn)
        .await?;
    let due: Vec<Due> = tickets
        .iter()
        .flat_map(|(id, ticket)| due_on(rules, *id, ticket))
        .collect();
    insert(conn, &due).await
}

/// Reckons the time-based `rules` (changed at `from`) on every ticket the engine keeps.
pub(super) async fn reckon_all(
    conn: &mut PgConnection,
    rules: &[&KnownRule],
    from: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM automation_due")
        .execute(&mut *conn)
        .await?;
    if rules.is_empty() {
        return Ok(());
    }
    let mut due = Vec::new();
    {
        let mut rows = sqlx::query_as::<_, (Uuid, Json<Snapshot>, i64, i32)>(
            "SELECT id, snapshot, version, depth FROM automation_engine_tickets",
        )
        .fetch(&mut *conn);
        while let Some((id, Json(snapshot), version, depth)) = rows.try_next().await? {
            let ticket = KnownTicket {
                at: from,
                snapshot,
                version,
                depth,
            };
            due.extend(due_on(rules, id, &ticket));
        }
    }
    insert(conn, &due).await
}

/// The earliest instant a time-based rule is due on a ticket.
pub async fn next_due(pool: &PgPool) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar("SELECT min(due_at) FROM automation_due")
        .fetch_one(pool)
        .await
}

#[derive(sqlx::FromRow)]
struct DueRow {
    ticket_id: Uuid,
    rule_id: Uuid,
    version: i64,
    depth: i32,
    ticket_version: Option<i64>,
    snapshot: Option<Json<Snapshot>>,
    rule_version: Option<i64>,
    definition: Option<Json<RuleDefinition>>,
}

/// Queues a request for each rule due by `now` that still holds on its ticket, and moves on (or
/// drops) the rest; rings the executor's bell when it queued any. Returns whether it may have
/// left more due rows behind.
pub async fn request_due(app: &App, now: DateTime<Utc>) -> Result<bool, AppError> {
    let mut tx = app.pool.begin().await?;
    let rows: Vec<DueRow> = sqlx::query_as(
        "SELECT d.ticket_id, d.rule_id, d.version, d.depth, t.version AS ticket_version,
                t.snapshot, r.version AS rule_version, r.definition
           FROM automation_due d
           LEFT JOIN automation_engine_tickets t ON t.id = d.ticket_id
           LEFT JOIN automation_engine_rules r ON r.id = d.rule_id
          WHERE d.due_at <= $1
          ORDER BY d.due_at
          LIMIT $2
            FOR UPDATE OF d SKIP LOCKED",
    )
    .bind(now)
    .bind(DUE_BATCH)
    .fetch_all(&mut *tx)
    .await?;
    let full = rows.len() as i64 == DUE_BATCH;
    let mut requested = 0;
    for row in rows {
        // The engine removes a rule's rows with the rule; one left without its rule or ticket
        // is dropped rather than looked at again and again.
        let (Some(Json(definition)), Some(Json(snapshot)), Some(rule_version)) =
            (&row.definition, &row.snapshot, row.rule_version)
        else {
            forget(&mut tx, &row).await?;
            continue;
        };
        // Not current: the engine is reckoning the ticket's newer version and writes its own row.
        let current = row.ticket_version == Some(row.version);
        let due = current
            .then(|| due_at(&definition.conditions, snapshot, now))
            .flatten();
        match due {
            // It holds now (the first instant it holds from now is now).
            Some(at) if at <= now => {
                let id = Uuid::new_v5(
                    &REQUEST_NAMESPACE,
                    format!("{}/{}/{}/{CAUSE}", row.ticket_id, row.version, row.rule_id).as_bytes(),
                );
                let request = RuleRequest {
                    id,
                    ticket_id: row.ticket_id,
                    rule_id: row.rule_id,
                    rule_name: &definition.name,
                    rule_version,
                    cause_sequence: row.version,
                    cause: CAUSE,
                    depth: row.depth + 1,
                    actions: &definition.actions,
                };
                queue_request(&mut tx, &request).await?;
                requested += 1;
                forget(&mut tx, &row).await?;
            }
            Some(at) => {
                sqlx::query(
                    "UPDATE automation_due SET due_at = $4
                      WHERE ticket_id = $1 AND rule_id = $2 AND version = $3",
                )
                .bind(row.ticket_id)
                .bind(row.rule_id)
                .bind(row.version)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            }
            None => forget(&mut tx, &row).await?,
        }
    }
    tx.commit().await?;
    if requested > 0 {
        tracing::debug!(requested, "time-based rules due");
        app.outbound.automation_wake.notify_one();
    }
    Ok(full)
}

/// Drops a due row (as it was read: a newer one the engine wrote stays).
async fn forget(tx: &mut PgConnection, row: &DueRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM automation_due WHERE ticket_id = $1 AND rule_id = $2 AND version = $3",
    )
    .bind(row.ticket_id)
    .bind(row.rule_id)
    .bind(row.version)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
