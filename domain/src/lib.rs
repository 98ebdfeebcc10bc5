//! Docket's domain: the `Ticket` and `User` aggregates, the values they are made of, and the rules
//! that decide which events a command produces.
//!
//! Everything here is pure. There is no IO, no database and no clock: the instant a command
//! happens is part of the command, so replaying the log gives the same state on any day.

/// Every event type gets its `name()` (the log's `event_type`), the list of all its names
/// (`NAMES`, for readers that filter by type), and `DomainEvent`, from one list of its variants:
/// the match is exhaustive, so a new variant that is not listed does not compile.
macro_rules! event_names {
    ($event:ident { $($variant:ident),+ $(,)? }) => {
        impl $event {
            /// Every event type name of this kind, as the log stores them.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($variant)),+];

            /// The event's type name as stored in the log's `event_type` column.
            pub fn name(&self) -> &'static str {
                match self {
                    $($event::$variant { .. } => stringify!($variant)),+
                }
            }
        }

        impl cqrs_es::DomainEvent for $event {
            fn event_type(&self) -> String {
                self.name().to_string()
            }

            fn event_version(&self) -> String {
                "1".to_string()
            }
        }
    };
}
pub(crate) use event_names;

pub mod access;
pub mod alert;
pub mod api_key;
pub mod automation;
pub mod mail;
pub mod notice;
pub mod saved_search;
pub mod sla;
pub mod ticket;
pub mod user;
pub mod values;
pub mod webhook;
pub mod workforce;

pub use values::{Actor, Priority, Role, TicketStatus, UserId, ValidationError};

/// Every event type name the log can hold, of every aggregate.
pub fn event_type_names() -> impl Iterator<Item = &'static str> {
    [
        ticket::TicketEvent::NAMES,
        user::UserEvent::NAMES,
        api_key::ApiKeyEvent::NAMES,
        webhook::WebhookEvent::NAMES,
        alert::AlertEvent::NAMES,
        automation::AutomationEvent::NAMES,
        mail::EmailTemplateEvent::NAMES,
        saved_search::SavedSearchEvent::NAMES,
        workforce::skill::SkillEvent::NAMES,
        workforce::team::TeamEvent::NAMES,
        workforce::agent::AgentEvent::NAMES,
        workforce::shift::ShiftEvent::NAMES,
        sla::config::SlaPolicyEvent::NAMES,
        sla::config::SlaCalendarEvent::NAMES,
        sla::config::EscalationRuleEvent::NAMES,
    ]
    .into_iter()
    .flatten()
    .copied()
}

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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    /// The variant names serde reads, from its refusal of one it does not know.
    fn serde_variants<T: serde::de::DeserializeOwned + std::fmt::Debug>() -> Vec<String> {
        let refused = serde_json::from_str::<T>(r#"{"NoSuchEvent": {}}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        refused
            .split("expected one of ")
            .nth(1)
            .unwrap_or_default()
            .split(',')
            .map(|name| name.trim().trim_matches('`').to_string())
            .filter(|name| !name.is_empty())
            .map(|name| name.split('`').next().unwrap_or_default().to_string())
            .collect()
    }

    #[test]
    fn every_event_type_name_is_listed_once_as_the_log_stores_it() {
        let names: Vec<&str> = super::event_type_names().collect();
        let unique: HashSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len(), "no name is used twice");
        let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<HashSet<_>>();
        let ticket = serde_variants::<super::ticket::TicketEvent>();
        assert_eq!(ticket.len(), super::ticket::TicketEvent::NAMES.len());
        assert_eq!(
            ticket.into_iter().collect::<HashSet<_>>(),
            set(super::ticket::TicketEvent::NAMES)
        );
        let user = serde_variants::<super::user::UserEvent>();
        assert_eq!(
            user.into_iter().collect::<HashSet<_>>(),
            set(super::user::UserEvent::NAMES)
        );
        for name in [
            "TicketUnassigned",
            "ShiftStarted",
            "SlaPolicyUpdated",
            "SearchSaved",
        ] {
            assert!(unique.contains(name), "{name}");
        }
    }
}
