//! Users and roles (admins): every account with its role and whether it is active, its version
//! history from the log, a role change and (de)activation per account, and a form that opens a
//! staff account.

use askama::Template;
use docket_domain::access::Permission;
use docket_domain::user::Registration;
use docket_domain::values::{Email, FullName};
use docket_domain::{Role, UserId};
use docket_projections::users::UserFilter;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{Request, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::{ChangeAuthors, ChangeLine};
use crate::app::accounts::{self, AccountChange, NewAccount, passwords::Password};
use crate::app::{AppError, Origin, SharedApp};
use crate::http::pages::{Chrome, PageError, Visitor, html, respond, see_other, signed_in};

/// The page lists this many accounts, newest first.
const SHOWN: i64 = 200;

pub struct UserLine {
    id: Uuid,
    name: String,
    email: String,
    role: &'static str,
    active: bool,
    service: bool,
    me: bool,
    roles: Vec<(&'static str, bool)>,
    history: Vec<ChangeLine>,
}

#[derive(Debug, Default, Deserialize)]
pub struct NewUserForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    full_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
    /// Ticked: a service account, with no password, for an integration's API keys.
    #[serde(default)]
    service: Option<String>,
}

#[derive(Template)]
#[template(path = "settings_users.html")]
struct UsersPage {
    chrome: Chrome,
    users: Vec<UserLine>,
    total: i64,
    form: NewUserForm,
    roles: Vec<(&'static str, bool)>,
    error: Option<(String, String)>,
    /// The account whose change was refused, and why.
    change_error: Option<(Uuid, String)>,
}

impl UsersPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        super::error_for(&self.error, field)
    }
}

async fn admin(req: &Request, app: &SharedApp) -> Result<Visitor, PageError> {
    let visitor = signed_in(req, app).await?;
    visitor
        .caller()
        .require(Permission::AdministerAccounts, "administer accounts")?;
    Ok(visitor)
}

async fn users_page(
    app: &SharedApp,
    visitor: &Visitor,
    form: NewUserForm,
    error: Option<(String, String)>,
    change_error: Option<(Uuid, String)>,
) -> Result<Response, PageError> {
    let caller = visitor.caller();
    let filter = UserFilter {
        page: 1,
        page_size: SHOWN,
        ..UserFilter::default()
    };
    let (found, total) = accounts::list(app, caller, &filter).await?;
    let mut authors = ChangeAuthors::default();
    let mut users = Vec::with_capacity(found.len());
    for user in found {
        let changes = accounts::history(app, caller, user.id).await?;
        users.push(UserLine {
            id: user.id.0,
            name: user.full_name,
            email: user.email,
            role: user.role.as_str(),
            active: user.active,
            service: user.service,
            me: user.id == caller.id,
            roles: Role::ALL
                .iter()
                .map(|r| (r.as_str(), *r == user.role))
                .collect(),
            history: authors.lines(app, changes).await?,
        });
    }
    let chosen = form.role.parse::<Role>().unwrap_or(Role::Agent);
    let page = UsersPage {
        chrome: visitor.chrome(app, false)?,
        users,
        total,
        roles: Role::ALL
            .iter()
            .filter(|r| **r != Role::Customer)
            .map(|r| (r.as_str(), *r == chosen))
            .collect(),
        form,
        error,
        change_error,
    };
    Ok(html(StatusCode::OK, page.render()?))
}

#[poem::handler]
pub async fn user_settings(req: &Request, app: Data<&SharedApp>) -> Response {
    respond(
        async {
            let visitor = admin(req, &app).await?;
            users_page(&app, &visitor, NewUserForm::default(), None, None).await
        }
        .await,
    )
}

