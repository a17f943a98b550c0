//! Graph-shaped answers: JSON bodies, error envelopes, and the faulty answers of injection.

use super::faults::FaultAction;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A JSON answer with Graph's content type.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut res = (status, body.to_string()).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    res
}

/// An error of Graph's, to build into an envelope.
#[derive(Debug, Clone)]
pub struct GraphFailure {
    /// HTTP status.
    pub status: StatusCode,
    /// Graph's `type`.
    pub error_type: &'static str,
    /// Graph's `code`.
    pub code: i64,
    /// Graph's `error_subcode`.
    pub subcode: Option<i64>,
    /// Graph's message.
    pub message: String,
    /// `is_transient`.
    pub is_transient: Option<bool>,
    /// Cloud API's `error_data.details` (WhatsApp errors carry it with
    /// `messaging_product: "whatsapp"`).
    pub details: Option<String>,
}

impl GraphFailure {
    /// A `(#100)`-style invalid-parameter error (HTTP 400, `OAuthException`).
    pub fn param(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "OAuthException", 100, message)
    }

    /// Any failure.
    pub fn new(
        status: StatusCode,
        error_type: &'static str,
        code: i64,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            error_type,
            code,
            subcode: None,
            message: message.into(),
            is_transient: None,
            details: None,
        }
    }

    /// A Cloud API error: HTTP 400, `OAuthException`, the message `(#code) title` and
    /// `error_data.details`, as Meta's error-codes page shows them
    /// (<https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes>).
    pub fn whatsapp(code: i64, title: &str, details: &str) -> Self {
        let mut f = Self::new(
            StatusCode::BAD_REQUEST,
            "OAuthException",
            code,
            format!("(#{code}) {title}"),
        );
        f.details = Some(details.to_owned());
        f
    }

    /// With a sub-code.
    pub fn subcode(mut self, subcode: i64) -> Self {
        self.subcode = Some(subcode);
        self
    }

    /// Graph's "object does not exist or no permission" answer.
    pub fn unsupported_get(id: &str) -> Self {
        Self::unsupported("get", id)
    }

    /// Graph's "object does not exist or no permission" answer to a `method` (`get`, `post`,
    /// `delete`) request: code 100, subcode 33.
    pub fn unsupported(method: &str, id: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "GraphMethodException",
            100,
            format!(
                "Unsupported {method} request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api"
            ),
        )
        .subcode(33)
    }

    /// Graph's permissions error: HTTP 403, code 200.
    pub fn permission() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "OAuthException",
            200,
            "(#200) Permissions error",
        )
    }

    /// The answer, with a trace id.
    pub fn into_response_with(self, trace: u64) -> Response {
        let mut error = json!({
            "message": self.message,
            "type": self.error_type,
            "code": self.code,
            "fbtrace_id": format!("A{trace:012x}Sim"),
        });
        if let Some(s) = self.subcode {
            error["error_subcode"] = s.into();
        }
        if let Some(t) = self.is_transient {
            error["is_transient"] = t.into();
        }
        if let Some(d) = self.details {
            error["error_data"] = json!({"messaging_product": "whatsapp", "details": d});
        }
        let mut res = json_response(self.status, &json!({ "error": error }));
        if self.code == 190 || self.code == 104 {
            let value = format!(
                "OAuth \"Facebook Platform\" \"invalid_token\" \"{}\"",
                self.message.replace(['"', '\\'], "")
            );
            if let Ok(v) = HeaderValue::from_str(&value) {
                res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
        }
        res
    }
}

/// The message Graph gives for a throttling code.
pub fn throttle_message(code: i64) -> String {
    match code {
        4 => "(#4) Application request limit reached".into(),
        17 => "(#17) User request limit reached".into(),
        32 => "(#32) Page request limit reached".into(),
        613 => "(#613) Calls to this api have exceeded the rate limit.".into(),
        80008 => "(#80008) There have been too many calls to this WhatsApp Business account. Wait a bit and try again. For more info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting.".into(),
        c => format!("(#{c}) Rate limit reached"),
    }
}

/// The answer a fault injects, or `None` for faults that only shape the normal answer
/// (latency, short pages).
pub fn fault_response(action: &FaultAction, business_id: &str, trace: u64) -> Option<Response> {
    Some(match action {
        FaultAction::Latency { .. }
        | FaultAction::ShortPage { .. }
        | FaultAction::Fields { .. } => return None,
        FaultAction::Error {
            status,
            code,
            subcode,
            message,
            is_transient,
        } => {
            let mut f = GraphFailure::new(
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST),
                "OAuthException",
                *code,
                message
                    .clone()
                    .unwrap_or_else(|| format!("(#{code}) Simulated error")),
            );
            f.subcode = *subcode;
            f.is_transient = *is_transient;
            f.into_response_with(trace)
        }
        FaultAction::Throttle {
            code,
            status,
            minutes,
            app_usage,
        } => {
            let mut f = GraphFailure::new(
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST),
                "OAuthException",
                *code,
                throttle_message(*code),
            );
            f.is_transient = Some(true);
            let mut res = f.into_response_with(trace);
            let usage = json!({ business_id: [{
                "type": "whatsapp_business_management",
                "call_count": 100, "total_cputime": 12, "total_time": 34,
                "estimated_time_to_regain_access": minutes,
            }]});
            if let Ok(v) = HeaderValue::from_str(&usage.to_string()) {
                res.headers_mut().insert("x-business-use-case-usage", v);
            }
            if let Some(pct) = app_usage {
                let app = json!({"call_count": pct, "total_cputime": 12, "total_time": 34});
                if let Ok(v) = HeaderValue::from_str(&app.to_string()) {
                    res.headers_mut().insert("x-app-usage", v);
                }
            }
            res
        }
        FaultAction::ServerError { status } => {
            let mut f = GraphFailure::new(
                StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "OAuthException",
                2,
                "An unexpected error has occurred. Please retry your request later.",
            );
            f.is_transient = Some(true);
            f.into_response_with(trace)
        }
        FaultAction::Malformed => {
            let mut res =
                (StatusCode::OK, "<html><body>Sorry, something went wrong.").into_response();
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=UTF-8"),
            );
            res
        }
        FaultAction::Truncated => {
            let full = r#"{"data":[{"id":"1906385232743451","name":"My WhatsApp Business Account"}],"paging":{"cursors":{"before":"QVFI","after":"QVFJ"}}}"#;
            let half = Bytes::from_static(&full.as_bytes()[..full.len() / 2]);
            // Send half, let it reach the client, then fail the stream: hyper closes the
            // connection short of the promised Content-Length.
            let stream = futures_util::stream::unfold(0u8, move |step| {
                let half = half.clone();
                async move {
                    match step {
                        0 => Some((Ok(half), 1)),
                        1 => {
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            Some((Err(std::io::Error::other("simulated truncation")), 2))
                        }
                        _ => None,
                    }
                }
            });
            let mut res = Response::new(Body::from_stream(stream));
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=UTF-8"),
            );
            res.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(full.len()));
            res
        }
        FaultAction::Drop => {
            let chunks: Vec<Result<Bytes, std::io::Error>> =
                vec![Err(std::io::Error::other("simulated dropped connection"))];
            Response::new(Body::from_stream(futures_util::stream::iter(chunks)))
        }
        FaultAction::Huge { bytes } => {
            let pad = "x".repeat(*bytes);
            json_response(
                StatusCode::OK,
                &json!({"id": "1906385232743451", "name": pad}),
            )
        }
    })
}
