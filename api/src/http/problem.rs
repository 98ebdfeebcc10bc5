//! Every error the API can answer, mapped to HTTP once (DESIGN.md decision 8): the
//! application's errors ([`AppError`]) and the transport's own (a body that is not JSON, a method
//! the route lacks, an idempotency key reused).
//!
//! Errors are `application/problem+json` (RFC 9457) with a stable `type` URI per kind, a
//! `title`, the `status`, a `detail`, the offending `field` where there is one, and the
//! request's correlation id. Internal errors are opaque: the cause is logged, never sent.

use poem::http::{HeaderValue, StatusCode, header};
use poem::{IntoResponse, Response};
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchemaRef, Registry};
use poem_openapi::types::{ToJSON, Type};
use poem_openapi::{ApiResponse, Object};

use crate::app::AppError;
use crate::app::error::ConflictKind;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// Base of the `type` URIs; the catalogue is in docs/api.md.
const PROBLEM_BASE: &str = "https://docket.dev/problems/";

/// An RFC 9457 problem document.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct Problem {
    /// Stable URI naming the kind of problem; clients branch on this.
    #[oai(rename = "type")]
    pub problem_type: String,
    /// Short, human-readable summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time.
    #[oai(skip_serializing_if_is_none)]
    pub detail: Option<String>,
    /// The request field (JSON path, query or path parameter) at fault.
    #[oai(skip_serializing_if_is_none)]
    pub field: Option<String>,
    /// The aggregate's current version, when a precondition on it failed.
    #[oai(skip_serializing_if_is_none)]
    pub current_version: Option<i64>,
    /// The correlation id of the request (also in the `X-Request-Id` header).
    #[oai(skip_serializing_if_is_none)]
    pub request_id: Option<String>,
}

tokio::task_local! {
    /// The correlation id of the request being served, for problem documents.
    pub static REQUEST_ID: String;
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{detail}")]
    MalformedBody { detail: String },
    #[error("{field}: {reason}")]
    Validation { field: String, reason: String },
    #[error("{field}: {detail}")]
    InvalidParameter { field: String, detail: String },
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    CredentialExpired(String),
    #[error("{0}")]
    AddressRefused(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{detail}")]
    Conflict {
        kind: &'static str,
        title: &'static str,
        detail: String,
    },
    #[error("the resource kept changing under concurrent writes; retry the request")]
    ConcurrentModification,
    #[error("If-Match does not match the current version {current_version}")]
    PreconditionFailed { current_version: i64 },
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("this method is not allowed on this resource")]
    MethodNotAllowed,
    #[error("this Idempotency-Key was already used for a different request")]
    IdempotencyKeyReused,
    #[error("a request with this Idempotency-Key is still being processed")]
    IdempotencyKeyInProgress,
    #[error("the read model has not caught up with the requested version yet; retry shortly")]
    ProjectionBehind,
    #[error("the service is temporarily unavailable; retry shortly")]
    Unavailable,
    #[error("too many {scope}; retry after the time in Retry-After")]
    TooManyRequests { scope: &'static str },
    #[error("internal error")]
    Internal,
}

struct Kind {
    status: StatusCode,
    slug: &'static str,
    title: &'static str,
}

impl ApiError {
    /// Logs the cause (with the request's span) and returns an opaque 500.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        ApiError::Internal
    }

    pub fn validation(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ApiError::Validation {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::NotFound(format!("no such {what}"))
    }

    /// Database errors, classified as the application classifies them.
    pub fn database(error: sqlx::Error) -> Self {
        AppError::database(error).into()
    }

    fn kind(&self) -> Kind {
        let (status, slug, title) = match self {
            ApiError::MalformedBody { .. } => (
                StatusCode::BAD_REQUEST,
                "malformed-request",
                "The request body is not valid JSON",
            ),
            ApiError::Validation { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation-failed",
                "A field of the request is invalid",
            ),
            ApiError::InvalidParameter { .. } => (
                StatusCode::BAD_REQUEST,
                "invalid-parameter",
                "A parameter of the request is invalid",
            ),
            ApiError::Unauthenticated(_) => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authentication is required",
            ),
            ApiError::Forbidden(_) => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "Your role does not allow this",
            ),
            ApiError::CredentialExpired(_) => (
                StatusCode::UNAUTHORIZED,
                "api-key-expired",
                "The API key has expired",
            ),
            ApiError::AddressRefused(_) => (
                StatusCode::FORBIDDEN,
                "api-key-address-refused",
                "The API key may not be used from this address",
            ),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            ApiError::Conflict { kind, title, .. } => (StatusCode::CONFLICT, *kind, *title),
            ApiError::ConcurrentModification => (
                StatusCode::CONFLICT,
                "concurrent-modification",
                "Too many concurrent changes",
            ),
            ApiError::PreconditionFailed { .. } => (
                StatusCode::PRECONDITION_FAILED,
                "version-mismatch",
                "The resource has changed since you read it",
            ),
            ApiError::PayloadTooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "The request body is too large",
            ),
            ApiError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Send application/json",
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            ApiError::IdempotencyKeyReused => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency-Key reused for a different request",
            ),
            ApiError::IdempotencyKeyInProgress => (
                StatusCode::CONFLICT,
                "idempotency-key-in-progress",
                "The first request with this Idempotency-Key has not finished",
            ),
            ApiError::ProjectionBehind => (
                StatusCode::SERVICE_UNAVAILABLE,
                "projection-behind",
                "The read model is behind the requested version",
            ),
            ApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service temporarily unavailable",
            ),
            ApiError::TooManyRequests { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
            ),
            ApiError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal server error",
            ),
        };
        Kind {
            status,
            slug,
            title,
        }
    }

    pub fn status(&self) -> StatusCode {
        self.kind().status
    }

    pub fn problem(&self) -> Problem {
        let kind = self.kind();
        let field = match self {
            ApiError::Validation { field, .. } | ApiError::InvalidParameter { field, .. } => {
                Some(field.clone())
            }
            _ => None,
        };
        let detail = match self {
            ApiError::Validation { reason, .. } => Some(reason.clone()),
            ApiError::InvalidParameter { detail, .. } => Some(detail.clone()),
            other => Some(other.to_string()),
        };
        Problem {
            problem_type: format!("{PROBLEM_BASE}{}", kind.slug),
            title: kind.title.to_string(),
            status: kind.status.as_u16(),
            detail,
            field,
            current_version: match self {
                ApiError::PreconditionFailed { current_version } => Some(*current_version),
                _ => None,
            },
            request_id: REQUEST_ID.try_with(|id| id.clone()).ok(),
        }
    }
}

