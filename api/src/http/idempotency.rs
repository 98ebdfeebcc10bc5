//! `Idempotency-Key` on POST: a repeated key returns the first response instead of acting twice.
//!
//! The key is scoped to the caller (the token's subject, or anonymous) and bound to the request
//! it first came with: reusing it for a different body is a 422. The first request claims the
//! key before it runs, so a concurrent repeat gets 409 rather than a second execution. A 5xx
//! releases the key so the client can retry; a claim abandoned by a crash is taken over after
//! a minute.

use poem::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use poem::{Body, Endpoint, IntoResponse, Request, Response};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::app::SharedApp;
use crate::http::credentials;
use crate::http::json::BodyLimit;
use crate::http::problem::{self, ApiError};

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotency-replayed";
const MAX_KEY_LENGTH: usize = 255;
/// Response headers worth replaying.
const KEPT_HEADERS: &[&str] = &["content-type", "etag", "location", "x-consistency-token"];

enum Claim {
    Claimed,
    Stored {
        request_hash: Vec<u8>,
        status: Option<i16>,
        headers: Option<serde_json::Value>,
        body: Option<Vec<u8>>,
    },
}

#[derive(sqlx::FromRow)]
struct StoredResponse {
    request_hash: Vec<u8>,
    status_code: Option<i16>,
    headers: Option<serde_json::Value>,
    body: Option<Vec<u8>>,
}

async fn claim(pool: &PgPool, scope: Uuid, key: &str, hash: &[u8]) -> Result<Claim, sqlx::Error> {
    let claimed: Option<bool> = sqlx::query_scalar(
        "INSERT INTO idempotency_keys (user_id, key, request_hash) VALUES ($1, $2, $3)
         ON CONFLICT (user_id, key) DO UPDATE
            SET request_hash = EXCLUDED.request_hash, created_at = now()
          WHERE idempotency_keys.status_code IS NULL
            AND idempotency_keys.created_at < now() - interval '1 minute'
         RETURNING true",
    )
    .bind(scope)
    .bind(key)
    .bind(hash)
    .fetch_optional(pool)
    .await?;
    if claimed.is_some() {
        return Ok(Claim::Claimed);
    }
    let row: Option<StoredResponse> = sqlx::query_as(
        "SELECT request_hash, status_code, headers, body FROM idempotency_keys
          WHERE user_id = $1 AND key = $2",
    )
    .bind(scope)
    .bind(key)
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        Some(stored) => Claim::Stored {
            request_hash: stored.request_hash,
            status: stored.status_code,
            headers: stored.headers,
            body: stored.body,
        },
        // Released between our insert and our read: treat as in progress; the client retries.
        None => Claim::Stored {
            request_hash: hash.to_vec(),
            status: None,
            headers: None,
            body: None,
        },
    })
}

fn scope_of(req: &Request) -> Uuid {
    credentials::claimed_user(req).unwrap_or(Uuid::nil())
}

fn replay(status: i16, headers: Option<serde_json::Value>, body: Vec<u8>) -> Response {
    let mut response = Response::builder()
        .status(StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK))
        .body(Body::from(body));
    if let Some(serde_json::Value::Object(map)) = headers {
        for (name, value) in map {
            if let (Ok(name), Some(Ok(value))) = (
                HeaderName::try_from(name.as_str()),
                value.as_str().map(HeaderValue::from_str),
            ) {
                response.headers_mut().insert(name, value);
            }
        }
    }
    response
        .headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

fn kept_headers(headers: &HeaderMap) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for name in KEPT_HEADERS {
        if let Some(value) = headers.get(*name).and_then(|v| v.to_str().ok()) {
            map.insert(
                name.to_string(),
                serde_json::Value::String(value.to_string()),
            );
        }
    }
    serde_json::Value::Object(map)
}

