//! `/api/sla/…` and `/api/escalation-rules`: policies, calendars, rules, and the clocks.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use docket_domain::sla::config::{
    ConfigError, EscalationRule, EscalationRuleCommand, RuleAction, RuleCondition, RuleDefinition,
    SlaCalendar, SlaCalendarCommand, SlaPolicy, SlaPolicyCommand,
};
use docket_domain::sla::{
    BusinessCalendar, BusinessHours, MetricTargets, OpenInterval, PolicyConditions,
    PolicyDefinition, PriorityTargets,
};
use docket_domain::values::UserId;
use docket_domain::{Priority, TicketStatus};
use docket_projections::sla::{self as sla_view, ComplianceGroup};
use docket_projections::sla_config;
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::types::{PriorityDto, StatusDto};
use super::{
    ApiTags, consistency_token, etag, parse_consistency_token, parse_if_match, wait_for_projector,
};
use crate::auth::{AuthUser, BearerAuth};
use crate::commands::{CommandError, Committed};
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::json::JsonBody;
use crate::state::{AppState, SharedState};

// ---- wire types: policies --------------------------------------------------------------------

/// Targets in seconds. `next_response` defaults to `first_response`.
#[derive(Debug, Clone, Copy, Object, Deserialize, Serialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct MetricTargetsDto {
    #[oai(validator(minimum(value = "1")))]
    pub first_response: u64,
    #[oai(validator(minimum(value = "1")))]
    pub next_response: Option<u64>,
    #[oai(validator(minimum(value = "1")))]
    pub resolution: u64,
    #[oai(validator(minimum(value = "1")))]
    pub escalation: u64,
}

#[derive(Debug, Clone, Copy, Object, Deserialize, Serialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct PriorityTargetsDto {
    pub critical: MetricTargetsDto,
    pub high: MetricTargetsDto,
    pub medium: MetricTargetsDto,
    pub low: MetricTargetsDto,
}

/// Which tickets the policy covers; empty lists match anything, and every non-empty list must
/// match.
#[derive(Debug, Clone, Default, Object, Deserialize, Serialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct PolicyConditionsDto {
    #[serde(default)]
    pub priorities: Option<Vec<PriorityDto>>,
    #[serde(default)]
    pub categories: Option<Vec<String>>,
    /// The ticket carries any of these.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub customer_ids: Option<Vec<Uuid>>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct PolicyRequest {
    #[oai(validator(min_length = 1, max_length = 200))]
    pub name: String,
    /// Policies are tried in ascending position; the first that matches applies.
    pub position: i32,
    #[serde(default)]
    pub conditions: Option<PolicyConditionsDto>,
    /// Absent: always open.
    pub calendar_id: Option<Uuid>,
    /// Statuses in which resolution and escalation clocks pause. Default `pending`, `on_hold`.
    pub pause_statuses: Option<Vec<StatusDto>>,
    /// Default 75.
    #[oai(validator(minimum(value = "1"), maximum(value = "99")))]
    pub at_risk_percent: Option<u8>,
    pub targets: PriorityTargetsDto,
}

#[derive(Debug, Clone, Object)]
pub struct PolicyDto {
    pub id: Uuid,
    /// Every change is a new version; tickets record the version that applied to them.
    pub version: i64,
    pub name: String,
    pub position: i32,
    pub conditions: PolicyConditionsDto,
    pub calendar_id: Option<Uuid>,
    pub pause_statuses: Vec<StatusDto>,
    pub at_risk_percent: u8,
    pub targets: PriorityTargetsDto,
}

fn targets_dto(t: MetricTargets) -> MetricTargetsDto {
    MetricTargetsDto {
        first_response: t.first_response,
        next_response: Some(t.next_response),
        resolution: t.resolution,
        escalation: t.escalation,
    }
}

fn policy_dto(id: Uuid, version: u32, position: i32, definition: &PolicyDefinition) -> PolicyDto {
    let c = &definition.conditions;
    PolicyDto {
        id,
        version: i64::from(version),
        name: definition.name.clone(),
        position,
        conditions: PolicyConditionsDto {
            priorities: Some(c.priorities.iter().map(|p| (*p).into()).collect()),
            categories: Some(c.categories.clone()),
            tags: Some(c.tags.clone()),
            customer_ids: Some(c.customers.iter().map(|u| u.0).collect()),
        },
        calendar_id: definition.calendar_id,
        pause_statuses: definition
            .pause_statuses
            .iter()
            .map(|s| (*s).into())
            .collect(),
        at_risk_percent: definition.at_risk_percent,
        targets: PriorityTargetsDto {
            critical: targets_dto(definition.targets.critical),
            high: targets_dto(definition.targets.high),
            medium: targets_dto(definition.targets.medium),
            low: targets_dto(definition.targets.low),
        },
    }
}

fn targets(t: MetricTargetsDto) -> MetricTargets {
    MetricTargets::new(
        t.first_response,
        t.next_response,
        t.resolution,
        t.escalation,
    )
}

