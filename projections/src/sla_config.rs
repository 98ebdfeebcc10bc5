//! SLA configuration read models: `sla_policies_view`, `business_calendars_view`,
//! `escalation_rules_view`.

use docket_domain::sla::config::{
    EscalationRuleEvent, RuleDefinition, SlaCalendar, SlaCalendarEvent, SlaPolicy, SlaPolicyEvent,
};
use docket_domain::sla::{AppliedPolicy, BusinessCalendar, PolicyDefinition, SlaCatalog};
use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgExecutor};
use uuid::Uuid;

use crate::fold;
use crate::log::RecordedEvent;
use crate::runtime::{Projection, ProjectionError};

#[derive(Debug, Clone, Copy, Default)]
pub struct SlaConfigProjection;

fn id_of(event: &RecordedEvent) -> Result<Uuid, ProjectionError> {
    Uuid::parse_str(&event.aggregate_id).map_err(|e| ProjectionError::unapplicable(event, e))
}

fn json<T: Serialize>(
    event: &RecordedEvent,
    value: &T,
) -> Result<serde_json::Value, ProjectionError> {
    serde_json::to_value(value).map_err(|e| ProjectionError::unapplicable(event, e))
}

impl Projection for SlaConfigProjection {
    const NAME: &'static str = "sla_config";
    const METADATA: crate::log::Metadata = crate::log::Metadata::Skip;
    const AGGREGATE_TYPES: &'static [&'static str] =
        &["sla_policy", "sla_calendar", "escalation_rule"];
    const TABLES: &'static [&'static str] = &[
        "sla_policies_view",
        "business_calendars_view",
        "escalation_rules_view",
    ];
    type Rebuild = ();

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        // Configuration changes are rare: one statement per event is plenty.
        for event in events {
            let id = id_of(event)?;
            let sequence = event.sequence;
            match event.aggregate_type.as_str() {
                "sla_policy" => match fold::decode::<SlaPolicyEvent>(event)? {
                    SlaPolicyEvent::SlaPolicyCreated {
                        definition,
                        position,
                        version,
                        occurred_at,
                        ..
                    } => {
                        sqlx::query(
                            "INSERT INTO sla_policies_view (id, name, position, version, definition,
                                    created_at, updated_at, aggregate_version)
                             VALUES ($1, $2, $3, $4, $5, $6, $6, $7) ON CONFLICT (id) DO NOTHING",
                        )
                        .bind(id)
                        .bind(&definition.name)
                        .bind(position)
                        .bind(i64::from(version) as i32)
                        .bind(json(event, &definition)?)
                        .bind(occurred_at)
                        .bind(sequence)
                        .execute(&mut *conn)
                        .await?;
                    }
                    SlaPolicyEvent::SlaPolicyUpdated {
                        definition,
                        position,
                        version,
                        occurred_at,
                        ..
                    } => {
                        sqlx::query(
                            "UPDATE sla_policies_view SET name = $2, position = $3, version = $4,
                                    definition = $5, updated_at = $6, aggregate_version = $7
                              WHERE id = $1 AND aggregate_version < $7",
                        )
                        .bind(id)
                        .bind(&definition.name)
                        .bind(position)
                        .bind(i64::from(version) as i32)
                        .bind(json(event, &definition)?)
                        .bind(occurred_at)
                        .bind(sequence)
                        .execute(&mut *conn)
                        .await?;
                    }
                    SlaPolicyEvent::SlaPolicyDeleted { occurred_at, .. } => {
                        sqlx::query(
                            "UPDATE sla_policies_view SET deleted = true, updated_at = $2, aggregate_version = $3
                              WHERE id = $1 AND aggregate_version < $3",
                        )
                        .bind(id)
                        .bind(occurred_at)
                        .bind(sequence)
                        .execute(&mut *conn)
                        .await?;
                    }
                },
                "sla_calendar" => match fold::decode::<SlaCalendarEvent>(event)? {
                    SlaCalendarEvent::CalendarCreated {
                        name,
                        calendar,
                        version,
                        occurred_at,
                        ..
                    }
                    | SlaCalendarEvent::CalendarUpdated {
                        name,
                        calendar,
                        version,
                        occurred_at,
                        ..
                    } => {
                        sqlx::query(
                            "INSERT INTO business_calendars_view (id, name, version, calendar, created_at,
                                    updated_at, aggregate_version)
                             VALUES ($1, $2, $3, $4, $5, $5, $6)
                             ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,
                                    version = EXCLUDED.version, calendar = EXCLUDED.calendar,
                                    updated_at = EXCLUDED.updated_at,
                                    aggregate_version = EXCLUDED.aggregate_version
                              WHERE business_calendars_view.aggregate_version < EXCLUDED.aggregate_version",
                        )
                        .bind(id)
                        .bind(&name)
                        .bind(i64::from(version) as i32)
                        .bind(json(event, &calendar)?)
                        .bind(occurred_at)
                        .bind(sequence)
                        .execute(&mut *conn)
                        .await?;
                    }
                },
                "escalation_rule" => match fold::decode::<EscalationRuleEvent>(event)? {
                    EscalationRuleEvent::EscalationRuleCreated {
                        definition,
                        version,
                        occurred_at,
                        ..
                    }
                    | EscalationRuleEvent::EscalationRuleUpdated {
                        definition,
                        version,
                        occurred_at,
                        ..
                    } => {
                        sqlx::query(
                            "INSERT INTO escalation_rules_view (id, name, version, rule, created_at,
                                    updated_at, aggregate_version)
                             VALUES ($1, $2, $3, $4, $5, $5, $6)
                             ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,
                                    version = EXCLUDED.version, rule = EXCLUDED.rule,
                                    updated_at = EXCLUDED.updated_at,
                                    aggregate_version = EXCLUDED.aggregate_version
                              WHERE escalation_rules_view.aggregate_version < EXCLUDED.aggregate_version",
                        )
                        .bind(id)
                        .bind(&definition.name)
                        .bind(i64::from(version) as i32)
                        .bind(json(event, &definition)?)
                        .bind(occurred_at)
                        .bind(sequence)
                        .execute(&mut *conn)
                        .await?;
                    }
                    EscalationRuleEvent::EscalationRuleDeleted { occurred_at, .. } => {
                        sqlx::query(
                            "UPDATE escalation_rules_view SET deleted = true, updated_at = $2, aggregate_version = $3
                              WHERE id = $1 AND aggregate_version < $3",
                        )
                        .bind(id)
                        .bind(occurred_at)
                        .bind(sequence)
                        .execute(&mut *conn)
                        .await?;
                    }
                },
                other => {
                    return Err(ProjectionError::unapplicable(
                        event,
                        format!("unexpected aggregate type {other}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A live policy, as the read model holds it.
#[derive(Debug, Clone, FromRow)]
pub struct PolicyRow {
    pub id: Uuid,
    #[sqlx(try_from = "i32")]
    pub version: u32,
    pub position: i32,
    #[sqlx(json)]
    pub definition: PolicyDefinition,
}

/// A calendar, as the read model holds it.
#[derive(Debug, Clone, FromRow)]
pub struct CalendarRow {
    pub id: Uuid,
    #[sqlx(try_from = "i32")]
    pub version: u32,
    pub name: String,
    #[sqlx(json)]
    pub calendar: BusinessCalendar,
}

/// A live escalation rule, as the read model holds it.
#[derive(Debug, Clone, FromRow)]
pub struct RuleRow {
    pub id: Uuid,
    #[sqlx(try_from = "i32")]
    pub version: u32,
    pub name: String,
    #[sqlx(json)]
    pub rule: RuleDefinition,
    /// When this version was saved: the rule acts on what happens after it.
    pub saved_at: chrono::DateTime<chrono::Utc>,
}

/// Live (not deleted) policies in matching order.
pub async fn policies<'e, E: PgExecutor<'e>>(executor: E) -> Result<Vec<PolicyRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, version, position, definition
           FROM sla_policies_view WHERE NOT deleted ORDER BY position, id",
    )
    .fetch_all(executor)
    .await
}

pub async fn calendars<'e, E: PgExecutor<'e>>(
    executor: E,
) -> Result<Vec<CalendarRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, version, name, calendar FROM business_calendars_view ORDER BY name, id",
    )
    .fetch_all(executor)
    .await
}

