use chrono::{DateTime, Utc};

use crate::values::{
    Actor, Category, CommentBody, CommentId, Description, Priority, Reason, Role, Subject, Tags,
    TicketId, TicketNumber, TicketStatus, UserId,
};

/// What someone wants done to a ticket. Every command names who is acting and when.
#[derive(Debug, Clone, PartialEq)]
pub enum TicketCommand {
    Open(OpenTicket),
    UpdateDetails(UpdateTicketDetails),
    ChangeStatus(ChangeTicketStatus),
    Assign(AssignTicket),
    Escalate(EscalateTicket),
    AddComment(AddComment),
}

impl TicketCommand {
    /// A short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            TicketCommand::Open(_) => "open_ticket",
            TicketCommand::UpdateDetails(_) => "update_ticket_details",
            TicketCommand::ChangeStatus(_) => "change_ticket_status",
            TicketCommand::Assign(_) => "assign_ticket",
            TicketCommand::Escalate(_) => "escalate_ticket",
            TicketCommand::AddComment(_) => "add_comment",
        }
    }
}

/// Another person as the application found them when the command was issued: the ticket's
/// customer or a prospective assignee. The domain decides whether they qualify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserStanding {
    pub user_id: UserId,
    pub role: Role,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OpenTicket {
    pub ticket_id: TicketId,
    pub number: TicketNumber,
    pub customer: UserStanding,
    pub subject: Subject,
    pub description: Description,
    pub priority: Priority,
    pub category: Option<Category>,
    pub tags: Tags,
    pub actor: Actor,
    pub at: DateTime<Utc>,
}

/// The fields a change sets; `None` leaves a field alone. `category: Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TicketDetailsChange {
    pub subject: Option<Subject>,
    pub description: Option<Description>,
    pub priority: Option<Priority>,
    pub category: Option<Option<Category>>,
    pub tags: Option<Tags>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UpdateTicketDetails {
    pub change: TicketDetailsChange,
    pub actor: Actor,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChangeTicketStatus {
    pub to: TicketStatus,
    pub comment: Option<CommentBody>,
    pub actor: Actor,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AssignTicket {
    pub assignee: UserStanding,
    pub reason: Option<Reason>,
    pub actor: Actor,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EscalateTicket {
    pub reason: Reason,
    pub escalate_to: Option<UserStanding>,
    pub actor: Actor,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AddComment {
    pub comment_id: CommentId,
    pub body: CommentBody,
    pub internal: bool,
    pub actor: Actor,
    pub at: DateTime<Utc>,
}
