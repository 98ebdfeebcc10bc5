//! SLA services: the catalog of policies in force, and the background work that turns time and
//! configuration changes into ticket events — the deadline scheduler, the propagation of policy
//! edits to open tickets, and the escalation-rule engine.
//!
//! All three act only through ticket commands, whose decisions are pure and idempotent (a
//! deadline or rule already recorded is not recorded again), so running them twice, or in two
//! processes at once, changes nothing; they still elect one leader each through a PostgreSQL
//! advisory lock so the work is not done twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use docket_domain::sla::SlaCatalog;
use docket_domain::sla::config::{RuleAction, RuleCondition, RuleDefinition};
use docket_domain::ticket::{
    ApplyEscalationRule, ApplySlaPolicy, CheckSlaDeadlines, RuleStep, TicketCommand,
};
use docket_projections::log::{self, Checkpoint};
use docket_projections::notify::LogNotifications;
use docket_projections::{EventMetadata, sla as sla_view};
use futures::StreamExt;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::{RwLock, watch};
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

use docket_projections::sla_config::{self, CATALOG_TYPES};

/// How many configuration events the log holds, and the newest one's position.
type CatalogSignature = (i64, i64);

/// The catalog, cached against the signature of the configuration events.
#[derive(Default)]
pub struct CatalogCache {
    cached: RwLock<Option<(CatalogSignature, Arc<SlaCatalog>)>>,
}

impl CatalogCache {
    /// The policies in force now, straight from the log (so a policy saved a moment ago
    /// applies to the very next ticket), rebuilt only when configuration has changed: when the
    /// number of configuration events or the newest of them differs (the newest alone could
    /// miss an older transaction committing late).
    pub async fn current(&self, pool: &PgPool) -> Result<Arc<SlaCatalog>, ApiError> {
        // Kept by a trigger on `events` (migration 0013) for exactly `CATALOG_TYPES`, in the
        // transaction that writes each event: counting them from the log here cost a scan of
        // the whole log per new ticket whenever a connection's plan went stale.
        let (count, newest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT coalesce(sum(events), 0)::bigint, max(newest_position) FROM catalog_signature",
        )
        .fetch_one(pool)
        .await
        .map_err(ApiError::database)?;
        let signature = (count, newest.unwrap_or(0));
        if let Some((cached, catalog)) = self.cached.read().await.as_ref()
            && *cached == signature
        {
            return Ok(catalog.clone());
        }
        let catalog = Arc::new(load_catalog(pool).await?);
        *self.cached.write().await = Some((signature, catalog.clone()));
        Ok(catalog)
    }
}

/// The catalog in force, folded from the log.
pub async fn load_catalog(pool: &PgPool) -> Result<SlaCatalog, ApiError> {
    sla_config::catalog_from_log(pool)
        .await
        .map_err(|error| match error {
            sla_config::CatalogError::Database(error) => ApiError::database(error),
            other => ApiError::internal(other),
        })
}

pub(crate) fn system_metadata(purpose: &str) -> EventMetadata {
    EventMetadata {
        actor_id: Some(Uuid::nil().to_string()),
        actor_role: Some("system".to_string()),
        ip: None,
        user_agent: Some(format!("docket/{} {purpose}", env!("CARGO_PKG_VERSION"))),
        correlation_id: Some(format!("{purpose}-{}", Uuid::now_v7())),
        causation_id: None,
    }
}

