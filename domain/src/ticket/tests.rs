//! Given/when/then tests of every ticket command: the happy path and each way it is refused.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::sla::{AppliedPolicy, SlaCatalog, SlaMetric};
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
        sla: SlaCatalog::default(),
        actor,
        at: t0(),
    })
}

/// What the default policy does for a new high-priority ticket: 4 h to respond, 24 h to
/// resolve, escalation after 8 h; at risk at 75 %.
fn default_sla_started() -> Vec<TicketEvent> {
    let clock = |metric, hours: i64| TicketEvent::SlaClockStarted {
        metric,
        cycle: 1,
        target_seconds: (hours * 3600) as u64,
        started_at: t0(),
        due_at: Some(t0() + Duration::hours(hours)),
        warn_at: Some(t0() + Duration::minutes(hours * 45)),
        occurred_at: t0(),
    };
    vec![
        TicketEvent::SlaPolicyApplied {
            policy: Box::new(AppliedPolicy::default_policy()),
            reason: SlaReason::TicketCreated,
            occurred_at: t0(),
        },
        clock(SlaMetric::FirstResponse, 4),
        clock(SlaMetric::Resolution, 24),
        clock(SlaMetric::Escalation, 8),
    ]
}

fn opened_by(actor: Actor) -> Vec<TicketEvent> {
    let mut events = vec![created_by(actor)];
    events.extend(default_sla_started());
    events
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
fn a_customer_opens_a_ticket_for_themselves_and_its_sla_clocks_start() {
    given(vec![])
        .when(open_command(customer()))
        .then_expect_events(opened_by(customer()));
}

#[test]
fn an_agent_opens_a_ticket_on_behalf_of_a_customer() {
    given(vec![])
        .when(open_command(agent()))
        .then_expect_events(opened_by(agent()));
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
        sla: SlaCatalog::default(),
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
}

#[test]
fn for_another_customer_the_ticket_does_not_exist() {
    given(closed_ticket())
        .when(change_status(TicketStatus::Open, other_customer()))
        .then_expect_error(TicketError::NotFound);
    given(vec![created()])
        .when(comment(false, other_customer()))
        .then_expect_error(TicketError::NotFound);
}

#[test]
fn what_no_customer_may_do_is_refused_as_such_whoever_owns_the_ticket() {
    let edit = TicketCommand::UpdateDetails(UpdateTicketDetails {
        change: TicketDetailsChange {
            priority: Some(Priority::Low),
            ..TicketDetailsChange::default()
        },
        sla: SlaCatalog::default(),
        actor: other_customer(),
        at: later(5),
    });
    given(vec![created()])
        .when(edit)
        .then_expect_error(TicketError::NotPermitted {
            role: Role::Customer,
            action: "edit tickets",
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

fn unassign(actor: Actor) -> TicketCommand {
    TicketCommand::Unassign(UnassignTicket {
        actor,
        at: later(3),
    })
}

#[test]
fn an_agent_hands_a_ticket_back_and_it_can_be_taken_again() {
    let held = vec![created(), assigned(agent(), None, manager())];
    given(held.clone())
        .when(unassign(agent()))
        .then_expect_events(vec![TicketEvent::TicketUnassigned {
            previous_assignee_id: agent().user_id,
            unassigned_by: agent(),
            occurred_at: later(3),
        }]);
    let mut released = held;
    released.push(TicketEvent::TicketUnassigned {
        previous_assignee_id: agent().user_id,
        unassigned_by: agent(),
        occurred_at: later(3),
    });
    given(released)
        .when(assign(standing(agent()), agent()))
        .then_expect_events(vec![assigned(agent(), None, agent())]);
}

#[test]
fn unassigning_needs_an_assignee_a_ticket_worker_and_an_open_ticket() {
    given(vec![created()])
        .when(unassign(agent()))
        .then_expect_error(TicketError::NotAssigned);
    for actor in [customer(), viewer()] {
        given(vec![created(), assigned(agent(), None, manager())])
            .when(unassign(actor))
            .then_expect_error(TicketError::NotPermitted {
                role: actor.role,
                action: "unassign tickets",
            });
    }
    given(closed_ticket())
        .when(unassign(manager()))
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
        automated: false,
        actor,
        at: later(4),
    })
}

fn commented(internal: bool, actor: Actor) -> TicketEvent {
    TicketEvent::CommentAdded {
        comment_id: CommentId(id(99)),
        body: body("Have you tried turning it off and on again?"),
        internal,
        automated: false,
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
fn a_viewer_cannot_comment() {
    given(vec![created()])
        .when(comment(false, viewer()))
        .then_expect_error(TicketError::NotPermitted {
            role: Role::Viewer,
            action: "comment on this ticket",
        });
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

// ---- SLA clocks ------------------------------------------------------------------------------

fn opened() -> Vec<TicketEvent> {
    opened_by(customer())
}

fn at_hours(hours: f64) -> DateTime<Utc> {
    t0() + Duration::seconds((hours * 3600.0) as i64)
}

fn comment_at(actor: Actor, hours: f64, automated: bool) -> TicketCommand {
    TicketCommand::AddComment(AddComment {
        comment_id: CommentId(id(7)),
        body: body("Looking into it"),
        internal: false,
        automated,
        actor,
        at: at_hours(hours),
    })
}

fn commented_at(actor: Actor, hours: f64) -> TicketEvent {
    TicketEvent::CommentAdded {
        comment_id: CommentId(id(7)),
        body: body("Looking into it"),
        internal: false,
        automated: false,
        author: actor,
        occurred_at: at_hours(hours),
    }
}

fn status_at(to: TicketStatus, hours: f64) -> TicketCommand {
    TicketCommand::ChangeStatus(ChangeTicketStatus {
        to,
        comment: None,
        actor: agent(),
        at: at_hours(hours),
    })
}

fn check_at(hours: f64) -> TicketCommand {
    TicketCommand::CheckSlaDeadlines(CheckSlaDeadlines {
        at: at_hours(hours),
    })
}

fn stopped(metric: SlaMetric, hours: f64, met: bool) -> TicketEvent {
    TicketEvent::SlaClockStopped {
        metric,
        cycle: 1,
        elapsed_ms: (hours * 3_600_000.0) as i64,
        met,
        occurred_at: at_hours(hours),
    }
}

#[test]
fn a_public_staff_reply_meets_the_first_response_target() {
    given(opened())
        .when(comment_at(agent(), 1.0, false))
        .then_expect_events(vec![
            commented_at(agent(), 1.0),
            stopped(SlaMetric::FirstResponse, 1.0, true),
        ]);
}

#[test]
fn an_automatic_reply_or_an_internal_note_does_not() {
    let events = given(opened())
        .when(comment_at(agent(), 1.0, true))
        .inspect_result()
        .unwrap_or_default();
    assert_eq!(events.len(), 1, "{events:?}");
    given(opened())
        .when(comment(true, agent()))
        .then_expect_events(vec![commented(true, agent())]);
}

#[test]
fn a_customer_message_after_the_first_answer_starts_next_response_and_a_reply_meets_it() {
    let answered = {
        let mut events = opened();
        events.push(commented_at(agent(), 1.0));
        events.push(stopped(SlaMetric::FirstResponse, 1.0, true));
        events
    };
    let started = TicketEvent::SlaClockStarted {
        metric: SlaMetric::NextResponse,
        cycle: 1,
        target_seconds: 4 * 3600,
        started_at: at_hours(2.0),
        due_at: Some(at_hours(6.0)),
        warn_at: Some(at_hours(5.0)),
        occurred_at: at_hours(2.0),
    };
    given(answered.clone())
        .when(comment_at(customer(), 2.0, false))
        .then_expect_events(vec![commented_at(customer(), 2.0), started.clone()]);
    // A second customer message while waiting does not restart the clock.
    let mut waiting = answered.clone();
    waiting.push(commented_at(customer(), 2.0));
    waiting.push(started);
    given(waiting.clone())
        .when(comment_at(customer(), 3.0, false))
        .then_expect_events(vec![commented_at(customer(), 3.0)]);
    given(waiting)
        .when(comment_at(agent(), 3.5, false))
        .then_expect_events(vec![
            commented_at(agent(), 3.5),
            TicketEvent::SlaClockStopped {
                metric: SlaMetric::NextResponse,
                cycle: 1,
                elapsed_ms: 5_400_000,
                met: true,
                occurred_at: at_hours(3.5),
            },
        ]);
}

#[test]
fn waiting_on_the_customer_pauses_resolution_and_resuming_moves_the_deadline() {
    let paused = TicketEvent::SlaClockPaused {
        metric: SlaMetric::Resolution,
        cycle: 1,
        elapsed_ms: 2 * 3_600_000,
        occurred_at: at_hours(2.0),
    };
    let paused_escalation = TicketEvent::SlaClockPaused {
        metric: SlaMetric::Escalation,
        cycle: 1,
        elapsed_ms: 2 * 3_600_000,
        occurred_at: at_hours(2.0),
    };
    given(opened())
        .when(status_at(TicketStatus::Pending, 2.0))
        .then_expect_events(vec![
            status_changed(TicketStatus::New, TicketStatus::Pending, agent(), 120),
            paused.clone(),
            paused_escalation.clone(),
        ]);
    let mut waiting = opened();
    waiting.extend([
        status_changed(TicketStatus::New, TicketStatus::Pending, agent(), 120),
        paused,
        paused_escalation,
    ]);
    // Five hours later the customer is back: 22 h of resolution time remain from now.
    given(waiting)
        .when(status_at(TicketStatus::Open, 7.0))
        .then_expect_events(vec![
            status_changed(TicketStatus::Pending, TicketStatus::Open, agent(), 420),
            TicketEvent::SlaClockResumed {
                metric: SlaMetric::Resolution,
                cycle: 1,
                due_at: Some(at_hours(29.0)),
                warn_at: Some(at_hours(23.0)),
                occurred_at: at_hours(7.0),
            },
            TicketEvent::SlaClockResumed {
                metric: SlaMetric::Escalation,
                cycle: 1,
                due_at: Some(at_hours(13.0)),
                warn_at: Some(at_hours(11.0)),
                occurred_at: at_hours(7.0),
            },
        ]);
}

#[test]
fn resolving_stops_every_clock_and_reopening_carries_resolution_on() {
    let resolved = {
        let mut events = opened();
        events.push(status_changed(
            TicketStatus::New,
            TicketStatus::Resolved,
            agent(),
            180,
        ));
        events.push(stopped(SlaMetric::FirstResponse, 3.0, true));
        events.push(stopped(SlaMetric::Resolution, 3.0, true));
        events.push(stopped(SlaMetric::Escalation, 3.0, true));
        events
    };
    given(opened())
        .when(status_at(TicketStatus::Resolved, 3.0))
        .then_expect_events(resolved[5..].to_vec());
    given(resolved)
        .when(status_at(TicketStatus::Open, 10.0))
        .then_expect_events(vec![
            status_changed(TicketStatus::Resolved, TicketStatus::Open, agent(), 600),
            TicketEvent::SlaClockResumed {
                metric: SlaMetric::Resolution,
                cycle: 1,
                due_at: Some(at_hours(31.0)),
                warn_at: Some(at_hours(25.0)),
                occurred_at: at_hours(10.0),
            },
            TicketEvent::SlaClockResumed {
                metric: SlaMetric::Escalation,
                cycle: 1,
                due_at: Some(at_hours(15.0)),
                warn_at: Some(at_hours(13.0)),
                occurred_at: at_hours(10.0),
            },
        ]);
}

#[test]
fn a_priority_change_recomputes_running_clocks_from_their_start() {
    let change = TicketDetailsChange {
        priority: Some(Priority::Critical),
        ..Default::default()
    };
    let command = TicketCommand::UpdateDetails(UpdateTicketDetails {
        change,
        sla: SlaCatalog::default(),
        actor: agent(),
        at: at_hours(0.5),
    });
    let retargeted = |metric, hours: i64, warn_minutes: i64| TicketEvent::SlaClockRetargeted {
        metric,
        cycle: 1,
        target_seconds: (hours * 3600) as u64,
        due_at: Some(t0() + Duration::hours(hours)),
        warn_at: Some(t0() + Duration::minutes(warn_minutes)),
        occurred_at: at_hours(0.5),
    };
    given(opened()).when(command).then_expect_events(vec![
        TicketEvent::TicketPriorityChanged {
            from: Priority::High,
            to: Priority::Critical,
            changed_by: agent(),
            occurred_at: at_hours(0.5),
        },
        retargeted(SlaMetric::FirstResponse, 1, 45),
        retargeted(SlaMetric::Resolution, 4, 180),
        retargeted(SlaMetric::Escalation, 2, 90),
    ]);
}

#[test]
fn deadlines_are_recorded_once_each_and_escalation_escalates() {
    // Nothing is due after one hour.
    given(opened())
        .when(check_at(1.0))
        .then_expect_events(vec![]);
    // At 3 h the first response is at risk (75 % of 4 h).
    let warned = TicketEvent::SlaWarning {
        metric: SlaMetric::FirstResponse,
        cycle: 1,
        due_at: Some(at_hours(4.0)),
        occurred_at: at_hours(3.0),
    };
    given(opened())
        .when(check_at(3.0))
        .then_expect_events(vec![warned.clone()]);
    let mut after_warning = opened();
    after_warning.push(warned);
    given(after_warning.clone())
        .when(check_at(3.5))
        .then_expect_events(vec![]);
    // At 8 h: first response breached; escalation at risk and breached at once, and the
    // ticket escalated by the system. Resolution (at risk only at 18 h) says nothing yet.
    let events = given(after_warning.clone())
        .when(check_at(8.0))
        .inspect_result()
        .unwrap_or_default();
    let names: Vec<&str> = events.iter().map(TicketEvent::name).collect();
    assert_eq!(
        names,
        [
            "SlaBreached",
            "SlaWarning",
            "SlaBreached",
            "TicketEscalated",
            "SlaClockStopped"
        ]
    );
    assert!(matches!(
        events[3],
        TicketEvent::TicketEscalated { to_level: 1, escalated_by, .. } if escalated_by == Actor::system()
    ));
    let mut after = after_warning;
    after.extend(events);
    given(after).when(check_at(9.0)).then_expect_events(vec![]);
}

#[test]
fn an_edited_policy_applies_from_the_moment_it_is_published() {
    let mut gold = AppliedPolicy::default_policy();
    gold.policy_id = id(500);
    gold.version = 2;
    gold.name = "Gold".into();
    gold.targets.high.resolution = 12 * 3600;
    let catalog = SlaCatalog::new(vec![gold.clone()]);
    let events = given(opened())
        .when(TicketCommand::ApplySlaPolicy(ApplySlaPolicy {
            sla: catalog,
            at: at_hours(1.0),
        }))
        .inspect_result()
        .unwrap_or_default();
    assert_eq!(
        events[0],
        TicketEvent::SlaPolicyApplied {
            policy: Box::new(gold),
            reason: SlaReason::PolicyChanged,
            occurred_at: at_hours(1.0),
        }
    );
    assert_eq!(
        events[1],
        TicketEvent::SlaClockRetargeted {
            metric: SlaMetric::Resolution,
            cycle: 1,
            target_seconds: 12 * 3600,
            due_at: Some(at_hours(12.0)),
            warn_at: Some(at_hours(9.0)),
            occurred_at: at_hours(1.0),
        }
    );
    assert_eq!(events.len(), 2);
}

#[test]
fn a_ticket_from_before_sla_tracking_is_backfilled_from_its_creation() {
    let events = given(vec![created()])
        .when(TicketCommand::ApplySlaPolicy(ApplySlaPolicy {
            sla: SlaCatalog::default(),
            at: at_hours(30.0),
        }))
        .inspect_result()
        .unwrap_or_default();
    assert!(matches!(
        &events[0],
        TicketEvent::SlaPolicyApplied {
            reason: SlaReason::Backfill,
            ..
        }
    ));
    assert!(matches!(
        &events[1],
        TicketEvent::SlaClockStarted { started_at, due_at, .. }
            if *started_at == t0() && *due_at == Some(at_hours(4.0))
    ));
    // An edit of a ticket without clocks does not start them behind anyone's back.
    given(vec![created()])
        .when(update(
            TicketDetailsChange {
                subject: Some(subject("New subject")),
                ..Default::default()
            },
            agent(),
        ))
        .then_expect_events(vec![TicketEvent::TicketDetailsUpdated {
            subject: Some(subject("New subject")),
            description: None,
            category: None,
            tags: None,
            updated_by: agent(),
            occurred_at: later(3),
        }]);
}

#[test]
fn the_clocks_replay_into_views_at_any_instant() {
    let ticket = Ticket::from_events(opened());
    let views = ticket
        .state()
        .and_then(|s| s.sla.as_ref())
        .map(|sla| sla.views(at_hours(5.0)))
        .unwrap_or_default();
    let summary: Vec<(SlaMetric, crate::sla::ClockState, i64)> = views
        .iter()
        .map(|v| (v.metric, v.state, v.remaining_seconds))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                SlaMetric::FirstResponse,
                crate::sla::ClockState::Breached,
                -3600
            ),
            (
                SlaMetric::Resolution,
                crate::sla::ClockState::Running,
                19 * 3600
            ),
            (
                SlaMetric::Escalation,
                crate::sla::ClockState::Running,
                3 * 3600
            ),
        ]
    );
}

// ---- escalation rules ------------------------------------------------------------------------

fn rule(steps: Vec<RuleStep>) -> TicketCommand {
    TicketCommand::ApplyEscalationRule(ApplyEscalationRule {
        rule_id: id(800),
        rule_name: "Stale critical".into(),
        rule_version: 3,
        steps,
        at: at_hours(2.0),
    })
}

#[test]
fn a_rule_fires_once_with_every_action_named_after_it() {
    let events = given(opened())
        .when(rule(vec![
            RuleStep::Escalate {
                escalate_to: Some(standing(manager())),
            },
            RuleStep::RaisePriority,
            RuleStep::Notify {
                recipients: vec![manager().user_id],
                message: None,
            },
        ]))
        .inspect_result()
        .unwrap_or_default();
    let names: Vec<&str> = events.iter().map(TicketEvent::name).collect();
    assert_eq!(
        names,
        [
            "EscalationRuleTriggered",
            "TicketEscalated",
            "TicketAssigned",
            "TicketPriorityChanged",
            "NotificationRequested",
            // The raised priority retargets the clocks under the same policy.
            "SlaClockRetargeted",
            "SlaClockRetargeted",
            "SlaClockRetargeted",
        ]
    );
    assert!(events[1..5].iter().all(|e| e.actor() == Actor::system()));
    let mut after = opened();
    after.extend(events);
    given(after)
        .when(rule(vec![RuleStep::RaisePriority]))
        .then_expect_events(vec![]);
}

#[test]
fn a_rule_skips_a_reassignment_to_someone_who_cannot_take_tickets() {
    let events = given(opened())
        .when(rule(vec![RuleStep::Reassign {
            assignee: UserStanding {
                active: false,
                ..standing(agent())
            },
        }]))
        .inspect_result()
        .unwrap_or_default();
    assert_eq!(events.len(), 1, "only the trigger is recorded: {events:?}");
}

fn follow(follower: UserStanding, actor: Actor) -> TicketCommand {
    TicketCommand::Follow(FollowTicket {
        follower,
        actor,
        at: later(5),
    })
}

fn followed(user: Actor, by: Actor) -> TicketEvent {
    TicketEvent::TicketFollowed {
        user_id: user.user_id,
        followed_by: by,
        occurred_at: later(5),
    }
}

#[test]
fn staff_follow_a_ticket_once() {
    given(opened_by(customer()))
        .when(follow(standing(viewer()), viewer()))
        .then_expect_events(vec![followed(viewer(), viewer())]);
    let mut history = opened_by(customer());
    history.push(followed(viewer(), viewer()));
    given(history)
        .when(follow(standing(viewer()), viewer()))
        .then_expect_events(vec![]);
}

#[test]
fn an_agent_adds_a_colleague_as_follower_but_a_viewer_may_not() {
    given(opened_by(customer()))
        .when(follow(standing(manager()), agent()))
        .then_expect_events(vec![followed(manager(), agent())]);
    given(opened_by(customer()))
        .when(follow(standing(manager()), viewer()))
        .then_expect_error(TicketError::NotPermitted {
            role: Role::Viewer,
            action: "add followers",
        });
}

#[test]
fn customers_and_the_deactivated_do_not_follow() {
    given(opened_by(customer()))
        .when(follow(standing(customer()), customer()))
        .then_expect_error(TicketError::NotPermitted {
            role: Role::Customer,
            action: "follow tickets",
        });
    let gone = UserStanding {
        active: false,
        ..standing(manager())
    };
    given(opened_by(customer()))
        .when(follow(gone, agent()))
        .then_expect_error(TicketError::InvalidFollower);
    given(opened_by(customer()))
        .when(follow(standing(other_customer()), agent()))
        .then_expect_error(TicketError::InvalidFollower);
}

#[test]
fn unfollowing_removes_a_follower_and_is_idempotent() {
    let mut history = opened_by(customer());
    history.push(followed(agent(), agent()));
    let unfollow = || {
        TicketCommand::Unfollow(UnfollowTicket {
            follower: agent().user_id,
            actor: agent(),
            at: later(9),
        })
    };
    given(history.clone())
        .when(unfollow())
        .then_expect_events(vec![TicketEvent::TicketUnfollowed {
            user_id: agent().user_id,
            unfollowed_by: agent(),
            occurred_at: later(9),
        }]);
    let ticket = Ticket::from_events(history.clone());
    assert!(
        ticket
            .state()
            .is_some_and(|t| t.followers.contains(&agent().user_id))
    );
    let mut after = history.clone();
    after.push(TicketEvent::TicketUnfollowed {
        user_id: agent().user_id,
        unfollowed_by: agent(),
        occurred_at: later(9),
    });
    let ticket = Ticket::from_events(after);
    assert!(ticket.state().is_some_and(|t| t.followers.is_empty()));
    given(opened_by(customer()))
        .when(unfollow())
        .then_expect_events(vec![]);
}

// ---- automation rules ------------------------------------------------------------------------

fn automation(cause_sequence: i64, steps: Vec<AutomationStep>) -> TicketCommand {
    TicketCommand::ApplyAutomation(ApplyAutomation {
        rule_id: id(900),
        rule_name: "Tag and note".into(),
        rule_version: 2,
        cause_sequence,
        cause: "TicketCreated".into(),
        steps,
        at: at_hours(1.0),
    })
}

#[test]
fn an_automation_acts_once_per_causing_event_and_skips_what_no_longer_applies() {
    let tag = |t: &str| crate::values::Tag::parse(t).unwrap_or_else(|e| panic!("{e}"));
    let events = given(opened())
        .when(automation(
            1,
            vec![
                AutomationStep::AddTags(vec![tag("vip")]),
                // The status it has already, and an agent who can no longer take tickets:
                // skipped rather than refused.
                AutomationStep::SetStatus(TicketStatus::New),
                AutomationStep::Comment {
                    comment_id: crate::values::CommentId(id(901)),
                    body: crate::values::CommentBody::parse("Looking.")
                        .unwrap_or_else(|e| panic!("{e}")),
                    internal: true,
                },
                AutomationStep::Assign(UserStanding {
                    active: false,
                    ..standing(agent())
                }),
            ],
        ))
        .inspect_result()
        .unwrap_or_default();
    let names: Vec<&str> = events.iter().map(TicketEvent::name).collect();
    assert_eq!(
        names,
        ["AutomationFired", "TicketDetailsUpdated", "CommentAdded"]
    );
    assert!(matches!(
        &events[2],
        TicketEvent::CommentAdded {
            automated: true,
            internal: true,
            ..
        }
    ));
    assert!(events.iter().all(|e| e.actor() == Actor::system()));
    let mut after = opened();
    after.extend(events);
    // The same event again (a replay): nothing; a later one: it acts again.
    given(after.clone())
        .when(automation(
            1,
            vec![AutomationStep::AddTags(vec![tag("again")])],
        ))
        .then_expect_events(vec![]);
    let later = given(after)
        .when(automation(
            5,
            vec![AutomationStep::AddTags(vec![tag("again")])],
        ))
        .inspect_result()
        .unwrap_or_default();
    assert_eq!(later.len(), 2);
}