/// The account the form describes, or the field that is wrong.
fn new_account(form: &NewUserForm, by: &Visitor) -> Result<NewAccount, (String, String)> {
    let refuse = |field: &str, reason: String| (field.to_string(), reason);
    let full_name = FullName::parse(&form.full_name).map_err(|e| refuse("full_name", e.reason))?;
    let email = Email::parse(&form.email).map_err(|e| refuse("email", e.reason))?;
    let service = form.service.is_some();
    let password = match (service, form.password.is_empty()) {
        (true, true) => None,
        (true, false) => {
            return Err(refuse(
                "password",
                "A service account has no password; leave it empty.".to_string(),
            ));
        }
        (false, _) => Some(
            Password::parse("password", &form.password).map_err(|e| match e {
                AppError::Invalid { reason, .. } => refuse("password", reason),
                other => refuse("password", other.to_string()),
            })?,
        ),
    };
    let role = form
        .role
        .parse::<Role>()
        .ok()
        .filter(|r| *r != Role::Customer)
        .ok_or_else(|| refuse("role", "Choose a staff role.".to_string()))?;
    Ok(NewAccount {
        email,
        password,
        full_name,
        role,
        registration: Registration::ByAdmin(by.caller().actor()),
        service,
    })
}

/// Opens a staff account; a field that is wrong is named beside it, and nothing typed is lost
/// (but the password, which is never sent back).
#[poem::handler]
pub async fn add_user(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Form(form): Form<NewUserForm>,
) -> Response {
    respond(
        async {
            let visitor = admin(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            let kept = |form: NewUserForm| NewUserForm {
                password: String::new(),
                ..form
            };
            let account = match new_account(&form, &visitor) {
                Ok(account) => account,
                Err(error) => {
                    return users_page(&app, &visitor, kept(form), Some(error), None).await;
                }
            };
            let metadata = origin.metadata(Some(visitor.caller().actor()));
            match accounts::register(&app, account, metadata).await {
                Ok(_) => Ok(see_other("/settings/users")),
                Err(AppError::Conflict { detail, .. }) => {
                    let error = Some(("email".to_string(), detail));
                    users_page(&app, &visitor, kept(form), error, None).await
                }
                Err(AppError::Invalid { field, reason }) => {
                    let error = Some((field, reason));
                    users_page(&app, &visitor, kept(form), error, None).await
                }
                Err(other) => Err(other.into()),
            }
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
pub struct ChangeForm {
    #[serde(default)]
    csrf: String,
    /// A new role, or empty to keep it.
    #[serde(default)]
    role: String,
    /// `on` or `off`, or empty to leave it.
    #[serde(default)]
    active: String,
}

/// Changes an account's role, or deactivates or reactivates it. A deactivated person's
/// sessions stop working within the account-freshness window.
#[poem::handler]
pub async fn change_user(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Path(id): Path<Uuid>,
    Form(form): Form<ChangeForm>,
) -> Response {
    respond(
        async {
            let visitor = admin(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            let fresh = NewUserForm::default;
            let role = match form.role.trim() {
                "" => None,
                typed => match typed.parse::<Role>() {
                    Ok(role) => Some(role),
                    Err(_) => {
                        let why = Some((id, "Choose a role from the list.".to_string()));
                        return users_page(&app, &visitor, fresh(), None, why).await;
                    }
                },
            };
            let change = AccountChange {
                role,
                active: match form.active.as_str() {
                    "on" => Some(true),
                    "off" => Some(false),
                    _ => None,
                },
                ..AccountChange::default()
            };
            let actor = visitor.caller().actor();
            let metadata = origin.metadata(Some(actor));
            match accounts::update_account(&app, actor, UserId(id), change, metadata).await {
                Ok(_) => Ok(see_other("/settings/users")),
                Err(
                    AppError::Invalid { reason, .. }
                    | AppError::Conflict { detail: reason, .. }
                    | AppError::NotPermitted(reason),
                ) => users_page(&app, &visitor, fresh(), None, Some((id, reason))).await,
                Err(other) => Err(other.into()),
            }
        }
        .await,
    )
}
