//! What can go wrong in an application service, said without HTTP: the transport maps each
//! variant to its status and problem type once (`http::problem`).
//!
//! Domain refusals become [`AppError`] here, in one place per aggregate error; infrastructure
//! failures are classified by [`AppError::database`], with the cause logged and never shown.

use docket_domain::ValidationError;
use docket_domain::access::NotPermitted;
use docket_domain::alert::AlertError;
use docket_domain::api_key::ApiKeyError;
use docket_domain::automation::AutomationError;
use docket_domain::mail::EmailTemplateError;
use docket_domain::saved_search::SavedSearchError;
use docket_domain::sla::config::ConfigError;
use docket_domain::ticket::TicketError;
use docket_domain::user::UserError;
use docket_domain::webhook::WebhookError;
use docket_domain::workforce::WorkforceError;

use crate::app::bus::CommandError;

/// The ways a request can conflict with the state of what it acts on; each has a problem type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictKind {
    TicketExists,
    InvalidTransition,
    TicketClosed,
    TicketFinished,
    AlreadyAssigned,
    NotAssigned,
    NotRoutable,
    UserExists,
    OwnAccount,
    AlreadyInState,
    EmailTaken,
    AlreadyExists,
    SavedSearchExists,
    WorkforceConflict,
    ShiftRunning,
    AlreadyClaimed,
    AtCapacity,
    AlreadyRevoked,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AppError {
    /// A value the caller gave is not acceptable; `field` names it.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// A request parameter (query, path or header) is not acceptable; `name` names it.
    #[error("{name}: {reason}")]
    InvalidParameter { name: String, reason: String },
    /// Who the caller is could not be established, or is no longer valid.
    #[error("{0}")]
    Unauthenticated(String),
    /// The credential was valid once and has expired (an API key past its `expires_at`).
    #[error("{0}")]
    CredentialExpired(String),
    /// The credential may not be used from the caller's address (an API key's `allowed_ips`).
    #[error("{0}")]
    AddressRefused(String),
    /// The caller's role does not allow this.
    #[error("{0}")]
    NotPermitted(String),
    /// There is no such thing, or the caller may not know that there is.
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("{detail}")]
    Conflict { kind: ConflictKind, detail: String },
    /// The caller's precondition (`If-Match`) names another version.
    #[error("the resource is at version {current}, not the one expected")]
    VersionMismatch { current: i64 },
    /// Concurrent writers kept winning; retrying did not help.
    #[error("the resource kept changing under concurrent writes; retry the request")]
    Contention,
    /// A read could not wait long enough for the read models to include what it must.
    #[error("the read model has not caught up with the requested version yet; retry shortly")]
    ProjectionBehind,
    /// The database is not there right now.
    #[error("the service is temporarily unavailable; retry shortly")]
    Unavailable,
    /// A fault of ours; the cause was logged.
    #[error("internal error")]
    Internal,
}

impl AppError {
    /// Logs the cause (with the current span) and returns an opaque internal error.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        AppError::Internal
    }

    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        AppError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn conflict(kind: ConflictKind, detail: impl Into<String>) -> Self {
        AppError::Conflict {
            kind,
            detail: detail.into(),
        }
    }

    /// A database failure: an outage or an exhausted pool is [`AppError::Unavailable`]; text
    /// PostgreSQL cannot store is the caller's; anything else is logged and internal.
    pub fn database(error: sqlx::Error) -> Self {
        Self::from_database(&error)
    }

    /// [`database`](Self::database) for an error only borrowed.
    pub fn from_database(error: &sqlx::Error) -> Self {
        if is_unavailable(error) {
            tracing::warn!(%error, "database unavailable");
            AppError::Unavailable
        } else if is_unstorable_text(error) {
            AppError::invalid(
                "text",
                "contains the NUL character (U+0000), which cannot be stored or searched",
            )
        } else {
            AppError::internal(error)
        }
    }
}

impl From<ValidationError> for AppError {
    fn from(error: ValidationError) -> Self {
        AppError::Invalid {
            field: error.field,
            reason: error.reason,
        }
    }
}

impl From<NotPermitted> for AppError {
    fn from(refusal: NotPermitted) -> Self {
        AppError::NotPermitted(refusal.to_string())
    }
}

impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        AppError::database(error)
    }
}

/// PostgreSQL refused a character of some text: U+0000, which neither `text` nor `jsonb` can
/// hold (22021 character_not_in_repertoire, 22P05 untranslatable_character). Text comes from
/// the request, so this is the client's error, whichever field carried it.
fn is_unstorable_text(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db)
        if db.code().is_some_and(|code| code == "22021" || code == "22P05"))
}

