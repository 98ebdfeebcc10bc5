//! Automation rules: "when this happens to a ticket and these conditions hold, do these
//! things", or (time-based) "as soon as these conditions hold".
//!
//! A rule is an aggregate, so every change is an event with its version, and the rule engine
//! can name the version that acted. Rules arrive as JSON from people: [`RuleDefinition::parse`]
//! reads them field by field so that whatever is wrong is named by its path
//! (`conditions.all[1].operator`), never as a generic "bad body". What a rule decides about a
//! ticket is in [`eval`], pure and cheap enough for hundreds of rules per event.

pub mod eval;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::access::{self, Permission};
use crate::alert::Severity;
use crate::mail::MailKind;
use crate::values::{Actor, Priority, Role, TicketStatus, ValidationError};

/// Identifies a rule. Also its aggregate id in the event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RuleId(pub Uuid);

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

crate::values::wire_enum!(
    /// What happened to a ticket, as event-triggered rules name it.
    TriggerEvent, "events" {
        TicketCreated => "ticket.created",
        TicketUpdated => "ticket.updated",
        StatusChanged => "ticket.status_changed",
        PriorityChanged => "ticket.priority_changed",
        Assigned => "ticket.assigned",
        Escalated => "ticket.escalated",
        CommentAdded => "comment.added",
        SlaWarning => "sla.warning",
        SlaBreached => "sla.breached",
    }
);

/// When a rule is considered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Trigger {
    /// On each of these events.
    Event { events: Vec<TriggerEvent> },
    /// Whenever its conditions become true (evaluated by the deadline scheduler).
    Time,
}

crate::values::wire_enum!(
    /// What a condition looks at.
    Field, "field" {
        Status => "status",
        Priority => "priority",
        Category => "category",
        Tags => "tags",
        AssigneeId => "assignee_id",
        TeamId => "team_id",
        CustomerId => "customer_id",
        Subject => "subject",
        Description => "description",
        CommentBody => "comment_body",
        CommentInternal => "comment_internal",
        CommentAuthorRole => "comment_author_role",
        SlaFirstResponse => "sla.first_response",
        SlaNextResponse => "sla.next_response",
        SlaResolution => "sla.resolution",
        SlaEscalation => "sla.escalation",
        HoursSinceCreated => "hours_since_created",
        HoursSinceUpdated => "hours_since_updated",
        HoursSinceStatusChange => "hours_since_status_change",
    }
);

crate::values::wire_enum!(
    /// How a condition compares.
    Operator, "operator" {
        Is => "is",
        IsNot => "is_not",
        In => "in",
        NotIn => "not_in",
        Contains => "contains",
        NotContains => "not_contains",
        GreaterThan => "greater_than",
        LessThan => "less_than",
        Changed => "changed",
        ChangedTo => "changed_to",
        ChangedFrom => "changed_from",
    }
);

/// The kind of value a field holds, which decides the operators and values it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// One of a fixed set of words (`allowed`); ordered for priority.
    Word {
        allowed: &'static [&'static str],
        ordered: bool,
    },
    /// An id, or `null` (nobody).
    Id,
    /// Free text.
    Text,
    Bool,
    /// A list of words (tags).
    Words,
    /// A number of hours.
    Hours,
}

const STATUSES: &[&str] = &[
    "new",
    "open",
    "in_progress",
    "pending",
    "on_hold",
    "resolved",
    "closed",
];
/// Lowest first: `greater_than high` is critical.
const PRIORITIES: &[&str] = &["low", "medium", "high", "critical"];
const ROLES: &[&str] = &["customer", "agent", "manager", "admin", "viewer", "system"];
/// A clock's state, or `none` when the ticket has no such clock.
const CLOCK_STATES: &[&str] = &["none", "running", "paused", "at_risk", "breached", "met"];

