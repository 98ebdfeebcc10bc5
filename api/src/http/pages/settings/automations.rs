//! Automation rules (managers and admins): the rules in the order they run, and an editor for
//! one — its trigger, its conditions and actions as rows of choices (`rule_form`; a mistake is
//! shown beside the row that has it, with its JSON path), a test on a ticket that shows what
//! held and what it would do, and its version history.

use askama::Template;
use docket_domain::alert::Severity;
use docket_domain::automation::{AutomationRule, Field, FieldType, TriggerEvent};
use docket_domain::mail::MailKind;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{Request, Response};
use serde_json::Value;
use uuid::Uuid;

use super::rule_form::{ConditionRow, Draft, Edit, Fields, GROUPS, field, placed};
use super::{ChangeAuthors, ChangeLine, manager};
use crate::app::automations::{self, RuleView, TestView};
use crate::app::outbound::webhooks;
use crate::app::tickets::TicketRef;
use crate::app::{AppError, Origin, SharedApp, audit, workforce};
use crate::http::pages::{Chrome, PageError, Visitor, html, respond, see_other};

pub struct RuleLine {
    id: Uuid,
    name: String,
    position: i32,
    enabled: bool,
    trigger: String,
    conditions: usize,
    actions: String,
}

#[derive(Template)]
#[template(path = "settings_automations.html")]
struct ListPage {
    chrome: Chrome,
    rules: Vec<RuleLine>,
}

