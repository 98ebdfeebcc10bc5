//! The rule editor's form: a rule as rows a person fills in — each condition a field, an
//! operator and a value, under "all of these" or "any of these"; each action its type and what
//! that type takes — read back from the posted fields, turned into the JSON the API takes, and
//! a mistake's JSON path (`conditions.any[1].value`, `actions[0].agent_id`) turned into the row
//! and input it belongs to.

use std::collections::BTreeMap;
use std::str::FromStr;

use docket_domain::automation::{Field, FieldType, Operator, RuleDefinition, Trigger};
use serde_json::{Value, json};

pub type Fields = Vec<(String, String)>;

pub fn field<'f>(fields: &'f Fields, name: &str) -> &'f str {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

/// The condition groups, as the rows' names begin.
pub const GROUPS: [&str; 2] = ["all", "any"];

/// One condition as typed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConditionRow {
    pub field: String,
    pub operator: String,
    pub value: String,
}

/// One action as typed: its type, and every input an action may take (each type reads its own).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActionRow {
    pub kind: String,
    pub status: String,
    pub priority: String,
    pub agent_id: String,
    pub team_id: String,
    pub tags: String,
    pub body: String,
    pub reason: String,
    pub users: Vec<String>,
    pub roles: Vec<String>,
    pub team: bool,
    pub message: String,
    pub template: String,
    pub to: String,
    pub webhook_id: String,
    pub severity: String,
    pub title: String,
}

/// The editor's fields, as typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub name: String,
    pub position: String,
    pub enabled: bool,
    pub time: bool,
    pub events: Vec<String>,
    pub all: Vec<ConditionRow>,
    pub any: Vec<ConditionRow>,
    pub actions: Vec<ActionRow>,
}

/// A value as the form shows it: lists comma-separated, nobody as nothing.
fn text_of(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text_of).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn words(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// One typed value as the field's kind wants it; what does not read as that kind goes as typed,
/// so the rule's own checks name it.
fn scalar(kind: Option<FieldType>, text: &str) -> Value {
    let text = text.trim();
    match kind {
        // Whole hours stay whole (48, not 48.0), as a person wrote them.
        Some(FieldType::Hours) => match (text.parse::<i64>(), text.parse::<f64>()) {
            (Ok(whole), _) => Value::from(whole),
            (_, Ok(hours)) => {
                serde_json::Number::from_f64(hours).map_or_else(|| Value::from(text), Value::Number)
            }
            _ => Value::from(text),
        },
        Some(FieldType::Bool) => match text {
            "true" | "yes" => Value::Bool(true),
            "false" | "no" => Value::Bool(false),
            _ => Value::from(text),
        },
        Some(FieldType::Id) if text.is_empty() || text.eq_ignore_ascii_case("nobody") => {
            Value::Null
        }
        _ => Value::from(text),
    }
}

impl ConditionRow {
    fn of(condition: &docket_domain::automation::Condition) -> Self {
        Self {
            field: condition.field.as_str().to_string(),
            operator: condition.operator.as_str().to_string(),
            value: text_of(&condition.value),
        }
    }

    fn json(&self) -> Value {
        let kind = Field::from_str(&self.field).ok().map(Field::kind);
        let value = match self.operator.as_str() {
            "changed" => Value::Null,
            "in" | "not_in" => Value::Array(
                self.value
                    .split(',')
                    .map(str::trim)
                    .filter(|w| !w.is_empty())
                    .map(|w| scalar(kind, w))
                    .collect(),
            ),
            _ => scalar(kind, &self.value),
        };
        json!({"field": self.field, "operator": self.operator, "value": value})
    }

    /// The operators its field takes (all of them while no field is chosen).
    pub fn operators(&self) -> Vec<&'static str> {
        match Field::from_str(&self.field) {
            Ok(field) => field
                .kind()
                .operators()
                .iter()
                .filter(|op| field.changes() || !op.as_str().starts_with("changed"))
                .map(|op| op.as_str())
                .collect(),
            Err(_) => Operator::ALL.iter().map(|op| op.as_str()).collect(),
        }
    }

    /// The datalist of values its field suggests.
    pub fn suggestions(&self) -> &'static str {
        match Field::from_str(&self.field).map(Field::kind) {
            Ok(FieldType::Word { allowed, .. }) => {
                allowed.first().map_or("", |_| match self.field.as_str() {
                    "status" => "values-status",
                    "priority" => "values-priority",
                    "comment_author_role" => "values-role",
                    _ => "values-clock",
                })
            }
            Ok(FieldType::Bool) => "values-bool",
            _ if self.field == "assignee_id" => "values-agent",
            _ if self.field == "team_id" => "values-team",
            _ => "",
        }
    }

    /// What to type, for the value's placeholder.
    pub fn hint(&self) -> &'static str {
        match (
            Field::from_str(&self.field).map(Field::kind),
            self.operator.as_str(),
        ) {
            (_, "changed") => "(no value)",
            (_, "in" | "not_in") => "several, separated by commas",
            (Ok(FieldType::Hours), _) => "hours, such as 48 or 0.5",
            (Ok(FieldType::Id), _) => "an id, or empty for nobody",
            (Ok(FieldType::Bool), _) => "true or false",
            _ => "",
        }
    }
}

