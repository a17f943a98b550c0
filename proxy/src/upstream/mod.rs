//! Everything that talks to Graph: the one HTTP client ([`Upstream`]: keep-alive, timeouts,
//! the System User bearer, bounded reads, Graph's errors turned into [`AppError`]s with honest
//! statuses), living under Meta's limits ([`resilience`]), scrubbing secrets from what comes
//! back ([`scrub`]), and the partner's WABA directory ([`directory`]).

pub mod directory;
pub mod paging;
pub mod readiness;
pub mod resilience;
pub mod route;
pub mod scrub;
pub mod usage;

pub use route::GraphRoute;

use crate::error::AppError;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, USER_AGENT};
use axum::http::{Method, Request, StatusCode, Uri};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use moka::future::Cache;
use resilience::{CredentialHealth, RetryBudget, ThrottleGate};
use scrub::Scrubber;
use std::sync::Arc;
use std::time::{Duration, Instant};
use waba_graph::error::{BusinessUseCaseUsage, ErrorClass, ErrorEnvelope, regain_access_minutes};
use waba_graph::input::GraphVersion;
use waba_graph::{GraphError, Secret};

/// How the proxy reaches Graph.
#[derive(Debug, Clone)]
pub struct Config {
    /// Graph base URL, without a trailing slash.
    pub graph_url: String,
    /// The Graph version every call uses.
    pub graph_version: GraphVersion,
    /// The System User token.
    pub system_user_token: Secret,
    /// Per upstream call.
    pub upstream_timeout: Duration,
    /// Per client request (retries stop before it).
    pub request_timeout: Duration,
    /// Lifetime of shared answers; zero turns sharing off.
    pub cache_ttl: Duration,
}

/// Largest Graph body read; a larger one is refused, not buffered.
pub const MAX_UPSTREAM_BODY: usize = 4 * 1024 * 1024;
/// Most bytes of recent answers kept for identical reads.
pub const MAX_CACHED_BYTES: u64 = 64 * 1024 * 1024;

/// Connections to Graph: HTTP/1.1 kept alive, TLS when the URL says `https`.
type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// `User-Agent` of every Graph call.
const AGENT: &str = concat!("waba-proxy/", env!("CARGO_PKG_VERSION"));

/// The Graph client.
#[derive(Clone)]
pub struct Upstream {
    /// hyper's pooled client itself: Graph's URL is fixed and checked at start-up, so no
    /// per-call URL parsing, redirects or proxies a general-purpose client would add.
    client: Client<Connector, Full<Bytes>>,
    base: String,
    auth: HeaderValue,
    timeout: Duration,
    request_timeout: Duration,
    scrubber: Arc<Scrubber>,
    /// Kinds of call Meta asked to stop.
    pub gate: Arc<ThrottleGate>,
    budget: Arc<RetryBudget>,
    /// Whether Meta rejected the System User token.
    pub health: Arc<CredentialHealth>,
    /// Whether Meta refused the app id or secret.
    pub app_health: Arc<CredentialHealth>,
    /// What Meta says of each object's hourly budget.
    pub usage: Arc<usage::UsageBoard>,
    /// Recent answers by upstream URL, shared by identical concurrent and repeated reads.
    answers: Option<Cache<String, Bytes>>,
}

/// One of the partner's writes to Graph. `Debug` never shows the body (it may hold a PIN).
#[derive(Clone)]
pub struct Write<'a> {
    /// Its kind.
    pub route: GraphRoute,
    /// `POST` or `DELETE`.
    pub method: Method,
    /// The path after the version, built from validated ids.
    pub path: String,
    /// Query parameters (encoded here).
    pub query: Vec<(&'a str, String)>,
    /// A JSON body.
    pub body: Option<serde_json::Value>,
}

