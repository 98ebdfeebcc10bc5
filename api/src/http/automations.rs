//! `/api/automations`: automation rules (managers and admins), and trying one on a ticket.

use poem::web::Data;
use poem_openapi::param::{Header, Path};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::app::automations::{self, RuleView, TestView};
use crate::app::{Origin, SharedApp};
use crate::http::json::JsonBody;
use crate::http::principal::SignedIn;
use crate::http::problem::ApiError;
use crate::http::wire::Timestamp;
use crate::http::{ApiTags, etag, if_match};

/// A rule as written. Every mistake is a 422 naming its path (`conditions.all[1].operator`,
/// `actions[0].agent_id`); the guide lists the events, fields, operators and actions.
#[derive(Debug, Clone, Object, Deserialize, Serialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct AutomationRuleRequest {
    pub name: String,
    /// Default true.
    pub enabled: Option<bool>,
    /// Rules run in this order (lowest first; then oldest first). Default 0.
    pub position: Option<i32>,
    /// `{"type": "event", "events": ["ticket.created", …]}` or `{"type": "time"}`.
    pub trigger: Value,
    /// `{"all": [{field, operator, value}, …], "any": […]}`.
    pub conditions: Option<Value>,
    /// In order: `{"type": "set_status", "status": …}`, `set_priority`, `assign_agent`,
    /// `assign_team`, `route`, `add_tags`, `remove_tags`, `add_internal_note`,
    /// `add_public_reply`, `escalate`, `notify`, `send_email`, `call_webhook`, `raise_alert`.
    pub actions: Vec<Value>,
}

impl AutomationRuleRequest {
    fn as_json(&self) -> Value {
        let mut body = serde_json::to_value(self).unwrap_or(Value::Null);
        // Absent and null mean the same: the default.
        if let Some(object) = body.as_object_mut() {
            object.retain(|_, v| !v.is_null());
        }
        body
    }
}

#[derive(Debug, Clone, Object)]
pub struct AutomationRuleDto {
    pub id: Uuid,
    pub name: String,
    pub enabled: bool,
    pub position: i32,
    pub trigger: Value,
    pub conditions: Value,
    pub actions: Vec<Value>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: i64,
    /// How many chains of rule-caused events deeper than 10 stopped at this rule (a loop
    /// between rules, most likely), and when the last did.
    pub loops_stopped: i64,
    pub last_loop_stopped_at: Option<Timestamp>,
}