impl ActionRow {
    fn of(action: &docket_domain::automation::Action) -> Self {
        let value = serde_json::to_value(action).unwrap_or(Value::Null);
        let text = |key: &str| text_of(&value[key]);
        let list = |key: &str| -> Vec<String> {
            value[key]
                .as_array()
                .map(|items| items.iter().map(text_of).collect())
                .unwrap_or_default()
        };
        Self {
            kind: text("type"),
            status: text("status"),
            priority: text("priority"),
            agent_id: text("agent_id"),
            team_id: text("team_id"),
            tags: text("tags"),
            body: text("body"),
            reason: text("reason"),
            users: list("users"),
            roles: list("roles"),
            team: value["team"].as_bool().unwrap_or(false),
            message: text("message"),
            template: text("template"),
            to: text("to"),
            webhook_id: text("webhook_id"),
            severity: text("severity"),
            title: text("title"),
        }
    }

    fn json(&self) -> Value {
        let kind = self.kind.as_str();
        let mut action = json!({"type": kind});
        let mut put = |key: &str, value: Value| action[key] = value;
        match kind {
            "set_status" => put("status", Value::from(self.status.as_str())),
            "set_priority" => put("priority", Value::from(self.priority.as_str())),
            "assign_agent" => put("agent_id", Value::from(self.agent_id.trim())),
            "assign_team" => put("team_id", Value::from(self.team_id.trim())),
            "add_tags" | "remove_tags" => put("tags", json!(words(&self.tags))),
            "add_internal_note" | "add_public_reply" => {
                put("body", Value::from(self.body.as_str()))
            }
            "escalate" => put("reason", Value::from(self.reason.as_str())),
            "notify" => {
                put("users", json!(self.users));
                put("roles", json!(self.roles));
                put("team", Value::Bool(self.team));
                put("message", Value::from(self.message.as_str()));
            }
            "send_email" => {
                put("template", Value::from(self.template.as_str()));
                put("to", Value::from(self.to.trim()));
            }
            "call_webhook" => put("webhook_id", Value::from(self.webhook_id.trim())),
            "raise_alert" => {
                put("severity", Value::from(self.severity.as_str()));
                put("title", Value::from(self.title.as_str()));
            }
            _ => {}
        }
        action
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    pub fn has_user(&self, user: &str) -> bool {
        self.users.iter().any(|u| u == user)
    }
}

/// What the form asked for besides saving: a row added or removed, or the choices brought up to
/// date with what was chosen (a field's operators, an action's inputs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    Add(&'static str),
    Remove(&'static str, usize),
    Refresh,
}

impl Edit {
    /// `add:all`, `remove:actions:2`, `refresh`.
    pub fn parse(action: &str) -> Option<Self> {
        let group = |name: &str| ["all", "any", "actions"].into_iter().find(|g| *g == name);
        let mut parts = action.split(':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("refresh"), None, None) => Some(Edit::Refresh),
            (Some("add"), Some(g), None) => group(g).map(Edit::Add),
            (Some("remove"), Some(g), Some(n)) => Some(Edit::Remove(group(g)?, n.parse().ok()?)),
            _ => None,
        }
    }
}

impl Draft {
    pub fn example() -> Self {
        Self {
            name: String::new(),
            position: "0".into(),
            enabled: true,
            time: false,
            events: vec!["ticket.created".into()],
            all: vec![ConditionRow {
                field: "priority".into(),
                operator: "in".into(),
                value: "high, critical".into(),
            }],
            any: vec![],
            actions: vec![ActionRow {
                kind: "add_tags".into(),
                tags: "urgent".into(),
                ..ActionRow::default()
            }],
        }
    }