impl PolicyRequest {
    fn definition(&self) -> PolicyDefinition {
        let conditions = self.conditions.clone().unwrap_or_default();
        PolicyDefinition {
            name: self.name.trim().to_string(),
            conditions: PolicyConditions {
                priorities: conditions
                    .priorities
                    .unwrap_or_default()
                    .into_iter()
                    .map(Into::into)
                    .collect(),
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
            pause_statuses: match &self.pause_statuses {
                Some(statuses) => statuses.iter().map(|s| TicketStatus::from(*s)).collect(),
                None => PolicyDefinition::DEFAULT_PAUSE_STATUSES.to_vec(),
            },
            at_risk_percent: self
                .at_risk_percent
                .unwrap_or(PolicyDefinition::DEFAULT_AT_RISK_PERCENT),
            targets: PriorityTargets {
                critical: targets(self.targets.critical),
                high: targets(self.targets.high),
                medium: targets(self.targets.medium),
                low: targets(self.targets.low),
            },
        }
    }
}

// ---- wire types: calendars -------------------------------------------------------------------

/// `HH:MM` local times; an interval whose end is not after its start runs past midnight.
#[derive(Debug, Clone, Object, Deserialize, Serialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct IntervalDto {
    #[oai(validator(max_length = 8))]
    pub start: String,
    #[oai(validator(max_length = 8))]
    pub end: String,
}

#[derive(Debug, Clone, Default, Object, Deserialize, Serialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct WeekDto {
    #[serde(default)]
    pub monday: Option<Vec<IntervalDto>>,
    #[serde(default)]
    pub tuesday: Option<Vec<IntervalDto>>,
    #[serde(default)]
    pub wednesday: Option<Vec<IntervalDto>>,
    #[serde(default)]
    pub thursday: Option<Vec<IntervalDto>>,
    #[serde(default)]
    pub friday: Option<Vec<IntervalDto>>,
    #[serde(default)]
    pub saturday: Option<Vec<IntervalDto>>,
    #[serde(default)]
    pub sunday: Option<Vec<IntervalDto>>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct CalendarRequest {
    #[oai(validator(min_length = 1, max_length = 200))]
    pub name: String,
    /// IANA time zone, e.g. `Europe/Berlin`.
    #[oai(validator(max_length = 64))]
    pub timezone: String,
    /// Open around the clock (the week and holidays are then ignored).
    #[serde(default)]
    pub always_open: Option<bool>,
    #[serde(default)]
    pub hours: Option<WeekDto>,
    /// Local dates (`YYYY-MM-DD`) on which no interval starts.
    #[serde(default)]
    pub holidays: Option<Vec<NaiveDate>>,
}

#[derive(Debug, Clone, Object)]
pub struct CalendarDto {
    pub id: Uuid,
    pub version: i64,
    pub name: String,
    pub timezone: String,
    pub always_open: bool,
    pub hours: WeekDto,
    pub holidays: Vec<NaiveDate>,
}

const DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

fn week_slots(week: &WeekDto) -> [&Option<Vec<IntervalDto>>; 7] {
    [
        &week.monday,
        &week.tuesday,
        &week.wednesday,
        &week.thursday,
        &week.friday,
        &week.saturday,
        &week.sunday,
    ]
}

fn parse_time(field: &str, text: &str) -> Result<NaiveTime, ApiError> {
    NaiveTime::parse_from_str(text, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M:%S"))
        .map_err(|_| ApiError::validation(field, "must be a time such as 09:00"))
}

impl CalendarRequest {
    fn calendar(&self) -> Result<BusinessCalendar, ApiError> {
        let timezone = Tz::from_str(self.timezone.trim()).map_err(|_| {
            ApiError::validation(
                "timezone",
                "must be an IANA time zone such as Europe/Berlin",
            )
        })?;
        let holidays: BTreeSet<NaiveDate> = self
            .holidays
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        if self.always_open.unwrap_or(false) {
            return Ok(BusinessCalendar {
                timezone,
                hours: BusinessHours::AlwaysOpen,
                holidays,
            });
        }
        let week = self.hours.clone().unwrap_or_default();
        let mut days: [Vec<OpenInterval>; 7] = Default::default();
        for (index, slot) in week_slots(&week).iter().enumerate() {
            for (n, interval) in slot.iter().flatten().enumerate() {
                let field = format!("hours.{}[{n}]", DAYS[index]);
                days[index].push(OpenInterval::new(
                    parse_time(&format!("{field}.start"), &interval.start)?,
                    parse_time(&format!("{field}.end"), &interval.end)?,
                ));
            }
        }
        Ok(BusinessCalendar {
            timezone,
            hours: BusinessHours::Weekly { days },
            holidays,
        })
    }
}

fn calendar_dto(id: Uuid, version: u32, name: &str, calendar: &BusinessCalendar) -> CalendarDto {
    let mut week = WeekDto::default();
    if let BusinessHours::Weekly { days } = &calendar.hours {
        let render = |intervals: &Vec<OpenInterval>| {
            Some(
                intervals
                    .iter()
                    .map(|i| IntervalDto {
                        start: i.start.format("%H:%M").to_string(),
                        end: i.end.format("%H:%M").to_string(),
                    })
                    .collect(),
            )
        };
        week = WeekDto {
            monday: render(&days[0]),
            tuesday: render(&days[1]),
            wednesday: render(&days[2]),
            thursday: render(&days[3]),
            friday: render(&days[4]),
            saturday: render(&days[5]),
            sunday: render(&days[6]),
        };
    }
    CalendarDto {
        id,
        version: i64::from(version),
        name: name.to_string(),
        timezone: calendar.timezone.name().to_string(),
        always_open: calendar.hours == BusinessHours::AlwaysOpen,
        hours: week,
        holidays: calendar.holidays.iter().copied().collect(),
    }
}

// ---- wire types: rules -----------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Deserialize, Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum ConditionType {
    ResponseOverdue,
    ResolutionOverdue,
    AtRisk,
    UnassignedFor,
    NoUpdateFor,
}

