//! Escalation rules (managers and admins): each rule in words, switched on or off, with its
//! version history; and a form for a new rule with one condition and one action (the API
//! takes any number of each).

use askama::Template;
use docket_domain::sla::SlaMetric;
use docket_domain::sla::config::{EscalationRule, RuleAction, RuleCondition, RuleDefinition};
use docket_domain::{Priority, UserId};
use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{Request, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::{ChangeAuthors, ChangeLine, manager};
use crate::app::sla::{config, escalation};
use crate::app::{AppError, Origin, SharedApp};
use crate::http::pages::directory::{Choice, Directory};
use crate::http::pages::{Chrome, PageError, Visitor, html, options, respond, see_other};

pub struct RuleLine {
    id: Uuid,
    name: String,
    version: u32,
    enabled: bool,
    applies_to: String,
    when: String,
    then: String,
    history: Vec<ChangeLine>,
}

/// The conditions the form offers, as values and labels.
const CONDITIONS: [(&str, &str); 6] = [
    ("at_risk", "a clock is at risk"),
    ("breached", "a clock has breached"),
    ("response_overdue", "a response is overdue"),
    ("resolution_overdue", "the resolution is overdue"),
    ("unassigned_for", "nobody has taken it for (minutes)"),
    ("no_update_for", "nothing has happened for (minutes)"),
];

/// The actions the form offers, as values and labels.
const ACTIONS: [(&str, &str); 5] = [
    ("escalate", "escalate one level"),
    ("escalate_to_team_lead", "escalate to the team's lead"),
    ("raise_priority", "raise the priority"),
    ("reassign", "assign to (agent)"),
    ("notify", "notify (agent)"),
];

#[derive(Debug, Default, Deserialize)]
pub struct RuleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    critical: Option<String>,
    #[serde(default)]
    high: Option<String>,
    #[serde(default)]
    medium: Option<String>,
    #[serde(default)]
    low: Option<String>,
    #[serde(default)]
    condition: String,
    /// A clock's metric for `at_risk` and `breached`; empty for any.
    #[serde(default)]
    metric: String,
    #[serde(default)]
    minutes: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    agent: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    apply_to_existing: Option<String>,
}

impl RuleForm {
    fn priorities(&self) -> Vec<Priority> {
        super::ticked([&self.critical, &self.high, &self.medium, &self.low])
    }
}

#[derive(Template)]
#[template(path = "settings_rules.html")]
struct RulesPage {
    chrome: Chrome,
    rules: Vec<RuleLine>,
    form: RuleForm,
    ticked: Vec<(&'static str, bool)>,
    conditions: Vec<(&'static str, &'static str, bool)>,
    metrics: Vec<(&'static str, bool)>,
    actions: Vec<(&'static str, &'static str, bool)>,
    agents: Vec<Choice>,
    error: Option<(String, String)>,
    /// After a save: how many tickets the rule took at once.
    acting: Option<(String, i64)>,
}

impl RulesPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        super::error_for(&self.error, field)
    }
}

fn metric_words(metric: &Option<SlaMetric>) -> String {
    metric
        .map(|m| format!("the {} clock", m.as_str().replace('_', " ")))
        .unwrap_or_else(|| "a clock".to_string())
}

fn condition_words(condition: &RuleCondition) -> String {
    match condition {
        RuleCondition::ResponseOverdue => "a response is overdue".to_string(),
        RuleCondition::ResolutionOverdue => "the resolution is overdue".to_string(),
        RuleCondition::AtRisk { metric } => format!("{} is at risk", metric_words(metric)),
        RuleCondition::Breached { metric } => format!("{} has breached", metric_words(metric)),
        RuleCondition::UnassignedFor { minutes } => format!("nobody took it for {minutes} min"),
        RuleCondition::NoUpdateFor { minutes } => {
            format!("nothing happened for {minutes} min")
        }
    }
}

