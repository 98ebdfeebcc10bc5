//! Who is told of what happens on a ticket, and how each person wants to be told.
//!
//! Pure: the notification subscriber keeps the facts of each ticket as of its place in the log
//! (customer, assignee, team leads, followers) and asks [`who_is_told`] for every event, so a
//! replay of the log tells the same people the same things.

use serde::{Deserialize, Serialize};

use crate::ticket::TicketEvent;
use crate::values::{NotificationKind, Role, UserId};

/// A channel a notification may go by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    InApp,
    Email,
}

/// What a person switched off; everything else they get, by both channels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationPreferences {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_app_off: Vec<NotificationKind>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub email_off: Vec<NotificationKind>,
}

impl NotificationPreferences {
    /// The preferences with each kind listed once, in the order of [`NotificationKind::ALL`]
    /// (so equal choices are equal values, and a no-op is recognised as one).
    pub fn new(in_app_off: &[NotificationKind], email_off: &[NotificationKind]) -> Self {
        let ordered = |off: &[NotificationKind]| {
            NotificationKind::ALL
                .iter()
                .copied()
                .filter(|kind| off.contains(kind))
                .collect()
        };
        Self {
            in_app_off: ordered(in_app_off),
            email_off: ordered(email_off),
        }
    }

    pub fn wants(&self, kind: NotificationKind, channel: Channel) -> bool {
        match channel {
            Channel::InApp => !self.in_app_off.contains(&kind),
            Channel::Email => !self.email_off.contains(&kind),
        }
    }
}

/// A ticket as the notifier knows it at an event's place in the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketFacts {
    pub customer_id: Option<UserId>,
    pub assignee_id: Option<UserId>,
    /// The leads of the ticket's team (those told of an escalation).
    pub team_leads: Vec<UserId>,
    pub followers: Vec<UserId>,
}

/// One person to tell, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notice {
    pub recipient: UserId,
    pub kind: NotificationKind,
}

/// The addresses written as `@ann@example.com` in a comment, lower-cased, each once.
pub fn mentioned_addresses(body: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for word in body.split_whitespace() {
        let Some(rest) = word.strip_prefix('@') else {
            continue;
        };
        let address = rest
            .trim_end_matches(|c: char| ".,;:!?)]}\"'".contains(c))
            .to_lowercase();
        let shaped = address
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
        if shaped && !found.contains(&address) {
            found.push(address);
        }
    }
    found
}

