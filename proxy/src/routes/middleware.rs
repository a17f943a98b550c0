//! The middleware every request goes through, in one place: request ids, tracing spans named
//! by route (never by URL: query strings can hold tokens), metrics, catch-panic, a body
//! limit, a deadline for the body to arrive, load shedding above the concurrency limit, and
//! CORS for the configured origins.

use super::RouteLabel;
use crate::config::Config;
use crate::error::AppError;
use axum::Router;
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::DeadlineBody;
use tower_http::trace::TraceLayer;

/// Largest request body accepted (the proxy only serves GET).
pub const MAX_BODY: u64 = 16 * 1024;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Request ids: a per-process prefix and a counter.
#[derive(Clone)]
struct Ids {
    prefix: u64,
    next: Arc<AtomicU64>,
}

impl MakeRequestId for Ids {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{:08x}-{n:06x}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}

/// Wraps `router` in the proxy's middleware.
pub fn apply(router: Router, config: &Config) -> Router {
    let prefix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() ^ u64::from(std::process::id()) << 32)
        .unwrap_or(0)
        & 0xffff_ffff;
    let ids = Ids {
        prefix,
        next: Arc::new(AtomicU64::new(1)),
    };
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &Request<Body>| {
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map(MatchedPath::as_str)
                .unwrap_or("unmatched");
            let id = req
                .headers()
                .get(&REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), route, request_id = id)
        })
        .on_request(())
        .on_response(|res: &Response, latency: Duration, _: &tracing::Span| {
            tracing::info!(
                status = res.status().as_u16(),
                latency_ms = latency.as_millis() as u64,
                "answered"
            );
        });
    // Every body must arrive whole within the request's time, on every route.
    let body_time = config.upstream.request_timeout;
    let mut router = router
        .layer(axum::middleware::map_request(
            move |req: Request| async move {
                req.map(|body| Body::new(DeadlineBody::new(body_time, body)))
            },
        ))
        .layer(axum::middleware::from_fn(count))
        .layer(axum::middleware::from_fn(limit_body))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                    AppError::Overloaded
                }))
                .load_shed()
                .concurrency_limit(config.max_concurrency),
        )
        .layer(CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                tracing::error!("a request handler panicked");
                AppError::Internal.into_response()
            },
        ))
        .layer(trace)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), ids));
    if !config.cors_origins.is_empty() {
        let origins: Vec<HeaderValue> = config
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        router = router.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
                .expose_headers([header::RETRY_AFTER, REQUEST_ID.clone()])
                .max_age(Duration::from_secs(600)),
        );
    }
    router
}

/// One deadline for the whole request, shared by every Graph call it makes (retries stop
/// before it, each call is cut at it), and an answer by then: 504 otherwise. Not for streams.
pub async fn deadline(
    axum::extract::State(timeout): axum::extract::State<Duration>,
    req: Request,
    next: Next,
) -> Response {
    let deadline = Instant::now() + timeout;
    let work = crate::upstream::resilience::DEADLINE.scope(deadline, next.run(req));
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| AppError::UpstreamTimeout.into_response())
}

/// Counts requests by route and status.
async fn count(req: Request, next: Next) -> Response {
    let matched = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let started = Instant::now();
    let res = next.run(req).await;
    let route = res
        .extensions()
        .get::<RouteLabel>()
        .map(|r| r.0.to_owned())
        .or(matched)
        .unwrap_or_else(|| "unmatched".into());
    metrics::counter!("waba_requests_total", "route" => route.clone(), "status" => res.status().as_u16().to_string())
        .increment(1);
    metrics::histogram!("waba_request_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    res
}

/// Refuses bodies above [`MAX_BODY`] with 413 before anything reads them.
async fn limit_body(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Meta batches webhook changes: that one route takes up to 1 MiB.
    let limit = if req.uri().path() == "/webhooks/meta" {
        crate::webhook::MAX_WEBHOOK_BODY as u64
    } else {
        MAX_BODY
    };
    if declared.is_some_and(|n| n > limit) {
        return AppError::PayloadTooLarge.into_response();
    }
    next.run(req).await
}
