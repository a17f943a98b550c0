//! The one HTTP client to Graph: keep-alive, timeouts, the System User bearer, bounded
//! reads, and Graph's errors turned into [`AppError`]s with honest statuses.

use crate::error::AppError;
use crate::scrub::Scrubber;
use bytes::{Bytes, BytesMut};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use std::sync::Arc;
use std::time::{Duration, Instant};
use waba_graph::error::{BusinessUseCaseUsage, ErrorClass, ErrorEnvelope, regain_access_minutes};
use waba_graph::{GraphError, Secret};

/// Largest Graph body read; a larger one is refused, not buffered.
pub const MAX_UPSTREAM_BODY: usize = 4 * 1024 * 1024;

/// A Graph route, as named in metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GraphRoute {
    /// `debug_token`.
    DebugToken,
    /// A WABA node.
    Waba,
    /// A WABA's phone numbers.
    PhoneNumbers,
    /// `client_whatsapp_business_accounts`.
    ClientWabas,
    /// `owned_whatsapp_business_accounts`.
    OwnedWabas,
}

impl GraphRoute {
    /// The route's label.
    pub fn name(self) -> &'static str {
        match self {
            Self::DebugToken => "debug_token",
            Self::Waba => "waba",
            Self::PhoneNumbers => "phone_numbers",
            Self::ClientWabas => "client_wabas",
            Self::OwnedWabas => "owned_wabas",
        }
    }
}

/// The Graph client.
#[derive(Clone)]
pub struct Upstream {
    client: reqwest::Client,
    base: String,
    auth: HeaderValue,
    timeout: Duration,
    scrubber: Arc<Scrubber>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// A client for `graph_url`/`version`, authenticating as the System User.
    pub fn new(
        graph_url: &str,
        version: &str,
        token: &Secret,
        timeout: Duration,
        scrubber: Arc<Scrubber>,
    ) -> Result<Self, AppError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3).min(timeout))
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("waba-proxy/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| AppError::Internal)?;
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .map_err(|_| AppError::Internal)?;
        auth.set_sensitive(true);
        Ok(Self {
            client,
            base: format!("{graph_url}/{version}"),
            auth,
            timeout,
            scrubber,
        })
    }

    /// `GET {base}/{path}?{query}` as the System User. `path` is built from validated ids
    /// only; `query` values are encoded here. `extra_secrets` are scrubbed from errors.
    pub async fn get(
        &self,
        route: GraphRoute,
        path: &str,
        query: &[(&str, String)],
        extra_secrets: &[&str],
    ) -> Result<Bytes, AppError> {
        let mut url = format!("{}/{path}", self.base);
        if !query.is_empty() {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (k, v) in query {
                q.append_pair(k, v);
            }
            url.push('?');
            url.push_str(&q.finish());
        }
        let started = Instant::now();
        let result = self.fetch(&url, extra_secrets).await;
        metrics::histogram!("waba_upstream_seconds", "route" => route.name())
            .record(started.elapsed().as_secs_f64());
        if let Err(e) = &result {
            let code = match e {
                AppError::Graph { error, .. } => error.code.to_string(),
                AppError::UpstreamTimeout => "timeout".into(),
                AppError::UpstreamGarbage(_) => "garbage".into(),
                _ => "unreachable".into(),
            };
            metrics::counter!("waba_upstream_errors_total", "route" => route.name(), "code" => code)
                .increment(1);
            tracing::warn!(route = route.name(), error = %e, "graph call failed");
        }
        result
    }

    async fn fetch(&self, url: &str, extra_secrets: &[&str]) -> Result<Bytes, AppError> {
        let send = self
            .client
            .get(url)
            .header(AUTHORIZATION, self.auth.clone())
            .timeout(self.timeout)
            .send();
        let mut res = send.await.map_err(transport_error)?;
        let status = res.status();
        let headers = res.headers().clone();
        let mut body = BytesMut::new();
        while let Some(chunk) = res.chunk().await.map_err(transport_error)? {
            if body.len() + chunk.len() > MAX_UPSTREAM_BODY {
                return Err(AppError::UpstreamGarbage("answer too large"));
            }
            body.extend_from_slice(&chunk);
        }
        let body = body.freeze();
        if status.is_success() {
            return Ok(body);
        }
        Err(self.graph_failure(status, &headers, &body, extra_secrets))
    }

    /// Turns Graph's error answer into the client's error.
    fn graph_failure(
        &self,
        status: reqwest::StatusCode,
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
            ErrorClass::Throttled => (429, Some(retry_after_secs(headers))),
            ErrorClass::Transient => (503, Some(5)),
            // Meta refused the proxy's own System User token: not the client's fault.
            ErrorClass::InvalidToken => (502, None),
            ErrorClass::Permission => (403, None),
            ErrorClass::BadRequest if error.error_subcode == Some(33) => (404, None),
            ErrorClass::BadRequest => (400, None),
            ErrorClass::Other => (502, None),
        };
        if error.class() == ErrorClass::InvalidToken {
            tracing::error!(code = error.code, "Meta rejected the System User token");
        }
        AppError::Graph {
            status: axum::http::StatusCode::from_u16(client_status)
                .unwrap_or(axum::http::StatusCode::BAD_GATEWAY),
            error: Box::new(error),
            retry_after,
        }
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

fn transport_error(e: reqwest::Error) -> AppError {
    if e.is_timeout() {
        AppError::UpstreamTimeout
    } else {
        AppError::UpstreamUnavailable
    }
}

/// Seconds until Graph accepts calls again, from `X-Business-Use-Case-Usage`
/// (`estimated_time_to_regain_access`, in minutes); 60 when Graph does not say.
pub fn retry_after_secs(headers: &HeaderMap) -> u64 {
    let minutes = headers
        .get("x-business-use-case-usage")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| serde_json::from_str::<BusinessUseCaseUsage>(v).ok())
        .map(|u| regain_access_minutes(&u))
        .unwrap_or(0);
    if minutes > 0 {
        u64::from(minutes) * 60
    } else {
        60
    }
}
