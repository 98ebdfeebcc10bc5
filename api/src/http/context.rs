//! Per-request context: the correlation id, the client address and user agent (the request's
//! [`Origin`]), and the tracing span that carries them. Also the one place where errors become
//! responses.

use std::net::IpAddr;

use poem::http::HeaderValue;
use poem::{Endpoint, IntoResponse, Request, Response};
use tracing::Instrument;
use uuid::Uuid;

use crate::app::Origin;
use crate::http::problem::{self, REQUEST_ID};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

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
    let context = Origin {
        correlation_id: correlation_id(&req),
        ip: client_ip(&req),
        user_agent: req
            .headers()
            .get(poem::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(512).collect()),
        // Filled in by `credentials::resolve` when an API key authenticates the request.
        credential: None,
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
                Err(error) => problem::render(error),
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
