//! The one error type of the proxy, answered in Graph's envelope with an honest status.
//!
//! The proxy's own errors carry `type: "WabaProxyError"`; Graph's errors keep Graph's type,
//! code and message (scrubbed of secrets). Details for operators go to the log, never to the
//! client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use waba_graph::GraphError;
use waba_graph::input::InputError;

/// The `type` of errors the proxy itself raises.
pub const PROXY_ERROR_TYPE: &str = "WabaProxyError";

/// Everything that can go wrong in a request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppError {
    /// A path or parameter is invalid.
    #[error("{0}")]
    BadInput(#[from] InputError),
    /// A request the proxy cannot parse (path syntax, `Host`).
    #[error("{0}")]
    BadRequest(&'static str),
    /// No such route.
    #[error(
        "unknown route: the proxy serves debug_token, WABA nodes, phone numbers and the WABA lists under /graph/"
    )]
    NotFound,
    /// A method other than GET.
    #[error("method not allowed: the proxy only reads (GET)")]
    MethodNotAllowed,
    /// A method the route does not take (the router names the ones it does in `Allow`).
    #[error("method not allowed: the Allow header names the methods this route takes")]
    WrongMethod,
    /// The query string is longer than the proxy accepts.
    #[error("query string too long")]
    UriTooLong,
    /// The posted session message is malformed or oversized.
    #[error("malformed WA_EMBEDDED_SIGNUP event: {0}")]
    BadEvent(#[from] waba_graph::signup::SignupError),
    /// The request body is larger than the proxy accepts.
    #[error("request body too large")]
    PayloadTooLarge,
    /// The request body did not arrive within the request's time.
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    /// No `Authorization: Bearer` credential.
    #[error("an access token is required: send Authorization: Bearer <token>")]
    MissingCredential,
    /// The credential is not valid (unknown, expired, malformed, other app).
    #[error("invalid credential: {0}")]
    InvalidCredential(&'static str),
    /// The credential is valid but not for this.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// The proxy's own rate limit.
    #[error("too many requests: retry after {retry_after} s")]
    RateLimited {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// Meta asked the proxy to stop this kind of call for a while (the throttle gate).
    #[error("Meta is throttling these calls: retry after {retry_after} s")]
    UpstreamThrottled {
        /// Seconds until the gate opens.
        retry_after: u64,
    },
    /// Background work waits: Meta says this object's hourly budget is nearly spent, and
    /// what is left goes to people's requests first.
    #[error(
        "Meta's usage for this object is near its limit: background calls wait {retry_after} s"
    )]
    UsageHold {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// Too many requests in flight.
    #[error("the proxy is at capacity: retry shortly")]
    Overloaded,
    /// Graph answered with an error; `status` is what the client gets.
    #[error("graph error {}: {}", .error.code, .error.message)]
    Graph {
        /// Status for the client.
        status: StatusCode,
        /// Graph's error, scrubbed.
        error: Box<GraphError>,
        /// Seconds to wait, for throttling and transient failures.
        retry_after: Option<u64>,
    },
    /// Graph could not be reached, or closed the connection.
    #[error("Meta's Graph API could not be reached")]
    UpstreamUnavailable,
    /// Graph did not answer in time.
    #[error("Meta's Graph API did not answer in time")]
    UpstreamTimeout,
    /// Graph's answer was not what Graph answers.
    #[error("Meta's Graph API gave an unusable answer: {0}")]
    UpstreamGarbage(&'static str),
    /// The code flow needs settings this proxy was not given.
    #[error(
        "the code flow is not configured on this proxy: it needs the app id, the app secret, a token key and a database"
    )]
    CodeFlowOff,
    /// Meta refused the signup code (expired, used or invalid).
    #[error("{0}")]
    CodeRejected(&'static str),
    /// The request conflicts with work in progress.
    #[error("{0}")]
    Conflict(&'static str),
    /// No such record.
    #[error("no such {0}")]
    NoSuchRecord(&'static str),
    /// Graph refused the partner's System User a client WABA (code 200): it is not assigned
    /// to the WABA, or the app lacks Advanced access to `whatsapp_business_management`.
    #[error(
        "Meta refused the partner's System User access to this WABA (Graph code 200): assign the \
         System User to it (POST /{{waba-id}}/assigned_users?user=<SYSTEM_USER_ID>&tasks=['MANAGE']) \
         and make sure the app has Advanced access to whatsapp_business_management"
    )]
    SystemUserNotAssigned,
    /// The proxy's own configuration is refused by Meta: no retry can succeed until the
    /// operator fixes it.
    #[error("{0}")]
    Misconfigured(&'static str),
    /// Outbound webhooks need the token key, which seals their secrets.
    #[error(
        "outbound webhooks are not configured on this proxy: their signing secrets are kept sealed with the token key, which needs the code flow (--app-id, --app-secret, --token-key)"
    )]
    OutboundOff,
    /// A webhook endpoint URL the proxy will not send to.
    #[error("{0}")]
    BadEndpoint(#[from] crate::outbound::UrlError),
    /// A bug; details are in the log.
    #[error("internal error")]
    Internal,
}

impl AppError {
    /// The HTTP status the client gets.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadInput(_) | Self::BadRequest(_) | Self::BadEvent(_) | Self::BadEndpoint(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed | Self::WrongMethod => StatusCode::METHOD_NOT_ALLOWED,
            Self::UriTooLong => StatusCode::URI_TOO_LONG,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::MissingCredential | Self::InvalidCredential(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::SystemUserNotAssigned => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } | Self::UpstreamThrottled { .. } | Self::UsageHold { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Self::Graph { status, .. } => *status,
            Self::UpstreamUnavailable | Self::UpstreamGarbage(_) => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal | Self::Misconfigured(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::CodeFlowOff | Self::OutboundOff => StatusCode::NOT_IMPLEMENTED,
            Self::CodeRejected(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::NoSuchRecord(_) => StatusCode::NOT_FOUND,
        }
    }

    /// A Graph-like code for the proxy's own errors.
    fn code(&self) -> i64 {
        match self {
            Self::BadInput(_)
            | Self::BadRequest(_)
            | Self::BadEvent(_)
            | Self::BadEndpoint(_)
            | Self::UriTooLong
            | Self::PayloadTooLarge
            | Self::BodyTimeout => 100,
            Self::NotFound | Self::MethodNotAllowed | Self::WrongMethod => 2500,
            Self::MissingCredential => 104,
            Self::InvalidCredential(_) => 190,
            Self::Forbidden(_) | Self::SystemUserNotAssigned => 200,
            Self::RateLimited { .. } => 4,
            Self::UpstreamThrottled { .. } | Self::UsageHold { .. } => 80008,
            Self::Overloaded | Self::UpstreamUnavailable | Self::UpstreamTimeout => 2,
            Self::UpstreamGarbage(_) | Self::Internal | Self::Misconfigured(_) => 1,
            Self::CodeFlowOff | Self::OutboundOff => 3,
            Self::CodeRejected(_) => 100,
            Self::Conflict(_) => 2,
            Self::NoSuchRecord(_) => 100,
            Self::Graph { error, .. } => error.code,
        }
    }

    /// Meta (or the throttle gate on its word) refused to handle the call for now: nothing
    /// was done with it.
    pub fn is_throttling(&self) -> bool {
        match self {
            Self::UpstreamThrottled { .. } => true,
            Self::Graph { error, .. } => error.class() == waba_graph::error::ErrorClass::Throttled,
            _ => false,
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after }
            | Self::UpstreamThrottled { retry_after }
            | Self::UsageHold { retry_after } => Some(*retry_after),
            Self::Overloaded => Some(1),
            Self::Graph { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The envelope's `error` object.
    pub fn graph_error(&self) -> GraphError {
        match self {
            Self::Graph { error, .. } => (**error).clone(),
            other => GraphError {
                message: other.to_string(),
                error_type: PROXY_ERROR_TYPE.into(),
                code: other.code(),
                is_transient: matches!(
                    other,
                    Self::Overloaded | Self::UpstreamUnavailable | Self::UpstreamTimeout
                )
                .then_some(true),
                ..GraphError::default()
            },
        }
    }
}

impl From<waba_graph::IdError> for AppError {
    fn from(e: waba_graph::IdError) -> Self {
        Self::BadInput(InputError::Id(e))
    }
}

impl From<crate::store::StoreError> for AppError {
    /// The store's details go to the log; the client learns only that it failed.
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %e, "database failure");
        Self::Internal
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = waba_graph::ErrorEnvelope {
            error: self.graph_error(),
        };
        let text = serde_json::to_string(&body).unwrap_or_else(|_| {
            r#"{"error":{"message":"internal error","type":"WabaProxyError","code":1}}"#.into()
        });
        let mut res = (self.status(), text).into_response();
        let headers = res.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        if let Some(secs) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if matches!(self, Self::MethodNotAllowed) {
            // RFC 9110 §15.5.6: a 405 names the methods the resource takes.
            headers.insert(header::ALLOW, HeaderValue::from_static("GET"));
        }
        if matches!(self, Self::MissingCredential | Self::InvalidCredential(_)) {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"waba-proxy\""),
            );
        }
        res
    }
}
