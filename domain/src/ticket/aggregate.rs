use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use super::commands::{
    AddComment, ApplyAutomation, ApplyEscalationRule, AssignTeam, AssignTicket, AutomationStep,
    ChangeTicketStatus, EscalateTicket, FollowTicket, OpenTicket, RouteTicket, RuleStep,
    TicketCommand, UnassignTicket, UnfollowTicket, UpdateTicketDetails, UserStanding,
};
use super::error::TicketError;
use super::events::{SlaReason, TicketEvent};
use super::sla::{self, TicketSla};
use crate::values::{
    Actor, Category, Description, Priority, Reason, Role, Subject, Tags, TeamId, TicketId,
    TicketNumber, TicketStatus, UserId,
};

/// The ticket aggregate. `None` until the ticket is created.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    state: Option<TicketState>,
}

/// Everything the ticket's rules need to know, and what a write response shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketState {
    pub id: TicketId,
    pub number: TicketNumber,
    pub customer_id: UserId,
    pub subject: Subject,
    pub description: Description,
    pub priority: Priority,
    pub category: Option<Category>,
    pub tags: Tags,
    pub status: TicketStatus,
    pub assignee_id: Option<UserId>,
    pub escalation_level: u32,
    pub comment_count: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The SLA policy and clocks; `None` before any policy applied.
    #[serde(default)]
    pub sla: Option<TicketSla>,
    /// Escalation rules that have fired on this ticket (each fires once).
    #[serde(default)]
    pub rules_applied: std::collections::BTreeSet<uuid::Uuid>,
    /// The team responsible, if any.
    #[serde(default)]
    pub team_id: Option<TeamId>,
    /// Staff told of what happens on the ticket.
    #[serde(default)]
    pub followers: std::collections::BTreeSet<UserId>,
    /// Each automation rule that acted on the ticket, with the sequence of the latest event it
    /// acted on (a rule acts at most once per event).
    #[serde(default)]
    pub automations_fired: std::collections::BTreeMap<uuid::Uuid, i64>,
}

impl Ticket {
    pub fn state(&self) -> Option<&TicketState> {
        self.state.as_ref()
    }

    /// Decides what a command means for this ticket. Pure: same state and command, same answer.
    pub fn decide(&self, command: &TicketCommand) -> Result<Vec<TicketEvent>, TicketError> {
        let business = match (command, &self.state) {
            (TicketCommand::Open(open), None) => open_ticket(open)?,
            (TicketCommand::Open(_), Some(_)) => return Err(TicketError::AlreadyExists),
            (_, None) => return Err(TicketError::NotFound),
            (command, Some(ticket)) if ticket.hidden_from(command) => {
                return Err(TicketError::NotFound);
            }
            (TicketCommand::UpdateDetails(update), Some(ticket)) => {
                ticket.update_details(update)?
            }
            (TicketCommand::ChangeStatus(change), Some(ticket)) => ticket.change_status(change)?,
            (TicketCommand::Assign(assign), Some(ticket)) => ticket.assign(assign)?,
            (TicketCommand::Unassign(unassign), Some(ticket)) => ticket.unassign(unassign)?,
            (TicketCommand::Escalate(escalate), Some(ticket)) => ticket.escalate(escalate)?,
            (TicketCommand::AddComment(comment), Some(ticket)) => ticket.add_comment(comment)?,
            (TicketCommand::ApplySlaPolicy(_), Some(_)) => Vec::new(),
            (TicketCommand::CheckSlaDeadlines(check), Some(ticket)) => {
                return Ok(sla::deadlines(ticket, check.at));
            }
            (TicketCommand::ApplyEscalationRule(rule), Some(ticket)) => ticket.apply_rule(rule)?,
            (TicketCommand::ApplyAutomation(run), Some(_)) => self.apply_automation(run),
            (TicketCommand::Route(route), Some(ticket)) => ticket.route(route)?,
            (TicketCommand::AssignTeam(assign), Some(ticket)) => ticket.assign_team(assign)?,
            (TicketCommand::Follow(follow), Some(ticket)) => ticket.follow(follow)?,
            (TicketCommand::Unfollow(unfollow), Some(ticket)) => ticket.unfollow(unfollow)?,
        };
        // What the business events mean for the SLA clocks, decided on the state after them.
        let (catalog, reason, at) = match command {
            TicketCommand::Open(open) => (Some(&open.sla), SlaReason::TicketCreated, open.at),
            TicketCommand::UpdateDetails(update) => {
                (Some(&update.sla), SlaReason::TicketChanged, update.at)
            }
            TicketCommand::ApplySlaPolicy(apply) => {
                (Some(&apply.sla), SlaReason::PolicyChanged, apply.at)
            }
            TicketCommand::ChangeStatus(change) => (None, SlaReason::TicketChanged, change.at),
            TicketCommand::Assign(assign) => (None, SlaReason::TicketChanged, assign.at),
            TicketCommand::Unassign(unassign) => (None, SlaReason::TicketChanged, unassign.at),
            TicketCommand::Escalate(escalate) => (None, SlaReason::TicketChanged, escalate.at),
            TicketCommand::AddComment(comment) => (None, SlaReason::TicketChanged, comment.at),
            TicketCommand::CheckSlaDeadlines(check) => (None, SlaReason::TicketChanged, check.at),
            TicketCommand::ApplyEscalationRule(rule) => (None, SlaReason::TicketChanged, rule.at),
            TicketCommand::ApplyAutomation(run) => (None, SlaReason::TicketChanged, run.at),
            TicketCommand::Route(route) => (None, SlaReason::TicketChanged, route.at),
            TicketCommand::AssignTeam(assign) => (None, SlaReason::TicketChanged, assign.at),
            TicketCommand::Follow(follow) => (None, SlaReason::TicketChanged, follow.at),
            TicketCommand::Unfollow(unfollow) => (None, SlaReason::TicketChanged, unfollow.at),
        };
        let mut after = self.clone();
        for event in &business {
            after.apply(event.clone());
        }
        let Some(ticket) = after.state.as_ref() else {
            return Ok(business);
        };
        let consequences = sla::consequences(ticket, &business, catalog, reason, at);
        let mut events = business;
        events.extend(consequences);
        Ok(events)
    }
}

