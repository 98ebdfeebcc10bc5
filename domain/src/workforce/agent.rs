//! An agent's working profile, keyed by their user id: skills with proficiency, status, and
//! capacity (the most open tickets they hold at once).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use super::{
    WorkforceError, require_agent, require_manager, require_self_or_manager, workforce_event_names,
};
use crate::ticket::UserStanding;
use crate::values::{Actor, AgentStatus, SkillId, UserId, ValidationError};

/// A skill an agent holds, with proficiency from 1 (learning) to 5 (expert).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSkill {
    pub skill_id: SkillId,
    pub proficiency: u8,
}

impl AgentSkill {
    pub fn new(skill_id: SkillId, proficiency: u8) -> Result<Self, ValidationError> {
        if !(1..=5).contains(&proficiency) {
            return Err(ValidationError::new(
                "proficiency",
                "must be between 1 and 5",
            ));
        }
        Ok(Self {
            skill_id,
            proficiency,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum AgentCommand {
    /// Replaces the agent's skills. The application checked the skills exist.
    SetSkills {
        agent: UserStanding,
        skills: Vec<AgentSkill>,
        actor: Actor,
        at: DateTime<Utc>,
    },
    ChangeStatus {
        agent: UserStanding,
        status: AgentStatus,
        actor: Actor,
        at: DateTime<Utc>,
    },
    SetCapacity {
        agent: UserStanding,
        capacity: u32,
        actor: Actor,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AgentEvent {
    AgentSkillsSet {
        agent_id: UserId,
        skills: Vec<AgentSkill>,
        set_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    AgentStatusChanged {
        agent_id: UserId,
        from: AgentStatus,
        to: AgentStatus,
        changed_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    AgentCapacitySet {
        agent_id: UserId,
        capacity: u32,
        set_by: Actor,
        occurred_at: DateTime<Utc>,
    },
}

workforce_event_names!(AgentEvent {
    AgentSkillsSet,
    AgentStatusChanged,
    AgentCapacitySet,
});

impl AgentEvent {
    pub fn agent_id(&self) -> UserId {
        match self {
            AgentEvent::AgentSkillsSet { agent_id, .. }
            | AgentEvent::AgentStatusChanged { agent_id, .. }
            | AgentEvent::AgentCapacitySet { agent_id, .. } => *agent_id,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    pub skills: Vec<AgentSkill>,
    pub status: AgentStatus,
    pub capacity: u32,
}

impl Default for Agent {
    fn default() -> Self {
        Self {
            skills: Vec::new(),
            status: Agent::INITIAL_STATUS,
            capacity: Agent::DEFAULT_CAPACITY,
        }
    }
}

impl Agent {
    /// Until they say otherwise, an agent holds at most this many open tickets at once.
    pub const DEFAULT_CAPACITY: u32 = 10;
    pub const MAX_CAPACITY: u32 = 1_000;
    /// Nobody is routed to until they are `available`.
    pub const INITIAL_STATUS: AgentStatus = AgentStatus::Offline;

    pub fn decide(&self, command: &AgentCommand) -> Result<Vec<AgentEvent>, WorkforceError> {
        match command {
            AgentCommand::SetSkills {
                agent,
                skills,
                actor,
                at,
            } => {
                require_manager(actor, "set an agent's skills")?;
                require_agent(agent)?;
                let distinct: BTreeSet<SkillId> = skills.iter().map(|s| s.skill_id).collect();
                if distinct.len() != skills.len() {
                    return Err(ValidationError::new("skills", "name each skill once").into());
                }
                if *skills == self.skills {
                    return Ok(vec![]);
                }
                Ok(vec![AgentEvent::AgentSkillsSet {
                    agent_id: agent.user_id,
                    skills: skills.clone(),
                    set_by: *actor,
                    occurred_at: *at,
                }])
            }
            AgentCommand::ChangeStatus {
                agent,
                status,
                actor,
                at,
            } => {
                require_self_or_manager(actor, agent, "change another agent's status")?;
                require_agent(agent)?;
                if *status == self.status {
                    return Ok(vec![]);
                }
                Ok(vec![AgentEvent::AgentStatusChanged {
                    agent_id: agent.user_id,
                    from: self.status,
                    to: *status,
                    changed_by: *actor,
                    occurred_at: *at,
                }])
            }
            AgentCommand::SetCapacity {
                agent,
                capacity,
                actor,
                at,
            } => {
                require_manager(actor, "set an agent's capacity")?;
                require_agent(agent)?;
                if *capacity > Self::MAX_CAPACITY {
                    return Err(ValidationError::new(
                        "capacity",
                        format!("must be at most {}", Self::MAX_CAPACITY),
                    )
                    .into());
                }
                if *capacity == self.capacity {
                    return Ok(vec![]);
                }
                Ok(vec![AgentEvent::AgentCapacitySet {
                    agent_id: agent.user_id,
                    capacity: *capacity,
                    set_by: *actor,
                    occurred_at: *at,
                }])
            }
        }
    }
}

impl Aggregate for Agent {
    const TYPE: &'static str = "agent";
    type Command = AgentCommand;
    type Event = AgentEvent;
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
            AgentEvent::AgentSkillsSet { skills, .. } => self.skills = skills,
            AgentEvent::AgentStatusChanged { to, .. } => self.status = to,
            AgentEvent::AgentCapacitySet { capacity, .. } => self.capacity = capacity,
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

    fn skill(n: u128, proficiency: u8) -> AgentSkill {
        AgentSkill::new(SkillId(Uuid::from_u128(n)), proficiency).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_manager_sets_skills_and_setting_the_same_again_records_nothing() {
        let set = AgentEvent::AgentSkillsSet {
            agent_id: agent(1).user_id,
            skills: vec![skill(1, 5), skill(2, 3)],
            set_by: manager(),
            occurred_at: at(9, 0),
        };
        TestFramework::<Agent>::with(())
            .given_no_previous_events()
            .when(AgentCommand::SetSkills {
                agent: agent(1),
                skills: vec![skill(1, 5), skill(2, 3)],
                actor: manager(),
                at: at(9, 0),
            })
            .then_expect_events(vec![set.clone()]);
        TestFramework::<Agent>::with(())
            .given(vec![set])
            .when(AgentCommand::SetSkills {
                agent: agent(1),
                skills: vec![skill(1, 5), skill(2, 3)],
                actor: manager(),
                at: at(9, 5),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn proficiency_is_one_to_five_and_each_skill_is_named_once() {
        assert!(AgentSkill::new(SkillId(Uuid::nil()), 0).is_err());
        assert!(AgentSkill::new(SkillId(Uuid::nil()), 6).is_err());
        TestFramework::<Agent>::with(())
            .given_no_previous_events()
            .when(AgentCommand::SetSkills {
                agent: agent(1),
                skills: vec![skill(1, 5), skill(1, 3)],
                actor: manager(),
                at: at(9, 0),
            })
            .then_expect_error(ValidationError::new("skills", "name each skill once").into());
    }

    #[test]
    fn agents_change_their_own_status_but_not_anyone_elses() {
        TestFramework::<Agent>::with(())
            .given_no_previous_events()
            .when(AgentCommand::ChangeStatus {
                agent: agent(1),
                status: AgentStatus::Available,
                actor: as_actor(agent(1)),
                at: at(9, 0),
            })
            .then_expect_events(vec![AgentEvent::AgentStatusChanged {
                agent_id: agent(1).user_id,
                from: AgentStatus::Offline,
                to: AgentStatus::Available,
                changed_by: as_actor(agent(1)),
                occurred_at: at(9, 0),
            }]);
        TestFramework::<Agent>::with(())
            .given_no_previous_events()
            .when(AgentCommand::ChangeStatus {
                agent: agent(1),
                status: AgentStatus::Available,
                actor: as_actor(agent(2)),
                at: at(9, 0),
            })
            .then_expect_error(WorkforceError::NotPermitted {
                role: Role::Agent,
                action: "change another agent's status",
            });
    }

    #[test]
    fn capacity_is_set_by_managers_within_bounds() {
        TestFramework::<Agent>::with(())
            .given_no_previous_events()
            .when(AgentCommand::SetCapacity {
                agent: agent(1),
                capacity: 3,
                actor: manager(),
                at: at(9, 0),
            })
            .then_expect_events(vec![AgentEvent::AgentCapacitySet {
                agent_id: agent(1).user_id,
                capacity: 3,
                set_by: manager(),
                occurred_at: at(9, 0),
            }]);
        TestFramework::<Agent>::with(())
            .given_no_previous_events()
            .when(AgentCommand::SetCapacity {
                agent: agent(1),
                capacity: Agent::DEFAULT_CAPACITY,
                actor: manager(),
                at: at(9, 0),
            })
            .then_expect_events(vec![]);
        TestFramework::<Agent>::with(())
            .given_no_previous_events()
            .when(AgentCommand::SetCapacity {
                agent: agent(1),
                capacity: 3,
                actor: as_actor(agent(1)),
                at: at(9, 0),
            })
            .then_expect_error(WorkforceError::NotPermitted {
                role: Role::Agent,
                action: "set an agent's capacity",
            });
    }
}
