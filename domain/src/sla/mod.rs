//! Service-level agreements: policies, business calendars and the clocks they drive.
//!
//! Everything here is a pure function of its inputs. A ticket's clocks are part of the Ticket
//! aggregate and every transition is an event in the ticket's own log (see
//! `ticket::TicketEvent::Sla*`), so the log alone explains every deadline: the policy version
//! and calendar that applied are recorded in `SlaPolicyApplied`.

pub mod calendar;
mod clock;
pub mod config;
pub mod document;
mod policy;

pub use calendar::{BusinessCalendar, BusinessHours, OpenInterval};
pub use clock::{Clock, ClockState, ClockView};
pub use policy::{
    AppliedPolicy, MetricTargets, PolicyConditions, PolicyDefinition, PriorityTargets, SlaCatalog,
    TicketFacts,
};

use serde::{Deserialize, Serialize};

/// What an SLA measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaMetric {
    /// From creation to the first public reply by a person on staff.
    FirstResponse,
    /// From the oldest unanswered public customer message to the next public staff reply.
    NextResponse,
    /// From creation to `resolved`; paused in the policy's pause statuses.
    Resolution,
    /// Unresolved this long: the ticket is escalated automatically.
    Escalation,
}

impl SlaMetric {
    pub const ALL: [SlaMetric; 4] = [
        SlaMetric::FirstResponse,
        SlaMetric::NextResponse,
        SlaMetric::Resolution,
        SlaMetric::Escalation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SlaMetric::FirstResponse => "first_response",
            SlaMetric::NextResponse => "next_response",
            SlaMetric::Resolution => "resolution",
            SlaMetric::Escalation => "escalation",
        }
    }

    /// Whether the clock stops while the ticket waits in a pause status. Response clocks do
    /// not: waiting on the customer is no reason not to answer them first.
    pub fn pauses(self) -> bool {
        matches!(self, SlaMetric::Resolution | SlaMetric::Escalation)
    }
}

impl std::str::FromStr for SlaMetric {
    type Err = crate::ValidationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        SlaMetric::ALL
            .into_iter()
            .find(|metric| metric.as_str() == text)
            .ok_or_else(|| {
                crate::ValidationError::new(
                    "metric",
                    format!(
                        "`{text}` is not one of {}",
                        SlaMetric::ALL.map(SlaMetric::as_str).join(", ")
                    ),
                )
            })
    }
}

impl TryFrom<String> for SlaMetric {
    type Error = crate::ValidationError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl std::fmt::Display for SlaMetric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
