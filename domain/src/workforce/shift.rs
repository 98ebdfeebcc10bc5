//! One shift of one agent, with the breaks scheduled in it. An agent is on shift from its start
//! until it is ended or its scheduled end passes, and off it during a break.

use chrono::{DateTime, Duration, Utc};
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use super::{WorkforceError, require_agent, require_self_or_manager, workforce_event_names};
use crate::ticket::UserStanding;
use crate::values::{Actor, Note, ShiftId, UserId, ValidationError};

/// A scheduled break: `[starts_at, ends_at)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakWindow {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

impl BreakWindow {
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.starts_at <= at && at < self.ends_at
    }

    fn overlaps(&self, other: &BreakWindow) -> bool {
        self.starts_at < other.ends_at && other.starts_at < self.ends_at
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ShiftCommand {
    Start {
        shift_id: ShiftId,
        agent: UserStanding,
        /// When the shift is planned to end; absent: until ended.
        scheduled_end: Option<DateTime<Utc>>,
        actor: Actor,
        at: DateTime<Utc>,
    },
    ScheduleBreak {
        window: BreakWindow,
        reason: Option<Note>,
        actor: Actor,
        at: DateTime<Utc>,
    },
    End {
        actor: Actor,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ShiftEvent {
    ShiftStarted {
        shift_id: ShiftId,
        agent_id: UserId,
        scheduled_end: Option<DateTime<Utc>>,
        started_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    BreakScheduled {
        agent_id: UserId,
        window: BreakWindow,
        reason: Option<Note>,
        scheduled_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    ShiftEnded {
        agent_id: UserId,
        ended_by: Actor,
        occurred_at: DateTime<Utc>,
    },
}

workforce_event_names!(ShiftEvent {
    ShiftStarted,
    BreakScheduled,
    ShiftEnded,
});

/// The longest shift and the longest break one command may schedule.
const MAX_SHIFT: Duration = Duration::hours(24);
const MAX_BREAK: Duration = Duration::hours(4);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Shift {
    pub id: Option<ShiftId>,
    pub agent_id: Option<UserId>,
    pub started_at: Option<DateTime<Utc>>,
    pub scheduled_end: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub breaks: Vec<BreakWindow>,
}

impl Shift {
    /// Whether the agent is on this shift at `at` (breaks aside).
    pub fn is_on(&self, at: DateTime<Utc>) -> bool {
        self.started_at.is_some_and(|start| start <= at)
            && self.ended_at.is_none_or(|end| at < end)
            && self.scheduled_end.is_none_or(|end| at < end)
    }

    pub fn on_break(&self, at: DateTime<Utc>) -> bool {
        self.breaks.iter().any(|b| b.contains(at))
    }

    pub fn decide(&self, command: &ShiftCommand) -> Result<Vec<ShiftEvent>, WorkforceError> {
        const ACTION: &str = "manage another agent's shifts";
        match command {
            ShiftCommand::Start {
                shift_id,
                agent,
                scheduled_end,
                actor,
                at,
            } => {
                require_self_or_manager(actor, agent, ACTION)?;
                require_agent(agent)?;
                if self.id.is_some() {
                    return Err(WorkforceError::AlreadyExists { what: "shift" });
                }
                if let Some(end) = scheduled_end
                    && (*end <= *at || *end - *at > MAX_SHIFT)
                {
                    return Err(ValidationError::new(
                        "scheduled_end",
                        "must be after the start and within 24 hours",
                    )
                    .into());
                }
                Ok(vec![ShiftEvent::ShiftStarted {
                    shift_id: *shift_id,
                    agent_id: agent.user_id,
                    scheduled_end: *scheduled_end,
                    started_by: *actor,
                    occurred_at: *at,
                }])
            }
            ShiftCommand::ScheduleBreak {
                window,
                reason,
                actor,
                at,
            } => {
                let agent_id = self.running(*at)?;
                self.require_self_or_manager(actor, agent_id, ACTION)?;
                if window.ends_at <= window.starts_at
                    || window.ends_at - window.starts_at > MAX_BREAK
                {
                    return Err(ValidationError::new(
                        "ends_at",
                        "must be after starts_at, at most 4 hours later",
                    )
                    .into());
                }
                if window.ends_at <= *at {
                    return Err(ValidationError::new("ends_at", "must not be in the past").into());
                }
                if self.breaks.iter().any(|b| b.overlaps(window)) {
                    return Err(WorkforceError::Conflict(
                        "the break overlaps another break of the shift",
                    ));
                }
                Ok(vec![ShiftEvent::BreakScheduled {
                    agent_id,
                    window: *window,
                    reason: reason.clone(),
                    scheduled_by: *actor,
                    occurred_at: *at,
                }])
            }
            ShiftCommand::End { actor, at } => {
                let agent_id = self.running(*at)?;
                self.require_self_or_manager(actor, agent_id, ACTION)?;
                Ok(vec![ShiftEvent::ShiftEnded {
                    agent_id,
                    ended_by: *actor,
                    occurred_at: *at,
                }])
            }
        }
    }

    fn running(&self, at: DateTime<Utc>) -> Result<UserId, WorkforceError> {
        let Some(agent_id) = self.agent_id else {
            return Err(WorkforceError::NotFound { what: "shift" });
        };
        if !self.is_on(at) {
            return Err(WorkforceError::Conflict("the shift has already ended"));
        }
        Ok(agent_id)
    }

    fn require_self_or_manager(
        &self,
        actor: &Actor,
        agent_id: UserId,
        action: &'static str,
    ) -> Result<(), WorkforceError> {
        let owner = UserStanding {
            user_id: agent_id,
            role: crate::Role::Agent,
            active: true,
        };
        require_self_or_manager(actor, &owner, action)
    }
}

impl Aggregate for Shift {
    const TYPE: &'static str = "shift";
    type Command = ShiftCommand;
    type Event = ShiftEvent;
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
            ShiftEvent::ShiftStarted {
                shift_id,
                agent_id,
                scheduled_end,
                occurred_at,
                ..
            } => {
                self.id = Some(shift_id);
                self.agent_id = Some(agent_id);
                self.started_at = Some(occurred_at);
                self.scheduled_end = scheduled_end;
            }
            ShiftEvent::BreakScheduled { window, .. } => self.breaks.push(window),
            ShiftEvent::ShiftEnded { occurred_at, .. } => self.ended_at = Some(occurred_at),
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

    fn started() -> ShiftEvent {
        ShiftEvent::ShiftStarted {
            shift_id: ShiftId(Uuid::from_u128(50)),
            agent_id: agent(1).user_id,
            scheduled_end: Some(at(17, 0)),
            started_by: as_actor(agent(1)),
            occurred_at: at(9, 0),
        }
    }

    fn window(from: (u32, u32), to: (u32, u32)) -> BreakWindow {
        BreakWindow {
            starts_at: at(from.0, from.1),
            ends_at: at(to.0, to.1),
        }
    }

    #[test]
    fn an_agent_starts_a_shift_and_is_on_it_until_its_scheduled_end() {
        TestFramework::<Shift>::with(())
            .given_no_previous_events()
            .when(ShiftCommand::Start {
                shift_id: ShiftId(Uuid::from_u128(50)),
                agent: agent(1),
                scheduled_end: Some(at(17, 0)),
                actor: as_actor(agent(1)),
                at: at(9, 0),
            })
            .then_expect_events(vec![started()]);
        let mut shift = Shift::default();
        shift.apply(started());
        assert!(!shift.is_on(at(8, 59)));
        assert!(shift.is_on(at(9, 0)));
        assert!(shift.is_on(at(16, 59)));
        assert!(!shift.is_on(at(17, 0)));
    }

    #[test]
    fn a_break_takes_the_agent_off_for_its_window_only() {
        TestFramework::<Shift>::with(())
            .given(vec![started()])
            .when(ShiftCommand::ScheduleBreak {
                window: window((12, 0), (12, 30)),
                reason: None,
                actor: as_actor(agent(1)),
                at: at(11, 0),
            })
            .then_expect_events(vec![ShiftEvent::BreakScheduled {
                agent_id: agent(1).user_id,
                window: window((12, 0), (12, 30)),
                reason: None,
                scheduled_by: as_actor(agent(1)),
                occurred_at: at(11, 0),
            }]);
        let mut shift = Shift::default();
        shift.apply(started());
        shift.apply(ShiftEvent::BreakScheduled {
            agent_id: agent(1).user_id,
            window: window((12, 0), (12, 30)),
            reason: None,
            scheduled_by: as_actor(agent(1)),
            occurred_at: at(11, 0),
        });
        assert!(!shift.on_break(at(11, 59)));
        assert!(shift.on_break(at(12, 0)));
        assert!(!shift.on_break(at(12, 30)));
    }

    #[test]
    fn breaks_must_be_sane_and_not_overlap() {
        let lunch = ShiftEvent::BreakScheduled {
            agent_id: agent(1).user_id,
            window: window((12, 0), (12, 30)),
            reason: None,
            scheduled_by: as_actor(agent(1)),
            occurred_at: at(11, 0),
        };
        TestFramework::<Shift>::with(())
            .given(vec![started(), lunch])
            .when(ShiftCommand::ScheduleBreak {
                window: window((12, 15), (12, 45)),
                reason: None,
                actor: as_actor(agent(1)),
                at: at(11, 5),
            })
            .then_expect_error(WorkforceError::Conflict(
                "the break overlaps another break of the shift",
            ));
        TestFramework::<Shift>::with(())
            .given(vec![started()])
            .when(ShiftCommand::ScheduleBreak {
                window: window((10, 0), (10, 15)),
                reason: None,
                actor: as_actor(agent(1)),
                at: at(11, 0),
            })
            .then_expect_error(ValidationError::new("ends_at", "must not be in the past").into());
        TestFramework::<Shift>::with(())
            .given(vec![started()])
            .when(ShiftCommand::ScheduleBreak {
                window: window((12, 30), (12, 0)),
                reason: None,
                actor: as_actor(agent(1)),
                at: at(11, 0),
            })
            .then_expect_error(
                ValidationError::new("ends_at", "must be after starts_at, at most 4 hours later")
                    .into(),
            );
    }

    #[test]
    fn a_shift_ends_once_by_its_agent_or_a_manager() {
        TestFramework::<Shift>::with(())
            .given(vec![started()])
            .when(ShiftCommand::End {
                actor: as_actor(agent(2)),
                at: at(12, 0),
            })
            .then_expect_error(WorkforceError::NotPermitted {
                role: Role::Agent,
                action: "manage another agent's shifts",
            });
        let ended = ShiftEvent::ShiftEnded {
            agent_id: agent(1).user_id,
            ended_by: manager(),
            occurred_at: at(12, 0),
        };
        TestFramework::<Shift>::with(())
            .given(vec![started()])
            .when(ShiftCommand::End {
                actor: manager(),
                at: at(12, 0),
            })
            .then_expect_events(vec![ended.clone()]);
        TestFramework::<Shift>::with(())
            .given(vec![started(), ended])
            .when(ShiftCommand::End {
                actor: manager(),
                at: at(12, 5),
            })
            .then_expect_error(WorkforceError::Conflict("the shift has already ended"));
    }
}