impl Field {
    pub fn kind(self) -> FieldType {
        match self {
            Field::Status => FieldType::Word {
                allowed: STATUSES,
                ordered: false,
            },
            Field::Priority => FieldType::Word {
                allowed: PRIORITIES,
                ordered: true,
            },
            Field::CommentAuthorRole => FieldType::Word {
                allowed: ROLES,
                ordered: false,
            },
            Field::SlaFirstResponse
            | Field::SlaNextResponse
            | Field::SlaResolution
            | Field::SlaEscalation => FieldType::Word {
                allowed: CLOCK_STATES,
                ordered: false,
            },
            Field::AssigneeId | Field::TeamId | Field::CustomerId => FieldType::Id,
            Field::Category | Field::Subject | Field::Description | Field::CommentBody => {
                FieldType::Text
            }
            Field::CommentInternal => FieldType::Bool,
            Field::Tags => FieldType::Words,
            Field::HoursSinceCreated | Field::HoursSinceUpdated | Field::HoursSinceStatusChange => {
                FieldType::Hours
            }
        }
    }

    /// Fields a change can be seen on (`changed`, `changed_to`, `changed_from`).
    pub fn changes(self) -> bool {
        matches!(
            self,
            Field::Status
                | Field::Priority
                | Field::Category
                | Field::Tags
                | Field::AssigneeId
                | Field::TeamId
                | Field::Subject
                | Field::Description
        )
    }

    /// Fields that only an event carries (a comment's), meaningless for time-based rules.
    pub fn of_event(self) -> bool {
        matches!(
            self,
            Field::CommentBody | Field::CommentInternal | Field::CommentAuthorRole
        )
    }
}

impl FieldType {
    pub fn operators(self) -> &'static [Operator] {
        use Operator::*;
        match self {
            FieldType::Word { ordered: true, .. } => &[
                Is,
                IsNot,
                In,
                NotIn,
                GreaterThan,
                LessThan,
                Changed,
                ChangedTo,
                ChangedFrom,
            ],
            FieldType::Word { .. } | FieldType::Id => {
                &[Is, IsNot, In, NotIn, Changed, ChangedTo, ChangedFrom]
            }
            FieldType::Text => &[
                Is,
                IsNot,
                Contains,
                NotContains,
                Changed,
                ChangedTo,
                ChangedFrom,
            ],
            FieldType::Bool => &[Is, IsNot],
            FieldType::Words => &[Contains, NotContains, Changed],
            FieldType::Hours => &[GreaterThan, LessThan],
        }
    }
}

/// One test of a ticket (and, for event rules, of what happened to it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub field: Field,
    pub operator: Operator,
    /// Absent for `changed`; a list for `in` and `not_in`.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub value: Value,
}

/// Every `all` holds, and at least one `any` when there are some.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conditions {
    #[serde(default)]
    pub all: Vec<Condition>,
    #[serde(default)]
    pub any: Vec<Condition>,
}

/// Who a rule's mail goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recipient {
    Customer,
    Assignee,
    TeamLead,
    /// A person by id.
    User(Uuid),
}

impl Recipient {
    /// `customer`, `assignee`, `team_lead`, or a user's id.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "customer" => Some(Recipient::Customer),
            "assignee" => Some(Recipient::Assignee),
            "team_lead" => Some(Recipient::TeamLead),
            other => Uuid::parse_str(other).ok().map(Recipient::User),
        }
    }
}

/// What a rule does, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    SetStatus {
        status: TicketStatus,
    },
    SetPriority {
        priority: Priority,
    },
    AssignAgent {
        agent_id: Uuid,
    },
    AssignTeam {
        team_id: Uuid,
    },
    /// Hand the ticket to the skill router.
    Route,
    AddTags {
        tags: Vec<String>,
    },
    RemoveTags {
        tags: Vec<String>,
    },
    AddInternalNote {
        body: String,
    },
    AddPublicReply {
        body: String,
    },
    Escalate {
        reason: String,
    },
    Notify {
        #[serde(default)]
        users: Vec<Uuid>,
        #[serde(default)]
        roles: Vec<Role>,
        #[serde(default)]
        team: bool,
        message: String,
    },
    SendEmail {
        template: MailKind,
        to: Recipient,
    },
    CallWebhook {
        webhook_id: Uuid,
    },
    RaiseAlert {
        severity: Severity,
        title: String,
    },
}

