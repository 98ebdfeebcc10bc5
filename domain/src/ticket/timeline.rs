//! A ticket's status timeline: how long it spent in each status, computed from its events.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::events::TicketEvent;
use crate::values::TicketStatus;

/// One stay in one status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusPeriod {
    pub status: TicketStatus,
    pub entered_at: DateTime<Utc>,
    /// `None` while the ticket is still in this status.
    pub left_at: Option<DateTime<Utc>>,
    /// Wall-clock seconds spent, up to `now` for the current status.
    pub seconds: i64,
}

/// The periods, in order. `now` closes the current period; it is an input, so the same events
/// and the same `now` always give the same timeline.
pub fn status_timeline<'a, I>(events: I, now: DateTime<Utc>) -> Vec<StatusPeriod>
where
    I: IntoIterator<Item = &'a TicketEvent>,
{
    let mut periods: Vec<StatusPeriod> = Vec::new();
    for event in events {
        let (status, at) = match event {
            TicketEvent::TicketCreated { occurred_at, .. } => (TicketStatus::New, *occurred_at),
            TicketEvent::TicketStatusChanged {
                to, occurred_at, ..
            } => (*to, *occurred_at),
            TicketEvent::TicketDetailsUpdated { .. }
            | TicketEvent::TicketPriorityChanged { .. }
            | TicketEvent::TicketAssigned { .. }
            | TicketEvent::TicketUnassigned { .. }
            | TicketEvent::TicketEscalated { .. }
            | TicketEvent::CommentAdded { .. }
            | TicketEvent::SlaPolicyApplied { .. }
            | TicketEvent::SlaClockStarted { .. }
            | TicketEvent::SlaClockPaused { .. }
            | TicketEvent::SlaClockResumed { .. }
            | TicketEvent::SlaClockRetargeted { .. }
            | TicketEvent::SlaClockStopped { .. }
            | TicketEvent::SlaWarning { .. }
            | TicketEvent::SlaBreached { .. }
            | TicketEvent::EscalationRuleTriggered { .. }
            | TicketEvent::AutomationFired { .. }
            | TicketEvent::NotificationRequested { .. }
            | TicketEvent::TicketRouted { .. }
            | TicketEvent::TicketTeamAssigned { .. }
            | TicketEvent::TicketFollowed { .. }
            | TicketEvent::TicketUnfollowed { .. } => continue,
        };
        if let Some(open) = periods.last_mut() {
            open.left_at = Some(at);
            open.seconds = (at - open.entered_at).num_seconds().max(0);
        }
        periods.push(StatusPeriod {
            status,
            entered_at: at,
            left_at: None,
            seconds: 0,
        });
    }
    if let Some(open) = periods.last_mut() {
        open.seconds = (now - open.entered_at).num_seconds().max(0);
    }
    periods
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::{
        Actor, Description, Priority, Role, Subject, Tags, TicketId, TicketNumber, UserId,
    };
    use chrono::{Duration, TimeZone};
    use uuid::Uuid;

    fn t(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0)
            .single()
            .unwrap_or_default()
            + Duration::minutes(minutes)
    }

    fn actor() -> Actor {
        Actor::new(UserId(Uuid::from_u128(1)), Role::Agent)
    }

    fn moved(from: TicketStatus, to: TicketStatus, minutes: i64) -> TicketEvent {
        TicketEvent::TicketStatusChanged {
            from,
            to,
            comment: None,
            changed_by: actor(),
            occurred_at: t(minutes),
        }
    }

    #[test]
    fn each_status_gets_its_entered_left_and_duration() {
        let events = vec![
            TicketEvent::TicketCreated {
                ticket_id: TicketId(Uuid::from_u128(2)),
                number: TicketNumber(1),
                customer_id: UserId(Uuid::from_u128(3)),
                subject: Subject::parse("s").unwrap_or_else(|e| panic!("{e}")),
                description: Description::parse("d").unwrap_or_else(|e| panic!("{e}")),
                priority: Priority::Low,
                category: None,
                tags: Tags::default(),
                created_by: actor(),
                occurred_at: t(0),
            },
            moved(TicketStatus::New, TicketStatus::InProgress, 10),
            moved(TicketStatus::InProgress, TicketStatus::Pending, 70),
            moved(TicketStatus::Pending, TicketStatus::InProgress, 100),
        ];
        let timeline = status_timeline(&events, t(160));
        let summary: Vec<(TicketStatus, i64, bool)> = timeline
            .iter()
            .map(|p| (p.status, p.seconds, p.left_at.is_some()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (TicketStatus::New, 600, true),
                (TicketStatus::InProgress, 3600, true),
                (TicketStatus::Pending, 1800, true),
                (TicketStatus::InProgress, 3600, false),
            ]
        );
        assert_eq!(timeline[1].entered_at, t(10));
        assert_eq!(timeline[1].left_at, Some(t(70)));
    }

    #[test]
    fn no_events_no_timeline() {
        assert!(status_timeline(&[], t(0)).is_empty());
    }
}
