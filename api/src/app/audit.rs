//! The audit trail across every aggregate (staff).

use chrono::{DateTime, Utc};
use docket_domain::access::Permission;
use docket_projections::audit::{self, AuditEntry, AuditFilter};
use docket_projections::registry;

use uuid::Uuid;

use crate::app::{App, AppError, Caller};

/// A page of the trail, and the cursor for the next one when there may be more.
pub async fn page(
    app: &App,
    caller: &Caller,
    filter: &AuditFilter,
) -> Result<(Vec<AuditEntry>, Option<i64>), AppError> {
    caller.require(Permission::ReadStaffViews, "read the audit trail")?;
    app.consistency.include(caller, &[&registry::AUDIT]).await?;
    Ok(audit::page(&app.pool, filter).await?)
}

/// An event's fields as the API, the web app and webhooks show them: as stored, except that a
/// ticket's number has the one form the ticket itself shows (`"TKT-000051"`, not `51`).
pub fn event_data(aggregate_type: &str, mut data: serde_json::Value) -> serde_json::Value {
    if aggregate_type == "ticket"
        && let Some(number) = data.get("number").and_then(serde_json::Value::as_i64)
    {
        data["number"] =
            serde_json::Value::String(docket_domain::values::TicketNumber(number).to_string());
    }
    data
}

/// One change of an aggregate, as its log recorded it: who made it, and when.
pub struct Change {
    pub version: i64,
    pub event_type: String,
    pub actor_id: Option<Uuid>,
    pub actor_role: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

/// Every change of one aggregate, oldest first, from its log. The caller's right to see them
/// is asked by whoever calls this, for what the aggregate is.
pub async fn changes(app: &App, aggregate_type: &str, id: Uuid) -> Result<Vec<Change>, AppError> {
    let events =
        docket_projections::log::events_of_aggregate(&app.pool, aggregate_type, &id.to_string())
            .await?;
    Ok(events
        .iter()
        .map(|event| {
            let metadata = event.metadata();
            Change {
                version: event.sequence,
                event_type: event.event_type.clone(),
                actor_id: metadata
                    .actor_id
                    .as_deref()
                    .and_then(|id| Uuid::parse_str(id).ok()),
                actor_role: metadata.actor_role,
                recorded_at: event.recorded_at,
            }
        })
        .collect())
}
