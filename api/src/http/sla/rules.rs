//! `/api/escalation-rules`: what happens to tickets whose SLA is at risk or breached, or that
//! wait unassigned or untouched.

use docket_domain::Priority;
use docket_domain::sla::config::{EscalationRule, RuleAction, RuleCondition, RuleDefinition};
use docket_domain::values::UserId;
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ConfigSaved, Deleted, Made};
use crate::app::sla::config::{self, Saved};
use crate::app::sla::escalation;
use crate::app::{Origin, SharedApp};
use crate::http::json::JsonBody;
use crate::http::paging::{Page, Paging};
use crate::http::principal::{SignedIn, consistency_token};
use crate::http::problem::ApiError;
use crate::http::wire::{PriorityDto, SlaMetricDto, StatusDto};
use crate::http::wire::{default_page, default_page_size};
use crate::http::{ApiTags, if_match};
use docket_domain::values::TicketNumber;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Deserialize, Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum ConditionType {
    /// A first- or next-response clock breached.
    ResponseOverdue,
    /// The resolution clock breached.
    ResolutionOverdue,
    /// A running clock (of `metric`, or any) is warned and not yet breached.
    AtRisk,
    /// A running clock (of `metric`, or any) breached.
    Breached,
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
    /// `at_risk` and `breached`: only this clock (default: any).
    pub metric: Option<SlaMetricDto>,
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
    /// Also act on tickets that already meet the conditions when the rule is saved. Default
    /// false: the rule acts only on warnings, breaches and waits that come about after it is
    /// saved. See `POST /api/escalation-rules/preview` first.
    #[serde(default)]
    pub apply_to_existing: Option<bool>,
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
    pub apply_to_existing: bool,
    /// On a write: how many tickets the rule acts on at once (those that already meet it,
    /// when it applies to them; otherwise 0).
    pub acting_on_now: Option<i64>,
}

/// What a rule would do if saved now. Nothing was written.
#[derive(Debug, Clone, Object)]
pub struct RulePreview {
    /// Whether it would act on tickets that already meet it (`apply_to_existing`); when not,
    /// it acts only on what happens from now on, and `tickets` is empty.
    pub apply_to_existing: bool,
    /// The tickets it would act on at once, in the order it would take them (at most 500).
    pub tickets: Vec<PreviewTicket>,
    /// What it would do to each, in order.
    pub actions: Vec<ActionDto>,
}

#[derive(Debug, Clone, Object)]
pub struct PreviewTicket {
    pub ticket_id: Uuid,
    pub number: String,
    pub subject: String,
    pub priority: PriorityDto,
    pub status: StatusDto,
    pub assignee_id: Option<Uuid>,
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
                ConditionType::AtRisk => RuleCondition::AtRisk {
                    metric: condition.metric.map(Into::into),
                },
                ConditionType::Breached => RuleCondition::Breached {
                    metric: condition.metric.map(Into::into),
                },
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
            apply_to_existing: self.apply_to_existing.unwrap_or(false),
        })
    }
}

impl From<Saved<RuleDefinition>> for RuleDto {
    fn from(saved: Saved<RuleDefinition>) -> Self {
        rule_dto(saved.id, saved.version, &saved.definition)
    }
}

