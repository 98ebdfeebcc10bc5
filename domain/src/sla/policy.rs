//! SLA policies: which tickets they cover, on which calendar, with which targets.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::SlaMetric;
use super::calendar::BusinessCalendar;
use crate::values::{Priority, TicketStatus, UserId, ValidationError};

/// Targets in seconds for the four metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricTargets {
    pub first_response: u64,
    pub next_response: u64,
    pub resolution: u64,
    pub escalation: u64,
}

impl MetricTargets {
    /// Targets as people write them: `next_response` defaults to `first_response`.
    pub fn new(
        first_response: u64,
        next_response: Option<u64>,
        resolution: u64,
        escalation: u64,
    ) -> Self {
        Self {
            first_response,
            next_response: next_response.unwrap_or(first_response),
            resolution,
            escalation,
        }
    }

    pub const fn hours(first_response: u64, resolution: u64, escalation: u64) -> Self {
        Self {
            first_response: first_response * 3600,
            next_response: first_response * 3600,
            resolution: resolution * 3600,
            escalation: escalation * 3600,
        }
    }

    pub fn of(&self, metric: SlaMetric) -> u64 {
        match metric {
            SlaMetric::FirstResponse => self.first_response,
            SlaMetric::NextResponse => self.next_response,
            SlaMetric::Resolution => self.resolution,
            SlaMetric::Escalation => self.escalation,
        }
    }

    fn validate(&self, field: &str) -> Result<(), ValidationError> {
        for metric in SlaMetric::ALL {
            let seconds = self.of(metric);
            if seconds == 0 || seconds > 10 * 365 * 24 * 3600 {
                return Err(ValidationError::new(
                    format!("{field}.{metric}"),
                    "must be between 1 second and 10 years",
                ));
            }
        }
        Ok(())
    }
}

/// Targets per priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorityTargets {
    pub critical: MetricTargets,
    pub high: MetricTargets,
    pub medium: MetricTargets,
    pub low: MetricTargets,
}

impl PriorityTargets {
    pub fn of(&self, priority: Priority) -> MetricTargets {
        match priority {
            Priority::Critical => self.critical,
            Priority::High => self.high,
            Priority::Medium => self.medium,
            Priority::Low => self.low,
        }
    }

    /// The table most seed systems ship (response / resolution / escalation), all hours;
    /// next response equals first response.
    pub fn seed_defaults() -> Self {
        Self {
            critical: MetricTargets::hours(1, 4, 2),
            high: MetricTargets::hours(4, 24, 8),
            medium: MetricTargets::hours(8, 72, 24),
            low: MetricTargets::hours(24, 168, 48),
        }
    }

    pub fn validate(&self) -> Result<(), ValidationError> {
        self.critical.validate("targets.critical")?;
        self.high.validate("targets.high")?;
        self.medium.validate("targets.medium")?;
        self.low.validate("targets.low")
    }
}

/// Which tickets a policy covers. Empty lists match anything; every non-empty list must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyConditions {
    #[serde(default)]
    pub priorities: Vec<Priority>,
    #[serde(default)]
    pub categories: Vec<String>,
    /// The ticket carries at least one of these tags.
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub customers: Vec<UserId>,
}

/// The facts about a ticket that policies match on.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketFacts<'a> {
    pub priority: Priority,
    pub category: Option<&'a str>,
    pub tags: Vec<&'a str>,
    pub customer: UserId,
}

impl PolicyConditions {
    pub fn matches(&self, ticket: &TicketFacts<'_>) -> bool {
        let priority = self.priorities.is_empty() || self.priorities.contains(&ticket.priority);
        let category = self.categories.is_empty()
            || ticket.category.is_some_and(|c| {
                self.categories
                    .iter()
                    .any(|wanted| wanted.eq_ignore_ascii_case(c))
            });
        let tags = self.tags.is_empty()
            || ticket.tags.iter().any(|t| {
                self.tags
                    .iter()
                    .any(|wanted| wanted.eq_ignore_ascii_case(t))
            });
        let customer = self.customers.is_empty() || self.customers.contains(&ticket.customer);
        priority && category && tags && customer
    }
}

/// A policy as an administrator writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyDefinition {
    pub name: String,
    #[serde(default)]
    pub conditions: PolicyConditions,
    /// `None`: always open.
    pub calendar_id: Option<Uuid>,
    pub pause_statuses: Vec<TicketStatus>,
    /// Percent of a target after which a clock is at risk.
    pub at_risk_percent: u8,
    pub targets: PriorityTargets,
}

impl PolicyDefinition {
    /// Where resolution and escalation clocks pause unless a policy says otherwise: the ticket
    /// waits on the customer or on a third party.
    pub const DEFAULT_PAUSE_STATUSES: [TicketStatus; 2] =
        [TicketStatus::Pending, TicketStatus::OnHold];
    /// A clock is at risk from this share of its target unless a policy says otherwise.
    pub const DEFAULT_AT_RISK_PERCENT: u8 = 75;

    pub fn validate(&self) -> Result<(), ValidationError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(ValidationError::new("name", "must be 1 to 200 characters"));
        }
        if !(1..=99).contains(&self.at_risk_percent) {
            return Err(ValidationError::new(
                "at_risk_percent",
                "must be between 1 and 99",
            ));
        }
        if self.pause_statuses.iter().any(|s| {
            matches!(
                s,
                TicketStatus::New | TicketStatus::Resolved | TicketStatus::Closed
            )
        }) {
            return Err(ValidationError::new(
                "pause_statuses",
                "only open, in_progress, pending and on_hold can pause clocks",
            ));
        }
        self.targets.validate()
    }
}

