//! Settings: SLA policies, business calendars with holidays and escalation rules (managers and
//! admins), and users with their roles (admins). Every item shows its version history from the
//! log: who changed it, and when.

mod automations;
mod calendars;
mod email;
mod policies;
mod rule_form;
mod rules;
mod users;
mod webhooks;

use std::collections::HashMap;

use docket_domain::{Priority, UserId};
use poem::Request;
use uuid::Uuid;

use super::{PageError, Visitor, signed_in};
use crate::app::audit::Change;
use crate::app::{SharedApp, accounts};

pub use automations::{
    add_automation, automation, automation_settings, change_automation, new_automation,
};
pub use calendars::{add_calendar, add_holiday, calendar_settings};
pub use email::{
    change_email_template, email_settings, email_template, outbox, outbox_mail, retry_mail,
};
pub use policies::{add_policy, edit_policy, sla_settings};
pub use rules::{add_rule, rule_settings, toggle_rule};
pub use users::{add_user, change_user, user_settings};
pub use webhooks::{
    add_webhook, delete_webhook, redeliver, rotate_webhook, switch_webhook, test_webhook,
    webhook_deliveries, webhook_settings,
};

/// One version of an item, as its history lists it.
pub struct ChangeLine {
    version: i64,
    kind: String,
    by: String,
    at: String,
}

/// Who made each change, by name (each person looked up once per page).
#[derive(Default)]
pub struct ChangeAuthors(HashMap<Uuid, String>);

impl ChangeAuthors {
    /// A person's name, looked up once per page.
    pub async fn name(&mut self, app: &SharedApp, id: Uuid) -> Result<String, PageError> {
        if let Some(name) = self.0.get(&id) {
            return Ok(name.clone());
        }
        let name = accounts::find_user(app, UserId(id))
            .await?
            .map(|u| u.full_name)
            .unwrap_or_else(|| "someone".to_string());
        self.0.insert(id, name.clone());
        Ok(name)
    }

    pub async fn lines(
        &mut self,
        app: &SharedApp,
        changes: Vec<Change>,
    ) -> Result<Vec<ChangeLine>, PageError> {
        let mut lines = Vec::with_capacity(changes.len());
        for change in changes {
            let by = match change.actor_id {
                Some(id) => self.name(app, id).await?,
                None => change.actor_role.unwrap_or_else(|| "the system".into()),
            };
            lines.push(ChangeLine {
                version: change.version,
                kind: change.event_type,
                by,
                at: change.recorded_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            });
        }
        Ok(lines)
    }
}

/// A manager or an admin; others are told they may not.
async fn manager(req: &Request, app: &SharedApp) -> Result<Visitor, PageError> {
    let visitor = signed_in(req, app).await?;
    visitor
        .caller()
        .require(docket_domain::access::Permission::Manage, "change settings")?;
    Ok(visitor)
}

/// The priorities ticked in a form's four boxes (critical, high, medium, low, in that order).
fn ticked(boxes: [&Option<String>; 4]) -> Vec<Priority> {
    Priority::ALL
        .iter()
        .zip(boxes)
        .filter(|(_, ticked)| ticked.is_some())
        .map(|(priority, _)| *priority)
        .collect()
}

/// A field's error, when it is the field the form got wrong.
fn error_for<'a>(error: &'a Option<(String, String)>, field: &str) -> Option<&'a str> {
    error
        .as_ref()
        .filter(|(f, _)| f == field)
        .map(|(_, reason)| reason.as_str())
}