#[derive(Debug, Clone, Object, Deserialize, Serialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct ConditionDto {
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub kind: ConditionType,
    /// Required for `unassigned_for` and `no_update_for`.
    pub minutes: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Deserialize, Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum ActionType {
    Escalate,
    Reassign,
    RaisePriority,
    Notify,
}

#[derive(Debug, Clone, Default, Object, Deserialize, Serialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct ActionParameters {
    /// `escalate`: also assign to this agent or manager.
    pub escalate_to: Option<Uuid>,
    /// `escalate`: also assign to the lead of the ticket's team (its manager when it has no
    /// lead); ignored when `escalate_to` is given or the ticket has no team.
    pub to_team_lead: Option<bool>,
    /// `reassign`: the new assignee.
    pub agent_id: Option<Uuid>,
    /// `notify`: who.
    pub recipients: Option<Vec<Uuid>>,
    /// `notify`: what (a default names the ticket and rule).
    #[oai(validator(max_length = 2000))]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Object, Deserialize, Serialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct ActionDto {
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub kind: ActionType,
    #[serde(default)]
    pub parameters: Option<ActionParameters>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct RuleRequest {
    #[oai(validator(min_length = 1, max_length = 200))]
    pub name: String,
    /// Empty or absent: every priority.
    #[serde(default)]
    pub priorities: Option<Vec<PriorityDto>>,
    /// All must hold.
    pub conditions: Vec<ConditionDto>,
    pub actions: Vec<ActionDto>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Object)]
pub struct RuleDto {
    pub id: Uuid,
    pub version: i64,
    pub name: String,
    pub priorities: Vec<PriorityDto>,
    pub conditions: Vec<ConditionDto>,
    pub actions: Vec<ActionDto>,
    pub enabled: bool,
}

impl RuleRequest {
    fn definition(&self) -> Result<RuleDefinition, ApiError> {
        let mut conditions = Vec::with_capacity(self.conditions.len());
        for (index, condition) in self.conditions.iter().enumerate() {
            let minutes = || {
                condition.minutes.ok_or_else(|| {
                    ApiError::validation(
                        format!("conditions[{index}].minutes"),
                        "is required for this condition",
                    )
                })
            };
            conditions.push(match condition.kind {
                ConditionType::ResponseOverdue => RuleCondition::ResponseOverdue,
                ConditionType::ResolutionOverdue => RuleCondition::ResolutionOverdue,
                ConditionType::AtRisk => RuleCondition::AtRisk,
                ConditionType::UnassignedFor => RuleCondition::UnassignedFor {
                    minutes: minutes()?,
                },
                ConditionType::NoUpdateFor => RuleCondition::NoUpdateFor {
                    minutes: minutes()?,
                },
            });
        }
        let mut actions = Vec::with_capacity(self.actions.len());
        for (index, action) in self.actions.iter().enumerate() {
            let parameters = action.parameters.clone().unwrap_or_default();
            actions.push(match action.kind {
                ActionType::Escalate => RuleAction::Escalate {
                    escalate_to: parameters.escalate_to.map(UserId),
                    to_team_lead: parameters.to_team_lead.unwrap_or(false),
                },
                ActionType::Reassign => RuleAction::Reassign {
                    agent_id: UserId(parameters.agent_id.ok_or_else(|| {
                        ApiError::validation(
                            format!("actions[{index}].parameters.agent_id"),
                            "is required for reassign",
                        )
                    })?),
                },
                ActionType::RaisePriority => RuleAction::RaisePriority,
                ActionType::Notify => RuleAction::Notify {
                    recipients: parameters
                        .recipients
                        .unwrap_or_default()
                        .into_iter()
                        .map(UserId)
                        .collect(),
                    message: parameters.message,
                },
            });
        }
        Ok(RuleDefinition {
            name: self.name.trim().to_string(),
            priorities: self
                .priorities
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(Priority::from)
                .collect(),
            conditions,
            actions,
            enabled: self.enabled.unwrap_or(true),
        })
    }
}

