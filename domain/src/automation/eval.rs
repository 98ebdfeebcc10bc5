//! What a rule decides about a ticket: whether each condition holds for the ticket as it is
//! (and, for event rules, for what just happened to it), and so whether the rule acts. Pure and
//! allocation-light: the engine asks it for every rule on every event.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::{Action, Condition, Conditions, Field, FieldType, Operator, RuleDefinition};

/// A ticket as rules see it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub status: String,
    pub priority: String,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub assignee_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub customer_id: Uuid,
    pub subject: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub status_changed_at: DateTime<Utc>,
    /// Each SLA metric's clock state (`running`, `at_risk`, …); absent: no such clock.
    pub clocks: HashMap<String, String>,
}

/// The comment an event added.
#[derive(Debug, Clone, PartialEq)]
pub struct CommentFacts {
    pub body: String,
    pub internal: bool,
    pub author_role: String,
}

/// What just happened, for event rules: the comment, and each field's value before and after.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Happened {
    pub comment: Option<CommentFacts>,
    pub changes: Vec<(Field, Value, Value)>,
}

/// One condition and whether it held.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub condition: Condition,
    pub group: &'static str,
    pub held: bool,
}

/// Whether a rule acts, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub checked: Vec<Checked>,
    pub acts: bool,
}

/// Whether every `all` condition and (when there are any) one `any` condition hold.
pub fn holds(
    conditions: &Conditions,
    ticket: &Snapshot,
    happened: &Happened,
    now: DateTime<Utc>,
) -> bool {
    conditions
        .all
        .iter()
        .all(|c| condition_holds(c, ticket, happened, now))
        && (conditions.any.is_empty()
            || conditions
                .any
                .iter()
                .any(|c| condition_holds(c, ticket, happened, now)))
}

/// Each condition with whether it held, for people asking why.
pub fn evaluate(
    rule: &RuleDefinition,
    ticket: &Snapshot,
    happened: &Happened,
    now: DateTime<Utc>,
) -> Evaluation {
    let mut checked = Vec::new();
    for (group, conditions) in [("all", &rule.conditions.all), ("any", &rule.conditions.any)] {
        for condition in conditions {
            checked.push(Checked {
                condition: condition.clone(),
                group,
                held: condition_holds(condition, ticket, happened, now),
            });
        }
    }
    Evaluation {
        acts: holds(&rule.conditions, ticket, happened, now),
        checked,
    }
}

/// The first instant from `from` on at which `conditions` hold for `ticket` if nothing happens
/// to it meanwhile; `None` when they never will. Only the hours-since fields move with time, and
/// a `greater_than` on one of them turns true a whole second past its threshold (hours are
/// counted in whole seconds) and stays true, while every other condition holds or not for good
/// until the ticket changes. So the only candidates are `from` and those thresholds.
pub fn due_at(
    conditions: &Conditions,
    ticket: &Snapshot,
    from: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let none = Happened::default();
    let mut candidates: Vec<DateTime<Utc>> = conditions
        .all
        .iter()
        .chain(&conditions.any)
        .filter(|c| c.operator == Operator::GreaterThan)
        .filter_map(|c| {
            let since = match c.field {
                Field::HoursSinceCreated => ticket.created_at,
                Field::HoursSinceUpdated => ticket.updated_at,
                Field::HoursSinceStatusChange => ticket.status_changed_at,
                _ => return None,
            };
            let hours = c.value.as_f64().filter(|h| h.is_finite())?;
            let seconds = ((hours * 3600.0).max(-1.0).floor() as i64).checked_add(1)?;
            since.checked_add_signed(chrono::Duration::try_seconds(seconds)?)
        })
        .filter(|at| *at > from)
        .collect();
    candidates.push(from);
    candidates.sort();
    candidates
        .into_iter()
        .find(|at| holds(conditions, ticket, &none, *at))
}

