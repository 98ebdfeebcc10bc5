//! E-mail: the templates (administrators edit them; every change is an event), the outbox, and
//! the sender, one leader across processes, that renders each queued mail with the template in
//! force and sends it over SMTP (lettre), bounded by a timeout, retrying on a schedule.
//!
//! Mail of one ticket threads in a mail client: each has a `Message-ID` made from its outbox id
//! (the same on every retry), and `In-Reply-To`/`References` name the ticket's thread; the
//! subject carries the ticket number, which is also how a reply finds its ticket
//! (`inbound`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use docket_domain::mail::{EmailTemplateCommand, MailKind, Template};
use futures::StreamExt;
use lettre::message::header::{HeaderName, HeaderValue, InReplyTo, References};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;
use tokio::sync::watch;
use uuid::Uuid;

use super::templates::{self, Rendered, TemplateError};
use crate::app::{App, AppError, Caller, Origin, SharedApp, leadership};
use docket_domain::access::Permission;

/// The sender's leadership lock ("docket_5").
const LEADER_KEY: i64 = 0x646f_636b_6574_5f35;
/// How long one mail may take to hand to the SMTP server.
const SEND_TIMEOUT: Duration = Duration::from_secs(15);
/// Mails handed over at once.
const AT_ONCE: usize = 4;
/// Mails a pass takes.
const BATCH: i64 = 50;
/// How often the sender looks without being woken.
const POLL: Duration = Duration::from_millis(500);

// ---- templates ------------------------------------------------------------------------------

/// A kind's template as people see it: the one in force, whether it is Docket's own, and the
/// variables it may use.
#[derive(Debug, Clone)]
pub struct TemplateView {
    pub kind: MailKind,
    pub template: Template,
    pub custom: bool,
    pub variables: Vec<&'static str>,
    pub version: i64,
}

/// The template in force for `kind`.
pub async fn template(app: &App, kind: MailKind) -> Result<TemplateView, AppError> {
    let (stored, version) = app
        .email_templates
        .load_recent(&kind.template_id().to_string(), app.account_freshness)
        .await?;
    Ok(TemplateView {
        kind,
        custom: stored.custom.is_some(),
        template: stored.custom.unwrap_or_else(|| templates::shipped(kind)),
        variables: templates::variables(kind),
        version,
    })
}

fn refused(error: TemplateError) -> AppError {
    AppError::invalid(error.part, error.reason)
}

pub async fn get_template(
    app: &App,
    caller: &Caller,
    kind: MailKind,
) -> Result<TemplateView, AppError> {
    caller.require(Permission::ManageIntegrations, "see e-mail templates")?;
    template(app, kind).await
}

/// Saves a template after checking it: a variable the kind does not have, broken syntax or a
/// render that takes too much work is refused, naming the part.
pub async fn set_template(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    kind: MailKind,
    chosen: Template,
) -> Result<TemplateView, AppError> {
    caller.require(Permission::ManageIntegrations, "edit e-mail templates")?;
    templates::check(kind, &chosen).map_err(refused)?;
    let command = EmailTemplateCommand::Set {
        kind,
        template: chosen,
        actor: caller.actor(),
        at: app.time.now(),
    };
    app.email_templates
        .execute(
            &kind.template_id().to_string(),
            None,
            command,
            origin.metadata(Some(caller.actor())),
        )
        .await
        .map_err(|e| e.naming("template"))?;
    template(app, kind).await
}

/// Brings back the template Docket ships.
pub async fn reset_template(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    kind: MailKind,
) -> Result<TemplateView, AppError> {
    caller.require(Permission::ManageIntegrations, "edit e-mail templates")?;
    let command = EmailTemplateCommand::Reset {
        kind,
        actor: caller.actor(),
        at: app.time.now(),
    };
    app.email_templates
        .execute(
            &kind.template_id().to_string(),
            None,
            command,
            origin.metadata(Some(caller.actor())),
        )
        .await
        .map_err(|e| e.naming("template"))?;
    template(app, kind).await
}

/// The link a mail's reader follows to the ticket.
pub(crate) fn link(app: &App, ticket: &str, staff: bool) -> String {
    let base = app
        .outbound
        .settings
        .public_url
        .as_deref()
        .unwrap_or("http://127.0.0.1:8080")
        .trim_end_matches('/');
    if staff {
        format!("{base}/tickets/{ticket}")
    } else {
        format!("{base}/portal/tickets/{ticket}")
    }
}

