//! API keys: made, listed, revoked, and checked on every request that sends one.
//!
//! A key is `dk_<prefix>_<secret>`. The prefix is public (lists and audits show it) and finds
//! the key's row; the secret is shown once, when the key is made, and only its SHA-256 is kept,
//! in `api_keys`, outside the log (DESIGN.md decision 10). A key's row is written after its
//! `ApiKeyCreated` event, so no key the log does not know can authenticate; a revocation marks
//! the row first, so a key the log says is revoked never works.
//!
//! Each process remembers a key's row for `DOCKET_ACCOUNT_FRESHNESS_MS`, like accounts: a key
//! revoked through this process stops at once, through another within that window.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use docket_domain::Role;
use docket_domain::access::Permission;
use docket_domain::api_key::{AddressRange, ApiKeyCommand, CreateApiKey, KeyOwner};
use docket_domain::values::{ApiKeyId, KeyName, UserId};
use rand::Rng;
use rand::distributions::Alphanumeric;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::app::accounts::{self, UserView};
use crate::app::caller::KeyCredential;
use crate::app::error::AppError;
use crate::app::{App, Caller, Origin};

/// What every key starts with, so scanners (and people) recognise a leaked one.
pub const KEY_PREFIX: &str = "dk_";
const PREFIX_LENGTH: usize = 8;
const SECRET_LENGTH: usize = 40;
/// How many keys' rows a process remembers.
const REMEMBERED_KEYS: usize = 10_000;
/// How often a process writes down that a key is still being used.
const LAST_USED_EVERY: Duration = Duration::from_secs(60);

/// A key as its owner and administrators see it; never its secret.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub user_id: Uuid,
    pub prefix: String,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub allowed_ips: Vec<String>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub first_used_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_used_ip: Option<String>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Where a key stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Active,
    Expired,
    Revoked,
}

impl ApiKeyView {
    pub fn state(&self, now: DateTime<Utc>) -> KeyState {
        if self.revoked_at.is_some() {
            KeyState::Revoked
        } else if self.expires_at.is_some_and(|expiry| expiry <= now) {
            KeyState::Expired
        } else {
            KeyState::Active
        }
    }
}

/// A key just made: its view, and the whole key, shown this once.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub key: ApiKeyView,
    pub secret: String,
}

/// What someone asks for when they make a key.
#[derive(Debug, Clone)]
pub struct KeyRequest {
    /// The service account the key is for; `None`: the caller's own key.
    pub owner: Option<UserId>,
    pub name: KeyName,
    pub role: Role,
    pub expires_at: Option<DateTime<Utc>>,
    pub allowed_ips: Vec<AddressRange>,
}

/// Which keys a list shows.
#[derive(Debug, Clone, Default)]
pub struct KeyFilter {
    /// Only this account's keys (administrators may name anyone; others see only their own).
    pub owner: Option<UserId>,
    pub include_revoked: bool,
    pub page: i64,
    pub page_size: i64,
}

const KEY_COLUMNS: &str = "id, user_id, prefix, name, role, allowed_ips, created_by, created_at, \
     expires_at, first_used_at, last_used_at, last_used_ip, revoked_at";

fn random_text(length: usize, lower_only: bool) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .map(char::from)
        .map(|c| {
            if lower_only {
                c.to_ascii_lowercase()
            } else {
                c
            }
        })
        .take(length)
        .collect()
}

