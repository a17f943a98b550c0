//! The middleware every request goes through, as one layer ([`Front`]) so a request pays for
//! one service and one boxed future rather than a stack of them: a request id, a tracing span
//! named by route (never by URL: query strings can hold tokens) and an access log line,
//! metrics by route and status, catch-panic, a body limit (declared and read), a deadline for
//! the body to arrive, one deadline for the whole API request, load shedding above the
//! concurrency limit (all routes together), and CORS for the configured origins.

use super::RouteLabel;
use crate::config::Config;
use crate::error::AppError;
use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tower::{Layer, Service};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::DeadlineBody;
use tracing::Instrument;

/// Largest request body accepted (the proxy only serves GET).
pub const MAX_BODY: u64 = 16 * 1024;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Routes answered whatever the load: what tells an orchestrator or Prometheus about the
/// proxy must not be shed when it is busiest (a liveness probe shed would restart it).
fn never_shed(route: &str) -> bool {
    matches!(route, "/healthz" | "/readyz" | "/metrics")
}

/// The route a request matched, as metrics and the log name it.
fn route_name(matched: Option<&MatchedPath>) -> &str {
    matched.map_or("unmatched", MatchedPath::as_str)
}

/// Longest request id taken from a client.
const MAX_CLIENT_ID: usize = 64;

/// A client's `X-Request-Id`, when it is 1 to [`MAX_CLIENT_ID`] characters of letters,
/// digits and `.`, `_`, `:`, `-` (anything else gets the proxy's own id).
fn client_request_id(value: &HeaderValue) -> Option<HeaderValue> {
    let bytes = value.as_bytes();
    let fine = !bytes.is_empty()
        && bytes.len() <= MAX_CLIENT_ID
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    fine.then(|| value.clone())
}

/// Routes answered within the request deadline ([`Config::upstream`]'s request timeout):
/// everything that may call Graph or the store on a client's behalf. Not the event stream
/// (it lasts), nor the operations routes and Meta's webhooks.
fn has_deadline(route: &str) -> bool {
    route.starts_with("/graph/")
        || route.starts_with("/signup/")
        || route.starts_with("/admin/")
        || route == "/events/ticket"
}

/// The proxy's one middleware layer, applied to every route and the fallback.
#[derive(Clone)]
pub struct Front {
    shared: Arc<Shared>,
}

/// What every request's pass through [`Front`] shares.
struct Shared {
    /// Request ids: a per-process prefix and a counter.
    id_prefix: u64,
    next_id: AtomicU64,
    /// Requests in flight, all routes together.
    slots: Arc<Semaphore>,
    /// The whole request's time (the body's arrival, and the answer on API routes).
    request_timeout: Duration,
    meters: Meters,
}

impl Front {
    /// The layer for `config`.
    pub fn new(config: &Config) -> Self {
        Self::with_limits(config.max_concurrency, config.upstream.request_timeout)
    }

    /// The layer shedding above `max_concurrency` requests in flight, with `request_timeout`
    /// for a request's body and answer.
    fn with_limits(max_concurrency: usize, request_timeout: Duration) -> Self {
        let id_prefix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() ^ u64::from(std::process::id()) << 32)
            .unwrap_or(0)
            & 0xffff_ffff;
        Self {
            shared: Arc::new(Shared {
                id_prefix,
                next_id: AtomicU64::new(1),
                slots: Arc::new(Semaphore::new(max_concurrency)),
                request_timeout,
                meters: Meters::default(),
            }),
        }
    }
}