    pub fn of(definition: &RuleDefinition) -> Self {
        let (time, events) = match &definition.trigger {
            Trigger::Time => (true, vec![]),
            Trigger::Event { events } => (
                false,
                events.iter().map(|e| e.as_str().to_string()).collect(),
            ),
        };
        Self {
            name: definition.name.clone(),
            position: definition.position.to_string(),
            enabled: definition.enabled,
            time,
            events,
            all: definition
                .conditions
                .all
                .iter()
                .map(ConditionRow::of)
                .collect(),
            any: definition
                .conditions
                .any
                .iter()
                .map(ConditionRow::of)
                .collect(),
            actions: definition.actions.iter().map(ActionRow::of).collect(),
        }
    }

    /// The draft the posted fields hold; rows left without a field or a type are dropped, so
    /// the rows shown again are numbered as the rule's JSON is.
    pub fn from_fields(fields: &Fields) -> Self {
        let mut rows: BTreeMap<(&str, usize), BTreeMap<&str, Vec<&str>>> = BTreeMap::new();
        for (name, value) in fields {
            let Some((row, key)) = name.split_once('_') else {
                continue;
            };
            let Some(group) = ["all", "any", "act"]
                .into_iter()
                .find(|g| row.starts_with(g))
            else {
                continue;
            };
            let Ok(index) = row[group.len()..].parse::<usize>() else {
                continue;
            };
            rows.entry((group, index))
                .or_default()
                .entry(key)
                .or_default()
                .push(value.as_str());
        }
        let one = |inputs: &BTreeMap<&str, Vec<&str>>, key: &str| -> String {
            inputs
                .get(key)
                .and_then(|v| v.first())
                .map_or(String::new(), |v| v.to_string())
        };
        let many = |inputs: &BTreeMap<&str, Vec<&str>>, key: &str| -> Vec<String> {
            inputs
                .get(key)
                .map(|v| {
                    v.iter()
                        .filter(|s| !s.is_empty())
                        .map(|s| s.to_string())
                        .collect()
                })
                .unwrap_or_default()
        };
        let conditions = |group: &str| -> Vec<ConditionRow> {
            rows.iter()
                .filter(|((g, _), _)| *g == group)
                .map(|(_, inputs)| ConditionRow {
                    field: one(inputs, "field"),
                    operator: one(inputs, "operator"),
                    value: one(inputs, "value"),
                })
                .filter(|row| !row.field.is_empty())
                .collect()
        };
        let actions = rows
            .iter()
            .filter(|((g, _), _)| *g == "act")
            .map(|(_, inputs)| ActionRow {
                kind: one(inputs, "type"),
                status: one(inputs, "status"),
                priority: one(inputs, "priority"),
                agent_id: one(inputs, "agent"),
                team_id: one(inputs, "teamid"),
                tags: one(inputs, "tags"),
                body: one(inputs, "body"),
                reason: one(inputs, "reason"),
                users: many(inputs, "users"),
                roles: many(inputs, "roles"),
                team: !one(inputs, "team").is_empty(),
                message: one(inputs, "message"),
                template: one(inputs, "template"),
                to: one(inputs, "to"),
                webhook_id: one(inputs, "webhook"),
                severity: one(inputs, "severity"),
                title: one(inputs, "title"),
            })
            .filter(|row| !row.kind.is_empty())
            .collect();
        Self {
            name: field(fields, "name").to_string(),
            position: field(fields, "position").to_string(),
            enabled: !field(fields, "enabled").is_empty(),
            time: field(fields, "trigger") == "time",
            events: fields
                .iter()
                .filter(|(n, _)| n == "events")
                .map(|(_, v)| v.clone())
                .collect(),
            all: conditions("all"),
            any: conditions("any"),
            actions,
        }
    }

