//! Standard Webhooks signatures (<https://github.com/standard-webhooks/standard-webhooks>,
//! `spec/standard-webhooks.md`, version 1.0.0): the symmetric scheme `v1`, HMAC-SHA256 over
//! `{webhook-id}.{webhook-timestamp}.{body}` keyed by the secret's bytes, the secret shown
//! as `whsec_` and base64, the signature as `v1,` and base64.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use waba_graph::Secret;

/// The prefix of a symmetric secret as the specification shows it.
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a generated secret (the specification asks for 24 to 64).
pub const SECRET_BYTES: usize = 32;

/// A secret that is not `whsec_` and base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the signing secret is not whsec_ followed by base64")]
pub struct BadSecret;

/// A new secret: `whsec_` and 32 random bytes in base64.
pub fn generate() -> Result<Secret, crate::sealing::SealError> {
    let bytes = crate::sealing::random::<SECRET_BYTES>()?;
    Ok(Secret::new(format!(
        "{SECRET_PREFIX}{}",
        STANDARD.encode(bytes)
    )))
}

/// The `webhook-signature` value of `body` sent as `id` at `timestamp`.
pub fn signature(
    secret: &Secret,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, BadSecret> {
    let encoded = secret
        .expose()
        .strip_prefix(SECRET_PREFIX)
        .ok_or(BadSecret)?;
    let key = STANDARD.decode(encoded).map_err(|_| BadSecret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| BadSecret)?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the reference libraries' own tests (standard-webhooks, `libraries`):
    /// this secret, id, timestamp and body sign to this value.
    #[test]
    fn signs_like_the_reference_libraries() {
        let secret = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).as_deref(),
            Ok("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }

    #[test]
    fn generated_secrets_are_distinct_and_well_formed() {
        let a = generate().expect("randomness");
        let b = generate().expect("randomness");
        assert_ne!(a.expose(), b.expose());
        let bytes = STANDARD
            .decode(a.expose().strip_prefix(SECRET_PREFIX).expect("prefix"))
            .expect("base64");
        assert_eq!(bytes.len(), SECRET_BYTES);
        assert!(signature(&a, "msg_1", 1, b"{}").is_ok());
        assert_eq!(
            signature(&Secret::new("sk_nope"), "m", 1, b"").err(),
            Some(BadSecret)
        );
    }
}
