//! `/health`, `/ready` and `/metrics`.

use docket_projections::ProjectorStatus;
use poem::web::Data;
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::app::{SharedApp, health};
use crate::http::ApiTags;
use crate::http::problem::ApiError;

#[derive(Debug, Clone, Object)]
pub struct Health {
    /// Always `ok` while the process serves requests.
    pub status: String,
}

#[derive(Debug, Clone, Object)]
pub struct ProjectorReport {
    pub name: String,
    /// Events of its aggregate types in the log beyond its checkpoint.
    pub lag: i64,
    pub events_applied: i64,
    /// The global position of the event it is stopped at, if it failed.
    pub failed_position: Option<i64>,
    pub failure: Option<String>,
}

impl From<ProjectorStatus> for ProjectorReport {
    fn from(status: ProjectorStatus) -> Self {
        Self {
            name: status.projector,
            lag: status.lag,
            events_applied: status.events_applied,
            failed_position: status.failed_position,
            failure: status.failure,
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: String,
    /// `ok` or `unreachable`.
    pub database: String,
    pub projectors: Vec<ProjectorReport>,
}

#[derive(ApiResponse)]
pub enum ReadinessResponse {
    /// Database reachable and projections current.
    #[oai(status = 200)]
    Ready(Json<Readiness>),
    /// The database is unreachable, or a projector is failed or far behind.
    #[oai(status = 503)]
    NotReady(Json<Readiness>),
}

#[derive(Default)]
pub struct SystemApi;

#[OpenApi(tag = "ApiTags::System")]
impl SystemApi {
    /// Liveness: the process is up.
    #[oai(path = "/health", method = "get", operation_id = "health")]
    async fn health(&self) -> Json<Health> {
        Json(Health {
            status: "ok".to_string(),
        })
    }

    /// Readiness: the database answers and every projector is running and close behind the log.
    #[oai(path = "/ready", method = "get", operation_id = "ready")]
    async fn ready(&self, app: Data<&SharedApp>) -> ReadinessResponse {
        match health::projectors(&app).await {
            Ok(statuses) => {
                let healthy = health::healthy(&statuses);
                let readiness = Readiness {
                    status: if healthy { "ready" } else { "not_ready" }.to_string(),
                    database: "ok".to_string(),
                    projectors: statuses.into_iter().map(Into::into).collect(),
                };
                if healthy {
                    ReadinessResponse::Ready(Json(readiness))
                } else {
                    ReadinessResponse::NotReady(Json(readiness))
                }
            }
            Err(error) => {
                tracing::warn!(%error, "readiness check failed");
                ReadinessResponse::NotReady(Json(Readiness {
                    status: "not_ready".to_string(),
                    database: "unreachable".to_string(),
                    projectors: vec![],
                }))
            }
        }
    }

    /// Prometheus metrics (OpenMetrics text).
    #[oai(path = "/metrics", method = "get", operation_id = "metrics")]
    async fn metrics(&self, app: Data<&SharedApp>) -> Result<PlainText<String>, ApiError> {
        Ok(PlainText(health::metrics(&app).await?))
    }
}