fn not_permitted(actor: &Actor, action: &'static str) -> TicketError {
    TicketError::NotPermitted {
        role: actor.role,
        action,
    }
}

fn require_ticket_worker(actor: &Actor, action: &'static str) -> Result<(), TicketError> {
    crate::access::require_actor(actor, crate::access::Permission::WorkTickets, action)
        .map_err(|refusal| not_permitted(actor, refusal.action))
}

fn check_assignee(candidate: &UserStanding) -> Result<(), TicketError> {
    if candidate.active && candidate.role.can_be_assigned() {
        Ok(())
    } else {
        Err(TicketError::InvalidAssignee)
    }
}

/// Who may open a ticket for `customer`: a customer for themself, anyone who works tickets for
/// any customer.
pub fn may_open_for(actor: &Actor, customer: UserId) -> Result<(), TicketError> {
    match actor.role {
        Role::Customer if customer != actor.user_id => {
            Err(not_permitted(actor, "open a ticket for someone else"))
        }
        Role::Customer => Ok(()),
        role if role.works_tickets() => Ok(()),
        _ => Err(not_permitted(actor, "open tickets")),
    }
}

fn open_ticket(open: &OpenTicket) -> Result<Vec<TicketEvent>, TicketError> {
    may_open_for(&open.actor, open.customer.user_id)?;
    if open.customer.role != Role::Customer || !open.customer.active {
        return Err(TicketError::InvalidCustomer);
    }
    Ok(vec![TicketEvent::TicketCreated {
        ticket_id: open.ticket_id,
        number: open.number,
        customer_id: open.customer.user_id,
        subject: open.subject.clone(),
        description: open.description.clone(),
        priority: open.priority,
        category: open.category.clone(),
        tags: open.tags.clone(),
        created_by: open.actor,
        occurred_at: open.at,
    }])
}

/// The lifecycle. `new` is only ever the first status; a closed ticket can only be reopened;
/// a resolved one reopened or closed; everything in between moves freely.
fn transition_allowed(from: TicketStatus, to: TicketStatus) -> bool {
    use TicketStatus::*;
    if from == to || to == New {
        return false;
    }
    match from {
        Closed => to == Open,
        Resolved => matches!(to, Open | Closed),
        New | Open | InProgress | Pending | OnHold => true,
    }
}

