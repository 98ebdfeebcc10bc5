//! Docket's domain: the `Ticket` and `User` aggregates, the values they are made of, and the rules
//! that decide which events a command produces.
//!
//! Everything here is pure. There is no IO, no database and no clock: the instant a command
//! happens is part of the command, so replaying the log gives the same state on any day.

pub mod ticket;
pub mod user;
pub mod values;

pub use values::{Actor, Priority, Role, TicketStatus, UserId, ValidationError};
