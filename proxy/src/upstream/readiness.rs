//! Whether the configuration works: Graph answers and accepts the System User token. The
//! answer is kept a while (longer when ready), and a rejection seen on a real call (code 190)
//! makes the next question check again at once.

use super::{GraphRoute, Upstream};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use waba_graph::{DebugToken, Secret};

/// How long a successful readiness check is reused.
pub const READY_TTL: Duration = Duration::from_secs(30);
/// How long a failed readiness check is reused.
pub const UNREADY_TTL: Duration = Duration::from_secs(5);

/// The cached outcome of the last readiness check.
#[derive(Default)]
pub struct Readiness(Mutex<Option<(Instant, Result<(), String>)>>);

impl Readiness {
    /// Ready, or why not (safe to show: it names no secret).
    pub async fn status(
        &self,
        upstream: &Upstream,
        system_user_token: &Secret,
    ) -> Result<(), String> {
        let mut cached = self.0.lock().await;
        let stale = match &*cached {
            Some((_, Ok(()))) if upstream.health.is_rejected() => true,
            Some((at, Ok(()))) => at.elapsed() >= READY_TTL,
            Some((at, Err(_))) => at.elapsed() >= UNREADY_TTL,
            None => true,
        };
        if stale {
            *cached = Some((Instant::now(), check(upstream, system_user_token).await));
        }
        cached
            .as_ref()
            .map_or_else(|| Err("not checked yet".to_owned()), |(_, r)| r.clone())
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
