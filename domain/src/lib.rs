//! Docket's domain: the `Ticket` and `User` aggregates, the values they are made of, and the rules
//! that decide which events a command produces.
//!
//! Everything here is pure. There is no IO, no database and no clock: the instant a command
//! happens is part of the command, so replaying the log gives the same state on any day.

pub mod access;
pub mod saved_search;
pub mod sla;
pub mod ticket;
pub mod user;
pub mod values;
pub mod workforce;

pub use values::{Actor, Priority, Role, TicketStatus, UserId, ValidationError};

use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;

/// What every aggregate's `handle` does: write the events its pure `decide` returned (each is
/// applied to the aggregate as it is written), or refuse with the decision's error.
pub(crate) async fn record<A: Aggregate>(
    aggregate: &mut A,
    decision: Result<Vec<A::Event>, A::Error>,
    sink: &EventSink<A>,
) -> Result<(), A::Error> {
    for event in decision? {
        sink.write(event, aggregate).await;
    }
    Ok(())
}
