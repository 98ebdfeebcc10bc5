//! API keys: credentials an integration sends instead of a person's password.
//!
//! A key belongs to one account (its owner) and acts with a role no higher than the owner's.
//! Staff make personal keys for themselves; administrators make keys for service accounts,
//! which exist only to own keys. The secret never enters these events (DESIGN.md decision 10):
//! the log says that a key was made, first used and revoked, by whom and when; its hash lives
//! in an ordinary table.

mod address;

#[cfg(test)]
mod tests;

pub use address::AddressRange;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use crate::access::{self, Permission};
use crate::values::{Actor, ApiKeyId, KeyName, Role, UserId};

/// The account a key is made for, as it stands when the key is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyOwner {
    pub user_id: UserId,
    pub role: Role,
    pub active: bool,
    /// A service account: no password, only keys.
    pub service: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateApiKey {
    pub key_id: ApiKeyId,
    pub owner: KeyOwner,
    pub name: KeyName,
    pub role: Role,
    /// The key's public part (`dk_<prefix>_…`), which lists and audits show; not a secret.
    pub prefix: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub allowed_ips: Vec<AddressRange>,
    pub actor: Actor,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ApiKeyCommand {
    Create(CreateApiKey),
    /// The key authenticated a request for the first time.
    RecordFirstUse {
        ip: Option<String>,
        at: DateTime<Utc>,
    },
    Revoke {
        actor: Actor,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ApiKeyEvent {
    ApiKeyCreated {
        key_id: ApiKeyId,
        owner_id: UserId,
        name: KeyName,
        role: Role,
        prefix: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<DateTime<Utc>>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        allowed_ips: Vec<AddressRange>,
        created_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    ApiKeyFirstUsed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ip: Option<String>,
        occurred_at: DateTime<Utc>,
    },
    ApiKeyRevoked {
        revoked_by: Actor,
        occurred_at: DateTime<Utc>,
    },
}

impl ApiKeyEvent {
    pub fn occurred_at(&self) -> DateTime<Utc> {
        match self {
            ApiKeyEvent::ApiKeyCreated { occurred_at, .. }
            | ApiKeyEvent::ApiKeyFirstUsed { occurred_at, .. }
            | ApiKeyEvent::ApiKeyRevoked { occurred_at, .. } => *occurred_at,
        }
    }
}

crate::event_names!(ApiKeyEvent {
    ApiKeyCreated,
    ApiKeyFirstUsed,
    ApiKeyRevoked,
});

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyError {
    #[error("no such API key")]
    NotFound,
    #[error("the API key already exists")]
    AlreadyExists,
    #[error("{role} may not {action}")]
    NotPermitted { role: Role, action: &'static str },
    #[error("keys for another account can only be made for a service account")]
    OwnerNotService,
    #[error("the account is deactivated")]
    OwnerInactive,
    #[error("a key cannot have the role {role}; choose admin, manager, agent or viewer")]
    RoleNotForKeys { role: Role },
    #[error("a key cannot have the role {role}: its account is {owner_role}")]
    RoleAboveOwner { role: Role, owner_role: Role },
    #[error("must be in the future")]
    ExpiryInPast,
    #[error("the API key is already revoked")]
    AlreadyRevoked,
}

/// A key as its events leave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyState {
    pub id: ApiKeyId,
    pub owner_id: UserId,
    pub name: KeyName,
    pub role: Role,
    pub prefix: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub allowed_ips: Vec<AddressRange>,
    pub created_at: DateTime<Utc>,
    pub first_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    state: Option<ApiKeyState>,
}

impl ApiKey {
    pub fn state(&self) -> Option<&ApiKeyState> {
        self.state.as_ref()
    }

    pub fn decide(&self, command: &ApiKeyCommand) -> Result<Vec<ApiKeyEvent>, ApiKeyError> {
        let key = match (command, &self.state) {
            (ApiKeyCommand::Create(create), None) => return create_key(create),
            (ApiKeyCommand::Create(_), Some(_)) => return Err(ApiKeyError::AlreadyExists),
            (_, None) => return Err(ApiKeyError::NotFound),
            (_, Some(key)) => key,
        };
        match command {
            ApiKeyCommand::Create(_) => Err(ApiKeyError::AlreadyExists),
            // Only the first use is a fact worth keeping; later ones update the key's row.
            ApiKeyCommand::RecordFirstUse { ip, at } => Ok(match key.first_used_at {
                Some(_) => vec![],
                None => vec![ApiKeyEvent::ApiKeyFirstUsed {
                    ip: ip.clone(),
                    occurred_at: *at,
                }],
            }),
            ApiKeyCommand::Revoke { actor, at } => {
                if actor.user_id != key.owner_id {
                    require(actor, Permission::AdministerAccounts, "revoke others' keys")?;
                }
                if key.revoked_at.is_some() {
                    return Err(ApiKeyError::AlreadyRevoked);
                }
                Ok(vec![ApiKeyEvent::ApiKeyRevoked {
                    revoked_by: *actor,
                    occurred_at: *at,
                }])
            }
        }
    }
}

fn require(actor: &Actor, permission: Permission, action: &'static str) -> Result<(), ApiKeyError> {
    access::require_actor(actor, permission, action).map_err(|refusal| ApiKeyError::NotPermitted {
        role: refusal.role,
        action: refusal.action,
    })
}

fn create_key(create: &CreateApiKey) -> Result<Vec<ApiKeyEvent>, ApiKeyError> {
    let actor = &create.actor;
    require(actor, Permission::ReadStaffViews, "make API keys")?;
    if create.owner.user_id != actor.user_id {
        require(
            actor,
            Permission::AdministerAccounts,
            "make keys for others",
        )?;
        if !create.owner.service {
            return Err(ApiKeyError::OwnerNotService);
        }
    }
    if !create.owner.active {
        return Err(ApiKeyError::OwnerInactive);
    }
    if !create.role.is_staff() || create.role == Role::System {
        return Err(ApiKeyError::RoleNotForKeys { role: create.role });
    }
    if !create.role.is_within(create.owner.role) {
        return Err(ApiKeyError::RoleAboveOwner {
            role: create.role,
            owner_role: create.owner.role,
        });
    }
    if create.expires_at.is_some_and(|expiry| expiry <= create.at) {
        return Err(ApiKeyError::ExpiryInPast);
    }
    Ok(vec![ApiKeyEvent::ApiKeyCreated {
        key_id: create.key_id,
        owner_id: create.owner.user_id,
        name: create.name.clone(),
        role: create.role,
        prefix: create.prefix.clone(),
        expires_at: create.expires_at,
        allowed_ips: create.allowed_ips.clone(),
        created_by: *actor,
        occurred_at: create.at,
    }])
}

impl Aggregate for ApiKey {
    const TYPE: &'static str = "api_key";
    type Command = ApiKeyCommand;
    type Event = ApiKeyEvent;
    type Error = ApiKeyError;
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
        match event {
            ApiKeyEvent::ApiKeyCreated {
                key_id,
                owner_id,
                name,
                role,
                prefix,
                expires_at,
                allowed_ips,
                created_by: _,
                occurred_at,
            } => {
                self.state = Some(ApiKeyState {
                    id: key_id,
                    owner_id,
                    name,
                    role,
                    prefix,
                    expires_at,
                    allowed_ips,
                    created_at: occurred_at,
                    first_used_at: None,
                    revoked_at: None,
                });
            }
            ApiKeyEvent::ApiKeyFirstUsed { occurred_at, .. } => {
                if let Some(key) = &mut self.state {
                    key.first_used_at = Some(occurred_at);
                }
            }
            ApiKeyEvent::ApiKeyRevoked { occurred_at, .. } => {
                if let Some(key) = &mut self.state {
                    key.revoked_at = Some(occurred_at);
                }
            }
        }
    }
}

impl ApiKey {
    pub fn from_events<I: IntoIterator<Item = ApiKeyEvent>>(events: I) -> Self {
        let mut key = ApiKey::default();
        for event in events {
            key.apply(event);
        }
        key
    }
}
