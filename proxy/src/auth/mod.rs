//! Who is calling, and what they may see.
//!
//! A bearer token is offered to each [`Authenticator`] in turn; the first that recognises it
//! decides: the admin token ([`admin`]), code-flow session credentials ([`session`]), then
//! signup tokens checked with `debug_token` ([`signup_token`]). New kinds of credential are
//! new authenticators, not new branches.

pub mod admin;
pub mod limit;
pub mod session;
pub mod signup_token;

use crate::error::AppError;
use futures_util::future::BoxFuture;
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::sync::Arc;
use waba_graph::ObjectId;

/// SHA-256 of a secret string: how credentials and codes are looked up and cached, so the
/// secret itself is never kept.
pub fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

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
    /// The principal of a signup credential granted `wabas`.
    pub fn signup(wabas: Vec<ObjectId>) -> Self {
        Self::Signup(Arc::new(SignupGrant { wabas }))
    }

    /// Whether a signup principal was granted `waba`. Admins are checked against the
    /// partner's WABA directory by the caller.
    pub fn signup_may_read(&self, waba: &ObjectId) -> bool {
        match self {
            Principal::Admin => false,
            Principal::Signup(grant) => grant.wabas.contains(waba),
        }
    }
}

/// What an authenticator says of a token: `Ok(Some(_))` when the token is its kind's and
/// valid, `Ok(None)` when it is not its kind's, `Err` when it is its kind's and refused.
pub type Verdict<'a> = BoxFuture<'a, Result<Option<Principal>, AppError>>;

/// One kind of credential.
pub trait Authenticator: Send + Sync {
    /// `Ok(Some(_))` when the token is this kind's and valid, `Ok(None)` when it is not this
    /// kind's (the next authenticator tries), `Err` when it is this kind's and refused.
    /// `client` is the caller's address: an authenticator that asks Graph charges the call to
    /// its allowance.
    fn authenticate<'a>(&'a self, token: &'a str, client: IpAddr) -> Verdict<'a>;

    /// Whether deciding may cost a Graph call.
    fn calls_graph(&self) -> bool;
}

/// The authenticators, tried in order.
#[derive(Clone)]
pub struct Authenticators(Arc<Vec<Box<dyn Authenticator>>>);

impl Authenticators {
    /// Tries `list` in order.
    pub fn new(list: Vec<Box<dyn Authenticator>>) -> Self {
        Self(Arc::new(list))
    }

    /// The principal of `client`'s `token`; 401 when nobody knows it, 429 when finding out
    /// would need a Graph call beyond the client's allowance.
    pub async fn resolve(&self, token: &str, client: IpAddr) -> Result<Principal, AppError> {
        for a in self.0.iter() {
            if let Some(p) = a.authenticate(token, client).await? {
                return Ok(p);
            }
        }
        Err(AppError::InvalidCredential("unknown token"))
    }

    /// The caller's principal among the authenticators that decide without calling Graph;
    /// `None` when none of them knows the token. Routes only an admin may use ask this, so a
    /// stranger's token costs no Graph call.
    pub async fn resolve_local(&self, token: &str) -> Result<Option<Principal>, AppError> {
        let nobody = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
        for a in self.0.iter().filter(|a| !a.calls_graph()) {
            if let Some(p) = a.authenticate(token, nobody).await? {
                return Ok(Some(p));
            }
        }
        Ok(None)
    }
}
