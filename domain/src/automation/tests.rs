//! Given/when/then tests of rules: reading them (every mistake named by its path), deciding on
//! tickets, refusing time-based rules that would never stop, and the aggregate's commands.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use serde_json::{Value, json};
use uuid::Uuid;

use super::eval::{CommentFacts, Happened, Snapshot, evaluate, holds};
use super::*;
use crate::values::UserId;

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0)
        .single()
        .unwrap_or_default()
}
fn manager() -> Actor {
    Actor::new(UserId(Uuid::from_u128(2)), Role::Manager)
}
fn rule(body: Value) -> RuleDefinition {
    RuleDefinition::parse(&body).unwrap_or_else(|e| panic!("{e}"))
}
fn refused(body: Value) -> (String, String) {
    match RuleDefinition::parse(&body) {
        Ok(parsed) => panic!("accepted {parsed:?}"),
        Err(e) => (e.field, e.reason),
    }
}
fn vip_rule() -> Value {
    json!({
        "name": "VIP escalation",
        "position": 1,
        "trigger": {"type": "event", "events": ["ticket.created", "comment.added"]},
        "conditions": {
            "all": [{"field": "priority", "operator": "in", "value": ["high", "critical"]}],
            "any": [
                {"field": "tags", "operator": "contains", "value": "vip"},
                {"field": "subject", "operator": "contains", "value": "outage"}
            ]
        },
        "actions": [
            {"type": "add_tags", "tags": ["escalated"]},
            {"type": "escalate", "reason": "VIP"}
        ]
    })
}
fn ticket() -> Snapshot {
    Snapshot {
        status: "open".into(),
        priority: "high".into(),
        category: None,
        tags: vec!["VIP".into()],
        assignee_id: None,
        team_id: None,
        customer_id: Uuid::from_u128(5),
        subject: "Printer on fire".into(),
        description: "Smoke".into(),
        created_at: at(),
        updated_at: at(),
        status_changed_at: at(),
        clocks: [("resolution".to_string(), "at_risk".to_string())].into(),
    }
}

#[test]
fn a_rule_is_read_with_its_defaults() {
    let read = rule(vip_rule());
    assert!(read.enabled);
    assert_eq!(read.position, 1);
    assert!(read.listens_to(TriggerEvent::CommentAdded));
    assert!(!read.listens_to(TriggerEvent::SlaBreached));
    assert_eq!(read.conditions.any.len(), 2);
    assert_eq!(
        read.actions[1],
        Action::Escalate {
            reason: "VIP".into()
        }
    );
}

#[test]
fn every_mistake_is_named_by_its_path() {
    let with = |path: &[&str], value: Value| {
        let mut body = vip_rule();
        let mut at = &mut body;
        for (n, key) in path.iter().enumerate() {
            if n + 1 == path.len() {
                at[*key] = value.clone();
            } else {
                at = match key.parse::<usize>() {
                    Ok(index) => &mut at[index],
                    Err(_) => &mut at[*key],
                };
            }
        }
        refused(body).0
    };
    assert_eq!(with(&["name"], json!("")), "name");
    assert_eq!(with(&["trigger", "type"], json!("cron")), "trigger.type");
    assert_eq!(
        with(&["trigger", "events"], json!(["ticket.deleted"])),
        "trigger.events[0]"
    );
    assert_eq!(
        with(&["conditions", "all", "0", "field"], json!("mood")),
        "conditions.all[0].field"
    );
    assert_eq!(
        with(
            &["conditions", "any", "1", "operator"],
            json!("greater_than")
        ),
        "conditions.any[1].operator"
    );
    assert_eq!(
        with(&["conditions", "all", "0", "value"], json!(["urgent"])),
        "conditions.all[0].value[0]"
    );
    assert_eq!(
        with(&["conditions", "all", "0", "value"], json!("high")),
        "conditions.all[0].value",
        "in takes a list"
    );
    assert_eq!(
        with(&["actions", "1", "type"], json!("explode")),
        "actions[1].type"
    );
    assert_eq!(
        with(&["actions", "0", "tags"], json!([])),
        "actions[0].tags"
    );
    assert_eq!(
        with(&["actions", "1", "colour"], json!("red")),
        "actions[1].colour"
    );
    assert_eq!(with(&["actions"], json!([])), "actions");
    assert_eq!(with(&["priority"], json!(1)), "priority");
    let (path, reason) = refused(json!({
        "name": "x", "trigger": {"type": "event", "events": ["ticket.created"]},
        "conditions": {"all": [{"field": "hours_since_created", "operator": "greater_than", "value": "soon"}]},
        "actions": [{"type": "route"}]
    }));
    assert_eq!(path, "conditions.all[0].value");
    assert!(reason.contains("hours"), "{reason}");
    let (path, _) = refused(json!({
        "name": "x", "trigger": {"type": "event", "events": ["ticket.created"]},
        "actions": [{"type": "assign_agent", "agent_id": "someone"}]
    }));
    assert_eq!(path, "actions[0].agent_id");
    let (path, _) = refused(json!({
        "name": "x", "trigger": {"type": "event", "events": ["ticket.created"]},
        "actions": [{"type": "notify", "message": "hi"}]
    }));
    assert_eq!(path, "actions[0].users");
    let (path, _) = refused(json!({
        "name": "x", "trigger": {"type": "event", "events": ["ticket.created"]},
        "actions": [{"type": "send_email", "template": "ticket_created", "to": "everyone"}]
    }));
    assert_eq!(path, "actions[0].to");
}

