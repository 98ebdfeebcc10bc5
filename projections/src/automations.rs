//! Automation rules: `automation_rules_view`, each rule's definition in the order rules run.

use chrono::{DateTime, Utc};
use docket_domain::automation::{AutomationEvent, RuleDefinition, Trigger};
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection, PgExecutor};
use uuid::Uuid;

use crate::fold::{Decoded, VersionedRow, fold_batch};
use crate::log::RecordedEvent;
use crate::runtime::{Projection, ProjectionError};

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct RuleRow {
    pub id: Uuid,
    pub definition: Json<RuleDefinition>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub loops_stopped: i32,
    pub last_loop_stopped_at: Option<DateTime<Utc>>,
}

impl VersionedRow for RuleRow {
    fn id(&self) -> Uuid {
        self.id
    }

    fn version(&self) -> i64 {
        self.version
    }
}

/// What became of a rule after one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Kept,
    Deleted(Uuid),
}

pub fn fold(
    row: &mut Option<RuleRow>,
    id: Uuid,
    sequence: i64,
    event: AutomationEvent,
) -> Result<Option<Outcome>, String> {
    if row.as_ref().is_some_and(|r| sequence <= r.version) {
        return Ok(None);
    }
    match event {
        AutomationEvent::AutomationRuleCreated {
            definition,
            occurred_at,
            ..
        } => {
            *row = Some(RuleRow {
                id,
                definition: Json(definition),
                created_at: occurred_at,
                updated_at: occurred_at,
                version: sequence,
                loops_stopped: 0,
                last_loop_stopped_at: None,
            });
            Ok(Some(Outcome::Kept))
        }
        AutomationEvent::AutomationRuleUpdated {
            definition,
            occurred_at,
            ..
        } => {
            let Some(rule) = row.as_mut() else {
                return Err(format!("rule {id} updated before it was created"));
            };
            rule.definition = Json(definition);
            rule.updated_at = occurred_at;
            rule.version = sequence;
            Ok(Some(Outcome::Kept))
        }
        AutomationEvent::AutomationLoopStopped { occurred_at, .. } => {
            let Some(rule) = row.as_mut() else {
                return Err(format!("rule {id} stopped a loop before it was created"));
            };
            rule.loops_stopped += 1;
            rule.last_loop_stopped_at = Some(occurred_at);
            rule.version = sequence;
            Ok(Some(Outcome::Kept))
        }
        AutomationEvent::AutomationRuleDeleted { .. } => {
            if let Some(rule) = row.as_mut() {
                rule.version = sequence;
            }
            Ok(Some(Outcome::Deleted(id)))
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct AutomationsProjection;

impl Projection for AutomationsProjection {
    const NAME: &'static str = "automations";
    const METADATA: crate::log::Metadata = crate::log::Metadata::Skip;
    const AGGREGATE_TYPES: &'static [&'static str] = &["automation_rule"];
    type Rebuild = ();
    const TABLES: &'static [&'static str] = &["automation_rules_view"];

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let decoded = Decoded::<AutomationEvent>::new(events)?;
        let existing: Vec<RuleRow> = sqlx::query_as(
            "SELECT id, definition, created_at, updated_at, version, loops_stopped, last_loop_stopped_at
               FROM automation_rules_view
              WHERE id = ANY($1)",
        )
        .bind(decoded.ids())
        .fetch_all(&mut *conn)
        .await?;
        let (rows, outcomes) = fold_batch(existing, decoded, fold)?;
        let deleted: Vec<Uuid> = outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Deleted(id) => Some(*id),
                Outcome::Kept => None,
            })
            .collect();
        for row in rows.iter().filter(|r| !deleted.contains(&r.id)) {
            let definition = &row.definition.0;
            let trigger = match definition.trigger {
                Trigger::Event { .. } => "event",
                Trigger::Time => "time",
            };
            sqlx::query(
                "INSERT INTO automation_rules_view
                        (id, name, position, enabled, trigger_type, definition, created_at,
                         updated_at, version, loops_stopped, last_loop_stopped_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,
                        position = EXCLUDED.position, enabled = EXCLUDED.enabled,
                        trigger_type = EXCLUDED.trigger_type, definition = EXCLUDED.definition,
                        updated_at = EXCLUDED.updated_at, version = EXCLUDED.version,
                        loops_stopped = EXCLUDED.loops_stopped,
                        last_loop_stopped_at = EXCLUDED.last_loop_stopped_at
                  WHERE automation_rules_view.version < EXCLUDED.version",
            )
            .bind(row.id)
            .bind(&definition.name)
            .bind(definition.position)
            .bind(definition.enabled)
            .bind(trigger)
            .bind(&row.definition)
            .bind(row.created_at)
            .bind(row.updated_at)
            .bind(row.version)
            .bind(row.loops_stopped)
            .bind(row.last_loop_stopped_at)
            .execute(&mut *conn)
            .await?;
        }
        if !deleted.is_empty() {
            sqlx::query("DELETE FROM automation_rules_view WHERE id = ANY($1)")
                .bind(&deleted)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

/// Every rule, in the order rules run (position, then age).
pub async fn list<'e, E: PgExecutor<'e>>(executor: E) -> Result<Vec<RuleRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, definition, created_at, updated_at, version, loops_stopped, last_loop_stopped_at
               FROM automation_rules_view
          ORDER BY position, created_at, id",
    )
    .fetch_all(executor)
    .await
}

pub async fn get<'e, E: PgExecutor<'e>>(
    executor: E,
    id: Uuid,
) -> Result<Option<RuleRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, definition, created_at, updated_at, version, loops_stopped, last_loop_stopped_at
               FROM automation_rules_view
          WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(executor)
    .await
}