impl From<RuleView> for AutomationRuleDto {
    fn from(rule: RuleView) -> Self {
        let definition = rule.definition;
        Self {
            id: rule.id,
            name: definition.name,
            enabled: definition.enabled,
            position: definition.position,
            trigger: serde_json::to_value(&definition.trigger).unwrap_or(Value::Null),
            conditions: serde_json::to_value(&definition.conditions).unwrap_or(Value::Null),
            actions: definition
                .actions
                .iter()
                .map(|a| serde_json::to_value(a).unwrap_or(Value::Null))
                .collect(),
            created_at: rule.created_at.into(),
            updated_at: rule.updated_at.into(),
            version: rule.version,
            loops_stopped: rule.loops_stopped,
            last_loop_stopped_at: rule.last_loop_stopped_at.map(Timestamp),
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct AutomationRulesDto {
    /// In the order they run.
    pub items: Vec<AutomationRuleDto>,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct TestRuleRequest {
    pub ticket_id: Uuid,
}

#[derive(Debug, Clone, Object)]
pub struct CheckedConditionDto {
    /// `all` or `any`.
    pub group: String,
    pub field: String,
    pub operator: String,
    pub value: Value,
    /// Whether it holds for the ticket now.
    pub held: bool,
}

#[derive(Debug, Clone, Object)]
pub struct RuleTestDto {
    pub rule_id: Uuid,
    pub ticket_id: Uuid,
    pub conditions: Vec<CheckedConditionDto>,
    /// Whether the rule would act on the ticket now (an event rule: were one of its events to
    /// happen without a comment or a change).
    pub would_act: bool,
    /// What it would do, in order; empty when it would not act. Nothing was done.
    pub actions: Vec<Value>,
    /// A time-based rule: when it would act if nothing happens to the ticket meanwhile (now, if
    /// it would act now); absent when it never would.
    #[oai(skip_serializing_if_is_none)]
    pub due_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<TestView> for RuleTestDto {
    fn from(test: TestView) -> Self {
        Self {
            rule_id: test.rule_id,
            ticket_id: test.ticket_id,
            conditions: test
                .conditions
                .into_iter()
                .map(|c| CheckedConditionDto {
                    group: c.group.to_string(),
                    field: c.field,
                    operator: c.operator,
                    value: c.value,
                    held: c.held,
                })
                .collect(),
            would_act: test.would_act,
            actions: test.actions,
            due_at: test.due_at,
        }
    }
}

#[derive(ApiResponse)]
pub enum RuleCreated {
    #[oai(status = 201)]
    Created(
        Json<AutomationRuleDto>,
        #[oai(header = "Location")] String,
        #[oai(header = "ETag")] String,
    ),
}

#[derive(ApiResponse)]
pub enum RuleFound {
    /// The rule; the `ETag` is its version.
    #[oai(status = 200)]
    Ok(Json<AutomationRuleDto>, #[oai(header = "ETag")] String),
}

#[derive(ApiResponse)]
pub enum RuleDeleted {
    /// Removed; it acts no more.
    #[oai(status = 204)]
    NoContent,
}

#[derive(Default)]
pub struct AutomationsApi;

#[OpenApi(tag = "ApiTags::Automations")]
impl AutomationsApi {
    /// Add a rule (managers and admins).
    #[oai(
        path = "/api/automations",
        method = "post",
        operation_id = "create_automation"
    )]
    async fn create(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        body: JsonBody<AutomationRuleRequest>,
    ) -> Result<RuleCreated, ApiError> {
        let rule = automations::create(&app, &auth.0, &origin, &body.0.as_json()).await?;
        let location = format!("/api/automations/{}", rule.id);
        let tag = etag(rule.version);
        Ok(RuleCreated::Created(Json(rule.into()), location, tag))
    }

    /// Every rule, in the order they run (managers and admins).
    #[oai(
        path = "/api/automations",
        method = "get",
        operation_id = "list_automations"
    )]
    async fn list(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
    ) -> Result<Json<AutomationRulesDto>, ApiError> {
        let rules = automations::list(&app, &auth.0).await?;
        Ok(Json(AutomationRulesDto {
            items: rules.into_iter().map(Into::into).collect(),
        }))
    }

    /// One rule.
    #[oai(
        path = "/api/automations/:id",
        method = "get",
        operation_id = "get_automation"
    )]
    async fn get(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        id: Path<Uuid>,
    ) -> Result<RuleFound, ApiError> {
        let rule = automations::get(&app, &auth.0, id.0).await?;
        let tag = etag(rule.version);
        Ok(RuleFound::Ok(Json(rule.into()), tag))
    }

    /// Replace a rule (the whole of it); a new version.
    #[oai(
        path = "/api/automations/:id",
        method = "put",
        operation_id = "update_automation"
    )]
    async fn update(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
        /// The version you read (`ETag`); a changed rule answers 412.
        #[oai(name = "If-Match")]
        expected: Header<Option<String>>,
        body: JsonBody<AutomationRuleRequest>,
    ) -> Result<RuleFound, ApiError> {
        let expected = if_match(expected.0.as_deref())?;
        let rule =
            automations::update(&app, &auth.0, &origin, id.0, expected, &body.0.as_json()).await?;
        let tag = etag(rule.version);
        Ok(RuleFound::Ok(Json(rule.into()), tag))
    }

    /// Remove a rule.
    #[oai(
        path = "/api/automations/:id",
        method = "delete",
        operation_id = "delete_automation"
    )]
    async fn delete(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
    ) -> Result<RuleDeleted, ApiError> {
        automations::delete(&app, &auth.0, &origin, id.0).await?;
        Ok(RuleDeleted::NoContent)
    }

    /// What the rule would decide about a ticket now: each condition true or false, and the
    /// actions it would take. Nothing is written.
    #[oai(
        path = "/api/automations/:id/test",
        method = "post",
        operation_id = "test_automation"
    )]
    async fn test(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        id: Path<Uuid>,
        body: JsonBody<TestRuleRequest>,
    ) -> Result<Json<RuleTestDto>, ApiError> {
        let test = automations::test(&app, &auth.0, id.0, body.0.ticket_id).await?;
        Ok(Json(test.into()))
    }
}
