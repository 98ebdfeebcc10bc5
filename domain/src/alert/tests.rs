//! Given/when/then tests of every alert command.

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::values::UserId;

fn given(events: Vec<AlertEvent>) -> cqrs_es::test::AggregateTestExecutor<Alert> {
    TestFramework::<Alert>::with(()).given(events)
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0)
        .single()
        .unwrap_or_default()
}
fn id() -> AlertId {
    AlertId(Uuid::from_u128(70))
}
fn agent() -> Actor {
    Actor::new(UserId(Uuid::from_u128(3)), Role::Agent)
}
fn subject() -> AlertSubject {
    AlertSubject::new(
        "sla_breach:42",
        AlertKind::SlaBreach,
        Severity::Critical,
        "TKT-000042 breached its resolution target",
        Some("critical ticket".to_string()),
        Some(Uuid::from_u128(42)),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}
fn raised() -> AlertEvent {
    AlertEvent::AlertRaised {
        alert_id: id(),
        subject: subject(),
        raised_by: Actor::system(),
        occurred_at: at(),
    }
}
fn note(text: &str) -> Option<Note> {
    Some(Note::parse(text).unwrap_or_else(|e| panic!("{e}")))
}
fn acknowledged() -> AlertEvent {
    AlertEvent::AlertAcknowledged {
        note: note("on it"),
        acknowledged_by: agent(),
        occurred_at: at(),
    }
}

#[test]
fn the_system_raises_an_alert() {
    given(vec![])
        .when(AlertCommand::Raise {
            alert_id: id(),
            subject: subject(),
            actor: Actor::system(),
            at: at(),
        })
        .then_expect_events(vec![raised()]);
}

#[test]
fn an_alert_is_raised_once_under_its_id() {
    given(vec![raised()])
        .when(AlertCommand::Raise {
            alert_id: id(),
            subject: subject(),
            actor: Actor::system(),
            at: at(),
        })
        .then_expect_error(AlertError::AlreadyRaised);
}

#[test]
fn an_agent_acknowledges_an_active_alert_with_a_note() {
    given(vec![raised()])
        .when(AlertCommand::Acknowledge {
            note: note("on it"),
            actor: agent(),
            at: at(),
        })
        .then_expect_events(vec![acknowledged()]);
}

#[test]
fn an_acknowledged_alert_is_not_acknowledged_again() {
    given(vec![raised(), acknowledged()])
        .when(AlertCommand::Acknowledge {
            note: None,
            actor: agent(),
            at: at(),
        })
        .then_expect_error(AlertError::AlreadyIs(AlertState::Acknowledged));
}

#[test]
fn an_acknowledged_or_active_alert_is_resolved_once() {
    for history in [vec![raised()], vec![raised(), acknowledged()]] {
        given(history)
            .when(AlertCommand::Resolve {
                note: note("fixed"),
                actor: agent(),
                at: at(),
            })
            .then_expect_events(vec![AlertEvent::AlertResolved {
                note: note("fixed"),
                resolved_by: agent(),
                occurred_at: at(),
            }]);
    }
    let resolved = AlertEvent::AlertResolved {
        note: None,
        resolved_by: agent(),
        occurred_at: at(),
    };
    for command in [
        AlertCommand::Resolve {
            note: None,
            actor: agent(),
            at: at(),
        },
        AlertCommand::Acknowledge {
            note: None,
            actor: agent(),
            at: at(),
        },
    ] {
        given(vec![raised(), resolved.clone()])
            .when(command)
            .then_expect_error(AlertError::AlreadyIs(AlertState::Resolved));
    }
}

#[test]
fn customers_and_viewers_answer_no_alert_and_nothing_is_answered_before_it_is_raised() {
    for role in [Role::Customer, Role::Viewer] {
        let actor = Actor::new(UserId(Uuid::from_u128(9)), role);
        given(vec![raised()])
            .when(AlertCommand::Resolve {
                note: None,
                actor,
                at: at(),
            })
            .then_expect_error(AlertError::NotPermitted {
                role,
                action: "resolve alerts",
            });
        given(vec![])
            .when(AlertCommand::Raise {
                alert_id: id(),
                subject: subject(),
                actor,
                at: at(),
            })
            .then_expect_error(AlertError::NotPermitted {
                role,
                action: "raise alerts",
            });
    }
    given(vec![])
        .when(AlertCommand::Acknowledge {
            note: None,
            actor: agent(),
            at: at(),
        })
        .then_expect_error(AlertError::NotFound);
}

#[test]
fn a_subject_needs_a_cause_and_a_title_of_bounded_length() {
    let make = |cause: &str, title: &str, detail: Option<String>| {
        AlertSubject::new(
            cause,
            AlertKind::Rule,
            Severity::Warning,
            title,
            detail,
            None,
        )
        .map_err(|e| e.field)
    };
    assert_eq!(make(" ", "t", None), Err("cause".to_string()));
    assert_eq!(make("c", "", None), Err("title".to_string()));
    assert_eq!(
        make("c", "t", Some("x".repeat(2_001))),
        Err("detail".to_string())
    );
    let made = make(" rule:1 ", " Look ", Some("  ".to_string()));
    assert_eq!(
        made.map(|s| (s.cause, s.title, s.detail)),
        Ok(("rule:1".to_string(), "Look".to_string(), None))
    );
}

#[test]
fn the_stored_shape_reads_back_and_the_state_follows_the_events() {
    let stored = serde_json::to_value(raised()).unwrap_or_default();
    assert_eq!(stored["AlertRaised"]["cause"], "sla_breach:42");
    assert_eq!(stored["AlertRaised"]["kind"], "sla_breach");
    assert_eq!(stored["AlertRaised"]["severity"], "critical");
    let back: AlertEvent = serde_json::from_value(stored).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back, raised());
    let alert = Alert::from_events([raised(), acknowledged()]);
    let view = alert.view().map(|v| (v.state, v.acknowledged.is_some()));
    assert_eq!(view, Some((AlertState::Acknowledged, true)));
}

