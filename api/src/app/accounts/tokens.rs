//! Access tokens (short-lived HS256 JWTs) and refresh tokens (random, stored hashed, rotated).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use docket_domain::values::UserId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::Secret;

const ISSUER: &str = "docket";
const ACCESS: &str = "access";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: String,
    iss: String,
    typ: String,
    iat: i64,
    exp: i64,
    jti: String,
}

/// What a verified access token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    pub user_id: UserId,
    pub role: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is invalid")]
    Invalid,
}

pub struct TokenService {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
}

impl TokenService {
    pub fn new(secret: &Secret, access_ttl: Duration, refresh_ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
            access_ttl,
            refresh_ttl,
        }
    }

    pub fn issue_access(
        &self,
        user_id: UserId,
        role: &str,
        now: DateTime<Utc>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = Claims {
            sub: user_id.to_string(),
            role: role.to_string(),
            iss: ISSUER.to_string(),
            typ: ACCESS.to_string(),
            iat: now.timestamp(),
            exp: (now + self.access_ttl).timestamp(),
            jti: Uuid::now_v7().to_string(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    pub fn verify_access(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        if data.claims.typ != ACCESS {
            return Err(TokenError::Invalid);
        }
        let user_id = Uuid::parse_str(&data.claims.sub).map_err(|_| TokenError::Invalid)?;
        Ok(AccessClaims {
            user_id: UserId(user_id),
            role: data.claims.role,
        })
    }
}

/// A new refresh token: 256 random bits, URL-safe.
pub fn new_refresh_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Refresh tokens are stored only as their SHA-256.
pub fn refresh_token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(secret: &str) -> TokenService {
        TokenService::new(
            &Secret::new(secret),
            Duration::minutes(15),
            Duration::days(30),
        )
    }

    #[test]
    fn an_issued_token_verifies_with_the_same_key_only() {
        let id = UserId(Uuid::now_v7());
        let token = service("a").issue_access(id, "agent", Utc::now()).unwrap();
        assert_eq!(
            service("a").verify_access(&token),
            Ok(AccessClaims {
                user_id: id,
                role: "agent".into()
            })
        );
        assert_eq!(service("b").verify_access(&token), Err(TokenError::Invalid));
    }

    #[test]
    fn an_old_token_has_expired() {
        let token = service("a")
            .issue_access(
                UserId(Uuid::now_v7()),
                "agent",
                Utc::now() - Duration::hours(1),
            )
            .unwrap();
        assert_eq!(service("a").verify_access(&token), Err(TokenError::Expired));
    }

    #[test]
    fn garbage_is_invalid() {
        assert_eq!(
            service("a").verify_access("not.a.jwt"),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let (a, b) = (new_refresh_token(), new_refresh_token());
        assert_ne!(a, b);
        assert_eq!(refresh_token_hash(&a).len(), 32);
        assert_eq!(refresh_token_hash(&a), refresh_token_hash(&a));
    }
}
