//! Whether the configuration works: Graph answers and accepts the System User token, and,
//! when the app id and secret are configured, accepts them too (an app access token is asked
//! for, `oauth/access_token?grant_type=client_credentials`, as Meta documents at
//! <https://developers.facebook.com/docs/facebook-login/guides/access-tokens>; a wrong secret
//! would fail every code exchange and every webhook signature). The answer is kept a while
//! (longer when ready), and a refusal seen on a real call makes the next question check again
//! at once.

use super::{GraphRoute, Upstream};
use crate::error::AppError;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use waba_graph::{DebugToken, ObjectId, Secret};

/// How long a successful readiness check is reused.
pub const READY_TTL: Duration = Duration::from_secs(30);
/// How long a failed readiness check is reused.
pub const UNREADY_TTL: Duration = Duration::from_secs(5);

/// The outcome of a check and when it was made.
type Outcome = (Instant, Result<(), String>);

/// The proxy's own credentials, checked with Graph, and the cached outcome of the last check.
pub struct Readiness {
    system_user_token: Secret,
    app: Option<(ObjectId, Secret)>,
    /// Held while a check runs: one check at a time.
    checking: Mutex<()>,
    last: std::sync::Mutex<Option<Outcome>>,
}

impl Readiness {
    /// Checks `system_user_token`, and `app` (id and secret) when configured.
    pub fn new(system_user_token: Secret, app: Option<(ObjectId, Secret)>) -> Self {
        Self {
            system_user_token,
            app,
            checking: Mutex::new(()),
            last: std::sync::Mutex::new(None),
        }
    }

    fn last(&self) -> Option<Outcome> {
        self.last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Ready, or why not (safe to show: it names no secret). While a check runs, others get
    /// the last outcome at once instead of queueing behind Graph.
    pub async fn status(&self, upstream: &Upstream) -> Result<(), String> {
        let refused = upstream.health.is_rejected() || upstream.app_health.is_rejected();
        let fresh = |last: &Option<Outcome>| match last {
            Some((_, Ok(()))) if refused => false,
            Some((at, Ok(()))) => at.elapsed() < READY_TTL,
            Some((at, Err(_))) => at.elapsed() < UNREADY_TTL,
            None => false,
        };
        let last = self.last();
        if fresh(&last) {
            return last.map_or(Ok(()), |(_, r)| r);
        }
        let _checking = match (self.checking.try_lock(), last) {
            (Ok(guard), _) => guard,
            (Err(_), Some((_, r))) => return r,
            // The very first check is running: wait for it.
            (Err(_), None) => {
                let _ = self.checking.lock().await;
                return self
                    .last()
                    .map_or_else(|| Err("not checked yet".to_owned()), |(_, r)| r);
            }
        };
        let outcome = match check(upstream, &self.system_user_token).await {
            Ok(()) => self.check_app(upstream).await,
            refused => refused,
        };
        *self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((Instant::now(), outcome.clone()));
        outcome
    }

    /// Whether Graph hands the app an app access token for its id and secret.
    async fn check_app(&self, upstream: &Upstream) -> Result<(), String> {
        let Some((id, secret)) = &self.app else {
            return Ok(());
        };
        let query = [
            ("client_id", id.to_string()),
            ("client_secret", secret.expose().to_owned()),
            ("grant_type", "client_credentials".to_owned()),
        ];
        match upstream.oauth_access_token(&query, "").await {
            Ok(_) => Ok(()),
            Err(AppError::Misconfigured(_)) => Err(
                "Meta refused the app id or app secret (--app-id / --app-secret): code exchanges \
                 and webhook signatures cannot work"
                    .into(),
            ),
            // Throttled is no verdict on the credentials.
            Err(e) if e.is_throttling() => Ok(()),
            Err(e) => Err(format!("Graph check of the app credentials failed: {e}")),
        }
    }
}

async fn check(upstream: &Upstream, system_user_token: &Secret) -> Result<(), String> {
    let body = upstream
        .get(
            GraphRoute::DebugToken,
            "debug_token",
            &[("input_token", system_user_token.expose().to_owned())],
            &[],
        )
        .await
        .map_err(|e| format!("Graph check failed: {e}"))?;
    let info: DebugToken = serde_json::from_slice(&body)
        .map_err(|_| "Graph's debug_token answer is unreadable".to_owned())?;
    if info.data.is_valid {
        upstream.health.accepted();
        Ok(())
    } else {
        upstream.health.rejected();
        Err("Meta says the System User token is invalid or expired".into())
    }
}
