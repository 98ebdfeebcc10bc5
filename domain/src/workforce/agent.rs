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
use crate::values::{Actor, AgentStatus, ShiftId, SkillId, UserId, ValidationError};

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
    /// Takes the agent's one running shift for `shift_id`, before that shift is started: the
    /// agent's stream is what makes "one running shift per agent" hold under concurrent starts.
    OpenShift {
        agent: UserStanding,
        shift_id: ShiftId,
        scheduled_end: Option<DateTime<Utc>>,
        actor: Actor,
        at: DateTime<Utc>,
    },
    /// Gives the running shift up (it ended, or never started). Does nothing for another shift.
    CloseShift {
        agent: UserStanding,
        shift_id: ShiftId,
        actor: Actor,
        at: DateTime<Utc>,
    },
}

/// The shift an agent is on, as their profile records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningShift {
    pub shift_id: ShiftId,
    pub scheduled_end: Option<DateTime<Utc>>,
}

impl RunningShift {
    /// Whether it still runs at `at` (a shift past its scheduled end has ended by itself).
    pub fn runs_at(&self, at: DateTime<Utc>) -> bool {
        self.scheduled_end.is_none_or(|end| at < end)
    }
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
    AgentShiftOpened {
        agent_id: UserId,
        shift_id: ShiftId,
        scheduled_end: Option<DateTime<Utc>>,
        opened_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    AgentShiftClosed {
        agent_id: UserId,
        shift_id: ShiftId,
        closed_by: Actor,
        occurred_at: DateTime<Utc>,
    },
}

workforce_event_names!(AgentEvent {
    AgentSkillsSet,
    AgentStatusChanged,
    AgentCapacitySet,
    AgentShiftOpened,
    AgentShiftClosed,
});

impl AgentEvent {
    pub fn agent_id(&self) -> UserId {
        match self {
            AgentEvent::AgentSkillsSet { agent_id, .. }
            | AgentEvent::AgentStatusChanged { agent_id, .. }
            | AgentEvent::AgentCapacitySet { agent_id, .. }
            | AgentEvent::AgentShiftOpened { agent_id, .. }
            | AgentEvent::AgentShiftClosed { agent_id, .. } => *agent_id,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    pub skills: Vec<AgentSkill>,
    pub status: AgentStatus,
    pub capacity: u32,
    #[serde(default)]
    pub running_shift: Option<RunningShift>,
}

impl Default for Agent {
    fn default() -> Self {
        Self {
            skills: Vec::new(),
            status: Agent::INITIAL_STATUS,
            capacity: Agent::DEFAULT_CAPACITY,
            running_shift: None,
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
            AgentCommand::OpenShift {
                agent,
                shift_id,
                scheduled_end,
                actor,
                at,
            } => {
                require_self_or_manager(actor, agent, "manage another agent's shifts")?;
                require_agent(agent)?;
                if let Some(running) = self.running_shift.filter(|r| r.runs_at(*at)) {
                    return Err(WorkforceError::ShiftRunning {
                        shift_id: running.shift_id,
                    });
                }
                Ok(vec![AgentEvent::AgentShiftOpened {
                    agent_id: agent.user_id,
                    shift_id: *shift_id,
                    scheduled_end: *scheduled_end,
                    opened_by: *actor,
                    occurred_at: *at,
                }])
            }
            AgentCommand::CloseShift {
                agent,
                shift_id,
                actor,
                at,
            } => {
                require_self_or_manager(actor, agent, "manage another agent's shifts")?;
                if self.running_shift.map(|r| r.shift_id) != Some(*shift_id) {
                    return Ok(vec![]);
                }
                Ok(vec![AgentEvent::AgentShiftClosed {
                    agent_id: agent.user_id,
                    shift_id: *shift_id,
                    closed_by: *actor,
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
            AgentEvent::AgentShiftOpened {
                shift_id,
                scheduled_end,
                ..
            } => {
                self.running_shift = Some(RunningShift {
                    shift_id,
                    scheduled_end,
                })
            }
            AgentEvent::AgentShiftClosed { .. } => self.running_shift = None,
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

    fn shift(n: u128) -> ShiftId {
        ShiftId(Uuid::from_u128(1000 + n))
    }

    fn opened(n: u128, scheduled_end: Option<DateTime<Utc>>) -> AgentEvent {
        AgentEvent::AgentShiftOpened {
            agent_id: agent(1).user_id,
            shift_id: shift(n),
            scheduled_end,
            opened_by: as_actor(agent(1)),
            occurred_at: at(9, 0),
        }
    }

    fn open(n: u128, at_time: DateTime<Utc>) -> AgentCommand {
        AgentCommand::OpenShift {
            agent: agent(1),
            shift_id: shift(n),
            scheduled_end: None,
            actor: as_actor(agent(1)),
            at: at_time,
        }
    }

    #[test]
    fn an_agent_off_shift_opens_one() {
        TestFramework::<Agent>::with(())
            .given_no_previous_events()
            .when(open(1, at(9, 0)))
            .then_expect_events(vec![opened(1, None)]);
    }

    #[test]
    fn a_second_shift_is_refused_while_the_first_runs() {
        TestFramework::<Agent>::with(())
            .given(vec![opened(1, None)])
            .when(open(2, at(10, 0)))
            .then_expect_error(WorkforceError::ShiftRunning { shift_id: shift(1) });
    }

    #[test]
    fn a_shift_past_its_scheduled_end_no_longer_blocks_the_next() {
        TestFramework::<Agent>::with(())
            .given(vec![opened(1, Some(at(17, 0)))])
            .when(open(2, at(18, 0)))
            .then_expect_events(vec![AgentEvent::AgentShiftOpened {
                agent_id: agent(1).user_id,
                shift_id: shift(2),
                scheduled_end: None,
                opened_by: as_actor(agent(1)),
                occurred_at: at(18, 0),
            }]);
    }

    #[test]
    fn closing_the_running_shift_frees_the_agent_and_closing_another_does_nothing() {
        let close = |n| AgentCommand::CloseShift {
            agent: agent(1),
            shift_id: shift(n),
            actor: as_actor(agent(1)),
            at: at(12, 0),
        };
        TestFramework::<Agent>::with(())
            .given(vec![opened(1, None)])
            .when(close(2))
            .then_expect_events(vec![]);
        TestFramework::<Agent>::with(())
            .given(vec![opened(1, None)])
            .when(close(1))
            .then_expect_events(vec![AgentEvent::AgentShiftClosed {
                agent_id: agent(1).user_id,
                shift_id: shift(1),
                closed_by: as_actor(agent(1)),
                occurred_at: at(12, 0),
            }]);
        let mut agent_state = Agent::default();
        agent_state.apply(opened(1, None));
        agent_state.apply(AgentEvent::AgentShiftClosed {
            agent_id: agent(1).user_id,
            shift_id: shift(1),
            closed_by: as_actor(agent(1)),
            occurred_at: at(12, 0),
        });
        assert_eq!(agent_state.running_shift, None);
    }

    #[test]
    fn another_agent_may_not_open_someones_shift() {
        TestFramework::<Agent>::with(())
            .given_no_previous_events()
            .when(AgentCommand::OpenShift {
                agent: agent(1),
                shift_id: shift(1),
                scheduled_end: None,
                actor: as_actor(agent(2)),
                at: at(9, 0),
            })
            .then_expect_error(WorkforceError::NotPermitted {
                role: Role::Agent,
                action: "manage another agent's shifts",
            });
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
