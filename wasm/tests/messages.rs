//! In headless Chromium: the language of the panel, of `message` and of the model's texts
//! follows the catalog `useMessages` chose (its own test binary: the choice is the page's).
// clippy does not see `#[wasm_bindgen_test]` functions as tests; unwrapping is how they fail.
#![allow(clippy::unwrap_used)]
// Browser-only: natively the file compiles to an empty test crate.
#![cfg(target_arch = "wasm32")]

use waba_onboard::i18n::{message, use_messages};
use waba_onboard::render::StatusPanel;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn json(text: &str) -> JsValue {
    js_sys::JSON::parse(text).unwrap()
}

fn values(text: &str) -> Option<waba_onboard::typescript::MessageValuesArg> {
    Some(json(text).unchecked_into())
}

/// A partial catalog in a right-to-left language: plural forms of its own, a model text, and
/// nothing else (English stands in for the rest).
const CATALOG: &str = r#"{"locale":"ar","dir":"rtl","sdk":"ar_AR","messages":{
  "panel.label":"حسابات واتساب للأعمال",
  "page.retrying_in.two":"إعادة المحاولة بعد ثانيتين ({count})",
  "page.retrying_in.other":"إعادة المحاولة بعد {count} ثانية",
  "step.left_at":"غادر النشاط التجاري عند {step}: {what}.",
  "step.PHONE_NUMBER_VERIFICATION":"لم يتحقق من رقمه"}}"#;

#[wasm_bindgen_test]
fn the_chosen_catalog_writes_every_text_and_english_stands_in() {
    assert_eq!(
        message("panel.newest", None),
        "Newest",
        "English by default"
    );
    use_messages(json(CATALOG)).unwrap();

    let two = message("page.retrying_in", values(r#"{"count":2}"#));
    let digits =
        js_sys::Intl::NumberFormat::new(&js_sys::Array::of1(&"ar".into()), &js_sys::Object::new())
            .format()
            .call1(&JsValue::NULL, &2.into())
            .unwrap()
            .as_string()
            .unwrap();
    assert_eq!(
        two,
        format!("إعادة المحاولة بعد ثانيتين (\u{2068}{digits}\u{2069})"),
        "Arabic's dual"
    );
    assert!(
        message("page.retrying_in", values(r#"{"count":11}"#)).starts_with("إعادة المحاولة بعد")
    );
    assert_eq!(
        message("panel.newest", None),
        "Newest",
        "an id the catalog lacks is English"
    );
    assert_eq!(message("no.such.id", None), "no.such.id");
    assert_eq!(
        message(
            "panel.review_changed",
            values(r#"{"name":"{after}","before":"PENDING","after":"APPROVED"}"#)
        ),
        "{after}: review status changed from PENDING to APPROVED",
        "a value is not read again"
    );

    let doc = web_sys::window().unwrap().document().unwrap();
    let c = doc.create_element("div").unwrap();
    doc.body().unwrap().append_child(&c).unwrap();
    let panel = StatusPanel::new(c.clone()).unwrap();
    let root = c.query_selector(".waba-panel").unwrap().unwrap();
    assert_eq!(root.get_attribute("lang").as_deref(), Some("ar"));
    assert_eq!(root.get_attribute("dir").as_deref(), Some("rtl"));
    assert_eq!(
        root.get_attribute("aria-label").as_deref(),
        Some("حسابات واتساب للأعمال")
    );
    // The model's guidance, written in Rust, reads the catalog too.
    let cancel = json(
        r#"{"outcome":"abandoned","event":"CANCEL","currentStep":"PHONE_NUMBER_VERIFICATION","unknownEvents":[],
        "sessionMessage":{"type":"WA_EMBEDDED_SIGNUP","event":"CANCEL","data":{"current_step":"PHONE_NUMBER_VERIFICATION"}}}"#,
    );
    panel.show_signup(cancel.clone()).unwrap();
    let shown = c.text_content().unwrap();
    assert!(
        shown.contains(
            "غادر النشاط التجاري عند \u{2068}PHONE_NUMBER_VERIFICATION\u{2069}: \u{2068}لم يتحقق من رقمه\u{2069}."
        ),
        "{shown}"
    );

    for bad in [
        r#"{"messages":{}}"#,
        r#"{"locale":"zz-","messages":{}}"#,
        r#"{"locale":"ar"}"#,
    ] {
        let refused = use_messages(json(bad)).unwrap_err();
        assert_eq!(
            js_sys::Reflect::get(&refused, &"code".into()).unwrap(),
            "invalid_argument",
            "{bad}"
        );
    }
    use_messages(JsValue::NULL).unwrap();
    panel.show_signup(cancel).unwrap();
    assert!(
        c.text_content().unwrap().contains("verification code"),
        "English again"
    );
}
