//! waba-proxy: the sidecar that alone holds the partner's System User token.
//!
//! It forwards an allowlist of Graph reads (`debug_token`, WABA nodes, phone numbers, the
//! client and owned WABA lists) and decides per caller what it may see. [`app`] builds the
//! router so tests can call it directly; `main.rs` only reads the configuration and serves.

pub mod admin_routes;
pub mod auth;
pub mod clock;
pub mod config;
pub mod directory;
pub mod error;
pub mod graph_routes;
pub mod live;
pub mod middleware;
pub mod ops;
pub mod paging;
pub mod resilience;
pub mod scrub;
pub mod sealing;
pub mod session;
pub mod signup_routes;
pub mod store;
pub mod tokens;
pub mod tracker;
pub mod upstream;
pub mod webhook;

use auth::{AdminToken, Authenticator, Authenticators, SignupToken};
use axum::Router;
use axum::http::{HeaderMap, header};
use axum::routing::{get, post};
use config::Config;
use error::AppError;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use scrub::Scrubber;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, OnceLock};
use tower_http::services::ServeDir;

pub use waba_graph as graph;

/// Everything a request may need.
pub struct AppState {
    /// The checked configuration.
    pub config: Config,
    /// The Graph client.
    pub upstream: upstream::Upstream,
    /// Secret scrubbing.
    pub scrubber: Arc<Scrubber>,
    /// Who is calling.
    pub auth: Authenticators,
    /// `debug_token` with its cache.
    pub tokens: Arc<tokens::TokenInspector>,
    /// The partner's WABAs.
    pub directory: Arc<directory::Directory>,
    /// Per-client limit on public `debug_token` calls.
    pub debug_token_limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    /// `/readyz` cache.
    pub readiness: ops::Readiness,
    /// `/metrics` rendering.
    pub metrics: PrometheusHandle,
    /// Onboarding records, sessions and the tracker's state.
    pub store: Arc<dyn store::Store>,
    /// The newly-shared tracker.
    pub tracker: Arc<tracker::Tracker>,
    /// The code flow, when configured.
    pub code_flow: Option<config::CodeFlowConfig>,
    /// Webhook changes for open streams.
    pub live: live::Live,
}

/// Why the proxy cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database cannot be opened or migrated.
    #[error("database {path}: {source}")]
    Store {
        /// The file.
        path: String,
        /// What failed.
        source: store::StoreError,
    },
    /// The HTTP client cannot be built.
    #[error("{0}")]
    Client(AppError),
}

impl AppState {
    /// State for `config`.
    pub fn new(config: Config) -> Result<Arc<Self>, StartError> {
        let store: Arc<dyn store::Store> = Arc::new(
            store::SqliteStore::open(&config.database).map_err(|source| StartError::Store {
                path: config.database.display().to_string(),
                source,
            })?,
        );
        let scrubber = Arc::new(Scrubber::new(config.secrets()));
        let upstream = upstream::Upstream::new(
            &config.graph_url,
            &config.graph_version,
            &config.system_user_token,
            config.upstream_timeout,
            config.request_timeout,
            config.cache_ttl,
            scrubber.clone(),
        )
        .map_err(StartError::Client)?;
        let tokens = Arc::new(tokens::TokenInspector::new(
            upstream.clone(),
            config.app_id.clone(),
            config.token_cache,
        ));
        let mut authenticators: Vec<Box<dyn Authenticator>> = Vec::new();
        if let Some(admin) = &config.admin_token {
            authenticators.push(Box::new(AdminToken(admin.clone())));
        }
        authenticators.push(Box::new(session::SessionCredential(store.clone())));
        authenticators.push(Box::new(SignupToken(tokens.clone())));
        let per_minute = NonZeroU32::new(config.debug_token_per_minute).unwrap_or(NonZeroU32::MIN);
        Ok(Arc::new(Self {
            directory: Arc::new(directory::Directory::new(
                upstream.clone(),
                config.business_id.clone(),
            )),
            debug_token_limiter: Arc::new(RateLimiter::keyed(Quota::per_minute(per_minute))),
            auth: Authenticators::new(authenticators),
            tokens,
            upstream: upstream.clone(),
            scrubber,
            readiness: ops::Readiness::default(),
            metrics: metrics_handle(),
            tracker: Arc::new(tracker::Tracker::new(
                store.clone(),
                upstream.clone(),
                config.business_id.clone(),
            )),
            store,
            code_flow: config.code_flow.clone(),
            live: live::Live::new().map_err(StartError::Client)?,
            config,
        }))
    }

