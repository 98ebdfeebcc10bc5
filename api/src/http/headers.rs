//! What every response carries, whatever answered it (a handler, a page, an error, the
//! explorer): `X-Content-Type-Options`, `Referrer-Policy`, `Cache-Control: no-store` when the
//! request carried credentials, `Strict-Transport-Security` when Docket is reached over https,
//! and CORS for the configured origins, whose preflights are answered here (others are refused).

use std::sync::Arc;

use poem::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};

use crate::config::Settings;

/// The headers a browser script from an allowed origin may send.
const ALLOWED_HEADERS: &str = "authorization, content-type, if-match, if-none-match, \
     idempotency-key, x-api-key, x-consistency-token, x-request-id, last-event-id";
/// The methods the API answers.
const ALLOWED_METHODS: &str = "GET, POST, PUT, PATCH, DELETE";
/// The response headers such a script may read.
const EXPOSED_HEADERS: &str =
    "etag, location, retry-after, x-consistency-token, x-request-id, allow";
/// How long a browser may keep a preflight's answer, in seconds.
const PREFLIGHT_MAX_AGE: &str = "600";
const HSTS: &str = "max-age=31536000; includeSubDomains";

/// What the headers depend on, from the settings.
#[derive(Debug, Clone, Default)]
pub struct ResponsePolicy {
    strict_transport: bool,
    /// Allowed origins, as browsers send them (`scheme://host[:port]`, no trailing slash).
    origins: Arc<[String]>,
}

fn normalised(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

impl ResponsePolicy {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            strict_transport: settings
                .public_url
                .as_deref()
                .is_some_and(|url| url.trim().to_ascii_lowercase().starts_with("https://")),
            origins: settings
                .cors_origins
                .iter()
                .map(|o| normalised(o))
                .filter(|o| !o.is_empty())
                .collect(),
        }
    }

    fn allows(&self, origin: &str) -> bool {
        let origin = normalised(origin);
        self.origins.contains(&origin)
    }
}

/// Whether the request carried credentials: its answer is someone's, never to be cached.
fn authenticated(req: &Request) -> bool {
    let headers = req.headers();
    headers.contains_key(header::AUTHORIZATION)
        || headers.contains_key("x-api-key")
        || headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("docket_session="))
        || req
            .uri()
            .query()
            .is_some_and(|q| q.contains("access_token="))
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &'static str) {
    headers.insert(name, HeaderValue::from_static(value));
}

fn common(headers: &mut HeaderMap, policy: &ResponsePolicy, private: bool) {
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "referrer-policy", "no-referrer");
    if policy.strict_transport {
        set(headers, "strict-transport-security", HSTS);
    }
    if private {
        set(headers, "cache-control", "no-store");
    }
}

fn allow_origin(headers: &mut HeaderMap, origin: &str) {
    if let Ok(value) = HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
    headers.append(header::VARY, HeaderValue::from_static("origin"));
}

/// A CORS preflight: answered for an allowed origin, refused (403, no CORS headers) otherwise.
fn preflight(origin: Option<&str>, policy: &ResponsePolicy) -> Response {
    match origin.filter(|o| policy.allows(o)) {
        Some(origin) => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            let headers = response.headers_mut();
            allow_origin(headers, origin);
            set(headers, "access-control-allow-methods", ALLOWED_METHODS);
            set(headers, "access-control-allow-headers", ALLOWED_HEADERS);
            set(headers, "access-control-max-age", PREFLIGHT_MAX_AGE);
            response
        }
        None => Response::builder()
            .status(StatusCode::FORBIDDEN)
            .content_type("application/problem+json")
            .body(
                serde_json::json!({
                    "type": "https://docket.dev/problems/cors-origin-refused",
                    "title": "This origin may not call the API from a browser",
                    "status": 403,
                    "detail": "Add the origin to DOCKET_CORS_ORIGINS to allow it.",
                })
                .to_string(),
            ),
    }
}

pub async fn response_headers<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let policy = req.data::<ResponsePolicy>().cloned().unwrap_or_default();
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        let mut response = preflight(origin.as_deref(), &policy);
        common(response.headers_mut(), &policy, false);
        return Ok(response);
    }
    let private = authenticated(&req);
    let mut response = match next.call(req).await {
        Ok(answer) => answer.into_response(),
        Err(error) => error.into_response(),
    };
    let headers = response.headers_mut();
    common(headers, &policy, private);
    if let Some(origin) = origin.filter(|o| policy.allows(o)) {
        allow_origin(headers, &origin);
        set(headers, "access-control-expose-headers", EXPOSED_HEADERS);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(public_url: Option<&str>, origins: &[&str]) -> ResponsePolicy {
        let mut settings = Settings::defaults();
        settings.public_url = public_url.map(str::to_string);
        settings.cors_origins = origins.iter().map(|o| o.to_string()).collect();
        ResponsePolicy::from_settings(&settings)
    }

    #[test]
    fn strict_transport_only_behind_an_https_address() {
        assert!(policy(Some("https://help.example.com"), &[]).strict_transport);
        assert!(policy(Some("HTTPS://help.example.com/"), &[]).strict_transport);
        assert!(!policy(Some("http://localhost:8080"), &[]).strict_transport);
        assert!(!policy(None, &[]).strict_transport);
    }

    #[test]
    fn an_origin_is_allowed_only_when_configured_as_browsers_send_it() {
        let p = policy(
            None,
            &["https://app.example.com/", " https://Other.example.com"],
        );
        assert!(p.allows("https://app.example.com"));
        assert!(p.allows("https://other.example.com"));
        assert!(!p.allows("https://app.example.com.evil.test"));
        assert!(!p.allows("http://app.example.com"));
        assert!(!policy(None, &[]).allows("https://app.example.com"));
    }
}
