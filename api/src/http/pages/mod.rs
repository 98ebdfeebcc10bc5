//! The web app: pages rendered on the server (askama templates in `api/templates/`), enhanced
//! with vendored htmx and `app.js`, every asset embedded in the binary. Handlers are as thin as
//! the API's: they read a form or a query, call the same `app/` services, and render.
//!
//! Sign-in is a session cookie (`HttpOnly`, `SameSite=Strict`, `Secure` behind TLS); every form
//! of a session carries its CSRF token; every page carries a strict Content-Security-Policy.

mod account;
mod alerts;
mod charts;
mod dashboard;
mod directory;
mod keys;
mod live;
mod notices;
mod people;
mod settings;
mod tickets;
mod work;

use askama::Template;
use poem::http::{HeaderValue, StatusCode, header};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route};

use crate::app::accounts::sessions::{self, Session};
use crate::app::{AppError, Caller, SharedApp};
use crate::http::context::TrustForwardedFor;

/// The cookie that holds a session's token.
const SESSION_COOKIE: &str = "docket_session";

/// No inline script or style, nothing from elsewhere, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; \
     base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// The pages' routes, to be mounted beside the API.
pub fn routes() -> Route {
    Route::new()
        .at("/", poem::get(tickets::home))
        .at(
            "/login",
            poem::get(account::login_form).post(account::login),
        )
        .at("/logout", poem::post(account::logout))
        .at(
            "/account/password",
            poem::get(account::password_form).post(account::change_password),
        )
        .at(
            "/account/api-keys",
            poem::get(keys::key_settings).post(keys::make_key),
        )
        .at("/account/api-keys/:id/revoke", poem::post(keys::revoke_key))
        .at(
            "/register",
            poem::get(account::register_form).post(account::register),
        )
        .at("/dashboard", poem::get(dashboard::dashboard))
        .at(
            "/dashboard/numbers",
            poem::get(dashboard::dashboard_numbers),
        )
        .at("/dashboard/rebalance", poem::post(dashboard::run_rebalance))
        .at("/work", poem::get(work::work))
        .at("/work/rows", poem::get(tickets::my_rows))
        .at("/work/claim/:ticket", poem::post(work::claim))
        .at("/work/status", poem::post(work::set_status))
        .at("/work/shift/start", poem::post(work::start_shift))
        .at("/work/shift/:shift/end", poem::post(work::end_shift))
        .at("/work/shift/:shift/break", poem::post(work::take_break))
        .at(
            "/settings/sla",
            poem::get(settings::sla_settings).post(settings::add_policy),
        )
        .at("/settings/sla/:id", poem::post(settings::edit_policy))
        .at(
            "/settings/calendars",
            poem::get(settings::calendar_settings).post(settings::add_calendar),
        )
        .at(
            "/settings/calendars/:id/holidays",
            poem::post(settings::add_holiday),
        )
        .at(
            "/settings/escalation-rules",
            poem::get(settings::rule_settings).post(settings::add_rule),
        )
        .at(
            "/settings/escalation-rules/:id/enabled",
            poem::post(settings::toggle_rule),
        )
        .at(
            "/settings/users",
            poem::get(settings::user_settings).post(settings::add_user),
        )
        .at("/settings/users/:id", poem::post(settings::change_user))
        .at(
            "/settings/webhooks",
            poem::get(settings::webhook_settings).post(settings::add_webhook),
        )
        .at(
            "/settings/webhooks/:id",
            poem::get(settings::webhook_deliveries),
        )
        .at(
            "/settings/webhooks/:id/enabled",
            poem::post(settings::switch_webhook),
        )
        .at(
            "/settings/webhooks/:id/test",
            poem::post(settings::test_webhook),
        )
        .at(
            "/settings/webhooks/:id/rotate",
            poem::post(settings::rotate_webhook),
        )
        .at(
            "/settings/webhooks/:id/delete",
            poem::post(settings::delete_webhook),
        )
        .at(
            "/settings/webhooks/:id/deliveries/:delivery/redeliver",
            poem::post(settings::redeliver),
        )
        .at(
            "/settings/automations",
            poem::get(settings::automation_settings),
        )
        .at(
            "/settings/automations/new",
            poem::get(settings::new_automation).post(settings::add_automation),
        )
        .at(
            "/settings/automations/:id",
            poem::get(settings::automation).post(settings::change_automation),
        )
        .at("/settings/email", poem::get(settings::email_settings))
        .at(
            "/settings/email/templates/:kind",
            poem::get(settings::email_template).post(settings::change_email_template),
        )
        .at("/settings/email/outbox", poem::get(settings::outbox))
        .at(
            "/settings/email/outbox/:id",
            poem::get(settings::outbox_mail),
        )
        .at(
            "/settings/email/outbox/:id/retry",
            poem::post(settings::retry_mail),
        )
        .at("/people", poem::get(people::people))
        .at("/people/:agent/capacity", poem::post(people::set_capacity))
        .at("/people/:agent/skills", poem::post(people::set_skills))
        .at("/people/skills", poem::post(people::create_skill))
        .at("/people/teams", poem::post(people::create_team))
        .at(
            "/people/teams/:team/members",
            poem::post(people::add_member),
        )
        .at(
            "/people/teams/:team/members/:user/remove",
            poem::post(people::remove_member),
        )
        .at("/tickets", poem::get(tickets::list))
        .at("/tickets/rows", poem::get(tickets::rows))
        .at("/tickets/suggest", poem::get(tickets::suggest))
        .at("/tickets/saved", poem::post(tickets::save_search))
        .at(
            "/tickets/saved/:id/delete",
            poem::post(tickets::delete_search),
        )
        .at("/tickets/:id", poem::get(tickets::show))
        .at(
            "/tickets/:id/conversation",
            poem::get(tickets::conversation),
        )
        .at("/tickets/:id/side", poem::get(tickets::side))
        .at("/tickets/:id/record", poem::get(tickets::record))
        .at("/tickets/:id/sla", poem::get(tickets::sla_part))
        .at("/tickets/:id/here", poem::post(live::here))
        .at("/tickets/:id/typing", poem::post(live::typing))
        .at("/portal/tickets/:id/typing", poem::post(live::typing))
        .at("/live/stream", poem::get(live::stream_address))
        .at("/tickets/:id/comments", poem::post(tickets::reply))
        .at("/tickets/:id/status", poem::post(tickets::change_status))
        .at(
            "/tickets/:id/priority",
            poem::post(tickets::change_priority),
        )
        .at("/tickets/:id/assign", poem::post(tickets::assign))
        .at("/tickets/:id/team", poem::post(tickets::set_team))
        .at("/tickets/:id/escalate", poem::post(tickets::escalate))
        .at("/tickets/:id/follow", poem::post(tickets::follow))
        .at("/alerts", poem::get(alerts::alerts_page))
        .at("/alerts/list", poem::get(alerts::alerts_list))
        .at("/alerts/badge", poem::get(alerts::alerts_badge))
        .at("/alerts/:id", poem::post(alerts::answer))
        .at("/notifications", poem::get(notices::notices))
        .at("/notifications/read-all", poem::post(notices::read_all))
        .at("/notifications/:id/read", poem::post(notices::read_one))
        .at(
            "/account/notifications",
            poem::get(notices::notification_settings).post(notices::save_preferences),
        )
        .at("/portal", poem::get(tickets::portal))
        .at("/portal/rows", poem::get(tickets::portal_rows))
        .at(
            "/portal/new",
            poem::get(tickets::new_form).post(tickets::open),
        )
        .at("/portal/tickets/:id", poem::get(tickets::show))
        .at(
            "/portal/tickets/:id/conversation",
            poem::get(tickets::conversation),
        )
        .at("/portal/tickets/:id/side", poem::get(tickets::side))
        .at("/portal/tickets/:id/comments", poem::post(tickets::reply))
        .at("/assets/:file", poem::get(asset))
}