/// True for errors that mean "the database is not there right now".
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Tls(_) | sqlx::Error::WorkerCrashed => true,
        // The connection broke mid-protocol: a proxy or balancer in front of a database that is
        // gone accepts the connection and closes it.
        sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            // 57P01..57P03: admin shutdown, crash shutdown, cannot connect now; 08*: connection.
            db.code()
                .is_some_and(|code| code.starts_with("57P") || code.starts_with("08"))
        }
        _ => false,
    }
}

/// A domain refusal as an application error. `field` names the request field that named the
/// person or thing whose standing the domain judged, where the refusal is about one.
pub trait Refusal: std::fmt::Debug {
    fn into_app_error(self, field: &str) -> AppError;
}

impl Refusal for TicketError {
    fn into_app_error(self, field: &str) -> AppError {
        let detail = self.to_string();
        match self {
            TicketError::NotFound => AppError::NotFound("ticket"),
            TicketError::AlreadyExists => AppError::conflict(ConflictKind::TicketExists, detail),
            TicketError::NotPermitted { .. } => AppError::NotPermitted(detail),
            TicketError::InvalidTransition { .. } => {
                AppError::conflict(ConflictKind::InvalidTransition, detail)
            }
            TicketError::Closed => AppError::conflict(ConflictKind::TicketClosed, detail),
            TicketError::Finished { .. } => {
                AppError::conflict(ConflictKind::TicketFinished, detail)
            }
            TicketError::AlreadyAssigned => {
                AppError::conflict(ConflictKind::AlreadyAssigned, detail)
            }
            TicketError::NotAssigned => AppError::conflict(ConflictKind::NotAssigned, detail),
            TicketError::InvalidAssignee
            | TicketError::InvalidCustomer
            | TicketError::InvalidFollower => AppError::invalid(field, detail),
            TicketError::NotRoutable { .. } | TicketError::AssigneeChanged => {
                AppError::conflict(ConflictKind::NotRoutable, detail)
            }
        }
    }
}

impl Refusal for UserError {
    fn into_app_error(self, _field: &str) -> AppError {
        let detail = self.to_string();
        match self {
            UserError::NotFound => AppError::NotFound("user"),
            UserError::AlreadyExists => AppError::conflict(ConflictKind::UserExists, detail),
            UserError::NotPermitted { .. } => AppError::NotPermitted(detail),
            UserError::SelfRegistrationIsForCustomers
            | UserError::ReservedRole { .. }
            | UserError::ServiceRole { .. } => AppError::invalid("role", detail),
            UserError::ServiceNeedsAdmin => AppError::NotPermitted(detail),
            UserError::ServiceHasNoPassword => AppError::invalid("password", detail),
            UserError::OwnAccount { .. } => AppError::conflict(ConflictKind::OwnAccount, detail),
            UserError::AlreadyInState { .. } => {
                AppError::conflict(ConflictKind::AlreadyInState, detail)
            }
        }
    }
}

impl Refusal for ApiKeyError {
    fn into_app_error(self, field: &str) -> AppError {
        let detail = self.to_string();
        match self {
            ApiKeyError::NotFound => AppError::NotFound("API key"),
            ApiKeyError::AlreadyExists => AppError::conflict(ConflictKind::AlreadyExists, detail),
            ApiKeyError::NotPermitted { .. } => AppError::NotPermitted(detail),
            ApiKeyError::OwnerNotService | ApiKeyError::OwnerInactive => {
                AppError::invalid(field, detail)
            }
            ApiKeyError::RoleNotForKeys { .. } | ApiKeyError::RoleAboveOwner { .. } => {
                AppError::invalid("role", detail)
            }
            ApiKeyError::ExpiryInPast => AppError::invalid("expires_at", detail),
            ApiKeyError::AlreadyRevoked => AppError::conflict(ConflictKind::AlreadyRevoked, detail),
        }
    }
}

impl Refusal for WebhookError {
    fn into_app_error(self, _field: &str) -> AppError {
        let detail = self.to_string();
        match self {
            WebhookError::NotFound => AppError::NotFound("webhook"),
            WebhookError::AlreadyExists => AppError::conflict(ConflictKind::AlreadyExists, detail),
            WebhookError::NotPermitted { .. } => AppError::NotPermitted(detail),
        }
    }
}