#[test]
fn a_critical_tickets_breach_and_a_second_escalation_call_for_alerts_and_nothing_else_does() {
    let ticket = Uuid::from_u128(42);
    let breach = TicketEvent::SlaBreached {
        metric: crate::sla::SlaMetric::Resolution,
        cycle: 1,
        due_at: None,
        breached_at: at(),
    };
    let escalation = |to_level| TicketEvent::TicketEscalated {
        from_level: to_level - 1,
        to_level,
        reason: crate::values::Reason::parse("angry").unwrap_or_else(|e| panic!("{e}")),
        escalated_to: None,
        escalated_by: agent(),
        occurred_at: at(),
    };
    let number = TicketNumber(42);
    let called = |priority, event: &TicketEvent| {
        called_for_by_ticket(ticket, number, "Printer", priority, event)
    };
    let critical = called(Priority::Critical, &breach).unwrap_or_else(|| panic!("no alert"));
    assert_eq!(critical.cause, format!("sla_breach:{ticket}"));
    assert_eq!(
        (critical.kind, critical.severity),
        (AlertKind::SlaBreach, Severity::Critical)
    );
    assert_eq!(
        critical.title,
        "TKT-000042 (critical) breached its resolution target"
    );
    assert_eq!(critical.ticket_id, Some(ticket));
    assert_eq!(called(Priority::High, &breach), None);
    assert_eq!(called(Priority::Low, &escalation(1)), None);
    let second = called(Priority::Low, &escalation(2)).unwrap_or_else(|| panic!("no alert"));
    assert_eq!(
        (second.kind, second.severity),
        (AlertKind::Escalation, Severity::Warning)
    );
    assert_eq!(second.detail.as_deref(), Some("Printer: angry"));
    let third = called(Priority::Low, &escalation(3)).map(|s| s.severity);
    assert_eq!(third, Some(Severity::Critical));
    let hook = called_for_by_disabled_webhook(ticket, "it answered 410 Gone").map(|s| s.cause);
    assert_eq!(hook, Some(format!("webhook:{ticket}")));
}
