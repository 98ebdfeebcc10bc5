//! The agent side of the helpdesk: who can work what, when, and how busy they are.
//!
//! * [`skill`] — the skill catalogue (`Billing`, `Network`…).
//! * [`team`] — teams and their members, each a `member`, `lead` or `manager`.
//! * [`agent`] — an agent's skills with proficiency, status and capacity (keyed by user id).
//! * [`shift`] — one shift of one agent, with its breaks.
//! * [`routing`] — the pure router: who is eligible for a ticket, their scores, the choice.
//!
//! Like everything else these are event-sourced, so "why did this ticket go to Ana" can be
//! answered from the log years later.

pub mod agent;
pub mod forecast;
pub mod routing;
pub mod shift;
pub mod skill;
pub mod team;

use crate::access::Permission;
use crate::ticket::UserStanding;
use crate::values::{Actor, Role, ValidationError};

/// Why a workforce command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkforceError {
    #[error("{role} may not {action}")]
    NotPermitted { role: Role, action: &'static str },
    #[error("no such {what}")]
    NotFound { what: &'static str },
    #[error("the {what} already exists")]
    AlreadyExists { what: &'static str },
    #[error("{0}")]
    Invalid(ValidationError),
    /// The command makes no sense in the current state (ending an ended shift, say).
    #[error("{0}")]
    Conflict(&'static str),
    /// The agent is on another shift.
    #[error("shift {shift_id} is running; end it first")]
    ShiftRunning { shift_id: crate::values::ShiftId },
}

impl From<ValidationError> for WorkforceError {
    fn from(error: ValidationError) -> Self {
        WorkforceError::Invalid(error)
    }
}

pub(crate) fn require_manager(actor: &Actor, action: &'static str) -> Result<(), WorkforceError> {
    crate::access::require_actor(actor, Permission::Manage, action).map_err(Into::into)
}

impl From<crate::access::NotPermitted> for WorkforceError {
    fn from(refusal: crate::access::NotPermitted) -> Self {
        WorkforceError::NotPermitted {
            role: refusal.role,
            action: refusal.action,
        }
    }
}

/// The agent themself, or a manager or administrator on their behalf.
pub(crate) fn require_self_or_manager(
    actor: &Actor,
    agent: &UserStanding,
    action: &'static str,
) -> Result<(), WorkforceError> {
    if actor.user_id == agent.user_id || actor.role.may(Permission::Manage) {
        Ok(())
    } else {
        Err(WorkforceError::NotPermitted {
            role: actor.role,
            action,
        })
    }
}

/// Only people who can hold tickets (active agents and managers) have skills, shifts, teams.
pub(crate) fn require_agent(agent: &UserStanding) -> Result<(), WorkforceError> {
    if agent.active && agent.role.can_be_assigned() {
        Ok(())
    } else {
        Err(WorkforceError::Invalid(ValidationError::new(
            "agent_id",
            "must be an active agent or manager",
        )))
    }
}

pub(crate) use crate::event_names as workforce_event_names;

#[cfg(test)]
pub(crate) mod fixtures {
    use chrono::{DateTime, TimeZone, Utc};
    use uuid::Uuid;

    use crate::ticket::UserStanding;
    use crate::values::{Actor, Role, UserId};

    pub fn at(hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, hour, minute, 0)
            .single()
            .unwrap_or_default()
    }
    pub fn manager() -> Actor {
        Actor::new(UserId(Uuid::from_u128(100)), Role::Manager)
    }
    pub fn agent(n: u128) -> UserStanding {
        UserStanding {
            user_id: UserId(Uuid::from_u128(n)),
            role: Role::Agent,
            active: true,
        }
    }
    pub fn as_actor(agent: UserStanding) -> Actor {
        Actor::new(agent.user_id, agent.role)
    }
}