/// The problem type and title of each kind of conflict.
fn conflict_type(kind: ConflictKind) -> (&'static str, &'static str) {
    match kind {
        ConflictKind::TicketExists => ("ticket-exists", "The ticket already exists"),
        ConflictKind::InvalidTransition => (
            "invalid-transition",
            "The ticket cannot move to that status",
        ),
        ConflictKind::TicketClosed => ("ticket-closed", "The ticket is closed"),
        ConflictKind::TicketFinished => ("ticket-finished", "The ticket is resolved or closed"),
        ConflictKind::AlreadyAssigned => (
            "already-assigned",
            "The ticket is already assigned to that person",
        ),
        ConflictKind::NotAssigned => ("not-assigned", "Nobody holds the ticket"),
        ConflictKind::NotRoutable => ("not-routable", "The ticket cannot be routed now"),
        ConflictKind::UserExists => ("user-exists", "The user already exists"),
        ConflictKind::OwnAccount => (
            "own-account",
            "Administrators cannot do this to their own account",
        ),
        ConflictKind::AlreadyInState => {
            ("already-in-state", "The account is already in that state")
        }
        ConflictKind::EmailTaken => ("email-taken", "An account with this e-mail already exists"),
        ConflictKind::AlreadyExists => ("already-exists", "It already exists"),
        ConflictKind::SavedSearchExists => {
            ("saved-search-exists", "The saved search already exists")
        }
        ConflictKind::WorkforceConflict => ("workforce-conflict", "That cannot be done now"),
        ConflictKind::ShiftRunning => ("shift-running", "A shift is already running"),
        ConflictKind::AlreadyClaimed => ("already-claimed", "The ticket is not in the queue"),
        ConflictKind::AtCapacity => ("at-capacity", "The agent is at capacity"),
        ConflictKind::AlreadyRevoked => ("already-revoked", "The API key is already revoked"),
    }
}

