//! Webhooks (admins): every endpoint with its state and health, switched on and off, tested,
//! its secret rotated (shown once) and removed; a form that adds one (its secret shown once);
//! and each endpoint's delivery log with every attempt and a button to send one again. The same
//! `app::outbound::webhooks` services as `/api/webhooks`.

use askama::Template;
use docket_domain::access::Permission;
use docket_domain::values::{EventKind, Note};
use docket_domain::webhook::{Subscriptions, WebhookChange, WebhookSettings, WebhookUrl};
use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{Request, Response};
use uuid::Uuid;

use crate::app::outbound::webhooks::{self, DeliveryView, WebhookView};
use crate::app::{AppError, Origin, SharedApp};
use crate::http::pages::{
    Chrome, CsrfForm, PageError, Visitor, html, respond, see_other, signed_in,
};

/// The deliveries one page of an endpoint's log shows.
const DELIVERIES_SHOWN: i64 = 50;

fn when(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

pub struct EndpointLine {
    id: Uuid,
    url: String,
    events: String,
    description: Option<String>,
    enabled: bool,
    include_internal: bool,
    state: &'static str,
    health: String,
}

impl From<WebhookView> for EndpointLine {
    fn from(view: WebhookView) -> Self {
        let w = &view.webhook;
        let state = match (&w.disabled, w.enabled) {
            (Some(reason), _) if reason["reason"] == "gone" => "disabled: it answered 410 Gone",
            (Some(_), _) => "disabled: failing too long",
            (None, true) => "active",
            (None, false) => "switched off",
        };
        let health = match (view.failing_since, view.last_success_at) {
            (Some(since), _) => format!("Failing since {}", when(since)),
            (None, Some(last)) => format!("Last delivered {}", when(last)),
            (None, None) => "Nothing delivered yet".to_string(),
        };
        Self {
            id: w.id,
            url: w.url.clone(),
            events: w.events.join(", "),
            description: w.description.clone(),
            enabled: w.enabled && w.disabled.is_none(),
            include_internal: w.include_internal,
            state,
            health,
        }
    }
}

/// What the add form holds.
#[derive(Debug, Default)]
pub struct EndpointForm {
    url: String,
    description: String,
    events: Vec<String>,
    include_internal: bool,
}

#[derive(Template)]
#[template(path = "settings_webhooks.html")]
struct WebhooksPage {
    chrome: Chrome,
    endpoints: Vec<EndpointLine>,
    form: EndpointForm,
    /// Every kind, and whether the form has it ticked.
    kinds: Vec<(&'static str, bool)>,
    error: Option<(String, String)>,
    /// A secret just made (an endpoint added or its secret rotated): the endpoint's URL and the
    /// secret, shown this once.
    secret: Option<(String, String)>,
    /// Something done that is worth saying (a test queued).
    notice: Option<String>,
}

impl WebhooksPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        super::error_for(&self.error, field)
    }
}

async fn admin(req: &Request, app: &SharedApp) -> Result<Visitor, PageError> {
    let visitor = signed_in(req, app).await?;
    visitor
        .caller()
        .require(Permission::ManageIntegrations, "configure webhooks")?;
    Ok(visitor)
}

async fn webhooks_page(
    app: &SharedApp,
    visitor: &Visitor,
    form: EndpointForm,
    error: Option<(String, String)>,
    secret: Option<(String, String)>,
    notice: Option<String>,
) -> Result<Response, PageError> {
    let endpoints = webhooks::list(app, visitor.caller())
        .await?
        .into_iter()
        .map(EndpointLine::from)
        .collect();
    let kinds = EventKind::ALL
        .iter()
        .map(|k| (k.as_str(), form.events.iter().any(|e| e == k.as_str())))
        .collect();
    let page = WebhooksPage {
        chrome: visitor.chrome(app, false)?,
        endpoints,
        form,
        kinds,
        error,
        secret,
        notice,
    };
    Ok(html(StatusCode::OK, page.render()?))
}

