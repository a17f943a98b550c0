//! [`WabaClient`]: typed calls to the waba-proxy with a timeout, in the shape of Graph.

use crate::error::{WabaError, code};
use crate::js::Obj;
use crate::read;
use gloo_net::http::Request;
use js_sys::Promise;
use waba_graph::input::{
    Cursor, Fields, Filtering, Limit, ListEdge, ListQuery, PageCursor, PhoneQuery, Sort,
};
use waba_graph::{DebugToken, ObjectId};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

/// Default client timeout.
pub const DEFAULT_TIMEOUT_MS: u32 = 15_000;

fn bad(e: impl std::fmt::Display) -> WabaError {
    WabaError::new(code::INVALID_ARGUMENT, e.to_string())
}

/// A list query read from JS (`ListQuery` in TypeScript), validated with the model's types.
fn list_query(v: JsValue) -> Result<(ObjectId, ListQuery), WabaError> {
    let q = Obj::new(v).ok_or_else(|| bad("the list query must be an object"))?;
    let business = q
        .id("businessId")
        .map_err(|e| bad(format!("businessId: {e}")))?
        .ok_or_else(|| bad("businessId is required"))?;
    let filtering =
        Filtering::created(q.int("createdAfter"), q.int("createdBefore")).map_err(bad)?;
    let sort = match q.str("sort").as_deref() {
        None => None,
        Some("asc") => Some(Sort::CreationTimeAscending),
        Some("desc") => Some(Sort::CreationTimeDescending),
        Some(other) => Some(Sort::parse(other).map_err(bad)?),
    };
    let cursor = match (q.str("after"), q.str("before")) {
        (Some(_), Some(_)) => return Err(bad("give either after or before, not both")),
        (Some(a), None) => Some(PageCursor::After(Cursor::parse(&a).map_err(bad)?)),
        (None, Some(b)) => Some(PageCursor::Before(Cursor::parse(&b).map_err(bad)?)),
        (None, None) => None,
    };
    let limit = match q.int("limit") {
        Some(n) => Some(
            u8::try_from(n)
                .map_err(|_| bad("limit must be 1 to 100"))
                .and_then(|n| Limit::new(n).map_err(bad))?,
        ),
        None => None,
    };
    Ok((
        business,
        ListQuery {
            fields: q
                .str("fields")
                .as_deref()
                .map(Fields::parse_waba)
                .transpose()
                .map_err(bad)?,
            filtering,
            sort,
            limit,
            cursor,
        },
    ))
}

/// A phone-number query read from JS (`PhoneQuery` in TypeScript), validated by the model's
/// `PhoneQuery` as the proxy validates it.
fn phone_query(v: JsValue) -> Result<PhoneQuery, WabaError> {
    let Some(q) = Obj::new(v) else {
        return Ok(PhoneQuery::default());
    };
    let limit = q.int("limit").map(|n| n.to_string());
    let pairs = [
        ("fields", q.str("fields")),
        ("limit", limit),
        ("after", q.str("after")),
        ("before", q.str("before")),
    ];
    PhoneQuery::from_pairs(pairs.iter().filter_map(|(k, v)| Some((*k, v.as_deref()?)))).map_err(bad)
}

/// The settings every call needs; cloned into each call's future.
#[derive(Clone)]
pub(crate) struct ProxyConn {
    base: String,
    timeout_ms: u32,
    credential: Option<String>,
}

