//! Who may do what. Every permission rule of Docket is a [`Permission`], and whether a role has
//! it is answered here and nowhere else: the aggregates ask before deciding a command, the
//! application services before a read. A new role or permission is one exhaustive match.

use crate::values::{Actor, Role};

/// Something a role may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Read what only staff see: SLA configuration and clocks, agents, skills, teams, shifts,
    /// workload, the audit trail, internal comments.
    ReadStaffViews,
    /// Work tickets: open them for customers, edit, assign, escalate, claim from the queue.
    WorkTickets,
    /// Change configuration and other people's work: SLA policies, calendars and rules, the
    /// skill catalogue, teams, agents' skills and capacity, others' shifts and claims.
    Manage,
    /// Look up and list accounts.
    ReadAccounts,
    /// Create accounts with any role and change them.
    AdministerAccounts,
    /// Configure what leaves Docket: webhook endpoints and their secrets.
    ManageIntegrations,
}

impl Permission {
    /// Every permission, for exhaustive tests.
    pub const ALL: &'static [Permission] = &[
        Permission::ReadStaffViews,
        Permission::WorkTickets,
        Permission::Manage,
        Permission::ReadAccounts,
        Permission::AdministerAccounts,
        Permission::ManageIntegrations,
    ];
}

impl Role {
    /// Whether this role has `permission`.
    pub fn may(self, permission: Permission) -> bool {
        match permission {
            Permission::ReadStaffViews => !matches!(self, Role::Customer),
            Permission::WorkTickets => matches!(self, Role::Agent | Role::Manager | Role::Admin),
            Permission::Manage | Permission::ReadAccounts => {
                matches!(self, Role::Manager | Role::Admin)
            }
            Permission::AdministerAccounts | Permission::ManageIntegrations => {
                matches!(self, Role::Admin)
            }
        }
    }
}

impl Role {
    /// Whether everything this role may do, `other` may do too: a key or a delegate with this
    /// role never exceeds someone holding `other`. Judged from the permission table, so a new
    /// permission orders the roles by itself.
    pub fn is_within(self, other: Role) -> bool {
        Permission::ALL
            .iter()
            .all(|permission| !self.may(*permission) || other.may(*permission))
    }
}

/// A refusal: `role` may not do `action` (said in words, for the person refused).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{role} may not {action}")]
pub struct NotPermitted {
    pub role: Role,
    pub action: &'static str,
}

/// `Ok` when `role` has `permission`; otherwise a refusal naming `action`.
pub fn require(
    role: Role,
    permission: Permission,
    action: &'static str,
) -> Result<(), NotPermitted> {
    if role.may(permission) {
        Ok(())
    } else {
        Err(NotPermitted { role, action })
    }
}

/// [`require`] for the actor of a command.
pub fn require_actor(
    actor: &Actor,
    permission: Permission,
    action: &'static str,
) -> Result<(), NotPermitted> {
    require(actor.role, permission, action)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole table, written out: a change to any rule must change this test.
    #[test]
    fn each_role_has_exactly_its_permissions() {
        use Permission::*;
        let expected: &[(Role, &[Permission])] = &[
            (
                Role::Admin,
                &[
                    ReadStaffViews,
                    WorkTickets,
                    Manage,
                    ReadAccounts,
                    AdministerAccounts,
                    ManageIntegrations,
                ],
            ),
            (
                Role::Manager,
                &[ReadStaffViews, WorkTickets, Manage, ReadAccounts],
            ),
            (Role::Agent, &[ReadStaffViews, WorkTickets]),
            (Role::Viewer, &[ReadStaffViews]),
            (Role::Customer, &[]),
            (Role::System, &[ReadStaffViews]),
        ];
        for (role, allowed) in expected {
            for permission in Permission::ALL {
                assert_eq!(
                    role.may(*permission),
                    allowed.contains(permission),
                    "{role} and {permission:?}"
                );
            }
        }
        assert_eq!(expected.len(), Role::ALL.len());
    }

    #[test]
    fn roles_are_ordered_by_what_they_may_do() {
        use Role::*;
        let order = [Viewer, Agent, Manager, Admin];
        for (i, lower) in order.iter().enumerate() {
            for (j, higher) in order.iter().enumerate() {
                assert_eq!(lower.is_within(*higher), i <= j, "{lower} within {higher}");
            }
        }
        // A customer may do nothing staff-only, so it is within every role; the system only
        // reads, like a viewer.
        assert!(Customer.is_within(Viewer));
        assert!(System.is_within(Viewer) && Viewer.is_within(System));
        assert!(!Agent.is_within(Customer));
    }

    #[test]
    fn a_refusal_names_the_role_and_the_action() {
        let refused = require(Role::Viewer, Permission::WorkTickets, "edit tickets");
        assert_eq!(
            refused,
            Err(NotPermitted {
                role: Role::Viewer,
                action: "edit tickets"
            })
        );
        assert_eq!(
            refused.err().map(|e| e.to_string()).as_deref(),
            Some("viewer may not edit tickets")
        );
        assert_eq!(require(Role::Admin, Permission::Manage, "x"), Ok(()));
    }
}
