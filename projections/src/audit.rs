//! The audit trail: every event of every aggregate, with who, from where and when.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use docket_domain::ticket::TicketEvent;
use docket_domain::values::Actor;

use crate::log::RecordedEvent;
use crate::runtime::{Projection, ProjectionError};

#[derive(Debug, Clone, PartialEq, FromRow, Serialize)]
pub struct AuditEntry {
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub actor_id: Option<Uuid>,
    pub actor_role: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub correlation_id: Option<String>,
    /// The API key the event was written with.
    pub api_key_id: Option<Uuid>,
    /// `service` when the actor is a service account.
    pub actor_kind: Option<String>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub recorded_at: DateTime<Utc>,
    pub data: serde_json::Value,
}

impl AuditEntry {
    /// The entry for one stored event. Pure: the metadata and payload say everything.
    ///
    /// The trail shows an event's own fields, which serde keeps under the name of its type
    /// (`{"CommentAdded": {…}}`). An event stored under another name, or not as such an
    /// envelope, was not written by Docket's aggregates: the projector stops at it rather than
    /// show it as something it is not.
    pub fn from_event(event: &RecordedEvent) -> Result<Self, ProjectionError> {
        let metadata = event.metadata();
        let data = match serde_json::from_str::<serde_json::Value>(event.payload.get()) {
            Ok(serde_json::Value::Object(mut envelope)) if envelope.len() == 1 => {
                envelope.remove(&event.event_type).ok_or_else(|| {
                    ProjectionError::unapplicable(
                        event,
                        format!("the payload is not a {} event", event.event_type),
                    )
                })?
            }
            Ok(_) => {
                return Err(ProjectionError::unapplicable(
                    event,
                    format!("the payload is not a {} event", event.event_type),
                ));
            }
            Err(error) => return Err(ProjectionError::unapplicable(event, error)),
        };
        let occurred_at = data
            .get("occurred_at")
            .and_then(|v| v.as_str())
            .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
            .map(|t| t.with_timezone(&Utc));
        let (actor_id, actor_role) = if event.aggregate_type == "ticket"
            && TicketEvent::SYSTEM_EVENT_TYPES.contains(&event.event_type.as_str())
        {
            let system = Actor::system();
            (
                Some(system.user_id.0),
                Some(system.role.as_str().to_string()),
            )
        } else {
            (
                metadata
                    .actor_id
                    .as_deref()
                    .and_then(|id| Uuid::parse_str(id).ok()),
                metadata.actor_role,
            )
        };
        Ok(Self {
            position: event.global_position,
            aggregate_type: event.aggregate_type.clone(),
            aggregate_id: event.aggregate_id.clone(),
            sequence: event.sequence,
            event_type: event.event_type.clone(),
            event_version: event.event_version.clone(),
            actor_id,
            actor_role,
            ip: metadata.ip,
            user_agent: metadata.user_agent,
            correlation_id: metadata.correlation_id,
            api_key_id: metadata
                .api_key_id
                .as_deref()
                .and_then(|id| Uuid::parse_str(id).ok()),
            actor_kind: metadata.actor_kind,
            occurred_at,
            recorded_at: event.recorded_at,
            data,
        })
    }
}

/// The projector for `audit_log`. It reads every aggregate type.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditProjection;