impl TicketState {
    /// Staff follow tickets: themselves, or (those who work tickets) a colleague.
    fn follow(&self, follow: &FollowTicket) -> Result<Vec<TicketEvent>, TicketError> {
        let actor = &follow.actor;
        if !actor.role.is_staff() {
            return Err(not_permitted(actor, "follow tickets"));
        }
        if follow.follower.user_id != actor.user_id {
            require_ticket_worker(actor, "add followers")?;
        }
        if !follow.follower.active || !follow.follower.role.is_staff() {
            return Err(TicketError::InvalidFollower);
        }
        if self.followers.contains(&follow.follower.user_id) {
            return Ok(vec![]);
        }
        Ok(vec![TicketEvent::TicketFollowed {
            user_id: follow.follower.user_id,
            followed_by: *actor,
            occurred_at: follow.at,
        }])
    }

    fn unfollow(&self, unfollow: &UnfollowTicket) -> Result<Vec<TicketEvent>, TicketError> {
        let actor = &unfollow.actor;
        if !actor.role.is_staff() {
            return Err(not_permitted(actor, "follow tickets"));
        }
        if unfollow.follower != actor.user_id {
            require_ticket_worker(actor, "remove followers")?;
        }
        if !self.followers.contains(&unfollow.follower) {
            return Ok(vec![]);
        }
        Ok(vec![TicketEvent::TicketUnfollowed {
            user_id: unfollow.follower,
            unfollowed_by: *actor,
            occurred_at: unfollow.at,
        }])
    }

    fn is_owned_by(&self, actor: &Actor) -> bool {
        self.customer_id == actor.user_id
    }

    /// A customer may not learn that someone else's ticket exists: a command customers may
    /// give on their own tickets finds no such ticket when given on another's. (A command no
    /// customer may give at all is refused as such, whoever's ticket it is.)
    fn hidden_from(&self, command: &TicketCommand) -> bool {
        let actor = match command {
            TicketCommand::ChangeStatus(change) => change.actor,
            TicketCommand::AddComment(comment) => comment.actor,
            _ => return false,
        };
        actor.role == Role::Customer && !self.is_owned_by(&actor)
    }

    fn update_details(
        &self,
        update: &UpdateTicketDetails,
    ) -> Result<Vec<TicketEvent>, TicketError> {
        require_ticket_worker(&update.actor, "edit tickets")?;
        if self.status == TicketStatus::Closed {
            return Err(TicketError::Closed);
        }
        let change = &update.change;
        // Only what actually differs is recorded, so a repeated edit adds nothing to the log.
        let subject = change.subject.clone().filter(|s| *s != self.subject);
        let description = change
            .description
            .clone()
            .filter(|d| *d != self.description);
        let category = change.category.clone().filter(|c| *c != self.category);
        let tags = change.tags.clone().filter(|t| *t != self.tags);
        let mut events = Vec::new();
        if subject.is_some() || description.is_some() || category.is_some() || tags.is_some() {
            events.push(TicketEvent::TicketDetailsUpdated {
                subject,
                description,
                category,
                tags,
                updated_by: update.actor,
                occurred_at: update.at,
            });
        }
        if let Some(priority) = change.priority.filter(|p| *p != self.priority) {
            events.push(TicketEvent::TicketPriorityChanged {
                from: self.priority,
                to: priority,
                changed_by: update.actor,
                occurred_at: update.at,
            });
        }
        Ok(events)
    }

    fn change_status(&self, change: &ChangeTicketStatus) -> Result<Vec<TicketEvent>, TicketError> {
        let reopening = self.status.is_finished() && change.to == TicketStatus::Open;
        match change.actor.role {
            role if role.works_tickets() => {}
            Role::Customer if reopening && self.is_owned_by(&change.actor) => {}
            Role::Customer => {
                return Err(not_permitted(
                    &change.actor,
                    "change a ticket's status except to reopen their own",
                ));
            }
            _ => return Err(not_permitted(&change.actor, "change a ticket's status")),
        }
        if !transition_allowed(self.status, change.to) {
            return Err(TicketError::InvalidTransition {
                from: self.status,
                to: change.to,
            });
        }
        Ok(vec![TicketEvent::TicketStatusChanged {
            from: self.status,
            to: change.to,
            comment: change.comment.clone(),
            changed_by: change.actor,
            occurred_at: change.at,
        }])
    }

