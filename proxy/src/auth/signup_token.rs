//! Signup tokens (the token flow): any other bearer token is a business token, and Graph's
//! `debug_token` answer says what it granted. Answers are cached by a hash of the token (never
//! the token itself): for a short time, never past the token's own expiry, and briefly for
//! invalid tokens too. Concurrent questions about one token make one Graph call. A question
//! the cache cannot answer is charged to the asking client's [`GraphAllowance`] before Graph
//! hears of it, so strangers' made-up tokens cannot spend the partner's Graph budget.

use super::limit::{GraphAllowance, Spend};
use super::{Authenticator, Principal, Verdict, digest};
use crate::error::AppError;
use crate::upstream::{GraphRoute, Upstream};
use moka::Expiry;
use moka::future::Cache;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use waba_graph::{DebugToken, ObjectId, WabaScope};

/// How long an invalid token's answer is kept.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(60);
/// Most tokens cached at once.
pub const MAX_CACHED_TOKENS: u64 = 50_000;

/// What Graph said about a token, and whether the proxy accepts it.
#[derive(Debug)]
pub struct Inspection {
    /// Graph's answer.
    pub debug: DebugToken,
    /// Valid, unexpired, and of the configured app.
    pub usable: bool,
    /// How long to trust this answer.
    ttl: Duration,
}

struct ByInspection;

impl Expiry<[u8; 32], Arc<Inspection>> for ByInspection {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        value: &Arc<Inspection>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Who a token is inspected for: whose allowance a Graph call is charged to.
#[derive(Debug, Clone, Copy)]
pub enum Asker {
    /// A client presenting the token: a cache miss spends its allowance (and the global one).
    Client(IpAddr),
    /// The proxy, about a token Meta just handed over in a code exchange the client was
    /// already charged for.
    Proxy,
}

/// Inspects signup tokens through Graph's `debug_token`.
pub struct TokenInspector {
    upstream: Upstream,
    cache: Cache<[u8; 32], Arc<Inspection>>,
    allowance: Arc<GraphAllowance>,
    app_id: Option<ObjectId>,
    ttl: Duration,
}

impl TokenInspector {
    /// An inspector trusting answers for `ttl` at most, charging misses to `allowance`.
    pub fn new(
        upstream: Upstream,
        allowance: Arc<GraphAllowance>,
        app_id: Option<ObjectId>,
        ttl: Duration,
    ) -> Self {
        Self {
            upstream,
            allowance,
            cache: Cache::builder()
                .max_capacity(MAX_CACHED_TOKENS)
                .expire_after(ByInspection)
                .build(),
            app_id,
            ttl,
        }
    }

    /// Graph's answer about `token`, from the cache when fresh; otherwise charged to `asker`
    /// (429 when its allowance is spent) and asked of Graph.
    pub async fn inspect(&self, token: &str, asker: Asker) -> Result<Arc<Inspection>, AppError> {
        let key = digest(token);
        if let Some(hit) = self.cache.get(&key).await {
            metrics::counter!("waba_cache_hits_total", "cache" => "debug_token").increment(1);
            return Ok(hit);
        }
        metrics::counter!("waba_cache_misses_total", "cache" => "debug_token").increment(1);
        // Concurrent questions about one token wait for one Graph call: only the asker whose
        // question makes the call spends its allowance.
        let fetch = async {
            if let Asker::Client(client) = asker {
                self.allowance.spend(client, Spend::TokenCheck)?;
            }
            self.fetch(token).await
        };
        self.cache
            .try_get_with(key, fetch)
            .await
            .map_err(|e| (*e).clone())
    }

    async fn fetch(&self, token: &str) -> Result<Arc<Inspection>, AppError> {
        let body = self
            .upstream
            .get(
                GraphRoute::DebugToken,
                "debug_token",
                &[("input_token", token.to_owned())],
                &[token],
            )
            .await?;
        let debug: DebugToken = serde_json::from_slice(&body)
            .map_err(|_| AppError::UpstreamGarbage("debug_token answer is not what Graph sends"))?;
        let now = crate::clock::now();
        let data = &debug.data;
        let same_app = match (&self.app_id, &data.app_id) {
            (None, _) => true,
            (Some(want), Some(got)) => want.as_str() == got.0,
            (Some(_), None) => false,
        };
        let usable = data.is_valid && !data.is_expired_at(now) && same_app;
        let ttl = if !usable {
            NEGATIVE_TTL.min(self.ttl)
        } else if data.expires_at == 0 {
            self.ttl
        } else {
            self.ttl.min(Duration::from_secs(
                data.expires_at.saturating_sub(now).max(0) as u64,
            ))
        };
        Ok(Arc::new(Inspection { debug, usable, ttl }))
    }
}

impl Inspection {
    /// The WABAs the token was granted `whatsapp_business_management` on, newest first;
    /// 401 when the token is not usable.
    pub fn granted_wabas(&self) -> Result<Vec<ObjectId>, AppError> {
        if !self.usable {
            return Err(AppError::InvalidCredential(
                "the token is invalid, expired or for another app",
            ));
        }
        self.debug
            .data
            .granted_wabas(WabaScope::Management)
            .map_err(|_| AppError::UpstreamGarbage("malformed granted WABA ids"))
    }
}

/// Any token no other authenticator knows is a signup user's token.
pub struct SignupToken(pub Arc<TokenInspector>);

impl Authenticator for SignupToken {
    fn authenticate<'a>(&'a self, token: &'a str, client: IpAddr) -> Verdict<'a> {
        Box::pin(async move {
            let wabas = self
                .0
                .inspect(token, Asker::Client(client))
                .await?
                .granted_wabas()?;
            Ok(Some(Principal::signup(wabas)))
        })
    }

    fn calls_graph(&self) -> bool {
        true
    }
}