/// The one mapping from what the application says to what HTTP says.
impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Invalid { field, reason } => ApiError::Validation { field, reason },
            AppError::InvalidParameter { name, reason } => ApiError::InvalidParameter {
                field: name,
                detail: reason,
            },
            AppError::Unauthenticated(detail) => ApiError::Unauthenticated(detail),
            AppError::NotPermitted(detail) => ApiError::Forbidden(detail),
            AppError::CredentialExpired(detail) => ApiError::CredentialExpired(detail),
            AppError::AddressRefused(detail) => ApiError::AddressRefused(detail),
            AppError::NotFound(what) => ApiError::not_found(what),
            AppError::Conflict { kind, detail } => {
                let (kind, title) = conflict_type(kind);
                ApiError::Conflict {
                    kind,
                    title,
                    detail,
                }
            }
            AppError::VersionMismatch { current } => ApiError::PreconditionFailed {
                current_version: current,
            },
            AppError::Contention => ApiError::ConcurrentModification,
            AppError::ProjectionBehind => ApiError::ProjectionBehind,
            AppError::Unavailable => ApiError::Unavailable,
            AppError::Internal => ApiError::Internal,
        }
    }
}

/// Renders a problem document with the right status and content type.
pub fn problem_response(problem: &Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = problem.to_json().map(|v| v.to_string()).unwrap_or_default();
    let mut response = Response::builder()
        .status(status)
        .content_type(PROBLEM_CONTENT_TYPE)
        .body(body);
    match status {
        StatusCode::UNAUTHORIZED => {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        _ => {}
    }
    response
}

impl poem::error::ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        ApiError::status(self)
    }

    fn as_response(&self) -> Response {
        problem_response(&self.problem())
    }
}

/// The statuses any operation may answer with, for the OpenAPI document.
const DOCUMENTED: &[(u16, &str)] = &[
    (400, "Malformed JSON or an invalid parameter"),
    (
        401,
        "Missing, invalid or expired token, or a deactivated account",
    ),
    (403, "The caller's role does not allow this"),
    (404, "No such resource (or not visible to the caller)"),
    (409, "The request conflicts with the resource's state"),
    (412, "If-Match does not match the current version"),
    (413, "The request body is too large"),
    (415, "The request body is not JSON"),
    (422, "A field is invalid"),
    (429, "Too many requests"),
    (500, "Internal error (details are logged, not returned)"),
    (
        503,
        "Temporarily unavailable (database outage or read model behind)",
    ),
];

impl ApiResponse for ApiError {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: DOCUMENTED
                .iter()
                .map(|(status, description)| MetaResponse {
                    description,
                    status: Some(*status),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: PROBLEM_CONTENT_TYPE,
                        schema: Problem::schema_ref(),
                    }],
                    headers: vec![],
                })
                .collect(),
        }
    }

    fn register(registry: &mut Registry) {
        Problem::register(registry);
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        problem_response(&self.problem())
    }
}

/// Turns any error that reached the edge (ours, poem's or poem-openapi's) into a problem.
pub fn render(error: poem::Error) -> Response {
    use poem_openapi::error::{
        AuthorizationError, ContentTypeError, ParseParamError, ParsePathError,
        ParseRequestPayloadError,
    };
    if let Some(api) = error.downcast_ref::<ApiError>() {
        return problem_response(&api.problem());
    }
    let api = if let Some(e) = error.downcast_ref::<ParseParamError>() {
        ApiError::InvalidParameter {
            field: e.name.to_string(),
            detail: parameter_reason(e.name, &e.reason),
        }
    } else if let Some(e) = error.downcast_ref::<ParsePathError>() {
        ApiError::InvalidParameter {
            field: "path".to_string(),
            detail: e.to_string(),
        }
    } else if let Some(e) = error.downcast_ref::<ParseRequestPayloadError>() {
        ApiError::MalformedBody {
            detail: e.reason.clone(),
        }
    } else if let Some(e) = error.downcast_ref::<ContentTypeError>() {
        ApiError::UnsupportedMediaType(e.to_string())
    } else if error.is::<AuthorizationError>() {
        ApiError::Unauthenticated("a bearer token is required".to_string())
    } else {
        match error.status() {
            StatusCode::NOT_FOUND => ApiError::NotFound("no such resource".to_string()),
            StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge { limit: 0 },
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(error.to_string()),
            StatusCode::UNAUTHORIZED => ApiError::Unauthenticated(error.to_string()),
            status if status.is_client_error() => ApiError::MalformedBody {
                detail: error.to_string(),
            },
            _ => ApiError::internal(&error),
        }
    };
    problem_response(&api.problem())
}