fn secret_hash(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// The prefix of something shaped like a key (`dk_<8 letters or digits>_<secret>`).
pub fn key_prefix(presented: &str) -> Option<&str> {
    let rest = presented.strip_prefix(KEY_PREFIX)?;
    let (prefix, secret) = rest.split_once('_')?;
    let shaped = prefix.len() == PREFIX_LENGTH
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && !secret.is_empty()
        && secret.bytes().all(|b| b.is_ascii_alphanumeric());
    shaped.then_some(prefix)
}

/// Whether a credential is an API key rather than an access token.
pub fn looks_like_key(credential: &str) -> bool {
    credential.starts_with(KEY_PREFIX)
}

/// Equal bytes, compared in time that does not depend on where they differ.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The part of a key's row a request is checked against.
#[derive(Debug, Clone)]
struct KeyRecord {
    id: ApiKeyId,
    owner: UserId,
    secret_hash: Vec<u8>,
    role: Role,
    allowed_ips: Vec<AddressRange>,
    expires_at: Option<DateTime<Utc>>,
    revoked: bool,
    first_used: bool,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: Uuid,
    user_id: Uuid,
    secret_hash: Vec<u8>,
    #[sqlx(try_from = "String")]
    role: Role,
    allowed_ips: Vec<String>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    first_used_at: Option<DateTime<Utc>>,
}

impl KeyRow {
    fn into_record(self) -> KeyRecord {
        KeyRecord {
            id: ApiKeyId(self.id),
            owner: UserId(self.user_id),
            secret_hash: self.secret_hash,
            role: self.role,
            // Written from parsed ranges; one that no longer parses admits nobody.
            allowed_ips: self
                .allowed_ips
                .iter()
                .filter_map(|text| AddressRange::parse_field("allowed_ips", text).ok())
                .collect(),
            expires_at: self.expires_at,
            revoked: self.revoked_at.is_some(),
            first_used: self.first_used_at.is_some(),
        }
    }
}

struct Remembered {
    /// `None`: no key has this prefix.
    record: Option<KeyRecord>,
    read_at: Instant,
    /// When this process last wrote down that the key was used.
    use_noted_at: Option<Instant>,
}

/// The keys' rows this process read lately, by prefix.
pub struct KeyCache {
    entries: Mutex<hashlink::LruCache<String, Remembered>>,
}

impl Default for KeyCache {
    fn default() -> Self {
        Self {
            entries: Mutex::new(hashlink::LruCache::new(REMEMBERED_KEYS)),
        }
    }
}

impl KeyCache {
    fn fresh(&self, prefix: &str, max_age: Duration) -> Option<Option<KeyRecord>> {
        let mut entries = self.entries.lock().ok()?;
        entries
            .get(prefix)
            .filter(|entry| entry.read_at.elapsed() < max_age)
            .map(|entry| entry.record.clone())
    }

    fn put(&self, prefix: &str, record: Option<KeyRecord>) {
        if let Ok(mut entries) = self.entries.lock() {
            let use_noted_at = entries.get(prefix).and_then(|e| e.use_noted_at);
            entries.insert(
                prefix.to_string(),
                Remembered {
                    record,
                    read_at: Instant::now(),
                    use_noted_at,
                },
            );
        }
    }

    fn forget(&self, prefix: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(prefix);
        }
    }

    /// Whether this process should write down a use of the key now (and if so, that it did).
    fn note_use(&self, prefix: &str) -> bool {
        let Ok(mut entries) = self.entries.lock() else {
            return false;
        };
        match entries.get_mut(prefix) {
            Some(entry)
                if entry
                    .use_noted_at
                    .is_none_or(|at| at.elapsed() >= LAST_USED_EVERY) =>
            {
                entry.use_noted_at = Some(Instant::now());
                if let Some(record) = &mut entry.record {
                    record.first_used = true;
                }
                true
            }
            _ => false,
        }
    }
}

async fn record_of(app: &App, prefix: &str) -> Result<Option<KeyRecord>, AppError> {
    if let Some(known) = app.api_key_cache.fresh(prefix, app.account_freshness) {
        return Ok(known);
    }
    let row: Option<KeyRow> = sqlx::query_as(
        "SELECT id, user_id, secret_hash, role, allowed_ips, expires_at, revoked_at,
                first_used_at
           FROM api_keys WHERE prefix = $1",
    )
    .bind(prefix)
    .fetch_optional(&app.pool)
    .await
    .map_err(AppError::database)?;
    let record = row.map(KeyRow::into_record);
    app.api_key_cache.put(prefix, record.clone());
    Ok(record)
}