/// A policy version as it applies to tickets, with its calendar resolved: what a ticket's
/// `SlaPolicyApplied` event records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppliedPolicy {
    /// The nil id for the built-in default policy.
    pub policy_id: Uuid,
    pub version: u32,
    pub name: String,
    pub conditions: PolicyConditions,
    pub calendar_id: Option<Uuid>,
    pub calendar: BusinessCalendar,
    pub pause_statuses: Vec<TicketStatus>,
    pub at_risk_percent: u8,
    pub targets: PriorityTargets,
}

impl AppliedPolicy {
    /// The built-in policy when none is configured: all hours, the seed systems' targets.
    pub fn default_policy() -> Self {
        Self {
            policy_id: Uuid::nil(),
            version: 0,
            name: "Default (all hours)".to_string(),
            conditions: PolicyConditions::default(),
            calendar_id: None,
            calendar: BusinessCalendar::always_open(),
            pause_statuses: PolicyDefinition::DEFAULT_PAUSE_STATUSES.to_vec(),
            at_risk_percent: PolicyDefinition::DEFAULT_AT_RISK_PERCENT,
            targets: PriorityTargets::seed_defaults(),
        }
    }

    pub fn pauses_in(&self, status: TicketStatus) -> bool {
        self.pause_statuses.contains(&status)
    }

    /// Whether two versions would give a ticket of `priority` different clocks.
    pub fn same_terms(&self, other: &AppliedPolicy, priority: Priority) -> bool {
        self.policy_id == other.policy_id
            && self.version == other.version
            && self.targets.of(priority) == other.targets.of(priority)
    }
}

/// Every active policy, in the order they are tried; the first that matches applies.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SlaCatalog {
    pub policies: Vec<AppliedPolicy>,
}

impl SlaCatalog {
    pub fn new(policies: Vec<AppliedPolicy>) -> Self {
        Self { policies }
    }

    /// The policy for `ticket`: the first whose conditions match, else the default.
    pub fn select(&self, ticket: &TicketFacts<'_>) -> AppliedPolicy {
        self.policies
            .iter()
            .find(|policy| policy.conditions.matches(ticket))
            .cloned()
            .unwrap_or_else(AppliedPolicy::default_policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(
        priority: Priority,
        category: Option<&'static str>,
        tags: Vec<&'static str>,
    ) -> TicketFacts<'static> {
        TicketFacts {
            priority,
            category,
            tags,
            customer: UserId(Uuid::from_u128(1)),
        }
    }

    fn policy(name: &str, conditions: PolicyConditions) -> AppliedPolicy {
        AppliedPolicy {
            name: name.to_string(),
            conditions,
            policy_id: Uuid::new_v4(),
            version: 1,
            ..AppliedPolicy::default_policy()
        }
    }

    #[test]
    fn the_first_matching_policy_applies_and_the_default_catches_the_rest() {
        let catalog = SlaCatalog::new(vec![
            policy(
                "vip billing",
                PolicyConditions {
                    categories: vec!["Billing".into()],
                    tags: vec!["vip".into()],
                    ..Default::default()
                },
            ),
            policy(
                "critical",
                PolicyConditions {
                    priorities: vec![Priority::Critical],
                    ..Default::default()
                },
            ),
            policy(
                "billing",
                PolicyConditions {
                    categories: vec!["billing".into()],
                    ..Default::default()
                },
            ),
        ]);
        let name = |f| catalog.select(&f).name;
        assert_eq!(
            name(facts(Priority::Critical, Some("billing"), vec!["VIP"])),
            "vip billing"
        );
        assert_eq!(
            name(facts(Priority::Critical, Some("billing"), vec![])),
            "critical"
        );
        assert_eq!(
            name(facts(Priority::Low, Some("billing"), vec![])),
            "billing"
        );
        assert_eq!(
            name(facts(Priority::Low, None, vec!["vip"])),
            "Default (all hours)"
        );
    }

    #[test]
    fn the_default_targets_are_the_seed_table() {
        let targets = AppliedPolicy::default_policy().targets;
        assert_eq!(targets.critical, MetricTargets::hours(1, 4, 2));
        assert_eq!(targets.low.next_response, 24 * 3600);
        assert_eq!(targets.medium.resolution, 72 * 3600);
    }

    #[test]
    fn a_definition_is_validated_field_by_field() {
        let mut definition = PolicyDefinition {
            name: "Gold".into(),
            conditions: PolicyConditions::default(),
            calendar_id: None,
            pause_statuses: vec![TicketStatus::Pending],
            at_risk_percent: 75,
            targets: PriorityTargets::seed_defaults(),
        };
        assert!(definition.validate().is_ok());
        definition.targets.high.resolution = 0;
        assert_eq!(
            definition.validate().err().map(|e| e.field),
            Some("targets.high.resolution".to_string())
        );
        definition.targets = PriorityTargets::seed_defaults();
        definition.pause_statuses = vec![TicketStatus::Resolved];
        assert_eq!(
            definition.validate().err().map(|e| e.field),
            Some("pause_statuses".to_string())
        );
        definition.pause_statuses = vec![];
        definition.at_risk_percent = 100;
        assert_eq!(
            definition.validate().err().map(|e| e.field),
            Some("at_risk_percent".to_string())
        );
    }
}
