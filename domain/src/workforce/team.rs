//! Teams: a name and members, each a `member`, `lead` or `manager` of the team.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use super::{WorkforceError, require_agent, require_manager, workforce_event_names};
use crate::ticket::UserStanding;
use crate::values::{Actor, Note, TeamId, TeamName, TeamRole, UserId};

#[derive(Debug, Clone, PartialEq)]
pub enum TeamCommand {
    Create {
        team_id: TeamId,
        name: TeamName,
        description: Option<Note>,
        actor: Actor,
        at: DateTime<Utc>,
    },
    /// Adds the person, or changes their role if they are already a member.
    AddMember {
        member: UserStanding,
        team_role: TeamRole,
        actor: Actor,
        at: DateTime<Utc>,
    },
    RemoveMember {
        user_id: UserId,
        actor: Actor,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TeamEvent {
    TeamCreated {
        team_id: TeamId,
        name: TeamName,
        description: Option<Note>,
        created_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    TeamMemberAdded {
        user_id: UserId,
        team_role: TeamRole,
        added_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    TeamMemberRoleChanged {
        user_id: UserId,
        from: TeamRole,
        to: TeamRole,
        changed_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    TeamMemberRemoved {
        user_id: UserId,
        removed_by: Actor,
        occurred_at: DateTime<Utc>,
    },
}

workforce_event_names!(TeamEvent {
    TeamCreated,
    TeamMemberAdded,
    TeamMemberRoleChanged,
    TeamMemberRemoved,
});

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Team {
    pub id: Option<TeamId>,
    pub name: Option<TeamName>,
    pub members: BTreeMap<UserId, TeamRole>,
}

impl Team {
    pub fn decide(&self, command: &TeamCommand) -> Result<Vec<TeamEvent>, WorkforceError> {
        const ACTION: &str = "manage teams";
        match command {
            TeamCommand::Create {
                team_id,
                name,
                description,
                actor,
                at,
            } => {
                require_manager(actor, ACTION)?;
                if self.id.is_some() {
                    return Err(WorkforceError::AlreadyExists { what: "team" });
                }
                Ok(vec![TeamEvent::TeamCreated {
                    team_id: *team_id,
                    name: name.clone(),
                    description: description.clone(),
                    created_by: *actor,
                    occurred_at: *at,
                }])
            }
            TeamCommand::AddMember {
                member,
                team_role,
                actor,
                at,
            } => {
                require_manager(actor, ACTION)?;
                self.require_exists()?;
                require_agent(member)?;
                Ok(match self.members.get(&member.user_id) {
                    Some(current) if current == team_role => vec![],
                    Some(current) => vec![TeamEvent::TeamMemberRoleChanged {
                        user_id: member.user_id,
                        from: *current,
                        to: *team_role,
                        changed_by: *actor,
                        occurred_at: *at,
                    }],
                    None => vec![TeamEvent::TeamMemberAdded {
                        user_id: member.user_id,
                        team_role: *team_role,
                        added_by: *actor,
                        occurred_at: *at,
                    }],
                })
            }
            TeamCommand::RemoveMember { user_id, actor, at } => {
                require_manager(actor, ACTION)?;
                self.require_exists()?;
                if !self.members.contains_key(user_id) {
                    return Err(WorkforceError::NotFound {
                        what: "team member",
                    });
                }
                Ok(vec![TeamEvent::TeamMemberRemoved {
                    user_id: *user_id,
                    removed_by: *actor,
                    occurred_at: *at,
                }])
            }
        }
    }

    fn require_exists(&self) -> Result<(), WorkforceError> {
        match self.id {
            Some(_) => Ok(()),
            None => Err(WorkforceError::NotFound { what: "team" }),
        }
    }

    /// The team's leads, managers first: who "the team lead" is when a rule escalates to one.
    pub fn leads(&self) -> Vec<UserId> {
        let mut leads: Vec<(u8, UserId)> = self
            .members
            .iter()
            .filter_map(|(user, role)| match role {
                TeamRole::Lead => Some((1, *user)),
                TeamRole::Manager => Some((0, *user)),
                TeamRole::Member => None,
            })
            .collect();
        leads.sort();
        leads.into_iter().map(|(_, user)| user).collect()
    }
}

impl Aggregate for Team {
    const TYPE: &'static str = "team";
    type Command = TeamCommand;
    type Event = TeamEvent;
    type Error = WorkforceError;
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
            TeamEvent::TeamCreated { team_id, name, .. } => {
                self.id = Some(team_id);
                self.name = Some(name);
            }
            TeamEvent::TeamMemberAdded {
                user_id, team_role, ..
            } => {
                self.members.insert(user_id, team_role);
            }
            TeamEvent::TeamMemberRoleChanged { user_id, to, .. } => {
                self.members.insert(user_id, to);
            }
            TeamEvent::TeamMemberRemoved { user_id, .. } => {
                self.members.remove(&user_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Role;
    use crate::workforce::fixtures::{agent, as_actor, at, manager};
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    fn created() -> TeamEvent {
        TeamEvent::TeamCreated {
            team_id: TeamId(Uuid::from_u128(7)),
            name: TeamName::parse("Tier 1").unwrap_or_else(|e| panic!("{e}")),
            description: None,
            created_by: manager(),
            occurred_at: at(9, 0),
        }
    }

    #[test]
    fn members_join_change_role_and_leave() {
        TestFramework::<Team>::with(())
            .given(vec![created()])
            .when(TeamCommand::AddMember {
                member: agent(1),
                team_role: TeamRole::Lead,
                actor: manager(),
                at: at(9, 1),
            })
            .then_expect_events(vec![TeamEvent::TeamMemberAdded {
                user_id: agent(1).user_id,
                team_role: TeamRole::Lead,
                added_by: manager(),
                occurred_at: at(9, 1),
            }]);
        let joined = TeamEvent::TeamMemberAdded {
            user_id: agent(1).user_id,
            team_role: TeamRole::Member,
            added_by: manager(),
            occurred_at: at(9, 1),
        };
        TestFramework::<Team>::with(())
            .given(vec![created(), joined.clone()])
            .when(TeamCommand::AddMember {
                member: agent(1),
                team_role: TeamRole::Member,
                actor: manager(),
                at: at(9, 2),
            })
            .then_expect_events(vec![]);
        TestFramework::<Team>::with(())
            .given(vec![created(), joined.clone()])
            .when(TeamCommand::AddMember {
                member: agent(1),
                team_role: TeamRole::Manager,
                actor: manager(),
                at: at(9, 2),
            })
            .then_expect_events(vec![TeamEvent::TeamMemberRoleChanged {
                user_id: agent(1).user_id,
                from: TeamRole::Member,
                to: TeamRole::Manager,
                changed_by: manager(),
                occurred_at: at(9, 2),
            }]);
        TestFramework::<Team>::with(())
            .given(vec![created(), joined])
            .when(TeamCommand::RemoveMember {
                user_id: agent(1).user_id,
                actor: manager(),
                at: at(9, 3),
            })
            .then_expect_events(vec![TeamEvent::TeamMemberRemoved {
                user_id: agent(1).user_id,
                removed_by: manager(),
                occurred_at: at(9, 3),
            }]);
    }

    #[test]
    fn only_managers_manage_only_agents_join_and_only_members_leave() {
        TestFramework::<Team>::with(())
            .given(vec![created()])
            .when(TeamCommand::AddMember {
                member: agent(1),
                team_role: TeamRole::Member,
                actor: as_actor(agent(2)),
                at: at(9, 1),
            })
            .then_expect_error(WorkforceError::NotPermitted {
                role: Role::Agent,
                action: "manage teams",
            });
        let mut customer = agent(3);
        customer.role = Role::Customer;
        TestFramework::<Team>::with(())
            .given(vec![created()])
            .when(TeamCommand::AddMember {
                member: customer,
                team_role: TeamRole::Member,
                actor: manager(),
                at: at(9, 1),
            })
            .then_expect_error(WorkforceError::Invalid(crate::ValidationError::new(
                "agent_id",
                "must be an active agent or manager",
            )));
        TestFramework::<Team>::with(())
            .given(vec![created()])
            .when(TeamCommand::RemoveMember {
                user_id: agent(1).user_id,
                actor: manager(),
                at: at(9, 1),
            })
            .then_expect_error(WorkforceError::NotFound {
                what: "team member",
            });
        TestFramework::<Team>::with(())
            .given_no_previous_events()
            .when(TeamCommand::AddMember {
                member: agent(1),
                team_role: TeamRole::Member,
                actor: manager(),
                at: at(9, 1),
            })
            .then_expect_error(WorkforceError::NotFound { what: "team" });
    }

    #[test]
    fn managers_come_before_leads_and_members_are_not_leads() {
        let mut team = Team::default();
        for event in [
            created(),
            TeamEvent::TeamMemberAdded {
                user_id: agent(1).user_id,
                team_role: TeamRole::Lead,
                added_by: manager(),
                occurred_at: at(9, 1),
            },
            TeamEvent::TeamMemberAdded {
                user_id: agent(2).user_id,
                team_role: TeamRole::Member,
                added_by: manager(),
                occurred_at: at(9, 1),
            },
            TeamEvent::TeamMemberAdded {
                user_id: agent(3).user_id,
                team_role: TeamRole::Manager,
                added_by: manager(),
                occurred_at: at(9, 1),
            },
        ] {
            team.apply(event);
        }
        assert_eq!(team.leads(), vec![agent(3).user_id, agent(1).user_id]);
    }
}
