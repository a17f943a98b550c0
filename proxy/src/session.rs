//! Code-flow session credentials as an [`Authenticator`]: `wos_…` bearer tokens, looked up by
//! their SHA-256 in the database, valid for exactly the WABAs their onboarding was granted.

use crate::auth::{Authenticator, Principal, SignupGrant};
use crate::error::AppError;
use crate::signup_routes::{SESSION_PREFIX, blocking, digest};
use crate::store::Store;
use futures_util::future::BoxFuture;
use std::sync::Arc;
use waba_graph::ObjectId;

/// Recognises session credentials.
pub struct SessionCredential(pub Arc<dyn Store>);

impl Authenticator for SessionCredential {
    fn authenticate<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<Principal>, AppError>> {
        Box::pin(async move {
            if !token.starts_with(SESSION_PREFIX) {
                return Ok(None);
            }
            let hash = digest(token);
            let store = self.0.clone();
            let now = crate::clock::now();
            let grant = blocking(move || store.session(&hash, now)).await?.ok_or(
                AppError::InvalidCredential(
                    "the signup session is unknown or expired: the business must sign up again",
                ),
            )?;
            let wabas = grant
                .wabas
                .iter()
                .map(|w| ObjectId::parse(w))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| AppError::Internal)?;
            Ok(Some(Principal::Signup(Arc::new(SignupGrant { wabas }))))
        })
    }

    fn calls_graph(&self) -> bool {
        false
    }
}
