//! SLA configuration as people write it — in a request to the API or in a what-if file — and the
//! one conversion from that to what the domain keeps: defaults filled in, times and time zones
//! parsed, every mistake named by the field it is in.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use chrono::{NaiveDate, NaiveTime};
use chrono_tz::Tz;
use serde::Deserialize;
use uuid::Uuid;

use super::calendar::{BusinessCalendar, BusinessHours, OpenInterval};
use super::policy::{MetricTargets, PolicyConditions, PolicyDefinition, PriorityTargets};
use crate::values::{Priority, TicketStatus, UserId, ValidationError};

/// Targets in seconds; `next_response` defaults to `first_response`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct TargetsDocument {
    pub first_response: u64,
    pub next_response: Option<u64>,
    pub resolution: u64,
    pub escalation: u64,
}

impl From<TargetsDocument> for MetricTargets {
    fn from(t: TargetsDocument) -> Self {
        MetricTargets::new(
            t.first_response,
            t.next_response,
            t.resolution,
            t.escalation,
        )
    }
}

/// Targets for each priority the policy covers (its `conditions.priorities`, or all four). A
/// priority it does not cover may be left out: no ticket of it is ever under the policy, and
/// its targets are kept as the built-in default's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct TargetsByPriorityDocument {
    #[serde(default)]
    pub critical: Option<TargetsDocument>,
    #[serde(default)]
    pub high: Option<TargetsDocument>,
    #[serde(default)]
    pub medium: Option<TargetsDocument>,
    #[serde(default)]
    pub low: Option<TargetsDocument>,
}

impl TargetsByPriorityDocument {
    fn given(&self, priority: Priority) -> Option<TargetsDocument> {
        match priority {
            Priority::Critical => self.critical,
            Priority::High => self.high,
            Priority::Medium => self.medium,
            Priority::Low => self.low,
        }
    }
}

/// Which tickets a policy covers; absent or empty lists match anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ConditionsDocument {
    #[serde(default)]
    pub priorities: Option<Vec<Priority>>,
    #[serde(default)]
    pub categories: Option<Vec<String>>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub customer_ids: Option<Vec<Uuid>>,
}

/// A policy as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PolicyDocument {
    pub name: String,
    #[serde(default)]
    pub conditions: Option<ConditionsDocument>,
    /// Absent: always open.
    #[serde(default)]
    pub calendar_id: Option<Uuid>,
    /// Default `pending`, `on_hold`.
    #[serde(default)]
    pub pause_statuses: Option<Vec<TicketStatus>>,
    /// Default 75.
    #[serde(default)]
    pub at_risk_percent: Option<u8>,
    pub targets: TargetsByPriorityDocument,
}

impl PolicyDocument {
    /// The definition the domain keeps (validated when a policy command decides).
    /// The definition, defaults filled in; refused when a priority the policy covers has no
    /// targets.
    pub fn definition(&self) -> Result<PolicyDefinition, ValidationError> {
        let conditions = self.conditions.clone().unwrap_or_default();
        let covered = match conditions.priorities.as_deref() {
            Some(listed) if !listed.is_empty() => listed.to_vec(),
            _ => Priority::ALL.to_vec(),
        };
        let built_in = PriorityTargets::seed_defaults();
        let targets_of = |priority: Priority| match self.targets.given(priority) {
            Some(given) => Ok(MetricTargets::from(given)),
            None if covered.contains(&priority) => Err(ValidationError::new(
                format!("targets.{}", priority.as_str()),
                format!(
                    "is required: the policy applies to {} tickets",
                    priority.as_str()
                ),
            )),
            None => Ok(built_in.of(priority)),
        };
        Ok(PolicyDefinition {
            name: self.name.trim().to_string(),
            conditions: PolicyConditions {
                priorities: conditions.priorities.unwrap_or_default(),
                categories: conditions.categories.unwrap_or_default(),
                tags: conditions.tags.unwrap_or_default(),
                customers: conditions
                    .customer_ids
                    .unwrap_or_default()
                    .into_iter()
                    .map(UserId)
                    .collect(),
            },
            calendar_id: self.calendar_id,
            pause_statuses: self
                .pause_statuses
                .clone()
                .unwrap_or_else(|| PolicyDefinition::DEFAULT_PAUSE_STATUSES.to_vec()),
            at_risk_percent: self
                .at_risk_percent
                .unwrap_or(PolicyDefinition::DEFAULT_AT_RISK_PERCENT),
            targets: PriorityTargets {
                critical: targets_of(Priority::Critical)?,
                high: targets_of(Priority::High)?,
                medium: targets_of(Priority::Medium)?,
                low: targets_of(Priority::Low)?,
            },
        })
    }
}

