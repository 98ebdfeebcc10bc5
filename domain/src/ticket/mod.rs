//! The ticket aggregate: one customer's request for help, from opening to closing.
//!
//! [`Ticket::decide`] is the whole of the business logic: given the current state and a command
//! it returns the events that happened, or why the command was refused. `apply` only records.

mod aggregate;
mod commands;
mod error;
mod events;
mod sla;
mod timeline;
mod what_if;

#[cfg(test)]
mod tests;

pub use aggregate::{Ticket, TicketState, may_open_for};
pub use commands::{
    AddComment, ApplyAutomation, ApplyEscalationRule, ApplySlaPolicy, AssignTeam, AssignTicket,
    AutomationStep, ChangeTicketStatus, CheckSlaDeadlines, EscalateTicket, FollowTicket,
    OpenTicket, RouteTicket, RuleStep, TicketCommand, TicketDetailsChange, UnassignTicket,
    UnfollowTicket, UpdateTicketDetails, UserStanding,
};
pub use error::TicketError;
pub(crate) use events::double_option;
pub use events::{SlaReason, TicketEvent};
pub use sla::TicketSla;
pub use timeline::{StatusPeriod, status_timeline};
pub use what_if::{CandidateSla, RecordedSla, SlaOutcome, TicketOutcomes};
