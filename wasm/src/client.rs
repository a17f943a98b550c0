//! [`WabaClient`]: typed calls to the waba-proxy with a timeout, in the shape of Graph.

use crate::error::{WabaError, code};
use crate::js::Obj;
use crate::read;
use gloo_net::http::Request;
use js_sys::Promise;
use waba_graph::input::Fields;
use waba_graph::{DebugToken, ObjectId};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

/// Default client timeout.
pub const DEFAULT_TIMEOUT_MS: u32 = 15_000;

pub(crate) fn bad(e: impl std::fmt::Display) -> WabaError {
    WabaError::new(code::INVALID_ARGUMENT, e.to_string())
}

/// The settings every call needs; cloned into each call's future.
#[derive(Clone)]
pub(crate) struct ProxyConn {
    pub(crate) base: String,
    timeout_ms: u32,
    pub(crate) credential: Option<String>,
}

impl ProxyConn {
    /// `GET {proxy}/graph/{path}?{query}`: the JSON answer, or the error it stands for.
    pub(crate) async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<JsValue, WabaError> {
        let mut url = format!("{}/graph/{path}", self.base);
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(k);
            url.push('=');
            url.push_str(&String::from(js_sys::encode_uri_component(v)));
        }
        self.fetch(&url).await
    }

    /// This connection with another credential.
    pub(crate) fn with(&self, credential: String) -> ProxyConn {
        ProxyConn {
            credential: Some(credential),
            ..self.clone()
        }
    }

    /// `GET url` with the credential and the timeout.
    pub(crate) async fn fetch(&self, url: &str) -> Result<JsValue, WabaError> {
        self.send(Request::get(url), None).await
    }

    /// `POST {proxy}{path}` with `body` as JSON (the code exchange).
    pub(crate) async fn post(&self, path: &str, body: &JsValue) -> Result<JsValue, WabaError> {
        let text = js_sys::JSON::stringify(body)
            .map(String::from)
            .map_err(|_| bad("the body cannot be sent as JSON"))?;
        let req = Request::post(&format!("{}{path}", self.base))
            .header("Content-Type", "application/json");
        self.send(req, Some(text)).await
    }

    /// Sends `req` (with `body`) with the credential and the timeout; the JSON answer, or the
    /// error it stands for.
    async fn send(
        &self,
        req: gloo_net::http::RequestBuilder,
        body: Option<String>,
    ) -> Result<JsValue, WabaError> {
        let signal = web_sys::AbortSignal::timeout_with_u32(self.timeout_ms);
        let mut req = req.abort_signal(Some(&signal));
        if let Some(token) = &self.credential {
            req = req.header("Authorization", &format!("Bearer {token}"));
        }
        let sent = match body {
            Some(text) => req.body(text).map_err(|e| self.transport(e))?.send().await,
            None => req.send().await,
        };
        let res = sent.map_err(|e| self.transport(e))?;
        let status = res.status();
        let retry_after = res
            .headers()
            .get("retry-after")
            .and_then(|v| v.trim().parse().ok());
        let text = res.text().await.map_err(|e| self.transport(e))?;
        let body = js_sys::JSON::parse(&text).map_err(|_| {
            WabaError::new(
                code::BAD_RESPONSE,
                format!("the proxy answered HTTP {status} without JSON"),
            )
        })?;
        if !(200..300).contains(&status) {
            return Err(WabaError::from_answer(
                status,
                read::error_envelope(body),
                retry_after,
            ));
        }
        Ok(body)
    }

    fn transport(&self, e: gloo_net::Error) -> WabaError {
        let timed_out = match &e {
            gloo_net::Error::JsError(js) => js.name == "TimeoutError" || js.name == "AbortError",
            _ => false,
        };
        if timed_out {
            WabaError::new(
                code::TIMEOUT,
                format!("the proxy did not answer within {} ms", self.timeout_ms),
            )
        } else {
            WabaError::new(
                code::NETWORK,
                format!("the proxy at {} could not be reached", self.base),
            )
        }
    }

    /// One WABA with `fields` (default: the status fields, phones expanded), as the proxy
    /// sent it.
    pub(crate) async fn waba_js(
        &self,
        id: &str,
        fields: Option<&str>,
    ) -> Result<JsValue, WabaError> {
        let id = ObjectId::parse(id).map_err(bad)?;
        let fields =
            Fields::parse_waba(fields.unwrap_or(waba_graph::status::STATUS_FIELDS)).map_err(bad)?;
        self.get(id.as_str(), &[("fields", fields.to_string())])
            .await
    }

    /// `debug_token` for `token`, as the proxy sent it.
    pub(crate) async fn debug_token_js(&self, token: &str) -> Result<JsValue, WabaError> {
        self.get("debug_token", &[("input_token", token.to_owned())])
            .await
    }

    /// `debug_token` for `token`, read into the model.
    pub(crate) async fn inspect(&self, token: &str) -> Result<DebugToken, WabaError> {
        read::debug_token(self.debug_token_js(token).await?)
    }
}

/// A future as a Promise. One boxed type for every method keeps the wasm small: each
/// distinct future type would otherwise get its own copy of the promise machinery.
pub(crate) type JsFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<JsValue, WabaError>>>>;

pub(crate) fn promise(fut: JsFuture) -> Promise {
    future_to_promise(async move { fut.await.map_err(JsValue::from) })
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
        let o = Obj::new(options).ok_or_else(|| bad("WabaClient needs {proxyUrl}"))?;
        let base = o
            .str("proxyUrl")
            .map(|u| u.trim_end_matches('/').to_owned())
            .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
            .ok_or_else(|| bad("proxyUrl must be an http(s) URL"))?;
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
