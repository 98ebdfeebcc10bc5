//! E-mail: templates (`/api/email-templates`, administrators), the outbox (`/api/outbox`) and
//! replies coming in by mail (`/api/inbound/email`, a mail gateway with the inbound token).

use docket_domain::mail::{MailKind, Template};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;
use uuid::Uuid;

use crate::app::outbound::inbound::{self, InboundView, Received};
use crate::app::outbound::mail::{self, OutboxMail, OutboxView, TemplateView};
use crate::app::{AppError, Origin, SharedApp};
use crate::http::credentials::bearer_token;
use crate::http::json::JsonBody;
use crate::http::paging::{Page, Paging};
use crate::http::principal::SignedIn;
use crate::http::problem::ApiError;
use crate::http::wire::{Timestamp, default_page, default_page_size};
use crate::http::{ApiTags, etag};

#[derive(Debug, Clone, Object)]
pub struct EmailTemplateDto {
    /// `ticket_created`, `ticket_assigned`, `public_reply`, `status_changed`, `sla_warning`,
    /// `sla_breached`, `escalated` or `report`.
    pub kind: String,
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part (what it shows is escaped).
    pub html: String,
    /// Edited here (`false`: the template Docket ships).
    pub custom: bool,
    /// What the template may use, such as `ticket.number`; anything else is refused on save.
    pub variables: Vec<String>,
    pub version: i64,
}

impl From<TemplateView> for EmailTemplateDto {
    fn from(view: TemplateView) -> Self {
        Self {
            kind: view.kind.as_str().to_string(),
            subject: view.template.subject,
            text: view.template.text,
            html: view.template.html,
            custom: view.custom,
            variables: view.variables.iter().map(|v| v.to_string()).collect(),
            version: view.version,
        }
    }
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct SetTemplateRequest {
    /// A minijinja template, one line; at most 20,000 characters.
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// The ticket to render it for, as it is now.
    pub ticket_id: Uuid,
    /// A draft's subject to render instead of the one in force (checked as a save would be).
    pub subject: Option<String>,
    /// A draft's plain-text part.
    pub text: Option<String>,
    /// A draft's HTML part.
    pub html: Option<String>,
}

#[derive(Debug, Clone, Object)]
pub struct RenderedDto {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, Clone, Object)]
pub struct OutboxDto {
    pub id: Uuid,
    pub kind: String,
    pub ticket_id: Option<Uuid>,
    pub recipient_id: Option<Uuid>,
    pub to: String,
    /// As last rendered (absent until a first attempt).
    pub subject: Option<String>,
    /// `queued`, `sent` or `failed`.
    pub state: String,
    pub attempts: i32,
    /// When a queued mail is tried next.
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    /// `Message-ID` of the mail (the same on every attempt).
    pub message_id: String,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
}

