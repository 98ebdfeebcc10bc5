//! Notifications (everyone signed in): the list with what is unread marked, marking one or all
//! read, and what each person wants to be told of, in the app and by e-mail. The header's bell
//! shows the unread count on every page and counts up live on live pages.

use askama::Template;
use docket_domain::notice::{Channel, NotificationPreferences};
use docket_domain::values::NotificationKind;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query};
use poem::{Request, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::{Chrome, CsrfForm, PageError, html, respond, see_other, signed_in};
use crate::app::notifications;
use crate::app::{Origin, SharedApp};

/// The page lists this many notifications, newest first.
const SHOWN: i64 = 100;

pub struct NoticeLine {
    id: Uuid,
    title: String,
    body: Option<String>,
    link: Option<String>,
    when: String,
    unread: bool,
    kind: String,
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct NoticesPage {
    chrome: Chrome,
    notices: Vec<NoticeLine>,
    total: i64,
    unread_only: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct NoticesQuery {
    #[serde(default)]
    unread: Option<String>,
}

/// A person's words for a kind of notification.
fn described(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::TicketCreated => {
            "A ticket of mine is opened (by e-mail also when I opened it)"
        }
        NotificationKind::Assigned => "A ticket is assigned to me",
        NotificationKind::CustomerReply => "The customer replies on a ticket I hold",
        NotificationKind::PublicReply => "Staff reply on my ticket",
        NotificationKind::StatusChanged => "Someone else changes the status of my ticket",
        NotificationKind::SlaWarning => "A ticket I hold is at risk of breaching its SLA",
        NotificationKind::SlaBreached => "A ticket I hold breached its SLA",
        NotificationKind::Escalated => "A ticket of my team is escalated (team leads)",
        NotificationKind::Mentioned => "Someone mentions me (@ and my e-mail) in a comment",
        NotificationKind::Followed => "Something happens on a ticket I follow",
        NotificationKind::WebhookDisabled => "A webhook endpoint is disabled (admins)",
        NotificationKind::Rule => "An automation rule asks me to look",
    }
}

#[poem::handler]
pub async fn notices(
    req: &Request,
    app: Data<&SharedApp>,
    Query(query): Query<NoticesQuery>,
) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            let unread_only = query.unread.is_some();
            let (found, total) =
                notifications::list(&app, visitor.caller(), unread_only, 1, SHOWN).await?;
            let base = if visitor.caller().is_staff() {
                "/tickets"
            } else {
                "/portal/tickets"
            };
            let page = NoticesPage {
                chrome: visitor.chrome(&app, true)?,
                notices: found
                    .into_iter()
                    .map(|n| NoticeLine {
                        link: n.ticket_id.map(|t| format!("{base}/{t}")),
                        title: n.title,
                        body: n.body,
                        when: n.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                        unread: n.read_at.is_none(),
                        kind: n.kind,
                        id: n.id,
                    })
                    .collect(),
                total,
                unread_only,
            };
            Ok(html(StatusCode::OK, page.render()?))
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
pub struct ReadForm {
    #[serde(default)]
    csrf: String,
    /// Where to go afterwards: the ticket it is about, or back to the list.
    #[serde(default)]
    then: String,
}

/// Marks one notification read, then goes to its ticket (or back to the list).
#[poem::handler]
pub async fn read_one(
    req: &Request,
    app: Data<&SharedApp>,
    Path(id): Path<Uuid>,
    Form(form): Form<ReadForm>,
) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            notifications::mark_read(&app, visitor.caller(), id).await?;
            // Only a path of this site: never an address elsewhere.
            let next = if form.then.starts_with('/') && !form.then.starts_with("//") {
                form.then
            } else {
                "/notifications".to_string()
            };
            Ok(see_other(&next))
        }
        .await,
    )
}

#[poem::handler]
pub async fn read_all(
    req: &Request,
    app: Data<&SharedApp>,
    Form(form): Form<CsrfForm>,
) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            notifications::mark_all_read(&app, visitor.caller()).await?;
            Ok(see_other("/notifications"))
        }
        .await,
    )
}

pub struct KindLine {
    kind: &'static str,
    label: &'static str,
    in_app: bool,
    email: bool,
}

#[derive(Template)]
#[template(path = "notification_preferences.html")]
struct PreferencesPage {
    chrome: Chrome,
    kinds: Vec<KindLine>,
    saved: bool,
}

fn preferences_page(
    chrome: Chrome,
    chosen: &NotificationPreferences,
    saved: bool,
) -> Result<Response, PageError> {
    let page = PreferencesPage {
        chrome,
        kinds: NotificationKind::ALL
            .iter()
            .map(|kind| KindLine {
                kind: kind.as_str(),
                label: described(*kind),
                in_app: chosen.wants(*kind, Channel::InApp),
                email: chosen.wants(*kind, Channel::Email),
            })
            .collect(),
        saved,
    };
    Ok(html(StatusCode::OK, page.render()?))
}

#[poem::handler]
pub async fn notification_settings(req: &Request, app: Data<&SharedApp>) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            let chosen = notifications::preferences(&app, visitor.caller()).await?;
            preferences_page(visitor.chrome(&app, false)?, &chosen, false)
        }
        .await,
    )
}

/// Saves the boxes: `in_app.<kind>` and `email.<kind>`, ticked for on.
#[poem::handler]
pub async fn save_preferences(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            let csrf = fields
                .iter()
                .find(|(n, _)| n == "csrf")
                .map_or("", |(_, v)| v.as_str());
            visitor.check_csrf(csrf)?;
            let ticked = |channel: &str, kind: NotificationKind| {
                fields
                    .iter()
                    .any(|(n, _)| *n == format!("{channel}.{}", kind.as_str()))
            };
            let off = |channel: &str| -> Vec<NotificationKind> {
                NotificationKind::ALL
                    .iter()
                    .copied()
                    .filter(|kind| !ticked(channel, *kind))
                    .collect()
            };
            let chosen = NotificationPreferences::new(&off("in_app"), &off("email"));
            let saved =
                notifications::set_preferences(&app, visitor.caller(), &origin, chosen).await?;
            preferences_page(visitor.chrome(&app, false)?, &saved, true)
        }
        .await,
    )
}