#[poem::handler]
pub async fn webhook_settings(req: &Request, app: Data<&SharedApp>) -> Response {
    respond(
        async {
            let visitor = admin(req, &app).await?;
            webhooks_page(&app, &visitor, EndpointForm::default(), None, None, None).await
        }
        .await,
    )
}

/// A form's fields, in order (checkboxes repeat their name).
type Fields = Vec<(String, String)>;

fn field<'f>(fields: &'f Fields, name: &str) -> &'f str {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

/// The endpoint the form describes, or the field that is wrong.
fn endpoint_settings(form: &EndpointForm) -> Result<WebhookSettings, (String, String)> {
    let refuse = |field: &str, reason: String| (field.to_string(), reason);
    let url = WebhookUrl::parse(&form.url).map_err(|e| refuse("url", e.reason))?;
    let kinds = form
        .events
        .iter()
        .map(|e| e.parse::<EventKind>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| refuse("events", e.reason))?;
    let events = Subscriptions::new(&kinds)
        .map_err(|_| refuse("events", "Tick at least one event to send.".into()))?;
    let description = match form.description.trim() {
        "" => None,
        text => Some(
            Note::parse_field("description", text).map_err(|e| refuse("description", e.reason))?,
        ),
    };
    Ok(WebhookSettings {
        url,
        events,
        description,
        enabled: true,
        include_internal: form.include_internal,
    })
}

/// Adds an endpoint and shows its secret once; a field that is wrong is named beside it.
#[poem::handler]
pub async fn add_webhook(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Form(fields): Form<Fields>,
) -> Response {
    respond(
        async {
            let visitor = admin(req, &app).await?;
            visitor.check_csrf(field(&fields, "csrf"))?;
            let form = EndpointForm {
                url: field(&fields, "url").to_string(),
                description: field(&fields, "description").to_string(),
                events: fields
                    .iter()
                    .filter(|(n, _)| n == "events")
                    .map(|(_, v)| v.clone())
                    .collect(),
                include_internal: !field(&fields, "include_internal").is_empty(),
            };
            let settings = match endpoint_settings(&form) {
                Ok(settings) => settings,
                Err(error) => {
                    return webhooks_page(&app, &visitor, form, Some(error), None, None).await;
                }
            };
            match webhooks::create(&app, visitor.caller(), &origin, settings).await {
                Ok((view, secret)) => {
                    let shown = Some((view.webhook.url, secret.expose().to_string()));
                    webhooks_page(&app, &visitor, EndpointForm::default(), None, shown, None).await
                }
                Err(AppError::Invalid { field, reason }) => {
                    webhooks_page(&app, &visitor, form, Some((field, reason)), None, None).await
                }
                Err(other) => Err(other.into()),
            }
        }
        .await,
    )
}

/// Switches an endpoint on or off (`to` = `on` or `off`); on also ends a disable.
#[poem::handler]
pub async fn switch_webhook(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Path(id): Path<Uuid>,
    Form(fields): Form<Fields>,
) -> Response {
    respond(
        async {
            let visitor = admin(req, &app).await?;
            visitor.check_csrf(field(&fields, "csrf"))?;
            let change = WebhookChange {
                enabled: Some(field(&fields, "to") == "on"),
                ..WebhookChange::default()
            };
            webhooks::update(&app, visitor.caller(), &origin, id, change, None).await?;
            Ok(see_other("/settings/webhooks"))
        }
        .await,
    )
}