    fn assign(&self, assign: &AssignTicket) -> Result<Vec<TicketEvent>, TicketError> {
        require_ticket_worker(&assign.actor, "assign tickets")?;
        if self.status == TicketStatus::Closed {
            return Err(TicketError::Closed);
        }
        check_assignee(&assign.assignee)?;
        if self.assignee_id == Some(assign.assignee.user_id) {
            return Err(TicketError::AlreadyAssigned);
        }
        Ok(vec![TicketEvent::TicketAssigned {
            assignee_id: assign.assignee.user_id,
            previous_assignee_id: self.assignee_id,
            reason: assign.reason.clone(),
            assigned_by: assign.actor,
            occurred_at: assign.at,
        }])
    }

    fn unassign(&self, unassign: &UnassignTicket) -> Result<Vec<TicketEvent>, TicketError> {
        require_ticket_worker(&unassign.actor, "unassign tickets")?;
        if self.status == TicketStatus::Closed {
            return Err(TicketError::Closed);
        }
        let Some(previous) = self.assignee_id else {
            return Err(TicketError::NotAssigned);
        };
        Ok(vec![TicketEvent::TicketUnassigned {
            previous_assignee_id: previous,
            unassigned_by: unassign.actor,
            occurred_at: unassign.at,
        }])
    }

    fn route(&self, route: &RouteTicket) -> Result<Vec<TicketEvent>, TicketError> {
        if self.status.is_finished() {
            return Err(TicketError::NotRoutable {
                status: self.status,
            });
        }
        if self.assignee_id != route.expected_assignee {
            return Err(TicketError::AssigneeChanged);
        }
        let mut events = vec![TicketEvent::TicketRouted {
            decision: Box::new(route.decision.clone()),
            occurred_at: route.at,
        }];
        if let Some(chosen) = route.decision.chosen {
            let assignee = route
                .assignee
                .filter(|a| a.user_id == chosen)
                .ok_or(TicketError::InvalidAssignee)?;
            check_assignee(&assignee)?;
            if self.assignee_id != Some(chosen) {
                events.push(TicketEvent::TicketAssigned {
                    assignee_id: chosen,
                    previous_assignee_id: self.assignee_id,
                    reason: Reason::parse("routed to the best-scoring eligible agent").ok(),
                    assigned_by: Actor::system(),
                    occurred_at: route.at,
                });
            }
        }
        Ok(events)
    }

    fn assign_team(&self, assign: &AssignTeam) -> Result<Vec<TicketEvent>, TicketError> {
        require_ticket_worker(&assign.actor, "assign tickets to teams")?;
        if self.status == TicketStatus::Closed {
            return Err(TicketError::Closed);
        }
        if self.team_id == assign.team_id {
            return Ok(vec![]);
        }
        Ok(vec![TicketEvent::TicketTeamAssigned {
            team_id: assign.team_id,
            previous_team_id: self.team_id,
            assigned_by: assign.actor,
            occurred_at: assign.at,
        }])
    }

    fn escalate(&self, escalate: &EscalateTicket) -> Result<Vec<TicketEvent>, TicketError> {
        require_ticket_worker(&escalate.actor, "escalate tickets")?;
        if self.status.is_finished() {
            return Err(TicketError::Finished {
                status: self.status,
            });
        }
        if let Some(target) = &escalate.escalate_to {
            check_assignee(target)?;
        }
        let reassign_to = escalate
            .escalate_to
            .map(|target| target.user_id)
            .filter(|target| self.assignee_id != Some(*target));
        let mut events = vec![TicketEvent::TicketEscalated {
            from_level: self.escalation_level,
            to_level: self.escalation_level.saturating_add(1),
            reason: escalate.reason.clone(),
            escalated_to: escalate.escalate_to.map(|target| target.user_id),
            escalated_by: escalate.actor,
            occurred_at: escalate.at,
        }];
        if let Some(assignee_id) = reassign_to {
            events.push(TicketEvent::TicketAssigned {
                assignee_id,
                previous_assignee_id: self.assignee_id,
                reason: Some(escalate.reason.clone()),
                assigned_by: escalate.actor,
                occurred_at: escalate.at,
            });
        }
        Ok(events)
    }