#[test]
fn a_rule_acts_when_all_and_one_of_any_hold() {
    let read = rule(vip_rule());
    let happened = Happened::default();
    assert!(holds(&read.conditions, &ticket(), &happened, at()));
    let low = Snapshot {
        priority: "low".into(),
        ..ticket()
    };
    assert!(!holds(&read.conditions, &low, &happened, at()));
    let plain = Snapshot {
        tags: vec![],
        ..ticket()
    };
    assert!(!holds(&read.conditions, &plain, &happened, at()));
    let outage = Snapshot {
        subject: "Total OUTAGE in Paris".into(),
        ..plain
    };
    let evaluation = evaluate(&read, &outage, &happened, at());
    assert!(evaluation.acts);
    let held: Vec<(&str, bool)> = evaluation
        .checked
        .iter()
        .map(|c| (c.group, c.held))
        .collect();
    assert_eq!(held, [("all", true), ("any", false), ("any", true)]);
}

#[test]
fn each_operator_means_what_it_says() {
    let check = |field: &str, operator: &str, value: Value, happened: &Happened| {
        let condition = Condition {
            field: field.parse().unwrap_or_else(|e| panic!("{e}")),
            operator: operator.parse().unwrap_or_else(|e| panic!("{e}")),
            value,
        };
        eval::condition_holds(&condition, &ticket(), happened, at() + Duration::hours(50))
    };
    let none = Happened::default();
    assert!(check("status", "is", json!("open"), &none));
    assert!(check("status", "is_not", json!("closed"), &none));
    assert!(check(
        "status",
        "not_in",
        json!(["closed", "resolved"]),
        &none
    ));
    assert!(check("priority", "greater_than", json!("medium"), &none));
    assert!(!check("priority", "greater_than", json!("high"), &none));
    assert!(check("priority", "less_than", json!("critical"), &none));
    assert!(
        check("tags", "contains", json!("vip"), &none),
        "tags match whatever the case"
    );
    assert!(check("tags", "not_contains", json!("spam"), &none));
    assert!(check("subject", "contains", json!("fire"), &none));
    assert!(check("assignee_id", "is", Value::Null, &none));
    assert!(check(
        "hours_since_created",
        "greater_than",
        json!(48),
        &none
    ));
    assert!(!check("hours_since_updated", "less_than", json!(48), &none));
    assert!(check("sla.resolution", "is", json!("at_risk"), &none));
    assert!(check("sla.first_response", "is", json!("none"), &none));
    assert!(
        !check("comment_internal", "is", json!(false), &none),
        "no comment, no match"
    );
    let commented = Happened {
        comment: Some(CommentFacts {
            body: "Any news?".into(),
            internal: false,
            author_role: "customer".into(),
        }),
        changes: vec![(Field::Status, json!("pending"), json!("open"))],
    };
    assert!(check("comment_internal", "is", json!(false), &commented));
    assert!(check(
        "comment_author_role",
        "is",
        json!("customer"),
        &commented
    ));
    assert!(check("comment_body", "contains", json!("news"), &commented));
    assert!(check("status", "changed", Value::Null, &commented));
    assert!(check("status", "changed_to", json!("open"), &commented));
    assert!(check(
        "status",
        "changed_from",
        json!("pending"),
        &commented
    ));
    assert!(!check("priority", "changed", Value::Null, &commented));
}