    /// Counts a call that costs Graph calls for an unauthenticated client (`debug_token`, the
    /// code exchange, signup reports) against its address's per-minute allowance.
    pub fn limit_client(&self, client: IpAddr) -> Result<(), AppError> {
        self.debug_token_limiter
            .check_key(&client)
            .map_err(|not_until| AppError::RateLimited {
                retry_after: not_until
                    .wait_time_from(governor::clock::Clock::now(
                        &governor::clock::DefaultClock::default(),
                    ))
                    .as_secs()
                    .max(1),
            })
    }

    /// A JSON answer from a model value, scrubbed of secrets.
    pub fn respond<T: serde::Serialize>(
        &self,
        value: &T,
        extra: &[&str],
    ) -> Result<String, AppError> {
        let text = serde_json::to_string(value).map_err(|_| AppError::Internal)?;
        Ok(self.scrubber.scrub(&text, extra))
    }

    /// The proxy's public base URL: configured, or `http://{Host}`.
    pub fn base_url(&self, headers: &HeaderMap) -> Result<String, AppError> {
        if let Some(url) = &self.config.public_url {
            return Ok(url.clone());
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| {
                !h.is_empty()
                    && h.len() <= 255
                    && h.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                    })
            })
            .ok_or(AppError::BadRequest("missing or malformed Host header"))?;
        Ok(format!("http://{host}"))
    }
}

/// The process-wide Prometheus recorder (installed once).
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ])
                .map(PrometheusBuilder::build_recorder)
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            // Another recorder may already be installed (tests); rendering still works.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// The whole proxy as a router.
pub fn app(state: Arc<AppState>) -> Router {
    let mut router = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/graph/{*path}", axum::routing::any(graph_routes::graph))
        .route("/signup/exchange", post(signup_routes::exchange))
        .route("/signup/events", post(signup_routes::report))
        .route("/admin/onboardings", get(admin_routes::onboardings))
        .route("/admin/onboardings/{id}", get(admin_routes::onboarding))
        .route("/admin/follow-ups", get(admin_routes::follow_ups))
        .route("/admin/tracker/events", get(admin_routes::share_events))
        .route("/admin/tracker/pass", post(admin_routes::tracker_pass))
        .route("/webhooks/meta", get(live::handshake).post(live::receive))
        .route("/events/ticket", post(live::ticket))
        .route("/events/stream", get(live::stream));
    router = match &state.config.www {
        Some(dir) => router.fallback_service(
            ServeDir::new(dir)
                .append_index_html_on_directories(true)
                .fallback(axum::routing::any(not_found).with_state(())),
        ),
        None => router.fallback(not_found),
    };
    let router = router.with_state(state.clone());
    middleware::apply(router, &state.config)
}

async fn not_found() -> AppError {
    AppError::NotFound
}

/// Spawns the housekeeping of in-memory state: the rate limiter forgets idle clients, and
/// the metrics recorder folds pending histogram samples into its buckets (without it, and
/// without a scrape of `/metrics`, every request would leave samples behind).
pub fn spawn_housekeeping(state: &Arc<AppState>) {
    let metrics = state.metrics.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tick.tick().await;
            metrics.run_upkeep();
        }
    });
    let limiter = state.debug_token_limiter.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    });
    // Codes live 30 s at Meta; their hashes are kept an hour to name reuse clearly.
    let store = state.store.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(300));
        loop {
            tick.tick().await;
            let store = store.clone();
            let before = clock::now() - 3600;
            let pruned = tokio::task::spawn_blocking(move || store.prune_codes(before)).await;
            if let Ok(Err(e)) = pruned {
                tracing::warn!(error = %e, "could not prune used codes");
            }
        }
    });
}
