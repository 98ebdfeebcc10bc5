//! The read side of Docket.
//!
//! * [`log`] reads the event log in the safe order of DESIGN.md decision 2.
//! * [`runtime`] runs projectors: catch-up subscribers that apply a batch of events and their
//!   checkpoint in one transaction, so a crash can neither lose nor double an event.
//! * [`tickets`] and [`users`] are the read models, with the queries the API serves from them.
//! * [`rebuild`] rebuilds a projection from position zero beside the live one and swaps it in.
//! * [`notify`] turns PostgreSQL notifications into in-process wake-ups.
//! * [`registry`] lists every projector, for start-up, health, metrics and the tools.

pub mod alerts;
pub mod audit;
pub mod automations;
pub mod db;
pub mod flow;
pub mod fold;
pub mod log;
pub mod notify;
pub mod rebuild;
pub mod registry;
pub mod runtime;
pub mod saved_searches;
pub mod search_terms;
pub mod sla;
pub mod sla_config;
pub mod tickets;
pub mod typed;
pub mod users;
pub mod webhooks;
pub mod workforce;

pub use log::{Checkpoint, EventMetadata, RecordedEvent};
pub use runtime::{ProjectionError, ProjectorStatus};