impl From<OutboxView> for OutboxDto {
    fn from(m: OutboxView) -> Self {
        Self {
            message_id: m.message_id,
            id: m.id,
            kind: m.kind,
            ticket_id: m.ticket_id,
            recipient_id: m.recipient_id,
            to: m.to_address,
            subject: m.subject,
            state: m.state,
            attempts: m.attempts,
            next_attempt_at: m.next_attempt_at.into(),
            last_error: m.last_error,
            created_at: m.created_at.into(),
            sent_at: m.sent_at.map(Timestamp),
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct OutboxMailDto {
    #[oai(flatten)]
    pub mail: OutboxDto,
    /// The plain-text part: as sent, or as it would go out now.
    pub text: Option<String>,
    /// The HTML part: as sent, or as it would go out now.
    pub html: Option<String>,
    /// Why it cannot be rendered now (its template is broken for it, for instance).
    pub render_error: Option<String>,
    /// `In-Reply-To` and `References`: the ticket's thread.
    pub thread: Option<String>,
}

impl From<OutboxMail> for OutboxMailDto {
    fn from(found: OutboxMail) -> Self {
        let (text, html, render_error) = match found.content {
            Ok(rendered) => (Some(rendered.text), Some(rendered.html), None),
            Err(reason) => (None, None, Some(reason)),
        };
        Self {
            mail: found.mail.into(),
            text,
            html,
            render_error,
            thread: found.thread,
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct InboundMailDto {
    pub id: Uuid,
    pub received_at: Timestamp,
    pub from: Option<String>,
    pub subject: Option<String>,
    pub message_id: Option<String>,
    pub ticket_id: Option<Uuid>,
    pub comment_id: Option<Uuid>,
    /// `commented` or `refused`.
    pub outcome: String,
    /// Why it was refused.
    pub reason: Option<String>,
}

impl From<InboundView> for InboundMailDto {
    fn from(m: InboundView) -> Self {
        Self {
            id: m.id,
            received_at: m.received_at.into(),
            from: m.from_address,
            subject: m.subject,
            message_id: m.message_id,
            ticket_id: m.ticket_id,
            comment_id: m.comment_id,
            outcome: m.outcome,
            reason: m.reason,
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct InboundDto {
    /// `commented`.
    pub outcome: String,
    pub ticket_id: Uuid,
    pub comment_id: Uuid,
    /// The ticket's version with the comment (read it back with `min_version`); absent when
    /// the same message came in before and this is its first answer again.
    pub ticket_version: Option<i64>,
}

#[derive(ApiResponse)]
pub enum TemplateFound {
    #[oai(status = 200)]
    Ok(Json<EmailTemplateDto>, #[oai(header = "ETag")] String),
}

#[derive(ApiResponse)]
pub enum Commented {
    /// The reply is a public comment on its ticket, written as its sender.
    #[oai(status = 201)]
    Created(Json<InboundDto>, #[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
pub enum Retried {
    /// Queued again.
    #[oai(status = 202)]
    Accepted,
}

fn kind_of(raw: &str) -> Result<MailKind, ApiError> {
    raw.parse::<MailKind>()
        .map_err(|_| ApiError::not_found("kind of mail"))
}

fn found(view: TemplateView) -> TemplateFound {
    let tag = etag(view.version);
    TemplateFound::Ok(Json(view.into()), tag)
}

#[derive(Default)]
pub struct MailApi;

#[OpenApi(tag = "ApiTags::Mail")]
impl MailApi {
    /// Every kind's template in force (administrators).
    #[oai(
        path = "/api/email-templates",
        method = "get",
        operation_id = "list_email_templates"
    )]
    async fn list(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
    ) -> Result<Json<Vec<EmailTemplateDto>>, ApiError> {
        let mut all = Vec::new();
        for kind in MailKind::ALL {
            all.push(mail::get_template(&app, &auth.0, *kind).await?.into());
        }
        Ok(Json(all))
    }

    /// One kind's template in force (administrators).
    #[oai(
        path = "/api/email-templates/:kind",
        method = "get",
        operation_id = "get_email_template"
    )]
    async fn get(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        kind: Path<String>,
    ) -> Result<TemplateFound, ApiError> {
        Ok(found(
            mail::get_template(&app, &auth.0, kind_of(&kind.0)?).await?,
        ))
    }

    /// Edit a kind's template (administrators). It is checked first: a variable the kind does
    /// not have (see `variables`), broken syntax, or a render that takes too much work is a 422
    /// naming `subject`, `text` or `html`.
    #[oai(
        path = "/api/email-templates/:kind",
        method = "put",
        operation_id = "set_email_template"
    )]
    async fn set(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        kind: Path<String>,
        body: JsonBody<SetTemplateRequest>,
    ) -> Result<TemplateFound, ApiError> {
        let request = body.0;
        let template = Template {
            subject: request.subject,
            text: request.text,
            html: request.html,
        };
        let view = mail::set_template(&app, &auth.0, &origin, kind_of(&kind.0)?, template).await?;
        Ok(found(view))
    }

    /// Bring back the template Docket ships (administrators).
    #[oai(
        path = "/api/email-templates/:kind",
        method = "delete",
        operation_id = "reset_email_template"
    )]
    async fn reset(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        kind: Path<String>,
    ) -> Result<TemplateFound, ApiError> {
        let view = mail::reset_template(&app, &auth.0, &origin, kind_of(&kind.0)?).await?;
        Ok(found(view))
    }

    /// Render a kind's template for a ticket as it is now, addressed to you: nothing is sent or
    /// saved. Parts given in the request are a draft rendered in place of those in force.
    #[oai(
        path = "/api/email-templates/:kind/preview",
        method = "post",
        operation_id = "preview_email_template"
    )]
    async fn preview(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        kind: Path<String>,
        body: JsonBody<PreviewRequest>,
    ) -> Result<Json<RenderedDto>, ApiError> {
        let kind = kind_of(&kind.0)?;
        let request = body.0;
        let draft = if request.subject.is_some() || request.text.is_some() || request.html.is_some()
        {
            let current = mail::get_template(&app, &auth.0, kind).await?.template;
            Some(Template {
                subject: request.subject.unwrap_or(current.subject),
                text: request.text.unwrap_or(current.text),
                html: request.html.unwrap_or(current.html),
            })
        } else {
            None
        };
        let rendered = mail::preview(&app, &auth.0, kind, request.ticket_id, draft).await?;
        Ok(Json(RenderedDto {
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
        }))
    }

    /// The outbox, newest first (administrators): every mail queued, sent or failed. Without
    /// `DOCKET_SMTP_URL`, mail waits here.
    #[oai(path = "/api/outbox", method = "get", operation_id = "list_outbox")]
    async fn outbox(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        /// Only `queued`, `sent` or `failed` mail.
        state: Query<Option<String>>,
        /// 1-based page number.
        #[oai(
            default = "default_page",
            validator(minimum(value = "1"), maximum(value = "1000000"))
        )]
        page: Query<i64>,
        /// Items per page, at most 100.
        #[oai(
            default = "default_page_size",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        page_size: Query<i64>,
    ) -> Result<Json<Page<OutboxDto>>, ApiError> {
        if let Some(state) = state.0.as_deref()
            && !matches!(state, "queued" | "sent" | "failed")
        {
            return Err(ApiError::InvalidParameter {
                field: "state".into(),
                detail: "must be queued, sent or failed".into(),
            });
        }
        let (found, total) =
            mail::outbox(&app, &auth.0, state.0.as_deref(), page.0, page_size.0).await?;
        Ok(Json(Page::read(
            found,
            total,
            Paging::new(page.0, page_size.0),
        )))
    }

