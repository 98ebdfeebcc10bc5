use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use crate::notice::NotificationPreferences;
use crate::values::{Actor, Email, FullName, Role, UserId};

/// How an account came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    /// Someone signed up on their own: always a customer.
    SelfService,
    /// An administrator created it.
    ByAdmin(Actor),
    /// The server created the first administrator from its configuration or demo data.
    Bootstrap,
}

#[derive(Debug, Clone, PartialEq)]
pub enum UserCommand {
    Register(RegisterUser),
    UpdateProfile(UpdateUserProfile),
    ChangeRole(ChangeUserRole),
    SetActive(SetUserActive),
    /// Records that the password was changed; the new hash itself is stored elsewhere.
    RecordPasswordChange {
        actor: Actor,
        at: DateTime<Utc>,
    },
    /// What the person wants to be told of, by which channel.
    SetNotificationPreferences {
        preferences: NotificationPreferences,
        actor: Actor,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct RegisterUser {
    pub user_id: UserId,
    pub email: Email,
    pub full_name: FullName,
    pub role: Role,
    pub registration: Registration,
    /// A service account: made by an administrator for an integration, it has no password
    /// and acts only through API keys.
    pub service: bool,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UpdateUserProfile {
    pub full_name: Option<FullName>,
    pub email: Option<Email>,
    pub actor: Actor,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChangeUserRole {
    pub role: Role,
    pub actor: Actor,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SetUserActive {
    pub active: bool,
    pub actor: Actor,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum UserEvent {
    UserRegistered {
        user_id: UserId,
        email: Email,
        full_name: FullName,
        role: Role,
        registration: Registration,
        /// Absent in events recorded before service accounts existed: a person.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        service: bool,
        occurred_at: DateTime<Utc>,
    },
    /// Only the fields that changed are present.
    UserProfileUpdated {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        full_name: Option<FullName>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        email: Option<Email>,
        updated_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    UserRoleChanged {
        from: Role,
        to: Role,
        changed_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    UserDeactivated {
        deactivated_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    UserReactivated {
        reactivated_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    UserPasswordChanged {
        changed_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    /// The kinds of notifications the person switched off, per channel (all of them, as now).
    NotificationPreferencesSet {
        preferences: NotificationPreferences,
        set_by: Actor,
        occurred_at: DateTime<Utc>,
    },
}

impl UserEvent {
    pub fn occurred_at(&self) -> DateTime<Utc> {
        match self {
            UserEvent::UserRegistered { occurred_at, .. }
            | UserEvent::UserProfileUpdated { occurred_at, .. }
            | UserEvent::UserRoleChanged { occurred_at, .. }
            | UserEvent::UserDeactivated { occurred_at, .. }
            | UserEvent::UserReactivated { occurred_at, .. }
            | UserEvent::UserPasswordChanged { occurred_at, .. }
            | UserEvent::NotificationPreferencesSet { occurred_at, .. } => *occurred_at,
        }
    }
}

crate::event_names!(UserEvent {
    UserRegistered,
    UserProfileUpdated,
    UserRoleChanged,
    UserDeactivated,
    UserReactivated,
    UserPasswordChanged,
    NotificationPreferencesSet,
});

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("no such user")]
    NotFound,
    #[error("the user already exists")]
    AlreadyExists,
    #[error("{role} may not {action}")]
    NotPermitted { role: Role, action: &'static str },
    #[error("self-registration only creates customer accounts")]
    SelfRegistrationIsForCustomers,
    #[error("administrators cannot {action} their own account")]
    OwnAccount { action: &'static str },
    #[error("the account is already {state}")]
    AlreadyInState { state: &'static str },
    #[error("no account can have the role {role}")]
    ReservedRole { role: Role },
    #[error("a service account cannot have the role {role}")]
    ServiceRole { role: Role },
    #[error("only an administrator makes service accounts")]
    ServiceNeedsAdmin,
    #[error("a service account has no password; it signs in with API keys")]
    ServiceHasNoPassword,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct User {
    state: Option<UserState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserState {
    pub id: UserId,
    pub email: Email,
    pub full_name: FullName,
    pub role: Role,
    pub active: bool,
    pub service: bool,
    #[serde(default)]
    pub notification_preferences: NotificationPreferences,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn require_admin(actor: &Actor, action: &'static str) -> Result<(), UserError> {
    crate::access::require_actor(actor, crate::access::Permission::AdministerAccounts, action)
        .map_err(|refusal| UserError::NotPermitted {
            role: refusal.role,
            action: refusal.action,
        })
}

impl User {
    pub fn state(&self) -> Option<&UserState> {
        self.state.as_ref()
    }

    pub fn decide(&self, command: &UserCommand) -> Result<Vec<UserEvent>, UserError> {
        let user = match (command, &self.state) {
            (UserCommand::Register(register), None) => return register_user(register),
            (UserCommand::Register(_), Some(_)) => return Err(UserError::AlreadyExists),
            (_, None) => return Err(UserError::NotFound),
            (_, Some(user)) => user,
        };
        match command {
            UserCommand::Register(_) => Err(UserError::AlreadyExists),
            UserCommand::UpdateProfile(update) => {
                require_admin(&update.actor, "edit other accounts")?;
                let full_name = update.full_name.clone().filter(|n| *n != user.full_name);
                let email = update.email.clone().filter(|e| *e != user.email);
                if full_name.is_none() && email.is_none() {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::UserProfileUpdated {
                    full_name,
                    email,
                    updated_by: update.actor,
                    occurred_at: update.at,
                }])
            }
            UserCommand::ChangeRole(change) => {
                require_admin(&change.actor, "change roles")?;
                if !change.role.is_assignable_to_accounts() {
                    return Err(UserError::ReservedRole { role: change.role });
                }
                if change.actor.user_id == user.id {
                    return Err(UserError::OwnAccount {
                        action: "change the role of",
                    });
                }
                if change.role == user.role {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::UserRoleChanged {
                    from: user.role,
                    to: change.role,
                    changed_by: change.actor,
                    occurred_at: change.at,
                }])
            }
            UserCommand::SetActive(set) => {
                require_admin(&set.actor, "activate or deactivate accounts")?;
                if set.actor.user_id == user.id {
                    return Err(UserError::OwnAccount {
                        action: "deactivate or reactivate",
                    });
                }
                match (user.active, set.active) {
                    (true, false) => Ok(vec![UserEvent::UserDeactivated {
                        deactivated_by: set.actor,
                        occurred_at: set.at,
                    }]),
                    (false, true) => Ok(vec![UserEvent::UserReactivated {
                        reactivated_by: set.actor,
                        occurred_at: set.at,
                    }]),
                    (true, true) => Err(UserError::AlreadyInState { state: "active" }),
                    (false, false) => Err(UserError::AlreadyInState {
                        state: "deactivated",
                    }),
                }
            }
            UserCommand::SetNotificationPreferences {
                preferences,
                actor,
                at,
            } => {
                if actor.user_id != user.id {
                    require_admin(actor, "set another person's notifications")?;
                }
                if *preferences == user.notification_preferences {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::NotificationPreferencesSet {
                    preferences: preferences.clone(),
                    set_by: *actor,
                    occurred_at: *at,
                }])
            }
            UserCommand::RecordPasswordChange { actor, at } => {
                if user.service {
                    return Err(UserError::ServiceHasNoPassword);
                }
                if actor.user_id != user.id {
                    require_admin(actor, "change another person's password")?;
                }
                Ok(vec![UserEvent::UserPasswordChanged {
                    changed_by: *actor,
                    occurred_at: *at,
                }])
            }
        }
    }
}

fn register_user(register: &RegisterUser) -> Result<Vec<UserEvent>, UserError> {
    if !register.role.is_assignable_to_accounts() {
        return Err(UserError::ReservedRole {
            role: register.role,
        });
    }
    match register.registration {
        Registration::SelfService if register.role != Role::Customer => {
            return Err(UserError::SelfRegistrationIsForCustomers);
        }
        Registration::ByAdmin(actor) => require_admin(&actor, "create accounts")?,
        Registration::SelfService | Registration::Bootstrap => {}
    }
    if register.service {
        if !matches!(register.registration, Registration::ByAdmin(_)) {
            return Err(UserError::ServiceNeedsAdmin);
        }
        if !register.role.is_staff() {
            return Err(UserError::ServiceRole {
                role: register.role,
            });
        }
    }
    Ok(vec![UserEvent::UserRegistered {
        user_id: register.user_id,
        email: register.email.clone(),
        full_name: register.full_name.clone(),
        role: register.role,
        registration: register.registration,
        service: register.service,
        occurred_at: register.at,
    }])
}

impl Aggregate for User {
    const TYPE: &'static str = "user";
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = UserError;
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
            UserEvent::UserRegistered {
                user_id,
                email,
                full_name,
                role,
                registration: _,
                service,
                occurred_at,
            } => {
                self.state = Some(UserState {
                    id: user_id,
                    email,
                    full_name,
                    role,
                    active: true,
                    service,
                    notification_preferences: NotificationPreferences::default(),
                    created_at: occurred_at,
                    updated_at: occurred_at,
                });
                return;
            }
            UserEvent::UserProfileUpdated {
                full_name, email, ..
            } => {
                if let Some(user) = &mut self.state {
                    if let Some(full_name) = full_name {
                        user.full_name = full_name;
                    }
                    if let Some(email) = email {
                        user.email = email;
                    }
                }
            }
            UserEvent::UserRoleChanged { to, .. } => {
                if let Some(user) = &mut self.state {
                    user.role = to;
                }
            }
            UserEvent::UserDeactivated { .. } => {
                if let Some(user) = &mut self.state {
                    user.active = false;
                }
            }
            UserEvent::UserReactivated { .. } => {
                if let Some(user) = &mut self.state {
                    user.active = true;
                }
            }
            UserEvent::UserPasswordChanged { .. } => {}
            UserEvent::NotificationPreferencesSet { preferences, .. } => {
                if let Some(user) = &mut self.state {
                    user.notification_preferences = preferences;
                }
            }
        }
        if let Some(user) = &mut self.state {
            user.updated_at = occurred_at;
        }
    }
}

impl User {
    pub fn from_events<I: IntoIterator<Item = UserEvent>>(events: I) -> Self {
        let mut user = User::default();
        for event in events {
            user.apply(event);
        }
        user
    }
}