fn rule_dto(id: Uuid, version: u32, definition: &RuleDefinition) -> RuleDto {
    RuleDto {
        id,
        version: i64::from(version),
        name: definition.name.clone(),
        priorities: definition.priorities.iter().map(|p| (*p).into()).collect(),
        conditions: definition
            .conditions
            .iter()
            .map(|c| match c {
                RuleCondition::ResponseOverdue => ConditionDto {
                    kind: ConditionType::ResponseOverdue,
                    minutes: None,
                },
                RuleCondition::ResolutionOverdue => ConditionDto {
                    kind: ConditionType::ResolutionOverdue,
                    minutes: None,
                },
                RuleCondition::AtRisk => ConditionDto {
                    kind: ConditionType::AtRisk,
                    minutes: None,
                },
                RuleCondition::UnassignedFor { minutes } => ConditionDto {
                    kind: ConditionType::UnassignedFor,
                    minutes: Some(*minutes),
                },
                RuleCondition::NoUpdateFor { minutes } => ConditionDto {
                    kind: ConditionType::NoUpdateFor,
                    minutes: Some(*minutes),
                },
            })
            .collect(),
        actions: definition
            .actions
            .iter()
            .map(|a| match a {
                RuleAction::Escalate {
                    escalate_to,
                    to_team_lead,
                } => ActionDto {
                    kind: ActionType::Escalate,
                    parameters: Some(ActionParameters {
                        escalate_to: escalate_to.map(|u| u.0),
                        to_team_lead: Some(*to_team_lead),
                        ..Default::default()
                    }),
                },
                RuleAction::Reassign { agent_id } => ActionDto {
                    kind: ActionType::Reassign,
                    parameters: Some(ActionParameters {
                        agent_id: Some(agent_id.0),
                        ..Default::default()
                    }),
                },
                RuleAction::RaisePriority => ActionDto {
                    kind: ActionType::RaisePriority,
                    parameters: None,
                },
                RuleAction::Notify {
                    recipients,
                    message,
                } => ActionDto {
                    kind: ActionType::Notify,
                    parameters: Some(ActionParameters {
                        recipients: Some(recipients.iter().map(|u| u.0).collect()),
                        message: message.clone(),
                        ..Default::default()
                    }),
                },
            })
            .collect(),
        enabled: definition.enabled,
    }
}

// ---- wire types: clocks and reports ----------------------------------------------------------

#[derive(Debug, Clone, Object)]
pub struct PolicyRef {
    /// The nil id for the built-in default policy.
    pub id: Uuid,
    pub name: String,
    pub version: i64,
}

#[derive(Debug, Clone, Object)]
pub struct ClockDto {
    /// `first_response`, `next_response`, `resolution` or `escalation`.
    pub metric: String,
    pub cycle: i64,
    pub target_seconds: i64,
    pub started_at: DateTime<Utc>,
    /// While the clock runs: when the target is reached.
    pub due_at: Option<DateTime<Utc>>,
    pub elapsed_business_seconds: i64,
    /// Business seconds left; negative once breached.
    pub remaining_seconds: i64,
    /// `running`, `paused`, `at_risk`, `breached` or `met`.
    pub state: String,
}

#[derive(Debug, Clone, Object)]
pub struct SlaCheck {
    pub ticket_id: Uuid,
    pub checked_at: DateTime<Utc>,
    /// Absent when no policy applies to the ticket yet.
    pub policy: Option<PolicyRef>,
    pub metrics: Vec<ClockDto>,
}

#[derive(Debug, Clone, Object)]
pub struct ViolationDto {
    pub ticket_id: Uuid,
    pub number: String,
    pub subject: String,
    pub priority: PriorityDto,
    pub metric: String,
    pub due_at: Option<DateTime<Utc>>,
    /// Business seconds; negative once breached.
    pub remaining_seconds: i64,
}

#[derive(Debug, Clone, Object)]
pub struct Violations {
    pub at_risk: Vec<ViolationDto>,
    pub breached: Vec<ViolationDto>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum GroupBy {
    Priority,
    Category,
    Assignee,
    Team,
}

#[derive(Debug, Clone, Object)]
pub struct MetricCompliance {
    pub metric: String,
    pub met: i64,
    pub breached: i64,
    /// met / (met + breached); absent when nothing finished.
    pub compliance_rate: Option<f64>,
    pub mean_business_seconds: Option<f64>,
    pub p90_business_seconds: Option<f64>,
}

#[derive(Debug, Clone, Object)]
pub struct ComplianceGroupDto {
    /// The priority, category or assignee id; absent for tickets without one.
    pub key: Option<String>,
    pub metrics: Vec<MetricCompliance>,
}

#[derive(Debug, Clone, Object)]
pub struct SlaMetricsReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub group_by: String,
    pub groups: Vec<ComplianceGroupDto>,
}

// ---- responses -------------------------------------------------------------------------------

#[derive(ApiResponse)]
pub enum PolicySaved {
    #[oai(status = 201)]
    Created(
        Json<PolicyDto>,
        #[oai(header = "ETag")] String,
        #[oai(header = "X-Consistency-Token")] Option<String>,
    ),
    #[oai(status = 200)]
    Ok(
        Json<PolicyDto>,
        #[oai(header = "ETag")] String,
        #[oai(header = "X-Consistency-Token")] Option<String>,
    ),
}

#[derive(ApiResponse)]
pub enum CalendarSaved {
    #[oai(status = 201)]
    Created(
        Json<CalendarDto>,
        #[oai(header = "ETag")] String,
        #[oai(header = "X-Consistency-Token")] Option<String>,
    ),
    #[oai(status = 200)]
    Ok(
        Json<CalendarDto>,
        #[oai(header = "ETag")] String,
        #[oai(header = "X-Consistency-Token")] Option<String>,
    ),
}

