//! The audit trail across every aggregate (staff).

use docket_domain::access::Permission;
use docket_projections::audit::{self, AuditEntry, AuditFilter};
use docket_projections::registry;

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
