//! Alerts (staff): what needs attention now, by state, each acknowledged or resolved with a
//! note beside its buttons. The list follows the live stream; the header counts active alerts.

use askama::Template;
use docket_domain::alert::AlertState;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query};
use poem::{Request, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::settings::ChangeAuthors;
use super::{Chrome, PageError, html, respond, see_other, signed_in};
use crate::app::{AppError, Origin, SharedApp, alerts};

/// The page lists this many alerts, newest first.
const SHOWN: i64 = 100;

pub struct AlertLine {
    id: Uuid,
    severity: String,
    kind: String,
    state: String,
    title: String,
    detail: Option<String>,
    ticket: Option<Uuid>,
    raised: String,
    acknowledged: Option<String>,
    resolved: Option<String>,
}

#[derive(Template)]
#[template(path = "alerts_list.html")]
struct AlertsList {
    csrf: String,
    state: String,
    alerts: Vec<AlertLine>,
    total: i64,
    answers: bool,
    error: Option<(Uuid, String)>,
}

impl AlertsList {
    fn error_for(&self, id: Uuid) -> Option<&str> {
        self.error
            .as_ref()
            .filter(|(on, _)| *on == id)
            .map(|(_, why)| why.as_str())
    }
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    chrome: Chrome,
    list: AlertsList,
}

#[derive(Debug, Default, Deserialize)]
pub struct AlertsQuery {
    #[serde(default)]
    state: Option<String>,
}

/// `active` when absent; `all` for every state.
fn chosen_state(query: &AlertsQuery) -> (String, Option<AlertState>) {
    match query.state.as_deref() {
        Some("all") => ("all".to_string(), None),
        Some(text) => match text.parse::<AlertState>() {
            Ok(state) => (state.as_str().to_string(), Some(state)),
            Err(_) => ("active".to_string(), Some(AlertState::Active)),
        },
        None => ("active".to_string(), Some(AlertState::Active)),
    }
}

/// People by name, each looked up once; Docket itself for the nil id.
#[derive(Default)]
struct Names(ChangeAuthors);

impl Names {
    async fn of(&mut self, app: &SharedApp, id: Uuid) -> Result<String, PageError> {
        if id.is_nil() {
            return Ok("Docket".to_string());
        }
        self.0.name(app, id).await
    }
}

fn when(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

async fn list(
    app: &SharedApp,
    visitor: &super::Visitor,
    state: (String, Option<AlertState>),
    error: Option<(Uuid, String)>,
) -> Result<AlertsList, PageError> {
    let (found, total) = alerts::list(app, visitor.caller(), state.1, 1, SHOWN).await?;
    let mut names = Names::default();
    let mut lines = Vec::with_capacity(found.len());
    for alert in found {
        let answered = |who: String, at, note: Option<String>| {
            let said = note.map(|n| format!(": “{n}”")).unwrap_or_default();
            format!("{who}, {}{said}", when(at))
        };
        let acknowledged = match (alert.acknowledged_by, alert.acknowledged_at) {
            (Some(by), Some(at)) => Some(answered(
                names.of(app, by).await?,
                at,
                alert.acknowledge_note.clone(),
            )),
            _ => None,
        };
        let resolved = match (alert.resolved_by, alert.resolved_at) {
            (Some(by), Some(at)) => Some(answered(
                names.of(app, by).await?,
                at,
                alert.resolve_note.clone(),
            )),
            _ => None,
        };
        lines.push(AlertLine {
            id: alert.id,
            severity: alert.severity,
            kind: alert.kind,
            state: alert.state,
            title: alert.title,
            detail: alert.detail,
            ticket: alert.ticket_id,
            raised: format!(
                "{}, {}",
                names.of(app, alert.raised_by).await?,
                when(alert.raised_at)
            ),
            acknowledged,
            resolved,
        });
    }
    Ok(AlertsList {
        csrf: visitor.session.csrf_token.clone(),
        state: state.0,
        alerts: lines,
        total,
        answers: visitor
            .caller()
            .role
            .may(docket_domain::access::Permission::WorkTickets),
        error,
    })
}

#[poem::handler]
pub async fn alerts_page(
    req: &Request,
    app: Data<&SharedApp>,
    Query(query): Query<AlertsQuery>,
) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            let list = list(&app, &visitor, chosen_state(&query), None).await?;
            let page = AlertsPage {
                chrome: visitor.chrome(&app, true)?,
                list,
            };
            Ok(html(StatusCode::OK, page.render()?))
        }
        .await,
    )
}

/// The list alone, for the live refresh.
#[poem::handler]
pub async fn alerts_list(
    req: &Request,
    app: Data<&SharedApp>,
    Query(query): Query<AlertsQuery>,
) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            let list = list(&app, &visitor, chosen_state(&query), None).await?;
            Ok(html(StatusCode::OK, list.render()?))
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
pub struct AnswerForm {
    #[serde(default)]
    csrf: String,
    /// `acknowledge` or `resolve`.
    #[serde(default)]
    action: String,
    #[serde(default)]
    note: String,
    /// The tab to go back to.
    #[serde(default)]
    state: String,
}

/// Acknowledges or resolves an alert; a refusal (a note too long, someone was quicker) is shown
/// beside the alert, with the list as it is now.
#[poem::handler]
pub async fn answer(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Path(id): Path<Uuid>,
    Form(form): Form<AnswerForm>,
) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            let note = Some(form.note.as_str()).filter(|n| !n.trim().is_empty());
            let done = match form.action.as_str() {
                "acknowledge" => alerts::acknowledge(&app, visitor.caller(), &origin, id, note)
                    .await
                    .map(|_| ()),
                "resolve" => alerts::resolve(&app, visitor.caller(), &origin, id, note)
                    .await
                    .map(|_| ()),
                _ => Err(AppError::invalid("action", "acknowledge or resolve")),
            };
            let query = AlertsQuery {
                state: Some(form.state.clone()).filter(|s| !s.is_empty()),
            };
            match done {
                Ok(()) => Ok(see_other(&format!(
                    "/alerts?state={}",
                    chosen_state(&query).0
                ))),
                Err(AppError::Invalid { reason, .. }) => {
                    refused(&app, &visitor, &query, id, reason).await
                }
                Err(error @ AppError::Conflict { .. }) => {
                    refused(&app, &visitor, &query, id, error.to_string()).await
                }
                Err(other) => Err(other.into()),
            }
        }
        .await,
    )
}

async fn refused(
    app: &SharedApp,
    visitor: &super::Visitor,
    query: &AlertsQuery,
    id: Uuid,
    why: String,
) -> Result<Response, PageError> {
    let list = list(app, visitor, chosen_state(query), Some((id, why))).await?;
    let page = AlertsPage {
        chrome: visitor.chrome(app, true)?,
        list,
    };
    Ok(html(StatusCode::OK, page.render()?))
}

/// What the header's alerts link needs.
pub struct BadgeUser {
    alerts: i64,
}

#[derive(Template)]
#[template(path = "alerts_badge.html")]
struct Badge {
    user: BadgeUser,
}

/// The header's alerts link alone, for the live refresh.
#[poem::handler]
pub async fn alerts_badge(req: &Request, app: Data<&SharedApp>) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            visitor.caller().require(
                docket_domain::access::Permission::ReadStaffViews,
                "see alerts",
            )?;
            let badge = Badge {
                user: BadgeUser {
                    alerts: alerts::unanswered(&app).await?,
                },
            };
            Ok(html(StatusCode::OK, badge.render()?))
        }
        .await,
    )
}