impl Projection for AuditProjection {
    const NAME: &'static str = "audit";
    const AGGREGATE_TYPES: &'static [&'static str] = &[];
    type Rebuild = ();
    const TABLES: &'static [&'static str] = &["audit_log"];

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        if events.is_empty() {
            return Ok(());
        }
        let entries = events
            .iter()
            .map(AuditEntry::from_event)
            .collect::<Result<Vec<AuditEntry>, ProjectionError>>()?;
        let positions: Vec<i64> = entries.iter().map(|e| e.position).collect();
        let types: Vec<&str> = entries.iter().map(|e| e.aggregate_type.as_str()).collect();
        let ids: Vec<&str> = entries.iter().map(|e| e.aggregate_id.as_str()).collect();
        let sequences: Vec<i64> = entries.iter().map(|e| e.sequence).collect();
        let event_types: Vec<&str> = entries.iter().map(|e| e.event_type.as_str()).collect();
        let versions: Vec<&str> = entries.iter().map(|e| e.event_version.as_str()).collect();
        let actors: Vec<Option<Uuid>> = entries.iter().map(|e| e.actor_id).collect();
        let roles: Vec<Option<&str>> = entries.iter().map(|e| e.actor_role.as_deref()).collect();
        let ips: Vec<Option<&str>> = entries.iter().map(|e| e.ip.as_deref()).collect();
        let agents: Vec<Option<&str>> = entries.iter().map(|e| e.user_agent.as_deref()).collect();
        let correlations: Vec<Option<&str>> = entries
            .iter()
            .map(|e| e.correlation_id.as_deref())
            .collect();
        let keys: Vec<Option<Uuid>> = entries.iter().map(|e| e.api_key_id).collect();
        let kinds: Vec<Option<&str>> = entries.iter().map(|e| e.actor_kind.as_deref()).collect();
        let occurred: Vec<Option<DateTime<Utc>>> = entries.iter().map(|e| e.occurred_at).collect();
        let recorded: Vec<DateTime<Utc>> = entries.iter().map(|e| e.recorded_at).collect();
        let data: Vec<&serde_json::Value> = entries.iter().map(|e| &e.data).collect();
        sqlx::query(
            "INSERT INTO audit_log (position, aggregate_type, aggregate_id, sequence, event_type,
                    event_version, actor_id, actor_role, ip, user_agent, correlation_id,
                    occurred_at, recorded_at, data, api_key_id, actor_kind)
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[],
                                  $6::text[], $7::uuid[], $8::text[], $9::text[], $10::text[],
                                  $11::text[], $12::timestamptz[], $13::timestamptz[], $14::jsonb[],
                                  $15::uuid[], $16::text[])
             -- Re-applying a batch after a crash changes nothing.
             ON CONFLICT (position) DO NOTHING",
        )
        .bind(&positions)
        .bind(&types)
        .bind(&ids)
        .bind(&sequences)
        .bind(&event_types)
        .bind(&versions)
        .bind(&actors)
        .bind(&roles)
        .bind(&ips)
        .bind(&agents)
        .bind(&correlations)
        .bind(&occurred)
        .bind(&recorded)
        .bind(&data)
        .bind(&keys)
        .bind(&kinds)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor_id: Option<Uuid>,
    pub aggregate_id: Option<String>,
    pub event_type: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Continue after this position (exclusive), in the chosen direction.
    pub cursor: Option<i64>,
    pub newest_first: bool,
    pub limit: i64,
}

/// A page of the audit trail and, when there may be more, the cursor for the next one.
pub async fn page(
    pool: &sqlx::PgPool,
    filter: &AuditFilter,
) -> Result<(Vec<AuditEntry>, Option<i64>), sqlx::Error> {
    let mut query: QueryBuilder<Postgres> = QueryBuilder::new(
        "SELECT position, aggregate_type, aggregate_id, sequence, event_type, event_version,
                actor_id, actor_role, ip, user_agent, correlation_id, api_key_id, actor_kind,
                occurred_at, recorded_at, data
           FROM audit_log WHERE TRUE",
    );
    if let Some(actor) = filter.actor_id {
        query.push(" AND actor_id = ").push_bind(actor);
    }
    if let Some(aggregate) = &filter.aggregate_id {
        query
            .push(" AND aggregate_id = ")
            .push_bind(aggregate.clone());
    }
    if let Some(event_type) = &filter.event_type {
        query
            .push(" AND event_type = ")
            .push_bind(event_type.clone());
    }
    if let Some(from) = filter.from {
        query.push(" AND occurred_at >= ").push_bind(from);
    }
    if let Some(to) = filter.to {
        query.push(" AND occurred_at < ").push_bind(to);
    }
    if let Some(cursor) = filter.cursor {
        query
            .push(if filter.newest_first {
                " AND position < "
            } else {
                " AND position > "
            })
            .push_bind(cursor);
    }
    query
        .push(if filter.newest_first {
            " ORDER BY position DESC LIMIT "
        } else {
            " ORDER BY position ASC LIMIT "
        })
        .push_bind(filter.limit + 1);
    let mut entries: Vec<AuditEntry> = query.build_query_as().fetch_all(pool).await?;
    let more = entries.len() as i64 > filter.limit;
    entries.truncate(filter.limit.max(0) as usize);
    let next = if more {
        entries.last().map(|e| e.position)
    } else {
        None
    };
    Ok((entries, next))
}
