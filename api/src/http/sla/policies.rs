//! `/api/sla/policies`: which targets apply to which tickets.

use docket_domain::sla::MetricTargets;
use docket_domain::sla::config::SlaPolicy;
use docket_domain::sla::document::{
    ConditionsDocument, PolicyDocument, TargetsByPriorityDocument, TargetsDocument,
};
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ConfigSaved, Deleted, Made};
use crate::app::sla::config::{self, PolicySpec, Saved};
use crate::app::{Origin, SharedApp};
use crate::http::json::JsonBody;
use crate::http::paging::{Page, Paging};
use crate::http::principal::{SignedIn, consistency_token};
use crate::http::problem::ApiError;
use crate::http::wire::{PriorityDto, StatusDto};
use crate::http::wire::{default_page, default_page_size};
use crate::http::{ApiTags, if_match, invalid};

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

/// Targets for each priority the policy covers (its `conditions.priorities`, or all four); a
/// priority it does not cover may be left out (no ticket of it is ever under the policy), and
/// reads back with the built-in default's targets.
#[derive(Debug, Clone, Copy, Object, Deserialize, Serialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct PriorityTargetsRequest {
    pub critical: Option<MetricTargetsDto>,
    pub high: Option<MetricTargetsDto>,
    pub medium: Option<MetricTargetsDto>,
    pub low: Option<MetricTargetsDto>,
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
    pub targets: PriorityTargetsRequest,
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

impl From<MetricTargetsDto> for TargetsDocument {
    fn from(t: MetricTargetsDto) -> Self {
        Self {
            first_response: t.first_response,
            next_response: t.next_response,
            resolution: t.resolution,
            escalation: t.escalation,
        }
    }
}

impl From<MetricTargets> for MetricTargetsDto {
    fn from(t: MetricTargets) -> Self {
        Self {
            first_response: t.first_response,
            next_response: Some(t.next_response),
            resolution: t.resolution,
            escalation: t.escalation,
        }
    }
}

impl PolicyRequest {
    /// What was asked, in the domain's words (which fill in the defaults).
    fn spec(self) -> Result<PolicySpec, ApiError> {
        let conditions = self.conditions.unwrap_or_default();
        let document = PolicyDocument {
            name: self.name,
            conditions: Some(ConditionsDocument {
                priorities: conditions
                    .priorities
                    .map(|list| list.into_iter().map(Into::into).collect()),
                categories: conditions.categories,
                tags: conditions.tags,
                customer_ids: conditions.customer_ids,
            }),
            calendar_id: self.calendar_id,
            pause_statuses: self
                .pause_statuses
                .map(|list| list.into_iter().map(Into::into).collect()),
            at_risk_percent: self.at_risk_percent,
            targets: TargetsByPriorityDocument {
                critical: self.targets.critical.map(Into::into),
                high: self.targets.high.map(Into::into),
                medium: self.targets.medium.map(Into::into),
                low: self.targets.low.map(Into::into),
            },
        };
        Ok(PolicySpec {
            definition: document.definition().map_err(invalid)?,
            position: self.position,
        })
    }
}

impl From<Saved<PolicySpec>> for PolicyDto {
    fn from(saved: Saved<PolicySpec>) -> Self {
        let PolicySpec {
            definition,
            position,
        } = saved.definition;
        let c = definition.conditions;
        PolicyDto {
            id: saved.id,
            version: i64::from(saved.version),
            name: definition.name,
            position,
            conditions: PolicyConditionsDto {
                priorities: Some(c.priorities.into_iter().map(Into::into).collect()),
                categories: Some(c.categories),
                tags: Some(c.tags),
                customer_ids: Some(c.customers.into_iter().map(|u| u.0).collect()),
            },
            calendar_id: definition.calendar_id,
            pause_statuses: definition
                .pause_statuses
                .into_iter()
                .map(Into::into)
                .collect(),
            at_risk_percent: definition.at_risk_percent,
            targets: PriorityTargetsDto {
                critical: definition.targets.critical.into(),
                high: definition.targets.high.into(),
                medium: definition.targets.medium.into(),
                low: definition.targets.low.into(),
            },
        }
    }
}

#[derive(Default)]
pub struct PoliciesApi;

#[OpenApi(tag = "ApiTags::Sla")]
impl PoliciesApi {
    /// SLA policies in the order they are tried (staff).
    #[oai(
        path = "/api/sla/policies",
        method = "get",
        operation_id = "list_sla_policies"
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
    ) -> Result<Json<Page<PolicyDto>>, ApiError> {
        let policies = config::list::<SlaPolicy>(&app, &auth.0).await?;
        Ok(Json(Page::of(policies, Paging::new(page.0, page_size.0))))
    }

    /// Create a policy (managers, admins). It applies to new tickets at once and to open ones
    /// within moments.
    #[oai(
        path = "/api/sla/policies",
        method = "post",
        operation_id = "create_sla_policy"
    )]
    async fn create(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        body: JsonBody<PolicyRequest>,
    ) -> Result<ConfigSaved<PolicyDto>, ApiError> {
        let written = config::create::<SlaPolicy>(&app, &auth.0, &origin, body.0.spec()?).await?;
        Ok(ConfigSaved::of(Made::Under("/api/sla/policies"), written))
    }

    /// One policy, current version (staff).
    #[oai(
        path = "/api/sla/policies/:id",
        method = "get",
        operation_id = "get_sla_policy"
    )]
    async fn get(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        id: Path<Uuid>,
    ) -> Result<ConfigSaved<PolicyDto>, ApiError> {
        let written = config::get::<SlaPolicy>(&app, &auth.0, id.0).await?;
        Ok(ConfigSaved::of(Made::Changed, written))
    }

    /// Replace a policy: a new version, applied from this moment (managers, admins).
    #[oai(
        path = "/api/sla/policies/:id",
        method = "put",
        operation_id = "update_sla_policy"
    )]
    async fn update(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
        #[oai(name = "If-Match")] expected: Header<Option<String>>,
        body: JsonBody<PolicyRequest>,
    ) -> Result<ConfigSaved<PolicyDto>, ApiError> {
        let expected = if_match(expected.0.as_deref())?;
        let written =
            config::update::<SlaPolicy>(&app, &auth.0, &origin, id.0, expected, body.0.spec()?)
                .await?;
        Ok(ConfigSaved::of(Made::Changed, written))
    }

    /// Delete a policy; open tickets fall back to the next matching one (managers, admins).
    #[oai(
        path = "/api/sla/policies/:id",
        method = "delete",
        operation_id = "delete_sla_policy"
    )]
    async fn delete(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
    ) -> Result<Deleted, ApiError> {
        let position = config::delete::<SlaPolicy>(&app, &auth.0, &origin, id.0).await?;
        Ok(Deleted::NoContent(consistency_token(position)))
    }
}