/// The value of `field` for `ticket` (and the event's comment), as JSON.
pub fn value_of(field: Field, ticket: &Snapshot, happened: &Happened, now: DateTime<Utc>) -> Value {
    let hours =
        |since: DateTime<Utc>| Value::from((now - since).num_seconds().max(0) as f64 / 3600.0);
    let clock =
        |metric: &str| Value::from(ticket.clocks.get(metric).map_or("none", String::as_str));
    let id = |id: Option<Uuid>| id.map_or(Value::Null, |id| Value::from(id.to_string()));
    match field {
        Field::Status => Value::from(ticket.status.as_str()),
        Field::Priority => Value::from(ticket.priority.as_str()),
        Field::Category => ticket.category.as_deref().map_or(Value::Null, Value::from),
        Field::Tags => Value::from(ticket.tags.clone()),
        Field::AssigneeId => id(ticket.assignee_id),
        Field::TeamId => id(ticket.team_id),
        Field::CustomerId => id(Some(ticket.customer_id)),
        Field::Subject => Value::from(ticket.subject.as_str()),
        Field::Description => Value::from(ticket.description.as_str()),
        Field::CommentBody => happened
            .comment
            .as_ref()
            .map_or(Value::Null, |c| Value::from(c.body.as_str())),
        Field::CommentInternal => happened
            .comment
            .as_ref()
            .map_or(Value::Null, |c| Value::from(c.internal)),
        Field::CommentAuthorRole => happened
            .comment
            .as_ref()
            .map_or(Value::Null, |c| Value::from(c.author_role.as_str())),
        Field::SlaFirstResponse => clock("first_response"),
        Field::SlaNextResponse => clock("next_response"),
        Field::SlaResolution => clock("resolution"),
        Field::SlaEscalation => clock("escalation"),
        Field::HoursSinceCreated => hours(ticket.created_at),
        Field::HoursSinceUpdated => hours(ticket.updated_at),
        Field::HoursSinceStatusChange => hours(ticket.status_changed_at),
    }
}

/// Where `word` stands in an ordered field (priority), for greater/less than.
fn rank(field: Field, value: &Value) -> Option<usize> {
    match field.kind() {
        FieldType::Word {
            allowed,
            ordered: true,
        } => value
            .as_str()
            .and_then(|w| allowed.iter().position(|a| *a == w)),
        _ => None,
    }
}

fn same(field: Field, actual: &Value, wanted: &Value) -> bool {
    match (field.kind(), actual, wanted) {
        (FieldType::Text, Value::String(a), Value::String(w)) => a.eq_ignore_ascii_case(w),
        _ => actual == wanted,
    }
}

fn contains(field: Field, actual: &Value, wanted: &Value) -> bool {
    match (actual, wanted.as_str()) {
        (Value::Array(items), Some(w)) => items
            .iter()
            .any(|i| i.as_str().is_some_and(|i| i.eq_ignore_ascii_case(w))),
        (Value::String(text), Some(w)) => text.to_lowercase().contains(&w.to_lowercase()),
        _ => {
            let _ = field;
            false
        }
    }
}

fn compare(field: Field, actual: &Value, wanted: &Value) -> Option<std::cmp::Ordering> {
    if let (Some(a), Some(w)) = (rank(field, actual), rank(field, wanted)) {
        return Some(a.cmp(&w));
    }
    actual.as_f64()?.partial_cmp(&wanted.as_f64()?)
}

pub fn condition_holds(
    condition: &Condition,
    ticket: &Snapshot,
    happened: &Happened,
    now: DateTime<Utc>,
) -> bool {
    let field = condition.field;
    let wanted = &condition.value;
    let change = || happened.changes.iter().find(|(f, _, _)| *f == field);
    match condition.operator {
        Operator::Changed => change().is_some(),
        Operator::ChangedTo => change().is_some_and(|(_, _, to)| same(field, to, wanted)),
        Operator::ChangedFrom => change().is_some_and(|(_, from, _)| same(field, from, wanted)),
        operator => {
            let actual = value_of(field, ticket, happened, now);
            // A comment's fields exist only on the event that added it.
            if field.of_event() && actual.is_null() {
                return false;
            }
            match operator {
                Operator::Is => same(field, &actual, wanted),
                Operator::IsNot => !same(field, &actual, wanted),
                Operator::In => wanted
                    .as_array()
                    .is_some_and(|items| items.iter().any(|w| same(field, &actual, w))),
                Operator::NotIn => wanted
                    .as_array()
                    .is_some_and(|items| !items.iter().any(|w| same(field, &actual, w))),
                Operator::Contains => contains(field, &actual, wanted),
                Operator::NotContains => !contains(field, &actual, wanted),
                Operator::GreaterThan => {
                    compare(field, &actual, wanted) == Some(std::cmp::Ordering::Greater)
                }
                Operator::LessThan => {
                    compare(field, &actual, wanted) == Some(std::cmp::Ordering::Less)
                }
                Operator::Changed | Operator::ChangedTo | Operator::ChangedFrom => false,
            }
        }
    }
}

