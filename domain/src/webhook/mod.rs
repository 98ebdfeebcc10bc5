//! Webhook endpoints: where Docket posts the ticket events an integrator subscribed to.
//!
//! An endpoint's configuration is an aggregate, so every change is an event with its version
//! and an auditor can ask which endpoints were subscribed when an event happened. Its signing
//! secret is not (DESIGN.md decision 10): the log says only that it was rotated, by whom and
//! when.

#[cfg(test)]
mod tests;

use std::fmt;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use crate::access::{self, Permission};
use crate::values::{Actor, EventKind, Note, ValidationError};

/// Identifies a webhook endpoint. Also its aggregate id in the event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WebhookId(pub uuid::Uuid);

impl fmt::Display for WebhookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An `http` or `https` address with a host, at most 2,000 characters. Whether its host is
/// one Docket may post to (not a private address) is the application's to ask: it takes DNS.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub const MAX_CHARS: usize = 2_000;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let text = raw.trim();
        let invalid = |reason: &str| Err(ValidationError::new("url", reason));
        if text.chars().count() > Self::MAX_CHARS {
            return invalid("must be at most 2000 characters");
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return invalid("must not contain spaces");
        }
        let lower = text.to_ascii_lowercase();
        let Some(rest) = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"))
        else {
            return invalid("must be an http:// or https:// address");
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return invalid("must not carry a user name or password");
        }
        let host = match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => authority.split(':').next().unwrap_or_default(),
        };
        if host.is_empty() {
            return invalid("must name a host");
        }
        Ok(Self(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kinds of events an endpoint receives: at least one, each once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Subscriptions(Vec<EventKind>);

impl Subscriptions {
    pub fn new(kinds: &[EventKind]) -> Result<Self, ValidationError> {
        let mut chosen: Vec<EventKind> = Vec::with_capacity(kinds.len());
        for kind in kinds {
            if !chosen.contains(kind) {
                chosen.push(*kind);
            }
        }
        if chosen.is_empty() {
            return Err(ValidationError::new(
                "events",
                "choose at least one event to receive",
            ));
        }
        Ok(Self(chosen))
    }

    pub fn contains(&self, kind: EventKind) -> bool {
        self.0.contains(&kind)
    }

    pub fn kinds(&self) -> &[EventKind] {
        &self.0
    }
}

/// Why Docket stopped posting to an endpoint on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum DisableReason {
    /// The receiver answered 410 Gone.
    Gone,
    /// No delivery succeeded since `since`, for longer than the configured grace.
    Failing { since: DateTime<Utc> },
}

/// What an endpoint is set to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookSettings {
    pub url: WebhookUrl,
    pub events: Subscriptions,
    pub description: Option<Note>,
    pub enabled: bool,
    pub include_internal: bool,
}

/// A change of settings; `None` leaves a field alone (`Some(None)` clears the description).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebhookChange {
    pub url: Option<WebhookUrl>,
    pub events: Option<Subscriptions>,
    pub description: Option<Option<Note>>,
    pub enabled: Option<bool>,
    pub include_internal: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum WebhookCommand {
    Create {
        webhook_id: WebhookId,
        settings: WebhookSettings,
        actor: Actor,
        at: DateTime<Utc>,
    },
    Update {
        change: WebhookChange,
        actor: Actor,
        at: DateTime<Utc>,
    },
    /// A new signing secret was made (kept outside the log).
    RotateSecret {
        actor: Actor,
        at: DateTime<Utc>,
    },
    /// The deliverer gives up on the endpoint.
    Disable {
        reason: DisableReason,
        at: DateTime<Utc>,
    },
    Delete {
        actor: Actor,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WebhookEvent {
    WebhookCreated {
        webhook_id: WebhookId,
        url: WebhookUrl,
        events: Subscriptions,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<Note>,
        enabled: bool,
        include_internal: bool,
        created_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    /// Only the fields that changed are present.
    WebhookUpdated {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<WebhookUrl>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        events: Option<Subscriptions>,
        /// `Some(None)`: the description was cleared.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "crate::ticket::double_option"
        )]
        description: Option<Option<Note>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        enabled: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        include_internal: Option<bool>,
        updated_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    WebhookSecretRotated {
        rotated_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    /// Docket stopped posting to the endpoint on its own; an admin may enable it again.
    WebhookDisabled {
        #[serde(flatten)]
        reason: DisableReason,
        occurred_at: DateTime<Utc>,
    },
    WebhookDeleted {
        deleted_by: Actor,
        occurred_at: DateTime<Utc>,
    },
}

impl WebhookEvent {
    pub fn occurred_at(&self) -> DateTime<Utc> {
        match self {
            WebhookEvent::WebhookCreated { occurred_at, .. }
            | WebhookEvent::WebhookUpdated { occurred_at, .. }
            | WebhookEvent::WebhookSecretRotated { occurred_at, .. }
            | WebhookEvent::WebhookDisabled { occurred_at, .. }
            | WebhookEvent::WebhookDeleted { occurred_at, .. } => *occurred_at,
        }
    }
}

crate::event_names!(WebhookEvent {
    WebhookCreated,
    WebhookUpdated,
    WebhookSecretRotated,
    WebhookDisabled,
    WebhookDeleted,
});

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("no such webhook")]
    NotFound,
    #[error("the webhook already exists")]
    AlreadyExists,
    #[error("{role} may not {action}")]
    NotPermitted {
        role: crate::values::Role,
        action: &'static str,
    },
}

/// An endpoint as its events leave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookState {
    pub id: WebhookId,
    pub settings: WebhookSettings,
    /// Set when Docket disabled it on its own, until someone enables it again.
    pub disabled: Option<DisableReason>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    state: Option<WebhookState>,
    deleted: bool,
}

