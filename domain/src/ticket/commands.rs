use chrono::{DateTime, Utc};

use crate::sla::SlaCatalog;
use crate::values::{
    Actor, Category, CommentBody, CommentId, Description, Priority, Reason, Role, Subject, Tags,
    TeamId, TicketId, TicketNumber, TicketStatus, UserId,
};
use crate::workforce::routing::RoutingDecision;

/// What someone wants done to a ticket. Every command names who is acting and when.
#[derive(Debug, Clone, PartialEq)]
pub enum TicketCommand {
    Open(OpenTicket),
    UpdateDetails(UpdateTicketDetails),
    ChangeStatus(ChangeTicketStatus),
    Assign(AssignTicket),
    /// Take the ticket out of its assignee's hands.
    Unassign(UnassignTicket),
    Escalate(EscalateTicket),
    AddComment(AddComment),
    /// Re-select the SLA policy (after a policy was edited), or start SLA clocks on a ticket that
    /// has none yet.
    ApplySlaPolicy(ApplySlaPolicy),
    /// Record the SLA deadlines that have passed by `at` (the deadline scheduler).
    CheckSlaDeadlines(CheckSlaDeadlines),
    /// An escalation rule's conditions hold for the ticket: take its actions (once per rule).
    ApplyEscalationRule(ApplyEscalationRule),
    /// An automation rule acts, because of the ticket's event at `cause_sequence` (once per
    /// rule and cause).
    ApplyAutomation(ApplyAutomation),
    /// Record a routing decision and, when it chose someone, assign the ticket to them.
    Route(RouteTicket),
    /// Put the ticket in a team's hands (or take it out: `None`).
    AssignTeam(AssignTeam),
    /// Someone on staff is to be told of what happens on the ticket.
    Follow(FollowTicket),
    /// ... and no longer.
    Unfollow(UnfollowTicket),
}

impl TicketCommand {
    /// A short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            TicketCommand::Open(_) => "open_ticket",
            TicketCommand::UpdateDetails(_) => "update_ticket_details",
            TicketCommand::ChangeStatus(_) => "change_ticket_status",
            TicketCommand::Assign(_) => "assign_ticket",
            TicketCommand::Unassign(_) => "unassign_ticket",
            TicketCommand::Escalate(_) => "escalate_ticket",
            TicketCommand::AddComment(_) => "add_comment",
            TicketCommand::ApplySlaPolicy(_) => "apply_sla_policy",
            TicketCommand::CheckSlaDeadlines(_) => "check_sla_deadlines",
            TicketCommand::ApplyEscalationRule(_) => "apply_escalation_rule",
            TicketCommand::ApplyAutomation(_) => "apply_automation",
            TicketCommand::Route(_) => "route_ticket",
            TicketCommand::AssignTeam(_) => "assign_team",
            TicketCommand::Follow(_) => "follow_ticket",
            TicketCommand::Unfollow(_) => "unfollow_ticket",
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
    /// The policies in force, to pick the ticket's SLA from.
    pub sla: SlaCatalog,
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
    /// The policies in force: a new priority, category or tags may select another.
    pub sla: SlaCatalog,
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
pub struct FollowTicket {
    pub follower: UserStanding,
    pub actor: Actor,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UnfollowTicket {
    pub follower: UserId,
    pub actor: Actor,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UnassignTicket {
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
    /// Written by the system (a rule, a canned auto-response): satisfies no response target.
    pub automated: bool,
    pub actor: Actor,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApplySlaPolicy {
    pub sla: SlaCatalog,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CheckSlaDeadlines {
    pub at: DateTime<Utc>,
}

/// A rule action with the people it names looked up.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleStep {
    Escalate {
        escalate_to: Option<UserStanding>,
    },
    Reassign {
        assignee: UserStanding,
    },
    RaisePriority,
    Notify {
        recipients: Vec<crate::values::UserId>,
        message: Option<String>,
    },
}

/// One thing an automation rule does to the ticket, with what it names already looked up.
#[derive(Debug, Clone, PartialEq)]
pub enum AutomationStep {
    SetStatus(crate::values::TicketStatus),
    SetPriority(crate::values::Priority),
    Assign(UserStanding),
    AssignTeam(crate::values::TeamId),
    AddTags(Vec<crate::values::Tag>),
    RemoveTags(Vec<crate::values::Tag>),
    Comment {
        comment_id: crate::values::CommentId,
        body: crate::values::CommentBody,
        internal: bool,
    },
    Escalate(crate::values::Reason),
    Notify {
        recipients: Vec<crate::values::UserId>,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApplyAutomation {
    pub rule_id: uuid::Uuid,
    pub rule_name: String,
    pub rule_version: i64,
    /// The sequence of the ticket's event that set the rule off, and its type.
    pub cause_sequence: i64,
    pub cause: String,
    pub steps: Vec<AutomationStep>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApplyEscalationRule {
    pub rule_id: uuid::Uuid,
    pub rule_name: String,
    pub rule_version: u32,
    pub steps: Vec<RuleStep>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteTicket {
    pub decision: RoutingDecision,
    /// The chosen agent as the application found them, when the decision chose one.
    pub assignee: Option<UserStanding>,
    /// Who held the ticket when the router decided; refused if that has changed since, so two
    /// routers never both move a ticket.
    pub expected_assignee: Option<UserId>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AssignTeam {
    pub team_id: Option<TeamId>,
    pub actor: Actor,
    pub at: DateTime<Utc>,
}
