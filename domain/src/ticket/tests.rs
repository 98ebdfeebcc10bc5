//! Given/when/then tests of every ticket command: the happy path and each way it is refused.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::values::{
    Actor, Category, CommentBody, CommentId, Description, Priority, Reason, Role, Subject, Tags,
    TicketId, TicketNumber, TicketStatus, UserId,
};

type TicketTest = TestFramework<Ticket>;

fn given(events: Vec<TicketEvent>) -> cqrs_es::test::AggregateTestExecutor<Ticket> {
    TicketTest::with(()).given(events)
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0)
        .single()
        .unwrap_or_default()
}

fn later(minutes: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(minutes)
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn ticket_id() -> TicketId {
    TicketId(id(1))
}
fn customer() -> Actor {
    Actor::new(UserId(id(10)), Role::Customer)
}
fn other_customer() -> Actor {
    Actor::new(UserId(id(11)), Role::Customer)
}
fn agent() -> Actor {
    Actor::new(UserId(id(20)), Role::Agent)
}
fn manager() -> Actor {
    Actor::new(UserId(id(30)), Role::Manager)
}
fn admin() -> Actor {
    Actor::new(UserId(id(40)), Role::Admin)
}
fn viewer() -> Actor {
    Actor::new(UserId(id(50)), Role::Viewer)
}

fn standing(actor: Actor) -> UserStanding {
    UserStanding {
        user_id: actor.user_id,
        role: actor.role,
        active: true,
    }
}

fn subject(text: &str) -> Subject {
    Subject::parse(text).unwrap_or_else(|e| panic!("{e}"))
}
fn description(text: &str) -> Description {
    Description::parse(text).unwrap_or_else(|e| panic!("{e}"))
}
fn body(text: &str) -> CommentBody {
    CommentBody::parse(text).unwrap_or_else(|e| panic!("{e}"))
}
fn reason(text: &str) -> Reason {
    Reason::parse(text).unwrap_or_else(|e| panic!("{e}"))
}
fn tags(list: &[&str]) -> Tags {
    Tags::parse(list).unwrap_or_else(|e| panic!("{e}"))
}

fn open_command(actor: Actor) -> TicketCommand {
    TicketCommand::Open(OpenTicket {
        ticket_id: ticket_id(),
        number: TicketNumber(1),
        customer: standing(customer()),
        subject: subject("VPN drops every hour"),
        description: description("Since Monday the VPN disconnects hourly."),
        priority: Priority::High,
        category: Category::parse("network").ok(),
        tags: tags(&["vpn"]),
        actor,
        at: t0(),
    })
}

fn created_by(actor: Actor) -> TicketEvent {
    TicketEvent::TicketCreated {
        ticket_id: ticket_id(),
        number: TicketNumber(1),
        customer_id: customer().user_id,
        subject: subject("VPN drops every hour"),
        description: description("Since Monday the VPN disconnects hourly."),
        priority: Priority::High,
        category: Category::parse("network").ok(),
        tags: tags(&["vpn"]),
        created_by: actor,
        occurred_at: t0(),
    }
}

fn created() -> TicketEvent {
    created_by(customer())
}

fn status_changed(from: TicketStatus, to: TicketStatus, actor: Actor, minutes: i64) -> TicketEvent {
    TicketEvent::TicketStatusChanged {
        from,
        to,
        comment: None,
        changed_by: actor,
        occurred_at: later(minutes),
    }
}

fn change_status(to: TicketStatus, actor: Actor) -> TicketCommand {
    TicketCommand::ChangeStatus(ChangeTicketStatus {
        to,
        comment: None,
        actor,
        at: later(5),
    })
}

fn closed_ticket() -> Vec<TicketEvent> {
    vec![
        created(),
        status_changed(TicketStatus::New, TicketStatus::Resolved, agent(), 1),
        status_changed(TicketStatus::Resolved, TicketStatus::Closed, agent(), 2),
    ]
}

// ---- opening ---------------------------------------------------------------------------------

#[test]
fn a_customer_opens_a_ticket_for_themselves() {
    given(vec![])
        .when(open_command(customer()))
        .then_expect_events(vec![created()]);
}

#[test]
fn an_agent_opens_a_ticket_on_behalf_of_a_customer() {
    given(vec![])
        .when(open_command(agent()))
        .then_expect_events(vec![created_by(agent())]);
}

#[test]
fn a_customer_cannot_open_a_ticket_for_another_customer() {
    given(vec![])
        .when(open_command(other_customer()))
        .then_expect_error(TicketError::NotPermitted {
            role: Role::Customer,
            action: "open a ticket for someone else",
        });
}

#[test]
fn a_viewer_cannot_open_tickets() {
    given(vec![])
        .when(open_command(viewer()))
        .then_expect_error(TicketError::NotPermitted {
            role: Role::Viewer,
            action: "open tickets",
        });
}

#[test]
fn a_ticket_for_an_agent_or_an_inactive_customer_is_refused() {
    for customer in [
        standing(agent()),
        UserStanding {
            active: false,
            ..standing(customer())
        },
    ] {
        let TicketCommand::Open(mut open) = open_command(agent()) else {
            unreachable!()
        };
        open.customer = customer;
        given(vec![])
            .when(TicketCommand::Open(open))
            .then_expect_error(TicketError::InvalidCustomer);
    }
}

#[test]
fn opening_an_existing_ticket_again_is_refused() {
    given(vec![created()])
        .when(open_command(customer()))
        .then_expect_error(TicketError::AlreadyExists);
}

#[test]
fn any_command_on_a_ticket_that_does_not_exist_is_refused() {
    given(vec![])
        .when(change_status(TicketStatus::Open, agent()))
        .then_expect_error(TicketError::NotFound);
}

// ---- editing ---------------------------------------------------------------------------------

fn update(change: TicketDetailsChange, actor: Actor) -> TicketCommand {
    TicketCommand::UpdateDetails(UpdateTicketDetails {
        change,
        actor,
        at: later(3),
    })
}

#[test]
fn an_agent_edits_details_and_only_the_changed_fields_are_recorded() {
    let change = TicketDetailsChange {
        subject: Some(subject("VPN drops every 60 minutes")),
        description: Some(description("Since Monday the VPN disconnects hourly.")),
        priority: Some(Priority::Critical),
        category: Some(None),
        tags: Some(tags(&["vpn"])),
    };
    given(vec![created()])
        .when(update(change, agent()))
        .then_expect_events(vec![
            TicketEvent::TicketDetailsUpdated {
                subject: Some(subject("VPN drops every 60 minutes")),
                description: None,
                category: Some(None),
                tags: None,
                updated_by: agent(),
                occurred_at: later(3),
            },
            TicketEvent::TicketPriorityChanged {
                from: Priority::High,
                to: Priority::Critical,
                changed_by: agent(),
                occurred_at: later(3),
            },
        ]);
}

#[test]
fn an_edit_that_changes_nothing_records_nothing() {
    let change = TicketDetailsChange {
        priority: Some(Priority::High),
        tags: Some(tags(&["vpn"])),
        ..Default::default()
    };
    given(vec![created()])
        .when(update(change, agent()))
        .then_expect_events(vec![]);
}

#[test]
fn customers_and_viewers_cannot_edit_tickets() {
    for actor in [customer(), viewer()] {
        given(vec![created()])
            .when(update(TicketDetailsChange::default(), actor))
            .then_expect_error(TicketError::NotPermitted {
                role: actor.role,
                action: "edit tickets",
            });
    }
}

#[test]
fn a_closed_ticket_cannot_be_edited() {
    given(closed_ticket())
        .when(update(TicketDetailsChange::default(), agent()))
        .then_expect_error(TicketError::Closed);
}

// ---- status ----------------------------------------------------------------------------------

#[test]
fn an_agent_moves_a_ticket_through_its_lifecycle() {
    let mut history = vec![created()];
    let path = [
        TicketStatus::Open,
        TicketStatus::InProgress,
        TicketStatus::Pending,
        TicketStatus::OnHold,
        TicketStatus::InProgress,
        TicketStatus::Resolved,
        TicketStatus::Closed,
    ];
    let mut from = TicketStatus::New;
    for to in path {
        given(history.clone())
            .when(change_status(to, agent()))
            .then_expect_events(vec![TicketEvent::TicketStatusChanged {
                from,
                to,
                comment: None,
                changed_by: agent(),
                occurred_at: later(5),
            }]);
        history.push(status_changed(from, to, agent(), 5));
        from = to;
    }
}

#[test]
fn a_status_change_keeps_its_comment() {
    let command = TicketCommand::ChangeStatus(ChangeTicketStatus {
        to: TicketStatus::Resolved,
        comment: Some(body("Replaced the router.")),
        actor: agent(),
        at: later(9),
    });
    given(vec![created()])
        .when(command)
        .then_expect_events(vec![TicketEvent::TicketStatusChanged {
            from: TicketStatus::New,
            to: TicketStatus::Resolved,
            comment: Some(body("Replaced the router.")),
            changed_by: agent(),
            occurred_at: later(9),
        }]);
}

#[test]
fn a_closed_ticket_can_only_be_reopened() {
    for to in [
        TicketStatus::InProgress,
        TicketStatus::Pending,
        TicketStatus::OnHold,
        TicketStatus::Resolved,
        TicketStatus::Closed,
        TicketStatus::New,
    ] {
        given(closed_ticket())
            .when(change_status(to, agent()))
            .then_expect_error(TicketError::InvalidTransition {
                from: TicketStatus::Closed,
                to,
            });
    }
    given(closed_ticket())
        .when(change_status(TicketStatus::Open, agent()))
        .then_expect_events(vec![status_changed(
            TicketStatus::Closed,
            TicketStatus::Open,
            agent(),
            5,
        )]);
}

#[test]
fn a_resolved_ticket_can_be_reopened_or_closed_but_not_worked_on() {
    let resolved = vec![
        created(),
        status_changed(TicketStatus::New, TicketStatus::Resolved, agent(), 1),
    ];
    given(resolved.clone())
        .when(change_status(TicketStatus::InProgress, agent()))
        .then_expect_error(TicketError::InvalidTransition {
            from: TicketStatus::Resolved,
            to: TicketStatus::InProgress,
        });
    given(resolved)
        .when(change_status(TicketStatus::Closed, agent()))
        .then_expect_events(vec![status_changed(
            TicketStatus::Resolved,
            TicketStatus::Closed,
            agent(),
            5,
        )]);
}

#[test]
fn no_ticket_goes_back_to_new_or_stays_where_it_is() {
    given(vec![created()])
        .when(change_status(TicketStatus::New, agent()))
        .then_expect_error(TicketError::InvalidTransition {
            from: TicketStatus::New,
            to: TicketStatus::New,
        });
    given(vec![
        created(),
        status_changed(TicketStatus::New, TicketStatus::Open, agent(), 1),
    ])
    .when(change_status(TicketStatus::Open, agent()))
    .then_expect_error(TicketError::InvalidTransition {
        from: TicketStatus::Open,
        to: TicketStatus::Open,
    });
}

#[test]
fn a_customer_reopens_their_own_closed_ticket() {
    given(closed_ticket())
        .when(change_status(TicketStatus::Open, customer()))
        .then_expect_events(vec![status_changed(
            TicketStatus::Closed,
            TicketStatus::Open,
            customer(),
            5,
        )]);
}

#[test]
fn a_customer_can_do_nothing_else_with_the_status() {
    given(vec![created()])
        .when(change_status(TicketStatus::Resolved, customer()))
        .then_expect_error(TicketError::NotPermitted {
            role: Role::Customer,
            action: "change a ticket's status except to reopen their own",
        });
    given(closed_ticket())
        .when(change_status(TicketStatus::Open, other_customer()))
        .then_expect_error(TicketError::NotPermitted {
            role: Role::Customer,
            action: "change a ticket's status except to reopen their own",
        });
}

#[test]
fn a_viewer_cannot_change_the_status() {
    given(vec![created()])
        .when(change_status(TicketStatus::Open, viewer()))
        .then_expect_error(TicketError::NotPermitted {
            role: Role::Viewer,
            action: "change a ticket's status",
        });
}

// ---- assignment ------------------------------------------------------------------------------

fn assign(assignee: UserStanding, actor: Actor) -> TicketCommand {
    TicketCommand::Assign(AssignTicket {
        assignee,
        reason: Some(reason("Network specialist")),
        actor,
        at: later(2),
    })
}

fn assigned(assignee: Actor, previous: Option<Actor>, by: Actor) -> TicketEvent {
    TicketEvent::TicketAssigned {
        assignee_id: assignee.user_id,
        previous_assignee_id: previous.map(|p| p.user_id),
        reason: Some(reason("Network specialist")),
        assigned_by: by,
        occurred_at: later(2),
    }
}

#[test]
fn a_manager_assigns_a_ticket_to_an_agent_then_reassigns_it() {
    given(vec![created()])
        .when(assign(standing(agent()), manager()))
        .then_expect_events(vec![assigned(agent(), None, manager())]);
    given(vec![created(), assigned(agent(), None, manager())])
        .when(assign(standing(manager()), admin()))
        .then_expect_events(vec![assigned(manager(), Some(agent()), admin())]);
}

#[test]
fn only_active_agents_and_managers_can_be_assignees() {
    for assignee in [
        standing(customer()),
        standing(admin()),
        standing(viewer()),
        UserStanding {
            active: false,
            ..standing(agent())
        },
    ] {
        given(vec![created()])
            .when(assign(assignee, manager()))
            .then_expect_error(TicketError::InvalidAssignee);
    }
}

#[test]
fn assigning_to_the_current_assignee_is_refused() {
    given(vec![created(), assigned(agent(), None, manager())])
        .when(assign(standing(agent()), manager()))
        .then_expect_error(TicketError::AlreadyAssigned);
}

#[test]
fn customers_and_viewers_cannot_assign() {
    for actor in [customer(), viewer()] {
        given(vec![created()])
            .when(assign(standing(agent()), actor))
            .then_expect_error(TicketError::NotPermitted {
                role: actor.role,
                action: "assign tickets",
            });
    }
}

#[test]
fn a_closed_ticket_cannot_be_assigned() {
    given(closed_ticket())
        .when(assign(standing(agent()), manager()))
        .then_expect_error(TicketError::Closed);
}

// ---- escalation ------------------------------------------------------------------------------

fn escalate(to: Option<UserStanding>, actor: Actor) -> TicketCommand {
    TicketCommand::Escalate(EscalateTicket {
        reason: reason("Customer is a hospital"),
        escalate_to: to,
        actor,
        at: later(7),
    })
}

fn escalated(from_level: u32, to: Option<Actor>, by: Actor) -> TicketEvent {
    TicketEvent::TicketEscalated {
        from_level,
        to_level: from_level + 1,
        reason: reason("Customer is a hospital"),
        escalated_to: to.map(|a| a.user_id),
        escalated_by: by,
        occurred_at: later(7),
    }
}

#[test]
fn escalating_raises_the_level_each_time() {
    given(vec![created()])
        .when(escalate(None, agent()))
        .then_expect_events(vec![escalated(0, None, agent())]);
    given(vec![created(), escalated(0, None, agent())])
        .when(escalate(None, agent()))
        .then_expect_events(vec![escalated(1, None, agent())]);
}

#[test]
fn escalating_to_someone_else_also_reassigns() {
    given(vec![created(), assigned(agent(), None, manager())])
        .when(escalate(Some(standing(manager())), agent()))
        .then_expect_events(vec![
            escalated(0, Some(manager()), agent()),
            TicketEvent::TicketAssigned {
                assignee_id: manager().user_id,
                previous_assignee_id: Some(agent().user_id),
                reason: Some(reason("Customer is a hospital")),
                assigned_by: agent(),
                occurred_at: later(7),
            },
        ]);
}

#[test]
fn escalating_to_the_current_assignee_does_not_reassign() {
    given(vec![created(), assigned(agent(), None, manager())])
        .when(escalate(Some(standing(agent())), manager()))
        .then_expect_events(vec![escalated(0, Some(agent()), manager())]);
}

#[test]
fn escalating_to_an_invalid_assignee_is_refused() {
    given(vec![created()])
        .when(escalate(Some(standing(customer())), agent()))
        .then_expect_error(TicketError::InvalidAssignee);
}

#[test]
fn a_finished_ticket_cannot_be_escalated() {
    given(closed_ticket())
        .when(escalate(None, agent()))
        .then_expect_error(TicketError::Finished {
            status: TicketStatus::Closed,
        });
    given(vec![
        created(),
        status_changed(TicketStatus::New, TicketStatus::Resolved, agent(), 1),
    ])
    .when(escalate(None, agent()))
    .then_expect_error(TicketError::Finished {
        status: TicketStatus::Resolved,
    });
}

#[test]
fn customers_cannot_escalate() {
    given(vec![created()])
        .when(escalate(None, customer()))
        .then_expect_error(TicketError::NotPermitted {
            role: Role::Customer,
            action: "escalate tickets",
        });
}

// ---- comments --------------------------------------------------------------------------------

fn comment(internal: bool, actor: Actor) -> TicketCommand {
    TicketCommand::AddComment(AddComment {
        comment_id: CommentId(id(99)),
        body: body("Have you tried turning it off and on again?"),
        internal,
        actor,
        at: later(4),
    })
}

fn commented(internal: bool, actor: Actor) -> TicketEvent {
    TicketEvent::CommentAdded {
        comment_id: CommentId(id(99)),
        body: body("Have you tried turning it off and on again?"),
        internal,
        author: actor,
        occurred_at: later(4),
    }
}

#[test]
fn staff_post_public_and_internal_comments() {
    for internal in [false, true] {
        given(vec![created()])
            .when(comment(internal, agent()))
            .then_expect_events(vec![commented(internal, agent())]);
    }
}

#[test]
fn the_owner_posts_a_public_comment() {
    given(vec![created()])
        .when(comment(false, customer()))
        .then_expect_events(vec![commented(false, customer())]);
}

#[test]
fn a_customer_can_never_post_an_internal_comment() {
    given(vec![created()])
        .when(comment(true, customer()))
        .then_expect_error(TicketError::NotPermitted {
            role: Role::Customer,
            action: "post internal comments",
        });
}

#[test]
fn another_customer_or_a_viewer_cannot_comment() {
    for actor in [other_customer(), viewer()] {
        given(vec![created()])
            .when(comment(false, actor))
            .then_expect_error(TicketError::NotPermitted {
                role: actor.role,
                action: "comment on this ticket",
            });
    }
}

#[test]
fn a_closed_ticket_takes_no_comments() {
    given(closed_ticket())
        .when(comment(false, agent()))
        .then_expect_error(TicketError::Closed);
}

// ---- state -----------------------------------------------------------------------------------

#[test]
fn replaying_the_events_gives_the_current_state() {
    let ticket = Ticket::from_events(vec![
        created(),
        assigned(agent(), None, manager()),
        escalated(0, None, agent()),
        commented(true, agent()),
        status_changed(TicketStatus::New, TicketStatus::InProgress, agent(), 8),
    ]);
    let state = ticket.state().cloned();
    assert_eq!(
        state.as_ref().map(|s| s.status),
        Some(TicketStatus::InProgress)
    );
    assert_eq!(
        state.as_ref().and_then(|s| s.assignee_id),
        Some(agent().user_id)
    );
    assert_eq!(state.as_ref().map(|s| s.escalation_level), Some(1));
    assert_eq!(state.as_ref().map(|s| s.comment_count), Some(1));
    assert_eq!(state.as_ref().map(|s| s.created_at), Some(t0()));
    assert_eq!(state.map(|s| s.updated_at), Some(later(8)));
}

#[test]
fn events_round_trip_through_json_as_stored_in_the_log() {
    let events = vec![
        created(),
        TicketEvent::TicketDetailsUpdated {
            subject: None,
            description: None,
            category: Some(None),
            tags: None,
            updated_by: agent(),
            occurred_at: later(1),
        },
        commented(true, agent()),
    ];
    for event in events {
        let json = serde_json::to_value(&event).unwrap_or_default();
        let back: Option<TicketEvent> = serde_json::from_value(json).ok();
        assert_eq!(back, Some(event));
    }
}

#[test]
fn a_stored_v1_ticket_created_event_still_loads() {
    // The shape as written to the log by event_version 1: keep this fixture forever.
    let stored = serde_json::json!({"TicketCreated": {
        "ticket_id": "00000000-0000-0000-0000-000000000001",
        "number": 1,
        "customer_id": "00000000-0000-0000-0000-00000000000a",
        "subject": "VPN drops every hour",
        "description": "Since Monday the VPN disconnects hourly.",
        "priority": "high",
        "category": "network",
        "tags": ["vpn"],
        "created_by": {"user_id": "00000000-0000-0000-0000-00000000000a", "role": "customer"},
        "occurred_at": "2026-11-20T09:00:00Z"
    }});
    let event: Option<TicketEvent> = serde_json::from_value(stored).ok();
    assert_eq!(event, Some(created()));
}