fn require(actor: &Actor, action: &'static str) -> Result<(), WebhookError> {
    access::require_actor(actor, Permission::ManageIntegrations, action).map_err(|refusal| {
        WebhookError::NotPermitted {
            role: refusal.role,
            action: refusal.action,
        }
    })
}

impl Webhook {
    pub fn state(&self) -> Option<&WebhookState> {
        self.state.as_ref().filter(|_| !self.deleted)
    }

    pub fn decide(&self, command: &WebhookCommand) -> Result<Vec<WebhookEvent>, WebhookError> {
        if let WebhookCommand::Create {
            webhook_id,
            settings,
            actor,
            at,
        } = command
        {
            require(actor, "configure webhooks")?;
            if self.state.is_some() {
                return Err(WebhookError::AlreadyExists);
            }
            return Ok(vec![WebhookEvent::WebhookCreated {
                webhook_id: *webhook_id,
                url: settings.url.clone(),
                events: settings.events.clone(),
                description: settings.description.clone(),
                enabled: settings.enabled,
                include_internal: settings.include_internal,
                created_by: *actor,
                occurred_at: *at,
            }]);
        }
        let Some(webhook) = self.state() else {
            return Err(WebhookError::NotFound);
        };
        match command {
            WebhookCommand::Create { .. } => Err(WebhookError::AlreadyExists),
            WebhookCommand::Update { change, actor, at } => {
                require(actor, "configure webhooks")?;
                let current = &webhook.settings;
                let url = change.url.clone().filter(|u| *u != current.url);
                let events = change.events.clone().filter(|e| *e != current.events);
                let description = change
                    .description
                    .clone()
                    .filter(|d| *d != current.description);
                // Enabling an endpoint Docket disabled is a change even if the setting says
                // enabled: it is what brings the endpoint back.
                let enabled = change
                    .enabled
                    .filter(|e| *e != current.enabled || (*e && webhook.disabled.is_some()));
                let include_internal = change
                    .include_internal
                    .filter(|i| *i != current.include_internal);
                if url.is_none()
                    && events.is_none()
                    && description.is_none()
                    && enabled.is_none()
                    && include_internal.is_none()
                {
                    return Ok(vec![]);
                }
                Ok(vec![WebhookEvent::WebhookUpdated {
                    url,
                    events,
                    description,
                    enabled,
                    include_internal,
                    updated_by: *actor,
                    occurred_at: *at,
                }])
            }
            WebhookCommand::RotateSecret { actor, at } => {
                require(actor, "rotate webhook secrets")?;
                Ok(vec![WebhookEvent::WebhookSecretRotated {
                    rotated_by: *actor,
                    occurred_at: *at,
                }])
            }
            WebhookCommand::Disable { reason, at } => {
                // Already off (by someone, or by Docket): nothing more to say.
                if !webhook.settings.enabled || webhook.disabled.is_some() {
                    return Ok(vec![]);
                }
                Ok(vec![WebhookEvent::WebhookDisabled {
                    reason: *reason,
                    occurred_at: *at,
                }])
            }
            WebhookCommand::Delete { actor, at } => {
                require(actor, "delete webhooks")?;
                Ok(vec![WebhookEvent::WebhookDeleted {
                    deleted_by: *actor,
                    occurred_at: *at,
                }])
            }
        }
    }

    /// Whether the endpoint receives events now.
    pub fn receives(&self) -> bool {
        self.state()
            .is_some_and(|w| w.settings.enabled && w.disabled.is_none())
    }

    pub fn from_events<I: IntoIterator<Item = WebhookEvent>>(events: I) -> Self {
        let mut webhook = Webhook::default();
        for event in events {
            webhook.apply(event);
        }
        webhook
    }
}

impl Aggregate for Webhook {
    const TYPE: &'static str = "webhook";
    type Command = WebhookCommand;
    type Event = WebhookEvent;
    type Error = WebhookError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let decision = self.decide(&command);
        crate::record(self, decision, sink).await
    }

    fn apply(&mut self, event: Self::Event) {
        let occurred_at = event.occurred_at();
        match event {
            WebhookEvent::WebhookCreated {
                webhook_id,
                url,
                events,
                description,
                enabled,
                include_internal,
                created_by: _,
                occurred_at,
            } => {
                self.state = Some(WebhookState {
                    id: webhook_id,
                    settings: WebhookSettings {
                        url,
                        events,
                        description,
                        enabled,
                        include_internal,
                    },
                    disabled: None,
                    created_at: occurred_at,
                    updated_at: occurred_at,
                });
                return;
            }
            WebhookEvent::WebhookUpdated {
                url,
                events,
                description,
                enabled,
                include_internal,
                ..
            } => {
                if let Some(webhook) = &mut self.state {
                    let settings = &mut webhook.settings;
                    if let Some(url) = url {
                        settings.url = url;
                    }
                    if let Some(events) = events {
                        settings.events = events;
                    }
                    if let Some(description) = description {
                        settings.description = description;
                    }
                    if let Some(enabled) = enabled {
                        settings.enabled = enabled;
                        // Someone chose: whatever Docket decided on its own is over.
                        webhook.disabled = None;
                    }
                    if let Some(include_internal) = include_internal {
                        settings.include_internal = include_internal;
                    }
                }
            }
            WebhookEvent::WebhookSecretRotated { .. } => {}
            WebhookEvent::WebhookDisabled { reason, .. } => {
                if let Some(webhook) = &mut self.state {
                    webhook.disabled = Some(reason);
                }
            }
            WebhookEvent::WebhookDeleted { .. } => self.deleted = true,
        }
        if let Some(webhook) = &mut self.state {
            webhook.updated_at = occurred_at;
        }
    }
}
