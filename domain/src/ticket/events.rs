use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::sla::{AppliedPolicy, SlaMetric};
use crate::values::{
    Actor, Category, CommentBody, CommentId, Description, EventKind, Priority, Reason, Subject,
    Tags, TeamId, TicketId, TicketNumber, TicketStatus, UserId,
};
use crate::workforce::routing::RoutingDecision;

/// What happened to a ticket, in full: each event carries its business instant (`occurred_at`)
/// and who caused it, so the log alone answers "who did what, when".
///
/// Persisted events are a public contract. Changing a field's meaning or shape means a new
/// `event_version` and an upcaster for the old one; adding an optional field does not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TicketEvent {
    TicketCreated {
        ticket_id: TicketId,
        number: TicketNumber,
        customer_id: UserId,
        subject: Subject,
        description: Description,
        priority: Priority,
        category: Option<Category>,
        tags: Tags,
        created_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    /// Only the fields that changed are present.
    TicketDetailsUpdated {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<Subject>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<Description>,
        /// `Some(None)`: the category was cleared.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "double_option"
        )]
        category: Option<Option<Category>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tags: Option<Tags>,
        updated_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    TicketPriorityChanged {
        from: Priority,
        to: Priority,
        changed_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    TicketStatusChanged {
        from: TicketStatus,
        to: TicketStatus,
        comment: Option<CommentBody>,
        changed_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    TicketAssigned {
        assignee_id: UserId,
        previous_assignee_id: Option<UserId>,
        reason: Option<Reason>,
        assigned_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    /// Nobody holds the ticket any more (it waits in the queue).
    TicketUnassigned {
        previous_assignee_id: UserId,
        unassigned_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    TicketEscalated {
        from_level: u32,
        to_level: u32,
        reason: Reason,
        escalated_to: Option<UserId>,
        escalated_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    CommentAdded {
        comment_id: CommentId,
        body: CommentBody,
        internal: bool,
        /// Written by the system; satisfies no response target.
        #[serde(default)]
        automated: bool,
        author: Actor,
        occurred_at: DateTime<Utc>,
    },
    /// The SLA policy version that governs the ticket from now on, with its calendar and
    /// targets as they were: the log alone explains every deadline.
    SlaPolicyApplied {
        policy: Box<AppliedPolicy>,
        reason: SlaReason,
        occurred_at: DateTime<Utc>,
    },
    SlaClockStarted {
        metric: SlaMetric,
        cycle: u32,
        target_seconds: u64,
        started_at: DateTime<Utc>,
        due_at: Option<DateTime<Utc>>,
        warn_at: Option<DateTime<Utc>>,
        occurred_at: DateTime<Utc>,
    },
    SlaClockPaused {
        metric: SlaMetric,
        cycle: u32,
        /// Business time counted so far.
        elapsed_ms: i64,
        occurred_at: DateTime<Utc>,
    },
    SlaClockResumed {
        metric: SlaMetric,
        cycle: u32,
        due_at: Option<DateTime<Utc>>,
        warn_at: Option<DateTime<Utc>>,
        occurred_at: DateTime<Utc>,
    },
    /// A priority or policy change: the same clock, counted from its start, against a new target.
    SlaClockRetargeted {
        metric: SlaMetric,
        cycle: u32,
        target_seconds: u64,
        due_at: Option<DateTime<Utc>>,
        warn_at: Option<DateTime<Utc>>,
        occurred_at: DateTime<Utc>,
    },
    SlaClockStopped {
        metric: SlaMetric,
        cycle: u32,
        elapsed_ms: i64,
        met: bool,
        occurred_at: DateTime<Utc>,
    },
    /// The clock crossed its at-risk threshold.
    SlaWarning {
        metric: SlaMetric,
        cycle: u32,
        due_at: Option<DateTime<Utc>>,
        occurred_at: DateTime<Utc>,
    },
    SlaBreached {
        metric: SlaMetric,
        cycle: u32,
        due_at: Option<DateTime<Utc>>,
        breached_at: DateTime<Utc>,
    },
    /// An escalation rule fired; the events it caused follow, by the system.
    EscalationRuleTriggered {
        rule_id: uuid::Uuid,
        rule_name: String,
        rule_version: u32,
        occurred_at: DateTime<Utc>,
    },
    /// An automation rule acted on the ticket because of the event at `cause_sequence`; the
    /// events it caused follow in the same commit, each naming the rule in its metadata.
    AutomationFired {
        rule_id: uuid::Uuid,
        rule_name: String,
        rule_version: i64,
        cause_sequence: i64,
        cause: String,
        occurred_at: DateTime<Utc>,
    },
    /// The router's decision: the candidates it scored, who won, or that nobody could take the
    /// ticket and it waits in the queue. An assignment by the router follows in the same commit.
    TicketRouted {
        decision: Box<RoutingDecision>,
        occurred_at: DateTime<Utc>,
    },
    /// The team responsible for the ticket; `None`: no team.
    TicketTeamAssigned {
        team_id: Option<TeamId>,
        previous_team_id: Option<TeamId>,
        assigned_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    /// A member of staff follows the ticket: they are told of what happens on it.
    TicketFollowed {
        user_id: UserId,
        followed_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    TicketUnfollowed {
        user_id: UserId,
        unfollowed_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    /// People are to be told about the ticket (delivered by the notification service).
    NotificationRequested {
        rule_id: Option<uuid::Uuid>,
        recipients: Vec<UserId>,
        message: String,
        occurred_at: DateTime<Utc>,
    },
}

/// Why an SLA policy was (re)applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaReason {
    TicketCreated,
    TicketChanged,
    PolicyChanged,
    /// The ticket predates SLA tracking.
    Backfill,
}

impl TicketEvent {
    /// The business instant of the event (not when the database recorded it).
    pub fn occurred_at(&self) -> DateTime<Utc> {
        match self {
            TicketEvent::TicketCreated { occurred_at, .. }
            | TicketEvent::TicketDetailsUpdated { occurred_at, .. }
            | TicketEvent::TicketPriorityChanged { occurred_at, .. }
            | TicketEvent::TicketStatusChanged { occurred_at, .. }
            | TicketEvent::TicketAssigned { occurred_at, .. }
            | TicketEvent::TicketUnassigned { occurred_at, .. }
            | TicketEvent::TicketEscalated { occurred_at, .. }
            | TicketEvent::CommentAdded { occurred_at, .. }
            | TicketEvent::SlaPolicyApplied { occurred_at, .. }
            | TicketEvent::SlaClockStarted { occurred_at, .. }
            | TicketEvent::SlaClockPaused { occurred_at, .. }
            | TicketEvent::SlaClockResumed { occurred_at, .. }
            | TicketEvent::SlaClockRetargeted { occurred_at, .. }
            | TicketEvent::SlaClockStopped { occurred_at, .. }
            | TicketEvent::SlaWarning { occurred_at, .. }
            | TicketEvent::EscalationRuleTriggered { occurred_at, .. }
            | TicketEvent::AutomationFired { occurred_at, .. }
            | TicketEvent::TicketRouted { occurred_at, .. }
            | TicketEvent::TicketTeamAssigned { occurred_at, .. }
            | TicketEvent::TicketFollowed { occurred_at, .. }
            | TicketEvent::TicketUnfollowed { occurred_at, .. }
            | TicketEvent::NotificationRequested { occurred_at, .. } => *occurred_at,
            TicketEvent::SlaBreached { breached_at, .. } => *breached_at,
        }
    }

    /// What this event is, as integrations and rules name it; empty for the bookkeeping
    /// nobody outside subscribes to (clocks, routing decisions, rule markers).
    pub fn kinds(&self) -> Vec<EventKind> {
        match self {
            TicketEvent::TicketCreated { .. } => vec![EventKind::TicketCreated],
            TicketEvent::TicketDetailsUpdated { .. } | TicketEvent::TicketTeamAssigned { .. } => {
                vec![EventKind::TicketUpdated]
            }
            TicketEvent::TicketPriorityChanged { .. } => {
                vec![EventKind::TicketPriorityChanged, EventKind::TicketUpdated]
            }
            TicketEvent::TicketStatusChanged { to, .. } => {
                let mut kinds = vec![EventKind::TicketStatusChanged];
                if *to == TicketStatus::Resolved {
                    kinds.push(EventKind::TicketResolved);
                }
                kinds
            }
            TicketEvent::TicketAssigned { .. } | TicketEvent::TicketUnassigned { .. } => {
                vec![EventKind::TicketAssigned]
            }
            TicketEvent::TicketEscalated { .. } => vec![EventKind::TicketEscalated],
            TicketEvent::CommentAdded { .. } => vec![EventKind::CommentAdded],
            TicketEvent::SlaWarning { .. } => vec![EventKind::SlaWarning],
            TicketEvent::SlaBreached { .. } => vec![EventKind::SlaBreached],
            TicketEvent::SlaPolicyApplied { .. }
            | TicketEvent::SlaClockStarted { .. }
            | TicketEvent::SlaClockPaused { .. }
            | TicketEvent::SlaClockResumed { .. }
            | TicketEvent::SlaClockRetargeted { .. }
            | TicketEvent::SlaClockStopped { .. }
            | TicketEvent::EscalationRuleTriggered { .. }
            | TicketEvent::AutomationFired { .. }
            | TicketEvent::TicketRouted { .. }
            | TicketEvent::TicketFollowed { .. }
            | TicketEvent::TicketUnfollowed { .. }
            | TicketEvent::NotificationRequested { .. } => vec![],
        }
    }

    /// An internal note between staff (webhooks leave them out unless told to include them).
    pub fn is_internal_comment(&self) -> bool {
        matches!(self, TicketEvent::CommentAdded { internal: true, .. })
    }

    /// Whether this is an SLA clock or policy event (as opposed to something a person did).
    pub fn is_sla(&self) -> bool {
        matches!(
            self,
            TicketEvent::SlaPolicyApplied { .. }
                | TicketEvent::SlaClockStarted { .. }
                | TicketEvent::SlaClockPaused { .. }
                | TicketEvent::SlaClockResumed { .. }
                | TicketEvent::SlaClockRetargeted { .. }
                | TicketEvent::SlaClockStopped { .. }
                | TicketEvent::SlaWarning { .. }
                | TicketEvent::SlaBreached { .. }
        )
    }

    /// The stored type names of the events the server records on its own (SLA clocks, rules,
    /// notifications), whoever's request set them off. The audit trail names the system as
    /// their actor and keeps the request's correlation id to say what caused them.
    pub const SYSTEM_EVENT_TYPES: &'static [&'static str] = &[
        "SlaPolicyApplied",
        "SlaClockStarted",
        "SlaClockPaused",
        "SlaClockResumed",
        "SlaClockRetargeted",
        "SlaClockStopped",
        "SlaWarning",
        "SlaBreached",
        "EscalationRuleTriggered",
        "AutomationFired",
        "NotificationRequested",
        "TicketRouted",
    ];

    /// Who caused the event.
    pub fn actor(&self) -> Actor {
        match self {
            TicketEvent::TicketCreated { created_by, .. } => *created_by,
            TicketEvent::TicketDetailsUpdated { updated_by, .. } => *updated_by,
            TicketEvent::TicketPriorityChanged { changed_by, .. } => *changed_by,
            TicketEvent::TicketStatusChanged { changed_by, .. } => *changed_by,
            TicketEvent::TicketAssigned { assigned_by, .. } => *assigned_by,
            TicketEvent::TicketUnassigned { unassigned_by, .. } => *unassigned_by,
            TicketEvent::TicketEscalated { escalated_by, .. } => *escalated_by,
            TicketEvent::CommentAdded { author, .. } => *author,
            TicketEvent::TicketTeamAssigned { assigned_by, .. } => *assigned_by,
            TicketEvent::TicketFollowed { followed_by, .. } => *followed_by,
            TicketEvent::TicketUnfollowed { unfollowed_by, .. } => *unfollowed_by,
            TicketEvent::TicketRouted { .. }
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
            | TicketEvent::NotificationRequested { .. } => Actor::system(),
        }
    }

    /// Events a customer must never see: internal notes between staff, and the SLA machinery
    /// (policies, targets and deadlines are the support team's business).
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            TicketEvent::CommentAdded { internal: true, .. }
                | TicketEvent::EscalationRuleTriggered { .. }
                | TicketEvent::AutomationFired { .. }
                | TicketEvent::NotificationRequested { .. }
                | TicketEvent::TicketRouted { .. }
                | TicketEvent::TicketTeamAssigned { .. }
                | TicketEvent::TicketFollowed { .. }
                | TicketEvent::TicketUnfollowed { .. }
        ) || self.is_sla()
    }
}

crate::event_names!(TicketEvent {
    TicketCreated,
    TicketDetailsUpdated,
    TicketPriorityChanged,
    TicketStatusChanged,
    TicketAssigned,
    TicketUnassigned,
    TicketEscalated,
    CommentAdded,
    SlaPolicyApplied,
    SlaClockStarted,
    SlaClockPaused,
    SlaClockResumed,
    SlaClockRetargeted,
    SlaClockStopped,
    SlaWarning,
    SlaBreached,
    EscalationRuleTriggered,
    AutomationFired,
    NotificationRequested,
    TicketRouted,
    TicketTeamAssigned,
    TicketFollowed,
    TicketUnfollowed,
});

/// Keeps "cleared" (`null`) apart from "unchanged" (absent) for an optional field.
pub(crate) mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(
        value: &Option<Option<T>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(inner) => inner.serialize(serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(deserializer).map(Some)
    }
}

#[cfg(test)]
mod kinds_tests {
    use super::*;
    use crate::values::Role;

    fn actor() -> Actor {
        Actor::new(UserId(uuid::Uuid::from_u128(1)), Role::Agent)
    }

    fn status(to: TicketStatus) -> TicketEvent {
        TicketEvent::TicketStatusChanged {
            from: TicketStatus::Open,
            to,
            comment: None,
            changed_by: actor(),
            occurred_at: Utc::now(),
        }
    }

    #[test]
    fn a_resolution_is_also_a_status_change_and_a_priority_change_also_an_update() {
        assert_eq!(
            status(TicketStatus::Resolved).kinds(),
            [EventKind::TicketStatusChanged, EventKind::TicketResolved]
        );
        assert_eq!(
            status(TicketStatus::Pending).kinds(),
            [EventKind::TicketStatusChanged]
        );
        let priority = TicketEvent::TicketPriorityChanged {
            from: Priority::Low,
            to: Priority::High,
            changed_by: actor(),
            occurred_at: Utc::now(),
        };
        assert_eq!(
            priority.kinds(),
            [EventKind::TicketPriorityChanged, EventKind::TicketUpdated]
        );
    }

    #[test]
    fn clocks_and_routing_are_nobodys_business_outside() {
        let breach = TicketEvent::SlaBreached {
            metric: SlaMetric::Resolution,
            cycle: 1,
            due_at: None,
            breached_at: Utc::now(),
        };
        assert_eq!(breach.kinds(), [EventKind::SlaBreached]);
        let stopped = TicketEvent::SlaClockStopped {
            metric: SlaMetric::Resolution,
            cycle: 1,
            elapsed_ms: 0,
            met: true,
            occurred_at: Utc::now(),
        };
        assert!(stopped.kinds().is_empty());
    }

    #[test]
    fn only_an_internal_note_is_an_internal_comment() {
        let note = |internal| TicketEvent::CommentAdded {
            comment_id: crate::values::CommentId(uuid::Uuid::from_u128(9)),
            body: CommentBody::parse("hi").unwrap_or_else(|e| panic!("{e}")),
            internal,
            automated: false,
            author: actor(),
            occurred_at: Utc::now(),
        };
        assert!(note(true).is_internal_comment());
        assert!(!note(false).is_internal_comment());
        assert_eq!(note(false).kinds(), [EventKind::CommentAdded]);
    }
}
