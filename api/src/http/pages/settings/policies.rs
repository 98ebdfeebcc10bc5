//! SLA policies (managers and admins): every policy with its current version and the history
//! of its versions from the log (who changed it, when), and a form to add one.

use askama::Template;
use docket_domain::Priority;
use docket_domain::sla::MetricTargets;
use docket_domain::sla::config::{SlaCalendar, SlaPolicy};
use docket_domain::sla::document::{
    ConditionsDocument, PolicyDocument, TargetsByPriorityDocument, TargetsDocument,
};
use poem::http::StatusCode;
use poem::web::{Data, Form};
use poem::{Request, Response};
use serde::Deserialize;

use super::{ChangeAuthors, ChangeLine, manager};
use crate::app::sla::config::{self, CalendarSpec, PolicySpec, Saved};
use crate::app::{AppError, Origin, SharedApp};
use crate::http::pages::directory::Choice;
use crate::http::pages::{Chrome, PageError, Visitor, html, options, picked, respond, see_other};

pub struct PolicyLine {
    id: uuid::Uuid,
    name: String,
    version: u32,
    position: i32,
    applies_to: String,
    targets: String,
    calendar: String,
    /// The edit form, filled with the targets of the first priority it covers (minutes).
    first_response: u64,
    resolution: u64,
    escalation: u64,
    calendars: Vec<Choice>,
    history: Vec<ChangeLine>,
}

/// What the form was given, kept when it is shown again.
#[derive(Debug, Default, Deserialize)]
pub struct PolicyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    position: String,
    #[serde(default)]
    critical: Option<String>,
    #[serde(default)]
    high: Option<String>,
    #[serde(default)]
    medium: Option<String>,
    #[serde(default)]
    low: Option<String>,
    #[serde(default)]
    first_response: String,
    #[serde(default)]
    resolution: String,
    #[serde(default)]
    escalation: String,
    /// A calendar's id, or empty for all hours.
    #[serde(default)]
    calendar: String,
}

impl PolicyForm {
    fn covers(&self) -> Vec<Priority> {
        super::ticked([&self.critical, &self.high, &self.medium, &self.low])
    }
}

#[derive(Template)]
#[template(path = "settings_sla.html")]
struct SettingsPage {
    chrome: Chrome,
    policies: Vec<PolicyLine>,
    form: PolicyForm,
    ticked: Vec<(&'static str, bool)>,
    calendars: Vec<Choice>,
    /// Which field is wrong, and why.
    error: Option<(String, String)>,
    /// The policy whose edit was refused, and why.
    edit_error: Option<(uuid::Uuid, String)>,
}

impl SettingsPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        super::error_for(&self.error, field)
    }
}

fn minutes(seconds: u64) -> String {
    format!("{} min", seconds / 60)
}

/// The calendars as choices, `chosen` selected.
fn calendar_choices(calendars: &[Saved<CalendarSpec>], chosen: Option<uuid::Uuid>) -> Vec<Choice> {
    calendars
        .iter()
        .map(|c| Choice {
            value: c.id.to_string(),
            label: c.definition.name.clone(),
            chosen: Some(c.id) == chosen,
        })
        .collect()
}