impl<S> Layer<S> for Front {
    type Service = FrontService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FrontService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// [`Front`] around one route.
#[derive(Clone)]
pub struct FrontService<S> {
    inner: S,
    shared: Arc<Shared>,
}

/// The boxed future of [`FrontService`].
type Answer = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl<S> Service<Request> for FrontService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Answer {
        let started = Instant::now();
        let shared = self.shared.clone();
        let id = match req.headers().get(&REQUEST_ID).and_then(client_request_id) {
            Some(id) => id,
            None => {
                let id = shared.next_request_id();
                req.headers_mut().insert(REQUEST_ID.clone(), id.clone());
                id
            }
        };
        // The router's own shared text of the route (no copy per request).
        let matched = req.extensions().get::<MatchedPath>().cloned();
        let route = route_name(matched.as_ref());
        let span = tracing::info_span!(
            "request",
            method = %req.method(),
            route,
            request_id = id.to_str().unwrap_or("-"),
        );
        let permit = match (declared_too_large(&req), never_shed(route)) {
            (true, _) => Err(AppError::PayloadTooLarge),
            (false, true) => Ok(None),
            (false, false) => (shared.slots.clone().try_acquire_owned())
                .map(Some)
                .map_err(|_| AppError::Overloaded),
        };
        let work: Result<Answer, AppError> = permit.as_ref().map_err(Clone::clone).map(|_| {
            let timeout = shared.request_timeout;
            let req = req.map(|body| Body::new(DeadlineBody::new(timeout, body)));
            // A handler that panics while its future is made is caught like one that panics
            // while it runs.
            match std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(req))) {
                Ok(future) if has_deadline(route) => {
                    Box::pin(within_deadline(timeout, future)) as Answer
                }
                Ok(future) => Box::pin(future),
                Err(_) => Box::pin(async { Ok(panicked()) }),
            }
        });
        Box::pin(
            async move {
                let mut res = match work {
                    Ok(work) => CatchPanic(work).await.unwrap_or_else(|()| panicked()),
                    Err(refusal) => refusal.into_response(),
                };
                drop(permit);
                if !res.headers().contains_key(&REQUEST_ID) {
                    res.headers_mut().insert(REQUEST_ID.clone(), id);
                }
                let label = res.extensions().get::<RouteLabel>().map(|r| r.0);
                let route = route_name(matched.as_ref());
                let elapsed = started.elapsed();
                shared
                    .meters
                    .record(label.unwrap_or(route), res.status().as_u16(), elapsed);
                let (status, latency_ms) = (res.status().as_u16(), elapsed.as_millis() as u64);
                if status >= 500 {
                    tracing::error!(status, latency_ms, "answered");
                } else {
                    tracing::info!(status, latency_ms, "answered");
                }
                Ok(res)
            }
            .instrument(span),
        )
    }
}

impl Shared {
    /// `{prefix:08x}-{n:06x}`, without the formatting machinery.
    fn next_request_id(&self) -> HeaderValue {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut id = String::with_capacity(24);
        push_hex(&mut id, self.id_prefix, 8);
        id.push('-');
        push_hex(&mut id, n, 6);
        HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("-"))
    }
}

/// `n` in lower-case hex, at least `width` digits.
fn push_hex(out: &mut String, n: u64, width: usize) {
    let digits = (64 - n.leading_zeros() as usize).div_ceil(4).max(width);
    for i in (0..digits).rev() {
        let d = ((n >> (i * 4)) & 0xf) as u8;
        out.push(char::from(if d < 10 { b'0' + d } else { b'a' + d - 10 }));
    }
}

/// Whether the declared body is above what the route takes (413 before anything reads it).
fn declared_too_large(req: &Request) -> bool {
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
    declared.is_some_and(|n| n > limit)
}

/// The answer to a request whose handler panicked.
fn panicked() -> Response {
    tracing::error!("a request handler panicked");
    AppError::Internal.into_response()
}

/// Polls a future, turning a panic into `Err`.
struct CatchPanic(Answer);

impl Future for CatchPanic {
    type Output = Result<Response, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match std::panic::catch_unwind(AssertUnwindSafe(|| self.0.as_mut().poll(cx))) {
            Ok(Poll::Ready(Ok(res))) => Poll::Ready(Ok(res)),
            Ok(Poll::Ready(Err(never))) => match never {},
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

/// One deadline for the whole request, shared by every Graph call it makes (retries stop
/// before it, each call is cut at it), and an answer by then: 504 otherwise.
async fn within_deadline<F>(timeout: Duration, work: F) -> Result<Response, Infallible>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    let deadline = Instant::now() + timeout;
    let work = crate::upstream::resilience::DEADLINE.scope(deadline, work);
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| Ok(AppError::UpstreamTimeout.into_response()))
}