/// Queues a test ping.
#[poem::handler]
pub async fn test_webhook(
    req: &Request,
    app: Data<&SharedApp>,
    Path(id): Path<Uuid>,
    Form(form): Form<CsrfForm>,
) -> Response {
    respond(
        async {
            let visitor = admin(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            webhooks::send_test(&app, visitor.caller(), id).await?;
            Ok(see_other(&format!("/settings/webhooks/{id}")))
        }
        .await,
    )
}

/// Makes a new secret and shows it once.
#[poem::handler]
pub async fn rotate_webhook(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Path(id): Path<Uuid>,
    Form(form): Form<CsrfForm>,
) -> Response {
    respond(
        async {
            let visitor = admin(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            let secret = webhooks::rotate_secret(&app, visitor.caller(), &origin, id).await?;
            let url = webhooks::get(&app, visitor.caller(), id).await?.webhook.url;
            let notice = Some(
                "For the next 24 hours deliveries carry the old secret's signature too.".into(),
            );
            let shown = Some((url, secret.expose().to_string()));
            webhooks_page(&app, &visitor, EndpointForm::default(), None, shown, notice).await
        }
        .await,
    )
}

/// Removes an endpoint.
#[poem::handler]
pub async fn delete_webhook(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Path(id): Path<Uuid>,
    Form(form): Form<CsrfForm>,
) -> Response {
    respond(
        async {
            let visitor = admin(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            webhooks::delete(&app, visitor.caller(), &origin, id).await?;
            Ok(see_other("/settings/webhooks"))
        }
        .await,
    )
}

pub struct AttemptLine {
    number: i32,
    at: String,
    duration_ms: i32,
    outcome: String,
    response: Option<String>,
}

pub struct DeliveryLine {
    id: Uuid,
    kind: String,
    message_id: String,
    state: String,
    created: String,
    next: Option<String>,
    attempts: Vec<AttemptLine>,
}

impl From<DeliveryView> for DeliveryLine {
    fn from(d: DeliveryView) -> Self {
        Self {
            id: d.id,
            kind: d.event_type,
            message_id: d.message_id,
            state: d.state,
            created: when(d.created_at),
            next: d.next_attempt_at.map(when),
            attempts: d
                .tries
                .into_iter()
                .map(|a| AttemptLine {
                    number: a.attempt,
                    at: when(a.started_at),
                    duration_ms: a.duration_ms,
                    outcome: match (a.status_code, a.error) {
                        (Some(status), _) => format!("answered {status}"),
                        (None, Some(error)) => error,
                        (None, None) => "no answer".to_string(),
                    },
                    response: a.response_excerpt.filter(|r| !r.is_empty()),
                })
                .collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "settings_webhook.html")]
struct DeliveriesPage {
    chrome: Chrome,
    endpoint: EndpointLine,
    deliveries: Vec<DeliveryLine>,
    total: i64,
}

#[poem::handler]
pub async fn webhook_deliveries(
    req: &Request,
    app: Data<&SharedApp>,
    Path(id): Path<Uuid>,
) -> Response {
    respond(
        async {
            let visitor = admin(req, &app).await?;
            let endpoint = webhooks::get(&app, visitor.caller(), id).await?;
            let (found, total) =
                webhooks::deliveries(&app, visitor.caller(), id, 1, DELIVERIES_SHOWN).await?;
            let page = DeliveriesPage {
                chrome: visitor.chrome(&app, false)?,
                endpoint: endpoint.into(),
                deliveries: found.into_iter().map(DeliveryLine::from).collect(),
                total,
            };
            Ok(html(StatusCode::OK, page.render()?))
        }
        .await,
    )
}

/// Sends a delivery again.
#[poem::handler]
pub async fn redeliver(
    req: &Request,
    app: Data<&SharedApp>,
    Path((id, delivery)): Path<(Uuid, Uuid)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    respond(
        async {
            let visitor = admin(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            webhooks::redeliver(&app, visitor.caller(), id, delivery).await?;
            Ok(see_other(&format!("/settings/webhooks/{id}")))
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(url: &str, events: &[&str]) -> EndpointForm {
        EndpointForm {
            url: url.into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            ..EndpointForm::default()
        }
    }

    #[test]
    fn the_form_names_what_is_wrong() {
        let none = endpoint_settings(&form("https://hooks.example.com/", &[])).err();
        assert_eq!(none.map(|(f, _)| f).as_deref(), Some("events"));
        let bad = endpoint_settings(&form("hooks.example.com", &["ticket.created"])).err();
        assert_eq!(bad.map(|(f, _)| f).as_deref(), Some("url"));
        let good = endpoint_settings(&form("https://hooks.example.com/", &["sla.breached"]));
        assert!(good.is_ok_and(|s| s.events.contains(EventKind::SlaBreached)));
    }
}
