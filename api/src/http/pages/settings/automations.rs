//! Automation rules (managers and admins): the rules in the order they run, and an editor for
//! one — its trigger, its conditions and actions as JSON (with the path of any mistake beside
//! the part that has it), a test on a ticket that shows what held and what it would do, and
//! its version history.

use askama::Template;
use docket_domain::automation::{AutomationRule, TriggerEvent};
use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{Request, Response};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{ChangeAuthors, ChangeLine, manager};
use crate::app::automations::{self, RuleView, TestView};
use crate::app::tickets::TicketRef;
use crate::app::{AppError, Origin, SharedApp, audit};
use crate::http::pages::{Chrome, PageError, Visitor, html, respond, see_other};

type Fields = Vec<(String, String)>;

fn field<'f>(fields: &'f Fields, name: &str) -> &'f str {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

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

/// The editor's fields, as typed.
pub struct Draft {
    name: String,
    position: String,
    enabled: bool,
    time: bool,
    events: Vec<String>,
    conditions: String,
    actions: String,
}

impl Draft {
    fn example() -> Self {
        Self {
            name: String::new(),
            position: "0".into(),
            enabled: true,
            time: false,
            events: vec!["ticket.created".into()],
            conditions: serde_json::to_string_pretty(&json!({
                "all": [{"field": "priority", "operator": "in", "value": ["high", "critical"]}],
                "any": []
            }))
            .unwrap_or_default(),
            actions: serde_json::to_string_pretty(&json!([
                {"type": "add_tags", "tags": ["urgent"]}
            ]))
            .unwrap_or_default(),
        }
    }

    fn of(rule: &RuleView) -> Self {
        let definition = &rule.definition;
        let (time, events) = match &definition.trigger {
            docket_domain::automation::Trigger::Time => (true, vec![]),
            docket_domain::automation::Trigger::Event { events } => (
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
            conditions: serde_json::to_string_pretty(&definition.conditions).unwrap_or_default(),
            actions: serde_json::to_string_pretty(&definition.actions).unwrap_or_default(),
        }
    }

    fn from_fields(fields: &Fields) -> Self {
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
            conditions: field(fields, "conditions").to_string(),
            actions: field(fields, "actions").to_string(),
        }
    }

    /// The rule as the API takes it; JSON that does not parse is named beside its box.
    fn body(&self) -> Result<Value, (String, String)> {
        let parse = |name: &str, text: &str, empty: Value| -> Result<Value, (String, String)> {
            if text.trim().is_empty() {
                return Ok(empty);
            }
            serde_json::from_str(text)
                .map_err(|e| (name.to_string(), format!("{name}: this is not JSON ({e})")))
        };
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
            "conditions": parse("conditions", &self.conditions, json!({}))?,
            "actions": parse("actions", &self.actions, json!([]))?,
        }))
    }

    fn listens(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == event)
    }
}

/// The editor box a path belongs to (`conditions.all[0].field` → `conditions`), and the words
/// shown beside it (with the path, so the mistake can be found in the JSON).
fn placed(path: &str, reason: &str) -> (String, String) {
    let head = path.split(['.', '[']).next().unwrap_or(path);
    let place = match head {
        "name" | "position" | "enabled" | "conditions" | "actions" => head,
        "trigger" => "events",
        _ => "actions",
    };
    let said = if path == place {
        reason.to_string()
    } else {
        format!("{path}: {reason}")
    };
    (place.to_string(), said)
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
}

impl EditorPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        super::error_for(&self.error, field)
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
    let page = EditorPage {
        chrome: visitor.chrome(app, false)?,
        id,
        version,
        draft,
        events: TriggerEvent::ALL.iter().map(|e| e.as_str()).collect(),
        error,
        notice,
        ticket,
        tested: tested.map(|t| Tested {
            acts: t.would_act,
            due: t
                .due_at
                .map(|at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
            lines: t
                .conditions
                    .into_iter()
                    .map(|c| TestLine {
                        group: c.group,
                        condition: format!(
                            "{} {} {}",
                            c.field,
                            c.operator,
                            if c.value.is_null() {
                                String::new()
                            } else {
                                c.value.to_string()
                            }
                        ),
                        held: c.held,
                    })
                    .collect(),
            actions: t.actions.iter().map(Value::to_string).collect(),
        }),
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
            let draft = Draft::from_fields(&fields);
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
                Draft::of(&rule),
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
