//! The credentials a request presents: an access token or an API key, in `Authorization:
//! Bearer …`, or a key in `X-API-Key`.
//!
//! A key is checked once per request, here, before anything else needs to know who is calling:
//! the events the request causes record the key (its [`Origin`]), idempotency keys are scoped
//! to the key's account, and the signed-in extractor ([`super::principal::SignedIn`]) takes
//! the outcome from here. A request that presents no key costs nothing.

use poem::http::header;
use poem::{Endpoint, IntoResponse, Request, Response};

use crate::app::caller::KeyCredential;
use crate::app::{AppError, Caller, Origin, SharedApp, api_keys};

pub const API_KEY_HEADER: &str = "x-api-key";

/// The outcome of checking the API key a request presented.
#[derive(Debug, Clone)]
pub struct KeyAuthentication(pub Result<Caller, AppError>);

/// The token of `Authorization: Bearer <token>` (the scheme in any case).
pub fn bearer_token(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The API key a request presents: `X-API-Key`, or a bearer token that is a key.
pub fn presented_key(req: &Request) -> Option<&str> {
    let header = req
        .headers()
        .get(API_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    header.or_else(|| bearer_token(req).filter(|t| api_keys::looks_like_key(t)))
}

/// The middleware: checks a presented key and records the outcome on the request.
pub async fn resolve<E: Endpoint>(next: E, mut req: Request) -> poem::Result<Response> {
    let checked = match (presented_key(&req), req.data::<SharedApp>()) {
        (Some(key), Some(app)) => {
            let ip = req.extensions().get::<Origin>().and_then(|o| o.ip.clone());
            Some(api_keys::authenticate(app, key, ip.as_deref()).await)
        }
        _ => None,
    };
    if let Some(outcome) = checked {
        if let (Ok(caller), Some(origin)) = (&outcome, req.extensions_mut().get_mut::<Origin>()) {
            origin.credential = caller.api_key.map(|key_id| KeyCredential {
                key_id,
                service: caller.service,
            });
        }
        req.extensions_mut().insert(KeyAuthentication(outcome));
    }
    next.call(req).await.map(IntoResponse::into_response)
}

/// The account a request's credentials name, without checking them further than a token's
/// signature or a key's row (for scoping idempotency keys; authentication decides the rest).
pub fn claimed_user(req: &Request) -> Option<uuid::Uuid> {
    if let Some(KeyAuthentication(outcome)) = req.extensions().get::<KeyAuthentication>() {
        return outcome.as_ref().ok().map(|caller| caller.id.0);
    }
    let token = bearer_token(req)?;
    let app = req.data::<SharedApp>()?;
    app.tokens.verify_access(token).ok().map(|c| c.user_id.0)
}