impl ProxyConn {
    /// `GET {proxy}/graph/{path}?{query}`: the JSON answer, or the error it stands for.
    async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<JsValue, WabaError> {
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
    async fn fetch(&self, url: &str) -> Result<JsValue, WabaError> {
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
    async fn debug_token_js(&self, token: &str) -> Result<JsValue, WabaError> {
        self.get("debug_token", &[("input_token", token.to_owned())])
            .await
    }

    /// `debug_token` for `token`, read into the model.
    pub(crate) async fn inspect(&self, token: &str) -> Result<DebugToken, WabaError> {
        read::debug_token(self.debug_token_js(token).await?)
    }
}

/// The proxy's answer as JS gets it. The proxy already re-serialises Graph's answers from the
/// same typed model (known fields only, ids as strings), so the shape is checked, not rebuilt.
fn page(value: JsValue) -> Result<JsValue, WabaError> {
    let data =
        js_sys::Reflect::get(&value, &JsValue::from_str("data")).unwrap_or(JsValue::UNDEFINED);
    if js_sys::Array::is_array(&data) {
        Ok(value)
    } else {
        Err(WabaError::new(
            code::BAD_RESPONSE,
            "the answer is not a page (no data array)",
        ))
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
    conn: ProxyConn,
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

    /// Sets (or clears) the bearer credential: a signup token or the admin token.
    #[wasm_bindgen(js_name = setCredential)]
    pub fn set_credential(&mut self, credential: Option<String>) {
        self.conn.credential = credential;
    }

    /// `GET /graph/debug_token?input_token=...`.
    #[wasm_bindgen(js_name = debugToken, unchecked_return_type = "Promise<DebugToken>")]
    pub fn debug_token(&self, input_token: String) -> Promise {
        let conn = self.conn.clone();
        promise(Box::pin(
            async move { conn.debug_token_js(&input_token).await },
        ))
    }

    /// `GET /graph/{id}?fields=...` (default: the status fields, phones expanded).
    #[wasm_bindgen(unchecked_return_type = "Promise<Waba>")]
    pub fn waba(&self, id: String, fields: Option<String>) -> Promise {
        let conn = self.conn.clone();
        promise(Box::pin(async move {
            conn.waba_js(&id, fields.as_deref()).await
        }))
    }

    /// `GET /graph/{id}/phone_numbers` with `{fields?, limit?, after?, before?}`.
    #[wasm_bindgen(js_name = phoneNumbers, unchecked_return_type = "Promise<Page<PhoneNumber>>")]
    pub fn phone_numbers(
        &self,
        id: String,
        #[wasm_bindgen(unchecked_param_type = "PhoneQuery | undefined")] query: JsValue,
    ) -> Promise {
        let conn = self.conn.clone();
        promise(Box::pin(async move {
            let id = ObjectId::parse(&id).map_err(bad)?;
            let pairs = phone_query(query)?.to_pairs();
            page(conn.get(&format!("{id}/phone_numbers"), &pairs).await?)
        }))
    }

    /// Follows a `paging.next` or `paging.previous` link of an earlier answer. Only links to
    /// this client's proxy are followed (the proxy writes them so), never another host.
    #[wasm_bindgen(js_name = followPage, unchecked_return_type = "Promise<Page<any>>")]
    pub fn follow_page(&self, url: String) -> Promise {
        let conn = self.conn.clone();
        promise(Box::pin(async move {
            let ours = url.strip_prefix(&conn.base).is_some_and(|rest| {
                rest.starts_with("/graph/") && !rest.contains(['#', '\\']) && !rest.contains("..")
            });
            if !ours {
                return Err(bad(
                    "followPage only follows links to this proxy's /graph/ routes",
                ));
            }
            page(conn.fetch(&url).await?)
        }))
    }

    /// `GET /graph/{businessId}/client_whatsapp_business_accounts` (admin credential).
    #[wasm_bindgen(js_name = clientWabas, unchecked_return_type = "Promise<Page<Waba>>")]
    pub fn client_wabas(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ListQuery")] query: JsValue,
    ) -> Promise {
        self.list(ListEdge::Client, query)
    }

    /// `GET /graph/{businessId}/owned_whatsapp_business_accounts` (admin credential).
    #[wasm_bindgen(js_name = ownedWabas, unchecked_return_type = "Promise<Page<Waba>>")]
    pub fn owned_wabas(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ListQuery")] query: JsValue,
    ) -> Promise {
        self.list(ListEdge::Owned, query)
    }
}

impl WabaClient {
    fn list(&self, edge: ListEdge, query: JsValue) -> Promise {
        let conn = self.conn.clone();
        promise(Box::pin(async move {
            let (business, q) = list_query(query)?;
            page(
                conn.get(&format!("{business}/{}", edge.as_str()), &q.to_pairs())
                    .await?,
            )
        }))
    }

    /// This client's connection with another credential (for one signup's token).
    pub(crate) fn with_credential(&self, credential: String) -> ProxyConn {
        self.conn.with(credential)
    }
}
