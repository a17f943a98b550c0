//! waba-proxy: the sidecar that alone holds the partner's System User token.
//!
//! It forwards an allowlist of Graph reads (`debug_token`, WABA nodes, phone numbers, the
//! client and owned WABA lists) and decides per caller what it may see; it exchanges signup
//! codes, records onboardings, takes Meta's webhooks and tracks newly shared WABAs.
//!
//! Layers only point down: [`routes`] (HTTP only) → [`reads`], [`onboarding`], [`webhook`],
//! [`live`], [`tracker`] → [`auth`], [`upstream`], [`store`] → `waba_graph`. [`AppState`] wires them
//! together and [`app`] builds the router, so tests can call it directly; `main.rs` only
//! reads the configuration and serves.

pub mod auth;
pub mod clock;
pub mod config;
pub mod error;
pub mod live;
pub mod onboarding;
pub mod outbound;
pub mod pipeline;
pub mod reads;
pub mod replicas;
pub mod routes;
pub mod sealing;
pub mod server;
pub mod store;
pub mod tls;
pub mod tracker;
pub mod upstream;
pub mod webhook;

pub use routes::app;
pub use waba_graph as graph;

use auth::admin::AdminToken;
use auth::limit::GraphAllowance;
use auth::session::SessionCredential;
use auth::signup_token::{SignupToken, TokenInspector};
use auth::{Authenticator, Authenticators};
use config::Config;
use error::AppError;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use upstream::Upstream;
use upstream::directory::Directory;
use upstream::scrub::Scrubber;

/// Everything a request may need: the configuration and each layer's services.
pub struct AppState {
    /// The checked configuration.
    pub config: Config,
    /// The Graph client.
    pub upstream: Upstream,
    /// Secret scrubbing.
    pub scrubber: Arc<Scrubber>,
    /// Who is calling.
    pub auth: Authenticators,
    /// `debug_token` with its cache.
    pub tokens: Arc<TokenInspector>,
    /// The partner's WABAs.
    pub directory: Arc<Directory>,
    /// The allowance of Graph calls callers without a known credential can cause.
    pub allowance: Arc<GraphAllowance>,
    /// `/readyz` cache.
    pub readiness: upstream::readiness::Readiness,
    /// `/metrics` rendering.
    pub metrics: PrometheusHandle,
    /// Onboarding records, sessions, the tracker's state and Meta's changes.
    pub store: Arc<dyn store::Store>,
    /// The newly-shared tracker.
    pub tracker: Arc<tracker::Tracker>,
    /// The forwarded Graph reads.
    pub reads: reads::Reads,
    /// Code exchanges and signup reports.
    pub signups: onboarding::Signups,
    /// Meta's webhooks.
    pub inbox: webhook::Inbox,
    /// Changes for open streams.
    pub hub: Arc<live::StatusHub>,
    /// The partner's post-signup steps, when on.
    pub pipeline: Option<Arc<pipeline::Pipeline>>,
    /// The partner's own webhook endpoints and their sender.
    pub outbound: Arc<outbound::Outbound>,
}

/// Why the proxy cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database cannot be opened or migrated.
    #[error("database {path}: {source}")]
    Store {
        /// The file, or the URL without its password.
        path: String,
        /// What failed.
        source: store::StoreError,
    },
    /// The HTTP client cannot be built.
    #[error("{0}")]
    Client(AppError),
}

