//! Business tokens at rest: AES-256-GCM with a key from the configuration, a random nonce per
//! token, and the record's purpose bound in as associated data.

use crate::store::SealedToken;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use waba_graph::Secret;

/// Why a token could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The system's random source failed.
    #[error("no randomness available")]
    Random,
    /// Encryption failed.
    #[error("the token could not be encrypted")]
    Seal,
    /// The ciphertext does not open with this key (wrong key, or altered).
    #[error("the stored token does not open with the configured key")]
    Open,
}

/// What the associated data binds a sealed value to: one purpose cannot be opened as
/// another.
const PURPOSE: &[u8] = b"waba-onboard business token v1";
/// The purpose of a webhook endpoint's signing secret.
pub const WEBHOOK_SECRET: &[u8] = b"waba-onboard webhook secret v1";

/// The key business tokens are sealed with.
#[derive(Clone)]
pub struct TokenKey(Aes256Gcm);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey([redacted])")
    }
}

impl TokenKey {
    /// A key from its 32 bytes.
    pub fn new(bytes: &[u8; 32]) -> Self {
        Self(Aes256Gcm::new(bytes.into()))
    }

    /// Encrypts `token`, which expires at `expires_at` (unix seconds, 0 for never).
    pub fn seal(&self, token: &Secret, expires_at: i64) -> Result<SealedToken, SealError> {
        self.seal_as(PURPOSE, token, expires_at)
    }

    /// Decrypts a sealed token.
    pub fn open(&self, sealed: &SealedToken) -> Result<Secret, SealError> {
        self.open_as(PURPOSE, sealed)
    }

    /// Encrypts `token` for `purpose` (associated data: it opens only as that purpose).
    pub fn seal_as(
        &self,
        purpose: &[u8],
        token: &Secret,
        expires_at: i64,
    ) -> Result<SealedToken, SealError> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|_| SealError::Random)?;
        let ciphertext = self
            .0
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: token.expose().as_bytes(),
                    aad: purpose,
                },
            )
            .map_err(|_| SealError::Seal)?;
        Ok(SealedToken {
            nonce: nonce.to_vec(),
            ciphertext,
            expires_at,
        })
    }

    /// Decrypts a value sealed for `purpose`.
    pub fn open_as(&self, purpose: &[u8], sealed: &SealedToken) -> Result<Secret, SealError> {
        if sealed.nonce.len() != 12 {
            return Err(SealError::Open);
        }
        let plain = self
            .0
            .decrypt(
                Nonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: purpose,
                },
            )
            .map_err(|_| SealError::Open)?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| SealError::Open)
    }
}

/// `n` random bytes from the system.
pub fn random<const N: usize>() -> Result<[u8; N], SealError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|_| SealError::Random)?;
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_and_refuses_another_key_or_a_changed_byte() {
        let key = TokenKey::new(&[7; 32]);
        let token = Secret::new("EAAbusinessTokenForSealing000000000000001");
        let sealed = key.seal(&token, 0).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !sealed
                .ciphertext
                .windows(10)
                .any(|w| w == &token.expose().as_bytes()[..10]),
            "the plaintext is not in the ciphertext"
        );
        let opened = key.open(&sealed).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(opened.expose(), token.expose());
        assert!(TokenKey::new(&[8; 32]).open(&sealed).is_err());
        let mut changed = sealed.clone();
        changed.ciphertext[0] ^= 1;
        assert!(key.open(&changed).is_err());
        let again = key.seal(&token, 0).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(again.nonce, sealed.nonce, "a fresh nonce per token");
    }
}
