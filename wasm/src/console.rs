//! The console's entry point (`waba-onboard/console`, built with the `console` feature): the
//! signup page's API plus what only the partner console and Graph clients use: the proxy's
//! list, phone and paging reads, `debugToken`, `waba` and `setCredential` on [`WabaClient`],
//! the signup parsers on their own, `accountStatus`, `grantedWabaIds` and `isTrustedOrigin`.
//! The signup page's module carries none of it.

use crate::client::{ProxyConn, STATUS_FIELDS, WabaClient};
use crate::error::{WabaError, code};
use crate::js::{Obj, Out};
use crate::signup::{login_outcome, session_fields, session_message, signup_js};
use crate::{error, js::string_array, onboard::account_js, read};
use js_sys::Promise;
use waba_graph::input::{
    Cursor, Fields, Filtering, Limit, ListEdge, ListQuery, PageCursor, PhoneQuery, Sort,
};
use waba_graph::signup::SignupResult;
use waba_graph::status::AccountStatus;
use waba_graph::{DebugToken, ObjectId, WabaScope};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise};

fn bad(e: impl std::fmt::Display) -> WabaError {
    WabaError::new(code::INVALID_ARGUMENT, e.to_string())
}

/// A call's future. One boxed type for every method keeps the wasm small: each distinct
/// future type would otherwise get its own copy of the promise machinery.
type Call = std::pin::Pin<Box<dyn std::future::Future<Output = Result<JsValue, WabaError>>>>;

/// A call as a Promise.
fn promise(fut: Call) -> Promise {
    future_to_promise(async move { fut.await.map_err(JsValue::from) })
}

impl ProxyConn {
    /// The answer of a started request, once it came.
    async fn call(&self, started: Promise) -> Result<JsValue, WabaError> {
        self.answer(JsFuture::from(started).await.unwrap_or_default())
    }

    /// `GET {proxy}/graph/{path}?{query}`: the JSON answer, or the error it stands for.
    async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<JsValue, WabaError> {
        self.call(self.start(&self.url(path, query), None)).await
    }
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

#[wasm_bindgen]
impl WabaClient {
    /// Sets (or clears) the bearer credential: a signup token or the admin token.
    #[wasm_bindgen(js_name = setCredential)]
    pub fn set_credential(&mut self, credential: Option<String>) {
        self.conn.credential = credential;
    }

    /// `GET /graph/debug_token?input_token=...`.
    #[wasm_bindgen(js_name = debugToken, unchecked_return_type = "Promise<DebugToken>")]
    pub fn debug_token(&self, input_token: String) -> Promise {
        let conn = self.conn.clone();
        promise(Box::pin(async move {
            conn.call(conn.start_debug_token(&input_token)).await
        }))
    }

    /// `GET /graph/{id}?fields=...` (default: the status fields, phones expanded).
    #[wasm_bindgen(unchecked_return_type = "Promise<Waba>")]
    pub fn waba(&self, id: String, fields: Option<String>) -> Promise {
        let conn = self.conn.clone();
        promise(Box::pin(async move {
            let fields = match fields {
                Some(f) => Fields::parse_waba(&f).map_err(bad)?.to_string(),
                None => STATUS_FIELDS.to_owned(),
            };
            conn.call(conn.start_waba(&id, &fields)?).await
        }))
    }

    /// `GET /graph/{id}/phone_numbers` with `{fields?, limit?, after?, before?}`.
    #[wasm_bindgen(js_name = phoneNumbers, unchecked_return_type = "Promise<Page<PhoneNumber>>")]
    pub fn phone_numbers(
        &self,
        id: String,
        query: Option<crate::typescript::PhoneQueryArg>,
    ) -> Promise {
        let query = query.map_or(JsValue::UNDEFINED, JsValue::from);
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
            page(conn.call(conn.start(&url, None)).await?)
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
}

/// `parseLoginResponse(response)`: the `FB.login` response as a `SignupResult` without a
/// session event.
#[wasm_bindgen(js_name = parseLoginResponse, unchecked_return_type = "LoginResult")]
pub fn parse_login_response(response: JsValue) -> Result<JsValue, JsValue> {
    let result = SignupResult {
        login: login_outcome(response)?,
        session: None,
        unknown_events: Vec::new(),
    };
    Ok(signup_js(&result, None))
}

/// `parseSessionMessage(origin, data, extraOrigins?)`: the Embedded Signup event in a
/// `message` event, or `null` when it is not one from a trusted origin.
#[wasm_bindgen(js_name = parseSessionMessage, unchecked_return_type = "SessionEvent | null")]
pub fn parse_session_message(
    origin: &str,
    data: JsValue,
    extra_origins: Option<Vec<String>>,
) -> Result<JsValue, JsValue> {
    let Some(r) = session_message(origin, data, &extra_origins.unwrap_or_default())? else {
        return Ok(JsValue::NULL);
    };
    Ok(session_fields(Out::new(), &r.message, &r.raw)
        .opt("version", r.message.version.as_deref())
        .set("unknownEvents", string_array(&[]))
        .done())
}

/// `accountStatus(waba)`: the `AccountStatus` of one WABA read on its own (the console's
/// detail view): phones, readiness, health problems, no signup context.
#[wasm_bindgen(js_name = accountStatus, unchecked_return_type = "AccountStatus")]
pub fn account_status(
    #[wasm_bindgen(unchecked_param_type = "Waba")] waba: JsValue,
) -> Result<JsValue, JsValue> {
    crate::i18n::install();
    let parsed = read::waba(waba.clone(), code::INVALID_ARGUMENT)?;
    Ok(account_js(
        waba,
        AccountStatus::new(parsed, false, None, true),
    ))
}

/// The WABA ids a `debug_token` answer grants under `whatsapp_business_management`, newest
/// first, as strings. Unknown scopes are ignored.
#[wasm_bindgen(js_name = grantedWabaIds)]
pub fn granted_waba_ids(
    #[wasm_bindgen(unchecked_param_type = "DebugToken")] debug_token: JsValue,
) -> Result<Vec<String>, JsValue> {
    let parsed: DebugToken = read::debug_token(debug_token)?;
    let ids = parsed
        .data
        .granted_wabas(WabaScope::Management)
        .map_err(|e| {
            error::WabaError::new(
                error::code::INVALID_ARGUMENT,
                format!("invalid debug_token answer: {e}"),
            )
        })?;
    Ok(ids.into_iter().map(|id| id.as_str().to_owned()).collect())
}

/// Whether a `message` event origin is Meta's (`https:` on `facebook.com` or a subdomain), or
/// one of `extra`, the origins the embedder allowed explicitly.
#[wasm_bindgen(js_name = isTrustedOrigin)]
pub fn is_trusted_origin(origin: &str, extra: Vec<String>) -> bool {
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    waba_graph::signup::is_trusted_origin(origin, &extra)
}
