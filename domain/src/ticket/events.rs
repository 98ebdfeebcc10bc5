use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::values::{
    Actor, Category, CommentBody, CommentId, Description, Priority, Reason, Subject, Tags,
    TicketId, TicketNumber, TicketStatus, UserId,
};

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
        author: Actor,
        occurred_at: DateTime<Utc>,
    },
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
            | TicketEvent::TicketEscalated { occurred_at, .. }
            | TicketEvent::CommentAdded { occurred_at, .. } => *occurred_at,
        }
    }

    /// Who caused the event.
    pub fn actor(&self) -> Actor {
        match self {
            TicketEvent::TicketCreated { created_by, .. } => *created_by,
            TicketEvent::TicketDetailsUpdated { updated_by, .. } => *updated_by,
            TicketEvent::TicketPriorityChanged { changed_by, .. } => *changed_by,
            TicketEvent::TicketStatusChanged { changed_by, .. } => *changed_by,
            TicketEvent::TicketAssigned { assigned_by, .. } => *assigned_by,
            TicketEvent::TicketEscalated { escalated_by, .. } => *escalated_by,
            TicketEvent::CommentAdded { author, .. } => *author,
        }
    }

    /// Events a customer must never see: internal notes between staff.
    pub fn is_internal(&self) -> bool {
        matches!(self, TicketEvent::CommentAdded { internal: true, .. })
    }
}

impl TicketEvent {
    /// The event's type name as stored in the log's `event_type` column.
    pub fn name(&self) -> &'static str {
        match self {
            TicketEvent::TicketCreated { .. } => "TicketCreated",
            TicketEvent::TicketDetailsUpdated { .. } => "TicketDetailsUpdated",
            TicketEvent::TicketPriorityChanged { .. } => "TicketPriorityChanged",
            TicketEvent::TicketStatusChanged { .. } => "TicketStatusChanged",
            TicketEvent::TicketAssigned { .. } => "TicketAssigned",
            TicketEvent::TicketEscalated { .. } => "TicketEscalated",
            TicketEvent::CommentAdded { .. } => "CommentAdded",
        }
    }
}

impl DomainEvent for TicketEvent {
    fn event_type(&self) -> String {
        self.name().to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// Keeps "cleared" (`null`) apart from "unchanged" (absent) for an optional field.
mod double_option {
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
