//! API keys (staff): your keys (administrators: everyone's), a form that makes one, shown once
//! when it is made, and a revoke button per key. The same `app::api_keys` services as
//! `/api/api-keys`.

use std::collections::HashMap;

use askama::Template;
use chrono::{NaiveDate, Utc};
use docket_domain::access::Permission;
use docket_domain::api_key::AddressRange;
use docket_domain::values::{ApiKeyId, KeyName};
use docket_domain::{Role, UserId};
use docket_projections::users::UserFilter;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{Request, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::{Chrome, CsrfForm, PageError, Visitor, html, respond, see_other, signed_in};
use crate::app::api_keys::{self, KeyFilter, KeyRequest, KeyState};
use crate::app::{AppError, Origin, SharedApp, accounts};

/// The page lists this many keys, newest first.
const SHOWN: i64 = 100;

pub struct KeyLine {
    id: Uuid,
    name: String,
    prefix: String,
    role: &'static str,
    owner: String,
    service: bool,
    created: String,
    expires: Option<String>,
    last_used: Option<String>,
    allowed_ips: String,
    state: &'static str,
}

#[derive(Debug, Default, Deserialize)]
pub struct NewKeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    /// Empty: the visitor's own key; otherwise a service account's id.
    #[serde(default)]
    owner: String,
    /// `YYYY-MM-DD`: the key works until the end of that day (UTC). Empty: it does not expire.
    #[serde(default)]
    expires_on: String,
    /// Addresses or ranges, separated by commas, spaces or lines.
    #[serde(default)]
    allowed_ips: String,
}

#[derive(Template)]
#[template(path = "api_keys.html")]
struct KeysPage {
    chrome: Chrome,
    keys: Vec<KeyLine>,
    total: i64,
    admin: bool,
    form: NewKeyForm,
    roles: Vec<(&'static str, bool)>,
    /// Service accounts a key can be made for (administrators): id, name, chosen.
    services: Vec<(Uuid, String, bool)>,
    error: Option<(String, String)>,
    /// A key just made: its name and the whole key, shown this once.
    made: Option<(String, String)>,
}

impl KeysPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        self.error
            .as_ref()
            .filter(|(f, _)| f == field)
            .map(|(_, reason)| reason.as_str())
    }
}

async fn staff(req: &Request, app: &SharedApp) -> Result<Visitor, PageError> {
    let visitor = signed_in(req, app).await?;
    visitor
        .caller()
        .require(Permission::ReadStaffViews, "have API keys")?;
    Ok(visitor)
}

fn when(at: chrono::DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

async fn keys_page(
    app: &SharedApp,
    visitor: &Visitor,
    form: NewKeyForm,
    error: Option<(String, String)>,
    made: Option<(String, String)>,
) -> Result<Response, PageError> {
    let caller = visitor.caller();
    let admin = caller.role.may(Permission::AdministerAccounts);
    let filter = KeyFilter {
        owner: None,
        include_revoked: true,
        page: 1,
        page_size: SHOWN,
    };
    let (found, total) = api_keys::list(app, caller, &filter).await?;
    let now = app.time.now();
    let mut owners: HashMap<Uuid, (String, bool)> = HashMap::new();
    let mut keys = Vec::with_capacity(found.len());
    for key in found {
        let owner = match owners.get(&key.user_id) {
            Some(owner) => owner.clone(),
            None => {
                let owner = accounts::find_user(app, UserId(key.user_id))
                    .await?
                    .map(|u| (u.full_name, u.service))
                    .unwrap_or_else(|| ("someone".to_string(), false));
                owners.insert(key.user_id, owner.clone());
                owner
            }
        };
        keys.push(KeyLine {
            state: match key.state(now) {
                KeyState::Active => "active",
                KeyState::Expired => "expired",
                KeyState::Revoked => "revoked",
            },
            id: key.id,
            name: key.name,
            prefix: key.prefix,
            role: key.role.as_str(),
            owner: if key.user_id == caller.id.0 {
                "you".to_string()
            } else {
                owner.0
            },
            service: owner.1,
            created: when(key.created_at),
            expires: key.expires_at.map(when),
            last_used: key.last_used_at.map(|at| match &key.last_used_ip {
                Some(ip) => format!("{} from {ip}", when(at)),
                None => when(at),
            }),
            allowed_ips: key.allowed_ips.join(", "),
        });
    }
    let services = if admin {
        let filter = UserFilter {
            service: Some(true),
            active: Some(true),
            page: 1,
            page_size: 100,
            ..UserFilter::default()
        };
        let (found, _) = accounts::list(app, caller, &filter).await?;
        found
            .into_iter()
            .map(|u| (u.id.0, u.full_name, form.owner == u.id.0.to_string()))
            .collect()
    } else {
        Vec::new()
    };
    // The least a key can do is the default: more is a choice.
    let chosen = form.role.parse::<Role>().unwrap_or(Role::Viewer);
    let page = KeysPage {
        chrome: visitor.chrome(app, false)?,
        keys,
        total,
        admin,
        roles: [Role::Admin, Role::Manager, Role::Agent, Role::Viewer]
            .into_iter()
            .filter(|r| r.is_within(caller.role))
            .map(|r| (r.as_str(), r == chosen))
            .collect(),
        services,
        form,
        error,
        made,
    };
    Ok(html(StatusCode::OK, page.render()?))
}

#[poem::handler]
pub async fn key_settings(req: &Request, app: Data<&SharedApp>) -> Response {
    respond(
        async {
            let visitor = staff(req, &app).await?;
            keys_page(&app, &visitor, NewKeyForm::default(), None, None).await
        }
        .await,
    )
}

/// The key the form asks for, or the field that is wrong.
fn key_request(form: &NewKeyForm) -> Result<KeyRequest, (String, String)> {
    let refuse = |field: &str, reason: String| (field.to_string(), reason);
    let name = KeyName::parse(&form.name).map_err(|e| refuse("name", e.reason))?;
    let role = form
        .role
        .parse::<Role>()
        .map_err(|_| refuse("role", "Choose a role from the list.".to_string()))?;
    let owner = super::picked(&form.owner, "an account")
        .map_err(|reason| refuse("owner", reason))?
        .map(UserId);
    let expires_at = match form.expires_on.trim() {
        "" => None,
        typed => {
            let day = NaiveDate::parse_from_str(typed, "%Y-%m-%d")
                .map_err(|_| refuse("expires_on", "Give a date such as 2027-06-30.".into()))?;
            // The key works through the whole of that day.
            day.succ_opt()
                .and_then(|next| next.and_hms_opt(0, 0, 0))
                .map(|end| end.and_utc())
        }
    };
    let mut allowed_ips = Vec::new();
    let entries = form
        .allowed_ips
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|e| !e.is_empty());
    for entry in entries {
        let range = AddressRange::parse_field("allowed_ips", entry)
            .map_err(|e| refuse("allowed_ips", e.reason))?;
        if !allowed_ips.contains(&range) {
            allowed_ips.push(range);
        }
    }
    Ok(KeyRequest {
        owner,
        name,
        role,
        expires_at,
        allowed_ips,
    })
}

