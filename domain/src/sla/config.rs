//! SLA configuration as aggregates, so that every change is an event an auditor can read: which
//! policy (and which version of it) was in force when a ticket breached.
//!
//! * `SlaPolicy` — a policy definition with its position in the matching order; every update
//!   is a new version.
//! * `SlaCalendar` — a named business calendar; every update is a new version.
//! * `EscalationRule` — conditions and actions; every update is a new version.
//!
//! Managers and administrators change configuration; nobody else.

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::SlaMetric;
use super::calendar::BusinessCalendar;
use super::policy::PolicyDefinition;
use crate::values::{Actor, Priority, Role, UserId, ValidationError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{role} may not change SLA configuration")]
    NotPermitted { role: Role },
    #[error("no such {what}")]
    NotFound { what: &'static str },
    #[error("the {what} already exists")]
    AlreadyExists { what: &'static str },
    #[error("{0}")]
    Invalid(ValidationError),
}

fn require_manager(actor: &Actor) -> Result<(), ConfigError> {
    if actor.role.may(crate::access::Permission::Manage) {
        Ok(())
    } else {
        Err(ConfigError::NotPermitted { role: actor.role })
    }
}

fn valid<T>(result: Result<T, ValidationError>) -> Result<T, ConfigError> {
    result.map_err(ConfigError::Invalid)
}

// ---- policies ---------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub enum SlaPolicyCommand {
    Create {
        policy_id: Uuid,
        definition: PolicyDefinition,
        position: i32,
        actor: Actor,
        at: DateTime<Utc>,
    },
    Update {
        definition: PolicyDefinition,
        position: i32,
        actor: Actor,
        at: DateTime<Utc>,
    },
    Delete {
        actor: Actor,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SlaPolicyEvent {
    SlaPolicyCreated {
        policy_id: Uuid,
        definition: PolicyDefinition,
        position: i32,
        version: u32,
        created_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    SlaPolicyUpdated {
        definition: PolicyDefinition,
        position: i32,
        version: u32,
        updated_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    SlaPolicyDeleted {
        deleted_by: Actor,
        occurred_at: DateTime<Utc>,
    },
}

event_names!(SlaPolicyEvent {
    SlaPolicyCreated,
    SlaPolicyUpdated,
    SlaPolicyDeleted
});

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SlaPolicy {
    pub id: Option<Uuid>,
    pub definition: Option<PolicyDefinition>,
    pub position: i32,
    pub version: u32,
    pub deleted: bool,
}

impl SlaPolicy {
    pub fn decide(&self, command: &SlaPolicyCommand) -> Result<Vec<SlaPolicyEvent>, ConfigError> {
        let not_found = ConfigError::NotFound { what: "SLA policy" };
        match command {
            SlaPolicyCommand::Create {
                policy_id,
                definition,
                position,
                actor,
                at,
            } => {
                require_manager(actor)?;
                if self.id.is_some() {
                    return Err(ConfigError::AlreadyExists { what: "SLA policy" });
                }
                valid(definition.validate())?;
                Ok(vec![SlaPolicyEvent::SlaPolicyCreated {
                    policy_id: *policy_id,
                    definition: definition.clone(),
                    position: *position,
                    version: 1,
                    created_by: *actor,
                    occurred_at: *at,
                }])
            }
            SlaPolicyCommand::Update {
                definition,
                position,
                actor,
                at,
            } => {
                require_manager(actor)?;
                if self.id.is_none() || self.deleted {
                    return Err(not_found);
                }
                valid(definition.validate())?;
                if self.definition.as_ref() == Some(definition) && self.position == *position {
                    return Ok(vec![]);
                }
                Ok(vec![SlaPolicyEvent::SlaPolicyUpdated {
                    definition: definition.clone(),
                    position: *position,
                    version: self.version + 1,
                    updated_by: *actor,
                    occurred_at: *at,
                }])
            }
            SlaPolicyCommand::Delete { actor, at } => {
                require_manager(actor)?;
                if self.id.is_none() || self.deleted {
                    return Err(not_found);
                }
                Ok(vec![SlaPolicyEvent::SlaPolicyDeleted {
                    deleted_by: *actor,
                    occurred_at: *at,
                }])
            }
        }
    }
}

impl Aggregate for SlaPolicy {
    const TYPE: &'static str = "sla_policy";
    type Command = SlaPolicyCommand;
    type Event = SlaPolicyEvent;
    type Error = ConfigError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let decision = self.decide(&command);
        crate::record(self, decision, sink).await
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            SlaPolicyEvent::SlaPolicyCreated {
                policy_id,
                definition,
                position,
                version,
                ..
            } => {
                self.id = Some(policy_id);
                self.definition = Some(definition);
                self.position = position;
                self.version = version;
            }
            SlaPolicyEvent::SlaPolicyUpdated {
                definition,
                position,
                version,
                ..
            } => {
                self.definition = Some(definition);
                self.position = position;
                self.version = version;
            }
            SlaPolicyEvent::SlaPolicyDeleted { .. } => self.deleted = true,
        }
    }
}

// ---- calendars --------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub enum SlaCalendarCommand {
    Create {
        calendar_id: Uuid,
        name: String,
        calendar: BusinessCalendar,
        actor: Actor,
        at: DateTime<Utc>,
    },
    Update {
        name: String,
        calendar: BusinessCalendar,
        actor: Actor,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SlaCalendarEvent {
    CalendarCreated {
        calendar_id: Uuid,
        name: String,
        calendar: BusinessCalendar,
        version: u32,
        created_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    CalendarUpdated {
        name: String,
        calendar: BusinessCalendar,
        version: u32,
        updated_by: Actor,
        occurred_at: DateTime<Utc>,
    },
}

event_names!(SlaCalendarEvent {
    CalendarCreated,
    CalendarUpdated
});

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SlaCalendar {
    pub id: Option<Uuid>,
    pub name: String,
    pub calendar: Option<BusinessCalendar>,
    pub version: u32,
}

fn calendar_name(name: &str) -> Result<String, ConfigError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ConfigError::Invalid(ValidationError::new(
            "name",
            "must be 1 to 200 characters",
        )));
    }
    Ok(name.to_string())
}

impl SlaCalendar {
    pub fn decide(
        &self,
        command: &SlaCalendarCommand,
    ) -> Result<Vec<SlaCalendarEvent>, ConfigError> {
        match command {
            SlaCalendarCommand::Create {
                calendar_id,
                name,
                calendar,
                actor,
                at,
            } => {
                require_manager(actor)?;
                if self.id.is_some() {
                    return Err(ConfigError::AlreadyExists { what: "calendar" });
                }
                valid(calendar.validate())?;
                Ok(vec![SlaCalendarEvent::CalendarCreated {
                    calendar_id: *calendar_id,
                    name: calendar_name(name)?,
                    calendar: calendar.clone(),
                    version: 1,
                    created_by: *actor,
                    occurred_at: *at,
                }])
            }
            SlaCalendarCommand::Update {
                name,
                calendar,
                actor,
                at,
            } => {
                require_manager(actor)?;
                if self.id.is_none() {
                    return Err(ConfigError::NotFound { what: "calendar" });
                }
                valid(calendar.validate())?;
                let name = calendar_name(name)?;
                if self.calendar.as_ref() == Some(calendar) && self.name == name {
                    return Ok(vec![]);
                }
                Ok(vec![SlaCalendarEvent::CalendarUpdated {
                    name,
                    calendar: calendar.clone(),
                    version: self.version + 1,
                    updated_by: *actor,
                    occurred_at: *at,
                }])
            }
        }
    }
}

impl Aggregate for SlaCalendar {
    const TYPE: &'static str = "sla_calendar";
    type Command = SlaCalendarCommand;
    type Event = SlaCalendarEvent;
    type Error = ConfigError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let decision = self.decide(&command);
        crate::record(self, decision, sink).await
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            SlaCalendarEvent::CalendarCreated {
                calendar_id,
                name,
                calendar,
                version,
                ..
            } => {
                self.id = Some(calendar_id);
                self.name = name;
                self.calendar = Some(calendar);
                self.version = version;
            }
            SlaCalendarEvent::CalendarUpdated {
                name,
                calendar,
                version,
                ..
            } => {
                self.name = name;
                self.calendar = Some(calendar);
                self.version = version;
            }
        }
    }
}

