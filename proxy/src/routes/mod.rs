//! HTTP only: the one route table, and handlers that extract, call the layer below and
//! answer. Nothing here decides what a caller may see or what Graph is asked beyond
//! translating the request; that lives in `onboarding`, `auth`, `upstream`, `webhook` and
//! `live`.

pub mod admin;
pub mod events;
pub mod extract;
pub mod funnel;
pub mod graph;
pub mod middleware;
pub mod openapi;
pub mod ops;
pub mod outbound;
pub mod signup;
pub mod views;
pub mod webhooks;

use crate::AppState;
use crate::error::AppError;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::routing::{any, get, post};
use std::sync::Arc;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// The route a request was for, as recorded in metrics, when its path alone does not say
/// (every `/graph/...` request matches one route).
#[derive(Debug, Clone, Copy)]
pub struct RouteLabel(pub &'static str);

/// The whole proxy as a router.
pub fn app(state: Arc<AppState>) -> Router {
    // Answers about accounts, records and credentials are never kept by a cache.
    let api = Router::new()
        .route("/graph/{*path}", any(graph::graph))
        .route("/signup/exchange", post(signup::exchange))
        .route("/signup/events", post(signup::report))
        .route("/signup/accounts", get(signup::accounts))
        .route("/admin/onboardings", get(admin::onboardings))
        .route("/admin/onboardings/{id}", get(admin::onboarding))
        .route("/admin/follow-ups", get(admin::follow_ups))
        .route("/admin/onboardings/{id}/offboard", post(admin::offboard))
        .route("/admin/steps/{id}/retry", post(admin::retry_step))
        .route("/admin/phones/{id}/pin", axum::routing::put(admin::set_pin))
        .route("/admin/writes", get(admin::writes))
        .route("/admin/graph-usage", get(admin::graph_usage))
        .route("/admin/funnel", get(funnel::funnel))
        .route("/admin/funnel.csv", get(funnel::funnel_csv))
        .route("/admin/tracker/events", get(admin::share_events))
        .route("/admin/tracker/pass", post(admin::tracker_pass))
        .route("/admin/webhook-event-types", get(outbound::event_types))
        .route(
            "/admin/webhook-endpoints",
            get(outbound::list).post(outbound::create),
        )
        .route(
            "/admin/webhook-endpoints/{id}",
            get(outbound::get)
                .patch(outbound::update)
                .delete(outbound::delete),
        )
        .route(
            "/admin/webhook-endpoints/{id}/secret",
            post(outbound::rotate_secret),
        )
        .route(
            "/admin/webhook-endpoints/{id}/deliveries",
            get(outbound::deliveries),
        )
        .route(
            "/admin/webhook-deliveries/{id}/resend",
            post(outbound::resend),
        )
        .route(
            "/admin/webhook-deliveries/{id}/give-up",
            post(outbound::give_up),
        )
        .route("/events/ticket", post(events::ticket))
        .route("/events/stream", get(events::stream))
        // The bytes actually read, chunked or not; `Content-Length` is refused earlier.
        .layer(DefaultBodyLimit::max(middleware::MAX_BODY as usize))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    let mut router = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(openapi::openapi_json))
        .route(
            "/webhooks/meta",
            get(webhooks::handshake)
                .post(webhooks::receive)
                .layer(DefaultBodyLimit::max(crate::webhook::MAX_WEBHOOK_BODY)),
        )
        .merge(api);
    router = match &state.config.www {
        Some(dir) => router.fallback_service(
            ServeDir::new(dir)
                .append_index_html_on_directories(true)
                .fallback(any(not_found).with_state(())),
        ),
        None => router.fallback(not_found),
    };
    // A known route asked with a method it does not take: Graph's envelope, and the router
    // adds `Allow`.
    let router = router
        .method_not_allowed_fallback(wrong_method)
        .with_state(state.clone());
    middleware::apply(router, &state.config)
}

async fn not_found() -> AppError {
    AppError::NotFound
}

async fn wrong_method() -> AppError {
    AppError::WrongMethod
}

/// The proxy's public base URL: configured, or `http://{Host}`.
pub fn base_url(state: &AppState, headers: &HeaderMap) -> Result<String, AppError> {
    if let Some(url) = &state.config.public_url {
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