/// Renders `kind`'s template for a ticket as it is now, addressed to the caller: the template
/// in force, or a draft (checked first, as a save would). Nothing is sent, queued or saved.
pub async fn preview(
    app: &App,
    caller: &Caller,
    kind: MailKind,
    ticket: Uuid,
    draft: Option<Template>,
) -> Result<Rendered, AppError> {
    caller.require(Permission::ManageIntegrations, "preview e-mail templates")?;
    // From the log, not a read model: a ticket opened a moment ago is there already.
    let (loaded, _) = app.tickets.load(&ticket.to_string()).await?;
    let row = loaded
        .state()
        .ok_or_else(|| AppError::invalid("ticket_id", "no such ticket"))?;
    let mut context = templates::sample_context(kind);
    context["ticket"] = serde_json::json!({
        "id": ticket, "number": row.number.to_string(), "subject": row.subject.as_str(),
        "status": row.status.as_str(), "priority": row.priority.as_str(),
    });
    context["recipient"] = serde_json::json!({"name": caller.full_name, "email": caller.email});
    context["actor"] = serde_json::json!({"name": caller.full_name});
    context["link"] = Value::String(link(app, &ticket.to_string(), true));
    let chosen = match draft {
        Some(draft) => {
            templates::check(kind, &draft).map_err(refused)?;
            draft
        }
        None => template(app, kind).await?.template,
    };
    templates::render(&chosen, &context).map_err(refused)
}

/// The newest ticket, which a preview uses when none is named.
pub async fn newest_ticket(app: &App) -> Result<Option<Uuid>, AppError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM tickets_view ORDER BY created_at DESC LIMIT 1")
            .fetch_optional(&app.pool)
            .await?,
    )
}

// ---- the outbox -----------------------------------------------------------------------------

/// One mail in the outbox.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OutboxView {
    pub id: Uuid,
    pub kind: String,
    pub ticket_id: Option<Uuid>,
    pub recipient_id: Option<Uuid>,
    pub to_address: String,
    pub subject: Option<String>,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// Filled from the sender's domain (not stored: it is derived from the id).
    #[sqlx(skip)]
    pub message_id: String,
}

/// The domain of Docket's sender address, which `Message-ID`s and thread ids end in.
fn mail_domain(app: &App) -> String {
    app.outbound
        .settings
        .mail_from
        .parse::<Mailbox>()
        .map(|from| from.email.domain().to_string())
        .unwrap_or_else(|_| "localhost".to_string())
}

/// A mail's `Message-ID`: the same on every attempt, so a server that took it twice (an attempt
/// whose answer was lost) can tell.
fn message_id(domain: &str, mail: Uuid) -> String {
    format!("<{mail}@{domain}>")
}

/// The thread every mail of a ticket answers (`In-Reply-To`, `References`); a reply that names
/// it finds its ticket.
fn thread_id(domain: &str, ticket: Uuid) -> String {
    format!("<ticket-{ticket}@{domain}>")
}