fn invalid_key() -> AppError {
    AppError::Unauthenticated("the API key is invalid".into())
}

/// The caller a presented key stands for, from the address `ip`; every refusal says why.
pub async fn authenticate(
    app: &App,
    presented: &str,
    ip: Option<&str>,
) -> Result<Caller, AppError> {
    let prefix = key_prefix(presented).ok_or_else(invalid_key)?;
    let record = record_of(app, prefix).await?.ok_or_else(invalid_key)?;
    if !same_bytes(&secret_hash(presented), &record.secret_hash) {
        return Err(invalid_key());
    }
    if record.revoked {
        return Err(AppError::Unauthenticated(
            "the API key has been revoked".into(),
        ));
    }
    let now = app.time.now();
    if let Some(expiry) = record.expires_at.filter(|expiry| *expiry <= now) {
        return Err(AppError::CredentialExpired(format!(
            "the API key expired at {}",
            expiry.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )));
    }
    if !record.allowed_ips.is_empty() {
        let address = ip.and_then(|ip| ip.parse::<IpAddr>().ok());
        let admitted =
            address.is_some_and(|address| record.allowed_ips.iter().any(|r| r.contains(address)));
        if !admitted {
            return Err(AppError::AddressRefused(format!(
                "the API key may not be used from {}",
                ip.unwrap_or("an unknown address")
            )));
        }
    }
    let owner = accounts::recent_user(app, record.owner)
        .await?
        .ok_or_else(|| AppError::Unauthenticated("the key's account no longer exists".into()))?;
    if !owner.active {
        return Err(AppError::Unauthenticated(
            "the key's account is deactivated".into(),
        ));
    }
    // A key never does more than its account may now: an account demoted since the key was
    // made takes its keys down with it.
    let role = if record.role.is_within(owner.role) {
        record.role
    } else {
        owner.role
    };
    if !role.is_staff() {
        return Err(AppError::Unauthenticated(
            "the key's account is no longer staff".into(),
        ));
    }
    if app.api_key_cache.note_use(prefix) {
        note_use(app, &record, &owner, ip, now).await;
    }
    Ok(Caller {
        id: owner.id,
        role,
        email: owner.email,
        full_name: owner.full_name,
        reads: Default::default(),
        api_key: Some(record.id),
        service: owner.service,
    })
}

/// Writes down that the key was used (at most once a minute per process), and records its
/// first use in the log. A failure here is logged, never the request's.
async fn note_use(
    app: &App,
    record: &KeyRecord,
    owner: &UserView,
    ip: Option<&str>,
    now: DateTime<Utc>,
) {
    let first: Result<Option<Uuid>, sqlx::Error> = sqlx::query_scalar(
        "UPDATE api_keys
            SET last_used_at = $2, last_used_ip = $3,
                first_used_at = COALESCE(first_used_at, $2)
          WHERE id = $1
         RETURNING CASE WHEN first_used_at = $2 THEN id END",
    )
    .bind(record.id.0)
    .bind(now)
    .bind(ip)
    .fetch_optional(&app.pool)
    .await
    .map(Option::flatten);
    let first = match first {
        Ok(first) => first.is_some() && !record.first_used,
        Err(error) => {
            tracing::warn!(%error, key = %record.id, "could not note the use of an API key");
            return;
        }
    };
    if !first {
        return;
    }
    let mut origin = Origin::system("api-key");
    origin.ip = ip.map(str::to_string);
    origin.credential = Some(KeyCredential {
        key_id: record.id,
        service: owner.service,
    });
    let command = ApiKeyCommand::RecordFirstUse {
        ip: ip.map(str::to_string),
        at: now,
    };
    let metadata = origin.metadata(Some(docket_domain::Actor::new(owner.id, owner.role)));
    if let Err(error) = app
        .api_keys
        .execute(&record.id.to_string(), None, command, metadata)
        .await
    {
        tracing::warn!(?error, key = %record.id, "could not record the first use of an API key");
    }
}