fn trigger_text(rule: &RuleView) -> String {
    match &rule.definition.trigger {
        docket_domain::automation::Trigger::Time => "as soon as the conditions hold".to_string(),
        docket_domain::automation::Trigger::Event { events } => events
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

#[poem::handler]
pub async fn automation_settings(req: &Request, app: Data<&SharedApp>) -> Response {
    respond(
        async {
            let visitor = manager(req, &app).await?;
            let rules = automations::list(&app, visitor.caller()).await?;
            let page = ListPage {
                chrome: visitor.chrome(&app, false)?,
                rules: rules
                    .iter()
                    .map(|rule| RuleLine {
                        id: rule.id,
                        name: rule.definition.name.clone(),
                        position: rule.definition.position,
                        enabled: rule.definition.enabled,
                        trigger: trigger_text(rule),
                        conditions: rule.definition.conditions.all.len()
                            + rule.definition.conditions.any.len(),
                        actions: rule
                            .definition
                            .actions
                            .iter()
                            .map(|a| {
                                serde_json::to_value(a).unwrap_or(Value::Null)["type"]
                                    .as_str()
                                    .unwrap_or_default()
                                    .to_string()
                            })
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
                    .collect(),
            };
            Ok(html(StatusCode::OK, page.render()?))
        }
        .await,
    )
}

pub struct TestLine {
    group: &'static str,
    condition: String,
    held: bool,
}

/// What a test showed: the verdict, each condition, the actions, and for a time-based rule when
/// it would act.
pub struct Tested {
    acts: bool,
    lines: Vec<TestLine>,
    actions: Vec<String>,
    due: Option<String>,
}

#[derive(Template)]
#[template(path = "settings_automation.html")]
struct EditorPage {
    chrome: Chrome,
    /// `None` for a new rule.
    id: Option<Uuid>,
    version: i64,
    draft: Draft,
    events: Vec<&'static str>,
    error: Option<(String, String)>,
    notice: Option<&'static str>,
    ticket: String,
    tested: Option<Tested>,
    history: Vec<ChangeLine>,
    choices: Choices,
}

/// What the editor's lists offer.
struct Choices {
    groups: [&'static str; 2],
    fields: Vec<&'static str>,
    action_types: &'static [(&'static str, &'static str)],
    statuses: Vec<&'static str>,
    priorities: Vec<&'static str>,
    roles: Vec<&'static str>,
    clock_states: Vec<&'static str>,
    templates: Vec<&'static str>,
    severities: Vec<&'static str>,
    recipients: Vec<(String, String)>,
    /// (id, name) of the staff, the teams and the webhook endpoints.
    agents: Vec<(String, String)>,
    teams: Vec<(String, String)>,
    webhooks: Vec<(String, String)>,
}

const ACTION_TYPES: &[(&str, &str)] = &[
    ("set_status", "Set the status"),
    ("set_priority", "Set the priority"),
    ("assign_agent", "Assign to an agent"),
    ("assign_team", "Assign to a team"),
    ("route", "Route by skills"),
    ("add_tags", "Add tags"),
    ("remove_tags", "Remove tags"),
    ("add_internal_note", "Add an internal note"),
    ("add_public_reply", "Add a public reply"),
    ("escalate", "Escalate"),
    ("notify", "Notify people"),
    ("send_email", "Send an e-mail"),
    ("call_webhook", "Call a webhook"),
    ("raise_alert", "Raise an alert"),
];

/// The words a field of `kind` allows.
fn allowed(field: Field) -> Vec<&'static str> {
    match field.kind() {
        FieldType::Word { allowed, .. } => allowed.to_vec(),
        _ => vec![],
    }
}

impl Choices {
    /// A condition's or an action's value as people read it: text without quotes (as typed: a
    /// tag is shown as it is), a list joined, an agent, team or endpoint by its name.
    fn value_in_words(&self, value: &Value) -> String {
        match value {
            Value::Null => String::new(),
            Value::String(text) => self
                .agents
                .iter()
                .chain(&self.teams)
                .chain(&self.webhooks)
                .chain(&self.recipients)
                .find(|(id, _)| id == text)
                .map_or_else(|| text.clone(), |(_, name)| name.clone()),
            Value::Array(items) => items
                .iter()
                .map(|item| self.value_in_words(item))
                .collect::<Vec<_>>()
                .join(", "),
            Value::Object(entries) => self.entries_in_words(entries.iter()),
            other => other.to_string(),
        }
    }

    /// Named values as "key value; key value".
    fn entries_in_words<'v>(
        &self,
        entries: impl Iterator<Item = (&'v String, &'v Value)>,
    ) -> String {
        entries
            .map(|(key, value)| format!("{} {}", key.replace('_', " "), self.value_in_words(value)))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// An action as the editor names it, with what it is given: "Set the status: pending".
    fn action_in_words(&self, action: &Value) -> String {
        let kind = action
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let label = ACTION_TYPES
            .iter()
            .find(|(name, _)| *name == kind)
            .map_or_else(|| kind.replace('_', " "), |(_, label)| (*label).to_string());
        let inputs: Vec<(&String, &Value)> = action
            .as_object()
            .map(|entries| entries.iter().filter(|(key, _)| *key != "type").collect())
            .unwrap_or_default();
        let said = match inputs.as_slice() {
            [(_, only)] => self.value_in_words(only),
            many => self.entries_in_words(many.iter().copied()),
        };
        if said.is_empty() {
            label
        } else {
            format!("{label}: {said}")
        }
    }

    async fn gather(app: &SharedApp, visitor: &Visitor) -> Result<Self, AppError> {
        let caller = visitor.caller();
        let agents: Vec<(String, String)> = workforce::roster(app, caller)
            .await?
            .into_iter()
            .filter(|a| a.active)
            .map(|a| (a.agent_id.to_string(), a.full_name))
            .collect();
        let teams = workforce::teams(app, caller)
            .await?
            .into_iter()
            .map(|t| (t.team.id.to_string(), t.team.name))
            .collect();
        // Administrators see the endpoints; a manager picks from none and keeps what a rule has.
        let webhooks = match webhooks::names(app, caller).await {
            Ok(names) => names
                .into_iter()
                .map(|(id, name)| (id.to_string(), name))
                .collect(),
            Err(AppError::NotPermitted(_)) => vec![],
            Err(other) => return Err(other),
        };
        let mut recipients: Vec<(String, String)> = [
            ("customer", "the customer"),
            ("assignee", "the assignee"),
            ("team_lead", "the team's lead"),
        ]
        .iter()
        .map(|(v, l)| (v.to_string(), l.to_string()))
        .collect();
        recipients.extend(agents.iter().cloned());
        Ok(Self {
            groups: GROUPS,
            fields: Field::ALL.iter().map(|f| f.as_str()).collect(),
            action_types: ACTION_TYPES,
            statuses: allowed(Field::Status),
            priorities: allowed(Field::Priority),
            roles: vec!["agent", "manager", "admin"],
            clock_states: allowed(Field::SlaResolution),
            templates: MailKind::ALL.iter().map(|k| k.as_str()).collect(),
            severities: Severity::ALL.iter().map(|s| s.as_str()).collect(),
            recipients,
            agents,
            teams,
            webhooks,
        })
    }
}

impl EditorPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        super::error_for(&self.error, field)
    }

    fn rows(&self, group: &str) -> &[ConditionRow] {
        if group == "any" {
            &self.draft.any
        } else {
            &self.draft.all
        }
    }

    fn knows_webhook(&self, id: &str) -> bool {
        self.choices.webhooks.iter().any(|(known, _)| known == id)
    }
}

#[allow(clippy::too_many_arguments)]
async fn editor(
    app: &SharedApp,
    visitor: &Visitor,
    id: Option<Uuid>,
    version: i64,
    draft: Draft,
    error: Option<(String, String)>,
    notice: Option<&'static str>,
    ticket: String,
    tested: Option<TestView>,
) -> Result<Response, PageError> {
    let history = match id {
        Some(id) => {
            let changes =
                audit::changes(app, <AutomationRule as cqrs_es::Aggregate>::TYPE, id).await?;
            ChangeAuthors::default().lines(app, changes).await?
        }
        None => vec![],
    };
    let choices = Choices::gather(app, visitor).await?;
    let tested = tested.map(|t| Tested {
        acts: t.would_act,
        due: t
            .due_at
            .map(|at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
        lines: t
            .conditions
            .into_iter()
            .map(|c| TestLine {
                group: c.group,
                condition: [
                    c.field.replace('_', " "),
                    c.operator.replace('_', " "),
                    choices.value_in_words(&c.value),
                ]
                .join(" ")
                .trim_end()
                .to_string(),
                held: c.held,
            })
            .collect(),
        actions: t
            .actions
            .iter()
            .map(|action| choices.action_in_words(action))
            .collect(),
    });
    let page = EditorPage {
        chrome: visitor.chrome(app, false)?,
        id,
        version,
        draft,
        events: TriggerEvent::ALL.iter().map(|e| e.as_str()).collect(),
        error,
        notice,
        ticket,
        choices,
        tested,
        history,
    };
    Ok(html(StatusCode::OK, page.render()?))
}

#[poem::handler]
pub async fn new_automation(req: &Request, app: Data<&SharedApp>) -> Response {
    respond(
        async {
            let visitor = manager(req, &app).await?;
            editor(
                &app,
                &visitor,
                None,
                0,
                Draft::example(),
                None,
                None,
                String::new(),
                None,
            )
            .await
        }
        .await,
    )
}

#[poem::handler]
pub async fn add_automation(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Form(fields): Form<Fields>,
) -> Response {
    respond(
        async {
            let visitor = manager(req, &app).await?;
            visitor.check_csrf(field(&fields, "csrf"))?;
            let mut draft = Draft::from_fields(&fields);
            if let Some(edit) = Edit::parse(field(&fields, "action")) {
                draft.edit(edit);
                return editor(
                    &app,
                    &visitor,
                    None,
                    0,
                    draft,
                    None,
                    None,
                    String::new(),
                    None,
                )
                .await;
            }
            let refused = |error| {
                editor(
                    &app,
                    &visitor,
                    None,
                    0,
                    Draft::from_fields(&fields),
                    Some(error),
                    None,
                    String::new(),
                    None,
                )
            };
            let body = match draft.body() {
                Ok(body) => body,
                Err(error) => return refused(error).await,
            };
            match automations::create(&app, visitor.caller(), &origin, &body).await {
                Ok(rule) => Ok(see_other(&format!(
                    "/settings/automations/{}?done=saved",
                    rule.id
                ))),
                Err(AppError::Invalid { field, reason }) => refused(placed(&field, &reason)).await,
                Err(other) => Err(other.into()),
            }
        }
        .await,
    )
}

#[derive(Debug, serde::Deserialize)]
pub struct DoneQuery {
    #[serde(default)]
    done: Option<String>,
}

#[poem::handler]
pub async fn automation(
    req: &Request,
    app: Data<&SharedApp>,
    Path(id): Path<Uuid>,
    poem::web::Query(query): poem::web::Query<DoneQuery>,
) -> Response {
    respond(
        async {
            let visitor = manager(req, &app).await?;
            let rule = automations::get(&app, visitor.caller(), id).await?;
            let notice = (query.done.as_deref() == Some("saved")).then_some("Saved.");
            editor(
                &app,
                &visitor,
                Some(id),
                rule.version,
                Draft::of(&rule.definition),
                None,
                notice,
                String::new(),
                None,
            )
            .await
        }
        .await,
    )
}

/// Saves the rule, tests it on a ticket, or deletes it (`action`); a mistake is named beside
/// the part that has it and the form keeps what was typed.
#[poem::handler]
pub async fn change_automation(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Path(id): Path<Uuid>,
    Form(fields): Form<Fields>,
) -> Response {
    respond(
        async {
            let visitor = manager(req, &app).await?;
            visitor.check_csrf(field(&fields, "csrf"))?;
            let version = field(&fields, "version").parse::<i64>().ok();
            let ticket = field(&fields, "ticket").to_string();
            let again = |error: Option<(String, String)>, tested: Option<TestView>| {
                editor(
                    &app,
                    &visitor,
                    Some(id),
                    version.unwrap_or_default(),
                    Draft::from_fields(&fields),
                    error,
                    None,
                    ticket.clone(),
                    tested,
                )
            };
            if let Some(edit) = Edit::parse(field(&fields, "action")) {
                let mut draft = Draft::from_fields(&fields);
                draft.edit(edit);
                return editor(
                    &app,
                    &visitor,
                    Some(id),
                    version.unwrap_or_default(),
                    draft,
                    None,
                    None,
                    ticket.clone(),
                    None,
                )
                .await;
            }
            match field(&fields, "action") {
                "delete" => {
                    automations::delete(&app, visitor.caller(), &origin, id).await?;
                    Ok(see_other("/settings/automations"))
                }
                "test" => {
                    let Some(reference) = TicketRef::recognise(&ticket) else {
                        return again(
                            Some(("ticket".into(), "Type a ticket number, such as TKT-000051.".into())),
                            None,
                        )
                        .await;
                    };
                    let found =
                        match crate::app::tickets::get(&app, visitor.caller(), reference, None).await {
                            Ok(found) => found.ticket.id,
                            Err(_) => {
                                return again(Some(("ticket".into(), "There is no such ticket.".into())), None)
                                    .await;
                            }
                        };
                    // The rule as saved: what would act now.
                    let tested = automations::test(&app, visitor.caller(), id, found).await?;
                    again(None, Some(tested)).await
                }
                _ => {
                    let body = match Draft::from_fields(&fields).body() {
                        Ok(body) => body,
                        Err(error) => return again(Some(error), None).await,
                    };
                    match automations::update(&app, visitor.caller(), &origin, id, version, &body).await {
                        Ok(_) => Ok(see_other(&format!("/settings/automations/{id}?done=saved"))),
                        Err(AppError::Invalid { field, reason }) => {
                            again(Some(placed(&field, &reason)), None).await
                        }
                        Err(AppError::VersionMismatch { .. }) => {
                            again(
                                Some((
                                    "name".into(),
                                    "Someone changed this rule since you opened it; open it again to see their change.".into(),
                                )),
                                None,
                            )
                            .await
                        }
                        Err(other) => Err(other.into()),
                    }
                }
            }
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn choices() -> Choices {
        let ada = (
            "0195f0f0-0000-7000-8000-00000000000a".to_string(),
            "Ada".to_string(),
        );
        Choices {
            groups: GROUPS,
            fields: vec![],
            action_types: ACTION_TYPES,
            statuses: vec![],
            priorities: vec![],
            roles: vec![],
            clock_states: vec![],
            templates: vec![],
            severities: vec![],
            recipients: vec![("customer".into(), "the customer".into()), ada.clone()],
            agents: vec![ada],
            teams: vec![(
                "0195f0f0-0000-7000-8000-0000000000b1".into(),
                "Billing".into(),
            )],
            webhooks: vec![],
        }
    }

    #[test]
    fn a_tested_rule_reads_in_words_with_names_for_ids() {
        let choices = choices();
        assert_eq!(
            choices.action_in_words(&json!({"type": "set_status", "status": "pending"})),
            "Set the status: pending"
        );
        assert_eq!(
            choices.action_in_words(&json!({"type": "add_tags", "tags": ["needs_review", "vip"]})),
            "Add tags: needs_review, vip"
        );
        assert_eq!(
            choices.action_in_words(
                &json!({"type": "assign_team", "team_id": "0195f0f0-0000-7000-8000-0000000000b1"})
            ),
            "Assign to a team: Billing"
        );
        assert_eq!(
            choices.action_in_words(&json!({"type": "send_email", "template": "public_reply",
                "to": "customer"})),
            "Send an e-mail: template public_reply; to the customer"
        );
        assert_eq!(
            choices.action_in_words(&json!({"type": "route"})),
            "Route by skills"
        );
        assert_eq!(
            choices.value_in_words(&json!(["0195f0f0-0000-7000-8000-00000000000a", 3])),
            "Ada, 3"
        );
        assert_eq!(choices.value_in_words(&Value::Null), "");
    }
}
