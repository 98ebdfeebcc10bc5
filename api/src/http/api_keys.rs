//! `/api/api-keys`: keys for integrations, made by staff for themselves and by administrators
//! for service accounts.

use docket_domain::api_key::AddressRange;
use docket_domain::values::{ApiKeyId, KeyName, UserId};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use serde::Deserialize;
use uuid::Uuid;

use crate::app::api_keys::{self, ApiKeyView, KeyFilter, KeyRequest, KeyState};
use crate::app::{Origin, SharedApp};
use crate::http::json::JsonBody;
use crate::http::paging::{Page, Paging};
use crate::http::principal::SignedIn;
use crate::http::problem::ApiError;
use crate::http::wire::{RoleDto, Timestamp, default_page, default_page_size};
use crate::http::{ApiTags, invalid};

/// At most this many entries in `allowed_ips`.
const MAX_ALLOWED_IPS: usize = 50;

/// Where a key stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum KeyStateDto {
    Active,
    Expired,
    Revoked,
}

impl From<KeyState> for KeyStateDto {
    fn from(state: KeyState) -> Self {
        match state {
            KeyState::Active => KeyStateDto::Active,
            KeyState::Expired => KeyStateDto::Expired,
            KeyState::Revoked => KeyStateDto::Revoked,
        }
    }
}

/// An API key, without its secret.
#[derive(Debug, Clone, Object)]
pub struct ApiKeyDto {
    pub id: Uuid,
    pub name: String,
    /// The key's public part: keys look like `dk_<prefix>_<secret>`.
    pub prefix: String,
    /// What the key may do; never more than its account may.
    pub role: RoleDto,
    /// The account the key acts as.
    pub user_id: Uuid,
    pub created_by: Uuid,
    pub created_at: Timestamp,
    /// Absent: the key does not expire.
    pub expires_at: Option<Timestamp>,
    /// Addresses and CIDR ranges the key may be used from; empty: anywhere.
    pub allowed_ips: Vec<String>,
    pub first_used_at: Option<Timestamp>,
    /// Kept to within a minute.
    pub last_used_at: Option<Timestamp>,
    pub last_used_ip: Option<String>,
    pub revoked_at: Option<Timestamp>,
    pub state: KeyStateDto,
}

impl ApiKeyDto {
    fn of(key: ApiKeyView, now: chrono::DateTime<chrono::Utc>) -> Self {
        Self {
            state: key.state(now).into(),
            id: key.id,
            name: key.name,
            prefix: key.prefix,
            role: key.role.into(),
            user_id: key.user_id,
            created_by: key.created_by,
            created_at: key.created_at.into(),
            expires_at: key.expires_at.map(Timestamp),
            allowed_ips: key.allowed_ips,
            first_used_at: key.first_used_at.map(Timestamp),
            last_used_at: key.last_used_at.map(Timestamp),
            last_used_ip: key.last_used_ip,
            revoked_at: key.revoked_at.map(Timestamp),
        }
    }
}

/// A key just made. `key` is shown this once: store it now.
#[derive(Debug, Clone, Object)]
pub struct NewApiKeyDto {
    /// The whole key, `dk_<prefix>_<secret>`. Send it as `Authorization: Bearer <key>` or
    /// `X-API-Key: <key>`. Docket keeps only its hash and never shows it again.
    pub key: String,
    #[oai(flatten)]
    pub api_key: ApiKeyDto,
}

#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// What the key is for, such as `CI exporter`.
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: String,
    /// What the key may do: `admin`, `manager`, `agent` or `viewer`, at most its account's
    /// role.
    pub role: RoleDto,
    /// The service account the key is for (administrators). Absent: a personal key of your
    /// own.
    pub user_id: Option<Uuid>,
    /// When the key stops working (RFC 3339). Absent: never.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Addresses or CIDR ranges (`203.0.113.7`, `10.0.0.0/8`, `2001:db8::/32`) the key may
    /// be used from; requests from anywhere else get 403. Absent or empty: anywhere.
    pub allowed_ips: Option<Vec<String>>,
}