#[test]
fn a_time_based_rule_must_undo_one_of_its_conditions() {
    let pending_for_two_days = |actions: Value| {
        json!({
            "name": "Nudge", "trigger": {"type": "time"},
            "conditions": {"all": [
                {"field": "status", "operator": "is", "value": "pending"},
                {"field": "hours_since_status_change", "operator": "greater_than", "value": 48},
                {"field": "tags", "operator": "not_contains", "value": "nudged"}
            ]},
            "actions": actions
        })
    };
    // Telling someone changes nothing: it would tell them every second.
    let (path, reason) = refused(pending_for_two_days(
        json!([{"type": "notify", "roles": ["manager"], "message": "Look"}]),
    ));
    assert_eq!(path, "actions");
    assert!(reason.contains("again and again"), "{reason}");
    rule(pending_for_two_days(
        json!([{"type": "add_tags", "tags": ["nudged"]}]),
    ));
    rule(pending_for_two_days(
        json!([{"type": "set_status", "status": "closed"}]),
    ));
    assert_eq!(
        refused(pending_for_two_days(
            json!([{"type": "set_status", "status": "pending"}])
        ))
        .0,
        "actions"
    );
    let (path, _) = refused(json!({
        "name": "x", "trigger": {"type": "time"},
        "conditions": {"all": [{"field": "status", "operator": "changed_to", "value": "open"}]},
        "actions": [{"type": "route"}]
    }));
    assert_eq!(path, "conditions.all[0].operator");
    let (path, _) = refused(json!({
        "name": "x", "trigger": {"type": "time"}, "actions": [{"type": "route"}]
    }));
    assert_eq!(path, "conditions.all");
}

#[test]
fn a_time_based_rule_is_due_the_second_its_conditions_first_hold() {
    let pending_for_two_days = rule(json!({
        "name": "Nudge", "trigger": {"type": "time"},
        "conditions": {"all": [
            {"field": "status", "operator": "is", "value": "pending"},
            {"field": "hours_since_status_change", "operator": "greater_than", "value": 48},
            {"field": "tags", "operator": "not_contains", "value": "nudged"}
        ]},
        "actions": [{"type": "add_tags", "tags": ["nudged"]}]
    }));
    let conditions = &pending_for_two_days.conditions;
    let mut pending = ticket();
    pending.status = "pending".into();
    pending.tags = vec![];
    // Given a ticket pending since `at()`, when asked right after, then it is due 48 h and one
    // second on (the first whole second past the threshold), and it holds then and not before.
    let due = eval::due_at(conditions, &pending, at() + Duration::minutes(1));
    assert_eq!(due, Some(at() + Duration::hours(48) + Duration::seconds(1)));
    let none = Happened::default();
    assert!(holds(
        conditions,
        &pending,
        &none,
        at() + Duration::hours(48) + Duration::seconds(1)
    ));
    assert!(!holds(
        conditions,
        &pending,
        &none,
        at() + Duration::hours(48)
    ));
    // Asked after that instant, it is due at once.
    let late = at() + Duration::hours(50);
    assert_eq!(eval::due_at(conditions, &pending, late), Some(late));
    // A condition time does not change that fails: never due.
    let mut nudged = pending.clone();
    nudged.tags = vec!["nudged".into()];
    assert_eq!(eval::due_at(conditions, &nudged, at()), None);
    let mut open = pending.clone();
    open.status = "open".into();
    assert_eq!(eval::due_at(conditions, &open, late), None);
    // "Fewer than" only turns false with time: due now while it holds, never once it does not.
    let fresh = rule(json!({
        "name": "Young", "trigger": {"type": "time"},
        "conditions": {"all": [
            {"field": "hours_since_created", "operator": "less_than", "value": 1},
            {"field": "priority", "operator": "is_not", "value": "critical"}
        ]},
        "actions": [{"type": "set_priority", "priority": "critical"}]
    }));
    let young = at() + Duration::minutes(30);
    assert_eq!(
        eval::due_at(&fresh.conditions, &pending, young),
        Some(young)
    );
    assert_eq!(
        eval::due_at(&fresh.conditions, &pending, at() + Duration::hours(2)),
        None
    );
    // With `any`, the earliest threshold that makes one of them hold; fractions of hours count.
    let either = rule(json!({
        "name": "Either", "trigger": {"type": "time"},
        "conditions": {
            "all": [{"field": "tags", "operator": "not_contains", "value": "late"}],
            "any": [
                {"field": "hours_since_created", "operator": "greater_than", "value": 0.5},
                {"field": "hours_since_updated", "operator": "greater_than", "value": 0.25}
            ]
        },
        "actions": [{"type": "add_tags", "tags": ["late"]}]
    }));
    let mut touched = pending.clone();
    touched.updated_at = at() + Duration::minutes(20);
    assert_eq!(
        eval::due_at(&either.conditions, &touched, at()),
        Some(at() + Duration::minutes(30) + Duration::seconds(1))
    );
    // A threshold past what dates can hold (reading refuses more than ten years, a stored rule
    // is trusted) is never due rather than an overflow.
    let mut never = conditions.clone();
    never.all[1].value = json!(1e300);
    assert_eq!(eval::due_at(&never, &pending, at()), None);
}