/// `HH:MM` local times; an interval whose end is not after its start runs past midnight.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IntervalDocument {
    pub start: String,
    pub end: String,
}

/// The weekdays, in the order calendars keep them.
pub const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// A business calendar as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CalendarDocument {
    /// IANA time zone, e.g. `Europe/Berlin`.
    pub timezone: String,
    /// Open around the clock (the hours and holidays are then ignored).
    #[serde(default)]
    pub always_open: bool,
    /// Opening hours by weekday (`monday` … `sunday`).
    #[serde(default)]
    pub hours: BTreeMap<String, Vec<IntervalDocument>>,
    /// Local dates on which no interval starts.
    #[serde(default)]
    pub holidays: BTreeSet<NaiveDate>,
}

fn time(field: &str, text: &str) -> Result<NaiveTime, ValidationError> {
    NaiveTime::parse_from_str(text, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M:%S"))
        .map_err(|_| ValidationError::new(field, "must be a time such as 09:00"))
}

impl CalendarDocument {
    /// The calendar the domain keeps: the zone and times parsed, and the whole validated.
    pub fn calendar(&self) -> Result<BusinessCalendar, ValidationError> {
        let timezone = Tz::from_str(self.timezone.trim()).map_err(|_| {
            ValidationError::new(
                "timezone",
                format!(
                    "`{}` is not an IANA time zone (such as Europe/Berlin)",
                    self.timezone
                ),
            )
        })?;
        let hours = if self.always_open {
            BusinessHours::AlwaysOpen
        } else {
            let mut days: [Vec<OpenInterval>; 7] = Default::default();
            for (day, intervals) in &self.hours {
                let index = WEEKDAYS.iter().position(|d| d == day).ok_or_else(|| {
                    ValidationError::new(format!("hours.{day}"), "is not a weekday")
                })?;
                for (n, interval) in intervals.iter().enumerate() {
                    let field = format!("hours.{day}[{n}]");
                    days[index].push(OpenInterval::new(
                        time(&format!("{field}.start"), &interval.start)?,
                        time(&format!("{field}.end"), &interval.end)?,
                    ));
                }
            }
            BusinessHours::Weekly { days }
        };
        let calendar = BusinessCalendar {
            timezone,
            hours,
            holidays: self.holidays.clone(),
        };
        calendar.validate()?;
        Ok(calendar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(seconds: u64) -> TargetsDocument {
        TargetsDocument {
            first_response: seconds,
            next_response: None,
            resolution: seconds * 10,
            escalation: seconds * 20,
        }
    }

    fn policy() -> PolicyDocument {
        PolicyDocument {
            name: "  Gold  ".into(),
            conditions: Some(ConditionsDocument {
                priorities: Some(vec![Priority::Critical]),
                ..ConditionsDocument::default()
            }),
            calendar_id: None,
            pause_statuses: None,
            at_risk_percent: None,
            targets: TargetsByPriorityDocument {
                critical: Some(targets(60)),
                high: Some(targets(120)),
                medium: Some(targets(240)),
                low: Some(targets(480)),
            },
        }
    }

    #[test]
    fn a_policy_gets_its_defaults_and_keeps_its_priorities() {
        let definition = policy().definition().unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(definition.name, "Gold");
        assert_eq!(definition.conditions.priorities, vec![Priority::Critical]);
        assert_eq!(
            definition.pause_statuses,
            PolicyDefinition::DEFAULT_PAUSE_STATUSES.to_vec()
        );
        assert_eq!(
            definition.at_risk_percent,
            PolicyDefinition::DEFAULT_AT_RISK_PERCENT
        );
        assert_eq!(definition.targets.critical.next_response, 60);
        assert_eq!(definition.validate(), Ok(()));
    }

    #[test]
    fn a_policy_file_and_a_request_read_alike() {
        let written = r#"{"name": "Gold", "conditions": {"priorities": ["critical"]},
                          "targets": {"critical": {"first_response": 60, "resolution": 600, "escalation": 1200},
                                      "high": {"first_response": 120, "resolution": 1200, "escalation": 2400},
                                      "medium": {"first_response": 240, "resolution": 2400, "escalation": 4800},
                                      "low": {"first_response": 480, "resolution": 4800, "escalation": 9600}}}"#;
        let parsed: PolicyDocument =
            serde_json::from_str(written).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.definition(), policy().definition());
    }

    #[test]
    fn a_policy_needs_targets_only_for_the_priorities_it_covers() {
        let mut critical_only = policy();
        critical_only.targets = TargetsByPriorityDocument {
            critical: Some(targets(60)),
            ..TargetsByPriorityDocument::default()
        };
        let definition = critical_only
            .definition()
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(definition.targets.critical.first_response, 60);
        // What it leaves out is never used, and kept as the built-in default's.
        assert_eq!(definition.targets.low, PriorityTargets::seed_defaults().low);

        let mut everyone = critical_only.clone();
        everyone.conditions = None;
        assert_eq!(
            everyone.definition().err().map(|e| e.field),
            Some("targets.high".to_string())
        );
        let mut two = critical_only;
        two.conditions = Some(ConditionsDocument {
            priorities: Some(vec![Priority::Critical, Priority::Low]),
            ..ConditionsDocument::default()
        });
        assert_eq!(
            two.definition().err().map(|e| e.field),
            Some("targets.low".to_string())
        );
    }

    #[test]
    fn calendar_mistakes_name_their_field() {
        let mut calendar = CalendarDocument {
            timezone: "Mars/Olympus".into(),
            ..CalendarDocument::default()
        };
        assert_eq!(
            calendar.calendar().err().map(|e| e.field),
            Some("timezone".into())
        );
        calendar.timezone = "Europe/Berlin".into();
        calendar.hours.insert(
            "monday".into(),
            vec![IntervalDocument {
                start: "09:00".into(),
                end: "9 pm".into(),
            }],
        );
        assert_eq!(
            calendar.calendar().err().map(|e| e.field),
            Some("hours.monday[0].end".into())
        );
        calendar.hours.clear();
        calendar.hours.insert("funday".into(), vec![]);
        assert_eq!(
            calendar.calendar().err().map(|e| e.field),
            Some("hours.funday".into())
        );
    }

    #[test]
    fn a_calendar_open_on_weekdays_parses_its_hours() {
        let mut calendar = CalendarDocument {
            timezone: "Europe/Berlin".into(),
            ..CalendarDocument::default()
        };
        calendar.hours.insert(
            "friday".into(),
            vec![IntervalDocument {
                start: "09:00".into(),
                end: "17:30".into(),
            }],
        );
        let parsed = calendar.calendar().unwrap_or_else(|e| panic!("{e}"));
        let BusinessHours::Weekly { days } = parsed.hours else {
            panic!("weekly hours expected");
        };
        assert_eq!(days[4].len(), 1);
        assert!(days[0].is_empty());
    }
}