impl std::fmt::Debug for Write<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Write")
            .field("route", &self.route)
            .field("method", &self.method)
            .field("path", &self.path)
            .field("body", &self.body.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

/// Who a write is made as.
#[derive(Clone, Copy)]
pub enum Bearer<'a> {
    /// The partner's System User.
    SystemUser,
    /// The business integration token of a code-flow onboarding.
    Business(&'a Secret),
}

/// One failed attempt, with what it tells about retrying.
struct Failure {
    error: AppError,
    /// Graph's HTTP status, when it answered.
    status: Option<u16>,
    /// Seconds Meta says access is blocked for (from `X-Business-Use-Case-Usage`).
    regain_secs: Option<u64>,
    /// `X-App-Usage` says the whole app is at its limit.
    app_blocked: bool,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// A client as `config` says, authenticating as the System User.
    pub fn new(config: &Config, scrubber: Arc<Scrubber>) -> Result<Self, AppError> {
        let timeout = config.upstream_timeout;
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(Duration::from_secs(3).min(timeout)));
        http.set_nodelay(true);
        http.enforce_http(false);
        // A plain-HTTP Graph (the simulator, a local stand-in) needs no roots.
        let https = config.graph_url.starts_with("https://");
        let roots = match https {
            true => crate::tls::Roots::System,
            false => crate::tls::Roots::Nothing,
        };
        let tls = crate::tls::trusted(roots)
            .and_then(|store| match https && store.is_empty() {
                // Every call would fail: say why at start-up instead.
                true => Err(
                    "no trusted certificate in the system's store: install the CA \
                    bundle (Debian's ca-certificates) or point SSL_CERT_FILE at one"
                        .to_owned(),
                ),
                false => crate::tls::client_config(store),
            })
            .map_err(|e| {
                tracing::error!(error = %e, "no TLS configuration for Graph");
                AppError::Misconfigured("no trusted certificates to reach Graph over https")
            })?;
        let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls);
        let connector = match https {
            true => builder.https_only(),
            false => builder.https_or_http(),
        }
        .enable_http1()
        .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", config.system_user_token.expose()))
                .map_err(|_| AppError::Internal)?;
        auth.set_sensitive(true);
        Ok(Self {
            client,
            base: format!("{}/{}", config.graph_url, config.graph_version),
            auth,
            timeout,
            request_timeout: config.request_timeout,
            scrubber,
            gate: Arc::default(),
            budget: Arc::default(),
            health: Arc::new(CredentialHealth::system_user_token()),
            app_health: Arc::new(CredentialHealth::app_credentials()),
            usage: Arc::default(),
            answers: (!config.cache_ttl.is_zero()).then(|| {
                Cache::builder()
                    .time_to_live(config.cache_ttl)
                    .weigher(|k: &String, v: &Bytes| {
                        (k.len() + v.len()).try_into().unwrap_or(u32::MAX)
                    })
                    .max_capacity(MAX_CACHED_BYTES)
                    .support_invalidation_closures()
                    .build()
            }),
        })
    }

    /// Takes one retry from the budget shared with the reads' retries; `false` when it is
    /// spent (the caller waits longer instead of adding to a failing Graph's load).
    pub fn take_retry(&self) -> bool {
        self.budget.take()
    }

    /// Drops every shared answer (what another replica heard meanwhile is unknown).
    pub fn forget_all(&self) {
        if let Some(cache) = &self.answers {
            cache.invalidate_all();
        }
    }

    /// Drops every shared answer about `object` (a WABA Meta just said changed).
    pub fn forget(&self, object: &str) {
        let Some(cache) = &self.answers else { return };
        let prefix_q = format!("{object}?");
        let prefix_s = format!("{object}/");
        let _ = cache.invalidate_entries_if(move |k, _| {
            k.starts_with(&prefix_q) || k.starts_with(&prefix_s)
        });
    }

    /// Like [`Upstream::get`], but identical reads in flight at once make one Graph call, and
    /// an answer is reused for the cache lifetime (`--cache-ttl-ms`). Only for reads the
    /// caller is already authorised for: the key is the upstream URL, the same for everyone.
    pub async fn get_shared(
        &self,
        route: GraphRoute,
        path: &str,
        query: &[(&str, String)],
        extra_secrets: &[&str],
    ) -> Result<Bytes, AppError> {
        let Some(cache) = &self.answers else {
            return self.get(route, path, query, extra_secrets).await;
        };
        // Background work held back must not start a fetch a person's identical read would
        // then share (and be refused with).
        self.usage_hold(route, path)?;
        let key = format!("{path}?{}", encode(query));
        if let Some(hit) = cache.get(&key).await {
            metrics::counter!("waba_cache_hits_total", "cache" => route.name()).increment(1);
            return Ok(hit);
        }
        metrics::counter!("waba_cache_misses_total", "cache" => route.name()).increment(1);
        cache
            .try_get_with(key, self.get(route, path, query, extra_secrets))
            .await
            .map_err(|e| (*e).clone())
    }

    /// `GET {base}/{path}?{query}` as the System User. `path` is built from validated ids
    /// only; `query` values are encoded here. `extra_secrets` are scrubbed from errors.
    ///
    /// Transient failures are retried with backoff while the request's deadline and the shared
    /// retry budget allow; when Meta says access is blocked for a while, the gate closes for
    /// that kind of call and object, and later calls are refused at once.
    pub async fn get(
        &self,
        route: GraphRoute,
        path: &str,
        query: &[(&str, String)],
        extra_secrets: &[&str],
    ) -> Result<Bytes, AppError> {
        let (object, url) = self.prepare(route, path, query)?;
        let deadline = resilience::deadline_or(self.request_timeout);
        let mut delays = resilience::backoff();
        loop {
            let result = self.timed(route, &url, extra_secrets, true).await;
            let failure = match result {
                Ok(body) => return Ok(body),
                Err(f) => f,
            };
            let code = match &failure.error {
                AppError::Graph { error, .. } => error.code.to_string(),
                AppError::UpstreamTimeout => "timeout".into(),
                AppError::UpstreamGarbage(_) => "garbage".into(),
                _ => "unreachable".into(),
            };
            metrics::counter!("waba_upstream_errors_total", "route" => route.name(), "code" => code)
                .increment(1);
            tracing::warn!(route = route.name(), error = %failure.error, "graph call failed");
            if let AppError::Graph { error, .. } = &failure.error
                && error.class() == ErrorClass::InvalidToken
            {
                self.health.rejected();
            }
            if let Some(secs) = failure.regain_secs {
                self.gate.close(route, object, secs);
                return Err(failure.error);
            }
            if failure.app_blocked {
                self.gate.close_app();
                return Err(failure.error);
            }
            let retry = retryable(&failure)
                .then(|| delays.next())
                .flatten()
                .filter(|delay| Instant::now() + *delay < deadline)
                .filter(|_| self.budget.take());
            match retry {
                Some(delay) => {
                    metrics::counter!("waba_upstream_retries_total", "route" => route.name())
                        .increment(1);
                    tokio::time::sleep(delay).await;
                }
                None => return Err(failure.error),
            }
        }
    }

    /// `GET {base}/oauth/access_token?{query}`: the code exchange, or the app access token
    /// readiness asks for. Without the System User's token and never retried, since a signup
    /// code works once. `code` is scrubbed from errors (the app secret is one of the
    /// scrubber's own secrets). A refusal of the app's id or secret is `Misconfigured` and
    /// marks the app's credentials refused for readiness.
    pub async fn oauth_access_token(
        &self,
        query: &[(&str, String)],
        code: &str,
    ) -> Result<Bytes, AppError> {
        let route = GraphRoute::OauthAccessToken;
        let extra_secrets = [code];
        let (object, url) = self.prepare(route, "oauth/access_token", query)?;
        let result = self.timed(route, &url, &extra_secrets, false).await;
        match result {
            Ok(body) => {
                self.app_health.accepted();
                Ok(body)
            }
            Err(f) => {
                if let Some(secs) = f.regain_secs {
                    self.gate.close(route, object, secs);
                }
                match f.error {
                    AppError::Graph { error, .. }
                        if error.class() == ErrorClass::AppCredentials =>
                    {
                        self.app_health.rejected();
                        Err(AppError::Misconfigured(
                            "Meta refused the proxy's app id or app secret: its operator must fix them",
                        ))
                    }
                    other => Err(other),
                }
            }
        }
    }

    /// The object `path` is about (its first segment), once the throttle gate lets calls of
    /// this kind about it through; 429 with the wait otherwise.
    fn check_gate<'p>(&self, route: GraphRoute, path: &'p str) -> Result<&'p str, AppError> {
        let object = path.split('/').next().unwrap_or(path);
        if let Some(secs) = self.gate.blocked_for(route, object) {
            metrics::counter!("waba_gate_refusals_total", "route" => route.name()).increment(1);
            return Err(AppError::UpstreamThrottled { retry_after: secs });
        }
        self.usage_hold(route, path)?;
        Ok(object)
    }

    /// For background work: refused while Meta says `path`'s object's budget is nearly
    /// spent (see [`usage`]).
    fn usage_hold(&self, route: GraphRoute, path: &str) -> Result<(), AppError> {
        if !usage::in_background() {
            return Ok(());
        }
        let object = path.split('/').next().unwrap_or(path);
        match self.usage.hold_for(object) {
            Some(secs) => {
                metrics::counter!("waba_usage_holds_total", "route" => route.name()).increment(1);
                Err(AppError::UsageHold { retry_after: secs })
            }
            None => Ok(()),
        }
    }

    /// The object the call is about and its URL, once the throttle gate lets it through.
    fn prepare<'p>(
        &self,
        route: GraphRoute,
        path: &'p str,
        query: &[(&str, String)],
    ) -> Result<(&'p str, String), AppError> {
        Ok((self.check_gate(route, path)?, self.url(path, query)))
    }

    /// One attempt, its duration recorded by route.
    async fn timed(
        &self,
        route: GraphRoute,
        url: &str,
        extra_secrets: &[&str],
        system_user: bool,
    ) -> Result<Bytes, Failure> {
        let started = Instant::now();
        let result = self.fetch_with(url, extra_secrets, system_user).await;
        metrics::histogram!("waba_upstream_seconds", "route" => route.name())
            .record(started.elapsed().as_secs_f64());
        result.map_err(|mut f| {
            // A client WABA the System User may not read: say why and what to do.
            if matches!(route, GraphRoute::Waba | GraphRoute::PhoneNumbers)
                && matches!(&f.error, AppError::Graph { error, .. } if error.code == 200)
            {
                f.error = AppError::SystemUserNotAssigned;
            }
            f
        })
    }

    /// `{base}/{path}?{query}`, the query encoded.
    fn url(&self, path: &str, query: &[(&str, String)]) -> String {
        let mut url = format!("{}/{path}", self.base);
        if !query.is_empty() {
            url.push('?');
            url.push_str(&encode(query));
        }
        url
    }

    async fn fetch_with(
        &self,
        url: &str,
        extra_secrets: &[&str],
        system_user: bool,
    ) -> Result<Bytes, Failure> {
        let bearer = system_user.then(|| self.auth.clone());
        self.send(Method::GET, url, bearer, None, extra_secrets)
            .await
    }

    /// `method {base}/{path}?{query}` with `body` as JSON, as `bearer`: one of the partner's
    /// own writes (the pipeline's). One attempt, never retried here: the pipeline decides,
    /// since some writes (register) must not be repeated blindly. The throttle gate applies
    /// and closes on Meta's word as for reads. `extra_secrets` (the business token, a PIN)
    /// are scrubbed from errors.
    pub async fn write(
        &self,
        write: &Write<'_>,
        bearer: Bearer<'_>,
        extra_secrets: &[&str],
    ) -> Result<Bytes, AppError> {
        let route = write.route;
        let (object, url) = self.prepare(route, &write.path, &write.query)?;
        let started = Instant::now();
        let body = match &write.body {
            Some(body) => Some(serde_json::to_vec(body).map_err(|_| AppError::Internal)?),
            None => None,
        };
        let auth = self.authorization(bearer)?;
        let result = self
            .send(write.method.clone(), &url, Some(auth), body, extra_secrets)
            .await;
        metrics::histogram!("waba_upstream_seconds", "route" => route.name())
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("waba_graph_writes_total", "route" => route.name()).increment(1);
        result.map_err(|f| {
            if let Some(secs) = f.regain_secs {
                self.gate.close(route, object, secs);
            } else if f.app_blocked {
                self.gate.close_app();
            }
            if let (AppError::Graph { error, .. }, Bearer::SystemUser) = (&f.error, bearer)
                && error.class() == ErrorClass::InvalidToken
            {
                self.health.rejected();
            }
            f.error
        })
    }

    /// `GET {base}/{path}?{query}` as `bearer`, once: a read the pipeline makes with the token
    /// of the step it serves (the System User may not see a client's number). The throttle
    /// gate applies.
    pub async fn get_as(
        &self,
        route: GraphRoute,
        path: &str,
        query: &[(&str, String)],
        bearer: Bearer<'_>,
        extra_secrets: &[&str],
    ) -> Result<Bytes, AppError> {
        let (_, url) = self.prepare(route, path, query)?;
        let auth = self.authorization(bearer)?;
        self.send(Method::GET, &url, Some(auth), None, extra_secrets)
            .await
            .map_err(|f| f.error)
    }

    /// Seconds the throttle gate (or, for background work, Meta's usage) keeps calls of
    /// `route` about `path`'s object back, if it does.
    pub fn gate_closed_for(&self, route: GraphRoute, path: &str) -> Option<u64> {
        self.check_gate(route, path).err().and_then(|e| match e {
            AppError::UpstreamThrottled { retry_after } | AppError::UsageHold { retry_after } => {
                Some(retry_after)
            }
            _ => None,
        })
    }

    /// `bearer`'s `Authorization` header (marked sensitive).
    fn authorization(&self, bearer: Bearer<'_>) -> Result<HeaderValue, AppError> {
        Ok(match bearer {
            Bearer::SystemUser => self.auth.clone(),
            Bearer::Business(token) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                    .map_err(|_| AppError::Internal)?;
                value.set_sensitive(true);
                value
            }
        })
    }

    /// Sends `method url` (with `auth` and a JSON `body`) within the request's deadline and
    /// reads Graph's answer, bounded.
    async fn send(
        &self,
        method: Method,
        url: &str,
        auth: Option<HeaderValue>,
        body: Option<Vec<u8>>,
        extra_secrets: &[&str],
    ) -> Result<Bytes, Failure> {
        let failure = |error: AppError, status: Option<StatusCode>| Failure {
            error,
            status: status.map(|s| s.as_u16()),
            regain_secs: None,
            app_blocked: false,
        };
        // One deadline per client request, shared by every Graph call it makes: no call may
        // outlive it, whatever its own timeout.
        let left =
            resilience::deadline_or(self.request_timeout).saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(failure(AppError::UpstreamTimeout, None));
        }
        let uri = Uri::try_from(url).map_err(|_| failure(AppError::Internal, None))?;
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(USER_AGENT, HeaderValue::from_static(AGENT));
        if let Some(auth) = auth {
            req = req.header(AUTHORIZATION, auth);
        }
        if body.is_some() {
            req = req.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let req = req
            .body(Full::new(body.map(Bytes::from).unwrap_or_default()))
            .map_err(|_| failure(AppError::Internal, None))?;
        let call = async {
            let res = self
                .client
                .request(req)
                .await
                .map_err(|e| failure(transport_error(&e), None))?;
            let (parts, incoming) = res.into_parts();
            let status = parts.status;
            let too_large = || failure(AppError::UpstreamGarbage("answer too large"), Some(status));
            let declared = parts
                .headers
                .get(axum::http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > MAX_UPSTREAM_BODY as u64) {
                return Err(too_large());
            }
            // Bounded as it arrives; an answer in one chunk is kept as is, without a copy.
            let body = Limited::new(incoming, MAX_UPSTREAM_BODY)
                .collect()
                .await
                .map_err(|e| match e.downcast_ref::<LengthLimitError>() {
                    Some(_) => too_large(),
                    None => failure(transport_error(e.as_ref()), Some(status)),
                })?
                .to_bytes();
            Ok((status, parts.headers, body))
        };
        let (status, headers, body) = tokio::time::timeout(self.timeout.min(left), call)
            .await
            .map_err(|_| failure(AppError::UpstreamTimeout, None))??;
        self.usage.record(&headers);
        if status.is_success() {
            return Ok(body);
        }
        let error = self.graph_failure(status, &headers, &body, extra_secrets);
        let throttled = matches!(&error, AppError::Graph { error, .. } if error.class() == ErrorClass::Throttled);
        let regain_secs = throttled.then(|| regain_secs(&headers)).flatten();
        Err(Failure {
            error,
            status: Some(status.as_u16()),
            app_blocked: throttled && regain_secs.is_none() && app_at_limit(&headers),
            regain_secs,
        })
    }

    /// Turns Graph's error answer into the client's error.
    fn graph_failure(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        extra_secrets: &[&str],
    ) -> AppError {
        let Ok(envelope) = serde_json::from_slice::<ErrorEnvelope>(body) else {
            return if status.is_server_error() {
                AppError::UpstreamUnavailable
            } else {
                AppError::UpstreamGarbage("an error without Graph's error envelope")
            };
        };
        let error = self.scrub_error(envelope.error, extra_secrets);
        let (client_status, retry_after) = match error.class() {
            ErrorClass::Throttled => (
                429,
                Some(regain_secs(headers).unwrap_or(resilience::APP_BLOCK.as_secs())),
            ),
            ErrorClass::Transient => (503, Some(5)),
            // Only `oauth_access_token` meets it, and answers with the proxy's own error.
            ErrorClass::AppCredentials => (500, None),
            // Meta refused the proxy's own System User token: not the client's fault.
            ErrorClass::InvalidToken => (502, None),
            ErrorClass::Permission => (403, None),
            ErrorClass::BadRequest if error.error_subcode == Some(33) => (404, None),
            ErrorClass::BadRequest => (400, None),
            ErrorClass::Other => (502, None),
        };
        AppError::Graph {
            status: axum::http::StatusCode::from_u16(client_status)
                .unwrap_or(axum::http::StatusCode::BAD_GATEWAY),
            error: Box::new(error),
            retry_after,
        }
    }

    /// `text` with every configured secret and `extra` replaced.
    pub fn scrub(&self, text: &str, extra: &[&str]) -> String {
        self.scrubber.scrub(text, extra)
    }

    fn scrub_error(&self, mut e: GraphError, extra: &[&str]) -> GraphError {
        let s = |t: &str| self.scrubber.scrub(t, extra);
        e.message = s(&e.message);
        e.error_type = s(&e.error_type);
        e.error_user_title = e.error_user_title.as_deref().map(s);
        e.error_user_msg = e.error_user_msg.as_deref().map(s);
        e.fbtrace_id = e.fbtrace_id.as_deref().map(s);
        e
    }
}

