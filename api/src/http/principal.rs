//! Who is calling: an access token or an API key checked into a [`Caller`], and what their
//! reads must include (the `Consistency` and `X-Consistency-Token` headers).

use docket_projections::Checkpoint;
use poem::{Request, RequestBody};
use poem_openapi::auth::{ApiKey, Bearer};
use poem_openapi::registry::Registry;
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions, SecurityScheme};

use crate::app::{AppError, Caller, ReadWants, SharedApp, accounts, api_keys};
use crate::http::credentials::{KeyAuthentication, bearer_token};
use crate::http::problem::ApiError;

/// Opts a request out of waiting for the caller's own writes.
pub const CONSISTENCY_HEADER: &str = "consistency";
/// A token from a write (perhaps made through another process) that a read must include.
pub const TOKEN_HEADER: &str = "x-consistency-token";

/// `Authorization: Bearer <token>`: an access token from `POST /api/auth/login`, or an API key
/// (`dk_…`) from `POST /api/api-keys`.
#[derive(SecurityScheme)]
#[oai(
    rename = "BearerAuth",
    ty = "bearer",
    bearer_format = "JWT or dk_ API key"
)]
#[allow(dead_code)] // Only its description of the scheme is used; `SignedIn` checks it.
struct BearerScheme(Bearer);

/// `X-API-Key: dk_…`: an API key from `POST /api/api-keys`.
#[derive(SecurityScheme)]
#[oai(
    rename = "ApiKeyAuth",
    ty = "api_key",
    key_name = "X-API-Key",
    key_in = "header"
)]
#[allow(dead_code)] // Only its description of the scheme is used; `SignedIn` checks it.
struct ApiKeyScheme(ApiKey);

/// A signed-in caller: an access token or an API key, either scheme of the OpenAPI document.
/// A request presenting none gets 401; one presenting a bad credential gets its reason.
pub struct SignedIn(pub Caller);

impl<'a> ApiExtractor<'a> for SignedIn {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <BearerScheme as ApiExtractor>::register(registry);
        <ApiKeyScheme as ApiExtractor>::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        let mut schemes = <BearerScheme as ApiExtractor>::security_schemes();
        schemes.extend(<ApiKeyScheme as ApiExtractor>::security_schemes());
        schemes
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let caller = if req.extensions().get::<KeyAuthentication>().is_some() {
            checked_key(req)?
        } else if let Some(token) = bearer_token(req) {
            authenticate_token(req, token).await?
        } else {
            return Err(ApiError::Unauthenticated(
                "send an access token (Authorization: Bearer …) or an API key (X-API-Key)".into(),
            )
            .into());
        };
        Ok(Self(caller))
    }
}

/// The caller of the key the request presented, as `credentials::resolve` checked it.
fn checked_key(req: &Request) -> poem::Result<Caller> {
    let outcome = req
        .extensions()
        .get::<KeyAuthentication>()
        .map(|checked| checked.0.clone())
        .unwrap_or_else(|| Err(AppError::Unauthenticated("no API key was checked".into())));
    let mut caller = outcome.map_err(ApiError::from)?;
    caller.reads = read_wants(req)?;
    Ok(caller)
}

/// Checks an access token or an API key against the services installed on the request, and
/// reads what the caller's reads must include from its headers.
pub async fn authenticate_token(req: &Request, token: &str) -> poem::Result<Caller> {
    if api_keys::looks_like_key(token) && req.extensions().get::<KeyAuthentication>().is_some() {
        return checked_key(req);
    }
    let app = req
        .data::<SharedApp>()
        .ok_or_else(|| ApiError::internal("the application is not installed"))?;
    let ip = req
        .extensions()
        .get::<crate::app::Origin>()
        .and_then(|o| o.ip.clone());
    let mut caller = authenticate_with(app, token, ip.as_deref())
        .await
        .map_err(ApiError::from)?;
    caller.reads = read_wants(req)?;
    Ok(caller)
}

/// The account behind an access token or an API key (also for the WebSocket's first message).
pub async fn authenticate_with(
    app: &SharedApp,
    token: &str,
    ip: Option<&str>,
) -> Result<Caller, AppError> {
    if api_keys::looks_like_key(token) {
        api_keys::authenticate(app, token, ip).await
    } else {
        accounts::authenticate(app, token).await
    }
}

fn header<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// `Consistency: eventual` and `X-Consistency-Token: <token>`.
fn read_wants(req: &Request) -> Result<ReadWants, ApiError> {
    let eventual = match header(req, CONSISTENCY_HEADER) {
        None => false,
        Some(value) if value.eq_ignore_ascii_case("eventual") => true,
        Some(value) if value.eq_ignore_ascii_case("read-your-writes") => false,
        Some(_) => {
            return Err(ApiError::InvalidParameter {
                field: "Consistency".into(),
                detail: "must be `eventual` or `read-your-writes`".into(),
            });
        }
    };
    Ok(ReadWants {
        eventual,
        token: parse_consistency_token(header(req, TOKEN_HEADER))?,
    })
}

/// A consistency token names a place in the log: `<transaction id>.<position>`. Writes return
/// one; a read that sends it back waits until the projections it reads have passed it.
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn reads_wait_for_own_writes_unless_told_otherwise() {
        let request = |consistency: Option<&str>| {
            let mut builder = Request::builder();
            if let Some(value) = consistency {
                builder = builder.header(CONSISTENCY_HEADER, value);
            }
            builder.finish()
        };
        assert_eq!(
            read_wants(&request(None)).ok().map(|w| w.eventual),
            Some(false)
        );
        assert_eq!(
            read_wants(&request(Some("Eventual")))
                .ok()
                .map(|w| w.eventual),
            Some(true)
        );
        assert_eq!(
            read_wants(&request(Some("read-your-writes")))
                .ok()
                .map(|w| w.eventual),
            Some(false)
        );
        assert!(read_wants(&request(Some("sometimes"))).is_err());
    }
}