    /// Adds or removes a row.
    pub fn edit(&mut self, edit: Edit) {
        match edit {
            Edit::Add("actions") => self.actions.push(ActionRow {
                kind: "add_tags".into(),
                ..ActionRow::default()
            }),
            Edit::Add(group) => self.group_mut(group).push(ConditionRow {
                field: "status".into(),
                operator: "is".into(),
                value: String::new(),
            }),
            Edit::Remove("actions", n) if n < self.actions.len() => {
                self.actions.remove(n);
            }
            Edit::Remove(group, n) if n < self.group_mut(group).len() => {
                self.group_mut(group).remove(n);
            }
            Edit::Remove(..) | Edit::Refresh => {}
        }
    }

    fn group_mut(&mut self, group: &str) -> &mut Vec<ConditionRow> {
        if group == "any" {
            &mut self.any
        } else {
            &mut self.all
        }
    }

    /// The rule as the API takes it; a position that is not a number is named beside its box.
    pub fn body(&self) -> Result<Value, (String, String)> {
        let position = if self.position.trim().is_empty() {
            Value::from(0)
        } else {
            self.position
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| ("position".to_string(), "Type a whole number.".to_string()))?
        };
        Ok(json!({
            "name": self.name,
            "enabled": self.enabled,
            "position": position,
            "trigger": if self.time { json!({"type": "time"}) } else { json!({"type": "event", "events": self.events}) },
            "conditions": {
                "all": self.all.iter().map(ConditionRow::json).collect::<Vec<_>>(),
                "any": self.any.iter().map(ConditionRow::json).collect::<Vec<_>>(),
            },
            "actions": self.actions.iter().map(ActionRow::json).collect::<Vec<_>>(),
        }))
    }

    /// The rule as JSON, for those who keep rules through the API.
    pub fn json(&self) -> String {
        self.body()
            .ok()
            .and_then(|body| serde_json::to_string_pretty(&body).ok())
            .unwrap_or_default()
    }

    pub fn listens(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == event)
    }
}