pub async fn idempotency<E: Endpoint>(next: E, mut req: Request) -> poem::Result<Response> {
    let key = req
        .headers()
        .get(HEADER)
        .map(|v| v.to_str().map(str::to_string));
    let (Some(key), true) = (key, req.method() == Method::POST) else {
        return next.call(req).await.map(IntoResponse::into_response);
    };
    let key = key.map_err(|_| ApiError::InvalidParameter {
        field: "Idempotency-Key".into(),
        detail: "must be printable ASCII".into(),
    })?;
    if key.is_empty() || key.len() > MAX_KEY_LENGTH {
        return Err(ApiError::InvalidParameter {
            field: "Idempotency-Key".into(),
            detail: format!("must be 1 to {MAX_KEY_LENGTH} characters"),
        }
        .into());
    }
    let Some(app) = req.data::<SharedApp>().cloned() else {
        return Err(ApiError::internal("application state is not installed").into());
    };
    let limit = req.data::<BodyLimit>().map_or(1024 * 1024, |l| l.0);
    let body = req
        .take_body()
        .into_bytes_limit(limit)
        .await
        .map_err(|e| match e {
            poem::error::ReadBodyError::PayloadTooLarge => ApiError::PayloadTooLarge { limit },
            other => ApiError::MalformedBody {
                detail: other.to_string(),
            },
        })?;
    let mut hasher = Sha256::new();
    hasher.update(req.method().as_str().as_bytes());
    hasher.update(b" ");
    hasher.update(req.uri().to_string().as_bytes());
    hasher.update(b"\n");
    hasher.update(&body);
    let hash = hasher.finalize().to_vec();
    req.set_body(body);
    let scope = scope_of(&req);
    let path = req.uri().path().to_string();

    match claim(&app.pool, scope, &key, &hash)
        .await
        .map_err(ApiError::database)?
    {
        Claim::Stored { request_hash, .. } if request_hash != hash => {
            Err(ApiError::IdempotencyKeyReused.into())
        }
        Claim::Stored {
            status: Some(status),
            headers,
            body,
            ..
        } => Ok(replay(status, headers, body.unwrap_or_default())),
        Claim::Stored { status: None, .. } => Err(ApiError::IdempotencyKeyInProgress.into()),
        Claim::Claimed => {
            let response = match next.call(req).await {
                Ok(response) => response.into_response(),
                Err(error) => problem::render(error),
            };
            let (parts, body) = response.into_parts();
            let bytes = body.into_vec().await.map_err(ApiError::internal)?;
            let outcome = if parts.status.is_server_error() {
                sqlx::query("DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2")
                    .bind(scope)
                    .bind(&key)
                    .execute(&app.pool)
                    .await
            } else {
                sqlx::query(
                    "UPDATE idempotency_keys SET status_code = $3, headers = $4, body = $5
                      WHERE user_id = $1 AND key = $2",
                )
                .bind(scope)
                .bind(&key)
                .bind(parts.status.as_u16() as i16)
                .bind(kept_headers(&parts.headers))
                .bind(without_secrets(&path, &bytes))
                .execute(&app.pool)
                .await
            };
            if let Err(error) = outcome {
                // The action happened; only the memory of it failed. Say so in the log and
                // still answer: failing now would invite a retry that acts twice.
                tracing::error!(%error, key, "could not record the idempotent response");
            }
            Ok(Response::from_parts(parts, Body::from(bytes)))
        }
    }
}

/// Answers that show a secret once (a new API key) are kept without it: a secret stored here
/// would outlive the answer, and a repeated request learns only that the key was made.
fn secret_field(path: &str) -> Option<&'static str> {
    match path {
        "/api/api-keys" => Some("key"),
        "/api/webhooks" => Some("secret"),
        rotated if rotated.starts_with("/api/webhooks/") && rotated.ends_with("/rotate-secret") => {
            Some("secret")
        }
        _ => None,
    }
}

fn without_secrets(path: &str, body: &[u8]) -> Vec<u8> {
    let Some(field) = secret_field(path) else {
        return body.to_vec();
    };
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(mut answer)) => {
            if answer.contains_key(field) {
                answer.insert(field.to_string(), serde_json::Value::Null);
            }
            serde_json::to_vec(&answer).unwrap_or_default()
        }
        // Not a JSON object (a problem, say): nothing secret in it.
        _ => body.to_vec(),
    }
}

/// Forgets keys older than a day.
pub async fn purge_expired(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let done =
        sqlx::query("DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'")
            .execute(pool)
            .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::without_secrets;

    #[test]
    fn a_new_keys_secret_is_not_kept_for_replays() {
        let answer = br#"{"id":"1","key":"dk_abcdefgh_secret","name":"CI"}"#;
        let kept: serde_json::Value =
            serde_json::from_slice(&without_secrets("/api/api-keys", answer)).unwrap_or_default();
        assert_eq!(kept["key"], serde_json::Value::Null);
        assert_eq!(kept["name"], "CI");
        assert_eq!(without_secrets("/api/tickets", answer), answer.to_vec());
        let rotated = br#"{"secret":"whsec_abc","previous_valid_until":"x"}"#;
        let kept: serde_json::Value =
            serde_json::from_slice(&without_secrets("/api/webhooks/1/rotate-secret", rotated))
                .unwrap_or_default();
        assert_eq!(kept["secret"], serde_json::Value::Null);
        let problem = br#"not json"#;
        assert_eq!(without_secrets("/api/api-keys", problem), problem.to_vec());
    }
}