/// Waits until this process holds the advisory lock `key` (one leader across processes) and
/// returns the connection that holds it; `None` if `shutdown` fires first. The lock lasts as
/// long as the connection.
async fn lead(
    pool: &PgPool,
    key: i64,
    name: &'static str,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<PgConnection> {
    loop {
        if *shutdown.borrow() {
            return None;
        }
        let attempt = async {
            let mut conn = PgConnection::connect_with(&pool.connect_options()).await?;
            let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(key)
                .fetch_one(&mut conn)
                .await?;
            Ok::<_, sqlx::Error>(locked.then_some(conn))
        }
        .await;
        match attempt {
            Ok(Some(conn)) => {
                tracing::info!(service = name, "leading");
                return Some(conn);
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(service = name, %error, "could not try for leadership"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.changed() => {}
        }
    }
}

// ---- the deadline scheduler ------------------------------------------------------------------

/// Turns due instants into events: sleeps until the next warning or deadline of any running
/// clock (as the tickets projection lists them), then asks each due ticket to record what has
/// passed. Wakes early whenever a projection commits (a new or moved deadline), and never
/// sleeps more than a few seconds, so a lost notification costs little.
pub async fn run_scheduler(
    state: Arc<AppState>,
    notifications: LogNotifications,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(_leadership) = lead(
        &state.pool,
        0x646f_636b_6574_5f31,
        "sla-scheduler",
        &mut shutdown,
    )
    .await
    else {
        return;
    };
    let mut changed = notifications.projections();
    // A ticket checked for an instant is not checked again for the same instant until its
    // clock row moves (the projector applies what the check recorded), or a moment passes.
    let mut recently: HashMap<(Uuid, DateTime<Utc>), tokio::time::Instant> = HashMap::new();
    loop {
        if *shutdown.borrow() {
            return;
        }
        recently.retain(|_, when| when.elapsed() < Duration::from_secs(2));
        let exclude: Vec<(Uuid, DateTime<Utc>)> = recently.keys().copied().collect();
        match sla_view::due_clocks(&state.pool, state.clock.now(), DUE_BATCH, &exclude).await {
            Ok(due) if !due.is_empty() => {
                let mut seen = std::collections::HashSet::new();
                let tickets: Vec<Uuid> = due
                    .iter()
                    .map(|(ticket, _)| *ticket)
                    .filter(|ticket| seen.insert(*ticket))
                    .collect();
                check_tickets(&state, &tickets).await;
                let checked = tokio::time::Instant::now();
                recently.extend(due.into_iter().map(|clock| (clock, checked)));
                continue;
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "could not read due SLA clocks"),
        }
        let next = sla_view::next_check(&state.pool).await.ok().flatten();
        let now = state.clock.now();
        let wait = next
            .map(|at| (at - now).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(Duration::from_secs(5))
            .clamp(Duration::from_millis(5), Duration::from_secs(5));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = changed.changed() => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// How many due tickets the scheduler takes at a time, and how many go into one write.
const DUE_BATCH: i64 = 2_000;
const WRITE_BATCH: usize = 250;

/// Records passed deadlines on `tickets`, a few hundred per write, each batch stamped with the
/// moment it is decided.
async fn check_tickets(state: &Arc<AppState>, tickets: &[Uuid]) {
    let chunks: Vec<Vec<String>> = tickets
        .chunks(WRITE_BATCH)
        .map(|chunk| chunk.iter().map(Uuid::to_string).collect())
        .collect();
    let batches = futures::stream::iter(chunks.into_iter().map(|ids| {
        let state = state.clone();
        async move {
            let at = state.clock.now();
            let command = TicketCommand::CheckSlaDeadlines(CheckSlaDeadlines { at });
            if let Err(error) = state
                .tickets
                .execute_many(&ids, command, system_metadata("sla-scheduler"))
                .await
            {
                tracing::warn!(
                    ?error,
                    tickets = ids.len(),
                    "could not record SLA deadlines"
                );
            }
        }
    }))
    .buffer_unordered(2);
    batches.collect::<Vec<()>>().await;
}

// ---- policy propagation ----------------------------------------------------------------------

/// A policy or calendar edit applies to open tickets from the moment it is made: after every
/// configuration change (and once at start-up, for tickets that predate SLA tracking), each
/// open ticket is asked to re-select its policy. Tickets whose policy is unchanged record
/// nothing.
pub async fn run_propagator(
    state: Arc<AppState>,
    notifications: LogNotifications,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(_leadership) = lead(
        &state.pool,
        0x646f_636b_6574_5f32,
        "sla-propagator",
        &mut shutdown,
    )
    .await
    else {
        return;
    };
    let mut wake = notifications.events_of(CATALOG_TYPES);
    let reader = log::reader_pool(&state.pool, 1);
    let mut seen: Option<Checkpoint> = None;
    loop {
        if *shutdown.borrow() {
            return;
        }
        match config_changed(&reader, &mut seen).await {
            Ok(true) => {
                if let Err(error) = propagate(&state).await {
                    tracing::warn!(?error, "could not apply SLA policies to open tickets");
                    seen = None;
                }
            }
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "could not read configuration changes"),
        }
        tokio::select! {
            _ = wake.changed() => {}
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Whether configuration changed since `seen` (always true the first time).
async fn config_changed(pool: &PgPool, seen: &mut Option<Checkpoint>) -> Result<bool, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let first = seen.is_none();
    let from = seen.unwrap_or(Checkpoint::START);
    let batch =
        log::read_batch(&mut conn, from, CATALOG_TYPES, log::Metadata::Skip, 10_000).await?;
    *seen = Some(batch.next);
    Ok(first || !batch.events.is_empty())
}

async fn propagate(state: &Arc<AppState>) -> Result<(), ApiError> {
    let catalog = state.sla_catalog.current(&state.pool).await?;
    let open: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM tickets_view WHERE status NOT IN ('resolved', 'closed') ORDER BY created_at",
    )
    .fetch_all(&state.pool)
    .await
    .map_err(ApiError::database)?;
    let mut applied = 0;
    for chunk in open.chunks(WRITE_BATCH) {
        let ids: Vec<String> = chunk.iter().map(Uuid::to_string).collect();
        let command = TicketCommand::ApplySlaPolicy(ApplySlaPolicy {
            sla: (*catalog).clone(),
            at: state.clock.now(),
        });
        applied += state
            .tickets
            .execute_many(&ids, command, system_metadata("sla-policy"))
            .await?
            .changed;
    }
    if applied > 0 {
        tracing::info!(
            tickets = applied,
            "applied changed SLA policies to open tickets"
        );
    }
    Ok(())
}

// ---- escalation rules ------------------------------------------------------------------------

/// Every few seconds, finds open tickets that meet an enabled rule's conditions and have not yet
/// had it applied, and applies it (a ticket's log names every rule that acted on it).
pub async fn run_rules(state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let Some(_leadership) = lead(
        &state.pool,
        0x646f_636b_6574_5f33,
        "escalation-rules",
        &mut shutdown,
    )
    .await
    else {
        return;
    };
    loop {
        if *shutdown.borrow() {
            return;
        }
        if let Err(error) = evaluate_rules(&state).await {
            tracing::warn!(?error, "could not evaluate escalation rules");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// The SQL condition for one rule condition, over `tickets_view t`; `$2` is the instant of
/// evaluation (the server's clock, not the database's: time is an input).
fn condition_sql(condition: &RuleCondition) -> String {
    match condition {
        RuleCondition::ResponseOverdue => "EXISTS (SELECT 1 FROM sla_clocks_view c WHERE c.ticket_id = t.id \
             AND c.metric IN ('first_response', 'next_response') AND c.breached AND c.stopped_at IS NULL)"
            .to_string(),
        RuleCondition::ResolutionOverdue => "EXISTS (SELECT 1 FROM sla_clocks_view c WHERE c.ticket_id = t.id \
             AND c.metric = 'resolution' AND c.breached AND c.stopped_at IS NULL)"
            .to_string(),
        RuleCondition::AtRisk => "EXISTS (SELECT 1 FROM sla_clocks_view c WHERE c.ticket_id = t.id \
             AND c.warned AND c.stopped_at IS NULL)"
            .to_string(),
        RuleCondition::UnassignedFor { minutes } => format!(
            "t.assignee_id IS NULL AND t.created_at <= $2 - interval '{minutes} minutes'"
        ),
        RuleCondition::NoUpdateFor { minutes } => {
            format!("t.updated_at <= $2 - interval '{minutes} minutes'")
        }
    }
}

async fn evaluate_rules(state: &Arc<AppState>) -> Result<(), ApiError> {
    let rules: Vec<(Uuid, String, i32, serde_json::Value)> = sqlx::query_as(
        "SELECT id, name, version, rule FROM escalation_rules_view WHERE NOT deleted ORDER BY created_at, id",
    )
    .fetch_all(&state.pool)
    .await
    .map_err(ApiError::database)?;
    for (rule_id, name, version, rule) in rules {
        let Ok(definition) = serde_json::from_value::<RuleDefinition>(rule) else {
            continue;
        };
        if !definition.enabled {
            continue;
        }
        let conditions = definition
            .conditions
            .iter()
            .map(condition_sql)
            .collect::<Vec<_>>()
            .join(" AND ");
        let priorities: Vec<String> = definition
            .priorities
            .iter()
            .map(|p| p.as_str().to_string())
            .collect();
        let now = state.clock.now();
        // A rule acts once on a ticket; the log says where it already has.
        let candidates: Vec<Uuid> = sqlx::query_scalar(&format!(
            "SELECT t.id FROM tickets_view t
              WHERE t.status NOT IN ('resolved', 'closed')
                AND (cardinality($1::text[]) = 0 OR t.priority = ANY($1))
                AND {conditions}
                AND NOT EXISTS (
                    SELECT 1 FROM events e
                     WHERE e.aggregate_type = 'ticket' AND e.aggregate_id = t.id::text
                       AND e.event_type = 'EscalationRuleTriggered'
                       AND e.payload -> 'EscalationRuleTriggered' ->> 'rule_id' = $3)
              ORDER BY t.created_at
              LIMIT 500"
        ))
        .bind(&priorities)
        .bind(now)
        .bind(rule_id.to_string())
        .fetch_all(&state.pool)
        .await
        .map_err(ApiError::database)?;
        if candidates.is_empty() {
            continue;
        }
        let steps = resolve_steps(state, &definition.actions).await?;
        let to_team_lead = definition.actions.iter().any(|a| {
            matches!(
                a,
                RuleAction::Escalate {
                    escalate_to: None,
                    to_team_lead: true
                }
            )
        });
        futures::stream::iter(candidates.into_iter().map(|ticket| {
            let (state, mut steps, name) = (state.clone(), steps.clone(), name.clone());
            async move {
                if to_team_lead {
                    match team_lead_of(&state, ticket).await {
                        Ok(lead) => {
                            for step in &mut steps {
                                if let RuleStep::Escalate { escalate_to } = step
                                    && escalate_to.is_none()
                                {
                                    *escalate_to = lead;
                                }
                            }
                        }
                        Err(error) => {
                            tracing::warn!(%ticket, ?error, "could not find the team lead")
                        }
                    }
                }
                let command = TicketCommand::ApplyEscalationRule(ApplyEscalationRule {
                    rule_id,
                    rule_name: name,
                    rule_version: u32::try_from(version).unwrap_or(0),
                    steps,
                    at: now,
                });
                if let Err(error) = state
                    .tickets
                    .execute(
                        &ticket.to_string(),
                        None,
                        command,
                        system_metadata("escalation-rule"),
                    )
                    .await
                {
                    tracing::warn!(%ticket, ?error, "could not apply escalation rule");
                }
            }
        }))
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
    }
    Ok(())
}

/// The lead of the ticket's team (its manager when it has no lead), as they are now.
async fn team_lead_of(
    state: &AppState,
    ticket: Uuid,
) -> Result<Option<docket_domain::ticket::UserStanding>, ApiError> {
    let lead: Option<Uuid> = sqlx::query_scalar(
        "SELECT m.user_id FROM routing_tickets_view r
           JOIN team_members_view m ON m.team_id = r.team_id
          WHERE r.ticket_id = $1 AND m.team_role IN ('lead', 'manager')
          ORDER BY CASE m.team_role WHEN 'lead' THEN 0 ELSE 1 END, m.added_at, m.user_id
          LIMIT 1",
    )
    .bind(ticket)
    .fetch_optional(&state.pool)
    .await
    .map_err(ApiError::database)?;
    match lead {
        Some(id) => crate::accounts::standing(state, docket_domain::values::UserId(id)).await,
        None => Ok(None),
    }
}

async fn resolve_steps(
    state: &AppState,
    actions: &[RuleAction],
) -> Result<Vec<RuleStep>, ApiError> {
    let mut steps = Vec::with_capacity(actions.len());
    for action in actions {
        steps.push(match action {
            RuleAction::Escalate { escalate_to, .. } => RuleStep::Escalate {
                escalate_to: match escalate_to {
                    Some(id) => crate::accounts::standing(state, *id).await?,
                    None => None,
                },
            },
            RuleAction::Reassign { agent_id } => {
                match crate::accounts::standing(state, *agent_id).await? {
                    Some(assignee) => RuleStep::Reassign { assignee },
                    None => continue,
                }
            }
            RuleAction::RaisePriority => RuleStep::RaisePriority,
            RuleAction::Notify {
                recipients,
                message,
            } => RuleStep::Notify {
                recipients: recipients.clone(),
                message: message.clone(),
            },
        });
    }
    Ok(steps)
}
