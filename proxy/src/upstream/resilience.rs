//! Living under Meta's rate limits: retries of transient failures with exponential backoff and
//! jitter (backon), within the request's deadline and a retry budget shared by all requests;
//! a throttle gate that stops a kind of call while Meta says access is blocked; and the
//! health of the proxy's own credentials (System User token, app id and secret) for `/readyz`.

use super::route::GraphRoute;
use backon::{BackoffBuilder, ExponentialBuilder};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Most retries of one upstream call.
pub const MAX_RETRIES: usize = 3;
/// Retries per second all requests share (with a burst of twice that).
pub const RETRY_BUDGET_PER_SECOND: u32 = 10;

tokio::task_local! {
    /// When the current client request must be answered by.
    pub static DEADLINE: Instant;
}

/// The deadline of the request being served, or `fallback` from now outside one.
pub fn deadline_or(fallback: Duration) -> Instant {
    DEADLINE
        .try_with(|d| *d)
        .unwrap_or_else(|_| Instant::now() + fallback)
}

/// Backoff delays for one call: 200 ms doubling to 2 s, with jitter, at most
/// [`MAX_RETRIES`].
pub fn backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(2))
        .with_factor(2.0)
        .with_max_times(MAX_RETRIES)
        .with_jitter()
        .build()
}

/// Retries all requests may still spend.
pub struct RetryBudget(DefaultDirectRateLimiter);

impl Default for RetryBudget {
    fn default() -> Self {
        let per_second = NonZeroU32::new(RETRY_BUDGET_PER_SECOND).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(RETRY_BUDGET_PER_SECOND * 2).unwrap_or(NonZeroU32::MIN);
        Self(RateLimiter::direct(
            Quota::per_second(per_second).allow_burst(burst),
        ))
    }
}

impl RetryBudget {
    /// Takes one retry from the budget; `false` when it is spent.
    pub fn take(&self) -> bool {
        self.0.check().is_ok()
    }
}

/// How long the whole app stops calling when `X-App-Usage` reaches 100% (Meta gives no
/// estimate for app-level limits): then one call probes again.
pub const APP_BLOCK: Duration = Duration::from_secs(60);

/// A gate closing, told to the other replicas: the route (`None` for the whole app), the
/// object, and how long.
pub type Closing = (Option<GraphRoute>, String, Duration);

/// Kinds of call Meta told the proxy to stop sending, until when; and the whole app.
#[derive(Default)]
pub struct ThrottleGate {
    calls: Mutex<HashMap<(GraphRoute, String), Instant>>,
    app: Mutex<Option<Instant>>,
    /// Where closings made here are told, so other replicas close theirs too.
    announce: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<Closing>>,
}

