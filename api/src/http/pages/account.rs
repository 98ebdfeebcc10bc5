//! Sign in, sign out and register: the same account services as `/api/auth`, with a session
//! cookie instead of tokens.

use askama::Template;
use docket_domain::Role;
use poem::http::{StatusCode, header};
use poem::web::{Data, Form};
use poem::{Request, Response};
use serde::Deserialize;

use super::{
    Chrome, CsrfForm, PageError, html, respond, see_other, session_cookie, signed_in, visitor,
};
use crate::app::accounts::{self, NewAccount, passwords::Password, sessions};
use crate::app::{AppError, Origin, SharedApp};
use docket_domain::user::Registration;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    email: String,
    error: Option<String>,
}

fn login_page(email: String, error: Option<String>) -> Result<Response, PageError> {
    let page = LoginPage {
        chrome: Chrome::anonymous(),
        email,
        error,
    };
    Ok(html(StatusCode::OK, page.render()?))
}

#[poem::handler]
pub async fn login_form(req: &Request, app: Data<&SharedApp>) -> Response {
    respond(
        async {
            if visitor(req, &app).await?.is_some() {
                return Ok(see_other("/"));
            }
            login_page(String::new(), None)
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// Signs in; a wrong e-mail or password shows beside the fields, the e-mail kept.
#[poem::handler]
pub async fn login(req: &Request, app: Data<&SharedApp>, Form(form): Form<LoginForm>) -> Response {
    respond(
        async {
            if form.email.trim().is_empty() || form.password.is_empty() {
                return login_page(
                    form.email,
                    Some("Enter your e-mail and your password.".into()),
                );
            }
            match sessions::sign_in(&app, &form.email, form.password).await {
                Ok(opened) => {
                    let mut response = see_other("/");
                    if let Ok(value) = session_cookie(req, Some(&opened.token)).parse() {
                        response.headers_mut().insert(header::SET_COOKIE, value);
                    }
                    Ok(response)
                }
                Err(AppError::Unauthenticated(reason)) => {
                    login_page(form.email, Some(format!("Could not sign in: {reason}.")))
                }
                Err(other) => Err(other.into()),
            }
        }
        .await,
    )
}

/// Signs out: the session is revoked on the server, and the cookie removed.
#[poem::handler]
pub async fn logout(req: &Request, app: Data<&SharedApp>, Form(form): Form<CsrfForm>) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            sessions::sign_out(&app, &visitor.token).await?;
            let mut response = see_other("/login");
            if let Ok(value) = session_cookie(req, None).parse() {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            Ok(response)
        }
        .await,
    )
}

/// One field of the registration form, with what was typed and what is wrong with it.
struct Field {
    name: &'static str,
    label: &'static str,
    kind: &'static str,
    autocomplete: &'static str,
    value: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage {
    chrome: Chrome,
    fields: Vec<Field>,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    full_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

fn register_page(
    form: &RegisterForm,
    failed: Option<(String, String)>,
) -> Result<Response, PageError> {
    let error_for = |name: &str| {
        failed
            .as_ref()
            .filter(|(field, _)| field == name)
            .map(|(_, reason)| reason.clone())
    };
    let fields = vec![
        Field {
            name: "full_name",
            label: "Your name",
            kind: "text",
            autocomplete: "name",
            value: form.full_name.clone(),
            error: error_for("full_name"),
        },
        Field {
            name: "email",
            label: "E-mail",
            kind: "email",
            autocomplete: "email",
            value: form.email.clone(),
            error: error_for("email"),
        },
        Field {
            name: "password",
            label: "Password (at least 8 characters)",
            kind: "password",
            autocomplete: "new-password",
            // A password is never sent back into a page.
            value: String::new(),
            error: error_for("password"),
        },
    ];
    let known = ["full_name", "email", "password"];
    let error = failed
        .as_ref()
        .filter(|(field, _)| !known.contains(&field.as_str()))
        .map(|(_, reason)| reason.clone());
    let page = RegisterPage {
        chrome: Chrome::anonymous(),
        fields,
        error,
    };
    Ok(html(StatusCode::OK, page.render()?))
}

#[poem::handler]
pub async fn register_form() -> Response {
    respond(register_page(&RegisterForm::default(), None))
}

/// Customers register themselves, as through the API, and are signed in at once.
#[poem::handler]
pub async fn register(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Form(form): Form<RegisterForm>,
) -> Response {
    respond(
        async {
            let refused = |field: &str, reason: String| {
                register_page(&form, Some((field.to_string(), reason)))
            };
            let full_name = match docket_domain::values::FullName::parse(&form.full_name) {
                Ok(name) => name,
                Err(e) => return refused("full_name", e.reason),
            };
            let email = match docket_domain::values::Email::parse(&form.email) {
                Ok(email) => email,
                Err(e) => return refused("email", e.reason),
            };
            let password = match Password::parse("password", &form.password) {
                Ok(password) => password,
                Err(AppError::Invalid { reason, .. }) => return refused("password", reason),
                Err(other) => return Err(other.into()),
            };
            let account = NewAccount {
                email,
                password: Some(password),
                full_name,
                role: Role::Customer,
                registration: Registration::SelfService,
                service: false,
            };
            match accounts::register(&app, account, origin.metadata(None)).await {
                Ok(_) => {}
                Err(AppError::Conflict { detail, .. }) => return refused("email", detail),
                Err(AppError::Invalid { field, reason }) => return refused(&field, reason),
                Err(other) => return Err(other.into()),
            }
            let opened = sessions::sign_in(&app, &form.email, form.password.clone()).await?;
            let mut response = see_other("/portal");
            if let Ok(value) = session_cookie(req, Some(&opened.token)).parse() {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            Ok(response)
        }
        .await,
    )
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    chrome: Chrome,
    error: Option<(&'static str, String)>,
}

impl PasswordPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        self.error
            .as_ref()
            .filter(|(f, _)| *f == field)
            .map(|(_, reason)| reason.as_str())
    }
}

#[poem::handler]
pub async fn password_form(req: &Request, app: Data<&SharedApp>) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            let page = PasswordPage {
                chrome: visitor.chrome(&app, false)?,
                error: None,
            };
            Ok(html(StatusCode::OK, page.render()?))
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

/// Changes the signed-in person's password. Every session of the account ends with the old
/// password, this one included: they sign in again with the new one.
#[poem::handler]
pub async fn change_password(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Form(form): Form<PasswordForm>,
) -> Response {
    respond(
        async {
            let visitor = signed_in(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            let refused = |field: &'static str, reason: String| -> Result<Response, PageError> {
                let page = PasswordPage {
                    chrome: visitor.chrome(&app, false)?,
                    error: Some((field, reason)),
                };
                Ok(html(StatusCode::OK, page.render()?))
            };
            let new = match Password::parse("new_password", &form.new_password) {
                Ok(password) => password,
                Err(AppError::Invalid { reason, .. }) => return refused("new_password", reason),
                Err(other) => return Err(other.into()),
            };
            let actor = visitor.caller().actor();
            let metadata = origin.metadata(Some(actor));
            match accounts::change_password(
                &app,
                actor,
                form.current_password.clone(),
                new,
                metadata,
            )
            .await
            {
                Ok(()) => {}
                Err(AppError::Invalid { reason, .. }) => {
                    return refused(
                        "current_password",
                        format!("The current password {reason}."),
                    );
                }
                Err(other) => return Err(other.into()),
            }
            let mut response = see_other("/login");
            if let Ok(value) = session_cookie(req, None).parse() {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            Ok(response)
        }
        .await,
    )
}