    /// An escalation rule's actions, taken by the system, once per rule and ticket.
    fn apply_rule(&self, rule: &ApplyEscalationRule) -> Result<Vec<TicketEvent>, TicketError> {
        if self.rules_applied.contains(&rule.rule_id) || self.status.is_finished() {
            return Ok(vec![]);
        }
        let system = Actor::system();
        let at = rule.at;
        let reason = Reason::parse(&format!("Escalation rule \"{}\"", rule.rule_name))
            .or_else(|_| Reason::parse("Escalation rule"))
            .map_err(|_| TicketError::InvalidAssignee)?;
        let mut events = vec![TicketEvent::EscalationRuleTriggered {
            rule_id: rule.rule_id,
            rule_name: rule.rule_name.clone(),
            rule_version: rule.rule_version,
            occurred_at: at,
        }];
        let mut assignee = self.assignee_id;
        let mut level = self.escalation_level;
        let mut priority = self.priority;
        for step in &rule.steps {
            match step {
                RuleStep::Escalate { escalate_to } => {
                    let target = escalate_to.filter(|t| t.active && t.role.can_be_assigned());
                    events.push(TicketEvent::TicketEscalated {
                        from_level: level,
                        to_level: level.saturating_add(1),
                        reason: reason.clone(),
                        escalated_to: target.map(|t| t.user_id),
                        escalated_by: system,
                        occurred_at: at,
                    });
                    level = level.saturating_add(1);
                    if let Some(target) = target.filter(|t| assignee != Some(t.user_id)) {
                        events.push(TicketEvent::TicketAssigned {
                            assignee_id: target.user_id,
                            previous_assignee_id: assignee,
                            reason: Some(reason.clone()),
                            assigned_by: system,
                            occurred_at: at,
                        });
                        assignee = Some(target.user_id);
                    }
                }
                RuleStep::Reassign { assignee: target } => {
                    // Someone who can no longer take tickets is skipped, not an error: the
                    // rule was written when they could.
                    if target.active
                        && target.role.can_be_assigned()
                        && assignee != Some(target.user_id)
                    {
                        events.push(TicketEvent::TicketAssigned {
                            assignee_id: target.user_id,
                            previous_assignee_id: assignee,
                            reason: Some(reason.clone()),
                            assigned_by: system,
                            occurred_at: at,
                        });
                        assignee = Some(target.user_id);
                    }
                }
                RuleStep::RaisePriority => {
                    let raised = match priority {
                        Priority::Low => Priority::Medium,
                        Priority::Medium => Priority::High,
                        Priority::High | Priority::Critical => Priority::Critical,
                    };
                    if raised != priority {
                        events.push(TicketEvent::TicketPriorityChanged {
                            from: priority,
                            to: raised,
                            changed_by: system,
                            occurred_at: at,
                        });
                        priority = raised;
                    }
                }
                RuleStep::Notify {
                    recipients,
                    message,
                } => {
                    events.push(TicketEvent::NotificationRequested {
                        rule_id: Some(rule.rule_id),
                        recipients: recipients.clone(),
                        message: message.clone().unwrap_or_else(|| {
                            format!(
                                "Ticket {} matched escalation rule \"{}\"",
                                self.number, rule.rule_name
                            )
                        }),
                        occurred_at: at,
                    });
                }
            }
        }
        Ok(events)
    }

    fn add_comment(&self, comment: &AddComment) -> Result<Vec<TicketEvent>, TicketError> {
        match comment.actor.role {
            role if role.works_tickets() => {}
            Role::Customer if comment.internal => {
                return Err(not_permitted(&comment.actor, "post internal comments"));
            }
            Role::Customer if self.is_owned_by(&comment.actor) => {}
            _ => return Err(not_permitted(&comment.actor, "comment on this ticket")),
        }
        if self.status == TicketStatus::Closed {
            return Err(TicketError::Closed);
        }
        Ok(vec![TicketEvent::CommentAdded {
            comment_id: comment.comment_id,
            body: comment.body.clone(),
            internal: comment.internal,
            automated: comment.automated,
            author: comment.actor,
            occurred_at: comment.at,
        }])
    }
}

