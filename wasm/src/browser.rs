//! The browser side, in JS (`js/browser.js`, shipped by wasm-bindgen next to the glue): the
//! status panel's DOM, `fetch` with a timeout, and the signup listener's events and timer.
//! Measured with `twiggy`, the same work written in Rust cost several times the bytes (every
//! DOM call and every awaited promise is an import, a shim and glue); the model stays here.
//! Every import that can throw is declared with `catch`, so an exception never unwinds through
//! a borrowed Rust object.

use js_sys::{Array, Promise};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/js/browser.js")]
extern "C" {
    /// The status panel's DOM.
    pub type Panel;

    /// A panel in `container`, writing its texts in the chosen language.
    #[wasm_bindgen(constructor, catch)]
    pub fn new(container: &JsValue) -> Result<Panel, JsValue>;

    #[wasm_bindgen(method, catch)]
    pub fn loading(this: &Panel, message: Option<String>) -> Result<(), JsValue>;

    #[wasm_bindgen(method, catch)]
    pub fn notice(this: &Panel, title: &str, detail: Option<String>) -> Result<(), JsValue>;

    #[wasm_bindgen(method, catch)]
    pub fn error(this: &Panel, error: &JsValue) -> Result<(), JsValue>;

    #[wasm_bindgen(method, catch)]
    pub fn signup(this: &Panel, outcome: &str, title: &str, detail: &str) -> Result<(), JsValue>;

    #[wasm_bindgen(method, catch)]
    pub fn render(
        this: &Panel,
        accounts: &Array,
        views: &Array,
        warnings: &JsValue,
    ) -> Result<(), JsValue>;

    /// `fetch(url)` with the credential and the timeout (a `POST` of `body` as JSON when given):
    /// `{status, retryAfter, body}`, or `{timedOut}` when no answer came.
    pub fn request(
        url: &str,
        credential: Option<String>,
        timeout_ms: u32,
        body: Option<JsValue>,
    ) -> Promise;

    /// Runs an `onboard` call: its requests, `parallel` WABAs at a time, in order.
    #[wasm_bindgen(js_name = runOnboard)]
    pub fn run_onboard(onboarding: crate::onboard::Onboarding, parallel: usize) -> Promise;

    /// Chooses the catalog every text is written from (`null`: English; a `WabaOnboardError`
    /// with code `invalid_argument` for anything that is not a catalog).
    #[wasm_bindgen(js_name = useCatalog, catch)]
    pub fn use_catalog(catalog: &JsValue) -> Result<(), JsValue>;

    /// The template of `id` in the chosen catalog, or English's.
    pub fn template(id: &str) -> Option<String>;

    /// The text of `id` with `values` filled in, in the chosen language.
    pub fn message(id: &str, values: JsValue) -> String;

    /// The signup listener's `message` events and grace timer.
    pub type Listener;

    #[wasm_bindgen(constructor)]
    pub fn new(tracker: crate::signup::Tracker, grace_ms: i32) -> Listener;

    #[wasm_bindgen(method, catch)]
    pub fn login(this: &Listener, response: &JsValue) -> Result<(), JsValue>;

    #[wasm_bindgen(method)]
    pub fn wait(this: &Listener) -> Promise;

    #[wasm_bindgen(method)]
    pub fn dispose(this: &Listener);
}
