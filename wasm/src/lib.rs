//! waba-onboard in the browser: the thin wasm binding over the `waba-graph` model.
//!
//! Values cross the JS boundary through serde-wasm-bindgen (no JSON text in between), so ids
//! stay strings and never pass through a JS number.

use waba_graph::{DebugToken, WabaScope};
use wasm_bindgen::prelude::*;

/// The WABA ids a `debug_token` answer grants under `whatsapp_business_management`, newest
/// first, as strings. Unknown scopes are ignored.
#[wasm_bindgen(js_name = grantedWabaIds)]
pub fn granted_waba_ids(debug_token: JsValue) -> Result<Vec<String>, JsError> {
    let parsed: DebugToken = serde_wasm_bindgen::from_value(debug_token)
        .map_err(|e| JsError::new(&format!("invalid debug_token answer: {e}")))?;
    let ids = parsed
        .data
        .granted_wabas(WabaScope::Management)
        .map_err(|e| JsError::new(&format!("invalid debug_token answer: {e}")))?;
    Ok(ids.into_iter().map(|id| id.as_str().to_owned()).collect())
}

/// Whether a `message` event origin is Meta's (`https:` on `facebook.com` or a subdomain), or
/// one of `extra`, the origins the embedder allowed explicitly.
#[wasm_bindgen(js_name = isTrustedOrigin)]
pub fn is_trusted_origin(origin: &str, extra: Vec<String>) -> bool {
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    waba_graph::signup::is_trusted_origin(origin, &extra)
}
