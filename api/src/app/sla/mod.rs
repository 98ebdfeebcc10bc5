//! SLA services: the catalog of policies in force, the configuration ([`config`]), what the
//! clocks say (a ticket's check, the violations, compliance), and the background work that turns
//! time and configuration changes into ticket events — the deadline [`scheduler`], the
//! [`propagation`] of policy edits to open tickets, and the [`escalation`] rule engine.
//!
//! The background services act only through ticket commands, whose decisions are pure and
//! idempotent (a deadline or rule already recorded is not recorded again), so running them
//! twice, or in two processes at once, changes nothing; they still elect one leader each
//! (`app::leadership`) so the work is not done twice.

pub mod config;
pub mod escalation;
pub mod propagation;
pub mod scheduler;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use docket_domain::Priority;
use docket_domain::access::Permission;
use docket_domain::sla::{AppliedPolicy, ClockState, ClockView, SlaCatalog};
use docket_projections::registry;
use docket_projections::sla::{self as sla_view, ComplianceGroup, ComplianceRow};
use docket_projections::sla_config;
use sqlx::PgPool;
use tokio::sync::RwLock;
use uuid::Uuid;

use crate::app::{App, AppError, Caller};

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
    pub async fn current(&self, pool: &PgPool) -> Result<Arc<SlaCatalog>, AppError> {
        let signature = sla_config::catalog_signature(pool).await?;
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
pub async fn load_catalog(pool: &PgPool) -> Result<SlaCatalog, AppError> {
    sla_config::catalog_from_log(pool)
        .await
        .map_err(|error| match error {
            sla_config::CatalogError::Database(error) => AppError::database(error),
            other => AppError::internal(other),
        })
}

const STAFF_ONLY: &str = "see SLA configuration or clocks";

/// A ticket's clocks as they are at `checked_at`, computed from its log.
pub struct SlaCheck {
    pub ticket_id: Uuid,
    pub checked_at: DateTime<Utc>,
    /// Absent when no policy applies to the ticket yet.
    pub policy: Option<AppliedPolicy>,
    pub clocks: Vec<ClockView>,
}

/// The SLA clocks of one ticket, computed now from its log (staff).
pub async fn check(app: &App, caller: &Caller, ticket_id: Uuid) -> Result<SlaCheck, AppError> {
    caller.require(Permission::ReadStaffViews, STAFF_ONLY)?;
    let (ticket, _) = app.tickets.load(&ticket_id.to_string()).await?;
    let ticket = ticket.state().ok_or(AppError::NotFound("ticket"))?;
    let now = app.time.now();
    let (policy, clocks) = match &ticket.sla {
        Some(sla) => (Some(sla.policy.clone()), sla.views(now)),
        None => (None, vec![]),
    };
    Ok(SlaCheck {
        ticket_id,
        checked_at: now,
        policy,
        clocks,
    })
}

/// A clock at risk or breached, with its ticket.
pub struct Violation {
    pub ticket_id: Uuid,
    pub number: i64,
    pub subject: String,
    pub priority: Priority,
    pub metric: docket_domain::sla::SlaMetric,
    pub state: ClockState,
    pub due_at: Option<DateTime<Utc>>,
    /// Business seconds; negative once breached.
    pub remaining_seconds: i64,
}

/// Clocks at risk and breached, most urgent first (staff).
pub async fn violations(app: &App, caller: &Caller) -> Result<Vec<Violation>, AppError> {
    caller.require(Permission::ReadStaffViews, STAFF_ONLY)?;
    app.consistency
        .include(caller, &[&registry::TICKETS])
        .await?;
    let now = app.time.now();
    let rows = sla_view::violations(&app.pool, None, 1_000).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let remaining_seconds = row
                .sla
                .as_ref()
                .and_then(|sla| sla.views(now).into_iter().find(|v| v.metric == row.metric))
                .map_or(0, |view| view.remaining_seconds);
            Violation {
                ticket_id: row.ticket_id,
                number: row.number,
                subject: row.subject,
                priority: row.priority,
                metric: row.metric,
                state: row.state,
                due_at: row.due_at,
                remaining_seconds,
            }
        })
        .collect())
}

/// Compliance per metric for clocks that finished in `[from, to)`, by `group` (staff).
pub async fn compliance(
    app: &App,
    caller: &Caller,
    group: ComplianceGroup,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<ComplianceRow>, AppError> {
    caller.require(Permission::ReadStaffViews, STAFF_ONLY)?;
    app.consistency
        .include(caller, &[&registry::TICKETS])
        .await?;
    Ok(sla_view::compliance(&app.pool, group, from, to).await?)
}
