//! Errors as JS `Error` objects with a stable `code`, plus `status`, `retryAfter` and
//! `graphCode` when they apply, and a message a person can read.

use wasm_bindgen::JsValue;

/// Stable error codes, as `error.code` in JS.
pub mod code {
    /// The proxy could not be reached.
    pub const NETWORK: &str = "network";
    /// No answer within the client's timeout.
    pub const TIMEOUT: &str = "timeout";
    /// No or invalid credential (HTTP 401).
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// The credential may not see this (HTTP 403).
    pub const FORBIDDEN: &str = "forbidden";
    /// The object does not exist or is not visible (HTTP 404).
    pub const NOT_FOUND: &str = "not_found";
    /// Meta or the proxy is rate limiting; see `retryAfter` (seconds).
    pub const THROTTLED: &str = "throttled";
    /// Graph refused the request; see `graphCode`.
    pub const GRAPH: &str = "graph";
    /// The request was refused as malformed (HTTP 400).
    pub const BAD_REQUEST: &str = "bad_request";
    /// Meta failed or answered garbage (HTTP 502/503).
    pub const UPSTREAM: &str = "upstream";
    /// Meta did not answer in time (HTTP 504).
    pub const UPSTREAM_TIMEOUT: &str = "upstream_timeout";
    /// The proxy's answer was not what it sends.
    pub const BAD_RESPONSE: &str = "bad_response";
    /// The signup result or login response cannot be used.
    pub const INVALID_SIGNUP_RESULT: &str = "invalid_signup_result";
    /// The business did not log in: nothing to onboard.
    pub const SIGNUP_CANCELLED: &str = "signup_cancelled";
    /// Bad arguments from the calling code.
    pub const INVALID_ARGUMENT: &str = "invalid_argument";
}

/// An error bound for JS.
#[derive(Debug, Clone, PartialEq)]
pub struct WabaError {
    /// One of [`code`].
    pub code: &'static str,
    /// What happened, for people.
    pub message: String,
    /// The HTTP status, when an answer came.
    pub status: Option<u16>,
    /// Seconds to wait before retrying.
    pub retry_after: Option<u32>,
    /// Graph's error code, when Graph refused.
    pub graph_code: Option<i64>,
}

impl WabaError {
    /// An error with a code and a message.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            status: None,
            retry_after: None,
            graph_code: None,
        }
    }

    /// The error for a proxy answer with `status` and (maybe) Graph's envelope.
    pub fn from_answer(
        status: u16,
        envelope: Option<waba_graph::GraphError>,
        retry_after: Option<u32>,
    ) -> Self {
        let from_graph = envelope
            .as_ref()
            .is_some_and(|e| e.error_type != "WabaProxyError");
        let code = match status {
            429 => code::THROTTLED,
            401 => code::UNAUTHORIZED,
            403 if !from_graph => code::FORBIDDEN,
            404 if !from_graph => code::NOT_FOUND,
            400 if !from_graph => code::BAD_REQUEST,
            504 => code::UPSTREAM_TIMEOUT,
            _ if from_graph => code::GRAPH,
            502 | 503 => code::UPSTREAM,
            _ => code::BAD_RESPONSE,
        };
        let message = match (&envelope, code) {
            (_, code::THROTTLED) => [
                "Meta is rate limiting these calls; retry in ",
                &waba_graph::decimal(retry_after.unwrap_or(60).into()),
                " s",
            ]
            .concat(),
            (Some(e), _) if !e.message.is_empty() => e.message.clone(),
            _ => [
                "the proxy answered HTTP ",
                &waba_graph::decimal(status.into()),
            ]
            .concat(),
        };
        Self {
            code,
            message,
            status: Some(status),
            retry_after,
            graph_code: envelope.filter(|_| from_graph).map(|e| e.code),
        }
    }
}

impl std::fmt::Display for WabaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl From<WabaError> for JsValue {
    fn from(e: WabaError) -> JsValue {
        let err = js_sys::Error::new(&e.message);
        err.set_name("WabaOnboardError");
        let set = |k: &str, v: JsValue| {
            let _ = js_sys::Reflect::set(&err, &JsValue::from_str(k), &v);
        };
        set("code", e.code.into());
        if let Some(s) = e.status {
            set("status", s.into());
        }
        if let Some(r) = e.retry_after {
            set("retryAfter", r.into());
        }
        if let Some(g) = e.graph_code {
            set("graphCode", (g as f64).into());
        }
        err.into()
    }
}