/// The outbox, newest first (administrators): queued, sent and failed mail.
pub async fn outbox(
    app: &App,
    caller: &Caller,
    state: Option<&str>,
    page: i64,
    page_size: i64,
) -> Result<(Vec<OutboxView>, i64), AppError> {
    caller.require(Permission::ManageIntegrations, "read the outbox")?;
    let total: i64 =
        sqlx::query_scalar("SELECT count(*) FROM mail_outbox WHERE $1::text IS NULL OR state = $1")
            .bind(state)
            .fetch_one(&app.pool)
            .await?;
    let rows: Vec<OutboxRow> = sqlx::query_as(&format!(
        "{OUTBOX_COLUMNS} WHERE $1::text IS NULL OR state = $1
          ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(state)
    .bind(page_size)
    .bind((page.max(1) - 1).saturating_mul(page_size))
    .fetch_all(&app.pool)
    .await?;
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        items.push(read_row(app, row).await.mail);
    }
    Ok((items, total))
}

/// One mail and what it says: as it went out when it was sent; otherwise as it would go out now
/// (or why it cannot be rendered).
#[derive(Debug, Clone)]
pub struct OutboxMail {
    pub mail: OutboxView,
    pub content: Result<Rendered, String>,
    /// The thread it answers (`In-Reply-To`, `References`), for mail of a ticket.
    pub thread: Option<String>,
}

const OUTBOX_COLUMNS: &str = "SELECT id, kind, ticket_id, recipient_id, to_address, subject, state,
        attempts, next_attempt_at, last_error, created_at, sent_at, context, body_text, body_html
   FROM mail_outbox";

#[derive(sqlx::FromRow)]
struct OutboxRow {
    #[sqlx(flatten)]
    view: OutboxView,
    context: Value,
    body_text: Option<String>,
    body_html: Option<String>,
}

async fn read_row(app: &App, row: OutboxRow) -> OutboxMail {
    let domain = mail_domain(app);
    let mut mail = row.view;
    mail.message_id = message_id(&domain, mail.id);
    let content = match (&mail.subject, row.body_text, row.body_html) {
        (Some(subject), Some(text), Some(html)) if mail.state == "sent" => Ok(Rendered {
            subject: subject.clone(),
            text,
            html,
        }),
        _ => compose(app, &mail.kind, mail.ticket_id, &row.context)
            .await
            .map_err(|not| not.reason),
    };
    if let Ok(rendered) = &content {
        mail.subject = Some(rendered.subject.clone());
    }
    OutboxMail {
        thread: mail.ticket_id.map(|ticket| thread_id(&domain, ticket)),
        mail,
        content,
    }
}

/// One mail of the outbox with what it says (administrators).
pub async fn outbox_mail(app: &App, caller: &Caller, id: Uuid) -> Result<OutboxMail, AppError> {
    caller.require(Permission::ManageIntegrations, "read the outbox")?;
    let row: OutboxRow = sqlx::query_as(&format!("{OUTBOX_COLUMNS} WHERE id = $1"))
        .bind(id)
        .fetch_optional(&app.pool)
        .await?
        .ok_or(AppError::NotFound("mail"))?;
    Ok(read_row(app, row).await)
}

// ---- the sender -----------------------------------------------------------------------------

#[derive(sqlx::FromRow)]
struct Queued {
    id: Uuid,
    kind: String,
    ticket_id: Option<Uuid>,
    to_address: String,
    context: Value,
    attempts: i32,
}

pub async fn run(app: SharedApp, mut shutdown: watch::Receiver<bool>) {
    let settings = app.outbound.settings.clone();
    let Some(url) = settings.smtp_url.clone() else {
        tracing::info!("DOCKET_SMTP_URL is not set: mail waits in the outbox");
        return;
    };
    let from: Mailbox = match settings.mail_from.parse() {
        Ok(from) => from,
        Err(error) => {
            tracing::error!(%error, "DOCKET_MAIL_FROM is not an address; no mail is sent");
            return;
        }
    };
    let transport = match AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose()) {
        Ok(builder) => builder.timeout(Some(SEND_TIMEOUT)).build(),
        Err(error) => {
            tracing::error!(%error, "DOCKET_SMTP_URL is not usable; no mail is sent");
            return;
        }
    };
    let Some(_leadership) = leadership::lead(&app.pool, LEADER_KEY, "mail", &mut shutdown).await
    else {
        return;
    };
    let mut progress = app.notifications.projections();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let sent = match send_due(&app, &transport, &from).await {
            Ok(sent) => sent,
            Err(error) => {
                tracing::warn!(?error, "could not send queued mail");
                0
            }
        };
        if sent >= BATCH as usize {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = app.outbound.mail_wake.notified() => {}
            _ = progress.changed() => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Sends what is due; how many it tried.
async fn send_due(
    app: &App,
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: &Mailbox,
) -> Result<usize, AppError> {
    let due: Vec<Queued> = sqlx::query_as(
        "SELECT id, kind, ticket_id, to_address, context, attempts FROM mail_outbox
          WHERE state = 'queued' AND next_attempt_at <= now()
          ORDER BY next_attempt_at, created_at LIMIT $1",
    )
    .bind(BATCH)
    .fetch_all(&app.pool)
    .await?;
    let tried = due.len();
    let outcomes: Vec<Result<(), AppError>> = futures::stream::iter(due)
        .map(|mail| async move {
            let outcome = send_one(app, transport, from, &mail).await;
            record(app, &mail, outcome).await
        })
        .buffer_unordered(AT_ONCE)
        .collect()
        .await;
    for outcome in outcomes {
        outcome?;
    }
    Ok(tried)
}

/// What became of one mail: sent (with the subject it had), or why not and whether trying
/// again can help.
enum Sent {
    Yes { rendered: Rendered },
    No(NotSent),
}

/// Why a mail was not sent, and whether trying again can help.
struct NotSent {
    reason: String,
    permanent: bool,
}

/// A queued mail as it would go out now: rendered with the template in force, or why it
/// cannot be (`permanent` when trying again cannot help).
async fn compose(
    app: &App,
    kind: &str,
    ticket: Option<Uuid>,
    context: &Value,
) -> Result<Rendered, NotSent> {
    let no = |reason: String, permanent: bool| NotSent { reason, permanent };
    let Ok(kind) = kind.parse::<MailKind>() else {
        return Err(no(format!("`{kind}` is not a kind of mail"), true));
    };
    let mut context = context.clone();
    let staff = context["recipient"]["staff"].as_bool().unwrap_or(false);
    if let Some(ticket) = ticket {
        context["link"] = Value::String(link(app, &ticket.to_string(), staff));
    }
    let template = template(app, kind)
        .await
        .map_err(|error| no(error.to_string(), false))?;
    templates::render(&template.template, &context)
        .map_err(|error| no(format!("the template cannot render it: {error}"), true))
}

async fn send_one(
    app: &App,
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: &Mailbox,
    mail: &Queued,
) -> Sent {
    let no = |reason: String, permanent: bool| Sent::No(NotSent { reason, permanent });
    let rendered = match compose(app, &mail.kind, mail.ticket_id, &mail.context).await {
        Ok(rendered) => rendered,
        Err(not_sent) => return Sent::No(not_sent),
    };
    let to: Mailbox = match mail.to_address.parse() {
        Ok(to) => to,
        Err(error) => return no(format!("`{}`: {error}", mail.to_address), true),
    };
    let domain = from.email.domain().to_string();
    let mut builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(rendered.subject.clone())
        .message_id(Some(message_id(&domain, mail.id)));
    if let Some(ticket) = mail.ticket_id {
        // Every mail of a ticket answers its thread, so mail clients keep them together.
        let thread = thread_id(&domain, ticket);
        builder = builder
            .header(InReplyTo::from(thread.clone()))
            .header(References::from(thread));
        builder = builder.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Docket-Ticket"),
            mail.context["ticket"]["number"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        ));
    }
    // Docket's own mail is automatic: well-behaved autoresponders do not answer it.
    builder = builder.raw_header(HeaderValue::new(
        HeaderName::new_from_ascii_str("Auto-Submitted"),
        "auto-generated".to_string(),
    ));
    let message = match builder.multipart(MultiPart::alternative_plain_html(
        rendered.text.clone(),
        rendered.html.clone(),
    )) {
        Ok(message) => message,
        Err(error) => return no(error.to_string(), true),
    };
    match tokio::time::timeout(SEND_TIMEOUT, transport.send(message)).await {
        Ok(Ok(_)) => Sent::Yes { rendered },
        Ok(Err(error)) => no(error.to_string(), error.is_permanent()),
        Err(_) => no("the SMTP server took too long".to_string(), false),
    }
}

async fn record(app: &App, mail: &Queued, sent: Sent) -> Result<(), AppError> {
    let now = app.time.now();
    match sent {
        Sent::Yes { rendered } => {
            sqlx::query(
                "UPDATE mail_outbox SET state = 'sent', sent_at = $2, subject = $3,
                        body_text = $4, body_html = $5, attempts = attempts + 1,
                        last_error = NULL
                  WHERE id = $1",
            )
            .bind(mail.id)
            .bind(now)
            .bind(rendered.subject)
            .bind(rendered.text)
            .bind(rendered.html)
            .execute(&app.pool)
            .await?;
            app.metrics.mail_sent("sent");
        }
        Sent::No(NotSent { reason, permanent }) => {
            let schedule = &app.outbound.settings.mail_retry_schedule;
            let wait = (!permanent)
                .then(|| schedule.get(usize::try_from(mail.attempts).unwrap_or(usize::MAX)))
                .flatten()
                .and_then(|w| chrono::Duration::from_std(*w).ok());
            let (state, next) = match wait {
                Some(wait) => ("queued", now + wait),
                None => ("failed", now),
            };
            tracing::warn!(mail = %mail.id, %reason, state, "a mail was not sent");
            sqlx::query(
                "UPDATE mail_outbox SET state = $2, next_attempt_at = $3, last_error = $4,
                        attempts = attempts + 1
                  WHERE id = $1",
            )
            .bind(mail.id)
            .bind(state)
            .bind(next)
            .bind(reason)
            .execute(&app.pool)
            .await?;
            app.metrics.mail_sent(if state == "failed" {
                "failed"
            } else {
                "deferred"
            });
        }
    }
    Ok(())
}

/// Queues a failed (or any) mail again, with its retries afresh (administrators).
pub async fn retry(app: &App, caller: &Caller, id: Uuid) -> Result<(), AppError> {
    caller.require(Permission::ManageIntegrations, "retry mail")?;
    let queued = sqlx::query(
        "UPDATE mail_outbox SET state = 'queued', next_attempt_at = now(), attempts = 0
          WHERE id = $1 AND state <> 'sent'",
    )
    .bind(id)
    .execute(&app.pool)
    .await?;
    if queued.rows_affected() == 0 {
        return Err(AppError::NotFound("unsent mail"));
    }
    app.outbound.mail_wake.notify_one();
    Ok(())
}