fn actions_dto(actions: &[RuleAction]) -> Vec<ActionDto> {
    actions
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
        .collect()
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
                    metric: None,
                },
                RuleCondition::ResolutionOverdue => ConditionDto {
                    kind: ConditionType::ResolutionOverdue,
                    minutes: None,
                    metric: None,
                },
                RuleCondition::AtRisk { metric } => ConditionDto {
                    kind: ConditionType::AtRisk,
                    minutes: None,
                    metric: metric.map(Into::into),
                },
                RuleCondition::Breached { metric } => ConditionDto {
                    kind: ConditionType::Breached,
                    minutes: None,
                    metric: metric.map(Into::into),
                },
                RuleCondition::UnassignedFor { minutes } => ConditionDto {
                    kind: ConditionType::UnassignedFor,
                    minutes: Some(*minutes),
                    metric: None,
                },
                RuleCondition::NoUpdateFor { minutes } => ConditionDto {
                    kind: ConditionType::NoUpdateFor,
                    minutes: Some(*minutes),
                    metric: None,
                },
            })
            .collect(),
        actions: actions_dto(&definition.actions),
        enabled: definition.enabled,
        apply_to_existing: definition.apply_to_existing,
        acting_on_now: None,
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
    async fn list(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        /// 1-based page number.
        #[oai(
            default = "default_page",
            validator(minimum(value = "1"), maximum(value = "1000000"))
        )]
        page: Query<i64>,
        /// Items per page, at most 100.
        #[oai(
            default = "default_page_size",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        page_size: Query<i64>,
    ) -> Result<Json<Page<RuleDto>>, ApiError> {
        let rules = config::list::<EscalationRule>(&app, &auth.0).await?;
        Ok(Json(Page::of(rules, Paging::new(page.0, page_size.0))))
    }

    /// Create an escalation rule (managers, admins).
    #[oai(
        path = "/api/escalation-rules",
        method = "post",
        operation_id = "create_escalation_rule"
    )]
    async fn create(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        body: JsonBody<RuleRequest>,
    ) -> Result<ConfigSaved<RuleDto>, ApiError> {
        let definition = body.0.definition()?;
        let acting = escalation::acting_on_now(&app, &definition).await?;
        let written = config::create::<EscalationRule>(&app, &auth.0, &origin, definition).await?;
        Ok(ConfigSaved::of_with(
            Made::Under("/api/escalation-rules"),
            written,
            |rule: &mut RuleDto| rule.acting_on_now = Some(acting),
        ))
    }

    /// What a rule would do if it were saved now: the tickets it would act on at once, and
    /// its actions. Writes nothing.
    #[oai(
        path = "/api/escalation-rules/preview",
        method = "post",
        operation_id = "preview_escalation_rule"
    )]
    async fn preview(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        body: JsonBody<RuleRequest>,
    ) -> Result<Json<RulePreview>, ApiError> {
        let definition = body.0.definition()?;
        let tickets = escalation::preview(&app, &auth.0, &definition).await?;
        Ok(Json(RulePreview {
            apply_to_existing: definition.apply_to_existing,
            tickets: tickets
                .into_iter()
                .map(|t| PreviewTicket {
                    ticket_id: t.id,
                    number: TicketNumber(t.number).to_string(),
                    subject: t.subject,
                    priority: t.priority.into(),
                    status: t.status.into(),
                    assignee_id: t.assignee_id,
                })
                .collect(),
            actions: actions_dto(&definition.actions),
        }))
    }

    /// One rule, current version (staff).
    #[oai(
        path = "/api/escalation-rules/:id",
        method = "get",
        operation_id = "get_escalation_rule"
    )]
    async fn get(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        id: Path<Uuid>,
    ) -> Result<ConfigSaved<RuleDto>, ApiError> {
        let written = config::get::<EscalationRule>(&app, &auth.0, id.0).await?;
        Ok(ConfigSaved::of(Made::Changed, written))
    }

    /// Replace a rule: a new version (managers, admins).
    #[oai(
        path = "/api/escalation-rules/:id",
        method = "put",
        operation_id = "update_escalation_rule"
    )]
    async fn update(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
        #[oai(name = "If-Match")] expected: Header<Option<String>>,
        body: JsonBody<RuleRequest>,
    ) -> Result<ConfigSaved<RuleDto>, ApiError> {
        let expected = if_match(expected.0.as_deref())?;
        let definition = body.0.definition()?;
        let acting = escalation::acting_on_now(&app, &definition).await?;
        let written =
            config::update::<EscalationRule>(&app, &auth.0, &origin, id.0, expected, definition)
                .await?;
        Ok(ConfigSaved::of_with(
            Made::Changed,
            written,
            |rule: &mut RuleDto| rule.acting_on_now = Some(acting),
        ))
    }

    /// Delete a rule (managers, admins).
    #[oai(
        path = "/api/escalation-rules/:id",
        method = "delete",
        operation_id = "delete_escalation_rule"
    )]
    async fn delete(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
    ) -> Result<Deleted, ApiError> {
        let position = config::delete::<EscalationRule>(&app, &auth.0, &origin, id.0).await?;
        Ok(Deleted::NoContent(consistency_token(position)))
    }
}