/// Makes a key and shows it once; a field that is wrong is named beside it, what was typed
/// kept.
#[poem::handler]
pub async fn make_key(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Form(form): Form<NewKeyForm>,
) -> Response {
    respond(
        async {
            let visitor = staff(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            let request = match key_request(&form) {
                Ok(request) => request,
                Err(error) => return keys_page(&app, &visitor, form, Some(error), None).await,
            };
            match api_keys::create(&app, visitor.caller(), &origin, request).await {
                Ok(made) => {
                    let shown = Some((made.key.name, made.secret));
                    keys_page(&app, &visitor, NewKeyForm::default(), None, shown).await
                }
                Err(AppError::Invalid { field, reason }) => {
                    let field = match field.as_str() {
                        "user_id" => "owner".to_string(),
                        "expires_at" => "expires_on".to_string(),
                        _ => field,
                    };
                    keys_page(&app, &visitor, form, Some((field, reason)), None).await
                }
                Err(AppError::NotPermitted(reason)) => {
                    keys_page(&app, &visitor, form, Some(("owner".into(), reason)), None).await
                }
                Err(other) => Err(other.into()),
            }
        }
        .await,
    )
}

/// Revokes a key: it stops working at once.
#[poem::handler]
pub async fn revoke_key(
    req: &Request,
    app: Data<&SharedApp>,
    origin: Data<&Origin>,
    Path(id): Path<Uuid>,
    Form(form): Form<CsrfForm>,
) -> Response {
    respond(
        async {
            let visitor = staff(req, &app).await?;
            visitor.check_csrf(&form.csrf)?;
            match api_keys::revoke(&app, visitor.caller(), &origin, ApiKeyId(id)).await {
                // Revoked already (in another tab): the list shows it so.
                Ok(_) | Err(AppError::Conflict { .. }) => Ok(see_other("/account/api-keys")),
                Err(other) => Err(other.into()),
            }
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(expires_on: &str, allowed_ips: &str) -> NewKeyForm {
        NewKeyForm {
            name: "CI".into(),
            role: "agent".into(),
            expires_on: expires_on.into(),
            allowed_ips: allowed_ips.into(),
            ..NewKeyForm::default()
        }
    }

    #[test]
    fn a_key_works_through_the_whole_of_its_last_day() {
        let request = key_request(&form("2027-06-30", "")).ok();
        assert_eq!(
            request.and_then(|r| r.expires_at).map(|t| t.to_rfc3339()),
            Some("2027-07-01T00:00:00+00:00".to_string())
        );
        let refused = key_request(&form("30/06/2027", "")).err();
        assert_eq!(
            refused.map(|(field, _)| field).as_deref(),
            Some("expires_on")
        );
    }

    #[test]
    fn addresses_are_taken_from_commas_spaces_and_lines_once_each() {
        let request = key_request(&form("", "10.0.0.0/8, 203.0.113.7\n10.1.0.0/8")).ok();
        let ranges: Vec<String> = request
            .map(|r| r.allowed_ips.iter().map(|a| a.to_string()).collect())
            .unwrap_or_default();
        assert_eq!(ranges, ["10.0.0.0/8", "203.0.113.7"]);
        let refused = key_request(&form("", "10.0.0.0/8 office")).err();
        assert_eq!(
            refused.map(|(field, _)| field).as_deref(),
            Some("allowed_ips")
        );
    }
}
