//! Alerts: `alerts_view`, one row per alert with its state and who answered it.

use chrono::{DateTime, Utc};
use docket_domain::alert::AlertEvent;
use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgExecutor};
use uuid::Uuid;

use crate::fold::{Decoded, VersionedRow, fold_batch};
use crate::log::RecordedEvent;
use crate::runtime::{Projection, ProjectionError};

#[derive(Debug, Clone, PartialEq, FromRow, Serialize)]
pub struct AlertRow {
    pub id: Uuid,
    pub cause: String,
    pub kind: String,
    pub severity: String,
    pub title: String,
    pub detail: Option<String>,
    pub ticket_id: Option<Uuid>,
    pub state: String,
    pub raised_by: Uuid,
    pub raised_at: DateTime<Utc>,
    pub acknowledged_by: Option<Uuid>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledge_note: Option<String>,
    pub resolved_by: Option<Uuid>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolve_note: Option<String>,
    pub version: i64,
}

impl VersionedRow for AlertRow {
    fn id(&self) -> Uuid {
        self.id
    }

    fn version(&self) -> i64 {
        self.version
    }
}

const COLUMNS: &str = "id, cause, kind, severity, title, detail, ticket_id, state, raised_by, \
     raised_at, acknowledged_by, acknowledged_at, acknowledge_note, resolved_by, resolved_at, \
     resolve_note, version";

pub fn fold(
    row: &mut Option<AlertRow>,
    id: Uuid,
    sequence: i64,
    event: AlertEvent,
) -> Result<Option<()>, String> {
    if row.as_ref().is_some_and(|r| sequence <= r.version) {
        return Ok(None);
    }
    match event {
        AlertEvent::AlertRaised {
            subject,
            raised_by,
            occurred_at,
            ..
        } => {
            *row = Some(AlertRow {
                id,
                cause: subject.cause,
                kind: subject.kind.as_str().to_string(),
                severity: subject.severity.as_str().to_string(),
                title: subject.title,
                detail: subject.detail,
                ticket_id: subject.ticket_id,
                state: "active".to_string(),
                raised_by: raised_by.user_id.0,
                raised_at: occurred_at,
                acknowledged_by: None,
                acknowledged_at: None,
                acknowledge_note: None,
                resolved_by: None,
                resolved_at: None,
                resolve_note: None,
                version: sequence,
            });
        }
        AlertEvent::AlertAcknowledged {
            note,
            acknowledged_by,
            occurred_at,
        } => {
            let Some(alert) = row.as_mut() else {
                return Err(format!("alert {id} acknowledged before it was raised"));
            };
            alert.state = "acknowledged".to_string();
            alert.acknowledged_by = Some(acknowledged_by.user_id.0);
            alert.acknowledged_at = Some(occurred_at);
            alert.acknowledge_note = note.map(|n| n.into_string());
            alert.version = sequence;
        }
        AlertEvent::AlertResolved {
            note,
            resolved_by,
            occurred_at,
        } => {
            let Some(alert) = row.as_mut() else {
                return Err(format!("alert {id} resolved before it was raised"));
            };
            alert.state = "resolved".to_string();
            alert.resolved_by = Some(resolved_by.user_id.0);
            alert.resolved_at = Some(occurred_at);
            alert.resolve_note = note.map(|n| n.into_string());
            alert.version = sequence;
        }
    }
    Ok(Some(()))
}

#[derive(Debug, Clone, Copy, Default)]
pub struct AlertsProjection;

impl Projection for AlertsProjection {
    const NAME: &'static str = "alerts";
    const METADATA: crate::log::Metadata = crate::log::Metadata::Skip;
    const AGGREGATE_TYPES: &'static [&'static str] = &["alert"];
    type Rebuild = ();
    const TABLES: &'static [&'static str] = &["alerts_view"];

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let decoded = Decoded::<AlertEvent>::new(events)?;
        let existing: Vec<AlertRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM alerts_view WHERE id = ANY($1)"
        ))
        .bind(decoded.ids())
        .fetch_all(&mut *conn)
        .await?;
        let (rows, _) = fold_batch(existing, decoded, fold)?;
        for row in rows {
            sqlx::query(&format!(
                "INSERT INTO alerts_view ({COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
                 ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state,
                        acknowledged_by = EXCLUDED.acknowledged_by,
                        acknowledged_at = EXCLUDED.acknowledged_at,
                        acknowledge_note = EXCLUDED.acknowledge_note,
                        resolved_by = EXCLUDED.resolved_by, resolved_at = EXCLUDED.resolved_at,
                        resolve_note = EXCLUDED.resolve_note, version = EXCLUDED.version
                  WHERE alerts_view.version < EXCLUDED.version"
            ))
            .bind(row.id)
            .bind(&row.cause)
            .bind(&row.kind)
            .bind(&row.severity)
            .bind(&row.title)
            .bind(&row.detail)
            .bind(row.ticket_id)
            .bind(&row.state)
            .bind(row.raised_by)
            .bind(row.raised_at)
            .bind(row.acknowledged_by)
            .bind(row.acknowledged_at)
            .bind(&row.acknowledge_note)
            .bind(row.resolved_by)
            .bind(row.resolved_at)
            .bind(&row.resolve_note)
            .bind(row.version)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

/// Alerts in `state` (all when `None`), newest first, and how many there are.
pub async fn list<'e, E: PgExecutor<'e> + Copy>(
    executor: E,
    state: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<AlertRow>, i64), sqlx::Error> {
    let rows = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM alerts_view WHERE $1::text IS NULL OR state = $1
          ORDER BY raised_at DESC, id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(state)
    .bind(limit)
    .bind(offset)
    .fetch_all(executor)
    .await?;
    let total =
        sqlx::query_scalar("SELECT count(*) FROM alerts_view WHERE $1::text IS NULL OR state = $1")
            .bind(state)
            .fetch_one(executor)
            .await?;
    Ok((rows, total))
}

/// One alert.
pub async fn get<'e, E: PgExecutor<'e>>(
    executor: E,
    id: Uuid,
) -> Result<Option<AlertRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM alerts_view WHERE id = $1"))
        .bind(id)
        .fetch_optional(executor)
        .await
}

/// The unresolved alert for `cause`, if there is one.
pub async fn unresolved_for<'e, E: PgExecutor<'e>>(
    executor: E,
    cause: &str,
) -> Result<Option<AlertRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM alerts_view WHERE cause = $1 AND state <> 'resolved'
          ORDER BY raised_at DESC LIMIT 1"
    ))
    .bind(cause)
    .fetch_optional(executor)
    .await
}

/// How many alerts are active and acknowledged (for the web app's badge).
pub async fn open_count<'e, E: PgExecutor<'e>>(executor: E) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM alerts_view WHERE state = 'active'")
        .fetch_one(executor)
        .await
}