impl ThrottleGate {
    /// Seconds until `route` on `object` may be called again, if it (or the app) is blocked.
    pub fn blocked_for(&self, route: GraphRoute, object: &str) -> Option<u64> {
        let app = *self.app.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(until) = app.filter(|u| *u > Instant::now()) {
            return Some(until.duration_since(Instant::now()).as_secs().max(1));
        }
        let mut map = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let key = (route, object.to_owned());
        match map.get(&key) {
            Some(until) if *until > Instant::now() => {
                Some(until.duration_since(Instant::now()).as_secs().max(1))
            }
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Blocks `route` on `object` for `secs`, and tells the other replicas.
    pub fn close(&self, route: GraphRoute, object: &str, secs: u64) {
        let wait = Duration::from_secs(secs);
        self.close_for(Some(route), object, wait);
        self.tell((Some(route), object.to_owned(), wait));
    }

    /// Blocks every call of the app for [`APP_BLOCK`], and tells the other replicas.
    pub fn close_app(&self) {
        self.close_for(None, "", APP_BLOCK);
        self.tell((None, String::new(), APP_BLOCK));
    }

    /// Blocks `route` on `object` (every call of the app when `None`) for `wait`: Meta's
    /// answer seen here or by another replica. A shorter wait never reopens a longer one.
    pub fn close_for(&self, route: Option<GraphRoute>, object: &str, wait: Duration) {
        let until = Instant::now() + wait;
        let Some(route) = route else {
            let mut app = self.app.lock().unwrap_or_else(|e| e.into_inner());
            *app = Some(app.map_or(until, |u| u.max(until)));
            tracing::warn!(
                secs = wait.as_secs(),
                "the app reached Meta's rate limit: all calls paused"
            );
            return;
        };
        let mut map = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, until| *until > Instant::now());
        let slot = map.entry((route, object.to_owned())).or_insert(until);
        *slot = (*slot).max(until);
        tracing::warn!(
            route = route.name(),
            object,
            secs = wait.as_secs(),
            "Meta asked to stop these calls: gate closed"
        );
    }

    /// Sends closings made here to `to` (set once, by the wiring that tells other replicas).
    pub fn announce_to(&self, to: tokio::sync::mpsc::UnboundedSender<Closing>) {
        let _ = self.announce.set(to);
    }

    fn tell(&self, closing: Closing) {
        if let Some(to) = self.announce.get() {
            let _ = to.send(closing);
        }
    }
}

/// Whether Meta refused one of the proxy's own credentials, said once in the log.
pub struct CredentialHealth {
    refused: AtomicBool,
    /// What the credential is and how to mend it, for the log.
    what: &'static str,
}

impl CredentialHealth {
    /// The health of the System User token (refused with code 190).
    pub fn system_user_token() -> Self {
        Self {
            refused: AtomicBool::new(false),
            what: "the System User token (invalid or expired, code 190): replace it",
        }
    }

    /// The health of the app id and secret (refused on `oauth/access_token`).
    pub fn app_credentials() -> Self {
        Self {
            refused: AtomicBool::new(false),
            what: "the app id or app secret (--app-id / --app-secret): code exchanges and \
                   webhook signatures cannot work until they are fixed",
        }
    }

    /// Records a refusal; logs only the first one.
    pub fn rejected(&self) {
        if !self.refused.swap(true, Ordering::SeqCst) {
            tracing::error!(
                "Meta rejected {}; /readyz reports unready until a check succeeds",
                self.what
            );
        }
    }

    /// Records that Graph accepted the credential again.
    pub fn accepted(&self) {
        if self.refused.swap(false, Ordering::SeqCst) {
            tracing::info!("Meta accepts {} again", self.what);
        }
    }

    /// Whether the last word was a refusal.
    pub fn is_rejected(&self) -> bool {
        self.refused.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_bounded_and_stops() {
        let delays: Vec<Duration> = backoff().collect();
        assert_eq!(delays.len(), MAX_RETRIES);
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(4)));
    }

    #[test]
    fn gate_opens_after_its_time_and_is_per_object() {
        let g = ThrottleGate::default();
        g.close(GraphRoute::Waba, "1", 60);
        assert!(g.blocked_for(GraphRoute::Waba, "1").is_some_and(|s| s > 50));
        assert_eq!(g.blocked_for(GraphRoute::Waba, "2"), None);
        assert_eq!(g.blocked_for(GraphRoute::PhoneNumbers, "1"), None);
        g.close(GraphRoute::Waba, "3", 0);
        assert_eq!(g.blocked_for(GraphRoute::Waba, "3"), None);
    }

    #[test]
    fn an_app_block_stops_everything() {
        let g = ThrottleGate::default();
        g.close_app();
        assert!(
            g.blocked_for(GraphRoute::DebugToken, "debug_token")
                .is_some_and(|s| s > 50)
        );
        assert!(g.blocked_for(GraphRoute::OwnedWabas, "1").is_some());
    }

    #[test]
    fn budget_runs_out() {
        let b = RetryBudget::default();
        let taken = (0..100).filter(|_| b.take()).count();
        assert!((20..=25).contains(&taken), "{taken}");
    }
}