/// Live (not deleted) escalation rules, oldest first.
pub async fn rules<'e, E: PgExecutor<'e>>(executor: E) -> Result<Vec<RuleRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, version, name, rule, updated_at AS saved_at FROM escalation_rules_view
          WHERE NOT deleted ORDER BY created_at, id",
    )
    .fetch_all(executor)
    .await
}

// ---- the catalog, straight from the log -------------------------------------------------------

/// How many configuration events the log holds, and the newest one's position: the catalog
/// changed if either did (the newest alone could miss an older transaction committing late).
///
/// Kept by a trigger on `events` (migration 0013) for exactly [`CATALOG_TYPES`], in the
/// transaction that writes each event: counting them from the log cost a scan of the whole log
/// per new ticket whenever a connection's plan went stale.
pub async fn catalog_signature<'e, E: PgExecutor<'e>>(
    executor: E,
) -> Result<(i64, i64), sqlx::Error> {
    let (count, newest): (i64, Option<i64>) = sqlx::query_as(
        "SELECT coalesce(sum(events), 0)::bigint, max(newest_position) FROM catalog_signature",
    )
    .fetch_one(executor)
    .await?;
    Ok((count, newest.unwrap_or(0)))
}

/// The aggregate types whose events make up the SLA catalog.
pub const CATALOG_TYPES: &[&str] = &["sla_policy", "sla_calendar"];

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("{aggregate_type} {aggregate_id}: the event cannot be read: {source}")]
    Undecodable {
        aggregate_type: String,
        aggregate_id: String,
        source: serde_json::Error,
    },
}

