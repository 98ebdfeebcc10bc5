//! The HTTP API: one struct per resource, served together as one OpenAPI document.

pub mod audit;
pub mod auth;
pub mod live;
pub mod routing;
pub mod search;
pub mod sla;
pub mod system;
pub mod tickets;
pub mod types;
pub mod users;
pub mod workforce;

use docket_projections::Checkpoint;
use poem_openapi::Tags;

use crate::error::ApiError;
use crate::state::AppState;

#[derive(Tags)]
pub enum ApiTags {
    /// Sign-up, sign-in, tokens and passwords.
    Auth,
    /// Accounts and roles (administrators).
    Users,
    /// Tickets, their comments, assignments, escalations, history and timeline.
    Tickets,
    /// Full-text and advanced search, suggestions, saved searches.
    Search,
    /// The audit trail across every aggregate.
    Audit,
    /// SLA policies, business calendars, escalation rules, and the clocks they drive.
    Sla,
    /// Agents, skills, teams, shifts; the queue, routing and workload.
    Agents,
    /// The live stream: WebSocket and Server-Sent Events.
    Live,
    /// Liveness, readiness and metrics.
    System,
}

/// `"7"`: the strong ETag of an aggregate at version 7.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// The version an `If-Match` header names: `"7"`, `W/"7"` or `7`. `*` means "any".
pub fn parse_if_match(header: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(raw) = header.map(str::trim) else {
        return Ok(None);
    };
    if raw == "*" {
        return Ok(None);
    }
    let value = raw.strip_prefix("W/").unwrap_or(raw).trim_matches('"');
    value
        .parse::<i64>()
        .map(Some)
        .map_err(|_| ApiError::InvalidParameter {
            field: "If-Match".into(),
            detail: "must be an ETag from this API, such as \"3\"".into(),
        })
}

/// A consistency token names a place in the log: `<transaction id>.<position>`. Writes return
/// one; a read that sends it back waits until the projections have passed it.
pub fn consistency_token(checkpoint: Option<Checkpoint>) -> Option<String> {
    checkpoint.map(|c| format!("{}.{}", c.txid, c.position))
}

pub fn parse_consistency_token(raw: Option<&str>) -> Result<Option<Checkpoint>, ApiError> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let invalid = || ApiError::InvalidParameter {
        field: "X-Consistency-Token".into(),
        detail: "must be a token returned by a write, such as 1234.56".into(),
    };
    let (txid, position) = raw.split_once('.').ok_or_else(invalid)?;
    Ok(Some(Checkpoint {
        txid: txid.parse().map_err(|_| invalid())?,
        position: position.parse().map_err(|_| invalid())?,
    }))
}

/// Waits until projector `name` has passed `checkpoint`, or answers 503.
pub async fn wait_for_projector(
    state: &AppState,
    name: &'static str,
    checkpoint: Checkpoint,
) -> Result<(), ApiError> {
    let pool = state.pool.clone();
    let reached = docket_projections::runtime::wait_until(
        &state.notifications,
        state.consistency_wait,
        || {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, bool>(
                    "SELECT (last_txid, last_position) >= ($2::text::xid8, $3)
                       FROM projector_checkpoints WHERE projector = $1",
                )
                .bind(name)
                .bind(checkpoint.txid.to_string())
                .bind(checkpoint.position)
                .fetch_optional(&pool)
                .await
                .map(|reached| reached.unwrap_or(false))
            }
        },
    )
    .await
    .map_err(ApiError::database)?;
    if reached {
        Ok(())
    } else {
        Err(ApiError::ProjectionBehind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_accepts_strong_weak_bare_and_any() {
        assert_eq!(parse_if_match(Some("\"3\"")).ok(), Some(Some(3)));
        assert_eq!(parse_if_match(Some("W/\"3\"")).ok(), Some(Some(3)));
        assert_eq!(parse_if_match(Some("3")).ok(), Some(Some(3)));
        assert_eq!(parse_if_match(Some("*")).ok(), Some(None));
        assert_eq!(parse_if_match(None).ok(), Some(None));
        assert!(parse_if_match(Some("\"abc\"")).is_err());
    }

    #[test]
    fn consistency_tokens_round_trip() {
        let checkpoint = Checkpoint {
            txid: 812,
            position: 40,
        };
        let token = consistency_token(Some(checkpoint));
        assert_eq!(token.as_deref(), Some("812.40"));
        assert_eq!(
            parse_consistency_token(token.as_deref()).ok(),
            Some(Some(checkpoint))
        );
        assert!(parse_consistency_token(Some("12")).is_err());
        assert_eq!(parse_consistency_token(Some("")).ok(), Some(None));
    }
}
