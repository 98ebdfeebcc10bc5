//! E-mail (admins): the templates of each kind of mail, edited with a preview of the draft for a
//! real ticket (nothing saved until Save), reset to Docket's own, with their history from the
//! log; the outbox with each mail as it went out (or would go now) and a retry for what did not
//! go; and every message that came in by mail with what became of it. The same
//! `app::outbound::{mail, inbound}` services as `/api/email-templates`, `/api/outbox` and
//! `/api/inbound/email`.

use askama::Template;
use docket_domain::access::Permission;
use docket_domain::mail::{EmailTemplate, MailKind, Template as MailTemplate};
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query};
use poem::{Request, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::{ChangeAuthors, ChangeLine};
use crate::app::outbound::inbound;
use crate::app::outbound::mail::{self, OutboxMail, OutboxView};
use crate::app::outbound::templates::Rendered;
use crate::app::tickets::TicketRef;
use crate::app::{AppError, Origin, SharedApp, audit};
use crate::http::pages::{Chrome, PageError, Visitor, html, respond, see_other, signed_in};

/// The mails and messages one page lists.
const SHOWN: i64 = 50;

fn when(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

async fn admin(req: &Request, app: &SharedApp) -> Result<Visitor, PageError> {
    let visitor = signed_in(req, app).await?;
    visitor
        .caller()
        .require(Permission::ManageIntegrations, "configure e-mail")?;
    Ok(visitor)
}

fn kind_named(name: &str) -> Result<MailKind, PageError> {
    name.parse::<MailKind>()
        .map_err(|_| AppError::NotFound("kind of mail").into())
}

/// What each kind of mail is for, as the list says it.
fn purpose(kind: MailKind) -> &'static str {
    match kind {
        MailKind::TicketCreated => "To the customer when their ticket is opened",
        MailKind::TicketAssigned => "To an agent given a ticket",
        MailKind::PublicReply => "To the customer (or the assignee) on a public reply",
        MailKind::StatusChanged => "To the customer when their ticket's status changes",
        MailKind::SlaWarning => "To the assignee when a target is at risk",
        MailKind::SlaBreached => "To the assignee when a target is breached",
        MailKind::Escalated => "To the team lead on an escalation",
        MailKind::Report => "Scheduled reports",
    }
}

// ---- the overview: templates and inbound mail ---------------------------------------------

pub struct KindLine {
    kind: &'static str,
    purpose: &'static str,
    subject: String,
    custom: bool,
    version: i64,
}

pub struct InboundLine {
    at: String,
    from: String,
    subject: String,
    ticket_id: Option<Uuid>,
    outcome: String,
    reason: Option<String>,
}

#[derive(Template)]
#[template(path = "settings_email.html")]
struct EmailPage {
    chrome: Chrome,
    kinds: Vec<KindLine>,
    inbound: Vec<InboundLine>,
    inbound_total: i64,
    /// Where mail goes (`None`: it waits in the outbox).
    sending: bool,
    queued: i64,
    failed: i64,
}

#[poem::handler]
pub async fn email_settings(req: &Request, app: Data<&SharedApp>) -> Response {
    respond(
        async {
            let visitor = admin(req, &app).await?;
            let caller = visitor.caller();
            let mut kinds = Vec::with_capacity(MailKind::ALL.len());
            for kind in MailKind::ALL {
                let view = mail::get_template(&app, caller, *kind).await?;
                kinds.push(KindLine {
                    kind: kind.as_str(),
                    purpose: purpose(*kind),
                    subject: view.template.subject,
                    custom: view.custom,
                    version: view.version,
                });
            }
            let (messages, inbound_total) = inbound::log(&app, caller, 1, SHOWN).await?;
            let (_, queued) = mail::outbox(&app, caller, Some("queued"), 1, 1).await?;
            let (_, failed) = mail::outbox(&app, caller, Some("failed"), 1, 1).await?;
            let page = EmailPage {
                chrome: visitor.chrome(&app, false)?,
                kinds,
                inbound: messages
                    .into_iter()
                    .map(|m| InboundLine {
                        at: when(m.received_at),
                        from: m.from_address.unwrap_or_else(|| "(no sender)".into()),
                        subject: m.subject.unwrap_or_default(),
                        ticket_id: m.ticket_id,
                        outcome: m.outcome,
                        reason: m.reason,
                    })
                    .collect(),
                inbound_total,
                sending: app.outbound.settings.smtp_url.is_some(),
                queued,
                failed,
            };
            Ok(html(StatusCode::OK, page.render()?))
        }
        .await,
    )
}

// ---- one template: edit, preview, reset ---------------------------------------------------

#[derive(Template)]
#[template(path = "settings_email_template.html")]
struct TemplatePage {
    chrome: Chrome,
    kind: &'static str,
    purpose: &'static str,
    custom: bool,
    version: i64,
    variables: Vec<&'static str>,
    draft: MailTemplate,
    /// The ticket the preview is for, as typed.
    ticket: String,
    preview: Option<Rendered>,
    error: Option<(String, String)>,
    notice: Option<&'static str>,
    history: Vec<ChangeLine>,
}

impl TemplatePage {
    fn error_for(&self, field: &str) -> Option<&str> {
        super::error_for(&self.error, field)
    }
}

#[allow(clippy::too_many_arguments)]
async fn template_page(
    app: &SharedApp,
    visitor: &Visitor,
    kind: MailKind,
    draft: Option<MailTemplate>,
    ticket: String,
    preview: Option<Rendered>,
    error: Option<(String, String)>,
    notice: Option<&'static str>,
) -> Result<Response, PageError> {
    let view = mail::get_template(app, visitor.caller(), kind).await?;
    let changes = audit::changes(
        app,
        <EmailTemplate as cqrs_es::Aggregate>::TYPE,
        kind.template_id(),
    )
    .await?;
    let history = ChangeAuthors::default().lines(app, changes).await?;
    let page = TemplatePage {
        chrome: visitor.chrome(app, false)?,
        kind: kind.as_str(),
        purpose: purpose(kind),
        custom: view.custom,
        version: view.version,
        variables: view.variables,
        draft: draft.unwrap_or(view.template),
        ticket,
        preview,
        error,
        notice,
        history,
    };
    // 200 with the message beside the field, as every page of the web app answers a refused form.
    Ok(html(StatusCode::OK, page.render()?))
}

#[derive(Debug, Deserialize)]
pub struct TemplateForm {
    #[serde(default)]
    csrf: String,
    /// `save`, `preview` or `reset`.
    #[serde(default)]
    action: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    html: String,
    /// The ticket to preview with: its number (`TKT-000051`, `51`) or id.
    #[serde(default)]
    ticket: String,
}

/// The ticket a preview is for: the one typed, or the newest (so a first preview shows
/// something real without asking).
async fn preview_ticket(
    app: &SharedApp,
    visitor: &Visitor,
    typed: &str,
) -> Result<Uuid, (String, String)> {
    let refuse = |reason: &str| ("ticket".to_string(), reason.to_string());
    if typed.trim().is_empty() {
        let newest = mail::newest_ticket(app)
            .await
            .map_err(|_| refuse("The tickets cannot be read just now; try again."))?;
        return newest.ok_or_else(|| refuse("There is no ticket yet to preview with."));
    }
    let reference = TicketRef::recognise(typed)
        .ok_or_else(|| refuse("Type a ticket number, such as TKT-000051."))?;
    match crate::app::tickets::get(app, visitor.caller(), reference, None).await {
        Ok(found) => Ok(found.ticket.id),
        Err(_) => Err(refuse("There is no such ticket.")),
    }
}

/// Saves the draft, previews it, or brings back Docket's own; a part that is wrong is named
/// beside it and nothing is lost from the form.
#[poem::handler]
pub async fn change_email_template(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Path(kind): Path<String>,
    Form(form): Form<TemplateForm>,
) -> Response {
    respond(
        async {
            let visitor = admin(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            let kind = kind_named(&kind)?;
            let path = format!("/settings/email/templates/{}", kind.as_str());
            let draft = MailTemplate {
                subject: form.subject.clone(),
                text: form.text.clone(),
                html: form.html.clone(),
            };
            let show = |draft: Option<MailTemplate>,
                        preview: Option<Rendered>,
                        error: Option<(String, String)>,
                        notice: Option<&'static str>| {
                template_page(
                    &app,
                    &visitor,
                    kind,
                    draft,
                    form.ticket.clone(),
                    preview,
                    error,
                    notice,
                )
            };
            match form.action.as_str() {
                "reset" => {
                    mail::reset_template(&app, visitor.caller(), &origin, kind).await?;
                    Ok(see_other(&format!("{path}?done=reset")))
                }
                "preview" => {
                    let ticket = match preview_ticket(&app, &visitor, &form.ticket).await {
                        Ok(ticket) => ticket,
                        Err(error) => return show(Some(draft), None, Some(error), None).await,
                    };
                    match mail::preview(&app, visitor.caller(), kind, ticket, Some(draft.clone()))
                        .await
                    {
                        Ok(rendered) => show(Some(draft), Some(rendered), None, None).await,
                        Err(AppError::Invalid { field, reason }) => {
                            show(Some(draft), None, Some((field, reason)), None).await
                        }
                        Err(other) => Err(other.into()),
                    }
                }
                _ => match mail::set_template(&app, visitor.caller(), &origin, kind, draft.clone())
                    .await
                {
                    Ok(_) => Ok(see_other(&format!("{path}?done=saved"))),
                    Err(AppError::Invalid { field, reason }) => {
                        show(Some(draft), None, Some((field, reason)), None).await
                    }
                    Err(other) => Err(other.into()),
                },
            }
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

/// One kind's template; after a save or reset, saying so.
#[poem::handler]
pub async fn email_template(
    req: &Request,
    app: Data<&SharedApp>,
    Path(kind): Path<String>,
    Query(query): Query<DoneQuery>,
) -> Response {
    respond(
        async {
            let visitor = admin(req, &app).await?;
            let notice = match query.done.as_deref() {
                Some("saved") => Some("Saved. The next mail of this kind uses it."),
                Some("reset") => Some("Docket's own template is back."),
                _ => None,
            };
            template_page(
                &app,
                &visitor,
                kind_named(&kind)?,
                None,
                String::new(),
                None,
                None,
                notice,
            )
            .await
        }
        .await,
    )
}

// ---- the outbox ---------------------------------------------------------------------------

pub struct MailLine {
    id: Uuid,
    kind: String,
    to: String,
    subject: String,
    state: String,
    attempts: i32,
    last_error: Option<String>,
    created: String,
    sent: Option<String>,
    next: Option<String>,
}

impl From<OutboxView> for MailLine {
    fn from(m: OutboxView) -> Self {
        Self {
            next: (m.state == "queued").then(|| when(m.next_attempt_at)),
            id: m.id,
            kind: m.kind,
            to: m.to_address,
            subject: m.subject.unwrap_or_else(|| "(cannot be rendered)".into()),
            state: m.state,
            attempts: m.attempts,
            last_error: m.last_error,
            created: when(m.created_at),
            sent: m.sent_at.map(when),
        }
    }
}

#[derive(Template)]
#[template(path = "settings_outbox.html")]
struct OutboxPage {
    chrome: Chrome,
    mails: Vec<MailLine>,
    total: i64,
    /// The state shown (`None`: every state).
    state: Option<String>,
    sending: bool,
}

#[derive(Debug, Deserialize)]
pub struct OutboxQuery {
    state: Option<String>,
}

#[poem::handler]
pub async fn outbox(
    req: &Request,
    app: Data<&SharedApp>,
    Query(query): Query<OutboxQuery>,
) -> Response {
    respond(
        async {
            let visitor = admin(req, &app).await?;
            let state = query
                .state
                .filter(|s| matches!(s.as_str(), "queued" | "sent" | "failed"));
            let (mails, total) =
                mail::outbox(&app, visitor.caller(), state.as_deref(), 1, SHOWN).await?;
            let page = OutboxPage {
                chrome: visitor.chrome(&app, false)?,
                mails: mails.into_iter().map(MailLine::from).collect(),
                total,
                state,
                sending: app.outbound.settings.smtp_url.is_some(),
            };
            Ok(html(StatusCode::OK, page.render()?))
        }
        .await,
    )
}

#[derive(Template)]
#[template(path = "settings_outbox_mail.html")]
struct MailPage {
    chrome: Chrome,
    mail: MailLine,
    message_id: String,
    ticket_id: Option<Uuid>,
    thread: Option<String>,
    content: Result<Rendered, String>,
}

#[poem::handler]
pub async fn outbox_mail(req: &Request, app: Data<&SharedApp>, Path(id): Path<Uuid>) -> Response {
    respond(
        async {
            let visitor = admin(req, &app).await?;
            let OutboxMail {
                mail: found,
                content,
                thread,
            } = mail::outbox_mail(&app, visitor.caller(), id).await?;
            let page = MailPage {
                chrome: visitor.chrome(&app, false)?,
                message_id: found.message_id.clone(),
                ticket_id: found.ticket_id,
                mail: found.into(),
                thread,
                content,
            };
            Ok(html(StatusCode::OK, page.render()?))
        }
        .await,
    )
}

/// Queues a mail that did not go out again, its retries afresh.
#[poem::handler]
pub async fn retry_mail(
    req: &Request,
    app: Data<&SharedApp>,
    Path(id): Path<Uuid>,
    Form(form): Form<crate::http::pages::CsrfForm>,
) -> Response {
    respond(
        async {
            let visitor = admin(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            mail::retry(&app, visitor.caller(), id).await?;
            Ok(see_other(&format!("/settings/email/outbox/{id}")))
        }
        .await,
    )
}