/// Where an action points that only the application can check exists (a person, a team, a
/// webhook), with the path naming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Agent(Uuid),
    Team(Uuid),
    User(Uuid),
    Webhook(Uuid),
}

/// A whole rule as its author wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleDefinition {
    pub name: String,
    pub enabled: bool,
    pub position: i32,
    pub trigger: Trigger,
    pub conditions: Conditions,
    pub actions: Vec<Action>,
}

impl RuleDefinition {
    pub const MAX_NAME: usize = 200;
    pub const MAX_CONDITIONS: usize = 50;
    pub const MAX_ACTIONS: usize = 20;
    pub const MAX_TEXT: usize = 10_000;

    /// Reads a rule from JSON, naming the first thing wrong by its path.
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let object = body
            .as_object()
            .ok_or_else(|| ValidationError::new("body", "must be a JSON object"))?;
        for key in object.keys() {
            if !matches!(
                key.as_str(),
                "name" | "enabled" | "position" | "trigger" | "conditions" | "actions"
            ) {
                return Err(ValidationError::new(
                    key.as_str(),
                    "is not a field of a rule",
                ));
            }
        }
        let name = text_at(body, "name", "name", 1, Self::MAX_NAME)?;
        let enabled = match &body["enabled"] {
            Value::Null => true,
            Value::Bool(b) => *b,
            _ => return Err(ValidationError::new("enabled", "must be true or false")),
        };
        let position = match &body["position"] {
            Value::Null => 0,
            Value::Number(n) => n
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .filter(|n| *n >= 0)
                .ok_or_else(|| ValidationError::new("position", "must be a whole number from 0"))?,
            _ => return Err(ValidationError::new("position", "must be a number")),
        };
        let trigger = parse_trigger(&body["trigger"])?;
        let conditions = parse_conditions(&body["conditions"], &trigger)?;
        let actions = parse_actions(&body["actions"])?;
        let rule = Self {
            name,
            enabled,
            position,
            trigger,
            conditions,
            actions,
        };
        if rule.trigger == Trigger::Time {
            rule.check_stops_itself()?;
        }
        Ok(rule)
    }

    /// A time-based rule acts as soon as its conditions hold, and would act again at once if
    /// they still held after: one of its `all` conditions must be made false by its actions.
    fn check_stops_itself(&self) -> Result<(), ValidationError> {
        if self.conditions.all.is_empty() {
            return Err(ValidationError::new(
                "conditions.all",
                "a time-based rule needs at least one condition in all",
            ));
        }
        let stops =
            self.conditions.all.iter().any(|condition| {
                eval::falsified_by(condition, &self.actions, &self.conditions.all)
            });
        if stops {
            Ok(())
        } else {
            Err(ValidationError::new(
                "actions",
                "a time-based rule must change something one of its conditions in all tests \
                 (for example add a tag that a not_contains condition looks for), or it would \
                 act again and again",
            ))
        }
    }

    /// The people, teams and webhooks the actions name, with the path of each.
    pub fn references(&self) -> Vec<(String, Reference)> {
        let mut found = Vec::new();
        for (index, action) in self.actions.iter().enumerate() {
            let at = |field: &str| format!("actions[{index}].{field}");
            match action {
                Action::AssignAgent { agent_id } => {
                    found.push((at("agent_id"), Reference::Agent(*agent_id)))
                }
                Action::AssignTeam { team_id } => {
                    found.push((at("team_id"), Reference::Team(*team_id)))
                }
                Action::Notify { users, .. } => {
                    for (n, user) in users.iter().enumerate() {
                        found.push((at(&format!("users[{n}]")), Reference::User(*user)));
                    }
                }
                Action::SendEmail {
                    to: Recipient::User(user),
                    ..
                } => found.push((at("to"), Reference::User(*user))),
                Action::CallWebhook { webhook_id } => {
                    found.push((at("webhook_id"), Reference::Webhook(*webhook_id)))
                }
                _ => {}
            }
        }
        for (group, conditions) in [("all", &self.conditions.all), ("any", &self.conditions.any)] {
            for (index, condition) in conditions.iter().enumerate() {
                let reference = match condition.field {
                    Field::AssigneeId => Reference::Agent,
                    Field::TeamId => Reference::Team,
                    Field::CustomerId => Reference::User,
                    _ => continue,
                };
                let ids: Vec<Uuid> = match &condition.value {
                    Value::Array(items) => items
                        .iter()
                        .filter_map(|v| v.as_str().and_then(|s| Uuid::parse_str(s).ok()))
                        .collect(),
                    Value::String(s) => Uuid::parse_str(s).into_iter().collect(),
                    _ => vec![],
                };
                for id in ids {
                    found.push((format!("conditions.{group}[{index}].value"), reference(id)));
                }
            }
        }
        found
    }

    /// Whether the rule is considered on `event`.
    pub fn listens_to(&self, event: TriggerEvent) -> bool {
        matches!(&self.trigger, Trigger::Event { events } if events.contains(&event))
    }
}