#[derive(ApiResponse)]
pub enum RuleSaved {
    #[oai(status = 201)]
    Created(
        Json<RuleDto>,
        #[oai(header = "ETag")] String,
        #[oai(header = "X-Consistency-Token")] Option<String>,
    ),
    #[oai(status = 200)]
    Ok(
        Json<RuleDto>,
        #[oai(header = "ETag")] String,
        #[oai(header = "X-Consistency-Token")] Option<String>,
    ),
}

#[derive(ApiResponse)]
pub enum Deleted {
    /// Send the token back on a list read to see the deletion.
    #[oai(status = 204)]
    NoContent(#[oai(header = "X-Consistency-Token")] Option<String>),
}

fn config_error<E: Into<ConfigError>>(error: CommandError<E>) -> ApiError {
    match error {
        CommandError::Rejected(rejection) => {
            let rejection: ConfigError = rejection.into();
            match rejection {
                ConfigError::NotPermitted { .. } => ApiError::Forbidden(rejection.to_string()),
                ConfigError::NotFound { what } => ApiError::not_found(what),
                ConfigError::AlreadyExists { .. } => ApiError::Conflict {
                    kind: "already-exists",
                    title: "It already exists",
                    detail: rejection.to_string(),
                },
                ConfigError::Invalid(error) => ApiError::validation(error.field, error.reason),
            }
        }
        CommandError::VersionMismatch { current } => ApiError::PreconditionFailed {
            current_version: current,
        },
        CommandError::Conflict => ApiError::ConcurrentModification,
        CommandError::Store(error) => error,
    }
}

async fn calendar_exists(state: &AppState, id: Option<Uuid>) -> Result<(), ApiError> {
    if let Some(id) = id {
        let (calendar, _) = state.sla_calendars.load(&id.to_string()).await?;
        if calendar.id.is_none() {
            return Err(ApiError::validation("calendar_id", "no such calendar"));
        }
    }
    Ok(())
}

async fn wait_config(state: &AppState, token: Option<&str>) -> Result<(), ApiError> {
    if let Some(checkpoint) = parse_consistency_token(token)? {
        wait_for_projector(state, "sla_config", checkpoint).await?;
    }
    Ok(())
}

fn staff(user: &AuthUser) -> Result<(), ApiError> {
    user.require_staff("see SLA configuration or clocks")
}

fn policy_saved(created: bool, committed: &Committed<SlaPolicy>) -> Result<PolicySaved, ApiError> {
    let policy = &committed.aggregate;
    let (Some(id), Some(definition)) = (policy.id, policy.definition.as_ref()) else {
        return Err(ApiError::internal("policy command left no policy"));
    };
    let dto = policy_dto(id, policy.version, policy.position, definition);
    let (tag, token) = (
        etag(committed.version),
        consistency_token(committed.position),
    );
    Ok(if created {
        PolicySaved::Created(Json(dto), tag, token)
    } else {
        PolicySaved::Ok(Json(dto), tag, token)
    })
}

fn calendar_saved(
    created: bool,
    committed: &Committed<SlaCalendar>,
) -> Result<CalendarSaved, ApiError> {
    let calendar = &committed.aggregate;
    let (Some(id), Some(hours)) = (calendar.id, calendar.calendar.as_ref()) else {
        return Err(ApiError::internal("calendar command left no calendar"));
    };
    let dto = calendar_dto(id, calendar.version, &calendar.name, hours);
    let (tag, token) = (
        etag(committed.version),
        consistency_token(committed.position),
    );
    Ok(if created {
        CalendarSaved::Created(Json(dto), tag, token)
    } else {
        CalendarSaved::Ok(Json(dto), tag, token)
    })
}

fn rule_saved(created: bool, committed: &Committed<EscalationRule>) -> Result<RuleSaved, ApiError> {
    let rule = &committed.aggregate;
    let (Some(id), Some(definition)) = (rule.id, rule.definition.as_ref()) else {
        return Err(ApiError::internal("rule command left no rule"));
    };
    let dto = rule_dto(id, rule.version, definition);
    let (tag, token) = (
        etag(committed.version),
        consistency_token(committed.position),
    );
    Ok(if created {
        RuleSaved::Created(Json(dto), tag, token)
    } else {
        RuleSaved::Ok(Json(dto), tag, token)
    })
}

fn remaining_for(sla: &docket_domain::ticket::TicketSla, metric: &str, now: DateTime<Utc>) -> i64 {
    sla.views(now)
        .into_iter()
        .find(|v| v.metric.as_str() == metric)
        .map_or(0, |v| v.remaining_seconds)
}

#[derive(Default)]
pub struct SlaApi;

#[OpenApi(tag = "ApiTags::Sla")]
impl SlaApi {
    /// SLA policies in the order they are tried (staff).
    #[oai(
        path = "/api/sla/policies",
        method = "get",
        operation_id = "list_sla_policies"
    )]
    async fn policies(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        #[oai(name = "X-Consistency-Token")] consistency: Header<Option<String>>,
    ) -> Result<Json<Vec<PolicyDto>>, ApiError> {
        staff(&auth.0)?;
        wait_config(&state, consistency.0.as_deref()).await?;
        let rows = sla_config::policies(&state.pool)
            .await
            .map_err(ApiError::database)?;
        rows.into_iter()
            .map(|row| {
                let definition: PolicyDefinition =
                    serde_json::from_value(row.body).map_err(ApiError::internal)?;
                Ok(policy_dto(
                    row.id,
                    u32::try_from(row.version).unwrap_or(0),
                    row.position,
                    &definition,
                ))
            })
            .collect::<Result<Vec<_>, ApiError>>()
            .map(Json)
    }

    /// Create a policy (managers, admins). It applies to new tickets at once and to open ones
    /// within moments.
    #[oai(
        path = "/api/sla/policies",
        method = "post",
        operation_id = "create_sla_policy"
    )]
    async fn create_policy(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        context: Data<&RequestContext>,
        body: JsonBody<PolicyRequest>,
    ) -> Result<PolicySaved, ApiError> {
        let me = auth.0;
        let definition = body.0.definition();
        calendar_exists(&state, definition.calendar_id).await?;
        let id = Uuid::now_v7();
        let committed = state
            .sla_policies
            .execute(
                &id.to_string(),
                Some(0),
                SlaPolicyCommand::Create {
                    policy_id: id,
                    definition,
                    position: body.0.position,
                    actor: me.actor(),
                    at: state.clock.now(),
                },
                context.metadata(Some(me.actor())),
            )
            .await
            .map_err(config_error)?;
        policy_saved(true, &committed)
    }

    /// One policy, current version (staff).
    #[oai(
        path = "/api/sla/policies/:id",
        method = "get",
        operation_id = "get_sla_policy"
    )]
    async fn policy(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        id: Path<Uuid>,
    ) -> Result<PolicySaved, ApiError> {
        staff(&auth.0)?;
        let (policy, version) = state.sla_policies.load(&id.0.to_string()).await?;
        if policy.deleted || policy.id.is_none() {
            return Err(ApiError::not_found("SLA policy"));
        }
        let committed = Committed {
            aggregate: policy,
            version,
            position: None,
            events: vec![],
        };
        policy_saved(false, &committed)
    }

    /// Replace a policy: a new version, applied from this moment (managers, admins).
    #[oai(
        path = "/api/sla/policies/:id",
        method = "put",
        operation_id = "update_sla_policy"
    )]
    async fn update_policy(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        context: Data<&RequestContext>,
        id: Path<Uuid>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
        body: JsonBody<PolicyRequest>,
    ) -> Result<PolicySaved, ApiError> {
        let me = auth.0;
        let definition = body.0.definition();
        calendar_exists(&state, definition.calendar_id).await?;
        let committed = state
            .sla_policies
            .execute(
                &id.0.to_string(),
                parse_if_match(if_match.0.as_deref())?,
                SlaPolicyCommand::Update {
                    definition,
                    position: body.0.position,
                    actor: me.actor(),
                    at: state.clock.now(),
                },
                context.metadata(Some(me.actor())),
            )
            .await
            .map_err(config_error)?;
        policy_saved(false, &committed)
    }

    /// Delete a policy; open tickets fall back to the next matching one (managers, admins).
    #[oai(
        path = "/api/sla/policies/:id",
        method = "delete",
        operation_id = "delete_sla_policy"
    )]
    async fn delete_policy(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        context: Data<&RequestContext>,
        id: Path<Uuid>,
    ) -> Result<Deleted, ApiError> {
        let me = auth.0;
        let committed = state
            .sla_policies
            .execute(
                &id.0.to_string(),
                None,
                SlaPolicyCommand::Delete {
                    actor: me.actor(),
                    at: state.clock.now(),
                },
                context.metadata(Some(me.actor())),
            )
            .await
            .map_err(config_error)?;
        Ok(Deleted::NoContent(consistency_token(committed.position)))
    }

    /// Business calendars (staff).
    #[oai(
        path = "/api/sla/calendars",
        method = "get",
        operation_id = "list_sla_calendars"
    )]
    async fn calendars(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        #[oai(name = "X-Consistency-Token")] consistency: Header<Option<String>>,
    ) -> Result<Json<Vec<CalendarDto>>, ApiError> {
        staff(&auth.0)?;
        wait_config(&state, consistency.0.as_deref()).await?;
        let rows = sla_config::calendars(&state.pool)
            .await
            .map_err(ApiError::database)?;
        rows.into_iter()
            .map(|row| {
                let calendar: BusinessCalendar =
                    serde_json::from_value(row.body).map_err(ApiError::internal)?;
                Ok(calendar_dto(
                    row.id,
                    u32::try_from(row.version).unwrap_or(0),
                    &row.name,
                    &calendar,
                ))
            })
            .collect::<Result<Vec<_>, ApiError>>()
            .map(Json)
    }

    /// Create a business calendar (managers, admins).
    #[oai(
        path = "/api/sla/calendars",
        method = "post",
        operation_id = "create_sla_calendar"
    )]
    async fn create_calendar(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        context: Data<&RequestContext>,
        body: JsonBody<CalendarRequest>,
    ) -> Result<CalendarSaved, ApiError> {
        let me = auth.0;
        let calendar = body.0.calendar()?;
        let id = Uuid::now_v7();
        let committed = state
            .sla_calendars
            .execute(
                &id.to_string(),
                Some(0),
                SlaCalendarCommand::Create {
                    calendar_id: id,
                    name: body.0.name.clone(),
                    calendar,
                    actor: me.actor(),
                    at: state.clock.now(),
                },
                context.metadata(Some(me.actor())),
            )
            .await
            .map_err(config_error)?;
        calendar_saved(true, &committed)
    }

    /// One calendar (staff).
    #[oai(
        path = "/api/sla/calendars/:id",
        method = "get",
        operation_id = "get_sla_calendar"
    )]
    async fn calendar(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        id: Path<Uuid>,
    ) -> Result<CalendarSaved, ApiError> {
        staff(&auth.0)?;
        let (calendar, version) = state.sla_calendars.load(&id.0.to_string()).await?;
        if calendar.id.is_none() {
            return Err(ApiError::not_found("calendar"));
        }
        calendar_saved(
            false,
            &Committed {
                aggregate: calendar,
                version,
                position: None,
                events: vec![],
            },
        )
    }

    /// Replace a calendar: a new version (managers, admins).
    #[oai(
        path = "/api/sla/calendars/:id",
        method = "put",
        operation_id = "update_sla_calendar"
    )]
    async fn update_calendar(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        context: Data<&RequestContext>,
        id: Path<Uuid>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
        body: JsonBody<CalendarRequest>,
    ) -> Result<CalendarSaved, ApiError> {
        let me = auth.0;
        let calendar = body.0.calendar()?;
        let committed = state
            .sla_calendars
            .execute(
                &id.0.to_string(),
                parse_if_match(if_match.0.as_deref())?,
                SlaCalendarCommand::Update {
                    name: body.0.name.clone(),
                    calendar,
                    actor: me.actor(),
                    at: state.clock.now(),
                },
                context.metadata(Some(me.actor())),
            )
            .await
            .map_err(config_error)?;
        calendar_saved(false, &committed)
    }

    /// The SLA clocks of one ticket, computed now from its log (staff).
    #[oai(
        path = "/api/sla/check/:ticket_id",
        method = "get",
        operation_id = "check_sla"
    )]
    async fn check(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        ticket_id: Path<Uuid>,
    ) -> Result<Json<SlaCheck>, ApiError> {
        staff(&auth.0)?;
        let (ticket, _) = state.tickets.load(&ticket_id.0.to_string()).await?;
        let ticket = ticket
            .state()
            .ok_or_else(|| ApiError::not_found("ticket"))?;
        let now = state.clock.now();
        let (policy, metrics) = match &ticket.sla {
            Some(sla) => (
                Some(PolicyRef {
                    id: sla.policy.policy_id,
                    name: sla.policy.name.clone(),
                    version: i64::from(sla.policy.version),
                }),
                sla.views(now)
                    .into_iter()
                    .map(|v| ClockDto {
                        metric: v.metric.as_str().to_string(),
                        cycle: i64::from(v.cycle),
                        target_seconds: i64::try_from(v.target_seconds).unwrap_or(i64::MAX),
                        started_at: v.started_at,
                        due_at: v.due_at,
                        elapsed_business_seconds: v.elapsed_business_seconds,
                        remaining_seconds: v.remaining_seconds,
                        state: v.state.as_str().to_string(),
                    })
                    .collect(),
            ),
            None => (None, vec![]),
        };
        Ok(Json(SlaCheck {
            ticket_id: ticket_id.0,
            checked_at: now,
            policy,
            metrics,
        }))
    }

    /// Clocks at risk and breached, most urgent first (staff).
    #[oai(
        path = "/api/sla/violations",
        method = "get",
        operation_id = "sla_violations"
    )]
    async fn violations(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        #[oai(name = "X-Consistency-Token")] consistency: Header<Option<String>>,
    ) -> Result<Json<Violations>, ApiError> {
        staff(&auth.0)?;
        if let Some(checkpoint) = parse_consistency_token(consistency.0.as_deref())? {
            wait_for_projector(&state, "tickets", checkpoint).await?;
        }
        let now = state.clock.now();
        let rows = sla_view::violations(&state.pool, None, 1_000)
            .await
            .map_err(ApiError::database)?;
        let mut report = Violations {
            at_risk: vec![],
            breached: vec![],
        };
        for row in rows {
            let priority: Priority = row.priority.parse().map_err(ApiError::internal)?;
            let remaining = row
                .sla
                .as_ref()
                .map_or(0, |sla| remaining_for(sla, &row.metric, now));
            let entry = ViolationDto {
                ticket_id: row.ticket_id,
                number: docket_domain::values::TicketNumber(row.number).to_string(),
                subject: row.subject,
                priority: priority.into(),
                metric: row.metric,
                due_at: row.due_at,
                remaining_seconds: remaining,
            };
            if row.state == "breached" {
                report.breached.push(entry);
            } else {
                report.at_risk.push(entry);
            }
        }
        Ok(Json(report))
    }

    /// Compliance per metric for clocks that finished in `[from, to)`, grouped (staff).
    #[oai(
        path = "/api/sla/metrics",
        method = "get",
        operation_id = "sla_metrics"
    )]
    async fn metrics(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        /// Default: 30 days before `to`.
        from: Query<Option<DateTime<Utc>>>,
        /// Default: now.
        to: Query<Option<DateTime<Utc>>>,
        /// Default `priority`.
        group_by: Query<Option<GroupBy>>,
    ) -> Result<Json<SlaMetricsReport>, ApiError> {
        staff(&auth.0)?;
        let to = to.0.unwrap_or_else(|| state.clock.now());
        let from = from.0.unwrap_or(to - Duration::days(30));
        if from >= to {
            return Err(ApiError::InvalidParameter {
                field: "from".into(),
                detail: "must be before `to`".into(),
            });
        }
        let (group, name) = match group_by.0.unwrap_or(GroupBy::Priority) {
            GroupBy::Priority => (ComplianceGroup::Priority, "priority"),
            GroupBy::Category => (ComplianceGroup::Category, "category"),
            GroupBy::Assignee => (ComplianceGroup::Assignee, "assignee"),
            GroupBy::Team => (ComplianceGroup::Team, "team"),
        };
        let rows = sla_view::compliance(&state.pool, group, from, to)
            .await
            .map_err(ApiError::database)?;
        let mut groups: BTreeMap<Option<String>, Vec<MetricCompliance>> = BTreeMap::new();
        for row in rows {
            let finished = row.met + row.breached;
            groups
                .entry(row.group_key)
                .or_default()
                .push(MetricCompliance {
                    metric: row.metric,
                    met: row.met,
                    breached: row.breached,
                    compliance_rate: (finished > 0).then(|| row.met as f64 / finished as f64),
                    mean_business_seconds: row.mean_business_seconds,
                    p90_business_seconds: row.p90_business_seconds,
                });
        }
        Ok(Json(SlaMetricsReport {
            from,
            to,
            group_by: name.to_string(),
            groups: groups
                .into_iter()
                .map(|(key, metrics)| ComplianceGroupDto { key, metrics })
                .collect(),
        }))
    }
}