#[derive(ApiResponse)]
pub enum ApiKeyCreated {
    /// The key was made; `key` is its secret, shown only now.
    #[oai(status = 201)]
    Created(Json<NewApiKeyDto>, #[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
pub enum ApiKeyRevoked {
    /// The key no longer works: at once through this server, within a second through others.
    #[oai(status = 204)]
    NoContent,
}

fn address_ranges(raw: Option<&[String]>) -> Result<Vec<AddressRange>, ApiError> {
    let raw = raw.unwrap_or_default();
    if raw.len() > MAX_ALLOWED_IPS {
        return Err(ApiError::validation(
            "allowed_ips",
            format!("at most {MAX_ALLOWED_IPS} entries (got {})", raw.len()),
        ));
    }
    let mut ranges: Vec<AddressRange> = Vec::with_capacity(raw.len());
    for (index, text) in raw.iter().enumerate() {
        let range =
            AddressRange::parse_field(&format!("allowed_ips[{index}]"), text).map_err(invalid)?;
        if !ranges.contains(&range) {
            ranges.push(range);
        }
    }
    Ok(ranges)
}

#[derive(Default)]
pub struct ApiKeysApi;

#[OpenApi(tag = "ApiTags::ApiKeys")]
impl ApiKeysApi {
    /// Make an API key. Staff make personal keys with at most their own role; administrators
    /// also make keys for service accounts (`user_id`). The answer holds the key itself, which
    /// is never shown again. Keys cannot make keys: sign in as a person to make one.
    #[oai(
        path = "/api/api-keys",
        method = "post",
        operation_id = "create_api_key"
    )]
    async fn create(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        body: JsonBody<CreateApiKeyRequest>,
    ) -> Result<ApiKeyCreated, ApiError> {
        let request = body.0;
        let key_request = KeyRequest {
            owner: request.user_id.map(UserId),
            name: KeyName::parse(&request.name).map_err(invalid)?,
            role: request.role.into(),
            expires_at: request.expires_at,
            allowed_ips: address_ranges(request.allowed_ips.as_deref())?,
        };
        let made = api_keys::create(&app, &auth.0, &origin, key_request).await?;
        let location = format!("/api/api-keys/{}", made.key.id);
        Ok(ApiKeyCreated::Created(
            Json(NewApiKeyDto {
                key: made.secret,
                api_key: ApiKeyDto::of(made.key, app.time.now()),
            }),
            location,
        ))
    }

    /// API keys: your own, or (administrators) everyone's. Newest first; revoked keys only
    /// when asked for.
    #[oai(path = "/api/api-keys", method = "get", operation_id = "list_api_keys")]
    async fn list(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        /// Only this account's keys (administrators may name any account).
        user_id: Query<Option<Uuid>>,
        /// Include revoked keys.
        #[oai(default)]
        include_revoked: Query<bool>,
        /// 1-based page number.
        #[oai(
            default = "default_page",
            validator(minimum(value = "1"), maximum(value = "1000000"))
        )]
        page: Query<i64>,
        /// Items per page, at most 100.
        #[oai(
            default = "default_page_size",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        page_size: Query<i64>,
    ) -> Result<Json<Page<ApiKeyDto>>, ApiError> {
        let filter = KeyFilter {
            owner: user_id.0.map(UserId),
            include_revoked: include_revoked.0,
            page: page.0,
            page_size: page_size.0,
        };
        let (keys, total) = api_keys::list(&app, &auth.0, &filter).await?;
        let now = app.time.now();
        let keys: Vec<ApiKeyDto> = keys.into_iter().map(|k| ApiKeyDto::of(k, now)).collect();
        Ok(Json(Page::read(
            keys,
            total,
            Paging::new(page.0, page_size.0),
        )))
    }

    /// One API key: your own, or (administrators) anyone's.
    #[oai(
        path = "/api/api-keys/:id",
        method = "get",
        operation_id = "get_api_key"
    )]
    async fn get(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        id: Path<Uuid>,
    ) -> Result<Json<ApiKeyDto>, ApiError> {
        let key = api_keys::get(&app, &auth.0, ApiKeyId(id.0)).await?;
        Ok(Json(ApiKeyDto::of(key, app.time.now())))
    }

    /// Revoke an API key: your own, or (administrators) anyone's.
    #[oai(
        path = "/api/api-keys/:id",
        method = "delete",
        operation_id = "revoke_api_key"
    )]
    async fn revoke(
        &self,
        auth: SignedIn,
        app: Data<&SharedApp>,
        origin: Data<&Origin>,
        id: Path<Uuid>,
    ) -> Result<ApiKeyRevoked, ApiError> {
        api_keys::revoke(&app, &auth.0, &origin, ApiKeyId(id.0)).await?;
        Ok(ApiKeyRevoked::NoContent)
    }
}
