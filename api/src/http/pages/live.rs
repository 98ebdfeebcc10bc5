//! What a page tells others while it is open: that its viewer has the ticket open (staff), and
//! that they are typing a reply. Both are ephemeral messages on the live stream, never events.
//! And a fresh stream address for a page whose stream token has run out.

use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{IntoResponse, Request, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::{PageError, Visitor, respond, signed_in};
use crate::app::{AppError, SharedApp};

/// The signed-in visitor telling others about `ticket`, which they may watch.
async fn watcher(
    req: &Request,
    app: &SharedApp,
    ticket: Uuid,
    csrf: &str,
) -> Result<Visitor, PageError> {
    let visitor = signed_in(req, app).await?;
    visitor.check_csrf(csrf)?;
    if !app.live.may_watch(visitor.caller(), ticket).await {
        return Err(PageError::App(AppError::NotFound("ticket")));
    }
    Ok(visitor)
}

#[derive(Debug, Deserialize)]
pub struct HereForm {
    #[serde(default)]
    csrf: String,
    /// `here` while the page is open, `left` when it closes.
    #[serde(default)]
    status: String,
}

/// A page's "I have this ticket open" (every few seconds), or "I left".
#[poem::handler]
pub async fn here(
    req: &Request,
    app: Data<&SharedApp>,
    Path(ticket): Path<Uuid>,
    Form(form): Form<HereForm>,
) -> Response {
    respond(
        async {
            let visitor = watcher(req, &app, ticket, &form.csrf).await?;
            let here = form.status != "left";
            app.live
                .viewing(visitor.caller(), ticket, here)
                .await
                .map_err(AppError::from)?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
pub struct TypingForm {
    #[serde(default)]
    csrf: String,
    /// `true` while writing an internal note (only staff are then told).
    #[serde(default)]
    internal: String,
}

/// "I am typing a reply" (sent at most every few seconds while keys are pressed).
#[poem::handler]
pub async fn typing(
    req: &Request,
    app: Data<&SharedApp>,
    Path(ticket): Path<Uuid>,
    Form(form): Form<TypingForm>,
) -> Response {
    respond(
        async {
            let visitor = watcher(req, &app, ticket, &form.csrf).await?;
            let internal = form.internal == "true";
            app.live
                .typing(visitor.caller(), ticket, internal)
                .await
                .map_err(AppError::from)?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}

/// A fresh address for the page's live stream: its token lasts minutes, the page may stay open
/// for hours.
#[poem::handler]
pub async fn stream_address(req: &Request, app: Data<&SharedApp>) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            Ok(Response::builder()
                .content_type("text/plain; charset=utf-8")
                .body(visitor.stream_address(&app)?))
        }
        .await,
    )
}
