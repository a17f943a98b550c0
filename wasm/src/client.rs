//! [`WabaClient`]: typed calls to the waba-proxy with a timeout, in the shape of Graph.

use crate::browser::request;
use crate::error::{WabaError, code};
use crate::js::Obj;
use crate::read;
use js_sys::Promise;
pub use waba_graph::status::STATUS_FIELDS;
use waba_graph::{ObjectId, decimal};
use wasm_bindgen::prelude::*;

/// Default client timeout.
pub const DEFAULT_TIMEOUT_MS: u32 = 15_000;

/// An `invalid_argument` error.
pub(crate) fn invalid(message: &str) -> WabaError {
    WabaError::new(code::INVALID_ARGUMENT, message)
}

/// The settings every call needs; cloned into each call's future.
#[derive(Clone)]
pub(crate) struct ProxyConn {
    pub(crate) base: String,
    timeout_ms: u32,
    pub(crate) credential: Option<String>,
}

impl ProxyConn {
    /// `{proxy}/graph/{path}?{query}`.
    pub(crate) fn url(&self, path: &str, query: &[(&str, String)]) -> String {
        let mut url = [&self.base, "/graph/", path].concat();
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(k);
            url.push('=');
            url.push_str(&String::from(js_sys::encode_uri_component(v)));
        }
        url
    }

    /// This connection with another credential.
    pub(crate) fn with(&self, credential: String) -> ProxyConn {
        ProxyConn {
            credential: Some(credential),
            ..self.clone()
        }
    }

    /// Starts a request to `url` (a `POST` of `body` when given); [`ProxyConn::answer`] reads
    /// its answer.
    pub(crate) fn start(&self, url: &str, body: Option<JsValue>) -> Promise {
        request(url, self.credential.clone(), self.timeout_ms, body)
    }

    /// The JSON answer a started request resolved with, or the error it stands for.
    pub(crate) fn answer(&self, answer: JsValue) -> Result<JsValue, WabaError> {
        let answer = Obj::new(answer).ok_or_else(|| self.transport(false))?;
        let Some(status) = answer.int("status") else {
            return Err(self.transport(answer.bool("timedOut") == Some(true)));
        };
        let status = status as u16;
        let retry_after = answer
            .str("retryAfter")
            .and_then(|v| v.trim_ascii().parse().ok());
        let body = answer.get("body");
        if body.is_undefined() {
            let mut message = "the proxy answered HTTP ".to_owned();
            message.push_str(&decimal(status.into()));
            message.push_str(" without JSON");
            return Err(WabaError::new(code::BAD_RESPONSE, message));
        }
        if !(200..300).contains(&status) {
            return Err(WabaError::from_answer(
                status,
                read::error_envelope(body),
                retry_after,
            ));
        }
        Ok(body)
    }

    fn transport(&self, timed_out: bool) -> WabaError {
        let message = if timed_out {
            [
                "the proxy did not answer within ",
                &decimal(self.timeout_ms.into()),
                " ms",
            ]
            .concat()
        } else {
            ["the proxy at ", &self.base, " could not be reached"].concat()
        };
        WabaError::new(
            if timed_out {
                code::TIMEOUT
            } else {
                code::NETWORK
            },
            message,
        )
    }

    /// Starts the read of one WABA with `fields` (a validated field list, [`STATUS_FIELDS`]
    /// for statuses).
    pub(crate) fn start_waba(&self, id: &str, fields: &str) -> Result<Promise, WabaError> {
        let id = ObjectId::parse(id).map_err(|e| invalid(e.message()))?;
        Ok(self.start(
            &self.url(id.as_str(), &[("fields", fields.to_owned())]),
            None,
        ))
    }

    /// Starts `debug_token` for `token` (the console's; the signup page asks for its grant
    /// at `/signup/accounts`).
    #[cfg(feature = "console")]
    pub(crate) fn start_debug_token(&self, token: &str) -> Promise {
        self.start(
            &self.url("debug_token", &[("input_token", token.to_owned())]),
            None,
        )
    }
}

/// Typed calls to the waba-proxy. Every method returns a Promise; failures reject with an
/// `Error` whose `code` says what happened.
#[wasm_bindgen]
pub struct WabaClient {
    pub(crate) conn: ProxyConn,
}

#[wasm_bindgen]
impl WabaClient {
    /// `new WabaClient({proxyUrl, timeoutMs?, credential?})`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "ClientOptions")] options: JsValue,
    ) -> Result<WabaClient, JsValue> {
        let o = Obj::new(options).ok_or_else(|| invalid("WabaClient needs {proxyUrl}"))?;
        let base = o
            .str("proxyUrl")
            .map(|u| u.trim_end_matches('/').to_owned())
            .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
            .ok_or_else(|| invalid("proxyUrl must be an http(s) URL"))?;
        let timeout_ms = o
            .int("timeoutMs")
            .map(|t| t.clamp(1, 600_000) as u32)
            .unwrap_or(DEFAULT_TIMEOUT_MS);
        Ok(WabaClient {
            conn: ProxyConn {
                base,
                timeout_ms,
                credential: o.str("credential"),
            },
        })
    }
}

impl WabaClient {
    /// This client's connection with another credential (for one signup's token).
    pub(crate) fn with_credential(&self, credential: String) -> ProxyConn {
        self.conn.with(credential)
    }
}
