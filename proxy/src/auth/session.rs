//! Code-flow session credentials: `wos_…` bearer tokens minted by the code exchange, stored
//! only as their SHA-256, valid for exactly the WABAs their onboarding was granted.

use super::{Authenticator, Principal, Verdict, digest};
use crate::error::AppError;
use crate::sealing::random;
use crate::store::{NewSession, Store};
use base64::Engine as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use waba_graph::ObjectId;

/// The prefix of session credentials (the rest is 32 random bytes, base64url).
pub const SESSION_PREFIX: &str = "wos_";

/// A freshly minted credential: the text goes to the page once, the hash to the store.
/// `Debug` never shows the credential.
pub struct MintedSession {
    /// The credential the page sends as `Authorization: Bearer`.
    pub credential: String,
    /// What the store keeps.
    pub stored: NewSession,
}

impl std::fmt::Debug for MintedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintedSession")
            .field("credential", &"[redacted]")
            .field("expires_at", &self.stored.expires_at)
            .finish()
    }
}

/// A new random credential living `ttl` from `now`.
pub fn mint(now: i64, ttl: Duration) -> Result<MintedSession, AppError> {
    let bytes = random::<32>().map_err(|_| AppError::Internal)?;
    let credential = format!(
        "{SESSION_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let hash = digest(&credential);
    Ok(MintedSession {
        credential,
        stored: NewSession {
            hash,
            expires_at: now + ttl.as_secs() as i64,
        },
    })
}

/// Recognises session credentials.
pub struct SessionCredential(pub Arc<dyn Store>);

impl Authenticator for SessionCredential {
    fn authenticate<'a>(&'a self, token: &'a str, _client: IpAddr) -> Verdict<'a> {
        Box::pin(async move {
            if !token.starts_with(SESSION_PREFIX) {
                return Ok(None);
            }
            let grant = self
                .0
                .session(digest(token), crate::clock::now())
                .await?
                .ok_or(AppError::InvalidCredential(
                    "the signup session is unknown or expired: the business must sign up again",
                ))?;
            let wabas = grant
                .wabas
                .iter()
                .map(|w| ObjectId::parse(w))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| AppError::Internal)?;
            Ok(Some(Principal::signup(wabas)))
        })
    }

    fn calls_graph(&self) -> bool {
        false
    }
}