impl Refusal for AutomationError {
    fn into_app_error(self, _field: &str) -> AppError {
        let detail = self.to_string();
        match self {
            AutomationError::NotFound => AppError::NotFound("automation rule"),
            AutomationError::AlreadyExists => {
                AppError::conflict(ConflictKind::AlreadyExists, detail)
            }
            AutomationError::NotPermitted { .. } => AppError::NotPermitted(detail),
        }
    }
}

impl Refusal for AlertError {
    fn into_app_error(self, _field: &str) -> AppError {
        let detail = self.to_string();
        match self {
            AlertError::NotFound => AppError::NotFound("alert"),
            AlertError::AlreadyRaised => AppError::conflict(ConflictKind::AlreadyExists, detail),
            AlertError::AlreadyIs(_) => AppError::conflict(ConflictKind::AlreadyInState, detail),
            AlertError::NotPermitted { .. } => AppError::NotPermitted(detail),
        }
    }
}

impl Refusal for EmailTemplateError {
    fn into_app_error(self, _field: &str) -> AppError {
        let detail = self.to_string();
        match self {
            EmailTemplateError::NotPermitted { .. } => AppError::NotPermitted(detail),
            EmailTemplateError::TooLong { part, .. } => AppError::invalid(part, detail),
            EmailTemplateError::EmptySubject => AppError::invalid("subject", detail),
        }
    }
}

impl Refusal for ConfigError {
    fn into_app_error(self, _field: &str) -> AppError {
        let detail = self.to_string();
        match self {
            ConfigError::NotPermitted { .. } => AppError::NotPermitted(detail),
            ConfigError::NotFound { what } => AppError::NotFound(what),
            ConfigError::AlreadyExists { .. } => {
                AppError::conflict(ConflictKind::AlreadyExists, detail)
            }
            ConfigError::Invalid(error) => error.into(),
        }
    }
}

impl Refusal for WorkforceError {
    fn into_app_error(self, _field: &str) -> AppError {
        let detail = self.to_string();
        match self {
            WorkforceError::NotPermitted { .. } => AppError::NotPermitted(detail),
            WorkforceError::NotFound { what } => AppError::NotFound(what),
            WorkforceError::AlreadyExists { .. } => {
                AppError::conflict(ConflictKind::AlreadyExists, detail)
            }
            WorkforceError::Invalid(error) => error.into(),
            WorkforceError::Conflict(_) => {
                AppError::conflict(ConflictKind::WorkforceConflict, detail)
            }
            WorkforceError::ShiftRunning { .. } => {
                AppError::conflict(ConflictKind::ShiftRunning, detail)
            }
        }
    }
}

impl Refusal for SavedSearchError {
    fn into_app_error(self, _field: &str) -> AppError {
        match self {
            // Someone else's saved search is as absent as one that never existed.
            SavedSearchError::NotFound | SavedSearchError::NotOwner => {
                AppError::NotFound("saved search")
            }
            SavedSearchError::AlreadyExists => {
                AppError::conflict(ConflictKind::SavedSearchExists, self.to_string())
            }
        }
    }
}

impl<E: Refusal> CommandError<E> {
    /// The application error for this outcome; a refusal about a person or thing names
    /// `field`.
    pub fn naming(self, field: &str) -> AppError {
        match self {
            CommandError::Rejected(rejection) => rejection.into_app_error(field),
            CommandError::VersionMismatch { current } => AppError::VersionMismatch { current },
            CommandError::Conflict => AppError::Contention,
            CommandError::Store(error) => error,
        }
    }
}

impl<E: Refusal> From<CommandError<E>> for AppError {
    fn from(error: CommandError<E>) -> Self {
        error.naming("body")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_about_a_person_names_the_field_that_named_them() {
        let error = CommandError::<TicketError>::Rejected(TicketError::InvalidAssignee);
        assert_eq!(
            error.naming("agent_id"),
            AppError::invalid(
                "agent_id",
                "the assignee must be an active agent or manager"
            )
        );
    }

    #[test]
    fn someone_elses_saved_search_is_not_found() {
        let error: AppError = CommandError::Rejected(SavedSearchError::NotOwner).into();
        assert_eq!(error, AppError::NotFound("saved search"));
    }

    #[test]
    fn version_mismatches_and_contention_keep_their_meaning() {
        let mismatch: AppError = CommandError::<ConfigError>::VersionMismatch { current: 4 }.into();
        assert_eq!(mismatch, AppError::VersionMismatch { current: 4 });
        let contention: AppError = CommandError::<WorkforceError>::Conflict.into();
        assert_eq!(contention, AppError::Contention);
    }
}