#[test]
fn the_people_teams_and_webhooks_a_rule_names_are_listed_with_their_paths() {
    let agent = Uuid::from_u128(7);
    let hook = Uuid::from_u128(8);
    let read = rule(json!({
        "name": "x", "trigger": {"type": "event", "events": ["ticket.created"]},
        "conditions": {"all": [{"field": "team_id", "operator": "in", "value": [agent.to_string()]}]},
        "actions": [
            {"type": "assign_agent", "agent_id": agent},
            {"type": "call_webhook", "webhook_id": hook}
        ]
    }));
    let found = read.references();
    assert!(found.contains(&("actions[0].agent_id".to_string(), Reference::Agent(agent))));
    assert!(found.contains(&(
        "actions[1].webhook_id".to_string(),
        Reference::Webhook(hook)
    )));
    assert!(found.contains(&(
        "conditions.all[0].value".to_string(),
        Reference::Team(agent)
    )));
}

#[test]
fn managers_create_update_and_delete_rules_and_agents_may_not() {
    let id = RuleId(Uuid::from_u128(9));
    let created = AutomationEvent::AutomationRuleCreated {
        rule_id: id,
        definition: rule(vip_rule()),
        created_by: manager(),
        occurred_at: at(),
    };
    TestFramework::<AutomationRule>::with(())
        .given_no_previous_events()
        .when(AutomationCommand::Create {
            rule_id: id,
            definition: rule(vip_rule()),
            actor: manager(),
            at: at(),
        })
        .then_expect_events(vec![created.clone()]);
    let agent = Actor::new(UserId(Uuid::from_u128(3)), Role::Agent);
    TestFramework::<AutomationRule>::with(())
        .given(vec![created.clone()])
        .when(AutomationCommand::Delete {
            actor: agent,
            at: at(),
        })
        .then_expect_error(AutomationError::NotPermitted {
            role: Role::Agent,
            action: "delete automations",
        });
    TestFramework::<AutomationRule>::with(())
        .given(vec![created.clone()])
        .when(AutomationCommand::Update {
            definition: rule(vip_rule()),
            actor: manager(),
            at: at(),
        })
        .then_expect_events(vec![]);
    let mut disabled = rule(vip_rule());
    disabled.enabled = false;
    TestFramework::<AutomationRule>::with(())
        .given(vec![created.clone()])
        .when(AutomationCommand::Update {
            definition: disabled.clone(),
            actor: manager(),
            at: at(),
        })
        .then_expect_events(vec![AutomationEvent::AutomationRuleUpdated {
            definition: disabled,
            updated_by: manager(),
            occurred_at: at(),
        }]);
    let deleted = AutomationEvent::AutomationRuleDeleted {
        deleted_by: manager(),
        occurred_at: at(),
    };
    TestFramework::<AutomationRule>::with(())
        .given(vec![created, deleted])
        .when(AutomationCommand::Delete {
            actor: manager(),
            at: at(),
        })
        .then_expect_error(AutomationError::NotFound);
}

#[test]
fn a_stored_rule_reads_back_as_written() {
    let read = rule(vip_rule());
    let stored = serde_json::to_value(&read).unwrap_or_default();
    assert_eq!(stored["trigger"]["type"], "event");
    assert_eq!(stored["actions"][0]["type"], "add_tags");
    let back: RuleDefinition = serde_json::from_value(stored).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back, read);
}