impl Ticket {
    /// An automation rule's steps, by the system, once per rule and causing event. A step that
    /// no longer makes sense (the status is already there, the move is not allowed, the agent
    /// can no longer take tickets) is skipped, not an error: the rule was written before.
    fn apply_automation(&self, run: &ApplyAutomation) -> Vec<TicketEvent> {
        let Some(ticket) = &self.state else {
            return vec![];
        };
        if ticket
            .automations_fired
            .get(&run.rule_id)
            .is_some_and(|last| *last >= run.cause_sequence)
        {
            return vec![];
        }
        let system = Actor::system();
        let at = run.at;
        let mut after = self.clone();
        let mut events = vec![TicketEvent::AutomationFired {
            rule_id: run.rule_id,
            rule_name: run.rule_name.clone(),
            rule_version: run.rule_version,
            cause_sequence: run.cause_sequence,
            cause: run.cause.clone(),
            occurred_at: at,
        }];
        after.apply(events[0].clone());
        for step in &run.steps {
            let Some(now) = after.state.as_ref() else {
                break;
            };
            let made: Option<TicketEvent> = match step {
                AutomationStep::SetStatus(to) => (*to != now.status
                    && transition_allowed(now.status, *to))
                .then_some(TicketEvent::TicketStatusChanged {
                    from: now.status,
                    to: *to,
                    comment: None,
                    changed_by: system,
                    occurred_at: at,
                }),
                AutomationStep::SetPriority(to) => {
                    (*to != now.priority).then_some(TicketEvent::TicketPriorityChanged {
                        from: now.priority,
                        to: *to,
                        changed_by: system,
                        occurred_at: at,
                    })
                }
                AutomationStep::Assign(agent) => (now.status != TicketStatus::Closed
                    && check_assignee(agent).is_ok()
                    && now.assignee_id != Some(agent.user_id))
                .then(|| TicketEvent::TicketAssigned {
                    assignee_id: agent.user_id,
                    previous_assignee_id: now.assignee_id,
                    reason: Reason::parse(&format!("Automation \"{}\"", run.rule_name)).ok(),
                    assigned_by: system,
                    occurred_at: at,
                }),
                AutomationStep::AssignTeam(team) => {
                    (now.team_id != Some(*team)).then_some(TicketEvent::TicketTeamAssigned {
                        team_id: Some(*team),
                        previous_team_id: now.team_id,
                        assigned_by: system,
                        occurred_at: at,
                    })
                }
                AutomationStep::AddTags(added) | AutomationStep::RemoveTags(added) => {
                    let adding = matches!(step, AutomationStep::AddTags(_));
                    let mut tags = now.tags.to_strings();
                    for tag in added {
                        let has = tags.iter().any(|t| t.eq_ignore_ascii_case(tag.as_str()));
                        if adding && !has {
                            tags.push(tag.as_str().to_string());
                        } else if !adding {
                            tags.retain(|t| !t.eq_ignore_ascii_case(tag.as_str()));
                        }
                    }
                    match Tags::parse(&tags) {
                        Ok(tags) if tags != now.tags => Some(TicketEvent::TicketDetailsUpdated {
                            subject: None,
                            description: None,
                            category: None,
                            tags: Some(tags),
                            updated_by: system,
                            occurred_at: at,
                        }),
                        _ => None,
                    }
                }
                AutomationStep::Comment {
                    comment_id,
                    body,
                    internal,
                } => (now.status != TicketStatus::Closed).then(|| TicketEvent::CommentAdded {
                    comment_id: *comment_id,
                    body: body.clone(),
                    internal: *internal,
                    automated: true,
                    author: system,
                    occurred_at: at,
                }),
                AutomationStep::Escalate(reason) => {
                    (!now.status.is_finished()).then(|| TicketEvent::TicketEscalated {
                        from_level: now.escalation_level,
                        to_level: now.escalation_level.saturating_add(1),
                        reason: reason.clone(),
                        escalated_to: None,
                        escalated_by: system,
                        occurred_at: at,
                    })
                }
                AutomationStep::Notify {
                    recipients,
                    message,
                } => (!recipients.is_empty()).then(|| TicketEvent::NotificationRequested {
                    rule_id: Some(run.rule_id),
                    recipients: recipients.clone(),
                    message: message.clone(),
                    occurred_at: at,
                }),
            };
            if let Some(event) = made {
                after.apply(event.clone());
                events.push(event);
            }
        }
        events
    }
}