// ---- escalation rules -------------------------------------------------------------------------

/// When a rule fires. Every condition must hold.
///
/// A condition is something that *happens* to a ticket at an instant — a clock is warned, a
/// clock breaches, a ticket has waited unassigned so long — and a rule acts on what happens
/// after it was saved, unless it is told to apply to what is so already
/// ([`RuleDefinition::apply_to_existing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RuleCondition {
    /// A response clock (first or next) has breached.
    ResponseOverdue,
    /// The resolution clock has breached.
    ResolutionOverdue,
    /// A running clock (of `metric`, or any) is warned and not yet breached.
    AtRisk {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metric: Option<SlaMetric>,
    },
    /// A running clock (of `metric`, or any) has breached.
    Breached {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metric: Option<SlaMetric>,
    },
    /// No assignee this many minutes after creation.
    UnassignedFor { minutes: u32 },
    /// Nothing happened on the ticket for this many minutes.
    NoUpdateFor { minutes: u32 },
}

/// What a rule does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RuleAction {
    /// Escalation level + 1, optionally to someone, or to the lead of the ticket's team.
    Escalate {
        escalate_to: Option<UserId>,
        #[serde(default)]
        to_team_lead: bool,
    },
    /// Assign to someone.
    Reassign { agent_id: UserId },
    /// One priority up (critical stays critical).
    RaisePriority,
    /// Tell people (recorded now; delivered by the notification service later).
    Notify {
        recipients: Vec<UserId>,
        message: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleDefinition {
    pub name: String,
    /// Empty: tickets of every priority.
    #[serde(default)]
    pub priorities: Vec<Priority>,
    pub conditions: Vec<RuleCondition>,
    pub actions: Vec<RuleAction>,
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Act on tickets whose conditions already hold when the rule is saved, too. By default a
    /// rule acts only on what happens after it was saved.
    #[serde(default)]
    pub apply_to_existing: bool,
}

fn enabled() -> bool {
    true
}

impl RuleDefinition {
    pub fn validate(&self) -> Result<(), ValidationError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(ValidationError::new("name", "must be 1 to 200 characters"));
        }
        if self.conditions.is_empty() {
            return Err(ValidationError::new("conditions", "at least one condition"));
        }
        if self.actions.is_empty() {
            return Err(ValidationError::new("actions", "at least one action"));
        }
        for (index, condition) in self.conditions.iter().enumerate() {
            if let RuleCondition::UnassignedFor { minutes } | RuleCondition::NoUpdateFor { minutes } =
                condition
                && (*minutes == 0 || *minutes > 525_600)
            {
                return Err(ValidationError::new(
                    format!("conditions[{index}].minutes"),
                    "must be between 1 and 525,600",
                ));
            }
        }
        for (index, action) in self.actions.iter().enumerate() {
            if let RuleAction::Notify {
                recipients,
                message,
            } = action
            {
                if recipients.is_empty() {
                    return Err(ValidationError::new(
                        format!("actions[{index}].recipients"),
                        "at least one recipient",
                    ));
                }
                if message.as_ref().is_some_and(|m| m.chars().count() > 2_000) {
                    return Err(ValidationError::new(
                        format!("actions[{index}].message"),
                        "at most 2,000 characters",
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn covers(&self, priority: Priority) -> bool {
        self.priorities.is_empty() || self.priorities.contains(&priority)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum EscalationRuleCommand {
    Create {
        rule_id: Uuid,
        definition: RuleDefinition,
        actor: Actor,
        at: DateTime<Utc>,
    },
    Update {
        definition: RuleDefinition,
        actor: Actor,
        at: DateTime<Utc>,
    },
    Delete {
        actor: Actor,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EscalationRuleEvent {
    EscalationRuleCreated {
        rule_id: Uuid,
        definition: RuleDefinition,
        version: u32,
        created_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    EscalationRuleUpdated {
        definition: RuleDefinition,
        version: u32,
        updated_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    EscalationRuleDeleted {
        deleted_by: Actor,
        occurred_at: DateTime<Utc>,
    },
}

event_names!(EscalationRuleEvent {
    EscalationRuleCreated,
    EscalationRuleUpdated,
    EscalationRuleDeleted
});

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EscalationRule {
    pub id: Option<Uuid>,
    pub definition: Option<RuleDefinition>,
    pub version: u32,
    pub deleted: bool,
}

impl EscalationRule {
    pub fn decide(
        &self,
        command: &EscalationRuleCommand,
    ) -> Result<Vec<EscalationRuleEvent>, ConfigError> {
        let not_found = ConfigError::NotFound {
            what: "escalation rule",
        };
        match command {
            EscalationRuleCommand::Create {
                rule_id,
                definition,
                actor,
                at,
            } => {
                require_manager(actor)?;
                if self.id.is_some() {
                    return Err(ConfigError::AlreadyExists {
                        what: "escalation rule",
                    });
                }
                valid(definition.validate())?;
                Ok(vec![EscalationRuleEvent::EscalationRuleCreated {
                    rule_id: *rule_id,
                    definition: definition.clone(),
                    version: 1,
                    created_by: *actor,
                    occurred_at: *at,
                }])
            }
            EscalationRuleCommand::Update {
                definition,
                actor,
                at,
            } => {
                require_manager(actor)?;
                if self.id.is_none() || self.deleted {
                    return Err(not_found);
                }
                valid(definition.validate())?;
                if self.definition.as_ref() == Some(definition) {
                    return Ok(vec![]);
                }
                Ok(vec![EscalationRuleEvent::EscalationRuleUpdated {
                    definition: definition.clone(),
                    version: self.version + 1,
                    updated_by: *actor,
                    occurred_at: *at,
                }])
            }
            EscalationRuleCommand::Delete { actor, at } => {
                require_manager(actor)?;
                if self.id.is_none() || self.deleted {
                    return Err(not_found);
                }
                Ok(vec![EscalationRuleEvent::EscalationRuleDeleted {
                    deleted_by: *actor,
                    occurred_at: *at,
                }])
            }
        }
    }
}

impl Aggregate for EscalationRule {
    const TYPE: &'static str = "escalation_rule";
    type Command = EscalationRuleCommand;
    type Event = EscalationRuleEvent;
    type Error = ConfigError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let decision = self.decide(&command);
        crate::record(self, decision, sink).await
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            EscalationRuleEvent::EscalationRuleCreated {
                rule_id,
                definition,
                version,
                ..
            } => {
                self.id = Some(rule_id);
                self.definition = Some(definition);
                self.version = version;
            }
            EscalationRuleEvent::EscalationRuleUpdated {
                definition,
                version,
                ..
            } => {
                self.definition = Some(definition);
                self.version = version;
            }
            EscalationRuleEvent::EscalationRuleDeleted { .. } => self.deleted = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sla::policy::{PolicyConditions, PriorityTargets};
    use crate::values::TicketStatus;
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0)
            .single()
            .unwrap_or_default()
    }
    fn manager() -> Actor {
        Actor::new(UserId(Uuid::from_u128(1)), Role::Manager)
    }
    fn agent() -> Actor {
        Actor::new(UserId(Uuid::from_u128(2)), Role::Agent)
    }
    fn definition(name: &str) -> PolicyDefinition {
        PolicyDefinition {
            name: name.into(),
            conditions: PolicyConditions::default(),
            calendar_id: None,
            pause_statuses: vec![TicketStatus::Pending],
            at_risk_percent: 80,
            targets: PriorityTargets::seed_defaults(),
        }
    }
    fn created() -> SlaPolicyEvent {
        SlaPolicyEvent::SlaPolicyCreated {
            policy_id: Uuid::from_u128(9),
            definition: definition("Gold"),
            position: 1,
            version: 1,
            created_by: manager(),
            occurred_at: at(),
        }
    }

    #[test]
    fn a_manager_creates_a_policy_and_each_edit_is_a_new_version() {
        TestFramework::<SlaPolicy>::with(())
            .given_no_previous_events()
            .when(SlaPolicyCommand::Create {
                policy_id: Uuid::from_u128(9),
                definition: definition("Gold"),
                position: 1,
                actor: manager(),
                at: at(),
            })
            .then_expect_events(vec![created()]);
        TestFramework::<SlaPolicy>::with(())
            .given(vec![created()])
            .when(SlaPolicyCommand::Update {
                definition: definition("Gold+"),
                position: 1,
                actor: manager(),
                at: at(),
            })
            .then_expect_events(vec![SlaPolicyEvent::SlaPolicyUpdated {
                definition: definition("Gold+"),
                position: 1,
                version: 2,
                updated_by: manager(),
                occurred_at: at(),
            }]);
    }

    #[test]
    fn agents_cannot_change_policies_and_invalid_ones_are_refused() {
        TestFramework::<SlaPolicy>::with(())
            .given_no_previous_events()
            .when(SlaPolicyCommand::Create {
                policy_id: Uuid::from_u128(9),
                definition: definition("Gold"),
                position: 1,
                actor: agent(),
                at: at(),
            })
            .then_expect_error(ConfigError::NotPermitted { role: Role::Agent });
        let mut bad = definition("Gold");
        bad.at_risk_percent = 0;
        TestFramework::<SlaPolicy>::with(())
            .given_no_previous_events()
            .when(SlaPolicyCommand::Create {
                policy_id: Uuid::from_u128(9),
                definition: bad,
                position: 1,
                actor: manager(),
                at: at(),
            })
            .then_expect_error(ConfigError::Invalid(ValidationError::new(
                "at_risk_percent",
                "must be between 1 and 99",
            )));
    }

    #[test]
    fn a_deleted_policy_cannot_be_edited_or_deleted_again() {
        let deleted = SlaPolicyEvent::SlaPolicyDeleted {
            deleted_by: manager(),
            occurred_at: at(),
        };
        TestFramework::<SlaPolicy>::with(())
            .given(vec![created(), deleted])
            .when(SlaPolicyCommand::Delete {
                actor: manager(),
                at: at(),
            })
            .then_expect_error(ConfigError::NotFound { what: "SLA policy" });
    }

    #[test]
    fn calendars_are_versioned_and_must_open_sometime() {
        let office = BusinessCalendar::weekly(
            chrono_tz::Europe::Berlin,
            &[0, 1, 2, 3, 4],
            &[super::super::OpenInterval::new(
                chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default(),
                chrono::NaiveTime::from_hms_opt(17, 0, 0).unwrap_or_default(),
            )],
        );
        let create = |calendar| SlaCalendarCommand::Create {
            calendar_id: Uuid::from_u128(3),
            name: "Office".into(),
            calendar,
            actor: manager(),
            at: at(),
        };
        let events = TestFramework::<SlaCalendar>::with(())
            .given_no_previous_events()
            .when(create(office))
            .inspect_result();
        assert!(matches!(
            events.as_deref(),
            Ok([SlaCalendarEvent::CalendarCreated { version: 1, .. }])
        ));
        TestFramework::<SlaCalendar>::with(())
            .given_no_previous_events()
            .when(create(BusinessCalendar::weekly(chrono_tz::UTC, &[], &[])))
            .then_expect_error(ConfigError::Invalid(ValidationError::new(
                "hours",
                "must open at least once a week",
            )));
    }

    #[test]
    fn a_rule_needs_conditions_actions_and_sensible_minutes() {
        let rule = RuleDefinition {
            name: "Unassigned critical".into(),
            priorities: vec![Priority::Critical],
            conditions: vec![RuleCondition::UnassignedFor { minutes: 0 }],
            actions: vec![RuleAction::RaisePriority],
            enabled: true,
            apply_to_existing: false,
        };
        assert_eq!(
            rule.validate().err().map(|e| e.field),
            Some("conditions[0].minutes".to_string())
        );
        let rule = RuleDefinition {
            conditions: vec![RuleCondition::UnassignedFor { minutes: 30 }],
            ..rule
        };
        assert!(rule.validate().is_ok());
        assert!(rule.covers(Priority::Critical) && !rule.covers(Priority::Low));
        let parsed: Result<RuleCondition, _> =
            serde_json::from_value(serde_json::json!({"type": "no_update_for", "minutes": 60}));
        assert_eq!(
            parsed.ok(),
            Some(RuleCondition::NoUpdateFor { minutes: 60 })
        );
    }

    #[test]
    fn a_rule_saved_before_conditions_named_their_clock_still_reads() {
        // As recorded before `metric` and `apply_to_existing` existed.
        let old: RuleDefinition = serde_json::from_value(serde_json::json!({
            "name": "Old", "conditions": [{"type": "at_risk"}],
            "actions": [{"type": "raise_priority"}]
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(old.conditions, vec![RuleCondition::AtRisk { metric: None }]);
        assert!(old.enabled && !old.apply_to_existing);
        let new = RuleCondition::Breached {
            metric: Some(SlaMetric::Resolution),
        };
        let written = serde_json::to_value(new).unwrap_or_default();
        assert_eq!(
            written,
            serde_json::json!({"type": "breached", "metric": "resolution"})
        );
    }
}
