//! waba-onboard in the browser: a thin wasm binding over the `waba-graph` model.
//!
//! - [`signup`]: the `FB.login` response and `WA_EMBEDDED_SIGNUP` messages, and
//!   `SignupListener`, which waits for both.
//! - [`client`]: `WabaClient`, typed calls to the waba-proxy with a timeout.
//! - [`onboard`](mod@onboard): from a signup result to every granted account's status.
//! - [`render`]: `StatusPanel` / `renderAccounts`, the status panel in the page.
//!
//! Values cross the JS boundary as plain objects read and written by [`js`] and [`read`]
//! (no JSON text in Rust, no serde code in the wasm), so ids stay strings and never pass
//! through a JS number. Errors reject as JS `Error` objects with a stable `code`.

pub mod client;
pub mod error;
pub mod js;
pub mod onboard;
pub mod read;
pub mod render;
pub mod signup;
mod typescript;

use waba_graph::{DebugToken, WabaScope};
use wasm_bindgen::prelude::*;

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