/// Makes a key; the answer holds the whole key, which is never shown again.
pub async fn create(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    request: KeyRequest,
) -> Result<NewKey, AppError> {
    if caller.api_key.is_some() {
        // A leaked key must not be able to mint copies of itself that outlive its revocation.
        return Err(AppError::NotPermitted(
            "API keys are made by a signed-in person, not with another key".into(),
        ));
    }
    let owner_id = request.owner.unwrap_or(caller.id);
    let owner = accounts::find_user(app, owner_id)
        .await?
        .ok_or_else(|| AppError::invalid("user_id", "no such account"))?;
    let key_id = ApiKeyId::new_random();
    let prefix = random_text(PREFIX_LENGTH, true);
    let secret = format!("{KEY_PREFIX}{prefix}_{}", random_text(SECRET_LENGTH, false));
    let now = app.time.now();
    let command = ApiKeyCommand::Create(CreateApiKey {
        key_id,
        owner: KeyOwner {
            user_id: owner.id,
            role: owner.role,
            active: owner.active,
            service: owner.service,
        },
        name: request.name.clone(),
        role: request.role,
        prefix: prefix.clone(),
        expires_at: request.expires_at,
        allowed_ips: request.allowed_ips.clone(),
        actor: caller.actor(),
        at: now,
    });
    app.api_keys
        .execute(
            &key_id.to_string(),
            Some(0),
            command,
            origin.metadata(Some(caller.actor())),
        )
        .await
        .map_err(|e| e.naming("user_id"))?;
    let allowed: Vec<String> = request.allowed_ips.iter().map(|r| r.to_string()).collect();
    let key: ApiKeyView = sqlx::query_as(&format!(
        "INSERT INTO api_keys (id, user_id, prefix, secret_hash, name, role, allowed_ips,
                               created_by, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         RETURNING {KEY_COLUMNS}"
    ))
    .bind(key_id.0)
    .bind(owner.id.0)
    .bind(&prefix)
    .bind(secret_hash(&secret))
    .bind(request.name.as_str())
    .bind(request.role.as_str())
    .bind(&allowed)
    .bind(caller.id.0)
    .bind(now)
    .bind(request.expires_at)
    .fetch_one(&app.pool)
    .await
    .map_err(AppError::database)?;
    // A lookup of this prefix before the key existed must not be remembered as "no such key".
    app.api_key_cache.forget(&prefix);
    Ok(NewKey { key, secret })
}

/// Keys the caller may see: their own, or (administrators) anyone's.
pub async fn list(
    app: &App,
    caller: &Caller,
    filter: &KeyFilter,
) -> Result<(Vec<ApiKeyView>, i64), AppError> {
    caller.require(Permission::ReadStaffViews, "have API keys")?;
    let owner = match filter.owner {
        Some(owner) if owner != caller.id => {
            caller.require(Permission::AdministerAccounts, "see others' keys")?;
            Some(owner)
        }
        Some(owner) => Some(owner),
        None if caller.role.may(Permission::AdministerAccounts) => None,
        None => Some(caller.id),
    };
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM api_keys
          WHERE ($1::uuid IS NULL OR user_id = $1) AND ($2 OR revoked_at IS NULL)",
    )
    .bind(owner.map(|o| o.0))
    .bind(filter.include_revoked)
    .fetch_one(&app.pool)
    .await
    .map_err(AppError::database)?;
    let keys: Vec<ApiKeyView> = sqlx::query_as(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys
          WHERE ($1::uuid IS NULL OR user_id = $1) AND ($2 OR revoked_at IS NULL)
          ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
    ))
    .bind(owner.map(|o| o.0))
    .bind(filter.include_revoked)
    .bind(filter.page_size)
    .bind((filter.page.max(1) - 1).saturating_mul(filter.page_size))
    .fetch_all(&app.pool)
    .await
    .map_err(AppError::database)?;
    Ok((keys, total))
}