/// What poem-openapi says of a parameter it refused (`verification failed. maximum(100,
/// exclusive: false)`, `failed to parse "string_date-time": …`), said as the user would:
/// `page_size must be at most 100`.
fn parameter_reason(name: &str, reason: &str) -> String {
    let number = |text: &str| {
        let inner = text.split(['(', ',', ')']).nth(1).unwrap_or("").trim();
        inner.strip_suffix(".0").unwrap_or(inner).to_string()
    };
    let exclusive = reason.contains("exclusive: true");
    if let Some(rule) = reason.strip_prefix("verification failed. ") {
        return match rule {
            r if r.starts_with("maximum(") && exclusive => {
                format!("{name} must be less than {}", number(r))
            }
            r if r.starts_with("maximum(") => format!("{name} must be at most {}", number(r)),
            r if r.starts_with("minimum(") && exclusive => {
                format!("{name} must be more than {}", number(r))
            }
            r if r.starts_with("minimum(") => format!("{name} must be at least {}", number(r)),
            r if r.starts_with("maxLength(") => {
                format!("{name} must be at most {} characters", number(r))
            }
            r if r.starts_with("minLength(") => {
                format!("{name} must be at least {} characters", number(r))
            }
            r if r.starts_with("pattern(") => format!("{name} is not in the expected form"),
            _ => format!("{name} is not acceptable"),
        };
    }
    let kind = reason
        .strip_prefix("failed to parse \"")
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("");
    match kind {
        "string_date-time" => {
            format!("{name} must be an RFC 3339 date-time such as 2026-12-01T00:00:00Z")
        }
        "string_date" => format!("{name} must be a date such as 2026-12-01"),
        "string_uuid" => format!("{name} must be a UUID"),
        "boolean" => format!("{name} must be true or false"),
        k if k.starts_with("integer") => format!("{name} must be a whole number"),
        k if k.starts_with("number") => format!("{name} must be a number"),
        _ if reason.contains("required") => format!("{name} is required"),
        _ => format!("{name}: {reason}"),
    }
}

/// Payload type for documenting `application/problem+json` bodies.
pub struct ProblemJson(pub Problem);

impl poem_openapi::payload::Payload for ProblemJson {
    const CONTENT_TYPE: &'static str = PROBLEM_CONTENT_TYPE;

    fn schema_ref() -> MetaSchemaRef {
        Problem::schema_ref()
    }

    fn register(registry: &mut Registry) {
        Problem::register(registry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_parameters_are_explained_in_the_users_words() {
        let cases = [
            (
                "page_size",
                "verification failed. maximum(100, exclusive: false)",
                "page_size must be at most 100",
            ),
            (
                "page",
                "verification failed. minimum(1, exclusive: false)",
                "page must be at least 1",
            ),
            (
                "q",
                "verification failed. maxLength(500)",
                "q must be at most 500 characters",
            ),
            (
                "created_from",
                "failed to parse \"string_date-time\": input contains invalid characters",
                "created_from must be an RFC 3339 date-time such as 2026-12-01T00:00:00Z",
            ),
            (
                "page",
                "failed to parse \"integer_int64\": invalid digit found in string",
                "page must be a whole number",
            ),
            (
                "team_id",
                "failed to parse \"string_uuid\": invalid character",
                "team_id must be a UUID",
            ),
            (
                "sla_breached",
                "failed to parse \"boolean\": provided string was not `true` or `false`",
                "sla_breached must be true or false",
            ),
        ];
        for (name, reason, said) in cases {
            assert_eq!(parameter_reason(name, reason), said, "{reason}");
        }
    }

    #[test]
    fn each_error_kind_has_its_own_status_and_type() {
        let cases = [
            (
                ApiError::validation("subject", "too long"),
                422,
                "validation-failed",
            ),
            (ApiError::not_found("ticket"), 404, "not-found"),
            (
                ApiError::PreconditionFailed { current_version: 3 },
                412,
                "version-mismatch",
            ),
            (
                ApiError::ConcurrentModification,
                409,
                "concurrent-modification",
            ),
            (ApiError::Unavailable, 503, "unavailable"),
            (
                AppError::conflict(ConflictKind::ShiftRunning, "shift 1 is running").into(),
                409,
                "shift-running",
            ),
            (AppError::NotPermitted("no".into()).into(), 403, "forbidden"),
        ];
        for (error, status, slug) in cases {
            let problem = error.problem();
            assert_eq!(problem.status, status);
            assert_eq!(problem.problem_type, format!("{PROBLEM_BASE}{slug}"));
        }
    }

    #[test]
    fn a_validation_problem_names_the_field() {
        let problem = ApiError::validation("tags[2]", "must not be empty").problem();
        assert_eq!(problem.field.as_deref(), Some("tags[2]"));
        assert_eq!(problem.detail.as_deref(), Some("must not be empty"));
    }

    #[test]
    fn an_internal_error_says_nothing_of_its_cause() {
        let problem = ApiError::internal("password authentication failed for user x").problem();
        assert_eq!(problem.detail.as_deref(), Some("internal error"));
    }
}