/// A call that did not get Graph's whole answer: a timeout (connecting, or reading) is 504,
/// anything else (refused, reset, broken) 502.
fn transport_error(e: &(dyn std::error::Error + 'static)) -> AppError {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return AppError::UpstreamTimeout;
        }
        cause = c.source();
    }
    AppError::UpstreamUnavailable
}

fn encode(query: &[(&str, String)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in query {
        q.append_pair(k, v);
    }
    q.finish()
}

/// The longest a throttle gate stays closed on Meta's word: an absurd estimate must not shut
/// a kind of call for years.
pub const MAX_REGAIN_SECS: u64 = 24 * 3600;

/// Seconds until Graph accepts calls again, when `X-Business-Use-Case-Usage` says
/// (`estimated_time_to_regain_access`, in minutes, above 0), at most [`MAX_REGAIN_SECS`].
pub fn regain_secs(headers: &HeaderMap) -> Option<u64> {
    let minutes = headers
        .get("x-business-use-case-usage")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| serde_json::from_str::<BusinessUseCaseUsage>(v).ok())
        .map(|u| regain_access_minutes(&u))?;
    (minutes > 0).then_some((u64::from(minutes) * 60).min(MAX_REGAIN_SECS))
}

/// Whether `X-App-Usage` says the app used 100% of any of its budgets.
fn app_at_limit(headers: &HeaderMap) -> bool {
    headers
        .get("x-app-usage")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| serde_json::from_str::<waba_graph::error::UsageEntry>(v).ok())
        .is_some_and(|u| u.call_count.max(u.total_cputime).max(u.total_time) >= 100)
}

