//! Who asks, and from where: the signed-in [`Caller`] of a request, and the [`Origin`] recorded
//! in the metadata of every event the request causes.

use docket_domain::access::{self, Permission};
use docket_domain::values::{ApiKeyId, UserId};
use docket_domain::{Actor, Role};
use docket_projections::{Checkpoint, EventMetadata};
use uuid::Uuid;

use crate::app::accounts::UserView;
use crate::app::error::AppError;

/// The signed-in caller of one request, as their account is now (not as it was when the token
/// was issued: a role change or deactivation takes effect on the next request through the
/// process that made it, and within `DOCKET_ACCOUNT_FRESHNESS_MS` on every other).
#[derive(Debug, Clone)]
pub struct Caller {
    pub id: UserId,
    pub role: Role,
    pub email: String,
    pub full_name: String,
    /// What this caller's reads must include.
    pub reads: ReadWants,
    /// The API key the caller authenticated with, if they did (`None`: a token or a session).
    pub api_key: Option<ApiKeyId>,
    /// A service account: acts only through API keys.
    pub service: bool,
}

/// What a read must include beyond what the read models happen to hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadWants {
    /// `Consistency: eventual`: do not wait for the caller's own writes.
    pub eventual: bool,
    /// A consistency token from a write (perhaps through another process): wait for it.
    pub token: Option<Checkpoint>,
}

/// The account signed in by a token, a session or on its own behalf (a tool, the demo), as it
/// is now; a key's caller carries its key and the key's role instead.
impl From<UserView> for Caller {
    fn from(user: UserView) -> Self {
        Self {
            id: user.id,
            role: user.role,
            email: user.email,
            full_name: user.full_name,
            reads: ReadWants::default(),
            api_key: None,
            service: user.service,
        }
    }
}

impl Caller {
    pub fn actor(&self) -> Actor {
        Actor::new(self.id, self.role)
    }

    pub fn is_customer(&self) -> bool {
        self.role == Role::Customer
    }

    pub fn is_staff(&self) -> bool {
        self.role.may(Permission::ReadStaffViews)
    }

    /// The domain's rule for `permission`, refused in words naming `action`.
    pub fn require(&self, permission: Permission, action: &'static str) -> Result<(), AppError> {
        access::require(self.role, permission, action).map_err(Into::into)
    }
}

/// Where a request came from; recorded in the metadata of every event it causes.
#[derive(Debug, Clone)]
pub struct Origin {
    pub correlation_id: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The API key the request authenticated with, and whether its account is a service:
    /// recorded with every event the request causes.
    pub credential: Option<KeyCredential>,
}

/// An API key that authenticated a request, as its events record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyCredential {
    pub key_id: ApiKeyId,
    pub service: bool,
}

impl Origin {
    /// Work the server does on its own (bootstrap, demo data, deadlines, routing, rules).
    pub fn system(purpose: &str) -> Self {
        Self {
            correlation_id: format!("{purpose}-{}", Uuid::now_v7()),
            ip: None,
            user_agent: Some(format!("docket/{} {purpose}", env!("CARGO_PKG_VERSION"))),
            credential: None,
        }
    }

    /// The metadata stored with the events `actor` causes from here.
    pub fn metadata(&self, actor: Option<Actor>) -> EventMetadata {
        EventMetadata {
            actor_id: actor.map(|a| a.user_id.to_string()),
            actor_role: actor.map(|a| a.role.to_string()),
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
            correlation_id: Some(self.correlation_id.clone()),
            causation_id: None,
            api_key_id: self.credential.map(|c| c.key_id.to_string()),
            actor_kind: self
                .credential
                .filter(|c| c.service)
                .map(|_| "service".to_string()),
            automation_depth: None,
        }
    }
}

/// The metadata of events the server records on its own, as the system actor.
pub fn system_metadata(purpose: &str) -> EventMetadata {
    Origin::system(purpose).metadata(Some(Actor::system()))
}
