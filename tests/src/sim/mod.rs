//! graph-sim: a stand-in for the parts of Meta's Graph API that waba-onboard uses.
//!
//! It serves scenario data with Graph's shapes, paging, errors and throttling, takes the
//! writes a partner makes after Embedded Signup (webhook subscriptions, System User
//! assignment, credit sharing, phone registration, coexistence sync), counts the calls it
//! receives, and injects faults on demand. Control endpoints live under `/_sim/`.

pub mod control;
pub mod faults;
pub mod graph;
pub mod meta_js;
pub mod respond;
pub mod scenario;
pub mod state;
pub mod webhooks;

use axum::Router;
use axum::routing::{get, post, put};
use state::SimState;
use std::sync::Arc;

/// The simulator's router: control endpoints under `/_sim/`, Graph everywhere else.
pub fn app(state: Arc<SimState>) -> Router {
    let _ = state.me.set(Arc::downgrade(&state));
    Router::new()
        .route("/_sim/", get(control::overview))
        .route("/_sim", get(control::overview))
        .route("/_sim/healthz", get(control::healthz))
        .route("/_sim/calls", get(control::calls))
        .route("/_sim/reset", post(control::reset))
        .route(
            "/_sim/faults",
            get(control::list_faults)
                .post(control::add_faults)
                .delete(control::clear_faults),
        )
        .route("/_sim/latency", put(control::set_latency))
        .route("/_sim/codes", post(control::mint_code))
        .route("/_sim/share", post(control::share))
        .route("/_sim/unshare", post(control::unshare))
        .route("/_sim/webhooks", put(control::set_webhook_url))
        .route("/_sim/webhooks/send", post(control::send_webhook))
        .route(
            "/_sim/subscribed",
            get(control::subscriptions).post(control::subscribe),
        )
        .route("/_sim/sdk.js", get(meta_js::sdk))
        .route("/_sim/{locale}/sdk.js", get(meta_js::localized_sdk))
        .route("/_sim/sdk-locales", get(meta_js::sdk_locales))
        .route("/_sim/dialog", get(meta_js::dialog))
        .route("/_sim/forge", get(meta_js::forge))
        .route("/_sim/flow", put(meta_js::set_flow))
        .route("/{version}/dialog/oauth", get(meta_js::oauth_dialog))
        // A browser showing the dialog asks for the site's icon: not a Graph call.
        .route(
            "/favicon.ico",
            get(|| async { axum::http::StatusCode::NOT_FOUND }),
        )
        .fallback(graph::handle)
        .with_state(state)
        // Browser tests drive the control endpoints from another origin.
        .layer(tower_http::cors::CorsLayer::permissive())
}