fn action_words(action: &RuleAction, names: &Directory) -> String {
    match action {
        RuleAction::Escalate {
            escalate_to: Some(to),
            ..
        } => format!("escalate to {}", names.person(Some(to.0))),
        RuleAction::Escalate {
            to_team_lead: true, ..
        } => "escalate to the team's lead".to_string(),
        RuleAction::Escalate { .. } => "escalate one level".to_string(),
        RuleAction::Reassign { agent_id } => {
            format!("assign to {}", names.person(Some(agent_id.0)))
        }
        RuleAction::RaisePriority => "raise the priority".to_string(),
        RuleAction::Notify { recipients, .. } => format!(
            "notify {}",
            recipients
                .iter()
                .map(|r| names.person(Some(r.0)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

async fn rules_page(
    app: &SharedApp,
    visitor: &Visitor,
    form: RuleForm,
    error: Option<(String, String)>,
    acting: Option<(String, i64)>,
) -> Result<Response, PageError> {
    let caller = visitor.caller();
    let names = Directory::load(app, visitor).await?;
    let mut authors = ChangeAuthors::default();
    let mut rules = Vec::new();
    for saved in config::list::<EscalationRule>(app, caller).await? {
        let changes = config::history::<EscalationRule>(app, caller, saved.id).await?;
        let rule = &saved.definition;
        rules.push(RuleLine {
            id: saved.id,
            name: rule.name.clone(),
            version: saved.version,
            enabled: rule.enabled,
            applies_to: if rule.priorities.is_empty() {
                "every priority".to_string()
            } else {
                rule.priorities
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            when: rule
                .conditions
                .iter()
                .map(condition_words)
                .collect::<Vec<_>>()
                .join(" and "),
            then: rule
                .actions
                .iter()
                .map(|a| action_words(a, &names))
                .collect::<Vec<_>>()
                .join(", then "),
            history: authors.lines(app, changes).await?,
        });
    }
    let ticked = form.priorities();
    let page = RulesPage {
        chrome: visitor.chrome(app, false)?,
        rules,
        ticked: options(Priority::ALL, &ticked, Priority::as_str),
        conditions: CONDITIONS
            .iter()
            .map(|(value, label)| (*value, *label, form.condition == *value))
            .collect(),
        metrics: SlaMetric::ALL
            .iter()
            .map(|m| (m.as_str(), form.metric == m.as_str()))
            .collect(),
        actions: ACTIONS
            .iter()
            .map(|(value, label)| (*value, *label, form.action == *value))
            .collect(),
        agents: names.agent_choices(form.agent.parse().ok()),
        form,
        error,
        acting,
    };
    Ok(html(StatusCode::OK, page.render()?))
}

#[poem::handler]
pub async fn rule_settings(req: &Request, app: Data<&SharedApp>) -> Response {
    respond(
        async {
            let visitor = manager(req, &app).await?;
            rules_page(&app, &visitor, RuleForm::default(), None, None).await
        }
        .await,
    )
}

type FieldError = (String, String);

fn field(name: &str, reason: &str) -> FieldError {
    (name.to_string(), reason.to_string())
}

/// The rule the form describes.
fn definition(form: &RuleForm) -> Result<RuleDefinition, FieldError> {
    if form.name.trim().is_empty() {
        return Err(field("name", "Enter a name."));
    }
    let minutes = || {
        form.minutes
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|m| (1..=525_600).contains(m))
            .ok_or_else(|| field("minutes", "Enter the minutes, from 1 to 525,600."))
    };
    let metric = match form.metric.trim() {
        "" => None,
        typed => Some(
            SlaMetric::ALL
                .into_iter()
                .find(|m| m.as_str() == typed)
                .ok_or_else(|| field("metric", "Choose a clock from the list."))?,
        ),
    };
    let condition = match form.condition.as_str() {
        "at_risk" => RuleCondition::AtRisk { metric },
        "breached" => RuleCondition::Breached { metric },
        "response_overdue" => RuleCondition::ResponseOverdue,
        "resolution_overdue" => RuleCondition::ResolutionOverdue,
        "unassigned_for" => RuleCondition::UnassignedFor {
            minutes: minutes()?,
        },
        "no_update_for" => RuleCondition::NoUpdateFor {
            minutes: minutes()?,
        },
        _ => return Err(field("condition", "Choose when the rule acts.")),
    };
    let agent = || {
        form.agent
            .trim()
            .parse::<Uuid>()
            .map(UserId)
            .map_err(|_| field("agent", "Choose the agent for this action."))
    };
    let action = match form.action.as_str() {
        "escalate" => RuleAction::Escalate {
            escalate_to: None,
            to_team_lead: false,
        },
        "escalate_to_team_lead" => RuleAction::Escalate {
            escalate_to: None,
            to_team_lead: true,
        },
        "raise_priority" => RuleAction::RaisePriority,
        "reassign" => RuleAction::Reassign { agent_id: agent()? },
        "notify" => RuleAction::Notify {
            recipients: vec![agent()?],
            message: Some(form.message.trim().to_string()).filter(|m| !m.is_empty()),
        },
        _ => return Err(field("action", "Choose what the rule does.")),
    };
    let rule = RuleDefinition {
        name: form.name.trim().to_string(),
        priorities: form.priorities(),
        conditions: vec![condition],
        actions: vec![action],
        enabled: true,
        apply_to_existing: form.apply_to_existing.is_some(),
    };
    rule.validate().map_err(|e| (e.field, e.reason))?;
    Ok(rule)
}

/// Adds a rule; a field that is wrong is named beside it, and nothing typed is lost.
#[poem::handler]
pub async fn add_rule(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Form(form): Form<RuleForm>,
) -> Response {
    respond(
        async {
            let visitor = manager(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            let rule = match definition(&form) {
                Ok(rule) => rule,
                Err(error) => return rules_page(&app, &visitor, form, Some(error), None).await,
            };
            let acting = escalation::acting_on_now(&app, &rule).await?;
            let name = rule.name.clone();
            match config::create::<EscalationRule>(&app, visitor.caller(), &origin, rule).await {
                Ok(_) => {
                    let fresh = RuleForm::default();
                    rules_page(&app, &visitor, fresh, None, Some((name, acting))).await
                }
                Err(AppError::Invalid { field, reason }) => {
                    rules_page(&app, &visitor, form, Some((field, reason)), None).await
                }
                Err(other) => Err(other.into()),
            }
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
pub struct ToggleForm {
    #[serde(default)]
    csrf: String,
    /// `on` or `off`.
    #[serde(default)]
    to: String,
}

/// Switches a rule on or off: a new version of it.
#[poem::handler]
pub async fn toggle_rule(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Path(id): Path<Uuid>,
    Form(form): Form<ToggleForm>,
) -> Response {
    respond(
        async {
            let visitor = manager(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            let current = config::get::<EscalationRule>(&app, visitor.caller(), id).await?;
            let mut rule = current.item.definition;
            rule.enabled = form.to == "on";
            // A rule switched back on acts on what happens from now, as a new rule would.
            rule.apply_to_existing = false;
            let expected = Some(current.version);
            config::update::<EscalationRule>(&app, visitor.caller(), &origin, id, expected, rule)
                .await?;
            Ok(see_other("/settings/escalation-rules"))
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(condition: &str, action: &str) -> RuleForm {
        RuleForm {
            name: "Critical at risk".into(),
            critical: Some("on".into()),
            condition: condition.into(),
            action: action.into(),
            ..RuleForm::default()
        }
    }

    #[test]
    fn the_form_makes_a_rule_of_one_condition_and_one_action() {
        let Ok(rule) = definition(&form("at_risk", "raise_priority")) else {
            panic!("the form is a rule");
        };
        assert_eq!(rule.priorities, vec![Priority::Critical]);
        assert_eq!(
            rule.conditions,
            vec![RuleCondition::AtRisk { metric: None }]
        );
        assert_eq!(rule.actions, vec![RuleAction::RaisePriority]);
        assert!(rule.enabled && !rule.apply_to_existing);
    }

    #[test]
    fn what_a_condition_or_action_needs_is_named_beside_its_field() {
        let field_of = |f: RuleForm| definition(&f).err().map(|(field, _)| field);
        assert_eq!(
            field_of(form("unassigned_for", "escalate")),
            Some("minutes".into())
        );
        assert_eq!(field_of(form("breached", "reassign")), Some("agent".into()));
        assert_eq!(field_of(form("", "escalate")), Some("condition".into()));
        assert_eq!(field_of(form("at_risk", "")), Some("action".into()));
        let unnamed = RuleForm {
            name: " ".into(),
            ..form("at_risk", "escalate")
        };
        assert_eq!(field_of(unnamed), Some("name".into()));
    }
}