async fn settings_page(
    app: &SharedApp,
    visitor: &Visitor,
    form: PolicyForm,
    error: Option<(String, String)>,
    edit_error: Option<(uuid::Uuid, String)>,
) -> Result<Response, PageError> {
    let caller = visitor.caller();
    let calendars = config::list::<SlaCalendar>(app, caller).await?;
    let mut authors = ChangeAuthors::default();
    let mut policies = Vec::new();
    for saved in config::list::<SlaPolicy>(app, caller).await? {
        let changes = config::history::<SlaPolicy>(app, caller, saved.id).await?;
        let history = authors.lines(app, changes).await?;
        let definition = &saved.definition.definition;
        let covered = &definition.conditions.priorities;
        let shown = if covered.is_empty() {
            Priority::ALL.to_vec()
        } else {
            covered.clone()
        };
        let first = definition
            .targets
            .of(shown.first().copied().unwrap_or(Priority::Medium));
        policies.push(PolicyLine {
            id: saved.id,
            calendar: definition
                .calendar_id
                .and_then(|id| calendars.iter().find(|c| c.id == id))
                .map(|c| format!("counted in the hours of {}", c.definition.name))
                .unwrap_or_else(|| "counted around the clock".to_string()),
            first_response: first.first_response / 60,
            resolution: first.resolution / 60,
            escalation: first.escalation / 60,
            calendars: calendar_choices(&calendars, definition.calendar_id),
            name: definition.name.clone(),
            version: saved.version,
            position: saved.definition.position,
            applies_to: if covered.is_empty() {
                "every priority".to_string()
            } else {
                covered
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            targets: shown
                .iter()
                .map(|p| {
                    let t = definition.targets.of(*p);
                    format!(
                        "{}: first response {}, resolution {}, escalation {}",
                        p.as_str(),
                        minutes(t.first_response),
                        minutes(t.resolution),
                        minutes(t.escalation)
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
            history,
        });
    }
    let covers = form.covers();
    let page = SettingsPage {
        chrome: visitor.chrome(app, false)?,
        calendars: calendar_choices(&calendars, form.calendar.parse().ok()),
        edit_error,
        policies,
        ticked: options(Priority::ALL, &covers, Priority::as_str),
        form,
        error,
    };
    Ok(html(StatusCode::OK, page.render()?))
}

#[poem::handler]
pub async fn sla_settings(req: &Request, app: Data<&SharedApp>) -> Response {
    respond(
        async {
            let visitor = manager(req, &app).await?;
            let form = PolicyForm {
                position: "1".into(),
                ..PolicyForm::default()
            };
            settings_page(&app, &visitor, form, None, None).await
        }
        .await,
    )
}

/// Minutes typed into a field, as seconds; a message beside the field otherwise.
fn seconds(field: &str, typed: &str) -> Result<u64, (String, String)> {
    match typed.trim().parse::<u64>() {
        Ok(minutes) if minutes > 0 => Ok(minutes * 60),
        _ => Err((
            field.to_string(),
            "Enter a whole number of minutes, at least 1.".to_string(),
        )),
    }
}

/// The policy the form describes, and its position.
fn document(form: &PolicyForm) -> Result<(PolicyDocument, i32), (String, String)> {
    if form.name.trim().is_empty() {
        return Err(("name".into(), "Enter a name.".into()));
    }
    let position = form
        .position
        .trim()
        .parse::<i32>()
        .map_err(|_| ("position".to_string(), "Enter a whole number.".to_string()))?;
    let targets = TargetsDocument {
        first_response: seconds("first_response", &form.first_response)?,
        next_response: None,
        resolution: seconds("resolution", &form.resolution)?,
        escalation: seconds("escalation", &form.escalation)?,
    };
    let covers = form.covers();
    let given = |p: Priority| (covers.is_empty() || covers.contains(&p)).then_some(targets);
    let document = PolicyDocument {
        name: form.name.clone(),
        conditions: Some(ConditionsDocument {
            priorities: Some(covers.clone()),
            ..ConditionsDocument::default()
        }),
        calendar_id: picked(&form.calendar, "a calendar")
            .map_err(|reason| ("calendar".to_string(), reason))?,
        pause_statuses: None,
        at_risk_percent: None,
        targets: TargetsByPriorityDocument {
            critical: given(Priority::Critical),
            high: given(Priority::High),
            medium: given(Priority::Medium),
            low: given(Priority::Low),
        },
    };
    Ok((document, position))
}

/// Adds a policy; a field that is wrong is named beside it, and nothing typed is lost.
#[poem::handler]
pub async fn add_policy(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Form(form): Form<PolicyForm>,
) -> Response {
    respond(
        async {
            let visitor = manager(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            let written = document(&form).and_then(|(document, position)| {
                document
                    .definition()
                    .map(|definition| PolicySpec {
                        definition,
                        position,
                    })
                    .map_err(|e| (e.field, e.reason))
            });
            let spec = match written {
                Ok(spec) => spec,
                Err(error) => return settings_page(&app, &visitor, form, Some(error), None).await,
            };
            match config::create::<SlaPolicy>(&app, visitor.caller(), &origin, spec).await {
                Ok(_) => Ok(see_other("/settings/sla")),
                Err(AppError::Invalid { field, reason }) => {
                    settings_page(&app, &visitor, form, Some((field, reason)), None).await
                }
                Err(other) => Err(other.into()),
            }
        }
        .await,
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct EditForm {
    #[serde(default)]
    csrf: String,
    /// The policy version the page showed.
    #[serde(default)]
    version: Option<u32>,
    #[serde(default)]
    first_response: String,
    #[serde(default)]
    resolution: String,
    #[serde(default)]
    escalation: String,
    #[serde(default)]
    calendar: String,
}

/// New targets (for every priority the policy covers) and calendar: a new version of the
/// policy, which open tickets under it adopt within moments. Its other settings stay.
#[poem::handler]
pub async fn edit_policy(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    poem::web::Path(id): poem::web::Path<uuid::Uuid>,
    Form(form): Form<EditForm>,
) -> Response {
    respond(
        async {
            let visitor = manager(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            let fresh = || PolicyForm {
                position: "1".into(),
                ..PolicyForm::default()
            };
            let refused = |reason: String| Some((id, reason));
            let targets = (|| {
                Ok::<_, (String, String)>(MetricTargets::new(
                    seconds("first_response", &form.first_response)?,
                    None,
                    seconds("resolution", &form.resolution)?,
                    seconds("escalation", &form.escalation)?,
                ))
            })();
            let calendar = picked(&form.calendar, "a calendar");
            let (targets, calendar) = match (targets, calendar) {
                (Ok(targets), Ok(calendar)) => (targets, calendar),
                (Err((_, reason)), _) | (_, Err(reason)) => {
                    return settings_page(&app, &visitor, fresh(), None, refused(reason)).await;
                }
            };
            let current = config::get::<SlaPolicy>(&app, visitor.caller(), id).await?;
            let stale = "Someone changed this policy since you opened the page; check it and \
                         save again."
                .to_string();
            if form
                .version
                .is_some_and(|shown| shown != current.item.version)
            {
                return settings_page(&app, &visitor, fresh(), None, refused(stale)).await;
            }
            let mut spec = current.item.definition;
            let covered = spec.definition.conditions.priorities.clone();
            for priority in Priority::ALL {
                if covered.is_empty() || covered.contains(priority) {
                    let slot = match priority {
                        Priority::Critical => &mut spec.definition.targets.critical,
                        Priority::High => &mut spec.definition.targets.high,
                        Priority::Medium => &mut spec.definition.targets.medium,
                        Priority::Low => &mut spec.definition.targets.low,
                    };
                    *slot = targets;
                }
            }
            spec.definition.calendar_id = calendar;
            let expected = Some(current.version);
            match config::update::<SlaPolicy>(&app, visitor.caller(), &origin, id, expected, spec)
                .await
            {
                Ok(_) => Ok(see_other("/settings/sla")),
                Err(AppError::VersionMismatch { .. }) => {
                    settings_page(&app, &visitor, fresh(), None, refused(stale)).await
                }
                Err(AppError::Invalid { reason, .. }) => {
                    settings_page(&app, &visitor, fresh(), None, refused(reason)).await
                }
                Err(other) => Err(other.into()),
            }
        }
        .await,
    )
}