impl Aggregate for Ticket {
    const TYPE: &'static str = "ticket";
    type Command = TicketCommand;
    type Event = TicketEvent;
    type Error = TicketError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let decision = self.decide(&command);
        crate::record(self, decision, sink).await
    }

    fn apply(&mut self, event: Self::Event) {
        let occurred_at = event.occurred_at();
        match event {
            TicketEvent::TicketCreated {
                ticket_id,
                number,
                customer_id,
                subject,
                description,
                priority,
                category,
                tags,
                created_by: _,
                occurred_at,
            } => {
                self.state = Some(TicketState {
                    id: ticket_id,
                    number,
                    customer_id,
                    subject,
                    description,
                    priority,
                    category,
                    tags,
                    status: TicketStatus::New,
                    assignee_id: None,
                    escalation_level: 0,
                    comment_count: 0,
                    created_at: occurred_at,
                    updated_at: occurred_at,
                    sla: None,
                    rules_applied: Default::default(),
                    team_id: None,
                    followers: Default::default(),
                    automations_fired: Default::default(),
                });
                return;
            }
            TicketEvent::TicketDetailsUpdated {
                subject,
                description,
                category,
                tags,
                ..
            } => {
                if let Some(ticket) = &mut self.state {
                    if let Some(subject) = subject {
                        ticket.subject = subject;
                    }
                    if let Some(description) = description {
                        ticket.description = description;
                    }
                    if let Some(category) = category {
                        ticket.category = category;
                    }
                    if let Some(tags) = tags {
                        ticket.tags = tags;
                    }
                }
            }
            TicketEvent::TicketPriorityChanged { to, .. } => {
                if let Some(ticket) = &mut self.state {
                    ticket.priority = to;
                }
            }
            TicketEvent::TicketStatusChanged { to, .. } => {
                if let Some(ticket) = &mut self.state {
                    ticket.status = to;
                }
            }
            TicketEvent::TicketAssigned { assignee_id, .. } => {
                if let Some(ticket) = &mut self.state {
                    ticket.assignee_id = Some(assignee_id);
                }
            }
            TicketEvent::TicketUnassigned { .. } => {
                if let Some(ticket) = &mut self.state {
                    ticket.assignee_id = None;
                }
            }
            TicketEvent::TicketEscalated { to_level, .. } => {
                if let Some(ticket) = &mut self.state {
                    ticket.escalation_level = to_level;
                }
            }
            TicketEvent::CommentAdded { .. } => {
                if let Some(ticket) = &mut self.state {
                    ticket.comment_count = ticket.comment_count.saturating_add(1);
                }
            }
            TicketEvent::SlaPolicyApplied { .. }
            | TicketEvent::SlaClockStarted { .. }
            | TicketEvent::SlaClockPaused { .. }
            | TicketEvent::SlaClockResumed { .. }
            | TicketEvent::SlaClockRetargeted { .. }
            | TicketEvent::SlaClockStopped { .. }
            | TicketEvent::SlaWarning { .. }
            | TicketEvent::SlaBreached { .. } => {
                if let Some(ticket) = &mut self.state {
                    let sla = ticket.sla.get_or_insert_with(|| TicketSla {
                        policy: crate::sla::AppliedPolicy::default_policy(),
                        clocks: Default::default(),
                    });
                    sla::apply(sla, &event);
                }
                // The clocks are not activity on the ticket: `updated_at` stays.
                return;
            }
            TicketEvent::EscalationRuleTriggered { rule_id, .. } => {
                if let Some(ticket) = &mut self.state {
                    ticket.rules_applied.insert(rule_id);
                }
                return;
            }
            TicketEvent::AutomationFired {
                rule_id,
                cause_sequence,
                ..
            } => {
                if let Some(ticket) = &mut self.state {
                    ticket.automations_fired.insert(rule_id, cause_sequence);
                }
                return;
            }
            TicketEvent::NotificationRequested { .. } | TicketEvent::TicketRouted { .. } => return,
            // Who is told is not activity on the ticket: `updated_at` stays.
            TicketEvent::TicketFollowed { user_id, .. } => {
                if let Some(ticket) = &mut self.state {
                    ticket.followers.insert(user_id);
                }
                return;
            }
            TicketEvent::TicketUnfollowed { user_id, .. } => {
                if let Some(ticket) = &mut self.state {
                    ticket.followers.remove(&user_id);
                }
                return;
            }
            TicketEvent::TicketTeamAssigned { team_id, .. } => {
                if let Some(ticket) = &mut self.state {
                    ticket.team_id = team_id;
                }
            }
        }
        if let Some(ticket) = &mut self.state {
            ticket.updated_at = occurred_at;
        }
    }
}

impl Ticket {
    /// The state after applying `events` in order: what replay tools and tests use.
    pub fn from_events<I: IntoIterator<Item = TicketEvent>>(events: I) -> Self {
        let mut ticket = Ticket::default();
        for event in events {
            ticket.apply(event);
        }
        ticket
    }
}