/// Whether doing `actions` to any ticket that meets `condition` leaves it unmet: what keeps a
/// time-based rule from acting again and again.
pub fn falsified_by(condition: &Condition, actions: &[Action], alongside: &[Condition]) -> bool {
    let wanted = &condition.value;
    let words = |v: &Value| -> Vec<String> {
        match v {
            Value::Array(items) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
            Value::String(s) => vec![s.clone()],
            _ => vec![],
        }
    };
    // A value the actions set on the field, if they set one.
    let set: Option<Value> =
        actions
            .iter()
            .rev()
            .find_map(|action| match (condition.field, action) {
                (Field::Status, Action::SetStatus { status }) => Some(Value::from(status.as_str())),
                (Field::Priority, Action::SetPriority { priority }) => {
                    Some(Value::from(priority.as_str()))
                }
                (Field::AssigneeId, Action::AssignAgent { agent_id }) => {
                    Some(Value::from(agent_id.to_string()))
                }
                (Field::TeamId, Action::AssignTeam { team_id }) => {
                    Some(Value::from(team_id.to_string()))
                }
                _ => None,
            });
    // Actions that always write to the ticket (a status set to the one it has writes nothing).
    let touches = actions.iter().any(|a| {
        matches!(
            a,
            Action::AddInternalNote { .. }
                | Action::AddPublicReply { .. }
                | Action::Escalate { .. }
        )
    });
    // A status the actions set that the ticket cannot already have, by the rule's own
    // conditions on its status.
    let moves_status = actions.iter().any(|a| match a {
        Action::SetStatus { status } => alongside.iter().any(|c| {
            c.field == Field::Status
                && match c.operator {
                    Operator::Is => c.value.as_str() != Some(status.as_str()),
                    Operator::In => !words(&c.value).iter().any(|w| w == status.as_str()),
                    _ => false,
                }
        }),
        _ => false,
    });
    match (condition.field, condition.operator) {
        (Field::Tags, Operator::NotContains) => actions.iter().any(|a| matches!(a, Action::AddTags { tags } if tags.iter().any(|t| wanted.as_str().is_some_and(|w| t.eq_ignore_ascii_case(w))))),
        (Field::Tags, Operator::Contains) => actions.iter().any(|a| matches!(a, Action::RemoveTags { tags } if tags.iter().any(|t| wanted.as_str().is_some_and(|w| t.eq_ignore_ascii_case(w))))),
        // Anything that writes to the ticket makes "not updated for N hours" false again.
        (Field::HoursSinceUpdated, Operator::GreaterThan) => touches && wanted.as_f64().is_some_and(|h| h > 0.0),
        (Field::HoursSinceStatusChange, Operator::GreaterThan) => {
            moves_status && wanted.as_f64().is_some_and(|h| h > 0.0)
        }
        (_, Operator::Is) => set.is_some_and(|v| v != *wanted),
        (_, Operator::In) => set.is_some_and(|v| !words(wanted).iter().any(|w| v.as_str() == Some(w.as_str()))),
        (_, Operator::IsNot) => set.is_some_and(|v| v == *wanted),
        (_, Operator::NotIn) => set.is_some_and(|v| words(wanted).iter().any(|w| v.as_str() == Some(w.as_str()))),
        (Field::Priority, Operator::GreaterThan | Operator::LessThan) => set.is_some_and(|v| {
            let ordering = compare(Field::Priority, &v, wanted);
            match condition.operator {
                Operator::GreaterThan => ordering != Some(std::cmp::Ordering::Greater),
                _ => ordering != Some(std::cmp::Ordering::Less),
            }
        }),
        _ => false,
    }
}

impl Snapshot {
    /// A ticket as its log leaves it; `status_changed_at` is when its status last changed (its
    /// opening when it never did).
    pub fn of(ticket: &crate::ticket::TicketState, status_changed_at: DateTime<Utc>) -> Self {
        Self {
            status: ticket.status.as_str().to_string(),
            priority: ticket.priority.as_str().to_string(),
            category: ticket.category.as_ref().map(|c| c.as_str().to_string()),
            tags: ticket.tags.iter().map(|t| t.as_str().to_string()).collect(),
            assignee_id: ticket.assignee_id.map(|a| a.0),
            team_id: ticket.team_id.map(|t| t.0),
            customer_id: ticket.customer_id.0,
            subject: ticket.subject.as_str().to_string(),
            description: ticket.description.as_str().to_string(),
            created_at: ticket.created_at,
            updated_at: ticket.updated_at,
            status_changed_at,
            clocks: ticket
                .sla
                .as_ref()
                .map(|sla| {
                    sla.clocks
                        .iter()
                        .map(|(metric, clock)| {
                            (
                                metric.as_str().to_string(),
                                clock.recorded_state().as_str().to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}
