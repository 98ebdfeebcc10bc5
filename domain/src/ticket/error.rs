use crate::values::TicketStatus;

/// Why a ticket command was refused. Business reasons only: storage failures never appear here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("no such ticket")]
    NotFound,
    #[error("the ticket already exists")]
    AlreadyExists,
    #[error("{role} may not {action}")]
    NotPermitted {
        role: crate::values::Role,
        action: &'static str,
    },
    #[error("a ticket cannot go from {from} to {to}")]
    InvalidTransition {
        from: TicketStatus,
        to: TicketStatus,
    },
    #[error("the ticket is closed; reopen it first")]
    Closed,
    #[error("the ticket is {status}; it can no longer be escalated")]
    Finished { status: TicketStatus },
    #[error("the ticket is already assigned to that person")]
    AlreadyAssigned,
    #[error("nobody holds the ticket")]
    NotAssigned,
    #[error("the assignee must be an active agent or manager")]
    InvalidAssignee,
    #[error("the customer must be an active customer account")]
    InvalidCustomer,
    #[error("the ticket is {status}; it is not routed")]
    NotRoutable { status: TicketStatus },
    #[error("the ticket's assignee changed while it was being routed")]
    AssigneeChanged,
    #[error("a follower must be an active member of staff")]
    InvalidFollower,
}