    /// One mail with what it says (administrators): as it went out, or, while it waits, as it
    /// would go out now.
    #[oai(
        path = "/api/outbox/:id",
        method = "get",
        operation_id = "get_outbox_mail"
    )]
    async fn outbox_mail(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        id: Path<Uuid>,
    ) -> Result<Json<OutboxMailDto>, ApiError> {
        Ok(Json(mail::outbox_mail(&app, &auth.0, id.0).await?.into()))
    }

    /// Queue a mail that was not sent again, its retries afresh (administrators).
    #[oai(
        path = "/api/outbox/:id/retry",
        method = "post",
        operation_id = "retry_mail"
    )]
    async fn retry(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        id: Path<Uuid>,
    ) -> Result<Retried, ApiError> {
        mail::retry(&app, &auth.0, id.0).await?;
        Ok(Retried::Accepted)
    }

    /// Every message that came in by mail and what became of it, newest first (administrators).
    #[oai(
        path = "/api/inbound/email",
        method = "get",
        operation_id = "list_inbound_email"
    )]
    async fn inbound_log(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        /// 1-based page number.
        #[oai(
            default = "default_page",
            validator(minimum(value = "1"), maximum(value = "1000000"))
        )]
        page: Query<i64>,
        /// Items per page, at most 100.
        #[oai(
            default = "default_page_size",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        page_size: Query<i64>,
    ) -> Result<Json<Page<InboundMailDto>>, ApiError> {
        let (found, total) = inbound::log(&app, &auth.0, page.0, page_size.0).await?;
        Ok(Json(Page::read(
            found,
            total,
            Paging::new(page.0, page_size.0),
        )))
    }

    /// A reply by e-mail, as raw RFC 5322 (from an MTA pipe or a mail provider's webhook),
    /// with `DOCKET_INBOUND_TOKEN` in `Authorization: Bearer` or `X-Inbound-Token`. It becomes a
    /// public comment on the ticket its `References` or subject (`[TKT-000051]`) names, as its
    /// sender, when the sender is the ticket's customer or staff; otherwise it is refused
    /// (422) and recorded.
    #[oai(
        path = "/api/inbound/email",
        method = "post",
        operation_id = "inbound_email"
    )]
    async fn inbound(
        &self,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        request: &Request,
        // Any content type is taken (`message/rfc822` as MTAs send it); the document names
        // `application/octet-stream` because generated clients know it.
        body: Binary<Vec<u8>>,
    ) -> Result<Commented, ApiError> {
        let token = request
            .headers()
            .get("x-inbound-token")
            .and_then(|v| v.to_str().ok())
            .or_else(|| bearer_token(request));
        inbound::authenticate(&app, token)?;
        let raw = body.0;
        match inbound::receive(&app, &origin, &raw).await? {
            Received::Commented {
                ticket_id,
                comment_id,
                ticket_version,
            } => Ok(Commented::Created(
                Json(InboundDto {
                    outcome: "commented".into(),
                    ticket_id,
                    comment_id,
                    ticket_version,
                }),
                format!("/api/tickets/{ticket_id}/comments/{comment_id}"),
            )),
            Received::Refused { reason } => Err(AppError::invalid("message", reason).into()),
        }
    }
}