impl AppState {
    /// State for `config`: opens (and migrates) the database, and on a shared database
    /// starts hearing the other replicas.
    pub async fn new(config: Config) -> Result<Arc<Self>, StartError> {
        let label = config::database_label(&config.database);
        let store_failed = |source| StartError::Store {
            path: label.clone(),
            source,
        };
        let store = store::open(config.database.expose(), &config.postgres)
            .await
            .map_err(store_failed)?;
        tracing::info!(
            database = %label,
            kind = store.kind(),
            "records kept in the database"
        );
        let scrubber = Arc::new(Scrubber::new(config.secrets()));
        let upstream =
            Upstream::new(&config.upstream, scrubber.clone()).map_err(StartError::Client)?;
        let allowance = Arc::new(GraphAllowance::per_minute(
            config.debug_token_per_minute,
            config.debug_token_global_per_minute,
        ));
        let tokens = Arc::new(TokenInspector::new(
            upstream.clone(),
            allowance.clone(),
            config.app_id.clone(),
            config.token_cache,
        ));
        let mut authenticators: Vec<Box<dyn Authenticator>> = Vec::new();
        if let Some(admin) = &config.admin_token {
            authenticators.push(Box::new(AdminToken(admin.clone())));
        }
        authenticators.push(Box::new(SessionCredential(store.clone())));
        authenticators.push(Box::new(SignupToken(tokens.clone())));
        let auth = Authenticators::new(authenticators);
        let newest = store.newest_change().await.map_err(store_failed)?;
        // Stream tickets are signed with a key every replica on the database shares.
        let fresh = sealing::random::<32>().map_err(|_| StartError::Client(AppError::Internal))?;
        let ticket_key = store
            .shared_key("stream_ticket_key".into(), fresh)
            .await
            .map_err(store_failed)?;
        let hub = Arc::new(
            live::StatusHub::new(
                store.clone(),
                ticket_key,
                &config.upstream.system_user_token,
                newest,
            )
            .map_err(StartError::Client)?,
        );
        let code_flow = match (&config.app_id, &config.app_secret, &config.code_flow) {
            (Some(app_id), Some(app_secret), Some(flow)) => Some(onboarding::CodeFlow {
                app_id: app_id.clone(),
                app_secret: app_secret.clone(),
                key: flow.key.clone(),
                session_ttl: flow.session_ttl,
            }),
            _ => None,
        };
        let directory = Arc::new(Directory::new(upstream.clone(), config.business_id.clone()));
        replicas::spawn(store.clone(), upstream.clone(), hub.clone());
        // This process among the replicas on one database (the tracker's lease holder):
        // `$HOSTNAME` (a pod's name), the process id and a random part.
        let replica = format!(
            "{}-{}-{}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "proxy".into()),
            std::process::id(),
            sealing::random::<4>().map(hex::encode).unwrap_or_default()
        );
        let pipeline = config.pipeline.clone().map(|p| {
            Arc::new(pipeline::Pipeline::new(
                store.clone(),
                upstream.clone(),
                hub.clone(),
                p,
                config.code_flow.as_ref().map(|c| c.key.clone()),
                config.upstream.request_timeout,
            ))
        });
        let outbound = Arc::new(outbound::Outbound::new(
            store.clone(),
            config.code_flow.as_ref().map(|c| c.key.clone()),
            config.outbound.clone(),
        ));
        Ok(Arc::new(Self {
            outbound,
            reads: reads::Reads {
                upstream: upstream.clone(),
                directory: directory.clone(),
                tokens: tokens.clone(),
                scrubber: scrubber.clone(),
                business: config.business_id.clone(),
            },
            directory,
            signups: onboarding::Signups {
                store: store.clone(),
                upstream: upstream.clone(),
                tokens: tokens.clone(),
                auth: auth.clone(),
                code_flow,
                allowance: allowance.clone(),
                pipeline: pipeline.clone(),
            },
            inbox: webhook::Inbox {
                app_secret: config.app_secret.clone(),
                verify_token: config.webhook_verify_token.clone(),
                store: store.clone(),
                upstream: upstream.clone(),
                hub: hub.clone(),
                pipeline: pipeline.clone(),
            },
            tracker: Arc::new(tracker::Tracker::new(
                store.clone(),
                upstream.clone(),
                config.business_id.clone(),
                pipeline.clone(),
                replica,
                config.tracker_lease,
            )),
            pipeline,
            hub,
            allowance,
            auth,
            tokens,
            upstream,
            scrubber,
            readiness: upstream::readiness::Readiness::new(
                config.upstream.system_user_token.clone(),
                config.app_id.clone().zip(config.app_secret.clone()),
            ),
            metrics: metrics_handle(),
            store,
            config,
        }))
    }
}

impl AppState {
    /// `/metrics` in Prometheus text: the recorder's metrics, then what Meta last said of
    /// each object's hourly budget.
    pub fn metrics_text(&self) -> String {
        let mut text = self.metrics.render();
        text.push_str(&self.reads.upstream.usage.prometheus_text());
        text
    }

    /// Ready, or why not (safe to show: it names no secret): the database answers (and, when
    /// shared, this replica hears the others), then Graph accepts the proxy's credentials.
    pub async fn ready(&self) -> Result<(), String> {
        let kind = self.store.kind();
        match tokio::time::timeout(Duration::from_secs(2), self.store.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("the {kind} database does not answer: {e}")),
            Err(_) => return Err(format!("the {kind} database did not answer within 2 s")),
        }
        self.readiness.status(&self.upstream).await
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

/// Runs `work` every `every`, the first at once.
fn every<F, Fut>(every: Duration, mut work: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            work().await;
        }
    });
}

/// Spawns the housekeeping of in-memory state: the metrics recorder folds pending histogram
/// samples into its buckets (without it, and without a scrape of `/metrics`, every request
/// would leave samples behind), the rate limiter forgets idle clients, and used codes are
/// pruned.
pub fn spawn_housekeeping(state: &Arc<AppState>) {
    let metrics = state.metrics.clone();
    every(Duration::from_secs(5), move || {
        metrics.run_upkeep();
        std::future::ready(())
    });
    let allowance = state.allowance.clone();
    every(Duration::from_secs(60), move || {
        allowance.forget_idle();
        std::future::ready(())
    });
    // Codes live 30 s at Meta; their hashes are kept an hour to name reuse clearly.
    let store = state.store.clone();
    every(Duration::from_secs(300), move || {
        let store = store.clone();
        async move {
            if let Err(e) = store.prune_codes(clock::now() - 3600).await {
                tracing::warn!(error = %e, "could not prune used codes");
            }
        }
    });
    let outbound = state.outbound.clone();
    every(Duration::from_secs(3600), move || {
        let outbound = outbound.clone();
        async move {
            if let Err(e) = outbound.prune().await {
                tracing::warn!(error = %e, "could not prune delivered webhooks");
            }
        }
    });
}