/// Who is told of `event`, and why: each person once, by the most specific reason, never the
/// one who caused it (but the customer of a new ticket, whose mail says it was received, even
/// when they opened it themselves: the app leaves out what its reader did). `mentioned` are the
/// active staff a comment names (resolved from [`mentioned_addresses`] by the caller).
pub fn who_is_told(event: &TicketEvent, facts: &TicketFacts, mentioned: &[UserId]) -> Vec<Notice> {
    let actor = event.actor();
    let mut told: Vec<Notice> = Vec::new();
    if let TicketEvent::TicketCreated { customer_id, .. } = event {
        told.push(Notice {
            recipient: *customer_id,
            kind: NotificationKind::TicketCreated,
        });
        return told;
    }
    let mut tell = |recipient: Option<UserId>, kind: NotificationKind| {
        if let Some(recipient) = recipient
            && recipient != actor.user_id
            && !told.iter().any(|n| n.recipient == recipient)
        {
            told.push(Notice { recipient, kind });
        }
    };
    // The most specific reasons first: a person told twice keeps the first.
    match event {
        TicketEvent::TicketAssigned { assignee_id, .. } => {
            tell(Some(*assignee_id), NotificationKind::Assigned);
        }
        TicketEvent::CommentAdded {
            internal, author, ..
        } => {
            for person in mentioned {
                tell(Some(*person), NotificationKind::Mentioned);
            }
            if !internal {
                if author.role == Role::Customer {
                    tell(facts.assignee_id, NotificationKind::CustomerReply);
                } else {
                    tell(facts.customer_id, NotificationKind::PublicReply);
                }
            }
        }
        TicketEvent::TicketStatusChanged { .. } => {
            tell(facts.assignee_id, NotificationKind::StatusChanged);
            tell(facts.customer_id, NotificationKind::StatusChanged);
        }
        TicketEvent::TicketEscalated { escalated_to, .. } => {
            tell(*escalated_to, NotificationKind::Escalated);
            for lead in &facts.team_leads {
                tell(Some(*lead), NotificationKind::Escalated);
            }
        }
        TicketEvent::SlaWarning { .. } => tell(facts.assignee_id, NotificationKind::SlaWarning),
        TicketEvent::SlaBreached { .. } => tell(facts.assignee_id, NotificationKind::SlaBreached),
        TicketEvent::NotificationRequested { recipients, .. } => {
            for recipient in recipients {
                tell(Some(*recipient), NotificationKind::Rule);
            }
        }
        TicketEvent::TicketCreated { .. }
        | TicketEvent::TicketDetailsUpdated { .. }
        | TicketEvent::TicketPriorityChanged { .. }
        | TicketEvent::TicketUnassigned { .. }
        | TicketEvent::SlaPolicyApplied { .. }
        | TicketEvent::SlaClockStarted { .. }
        | TicketEvent::SlaClockPaused { .. }
        | TicketEvent::SlaClockResumed { .. }
        | TicketEvent::SlaClockRetargeted { .. }
        | TicketEvent::SlaClockStopped { .. }
        | TicketEvent::EscalationRuleTriggered { .. }
        | TicketEvent::AutomationFired { .. }
        | TicketEvent::TicketRouted { .. }
        | TicketEvent::TicketTeamAssigned { .. }
        | TicketEvent::TicketFollowed { .. }
        | TicketEvent::TicketUnfollowed { .. } => {}
    }
    // Followers hear of every change worth telling anyone of: a comment (internal ones too, as
    // followers are staff), a status change, an assignment, an escalation, a breach.
    let followed = matches!(
        event,
        TicketEvent::CommentAdded { .. }
            | TicketEvent::TicketStatusChanged { .. }
            | TicketEvent::TicketAssigned { .. }
            | TicketEvent::TicketEscalated { .. }
            | TicketEvent::SlaBreached { .. }
    );
    if followed {
        for follower in &facts.followers {
            tell(Some(*follower), NotificationKind::Followed);
        }
    }
    told
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;
    use crate::sla::SlaMetric;
    use crate::values::{Actor, CommentBody, CommentId, Reason, TicketStatus};

    fn user(n: u128) -> UserId {
        UserId(Uuid::from_u128(n))
    }
    const CUSTOMER: u128 = 1;
    const ASSIGNEE: u128 = 2;
    const LEAD: u128 = 3;
    const FOLLOWER: u128 = 4;
    const OTHER_AGENT: u128 = 5;

    fn facts() -> TicketFacts {
        TicketFacts {
            customer_id: Some(user(CUSTOMER)),
            assignee_id: Some(user(ASSIGNEE)),
            team_leads: vec![user(LEAD)],
            followers: vec![user(FOLLOWER)],
        }
    }

    fn comment(author: Actor, internal: bool) -> TicketEvent {
        TicketEvent::CommentAdded {
            comment_id: CommentId(Uuid::from_u128(9)),
            body: CommentBody::parse("hello").unwrap_or_else(|e| panic!("{e}")),
            internal,
            automated: false,
            author,
            occurred_at: Utc::now(),
        }
    }

    fn told(notices: &[Notice]) -> Vec<(u128, NotificationKind)> {
        notices
            .iter()
            .map(|n| (n.recipient.0.as_u128(), n.kind))
            .collect()
    }

    #[test]
    fn a_customers_reply_tells_the_assignee_and_the_followers() {
        let event = comment(Actor::new(user(CUSTOMER), Role::Customer), false);
        assert_eq!(
            told(&who_is_told(&event, &facts(), &[])),
            [
                (ASSIGNEE, NotificationKind::CustomerReply),
                (FOLLOWER, NotificationKind::Followed)
            ]
        );
    }

    #[test]
    fn a_staff_reply_tells_the_customer_and_an_internal_note_does_not() {
        let agent = Actor::new(user(OTHER_AGENT), Role::Agent);
        assert_eq!(
            told(&who_is_told(&comment(agent, false), &facts(), &[])),
            [
                (CUSTOMER, NotificationKind::PublicReply),
                (FOLLOWER, NotificationKind::Followed)
            ]
        );
        assert_eq!(
            told(&who_is_told(&comment(agent, true), &facts(), &[])),
            [(FOLLOWER, NotificationKind::Followed)]
        );
    }

    #[test]
    fn a_mention_wins_over_following_and_the_author_is_never_told() {
        let follower = Actor::new(user(FOLLOWER), Role::Agent);
        let event = comment(follower, true);
        assert_eq!(
            told(&who_is_told(
                &event,
                &facts(),
                &[user(LEAD), user(FOLLOWER)]
            )),
            [(LEAD, NotificationKind::Mentioned)]
        );
        let event = comment(Actor::new(user(OTHER_AGENT), Role::Agent), true);
        assert_eq!(
            told(&who_is_told(&event, &facts(), &[user(FOLLOWER)])),
            [(FOLLOWER, NotificationKind::Mentioned)]
        );
    }

    #[test]
    fn a_status_change_tells_the_assignee_and_the_customer_but_not_its_maker() {
        let event = TicketEvent::TicketStatusChanged {
            from: TicketStatus::Open,
            to: TicketStatus::Resolved,
            comment: None,
            changed_by: Actor::new(user(ASSIGNEE), Role::Agent),
            occurred_at: Utc::now(),
        };
        assert_eq!(
            told(&who_is_told(&event, &facts(), &[])),
            [
                (CUSTOMER, NotificationKind::StatusChanged),
                (FOLLOWER, NotificationKind::Followed)
            ]
        );
    }

    #[test]
    fn an_assignment_tells_the_new_assignee_and_an_escalation_the_team_lead() {
        let assigned = TicketEvent::TicketAssigned {
            assignee_id: user(OTHER_AGENT),
            previous_assignee_id: Some(user(ASSIGNEE)),
            reason: None,
            assigned_by: Actor::new(user(LEAD), Role::Manager),
            occurred_at: Utc::now(),
        };
        assert_eq!(
            told(&who_is_told(&assigned, &facts(), &[]))[0],
            (OTHER_AGENT, NotificationKind::Assigned)
        );
        let escalated = TicketEvent::TicketEscalated {
            from_level: 0,
            to_level: 1,
            reason: Reason::parse("stuck").unwrap_or_else(|e| panic!("{e}")),
            escalated_to: None,
            escalated_by: Actor::new(user(ASSIGNEE), Role::Agent),
            occurred_at: Utc::now(),
        };
        assert_eq!(
            told(&who_is_told(&escalated, &facts(), &[]))[0],
            (LEAD, NotificationKind::Escalated)
        );
    }

    #[test]
    fn clocks_tell_the_assignee_as_the_system() {
        let breached = TicketEvent::SlaBreached {
            metric: SlaMetric::Resolution,
            cycle: 1,
            due_at: None,
            breached_at: Utc::now(),
        };
        assert_eq!(
            told(&who_is_told(&breached, &facts(), &[])),
            [
                (ASSIGNEE, NotificationKind::SlaBreached),
                (FOLLOWER, NotificationKind::Followed)
            ]
        );
        let unassigned = TicketFacts {
            assignee_id: None,
            followers: vec![],
            ..facts()
        };
        let warning = TicketEvent::SlaWarning {
            metric: SlaMetric::FirstResponse,
            cycle: 1,
            due_at: None,
            occurred_at: Utc::now(),
        };
        assert!(who_is_told(&warning, &unassigned, &[]).is_empty());
    }

    #[test]
    fn the_customer_hears_their_ticket_was_received_whoever_opened_it() {
        let created = |by: Actor| TicketEvent::TicketCreated {
            ticket_id: crate::values::TicketId(Uuid::from_u128(8)),
            number: crate::values::TicketNumber(1),
            customer_id: user(CUSTOMER),
            subject: crate::values::Subject::parse("x").unwrap_or_else(|e| panic!("{e}")),
            description: crate::values::Description::parse("y").unwrap_or_else(|e| panic!("{e}")),
            priority: crate::values::Priority::Low,
            category: None,
            tags: crate::values::Tags::default(),
            created_by: by,
            occurred_at: Utc::now(),
        };
        for by in [
            Actor::new(user(CUSTOMER), Role::Customer),
            Actor::new(user(OTHER_AGENT), Role::Agent),
        ] {
            assert_eq!(
                told(&who_is_told(&created(by), &TicketFacts::default(), &[])),
                [(CUSTOMER, NotificationKind::TicketCreated)]
            );
        }
    }

    #[test]
    fn mentions_are_addresses_after_an_at_sign() {
        assert_eq!(
            mentioned_addresses(
                "cc @Ann@Example.com, and @bob@example.org. Not me@example.com or @nobody"
            ),
            ["ann@example.com", "bob@example.org"]
        );
        assert!(mentioned_addresses("email me at x@y.z").is_empty());
    }

    #[test]
    fn preferences_switch_kinds_off_per_channel() {
        let preferences = NotificationPreferences::new(
            &[NotificationKind::Followed, NotificationKind::Followed],
            &[NotificationKind::SlaWarning],
        );
        assert_eq!(preferences.in_app_off, [NotificationKind::Followed]);
        assert!(!preferences.wants(NotificationKind::Followed, Channel::InApp));
        assert!(preferences.wants(NotificationKind::Followed, Channel::Email));
        assert!(!preferences.wants(NotificationKind::SlaWarning, Channel::Email));
        assert!(NotificationPreferences::default().wants(NotificationKind::Rule, Channel::Email));
    }
}
