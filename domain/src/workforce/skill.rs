//! The skill catalogue. A skill's id is derived from its name (case-insensitively), so the
//! catalogue cannot hold `Billing` twice however many managers add it at once.

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{WorkforceError, require_manager, workforce_event_names};
use crate::values::{Actor, Note, SkillId, SkillName};

/// The namespace of name-derived skill ids (a fixed random UUID).
const SKILL_NAMESPACE: Uuid = Uuid::from_u128(0x5c1e_27d3_9a4b_4f0e_8c61_2b7a_d0f3_e915);

impl SkillId {
    /// The id the skill called `name` has, or would have.
    pub fn for_name(name: &SkillName) -> Self {
        SkillId(Uuid::new_v5(
            &SKILL_NAMESPACE,
            name.as_str().to_lowercase().as_bytes(),
        ))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SkillCommand {
    Create {
        name: SkillName,
        description: Option<Note>,
        actor: Actor,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SkillEvent {
    SkillCreated {
        skill_id: SkillId,
        name: SkillName,
        description: Option<Note>,
        created_by: Actor,
        occurred_at: DateTime<Utc>,
    },
}

workforce_event_names!(SkillEvent { SkillCreated });

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Skill {
    pub id: Option<SkillId>,
    pub name: Option<SkillName>,
}

impl Skill {
    pub fn decide(&self, command: &SkillCommand) -> Result<Vec<SkillEvent>, WorkforceError> {
        match command {
            SkillCommand::Create {
                name,
                description,
                actor,
                at,
            } => {
                require_manager(actor, "change the skill catalogue")?;
                if self.id.is_some() {
                    return Err(WorkforceError::AlreadyExists { what: "skill" });
                }
                Ok(vec![SkillEvent::SkillCreated {
                    skill_id: SkillId::for_name(name),
                    name: name.clone(),
                    description: description.clone(),
                    created_by: *actor,
                    occurred_at: *at,
                }])
            }
        }
    }
}

impl Aggregate for Skill {
    const TYPE: &'static str = "skill";
    type Command = SkillCommand;
    type Event = SkillEvent;
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
            SkillEvent::SkillCreated { skill_id, name, .. } => {
                self.id = Some(skill_id);
                self.name = Some(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workforce::fixtures::{agent, as_actor, at, manager};
    use cqrs_es::test::TestFramework;

    fn name(text: &str) -> SkillName {
        SkillName::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_manager_adds_a_skill_whose_id_follows_from_its_name() {
        TestFramework::<Skill>::with(())
            .given_no_previous_events()
            .when(SkillCommand::Create {
                name: name("Billing"),
                description: None,
                actor: manager(),
                at: at(9, 0),
            })
            .then_expect_events(vec![SkillEvent::SkillCreated {
                skill_id: SkillId::for_name(&name("billing")),
                name: name("Billing"),
                description: None,
                created_by: manager(),
                occurred_at: at(9, 0),
            }]);
        assert_ne!(
            SkillId::for_name(&name("Billing")),
            SkillId::for_name(&name("Network"))
        );
    }

    #[test]
    fn the_same_skill_is_not_added_twice_and_agents_do_not_add_skills() {
        let created = SkillEvent::SkillCreated {
            skill_id: SkillId::for_name(&name("Billing")),
            name: name("Billing"),
            description: None,
            created_by: manager(),
            occurred_at: at(9, 0),
        };
        TestFramework::<Skill>::with(())
            .given(vec![created])
            .when(SkillCommand::Create {
                name: name("BILLING"),
                description: None,
                actor: manager(),
                at: at(9, 1),
            })
            .then_expect_error(WorkforceError::AlreadyExists { what: "skill" });
        TestFramework::<Skill>::with(())
            .given_no_previous_events()
            .when(SkillCommand::Create {
                name: name("Network"),
                description: None,
                actor: as_actor(agent(1)),
                at: at(9, 1),
            })
            .then_expect_error(WorkforceError::NotPermitted {
                role: crate::Role::Agent,
                action: "change the skill catalogue",
            });
    }
}
