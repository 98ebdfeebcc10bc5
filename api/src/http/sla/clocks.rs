//! `/api/sla/check`, `/api/sla/violations`, `/api/sla/metrics`: what the clocks say.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use docket_domain::sla::ClockState;
use docket_domain::values::TicketNumber;
use docket_projections::sla::ComplianceGroup;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};
use uuid::Uuid;

use crate::app::{SharedApp, sla};
use crate::http::ApiTags;
use crate::http::principal::SignedIn;
use crate::http::problem::ApiError;
use crate::http::wire::Timestamp;
use crate::http::wire::{ClockStateDto, PriorityDto, SlaMetricDto};

#[derive(Debug, Clone, Object)]
pub struct PolicyRef {
    /// The nil id for the built-in default policy.
    pub id: Uuid,
    pub name: String,
    pub version: i64,
}

#[derive(Debug, Clone, Object)]
pub struct ClockDto {
    pub metric: SlaMetricDto,
    pub cycle: i64,
    pub target_seconds: i64,
    pub started_at: Timestamp,
    /// While the clock runs: when the target is reached.
    pub due_at: Option<Timestamp>,
    pub elapsed_business_seconds: i64,
    /// Business seconds left; negative once breached.
    pub remaining_seconds: i64,
    pub state: ClockStateDto,
}

#[derive(Debug, Clone, Object)]
pub struct SlaCheck {
    pub ticket_id: Uuid,
    pub checked_at: Timestamp,
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
    pub metric: SlaMetricDto,
    pub due_at: Option<Timestamp>,
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
    pub from: Timestamp,
    pub to: Timestamp,
    pub group_by: String,
    pub groups: Vec<ComplianceGroupDto>,
}

impl From<sla::SlaCheck> for SlaCheck {
    fn from(check: sla::SlaCheck) -> Self {
        SlaCheck {
            ticket_id: check.ticket_id,
            checked_at: check.checked_at.into(),
            policy: check.policy.map(|p| PolicyRef {
                id: p.policy_id,
                name: p.name,
                version: i64::from(p.version),
            }),
            metrics: check
                .clocks
                .into_iter()
                .map(|v| ClockDto {
                    metric: v.metric.into(),
                    cycle: i64::from(v.cycle),
                    target_seconds: i64::try_from(v.target_seconds).unwrap_or(i64::MAX),
                    started_at: v.started_at.into(),
                    due_at: v.due_at.map(Timestamp),
                    elapsed_business_seconds: v.elapsed_business_seconds,
                    remaining_seconds: v.remaining_seconds,
                    state: v.state.into(),
                })
                .collect(),
        }
    }
}

impl From<sla::Violation> for ViolationDto {
    fn from(v: sla::Violation) -> Self {
        ViolationDto {
            ticket_id: v.ticket_id,
            number: TicketNumber(v.number).to_string(),
            subject: v.subject,
            priority: v.priority.into(),
            metric: v.metric.into(),
            due_at: v.due_at.map(Timestamp),
            remaining_seconds: v.remaining_seconds,
        }
    }
}

#[derive(Default)]
pub struct ClocksApi;

#[OpenApi(tag = "ApiTags::Sla")]
impl ClocksApi {
    /// The SLA clocks of one ticket, computed now from its log (staff).
    #[oai(
        path = "/api/sla/check/:ticket_id",
        method = "get",
        operation_id = "check_sla"
    )]
    async fn check(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        ticket_id: Path<Uuid>,
    ) -> Result<Json<SlaCheck>, ApiError> {
        Ok(Json(sla::check(&app, &auth.0, ticket_id.0).await?.into()))
    }

    /// Clocks at risk and breached, most urgent first (staff).
    #[oai(
        path = "/api/sla/violations",
        method = "get",
        operation_id = "sla_violations"
    )]
    async fn violations(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
    ) -> Result<Json<Violations>, ApiError> {
        let (breached, at_risk): (Vec<_>, Vec<_>) = sla::violations(&app, &auth.0)
            .await?
            .into_iter()
            .partition(|v| v.state == ClockState::Breached);
        Ok(Json(Violations {
            at_risk: at_risk.into_iter().map(ViolationDto::from).collect(),
            breached: breached.into_iter().map(ViolationDto::from).collect(),
        }))
    }

    /// Compliance per metric for clocks that finished in `[from, to)`, grouped (staff).
    #[oai(
        path = "/api/sla/metrics",
        method = "get",
        operation_id = "sla_metrics"
    )]
    async fn metrics(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        /// Default: 30 days before `to`.
        from: Query<Option<DateTime<Utc>>>,
        /// Default: now.
        to: Query<Option<DateTime<Utc>>>,
        /// Default `priority`.
        group_by: Query<Option<GroupBy>>,
    ) -> Result<Json<SlaMetricsReport>, ApiError> {
        let to = to.0.unwrap_or_else(|| app.time.now());
        let from = from.0.unwrap_or(to - Duration::days(30));
        let (group, name) = match group_by.0.unwrap_or(GroupBy::Priority) {
            GroupBy::Priority => (ComplianceGroup::Priority, "priority"),
            GroupBy::Category => (ComplianceGroup::Category, "category"),
            GroupBy::Assignee => (ComplianceGroup::Assignee, "assignee"),
            GroupBy::Team => (ComplianceGroup::Team, "team"),
        };
        if from >= to {
            return Err(ApiError::InvalidParameter {
                field: "from".into(),
                detail: "must be before `to`".into(),
            });
        }
        let rows = sla::compliance(&app, &auth.0, group, from, to).await?;
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
            from: from.into(),
            to: to.into(),
            group_by: name.to_string(),
            groups: groups
                .into_iter()
                .map(|(key, metrics)| ComplianceGroupDto { key, metrics })
                .collect(),
        }))
    }
}