#[derive(Default)]
pub struct RulesApi;

#[OpenApi(tag = "ApiTags::Sla")]
impl RulesApi {
    /// Escalation rules (staff).
    #[oai(
        path = "/api/escalation-rules",
        method = "get",
        operation_id = "list_escalation_rules"
    )]
    async fn rules(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        #[oai(name = "X-Consistency-Token")] consistency: Header<Option<String>>,
    ) -> Result<Json<Vec<RuleDto>>, ApiError> {
        staff(&auth.0)?;
        wait_config(&state, consistency.0.as_deref()).await?;
        let rows = sla_config::rules(&state.pool)
            .await
            .map_err(ApiError::database)?;
        rows.into_iter()
            .map(|row| {
                let definition: RuleDefinition =
                    serde_json::from_value(row.body).map_err(ApiError::internal)?;
                Ok(rule_dto(
                    row.id,
                    u32::try_from(row.version).unwrap_or(0),
                    &definition,
                ))
            })
            .collect::<Result<Vec<_>, ApiError>>()
            .map(Json)
    }

    /// Create an escalation rule (managers, admins).
    #[oai(
        path = "/api/escalation-rules",
        method = "post",
        operation_id = "create_escalation_rule"
    )]
    async fn create_rule(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        context: Data<&RequestContext>,
        body: JsonBody<RuleRequest>,
    ) -> Result<RuleSaved, ApiError> {
        let me = auth.0;
        let definition = body.0.definition()?;
        let id = Uuid::now_v7();
        let committed = state
            .escalation_rules
            .execute(
                &id.to_string(),
                Some(0),
                EscalationRuleCommand::Create {
                    rule_id: id,
                    definition,
                    actor: me.actor(),
                    at: state.clock.now(),
                },
                context.metadata(Some(me.actor())),
            )
            .await
            .map_err(config_error)?;
        rule_saved(true, &committed)
    }

    /// Replace a rule: a new version (managers, admins).
    #[oai(
        path = "/api/escalation-rules/:id",
        method = "put",
        operation_id = "update_escalation_rule"
    )]
    async fn update_rule(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        context: Data<&RequestContext>,
        id: Path<Uuid>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
        body: JsonBody<RuleRequest>,
    ) -> Result<RuleSaved, ApiError> {
        let me = auth.0;
        let definition = body.0.definition()?;
        let committed = state
            .escalation_rules
            .execute(
                &id.0.to_string(),
                parse_if_match(if_match.0.as_deref())?,
                EscalationRuleCommand::Update {
                    definition,
                    actor: me.actor(),
                    at: state.clock.now(),
                },
                context.metadata(Some(me.actor())),
            )
            .await
            .map_err(config_error)?;
        rule_saved(false, &committed)
    }

    /// Delete a rule (managers, admins).
    #[oai(
        path = "/api/escalation-rules/:id",
        method = "delete",
        operation_id = "delete_escalation_rule"
    )]
    async fn delete_rule(
        &self,
        auth: BearerAuth,
        state: Data<&SharedState>,
        context: Data<&RequestContext>,
        id: Path<Uuid>,
    ) -> Result<Deleted, ApiError> {
        let me = auth.0;
        let committed = state
            .escalation_rules
            .execute(
                &id.0.to_string(),
                None,
                EscalationRuleCommand::Delete {
                    actor: me.actor(),
                    at: state.clock.now(),
                },
                context.metadata(Some(me.actor())),
            )
            .await
            .map_err(config_error)?;
        Ok(Deleted::NoContent(consistency_token(committed.position)))
    }
}
