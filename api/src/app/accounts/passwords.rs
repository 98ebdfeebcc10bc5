//! Password hashing with argon2id, off the async runtime (it is deliberately slow).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::rngs::OsRng;

use crate::app::error::AppError;

pub const MIN_CHARS: usize = 8;
pub const MAX_CHARS: usize = 128;

/// A password that satisfies the policy. Never printed.
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([redacted])")
    }
}

impl Password {
    pub fn parse(field: &str, raw: &str) -> Result<Self, AppError> {
        let length = raw.chars().count();
        if length < MIN_CHARS {
            return Err(AppError::invalid(
                field,
                format!("must be at least {MIN_CHARS} characters"),
            ));
        }
        if length > MAX_CHARS {
            return Err(AppError::invalid(
                field,
                format!("must be at most {MAX_CHARS} characters"),
            ));
        }
        Ok(Self(raw.to_string()))
    }
}

pub async fn hash(password: Password) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.0.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(AppError::internal)
    })
    .await
    .map_err(AppError::internal)?
}

/// Checks `candidate` against `stored`. With no stored hash (unknown account) it still does
/// the work of one verification, so response time does not reveal which e-mails exist.
pub async fn verify(candidate: String, stored: Option<String>) -> Result<bool, AppError> {
    tokio::task::spawn_blocking(move || {
        let stored = stored.unwrap_or_else(|| DUMMY_HASH.to_string());
        let parsed = PasswordHash::new(&stored).map_err(AppError::internal)?;
        Ok(Argon2::default()
            .verify_password(candidate.as_bytes(), &parsed)
            .is_ok()
            && stored != DUMMY_HASH)
    })
    .await
    .map_err(AppError::internal)?
}

/// argon2id of a random password nobody knows, with the default parameters.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3SYeqMJsVC7n4oPEa2VfSXLx1bXGtWvOm0Qm+6bOMaM";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let hash = super::hash(Password::parse("password", "correct horse").unwrap())
            .await
            .unwrap();
        assert!(
            verify("correct horse".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!verify("wrong horse".into(), Some(hash)).await.unwrap());
        assert!(!verify("anything".into(), None).await.unwrap());
    }

    #[test]
    fn the_policy_bounds_length() {
        assert!(Password::parse("password", "short").is_err());
        assert!(Password::parse("password", &"x".repeat(129)).is_err());
        assert!(Password::parse("password", "long enough").is_ok());
    }
}
