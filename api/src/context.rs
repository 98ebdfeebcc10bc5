//! Per-request context: the correlation id, the client address and user agent, and the
//! tracing span that carries them. Also the one place where errors become responses.

use std::net::IpAddr;

use poem::http::HeaderValue;
use poem::{Endpoint, IntoResponse, Request, Response};
use tracing::Instrument;
use uuid::Uuid;

use crate::error::{self, REQUEST_ID};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Where a request came from; recorded in the metadata of every event it causes.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub correlation_id: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Whether to believe `X-Forwarded-For`; installed as request data at start-up.
#[derive(Debug, Clone, Copy)]
pub struct TrustForwardedFor(pub bool);

/// A client-supplied id is kept if it is short and printable; otherwise a fresh one is made.
fn correlation_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|id| !id.is_empty() && id.len() <= 128 && id.chars().all(|c| c.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| Uuid::now_v7().to_string())
}

fn client_ip(req: &Request) -> Option<String> {
    let trust = req.data::<TrustForwardedFor>().is_some_and(|t| t.0);
    if trust {
        let forwarded = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .and_then(|v| v.parse::<IpAddr>().ok());
        if let Some(ip) = forwarded {
            return Some(ip.to_string());
        }
    }
    req.remote_addr()
        .as_socket_addr()
        .map(|addr| addr.ip().to_string())
}

/// The outermost middleware.
pub async fn request_context<E: Endpoint>(next: E, mut req: Request) -> poem::Result<Response> {
    let context = RequestContext {
        correlation_id: correlation_id(&req),
        ip: client_ip(&req),
        user_agent: req
            .headers()
            .get(poem::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(512).collect()),
    };
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        request_id = %context.correlation_id,
        status = tracing::field::Empty,
    );
    let id = context.correlation_id.clone();
    req.extensions_mut().insert(context);
    let outcome = REQUEST_ID
        .scope(id.clone(), async move {
            match next.call(req).await {
                Ok(response) => response.into_response(),
                Err(error) => error::render(error),
            }
        })
        .instrument(span.clone())
        .await;
    let mut response = outcome;
    span.record("status", response.status().as_u16());
    if response.status().is_server_error() {
        span.in_scope(|| tracing::warn!(status = response.status().as_u16(), "request failed"));
    } else {
        span.in_scope(|| tracing::debug!(status = response.status().as_u16(), "request served"));
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    Ok(response)
}

impl RequestContext {
    /// A context for work the server does on its own (bootstrap, demo data).
    pub fn system(purpose: &str) -> Self {
        Self {
            correlation_id: format!("{purpose}-{}", Uuid::now_v7()),
            ip: None,
            user_agent: Some(format!("docket/{}", env!("CARGO_PKG_VERSION"))),
        }
    }

    /// The metadata stored with the events this request causes.
    pub fn metadata(
        &self,
        actor: Option<docket_domain::Actor>,
    ) -> docket_projections::EventMetadata {
        docket_projections::EventMetadata {
            actor_id: actor.map(|a| a.user_id.to_string()),
            actor_role: actor.map(|a| a.role.to_string()),
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
            correlation_id: Some(self.correlation_id.clone()),
            causation_id: None,
        }
    }
}
