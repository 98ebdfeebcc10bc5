//! Rate limits, per server process: per client address, per signed-in user, and harder on
//! sign-in attempts (per client address). A refused request gets 429 problem+json with
//! `Retry-After`, before any work is done for it.
//!
//! Limits are token buckets (governor's GCRA): each key may burst to twice its rate, then
//! sustains the rate. They are kept in memory; with several processes behind a balancer the
//! effective limit is the sum of theirs.

use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use poem::http::{HeaderValue, Method, header};
use poem::{Endpoint, IntoResponse, Request, Response};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::app::{Origin, SharedApp};
use crate::config::Settings;
use crate::http::credentials;
use crate::http::problem::ApiError;

/// How often (in checks) idle keys are forgotten, so memory stays bounded.
const FORGET_EVERY: u64 = 10_000;

pub struct RateLimits {
    per_address: Option<DefaultKeyedRateLimiter<String>>,
    per_user: Option<DefaultKeyedRateLimiter<Principal>>,
    sign_in: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
    checks: AtomicU64,
}

fn keyed<K: Hash + Eq + Clone>(quota: Option<Quota>) -> Option<DefaultKeyedRateLimiter<K>> {
    quota.map(RateLimiter::keyed)
}

/// `rate` per second, bursting to twice that; `None` when `rate` is 0 (no limit).
fn per_second(rate: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(rate)?;
    let burst = NonZeroU32::new(rate.get().saturating_mul(2)).unwrap_or(rate);
    Some(Quota::per_second(rate).allow_burst(burst))
}

/// `rate` per minute, bursting to the same; `None` when `rate` is 0.
fn per_minute(rate: u32) -> Option<Quota> {
    NonZeroU32::new(rate).map(|rate| Quota::per_minute(rate).allow_burst(rate))
}

/// Whose budget a request spends: the user an access token names, or the API key presented
/// (by the SHA-256 of the whole key, so only someone holding the key can spend its budget).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Principal {
    User(Uuid),
    Key([u8; 32]),
}

/// Why a request was refused, and when to come back.
struct Refusal {
    scope: &'static str,
    retry_after_secs: u64,
}

impl RateLimits {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            per_address: keyed(per_second(settings.rate_limit_per_address)),
            per_user: keyed(per_second(settings.rate_limit_per_user)),
            sign_in: keyed(per_minute(settings.sign_in_limit_per_minute)),
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        }
    }

    fn check<K: Hash + Eq + Clone>(
        &self,
        limiter: &Option<DefaultKeyedRateLimiter<K>>,
        key: &K,
        scope: &'static str,
    ) -> Result<(), Refusal> {
        let Some(limiter) = limiter else {
            return Ok(());
        };
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            Refusal {
                scope,
                // Whole seconds, rounded up: a client waiting that long will be let in.
                retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            }
        })
    }

    fn forget_idle_keys(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % FORGET_EVERY == FORGET_EVERY - 1 {
            if let Some(l) = &self.per_address {
                l.retain_recent();
            }
            if let Some(l) = &self.per_user {
                l.retain_recent();
            }
            if let Some(l) = &self.sign_in {
                l.retain_recent();
            }
        }
    }

    fn admit(&self, req: &Request) -> Result<(), Refusal> {
        self.forget_idle_keys();
        let address = req
            .extensions()
            .get::<Origin>()
            .and_then(|c| c.ip.clone())
            .unwrap_or_default();
        // The API's sign-in and the web app's share one budget per address.
        if req.method() == Method::POST && matches!(req.uri().path(), "/api/auth/login" | "/login")
        {
            self.check(
                &self.sign_in,
                &address,
                "sign-in attempts from this address",
            )?;
        }
        self.check(&self.per_address, &address, "requests from this address")?;
        if self.per_user.is_some()
            && let Some(principal) = principal(req)
        {
            let scope = match principal {
                Principal::User(_) => "requests by this user",
                Principal::Key(_) => "requests with this API key",
            };
            self.check(&self.per_user, &principal, scope)?;
        }
        Ok(())
    }
}

/// The user a valid bearer token names, or the API key presented; anything else is left to
/// authentication. Keys are told apart without a lookup, so a flood of made-up keys costs the
/// database nothing here.
fn principal(req: &Request) -> Option<Principal> {
    if let Some(key) = credentials::presented_key(req) {
        return Some(Principal::Key(Sha256::digest(key.as_bytes()).into()));
    }
    let token = credentials::bearer_token(req)?;
    let app = req.data::<SharedApp>()?;
    app.tokens
        .verify_access(token)
        .ok()
        .map(|c| Principal::User(c.user_id.0))
}

/// Probes are never limited: a balancer asking too often must not take the server out.
fn exempt(path: &str) -> bool {
    matches!(path, "/health" | "/ready" | "/metrics")
}

/// The middleware; installed inside the request context (it needs the client address).
pub async fn limit<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let limits = req.data::<Arc<RateLimits>>().cloned();
    if let Some(limits) = limits.filter(|_| !exempt(req.uri().path()))
        && let Err(refusal) = limits.admit(&req)
    {
        tracing::info!(scope = refusal.scope, "rate limited");
        if let Some(app) = req.data::<SharedApp>() {
            app.metrics.rate_limited(refusal.scope);
        }
        let mut response = ApiError::TooManyRequests {
            scope: refusal.scope,
        }
        .into_response();
        if let Ok(value) = HeaderValue::from_str(&refusal.retry_after_secs.max(1).to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return Ok(response);
    }
    next.call(req).await.map(IntoResponse::into_response)
}