fn text_at(
    body: &Value,
    key: &str,
    path: &str,
    min: usize,
    max: usize,
) -> Result<String, ValidationError> {
    let text = body[key]
        .as_str()
        .ok_or_else(|| ValidationError::new(path, "must be text"))?
        .trim()
        .to_string();
    let length = text.chars().count();
    if length < min {
        return Err(ValidationError::new(path, "must not be empty"));
    }
    if length > max {
        return Err(ValidationError::new(
            path,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(text)
}

fn parse_trigger(value: &Value) -> Result<Trigger, ValidationError> {
    let kind = value["type"]
        .as_str()
        .ok_or_else(|| ValidationError::new("trigger.type", "must be event or time"))?;
    match kind {
        "time" => Ok(Trigger::Time),
        "event" => {
            let listed = value["events"].as_array().ok_or_else(|| {
                ValidationError::new("trigger.events", "must list the events to act on")
            })?;
            if listed.is_empty() {
                return Err(ValidationError::new(
                    "trigger.events",
                    "must list at least one event",
                ));
            }
            let mut events = Vec::with_capacity(listed.len());
            for (index, item) in listed.iter().enumerate() {
                let path = format!("trigger.events[{index}]");
                let event = item
                    .as_str()
                    .ok_or_else(|| ValidationError::new(&path, "must be text"))?
                    .parse::<TriggerEvent>()
                    .map_err(|e| ValidationError::new(&path, e.reason))?;
                if !events.contains(&event) {
                    events.push(event);
                }
            }
            Ok(Trigger::Event { events })
        }
        _ => Err(ValidationError::new(
            "trigger.type",
            "must be event or time",
        )),
    }
}

fn parse_conditions(value: &Value, trigger: &Trigger) -> Result<Conditions, ValidationError> {
    if value.is_null() {
        return Ok(Conditions::default());
    }
    let object = value.as_object().ok_or_else(|| {
        ValidationError::new("conditions", "must be {\"all\": […], \"any\": […]}")
    })?;
    for key in object.keys() {
        if key != "all" && key != "any" {
            return Err(ValidationError::new(
                format!("conditions.{key}"),
                "conditions has only all and any",
            ));
        }
    }
    let mut parsed = Conditions::default();
    let mut total = 0;
    for group in ["all", "any"] {
        let items = match &value[group] {
            Value::Null => continue,
            Value::Array(items) => items,
            _ => {
                return Err(ValidationError::new(
                    format!("conditions.{group}"),
                    "must be a list",
                ));
            }
        };
        total += items.len();
        for (index, item) in items.iter().enumerate() {
            let condition =
                parse_condition(item, &format!("conditions.{group}[{index}]"), trigger)?;
            if group == "all" {
                parsed.all.push(condition);
            } else {
                parsed.any.push(condition);
            }
        }
    }
    if total > RuleDefinition::MAX_CONDITIONS {
        return Err(ValidationError::new(
            "conditions",
            format!("at most {} conditions", RuleDefinition::MAX_CONDITIONS),
        ));
    }
    Ok(parsed)
}

fn parse_condition(
    item: &Value,
    at: &str,
    trigger: &Trigger,
) -> Result<Condition, ValidationError> {
    let path = |field: &str| format!("{at}.{field}");
    let object = item
        .as_object()
        .ok_or_else(|| ValidationError::new(at, "must be {field, operator, value}"))?;
    for key in object.keys() {
        if !matches!(key.as_str(), "field" | "operator" | "value") {
            return Err(ValidationError::new(
                path(key),
                "a condition has only field, operator and value",
            ));
        }
    }
    let field = item["field"]
        .as_str()
        .ok_or_else(|| ValidationError::new(path("field"), "must be text"))?
        .parse::<Field>()
        .map_err(|e| ValidationError::new(path("field"), e.reason))?;
    let operator = item["operator"]
        .as_str()
        .ok_or_else(|| ValidationError::new(path("operator"), "must be text"))?
        .parse::<Operator>()
        .map_err(|e| ValidationError::new(path("operator"), e.reason))?;
    let kind = field.kind();
    if !kind.operators().contains(&operator) {
        let allowed: Vec<&str> = kind.operators().iter().map(|o| o.as_str()).collect();
        return Err(ValidationError::new(
            path("operator"),
            format!("{} takes {}", field.as_str(), allowed.join(", ")),
        ));
    }
    let changing = matches!(
        operator,
        Operator::Changed | Operator::ChangedTo | Operator::ChangedFrom
    );
    if changing && *trigger == Trigger::Time {
        return Err(ValidationError::new(
            path("operator"),
            "a time-based rule sees no change; use is, in or a number of hours",
        ));
    }
    if changing && !field.changes() {
        return Err(ValidationError::new(
            path("operator"),
            format!("{} has no changes to look at", field.as_str()),
        ));
    }
    if field.of_event() && *trigger == Trigger::Time {
        return Err(ValidationError::new(
            path("field"),
            "a time-based rule has no comment to look at",
        ));
    }
    let value = &item["value"];
    let value_path = path("value");
    match operator {
        Operator::Changed => {
            if !value.is_null() {
                return Err(ValidationError::new(value_path, "changed takes no value"));
            }
        }
        Operator::In | Operator::NotIn => {
            let items = value
                .as_array()
                .filter(|items| !items.is_empty())
                .ok_or_else(|| ValidationError::new(&value_path, "must be a list of values"))?;
            for (index, one) in items.iter().enumerate() {
                check_value(kind, one, &format!("{value_path}[{index}]"))?;
            }
        }
        _ => check_value(kind, value, &value_path)?,
    }
    Ok(Condition {
        field,
        operator,
        value: value.clone(),
    })
}

fn check_value(kind: FieldType, value: &Value, path: &str) -> Result<(), ValidationError> {
    let wrong = |what: &str| Err(ValidationError::new(path, what.to_string()));
    match kind {
        FieldType::Word { allowed, .. } => match value.as_str() {
            Some(word) if allowed.contains(&word) => Ok(()),
            _ => wrong(&format!("must be one of {}", allowed.join(", "))),
        },
        FieldType::Id => match value {
            Value::Null => Ok(()),
            Value::String(s) if Uuid::parse_str(s).is_ok() => Ok(()),
            _ => wrong("must be an id (a UUID) or null"),
        },
        FieldType::Text => match value.as_str() {
            Some(text) if text.chars().count() <= 1_000 => Ok(()),
            Some(_) => wrong("must be at most 1000 characters"),
            None => wrong("must be text"),
        },
        FieldType::Bool => match value {
            Value::Bool(_) => Ok(()),
            _ => wrong("must be true or false"),
        },
        FieldType::Words => match value.as_str() {
            Some(word) if !word.trim().is_empty() && word.chars().count() <= 50 => Ok(()),
            _ => wrong("must be a tag (1 to 50 characters)"),
        },
        FieldType::Hours => match value.as_f64() {
            Some(hours) if (0.0..=87_600.0).contains(&hours) => Ok(()),
            _ => wrong("must be a number of hours from 0"),
        },
    }
}

fn parse_actions(value: &Value) -> Result<Vec<Action>, ValidationError> {
    let items = value
        .as_array()
        .ok_or_else(|| ValidationError::new("actions", "must be a list"))?;
    if items.is_empty() {
        return Err(ValidationError::new(
            "actions",
            "must do at least one thing",
        ));
    }
    if items.len() > RuleDefinition::MAX_ACTIONS {
        return Err(ValidationError::new(
            "actions",
            format!("at most {} actions", RuleDefinition::MAX_ACTIONS),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| parse_action(item, index))
        .collect()
}

fn parse_action(item: &Value, index: usize) -> Result<Action, ValidationError> {
    let at = format!("actions[{index}]");
    let path = |field: &str| format!("{at}.{field}");
    let kind = item["type"]
        .as_str()
        .ok_or_else(|| ValidationError::new(path("type"), "must name what to do"))?;
    let allowed_keys: &[&str] = match kind {
        "set_status" => &["status"],
        "set_priority" => &["priority"],
        "assign_agent" => &["agent_id"],
        "assign_team" => &["team_id"],
        "route" => &[],
        "add_tags" | "remove_tags" => &["tags"],
        "add_internal_note" | "add_public_reply" => &["body"],
        "escalate" => &["reason"],
        "notify" => &["users", "roles", "team", "message"],
        "send_email" => &["template", "to"],
        "call_webhook" => &["webhook_id"],
        "raise_alert" => &["severity", "title"],
        other => {
            return Err(ValidationError::new(
                path("type"),
                format!(
                    "`{other}` is not one of set_status, set_priority, assign_agent, assign_team, \
                     route, add_tags, remove_tags, add_internal_note, add_public_reply, escalate, \
                     notify, send_email, call_webhook, raise_alert"
                ),
            ));
        }
    };
    if let Some(object) = item.as_object() {
        for key in object.keys() {
            if key != "type" && !allowed_keys.contains(&key.as_str()) {
                return Err(ValidationError::new(
                    path(key),
                    format!("{kind} takes {}", allowed_keys.join(", ")),
                ));
            }
        }
    }
    let word = |key: &str| -> Result<&str, ValidationError> {
        item[key]
            .as_str()
            .ok_or_else(|| ValidationError::new(path(key), "must be text"))
    };
    let id = |key: &str| -> Result<Uuid, ValidationError> {
        item[key]
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| ValidationError::new(path(key), "must be an id (a UUID)"))
    };
    let text = |key: &str, max: usize| text_at(item, key, &path(key), 1, max);
    let tags = || -> Result<Vec<String>, ValidationError> {
        let listed = item["tags"]
            .as_array()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ValidationError::new(path("tags"), "must list at least one tag"))?;
        listed
            .iter()
            .enumerate()
            .map(|(n, tag)| {
                tag.as_str()
                    .map(str::trim)
                    .filter(|t| !t.is_empty() && t.chars().count() <= 50)
                    .map(str::to_string)
                    .ok_or_else(|| {
                        ValidationError::new(
                            path(&format!("tags[{n}]")),
                            "must be 1 to 50 characters",
                        )
                    })
            })
            .collect()
    };
    Ok(match kind {
        "set_status" => Action::SetStatus {
            status: word("status")?
                .parse()
                .map_err(|e: ValidationError| ValidationError::new(path("status"), e.reason))?,
        },
        "set_priority" => Action::SetPriority {
            priority: word("priority")?
                .parse()
                .map_err(|e: ValidationError| ValidationError::new(path("priority"), e.reason))?,
        },
        "assign_agent" => Action::AssignAgent {
            agent_id: id("agent_id")?,
        },
        "assign_team" => Action::AssignTeam {
            team_id: id("team_id")?,
        },
        "route" => Action::Route,
        "add_tags" => Action::AddTags { tags: tags()? },
        "remove_tags" => Action::RemoveTags { tags: tags()? },
        "add_internal_note" => Action::AddInternalNote {
            body: text("body", RuleDefinition::MAX_TEXT)?,
        },
        "add_public_reply" => Action::AddPublicReply {
            body: text("body", RuleDefinition::MAX_TEXT)?,
        },
        "escalate" => Action::Escalate {
            reason: text("reason", 2_000)?,
        },
        "notify" => {
            let users = match &item["users"] {
                Value::Null => vec![],
                Value::Array(listed) => listed
                    .iter()
                    .enumerate()
                    .map(|(n, u)| {
                        u.as_str()
                            .and_then(|s| Uuid::parse_str(s).ok())
                            .ok_or_else(|| {
                                ValidationError::new(path(&format!("users[{n}]")), "must be an id")
                            })
                    })
                    .collect::<Result<_, _>>()?,
                _ => return Err(ValidationError::new(path("users"), "must be a list of ids")),
            };
            let roles = match &item["roles"] {
                Value::Null => vec![],
                Value::Array(listed) => listed
                    .iter()
                    .enumerate()
                    .map(|(n, r)| {
                        r.as_str()
                            .and_then(|s| s.parse::<Role>().ok())
                            .filter(|r| matches!(r, Role::Agent | Role::Manager | Role::Admin))
                            .ok_or_else(|| {
                                ValidationError::new(
                                    path(&format!("roles[{n}]")),
                                    "must be agent, manager or admin",
                                )
                            })
                    })
                    .collect::<Result<_, _>>()?,
                _ => {
                    return Err(ValidationError::new(
                        path("roles"),
                        "must be a list of roles",
                    ));
                }
            };
            let team = match &item["team"] {
                Value::Null => false,
                Value::Bool(b) => *b,
                _ => return Err(ValidationError::new(path("team"), "must be true or false")),
            };
            if users.is_empty() && roles.is_empty() && !team {
                return Err(ValidationError::new(
                    path("users"),
                    "name someone to tell: users, roles or the team",
                ));
            }
            Action::Notify {
                users,
                roles,
                team,
                message: text("message", 1_000)?,
            }
        }
        "send_email" => Action::SendEmail {
            template: word("template")?
                .parse()
                .map_err(|e: ValidationError| ValidationError::new(path("template"), e.reason))?,
            to: Recipient::parse(word("to")?).ok_or_else(|| {
                ValidationError::new(
                    path("to"),
                    "must be customer, assignee, team_lead or a user's id",
                )
            })?,
        },
        "call_webhook" => Action::CallWebhook {
            webhook_id: id("webhook_id")?,
        },
        "raise_alert" => Action::RaiseAlert {
            severity: word("severity")?
                .parse()
                .map_err(|e: ValidationError| ValidationError::new(path("severity"), e.reason))?,
            title: text("title", 200)?,
        },
        _ => return Err(ValidationError::new(path("type"), "unknown action")),
    })
}

#[derive(Debug, Clone, PartialEq)]
pub enum AutomationCommand {
    Create {
        rule_id: RuleId,
        definition: RuleDefinition,
        actor: Actor,
        at: DateTime<Utc>,
    },
    Update {
        definition: RuleDefinition,
        actor: Actor,
        at: DateTime<Utc>,
    },
    Delete {
        actor: Actor,
        at: DateTime<Utc>,
    },
    /// The engine refused to go on with a chain of rule-caused events this deep.
    StopLoop {
        ticket_id: Uuid,
        cause: String,
        depth: u32,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AutomationEvent {
    AutomationRuleCreated {
        rule_id: RuleId,
        definition: RuleDefinition,
        created_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    AutomationRuleUpdated {
        definition: RuleDefinition,
        updated_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    AutomationRuleDeleted {
        deleted_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    /// A chain of events caused by rules reached [`MAX_DEPTH`] on a ticket, and this rule did not
    /// act: the chain stops here (a loop between rules, most likely).
    AutomationLoopStopped {
        ticket_id: Uuid,
        cause: String,
        depth: u32,
        occurred_at: DateTime<Utc>,
    },
}

/// How deep a chain of rule-caused events may go before it stops.
pub const MAX_DEPTH: u32 = 10;

crate::event_names!(AutomationEvent {
    AutomationRuleCreated,
    AutomationRuleUpdated,
    AutomationRuleDeleted,
    AutomationLoopStopped,
});

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AutomationError {
    #[error("no such automation rule")]
    NotFound,
    #[error("the automation rule already exists")]
    AlreadyExists,
    #[error("{role} may not {action}")]
    NotPermitted { role: Role, action: &'static str },
}

/// A rule as its events leave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleState {
    pub id: RuleId,
    pub definition: RuleDefinition,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// How many chains the engine stopped at this rule, and when last.
    #[serde(default)]
    pub loops_stopped: u32,
    #[serde(default)]
    pub last_loop_stopped_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AutomationRule {
    state: Option<RuleState>,
    deleted: bool,
}

fn require(actor: &Actor, action: &'static str) -> Result<(), AutomationError> {
    access::require_actor(actor, Permission::Manage, action).map_err(|refusal| {
        AutomationError::NotPermitted {
            role: refusal.role,
            action: refusal.action,
        }
    })
}

impl AutomationRule {
    pub fn state(&self) -> Option<&RuleState> {
        self.state.as_ref().filter(|_| !self.deleted)
    }

    pub fn decide(
        &self,
        command: &AutomationCommand,
    ) -> Result<Vec<AutomationEvent>, AutomationError> {
        match command {
            AutomationCommand::Create {
                rule_id,
                definition,
                actor,
                at,
            } => {
                require(actor, "configure automations")?;
                if self.state.is_some() {
                    return Err(AutomationError::AlreadyExists);
                }
                Ok(vec![AutomationEvent::AutomationRuleCreated {
                    rule_id: *rule_id,
                    definition: definition.clone(),
                    created_by: *actor,
                    occurred_at: *at,
                }])
            }
            AutomationCommand::Update {
                definition,
                actor,
                at,
            } => {
                require(actor, "configure automations")?;
                let current = self.state().ok_or(AutomationError::NotFound)?;
                if current.definition == *definition {
                    return Ok(vec![]);
                }
                Ok(vec![AutomationEvent::AutomationRuleUpdated {
                    definition: definition.clone(),
                    updated_by: *actor,
                    occurred_at: *at,
                }])
            }
            AutomationCommand::Delete { actor, at } => {
                require(actor, "delete automations")?;
                self.state().ok_or(AutomationError::NotFound)?;
                Ok(vec![AutomationEvent::AutomationRuleDeleted {
                    deleted_by: *actor,
                    occurred_at: *at,
                }])
            }
            AutomationCommand::StopLoop {
                ticket_id,
                cause,
                depth,
                at,
            } => {
                self.state().ok_or(AutomationError::NotFound)?;
                Ok(vec![AutomationEvent::AutomationLoopStopped {
                    ticket_id: *ticket_id,
                    cause: cause.clone(),
                    depth: *depth,
                    occurred_at: *at,
                }])
            }
        }
    }
}

impl Aggregate for AutomationRule {
    const TYPE: &'static str = "automation_rule";
    type Command = AutomationCommand;
    type Event = AutomationEvent;
    type Error = AutomationError;
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
        match event {
            AutomationEvent::AutomationRuleCreated {
                rule_id,
                definition,
                occurred_at,
                ..
            } => {
                self.state = Some(RuleState {
                    id: rule_id,
                    definition,
                    created_at: occurred_at,
                    updated_at: occurred_at,
                    loops_stopped: 0,
                    last_loop_stopped_at: None,
                });
            }
            AutomationEvent::AutomationRuleUpdated {
                definition,
                occurred_at,
                ..
            } => {
                if let Some(rule) = &mut self.state {
                    rule.definition = definition;
                    rule.updated_at = occurred_at;
                }
            }
            AutomationEvent::AutomationRuleDeleted { .. } => self.deleted = true,
            AutomationEvent::AutomationLoopStopped { occurred_at, .. } => {
                if let Some(rule) = &mut self.state {
                    rule.loops_stopped += 1;
                    rule.last_loop_stopped_at = Some(occurred_at);
                }
            }
        }
    }
}

impl FromStr for RuleId {
    type Err = ValidationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(text)
            .map(RuleId)
            .map_err(|_| ValidationError::new("id", "must be a UUID"))
    }
}