/// One key, if the caller may see it (their own, or any for administrators).
pub async fn get(app: &App, caller: &Caller, id: ApiKeyId) -> Result<ApiKeyView, AppError> {
    caller.require(Permission::ReadStaffViews, "have API keys")?;
    let key: Option<ApiKeyView> =
        sqlx::query_as(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(&app.pool)
            .await
            .map_err(AppError::database)?;
    // Someone else's key is as absent as one that never existed.
    key.filter(|k| k.user_id == caller.id.0 || caller.role.may(Permission::AdministerAccounts))
        .ok_or(AppError::NotFound("API key"))
}

/// Revokes a key: from this moment on this process, within the freshness window on others.
pub async fn revoke(
    app: &App,
    caller: &Caller,
    origin: &Origin,
    id: ApiKeyId,
) -> Result<ApiKeyView, AppError> {
    let key = get(app, caller, id).await?;
    let command = ApiKeyCommand::Revoke {
        actor: caller.actor(),
        at: app.time.now(),
    };
    // The domain is asked first; the row is marked before the event is appended, so a crash
    // in between leaves a dead key the log has not yet called revoked (a retry records it),
    // never a live key the log calls revoked.
    let (aggregate, version) = app.api_keys.load(&id.to_string()).await?;
    aggregate
        .decide(&command)
        .map_err(|refusal| crate::app::error::Refusal::into_app_error(refusal, "id"))?;
    let revoked: ApiKeyView = sqlx::query_as(&format!(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1
         RETURNING {KEY_COLUMNS}"
    ))
    .bind(id.0)
    .bind(app.time.now())
    .fetch_one(&app.pool)
    .await
    .map_err(AppError::database)?;
    app.api_key_cache.forget(&key.prefix);
    app.api_keys
        .execute(
            &id.to_string(),
            Some(version),
            command,
            origin.metadata(Some(caller.actor())),
        )
        .await?;
    Ok(revoked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_made_key_has_its_shape_and_its_prefix_is_found_again() {
        let prefix = random_text(PREFIX_LENGTH, true);
        let key = format!("{KEY_PREFIX}{prefix}_{}", random_text(SECRET_LENGTH, false));
        assert_eq!(key_prefix(&key), Some(prefix.as_str()));
        assert!(looks_like_key(&key));
        assert_eq!(key.len(), 3 + PREFIX_LENGTH + 1 + SECRET_LENGTH);
    }

    #[test]
    fn anything_else_has_no_prefix() {
        for text in [
            "",
            "dk_",
            "dk_abcdefgh",
            "dk_abcdefgh_",
            "dk_ABCDEFGH_secret",
            "dk_abcdefg_secret",
            "dk_abcdefgh_sec-ret",
            "eyJhbGciOiJIUzI1NiJ9.e30.x",
        ] {
            assert_eq!(key_prefix(text), None, "{text}");
        }
    }

    #[test]
    fn secrets_compare_equal_only_when_every_byte_does() {
        let a = secret_hash("dk_abcdefgh_one");
        assert!(same_bytes(&a, &secret_hash("dk_abcdefgh_one")));
        assert!(!same_bytes(&a, &secret_hash("dk_abcdefgh_two")));
        assert!(!same_bytes(&a, &a[..31]));
    }

    #[test]
    fn a_keys_state_is_revoked_before_expired() {
        let now = Utc::now();
        let mut key = ApiKeyView {
            id: Uuid::nil(),
            user_id: Uuid::nil(),
            prefix: "abcdefgh".into(),
            name: "x".into(),
            role: Role::Agent,
            allowed_ips: vec![],
            created_by: Uuid::nil(),
            created_at: now,
            expires_at: None,
            first_used_at: None,
            last_used_at: None,
            last_used_ip: None,
            revoked_at: None,
        };
        assert_eq!(key.state(now), KeyState::Active);
        key.expires_at = Some(now);
        assert_eq!(key.state(now), KeyState::Expired);
        key.revoked_at = Some(now);
        assert_eq!(key.state(now), KeyState::Revoked);
    }
}
