//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>): `webhook-signature:
//! v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed by the secret's bytes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// What every signing secret starts with.
pub const SECRET_PREFIX: &str = "whsec_";

/// A signing secret as it is shown once and stored: `whsec_` + base64 of 32 random bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(String);

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret([redacted])")
    }
}

impl SigningSecret {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        Self(format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes)))
    }

    /// A stored secret; `None` if it is not one.
    pub fn from_stored(text: &str) -> Option<Self> {
        let key = text.strip_prefix(SECRET_PREFIX)?;
        STANDARD.decode(key).ok().filter(|k| !k.is_empty())?;
        Some(Self(text.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    fn key(&self) -> Vec<u8> {
        self.0
            .strip_prefix(SECRET_PREFIX)
            .and_then(|key| STANDARD.decode(key).ok())
            .unwrap_or_default()
    }

    /// `v1,<signature>` of one message.
    pub fn sign(&self, message_id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC takes a key of any length; an empty one (never stored) still signs.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key()) {
            Ok(mac) => mac,
            Err(_) => return String::new(),
        };
        mac.update(message_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header: one signature per secret in force, space-separated (during
/// the day after a rotation, the new secret's and the old one's).
pub fn signature_header(
    secrets: &[SigningSecret],
    message_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|secret| secret.sign(message_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specifications_published_vector_is_reproduced() {
        let secret = SigningSecret::from_stored("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let signed = secret.map(|s| {
            s.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#,
            )
        });
        assert_eq!(
            signed.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }

    #[test]
    fn a_generated_secret_has_the_standard_shape_and_differs_each_time() {
        let (a, b) = (SigningSecret::generate(), SigningSecret::generate());
        assert_ne!(a, b);
        assert!(a.expose().starts_with("whsec_"));
        assert_eq!(a.key().len(), 32);
        assert_eq!(SigningSecret::from_stored(a.expose()), Some(a.clone()));
        assert_eq!(format!("{a:?}"), "SigningSecret([redacted])");
        assert_eq!(SigningSecret::from_stored("nope"), None);
    }

    #[test]
    fn both_secrets_sign_during_a_rotation() {
        let (new, old) = (SigningSecret::generate(), SigningSecret::generate());
        let header = signature_header(&[new.clone(), old.clone()], "msg_1", 10, b"{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(
            parts,
            [new.sign("msg_1", 10, b"{}"), old.sign("msg_1", 10, b"{}")]
        );
    }
}
