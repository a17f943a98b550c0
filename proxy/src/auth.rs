//! Who is calling, and what they may see.
//!
//! A bearer token is offered to each [`Authenticator`] in turn; the first that recognises it
//! decides. Today: the admin token, then signup tokens (checked with `debug_token`). New
//! kinds of credential (code-flow sessions) are new authenticators, not new branches.

use crate::error::AppError;
use crate::tokens::TokenInspector;
use axum::http::{HeaderMap, header};
use futures_util::future::BoxFuture;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use waba_graph::{ObjectId, Secret, WabaScope};

/// Longest bearer token accepted.
pub const MAX_TOKEN_LEN: usize = 4096;

/// A recognised caller.
#[derive(Debug, Clone)]
pub enum Principal {
    /// The partner's staff: every route, for the configured business and its WABAs.
    Admin,
    /// A business that went through Embedded Signup: only the WABAs it granted.
    Signup(Arc<SignupGrant>),
}

/// What a signup credential was granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignupGrant {
    /// WABAs granted `whatsapp_business_management`, newest first.
    pub wabas: Vec<ObjectId>,
}

impl Principal {
    /// Whether a signup principal was granted `waba`. Admins are checked against the
    /// partner's WABA directory by the caller.
    pub fn signup_may_read(&self, waba: &ObjectId) -> bool {
        match self {
            Principal::Admin => false,
            Principal::Signup(grant) => grant.wabas.contains(waba),
        }
    }
}

/// One kind of credential.
pub trait Authenticator: Send + Sync {
    /// `Ok(Some(_))` when the token is this kind's and valid, `Ok(None)` when it is not this
    /// kind's (the next authenticator tries), `Err` when it is this kind's and refused.
    fn authenticate<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<Principal>, AppError>>;

    /// Whether deciding may cost a Graph call.
    fn calls_graph(&self) -> bool;
}

/// The admin token, compared in constant time.
pub struct AdminToken(pub Secret);

impl Authenticator for AdminToken {
    fn authenticate<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<Principal>, AppError>> {
        let expected = self.0.expose().as_bytes();
        let same: bool = expected.ct_eq(token.as_bytes()).into();
        Box::pin(async move { Ok(same.then_some(Principal::Admin)) })
    }

    fn calls_graph(&self) -> bool {
        false
    }
}

/// Any other token is a signup user's token: its `debug_token` answer says what it granted.
pub struct SignupToken(pub Arc<TokenInspector>);

impl Authenticator for SignupToken {
    fn authenticate<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<Principal>, AppError>> {
        Box::pin(async move {
            let info = self.0.inspect(token).await?;
            if !info.usable {
                return Err(AppError::InvalidCredential(
                    "the token is invalid, expired or for another app",
                ));
            }
            let wabas = info
                .debug
                .data
                .granted_wabas(WabaScope::Management)
                .map_err(|_| AppError::UpstreamGarbage("malformed granted WABA ids"))?;
            Ok(Some(Principal::Signup(Arc::new(SignupGrant { wabas }))))
        })
    }

    fn calls_graph(&self) -> bool {
        true
    }
}

/// The authenticators, tried in order.
#[derive(Clone)]
pub struct Authenticators(Arc<Vec<Box<dyn Authenticator>>>);

impl Authenticators {
    /// Tries `list` in order.
    pub fn new(list: Vec<Box<dyn Authenticator>>) -> Self {
        Self(Arc::new(list))
    }

    /// The caller's principal; 401 without a usable bearer token or when nobody knows it.
    pub async fn resolve(&self, token: &str) -> Result<Principal, AppError> {
        for a in self.0.iter() {
            if let Some(p) = a.authenticate(token).await? {
                return Ok(p);
            }
        }
        Err(AppError::InvalidCredential("unknown token"))
    }

    /// The caller's principal among the authenticators that decide without calling Graph;
    /// `None` when none of them knows the token. Routes only an admin may use ask this, so a
    /// stranger's token costs no Graph call.
    pub async fn resolve_local(&self, token: &str) -> Result<Option<Principal>, AppError> {
        for a in self.0.iter().filter(|a| !a.calls_graph()) {
            if let Some(p) = a.authenticate(token).await? {
                return Ok(Some(p));
            }
        }
        Ok(None)
    }
}

/// The bearer token of a request, checked for shape; `None` when there is no
/// `Authorization` header.
pub fn bearer(headers: &HeaderMap) -> Result<Option<&str>, AppError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| AppError::InvalidCredential("malformed Authorization header"))?;
    let (scheme, token) = value.split_once(' ').ok_or(AppError::InvalidCredential(
        "use Authorization: Bearer <token>",
    ))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AppError::InvalidCredential(
            "use Authorization: Bearer <token>",
        ));
    }
    let token = token.trim();
    if token.is_empty()
        || token.len() > MAX_TOKEN_LEN
        || !token.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(AppError::InvalidCredential("malformed bearer token"));
    }
    Ok(Some(token))
}