/// Security headers on every page, asset and redirect of the web app.
pub fn with_security_headers<E: Endpoint>(pages: E) -> impl Endpoint {
    pages.map_to_response().after(|response| async move {
        let mut response = response?;
        let headers = response.headers_mut();
        for (name, value) in [
            ("content-security-policy", CONTENT_SECURITY_POLICY),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer"),
            ("x-frame-options", "DENY"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        headers
            .entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
        Ok(response)
    })
}

// ---- assets --------------------------------------------------------------------------------

/// Every asset, embedded at build time: htmx (pinned, vendored), the CSS and `app.js`.
#[derive(rust_embed::Embed)]
#[folder = "assets/"]
struct Assets;

#[poem::handler]
fn asset(poem::web::Path(file): poem::web::Path<String>) -> Response {
    let Some(content) = Assets::get(&file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let kind = match file.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("txt") => "text/plain; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    };
    Response::builder()
        .content_type(kind)
        // Pinned file names (`htmx-2.0.4.min.js`) change when their content does; ours are small.
        .header(header::CACHE_CONTROL, "public, max-age=300")
        .body(content.data.into_owned())
}

// ---- what every page shows -------------------------------------------------------------------

/// The header of every page: who is signed in, the session's CSRF token for its forms, and
/// the live stream the page listens to.
pub struct Chrome {
    pub user: Option<NavUser>,
    pub csrf: String,
    pub stream: Option<String>,
}

pub struct NavUser {
    pub name: String,
    pub role: String,
    pub staff: bool,
    /// Sees the dashboard.
    pub manages: bool,
    /// Works tickets (has "My work").
    pub works: bool,
    /// Unread notifications (the bell).
    pub unread: i64,
    /// Active alerts (staff).
    pub alerts: i64,
}

impl Chrome {
    /// For someone not signed in.
    pub fn anonymous() -> Self {
        Self {
            user: None,
            csrf: String::new(),
            stream: None,
        }
    }
}

/// A signed-in request: the session and the cookie's token.
pub struct Visitor {
    pub session: Session,
    pub token: String,
    /// Their unread notifications, for the bell.
    pub unread: i64,
    /// Active alerts, for staff.
    pub alerts: i64,
}

impl Visitor {
    pub fn caller(&self) -> &Caller {
        &self.session.caller
    }

    /// The page chrome, with a live stream when the page is live.
    pub fn chrome(&self, app: &SharedApp, live: bool) -> Result<Chrome, PageError> {
        let caller = self.caller();
        let stream = if live {
            Some(self.stream_address(app)?)
        } else {
            None
        };
        Ok(Chrome {
            user: Some(NavUser {
                name: caller.full_name.as_str().to_string(),
                role: caller.role.as_str().to_string(),
                staff: caller.is_staff(),
                manages: caller.role.may(docket_domain::access::Permission::Manage),
                works: caller
                    .role
                    .may(docket_domain::access::Permission::WorkTickets),
                unread: self.unread,
                alerts: self.alerts,
            }),
            csrf: self.session.csrf_token.clone(),
            stream,
        })
    }

    /// The address of the live stream for this visitor, with a short-lived token.
    pub fn stream_address(&self, app: &SharedApp) -> Result<String, PageError> {
        let token = sessions::stream_token(app, self.caller())?;
        Ok(format!("/api/events/stream?access_token={token}"))
    }

    /// Refuses a form that does not carry the session's CSRF token.
    pub fn check_csrf(&self, sent: &str) -> Result<(), PageError> {
        let expected = self.session.csrf_token.as_bytes();
        let same = expected.len() == sent.len()
            && expected
                .iter()
                .zip(sent.as_bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if same { Ok(()) } else { Err(PageError::Csrf) }
    }
}

fn cookie<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Every value of a select or a set of boxes, by name, with the chosen ones marked.
pub fn options<T: Copy + PartialEq>(
    all: &[T],
    chosen: &[T],
    name: impl Fn(T) -> &'static str,
) -> Vec<(&'static str, bool)> {
    all.iter().map(|v| (name(*v), chosen.contains(v))).collect()
}

/// A select's value: empty for none, otherwise an id from its list.
pub fn picked(typed: &str, what: &str) -> Result<Option<uuid::Uuid>, String> {
    match typed.trim() {
        "" => Ok(None),
        typed => typed
            .parse()
            .map(Some)
            .map_err(|_| format!("Choose {what} from the list.")),
    }
}

/// A form that carries nothing but the session's CSRF token (a button).
#[derive(Debug, serde::Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// The signed-in visitor, if the request's cookie names an open session of an active account.
pub async fn visitor(req: &Request, app: &SharedApp) -> Result<Option<Visitor>, PageError> {
    let Some(token) = cookie(req, SESSION_COOKIE).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let Some(session) = sessions::find(app, token).await? else {
        return Ok(None);
    };
    let unread = crate::app::notifications::unread_count(app, &session.caller).await?;
    let alerts = if session.caller.is_staff() {
        crate::app::alerts::unanswered(app).await?
    } else {
        0
    };
    Ok(Some(Visitor {
        session,
        token: token.to_string(),
        unread,
        alerts,
    }))
}

/// The signed-in visitor, or a redirect to the sign-in page.
pub async fn signed_in(req: &Request, app: &SharedApp) -> Result<Visitor, PageError> {
    visitor(req, app).await?.ok_or(PageError::SignIn)
}

/// `Set-Cookie` for a session (or, with no token, its removal).
fn session_cookie(req: &Request, token: Option<&str>) -> String {
    let behind_tls = req.data::<TrustForwardedFor>().is_some_and(|trust| trust.0)
        && req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
    let secure = if behind_tls { "; Secure" } else { "" };
    match token {
        Some(token) => format!(
            "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            sessions::SESSION_LIFETIME.num_seconds()
        ),
        None => format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

// ---- answers -------------------------------------------------------------------------------

/// What a page handler can fail with; each becomes a page (or a redirect), never JSON.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("sign in first")]
    SignIn,
    #[error("the form is out of date; reload the page and try again")]
    Csrf,
    #[error(transparent)]
    App(#[from] AppError),
    #[error("the page could not be drawn")]
    Render(#[from] askama::Error),
}

/// A rendered page with its status. A form shown again with what was wrong beside its fields
/// is a page that rendered, so 200: it is the answer the person asked for, and a 4xx document
/// would make the browser log an error on every typo.
pub fn html(status: StatusCode, body: String) -> Response {
    Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .body(body)
}

/// A `303 See Other` to `location` (after a form: the browser then reads the result).
pub fn see_other(location: &str) -> Response {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, location)
        .finish()
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    title: &'a str,
    message: String,
}

/// The page for a failed request: sign-in for a missing session, otherwise a page saying what
/// went wrong in words (the cause of a fault is logged, never shown).
pub fn respond(result: Result<Response, PageError>) -> Response {
    let error = match result {
        Ok(response) => return response,
        Err(error) => error,
    };
    let (status, title, message) = match error {
        PageError::SignIn => return see_other("/login"),
        PageError::Csrf => (
            StatusCode::FORBIDDEN,
            "Form expired",
            PageError::Csrf.to_string(),
        ),
        PageError::App(AppError::NotFound(what)) => (
            StatusCode::NOT_FOUND,
            "Not found",
            format!("There is no such {what}, or it is not yours to see."),
        ),
        PageError::App(AppError::NotPermitted(detail)) => {
            (StatusCode::FORBIDDEN, "Not allowed", detail)
        }
        PageError::App(AppError::Unauthenticated(_)) => return see_other("/login"),
        PageError::App(
            AppError::ProjectionBehind | AppError::Unavailable | AppError::Contention,
        ) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again",
            "Docket is busy for a moment; reload the page.".to_string(),
        ),
        PageError::App(other) => (
            StatusCode::BAD_REQUEST,
            "That did not work",
            other.to_string(),
        ),
        PageError::Render(cause) => {
            tracing::error!(error = %cause, "a page could not be rendered");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The page could not be shown; the fault was logged.".to_string(),
            )
        }
    };
    let page = ErrorPage {
        chrome: Chrome::anonymous(),
        title,
        message,
    };
    match page.render() {
        Ok(body) => html(status, body),
        Err(_) => status.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_read_among_others() {
        let req = Request::builder()
            .header(header::COOKIE, "theme=dark; docket_session=abc123; other=1")
            .finish();
        assert_eq!(cookie(&req, SESSION_COOKIE), Some("abc123"));
        let none = Request::builder()
            .header(header::COOKIE, "theme=dark")
            .finish();
        assert_eq!(cookie(&none, SESSION_COOKIE), None);
    }

    #[test]
    fn the_session_cookie_is_http_only_and_strict() {
        let req = Request::builder().finish();
        let set = session_cookie(&req, Some("t0k"));
        assert!(set.starts_with("docket_session=t0k; Path=/; HttpOnly; SameSite=Strict"));
        assert!(
            !set.contains("Secure"),
            "plain HTTP without a trusted proxy"
        );
        assert!(session_cookie(&req, None).contains("Max-Age=0"));
    }
}