/// Where a mistake at `path` is shown: `name`, `position`, `events`, a condition's row
/// (`all1`) or an action's (`act0`), or the lists themselves (`conditions`, `actions`); and
/// the words shown there (with the path when it says more than the place).
pub fn placed(path: &str, reason: &str) -> (String, String) {
    let mut parts = path.split(['.', '[', ']']).filter(|p| !p.is_empty());
    let head = parts.next().unwrap_or(path);
    let place = match head {
        "name" | "position" => head.to_string(),
        "trigger" | "events" => "events".to_string(),
        "conditions" => match (parts.next(), parts.next().map(str::parse::<usize>)) {
            (Some(group @ ("all" | "any")), Some(Ok(n))) => format!("{group}{n}"),
            _ => "conditions".to_string(),
        },
        "actions" => match parts.next().map(str::parse::<usize>) {
            Some(Ok(n)) => format!("act{n}"),
            _ => "actions".to_string(),
        },
        _ => "name".to_string(),
    };
    let said = if path == head {
        reason.to_string()
    } else {
        format!("{path}: {reason}")
    };
    (place, said)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn posted(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn rows_read_back_as_the_rule_the_api_takes() {
        let fields = posted(&[
            ("name", "Nudge"),
            ("position", "3"),
            ("enabled", "on"),
            ("trigger", "time"),
            ("all0_field", "status"),
            ("all0_operator", "in"),
            ("all0_value", "pending, on_hold"),
            ("all1_field", ""),
            ("all2_field", "hours_since_status_change"),
            ("all2_operator", "greater_than"),
            ("all2_value", "48"),
            ("all3_field", "tags"),
            ("all3_operator", "not_contains"),
            ("all3_value", "nudged"),
            ("any0_field", "assignee_id"),
            ("any0_operator", "is"),
            ("any0_value", ""),
            ("act0_type", "add_tags"),
            ("act0_tags", "nudged, late"),
            ("act1_type", "notify"),
            ("act1_roles", "manager"),
            ("act1_roles", "admin"),
            ("act1_team", "on"),
            ("act1_message", "Look"),
            ("act2_type", ""),
        ]);
        let draft = Draft::from_fields(&fields);
        assert_eq!(draft.all.len(), 3, "the empty row is dropped");
        let body = draft.body().unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            body["conditions"]["all"],
            json!([
                {"field": "status", "operator": "in", "value": ["pending", "on_hold"]},
                {"field": "hours_since_status_change", "operator": "greater_than", "value": 48},
                {"field": "tags", "operator": "not_contains", "value": "nudged"}
            ])
        );
        assert_eq!(body["conditions"]["any"][0]["value"], Value::Null, "nobody");
        assert_eq!(
            body["actions"],
            json!([
                {"type": "add_tags", "tags": ["nudged", "late"]},
                {"type": "notify", "users": [], "roles": ["manager", "admin"], "team": true,
                 "message": "Look"}
            ])
        );
        assert_eq!(body["trigger"], json!({"type": "time"}));
        // And the rule it makes shows as the same rows.
        let rule = RuleDefinition::parse(&body).unwrap_or_else(|e| panic!("{e}"));
        let again = Draft::of(&rule);
        assert_eq!(again.all, draft.all);
        assert_eq!(again.any, draft.any);
        assert_eq!(again.actions[1].roles, ["manager", "admin"]);
        assert!(again.actions[1].team);
    }

    #[test]
    fn a_value_that_is_not_of_its_kind_goes_as_typed_for_the_rule_to_name() {
        let row = ConditionRow {
            field: "hours_since_created".into(),
            operator: "greater_than".into(),
            value: "two days".into(),
        };
        assert_eq!(row.json()["value"], "two days");
        let (place, said) = placed("conditions.all[3].value", "must be a number of hours");
        assert_eq!(place, "all3");
        assert!(said.starts_with("conditions.all[3].value: "));
        assert_eq!(placed("actions[2].agent_id", "x").0, "act2");
        assert_eq!(placed("actions", "x").0, "actions");
        assert_eq!(placed("conditions.all", "x").0, "conditions");
        assert_eq!(placed("trigger.events[0]", "x").0, "events");
        assert_eq!(
            placed("name", "too long"),
            ("name".into(), "too long".into())
        );
    }

    #[test]
    fn rows_are_added_and_removed_by_what_the_button_says() {
        let mut draft = Draft::example();
        draft.edit(Edit::parse("add:any").unwrap_or(Edit::Refresh));
        draft.edit(Edit::parse("add:actions").unwrap_or(Edit::Refresh));
        assert_eq!((draft.any.len(), draft.actions.len()), (1, 2));
        draft.edit(Edit::parse("remove:all:0").unwrap_or(Edit::Refresh));
        draft.edit(Edit::parse("remove:actions:7").unwrap_or(Edit::Refresh));
        assert_eq!((draft.all.len(), draft.actions.len()), (0, 2));
        assert_eq!(Edit::parse("remove:bogus:1"), None);
        assert_eq!(Edit::parse("save"), None);
    }

    #[test]
    fn a_field_offers_only_its_operators() {
        let tags = ConditionRow {
            field: "tags".into(),
            ..ConditionRow::default()
        };
        assert_eq!(tags.operators(), ["contains", "not_contains", "changed"]);
        let body = ConditionRow {
            field: "comment_body".into(),
            ..ConditionRow::default()
        };
        assert!(!body.operators().contains(&"changed"));
    }
}