/// Whether another attempt may succeed: Meta's transient and throttling codes, 5xx, lost
/// connections and timeouts. Garbage answers and refusals are not retried.
fn retryable(f: &Failure) -> bool {
    match &f.error {
        AppError::UpstreamUnavailable | AppError::UpstreamTimeout => true,
        AppError::Graph { error, .. } => {
            error.is_retryable()
                || f.status.is_some_and(|s| s >= 500) && error.class() != ErrorClass::InvalidToken
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(minutes: u32) -> HeaderMap {
        let mut h = HeaderMap::new();
        let value = format!(
            r#"{{"805021500648488":[{{"type":"whatsapp_business_management","call_count":100,"total_cputime":1,"total_time":1,"estimated_time_to_regain_access":{minutes}}}]}}"#
        );
        h.insert(
            "x-business-use-case-usage",
            HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("")),
        );
        h
    }

    fn config(graph_url: &str) -> Config {
        Config {
            graph_url: graph_url.into(),
            graph_version: GraphVersion::parse("v26.0").expect("a version"),
            system_user_token: Secret::new("EAAtest0000000000000000000000"),
            upstream_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_secs(1),
            cache_ttl: Duration::ZERO,
        }
    }

    #[tokio::test]
    async fn https_and_plain_graph_urls_both_make_clients_whose_failures_are_honest() {
        // Nothing listens on port 1: a refused connection is 502 for TLS and plain alike.
        for url in ["https://127.0.0.1:1", "http://127.0.0.1:1"] {
            let upstream = Upstream::new(&config(url), Arc::default()).expect("a client");
            let err = upstream
                .get(GraphRoute::Waba, "1", &[], &[])
                .await
                .expect_err("nothing listens");
            assert!(
                matches!(err, AppError::UpstreamUnavailable),
                "{url}: {err:?}"
            );
        }
        // A server that accepts and never answers: 504 once the call's time is up.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let url = format!("http://{}", silent.local_addr().expect("an address"));
        let upstream = Upstream::new(&config(&url), Arc::default()).expect("a client");
        let err = upstream
            .get(GraphRoute::Waba, "1", &[], &[])
            .await
            .expect_err("no answer");
        assert!(matches!(err, AppError::UpstreamTimeout), "{err:?}");
    }

    #[test]
    fn meta_s_wait_is_believed_up_to_a_day() {
        assert_eq!(regain_secs(&usage(7)), Some(420));
        assert_eq!(regain_secs(&usage(0)), None);
        assert_eq!(regain_secs(&usage(u32::MAX)), Some(MAX_REGAIN_SECS));
        assert_eq!(regain_secs(&HeaderMap::new()), None);
    }
}