/// Every policy and calendar aggregate, folded from the log (not from the read models, so a
/// change is in force the moment it is committed).
pub async fn config_from_log<'e, E: PgExecutor<'e>>(
    executor: E,
) -> Result<(Vec<SlaPolicy>, std::collections::HashMap<Uuid, SlaCalendar>), CatalogError> {
    use cqrs_es::Aggregate;
    let types: Vec<String> = CATALOG_TYPES.iter().map(|t| t.to_string()).collect();
    let events: Vec<(String, String, serde_json::Value)> = sqlx::query_as(
        "SELECT aggregate_type, aggregate_id, payload FROM events
          WHERE aggregate_type = ANY($1) ORDER BY aggregate_type, aggregate_id, sequence",
    )
    .bind(&types)
    .fetch_all(executor)
    .await?;
    let mut policies: std::collections::BTreeMap<String, SlaPolicy> = Default::default();
    let mut calendars: std::collections::HashMap<Uuid, SlaCalendar> = Default::default();
    for (aggregate_type, aggregate_id, payload) in events {
        let undecodable = |source| CatalogError::Undecodable {
            aggregate_type: aggregate_type.clone(),
            aggregate_id: aggregate_id.clone(),
            source,
        };
        if aggregate_type == "sla_policy" {
            let event: SlaPolicyEvent = serde_json::from_value(payload).map_err(undecodable)?;
            policies
                .entry(aggregate_id.clone())
                .or_default()
                .apply(event);
        } else {
            let event: SlaCalendarEvent = serde_json::from_value(payload).map_err(undecodable)?;
            let Ok(id) = Uuid::parse_str(&aggregate_id) else {
                continue;
            };
            calendars.entry(id).or_default().apply(event);
        }
    }
    Ok((policies.into_values().collect(), calendars))
}

/// The policies in force, in the order they are tried, each with its calendar resolved.
pub fn catalog(
    policies: Vec<(i32, Uuid, u32, PolicyDefinition)>,
    calendars: &std::collections::HashMap<Uuid, SlaCalendar>,
) -> SlaCatalog {
    let mut active: Vec<(i32, AppliedPolicy)> = policies
        .into_iter()
        .map(|(position, policy_id, version, definition)| {
            let calendar = definition
                .calendar_id
                .and_then(|id| calendars.get(&id))
                .and_then(|c| c.calendar.clone())
                .unwrap_or_else(BusinessCalendar::always_open);
            (
                position,
                AppliedPolicy {
                    policy_id,
                    version,
                    name: definition.name,
                    conditions: definition.conditions,
                    calendar_id: definition.calendar_id,
                    calendar,
                    pause_statuses: definition.pause_statuses,
                    at_risk_percent: definition.at_risk_percent,
                    targets: definition.targets,
                },
            )
        })
        .collect();
    // Position first; the id breaks ties so the order never depends on anything else.
    active.sort_by_key(|(position, policy)| (*position, policy.policy_id));
    SlaCatalog::new(active.into_iter().map(|(_, policy)| policy).collect())
}

/// The catalog in force now, from the log.
pub async fn catalog_from_log<'e, E: PgExecutor<'e>>(
    executor: E,
) -> Result<SlaCatalog, CatalogError> {
    let (policies, calendars) = config_from_log(executor).await?;
    let live = policies
        .into_iter()
        .filter(|p| !p.deleted)
        .filter_map(|p| Some((p.position, p.id?, p.version, p.definition?)))
        .collect();
    Ok(catalog(live, &calendars))
}
