//! The language of every text: `useMessages(catalog)` chooses a catalog
//! (`waba-onboard/locales`), `message(id, values?)` writes one text in it, and the status
//! model's texts (`waba_graph::messages`) read it. The catalogs, English included
//! (`js/locales/en.js`, the default and the stand-in for any id a catalog lacks), and the
//! filling in of values live in `js/browser.js`: text is data, cheaper in JS than in wasm.

use crate::browser;
use crate::typescript::MessageValuesArg;
use wasm_bindgen::prelude::*;

// `js/browser.js` imports the English catalog; naming its module here has wasm-bindgen ship
// it next to `browser.js`.
#[wasm_bindgen(module = "/js/locales/en.js")]
extern "C" {
    /// The English catalog (`js/locales/en.js`).
    #[wasm_bindgen(js_name = default)]
    pub type EnglishCatalog;
}

/// Has every model text read the chosen catalog: called by each export that writes one
/// (a start function would be cheaper, but test harnesses do not run it).
pub fn install() {
    waba_graph::messages::set_lookup(browser::template);
}

/// `useMessages(catalog)`: every text from now on (panels drawn after it, `message`, and the
/// `problem`, `message` and `text` fields `onboard`, `accountStatus` and `applyChange`
/// write) in the catalog's language; `null` goes back to English. A catalog is
/// `{locale, dir?, sdk?, messages}`, as `waba-onboard/locales` loads it; anything else is
/// refused with `invalid_argument`.
#[wasm_bindgen(js_name = useMessages)]
pub fn use_messages(
    #[wasm_bindgen(unchecked_param_type = "Catalog | null")] catalog: JsValue,
) -> Result<(), JsValue> {
    browser::use_catalog(&catalog)
}

/// `message(id, values?)`: the text of a message id in the chosen language, with `values`
/// filled in (numbers written by `Intl.NumberFormat`; a `count` picks the plural form by
/// `Intl.PluralRules`). An id no catalog knows is returned as it is.
#[wasm_bindgen]
pub fn message(id: &str, values: Option<MessageValuesArg>) -> String {
    browser::message(id, values.map_or(JsValue::UNDEFINED, JsValue::from))
}
