//! Time as an input (DESIGN.md decision 4): services ask their time source for "now", and
//! commands carry the instant. (Not to be confused with an SLA clock, `docket_domain::sla`.)

use chrono::{DateTime, SubsecRound, Utc};

/// Where "now" comes from: the system's time, or a test's.
pub trait TimeSource: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's time, to the microsecond: what PostgreSQL keeps, so an instant a write
/// answers with is the instant every later read shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemTime;

impl TimeSource for SystemTime {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}
