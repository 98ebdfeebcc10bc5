//! The flow of tickets over recent days: opened, finished and reopened per day, and the
//! backlog each day ended with (the `ticket_flow` projection).

use chrono::Duration;
use docket_domain::access::Permission;
use docket_projections::flow::{self, FlowDay};
use docket_projections::registry;

use crate::app::{App, AppError, Caller};

/// The longest span one read covers.
pub const MOST_DAYS: i64 = 366;

/// The last `days` UTC days, today included, oldest first (staff).
pub async fn recent_days(app: &App, caller: &Caller, days: i64) -> Result<Vec<FlowDay>, AppError> {
    caller.require(Permission::ReadStaffViews, "see how tickets flow")?;
    if !(1..=MOST_DAYS).contains(&days) {
        return Err(AppError::invalid(
            "days",
            format!("must be 1 to {MOST_DAYS} (got {days})"),
        ));
    }
    app.consistency
        .include(caller, &[&registry::TICKET_FLOW])
        .await?;
    let today = app.time.now().date_naive();
    let first = today - Duration::days(days - 1);
    Ok(flow::days(&app.pool, first, today).await?)
}