/// Request counters and latency histograms by route and status, their handles kept so a
/// request does not look its labels up in the registry (routes and statuses are few).
#[derive(Default)]
struct Meters(RwLock<HashMap<String, RouteMeters>>);

struct RouteMeters {
    seconds: metrics::Histogram,
    by_status: HashMap<u16, metrics::Counter>,
}

impl Meters {
    fn record(&self, route: &str, status: u16, elapsed: Duration) {
        {
            let known = self.0.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(m) = known.get(route)
                && let Some(counter) = m.by_status.get(&status)
            {
                counter.increment(1);
                m.seconds.record(elapsed.as_secs_f64());
                return;
            }
        }
        let mut known = self.0.write().unwrap_or_else(PoisonError::into_inner);
        let m = known
            .entry(route.to_owned())
            .or_insert_with(|| RouteMeters {
                seconds: metrics::histogram!("waba_request_seconds", "route" => route.to_owned()),
                by_status: HashMap::new(),
            });
        m.by_status
            .entry(status)
            .or_insert_with(|| {
                metrics::counter!("waba_requests_total", "route" => route.to_owned(), "status" => status.to_string())
            })
            .increment(1);
        m.seconds.record(elapsed.as_secs_f64());
    }
}

/// Wraps `router` in the proxy's middleware.
pub fn apply(router: Router, config: &Config) -> Router {
    let mut router = router.layer(Front::new(config));
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use tower::ServiceExt as _;

    fn request(path: &str, id: Option<&str>) -> Request {
        let mut req = Request::builder()
            .uri(path)
            .body(Body::empty())
            .unwrap_or_default();
        if let Some(id) = id.and_then(|i| HeaderValue::from_str(i).ok()) {
            req.headers_mut().insert(REQUEST_ID.clone(), id);
        }
        req
    }

    fn front() -> Front {
        Front::with_limits(4, Duration::from_secs(5))
    }

    #[tokio::test]
    async fn a_panic_while_the_answer_is_made_or_awaited_is_a_500_with_a_request_id() {
        let panics_in_call = tower::service_fn(
            |_: Request| -> std::future::Ready<Result<Response, Infallible>> { panic!("in call") },
        );
        let panics_in_poll = tower::service_fn(|_: Request| async {
            if std::hint::black_box(true) {
                panic!("in poll");
            }
            Ok::<Response, Infallible>(Response::default())
        });
        for res in [
            front()
                .layer(panics_in_call)
                .oneshot(request("/x", None))
                .await,
            front()
                .layer(panics_in_poll)
                .oneshot(request("/x", None))
                .await,
        ] {
            let res = res.unwrap_or_else(|never| match never {});
            assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
            assert!(res.headers().contains_key(&REQUEST_ID));
        }
    }

    #[tokio::test]
    async fn a_client_s_request_id_is_kept_only_when_plain_and_short() {
        let ok = tower::service_fn(|_: Request| async { Ok::<_, Infallible>(Response::default()) });
        let long = "a".repeat(MAX_CLIENT_ID + 1);
        for (sent, kept) in [
            (Some("abc-123_x.y:z"), true),
            (Some(long.as_str()), false),
            (Some("has space"), false),
            (Some("quote\""), false),
            (None, false),
        ] {
            let res = front()
                .layer(ok)
                .oneshot(request("/x", sent))
                .await
                .unwrap_or_else(|never| match never {});
            let got = res.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok());
            let got = got.unwrap_or_default().to_owned();
            assert!(!got.is_empty());
            assert_eq!(Some(got.as_str()) == sent, kept, "{sent:?} -> {got}");
        }
    }
}
